//! Found by the `endpoint` fuzz target (fuzz/artifacts/endpoint/crash-174ddb86, two steps):
//! an invitee that answers only `100 Trying` and then goes silent kept its session alive
//! forever once the server shut down: after `Shutdown` and every timer the endpoint still
//! held the session (`is_idle()` false, `poll_timeout()` `None`). The fuzz target ran the
//! real spec machines; this reproduces it with the stand-in machines of `tests/common/`,
//! where (their leg has no timer of its own) the session was stuck even without shutdown.
//! Fixed in the INVITE client transaction: once cancelled in Proceeding it gives up after
//! 64·T1 with no final response (RFC 3261 §9.1), which fails the leg and ends the session.

mod common;

use bytes::Bytes;
use common::*;
use im_runtime::endpoint::{Endpoint, EndpointConfig};
use im_runtime::proto::sip::Message;
use im_runtime::transport::{Core, Input, Output};
use std::time::Instant;

const ALICE: &str = "127.0.0.1:5070";
const BOB: &str = "127.0.0.2:5060";

#[allow(clippy::disallowed_methods)]
fn base() -> Instant {
    // The one clock read of this test: every later instant is derived from it.
    Instant::now()
}

fn drain(ep: &mut Endpoint<App>) -> Vec<Output> {
    let mut v = Vec::new();
    while let Some(o) = ep.poll_output() {
        v.push(o);
    }
    v
}

/// Invites bob, lets him answer 100 only, optionally shuts down, runs every timer; returns
/// the sessions left.
fn sessions_left_after_silent_proceeding_invitee(shutdown: bool) -> usize {
    let cfg = EndpointConfig::new(addr("127.0.0.1:5060"), addr("127.0.0.1:2855"));
    let mut ep = Endpoint::new(cfg, App(Knobs::default()));
    let mut now = base();
    let inv = invite(
        "UDP",
        ALICE,
        "call-1@alice",
        "z9hG4bKa1",
        &["sip:bob@127.0.0.2"],
    );
    ep.handle_input(
        now,
        Input::Datagram {
            local: addr("127.0.0.1:5060"),
            from: addr(ALICE),
            data: Bytes::from(inv),
        },
    );
    let to_bob = drain(&mut ep)
        .into_iter()
        .find_map(|o| match o {
            Output::Datagram { to, data, .. } if to == addr(BOB) => Message::parse(data).ok(),
            _ => None,
        })
        .expect("bob is invited");
    ep.handle_input(
        now,
        Input::Datagram {
            local: addr("127.0.0.1:5060"),
            from: addr(BOB),
            data: Bytes::from(response_to(&to_bob, 100, "", None)),
        },
    );
    drain(&mut ep);
    if shutdown {
        ep.handle_input(now, Input::Shutdown);
        drain(&mut ep);
    }
    let mut steps = 0;
    while let Some(t) = ep.poll_timeout() {
        steps += 1;
        assert!(steps < 100_000, "timers never run out");
        now = now.max(t);
        ep.handle_input(now, Input::Timeout);
        drain(&mut ep);
    }
    ep.live_sessions()
}

/// Without shutdown the session's own timers should end it (its lifetime at the latest); with
/// the stand-in machines (no leg timer) no timer is left and the session stays too.
#[test]
fn session_with_a_silent_proceeding_invitee_ends_by_its_timers() {
    assert_eq!(sessions_left_after_silent_proceeding_invitee(false), 0);
}

#[test]
fn session_with_a_silent_proceeding_invitee_ends_after_shutdown() {
    assert_eq!(
        sessions_left_after_silent_proceeding_invitee(true),
        0,
        "session(s) left after shutdown and the last timer"
    );
}

//! Which accepted SIP connections the endpoint reports in use ([`Output::ConnUse`], issue
//! 14): the one a session's originator is reached over, while the session lives; the one a
//! REGISTER came over, until its bindings expire or are removed; never one that only
//! carried a request without a session (OPTIONS), nor a datagram peer.

#![allow(clippy::expect_used)]

mod common;

use common::harness::{self, ALICE, conn_uses as uses};
use common::{App, Knobs, crlf, invite, machines_of_app, options};
use im_runtime::endpoint::{Application, ContactBinding, RegisterChange, RegisterError};
use im_runtime::machine::Uri;
use im_runtime::transport::{ConnId, Core, Input, Output, StreamKind};
use std::time::{Duration, Instant};

/// The common test application plus a registrar that grants what is asked.
struct WithRegistrar(App);
impl Application for WithRegistrar {
    machines_of_app!(0, router);
    fn offers_registrar(&self) -> bool {
        true
    }
    fn register(
        &mut self,
        _now: Instant,
        _aor: &Uri,
        change: &RegisterChange,
    ) -> Result<Vec<ContactBinding>, RegisterError> {
        Ok(match change {
            RegisterChange::RemoveAll => Vec::new(),
            RegisterChange::Update(b) => b.iter().filter(|b| b.expires > 0).cloned().collect(),
        })
    }
}

/// The endpoint with the stand-in machines and the registrar; sessions live 20 s.
type T = harness::Sim<WithRegistrar>;

impl T {
    fn new() -> T {
        let app = WithRegistrar(App(Knobs::default()));
        T::serving(app, |cfg| cfg.session_lifetime = Duration::from_secs(20))
    }

    /// Accepts the `n`th SIP connection, from `peer`; that alone puts nothing in use.
    fn accept(&mut self, n: u64, peer: &str) -> ConnId {
        let conn = ConnId(ConnId::ACCEPTED | n);
        let out = self.open(conn, StreamKind::Sip, "127.0.0.1:5060", peer);
        assert_eq!(uses(&out), vec![]);
        conn
    }
}

/// Alice's INVITE `n` from `via` over `transport`, inviting bob.
fn session_invite(transport: &str, via: &str, n: u32) -> String {
    let (call_id, branch) = (format!("cu{n}@alice"), format!("z9hG4bKcu{n}"));
    invite(
        transport,
        via,
        &call_id,
        &branch,
        &["sip:bob@127.0.0.1:5080"],
    )
}

fn register(transport: &str, from: &str, expires: u32, cseq: u32) -> String {
    register_as("alice", transport, from, expires, cseq)
}

fn register_as(user: &str, transport: &str, from: &str, expires: u32, cseq: u32) -> String {
    crlf(&format!(
        "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/{transport} {from};branch=z9hG4bK{user}{cseq}\nMax-Forwards: 70\nFrom: <sip:{user}@example.com>;tag=r1\nTo: <sip:{user}@example.com>\nCall-ID: reg@{user}\nCSeq: {cseq} REGISTER\nContact: <sip:{user}@{from};transport=tcp>\nExpires: {expires}\nContent-Length: 0\n\n"
    ))
}

#[test]
fn a_session_holds_its_originators_connection_while_it_lives() {
    let mut t = T::new();
    let conn = t.accept(1, ALICE);
    let out = t.tcp(conn, &session_invite("TCP", ALICE, 1));
    assert_eq!(uses(&out), vec![(conn, true)], "{out:?}");
    assert_eq!(t.ep.live_sessions(), 1);
    // Another connection that only asks OPTIONS is not in use.
    let other = t.accept(2, "127.0.0.1:5071");
    let out = t.tcp(other, &options("TCP", "127.0.0.1:5071", "o@x", "z9hG4bKo1"));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::StreamSend { conn: c, .. } if *c == other))
    );
    assert_eq!(uses(&out), vec![]);
    // The session ends (its lifetime): the connection is let go, once.
    let out = t.advance(Duration::from_secs(120));
    assert_eq!(t.ep.live_sessions(), 0);
    assert_eq!(uses(&out), vec![(conn, false)], "{out:?}");
}

#[test]
fn a_session_over_udp_or_a_closed_connection_reports_nothing() {
    let mut t = T::new();
    let out = t.udp(ALICE, &session_invite("UDP", ALICE, 2));
    assert_eq!(t.ep.live_sessions(), 1);
    assert_eq!(uses(&out), vec![]);
    let conn = t.accept(3, "127.0.0.1:5072");
    let out = t.tcp(conn, &session_invite("TCP", "127.0.0.1:5072", 3));
    assert_eq!(uses(&out), vec![(conn, true)]);
    // The connection closes under the session: nothing to let go of later.
    assert_eq!(uses(&t.input(Input::StreamClosed { conn })), vec![]);
    let out = t.advance(Duration::from_secs(120));
    assert_eq!(t.ep.live_sessions(), 0);
    assert_eq!(uses(&out), vec![]);
}

#[test]
fn a_registration_holds_its_connection_until_it_expires_or_is_removed() {
    let mut t = T::new();
    let conn = t.accept(4, ALICE);
    let out = t.tcp(conn, &register("TCP", ALICE, 300, 1));
    assert_eq!(uses(&out), vec![(conn, true)], "{out:?}");
    // A refresh keeps it (no change to report), and moves the deadline.
    t.advance(Duration::from_secs(200));
    assert_eq!(uses(&t.tcp(conn, &register("TCP", ALICE, 300, 2))), vec![]);
    assert_eq!(uses(&t.advance(Duration::from_secs(299))), vec![]);
    assert_eq!(
        uses(&t.advance(Duration::from_secs(2))),
        vec![(conn, false)]
    );
    // Registered again, then removed with Expires: 0.
    assert_eq!(
        uses(&t.tcp(conn, &register("TCP", ALICE, 300, 3))),
        vec![(conn, true)]
    );
    assert_eq!(
        uses(&t.tcp(conn, &register("TCP", ALICE, 0, 4))),
        vec![(conn, false)]
    );
    // Two addresses-of-record over one connection (a front proxy's): held while either is.
    assert_eq!(
        uses(&t.tcp(conn, &register("TCP", ALICE, 3600, 5))),
        vec![(conn, true)]
    );
    assert_eq!(
        uses(&t.tcp(conn, &register_as("bob", "TCP", ALICE, 300, 1))),
        vec![]
    );
    assert_eq!(
        uses(&t.tcp(conn, &register_as("bob", "TCP", ALICE, 0, 2))),
        vec![]
    );
    assert_eq!(uses(&t.advance(Duration::from_secs(3599))), vec![]);
    assert_eq!(
        uses(&t.advance(Duration::from_secs(2))),
        vec![(conn, false)]
    );
    // Over UDP nothing is held.
    let out = t.udp("127.0.0.1:5090", &register("UDP", "127.0.0.1:5090", 300, 6));
    assert_eq!(uses(&out), vec![]);
    // Once the transactions are gone, no registration deadline is left behind.
    t.advance(Duration::from_secs(64));
    assert_eq!(t.ep.poll_timeout(), None);
}

//! Issue 12: a recipient list the endpoint cannot read is the spec's to answer. The
//! endpoint answers nothing before the machines run (it used to send 400 itself): the
//! machines get the request with `list.malformed` / `list.too_large` and `list.error` set and
//! no `recipients`; the list limits are `EndpointConfig::body_limits.lists`; and when no rule
//! answers such a request, the endpoint sends 500 and ends the session.

mod common;

use bytes::Bytes;
use common::*;
use im_runtime::endpoint::{Endpoint, EndpointConfig};
use im_runtime::proto::sip::Message;
use im_runtime::transport::{Core, Input, Output};
use std::time::Instant;

const ALICE: &str = "127.0.0.1:5070";

#[allow(clippy::disallowed_methods)]
fn base() -> Instant {
    // The one clock read of these tests.
    Instant::now()
}

/// Sends `text` from alice over UDP to a fresh endpoint (list limit: 2 entries) and returns
/// the endpoint and what it sent alice.
fn send(knobs: Knobs, text: &str) -> (Endpoint<App>, Vec<Message>) {
    let mut cfg = EndpointConfig::new(addr("127.0.0.1:5060"), addr("127.0.0.1:2855"));
    cfg.body_limits.lists.max_entries = 2;
    let mut ep = Endpoint::new(cfg, App(knobs));
    ep.handle_input(
        base(),
        Input::Datagram {
            local: addr("127.0.0.1:5060"),
            from: addr(ALICE),
            data: Bytes::from(text.to_owned()),
        },
    );
    let mut to_alice = Vec::new();
    while let Some(o) = ep.poll_output() {
        if let Output::Datagram { to, data, .. } = o
            && to == addr(ALICE)
        {
            to_alice.push(Message::parse(data).expect("the endpoint sends SIP"));
        }
    }
    (ep, to_alice)
}

fn finals(msgs: &[Message]) -> Vec<u16> {
    msgs.iter().map(status_of).filter(|s| *s >= 200).collect()
}

/// The stand-in machines answer an INVITE with no readable recipients 404 "no such group":
/// that answer, not a runtime 400, is what a list over the configured limit gets.
#[test]
fn a_list_over_the_configured_limit_reaches_the_machines() {
    let three = invite(
        "UDP",
        ALICE,
        "over@x",
        "z9hG4bKover",
        &[
            "sip:b@example.com",
            "sip:c@example.com",
            "sip:d@example.com",
        ],
    );
    let (ep, out) = send(Knobs::default(), &three);
    assert_eq!(finals(&out), [404], "{out:?}");
    let warning = out.last().and_then(|m| m.header_str("Warning"));
    assert!(
        warning.is_some_and(|w| w.contains("no such group")),
        "{warning:?}"
    );
    assert_eq!(
        ep.stats().rejected,
        0,
        "the endpoint refused nothing itself"
    );
    assert_eq!(ep.stats().initial_requests, 1);
    // Within the limit: the stand-in's 200.
    let two = invite(
        "UDP",
        ALICE,
        "within@x",
        "z9hG4bKwithin",
        &["sip:b@example.com", "sip:c@example.com"],
    );
    let (_, out) = send(Knobs::default(), &two);
    assert_eq!(finals(&out), [200]);
}

/// A spec with no rule for an unreadable list answers nothing: the endpoint sends the 500 a
/// transaction still needs and ends the session.
#[test]
fn an_unreadable_list_no_rule_answers_gets_500() {
    let knobs = Knobs {
        silent_on_bad_list: true,
        ..Knobs::default()
    };
    let malformed = invite("UDP", ALICE, "bad@x", "z9hG4bKbad", &["sip:b@example.com"])
        .replace("</resource-lists>", "</resource-listz>");
    let (ep, out) = send(knobs, &malformed);
    assert_eq!(finals(&out), [500], "{out:?}");
    assert_eq!(ep.live_sessions(), 0);
    // A readable list is the machine's as before.
    let fine = invite(
        "UDP",
        ALICE,
        "fine@x",
        "z9hG4bKfine",
        &["sip:b@example.com"],
    );
    let (_, out) = send(knobs, &fine);
    assert_eq!(finals(&out), [200]);
}

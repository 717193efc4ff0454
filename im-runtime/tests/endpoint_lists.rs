//! Issue 12: a recipient list the endpoint cannot read is the spec's to answer. The
//! endpoint answers nothing before the machines run (it used to send 400 itself): the
//! machines get the request with `list.malformed` / `list.too_large` and `list.error` set and
//! no `recipients`; the list limits are `EndpointConfig::body_limits.lists`; and when no rule
//! answers such a request, the endpoint sends 500 and ends the session.

mod common;

use common::harness::{Sim, udp_to};
use common::*;
use im_runtime::proto::sip::Message;

const ALICE: &str = "127.0.0.1:5070";

/// Sends `text` from alice over UDP to a fresh endpoint (list limit: 2 entries) and returns
/// the endpoint and what it sent alice.
fn send(knobs: Knobs, text: &str) -> (Sim, Vec<Message>) {
    let mut sim = Sim::with(knobs, |cfg| cfg.body_limits.lists.max_entries = 2);
    let out = sim.udp(ALICE, text);
    (sim, udp_to(&out, ALICE))
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
    let (sim, out) = send(Knobs::default(), &three);
    assert_eq!(finals(&out), [404], "{out:?}");
    let warning = out.last().and_then(|m| m.header_str("Warning"));
    assert!(
        warning.is_some_and(|w| w.contains("no such group")),
        "{warning:?}"
    );
    assert_eq!(
        sim.ep.stats().rejected,
        0,
        "the endpoint refused nothing itself"
    );
    assert_eq!(sim.ep.stats().initial_requests, 1);
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
    let (sim, out) = send(knobs, &malformed);
    assert_eq!(finals(&out), [500], "{out:?}");
    assert_eq!(sim.ep.live_sessions(), 0);
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

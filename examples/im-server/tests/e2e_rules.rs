//! End-to-end checks of the spec rules that moved out of the runtime in issue 12's sixth
//! session, against the real `im-server` binary; every assertion is on what a peer received
//! on the wire:
//! - `5.2.1.1/body_malformed`: an INVITE whose multipart body has no boundary gets 400 with a
//!   Warning saying why (SIPp, `invite_body_malformed.xml`);
//! - `7.9.1.4/list_unresolved`: a recipient list with `<entry-ref>` and `<external>` entries
//!   gets 400 with a Warning counting them (SIPp, `invite_list_400.xml`);
//! - `7.9.1.4/unregistered` (`leg unroutable`): an ad-hoc invitee of the server's own domain
//!   with no registration fails with the rule's 480, which the originator reads in the
//!   conference state at the session's focus (the stdlib-Python subscriber
//!   `tests/peers/conference_peer.py`: SIPp cannot hold a second dialog for the NOTIFY);
//! - `6.1.3.3.2/subscribe_in_dialog`: a SUBSCRIBE in the originator's INVITE dialog gets 405
//!   with Allow and a Warning (SIPp, `pager_subscribe_in_dialog.xml`), with two workers.

// Real process, real sockets, wall-clock timeouts on purpose.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{MsrpPeer, Server, SipLogMessage, Sipp, SippRun, sip_log};

/// The server's conference factory (its default configuration).
const FACTORY: &str = "sip:conference-factory@example.com";
/// RFC 5364's namespace of the copyControl attribute.
const CP_NS: &str = "urn:ietf:params:xml:ns:copycontrol";

/// The last final response SIPp received (not a 100 Trying).
fn last_final(run: &SippRun) -> SipLogMessage {
    sip_log(&run.messages)
        .into_iter()
        .rfind(|m| m.received && m.start.starts_with("SIP/2.0 ") && !m.start.contains(" 100 "))
        .unwrap_or_else(|| panic!("no final response: {run:?}"))
}

// covers: 5.2.1.1/body_malformed
#[test]
fn a_body_that_cannot_be_parsed_gets_400_saying_why() {
    let server = Server::start(&[]);
    let run = Sipp::new("invite_body_malformed")
        .to(server.sip)
        .key("target", FACTORY)
        .key("from", "sip:alice@example.com")
        .run();
    assert!(run.success(), "{run:?}\n{}", server.log());
    let r = last_final(&run);
    assert_eq!(r.start, "SIP/2.0 400 Bad Request", "{}", r.text);
    let w = r.header("Warning").unwrap_or_default();
    assert!(
        w.contains("the body cannot be read: malformed multipart body"),
        "{}",
        r.text
    );
}

// covers: 7.9.1.4/list_unresolved
#[test]
fn a_list_naming_recipients_by_reference_gets_400_counting_them() {
    let server = Server::start(&[]);
    let entries = "<entry uri=\"sip:bob@example.com\"/>\
                   <entry-ref ref=\"resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5b@name=%22friends%22%5d\"/>\
                   <external anchor=\"http://xcap.example.com/resource-lists/users/sip:alice@example.com/index/~~/resource-lists/list%5b@name=%22work%22%5d\"/>";
    let run = Sipp::new("invite_list_400")
        .to(server.sip)
        .key("target", FACTORY)
        .key("from", "sip:alice@example.com")
        .key("cp_ns", CP_NS)
        .key("entries", entries)
        .run();
    assert!(run.success(), "{run:?}\n{}", server.log());
    let r = last_final(&run);
    assert_eq!(r.start, "SIP/2.0 400 Bad Request", "{}", r.text);
    let w = r.header("Warning").unwrap_or_default();
    assert!(w.contains("names 2 recipients by reference"), "{}", r.text);
}

/// The originator's pager-mode session to an ad-hoc list naming `nobody`, a user of the
/// server's domain who never registered: the invitee INVITE has no route (`leg
/// unroutable`, `copy.recipient_offline`), and 7.9.1.4 `unregistered` fails the leg 480.
/// The originator fetches the conference state at the focus of its 200 (RFC 6665 §4.4.3:
/// `Expires: 0`, one NOTIFY) and reads that outcome; meanwhile its SUBSCRIBE inside the
/// INVITE dialog gets 6.1.3.3.2's 405. Two workers: that SUBSCRIBE is steered by its To tag
/// (`steer::conference_key`), so the server's tag of the INVITE dialog must steer to the
/// worker holding the session (with a tag drawn at random it was 481 half the time).
// covers: 7.9.1.4/unregistered, 6.1.3.3.2/subscribe_in_dialog, ext-dr.4/originator_subscribes
#[test]
fn an_unregistered_invitee_fails_480_in_the_conference_state_and_a_subscribe_in_the_dialog_gets_405()
 {
    let server = Server::start(&["--workers", "2"]);
    let alice = "sip:alice@example.com";
    let mut uac = Sipp::new("pager_subscribe_in_dialog")
        .to(server.sip)
        .key("target", FACTORY)
        .key("from", alice)
        .key("cp_ns", CP_NS)
        .key("entries", "<entry uri=\"sip:nobody@example.com\"/>")
        .timeouts(Duration::from_secs(8), Duration::from_secs(20))
        .spawn();
    let focus = uac
        .wait_for_log("server-focus ", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("the UAC logged no focus\n{}", server.log()));
    assert!(focus.starts_with("sip:conf-"), "{focus}");

    let listen = format!("127.0.0.1:{}", common::free_udp_port());
    let sip = server.sip.to_string();
    let mut fetch = MsrpPeer::spawn_script(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/conference_peer.py"),
        tempfile::tempdir().unwrap(),
        &[
            "--server",
            &sip,
            "--listen",
            &listen,
            "--focus",
            &focus,
            "--from-uri",
            alice,
            "--expires",
            "0",
            "--timeout",
            "10",
        ],
        Duration::from_secs(15),
    );
    assert_eq!(fetch.wait(), Some(0), "{fetch:?}\n{}", server.log());
    let events = fetch.events();
    let response = events
        .iter()
        .find(|e| e["event"] == "response")
        .unwrap_or_else(|| panic!("no response: {fetch:?}"));
    assert_eq!(response["status"], 200, "{fetch:?}");
    let notify = events
        .iter()
        .find(|e| e["event"] == "notify")
        .unwrap_or_else(|| panic!("no NOTIFY: {fetch:?}\n{}", server.log()));
    let users = notify["users"].as_array().cloned().unwrap_or_default();
    assert_eq!(users.len(), 1, "{notify}");
    let nobody = &users[0];
    assert_eq!(nobody["entity"], "sip:nobody@example.com", "{notify}");
    assert_eq!(nobody["status"], "disconnected", "{notify}");
    assert_eq!(nobody["disconnection_method"], "failed", "{notify}");
    assert_eq!(nobody["delivery"], "failed", "{notify}");
    let reason = nobody["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("SIP;cause=480"), "{notify}");

    let run = uac.wait();
    assert!(run.success(), "{run:?}\n{}", server.log());
    let answer = sip_log(&run.messages)
        .into_iter()
        .find(|m| {
            m.received
                && m.start.starts_with("SIP/2.0 ")
                && m.header("CSeq").is_some_and(|c| c.ends_with("SUBSCRIBE"))
        })
        .unwrap_or_else(|| panic!("no answer to the SUBSCRIBE: {run:?}"));
    assert_eq!(
        answer.start, "SIP/2.0 405 Method Not Allowed",
        "{}",
        answer.text
    );
    assert_eq!(
        answer.header("Allow"),
        Some("ACK, BYE, CANCEL"),
        "{}",
        answer.text
    );
    assert!(
        answer
            .header("Warning")
            .is_some_and(|w| w.contains("subscribe to the focus URI outside the INVITE dialog")),
        "{}",
        answer.text
    );
}

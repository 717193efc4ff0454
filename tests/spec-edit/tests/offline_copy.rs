//! A page-mode copy kept for an offline member (ext-dr.6) carries, when it is sent later,
//! what the exploder's `forward each` block says, as the copies sent at once do (From,
//! Max-Forwards, Referred-By): the
//! sans-IO endpoint runs the RFC 5365 exploder as written and as `edits.toml` changed it (the
//! group's copies without Referred-By, with 5 hops), and the kept copy follows the spec it
//! runs, with no Rust edit. What a copy that was not sent fails with is the spec's too: a
//! copy with no route (ext-dr.10, `copy unroutable`) and a kept copy that expired (ext-dr.11,
//! `copy expired`).

use im_runtime::endpoint::OfflineCopy;
use im_runtime::machine::Method;
use im_runtime::proto::sip::Message;
use im_runtime::transport::Input;
use imspec_spec_edit::{edited_exploder, exploder};

#[path = "common/gap.rs"]
mod gap;

use gap::{ALICE, GROUP, Group, Run, Sent, Spec, addr, spec};

const BOB: &str = "127.0.0.1:5080";

fn crlf(s: &str) -> String {
    s.replace('\n', "\r\n")
}

/// Alice messages the group while bob is offline (his copy is kept), then bob registers:
/// the kept copy the endpoint sends him. With `online`, bob registers first: the copy sent
/// at once. With `placed`, the copy is put in the store by the test rather than kept by
/// the spec (the edited ext-dr.10 fails it 404, which ext-dr.6 does not keep).
fn copy_to_bob(spec: Spec, online: bool, placed: bool) -> Message {
    let mut run = Group::of(spec).registrar().run();
    let register = format!(
        "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bKr1\n\
         Max-Forwards: 70\nFrom: <sip:bob@example.com>;tag=b1\nTo: <sip:bob@example.com>\n\
         Call-ID: r1@bob\nCSeq: 1 REGISTER\nContact: <sip:bob@{BOB}>\nExpires: 300\n\
         Content-Length: 0\n\n"
    );
    if online {
        run.send(BOB, &crlf(&register));
    }
    let body = "hello\n";
    let message = format!(
        "MESSAGE {GROUP} SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKm1\n\
         Max-Forwards: 40\nFrom: <sip:alice@example.com>;tag=a1\nTo: <{GROUP}>\n\
         Call-ID: m1@alice\nCSeq: 1 MESSAGE\nContent-Type: text/plain\n\
         Content-Length: {}\n\n{body}",
        crlf(body).len()
    );
    let out = run.send(ALICE, &crlf(&message));
    assert!(
        out.iter()
            .any(|(a, m)| *a == addr(ALICE) && m.status().map(u16::from) == Some(202)),
        "{out:?}"
    );
    let out = if online {
        out
    } else {
        if placed {
            run.app().kept.borrow_mut().push(OfflineCopy {
                recipient: "sip:bob@example.com".into(),
                source: addr(ALICE),
                request: crlf(&message).into_bytes().into(),
            });
        }
        assert_eq!(run.app().kept.borrow().len(), 1, "bob's copy is kept");
        run.send(BOB, &crlf(&register))
    };
    let mut copies: Vec<Message> = out
        .into_iter()
        .filter(|(a, m)| *a == addr(BOB) && m.method() == Some(&Method::Message))
        .map(|(_, m)| m)
        .collect();
    assert_eq!(copies.len(), 1, "one copy goes to bob");
    copies.remove(0)
}

// covers: 7.2/explode_group
#[test]
fn copies_sent_at_once_or_kept_carry_the_spec_as_written() {
    for online in [false, true] {
        let m = copy_to_bob(spec!(exploder), online, false);
        assert_eq!(m.header_str("Referred-By"), Some("<sip:alice@example.com>"));
        assert_eq!(m.header_str("Max-Forwards"), Some("39"));
        let from = m.header_str("From").unwrap_or_default();
        assert!(from.starts_with("<sip:alice@example.com>;tag="), "{from}");
    }
}

#[test]
fn copies_sent_at_once_or_kept_follow_the_edited_forward_each_block() {
    // The copy sent at once and the kept one alike.
    for online in [false, true] {
        let m = copy_to_bob(spec!(edited_exploder), online, true);
        assert_eq!(m.header_str("Referred-By"), None, "online {online}");
        assert_eq!(m.header_str("Max-Forwards"), Some("5"), "online {online}");
        // What the edit kept stays.
        let from = m.header_str("From").unwrap_or_default();
        assert!(from.starts_with("<sip:alice@example.com>;tag="), "{from}");
    }
}

const AS_WRITTEN: Spec = spec!(exploder);
const EDITED: Spec = spec!(edited_exploder);

/// Alice's MESSAGE to the group, asking for negative delivery notifications (RFC 5438).
fn alice_asks_for_failures() -> String {
    // Written with LF, as every message here (`crlf` when sent).
    let cpim = "From: <sip:alice@example.com>\nTo: <sip:friends@example.com>\n\
         NS: imdn <urn:ietf:params:imdn>\nimdn.Message-ID: m7\n\
         DateTime: 2026-12-06T04:00:00Z\nimdn.Disposition-Notification: negative-delivery\n\n\
         Content-Type: text/plain\n\nhello\n";
    format!(
        "MESSAGE {GROUP} SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKm7\n\
         Max-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a7\nTo: <{GROUP}>\n\
         Call-ID: m7@alice\nCSeq: 1 MESSAGE\nContent-Type: message/cpim\n\
         Content-Length: {}\n\n",
        crlf(cpim).len()
    ) + cpim
}

/// The endpoint running `spec`, bob not registered.
fn endpoint(spec: Spec) -> Run {
    Group::of(spec).registrar().run()
}

/// The failure notifications among `out`: MESSAGEs to alice whose IMDN says `failed`.
fn failure_notices(out: &Sent) -> usize {
    out.iter()
        .filter(|(a, m)| {
            *a == addr(ALICE)
                && m.method() == Some(&Method::Message)
                && String::from_utf8_lossy(&m.body()).contains("<failed/>")
        })
        .count()
}

/// Alice messages the group while bob has no registration: how many copies are kept, and
/// how many failure notifications alice gets.
fn message_to_offline_bob(spec: Spec) -> (usize, usize) {
    let mut run = endpoint(spec);
    let out = run.send(ALICE, &crlf(&alice_asks_for_failures()));
    assert!(
        out.iter()
            .any(|(a, m)| *a == addr(ALICE) && m.status().map(u16::from) == Some(202)),
        "{out:?}"
    );
    let kept = run.app().kept.borrow().len();
    (kept, failure_notices(&out))
}

// covers: ext-dr.10/copy_unregistered, ext-dr.6/keep_for_later
#[test]
fn a_copy_with_no_route_to_a_member_fails_480_and_is_kept() {
    assert_eq!(message_to_offline_bob(AS_WRITTEN), (1, 0));
}

#[test]
fn with_the_edited_status_the_unroutable_copy_is_not_kept_but_reported() {
    // The edit fails the copy 404, which ext-dr.6 (480 only) does not keep: ext-dr.2 reports.
    assert_eq!(message_to_offline_bob(EDITED), (0, 1));
}

/// A copy kept for bob expires: how many copies are kept afterwards, and how many failure
/// notifications alice gets.
fn kept_copy_expires(spec: Spec) -> (usize, usize) {
    let mut run = endpoint(spec);
    run.app().kept.borrow_mut().push(OfflineCopy {
        recipient: "sip:bob@example.com".into(),
        source: addr(ALICE),
        request: crlf(&alice_asks_for_failures()).into_bytes().into(),
    });
    run.app().expire.set(true);
    let out = run.input(Input::Timeout);
    let kept = run.app().kept.borrow().len();
    (kept, failure_notices(&out))
}

// covers: ext-dr.11/copy_expired
#[test]
fn a_kept_copy_that_expired_fails_as_the_spec_says_and_is_reported() {
    assert_eq!(kept_copy_expires(AS_WRITTEN), (0, 1));
}

#[test]
fn with_the_edited_rule_an_expired_copy_is_kept_again() {
    assert_eq!(kept_copy_expires(EDITED), (1, 0));
}

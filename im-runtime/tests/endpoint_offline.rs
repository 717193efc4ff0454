//! Offline members (extension ext-dr.6), sans-IO: the real `Endpoint` running the
//! machines generated from `specs/rfc5365_message_exploder.imspec` (with
//! `ext_delivery_reports.imspec`), driven through [`Core`] on a virtual clock, with an
//! application that keeps copies in memory. What the runtime must do with the
//! `Application` offline hooks:
//! - a page-mode copy for a member of the domain with no route is handed to
//!   `offline_store` (the spec's `store copy`) and nothing is sent to it nor notified;
//! - a REGISTER of that member makes the endpoint send the kept copy to the new contact,
//!   and its 200 makes the sender's `delivered` IMDN;
//! - a member the application cannot keep more for (`offline_storable` false) is a failed
//!   copy at once, and so is a copy `offline_store` refuses after all;
//! - an expired copy (`offline_expired`) is a failed copy; the endpoint wakes for
//!   `offline_next_expiry`.

// The group application over generated machines, shared with the spec-edit tests.
#[path = "common/group.rs"]
mod group;

use group::{ALICE, GROUP, Group, Run, Sent, Spec, addr, response};
use im_runtime::endpoint::EndpointConfig;
use im_runtime::machine::Method;
use im_runtime::proto::sip::Message;
use im_runtime::transport::{Core, Input};
use std::time::Duration;

#[allow(unreachable_pub)]
mod generated {
    im_macros::imspec!("specs/rfc5365_message_exploder.imspec");
}

const BOB_CONTACT: &str = "127.0.0.1:5080";

/// The exploder as written, a registrar the only route to bob, copies kept while storable.
fn endpoint(f: impl FnOnce(&mut EndpointConfig)) -> Run {
    let spec = Spec {
        initial: generated::initial,
        by_clause: generated::by_clause,
        invitee_leg: generated::invitee_leg,
        methods: generated::methods,
    };
    Group::of(spec).registrar().config(f).run()
}

fn crlf(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// Alice's MESSAGE to the group, asking for both delivery notifications.
fn alice_message(id: &str) -> String {
    let cpim = crlf(&format!(
        "From: <sip:alice@example.com>\nTo: <{GROUP}>\nNS: imdn <urn:ietf:params:imdn>\n\
         imdn.Message-ID: {id}\nDateTime: 2026-12-06T04:00:00Z\n\
         imdn.Disposition-Notification: positive-delivery, negative-delivery\n\n\
         Content-Type: text/plain\n\nhello\n"
    ));
    crlf(&format!(
        "MESSAGE {GROUP} SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bK{id}\n\
         Max-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a{id}\nTo: <{GROUP}>\n\
         Call-ID: {id}@alice\nCSeq: 1 MESSAGE\nContent-Type: message/cpim\n\
         Content-Length: {}\n\n",
        cpim.len()
    )) + &cpim
}

fn bob_register() -> String {
    crlf(&format!(
        "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP {BOB_CONTACT};branch=z9hG4bKreg1\n\
         Max-Forwards: 70\nFrom: <sip:bob@example.com>;tag=b1\nTo: <sip:bob@example.com>\n\
         Call-ID: reg1@bob\nCSeq: 1 REGISTER\nContact: <sip:bob@{BOB_CONTACT}>\n\
         Expires: 300\nContent-Length: 0\n\n"
    ))
}

fn requests_to(out: &Sent, to: &str) -> Vec<Message> {
    out.iter()
        .filter(|(a, m)| *a == addr(to) && m.is_request())
        .map(|(_, m)| m.clone())
        .collect()
}

fn status(out: &Sent, to: &str) -> Option<u16> {
    out.iter()
        .filter(|(a, m)| *a == addr(to) && !m.is_request())
        .find_map(|(_, m)| m.status().map(u16::from))
}

fn imdn_status(m: &Message) -> &'static str {
    let body = String::from_utf8_lossy(m.body_bytes()).into_owned();
    assert!(
        body.contains("<recipient-uri>sip:bob@example.com</recipient-uri>"),
        "{body}"
    );
    if body.contains("<delivered/>") {
        "delivered"
    } else if body.contains("<failed/>") {
        "failed"
    } else {
        "?"
    }
}

#[test]
fn a_kept_copy_goes_out_when_the_member_registers_and_the_sender_hears_delivered() {
    let mut net = endpoint(|_| {});
    let out = net.send(ALICE, &alice_message("m1"));
    assert_eq!(status(&out, ALICE), Some(202));
    assert!(requests_to(&out, ALICE).is_empty(), "no notification yet");
    let kept = net.ep.app().kept.borrow().clone();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].recipient, "sip:bob@example.com");
    assert_eq!(kept[0].source, addr(ALICE));
    assert!(Message::parse(kept[0].request.clone()).is_ok());

    let out = net.send(BOB_CONTACT, &bob_register());
    assert_eq!(status(&out, BOB_CONTACT), Some(200));
    let copies = requests_to(&out, BOB_CONTACT);
    assert_eq!(copies.len(), 1, "{out:?}");
    let copy = &copies[0];
    assert_eq!(copy.method(), Some(&Method::Message));
    assert_eq!(copy.request_uri_str(), Some("sip:bob@example.com"));
    assert!(String::from_utf8_lossy(copy.body_bytes()).contains("imdn.Message-ID: m1"));
    assert!(net.ep.app().kept.borrow().is_empty());

    let out = net.send(BOB_CONTACT, &response(copy, "200 OK", Some("ok"), ""));
    let imdns = requests_to(&out, ALICE);
    assert_eq!(imdns.len(), 1, "{out:?}");
    assert_eq!(imdn_status(&imdns[0]), "delivered");
}

#[test]
fn a_member_over_its_bound_or_a_refused_store_is_a_failed_copy() {
    // Not storable: failed at once, nothing kept.
    let mut net = endpoint(|_| {});
    net.app().storable.set(false);
    let out = net.send(ALICE, &alice_message("m2"));
    assert_eq!(status(&out, ALICE), Some(202));
    let imdns = requests_to(&out, ALICE);
    assert_eq!(imdns.len(), 1, "{out:?}");
    assert_eq!(imdn_status(&imdns[0]), "failed");
    assert!(net.ep.app().kept.borrow().is_empty());

    // Storable, but the store refuses it: the spec runs again, and the copy fails.
    let mut net = endpoint(|_| {});
    net.app().refuse_store.set(true);
    let out = net.send(ALICE, &alice_message("m3"));
    let imdns = requests_to(&out, ALICE);
    assert_eq!(imdns.len(), 1, "{out:?}");
    assert_eq!(imdn_status(&imdns[0]), "failed");
}

#[test]
fn an_expired_copy_is_a_failed_copy_and_the_endpoint_wakes_for_it() {
    let mut net = endpoint(|_| {});
    let _ = net.send(ALICE, &alice_message("m4"));
    assert_eq!(net.ep.app().kept.borrow().len(), 1);
    let due = net.now + Duration::from_secs(3600);
    net.ep.app().next_expiry.set(Some(due));
    assert!(net.ep.poll_timeout().is_some_and(|t| t <= due));
    net.ep.app().expire.set(true);
    net.now = due;
    net.ep.handle_input(net.now, Input::Timeout);
    let out = net.drain();
    let imdns = requests_to(&out, ALICE);
    assert_eq!(imdns.len(), 1, "{out:?}");
    assert_eq!(imdn_status(&imdns[0]), "failed");
    // Bob registering now gets nothing.
    let out = net.send(BOB_CONTACT, &bob_register());
    assert!(requests_to(&out, BOB_CONTACT).is_empty(), "{out:?}");
}

/// With several workers, what a peer sends about a kept copy reaches the worker that holds
/// its session: the copy's Call-ID steers there, and so does its From tag, which is the
/// session's tag (a SUBSCRIBE naming it as To tag is steered by the tag,
/// `steer::conference_key`). Eight copies, so a tag drawn at random would miss (1 in 256 to
/// pass by chance).
#[test]
fn a_kept_copys_call_id_and_tag_steer_to_the_worker_that_holds_it() {
    use im_runtime::steer::{Shard, steer, steer_sip};
    let mut net = endpoint(|cfg| cfg.shard = Shard { index: 1, count: 2 });
    for i in 0..8 {
        let out = net.send(ALICE, &alice_message(&format!("s{i}")));
        assert_eq!(status(&out, ALICE), Some(202));
    }
    assert_eq!(net.ep.app().kept.borrow().len(), 8);
    let out = net.send(BOB_CONTACT, &bob_register());
    let copies = requests_to(&out, BOB_CONTACT);
    assert_eq!(copies.len(), 8, "{out:?}");
    for c in &copies {
        let call_id = c.call_id().unwrap_or_default().to_string();
        let tag = c
            .from()
            .and_then(|f| f.tag())
            .unwrap_or_default()
            .to_string();
        assert_eq!(steer(call_id.as_bytes(), 2), 1, "{call_id}");
        assert_eq!(steer(tag.as_bytes(), 2), 1, "{tag}");
        let subscribe = format!(
            "SUBSCRIBE sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {BOB_CONTACT};branch=z9hG4bKs\r\nFrom: <sip:bob@example.com>;tag=b\r\nTo: <sip:alice@example.com>;tag={tag}\r\nCall-ID: {call_id}\r\nCSeq: 1 SUBSCRIBE\r\nEvent: conference\r\nContent-Length: 0\r\n\r\n"
        );
        assert_eq!(steer_sip(subscribe.as_bytes(), 2), 1);
    }
}

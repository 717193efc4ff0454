//! Whether a copy asks its invitee for a success REPORT is the spec's (7.9.1.4
//! `answered_confirming`, `message_confirming`: `deliver { success-report yes }` when the
//! originator asked for one, `message.success_report`). The sans-IO endpoint runs the machines
//! of `specs/` as written and of the copy `edits.toml` changed (every copy asks), and on the
//! wire the copy's `Success-Report` header follows; a copy that asked is settled by the
//! invitee's success REPORT (RFC 4975 §7.1.2), not by the 200 to its last chunk, and fails
//! with 408 when none comes in time. Each copy's outcome is heard once.

// im-runtime's virtual-time endpoint harness (alice's side of a session, bob's answers).
#[path = "../../../im-runtime/tests/common/mod.rs"]
mod rt;

mod common;

use bytes::Bytes;
use common::{App, edited_app, original_app};
use im_runtime::machine::Method;
use im_runtime::proto::msrp;
use im_runtime::transport::{ConnId, Input, Output};
use rt::harness::*;
use rt::{addr, invite, invitee_sdp, response_to, status_of};
use std::time::Duration;

/// A pager session of `app` with bob invited and alice's 200 ACKed: the 200 and bob's INVITE.
fn started(
    sim: &mut Sim<App>,
) -> (
    im_runtime::proto::sip::Message,
    im_runtime::proto::sip::Message,
) {
    let (ok, mut invites) = started_with(sim, &["sip:bob@example.com"]);
    (ok, invites.remove(0))
}

/// The same with `recipients` invited (every invitee is reached at bob's address): the 200
/// and the INVITEs.
fn started_with(
    sim: &mut Sim<App>,
    recipients: &[&str],
) -> (
    im_runtime::proto::sip::Message,
    Vec<im_runtime::proto::sip::Message>,
) {
    let out = sim.udp(
        ALICE,
        &invite("UDP", ALICE, "sr1", "z9hG4bKsr1", recipients),
    );
    let answers = udp_to(&out, ALICE);
    let ok = answers
        .iter()
        .find(|m| status_of(m) == 200)
        .cloned()
        .unwrap_or_else(|| panic!("the session is answered: {answers:?}"));
    ack(sim, &ok);
    let invites = requests(&udp_to(&out, BOB), Method::Invite);
    assert_eq!(invites.len(), recipients.len(), "one INVITE per invitee");
    (ok, invites)
}

/// Alice connects and sends her one message, `Success-Report` as given.
fn alice_sends(
    sim: &mut Sim<App>,
    ok: &im_runtime::proto::sip::Message,
    success_report: &str,
) -> ConnId {
    let (alice_conn, our_path) = alice_connects(sim, ok);
    let out = sim.input(Input::StreamData {
        conn: alice_conn,
        data: Bytes::from(format!(
            "MSRP t1 SEND\r\nTo-Path: {our_path}\r\nFrom-Path: msrp://{ALICE_MSRP}/alicesess;tcp\r\nMessage-ID: m1\r\nByte-Range: 1-2/2\r\nSuccess-Report: {success_report}\r\nContent-Type: text/plain\r\n\r\nhi\r\n-------t1$\r\n"
        )),
    });
    let resp = sent_on(&out, alice_conn).map(|d| String::from_utf8_lossy(&d).to_string());
    assert!(
        resp.unwrap_or_default().starts_with("MSRP t1 200"),
        "the SEND is accepted"
    );
    alice_conn
}

/// Bob accepts `inv` (listening at 127.0.0.2:7002) and the server connects to him: the
/// connection, and the copy's one chunk once bob's side is open.
fn bob_accepts(sim: &mut Sim<App>, inv: &im_runtime::proto::sip::Message) -> (ConnId, Vec<Output>) {
    let sdp = invitee_sdp("127.0.0.2:7002", "bobs");
    let out = sim.udp(BOB, &response_to(inv, 200, "b1", Some(&sdp)));
    let conn = connect_of(&out).expect("the server connects to bob").0;
    let out = sim.msrp_open(conn, "127.0.0.1:40000", addr("127.0.0.2:7002"));
    (conn, out)
}

/// Bob's chunk: the copy as sent.
fn copy_of(out: &[Output], bob: ConnId) -> msrp::Frame {
    let chunk = sent_on(out, bob).expect("the copy goes to bob");
    msrp::decode_one(&chunk).expect("an MSRP frame")
}

/// Bob sends `f` on his connection; what the server sends then.
fn bob_says(sim: &mut Sim<App>, bob: ConnId, f: &msrp::Frame) -> Vec<Output> {
    sim.input(Input::StreamData {
        conn: bob,
        data: Bytes::from(msrp::encode_to_vec(f).expect("encodes")),
    })
}

/// Bob's 200 to the copy's chunk.
fn bob_200(sim: &mut Sim<App>, bob: ConnId, copy: &msrp::Frame) -> Vec<Output> {
    let r = msrp::response_to(copy, msrp::StatusCode(200), None).expect("a response");
    bob_says(sim, bob, &r)
}

/// Bob's success REPORT for the whole copy.
fn bob_reports(sim: &mut Sim<App>, bob: ConnId, copy: &msrp::Frame) -> Vec<Output> {
    let tid = msrp::TransactionId::from_random(b"bobreport1");
    let r = msrp::success_report(copy, tid, 2).expect("a success REPORT");
    bob_says(sim, bob, &r)
}

/// The REPORTs the server sent alice on `conn`, as (status code) of each.
fn reports_to(out: &[Output], conn: ConnId) -> Vec<u16> {
    out.iter()
        .filter_map(|o| match o {
            Output::StreamSend { conn: c, data } if *c == conn => msrp::decode_one(data).ok(),
            _ => None,
        })
        .filter(|f| matches!(f.kind, msrp::FrameKind::Request(msrp::Method::Report)))
        .map(|f| f.status.map_or(0, |s| s.code.0))
        .collect()
}

/// How many BYEs the server has sent alice: the session ends (6.1.3.3.2 `finish`, `finish_with_failure`) once bob's copy is settled.
fn byes_to_alice(sim: &Sim<App>) -> usize {
    requests(&udp_to(&sim.sent, ALICE), Method::Bye).len()
}

// covers: 7.9.1.4/answered_confirming, 7.9.1.4/copy_delivered
/// Alice asked for a success REPORT and her message is held when bob answers: his copy asks
/// for one too, his 200 settles nothing, his REPORT delivers it, and only then is alice told.
#[test]
fn a_copy_of_a_message_asking_for_a_success_report_is_delivered_on_the_invitees_report() {
    let mut sim = Sim::serving(original_app(false), |_| {});
    let (ok, inv) = started(&mut sim);
    let alice = alice_sends(&mut sim, &ok, "yes");
    let (bob, out) = bob_accepts(&mut sim, &inv);
    let copy = copy_of(&out, bob);
    assert_eq!(copy.success_report, Some(msrp::SuccessReport::Yes));
    assert_eq!(copy.failure_report, Some(msrp::FailureReport::Yes));
    let out = bob_200(&mut sim, bob, &copy);
    assert!(
        reports_to(&out, alice).is_empty(),
        "the 200 is hop by hop: alice waits"
    );
    assert_eq!(sim.ep.stats().delivered, 0);
    assert_eq!(byes_to_alice(&sim), 0);
    let out = bob_reports(&mut sim, bob, &copy);
    assert_eq!(
        reports_to(&out, alice),
        vec![200],
        "alice's success REPORT after bob's"
    );
    assert_eq!(sim.ep.stats().delivered, 1);
    assert_eq!(byes_to_alice(&sim), 1);
    // A second REPORT is not heard again.
    bob_reports(&mut sim, bob, &copy);
    assert_eq!(sim.ep.stats().delivered, 1);
}

// covers: 7.9.1.4/message_confirming
/// Bob answers before alice's message comes: when it comes asking for a success REPORT, his
/// leg asks again with it (its copy had not gone), and the copy carries `Success-Report: yes`.
#[test]
fn a_leg_answered_before_the_message_asks_for_the_report_once_the_message_says_so() {
    let mut sim = Sim::serving(original_app(false), |_| {});
    let (ok, inv) = started(&mut sim);
    let (bob, out) = bob_accepts(&mut sim, &inv);
    assert!(sent_on(&out, bob).is_none(), "no message yet");
    alice_sends(&mut sim, &ok, "yes");
    let copy = copy_of(&sim.sent, bob);
    assert_eq!(copy.success_report, Some(msrp::SuccessReport::Yes));
    bob_200(&mut sim, bob, &copy);
    assert_eq!(byes_to_alice(&sim), 0, "settled by the REPORT only");
    bob_reports(&mut sim, bob, &copy);
    assert_eq!(byes_to_alice(&sim), 1);
}

// covers: 7.9.1.4/copy_refused
/// No REPORT within `msrp_report_wait`: the leg hears `msrp failed` 408 and alice gets the
/// failure REPORT (6.1.3.3.2 `finish_with_failure`); a REPORT after that changes nothing.
#[test]
fn no_success_report_in_time_fails_the_copy_with_408() {
    let mut sim = Sim::serving(original_app(false), |c| {
        c.msrp_report_wait = Duration::from_secs(10);
    });
    let (ok, inv) = started(&mut sim);
    let alice = alice_sends(&mut sim, &ok, "yes");
    let (bob, out) = bob_accepts(&mut sim, &inv);
    let copy = copy_of(&out, bob);
    bob_200(&mut sim, bob, &copy);
    let out = sim.advance(Duration::from_secs(9));
    assert!(reports_to(&out, alice).is_empty(), "still waiting at 9 s");
    let out = sim.advance(Duration::from_secs(2));
    assert_eq!(
        reports_to(&out, alice),
        vec![408],
        "the report wait is configuration"
    );
    assert_eq!(byes_to_alice(&sim), 1);
    let out = bob_reports(&mut sim, bob, &copy);
    assert!(reports_to(&out, alice).is_empty());
    assert_eq!(
        sim.ep.stats().delivered,
        0,
        "a REPORT after the outcome is not heard"
    );
}

// covers: 7.9.1.4/answered
/// The spec as written: alice asked for no success REPORT, so neither does the copy and bob's
/// 200 settles it; a success REPORT he sends anyway is not heard a second time. The edited
/// spec asks for one anyway: the header changes on the wire, and the 200 no longer settles
/// the copy, bob's REPORT does.
#[test]
fn the_edit_makes_every_copy_ask_for_a_success_report_and_wait_for_it() {
    // As written.
    let mut sim = Sim::serving(original_app(false), |_| {});
    let (ok, inv) = started(&mut sim);
    alice_sends(&mut sim, &ok, "no");
    let (bob, out) = bob_accepts(&mut sim, &inv);
    let copy = copy_of(&out, bob);
    assert_eq!(copy.success_report, Some(msrp::SuccessReport::No));
    bob_200(&mut sim, bob, &copy);
    assert_eq!(sim.ep.stats().delivered, 1);
    assert_eq!(byes_to_alice(&sim), 1, "the 200 settled the copy");
    bob_reports(&mut sim, bob, &copy);
    assert_eq!(sim.ep.stats().delivered, 1, "heard once");

    // Edited.
    let mut sim = Sim::serving(edited_app(false), |_| {});
    let (ok, inv) = started(&mut sim);
    let alice = alice_sends(&mut sim, &ok, "no");
    let (bob, out) = bob_accepts(&mut sim, &inv);
    let copy = copy_of(&out, bob);
    assert_eq!(
        copy.success_report,
        Some(msrp::SuccessReport::Yes),
        "the edit's header"
    );
    bob_200(&mut sim, bob, &copy);
    assert_eq!(sim.ep.stats().delivered, 0);
    assert_eq!(byes_to_alice(&sim), 0, "the 200 no longer settles it");
    let out = bob_reports(&mut sim, bob, &copy);
    assert_eq!(sim.ep.stats().delivered, 1);
    assert_eq!(byes_to_alice(&sim), 1, "bob's REPORT did");
    assert!(
        reports_to(&out, alice).is_empty(),
        "alice asked for no success REPORT"
    );
}

/// A success REPORT after the 200 that settled a copy (one the copy did not ask for) is not
/// heard a second time, while the session is still up (the other invitee has not answered).
#[test]
fn a_report_after_the_200_is_not_heard_again() {
    let mut sim = Sim::serving(original_app(false), |_| {});
    let (ok, invites) = started_with(&mut sim, &["sip:bob@example.com", "sip:carol@example.com"]);
    alice_sends(&mut sim, &ok, "no");
    let (bob, out) = bob_accepts(&mut sim, &invites[0]);
    let copy = copy_of(&out, bob);
    assert_eq!(copy.success_report, Some(msrp::SuccessReport::No));
    bob_200(&mut sim, bob, &copy);
    assert_eq!(sim.ep.stats().delivered, 1);
    assert_eq!(byes_to_alice(&sim), 0, "carol has not answered");
    bob_reports(&mut sim, bob, &copy);
    bob_reports(&mut sim, bob, &copy);
    assert_eq!(sim.ep.stats().delivered, 1, "one copy, delivered once");
}

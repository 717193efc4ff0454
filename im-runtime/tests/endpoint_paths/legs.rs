//! The invitee legs' paths (split from `main.rs`): the originator's BYE or CANCEL before the
//! invitees answer, an invitee's BYE, Timer B, a leg's spec timer, CANCEL on ringing, a 2xx
//! crossing a CANCEL (the leg's own or the session's), provisional and non-2xx answers, and
//! an MSRP connect failure to an invitee.

use super::*;

#[test]
fn originator_bye_before_the_invitees_answer_cancels_and_byes_the_legs() {
    let mut sim = Sim::new(Knobs::default());
    let (ok, invites) = started(&mut sim, "obye", &[BOB_URI, CAROL_URI]);
    // Bob rings, carol accepts; then alice hangs up before sending anything.
    bob_rings_carol_accepts(&mut sim, &invites);
    let out = sim.udp(ALICE, &alice_bye(&ok));
    assert_eq!(statuses(&udp_to(&out, ALICE)), vec![200], "BYE answered");
    let cancels = requests(&udp_to(&out, BOB), Method::Cancel);
    assert_eq!(cancels.len(), 1, "bob's pending INVITE is cancelled");
    let byes = requests(&udp_to(&out, CAROL), Method::Bye);
    assert_eq!(byes.len(), 1, "carol's dialog is ended");
    bob_cancelled(&mut sim, &cancels[0], &invites[0]);
    sim.udp(CAROL, &response_to(&byes[0], 200, "", None));
    assert_eq!(
        requests(&udp_to(&sim.sent, ALICE), Method::Bye).len(),
        0,
        "no BYE back to alice, who hung up"
    );
    sim.still_serving("originator BYE");
    settle(&mut sim);
}

/// What becomes of the legs on the originator's BYE is the machine's decision: a machine that
/// answers the BYE without `cancel legs`/`bye legs` leaves them up (issue 12: the runtime
/// used to CANCEL and BYE them on its own).
#[test]
fn originator_bye_leaves_the_legs_up_when_the_machine_says_nothing_of_them() {
    let mut sim = Sim::tuned(|k| k.keep_legs_on_bye = true);
    let (ok, invites) = started(&mut sim, "obye-keep", &[BOB_URI, CAROL_URI]);
    bob_rings_carol_accepts(&mut sim, &invites);
    let out = sim.udp(ALICE, &alice_bye(&ok));
    assert_eq!(statuses(&udp_to(&out, ALICE)), vec![200], "BYE answered");
    assert!(requests(&udp_to(&out, BOB), Method::Cancel).is_empty());
    assert!(requests(&udp_to(&out, CAROL), Method::Bye).is_empty());
    assert_eq!(sim.ep.live_sessions(), 1, "the legs keep the session");
}

#[test]
fn invitee_bye_ends_its_leg_and_the_session_settles() {
    let mut sim = Sim::new(Knobs::default());
    let (_, invites) = started(&mut sim, "ibye", &[BOB_URI]);
    accepts(&mut sim, BOB, &invites[0], "b1", ("127.0.0.2:7002", "bobs"));
    // Bob hangs up in his dialog (To is the server's tag, From his).
    let leg_tag = invites[0].from().unwrap().tag().unwrap().to_string();
    let bye = crlf(&format!(
        "BYE sip:conf@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bKbobbye\nMax-Forwards: 70\nFrom: <sip:bob@127.0.0.2>;tag=b1\nTo: {}\nCall-ID: {}\nCSeq: 5 BYE\nContent-Length: 0\n\n",
        invites[0].header(HeaderName::From).unwrap(),
        invites[0].call_id().unwrap()
    ));
    assert!(bye.contains(&leg_tag));
    let out = sim.udp(BOB, &bye);
    assert_eq!(statuses(&udp_to(&out, BOB)), vec![200]);
    // With every leg over, the dispatcher ends alice's dialog.
    let byes = requests(&udp_to(&sim.sent, ALICE), Method::Bye);
    assert_eq!(byes.len(), 1, "the session ends with BYE to alice");
    answer_byes(&mut sim, ALICE);
    // A BYE repeated after the dialog is gone: 481.
    let out = sim.udp(BOB, &bye.replace("z9hG4bKbobbye", "z9hG4bKbobbye2"));
    assert_eq!(statuses(&udp_to(&out, BOB)), vec![481]);
    settle(&mut sim);
}

/// The dialog index is keyed by our tag alone (`endpoint/ids.rs` `tag_key`): a request
/// with our tag and another Call-ID is in no dialog of ours (RFC 3261 §12) and gets 481,
/// on the originator's side and on a leg's, and the dialogs stay up.
#[test]
fn our_tag_with_another_call_id_is_in_no_dialog() {
    let mut sim = Sim::new(Knobs::default());
    let (ok, invites) = started(&mut sim, "tagcid", &[BOB_URI]);
    accepts(&mut sim, BOB, &invites[0], "b1", ("127.0.0.2:7002", "bobs"));
    let call_id = invites[0].call_id().unwrap().to_string();
    let bye = crlf(&format!(
        "BYE sip:conf@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bKcid1\nMax-Forwards: 70\nFrom: <sip:bob@127.0.0.2>;tag=b1\nTo: {}\nCall-ID: other-{call_id}\nCSeq: 5 BYE\nContent-Length: 0\n\n",
        invites[0].header(HeaderName::From).unwrap(),
    ));
    let out = sim.udp(BOB, &bye);
    assert_eq!(
        statuses(&udp_to(&out, BOB)),
        vec![481],
        "the leg's tag, another Call-ID"
    );
    let alice = alice_bye(&ok);
    let cid = ok.call_id().unwrap();
    let out = sim.udp(
        ALICE,
        &alice
            .replace(&format!("Call-ID: {cid}"), &format!("Call-ID: other-{cid}"))
            .replace("z9hG4bK", "z9hG4bKcid2"),
    );
    assert_eq!(
        statuses(&udp_to(&out, ALICE)),
        vec![481],
        "alice's tag, another Call-ID"
    );
    assert_eq!(sim.ep.live_sessions(), 1, "both dialogs are still up");
    // The right Call-ID (in a new transaction) still reaches the leg.
    let out = sim.udp(
        BOB,
        &bye.replace(&format!("other-{call_id}"), &call_id)
            .replace("z9hG4bKcid1", "z9hG4bKcid3"),
    );
    assert_eq!(statuses(&udp_to(&out, BOB)), vec![200]);
}

#[test]
fn invitee_never_answering_fails_its_leg_by_timer_b() {
    let mut sim = Sim::new(Knobs::default());
    let (ok, invites) = started(&mut sim, "tb", &[BOB_URI]);
    alice_sends(&mut sim, &ok, "hello");
    assert_eq!(invites.len(), 1);
    sim.advance(Duration::from_secs(31));
    assert!(requests(&udp_to(&sim.sent, ALICE), Method::Bye).is_empty());
    sim.advance(Duration::from_secs(2));
    let retrans = udp_to(&sim.sent, BOB)
        .iter()
        .filter(|m| m.method() == Some(&Method::Invite))
        .count();
    assert!(
        retrans >= 6,
        "INVITE retransmitted (Timer A), got {retrans}"
    );
    ends_with_bye_to_alice(&mut sim, "Timer B failed the leg; the session ends");
}

#[test]
fn a_leg_spec_timer_cancels_a_ringing_invitee() {
    let mut sim = Sim::tuned(|k| k.leg_timer_cancel = true);
    let (_, invites) = started(&mut sim, "lt", &[BOB_URI]);
    sim.udp(BOB, &response_to(&invites[0], 180, "b1", None));
    let out = sim.advance(LEG_TIMEOUT - Duration::from_millis(100));
    assert!(requests(&udp_to(&out, BOB), Method::Cancel).is_empty());
    let out = sim.advance(Duration::from_millis(200));
    let cancels = requests(&udp_to(&out, BOB), Method::Cancel);
    assert_eq!(cancels.len(), 1, "the leg's timer cancels the INVITE");
    bob_cancelled(&mut sim, &cancels[0], &invites[0]);
    ends_with_bye_to_alice(&mut sim, "the leg's CANCEL ends the session");
}

#[test]
fn a_leg_cancels_on_ringing_and_a_487_fails_it() {
    let mut sim = Sim::tuned(|k| k.cancel_on_ringing = true);
    let (_, invites) = started(&mut sim, "cr", &[BOB_URI, CAROL_URI]);
    let out = sim.udp(BOB, &response_to(&invites[0], 180, "b1", None));
    let cancels = requests(&udp_to(&out, BOB), Method::Cancel);
    assert_eq!(cancels.len(), 1, "CANCEL sent on 180");
    assert_eq!(
        cancels[0].top_via().unwrap().branch(),
        invites[0].top_via().unwrap().branch(),
        "the CANCEL matches the INVITE's branch"
    );
    bob_cancelled(&mut sim, &cancels[0], &invites[0]);
    // Carol declines.
    sim.udp(CAROL, &response_to(&invites[1], 603, "c1", None));
    assert_eq!(requests(&udp_to(&sim.sent, CAROL), Method::Ack).len(), 1);
    ends_with_bye_to_alice(&mut sim, "both legs failed");
}

/// A 2xx that crosses a leg's own CANCEL reaches the leg's machine (7.9.1.4
/// `answered_after_cancel`), which says what becomes of the dialog: BYE it, or (a spec without
/// that rule) keep it. The runtime used to BYE it before the machine ran.
#[test]
fn a_2xx_crossing_the_legs_own_cancel_is_the_leg_machines_to_end() {
    for keep in [false, true] {
        let mut sim = Sim::tuned(|k| {
            k.cancel_on_ringing = true;
            k.keep_crossed_2xx = keep;
        });
        let (_, invites) = started(&mut sim, "cross", &[BOB_URI]);
        let out = sim.udp(BOB, &response_to(&invites[0], 180, "b1", None));
        let cancels = requests(&udp_to(&out, BOB), Method::Cancel);
        sim.udp(BOB, &response_to(&cancels[0], 200, "b1", None));
        let out = accepts(&mut sim, BOB, &invites[0], "b1", ("127.0.0.2:7002", "bs"));
        assert_eq!(
            requests(&udp_to(&out, BOB), Method::Ack).len(),
            1,
            "2xx ACKed"
        );
        let byes = requests(&udp_to(&out, BOB), Method::Bye).len();
        assert_eq!(
            byes,
            usize::from(!keep),
            "keep={keep}: BYE only when the machine says"
        );
    }
}

/// The same for a 2xx that crosses the CANCEL of the session's `cancel legs` (the originator
/// hung up first): the leg machine heard `leg cancelled`, and its rule says whether the
/// dialog is BYE'd (7.9.1.4 `answered_after_cancel`). The runtime used to BYE it itself.
#[test]
fn a_2xx_crossing_the_sessions_cancel_is_the_leg_machines_to_end() {
    for keep in [false, true] {
        let mut sim = Sim::tuned(|k| k.keep_crossed_2xx = keep);
        let (ok, invites) = started(&mut sim, "scross", &[BOB_URI]);
        sim.udp(BOB, &response_to(&invites[0], 180, "b1", None));
        let out = sim.udp(ALICE, &alice_bye(&ok));
        let cancels = requests(&udp_to(&out, BOB), Method::Cancel);
        assert_eq!(cancels.len(), 1, "the session cancels bob's leg");
        sim.udp(BOB, &response_to(&cancels[0], 200, "b1", None));
        let out = accepts(&mut sim, BOB, &invites[0], "b1", ("127.0.0.2:7002", "bs"));
        assert_eq!(
            requests(&udp_to(&out, BOB), Method::Ack).len(),
            1,
            "2xx ACKed (RFC 3261 §13.2.2.4)"
        );
        assert_eq!(
            requests(&udp_to(&out, BOB), Method::Bye).len(),
            usize::from(!keep),
            "keep={keep}: BYE only when the leg machine says"
        );
    }
}

#[test]
fn originator_cancel_before_the_answer_gets_487_and_ends_the_session() {
    let mut sim = Sim::tuned(|k| k.answer_late = true);
    let inv = invite("UDP", ALICE, "ocancel", "z9hG4bKoc", &[BOB_URI]);
    let out = sim.udp(ALICE, &inv);
    assert_eq!(statuses(&udp_to(&out, ALICE)), vec![100]);
    assert_eq!(sim.ep.live_sessions(), 1);
    let cancel = simple_request(
        "CANCEL",
        "UDP",
        ALICE,
        "ocancel",
        "z9hG4bKoc",
        "<sip:conference-factory@example.com>",
        1,
        "",
    );
    let out = sim.udp(ALICE, &cancel);
    let r = udp_to(&out, ALICE);
    let mut got = statuses(&r);
    got.sort();
    assert_eq!(
        got,
        vec![200, 487],
        "200 for the CANCEL, 487 for the INVITE"
    );
    let r487 = r.iter().find(|m| status_of(m) == 487).unwrap();
    assert!(r487.to().unwrap().tag().is_some());
    // The 487 is the machine's (counted under its rule), not a runtime default.
    let answered = sim.ep.live_stats().snapshot().responses;
    assert!(
        answered
            .iter()
            .any(|(k, _)| k.status == 487 && !k.rule.is_empty()),
        "{answered:?}"
    );
    // The ACK for the 487 is absorbed by the transaction: no more 487s.
    sim.udp(ALICE, &ack_for(r487, "UDP", ALICE, "z9hG4bKoc"));
    sim.sent.clear();
    sim.advance(ANSWER_DELAY + Duration::from_secs(40));
    assert!(
        udp_to(&sim.sent, ALICE).is_empty(),
        "nothing after the ACK: {:?}",
        statuses(&udp_to(&sim.sent, ALICE))
    );
    assert!(udp_to(&sim.sent, BOB).is_empty(), "nobody is invited");
    assert_eq!(sim.ep.live_sessions(), 0);
    sim.still_serving("originator CANCEL");
}

/// A machine's `respond 180` does not use up the answer: its `respond 200` after it still goes.
#[test]
fn a_provisional_response_leaves_the_final_one_to_the_machine() {
    let mut sim = Sim::tuned(|k| k.ring_first = true);
    let out = sim.udp(
        ALICE,
        &invite("UDP", ALICE, "ring", "z9hG4bKring", &[BOB_URI]),
    );
    let got = statuses(&udp_to(&out, ALICE));
    assert_eq!(got, vec![100, 180, 200], "180 then the 200");
}

#[test]
fn non_2xx_final_answers_stop_on_their_ack() {
    let mut sim = Sim::new(Knobs::default());
    // No recipient: the dispatcher answers 404.
    let inv = invite("UDP", ALICE, "n404", "z9hG4bKn404", &[]);
    let out = sim.udp(ALICE, &inv);
    let r = udp_to(&out, ALICE);
    assert_eq!(statuses(&r), vec![100, 404]);
    sim.udp(ALICE, &ack_for(&r[1], "UDP", ALICE, "z9hG4bKn404"));
    sim.sent.clear();
    sim.advance(Duration::from_secs(40));
    assert!(
        udp_to(&sim.sent, ALICE).is_empty(),
        "no 404 retransmission after the ACK"
    );
    assert_eq!(sim.ep.live_sessions(), 0);
}

#[test]
fn msrp_connect_failure_to_an_invitee_fails_its_delivery() {
    let mut sim = Sim::new(Knobs::default());
    let (ok, invites) = started(&mut sim, "cf", &[BOB_URI]);
    // Alice connects and sends her message.
    let alice_conn = alice_sends(&mut sim, &ok, "hello");
    let bob_conn = bob_accepts(&mut sim, &invites[0]);
    sim.input(Input::ConnectFailed { conn: bob_conn });
    // Bob's leg ends (BYE), the originator gets the outcome and her dialog ends.
    assert_eq!(requests(&udp_to(&sim.sent, BOB), Method::Bye).len(), 1);
    assert_eq!(requests(&udp_to(&sim.sent, ALICE), Method::Bye).len(), 1);
    answer_byes(&mut sim, BOB);
    answer_byes(&mut sim, ALICE);
    assert_eq!(sim.ep.stats().delivered, 0);
    // Alice hears the outcome: a failure REPORT (her SEND asked for reports).
    let report = sim.sent.iter().find_map(|o| match o {
        Output::StreamSend { conn, data } if *conn == alice_conn => {
            let t = String::from_utf8_lossy(data).to_string();
            t.contains("REPORT").then_some(t)
        }
        _ => None,
    });
    assert!(report.is_some(), "a REPORT goes to alice");
    settle(&mut sim);
}

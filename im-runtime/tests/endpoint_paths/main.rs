//! The endpoint in virtual time, path by path: every way a session can end (no ACK, no
//! MSRP, BYE either way, CANCEL either way, Timer B, a spec timer, decline, MSRP connect
//! failure, lifetime, shutdown) returns `live_sessions()` to 0; every error the endpoint
//! answers itself (400, 405, 415, 420, 481, 483, 501, 505, 513) leaves it serving; Via
//! `received`/`rport`, the advertised address and TCP framing and connection reuse.

#[path = "../common/mod.rs"]
mod common;
mod legs;

use bytes::Bytes;
use common::harness::*;
use common::*;

use im_runtime::machine::Method;
use im_runtime::proto::msrp;
use im_runtime::proto::sip::{HeaderName, Message};
use im_runtime::transport::{ConnId, Core, Input, Output};
use std::time::Duration;

/// Alice invites bob and carol over UDP; returns the 200 (when answered at once) and the
/// INVITE each invitee got.
fn start(sim: &mut Sim, call: &str, recipients: &[&str]) -> (Option<Message>, Vec<Message>) {
    let out = sim.udp(
        ALICE,
        &invite("UDP", ALICE, call, &format!("z9hG4bK{call}"), recipients),
    );
    let ok = udp_to(&out, ALICE)
        .into_iter()
        .find(|m| status_of(m) == 200);
    let mut invites = Vec::new();
    for (uri, to) in [(BOB_URI, BOB), (CAROL_URI, CAROL)] {
        if recipients.contains(&uri) {
            let mut i = requests(&udp_to(&out, to), Method::Invite);
            assert_eq!(i.len(), 1, "one INVITE to {to}");
            invites.push(i.remove(0));
        }
    }
    (ok, invites)
}

/// [`start`], answered at once, and alice's ACK for the 200; returns the 200 and the INVITEs.
fn started(sim: &mut Sim, call: &str, recipients: &[&str]) -> (Message, Vec<Message>) {
    let (ok, invites) = start(sim, call, recipients);
    let ok = ok.expect("answered at once");
    ack(sim, &ok);
    (ok, invites)
}

/// The session ends: one BYE to alice (`what`), which she answers, and nothing is left.
fn ends_with_bye_to_alice(sim: &mut Sim, what: &str) {
    let byes = requests(&udp_to(&sim.sent, ALICE), Method::Bye);
    assert_eq!(byes.len(), 1, "{what}");
    answer_byes(sim, ALICE);
    settle(sim);
}

/// Answers each BYE the server sent to `to` with 200.
fn answer_byes(sim: &mut Sim, to: &str) -> usize {
    let byes = requests(&udp_to(&sim.sent, to), Method::Bye);
    for b in &byes {
        sim.udp(to, &response_to(b, 200, "", None));
    }
    byes.len()
}

/// The invitee at `to` answers its INVITE `inv` 200 with an SDP answer listening at `msrp`.
fn accepts(sim: &mut Sim, to: &str, inv: &Message, tag: &str, msrp: (&str, &str)) -> Vec<Output> {
    let sdp = invitee_sdp(msrp.0, msrp.1);
    sim.udp(to, &response_to(inv, 200, tag, Some(&sdp)))
}

/// Bob accepts `inv`, listening at 127.0.0.2:7002; returns the connection the server opens
/// to him.
fn bob_accepts(sim: &mut Sim, inv: &Message) -> ConnId {
    let out = accepts(sim, BOB, inv, "b1", ("127.0.0.2:7002", "bobs"));
    connect_of(&out).expect("connect to bob").0
}

/// Bob (`invites[0]`) rings and carol (`invites[1]`) accepts.
fn bob_rings_carol_accepts(sim: &mut Sim, invites: &[Message]) {
    sim.udp(BOB, &response_to(&invites[0], 180, "b1", None));
    accepts(sim, CAROL, &invites[1], "c1", ("127.0.0.3:7003", "cs"));
}

/// Bob answers the server's CANCEL 200 and then his INVITE `inv` 487, which is ACKed.
fn bob_cancelled(sim: &mut Sim, cancel: &Message, inv: &Message) {
    sim.udp(BOB, &response_to(cancel, 200, "b1", None));
    sim.udp(BOB, &response_to(inv, 487, "b1", None));
    let acks = requests(&udp_to(&sim.sent, BOB), Method::Ack);
    assert_eq!(acks.len(), 1, "the 487 is ACKed");
}

fn settle(sim: &mut Sim) {
    sim.advance(Duration::from_secs(70));
    assert_eq!(sim.ep.live_sessions(), 0, "every session ended");
}

// ---- errors the endpoint answers itself ------------------------------------------------

fn bad_requests() -> Vec<(&'static str, u16, String)> {
    let req = |m: &str, branch: &str, extra: &str| {
        simple_request(
            m,
            "UDP",
            ALICE,
            &format!("bad-{branch}"),
            &format!("z9hG4bK{branch}"),
            "<sip:conference-factory@example.com>",
            1,
            extra,
        )
    };
    let with_body = |ct: &str, branch: &str| {
        crlf(&format!(
            "INVITE sip:conference-factory@example.com SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bK{branch}\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: <sip:conference-factory@example.com>\nCall-ID: bad-{branch}\nCSeq: 1 INVITE\nContent-Type: {ct}\nContent-Length: 5\n\nhello"
        ))
    };
    let max_forwards = |to: &str, branch: &str| {
        req("INVITE", branch, "").replace("Max-Forwards: 70", &format!("Max-Forwards: {to}"))
    };
    let sip3 = req("OPTIONS", "b505", "").replacen("SIP/2.0\r\n", "SIP/3.0\r\n", 1);
    let foo_body = with_body("application/x-foo", "b415");
    let require = req("INVITE", "b420", "Require: nosuchext\n");
    vec![
        ("malformed", 400, max_forwards("many", "b400")),
        ("method not offered", 405, req("SUBSCRIBE", "b405", "")),
        ("unknown body type", 415, foo_body),
        ("unknown Require", 420, require),
        ("BYE outside any dialog", 481, req("BYE", "b481", "")),
        ("Max-Forwards 0", 483, max_forwards("0", "b483")),
        ("unknown method", 501, req("FOO", "b501", "")),
        ("SIP/3.0", 505, sip3),
    ]
}

#[test]
fn each_error_is_answered_and_the_server_keeps_serving_udp() {
    let mut sim = Sim::new(Knobs::default());
    for (what, status, text) in bad_requests() {
        let out = sim.udp(ALICE, &text);
        // An INVITE's transaction may say 100 Trying first.
        let r: Vec<Message> = udp_to(&out, ALICE)
            .into_iter()
            .filter(|m| status_of(m) != 100)
            .collect();
        assert_eq!(statuses(&r), vec![status], "{what}");
        let r = &r[0];
        match status {
            400 | 505 => assert!(r.header_str("Warning").is_some(), "{what}: Warning"),
            405 | 501 => assert!(
                r.header_str("Allow").unwrap().contains("INVITE"),
                "{what}: Allow"
            ),
            415 => assert!(
                r.header_str("Accept").unwrap().contains("application/sdp"),
                "{what}: Accept"
            ),
            420 => assert_eq!(r.header_str("Unsupported"), Some("nosuchext")),
            _ => {}
        }
        sim.still_serving(what);
    }
    assert_eq!(sim.ep.live_sessions(), 0);
    // Final non-2xx answers are retransmitted until their ACK; nothing is left after.
    settle(&mut sim);
}

#[test]
fn each_error_is_answered_on_the_same_tcp_connection() {
    let mut sim = Sim::new(Knobs::default());
    let conn = sim.tcp_accept(3, ALICE);
    for (what, status, text) in bad_requests() {
        let text = text.replace("SIP/2.0/UDP", "SIP/2.0/TCP");
        // Split mid-message: framing reassembles it.
        let (a, b) = text.split_at(text.len() / 2);
        assert!(
            sim.tcp(conn, a).is_empty(),
            "{what}: nothing before the end"
        );
        let out = sim.tcp(conn, b);
        let got: Vec<u16> = statuses(&tcp_on(&out, conn))
            .into_iter()
            .filter(|s| *s != 100)
            .collect();
        assert_eq!(got, vec![status], "{what}");
        assert!(udp_to(&out, ALICE).is_empty(), "{what}: no UDP answer");
    }
    // Two OPTIONS and a keep-alive in one read: two answers, in order, on the connection.
    let o = |n: u32| {
        simple_request(
            "OPTIONS",
            "TCP",
            ALICE,
            &format!("o{n}"),
            &format!("z9hG4bKo{n}"),
            "<sip:x@example.com>",
            n,
            "",
        )
    };
    let out = sim.tcp(conn, &format!("{}\r\n\r\n{}", o(1), o(2)));
    let r = tcp_on(&out, conn);
    assert_eq!(statuses(&r), vec![200, 200]);
    assert_eq!(r[0].call_id(), Some("o1"));
    assert_eq!(r[1].call_id(), Some("o2"));
    sim.still_serving("tcp errors");
}

#[test]
fn options_lists_allow_accept_and_supported() {
    let mut sim = Sim::new(Knobs::default());
    let out = sim.udp(
        ALICE,
        &simple_request(
            "OPTIONS",
            "UDP",
            ALICE,
            "opt",
            "z9hG4bKopt",
            "<sip:x@example.com>",
            1,
            "",
        ),
    );
    let r = &udp_to(&out, ALICE)[0];
    assert_eq!(status_of(r), 200);
    let allow = r.header_str("Allow").unwrap();
    for m in ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"] {
        assert!(allow.contains(m), "Allow {allow} lacks {m}");
    }
    let accept = r.header_str("Accept").unwrap();
    assert!(accept.contains("application/sdp") && accept.contains("multipart/mixed"));
    assert!(
        r.header_str("Supported")
            .unwrap()
            .contains("recipient-list-invite")
    );
}

/// OPTIONS advertises in Accept the body types the 415 check takes, configuration
/// included: the one list (`policy.accepted_types`) decides both.
#[test]
fn options_accept_is_the_list_the_415_check_reads() {
    let types = [
        "application/sdp",
        "multipart/mixed",
        "application/resource-lists+xml",
    ];
    let mut sim = Sim::with(Knobs::default(), |c| {
        c.policy.accepted_types = types.map(String::from).to_vec();
    });
    let out = sim.udp(
        ALICE,
        &simple_request(
            "OPTIONS",
            "UDP",
            ALICE,
            "opt-acc",
            "z9hG4bKoptacc",
            "<sip:x@example.com>",
            1,
            "",
        ),
    );
    let r = &udp_to(&out, ALICE)[0];
    assert_eq!(status_of(r), 200);
    assert_eq!(r.header_str("Accept"), Some(types.join(", ").as_str()));
    // text/plain is not in the configured list: refused, with the same Accept.
    let text = crlf(&format!(
        "MESSAGE sip:x@example.com SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKacc415\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: <sip:x@example.com>\nCall-ID: acc415\nCSeq: 1 MESSAGE\nContent-Type: text/plain\nContent-Length: 5\n\nhello"
    ));
    let out = sim.udp(ALICE, &text);
    let r = &udp_to(&out, ALICE)[0];
    assert_eq!(status_of(r), 415);
    assert_eq!(r.header_str("Accept"), Some(types.join(", ").as_str()));
}

#[test]
fn oversized_messages_get_513_on_udp_and_close_the_stream_on_tcp() {
    let mut sim = Sim::with(Knobs::default(), |c| c.max_message_size = 1000);
    let big = simple_request(
        "OPTIONS",
        "UDP",
        ALICE,
        "big",
        "z9hG4bKbig",
        "<sip:x@example.com>",
        1,
        &format!("Subject: {}\n", "x".repeat(1200)),
    );
    let out = sim.udp(ALICE, &big);
    assert_eq!(statuses(&udp_to(&out, ALICE)), vec![513]);
    sim.still_serving("513");

    let conn = sim.tcp_accept(9, ALICE);
    let out = sim.tcp(conn, &big.replace("SIP/2.0/UDP", "SIP/2.0/TCP"));
    assert!(closed(&out, conn), "the stream is closed: {out:?}");
    // What else arrives on it is ignored (it is closed), and a new connection works.
    let conn2 = sim.tcp_accept(10, "127.0.0.1:5071");
    let out = sim.tcp(
        conn2,
        &options("TCP", "127.0.0.1:5071", "small", "z9hG4bKsmall"),
    );
    assert_eq!(statuses(&tcp_on(&out, conn2)), vec![200]);
}

// ---- Via received / rport (RFC 3261 §18.2.1, RFC 3581) -----------------------------------

fn top_via_of(m: &Message) -> String {
    m.header(HeaderName::Via).unwrap().to_string()
}

#[test]
fn responses_carry_received_and_rport() {
    let mut sim = Sim::new(Knobs::default());
    let opt = |via: &str, branch: &str| {
        crlf(&format!(
            "OPTIONS sip:x@example.com SIP/2.0\nVia: {via};branch={branch}\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKinner\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: <sip:x@example.com>\nCall-ID: {branch}\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n"
        ))
    };
    // rport asked, behind a NAT: received and rport filled in.
    let out = sim.udp(
        "192.0.2.5:40000",
        &opt("SIP/2.0/UDP alice.example.com:5070;rport", "z9hG4bKr1"),
    );
    let r = udp_to(&out, "192.0.2.5:40000");
    assert_eq!(statuses(&r), vec![200]);
    let via = r[0].top_via().unwrap();
    assert_eq!(via.received(), Some("192.0.2.5"), "{}", top_via_of(&r[0]));
    assert_eq!(via.rport(), Some(Some(40000)));
    assert_eq!(via.branch(), Some("z9hG4bKr1"));
    // The second Via is untouched.
    assert!(r[0].vias()[1].received().is_none());
    assert_eq!(r[0].vias().len(), 2);

    // No rport, sent-by host differs from the source: received only.
    let out = sim.udp(
        "192.0.2.5:5070",
        &opt("SIP/2.0/UDP 10.1.1.1:5070", "z9hG4bKr2"),
    );
    let r = udp_to(&out, "192.0.2.5:5070");
    let via = r[0].top_via().unwrap();
    assert_eq!(via.received(), Some("192.0.2.5"));
    assert_eq!(via.rport(), None);

    // No rport, sent-by is the source: the Via comes back as it was.
    let out = sim.udp(
        "192.0.2.5:5070",
        &opt("SIP/2.0/UDP 192.0.2.5:5070", "z9hG4bKr3"),
    );
    let r = udp_to(&out, "192.0.2.5:5070");
    assert_eq!(
        top_via_of(&r[0]),
        "SIP/2.0/UDP 192.0.2.5:5070;branch=z9hG4bKr3"
    );

    // IPv6 source with rport.
    let out = sim.udp(
        "[2001:db8::7]:41000",
        &opt("SIP/2.0/UDP [2001:db8::1];rport", "z9hG4bKr4"),
    );
    let r = udp_to(&out, "[2001:db8::7]:41000");
    let via = r[0].top_via().unwrap();
    assert_eq!(
        via.received().map(|s| s.trim_matches(['[', ']'])),
        Some("2001:db8::7"),
        "{}",
        top_via_of(&r[0])
    );
    assert_eq!(via.rport(), Some(Some(41000)));

    // Over TCP, and on error responses and INVITE responses (100, 200) too.
    let conn = sim.tcp_accept(4, "192.0.2.6:50000");
    let inv = invite(
        "TCP",
        "alice.example.com:5070",
        "rp-call",
        "z9hG4bKrp",
        &[BOB_URI],
    );
    let out = sim.tcp(conn, &inv);
    let r = tcp_on(&out, conn);
    assert_eq!(statuses(&r), vec![100, 200]);
    for m in &r {
        let via = m.top_via().unwrap();
        assert_eq!(via.received(), Some("192.0.2.6"));
        assert_eq!(via.rport(), Some(Some(50000)));
    }
    let out = sim.tcp(
        conn,
        &simple_request(
            "FOO",
            "TCP",
            "alice.example.com",
            "rp-foo",
            "z9hG4bKfoo",
            "<sip:x@example.com>",
            1,
            "",
        ),
    );
    let r = tcp_on(&out, conn);
    assert_eq!(statuses(&r), vec![501]);
    assert_eq!(r[0].top_via().unwrap().received(), Some("192.0.2.6"));
}

// ---- advertised address -------------------------------------------------------------------

#[test]
fn the_advertised_addresses_are_what_peers_see() {
    let mut sim = Sim::with(Knobs::default(), |c| {
        c.sip_advertised = addr("203.0.113.10:5062");
        c.msrp_advertised = addr("203.0.113.11:2856");
    });
    let (ok, invites) = start(&mut sim, "adv", &[BOB_URI]);
    let ok = ok.expect("answered");
    let contact = ok.header_str("Contact").unwrap();
    assert!(contact.contains("203.0.113.10:5062"), "{contact}");
    let sdp = String::from_utf8_lossy(ok.body_bytes()).to_string();
    assert!(sdp.contains("c=IN IP4 203.0.113.11"), "{sdp}");
    assert!(sdp.contains("m=message 2856 "), "{sdp}");
    assert!(sdp.contains("a=path:msrp://203.0.113.11:2856/"), "{sdp}");
    let inv = &invites[0];
    assert!(top_via_of(inv).contains("203.0.113.10:5062"));
    assert!(
        inv.header_str("Contact")
            .unwrap()
            .contains("203.0.113.10:5062")
    );
    let offer = String::from_utf8_lossy(inv.body_bytes()).to_string();
    assert!(offer.contains("c=IN IP4 203.0.113.11"), "{offer}");
    assert!(
        offer.contains("a=path:msrp://203.0.113.11:2856/"),
        "{offer}"
    );
    assert!(!offer.contains("127.0.0.1"), "{offer}");
}

// ---- sessions end on every path ----------------------------------------------------------

#[test]
fn no_ack_for_the_2xx_retransmits_then_ends_the_session() {
    let mut sim = Sim::new(Knobs::default());
    let (ok, invites) = start(&mut sim, "noack", &[BOB_URI]);
    assert!(ok.is_some());
    sim.udp(BOB, &response_to(&invites[0], 486, "b1", None));
    sim.sent.clear();
    sim.advance(Duration::from_secs(31));
    let oks = statuses(&udp_to(&sim.sent, ALICE))
        .into_iter()
        .filter(|s| *s == 200)
        .count();
    // T1, 2T1, 4T1 then every T2 until 64·T1: 500 ms, 1 s, 2 s, 4 s, 4 s … (7 or more).
    assert!(oks >= 7, "the 2xx is retransmitted until 64·T1, got {oks}");
    assert_eq!(sim.ep.live_sessions(), 1, "still waiting before 64·T1");
    sim.advance(Duration::from_secs(2));
    let byes = requests(&udp_to(&sim.sent, ALICE), Method::Bye);
    assert_eq!(byes.len(), 1, "a BYE ends the never-confirmed dialog");
    answer_byes(&mut sim, ALICE);
    sim.still_serving("no ACK");
    settle(&mut sim);
}

#[test]
fn no_ack_over_tcp_ends_the_session_too() {
    let mut sim = Sim::new(Knobs::default());
    let conn = sim.tcp_accept(5, ALICE);
    let out = sim.tcp(
        conn,
        &invite("TCP", ALICE, "noack-tcp", "z9hG4bKnat", &[BOB_URI]),
    );
    assert_eq!(statuses(&tcp_on(&out, conn)), vec![100, 200]);
    let inv = requests(&udp_to(&out, BOB), Method::Invite);
    sim.udp(BOB, &response_to(&inv[0], 486, "b1", None));
    sim.advance(Duration::from_secs(40));
    let byes = requests(&tcp_on(&sim.sent, conn), Method::Bye);
    assert_eq!(byes.len(), 1, "BYE on the originator's connection");
    sim.tcp(conn, &response_to(&byes[0], 200, "", None));
    settle(&mut sim);
}

#[test]
fn no_msrp_connection_from_the_originator_times_out() {
    let mut sim = Sim::new(Knobs::default());
    let (_, invites) = started(&mut sim, "nomsrp", &[BOB_URI]);
    // Bob accepts; the server connects to him but no message ever comes from alice.
    let bob_conn = bob_accepts(&mut sim, &invites[0]);
    sim.msrp_open(bob_conn, "127.0.0.1:40001", addr("127.0.0.2:7002"));
    sim.advance(Duration::from_secs(35));
    assert_eq!(
        requests(&udp_to(&sim.sent, ALICE), Method::Bye).len(),
        1,
        "alice's dialog ends"
    );
    assert_eq!(
        requests(&udp_to(&sim.sent, BOB), Method::Bye).len(),
        1,
        "bob's dialog ends"
    );
    answer_byes(&mut sim, ALICE);
    answer_byes(&mut sim, BOB);
    sim.still_serving("no MSRP");
    settle(&mut sim);
}

/// The unbound-MSRP limit is configuration (`EndpointConfig::msrp_idle`), not a constant: with
/// 5 s the originator that never connects is given up (its machine hears `msrp closed` and
/// BYEs it) after 5 s, not 30 s.
#[test]
fn the_msrp_idle_limit_is_configuration() {
    let mut sim = Sim::with(Knobs::default(), |c| c.msrp_idle = Duration::from_secs(5));
    let (_, invites) = started(&mut sim, "idle5", &[BOB_URI]);
    sim.udp(BOB, &response_to(&invites[0], 180, "b1", None));
    sim.sent.clear();
    sim.advance(Duration::from_secs(4));
    assert!(requests(&udp_to(&sim.sent, ALICE), Method::Bye).is_empty());
    sim.advance(Duration::from_secs(2));
    assert_eq!(
        requests(&udp_to(&sim.sent, ALICE), Method::Bye).len(),
        1,
        "alice is given up at 5 s"
    );
}

#[test]
fn the_session_lifetime_ends_a_stuck_session() {
    let mut sim = Sim::with(Knobs::default(), |c| {
        c.session_lifetime = Duration::from_secs(20)
    });
    let (_, invites) = started(&mut sim, "life", &[BOB_URI]);
    sim.udp(BOB, &response_to(&invites[0], 180, "b1", None));
    let out = sim.advance(Duration::from_secs(19));
    assert!(requests(&udp_to(&out, BOB), Method::Cancel).is_empty());
    let out = sim.advance(Duration::from_secs(2));
    let cancels = requests(&udp_to(&out, BOB), Method::Cancel);
    assert_eq!(
        cancels.len(),
        1,
        "lifetime over: the pending leg is cancelled"
    );
    assert_eq!(requests(&udp_to(&out, ALICE), Method::Bye).len(), 1);
    bob_cancelled(&mut sim, &cancels[0], &invites[0]);
    answer_byes(&mut sim, ALICE);
    settle(&mut sim);
}

#[test]
fn shutdown_ends_every_leg_and_refuses_new_sessions() {
    let mut sim = Sim::new(Knobs::default());
    let (_, invites) = started(&mut sim, "sd", &[BOB_URI, CAROL_URI]);
    bob_rings_carol_accepts(&mut sim, &invites);
    // A second session not yet answered by anyone.
    started(&mut sim, "sd2", &[BOB_URI]);
    assert_eq!(sim.ep.live_sessions(), 2);
    assert!(!sim.ep.is_idle());
    let out = sim.input(Input::Shutdown);
    let to_bob = udp_to(&out, BOB);
    assert_eq!(
        requests(&to_bob, Method::Cancel).len(),
        1,
        "bob ringing: CANCEL"
    );
    assert_eq!(requests(&udp_to(&out, CAROL), Method::Bye).len(), 1);
    assert_eq!(requests(&udp_to(&out, ALICE), Method::Bye).len(), 2);
    // New sessions are refused while shutting down.
    let out = sim.udp(
        ALICE,
        &invite("UDP", ALICE, "late", "z9hG4bKlate", &[BOB_URI]),
    );
    assert_eq!(statuses(&udp_to(&out, ALICE)), vec![100, 503]);
    for c in requests(&to_bob, Method::Cancel) {
        sim.udp(BOB, &response_to(&c, 200, "b1", None));
    }
    sim.udp(BOB, &response_to(&invites[0], 487, "b1", None));
    answer_byes(&mut sim, CAROL);
    answer_byes(&mut sim, ALICE);
    sim.advance(Duration::from_secs(40));
    assert_eq!(sim.ep.live_sessions(), 0);
    assert!(sim.ep.is_idle());
}

#[test]
fn a_delivered_message_is_reported_and_every_dialog_ends() {
    let mut sim = Sim::new(Knobs::default());
    let (ok, invites) = started(&mut sim, "full", &[BOB_URI]);
    alice_sends(&mut sim, &ok, "hi");
    let bob_conn = bob_accepts(&mut sim, &invites[0]);
    let out = sim.msrp_open(bob_conn, "127.0.0.1:40000", addr("127.0.0.2:7002"));
    let chunk = sent_on(&out, bob_conn).expect("the message goes to bob");
    let frame = msrp::decode_one(&chunk).unwrap();
    // The copy asks for the transaction response that settles it (RFC 4975 §7.1.2) and no
    // success REPORT (docs/decisions.md), and keeps alice's Content-Type.
    assert_eq!(frame.failure_report, Some(msrp::FailureReport::Yes));
    assert_eq!(frame.success_report, Some(msrp::SuccessReport::No));
    assert_eq!(
        frame.body.as_ref().map(|b| b.content_type.as_str()),
        Some("text/plain")
    );
    let resp = msrp::response_to(&frame, msrp::StatusCode(200), None).unwrap();
    sim.input(Input::StreamData {
        conn: bob_conn,
        data: Bytes::from(msrp::encode_to_vec(&resp).unwrap()),
    });
    assert_eq!(sim.ep.stats().delivered, 1);
    answer_byes(&mut sim, BOB);
    answer_byes(&mut sim, ALICE);
    assert!(
        closed(&sim.sent, bob_conn),
        "bob's MSRP connection is closed"
    );
    settle(&mut sim);
}

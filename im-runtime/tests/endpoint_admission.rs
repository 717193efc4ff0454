//! Admission and the answers the endpoint gives without a session: a session stops counting
//! against `max_sessions` once its calls are over (its last transactions may linger), a 503
//! from admission carries Retry-After, the transaction cap sheds new sessions early, a TCP
//! request with a body over the size limit gets 413 before the connection is closed, and
//! OPTIONS advertises only the extensions the server implements; while the IO layer reports
//! pressure, new sessions get 503 and those already accepted are served.

#![allow(clippy::expect_used)] // the shared driver states what it expects

mod common;
#[path = "../benches/support/group.rs"]
mod group;

use bytes::Bytes;
use common::{addr, crlf, status_of};
use group::{ALICE, Driver, sip_to};
use im_runtime::proto::msrp;
use im_runtime::proto::sip::Message;
use im_runtime::transport::{ConnId, Core, Input, Output, StreamKind};
use std::time::Duration;

fn statuses(out: &[Output]) -> Vec<u16> {
    sip_to(out, addr(ALICE)).iter().map(status_of).collect()
}

#[test]
fn sessions_completed_back_to_back_do_not_fill_max_sessions() {
    let mut d = Driver::new(|c| c.max_sessions = 2);
    for i in 0..6 {
        let live = group::open(&mut d, i, 3);
        assert_eq!(d.ep.live_sessions(), 1, "session {i} was admitted");
        group::finish(&mut d, live, b"hello");
        assert_eq!(d.ep.live_sessions(), 0, "session {i} ended with its calls");
    }
    // Their transactions linger (no time has passed: INVITE client transactions sit in
    // Accepted, BYEs in Completed), and still none of them counts.
    assert!(d.ep.poll_timeout().is_some(), "transactions linger");
    assert_eq!(d.ep.stats().shed, 0);
    assert_eq!(d.ep.stats().sessions_ended, 6);
}

#[test]
fn a_session_ends_when_its_last_bye_is_sent_not_when_it_is_answered() {
    let mut d = Driver::new(|_| {});
    let live = group::open(&mut d, 1, 2);
    let (conn, send) = group::alice_connects(&mut d, &live, b"hi");
    let mut sent = d.input(Input::StreamData { conn, data: send });
    // Invitees confirm the chunks; nobody answers a BYE.
    let mut i = 0;
    while i < sent.len() {
        if let Output::StreamSend { conn, data } = &sent[i]
            && live.leg_conns.contains_key(conn)
        {
            let f = msrp::decode_one(data).expect("a chunk");
            let ok = msrp::response_to(&f, msrp::StatusCode(200), None).expect("a 200");
            let more = d.input(Input::StreamData {
                conn: *conn,
                data: Bytes::from(msrp::encode_to_vec(&ok).expect("encodes")),
            });
            sent.extend(more);
        }
        i += 1;
    }
    let byes = sent
        .iter()
        .filter(|o| matches!(o, Output::Datagram { data, .. } if data.starts_with(b"BYE ")))
        .count();
    assert_eq!(byes, 3, "BYE to both invitees and alice");
    assert_eq!(d.ep.live_sessions(), 0, "its calls are over");
    assert!(!d.ep.is_idle(), "the BYEs are still in flight");
    // Timer F ends the BYE transactions; the endpoint is idle then.
    let until = d.now + Duration::from_secs(40);
    while let Some(t) = d.ep.poll_timeout() {
        if t > until {
            break;
        }
        d.now = d.now.max(t);
        d.input(Input::Timeout);
    }
    assert!(d.ep.is_idle());
}

#[test]
fn a_503_from_admission_carries_retry_after() {
    let mut d = Driver::new(|c| {
        c.max_sessions = 1;
        c.retry_after = Duration::from_secs(7);
    });
    let _live = group::open(&mut d, 1, 1);
    let out = d.udp(
        addr(ALICE),
        common::invite(
            "UDP",
            ALICE,
            "second@alice",
            "z9hG4bKsecond",
            &["sip:u@127.0.0.9"],
        ),
    );
    let to_alice = sip_to(&out, addr(ALICE));
    let r = to_alice
        .iter()
        .find(|m| status_of(m) == 503)
        .expect("503 when max_sessions is reached");
    assert_eq!(r.header_str("Retry-After"), Some("7"));
    assert_eq!(d.ep.stats().shed, 1);
    assert_eq!(d.ep.live_sessions(), 1);
}

#[test]
fn the_transaction_cap_sheds_new_sessions_but_answers_the_rest() {
    let mut d = Driver::new(|c| c.max_transactions = 3);
    for k in 0..3 {
        let out = d.udp(addr(ALICE), group::options(k));
        assert_eq!(statuses(&out), vec![200], "OPTIONS {k} is answered");
    }
    // Three OPTIONS transactions wait for Timer J: the table is at its cap.
    let out = d.udp(
        addr(ALICE),
        common::invite(
            "UDP",
            ALICE,
            "shed@alice",
            "z9hG4bKshed",
            &["sip:u@127.0.0.9"],
        ),
    );
    assert!(statuses(&out).contains(&503), "{:?}", statuses(&out));
    assert_eq!(d.ep.live_sessions(), 0);
    // Once they are gone, sessions are admitted again.
    d.now += Duration::from_secs(40);
    d.input(Input::Timeout);
    let live = group::open(&mut d, 2, 1);
    group::finish(&mut d, live, b"again");
}

#[test]
fn under_io_pressure_new_sessions_get_503_and_the_accepted_one_is_served() {
    let mut d = Driver::new(|c| c.retry_after = Duration::from_secs(3));
    let live = group::open(&mut d, 1, 2);
    d.input(Input::Pressure {
        overloaded: true,
        queue_delay: Duration::from_millis(80),
    });
    let out = d.udp(
        addr(ALICE),
        common::invite(
            "UDP",
            ALICE,
            "pressed@alice",
            "z9hG4bKpressed",
            &["sip:u@127.0.0.9"],
        ),
    );
    let to_alice = sip_to(&out, addr(ALICE));
    let r = to_alice
        .iter()
        .find(|m| status_of(m) == 503)
        .expect("503 while overloaded");
    assert_eq!(r.header_str("Retry-After"), Some("3"));
    assert_eq!(d.ep.stats().shed, 1);
    // OPTIONS starts nothing and is still answered.
    assert_eq!(statuses(&d.udp(addr(ALICE), group::options(9))), vec![200]);
    // The session admitted before the pressure runs to its end.
    group::finish(&mut d, live, b"still served");
    assert_eq!(d.ep.live_sessions(), 0);
    // Once the IO layer reports the backlog gone, sessions are admitted again.
    d.input(Input::Pressure {
        overloaded: false,
        queue_delay: Duration::from_millis(2),
    });
    let live = group::open(&mut d, 2, 1);
    group::finish(&mut d, live, b"admitted again");
    assert_eq!(d.ep.stats().shed, 1);
}

#[test]
fn a_tcp_request_with_a_body_over_the_limit_gets_413_then_the_connection_closes() {
    let mut d = Driver::new(|c| c.max_message_size = 1000);
    let conn = ConnId(ConnId::ACCEPTED | 3);
    d.input(Input::StreamOpened {
        conn,
        kind: StreamKind::Sip,
        local: addr(group::LOCAL),
        peer: addr(ALICE),
    });
    let head = crlf(&format!(
        "MESSAGE sip:conference-factory@example.com SIP/2.0\nVia: SIP/2.0/TCP {ALICE};branch=z9hG4bKbig\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: <sip:conference-factory@example.com>\nCall-ID: big@alice\nCSeq: 1 MESSAGE\nContent-Type: text/plain\nContent-Length: 5000\n\n"
    ));
    let out = d.input(Input::StreamData {
        conn,
        data: Bytes::from(head),
    });
    let answers: Vec<Message> = out
        .iter()
        .filter_map(|o| match o {
            Output::StreamSend { conn: c, data } if *c == conn => Message::parse(data.clone()).ok(),
            _ => None,
        })
        .collect();
    assert_eq!(answers.len(), 1, "{out:?}");
    assert_eq!(status_of(&answers[0]), 413);
    assert_eq!(answers[0].call_id(), Some("big@alice"));
    let close_at = out
        .iter()
        .position(|o| matches!(o, Output::Close { conn: c } if *c == conn))
        .expect("the connection is closed");
    let answer_at = out
        .iter()
        .position(|o| matches!(o, Output::StreamSend { .. }))
        .expect("answered");
    assert!(answer_at < close_at, "the 413 goes out before the close");
    // An oversized response or ACK gets no answer, only the close.
    let conn2 = ConnId(ConnId::ACCEPTED | 4);
    d.input(Input::StreamOpened {
        conn: conn2,
        kind: StreamKind::Sip,
        local: addr(group::LOCAL),
        peer: addr("127.0.0.1:5072"),
    });
    let ack = crlf(
        "ACK sip:conference-factory@example.com SIP/2.0\nVia: SIP/2.0/TCP 127.0.0.1:5072;branch=z9hG4bKack\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: <sip:conference-factory@example.com>;tag=x\nCall-ID: ack@alice\nCSeq: 1 ACK\nContent-Length: 5000\n\n",
    );
    let out = d.input(Input::StreamData {
        conn: conn2,
        data: Bytes::from(ack),
    });
    assert!(!out.iter().any(|o| matches!(o, Output::StreamSend { .. })));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Close { conn: c } if *c == conn2))
    );
}

#[test]
fn options_advertises_only_implemented_extensions() {
    let mut d = Driver::new(|_| {});
    let out = d.udp(addr(ALICE), group::options(1));
    let r = &sip_to(&out, addr(ALICE))[0];
    assert_eq!(status_of(r), 200);
    let supported = r.header_str("Supported").expect("Supported");
    let tags: Vec<&str> = supported.split(',').map(str::trim).collect();
    assert_eq!(
        tags,
        vec!["recipient-list-invite", "recipient-list-message"],
        "{supported}"
    );
    // And a Require naming what is not implemented is refused (420), not accepted.
    let out = d.udp(
        addr(ALICE),
        crlf(&format!(
            "OPTIONS sip:conference-factory@example.com SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKreq\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=o1\nTo: <sip:conference-factory@example.com>\nCall-ID: req@alice\nCSeq: 1 OPTIONS\nRequire: timer\nContent-Length: 0\n\n"
        )),
    );
    assert_eq!(statuses(&out), vec![420]);
}

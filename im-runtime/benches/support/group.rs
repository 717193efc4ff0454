//! Drives whole group sessions through an [`Endpoint`] in-process, playing the originator
//! (alice), the invitees and their MSRP endpoints, for the benches that need live sessions
//! or a fan-out. Only the endpoint's own work (`handle_input` plus draining its outputs) is
//! added to [`Driver::spent`]; building and parsing the peers' messages is not.

#![allow(dead_code)] // each bench uses a part of the driver

use super::common::{self, App, Knobs, addr, crlf, response_to, status_of};
use bytes::Bytes;
use im_runtime::endpoint::{Endpoint, EndpointConfig};
use im_runtime::machine::Method;
use im_runtime::proto::msrp;
use im_runtime::proto::sip::Message;
use im_runtime::transport::{ConnId, Core, Input, Output, StreamKind};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The server's SIP address.
pub(crate) const LOCAL: &str = "127.0.0.1:5060";
/// The originator.
pub(crate) const ALICE: &str = "127.0.0.1:5070";

/// One endpoint and the endpoint time spent in it.
pub(crate) struct Driver {
    pub(crate) ep: Endpoint<App>,
    pub(crate) now: Instant,
    /// Wall time spent inside the endpoint (`handle_input` + `poll_output` until empty).
    pub(crate) spent: Duration,
    /// Reads a cumulative (allocator calls, bytes) counter; the `allocs` bench installs one
    /// backed by its counting global allocator, the others leave [`no_probe`].
    pub(crate) probe: fn() -> (u64, u64),
    /// Allocator calls and bytes made inside the endpoint, as read by `probe`.
    pub(crate) allocs: (u64, u64),
}

/// A probe that counts nothing.
pub(crate) fn no_probe() -> (u64, u64) {
    (0, 0)
}

#[allow(clippy::disallowed_methods)]
fn clock() -> Instant {
    // The bench's stopwatch; the endpoint's `now` stays fixed at one reading.
    Instant::now()
}

impl Driver {
    /// An endpoint with the stand-in machines of `tests/common` (200 with an MSRP answer,
    /// invite each; legs deliver and BYE once delivered); `tune` adjusts its config.
    pub(crate) fn new(tune: impl FnOnce(&mut EndpointConfig)) -> Driver {
        Driver::with_knobs(Knobs::default(), tune)
    }

    /// As [`Driver::new`], with the stand-in machines' `knobs`.
    pub(crate) fn with_knobs(knobs: Knobs, tune: impl FnOnce(&mut EndpointConfig)) -> Driver {
        let mut cfg = EndpointConfig::new(addr(LOCAL), addr("127.0.0.1:2855"));
        tune(&mut cfg);
        Driver {
            ep: Endpoint::new(cfg, App(knobs)),
            now: clock(),
            spent: Duration::ZERO,
            probe: no_probe,
            allocs: (0, 0),
        }
    }

    /// One input, every output out; the time it took is added to `spent`. Not inlined:
    /// callgrind counts the endpoint's work by this function's name.
    #[inline(never)]
    pub(crate) fn input(&mut self, i: Input) -> Vec<Output> {
        // Sized up front so that collecting the outputs does not count as the endpoint's.
        let mut out = Vec::with_capacity(64);
        let a = (self.probe)();
        let t = clock();
        self.ep.handle_input(self.now, i);
        while let Some(o) = self.ep.poll_output() {
            out.push(o);
        }
        self.spent += t.elapsed();
        let b = (self.probe)();
        self.allocs.0 += b.0 - a.0;
        self.allocs.1 += b.1 - a.1;
        out
    }

    /// A datagram from `from`.
    pub(crate) fn udp(&mut self, from: SocketAddr, text: String) -> Vec<Output> {
        self.input(Input::Datagram {
            local: addr(LOCAL),
            from,
            data: Bytes::from(text),
        })
    }
}

/// The SIP messages among `out` sent to `to`.
pub(crate) fn sip_to(out: &[Output], to: SocketAddr) -> Vec<Message> {
    out.iter()
        .filter_map(|o| match o {
            Output::Datagram { to: t, data, .. } if *t == to => Message::parse(data.clone()).ok(),
            _ => None,
        })
        .collect()
}

/// Invitee `k`'s SIP address.
pub(crate) fn invitee(k: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 2], 10_000 + k as u16))
}

/// Invitee `k`'s MSRP address.
fn invitee_msrp(k: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 2], 30_000 + k as u16))
}

/// A group session set up as far as a live one gets before the originator sends: INVITE
/// answered and ACKed, each invitee answered 200 and ACKed, the server's MSRP connection to
/// each invitee open. The originator has not connected yet.
pub(crate) struct Live {
    pub(crate) idx: usize,
    /// The MSRP path of the server's answer to alice (only this, not the whole 200: the
    /// memory bench counts what the bench keeps too).
    our_path: Box<str>,
    /// The server's MSRP connection to each invitee, and which invitee it reaches.
    pub(crate) leg_conns: HashMap<ConnId, usize>,
}

/// Sets up group session number `idx` with `n` invitees.
pub(crate) fn open(d: &mut Driver, idx: usize, n: usize) -> Live {
    let uris: Vec<String> = (0..n).map(|k| format!("sip:u{k}@{}", invitee(k))).collect();
    let refs: Vec<&str> = uris.iter().map(String::as_str).collect();
    let call = format!("g{idx}@alice");
    let out = d.udp(
        addr(ALICE),
        common::invite("UDP", ALICE, &call, &format!("z9hG4bKg{idx}"), &refs),
    );
    let ok = sip_to(&out, addr(ALICE))
        .into_iter()
        .find(|m| status_of(m) == 200)
        .expect("the originator gets 200");
    // One pass over the outputs (a 1000-invitee fan-out has 1000 INVITEs to read).
    let mut by_dest: HashMap<SocketAddr, Message> = HashMap::new();
    for o in &out {
        if let Output::Datagram { to, data, .. } = o
            && data.starts_with(b"INVITE ")
            && let Ok(m) = Message::parse(data.clone())
        {
            by_dest.insert(*to, m);
        }
    }
    let invites: Vec<Message> = (0..n)
        .map(|k| by_dest.remove(&invitee(k)).expect("one INVITE per invitee"))
        .collect();
    d.udp(
        addr(ALICE),
        common::ack_for(&ok, "UDP", ALICE, &format!("z9hG4bKa{idx}")),
    );
    let answer = String::from_utf8_lossy(ok.body_bytes()).to_string();
    let our_path = answer
        .lines()
        .find_map(|l| l.strip_prefix("a=path:"))
        .expect("the answer has a path")
        .trim()
        .into();
    drop(ok);
    let mut leg_conns = HashMap::new();
    for (k, inv) in invites.iter().enumerate() {
        let sdp = common::invitee_sdp(&invitee_msrp(k).to_string(), &format!("s{idx}k{k}"));
        let out = d.udp(
            invitee(k),
            response_to(inv, 200, &format!("t{k}"), Some(&sdp)),
        );
        let conn = out
            .iter()
            .find_map(|o| match o {
                Output::Connect { conn, .. } => Some(*conn),
                _ => None,
            })
            .expect("the server connects to the invitee's MSRP path");
        leg_conns.insert(conn, k);
    }
    for (&conn, &k) in &leg_conns {
        d.input(Input::StreamOpened {
            conn,
            kind: StreamKind::Msrp,
            local: addr("127.0.0.1:40000"),
            peer: invitee_msrp(k),
        });
    }
    leg_conns.shrink_to_fit();
    Live {
        idx,
        our_path,
        leg_conns,
    }
}

/// Alice's connection for session `idx`, opened; returns the SEND carrying `text`.
pub(crate) fn alice_connects(d: &mut Driver, live: &Live, text: &[u8]) -> (ConnId, Bytes) {
    let conn = ConnId(ConnId::ACCEPTED | live.idx as u64);
    d.input(Input::StreamOpened {
        conn,
        kind: StreamKind::Msrp,
        local: addr("127.0.0.1:2855"),
        peer: addr("127.0.0.1:7000"),
    });
    let our_path = &live.our_path;
    let mut send = format!(
        "MSRP t1 SEND\r\nTo-Path: {our_path}\r\nFrom-Path: msrp://127.0.0.1:7000/alicesess;tcp\r\nMessage-ID: m1\r\nByte-Range: 1-{n}/{n}\r\nSuccess-Report: yes\r\nContent-Type: text/plain\r\n\r\n",
        n = text.len()
    )
    .into_bytes();
    send.extend_from_slice(text);
    send.extend_from_slice(b"\r\n-------t1$\r\n");
    (conn, Bytes::from(send))
}

/// The rest of session `live`: alice sends `text`, each invitee confirms every chunk, the
/// server BYEs every leg and alice, and each BYE is answered. Checks the session is gone.
pub(crate) fn finish(d: &mut Driver, live: Live, text: &[u8]) {
    let before = d.ep.live_sessions();
    let (conn, send) = alice_connects(d, &live, text);
    let out = d.input(Input::StreamData { conn, data: send });
    let mut sent = out;
    let mut i = 0;
    // Answer every chunk the server delivers (Failure-Report: yes), and every BYE.
    while i < sent.len() {
        let more = match &sent[i] {
            Output::StreamSend { conn, data } if live.leg_conns.contains_key(conn) => {
                let f = msrp::decode_one(data).expect("a chunk");
                let ok = msrp::response_to(&f, msrp::StatusCode(200), None).expect("a 200");
                d.input(Input::StreamData {
                    conn: *conn,
                    data: Bytes::from(msrp::encode_to_vec(&ok).expect("encodes")),
                })
            }
            Output::Datagram { to, data, .. } => match Message::parse(data.clone()) {
                Ok(m) if m.method() == Some(&Method::Bye) => {
                    d.udp(*to, response_to(&m, 200, "", None))
                }
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        sent.extend(more);
        i += 1;
    }
    let byes = sent
        .iter()
        .filter(|o| matches!(o, Output::Datagram { data, .. } if data.starts_with(b"BYE ")))
        .count();
    assert_eq!(byes, live.leg_conns.len() + 1, "a BYE on every leg");
    assert_eq!(d.ep.live_sessions(), before - 1, "the session ended");
}

/// An OPTIONS from alice with its own branch and Call-ID.
pub(crate) fn options(k: usize) -> String {
    crlf(&format!(
        "OPTIONS sip:conference-factory@example.com SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKopt{k};rport\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=o1\nTo: <sip:conference-factory@example.com>\nCall-ID: bench-opt-{k}@alice\nCSeq: 1 OPTIONS\nAccept: application/sdp\nContent-Length: 0\n\n"
    ))
}

/// Page-mode MESSAGE number `idx` from alice to a list of `n` recipients (invitee addresses):
/// the 202, one copy per recipient, each copy answered 200 by its recipient. Checks the
/// answer and the copies, and that no session is left.
pub(crate) fn message_to_list(d: &mut Driver, idx: usize, n: usize) {
    let uris: Vec<String> = (0..n).map(|k| format!("sip:u{k}@{}", invitee(k))).collect();
    let refs: Vec<&str> = uris.iter().map(String::as_str).collect();
    let out = d.udp(
        addr(ALICE),
        common::list_message(
            &format!("p{idx}@alice"),
            &format!("z9hG4bKp{idx}"),
            "hello",
            &refs,
        ),
    );
    let answer = sip_to(&out, addr(ALICE));
    assert!(
        answer.iter().any(|m| status_of(m) == 202),
        "the originator gets 202"
    );
    let mut copies = 0;
    for o in &out {
        if let Output::Datagram { to, data, .. } = o
            && data.starts_with(b"MESSAGE ")
        {
            let m = Message::parse(data.clone()).expect("a copy parses");
            assert!(
                m.body_bytes().windows(5).any(|w| w == b"hello"),
                "the copy carries the payload"
            );
            copies += 1;
            d.udp(*to, response_to(&m, 200, &format!("r{copies}"), None));
        }
    }
    assert_eq!(copies, n, "one copy per recipient");
    assert_eq!(d.ep.live_sessions(), 0, "no session left");
}

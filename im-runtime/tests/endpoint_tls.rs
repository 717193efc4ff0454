//! The endpoint's side of TLS, in virtual time (the IO layer's handshakes are tested end to
//! end in `examples/im-server/tests/e2e_tls.rs`): a request on a `SipTls` stream gets a
//! focus Contact on the TLS address and its dialog's requests say `TLS` in Via; a
//! `TCP/TLS/MSRP` offer is answered from the MSRP-TLS address with an `msrps:` path (488
//! without MSRP over TLS), and that session binds only on a TLS connection; a `sips:`
//! invitee is invited over a TLS connection the endpoint asks for, with a TLS offer.

mod common;

use common::harness::{Sim, body_of as body, connect_of, path_of, sent_on, tcp_on, udp_to};
use common::*;
use im_runtime::machine::Method;
use im_runtime::proto::sip::{HeaderName, Message};
use im_runtime::transport::{ConnId, Input, Output, StreamKind};

const ALICE: &str = "127.0.0.1:40000";
const SIP_TLS: &str = "127.0.0.1:5061";
const MSRP_TLS: &str = "127.0.0.1:2856";
/// A `sips:` invitee (its TLS port).
const SIPS_BOB: &str = "127.0.0.2:5061";

/// The stand-in server; with `tls`, it advertises SIP and MSRP over TLS.
fn server(tls: bool) -> Sim {
    Sim::with(Knobs::default(), |cfg| {
        if tls {
            cfg.sip_tls_advertised = Some(addr(SIP_TLS));
            cfg.msrp_tls_advertised = Some(addr(MSRP_TLS));
        }
    })
}

/// Alice opens a TLS connection and sends `tls_invite`; returns her connection, what the
/// server sent and its 200.
fn tls_session(sim: &mut Sim) -> (ConnId, Vec<Output>, Message) {
    let alice = ConnId(ConnId::ACCEPTED | 1);
    sim.open(alice, StreamKind::SipTls, SIP_TLS, ALICE);
    let out = sim.tcp(alice, &tls_invite("TLS", &["sip:bob@127.0.0.2"]));
    let ok = tcp_on(&out, alice)
        .into_iter()
        .find(|m| status_of(m) == 200)
        .expect("200 on the TLS connection");
    (alice, out, ok)
}

/// Alice's INVITE over UDP to the `sips:` invitee.
fn sips_invite(call: &str) -> String {
    let branch = format!("z9hG4bK{call}");
    invite("UDP", ALICE, call, &branch, &["sips:bob@127.0.0.2:5061"])
}

/// Alice's INVITE offering MSRP over TLS, sent over `transport`.
fn tls_invite(transport: &str, recipients: &[&str]) -> String {
    let plain = invite(transport, ALICE, "c1", "z9hG4bKc1", recipients);
    let (head, body) = plain.split_once("\r\n\r\n").unwrap();
    let body = body
        .replace(" TCP/MSRP ", " TCP/TLS/MSRP ")
        .replace("a=path:msrp://", "a=path:msrps://");
    let head: Vec<String> = head
        .split("\r\n")
        .map(|l| match l.strip_prefix("Content-Length:") {
            Some(_) => format!("Content-Length: {}", body.len()),
            None => l.to_owned(),
        })
        .collect();
    format!("{}\r\n\r\n{body}", head.join("\r\n"))
}

fn msrp_send(path: &str) -> String {
    format!(
        "MSRP t1 SEND\r\nTo-Path: {path}\r\nFrom-Path: msrps://127.0.0.1:7000/alicesess;tcp\r\n\
         Message-ID: m1\r\nByte-Range: 1-2/2\r\nContent-Type: text/plain\r\n\r\nhi\r\n-------t1$\r\n"
    )
}

fn msrp_reply(out: &[Output], on: ConnId) -> String {
    sent_on(out, on)
        .map(|d| String::from_utf8_lossy(&d).to_string())
        .unwrap_or_default()
}

#[test]
fn invite_over_tls_gets_tls_contact_msrps_answer_and_tls_binding() {
    let mut sim = server(true);
    let (_, out, ok) = tls_session(&mut sim);
    let contact = ok.header(HeaderName::Contact).unwrap();
    assert!(
        contact.contains(&format!("@{SIP_TLS};transport=tls>")),
        "{contact}"
    );
    let answer = body(&ok);
    assert!(answer.contains("m=message 2856 TCP/TLS/MSRP *"), "{answer}");
    let path = path_of(&answer);
    assert!(path.starts_with(&format!("msrps://{MSRP_TLS}/")), "{path}");
    // The invitee is a plain sip: URI reached over UDP: plain MSRP for it.
    let inv = udp_to(&out, "127.0.0.2:5060");
    assert_eq!(inv.len(), 1);
    assert!(body(&inv[0]).contains("m=message 2855 TCP/MSRP *"));
    assert!(path_of(&body(&inv[0])).starts_with("msrp://127.0.0.1:2855/"));
    assert!(
        inv[0]
            .header(HeaderName::Via)
            .unwrap()
            .starts_with("SIP/2.0/UDP")
    );

    // The session answered over TLS is not reachable in clear …
    let plain = ConnId(ConnId::ACCEPTED | 2);
    sim.open(plain, StreamKind::Msrp, "127.0.0.1:2855", "127.0.0.1:7001");
    let out = sim.tcp(plain, &msrp_send(&path));
    assert!(
        msrp_reply(&out, plain).starts_with("MSRP t1 481"),
        "{out:?}"
    );
    // … but is over TLS.
    let tls = ConnId(ConnId::ACCEPTED | 3);
    sim.open(tls, StreamKind::MsrpTls, MSRP_TLS, "127.0.0.1:7000");
    let out = sim.tcp(tls, &msrp_send(&path));
    assert!(msrp_reply(&out, tls).starts_with("MSRP t1 200"), "{out:?}");
}

#[test]
fn in_dialog_requests_over_tls_say_tls_in_via() {
    let mut sim = server(true);
    let (alice, out, ok) = tls_session(&mut sim);
    sim.tcp(alice, &ack_for(&ok, "TLS", ALICE, "z9hG4bKack"));
    // The invitee declines: the session ends and the server sends alice its BYE.
    let invite = udp_to(&out, "127.0.0.2:5060").remove(0);
    let out = sim.udp("127.0.0.2:5060", &response_to(&invite, 603, "b1", None));
    let bye = tcp_on(&out, alice)
        .into_iter()
        .find(|m| m.method() == Some(&Method::Bye))
        .unwrap_or_else(|| panic!("a BYE to alice over TLS: {out:?}"));
    let via = bye.header(HeaderName::Via).unwrap();
    assert!(via.starts_with(&format!("SIP/2.0/TLS {SIP_TLS};")), "{via}");
}

/// A TLS connect to a `sips:` invitee that fails (refused, or its certificate not trusted)
/// fails the leg at once, as Timer B would: the session settles and the originator gets its
/// BYE without waiting 32 s.
#[test]
fn failed_tls_connect_fails_the_leg_at_once() {
    let mut sim = server(true);
    let out = sim.udp(ALICE, &sips_invite("c4"));
    let ok = udp_to(&out, ALICE)
        .into_iter()
        .find(|m| status_of(m) == 200)
        .unwrap();
    sim.udp(ALICE, &ack_for(&ok, "UDP", ALICE, "z9hG4bKack4"));
    let (conn, _) = connect_of(&out).unwrap();
    let out = sim.input(Input::ConnectFailed { conn });
    let bye = udp_to(&out, ALICE)
        .into_iter()
        .find(|m| m.method() == Some(&Method::Bye));
    assert!(
        bye.is_some(),
        "the leg failed and the session settled: {out:?}"
    );
}

#[test]
fn tls_offer_without_msrp_tls_gets_488() {
    let mut sim = server(false);
    let out = sim.udp(ALICE, &tls_invite("UDP", &["sip:bob@127.0.0.2"]));
    let r = udp_to(&out, ALICE);
    let last = r.last().unwrap();
    assert_eq!(status_of(last), 488, "{r:?}");
    assert!(
        last.header(HeaderName::Warning)
            .unwrap()
            .contains("MSRP over TLS"),
        "{last:?}"
    );
}

#[test]
fn sips_invitee_is_invited_over_a_tls_connection_with_a_tls_offer() {
    let mut sim = server(true);
    let bob = SIPS_BOB;
    let out = sim.udp(ALICE, &sips_invite("c2"));
    assert!(
        udp_to(&out, bob).is_empty(),
        "nothing in clear to a sips: invitee"
    );
    let conn = out
        .iter()
        .find_map(|o| match o {
            Output::Connect { conn, kind, to } if *to == addr(bob) => {
                assert_eq!(*kind, StreamKind::SipTls);
                Some(*conn)
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("a TLS connect to bob: {out:?}"));
    let out = sim.open(conn, StreamKind::SipTls, "127.0.0.1:41000", bob);
    let inv = tcp_on(&out, conn);
    assert_eq!(
        inv.len(),
        1,
        "the INVITE waited for the connection: {out:?}"
    );
    let inv = &inv[0];
    assert_eq!(inv.method(), Some(&Method::Invite));
    let via = inv.header(HeaderName::Via).unwrap();
    assert!(via.starts_with(&format!("SIP/2.0/TLS {SIP_TLS};")), "{via}");
    let contact = inv.header(HeaderName::Contact).unwrap();
    assert!(
        contact.starts_with("<sips:conf-") && contact.contains(&format!("@{SIP_TLS}>")),
        "{contact}"
    );
    let offer = body(inv);
    assert!(offer.contains("m=message 2856 TCP/TLS/MSRP *"), "{offer}");
    assert!(path_of(&offer).starts_with(&format!("msrps://{MSRP_TLS}/")));

    // Without TLS here, the same invitee is unroutable: nothing is sent to it at all.
    assert_eq!(sim.ep.live_sessions(), 1);
    let mut sim = server(false);
    let out = sim.udp(ALICE, &sips_invite("c3"));
    assert!(
        !out.iter().any(|o| matches!(o, Output::Connect { .. })) && udp_to(&out, bob).is_empty(),
        "{out:?}"
    );
}

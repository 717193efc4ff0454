//! Digest authentication in the sans-IO endpoint (RFC 3261 §22), with an application that
//! knows one user: an initial INVITE from an untrusted host gets 401 with a SHA-256 and an
//! MD5 challenge and no machine runs; the same INVITE answering the challenge reaches the
//! machines; a wrong password gets 401 with the same nonce; credentials of another user
//! reach the machines as `request.authenticated_user`, whose rule (the test machine's
//! stand-in for 5.2.1.1 `sender_impersonates`) answers 403; a trusted host is not challenged; an
//! application without a registrar answers REGISTER 405 without a challenge.

#![allow(clippy::expect_used)]

mod common;

use common::harness::{ALICE, MSRP_LOCAL, SIP_LOCAL, Sim, udp_to};
use common::{App, Knobs, addr, crlf, invite, machines_of_app, simple_request, status_of};
use im_runtime::endpoint::{Application, EndpointConfig};
use im_runtime::proto::digest::{Algorithm, StoredHa1, Verifier, ha1, response};
use im_runtime::proto::sip::Message;
use std::time::Instant;

/// The common test application plus two users, alice and carol, password `pw`.
struct WithUsers(App);
impl Application for WithUsers {
    machines_of_app!(0, router);
    fn credentials(&self, username: &str, realm: &str) -> Option<StoredHa1> {
        matches!(username, "alice" | "carol")
            .then(|| StoredHa1::from_password(username, realm, "pw"))
    }
}

#[allow(clippy::disallowed_methods)]
fn epoch() -> Instant {
    Instant::now()
}

fn endpoint(trusted: bool) -> Sim<WithUsers> {
    let t0 = epoch();
    let mut cfg = EndpointConfig::new(addr(SIP_LOCAL), addr(MSRP_LOCAL));
    cfg.auth = Some(Verifier::new("example.com", [9; 32], t0));
    if trusted {
        cfg.trusted_hosts = vec![addr(ALICE).ip()];
    }
    Sim::at(t0, cfg, WithUsers(App(Knobs::default())))
}

/// Sends `text` from alice over UDP; what the endpoint answered her.
fn send(sim: &mut Sim<WithUsers>, text: &str) -> Vec<Message> {
    udp_to(&sim.udp(ALICE, text), ALICE)
}

/// The final statuses among `out` (the INVITE transaction sends 100 Trying first).
fn finals(out: &[Message]) -> Vec<u16> {
    out.iter().map(status_of).filter(|s| *s >= 200).collect()
}

/// `invite` with an Authorization header line added after the Max-Forwards line.
fn with_header(req: &str, line: &str) -> String {
    req.replacen(
        "Max-Forwards: 70\r\n",
        &format!("Max-Forwards: 70\r\n{line}\r\n"),
        1,
    )
}

fn param(challenge: &str, name: &str) -> String {
    let at = challenge.find(&format!("{name}=")).expect("param") + name.len() + 1;
    let rest = challenge.get(at..).expect("rest");
    match rest.strip_prefix('"') {
        Some(q) => q.split('"').next().expect("quoted").to_owned(),
        None => rest.split([',', ' ']).next().expect("token").to_owned(),
    }
}

fn authorization(challenge: &str, user: &str, password: &str, nc: u32) -> String {
    let nonce = param(challenge, "nonce");
    let alg = Algorithm::from_token(&param(challenge, "algorithm")).expect("algorithm");
    let uri = "sip:conference-factory@example.com";
    let h = ha1(alg, user, "example.com", password);
    let nc = format!("{nc:08x}");
    let r = response(alg, &h, &nonce, &nc, "cn", "auth", "INVITE", uri);
    format!(
        "Authorization: Digest username=\"{user}\", realm=\"example.com\", nonce=\"{nonce}\", \
         uri=\"{uri}\", response=\"{r}\", algorithm={}, cnonce=\"cn\", qop=auth, nc={nc}",
        alg.as_str()
    )
}

#[test]
fn an_initial_invite_is_challenged_then_admitted_with_the_right_credentials() {
    let mut sim = endpoint(false);
    let first = invite("UDP", ALICE, "c1", "z9hG4bK1", &["sip:bob@127.0.0.2"]);
    let out = send(&mut sim, &first);
    assert_eq!(finals(&out), [401]);
    let challenge = out.iter().find(|m| status_of(m) == 401).expect("a 401");
    let ch: Vec<String> = challenge
        .headers()
        .filter(|h| h.name_str.eq_ignore_ascii_case("WWW-Authenticate"))
        .map(|h| h.value.to_owned())
        .collect();
    assert_eq!(ch.len(), 2, "{challenge:?}");
    assert!(ch[0].contains("algorithm=SHA-256") && ch[1].contains("algorithm=MD5"));
    assert_eq!(sim.ep.stats().initial_requests, 0, "no machine ran");
    assert_eq!(sim.ep.stats().challenged, 1);

    // A wrong password: 401 again, with the nonce alice answered.
    let wrong = with_header(
        &invite("UDP", ALICE, "c1", "z9hG4bK2", &["sip:bob@127.0.0.2"])
            .replace("CSeq: 1", "CSeq: 2"),
        &authorization(&ch[0], "alice", "nope", 1),
    );
    let out = send(&mut sim, &wrong);
    assert_eq!(finals(&out), [401]);
    let again = out.iter().find(|m| status_of(m) == 401).expect("a 401");
    assert!(
        again
            .headers()
            .any(|h| h.value.contains(&param(&ch[0], "nonce"))),
        "{again:?}"
    );
    // Carol's right credentials on alice's INVITE: the machines hear who authenticated and
    // their rule answers 403.
    let as_carol = with_header(
        &invite("UDP", ALICE, "c2", "z9hG4bK4", &["sip:bob@127.0.0.2"]),
        &authorization(&ch[0], "carol", "pw", 1),
    );
    let out = send(&mut sim, &as_carol);
    assert_eq!(finals(&out), [403]);
    assert_eq!(
        sim.ep.stats().initial_requests,
        1,
        "a machine answered carol"
    );

    let right = with_header(
        &invite("UDP", ALICE, "c1", "z9hG4bK3", &["sip:bob@127.0.0.2"])
            .replace("CSeq: 1", "CSeq: 3"),
        // nc 1 on this nonce was carol's: the next one.
        &authorization(&ch[1], "alice", "pw", 2),
    );
    let out = send(&mut sim, &right);
    assert!(
        out.iter()
            .all(|m| status_of(m) != 401 && status_of(m) != 403),
        "{out:?}"
    );
    assert_eq!(sim.ep.stats().initial_requests, 2, "the machines ran");
}

#[test]
fn a_trusted_host_is_not_challenged_and_register_without_registrar_is_405() {
    let mut sim = endpoint(true);
    let first = invite("UDP", ALICE, "c1", "z9hG4bK1", &["sip:bob@127.0.0.2"]);
    let out = send(&mut sim, &first);
    assert!(out.iter().all(|m| status_of(m) != 401), "{out:?}");
    assert_eq!(sim.ep.stats().initial_requests, 1);

    let mut sim = endpoint(false);
    let reg = crlf(&simple_request(
        "REGISTER",
        "UDP",
        ALICE,
        "r1",
        "z9hG4bKr1",
        "<sip:alice@example.com>",
        1,
        "Contact: <sip:alice@127.0.0.1:5070>\n",
    ));
    let out = send(&mut sim, &reg);
    assert_eq!(finals(&out), [405]);
    assert_eq!(sim.ep.stats().challenged, 0);
}

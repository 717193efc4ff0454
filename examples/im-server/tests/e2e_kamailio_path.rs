//! Path (RFC 3327) end to end: Kamailio with `scripts/kamailio/edge_path.cfg` (its `path`
//! module, `add_path_received()`) as the edge proxy bob registers through, im-server as the
//! registrar, all on loopback.
//!
//! - bob's REGISTER (with `Supported: path`) reaches the server with Kamailio's Path; the
//!   200 bob gets back carries that Path (RFC 3327 §5.3);
//! - alice starts a group session with bob (SIPp, pager mode, straight to the server): the
//!   server sends bob's INVITE to Kamailio with the Path as its Route, and bob receives it
//!   from Kamailio (Kamailio's Via on top, its Record-Route), not from the server.

#![allow(clippy::disallowed_methods)]

mod common;

use common::kamailio::{Kamailio, register};
use common::{Server, free_udp_port, group_folder, session_to_bob, sip_log};

const GROUP: &str = "sip:kamailio-path@example.com";
const ALICE: &str = "sip:alice@example.com";
const BOB: &str = "sip:bob@example.com";

#[test]
fn a_phone_registered_through_kamailio_with_path_is_invited_through_it() {
    let groups = group_folder(GROUP, &[ALICE.to_owned(), BOB.to_owned()]);
    let server = Server::start(&["--groups", groups.path().to_str().unwrap()]);
    // Kamailio's edge proxy, relaying to the server.
    let kam = Kamailio::start("edge_path.cfg", |_| {
        vec![format!("IMSERVER=\"sip:{}\"", server.sip)]
    });

    // bob registers through Kamailio from the port SIPp will answer on.
    let bob_port = free_udp_port();
    {
        let contact = format!("sip:bob@127.0.0.1:{bob_port}");
        let extra = "Supported: path\r\n";
        let answer = register(kam.sip, BOB, bob_port, &contact, "register-bob-path", extra);
        assert!(
            answer.starts_with("SIP/2.0 200"),
            "{answer}\n{}\n{}",
            kam.log(),
            server.log()
        );
        // RFC 3327 §5.3: the registrar returns the Path Kamailio added, to a UA that
        // supports Path.
        let path = answer
            .lines()
            .find_map(|l| l.strip_prefix("Path: "))
            .unwrap_or_else(|| panic!("a Path in the 200: {answer}"));
        assert!(
            path.starts_with(&format!("<sip:{};", kam.sip)) && path.contains("received="),
            "{path}"
        );
    }

    let (run, b) = session_to_bob(server.sip, GROUP, ALICE, bob_port, None);
    assert!(run.success(), "{run:?}\n{}\n{}", kam.log(), server.log());
    assert!(b.success(), "bob: {b:?}\n{}\n{}", kam.log(), server.log());
    // bob's INVITE came from Kamailio: its Via on top (the server's under it) and its
    // Record-Route, and the server's Route to it consumed.
    let log = sip_log(&b.messages);
    let invite = log
        .iter()
        .find(|m| m.received && m.start.starts_with("INVITE "))
        .unwrap_or_else(|| panic!("bob received an INVITE: {}", b.messages));
    let vias: Vec<&str> = invite
        .text
        .lines()
        .filter_map(|l| l.strip_prefix("Via: "))
        .collect();
    assert_eq!(vias.len(), 2, "{}", invite.text);
    assert!(
        vias[0].starts_with(&format!("SIP/2.0/UDP {};", kam.sip)),
        "{}",
        invite.text
    );
    assert!(
        vias[1].starts_with(&format!("SIP/2.0/UDP {};", server.sip)),
        "{}",
        invite.text
    );
    assert_eq!(
        invite
            .header("Record-Route")
            .map(|r| r.starts_with(&format!("<sip:{};lr", kam.sip))),
        Some(true),
        "{}",
        invite.text
    );
    assert!(invite.header("Route").is_none(), "{}", invite.text);
}

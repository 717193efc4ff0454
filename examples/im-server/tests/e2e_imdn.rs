//! End-to-end delivery reports (the `ext-dr` extension, `specs/ext_delivery_reports.imspec`):
//! the real `im-server` binary and the independent Python peer `tests/peers/imdn_peer.py`
//! (its own SIP, CPIM and IMDN code, written from RFC 3261, RFC 3862 and RFC 5438), which
//! plays the sender and the group's members.
//!
//! What these tests hold the server to:
//! * a page-mode MESSAGE to a pre-defined group whose `message/cpim` body asks for
//!   positive and negative delivery notifications yields one IMDN per member, as a SIP
//!   MESSAGE (`Content-Type: message/cpim`, `Content-Disposition: notification`) carrying a
//!   `message/imdn+xml` document: `delivered` for a member that answered 200, `failed` for
//!   one that declined, each naming that member in `recipient-uri` and
//!   `original-recipient-uri`, with the sender's `imdn.Message-ID` and `DateTime`;
//! * the copies keep the sender's `imdn.Message-ID` unchanged;
//! * a sender with a domain URI gets its notifications at its registered contact, or,
//!   with no registration, back at the source address of its request;
//! * a MESSAGE that asks for nothing gets no notification;
//! * with `--aggregate-imdns` the sender gets the same notifications in one message
//!   (`multipart/mixed`, one `message/cpim` IMDN per member; ext-dr.7).

#![allow(clippy::disallowed_methods)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{Server, free_udp_port, group_folder, python3};

const GROUP: &str = "sip:e2e@example.com";
const ALICE: &str = "sip:alice@example.com";

/// Runs `imdn_peer.py` to its end (it has its own timeout) and returns its JSON events.
fn run_peer(args: &[String]) -> (Vec<serde_json::Value>, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/imdn_peer.py");
    let out = Command::new(python3())
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run imdn_peer.py");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let events = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let log = format!(
        "exit {:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    (events, log)
}

fn named<'a>(events: &'a [serde_json::Value], name: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

// covers: ext-dr.1/report_delivered, ext-dr.2/report_failed
#[test]
fn page_mode_group_of_three_one_declines_two_delivered_one_failed() {
    page_mode_group_of_three(false);
}

/// The same with a sender that registered a contact other than its source: the
/// notifications go to the registered contact.
#[test]
fn page_mode_notifications_go_to_the_registered_contact() {
    page_mode_group_of_three(true);
}

fn page_mode_group_of_three(register: bool) {
    let ports: Vec<u16> = (0..3).map(|_| free_udp_port()).collect();
    let members: Vec<String> = ["bob", "carol", "dave"]
        .iter()
        .zip(&ports)
        .map(|(u, p)| format!("sip:{u}@127.0.0.1:{p}"))
        .collect();
    let mut all = vec![ALICE.to_string()];
    all.extend(members.iter().cloned());
    let groups = group_folder(GROUP, &all);
    let server = Server::start(&["--groups", groups.path().to_str().expect("utf-8")]);
    let sender = free_udp_port();
    let message_id = "imdn-e2e-0001";
    let contact = free_udp_port();
    let mut args: Vec<String> = vec![
        "--server".into(),
        server.sip.to_string(),
        "--listen".into(),
        format!("127.0.0.1:{sender}"),
        "--from-uri".into(),
        ALICE.into(),
        "--to".into(),
        GROUP.into(),
        "--recipient".into(),
        format!("127.0.0.1:{}=200", ports[0]),
        "--recipient".into(),
        format!("127.0.0.1:{}=200", ports[1]),
        // dave declines
        "--recipient".into(),
        format!("127.0.0.1:{}=486", ports[2]),
        "--expect".into(),
        "3".into(),
        "--message-id".into(),
        message_id.into(),
        "--timeout".into(),
        "10".into(),
        "--grace".into(),
        "1".into(),
    ];
    if register {
        args.extend(["--register".into(), format!("127.0.0.1:{contact}")]);
    }
    let (events, log) = run_peer(&args);
    let log = format!("{log}\n--- server ---\n{}", server.log());
    assert!(!named(&events, "done").is_empty(), "{log}");
    assert_eq!(named(&events, "response")[0]["status"], 202, "{log}");

    // Every member got one copy, with the sender's imdn.Message-ID unchanged.
    let copies = named(&events, "copy");
    assert_eq!(copies.len(), 3, "{log}");
    for c in &copies {
        assert_eq!(c["imdn_message_id"], message_id, "{log}");
    }

    // One notification per member, no more (the peer waits 1 s after the third).
    let imdns = named(&events, "imdn");
    assert_eq!(imdns.len(), 3, "{log}");
    let mut outcome: Vec<(String, String)> = Vec::new();
    for n in &imdns {
        assert!(n.get("error").is_none(), "{log}");
        assert_eq!(n["request_uri"], ALICE, "{log}");
        assert_eq!(n["sip_content_type"], "message/cpim", "{log}");
        assert_eq!(n["sip_content_disposition"], "notification", "{log}");
        assert_eq!(n["content_type"], "message/imdn+xml", "{log}");
        assert_eq!(n["content_disposition"], "notification", "{log}");
        assert_eq!(n["root"], "{urn:ietf:params:xml:ns:imdn}imdn", "{log}");
        assert_eq!(n["message_id"], message_id, "{log}");
        assert_eq!(n["datetime"], "2026-12-06T04:00:00Z", "{log}");
        assert_ne!(n["cpim_message_id"], message_id, "{log}");
        assert_eq!(n["recipient_uri"], n["original_recipient_uri"], "{log}");
        // Registered: to the contact; not registered (a domain URI): back to the source.
        let at = if register { contact } else { sender };
        assert_eq!(n["at"], format!("127.0.0.1:{at}"), "{log}");
        outcome.push((
            n["recipient_uri"].as_str().unwrap_or("").to_string(),
            n["status"].as_str().unwrap_or("").to_string(),
        ));
    }
    outcome.sort();
    let mut want = vec![
        (members[0].clone(), "delivered".to_string()),
        (members[1].clone(), "delivered".to_string()),
        (members[2].clone(), "failed".to_string()),
    ];
    want.sort();
    assert_eq!(outcome, want, "{log}");
}

/// With `--aggregate-imdns` (RFC 5438: aggregation is the list server's local policy) the
/// same exchange yields one SIP MESSAGE to the sender whose `multipart/mixed` body (read by
/// the peer with Python's email package) holds one `message/cpim` IMDN per member, naming
/// each member with its outcome; no separate notification follows. Without the flag the
/// tests above get one notification per member.
// covers: ext-dr.7/collect_delivered, ext-dr.7/collect_failed
#[test]
fn page_mode_aggregated_one_message_names_every_recipient() {
    let ports: Vec<u16> = (0..3).map(|_| free_udp_port()).collect();
    let members: Vec<String> = ["bob", "carol", "dave"]
        .iter()
        .zip(&ports)
        .map(|(u, p)| format!("sip:{u}@127.0.0.1:{p}"))
        .collect();
    let mut all = vec![ALICE.to_string()];
    all.extend(members.iter().cloned());
    let groups = group_folder(GROUP, &all);
    let server = Server::start(&[
        "--groups",
        groups.path().to_str().expect("utf-8"),
        "--aggregate-imdns",
    ]);
    let sender = free_udp_port();
    let message_id = "imdn-e2e-agg-1";
    let args: Vec<String> = vec![
        "--server".into(),
        server.sip.to_string(),
        "--listen".into(),
        format!("127.0.0.1:{sender}"),
        "--from-uri".into(),
        ALICE.into(),
        "--to".into(),
        GROUP.into(),
        "--recipient".into(),
        format!("127.0.0.1:{}=200", ports[0]),
        "--recipient".into(),
        format!("127.0.0.1:{}=486", ports[1]),
        "--recipient".into(),
        format!("127.0.0.1:{}=200", ports[2]),
        "--expect".into(),
        "1".into(),
        "--message-id".into(),
        message_id.into(),
        "--timeout".into(),
        "10".into(),
        // Long enough for any per-recipient notification that should not come.
        "--grace".into(),
        "1.5".into(),
    ];
    let (events, log) = run_peer(&args);
    let log = format!("{log}\n--- server ---\n{}", server.log());
    assert!(!named(&events, "done").is_empty(), "{log}");
    assert_eq!(named(&events, "copy").len(), 3, "{log}");
    assert!(named(&events, "imdn").is_empty(), "{log}");
    let agg = named(&events, "imdn_aggregate");
    assert_eq!(agg.len(), 1, "{log}");
    let a = agg[0];
    assert!(a.get("error").is_none(), "{log}");
    assert_eq!(a["request_uri"], ALICE, "{log}");
    assert_eq!(a["sip_content_disposition"], "notification", "{log}");
    assert!(
        a["sip_content_type"]
            .as_str()
            .unwrap_or("")
            .starts_with("multipart/mixed"),
        "{log}"
    );
    let parts = a["parts"].as_array().expect("parts");
    let mut outcome: Vec<(String, String)> = Vec::new();
    for p in parts {
        assert_eq!(p["part_content_type"], "message/cpim", "{log}");
        assert_eq!(p["content_type"], "message/imdn+xml", "{log}");
        assert_eq!(p["root"], "{urn:ietf:params:xml:ns:imdn}imdn", "{log}");
        assert_eq!(p["message_id"], message_id, "{log}");
        assert_eq!(p["datetime"], "2026-12-06T04:00:00Z", "{log}");
        assert_eq!(p["recipient_uri"], p["original_recipient_uri"], "{log}");
        outcome.push((
            p["recipient_uri"].as_str().unwrap_or("").to_string(),
            p["status"].as_str().unwrap_or("").to_string(),
        ));
    }
    outcome.sort();
    let mut want = vec![
        (members[0].clone(), "delivered".to_string()),
        (members[1].clone(), "failed".to_string()),
        (members[2].clone(), "delivered".to_string()),
    ];
    want.sort();
    assert_eq!(outcome, want, "{log}");
}

#[test]
fn page_mode_without_an_imdn_request_gets_no_notification() {
    let ports: Vec<u16> = (0..2).map(|_| free_udp_port()).collect();
    let mut all = vec![ALICE.to_string()];
    all.extend(ports.iter().map(|p| format!("sip:m{p}@127.0.0.1:{p}")));
    let groups = group_folder(GROUP, &all);
    let server = Server::start(&["--groups", groups.path().to_str().expect("utf-8")]);
    let sender = free_udp_port();
    let args: Vec<String> = vec![
        "--server".into(),
        server.sip.to_string(),
        "--listen".into(),
        format!("127.0.0.1:{sender}"),
        "--from-uri".into(),
        ALICE.into(),
        "--to".into(),
        GROUP.into(),
        "--recipient".into(),
        format!("127.0.0.1:{}=200", ports[0]),
        "--recipient".into(),
        format!("127.0.0.1:{}=486", ports[1]),
        "--plain".into(),
        "--expect".into(),
        "0".into(),
        "--grace".into(),
        "1.5".into(),
    ];
    let (events, log) = run_peer(&args);
    assert!(!named(&events, "done").is_empty(), "{log}");
    assert_eq!(named(&events, "copy").len(), 2, "{log}");
    assert!(named(&events, "imdn").is_empty(), "{log}");
}

/// A member's own IMDN sent to the group (RFC 5438: the list service as IMDN forwarder)
/// reaches the original sender its CPIM `To` names, and no other member.
// covers: ext-dr.3/notification_to_sender
#[test]
fn a_members_imdn_to_the_group_reaches_only_the_original_sender() {
    let alice_port = free_udp_port();
    let carol_port = free_udp_port();
    let alice = format!("sip:alice@127.0.0.1:{alice_port}");
    let bob = "sip:bob@example.com";
    let members = vec![
        alice.clone(),
        bob.to_string(),
        format!("sip:carol@127.0.0.1:{carol_port}"),
    ];
    let groups = group_folder(GROUP, &members);
    let server = Server::start(&["--groups", groups.path().to_str().expect("utf-8")]);
    let args: Vec<String> = vec![
        "--server".into(),
        server.sip.to_string(),
        "--listen".into(),
        format!("127.0.0.1:{}", free_udp_port()),
        "--from-uri".into(),
        bob.into(),
        "--to".into(),
        GROUP.into(),
        "--send-imdn".into(),
        alice.clone(),
        "--message-id".into(),
        "original-0001".into(),
        "--recipient".into(),
        format!("127.0.0.1:{alice_port}=200"),
        "--recipient".into(),
        format!("127.0.0.1:{carol_port}=200"),
        "--expect".into(),
        "0".into(),
        "--grace".into(),
        "1.5".into(),
    ];
    let (events, log) = run_peer(&args);
    let log = format!("{log}\n--- server ---\n{}", server.log());
    assert!(!named(&events, "done").is_empty(), "{log}");
    assert_eq!(named(&events, "response")[0]["status"], 202, "{log}");
    let copies = named(&events, "copy");
    assert_eq!(copies.len(), 1, "only the original sender: {log}");
    assert_eq!(copies[0]["at"], format!("127.0.0.1:{alice_port}"), "{log}");
    assert_eq!(copies[0]["cpim_content_type"], "message/imdn+xml", "{log}");
}

/// An IMDN-shaped message whose CPIM `To` is not a member is not relayed anywhere (and
/// not exploded either).
#[test]
fn an_imdn_to_a_non_member_is_not_relayed() {
    let carol_port = free_udp_port();
    let outsider_port = free_udp_port();
    let bob = "sip:bob@example.com";
    let members = vec![bob.to_string(), format!("sip:carol@127.0.0.1:{carol_port}")];
    let groups = group_folder(GROUP, &members);
    let server = Server::start(&["--groups", groups.path().to_str().expect("utf-8")]);
    let args: Vec<String> = vec![
        "--server".into(),
        server.sip.to_string(),
        "--listen".into(),
        format!("127.0.0.1:{}", free_udp_port()),
        "--from-uri".into(),
        bob.into(),
        "--to".into(),
        GROUP.into(),
        "--send-imdn".into(),
        format!("sip:eve@127.0.0.1:{outsider_port}"),
        "--recipient".into(),
        format!("127.0.0.1:{outsider_port}=200"),
        "--recipient".into(),
        format!("127.0.0.1:{carol_port}=200"),
        "--expect".into(),
        "0".into(),
        "--grace".into(),
        "1.5".into(),
    ];
    let (events, log) = run_peer(&args);
    assert!(!named(&events, "done").is_empty(), "{log}");
    assert!(named(&events, "copy").is_empty(), "{log}");
}

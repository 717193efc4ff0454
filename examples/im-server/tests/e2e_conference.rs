//! End-to-end conference state (the `ext-dr` extension, rules ext-dr.4 and ext-dr.5 of
//! `specs/ext_delivery_reports.imspec`; RFC 4575 over RFC 6665): the real `im-server`
//! binary, SIPp as the originator's SIP side and as the invitees, the Python MSRP peer
//! (`tests/peers/msrp_peer.py`) for the MSRP sides, the IMDN collector
//! (`tests/peers/imdn_peer.py --collect`) and the independent SUBSCRIBE client
//! `tests/peers/conference_peer.py` (stdlib SIP and XML, written from the RFCs).
//!
//! The originator's subscription is to the focus URI of the 200's Contact, outside the
//! INVITE dialog (what RFC 4579 §5 / RFC 4575 §3 clients do), made before the originator
//! sends its message.

#![allow(clippy::disallowed_methods)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Invitees, MsrpPeer, Server, Sipp, SippProc, group_folder};

const GROUP: &str = "sip:e2e@example.com";

fn conference_peer(args: &[&str]) -> MsrpPeer {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/conference_peer.py");
    MsrpPeer::spawn_script(
        &script,
        tempfile::tempdir().unwrap(),
        args,
        Duration::from_secs(40),
    )
}

/// Runs a subscriber to its end (a final error answer, or a terminated NOTIFY).
fn subscribe_once(server: &Server, focus: &str, from: &str, extra: &[&str]) -> MsrpPeer {
    let listen = format!("127.0.0.1:{}", common::free_udp_port());
    let sip = server.sip.to_string();
    let mut args = vec![
        "--server",
        &sip,
        "--listen",
        &listen,
        "--focus",
        focus,
        "--from-uri",
        from,
        "--timeout",
        "10",
    ];
    args.extend_from_slice(extra);
    let mut p = conference_peer(&args);
    p.wait();
    p
}

fn response_of(p: &MsrpPeer) -> serde_json::Value {
    p.events()
        .into_iter()
        .find(|e| e["event"] == "response")
        .unwrap_or_else(|| panic!("no response: {p:?}"))
}

/// The line of the SIPp UAC's `<log>` output after `prefix`.
fn logged(uac: &mut SippProc, prefix: &str) -> String {
    uac.wait_for_log(prefix, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("the UAC logged no {prefix}"))
}

/// The originator's SIP side (SIPp): INVITE, 200 (its path and focus logged), ACK.
struct Originator {
    uac: SippProc,
    /// The server's `a=path` for the originator.
    path: String,
    /// The focus URI of the 200's Contact.
    focus: String,
    /// The originator's own MSRP path.
    from_path: String,
}

fn originate(server: &Server, alice: &str) -> Originator {
    let msrp_port = common::free_tcp_port();
    let from_path = format!("msrp://127.0.0.1:{msrp_port}/o1x;tcp");
    let mut uac = Sipp::new("pager_msrp")
        .to(server.sip)
        .key("target", GROUP)
        .key("from", alice)
        .key("accept", "message/cpim text/plain")
        .key("msrp_port", &msrp_port.to_string())
        .key("setup", "a=setup:active")
        .key("answer_setup", "a=setup:passive")
        .timeouts(Duration::from_secs(25), Duration::from_secs(40))
        .spawn();
    let path = logged(&mut uac, "server-path ");
    let focus = logged(&mut uac, "server-focus ");
    Originator {
        uac,
        path,
        focus,
        from_path,
    }
}

/// The originator's MSRP side sends `data` (message/cpim) to the server's `path`.
fn send(path: &str, from_path: &str, data: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data.bin"), data).unwrap();
    let authority = path
        .strip_prefix("msrp://")
        .and_then(|r| r.split('/').next())
        .unwrap()
        .to_owned();
    let mut sender = MsrpPeer::spawn(
        dir,
        &[
            "send",
            "--from-path",
            from_path,
            "--file",
            "{dir}/data.bin",
            "--content-type",
            "message/cpim",
            "--success-report",
            "yes",
            "--timeout",
            "20",
            "--connect",
            &authority,
            "--to-path",
            path,
        ],
        Duration::from_secs(30),
    );
    let _ = sender.wait();
}

/// A message/cpim body from `alice` asking for both delivery notifications.
fn cpim(alice: &str, message_id: &str) -> String {
    format!(
        "From: <{alice}>\r\nTo: <{GROUP}>\r\nNS: imdn <urn:ietf:params:imdn>\r\n\
         imdn.Message-ID: {message_id}\r\nDateTime: 2026-12-06T04:00:00Z\r\n\
         imdn.Disposition-Notification: positive-delivery, negative-delivery\r\n\r\n\
         Content-Type: text/plain\r\n\r\nhello, conference\r\n"
    )
}

/// A subscriber that stays until its subscription ends.
fn subscriber(server: &Server, focus: &str, from: &str, extra: &[&str]) -> MsrpPeer {
    let listen = format!("127.0.0.1:{}", common::free_udp_port());
    let sip = server.sip.to_string();
    let mut args = vec![
        "--server",
        &sip,
        "--listen",
        &listen,
        "--focus",
        focus,
        "--from-uri",
        from,
        "--expires",
        "600",
        "--timeout",
        "35",
    ];
    args.extend_from_slice(extra);
    conference_peer(&args)
}

fn notifies(p: &MsrpPeer) -> Vec<serde_json::Value> {
    let mut n: Vec<serde_json::Value> = p
        .events()
        .into_iter()
        .filter(|e| e["event"] == "notify")
        .collect();
    n.sort_by_key(|e| e["cseq"].as_u64());
    n
}

/// The done-when: four invitees, one declines (486), one answers but drops its
/// MSRP connection, two receive. The originator gets two `delivered` and two `failed`
/// IMDNs naming the right recipients, and a NOTIFY sequence (versions 1, 2, … in order,
/// every body a full `conference-info` document) whose last body, sent with
/// `terminated;reason=noresource` as the session ends, shows the same four outcomes. On
/// the way: someone else's SUBSCRIBE gets 403 (ext-dr.4), another event package 489, a
/// URI that names no session 404.
// covers: ext-dr.4/originator_subscribes, ext-dr.4/not_the_originator, ext-dr.5/notify_change
// covers: ext-dr.1/report_delivered, ext-dr.2/report_failed
#[test]
fn four_invitees_two_delivered_one_declined_one_dropped_imdns_and_notifies_agree() {
    let collector_port = common::free_udp_port();
    let alice = format!("sip:alice@127.0.0.1:{collector_port}");
    let mut collector = MsrpPeer::spawn_script(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/imdn_peer.py"),
        tempfile::tempdir().unwrap(),
        &[
            "--collect",
            "--listen",
            &format!("127.0.0.1:{collector_port}"),
            "--expect",
            "4",
            "--timeout",
            "30",
            "--grace",
            "1",
        ],
        Duration::from_secs(40),
    );
    // Two receiving invitees: one SIPp UAS (two calls) whose answers point at one Python
    // MSRP receiver.
    let Invitees {
        receiver,
        uas,
        host,
    } = Invitees::start(2, 2, 30);
    // The declining invitee.
    let busy = Sipp::new("uas_busy").timeouts(Duration::from_secs(25), Duration::from_secs(40));
    let busy_uri = format!("sip:busy@{}", busy.local());
    let busy = busy.spawn();
    // The dropping invitee: its answer names a TCP port whose listener closes each MSRP
    // connection as soon as it opens.
    let dropper = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let drop_port = dropper.local_addr().unwrap().port().to_string();
    std::thread::spawn(move || {
        for c in dropper.incoming() {
            drop(c);
        }
    });
    let dropping = Sipp::new("uas_msrp")
        .calls(1)
        .key("msrp_port", &drop_port)
        .timeouts(Duration::from_secs(25), Duration::from_secs(40));
    let drop_uri = format!("sip:drop@{}", dropping.local());
    let dropping = dropping.spawn();
    let inv0 = format!("sip:inv0@{host}");
    let inv1 = format!("sip:inv1@{host}");
    let members = [
        inv0.clone(),
        inv1.clone(),
        busy_uri.clone(),
        drop_uri.clone(),
        alice.clone(),
    ];
    let groups = group_folder(GROUP, &members);
    // Two workers: each SUBSCRIBE has a Call-ID of the subscriber's choosing, so it must be
    // steered by the focus URI (and the NOTIFYs' answers by our tag) to the worker holding
    // the session (`steer::conference_key`); by Call-ID it would miss half the time (404).
    let server = Server::start(&[
        "--groups",
        groups.path().to_str().unwrap(),
        "--workers",
        "1",
    ]);

    let Originator {
        uac,
        path,
        focus,
        from_path,
    } = originate(&server, &alice);
    assert!(focus.starts_with("sip:conf-"), "{focus}");

    // The originator subscribes to the focus and has the full state before it sends.
    let mut subscriber = subscriber(&server, &focus, &alice, &[]);
    let first = subscriber
        .wait_for_event("notify", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no first NOTIFY: {subscriber:?}\n{}", server.log()));
    assert_eq!(first["version"], 1, "{first}");
    assert_eq!(
        first["users"].as_array().map(Vec::len),
        Some(4),
        "every invitee from the first NOTIFY on: {first}"
    );

    // ext-dr.4: not the originator → 403; RFC 6665: another package → 489 naming ours;
    // a URI that names no session → 404.
    let bob = subscribe_once(&server, &focus, &inv0, &[]);
    let r = response_of(&bob);
    assert_eq!(r["status"], 403, "{bob:?}");
    assert!(
        r["warning"]
            .as_str()
            .unwrap_or("")
            .contains("only the originator"),
        "{r}"
    );
    let presence = subscribe_once(&server, &focus, &alice, &["--event", "presence"]);
    let r = response_of(&presence);
    assert_eq!(r["status"], 489, "{presence:?}");
    assert_eq!(r["allow_events"], "conference", "{r}");
    let nobody = focus.replacen("conf-", "conf-9", 1);
    let gone = subscribe_once(&server, &nobody, &alice, &[]);
    assert_eq!(response_of(&gone)["status"], 404, "{gone:?}");

    // Now the message: message/cpim asking for both delivery notifications.
    let message_id = "conference-e2e-0001";
    let data = cpim(&alice, message_id);
    send(&path, &from_path, data.as_bytes());
    let uac = uac.wait();
    let uas = uas.wait();
    let busy = busy.wait();
    let dropping = dropping.wait();
    let mut receiver = receiver;
    let _ = receiver.wait();
    let collected = collector.wait();
    let subscribed = subscriber.wait();
    let log = format!(
        "{subscriber:?}\n{collector:?}\n--- server ---\n{}",
        server.log()
    );
    assert!(uac.success(), "{uac:?}\n{log}");
    assert!(uas.success(), "{uas:?}");
    assert!(busy.success(), "{busy:?}");
    assert!(dropping.success(), "{dropping:?}");
    assert_eq!(collected, Some(0), "{log}");
    assert_eq!(subscribed, Some(0), "{log}");

    // The IMDNs: two delivered, two failed, naming the right recipients.
    let mut imdns: Vec<(String, String)> = collector
        .events()
        .into_iter()
        .filter(|e| e["event"] == "imdn")
        .map(|e| {
            assert_eq!(e["message_id"], message_id, "{log}");
            (
                e["recipient_uri"].as_str().unwrap_or("").to_owned(),
                e["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    imdns.sort();
    let mut want = vec![
        (inv0.clone(), "delivered".to_owned()),
        (inv1.clone(), "delivered".to_owned()),
        (busy_uri.clone(), "failed".to_owned()),
        (drop_uri.clone(), "failed".to_owned()),
    ];
    want.sort();
    assert_eq!(imdns, want, "{log}");

    // The NOTIFY sequence: versions 1, 2, … in CSeq order, every one a full document about
    // the conference package, active until the last, which ends the subscription.
    let notifies = notifies(&subscriber);
    assert!(notifies.len() >= 2, "{log}");
    for (i, n) in notifies.iter().enumerate() {
        assert!(n.get("error").is_none(), "{n}");
        assert_eq!(n["version"], i as u64 + 1, "{log}");
        assert_eq!(n["state"], "full", "{n}");
        assert_eq!(n["entity"], focus.as_str(), "{n}");
        assert_eq!(n["event_header"], "conference", "{n}");
        assert_eq!(n["content_type"], "application/conference-info+xml", "{n}");
        let st = n["subscription_state"].as_str().unwrap_or("");
        if i + 1 < notifies.len() {
            assert!(st.starts_with("active;expires="), "{n}");
        } else {
            assert_eq!(st, "terminated;reason=noresource", "{n}");
        }
    }
    let last = notifies.last().unwrap();
    let mut outcomes: Vec<(String, String, String)> = last["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["entity"].as_str().unwrap_or("").to_owned(),
                u["status"].as_str().unwrap_or("").to_owned(),
                u["delivery"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    outcomes.sort();
    let mut want = vec![
        (
            inv0.clone(),
            "disconnected".to_owned(),
            "delivered".to_owned(),
        ),
        (
            inv1.clone(),
            "disconnected".to_owned(),
            "delivered".to_owned(),
        ),
        (
            busy_uri.clone(),
            "disconnected".to_owned(),
            "failed".to_owned(),
        ),
        (
            drop_uri.clone(),
            "disconnected".to_owned(),
            "failed".to_owned(),
        ),
    ];
    want.sort();
    assert_eq!(outcomes, want, "{log}");
    let user = |uri: &str| {
        last["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["entity"] == uri)
            .cloned()
            .unwrap()
    };
    // The declined one with its SIP reason; the dropped one failed with its MSRP status;
    // the two that received left normally.
    let b = user(&busy_uri);
    assert_eq!(b["disconnection_method"], "busy", "{b}");
    assert_eq!(b["reason"], "SIP;cause=486;text=\"Busy Here\"", "{b}");
    let d = user(&drop_uri);
    assert_eq!(d["disconnection_method"], "failed", "{d}");
    assert!(
        d["reason"]
            .as_str()
            .unwrap_or("")
            .starts_with("MSRP;cause="),
        "{d}"
    );
    for u in [&inv0, &inv1] {
        assert_eq!(user(u)["disconnection_method"], "departed", "{log}");
    }
    // Some NOTIFY before the last already had every delivery outcome (ext-dr.5 notifies
    // each change, not only the end).
    assert!(
        notifies[..notifies.len() - 1].iter().any(|n| {
            n["users"]
                .as_array()
                .is_some_and(|us| us.iter().all(|u| u["delivery"] != "pending"))
        }),
        "{log}"
    );
}

/// The subscription's own life (RFC 6665): an unsubscribe (Expires: 0 in the dialog) gets
/// 200 and a last NOTIFY `terminated;reason=timeout`, and frees its place; past the
/// per-session limit (`--max-subscriptions-per-session 1`) a SUBSCRIBE gets 403 naming the
/// limit; a subscription still there when the session ends gets
/// `terminated;reason=noresource` with the final state.
// covers: ext-dr.4/originator_subscribes, ext-dr.5/notify_change
#[test]
fn unsubscribe_per_session_limit_and_the_end_of_the_session() {
    let alice = format!("sip:alice@127.0.0.1:{}", common::free_udp_port());
    let Invitees {
        mut receiver,
        uas,
        host,
    } = Invitees::start(1, 1, 30);
    let inv0 = format!("sip:inv0@{host}");
    let groups = group_folder(GROUP, &[inv0.clone(), alice.clone()]);
    let server = Server::start(&[
        "--groups",
        groups.path().to_str().unwrap(),
        "--workers",
        "2",
        "--max-subscriptions-per-session",
        "1",
    ]);
    let Originator {
        uac,
        path,
        focus,
        from_path,
    } = originate(&server, &alice);

    // Subscribe, then unsubscribe after the first NOTIFY.
    let mut leaving = subscriber(&server, &focus, &alice, &["--unsubscribe-after", "1"]);
    assert_eq!(leaving.wait(), Some(0), "{leaving:?}\n{}", server.log());
    let responses: Vec<serde_json::Value> = leaving
        .events()
        .into_iter()
        .filter(|e| e["event"] == "response")
        .collect();
    assert_eq!(responses.len(), 2, "{leaving:?}");
    assert_eq!(responses[0]["status"], 200, "{leaving:?}");
    assert_eq!(responses[0]["expires"], "600", "{leaving:?}");
    assert_eq!(responses[1]["status"], 200, "{leaving:?}");
    assert_eq!(responses[1]["expires"], "0", "{leaving:?}");
    let n = notifies(&leaving);
    assert_eq!(n.len(), 2, "{leaving:?}");
    assert_eq!(n[0]["version"], 1);
    assert!(
        n[0]["subscription_state"]
            .as_str()
            .unwrap_or("")
            .starts_with("active;expires="),
        "{leaving:?}"
    );
    assert_eq!(n[1]["version"], 2);
    assert_eq!(n[1]["subscription_state"], "terminated;reason=timeout");

    // Its place is free again: one subscriber stays; a second one is over the limit.
    let mut staying = subscriber(&server, &focus, &alice, &[]);
    staying
        .wait_for_event("notify", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no NOTIFY: {staying:?}\n{}", server.log()));
    let over = subscribe_once(&server, &focus, &alice, &[]);
    let r = response_of(&over);
    assert_eq!(r["status"], 403, "{over:?}");
    assert!(
        r["warning"]
            .as_str()
            .unwrap_or("")
            .contains("at most 1 per session"),
        "{r}"
    );

    send(
        &path,
        &from_path,
        cpim(&alice, "conference-e2e-0002").as_bytes(),
    );
    let uac = uac.wait();
    let uas = uas.wait();
    let _ = receiver.wait();
    assert_eq!(staying.wait(), Some(0), "{staying:?}\n{}", server.log());
    assert!(uac.success(), "{uac:?}");
    assert!(uas.success(), "{uas:?}");
    let n = notifies(&staying);
    let last = n.last().unwrap();
    assert_eq!(last["subscription_state"], "terminated;reason=noresource");
    assert_eq!(last["version"], n.len() as u64, "{staying:?}");
    assert_eq!(last["active"], "false", "{last}");
    let users = last["users"].as_array().unwrap();
    assert_eq!(users.len(), 1, "{last}");
    assert_eq!(users[0]["entity"], inv0.as_str());
    assert_eq!(users[0]["status"], "disconnected");
    assert_eq!(users[0]["delivery"], "delivered");
}

//! End-to-end TLS tests (RFC 3261 §26.2 SIP over TLS, RFC 4975 §14 MSRP over TLS): the real
//! `im-server` binary with a certificate signed by a CA generated here with rcgen, and
//! Python's `ssl` module as the peer (`tests/peers/sip_tls_client.py` for SIP,
//! `tests/peers/msrp_peer.py --tls-ca` for MSRP), written independently of the Rust code.
//! Invitees are plain SIPp over UDP with the Python MSRP receiver, as in `e2e_msrp.rs`.

#![allow(clippy::disallowed_methods)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use common::pki::Pki;
use common::{Invitees, MsrpPeer, Server, Sipp, group_folder};

const GROUP: &str = "sip:e2e@example.com";

/// A server with TLS on free ports; returns it with its SIP-TLS and MSRP-TLS addresses.
fn tls_server(pki: &Pki, extra: &[&str]) -> (Server, SocketAddr, SocketAddr) {
    let sip_tls: SocketAddr = ([127, 0, 0, 1], common::free_tcp_port()).into();
    let msrp_tls: SocketAddr = ([127, 0, 0, 1], common::free_tcp_port()).into();
    let (cert, key) = (pki.arg("server.pem"), pki.arg("server.key"));
    let (s, m) = (sip_tls.to_string(), msrp_tls.to_string());
    let mut args = vec![
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--sip-tls",
        &s,
        "--msrp-tls",
        &m,
    ];
    if !extra.contains(&"--workers") {
        args.extend(["--workers", "1"]);
    }
    args.extend_from_slice(extra);
    let server = Server::start(&args);
    assert!(
        server.wait_for_log("im-server bound", Duration::from_secs(5)),
        "{}",
        server.log()
    );
    (server, sip_tls, msrp_tls)
}

fn sip_client(args: &[&str], limit: Duration) -> MsrpPeer {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/sip_tls_client.py");
    MsrpPeer::spawn_script(&script, tempfile::tempdir().unwrap(), args, limit)
}

fn event(peer: &MsrpPeer, name: &str) -> serde_json::Value {
    peer.wait_for_event(name, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no {name} event: {peer:?}"))
}

/// A pager-mode session whose originator speaks SIP over TLS and MSRP over TLS (Python
/// `ssl`, verifying the server against the test CA) to a pre-defined group of two plain
/// UDP invitees: the answer is `TCP/TLS/MSRP` with an `msrps:` path on the TLS port, the
/// dialog's Contact and the server's BYE go over TLS, and both invitees get the message.
#[test]
fn pager_session_over_tls_reaches_the_invitees() {
    pager_session_over_tls(1);
}

/// The same with two workers: the TLS SIP connection is shared by the shards (messages
/// steered by Call-ID) and each shard answers from its own MSRP-TLS port.
#[test]
fn pager_session_over_tls_with_two_workers() {
    pager_session_over_tls(2);
}

fn pager_session_over_tls(workers: u16) {
    let pki = Pki::new();
    let Invitees {
        receiver,
        uas,
        host,
    } = Invitees::start(2, 2, 25);
    let alice = "sip:alice@127.0.0.1".to_owned();
    let members = vec![
        format!("sip:inv0@{host}"),
        format!("sip:inv1@{host}"),
        alice.clone(),
    ];
    let groups = group_folder(GROUP, &members);
    let w = workers.to_string();
    let (server, sip_tls, msrp_tls) = tls_server(
        &pki,
        &["--groups", groups.path().to_str().unwrap(), "--workers", &w],
    );

    let data = "Hello over TLS, \u{e9}t\u{e9} \u{2603}";
    let mut client = originate_tls(&pki, &server, sip_tls, msrp_tls, workers, &alice, data);

    assert_eq!(client.wait(), Some(0), "{client:?}\n{}", server.log());
    let bye = client
        .events()
        .into_iter()
        .find(|e| e["event"] == "request" && e["method"] == "BYE")
        .unwrap_or_else(|| panic!("no BYE over TLS: {client:?}"));
    assert!(
        bye["via"]
            .as_str()
            .unwrap()
            .starts_with(&format!("SIP/2.0/TLS {sip_tls};")),
        "{bye}"
    );

    let mut receiver = receiver;
    let _ = receiver.wait();
    let run = uas.wait();
    assert!(run.success(), "{run:?}");
    let copies: Vec<(String, Vec<u8>)> = receiver
        .events()
        .into_iter()
        .filter(|e| e["event"] == "message")
        .map(|e| {
            (
                e["session"].as_str().unwrap().to_owned(),
                std::fs::read(e["file"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    let mut sessions: Vec<&str> = copies.iter().map(|(s, _)| s.as_str()).collect();
    sessions.sort();
    assert_eq!(sessions, ["inv0", "inv1"], "{receiver:?}");
    for (_, bytes) in &copies {
        assert_eq!(bytes, data.as_bytes());
    }
    stop(server);
}

/// An invitee whose URI is `sips:` (RFC 5630): the server opens a TLS connection to it
/// (verifying it against `--tls-ca`), sends the INVITE with `SIP/2.0/TLS` and a `sips:`
/// Contact, offers MSRP over TLS (`TCP/TLS/MSRP`, an `msrps:` path on its MSRP TLS port),
/// connects to the invitee's `msrps:` path over TLS as its answer asks and delivers the
/// message there; the BYE comes over TLS too.
#[test]
fn sips_invitee_is_invited_and_served_over_tls() {
    let pki = Pki::new();
    let (cert, key, ca) = (
        pki.arg("server.pem"),
        pki.arg("server.key"),
        pki.arg("ca.pem"),
    );
    let (receiver, mport) = common::msrp_receiver(1, 25, &["--tls-cert", &cert, "--tls-key", &key]);
    let uas_port = common::free_tcp_port();
    let mut uas = sip_client(
        &[
            "uas",
            "--listen",
            &format!("127.0.0.1:{uas_port}"),
            "--cert",
            &cert,
            "--key",
            &key,
            "--msrp",
            &format!("127.0.0.1:{mport}"),
            "--timeout",
            "25",
        ],
        Duration::from_secs(30),
    );
    event(&uas, "listening");
    let alice = "sip:alice@127.0.0.1".to_owned();
    let members = vec![format!("sips:inv9@127.0.0.1:{uas_port}"), alice.clone()];
    let groups = group_folder(GROUP, &members);
    let (server, sip_tls, msrp_tls) = tls_server(
        &pki,
        &["--groups", groups.path().to_str().unwrap(), "--tls-ca", &ca],
    );
    let data = "to a sips: invitee";
    let mut client = originate_tls(&pki, &server, sip_tls, msrp_tls, 1, &alice, data);
    assert_eq!(client.wait(), Some(0), "{client:?}\n{}", server.log());
    assert_eq!(uas.wait(), Some(0), "{uas:?}\n{}", server.log());
    let requests: Vec<serde_json::Value> = uas
        .events()
        .into_iter()
        .filter(|e| e["event"] == "request")
        .collect();
    let methods: Vec<&str> = requests
        .iter()
        .map(|e| e["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["INVITE", "ACK", "BYE"], "{uas:?}");
    for r in &requests {
        assert!(
            r["via"]
                .as_str()
                .unwrap()
                .starts_with(&format!("SIP/2.0/TLS {sip_tls};")),
            "{r}"
        );
    }
    let invite = &requests[0];
    assert!(
        invite["contact"]
            .as_str()
            .unwrap()
            .starts_with("<sips:conf-"),
        "{invite}"
    );
    assert!(
        invite["contact"]
            .as_str()
            .unwrap()
            .contains(&format!("@{sip_tls}>"))
    );
    assert_eq!(
        invite["mline"].as_str().unwrap(),
        format!("m=message {} TCP/TLS/MSRP *", msrp_tls.port())
    );
    assert!(
        invite["path"]
            .as_str()
            .unwrap()
            .starts_with(&format!("msrps://{msrp_tls}/")),
        "{invite}"
    );
    let mut receiver = receiver;
    let _ = receiver.wait();
    assert!(
        receiver.events().iter().any(|e| e["event"] == "tls"),
        "the server must reach the invitee's msrps: path over TLS: {receiver:?}"
    );
    let copies: Vec<(String, Vec<u8>)> = receiver
        .events()
        .into_iter()
        .filter(|e| e["event"] == "message")
        .map(|e| {
            (
                e["session"].as_str().unwrap().to_owned(),
                std::fs::read(e["file"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        copies,
        [("inv9".to_owned(), data.as_bytes().to_vec())],
        "{receiver:?}"
    );
    stop(server);
}

/// A page-mode MESSAGE (from a UDP sender) to a group with a `sips:` member: the member's copy
/// goes over a TLS connection with a TLS Via, not over UDP.
#[test]
fn page_mode_copy_to_a_sips_member_goes_over_tls() {
    let pki = Pki::new();
    let (cert, key, ca) = (
        pki.arg("server.pem"),
        pki.arg("server.key"),
        pki.arg("ca.pem"),
    );
    let uas_port = common::free_tcp_port();
    let mut uas = sip_client(
        &[
            "uas",
            "--listen",
            &format!("127.0.0.1:{uas_port}"),
            "--cert",
            &cert,
            "--key",
            &key,
            "--msrp",
            "127.0.0.1:9",
            "--stop-after",
            "MESSAGE",
            "--timeout",
            "20",
        ],
        Duration::from_secs(25),
    );
    event(&uas, "listening");
    let alice = format!("sip:alice@127.0.0.1:{}", common::free_udp_port());
    let members = vec![format!("sips:inv9@127.0.0.1:{uas_port}"), alice.clone()];
    let groups = group_folder(GROUP, &members);
    let (server, sip_tls, _) = tls_server(
        &pki,
        &["--groups", groups.path().to_str().unwrap(), "--tls-ca", &ca],
    );
    let run = Sipp::new("message_text")
        .to(server.sip)
        .key("target", GROUP)
        .key("from", &alice)
        .run();
    assert!(run.success(), "{run:?}\n{}", server.log());
    assert_eq!(uas.wait(), Some(0), "{uas:?}\n{}", server.log());
    let m = event(&uas, "request");
    assert_eq!(m["method"], "MESSAGE", "{uas:?}");
    assert_eq!(m["uri"], format!("sips:inv9@127.0.0.1:{uas_port}"));
    assert!(
        m["via"]
            .as_str()
            .unwrap()
            .starts_with(&format!("SIP/2.0/TLS {sip_tls};")),
        "{m}"
    );
    assert!(
        m["body"]
            .as_str()
            .unwrap()
            .contains("imspec page mode to a group"),
        "{m}"
    );
    stop(server);
}

/// The server as a TLS client checks the invitee: a `sips:` invitee whose certificate is
/// not signed by `--tls-ca` gets no INVITE (the handshake fails on the server's side, the
/// invitee sees the alert) and the server logs the refused certificate.
#[test]
fn sips_invitee_with_an_untrusted_certificate_gets_nothing() {
    let pki = Pki::new();
    let (cert, key, ca) = (
        pki.arg("server.pem"),
        pki.arg("server.key"),
        pki.arg("ca.pem"),
    );
    let uas_port = common::free_tcp_port();
    let mut uas = sip_client(
        &[
            "uas",
            "--listen",
            &format!("127.0.0.1:{uas_port}"),
            "--cert",
            &cert,
            "--key",
            &key,
            "--msrp",
            "127.0.0.1:9",
            "--timeout",
            "10",
        ],
        Duration::from_secs(15),
    );
    event(&uas, "listening");
    let alice = "sip:alice@127.0.0.1".to_owned();
    let members = vec![format!("sips:inv9@127.0.0.1:{uas_port}"), alice.clone()];
    let groups = group_folder(GROUP, &members);
    // The server trusts only the other CA.
    let other = pki.arg("other-ca.pem");
    let (server, sip_tls, _) = tls_server(
        &pki,
        &[
            "--groups",
            groups.path().to_str().unwrap(),
            "--tls-ca",
            &other,
        ],
    );
    let own_path = format!("msrps://127.0.0.1:{}/o1x;tcp", common::free_tcp_port());
    let client = sip_client(
        &[
            "invite",
            "--server",
            &sip_tls.to_string(),
            "--ca",
            &ca,
            "--target",
            GROUP,
            "--from",
            &alice,
            "--msrp-path",
            &own_path,
            "--timeout",
            "10",
        ],
        Duration::from_secs(15),
    );
    event(&client, "answer");
    assert!(
        server.wait_for_log("connect failed", Duration::from_secs(5)),
        "{}",
        server.log()
    );
    let log = server.log();
    let line = log.lines().find(|l| l.contains("connect failed")).unwrap();
    assert!(
        line.contains("SipTls") && line.contains("certificate"),
        "{line}"
    );
    assert_eq!(
        uas.wait(),
        Some(5),
        "the invitee saw the handshake fail: {uas:?}"
    );
    assert!(
        !uas.events().iter().any(|e| e["event"] == "request"),
        "no request may reach an untrusted invitee: {uas:?}"
    );
    drop(client);
    stop(server);
}

/// Certificates the client does not trust: Python's handshake fails on the client for SIP
/// and MSRP alike, the server logs the failed handshakes, and a trusting client still gets
/// through afterwards.
#[test]
fn untrusted_certificate_fails_on_the_client() {
    let pki = Pki::new();
    let (server, sip_tls, msrp_tls) = tls_server(&pki, &[]);
    let other = pki.arg("other-ca.pem");
    let (s, m) = (sip_tls.to_string(), msrp_tls.to_string());
    for addr in [&s, &m] {
        let mut probe = sip_client(
            &["probe", "--server", addr, "--ca", &other],
            Duration::from_secs(15),
        );
        assert_eq!(probe.wait(), Some(5), "{probe:?}");
        let err = event(&probe, "error");
        assert!(
            err["reason"]
                .as_str()
                .unwrap()
                .contains("CERTIFICATE_VERIFY_FAILED"),
            "{err}"
        );
    }
    let mut sender = MsrpPeer::spawn(
        tempfile::tempdir().unwrap(),
        &[
            "send",
            "--connect",
            &m,
            "--tls-ca",
            &other,
            "--to-path",
            &format!("msrps://{m}/nosuch;tcp"),
            "--from-path",
            "msrps://127.0.0.1:9/x;tcp",
            "--data",
            "x",
        ],
        Duration::from_secs(15),
    );
    assert_eq!(sender.wait(), Some(5), "{sender:?}");
    assert!(
        server.wait_for_log("TLS handshake failed", Duration::from_secs(5)),
        "{}",
        server.log()
    );
    let ca = pki.arg("ca.pem");
    let mut probe = sip_client(
        &["probe", "--server", &s, "--ca", &ca],
        Duration::from_secs(15),
    );
    assert_eq!(probe.wait(), Some(0), "{probe:?}\n{}", server.log());
    stop(server);
}

/// Plaintext SIP and MSRP sent to the TLS ports: the server closes the connection without
/// answering in clear, and keeps serving TLS and plain SIP.
#[test]
fn plaintext_on_the_tls_ports_is_closed() {
    let pki = Pki::new();
    let (server, sip_tls, msrp_tls) = tls_server(&pki, &[]);
    let plain = [
        (
            sip_tls,
            "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKx\r\n\
             From: <sip:a@b>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\
             Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        ),
        (
            msrp_tls,
            "MSRP t1 SEND\r\nTo-Path: msrp://127.0.0.1/x;tcp\r\nFrom-Path: msrp://127.0.0.1:9/y;tcp\r\n\
             Message-ID: m\r\nByte-Range: 1-1/1\r\nContent-Type: text/plain\r\n\r\nx\r\n-------t1$\r\n",
        ),
    ];
    for (addr, text) in plain {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(text.as_bytes()).unwrap();
        let mut got = Vec::new();
        let r = s.read_to_end(&mut got);
        // Closed (EOF or reset), never timed out; anything written back is a TLS alert
        // record (content type 21), never SIP or MSRP in clear.
        assert!(
            r.is_ok()
                || r.as_ref()
                    .is_err_and(|e| e.kind() != std::io::ErrorKind::WouldBlock
                        && e.kind() != std::io::ErrorKind::TimedOut),
            "{addr}: {r:?}"
        );
        assert!(got.is_empty() || got[0] == 21, "{addr}: {got:?}");
    }
    let ca = pki.arg("ca.pem");
    let mut probe = sip_client(
        &["probe", "--server", &sip_tls.to_string(), "--ca", &ca],
        Duration::from_secs(15),
    );
    assert_eq!(probe.wait(), Some(0), "{probe:?}\n{}", server.log());
    let options = Sipp::new("options")
        .to(server.sip)
        .key("target", "sip:example.com")
        .key("from", "sip:alice@example.com")
        .run();
    assert!(options.success(), "{options:?}");
    stop(server);
}

/// The originator's side over TLS: the SIP INVITE (Python `sip_tls_client.py invite`) and,
/// once answered, the message over MSRP over TLS (`msrp_peer.py send --tls-ca`), both
/// verifying the server against the test CA. Checks the answer (TCP/TLS/MSRP, an `msrps:`
/// path on the MSRP TLS port, a focus Contact on the SIP TLS port) and the success REPORT;
/// returns the SIP client, still waiting for the server's BYE.
fn originate_tls(
    pki: &Pki,
    server: &Server,
    sip_tls: SocketAddr,
    msrp_tls: SocketAddr,
    workers: u16,
    alice: &str,
    data: &str,
) -> MsrpPeer {
    let own_path = format!("msrps://127.0.0.1:{}/o1x;tcp", common::free_tcp_port());
    let (ca, server_arg) = (pki.arg("ca.pem"), sip_tls.to_string());
    let client = sip_client(
        &[
            "invite",
            "--server",
            &server_arg,
            "--ca",
            &ca,
            "--target",
            GROUP,
            "--from",
            alice,
            "--msrp-path",
            &own_path,
            "--timeout",
            "25",
        ],
        Duration::from_secs(30),
    );
    let tls = event(&client, "tls");
    assert!(
        ["TLSv1.3", "TLSv1.2"].contains(&tls["version"].as_str().unwrap()),
        "{tls}"
    );
    let answer = event(&client, "answer");
    let path = answer["path"].as_str().unwrap().to_owned();
    // Worker i answers from the MSRP-TLS port plus i.
    let ports = msrp_tls.port()..msrp_tls.port() + workers;
    let msrp_tls: SocketAddr = path
        .strip_prefix("msrps://")
        .and_then(|r| r.split('/').next())
        .and_then(|a| a.parse().ok())
        .filter(|a: &SocketAddr| a.ip() == msrp_tls.ip() && ports.contains(&a.port()))
        .unwrap_or_else(|| panic!("answer path {path} is not on an MSRP TLS port: {client:?}"));
    assert!(path.ends_with(";tcp"), "{path}");
    assert_eq!(
        answer["mline"].as_str().unwrap(),
        format!("m=message {} TCP/TLS/MSRP *", msrp_tls.port())
    );
    let ok = client
        .events()
        .into_iter()
        .find(|e| e["event"] == "response" && e["status"] == 200)
        .unwrap();
    let contact = ok["contact"].as_str().unwrap();
    assert!(
        contact.contains(&format!("@{sip_tls};transport=tls>")),
        "the focus Contact must lead back over TLS: {contact}"
    );

    let mut sender = MsrpPeer::spawn(
        tempfile::tempdir().unwrap(),
        &[
            "send",
            "--connect",
            &msrp_tls.to_string(),
            "--tls-ca",
            &ca,
            "--to-path",
            &path,
            "--from-path",
            &own_path,
            "--data",
            data,
            "--success-report",
            "yes",
            "--timeout",
            "20",
        ],
        Duration::from_secs(25),
    );
    let code = sender.wait();
    assert_eq!(code, Some(0), "sender: {sender:?}\n{}", server.log());
    assert!(
        sender
            .events()
            .iter()
            .any(|e| e["event"] == "tls" && e["version"].as_str().is_some()),
        "{sender:?}"
    );
    let reports: Vec<String> = sender
        .events()
        .into_iter()
        .filter(|e| e["event"] == "report")
        .map(|e| e["status"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(reports, ["000 200 OK"], "{sender:?}");
    client
}

/// A TLS connection that never finishes its handshake (silent, or a ClientHello cut short)
/// is closed by the handshake timeout, while a complete handshake still works.
#[test]
fn stalled_handshakes_are_closed_by_the_timeout() {
    let pki = Pki::new();
    let (server, sip_tls, msrp_tls) = tls_server(&pki, &["--handshake-timeout", "1s"]);
    let started = std::time::Instant::now();
    let mut conns = Vec::new();
    for (addr, first) in [
        (sip_tls, &b""[..]),
        (msrp_tls, &b""[..]),
        // A TLS handshake record header promising 512 bytes, then nothing more.
        (sip_tls, &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01][..]),
    ] {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(first).unwrap();
        conns.push(s);
    }
    for mut s in conns {
        let mut got = Vec::new();
        let r = s.read_to_end(&mut got);
        assert!(
            r.is_ok()
                || r.as_ref()
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "not closed: {r:?}"
        );
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "closed after {took:?}, want about the 1 s handshake timeout"
    );
    assert!(
        server.wait_for_log("TLS handshake timeout", Duration::from_secs(2)),
        "{}",
        server.log()
    );
    let ca = pki.arg("ca.pem");
    let mut probe = sip_client(
        &["probe", "--server", &sip_tls.to_string(), "--ca", &ca],
        Duration::from_secs(15),
    );
    assert_eq!(probe.wait(), Some(0), "{probe:?}\n{}", server.log());
    stop(server);
}

/// TLS connections count in the SIP budget and follow the hygiene rules of TCP ones: with
/// the budget full of stalled handshakes a newcomer that completes its handshake takes the
/// place of the oldest (closed at once, long before the handshake timeout), and after the
/// handshake a connection that sends half a request is closed by the head timeout.
#[test]
fn tls_connections_follow_the_budget_and_the_head_timeout() {
    let pki = Pki::new();
    let (server, sip_tls, _) = tls_server(
        &pki,
        &[
            "--max-sip-connections",
            "2",
            "--head-timeout",
            "1s",
            "--handshake-timeout",
            "20s",
        ],
    );
    // Server::start's own probe connections to the SIP TCP port are gone by now.
    std::thread::sleep(Duration::from_millis(200));
    let mut stalled: Vec<TcpStream> = (0..2)
        .map(|_| {
            let s = TcpStream::connect(sip_tls).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let ca = pki.arg("ca.pem");
    let s = sip_tls.to_string();
    let mut probe = sip_client(
        &["probe", "--server", &s, "--ca", &ca],
        Duration::from_secs(15),
    );
    assert_eq!(probe.wait(), Some(0), "{probe:?}\n{}", server.log());
    let started = std::time::Instant::now();
    let mut got = Vec::new();
    let r = stalled[0].read_to_end(&mut got);
    assert!(
        started.elapsed() < Duration::from_secs(5) && got.is_empty(),
        "the oldest stalled handshake must be evicted: {r:?} after {:?}\n{}",
        started.elapsed(),
        server.log()
    );
    drop(stalled);
    std::thread::sleep(Duration::from_millis(200));
    let mut half = sip_client(
        &[
            "probe",
            "--server",
            &s,
            "--ca",
            &ca,
            "--send",
            "OPTIONS sip:x@127.0.0.1 SIP/2.0\\r\\nVia: SIP/2.0/TLS",
            "--wait-close",
            "6",
        ],
        Duration::from_secs(15),
    );
    assert_eq!(half.wait(), Some(0), "{half:?}");
    let closed = event(&half, "closed");
    let after = closed["after"].as_f64().unwrap();
    assert!(
        (0.8..4.0).contains(&after),
        "closed after {after} s: {half:?}"
    );
    stop(server);
}

/// SIGTERM: the server must have stayed up through everything and stop cleanly.
fn stop(mut server: Server) {
    let status = server.terminate();
    assert!(
        status.is_some_and(|s| s.success()),
        "im-server did not stop cleanly ({status:?}):\n{}",
        server.log()
    );
}

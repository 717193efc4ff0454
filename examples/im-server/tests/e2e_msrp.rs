//! End-to-end MSRP tests: the real `im-server` binary on free ports, SIPp as originator and
//! as invitees (scenarios in `tests/sipp/`), and the Python MSRP peer
//! (`tests/peers/msrp_peer.py`, written from RFC 4975 independently of the Rust code) as the
//! originator's and the invitees' MSRP endpoints.
//!
//! The originator's SIPp scenario writes the server's `a=path` from the 200 OK to its log
//! file; the test hands it to the Python sender. Each invitee's SIPp answer points its
//! `a=path` at one Python receiver with the invitee's user part as session id, so the
//! receiver can tell every copy apart and the test compares each copy's bytes with what was
//! sent. A missing SIPp or python3 fails the tests with the install command.

#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{MsrpPeer, Server, Sipp, SippProc, SippRun, group_folder, sip_log};

const GROUP: &str = "sip:e2e@example.com";
const FACTORY: &str = "sip:conference-factory@example.com";
const CP_NS: &str = "urn:ietf:params:xml:ns:copycontrol";

/// Bytes that exercise the framing: every octet value, CRLFs and a false MSRP end-line.
fn message(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x: u32 = 0x1234_5678;
    let trap = b"\r\n-------abc$\r\n";
    while out.len() < len {
        if out.len() % 700 == 3 {
            out.extend_from_slice(trap);
        } else {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            out.push((x >> 24) as u8);
        }
    }
    out.truncate(len);
    out
}

/// Who opens the originator's MSRP connection (RFC 4975 §5.4, RFC 6135).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Offer {
    /// `a=setup:active`: the originator connects to the server's path.
    Active,
    /// `a=setup:actpass`: the server answers `active` and connects to the offer's path.
    Actpass,
    /// No `a=setup`: the offerer connects (RFC 4975 §5.4), as with `active`.
    NoSetup,
}

impl Offer {
    fn setup_line(self) -> &'static str {
        match self {
            Offer::Active => "a=setup:active",
            Offer::Actpass => "a=setup:actpass",
            // Any attribute line keeps the SDP well formed without an a=setup.
            Offer::NoSetup => "a=label:no-setup",
        }
    }

    /// What the server's answer must say (design.md, SDP answer rule c).
    fn answer_setup(self) -> &'static str {
        match self {
            Offer::Active | Offer::NoSetup => "a=setup:passive",
            Offer::Actpass => "a=setup:active",
        }
    }
}

/// The invitees' side: one SIPp UAS for every invitee (`sip:<user>@127.0.0.1:<port>`, one
/// call each) and one Python MSRP receiver for all of them.
struct Invitees {
    uas: SippProc,
    receiver: MsrpPeer,
    /// The SIPp UAS address (host:port of every invitee URI).
    host: String,
}

impl Invitees {
    /// `calls` invitee calls expected; `messages` copies the receiver waits for.
    fn start(calls: u32, messages: usize) -> Invitees {
        let receiver = MsrpPeer::spawn(
            tempfile::tempdir().unwrap(),
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--out-dir",
                "{dir}",
                "--count",
                &messages.to_string(),
                "--timeout",
                "25",
            ],
            Duration::from_secs(30),
        );
        let listening = receiver
            .wait_for_event("listening", Duration::from_secs(5))
            .unwrap_or_else(|| panic!("receiver did not listen: {receiver:?}"));
        let port = listening["port"].as_u64().unwrap().to_string();
        let sipp = Sipp::new("uas_msrp")
            .calls(calls)
            .key("msrp_port", &port)
            .timeouts(Duration::from_secs(20), Duration::from_secs(30));
        let host = sipp.local().to_string();
        let uas = sipp.spawn();
        Invitees {
            uas,
            receiver,
            host,
        }
    }

    fn uri(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.host)
    }

    /// Waits for the UAS and the receiver; returns the UAS run and the copies received per
    /// session id (= invitee user part).
    fn finish(mut self) -> (SippRun, BTreeMap<String, Vec<Vec<u8>>>, MsrpPeer) {
        let run = self.uas.wait();
        let _ = self.receiver.wait();
        let mut copies: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
        for e in self.receiver.events() {
            if e["event"] == "message" {
                let file = e["file"].as_str().unwrap();
                copies
                    .entry(e["session"].as_str().unwrap().to_owned())
                    .or_default()
                    .push(std::fs::read(file).unwrap());
            }
        }
        (run, copies, self.receiver)
    }
}

/// The originator: a SIPp UAC for the SIP side and a Python sender for the MSRP side.
struct Originator {
    uac: SippRun,
    sender: MsrpPeer,
    sender_code: Option<i32>,
    server_path: String,
}

/// Runs one pager-mode session: `uac` is the prepared SIPp UAC (scenario and keys other
/// than the offer's), `offer` the setup to offer, `data` the message, `chunk` the sender's
/// chunk size (0: one chunk).
fn originate(uac: Sipp, offer: Offer, data: &[u8], chunk: usize) -> Originator {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data.bin"), data).unwrap();
    let msrp_port = common::free_tcp_port();
    let from_path = format!("msrp://127.0.0.1:{msrp_port}/o1x;tcp");
    let chunk = chunk.to_string();
    let mut send_args: Vec<String> = [
        "send",
        "--from-path",
        &from_path,
        "--file",
        "{dir}/data.bin",
        "--chunk-size",
        &chunk,
        "--success-report",
        "yes",
        "--timeout",
        "20",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let uac = uac
        .key("msrp_port", &msrp_port.to_string())
        .key("setup", offer.setup_line())
        .key("answer_setup", offer.answer_setup())
        .timeouts(Duration::from_secs(20), Duration::from_secs(30));
    let limit = Duration::from_secs(25);
    let (uac, server_path, sender) = if offer == Offer::Actpass {
        // The server connects once the ACK is in: listen first, learn the path later.
        send_args.extend(
            [
                "--listen",
                &format!("127.0.0.1:{msrp_port}"),
                "--to-path-file",
                "{dir}/to_path",
            ]
            .map(String::from),
        );
        let args: Vec<&str> = send_args.iter().map(String::as_str).collect();
        let sender = MsrpPeer::spawn(dir, &args, limit);
        sender
            .wait_for_event("listening", Duration::from_secs(5))
            .unwrap_or_else(|| panic!("sender did not listen: {sender:?}"));
        let (uac, path) = answer_path(uac.spawn());
        std::fs::write(sender.dir.path().join("to_path.tmp"), &path).unwrap();
        std::fs::rename(
            sender.dir.path().join("to_path.tmp"),
            sender.dir.path().join("to_path"),
        )
        .unwrap();
        (uac, path, sender)
    } else {
        let (uac, path) = answer_path(uac.spawn());
        let authority = path
            .strip_prefix("msrp://")
            .and_then(|r| r.split('/').next())
            .unwrap_or_else(|| panic!("not an msrp URI: {path}"))
            .to_owned();
        send_args.extend(["--connect", &authority, "--to-path", &path].map(String::from));
        let args: Vec<&str> = send_args.iter().map(String::as_str).collect();
        (uac, path.clone(), MsrpPeer::spawn(dir, &args, limit))
    };
    let mut sender = sender;
    let sender_code = sender.wait();
    Originator {
        uac: uac.wait(),
        sender,
        sender_code,
        server_path,
    }
}

/// The `a=path` of the server's 200 OK, as the UAC scenario logged it.
fn answer_path(mut uac: SippProc) -> (SippProc, String) {
    match uac.wait_for_log("server-path ", Duration::from_secs(10)) {
        Some(p) => (uac, p),
        None => panic!("no 200 OK with a path:\n{:?}", uac.wait()),
    }
}

/// The MSRP REPORT statuses the sender received (`"000 200 OK"` …).
fn reports(sender: &MsrpPeer) -> Vec<String> {
    sender
        .events()
        .into_iter()
        .filter(|e| e["event"] == "report")
        .map(|e| e["status"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// The server's log lines for recipients (`session … recipient <uri>: <outcome>`).
fn recipient_lines(server: &Server) -> Vec<String> {
    server
        .log()
        .lines()
        .filter(|l| l.contains(" recipient "))
        .map(str::to_owned)
        .collect()
}

/// SIGTERM, then the final log line must say no session was left, and no session may have
/// been ended by the shutdown itself (so the count was 0 before the signal, not made 0 by
/// it).
fn assert_no_session_left(mut server: Server, sessions: usize) {
    // The last 200 for a BYE may still be on its way when the SIPp processes exit.
    let end = Instant::now() + Duration::from_secs(3);
    while closed_sessions(&server) < sessions && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = server.terminate();
    let log = server.log();
    assert!(
        status.is_some_and(|s| s.success()),
        "im-server did not stop cleanly ({status:?}):\n{log}"
    );
    let last = log
        .lines()
        .rev()
        .find(|l| l.contains("im-server stopped"))
        .unwrap_or_else(|| panic!("no final line:\n{log}"));
    assert!(last.contains("live_sessions=0"), "{last}\n{log}");
    assert!(
        !log.contains("server shutting down"),
        "a session was still live at shutdown:\n{log}"
    );
}

/// How many sessions the server has removed (`session <call-id> closed` lines).
fn closed_sessions(server: &Server) -> usize {
    server
        .log()
        .lines()
        .filter(|l| l.contains(" session ") && l.contains(" closed"))
        .count()
}

fn group_server(members: &[String], extra: &[&str]) -> (Server, tempfile::TempDir) {
    let groups = group_folder(GROUP, members);
    let mut args = vec!["--groups", groups.path().to_str().unwrap()];
    args.extend_from_slice(extra);
    (Server::start(&args), groups)
}

/// The whole round trip to a pre-defined group of `n` invitees: every invitee gets exactly
/// one copy with exactly the bytes sent; the originator gets a success REPORT; every
/// recipient is logged as delivered; no session is left.
fn group_round_trip(n: usize, offer: Offer, len: usize, chunk: usize) {
    let started = Instant::now();
    let inv = Invitees::start(n as u32, n);
    let alice = format!("sip:alice@{}", inv.host);
    let users: Vec<String> = (0..n).map(|i| format!("inv{i}")).collect();
    let mut members: Vec<String> = users.iter().map(|u| inv.uri(u)).collect();
    members.push(alice.clone());
    let (server, _g) = group_server(&members, &["--max-msrp-chunk", "1KiB"]);
    let data = message(len);
    let uac = Sipp::new("pager_msrp")
        .to(server.sip)
        .key("target", GROUP)
        .key("from", &alice)
        .key("accept", "message/cpim text/plain");
    let o = originate(uac, offer, &data, chunk);
    let (uas, copies, receiver) = inv.finish();
    let ctx = || {
        format!(
            "uac: {:?}\nsender: {:?}\nuas: {uas:?}\nreceiver: {receiver:?}\n{}",
            o.uac,
            o.sender,
            server.log()
        )
    };
    assert!(o.uac.success(), "originator SIPp failed:\n{}", ctx());
    assert_eq!(o.sender_code, Some(0), "sender:\n{}", ctx());
    assert!(
        o.server_path
            .starts_with(&format!("msrp://{}/", server.msrp)),
        "the answer's path is the server's own: {}",
        o.server_path
    );
    if offer == Offer::Actpass {
        // The server's binding SEND comes from the path it answered with.
        let bound = o
            .sender
            .events()
            .into_iter()
            .find(|e| e["event"] == "bound")
            .unwrap_or_else(|| panic!("no binding SEND:\n{}", ctx()));
        assert_eq!(bound["from_path"], o.server_path.as_str(), "{}", ctx());
    }
    assert!(uas.success(), "invitee SIPp failed:\n{}", ctx());
    assert_eq!(uas.received_invites(), n, "{}", ctx());
    let want: Vec<&String> = users.iter().collect();
    let got: Vec<&String> = copies.keys().collect();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(got, want_sorted, "copies per invitee:\n{}", ctx());
    for (user, c) in &copies {
        assert_eq!(c.len(), 1, "{user} got {} copies", c.len());
        assert!(
            c[0] == data,
            "{user} got different bytes ({} octets)",
            c[0].len()
        );
    }
    assert_eq!(reports(&o.sender), ["000 200 OK"], "{}", ctx());
    let lines = recipient_lines(&server);
    for u in &users {
        let uri = inv_uri(&members, u);
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("recipient {uri}: delivered"))),
            "no delivered line for {uri}:\n{}",
            lines.join("\n")
        );
    }
    assert_no_session_left(server, 1);
    eprintln!(
        "{n} invitee(s), {offer:?}, {len} octets: {:?}",
        started.elapsed()
    );
}

fn inv_uri<'a>(members: &'a [String], user: &str) -> &'a str {
    members
        .iter()
        .find(|m| m.starts_with(&format!("sip:{user}@")))
        .unwrap()
}

#[test]
fn one_invitee_active_offer_small_message() {
    group_round_trip(1, Offer::Active, 5, 0);
}

#[test]
fn three_invitees_active_offer_chunked_message() {
    group_round_trip(3, Offer::Active, 5000, 1000);
}

#[test]
fn three_invitees_actpass_offer_server_connects() {
    group_round_trip(3, Offer::Actpass, 5000, 1000);
}

#[test]
fn one_invitee_actpass_offer_small_message() {
    group_round_trip(1, Offer::Actpass, 11, 0);
}

#[test]
fn offer_without_setup_originator_connects() {
    group_round_trip(1, Offer::NoSetup, 2500, 0);
}

#[test]
fn fifty_invitees_chunked_message() {
    let t = Instant::now();
    group_round_trip(50, Offer::Active, 3000, 1000);
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "50 invitees took {:?}",
        t.elapsed()
    );
}

#[test]
fn fifty_invitees_actpass_offer() {
    group_round_trip(50, Offer::Actpass, 2100, 0);
}

#[allow(dead_code)]
fn _unused(_: &[common::SipLogMessage]) {
    let _ = sip_log("");
    let _ = CP_NS;
    let _ = FACTORY;
}

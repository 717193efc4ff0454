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

use std::time::{Duration, Instant};

use common::{Copies, Invitees, MsrpPeer, Server, Sipp, SippProc, SippRun, group_folder, sip_log};

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

/// The originator: a SIPp UAC for the SIP side and a Python sender for the MSRP side.
struct Originator {
    uac: SippRun,
    sender: MsrpPeer,
    sender_code: Option<i32>,
    server_path: String,
}

impl Originator {
    /// What a failed check of the session shows: this side's SIPp run and MSRP sender, the
    /// invitees' SIPp `uas` and MSRP `receiver`, and the server's log.
    fn context(&self, uas: &SippRun, receiver: &MsrpPeer, server: &Server) -> String {
        format!(
            "uac: {:?}\nsender: {:?}\nuas: {uas:?}\nreceiver: {receiver:?}\n{}",
            self.uac,
            self.sender,
            server.log()
        )
    }
}

/// Runs one pager-mode session: `uac` is the prepared SIPp UAC (scenario and keys other
/// than the offer's), `offer` the setup to offer, `data` the message, `chunk` the sender's
/// chunk size (0: one chunk).
fn originate(uac: Sipp, offer: Offer, data: &[u8], chunk: usize) -> Originator {
    originate_with(uac, offer, data, chunk, "text/plain", |_, _| {})
}

/// As [`originate`]; `probe(server_path, from_path)` runs once the server's path is known and
/// before the real sender starts (offers where the originator connects).
fn originate_with(
    uac: Sipp,
    offer: Offer,
    data: &[u8],
    chunk: usize,
    content_type: &str,
    probe: impl FnOnce(&str, &str),
) -> Originator {
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
        "--content-type",
        content_type,
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
        probe(&path, &from_path);
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
    let inv = Invitees::start(n as u32, n, 25);
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
    let ctx = || o.context(&uas, &receiver, &server);
    assert!(o.uac.success(), "originator SIPp failed:\n{}", ctx());
    assert_eq!(o.sender_code, Some(0), "sender:\n{}", ctx());
    // Each worker listens on its own MSRP port and names it in its answers.
    assert!(
        server
            .msrp_listen()
            .iter()
            .any(|a| o.server_path.starts_with(&format!("msrp://{a}/"))),
        "the answer's path is the server's own: {} (server: {:?})",
        o.server_path,
        server.msrp_listen()
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

/// `msrp://host:port` of an MSRP URI.
fn authority(path: &str) -> String {
    path.strip_prefix("msrp://")
        .and_then(|r| r.split('/').next())
        .unwrap_or_default()
        .to_owned()
}

/// Item 3: a SEND whose To-Path names no session of the server gets 481 (RFC 4975 §7.3.1),
/// on a live session's connection target; the real message then still goes through.
#[test]
fn wrong_to_path_gets_481_and_the_session_still_works() {
    let inv = Invitees::start(1, 1, 25);
    let alice = format!("sip:alice@{}", inv.host);
    let members = vec![inv.uri("inv0"), alice.clone()];
    let (server, _g) = group_server(&members, &[]);
    let data = message(300);
    let uac = Sipp::new("pager_msrp")
        .to(server.sip)
        .key("target", GROUP)
        .key("from", &alice)
        .key("accept", "text/plain");
    let mut probe_events = Vec::new();
    let o = originate_with(
        uac,
        Offer::Active,
        &data,
        0,
        "text/plain",
        |path, from_path| {
            let wrong = path.replace(path.rsplit('/').next().unwrap(), "no-such-session;tcp");
            let mut p = MsrpPeer::spawn(
                tempfile::tempdir().unwrap(),
                &[
                    "send",
                    "--connect",
                    &authority(path),
                    "--to-path",
                    &wrong,
                    "--from-path",
                    from_path,
                    "--data",
                    "lost",
                    "--timeout",
                    "5",
                ],
                Duration::from_secs(10),
            );
            assert_eq!(p.wait(), Some(0), "{p:?}");
            probe_events = p.events();
        },
    );
    let codes: Vec<i64> = probe_events
        .iter()
        .filter(|e| e["event"] == "response")
        .filter_map(|e| e["code"].as_i64())
        .collect();
    assert_eq!(codes, [481], "{probe_events:?}");
    let (uas, copies, receiver) = inv.finish();
    assert!(o.uac.success(), "{:?}\n{}", o.uac, server.log());
    assert_eq!(o.sender_code, Some(0), "{:?}", o.sender);
    assert!(uas.success(), "{uas:?}");
    assert_eq!(copies.get("inv0").map(Vec::len), Some(1), "{receiver:?}");
    assert!(copies["inv0"][0] == data);
    assert_no_session_left(server, 1);
}

/// One session with a declining invitee (486) next to an accepting one.
struct Declined {
    sender: MsrpPeer,
    server: Server,
}

fn session_with_declining_invitee() -> Declined {
    let inv = Invitees::start(1, 1, 25);
    let busy = Sipp::new("uas_busy").timeouts(Duration::from_secs(20), Duration::from_secs(30));
    let busy_uri = format!("sip:busy@{}", busy.local());
    let busy = busy.spawn();
    let alice = format!("sip:alice@{}", inv.host);
    let members = vec![inv.uri("inv0"), busy_uri.clone(), alice.clone()];
    let (server, _g) = group_server(&members, &[]);
    let data = message(4000);
    let uac = Sipp::new("pager_msrp")
        .to(server.sip)
        .key("target", GROUP)
        .key("from", &alice)
        .key("accept", "message/cpim text/plain");
    let o = originate(uac, Offer::Active, &data, 1500);
    let (uas, copies, receiver) = inv.finish();
    let busy = busy.wait();
    assert!(o.uac.success(), "{:?}\n{}", o.uac, server.log());
    assert_eq!(o.sender_code, Some(0), "{:?}\n{}", o.sender, server.log());
    assert!(uas.success(), "{uas:?}");
    assert!(busy.success(), "{busy:?}\n{}", server.log());
    assert_eq!(copies.len(), 1, "{receiver:?}");
    assert!(copies["inv0"].len() == 1 && copies["inv0"][0] == data);
    let lines = recipient_lines(&server);
    let inv0 = inv_uri(&members, "inv0");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("recipient {inv0}: delivered"))),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("recipient {busy_uri}: not reached (486)"))),
        "{lines:#?}"
    );
    Declined {
        sender: o.sender,
        server,
    }
}

/// Item 2: a 486 fails that leg only; the other invitee gets its copy; one log line per
/// recipient says what happened; the session ends.
#[test]
fn declining_invitee_is_logged_and_the_others_still_get_the_message() {
    let d = session_with_declining_invitee();
    assert_eq!(
        reports(&d.sender).len(),
        1,
        "exactly one REPORT: {:?}",
        d.sender
    );
    assert_no_session_left(d.server, 1);
}

/// Item 2, the report: not every copy was delivered, so the originator's Success-Report:
/// yes message gets a failure REPORT (6.1.3.3.2 rule finish_with_failure).
#[test]
fn declining_invitee_gives_the_originator_a_failure_report() {
    let d = session_with_declining_invitee();
    let r = reports(&d.sender);
    assert_eq!(r.len(), 1, "{:?}", d.sender);
    assert!(
        r[0].starts_with("000 ") && !r[0].starts_with("000 200"),
        "a failure status, not {:?}",
        r[0]
    );
    assert_no_session_left(d.server, 1);
}

/// Runs `invite_refused` and returns the final response SIPp received (start line and
/// Warning header).
fn refused(server: &Server, target: &str, from: &str, accept: &str) -> (String, String) {
    let run = Sipp::new("invite_refused")
        .to(server.sip)
        .key("target", target)
        .key("from", from)
        .key("accept", accept)
        .run();
    assert!(run.success(), "{run:?}\n{}", server.log());
    let last = sip_log(&run.messages)
        .into_iter()
        .rfind(|m| m.received && m.start.starts_with("SIP/2.0 ") && !m.start.contains(" 100 "))
        .unwrap_or_else(|| panic!("no final response: {run:?}"));
    let warning = last.header("Warning").unwrap_or_default().to_owned();
    (last.start, warning)
}

/// Item 3 and §11: unknown group → 404; non-member → 403; over `--max-recipients` → 403
/// with a Warning naming the limit; disjoint accept-types → 488 with a Warning. Nobody is
/// invited in any of these cases.
// covers: 5.2.1.1/not_for_this_server
// covers: 7.9.1.5/not_a_member
// covers: 7.9.1.5/over_server_limit
// covers: 6.1.3.3.2/predefined_group_setup::no_common_type
#[test]
fn refusals_404_403_limit_and_disjoint_types() {
    let uas = Sipp::new("uas_msrp")
        .key("msrp_port", "9")
        .timeouts(Duration::from_secs(3), Duration::from_secs(6));
    let host = uas.local().to_string();
    let uas = uas.spawn();
    let alice = format!("sip:alice@{host}");
    let members: Vec<String> = (0..3)
        .map(|i| format!("sip:inv{i}@{host}"))
        .chain([alice.clone()])
        .collect();
    let (server, _g) = group_server(&members, &["--max-recipients", "2"]);

    let (start, _) = refused(&server, "sip:nosuch@example.com", &alice, "text/plain");
    assert_eq!(start, "SIP/2.0 404 Not Found");

    let (start, warning) = refused(&server, GROUP, "sip:mallory@example.com", "text/plain");
    assert_eq!(start, "SIP/2.0 403 Forbidden");
    assert!(warning.contains("not a member"), "{warning}");

    let (start, warning) = refused(&server, GROUP, &alice, "text/plain");
    assert_eq!(start, "SIP/2.0 403 Forbidden");
    assert!(warning.starts_with("399 "), "{warning}");
    assert!(warning.contains("at most 2"), "{warning}");

    let (server2, _g2) = group_server(&members, &[]);
    let (start, warning) = refused(&server2, GROUP, &alice, "application/x-none image/png");
    assert_eq!(start, "SIP/2.0 488 Not Acceptable Here");
    assert!(warning.contains("no common accept-types"), "{warning}");
    // The spec's `warning 305 "…"` (RFC 3261 §20.43 incompatible media format).
    assert!(warning.starts_with("305 "), "{warning}");

    let r = uas.wait();
    assert_eq!(r.received_invites(), 0, "nobody is invited: {r:?}");
    assert_no_session_left(server, 0);
    assert_no_session_left(server2, 0);
}

/// An ad-hoc session from a resource list; returns the invitees' SIPp run (for the INVITEs
/// they received), the copies and the server.
fn list_session(
    cp_ns: &str,
    entries: impl Fn(&Invitees, &str) -> String,
    calls: u32,
) -> (SippRun, Copies, Vec<u8>, Server) {
    let inv = Invitees::start(calls, calls as usize, 25);
    let alice = format!("sip:alice@{}", inv.host);
    let server = Server::start(&[]);
    let data = message(2600);
    let uac = Sipp::new("pager_msrp_list")
        .to(server.sip)
        .key("target", FACTORY)
        .key("from", &alice)
        .key("accept", "text/plain")
        .key("cp_ns", cp_ns)
        .key("entries", &entries(&inv, &alice));
    let o = originate(uac, Offer::Actpass, &data, 1000);
    let (uas, copies, receiver) = inv.finish();
    assert!(o.uac.success(), "{:?}\n{}", o.uac, server.log());
    assert_eq!(o.sender_code, Some(0), "{:?}\n{}", o.sender, server.log());
    assert!(uas.success(), "{uas:?}\n{receiver:?}\n{}", server.log());
    assert_eq!(reports(&o.sender), ["000 200 OK"], "{:?}", o.sender);
    (uas, copies, data, server)
}

/// The Request-URI users of the INVITEs a SIPp UAS received.
fn invited_users(run: &SippRun) -> Vec<String> {
    let mut users: Vec<String> = sip_log(&run.messages)
        .into_iter()
        .filter(|m| m.received && m.start.starts_with("INVITE "))
        .filter_map(|m| {
            m.start
                .strip_prefix("INVITE sip:")
                .and_then(|r| r.split('@').next())
                .map(str::to_owned)
        })
        .collect();
    users.sort();
    users
}

/// Item 4 (and §11 with `cp_ns`): to/cc/bcc entries; each invitee's INVITE carries a
/// `recipient-list-history` part naming the to and cc recipients, never the bcc one
/// (RFC 5364 §4, RFC 5365 §5), and every invitee gets the message.
fn copy_control_history(cp_ns: &str) {
    let (uas, copies, data, server) = list_session(
        cp_ns,
        |inv, _| {
            format!(
                "<entry uri=\"{}\" cp:copyControl=\"to\"/><entry uri=\"{}\" cp:copyControl=\"cc\"/><entry uri=\"{}\" cp:copyControl=\"bcc\"/>",
                inv.uri("to0"),
                inv.uri("cc0"),
                inv.uri("bcc0")
            )
        },
        3,
    );
    assert_eq!(invited_users(&uas), ["bcc0", "cc0", "to0"]);
    let invites: Vec<_> = sip_log(&uas.messages)
        .into_iter()
        .filter(|m| m.received && m.start.starts_with("INVITE "))
        .collect();
    for inv in &invites {
        let body = inv.body();
        assert!(
            body.contains("recipient-list-history"),
            "{}: no history part:\n{}",
            inv.start,
            inv.text
        );
        assert!(
            body.contains("sip:to0@") && body.contains("sip:cc0@"),
            "{}",
            inv.text
        );
        // Its URI and its entry, not the bare name: the body's random MSRP path and
        // boundary are hex, which can spell "bcc0".
        assert!(
            !body.contains("sip:bcc0@") && !body.contains("copyControl=\"bcc\""),
            "the bcc recipient leaked:\n{}",
            inv.text
        );
    }
    for user in ["to0", "cc0", "bcc0"] {
        assert!(
            copies
                .get(user)
                .is_some_and(|c| c.len() == 1 && c[0] == data),
            "{user}: {:?}",
            copies.get(user).map(|c| c.len())
        );
    }
    assert_no_session_left(server, 1);
}

#[test]
fn copy_control_history_names_to_and_cc_never_bcc() {
    copy_control_history(CP_NS);
}

/// §11: rcsjta writes the copyControl namespace with a capital C.
#[test]
fn rcsjta_capital_c_copy_control_namespace() {
    copy_control_history("urn:ietf:params:xml:ns:copyControl");
}

/// §11: the sender and duplicates in the list: each invitee gets exactly one INVITE and one
/// copy, the sender (reachable at the same UAS, so an INVITE to it would be seen) none.
#[test]
fn sender_and_duplicates_in_the_list() {
    let (uas, copies, data, server) = list_session(
        CP_NS,
        |inv, alice| {
            format!(
                "<entry uri=\"{a}\"/><entry uri=\"{b}\" cp:copyControl=\"cc\"/><entry uri=\"{a}\"/><entry uri=\"{alice}\"/><entry uri=\"{b}\"/>",
                a = inv.uri("dup0"),
                b = inv.uri("dup1"),
            )
        },
        2,
    );
    assert_eq!(invited_users(&uas), ["dup0", "dup1"]);
    assert_eq!(copies.keys().collect::<Vec<_>>(), ["dup0", "dup1"]);
    assert!(copies.values().all(|c| c.len() == 1 && c[0] == data));
    assert_no_session_left(server, 1);
}

/// The README's walk-through with authentication on (the embedded demo users): alice
/// answers the 401 with her demo password (SIPp, MD5), and the message reaches both invitees
/// of the pre-defined group; with a wrong password the INVITE gets 401 again and nothing is
/// sent.
/// An offline member in a pager-mode session (extension ext-dr.6 keeps page-mode copies
/// only): a member of the domain with no registration is not kept for later even though
/// the server has a store to keep copies in; it is a failed recipient (no route: its SIP
/// status is 480, as a proxy with no binding answers, RFC 3261 §16.5) and the originator,
/// asking for notifications, gets `failed` for it and `delivered` for the member that took
/// its copy.
// covers: ext-dr.2/report_failed
#[test]
fn pager_session_offline_member_is_a_failed_recipient_not_kept() {
    let collector_port = common::free_udp_port();
    let alice = format!("sip:alice@127.0.0.1:{collector_port}");
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("imdn.out");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/imdn_peer.py");
    let mut collector = std::process::Command::new(common::python3())
        .arg(script)
        .args([
            "--collect",
            "--listen",
            &format!("127.0.0.1:{collector_port}"),
            "--expect",
            "2",
            "--timeout",
            "25",
            "--grace",
            "1",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .spawn()
        .expect("spawn imdn_peer.py");
    let inv = Invitees::start(1, 1, 25);
    let bob = "sip:bob@example.com".to_owned();
    let members = vec![inv.uri("inv0"), bob.clone(), alice.clone()];
    let store = out_dir.path().join("store.redb");
    let (server, _g) = group_server(&members, &["--store", store.to_str().unwrap()]);
    let message_id = "pager-offline-0001";
    let data = format!(
        "From: <{alice}>\r\nTo: <{GROUP}>\r\nNS: imdn <urn:ietf:params:imdn>\r\n\
         imdn.Message-ID: {message_id}\r\nDateTime: 2026-12-06T04:00:00Z\r\n\
         imdn.Disposition-Notification: positive-delivery, negative-delivery\r\n\r\n\
         Content-Type: text/plain\r\n\r\nhello, pager group\r\n"
    )
    .into_bytes();
    let uac = Sipp::new("pager_msrp")
        .to(server.sip)
        .key("target", GROUP)
        .key("from", &alice)
        .key("accept", "message/cpim text/plain");
    let o = originate_with(uac, Offer::Active, &data, 0, "message/cpim", |_, _| {});
    let (uas, copies, receiver) = inv.finish();
    let status = collector.wait().unwrap();
    let events: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let log = format!("{events:#?}\n{}", server.log());
    assert!(o.uac.success(), "{:?}\n{log}", o.uac);
    assert!(uas.success(), "{uas:?}");
    assert_eq!(status.code(), Some(0), "{log}");
    assert_eq!(copies.len(), 1, "{receiver:?}");
    let mut outcome: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["event"] == "imdn")
        .map(|e| {
            assert_eq!(e["message_id"], message_id, "{log}");
            (
                e["recipient_uri"].as_str().unwrap_or("").to_owned(),
                e["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    outcome.sort();
    let mut want = vec![
        (inv_uri(&members, "inv0").to_owned(), "delivered".to_owned()),
        (bob.clone(), "failed".to_owned()),
    ];
    want.sort();
    assert_eq!(outcome, want, "{log}");
    let server_log = server.log();
    assert!(
        server_log.contains(&format!("recipient {bob}: not reached (no answer)")),
        "{log}"
    );
    // Its copy's outcome carries 480, the status for a user with no registration.
    assert!(
        server_log.contains(&format!("recipient {bob}: Failed(480)")),
        "{log}"
    );
    assert!(!server_log.contains("kept until it registers"), "{log}");
    assert!(server_log.contains("kept=0"), "{log}");
    assert_no_session_left(server, 1);
}

#[test]
fn authenticated_group_round_trip_as_in_the_readme() {
    let inv = Invitees::start(2, 2, 25);
    let alice = "sip:alice@example.com".to_owned();
    let members = vec![alice.clone(), inv.uri("bob"), inv.uri("carol")];
    let groups = group_folder(GROUP, &members);
    let server = Server::start_auth(&[
        "--groups",
        groups.path().to_str().unwrap(),
        "--auth-algorithm",
        "MD5",
    ]);
    let wrong = Sipp::new("pager_msrp_auth")
        .to(server.sip)
        .key("target", GROUP)
        .key("from", &alice)
        .key("msrp_port", "9")
        .key("setup", "a=setup:active")
        .key("answer_setup", "a=setup:passive")
        .key("accept", "text/plain")
        .auth("alice", "wrong")
        .timeouts(Duration::from_secs(2), Duration::from_secs(5))
        .run();
    assert!(
        !wrong.success(),
        "a wrong password must not pass: {wrong:?}"
    );
    assert!(
        wrong.messages.matches("SIP/2.0 401").count() >= 2,
        "challenged twice: {wrong:?}"
    );
    let data = message(3000);
    let uac = Sipp::new("pager_msrp_auth")
        .to(server.sip)
        .key("target", GROUP)
        .key("from", &alice)
        .key("accept", "text/plain")
        .auth("alice", "alice-demo");
    let o = originate(uac, Offer::Active, &data, 2048);
    let (uas, copies, receiver) = inv.finish();
    let ctx = || o.context(&uas, &receiver, &server);
    assert!(o.uac.success(), "originator SIPp failed:\n{}", ctx());
    assert_eq!(uas.received_invites(), 2, "{}", ctx());
    let got: Vec<&String> = copies.keys().collect();
    assert_eq!(got, ["bob", "carol"], "{}", ctx());
    assert!(
        copies.values().all(|c| c.len() == 1 && c[0] == data),
        "{}",
        ctx()
    );
    assert_eq!(reports(&o.sender), ["000 200 OK"], "{}", ctx());
}

/// Delivery reports in a pager-mode group session (the `ext-dr` extension,
/// `specs/ext_delivery_reports.imspec`): the originator's MSRP message is `message/cpim`
/// asking for positive and negative delivery notifications; two invitees take their copy
/// (MSRP 200), one declines (486) and one answers but drops every MSRP connection as soon
/// as it is opened. The originator's offer is sendonly, so its IMDNs come as SIP MESSAGEs,
/// to its URI (an IP literal here, where the independent Python peer
/// `tests/peers/imdn_peer.py --collect` listens): two `delivered` and two `failed`, naming
/// the right invitees, with the message's imdn.Message-ID; the copies keep it unchanged.
// covers: ext-dr.1/report_delivered, ext-dr.2/report_failed
#[test]
fn pager_session_delivery_reports_two_delivered_one_declined_one_dropped() {
    let collector_port = common::free_udp_port();
    let alice = format!("sip:alice@127.0.0.1:{collector_port}");
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("imdn.out");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/imdn_peer.py");
    let mut collector = std::process::Command::new(common::python3())
        .arg(script)
        .args([
            "--collect",
            "--listen",
            &format!("127.0.0.1:{collector_port}"),
            "--expect",
            "4",
            "--timeout",
            "25",
            "--grace",
            "1",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .spawn()
        .expect("spawn imdn_peer.py");
    let inv = Invitees::start(2, 2, 25);
    let busy = Sipp::new("uas_busy").timeouts(Duration::from_secs(20), Duration::from_secs(30));
    let busy_uri = format!("sip:busy@{}", busy.local());
    let busy = busy.spawn();
    // The dropping invitee: its SDP answer names a TCP port whose listener accepts each
    // MSRP connection and closes it at once.
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
        .timeouts(Duration::from_secs(20), Duration::from_secs(30));
    let drop_uri = format!("sip:drop@{}", dropping.local());
    let dropping = dropping.spawn();
    let members = vec![
        inv.uri("inv0"),
        inv.uri("inv1"),
        busy_uri.clone(),
        drop_uri.clone(),
        alice.clone(),
    ];
    let (server, _g) = group_server(&members, &[]);
    let message_id = "pager-imdn-0001";
    let data = format!(
        "From: <{alice}>\r\nTo: <{GROUP}>\r\nNS: imdn <urn:ietf:params:imdn>\r\n\
         imdn.Message-ID: {message_id}\r\nDateTime: 2026-12-06T04:00:00Z\r\n\
         imdn.Disposition-Notification: positive-delivery, negative-delivery\r\n\r\n\
         Content-Type: text/plain\r\n\r\nhello, pager group\r\n"
    )
    .into_bytes();
    let uac = Sipp::new("pager_msrp")
        .to(server.sip)
        .key("target", GROUP)
        .key("from", &alice)
        .key("accept", "message/cpim text/plain");
    let o = originate_with(uac, Offer::Active, &data, 0, "message/cpim", |_, _| {});
    let (uas, copies, receiver) = inv.finish();
    let busy = busy.wait();
    let dropping = dropping.wait();
    let status = collector.wait().unwrap();
    let events: Vec<serde_json::Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let log = format!("{events:#?}\n{}", server.log());
    assert!(o.uac.success(), "{:?}\n{log}", o.uac);
    assert!(uas.success(), "{uas:?}");
    assert!(busy.success(), "{busy:?}");
    assert!(dropping.success(), "{dropping:?}");
    assert_eq!(status.code(), Some(0), "{log}");
    assert_eq!(copies.len(), 2, "{receiver:?}");
    for c in copies.values() {
        let text = String::from_utf8_lossy(&c[0]).into_owned();
        assert!(
            text.contains(&format!("imdn.Message-ID: {message_id}")),
            "{text}"
        );
    }
    let mut outcome: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["event"] == "imdn")
        .map(|e| {
            assert_eq!(e["message_id"], message_id, "{log}");
            assert_eq!(e["sip_content_type"], "message/cpim", "{log}");
            assert_eq!(e["content_type"], "message/imdn+xml", "{log}");
            assert_eq!(e["recipient_uri"], e["original_recipient_uri"], "{log}");
            (
                e["recipient_uri"].as_str().unwrap_or("").to_owned(),
                e["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    outcome.sort();
    let mut want = vec![
        (inv_uri(&members, "inv0").to_owned(), "delivered".to_owned()),
        (inv_uri(&members, "inv1").to_owned(), "delivered".to_owned()),
        (busy_uri, "failed".to_owned()),
        (drop_uri, "failed".to_owned()),
    ];
    want.sort();
    assert_eq!(outcome, want, "{log}");
    assert_no_session_left(server, 1);
}

/// A pre-defined group of `n` invitees whose MSRP receiver runs with `receiver_args`; the
/// originator sends a small message asking `Success-Report: yes`. The originator's run, the
/// receiver and the server.
fn confirmed_session(
    n: usize,
    receiver_args: &[&str],
    server_args: &[&str],
) -> (Originator, MsrpPeer, SippRun, Server) {
    let inv = Invitees::start_with(n as u32, n, 25, receiver_args);
    let alice = format!("sip:alice@{}", inv.host);
    let mut members: Vec<String> = (0..n).map(|i| inv.uri(&format!("inv{i}"))).collect();
    members.push(alice.clone());
    let (server, _g) = group_server(&members, server_args);
    let uac = Sipp::new("pager_msrp")
        .to(server.sip)
        .key("target", GROUP)
        .key("from", &alice)
        .key("accept", "message/cpim text/plain");
    let o = originate(uac, Offer::Active, b"confirm me", 0);
    let (uas, _copies, receiver) = inv.finish();
    (o, receiver, uas, server)
}

/// The originator asked `Success-Report: yes`, so each invitee's copy asks for one too
/// (7.9.1.4 `answered_confirming` / `message_confirming`): the independent Python receiver
/// sends its success REPORT only when a SEND asks for it, and does for both copies; the
/// originator's own success REPORT comes after both (6.1.3.3.2 `finish` once the legs heard
/// `msrp delivered` on those REPORTs, not on the 200s).
#[test]
fn the_originators_success_report_follows_the_invitees_reports() {
    let (o, receiver, uas, server) = confirmed_session(2, &[], &[]);
    let ctx = || o.context(&uas, &receiver, &server);
    assert!(o.uac.success() && uas.success(), "SIPp failed:\n{}", ctx());
    assert_eq!(o.sender_code, Some(0), "{}", ctx());
    let reported: Vec<f64> = receiver
        .events()
        .into_iter()
        .filter(|e| e["event"] == "reported")
        .map(|e| e["at"].as_f64().unwrap())
        .collect();
    assert_eq!(
        reported.len(),
        2,
        "each copy asked for a success REPORT:\n{}",
        ctx()
    );
    let report = o
        .sender
        .events()
        .into_iter()
        .find(|e| e["event"] == "report")
        .unwrap_or_else(|| panic!("no REPORT to the originator:\n{}", ctx()));
    assert_eq!(report["status"], "000 200 OK", "{}", ctx());
    let at = report["at"].as_f64().unwrap();
    assert!(
        reported.iter().all(|r| *r <= at),
        "the originator's REPORT ({at}) came before an invitee's ({reported:?}):\n{}",
        ctx()
    );
    assert_no_session_left(server, 1);
}

/// An invitee takes its copy (MSRP 200) but never sends the success REPORT the copy asked
/// for: after `--msrp-report-wait` its leg hears `msrp failed` 408 (7.9.1.4 `copy_refused`)
/// and the originator gets a failure REPORT (6.1.3.3.2 `finish_with_failure`), not a success.
#[test]
fn an_invitee_that_never_reports_fails_the_message_after_the_report_wait() {
    let (o, receiver, uas, server) =
        confirmed_session(1, &["--no-success-report"], &["--msrp-report-wait", "2s"]);
    let ctx = || o.context(&uas, &receiver, &server);
    assert!(o.uac.success() && uas.success(), "SIPp failed:\n{}", ctx());
    assert!(
        receiver
            .events()
            .iter()
            .any(|e| e["event"] == "report_withheld"),
        "the copy asked for a success REPORT:\n{}",
        ctx()
    );
    assert_eq!(reports(&o.sender), ["000 408 Request Timeout"], "{}", ctx());
    assert_eq!(o.sender_code, Some(0), "{}", ctx());
    assert_no_session_left(server, 1);
}

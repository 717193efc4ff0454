//! End-to-end offline members (extension ext-dr.6, `specs/ext_delivery_reports.imspec`):
//! the real `im-server` binary with its redb store, the independent Python peers
//! `tests/peers/imdn_peer.py` (the sender, and a member that is online) and
//! `tests/peers/offline_member.py` (a member that registers later and takes its copies).
//!
//! What these tests hold the server to:
//! * a page-mode MESSAGE to a group whose member `bob@example.com` has no registration is
//!   answered 202; the online member gets its copy and the sender its `delivered` IMDN at
//!   once; bob's copy is kept, and no notification is sent about it yet;
//! * 10 s later bob REGISTERs: he receives the copy (the sender's `message/cpim`, its
//!   `imdn.Message-ID` unchanged, From the sender) and the sender receives the `delivered`
//!   IMDN naming bob, then; also when the server was stopped and started again on the same
//!   store between the MESSAGE and the REGISTER (the redb file, and PostgreSQL through
//!   `--store-url` on a throwaway cluster);
//! * the bounds: a member with `--offline-max-per-user` copies kept gets no more (the
//!   sender's next copy fails with a `failed` IMDN, and the member later receives only the
//!   kept one); a kept copy older than `--offline-max-age` is not delivered, and the sender
//!   gets a `failed` IMDN for it (the sender asked for negative delivery), also when it
//!   expired while the server was down;
//! * (in `e2e_msrp.rs`) in a pager-mode (MSRP) session an offline invitee is not kept for
//!   later: it is a `failed` recipient with status 480.

#![allow(clippy::disallowed_methods)]

mod common;
mod pgcluster;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, free_udp_port, group_folder, python3};

const GROUP: &str = "sip:e2e@example.com";
const ALICE: &str = "sip:alice@example.com";
const BOB: &str = "sip:bob@example.com";

fn peer_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/peers")
        .join(name)
}

/// A peer running in the background, its JSON events collected when it ends.
struct Peer {
    child: Child,
    dir: tempfile::TempDir,
}

impl Peer {
    fn spawn(script: &str, args: &[String]) -> Peer {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = std::fs::File::create(dir.path().join("out")).expect("peer stdout");
        let err = std::fs::File::create(dir.path().join("err")).expect("peer stderr");
        let child = Command::new(python3())
            .arg(peer_script(script))
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("run a Python peer");
        Peer { child, dir }
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// The events printed so far.
    fn events(&self) -> Vec<serde_json::Value> {
        self.read("out")
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits for the peer's exit (it has its own timeout; killed after `limit`), and
    /// returns its events and a log for assertion messages.
    fn finish(mut self, limit: Duration) -> (Vec<serde_json::Value>, String) {
        let end = Instant::now() + limit;
        let status = loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                break Some(s);
            }
            if Instant::now() >= end {
                let _ = self.child.kill();
                break self.child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let log = format!(
            "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            status.and_then(|s| s.code()),
            self.read("out"),
            self.read("err")
        );
        (self.events(), log)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn named<'a>(events: &'a [serde_json::Value], name: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

/// The sender: one MESSAGE to the group asking for both notifications; `online` members
/// (answering 200) are played by the same process.
fn sender(
    server: &Server,
    listen: u16,
    message_id: &str,
    online: &[u16],
    expect: usize,
    timeout: u32,
) -> Peer {
    let mut args: Vec<String> = vec![
        "--server".into(),
        server.sip.to_string(),
        "--listen".into(),
        format!("127.0.0.1:{listen}"),
        "--from-uri".into(),
        ALICE.into(),
        "--to".into(),
        GROUP.into(),
        "--message-id".into(),
        message_id.into(),
        "--expect".into(),
        expect.to_string(),
        "--timeout".into(),
        timeout.to_string(),
        "--grace".into(),
        "1".into(),
    ];
    for p in online {
        args.extend(["--recipient".into(), format!("127.0.0.1:{p}=200")]);
    }
    Peer::spawn("imdn_peer.py", &args)
}

/// Bob registering at `server` and waiting for `expect` copies.
fn bob_registers(server: &Server, expect: usize) -> (Vec<serde_json::Value>, String) {
    let args: Vec<String> = vec![
        "--server".into(),
        server.sip.to_string(),
        "--listen".into(),
        format!("127.0.0.1:{}", free_udp_port()),
        "--aor".into(),
        BOB.into(),
        "--expect".into(),
        expect.to_string(),
        "--timeout".into(),
        "10".into(),
        "--grace".into(),
        "1.5".into(),
    ];
    Peer::spawn("offline_member.py", &args).finish(Duration::from_secs(20))
}

/// `(recipient-uri, status)` of each IMDN, sorted.
fn outcomes(imdns: &[&serde_json::Value]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = imdns
        .iter()
        .map(|n| {
            (
                n["recipient_uri"].as_str().unwrap_or("").to_string(),
                n["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn server_args<'a>(groups: &'a Path, store: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "--groups",
        groups.to_str().expect("utf-8"),
        "--store",
        store.to_str().expect("utf-8"),
    ];
    v.extend_from_slice(extra);
    v
}

/// Where the server keeps its copies.
enum Backend {
    /// The embedded redb file (the default store).
    Redb,
    /// A PostgreSQL database (a throwaway cluster, `pgcluster`).
    Postgres,
}

// covers: ext-dr.6/keep_for_later, ext-dr.1/report_delivered
#[test]
fn a_member_registering_10s_later_gets_the_message_and_the_sender_its_delivered_imdn() {
    member_registers_later(false, Backend::Redb);
}

/// The same with the server stopped (SIGTERM) and started again on the same store between
/// the MESSAGE and the REGISTER.
// covers: ext-dr.6/keep_for_later
#[test]
fn a_kept_copy_survives_a_server_restart() {
    member_registers_later(true, Backend::Redb);
}

/// The same with the PostgreSQL store (`--store-url`).
// covers: ext-dr.6/keep_for_later
#[test]
fn a_kept_copy_survives_a_server_restart_with_postgresql() {
    member_registers_later(true, Backend::Postgres);
}

fn member_registers_later(restart: bool, backend: Backend) {
    let carol = free_udp_port();
    let members = vec![
        ALICE.to_string(),
        BOB.to_string(),
        format!("sip:carol@127.0.0.1:{carol}"),
    ];
    let groups = group_folder(GROUP, &members);
    let data = tempfile::tempdir().expect("temp dir");
    let store = data.path().join("store.redb");
    let cluster = matches!(backend, Backend::Postgres).then(pgcluster::Cluster::start);
    let url = cluster.as_ref().map(|c| c.url()).unwrap_or_default();
    let args = match backend {
        Backend::Redb => server_args(groups.path(), &store, &[]),
        Backend::Postgres => vec![
            "--groups",
            groups.path().to_str().expect("utf-8"),
            "--store-url",
            url.as_str(),
        ],
    };
    let mut server = Server::start(&args);
    let message_id = "offline-e2e-0001";
    let alice = sender(&server, free_udp_port(), message_id, &[carol], 2, 40);
    let sent = Instant::now();
    assert!(
        server.wait_for_log("kept until it registers", Duration::from_secs(10)),
        "bob's copy was not kept:\n{}",
        server.log()
    );
    // Carol's copy and its notification go at once; nothing about bob yet.
    let end = Instant::now() + Duration::from_secs(5);
    while named(&alice.events(), "imdn").is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    let early = alice.events();
    assert_eq!(named(&early, "response")[0]["status"], 202, "{early:?}");
    assert_eq!(named(&early, "copy").len(), 1, "{early:?}");
    let imdns = named(&early, "imdn");
    assert_eq!(
        outcomes(&imdns),
        vec![(members[2].clone(), "delivered".to_string())],
        "{early:?}"
    );
    let mut before = String::new();
    if restart {
        before = server.log();
        let status = server.terminate();
        assert!(status.is_some(), "the server did not stop:\n{before}");
        server = Server::start(&args);
        assert!(
            server.wait_for_log(
                "page-mode copies for offline members",
                Duration::from_secs(5)
            ),
            "{}",
            server.log()
        );
        assert!(server.log().contains("kept=1"), "{}", server.log());
    }
    // The 10 s between the MESSAGE and the member's registration.
    let wait = Duration::from_secs(10).saturating_sub(sent.elapsed());
    std::thread::sleep(wait);
    let (bob_events, bob_log) = bob_registers(&server, 1);
    let log = format!(
        "--- bob ---\n{bob_log}\n--- server ---\n{}\n--- server before the restart ---\n{before}",
        server.log()
    );
    assert_eq!(named(&bob_events, "registered")[0]["status"], 200, "{log}");
    let copies = named(&bob_events, "copy");
    assert_eq!(copies.len(), 1, "{log}");
    let c = copies[0];
    assert_eq!(c["request_uri"], BOB, "{log}");
    assert!(c["from_"].as_str().unwrap_or("").contains(ALICE), "{log}");
    assert!(
        c["content_type"]
            .as_str()
            .unwrap_or("")
            .starts_with("message/cpim"),
        "{log}"
    );
    assert_eq!(c["imdn_message_id"], message_id, "{log}");
    assert_eq!(c["text"], "hello, group", "{log}");

    // Then the sender gets bob's `delivered`: two notifications in all, one per member.
    let (events, alice_log) = alice.finish(Duration::from_secs(40));
    let log = format!("--- alice ---\n{alice_log}\n{log}");
    assert!(!named(&events, "done").is_empty(), "{log}");
    let imdns = named(&events, "imdn");
    let mut want = vec![
        (BOB.to_string(), "delivered".to_string()),
        (members[2].clone(), "delivered".to_string()),
    ];
    want.sort();
    assert_eq!(outcomes(&imdns), want, "{log}");
    for n in &imdns {
        assert_eq!(n["message_id"], message_id, "{log}");
        assert_eq!(n["request_uri"], ALICE, "{log}");
    }
    // Bob's came after his registration, not before.
    assert!(sent.elapsed() >= Duration::from_secs(10), "{log}");
}

/// `--offline-max-per-user 1`: bob already has one copy kept, so the second message's copy
/// for him fails (a `failed` IMDN to its sender) and his registration brings only the first.
// covers: ext-dr.2/report_failed
#[test]
fn the_per_user_bound_fails_the_excess_copy() {
    let groups = group_folder(GROUP, &[ALICE.to_string(), BOB.to_string()]);
    let data = tempfile::tempdir().expect("temp dir");
    let store = data.path().join("store.redb");
    let server = Server::start(&server_args(
        groups.path(),
        &store,
        &["--offline-max-per-user", "1"],
    ));
    // The first is kept: no notification (the peer waits 1 s after the 202).
    let (first, log1) =
        sender(&server, free_udp_port(), "first-0001", &[], 0, 10).finish(Duration::from_secs(20));
    assert_eq!(named(&first, "response")[0]["status"], 202, "{log1}");
    assert!(named(&first, "imdn").is_empty(), "{log1}");
    // The second is over the bound: failed.
    let (second, log2) =
        sender(&server, free_udp_port(), "second-0002", &[], 1, 10).finish(Duration::from_secs(20));
    let log = format!("{log2}\n--- server ---\n{}", server.log());
    assert_eq!(named(&second, "response")[0]["status"], 202, "{log}");
    let imdns = named(&second, "imdn");
    assert_eq!(
        outcomes(&imdns),
        vec![(BOB.to_string(), "failed".to_string())],
        "{log}"
    );
    assert_eq!(imdns[0]["message_id"], "second-0002", "{log}");
    // Bob gets the first only.
    let (bob_events, bob_log) = bob_registers(&server, 1);
    let copies = named(&bob_events, "copy");
    assert_eq!(copies.len(), 1, "{bob_log}\n{}", server.log());
    assert_eq!(copies[0]["imdn_message_id"], "first-0001", "{bob_log}");
}

/// `--offline-max-age 2s`: a kept copy that waited longer is not delivered; its sender gets
/// a `failed` IMDN (it asked for negative delivery) when the copy expires, even with
/// nothing else happening on the server (the endpoint wakes for the expiry).
// covers: ext-dr.2/report_failed
#[test]
fn a_kept_copy_expires_with_a_failed_imdn() {
    let groups = group_folder(GROUP, &[ALICE.to_string(), BOB.to_string()]);
    let data = tempfile::tempdir().expect("temp dir");
    let store = data.path().join("store.redb");
    let server = Server::start(&server_args(
        groups.path(),
        &store,
        &["--offline-max-age", "2s"],
    ));
    let started = Instant::now();
    let (events, log) =
        sender(&server, free_udp_port(), "aged-0001", &[], 1, 15).finish(Duration::from_secs(25));
    let log = format!("{log}\n--- server ---\n{}", server.log());
    assert_eq!(named(&events, "response")[0]["status"], 202, "{log}");
    let imdns = named(&events, "imdn");
    assert_eq!(
        outcomes(&imdns),
        vec![(BOB.to_string(), "failed".to_string())],
        "{log}"
    );
    assert!(started.elapsed() >= Duration::from_secs(2), "{log}");
    // Bob registering afterwards gets nothing.
    let (bob_events, bob_log) = bob_registers(&server, 0);
    assert_eq!(
        named(&bob_events, "registered")[0]["status"],
        200,
        "{bob_log}"
    );
    assert!(named(&bob_events, "copy").is_empty(), "{bob_log}");
}

/// A kept copy that expires while the server is down fails when the server is back, with
/// nothing else arriving (the restarted server finds it due at once): the sender, still
/// listening, gets its `failed` IMDN.
// covers: ext-dr.2/report_failed
#[test]
fn a_copy_that_expired_while_the_server_was_down_fails_after_the_restart() {
    let groups = group_folder(GROUP, &[ALICE.to_string(), BOB.to_string()]);
    let data = tempfile::tempdir().expect("temp dir");
    let store = data.path().join("store.redb");
    let args = server_args(groups.path(), &store, &["--offline-max-age", "2s"]);
    let mut server = Server::start(&args);
    let alice = sender(&server, free_udp_port(), "down-0001", &[], 1, 20);
    assert!(
        server.wait_for_log("kept until it registers", Duration::from_secs(10)),
        "{}",
        server.log()
    );
    let before = server.log();
    assert!(server.terminate().is_some(), "{before}");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        named(&alice.events(), "imdn").is_empty(),
        "nothing while down"
    );
    let server = Server::start(&args);
    let (events, log) = alice.finish(Duration::from_secs(25));
    let log = format!(
        "{log}\n--- server ---\n{}\n--- before ---\n{before}",
        server.log()
    );
    let imdns = named(&events, "imdn");
    assert_eq!(
        outcomes(&imdns),
        vec![(BOB.to_string(), "failed".to_string())],
        "{log}"
    );
    assert_eq!(imdns[0]["message_id"], "down-0001", "{log}");
}

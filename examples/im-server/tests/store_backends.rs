//! One suite of store checks run against both backends: the embedded redb file and a real
//! PostgreSQL server (a throwaway cluster started here, see `pgcluster`). Then what only a
//! shared store does: two servers' handles on one database see each other's writes,
//! through the same poller the server runs, and a database that is down makes calls fail
//! within the timeout instead of hanging.

#![allow(clippy::disallowed_methods)]

// The e2e harness, for its `wait_until`.
mod common;
mod pgcluster;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use im_server::groups::{GroupStore, ManagedGroups, SharedGroups};
use im_server::router::{LocationTable, Router};
use im_server::store::{PgStore, RedbStore, Refresher, Store, unix_now};
use im_server::uri::parse_uri;
use im_server::users::{SharedUsers, Users};
use im_server::xcap::Xcap;

use common::wait_until;

trait Backend {
    fn name(&self) -> &'static str;
    fn open(&self) -> Arc<dyn Store>;
    /// Stops and starts the storage itself (the database server, for PostgreSQL).
    fn restart(&self);
}

struct Redb(tempfile::TempDir);

impl Backend for Redb {
    fn name(&self) -> &'static str {
        "redb"
    }
    fn open(&self) -> Arc<dyn Store> {
        Arc::new(RedbStore::open(&self.0.path().join("s.redb")).unwrap())
    }
    fn restart(&self) {}
}

struct Pg(pgcluster::Cluster);

impl Backend for Pg {
    fn name(&self) -> &'static str {
        "postgres"
    }
    fn open(&self) -> Arc<dyn Store> {
        Arc::new(PgStore::connect(&self.0.url(), Duration::from_secs(10)).unwrap())
    }
    fn restart(&self) {
        self.0.restart();
    }
}

const GROUP_KEY: &str = "org.openmobilealliance.groups/users/sip:alice@example.com/index";
const USER_KEY: &str = "imspec.users/sip:alice@example.com";

fn group_doc(group: &str, members: &[&str]) -> Vec<u8> {
    let entries: String = members
        .iter()
        .map(|m| format!("<rl:entry uri=\"{m}\"/>"))
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<group xmlns="urn:oma:xml:poc:list-service" xmlns:rl="urn:ietf:params:xml:ns:resource-lists">
  <list-service uri="{group}"><list>{entries}</list></list-service>
</group>
"#
    )
    .into_bytes()
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn documents(b: &dyn Backend) {
    let s = b.open();
    let n = b.name();
    s.put("docs/b", b"two").unwrap();
    s.put("docs/a", b"one").unwrap();
    s.put("docs/a", b"uno").unwrap();
    s.put("docs/B", b"upper").unwrap();
    // Binary octets come back unchanged.
    s.put("docs/bin", &[0, 255, 10, 13]).unwrap();
    assert_eq!(
        s.get("docs/a").unwrap().as_deref(),
        Some(&b"uno"[..]),
        "{n}"
    );
    assert_eq!(
        s.get("docs/bin").unwrap(),
        Some(vec![0, 255, 10, 13]),
        "{n}"
    );
    assert_eq!(s.get("docs/none").unwrap(), None, "{n}");
    assert!(s.delete("docs/b").unwrap(), "{n}");
    assert!(!s.delete("docs/b").unwrap(), "{n}");
    let keys: Vec<String> = s
        .list()
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("docs/"))
        .collect();
    // Byte order, both backends.
    assert_eq!(keys, ["docs/B", "docs/a", "docs/bin"], "{n}");
    let keys: Vec<String> = s
        .list_prefix("docs/b")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, ["docs/bin"], "{n}");
}

fn bindings(b: &dyn Backend) {
    let s = b.open();
    let n = b.name();
    let c1 = sa("127.0.0.1:5070");
    let c2 = sa("[::1]:5071");
    s.put_binding("sip:b1@example.com", c1, 100).unwrap();
    s.put_binding("sip:b1@example.com", c2, 200).unwrap();
    s.put_binding("sip:b1@example.com", c1, 150).unwrap();
    s.put_binding("sip:b2@example.com", c1, 300).unwrap();
    s.put_binding("sip:b2@example.com", c1, 0).unwrap();
    let mut got: Vec<_> = s
        .bindings()
        .unwrap()
        .into_iter()
        .filter(|(a, _, _)| a.starts_with("sip:b"))
        .collect();
    got.sort_by_key(|(a, c, _)| (a.clone(), c.to_string()));
    assert_eq!(
        got,
        vec![
            ("sip:b1@example.com".to_owned(), c1, 150),
            ("sip:b1@example.com".to_owned(), c2, 200),
        ],
        "{n}"
    );
}

/// Groups, registrations and a user document survive closing the store and restarting
/// the storage.
fn persistence(b: &dyn Backend) {
    let n = b.name();
    let bob = sa("127.0.0.1:5090");
    let expires = unix_now() + 600;
    {
        let s = b.open();
        s.put(
            GROUP_KEY,
            &group_doc(
                "sip:friends@example.com",
                &["sip:bob@example.com", "sip:carol@example.com"],
            ),
        )
        .unwrap();
        s.put(USER_KEY, b"{\"ha1\":\"0123\"}").unwrap();
        s.put_binding("sip:bob@example.com", bob, expires).unwrap();
    }
    b.restart();
    let s = b.open();
    assert_eq!(
        s.get(USER_KEY).unwrap().as_deref(),
        Some(&b"{\"ha1\":\"0123\"}"[..]),
        "{n}"
    );
    let groups: Vec<_> = s
        .list()
        .unwrap()
        .into_iter()
        .filter(|(k, _)| k.starts_with("org.openmobilealliance.groups/"))
        .collect();
    let (managed, problems) = ManagedGroups::from_documents(&groups);
    assert!(problems.is_empty(), "{n}: {problems:?}");
    let g = managed
        .group(&parse_uri("sip:friends@example.com").unwrap())
        .unwrap_or_else(|| panic!("{n}: the group is gone"));
    assert_eq!(g.members.len(), 2, "{n}");
    assert!(
        s.bindings()
            .unwrap()
            .contains(&("sip:bob@example.com".to_owned(), bob, expires)),
        "{n}"
    );
}

/// Conditional writes: the check against the current document and the write are one step.
fn conditional(b: &dyn Backend) {
    let s = b.open();
    let n = b.name();
    let k = "cond/doc";
    assert!(s.put_if(k, None, None).unwrap(), "{n}: absent as expected");
    assert!(s.put_if(k, None, Some(b"v1")).unwrap(), "{n}: create");
    assert!(!s.put_if(k, None, Some(b"v1bis")).unwrap(), "{n}: exists");
    assert!(!s.put_if(k, None, None).unwrap(), "{n}: not absent");
    assert!(
        !s.put_if(k, Some(b"v0"), Some(b"v2")).unwrap(),
        "{n}: stale"
    );
    assert_eq!(s.get(k).unwrap().as_deref(), Some(&b"v1"[..]), "{n}");
    assert!(
        s.put_if(k, Some(b"v1"), Some(b"v2")).unwrap(),
        "{n}: replace"
    );
    assert!(
        !s.put_if(k, Some(b"v1"), None).unwrap(),
        "{n}: stale delete"
    );
    assert!(s.put_if(k, Some(b"v2"), None).unwrap(), "{n}: delete");
    assert_eq!(s.get(k).unwrap(), None, "{n}");
}

/// Kept page-mode copies (ext-dr.6): put, listed by recipient prefix in key order, deleted
/// once (a second delete says it was gone), and still there after reopening.
fn offline(b: &dyn Backend) {
    let n = b.name();
    {
        let s = b.open();
        s.offline_put("sip:bob@example.com 00000000000000000002-1-0", b"second")
            .unwrap();
        s.offline_put("sip:bob@example.com 00000000000000000001-1-0", b"first")
            .unwrap();
        s.offline_put("sip:bobby@example.com 00000000000000000001-1-0", b"other")
            .unwrap();
    }
    let s = b.open();
    let bob = s.offline_list("sip:bob@example.com ").unwrap();
    assert_eq!(
        bob,
        vec![
            (
                "sip:bob@example.com 00000000000000000001-1-0".to_owned(),
                b"first".to_vec()
            ),
            (
                "sip:bob@example.com 00000000000000000002-1-0".to_owned(),
                b"second".to_vec()
            ),
        ],
        "{n}"
    );
    assert_eq!(s.offline_list("").unwrap().len(), 3, "{n}");
    assert!(s.offline_delete(&bob[0].0).unwrap(), "{n}");
    assert!(!s.offline_delete(&bob[0].0).unwrap(), "{n}: deleted once");
    assert_eq!(
        s.offline_list("sip:bob@example.com ").unwrap().len(),
        1,
        "{n}"
    );
}

fn suite(b: &dyn Backend) {
    offline(b);
    conditional(b);
    documents(b);
    bindings(b);
    persistence(b);
}

#[test]
fn redb_backend() {
    let b = Redb(tempfile::tempdir().unwrap());
    suite(&b);
    let s = b.open();
    assert!(!s.is_shared());
}

/// A server (`b_router`, `b_groups`) polling the store sees what another server wrote.
fn shared_between_servers(b: &Pg) {
    let a = b.open();
    let other = b.open();
    assert!(other.is_shared());
    let router = Router::new(None, LocationTable::default());
    let groups = SharedGroups::fixed(GroupStore::new("/nonexistent", Duration::from_secs(60)));
    let xcap = Arc::new(Xcap::new("/xcap", other.clone(), groups.clone()));
    xcap.publish().unwrap();
    let users = SharedUsers::new(Users::default());
    Refresher::start(
        other.clone(),
        &router,
        xcap.clone(),
        Some(users.clone()),
        Duration::from_millis(100),
    )
    .unwrap();
    let dave = parse_uri("sip:dave@example.com").unwrap();
    let dave_at = sa("127.0.0.1:5091");
    let lookup = |t: &Router| t.locations.read().unwrap().lookup(&dave, Instant::now());
    let t0 = Instant::now();
    a.put_binding("sip:dave@example.com", dave_at, unix_now() + 600)
        .unwrap();
    let written = t0.elapsed();
    assert!(
        wait_until(Duration::from_secs(5), || lookup(&router) == Some(dave_at)),
        "a binding written by one server is routed by the other"
    );
    eprintln!(
        "binding write {written:?}; routable by the other server after {:?} (refresh 100 ms)",
        t0.elapsed()
    );
    // A second contact registered later is the newest; refreshing the first makes it so.
    let dave_too = sa("127.0.0.1:5092");
    a.put_binding("sip:dave@example.com", dave_too, unix_now() + 600)
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || lookup(&router) == Some(dave_too)),
        "the contact registered last is routed"
    );
    a.put_binding("sip:dave@example.com", dave_at, unix_now() + 600)
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || lookup(&router) == Some(dave_at)),
        "the contact refreshed last is routed"
    );
    // Several polls re-read the same changes (the overlap): the order holds.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lookup(&router), Some(dave_at));
    a.put_binding("sip:dave@example.com", dave_too, 0).unwrap();
    a.put_binding("sip:dave@example.com", dave_at, 0).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || lookup(&router).is_none()),
        "a removal is seen too"
    );
    // Two servers that both read v1 and both write: one wins, the other is told.
    a.put("race/doc", b"v1").unwrap();
    assert!(a.put_if("race/doc", Some(b"v1"), Some(b"from a")).unwrap());
    assert!(
        !other
            .put_if("race/doc", Some(b"v1"), Some(b"from b"))
            .unwrap()
    );
    assert_eq!(
        other.get("race/doc").unwrap().as_deref(),
        Some(&b"from a"[..])
    );
    let team = parse_uri("sip:team@example.com").unwrap();
    let before = other.documents_generation().unwrap();
    a.put(
        "org.openmobilealliance.groups/users/sip:erin@example.com/index",
        &group_doc("sip:team@example.com", &["sip:frank@example.com"]),
    )
    .unwrap();
    assert_ne!(other.documents_generation().unwrap(), before);
    assert!(
        wait_until(Duration::from_secs(5), || groups
            .managed()
            .group(&team)
            .is_some()),
        "a group PUT through one server is published by the other"
    );
    a.delete("org.openmobilealliance.groups/users/sip:erin@example.com/index")
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || groups
            .managed()
            .group(&team)
            .is_none()),
        "a group DELETE is seen too"
    );
    // A user added through one server (`im-server user add`) authenticates on the other.
    im_server::users::add(a.as_ref(), "zoe", "example.com", "pw").unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || users
            .lookup("zoe", "example.com")
            .is_some()),
        "a user added through one server is known to the other"
    );
}

/// Calls made while the database is down fail within the timeout; once it is back the
/// same handle reconnects.
fn write_figures(b: &Pg) {
    let s = b.open();
    let n = 200u32;
    let t0 = Instant::now();
    for i in 0..n {
        s.put_binding(
            &format!("sip:load{i}@example.com"),
            sa("127.0.0.1:5099"),
            unix_now() + 60,
        )
        .unwrap();
    }
    let per = t0.elapsed() / n;
    let t0 = Instant::now();
    let (rows, _) = s.binding_changes(0).unwrap();
    eprintln!(
        "PostgreSQL: {per:?} per binding write; a full poll of {} rows {:?}",
        rows.len(),
        t0.elapsed()
    );
}

fn outage(b: &Pg) {
    let s = PgStore::connect(&b.0.url(), Duration::from_secs(2)).unwrap();
    s.put("outage/x", b"1").unwrap();
    b.0.restart();
    // The first call after the restart may find the old connection closed.
    let mut ok = false;
    for _ in 0..3 {
        if s.get("outage/x")
            .is_ok_and(|v| v.as_deref() == Some(&b"1"[..]))
        {
            ok = true;
            break;
        }
    }
    assert!(ok, "the store reconnects after a database restart");
}

#[test]
fn postgres_backend() {
    let b = Pg(pgcluster::Cluster::start());
    suite(&b);
    shared_between_servers(&b);
    write_figures(&b);
    outage(&b);
}

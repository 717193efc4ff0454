//! Scale-out end to end (docs/deploy.md, "Several instances"): Kamailio with
//! `scripts/kamailio/dispatcher.cfg` in front of two `im-server` instances sharing one
//! PostgreSQL store (a throwaway cluster, `pgcluster`), all on loopback.
//!
//! - bob registers through Kamailio and lands on one instance (R); a group is created over
//!   XCAP on R;
//! - group sessions (SIPp, pager mode) through Kamailio are tried with new Call-IDs until
//!   the dispatcher's Call-ID hash puts one on the other instance (O): O finds the group and
//!   bob's binding in the shared store and invites him;
//! - R is killed: every new session lands on O (after at most one timeout per session
//!   while OPTIONS probing has not yet marked R down) and succeeds, and bob gets each one.
//!
//! And one instance on PostgreSQL restarted together with the database: the group made
//! over XCAP, bob's registration and a user document are all still there.

#![allow(clippy::disallowed_methods)]

mod common;
mod pgcluster;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use common::kamailio::{Kamailio, register};
use common::{Server, Sipp, free_tcp_port, free_udp_port, session_to_bob, wait_until};

const GROUP: &str = "sip:kamailio-e2e@example.com";
const ALICE: &str = "sip:alice@example.com";
const BOB: &str = "sip:bob@example.com";

/// Kamailio's dispatcher over `instances` (its `dispatcher.list`, set 1).
fn dispatcher(instances: &[SocketAddr]) -> Kamailio {
    Kamailio::start("dispatcher.cfg", |dir| {
        let list = dir.join("dispatcher.list");
        let lines: String = instances.iter().map(|a| format!("1 sip:{a}\n")).collect();
        std::fs::write(&list, lines).expect("write dispatcher.list");
        vec![format!("DSLIST=\"{}\"", list.display())]
    })
}

fn group_doc(group: &str, members: &[&str]) -> String {
    let entries: String = members
        .iter()
        .map(|m| format!("<rl:entry uri=\"{m}\"/>"))
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<group xmlns="urn:oma:xml:poc:list-service" xmlns:rl="urn:ietf:params:xml:ns:resource-lists" xmlns:cp="urn:ietf:params:xml:ns:common-policy">
  <list-service uri="{group}">
    <list>{entries}</list>
    <cp:ruleset><cp:rule id="members"><cp:conditions><is-list-member/></cp:conditions><cp:actions><allow-initiate-conference>true</allow-initiate-conference></cp:actions></cp:rule></cp:ruleset>
  </list-service>
</group>
"#
    )
}

/// One HTTP/1.1 exchange with `Connection: close`; the status and the body.
fn http(addr: SocketAddr, method: &str, path: &str, ctype: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

/// The value of an unlabelled gauge in `/metrics`.
fn gauge(xcap: SocketAddr, name: &str) -> Option<i64> {
    let (_, text) = http(xcap, "GET", "/metrics", "text/plain", "");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} "))?.trim().parse().ok())
}

struct Instance {
    server: Server,
    xcap: SocketAddr,
}

fn instance(url: &str, groups: &Path) -> Instance {
    let xcap: SocketAddr = ([127, 0, 0, 1], free_tcp_port()).into();
    let server = Server::start(&[
        "--groups",
        groups.to_str().unwrap(),
        "--store-url",
        url,
        "--store-refresh",
        "200ms",
        "--xcap",
        &xcap.to_string(),
        // Kamailio relays from 127.0.0.1: its P-Asserted-Identity is trusted.
        "--trusted-host",
        "127.0.0.1",
    ]);
    Instance { server, xcap }
}

#[test]
fn two_instances_behind_kamailio_share_registrations_and_groups_and_survive_one_dying() {
    let pg = pgcluster::Cluster::start();
    let groups = tempfile::tempdir().unwrap();
    let mut instances = vec![
        Some(instance(&pg.url(), groups.path())),
        Some(instance(&pg.url(), groups.path())),
    ];
    let addrs: Vec<SocketAddr> = instances
        .iter()
        .map(|i| i.as_ref().unwrap().server.sip)
        .collect();
    let kam = dispatcher(&addrs);
    let logs = |instances: &[Option<Instance>]| -> String {
        instances
            .iter()
            .flatten()
            .map(|i| i.server.log())
            .collect::<Vec<_>>()
            .join("\n")
    };

    // bob registers through Kamailio.
    let bob_port = free_udp_port();
    let contact = format!("sip:bob@127.0.0.1:{bob_port}");
    let answer = register(kam.sip, BOB, 0, &contact, "register-bob-kamailio", "");
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}\n{}", kam.log());
    let registrar_port = kam
        .destination("register-bob-kamailio")
        .expect("Kamailio logged where the REGISTER went");
    let r = addrs
        .iter()
        .position(|a| a.port() == registrar_port)
        .unwrap();
    let o = 1 - r;

    // The group is created over XCAP on the registrar.
    let rx = instances[r].as_ref().unwrap().xcap;
    let (status, body) = http(
        rx,
        "PUT",
        "/xcap/org.openmobilealliance.groups/users/sip:alice@example.com/index",
        "application/vnd.oma.poc.groups+xml",
        &group_doc(GROUP, &[ALICE, BOB]),
    );
    assert_eq!(status, 201, "{body}");
    // The other instance learns both from the store within a few refreshes.
    let ox = instances[o].as_ref().unwrap().xcap;
    assert!(
        wait_until(Duration::from_secs(10), || {
            gauge(ox, "imserver_register_bindings") == Some(1)
                && gauge(ox, "imserver_groups{source=\"store\"}") == Some(1)
        }),
        "the other instance did not see the binding and the group:\n{}",
        logs(&instances)
    );

    // Sessions until the Call-ID hash puts one on the other instance.
    let mut landed_on_other = false;
    for attempt in 0..12 {
        let call_ids = format!("kam{attempt}-%u@%s");
        let (run, b) = session_to_bob(kam.sip, GROUP, ALICE, bob_port, Some(&call_ids));
        assert!(
            run.success(),
            "{run:?}\n{}\n{}",
            kam.log(),
            logs(&instances)
        );
        // The instance returns Kamailio's Record-Route (the dialog's route set).
        assert!(
            run.messages
                .contains(&format!("Record-Route: <sip:{};lr", kam.sip)),
            "{run:?}"
        );
        assert!(b.success(), "bob: {b:?}\n{}", logs(&instances));
        assert_eq!(b.received_invites(), 1, "{b:?}");
        let call_id = format!("kam{attempt}-1@127.0.0.1");
        if kam.destination(&call_id) == Some(addrs[o].port()) {
            landed_on_other = true;
            break;
        }
    }
    assert!(
        landed_on_other,
        "no session landed on the other instance:\n{}",
        kam.log()
    );

    // The registrar dies; new sessions go to the survivor, and all of them succeed: at
    // first a session hashed to the dead one fails over after one timeout, then OPTIONS
    // probing marks it down and sessions go straight to the survivor.
    instances[r] = None;
    const AFTER: u32 = 4;
    const ONCE_DOWN: u32 = 3;
    let bob = Sipp::new("uas_answer")
        .port(bob_port)
        .calls(AFTER + ONCE_DOWN)
        .timeouts(Duration::from_secs(30), Duration::from_secs(90))
        .spawn();
    std::thread::sleep(Duration::from_millis(200));
    // Half of them send ACK and BYE with the recorded route (Kamailio's loose_route), the
    // others without (relayed by the Request-URI, the owning instance's Contact).
    let session = |name: String| {
        let scenario = if name.ends_with(['1', '3']) {
            "invite_pager_routed"
        } else {
            "invite_pager"
        };
        let run = Sipp::new(scenario)
            .to(kam.sip)
            .call_ids(&format!("{name}-%u@%s"))
            .timeouts(Duration::from_secs(10), Duration::from_secs(20))
            .key("target", GROUP)
            .key("from", ALICE)
            .run();
        assert!(
            run.success(),
            "{run:?}\n{}\n{}",
            kam.log(),
            logs(&instances)
        );
        let call_id = format!("{name}-1@127.0.0.1");
        assert_eq!(
            kam.destination(&call_id),
            Some(addrs[o].port()),
            "{}",
            kam.log()
        );
        call_id
    };
    for i in 0..AFTER {
        session(format!("dead{i}"));
    }
    let dead = format!("instance down: OPTIONS sip:{}", addrs[r]);
    assert!(
        wait_until(Duration::from_secs(10), || kam.log().contains(&dead)),
        "probing did not mark the dead instance down:\n{}",
        kam.log()
    );
    for i in 0..ONCE_DOWN {
        let call_id = session(format!("down{i}"));
        let tries = kam
            .log()
            .lines()
            .filter(|l| l.contains(&format!(" {call_id} -> ")))
            .count();
        assert_eq!(tries, 1, "no failover once marked down:\n{}", kam.log());
    }
    let b = bob.wait();
    assert!(b.success(), "bob: {b:?}\n{}", logs(&instances));
    assert_eq!(b.received_invites(), (AFTER + ONCE_DOWN) as usize, "{b:?}");

    // A group MESSAGE through Kamailio reaches bob through the survivor too.
    let bob = Sipp::new("uas_message")
        .port(bob_port)
        .timeouts(Duration::from_secs(15), Duration::from_secs(25))
        .spawn();
    std::thread::sleep(Duration::from_millis(200));
    let run = Sipp::new("message_text")
        .to(kam.sip)
        .call_ids("msg-%u@%s")
        .key("target", GROUP)
        .key("from", ALICE)
        .run();
    assert!(
        run.success(),
        "{run:?}\n{}\n{}",
        kam.log(),
        logs(&instances)
    );
    let b = bob.wait();
    assert!(b.success(), "bob: {b:?}\n{}", logs(&instances));

    // The survivor's /metrics, read while it runs, shows the sessions it ran (the MESSAGE
    // session's latency once it has ended).
    let copies = || {
        let (_, t) = http(ox, "GET", "/metrics", "text/plain", "");
        t.contains("imserver_message_to_last_copy_seconds_count 1")
    };
    assert!(
        wait_until(Duration::from_secs(40), copies),
        "{}",
        logs(&instances)
    );
    let (_, text) = http(ox, "GET", "/metrics", "text/plain", "");
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} "))?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    let sessions = u64::from(AFTER + ONCE_DOWN) + 1;
    for counted in [
        "imserver_sessions_started_total",
        "imserver_invite_to_ok_seconds_count",
        "imserver_invite_to_ok_seconds_bucket{le=\"+Inf\"}",
        "imserver_legs_total{outcome=\"answered\"}",
    ] {
        assert!(value(counted) >= sessions, "{counted}: {text}");
    }
    assert!(
        text.lines().any(
            |l| l.starts_with("imserver_responses_total{status=\"200\",procedure=\"")
                && !l.contains("procedure=\"runtime\"")
        ),
        "a 200 chosen by a spec rule:\n{text}"
    );
}

/// The server-level restart check of the embedded store (`e2e_xcap`), on PostgreSQL, with
/// the database restarted too: a group created over XCAP (same ETag after), a REGISTER
/// binding (a session reaches bob with no new REGISTER) and a user document under
/// `imspec.users/` (as the credentials helper stores them) survive.
#[test]
fn postgres_store_survives_server_and_database_restart() {
    let pg = pgcluster::Cluster::start();
    let groups = tempfile::tempdir().unwrap();
    let mut a = instance(&pg.url(), groups.path());
    let bob_port = free_udp_port();
    let contact = format!("sip:bob@127.0.0.1:{bob_port}");
    let answer = register(a.server.sip, BOB, 0, &contact, "register-bob-restart", "");
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    let doc = group_doc(GROUP, &[ALICE, BOB]);
    let path = "/xcap/org.openmobilealliance.groups/users/sip:alice@example.com/index";
    let (status, _) = http(
        a.xcap,
        "PUT",
        path,
        "application/vnd.oma.poc.groups+xml",
        &doc,
    );
    assert_eq!(status, 201);
    {
        let store = im_server::store::PgStore::connect(&pg.url(), Duration::from_secs(10)).unwrap();
        im_server::store::Store::put(&store, "imspec.users/sip:bob@example.com", b"bob").unwrap();
    }
    // The binding is written behind the answer; SIGTERM lets the writer finish.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        a.server.terminate().is_some_and(|st| st.success()),
        "{}",
        a.server.log()
    );
    drop(a);
    pg.restart();

    let a = instance(&pg.url(), groups.path());
    assert!(
        a.server.wait_for_log("restored=1", Duration::from_secs(5)),
        "{}",
        a.server.log()
    );
    let (status, body) = http(a.xcap, "GET", path, "text/plain", "");
    assert_eq!((status, body.as_str()), (200, doc.as_str()));
    let store = im_server::store::PgStore::connect(&pg.url(), Duration::from_secs(10)).unwrap();
    assert_eq!(
        im_server::store::Store::get(&store, "imspec.users/sip:bob@example.com").unwrap(),
        Some(b"bob".to_vec())
    );
    let (run, b) = session_to_bob(a.server.sip, GROUP, ALICE, bob_port, None);
    assert!(run.success(), "{run:?}\n{}", a.server.log());
    assert!(b.success(), "bob: {b:?}\n{}", a.server.log());
    assert_eq!(b.received_invites(), 1, "{b:?}");
}

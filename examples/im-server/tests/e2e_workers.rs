//! End-to-end with `--workers 2`: the server runs two endpoints (shards) behind one SIP
//! socket. Group sessions whose Call-IDs steer to both shards succeed over UDP and over TCP
//! (so each shard's invitee INVITEs, their answers and the BYEs come back to it), and a
//! REGISTER handled by one shard routes an invitee of a session held by the other.

#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeSet;
use std::net::UdpSocket;
use std::time::Duration;

use common::{Server, Sipp, group_folder};
use im_runtime::steer::steer;

const GROUP: &str = "sip:team@example.com";
const ALICE: &str = "sip:alice@example.com";
const SESSIONS: u32 = 6;

/// A `-cid_str` pattern whose calls 1..=`calls` steer to both of 2 shards (or, with
/// `only`, all to that shard).
fn call_id_pattern(calls: u32, only: Option<usize>) -> String {
    (0..)
        .map(|k| format!("w{k}-%u@127.0.0.1"))
        .find(|p| {
            let shards: BTreeSet<usize> = (1..=calls)
                .map(|i| steer(p.replace("%u", &i.to_string()).as_bytes(), 2))
                .collect();
            match only {
                Some(s) => shards == BTreeSet::from([s]),
                None => shards.len() == 2,
            }
        })
        .unwrap()
}

/// The shards of the Call-IDs of the requests a SIPp UAC sent.
fn shards_of_sent_calls(messages: &str) -> BTreeSet<usize> {
    messages
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("Call-ID:"))
        .map(|id| steer(id.trim().as_bytes(), 2))
        .collect()
}

fn group_sessions(tcp: bool, workers: &str) {
    let mut uas = Vec::new();
    let mut members = vec![ALICE.to_owned()];
    for i in 0..2 {
        let sipp = Sipp::new("uas_answer")
            .calls(SESSIONS)
            .timeouts(Duration::from_secs(20), Duration::from_secs(40));
        members.push(format!("sip:member{i}@{}", sipp.local()));
        uas.push(sipp.spawn());
    }
    std::thread::sleep(Duration::from_millis(300));
    let groups = group_folder(GROUP, &members);
    let s = Server::start(&[
        "--groups",
        groups.path().to_str().unwrap(),
        "--workers",
        workers,
    ]);
    let bound = format!("workers={workers}");
    assert!(
        s.wait_for_log(&bound, Duration::from_secs(5)),
        "{}",
        s.log()
    );
    let mut uac = Sipp::new("invite_pager")
        .to(s.sip)
        .key("target", GROUP)
        .key("from", ALICE)
        .calls(SESSIONS)
        .timeouts(Duration::from_secs(10), Duration::from_secs(40))
        .call_ids(&call_id_pattern(SESSIONS, None));
    if tcp {
        uac = uac.tcp();
    }
    let run = uac.run();
    assert!(run.success(), "{run:?}\n{}", s.log());
    assert_eq!(
        shards_of_sent_calls(&run.messages),
        BTreeSet::from([0, 1]),
        "the sessions were held by both workers"
    );
    for p in uas {
        let r = p.wait();
        assert!(r.success(), "invitee: {r:?}\n{}", s.log());
        assert_eq!(r.received_invites(), SESSIONS as usize, "{r:?}");
    }
}

#[test]
fn group_sessions_on_two_workers_over_udp() {
    group_sessions(false, "2");
}

#[test]
fn group_sessions_on_two_workers_over_tcp() {
    group_sessions(true, "2");
}

/// `--workers 1` runs the single-threaded driver: the same sessions, all on one endpoint.
#[test]
fn group_sessions_on_one_worker() {
    group_sessions(false, "1");
}

/// The member `sip:bob@example.com` is reachable only through the location table. Its
/// REGISTER is steered to one worker; the session INVITE to the other, which routes bob's
/// leg from the binding the first one stored.
#[test]
fn a_register_on_one_worker_routes_a_session_on_the_other() {
    let bob = Sipp::new("uas_answer").timeouts(Duration::from_secs(20), Duration::from_secs(30));
    let bob_addr = bob.local();
    let bob_proc = bob.spawn();
    let groups = group_folder(GROUP, &[ALICE.to_owned(), "sip:bob@example.com".to_owned()]);
    let s = Server::start(&[
        "--groups",
        groups.path().to_str().unwrap(),
        "--workers",
        "2",
    ]);

    let register_id = "register-bob@127.0.0.1";
    let register_shard = steer(register_id.as_bytes(), 2);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let me = sock.local_addr().unwrap();
    let register = format!(
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bKreg1;rport\r\n\
         From: <sip:bob@example.com>;tag=r1\r\n\
         To: <sip:bob@example.com>\r\n\
         Call-ID: {register_id}\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:bob@{bob_addr}>\r\n\
         Expires: 60\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    );
    sock.send_to(register.as_bytes(), s.sip).unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = sock.recv_from(&mut buf).expect("an answer to REGISTER");
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}\n{}", s.log());

    let pattern = call_id_pattern(1, Some(1 - register_shard));
    let run = Sipp::new("invite_pager")
        .to(s.sip)
        .key("target", GROUP)
        .key("from", ALICE)
        .call_ids(&pattern)
        .run();
    assert!(run.success(), "{run:?}\n{}", s.log());
    assert_eq!(
        shards_of_sent_calls(&run.messages),
        BTreeSet::from([1 - register_shard]),
        "the session is held by the other worker"
    );
    let r = bob_proc.wait();
    assert!(r.success(), "bob: {r:?}\n{}", s.log());
    assert_eq!(r.received_invites(), 1, "{r:?}");
}

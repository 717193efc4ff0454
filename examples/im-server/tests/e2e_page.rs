//! End-to-end page mode (RFC 3428 MESSAGE to a group; RFC 5365 MESSAGE URI-list service):
//! the real `im-server` binary, SIPp as the sender and as recipients that answer 200, and
//! plain UDP sockets where a test must show that *nothing* arrives.
//!
//! What `specs/rfc5365_message_exploder.imspec` promises and these tests hold it to:
//! * a recipient list (multipart/mixed with a `recipient-list` part) or a pre-defined group
//!   URI is exploded: the sender gets 202 Accepted, each recipient exactly one MESSAGE with
//!   the payload bytes and From = the originator; the sender and duplicates are dropped;
//! * copyControl (RFC 5364): list recipients see a `recipient-list-history` part with the
//!   to/cc entries, never a bcc one; the original list is never passed on;
//! * limits: more recipients than `--max-recipients` → 403 with a Warning naming the limit;
//! * an unknown group → 404, a non-member → 403, no list to the factory → 403, a list with
//!   no message → 400, `Require: recipient-list-message` without a list → 400;
//! * a retransmitted MESSAGE is answered from its transaction and exploded once.

#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::{Server, Sipp, SippProc, SippRun, group_folder};

const GROUP: &str = "sip:e2e@example.com";
const FACTORY: &str = "sip:conference-factory@example.com";

/// One SIP message out of a SIPp `-trace_msg` log.
#[derive(Clone, Debug)]
struct Logged {
    received: bool,
    text: String,
}

impl Logged {
    fn first_line(&self) -> &str {
        self.text.lines().next().unwrap_or("")
    }

    fn header(&self, name: &str) -> Option<&str> {
        let head = self.text.split("\n\n").next().unwrap_or("");
        head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }

    fn body(&self) -> &str {
        self.text.split_once("\n\n").map_or("", |(_, b)| b)
    }
}

/// Splits a SIPp message log into its messages (separated by a dashed line with a time
/// stamp, then "UDP message sent/received …", a blank line and the message).
fn logged(log: &str) -> Vec<Logged> {
    let log = log.replace("\r\n", "\n");
    log.split("\n-----------------------------------------------")
        .filter_map(|chunk| {
            let mut lines = chunk.lines();
            lines.next()?; // the time stamp
            let what = lines.next()?;
            let received = what.contains("message received");
            if !received && !what.contains("message sent") {
                return None;
            }
            let text: String = lines
                .skip_while(|l| l.trim().is_empty())
                .collect::<Vec<_>>()
                .join("\n");
            Some(Logged {
                received,
                text: text.trim_end().to_owned(),
            })
        })
        .collect()
}

/// The MESSAGE requests a recipient received, one per Call-ID (UDP retransmissions of one
/// request are one delivery; two Call-IDs are two deliveries).
fn messages_received(run: &SippRun) -> Vec<Logged> {
    messages_in(&run.messages)
}

fn messages_in(log: &str) -> Vec<Logged> {
    let mut by_call: BTreeMap<String, Logged> = BTreeMap::new();
    for m in logged(log) {
        if m.received && m.first_line().starts_with("MESSAGE ") {
            let id = m.header("Call-ID").unwrap_or("").to_owned();
            by_call.entry(id).or_insert(m);
        }
    }
    by_call.into_values().collect()
}

/// The final response the sender got.
fn final_response(run: &SippRun) -> Logged {
    logged(&run.messages)
        .into_iter()
        .rfind(|m| {
            m.received
                && m.first_line()
                    .split(' ')
                    .nth(1)
                    .is_some_and(|c| c.as_bytes().first().is_some_and(|d| *d >= b'2'))
        })
        .unwrap_or_else(|| panic!("no final response:\n{run:?}"))
}

fn status_of(m: &Logged) -> u16 {
    m.first_line()
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A UDP socket standing for a user who must receive nothing (the sender, or members of a
/// group whose MESSAGE is refused).
struct Inbox {
    sock: UdpSocket,
}

impl Inbox {
    fn new() -> Inbox {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Inbox { sock }
    }

    fn uri(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.sock.local_addr().unwrap())
    }

    /// Everything that arrives within `wait`.
    fn drain(&self, wait: Duration) -> Vec<String> {
        let end = Instant::now() + wait;
        let mut got = Vec::new();
        let mut buf = [0u8; 65_535];
        while Instant::now() < end {
            if let Ok((n, _)) = self.sock.recv_from(&mut buf) {
                got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        got
    }
}

/// Recipient UASes (`uas_message`) on free ports; returns them with their URIs.
fn recipients(n: usize) -> (Vec<SippProc>, Vec<String>) {
    let names = ["bob", "carol", "dave"];
    let mut procs = Vec::new();
    let mut uris = Vec::new();
    for i in 0..n {
        let sipp =
            Sipp::new("uas_message").timeouts(Duration::from_secs(10), Duration::from_secs(15));
        uris.push(format!("sip:{}@{}", names[i % names.len()], sipp.local()));
        procs.push(sipp.spawn());
    }
    // Give the UASes a moment to bind before anyone sends to them.
    std::thread::sleep(Duration::from_millis(300));
    (procs, uris)
}

fn sender(scenario: &str, server: &Server, target: &str, from: &str) -> Sipp {
    Sipp::new(scenario)
        .to(server.sip)
        .key("target", target)
        .key("from", from)
}

/// The part of a multipart body whose headers contain `marker` (its headers and content).
fn part_with<'a>(body: &'a str, marker: &str) -> Option<&'a str> {
    body.split("\n--").find(|p| p.contains(marker))
}

// covers: 7.2/explode_list
#[test]
fn list_message_reaches_each_recipient_once_with_to_cc_history() {
    let (uas, uris) = recipients(3);
    let alice = Inbox::new();
    let from = alice.uri("alice");
    // Three distinct recipients after the duplicate and the sender are dropped: exactly at
    // the limit, so the limit counts the cleaned list, not the entries as written.
    let s = Server::start(&["--max-recipients", "3"]);
    let run = sender("message_list", &s, FACTORY, &from)
        .key("invitee1", &uris[0])
        .key("invitee2", &uris[1])
        .key("invitee3", &uris[2])
        .run();
    assert!(run.success(), "{run:?}\n{}", s.log());
    let answer = final_response(&run);
    assert_eq!(status_of(&answer), 202, "{answer:?}");

    for (i, p) in uas.into_iter().enumerate() {
        let r = p.wait();
        assert!(r.success(), "recipient {i}: {r:?}\n{}", s.log());
        let got = messages_received(&r);
        assert_eq!(got.len(), 1, "exactly one MESSAGE for {}: {r:?}", uris[i]);
        let m = &got[0];
        assert_eq!(m.first_line(), format!("MESSAGE {} SIP/2.0", uris[i]));
        assert!(m.header("From").unwrap_or("").contains(&from), "{m:?}");
        assert!(
            m.header("Content-Type")
                .unwrap_or("")
                .starts_with("multipart/mixed"),
            "{m:?}"
        );
        // The RFC 5365 option tag is for the exploder, not for the recipients.
        assert!(m.header("Require").is_none(), "{m:?}");
        let body = m.body();
        let payload = part_with(body, "text/plain").unwrap_or_else(|| panic!("{m:?}"));
        assert!(
            payload.contains("imspec page mode to a list, call 1"),
            "{m:?}"
        );
        let history = part_with(body, "recipient-list-history").unwrap_or_else(|| panic!("{m:?}"));
        assert!(
            history.contains(&format!("uri=\"{}\" cp:copyControl=\"to\"", uris[0])),
            "{history}"
        );
        assert!(
            history.contains(&format!("uri=\"{}\" cp:copyControl=\"cc\"", uris[1])),
            "{history}"
        );
        // The bcc recipient is in nobody's copy, not even its own; neither is the sender,
        // and the original list (with its bcc entry) is not passed on.
        assert!(!body.contains(&uris[2]), "bcc leaked: {m:?}");
        // The list's bcc entry, not the bare word: the body's boundary is random hex.
        assert!(!body.contains("copyControl=\"bcc\""), "bcc leaked: {m:?}");
        assert!(!body.contains(&from), "{m:?}");
        assert!(
            !body.contains("Content-Disposition: recipient-list\n"),
            "{m:?}"
        );
        assert_eq!(history.matches("<entry").count(), 2, "{history}");
    }
    assert_eq!(
        alice.drain(Duration::from_millis(300)),
        Vec::<String>::new(),
        "the sender must not get its own message"
    );
}

// covers: 7.2/explode_list
#[test]
fn cpim_list_without_require_is_accepted_and_forwarded_as_cpim() {
    let (uas, uris) = recipients(2);
    let s = Server::start(&[]);
    let run = sender("message_list_cpim", &s, FACTORY, "sip:alice@example.com")
        .key("invitee1", &uris[0])
        .key("invitee2", &uris[1])
        .run();
    assert!(run.success(), "{run:?}\n{}", s.log());
    for (i, p) in uas.into_iter().enumerate() {
        let r = p.wait();
        assert!(r.success(), "recipient {i}: {r:?}\n{}", s.log());
        let got = messages_received(&r);
        assert_eq!(got.len(), 1, "{r:?}");
        let m = &got[0];
        assert!(
            m.header("From")
                .unwrap_or("")
                .contains("sip:alice@example.com"),
            "{m:?}"
        );
        let cpim = part_with(m.body(), "Content-Type: message/cpim")
            .unwrap_or_else(|| panic!("no message/cpim part: {m:?}"));
        // The CPIM headers and the inner message arrive unchanged.
        assert!(cpim.contains("DateTime: 2024-05-01T10:00:00Z"), "{cpim}");
        assert!(cpim.contains("imspec page mode in CPIM, call 1"), "{cpim}");
        assert!(m.body().contains("recipient-list-history"), "{m:?}");
    }
}

// covers: 7.1/list_too_long
#[test]
fn list_over_max_recipients_gets_403_naming_the_limit() {
    let inboxes: Vec<Inbox> = (0..3).map(|_| Inbox::new()).collect();
    let s = Server::start(&["--max-recipients", "2"]);
    let run = sender("message_list", &s, FACTORY, "sip:alice@example.com")
        .key("invitee1", &inboxes[0].uri("bob"))
        .key("invitee2", &inboxes[1].uri("carol"))
        .key("invitee3", &inboxes[2].uri("dave"))
        .run();
    assert!(run.success(), "{run:?}\n{}", s.log());
    let answer = final_response(&run);
    assert_eq!(status_of(&answer), 403, "{answer:?}");
    let warning = answer.header("Warning").unwrap_or("");
    assert!(warning.contains("at most 2"), "{answer:?}");
    for inbox in &inboxes {
        assert_eq!(
            inbox.drain(Duration::from_millis(200)),
            Vec::<String>::new()
        );
    }
}

// covers: 7.2/explode_group
#[test]
fn group_message_reaches_each_member_once_as_sent() {
    let (uas, uris) = recipients(2);
    let alice = Inbox::new();
    let from = alice.uri("alice");
    // A member listed twice still gets one copy; the sender, a member, gets none.
    let members = vec![
        uris[0].clone(),
        uris[1].clone(),
        uris[0].clone(),
        from.clone(),
    ];
    let groups = group_folder(GROUP, &members);
    let s = Server::start(&["--groups", groups.path().to_str().unwrap()]);
    let run = sender("message_text", &s, GROUP, &from).run();
    assert!(run.success(), "{run:?}\n{}", s.log());
    let answer = final_response(&run);
    assert_eq!(status_of(&answer), 202, "{answer:?}\n{}", s.log());
    for (i, p) in uas.into_iter().enumerate() {
        let r = p.wait();
        assert!(r.success(), "member {i}: {r:?}\n{}", s.log());
        let got = messages_received(&r);
        assert_eq!(got.len(), 1, "exactly one MESSAGE: {r:?}");
        let m = &got[0];
        assert_eq!(m.first_line(), format!("MESSAGE {} SIP/2.0", uris[i]));
        assert!(m.header("From").unwrap_or("").contains(&from), "{m:?}");
        // Not a list: the body goes on as it came, type and bytes.
        assert_eq!(
            m.header("Content-Type"),
            Some("text/plain;charset=UTF-8"),
            "{m:?}"
        );
        assert_eq!(m.body().trim_end(), "imspec page mode to a group, call 1");
        // The sender's hop budget (70) less the exploder's hop: a group that reached the
        // exploder again through a proxy would run out of hops instead of looping.
        assert_eq!(m.header("Max-Forwards"), Some("69"), "{m:?}");
    }
    assert_eq!(
        alice.drain(Duration::from_millis(300)),
        Vec::<String>::new(),
        "the sender must not get its own message"
    );
}

/// A page-mode MESSAGE to `target` from Alice, text/plain, as sent from `via`.
fn raw_message(target: &str, via: SocketAddr, extra: &str, call: &str) -> String {
    let body = "imspec page mode, raw";
    format!(
        "MESSAGE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bK-{call}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag={call}\r\nTo: <{target}>\r\n\
         Call-ID: {call}@e2e-page\r\nCSeq: 1 MESSAGE\r\n{extra}\
         Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The same MESSAGE twice, 300 ms apart (a UDP retransmission, RFC 3261 §17.2.2): both
/// copies are answered by one transaction (two 202s with the same To-tag) and the group is
/// exploded once. Sent from a plain socket: SIPp takes a repeated identical response for a
/// retransmission and cannot await it.
#[test]
fn retransmitted_message_is_answered_twice_and_exploded_once() {
    let (uas, uris) = recipients(2);
    let members = vec![
        uris[0].clone(),
        uris[1].clone(),
        "sip:alice@example.com".to_owned(),
    ];
    let groups = group_folder(GROUP, &members);
    let s = Server::start(&["--groups", groups.path().to_str().unwrap()]);
    let me = Inbox::new();
    let req = raw_message(GROUP, me.sock.local_addr().unwrap(), "", "rtx");
    me.sock.send_to(req.as_bytes(), s.sip).unwrap();
    let mut got = me.drain(Duration::from_millis(300));
    me.sock.send_to(req.as_bytes(), s.sip).unwrap();
    got.extend(me.drain(Duration::from_millis(500)));
    let answers: Vec<&String> = got.iter().filter(|m| m.starts_with("SIP/2.0 2")).collect();
    assert_eq!(answers.len(), 2, "{got:?}\n{}", s.log());
    for a in &answers {
        assert!(a.starts_with("SIP/2.0 202 "), "{a}");
    }
    let to = |m: &str| m.lines().find(|l| l.starts_with("To:")).map(str::to_owned);
    assert_eq!(
        to(answers[0]),
        to(answers[1]),
        "one transaction, one To-tag"
    );
    for (i, p) in uas.into_iter().enumerate() {
        let r = p.wait();
        assert!(r.success(), "member {i}: {r:?}\n{}", s.log());
        assert_eq!(messages_received(&r).len(), 1, "one copy: {r:?}");
    }
}

// covers: 7/list_without_payload
#[test]
fn list_without_message_gets_400_and_nobody_a_copy() {
    let bob = Inbox::new();
    let s = Server::start(&[]);
    // The scenario requires the 400 and its Warning.
    let run = sender("message_list_only", &s, FACTORY, "sip:alice@example.com")
        .key("invitee1", &bob.uri("bob"))
        .run();
    assert!(run.success(), "{run:?}\n{}", s.log());
    assert_eq!(bob.drain(Duration::from_millis(300)), Vec::<String>::new());
}

// covers: 5/require_without_list
#[test]
fn require_without_list_to_a_group_gets_400() {
    // The spec's rule require_without_list: the option tag claims a list the body lacks.
    let inbox = Inbox::new();
    let members = [inbox.uri("bob"), "sip:alice@example.com".to_owned()];
    let groups = group_folder(GROUP, &members);
    let s = Server::start(&["--groups", groups.path().to_str().unwrap()]);
    let me = Inbox::new();
    let req = raw_message(
        GROUP,
        me.sock.local_addr().unwrap(),
        "Require: recipient-list-message\r\n",
        "reqonly",
    );
    me.sock.send_to(req.as_bytes(), s.sip).unwrap();
    let got = me.drain(Duration::from_secs(1));
    let answer = got
        .iter()
        .find(|m| m.starts_with("SIP/2.0 4"))
        .unwrap_or_else(|| panic!("no answer: {got:?}\n{}", s.log()));
    assert!(answer.starts_with("SIP/2.0 400 "), "{answer}");
    assert!(
        answer.contains("without a recipient-list body part"),
        "{answer}"
    );
    assert_eq!(
        inbox.drain(Duration::from_millis(200)),
        Vec::<String>::new()
    );
}

/// Runs `message_text` to `target` from `from` against a server with `members` in GROUP
/// (all of them plain sockets) and `flags`; returns the final answer and what the members
/// received.
fn refused(target: &str, from: &str, flags: &[&str]) -> (Logged, Vec<String>, String) {
    let inboxes: Vec<Inbox> = (0..2).map(|_| Inbox::new()).collect();
    let members = vec![
        inboxes[0].uri("bob"),
        inboxes[1].uri("carol"),
        "sip:alice@example.com".to_owned(),
    ];
    let groups = group_folder(GROUP, &members);
    let mut args = vec!["--groups", groups.path().to_str().unwrap()];
    args.extend_from_slice(flags);
    let s = Server::start(&args);
    let run = sender("message_text", &s, target, from).run();
    assert!(run.success(), "{run:?}\n{}", s.log());
    let answer = final_response(&run);
    let got = inboxes
        .iter()
        .flat_map(|i| i.drain(Duration::from_millis(200)))
        .collect();
    (answer, got, s.log())
}

// covers: 7.1/not_a_group
#[test]
fn message_to_unknown_group_gets_404() {
    let (answer, got, log) = refused(
        "sip:no-such-group@example.com",
        "sip:alice@example.com",
        &[],
    );
    assert_eq!(status_of(&answer), 404, "{answer:?}\n{log}");
    assert!(got.is_empty(), "{got:?}");
}

// covers: 7.1/not_a_member
#[test]
fn message_from_non_member_gets_403() {
    let (answer, got, log) = refused(GROUP, "sip:mallory@example.com", &[]);
    assert_eq!(status_of(&answer), 403, "{answer:?}\n{log}");
    assert!(
        answer
            .header("Warning")
            .unwrap_or("")
            .contains("not a member"),
        "{answer:?}"
    );
    assert!(got.is_empty(), "{got:?}");
}

// covers: 7.1/over_server_limit
#[test]
fn group_over_max_recipients_gets_403_naming_the_limit() {
    let (answer, got, log) = refused(GROUP, "sip:alice@example.com", &["--max-recipients", "1"]);
    assert_eq!(status_of(&answer), 403, "{answer:?}\n{log}");
    assert!(
        answer.header("Warning").unwrap_or("").contains("at most 1"),
        "{answer:?}"
    );
    assert!(got.is_empty(), "{got:?}");
}

// covers: 7/factory_without_list
#[test]
fn message_to_factory_without_list_gets_403() {
    let (answer, got, log) = refused(FACTORY, "sip:alice@example.com", &[]);
    assert_eq!(status_of(&answer), 403, "{answer:?}\n{log}");
    assert!(
        answer
            .header("Warning")
            .unwrap_or("")
            .contains("recipient-list body part is required"),
        "{answer:?}"
    );
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn log_parser_reads_sipp_message_logs() {
    let log = "----------------------------------------------- 2026-01-01 10:00:00.1\n\
               UDP message sent (10 bytes):\n\nMESSAGE sip:a@b SIP/2.0\nCall-ID: x\n\nhi\n\n\
               ----------------------------------------------- 2026-01-01 10:00:00.2\n\
               UDP message received [10] bytes :\n\nSIP/2.0 202 Accepted\nCall-ID: x\n\
               Warning: 399 h \"w\"\n\n";
    let m = logged(log);
    assert_eq!(m.len(), 2);
    assert!(!m[0].received && m[1].received);
    assert_eq!(m[0].body(), "hi");
    assert_eq!(status_of(&m[1]), 202);
    assert_eq!(m[1].header("warning"), Some("399 h \"w\""));
    // A sent MESSAGE is not a received one; two received Call-IDs are two deliveries, a
    // retransmission (same Call-ID) is one.
    assert!(messages_in(log).is_empty());
    let rx = |id: &str| {
        format!(
            "----------------------------------------------- t\nUDP message received [1] bytes :\n\n\
             MESSAGE sip:a@b SIP/2.0\nCall-ID: {id}\n\nhi\n\n"
        )
    };
    let two = format!("{}{}{}", rx("one"), rx("one"), rx("two"));
    assert_eq!(messages_in(&two).len(), 2);
}

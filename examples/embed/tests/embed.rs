//! The example's spec, two ways: the generated machine driven directly (a parsed request's
//! facts in, actions out, no sockets), and the binary answering real UDP requests.

// Real sockets and a real process: these tests read the wall clock on purpose.
#![allow(clippy::disallowed_methods)]

use im_runtime::endpoint::facts::{self, BodyLimits};
use im_runtime::machine::{
    Action, ActionKind, Config, Env, Event, GroupDirectory, Method, Recipients,
};
use im_runtime::proto::sip::Message;
use imspec_embed_example::{BotApp, Groups, IpRouter, bot, parse_uri};
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TEAM: &str = "sip:team@example.com";
const ALICE: &str = "sip:alice@example.com";
const BOB: &str = "sip:bob@192.0.2.7:5062";

/// A request of `method` to `to` from `from` with a text/plain body, as sent from `via`.
fn request(method: &str, to: &str, from: &str, via: &str, call: &str) -> String {
    let body = "hello from the embedding test";
    format!(
        "{method} {to} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {via};branch=z9hG4bK-embed-{call}\r\n\
         Max-Forwards: 70\r\n\
         From: <{from}>;tag=t{call}\r\n\
         To: <{to}>\r\n\
         Call-ID: {call}@embed.test\r\n\
         CSeq: 1 {method}\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn groups() -> Groups {
    let mut g = Groups::default();
    g.add_spec(&format!("{TEAM}={ALICE},{BOB}")).unwrap();
    g
}

/// Runs a fresh machine for `method` on the request, as the endpoint does for an initial
/// request: facts built from the parsed message, the app's directory and router in `Env`.
fn drive(method: Method, to: &str, from: &str) -> Vec<Action> {
    let text = request(method.as_str(), to, from, "192.0.2.1:5060", "direct");
    let msg = Message::parse(text.into_bytes().into()).expect("a valid request");
    let facts = facts::build(
        &msg,
        "192.0.2.1".parse().unwrap(),
        &[],
        &BodyLimits::default(),
    );
    let cfg = Config::default();
    let dir = groups();
    let env = Env {
        config: &cfg,
        directory: &dir,
        router: &IpRouter,
    };
    let mut m = bot::initial(&method).expect("the spec handles this method");
    m.handle(Instant::now(), &Event::InitialRequest(method), &facts, &env)
}

/// (status, reason, warning) of the single Respond action.
fn reply(actions: &[Action]) -> (u16, String, Option<String>) {
    let r: Vec<_> = actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::Respond(r) => Some((
                r.status,
                r.reason.to_string(),
                r.warning.as_ref().map(|w| w.to_string()),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(r.len(), 1, "one answer: {actions:?}");
    r[0].clone()
}

fn forwards(actions: &[Action]) -> Vec<Recipients> {
    actions
        .iter()
        .filter_map(|a| match a.kind {
            ActionKind::ForwardEach(r, ..) => Some(r),
            _ => None,
        })
        .collect()
}

#[test]
fn machine_answers_the_bot_with_200() {
    let a = drive(Method::Message, "sip:bot@example.com", ALICE);
    assert_eq!(reply(&a).0, 200);
    assert!(forwards(&a).is_empty());
    // The clause and rule travel with the action, for the logs and the metrics.
    assert!(
        a.iter()
            .any(|x| x.origin.rule == "bot_reads" && x.origin.clause == "1"),
        "{a:?}"
    );
}

#[test]
fn machine_answers_anything_else_with_404() {
    let a = drive(Method::Message, "sip:carol@example.com", ALICE);
    assert_eq!(reply(&a), (404, "Not Found".into(), None));
    assert!(forwards(&a).is_empty());
}

#[test]
fn machine_uses_the_apps_own_directory() {
    let a = drive(Method::Message, TEAM, ALICE);
    assert_eq!(reply(&a).0, 202);
    assert_eq!(forwards(&a), vec![Recipients::GroupMembers]);

    let a = drive(Method::Message, TEAM, "sip:mallory@example.com");
    let (status, _, warning) = reply(&a);
    assert_eq!(status, 403);
    assert_eq!(
        warning.as_deref(),
        Some("only members may write to this group")
    );
    assert!(forwards(&a).is_empty());
}

#[test]
fn spec_handles_message_only() {
    assert_eq!(bot::methods(), vec![Method::Message]);
    assert!(bot::initial(&Method::Invite).is_none());
    let app = BotApp {
        groups: groups(),
        router: IpRouter,
    };
    assert!(app.groups.owns(&parse_uri(TEAM).unwrap()));
    assert!(!app.groups.owns(&parse_uri("sip:team@example.net").unwrap()));
}

#[test]
fn group_flag_errors_are_reported() {
    let mut g = Groups::default();
    assert!(g.add_spec("no-equals-sign").is_err());
    assert!(g.add_spec("not a uri=sip:a@example.com").is_err());
    assert!(
        g.add_spec(&format!("{TEAM}=sip:ok@example.com,::bad::"))
            .is_err()
    );
    assert!(g.add_spec(&format!("{TEAM}=")).is_ok());
}

// ---- the binary over real UDP ------------------------------------------------------------

/// The running binary; killed on drop.
struct Bin {
    child: Child,
    sip: SocketAddr,
}

impl Bin {
    fn start(args: &[&str]) -> Bin {
        let mut child = Command::new(env!("CARGO_BIN_EXE_imspec-embed-example"))
            .args(["--sip", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the example");
        let out = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).expect("read");
        let sip = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Bin { child, sip }
    }
}

impl Drop for Bin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s
}

/// Sends `req` (retransmitting every 500 ms, as a UAC over UDP does) until a final response
/// arrives; returns it.
fn ask(sock: &UdpSocket, to: SocketAddr, req: &str) -> String {
    let end = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 65_535];
    let mut next_send = Instant::now();
    while Instant::now() < end {
        if Instant::now() >= next_send {
            sock.send_to(req.as_bytes(), to).unwrap();
            next_send = Instant::now() + Duration::from_millis(500);
        }
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let code = text.split(' ').nth(1).unwrap_or("");
            if text.starts_with("SIP/2.0 ") && !code.starts_with('1') {
                return text;
            }
        }
    }
    panic!("no final response to:\n{req}");
}

fn status_line(resp: &str) -> &str {
    resp.lines().next().unwrap_or("")
}

#[test]
fn binary_answers_udp_requests_as_the_spec_says() {
    // Bob is a plain socket: the group's `forward each` must reach it.
    let bob = socket();
    let bob_uri = format!("sip:bob@{}", bob.local_addr().unwrap());
    let group = format!("{TEAM}={ALICE},{bob_uri}");
    let bin = Bin::start(&["--group", &group]);
    let me = socket();
    let via = me.local_addr().unwrap().to_string();

    let r = ask(
        &me,
        bin.sip,
        &request("MESSAGE", "sip:bot@example.com", ALICE, &via, "bot"),
    );
    // The 200 is `bot_reads`' (the runtime answers no MESSAGE 200 of its own; the sans-IO
    // test above checks the rule that travels with the action).
    assert_eq!(status_line(&r), "SIP/2.0 200 OK", "{r}");

    let r = ask(
        &me,
        bin.sip,
        &request("MESSAGE", "sip:carol@example.com", ALICE, &via, "nobody"),
    );
    assert_eq!(status_line(&r), "SIP/2.0 404 Not Found", "{r}");

    let r = ask(
        &me,
        bin.sip,
        &request("MESSAGE", TEAM, "sip:mallory@example.com", &via, "stranger"),
    );
    assert_eq!(status_line(&r), "SIP/2.0 403 Forbidden", "{r}");
    assert!(r.contains("only members may write to this group"), "{r}");

    let r = ask(
        &me,
        bin.sip,
        &request("MESSAGE", TEAM, ALICE, &via, "member"),
    );
    assert_eq!(status_line(&r), "SIP/2.0 202 Accepted", "{r}");
    // Bob gets the copy, from Alice, with the body as sent.
    let mut buf = [0u8; 65_535];
    let end = Instant::now() + Duration::from_secs(3);
    let copy = loop {
        assert!(Instant::now() < end, "bob got nothing");
        if let Ok((n, _)) = bob.recv_from(&mut buf) {
            break String::from_utf8_lossy(&buf[..n]).into_owned();
        }
    };
    assert!(
        copy.starts_with(&format!("MESSAGE {bob_uri} SIP/2.0")),
        "{copy}"
    );
    assert!(copy.contains(&format!("From: <{ALICE}>")), "{copy}");
    assert!(copy.ends_with("hello from the embedding test"), "{copy}");

    // A method the spec does not handle: the endpoint's 405 with Allow, not the spec's.
    let r = ask(
        &me,
        bin.sip,
        &request("SUBSCRIBE", "sip:bot@example.com", ALICE, &via, "sub"),
    );
    assert!(status_line(&r).starts_with("SIP/2.0 405"), "{r}");
    assert!(r.contains("MESSAGE"), "Allow lists the spec's method: {r}");
}

#[test]
fn binary_rejects_bad_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_imspec-embed-example"))
        .args(["--group", "nonsense"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("GROUP=MEMBER"));
}

//! End-to-end authentication and registrar tests against the real binary, with
//! authentication ON (issue 14 item 1; RFC 3261 §22, §10.3; RFC 7616; RFC 8760):
//! - SIPp (MD5, the only algorithm SIPp 3.6 has) with the right and a wrong password, for
//!   REGISTER and for a recipient-list MESSAGE;
//! - a small Rust UDP client that answers challenges with the runtime's digest module
//!   (SHA-256 and MD5), for what SIPp cannot show: the two challenges and their order, the
//!   replay of an `nc`, a stale nonce, a user who speaks for someone else, and the
//!   registrar's answers (`Contact: *`, 423, 503, the 200's bindings).
#![allow(clippy::disallowed_methods)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::{Server, Sipp, group_folder};
use im_runtime::proto::digest::{Algorithm, ha1, response};

const FACTORY: &str = "sip:conference-factory@example.com";

/// A UDP SIP client that sends one request at a time and reads the answer.
struct Client {
    sock: UdpSocket,
    server: SocketAddr,
    cseq: u32,
    call_id: String,
}

/// One response: its status and header lines.
struct Answer {
    text: String,
}

impl Answer {
    fn status(&self) -> u16 {
        self.text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
    fn headers(&self, name: &str) -> Vec<String> {
        self.text
            .split("\r\n\r\n")
            .next()
            .unwrap_or("")
            .lines()
            .filter_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
            .collect()
    }
    /// A parameter of a challenge (`nonce`, `realm` …), unquoted.
    fn param(challenge: &str, name: &str) -> Option<String> {
        let at = challenge.find(&format!("{name}="))? + name.len() + 1;
        let rest = &challenge[at..];
        Some(if let Some(q) = rest.strip_prefix('"') {
            q[..q.find('"')?].to_owned()
        } else {
            rest.split([',', ' ']).next()?.to_owned()
        })
    }
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Client {
    fn new(server: SocketAddr, call_id: &str) -> Client {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Client {
            sock,
            server,
            cseq: 0,
            call_id: call_id.to_owned(),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    /// Sends `req` (a whole request) and returns its final answer with the requests the
    /// server sent meanwhile and right after (up to `then` of them), each answered 200.
    fn exchange(&mut self, req: &str, then: usize) -> (Answer, Vec<String>) {
        self.sock.send_to(req.as_bytes(), self.server).unwrap();
        let mut buf = vec![0u8; 65_536];
        let mut requests = Vec::new();
        let mut answer = None;
        while answer.is_none() || requests.len() < then {
            let Ok((n, _)) = self.sock.recv_from(&mut buf) else {
                break;
            };
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if !text.starts_with("SIP/2.0 ") {
                let ok = ok_for(&text);
                self.sock.send_to(ok.as_bytes(), self.server).unwrap();
                requests.push(text);
                continue;
            }
            let a = Answer { text };
            if a.status() >= 200 {
                answer = Some(a);
            }
        }
        (answer.expect("an answer"), requests)
    }

    /// Sends `method` to `ruri` with the given extra header lines and body; returns the
    /// final answer (provisional ones skipped). An INVITE's non-2xx is ACKed.
    fn send(
        &mut self,
        method: &str,
        ruri: &str,
        from: &str,
        to: &str,
        extra: &[String],
        body: (&str, &str),
    ) -> Answer {
        self.cseq += 1;
        let me = self.addr();
        let branch = format!("z9hG4bK{}x{}", self.call_id.len(), self.cseq);
        let mut req = format!(
            "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={branch};rport\r\n\
             From: <{from}>;tag=f{cseq}\r\nTo: <{to}>\r\nCall-ID: {cid}\r\n\
             CSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n",
            cseq = self.cseq,
            cid = self.call_id
        );
        for h in extra {
            req.push_str(h);
            req.push_str("\r\n");
        }
        if !body.1.is_empty() {
            req.push_str(&format!("Content-Type: {}\r\n", body.0));
        }
        req.push_str(&format!(
            "Content-Length: {}\r\n\r\n{}",
            body.1.len(),
            body.1
        ));
        self.sock.send_to(req.as_bytes(), self.server).unwrap();
        let mut buf = vec![0u8; 65_536];
        loop {
            let (n, _) = self.sock.recv_from(&mut buf).expect("an answer");
            let a = Answer {
                text: String::from_utf8_lossy(&buf[..n]).into_owned(),
            };
            if a.status() < 200 {
                continue;
            }
            if method == "INVITE" && a.status() >= 300 {
                let to_line = a
                    .text
                    .lines()
                    .find(|l| l.starts_with("To:"))
                    .unwrap_or("")
                    .to_owned();
                let ack = format!(
                    "ACK {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch={branch};rport\r\n\
                     From: <{from}>;tag=f{cseq}\r\n{to_line}\r\nCall-ID: {cid}\r\n\
                     CSeq: {cseq} ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                    cseq = self.cseq,
                    cid = self.call_id
                );
                self.sock.send_to(ack.as_bytes(), self.server).unwrap();
            }
            return a;
        }
    }
}

/// The Authorization value answering `challenge` for `method`/`uri`.
fn authorization(
    challenge: &str,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    nc: u32,
) -> String {
    let realm = Answer::param(challenge, "realm").unwrap();
    let nonce = Answer::param(challenge, "nonce").unwrap();
    let alg = Algorithm::from_token(&Answer::param(challenge, "algorithm").unwrap()).unwrap();
    let nc = format!("{nc:08x}");
    let h = ha1(alg, user, &realm, password);
    let r = response(alg, &h, &nonce, &nc, "c0ffee", "auth", method, uri);
    format!(
        "Authorization: Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", \
         uri=\"{uri}\", response=\"{r}\", algorithm={}, cnonce=\"c0ffee\", qop=auth, nc={nc}",
        alg.as_str()
    )
}

fn register(c: &mut Client, user: &str, extra: &[String]) -> Answer {
    let aor = format!("sip:{user}@example.com");
    c.send("REGISTER", "sip:example.com", &aor, &aor, extra, ("", ""))
}

#[test]
fn register_is_challenged_sha256_first_and_checks_password_replay_and_identity() {
    let s = Server::start_auth(&[]);
    let mut c = Client::new(s.sip, "reg-sha@127.0.0.1");
    let contact = format!("Contact: <sip:alice@{}>", c.addr());
    let first = register(&mut c, "alice", &[contact.clone(), "Expires: 600".into()]);
    assert_eq!(first.status(), 401, "{first:?}");
    let ch = first.headers("WWW-Authenticate");
    assert_eq!(ch.len(), 2, "{first:?}");
    assert!(ch[0].contains("algorithm=SHA-256"), "{first:?}");
    assert!(ch[1].contains("algorithm=MD5"), "{first:?}");
    assert!(ch.iter().all(|c| c.contains("qop=\"auth\"")), "{first:?}");
    assert_eq!(first.text.lines().next(), Some("SIP/2.0 401 Unauthorized"));

    // A wrong password: challenged again.
    let bad = authorization(&ch[0], "alice", "nope", "REGISTER", "sip:example.com", 1);
    let a = register(
        &mut c,
        "alice",
        &[contact.clone(), "Expires: 600".into(), bad],
    );
    assert_eq!(a.status(), 401, "{a:?}");

    // The right one with SHA-256: registered, and the 200 lists the binding.
    let good = authorization(
        &ch[0],
        "alice",
        "alice-demo",
        "REGISTER",
        "sip:example.com",
        1,
    );
    let a = register(
        &mut c,
        "alice",
        &[contact.clone(), "Expires: 600".into(), good.clone()],
    );
    assert_eq!(a.status(), 200, "{a:?}\n{}", s.log());
    assert_eq!(
        a.headers("Contact"),
        vec![format!("<sip:alice@{}>;expires=600", c.addr())]
    );

    // The same credentials again (same nonce, same nc): a replay, challenged.
    let a = register(
        &mut c,
        "alice",
        &[contact.clone(), "Expires: 600".into(), good],
    );
    assert_eq!(a.status(), 401, "{a:?}");
    // The next nc on the same nonce passes, with MD5 this time on its own nonce.
    let md5 = authorization(
        &ch[1],
        "alice",
        "alice-demo",
        "REGISTER",
        "sip:example.com",
        2,
    );
    let a = register(
        &mut c,
        "alice",
        &[contact.clone(), "Expires: 600".into(), md5],
    );
    assert_eq!(a.status(), 200, "{a:?}");

    // Alice's credentials for bob's address-of-record: 403 with a Warning.
    let mut c2 = Client::new(s.sip, "reg-bob@127.0.0.1");
    let first = register(&mut c2, "bob", &["Expires: 600".into()]);
    let ch = first.headers("WWW-Authenticate");
    let as_alice = authorization(
        &ch[0],
        "alice",
        "alice-demo",
        "REGISTER",
        "sip:example.com",
        1,
    );
    let a = register(&mut c2, "bob", &["Expires: 600".into(), as_alice]);
    assert_eq!(a.status(), 403, "{a:?}");
    assert_eq!(a.headers("Warning").len(), 1, "{a:?}");

    // Alice authenticated, but for an address-of-record of another domain: 404 (RFC 3261
    // §10.3 step 3).
    let mut c3 = Client::new(s.sip, "reg-elsewhere@127.0.0.1");
    let elsewhere = "sip:alice@elsewhere.example.org";
    let first = c3.send(
        "REGISTER",
        "sip:example.com",
        elsewhere,
        elsewhere,
        &[],
        ("", ""),
    );
    let ch3 = first.headers("WWW-Authenticate");
    let cred = authorization(
        &ch3[0],
        "alice",
        "alice-demo",
        "REGISTER",
        "sip:example.com",
        1,
    );
    let a = c3.send(
        "REGISTER",
        "sip:example.com",
        elsewhere,
        elsewhere,
        &[cred],
        ("", ""),
    );
    assert_eq!(a.status(), 404, "{a:?}");

    // An unknown user is challenged like a wrong password (no hint that the name exists).
    let unknown = authorization(&ch[0], "mallory", "x", "REGISTER", "sip:example.com", 1);
    let a = register(&mut c2, "mallory", &[unknown]);
    assert_eq!(a.status(), 401, "{a:?}");
}

#[test]
fn an_expired_nonce_with_the_right_password_is_stale() {
    let s = Server::start_auth(&["--config", &nonce_config("1s").to_string_lossy()]);
    let mut c = Client::new(s.sip, "stale@127.0.0.1");
    let first = register(&mut c, "alice", &["Expires: 600".into()]);
    let ch = first.headers("WWW-Authenticate");
    std::thread::sleep(Duration::from_millis(2100));
    let late = authorization(
        &ch[0],
        "alice",
        "alice-demo",
        "REGISTER",
        "sip:example.com",
        1,
    );
    let a = register(&mut c, "alice", &["Expires: 600".into(), late]);
    assert_eq!(a.status(), 401, "{a:?}");
    let again = a.headers("WWW-Authenticate");
    assert!(again.iter().all(|c| c.contains("stale=true")), "{a:?}");
    // The new nonce works at once.
    let fresh = authorization(
        &again[0],
        "alice",
        "alice-demo",
        "REGISTER",
        "sip:example.com",
        1,
    );
    let a = register(&mut c, "alice", &["Expires: 600".into(), fresh]);
    assert_eq!(a.status(), 200, "{a:?}");
}

fn nonce_config(lifetime: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("imspec-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("nonce-{lifetime}.toml"));
    std::fs::write(&p, format!("[auth]\nnonce_lifetime = \"{lifetime}\"\n")).unwrap();
    p
}

#[test]
fn registrar_follows_rfc3261_10_3() {
    // Authentication off here: these are the registrar's own answers.
    let s = Server::start(&["--max-sessions", "1"]);
    let mut c = Client::new(s.sip, "registrar@127.0.0.1");
    let me = c.addr();
    // OPTIONS lists REGISTER in Allow.
    let a = c.send(
        "OPTIONS",
        "sip:example.com",
        "sip:alice@example.com",
        "sip:example.com",
        &[],
        ("", ""),
    );
    assert!(
        a.headers("Allow")
            .iter()
            .any(|v| v.split(',').any(|m| m.trim() == "REGISTER")),
        "{a:?}"
    );
    // Too brief: 423 with Min-Expires.
    let a = register(
        &mut c,
        "alice",
        &[format!("Contact: <sip:alice@{me}>;expires=10")],
    );
    assert_eq!(a.status(), 423, "{a:?}");
    assert_eq!(a.headers("Min-Expires"), vec!["60".to_owned()]);
    // Two bindings; the 200 lists both with their expiry.
    let a = register(
        &mut c,
        "alice",
        &[
            format!("Contact: <sip:alice@{me}>;expires=120"),
            "Contact: <sip:alice@127.0.0.1:5999>".into(),
            "Expires: 300".into(),
        ],
    );
    assert_eq!(a.status(), 200, "{a:?}");
    let mut listed = a.headers("Contact");
    listed.sort();
    let mut expected = vec![
        "<sip:alice@127.0.0.1:5999>;expires=300".to_owned(),
        format!("<sip:alice@{me}>;expires=120"),
    ];
    expected.sort();
    assert_eq!(listed, expected);
    // A query (no Contact) lists them too.
    let a = register(&mut c, "alice", &[]);
    assert_eq!(a.headers("Contact").len(), 2, "{a:?}");
    // `*` with a non-zero Expires, or with another Contact: 400.
    let a = register(
        &mut c,
        "alice",
        &["Contact: *".into(), "Expires: 60".into()],
    );
    assert_eq!(a.status(), 400, "{a:?}");
    let a = register(
        &mut c,
        "alice",
        &[
            "Contact: *".into(),
            format!("Contact: <sip:alice@{me}>"),
            "Expires: 0".into(),
        ],
    );
    assert_eq!(a.status(), 400, "{a:?}");
    // `*` with Expires: 0 removes them all.
    let a = register(&mut c, "alice", &["Contact: *".into(), "Expires: 0".into()]);
    assert_eq!(a.status(), 200, "{a:?}");
    assert!(a.headers("Contact").is_empty(), "{a:?}");
    // A full table (max_sessions 1 → 10 bindings) answers 503, not 200.
    let contacts: Vec<String> = (0..11)
        .map(|i| format!("Contact: <sip:bob@127.0.0.1:{}>", 6000 + i))
        .collect();
    let a = register(&mut c, "bob", &contacts);
    assert_eq!(a.status(), 503, "{a:?}");
    assert_eq!(a.headers("Retry-After").len(), 1, "{a:?}");
    let a = register(&mut c, "bob", &[]);
    assert!(
        a.headers("Contact").is_empty(),
        "none of them was bound: {a:?}"
    );
}

/// The MESSAGE of a recipient list (RFC 5365) naming `recipients`.
fn list_body(text: &str, recipients: &[String]) -> String {
    let entries: String = recipients
        .iter()
        .map(|r| format!("<entry uri=\"{r}\"/>"))
        .collect();
    format!(
        "--b1\r\nContent-Type: text/plain\r\n\r\n{text}\r\n--b1\r\n\
         Content-Type: application/resource-lists+xml\r\nContent-Disposition: recipient-list\r\n\r\n\
         <?xml version=\"1.0\"?><resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\">\
         <list>{entries}</list></resource-lists>\r\n--b1--\r\n"
    )
}

#[test]
fn an_unauthenticated_list_message_or_invite_is_challenged_and_identity_must_match_from() {
    let s = Server::start_auth(&[]);
    let body = list_body("hi", &["sip:bob@example.com".into()]);
    let mut c = Client::new(s.sip, "list-msg@127.0.0.1");
    let a = c.send(
        "MESSAGE",
        FACTORY,
        "sip:alice@example.com",
        FACTORY,
        &["Require: recipient-list-message".into()],
        ("multipart/mixed;boundary=b1", &body),
    );
    assert_eq!(a.status(), 401, "{a:?}");
    let ch = a.headers("WWW-Authenticate");
    // Bob's credentials on a MESSAGE from alice: 403.
    let as_bob = authorization(&ch[0], "bob", "bob-demo", "MESSAGE", FACTORY, 1);
    let a = c.send(
        "MESSAGE",
        FACTORY,
        "sip:alice@example.com",
        FACTORY,
        &["Require: recipient-list-message".into(), as_bob],
        ("multipart/mixed;boundary=b1", &body),
    );
    assert_eq!(a.status(), 403, "{a:?}");

    let mut c = Client::new(s.sip, "list-inv@127.0.0.1");
    let a = c.send(
        "INVITE",
        FACTORY,
        "sip:alice@example.com",
        FACTORY,
        &[],
        ("multipart/mixed;boundary=b1", &body),
    );
    assert_eq!(a.status(), 401, "{a:?}");
    assert_eq!(a.headers("WWW-Authenticate").len(), 2, "{a:?}");
    assert!(
        s.log().contains("challenged"),
        "the challenge is logged: {}",
        s.log()
    );
}

#[test]
fn sipp_registers_with_the_right_password_and_is_refused_with_a_wrong_one() {
    // SIPp 3.6 answers only MD5 and reads the first challenge only.
    let s = Server::start_auth(&["--auth-algorithm", "MD5"]);
    let run = Sipp::new("register_auth")
        .to(s.sip)
        .key("user", "carol")
        .key("expires", "600")
        .auth("carol", "carol-demo")
        .run();
    assert!(run.success(), "{run:?}\n{}", s.log());
    assert!(
        run.logs.contains("registered sip:carol@127.0.0.1:"),
        "{run:?}"
    );
    let run = Sipp::new("register_auth")
        .to(s.sip)
        .key("user", "carol")
        .key("expires", "600")
        .auth("carol", "not-her-password")
        .run();
    assert!(run.success(), "{run:?}\n{}", s.log());
    assert!(run.logs.contains("denied again"), "{run:?}");
    assert!(!run.logs.contains("registered"), "{run:?}");
}

#[test]
fn sipp_list_message_goes_through_only_with_the_right_password() {
    let s = Server::start_auth(&["--auth-algorithm", "MD5", "--allow-external-recipients"]);
    let bob = Sipp::new("uas_message").timeouts(Duration::from_secs(10), Duration::from_secs(15));
    let bob_uri = format!("sip:bob@{}", bob.local());
    let bob_proc = bob.spawn();
    std::thread::sleep(Duration::from_millis(300));
    let wrong = Sipp::new("message_list_auth")
        .to(s.sip)
        .key("target", FACTORY)
        .key("from", "sip:dave@example.com")
        .key("invitee1", &bob_uri)
        .auth("dave", "wrong")
        .run();
    assert!(wrong.success(), "{wrong:?}\n{}", s.log());
    assert!(wrong.logs.contains("denied again"), "{wrong:?}");
    let right = Sipp::new("message_list_auth")
        .to(s.sip)
        .key("target", FACTORY)
        .key("from", "sip:dave@example.com")
        .key("invitee1", &bob_uri)
        .auth("dave", "dave-demo")
        .run();
    assert!(right.success(), "{right:?}\n{}", s.log());
    assert!(right.logs.contains("accepted 202"), "{right:?}");
    let r = bob_proc.wait();
    assert!(r.success(), "bob: {r:?}\n{}", s.log());
    assert!(
        r.messages.contains("authenticated list message"),
        "exactly the authenticated MESSAGE reached bob: {r:?}"
    );
}

// covers: 9/list_names_outsiders
#[test]
fn an_authenticated_list_naming_outsiders_is_refused_unless_configured() {
    // The recipient is a SIPp UAS named by IP address: outside example.com. The server runs
    // without --allow-external-recipients here (the test above runs with it and gets 202).
    let s = Server::start_auth(&["--auth-algorithm", "MD5"]);
    let run = Sipp::new("message_list_auth")
        .to(s.sip)
        .key("target", FACTORY)
        .key("from", "sip:dave@example.com")
        .key("invitee1", "sip:bob@127.0.0.1:5999")
        .auth("dave", "dave-demo")
        .run();
    assert!(run.success(), "{run:?}\n{}", s.log());
    assert!(run.logs.contains("refused 403"), "{run:?}");
    assert!(
        run.messages
            .contains("recipients outside example.com are not allowed"),
        "the Warning names the reason: {run:?}"
    );
    assert!(
        s.log().contains("rule=9/list_names_outsiders"),
        "the log names the rule: {}",
        s.log()
    );
}

// covers: 7.9.1.4/outside_recipients
#[test]
fn an_authenticated_adhoc_invite_is_authorised_by_the_spec() {
    let s = Server::start_auth(&[]);
    let invite = |c: &mut Client, list: &[String], auth: Option<String>| {
        let body = list_body("hi", list);
        let mut extra = Vec::new();
        extra.extend(auth);
        c.send(
            "INVITE",
            FACTORY,
            "sip:erin@example.com",
            FACTORY,
            &extra,
            ("multipart/mixed;boundary=b1", &body),
        )
    };
    let outside = vec![
        "sip:bob@example.com".to_owned(),
        "sip:eve@192.0.2.9".to_owned(),
    ];
    let mut c = Client::new(s.sip, "adhoc-outside@127.0.0.1");
    let a = invite(&mut c, &outside, None);
    assert_eq!(a.status(), 401, "{a:?}");
    let ch = a.headers("WWW-Authenticate");
    let cred = authorization(&ch[0], "erin", "erin-demo", "INVITE", FACTORY, 1);
    let a = invite(&mut c, &outside, Some(cred));
    assert_eq!(a.status(), 403, "{a:?}");
    assert!(
        a.headers("Warning")
            .iter()
            .any(|w| w.contains("recipients outside example.com are not allowed")),
        "{a:?}"
    );
    // A list inside the domain passes authorisation and reaches the offer check (this
    // request has no SDP offer: 488), so the 403 above was the recipients' doing.
    let inside = vec!["sip:bob@example.com".to_owned()];
    let cred = authorization(&ch[0], "erin", "erin-demo", "INVITE", FACTORY, 2);
    let a = invite(&mut c, &inside, Some(cred));
    assert_eq!(a.status(), 488, "{a:?}");
}

/// `im-server user add` stores a user (password from stdin, never on the command line, and
/// never in the store), and a server started on that store authenticates it; the demo users
/// are still there (the store adds to the configuration), and the password is nowhere in
/// the store file.
#[test]
fn user_add_writes_the_store_and_the_server_authenticates_that_user() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("users.redb");
    let mut child = Command::new(env!("CARGO_BIN_EXE_im-server"))
        .args(["user", "add", "sip:zoe@example.com", "--store"])
        .arg(&store)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let bytes = std::fs::read(&store).unwrap();
    assert!(
        !bytes
            .windows(b"correct horse".len())
            .any(|w| w == b"correct horse"),
        "the password is not in the store"
    );

    let s = Server::start_auth(&["--store", store.to_str().unwrap()]);
    let mut c = Client::new(s.sip, "zoe@127.0.0.1");
    let first = register(&mut c, "zoe", &["Expires: 600".into()]);
    let ch = first.headers("WWW-Authenticate");
    let cred = authorization(
        &ch[0],
        "zoe",
        "correct horse battery",
        "REGISTER",
        "sip:example.com",
        1,
    );
    let a = register(&mut c, "zoe", &["Expires: 600".into(), cred]);
    assert_eq!(a.status(), 200, "{a:?}\n{}", s.log());
    // The same nonce, the next nc (nc 1 on it was zoe's).
    let cred = authorization(&ch[1], "bob", "bob-demo", "REGISTER", "sip:example.com", 2);
    let a = register(&mut c, "bob", &["Expires: 600".into(), cred]);
    assert_eq!(a.status(), 200, "{a:?}");
    // Without a store the command says what it needs.
    let out = Command::new(env!("CARGO_BIN_EXE_im-server"))
        .args(["user", "add", "zoe"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// Turning authentication off is explicit and logged.
#[test]
fn no_auth_logs_a_warning() {
    let s = Server::start(&[]);
    assert!(
        s.wait_for_log("authentication is OFF", Duration::from_secs(5)),
        "{}",
        s.log()
    );
}

/// A trusted host (a Kamailio front that authenticated its users) is not challenged: its
/// REGISTER and its list MESSAGE go straight through, and the P-Asserted-Identity it puts
/// in names the originator.
#[test]
fn a_trusted_host_is_not_challenged() {
    let s = Server::start_auth(&["--trusted-host", "127.0.0.1"]);
    let mut c = Client::new(s.sip, "trusted@127.0.0.1");
    let a = register(&mut c, "alice", &["Expires: 600".into()]);
    assert_eq!(a.status(), 200, "{a:?}");
    let body = list_body("hi", &["sip:bob@example.com".into()]);
    let a = c.send(
        "MESSAGE",
        FACTORY,
        "sip:anonymous@anonymous.invalid",
        FACTORY,
        &[
            "Require: recipient-list-message".into(),
            "P-Asserted-Identity: <sip:carol@example.com>".into(),
        ],
        ("multipart/mixed;boundary=b1", &body),
    );
    assert_eq!(a.status(), 202, "{a:?}\n{}", s.log());
    assert!(!s.log().contains("challenged"), "{}", s.log());
}

/// A 200 to request `req` (its Via, From, To, Call-ID and CSeq copied, RFC 3261 §8.2.6.2).
fn ok_for(req: &str) -> String {
    let copied: String = req
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .lines()
        .filter(|l| {
            let n = l
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            matches!(n.as_str(), "via" | "from" | "to" | "call-id" | "cseq")
        })
        .map(|l| format!("{l}\r\n"))
        .collect();
    format!("SIP/2.0 200 OK\r\n{copied}Content-Length: 0\r\n\r\n")
}

// covers: ext-dr.13/unsubscribes
/// With authentication on, a conference-state subscription's refresh and unsubscribe are
/// challenged as its SUBSCRIBE was (RFC 3261 §22), against the real binary: alice, a demo
/// user, opens a session to her group (challenged, then admitted), subscribes (challenged,
/// then granted); a refresh in the subscription's dialog without credentials gets 401, one
/// with bob's valid credentials 403 (and no NOTIFY), one with alice's (the same nonce, the
/// next nc) 200 and a NOTIFY; an unsubscribe without credentials 401, with alice's 200
/// and the last NOTIFY. The Digest responses are computed here with the digest module
/// (`authorization`), as for the other tests of this file.
#[test]
fn a_subscription_refresh_is_challenged_and_must_carry_the_subscribers_credentials() {
    const GROUP: &str = "sip:e2e@example.com";
    let bob_sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let bob = format!("sip:bob@{}", bob_sock.local_addr().unwrap());
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    let alice_addr = probe.local_addr().unwrap();
    drop(probe);
    let alice = format!("sip:alice@{alice_addr}");
    let groups = group_folder(GROUP, &[alice.clone(), bob]);
    let s = Server::start_auth(&["--groups", groups.path().to_str().unwrap()]);
    let sock = UdpSocket::bind(alice_addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut c = Client {
        sock,
        server: s.sip,
        cseq: 0,
        call_id: "resub-inv@127.0.0.1".to_owned(),
    };

    // Alice's pager-mode session (RFC 4975 offer): challenged, then admitted.
    let sdp = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=message 7000 TCP/MSRP *\r\na=accept-types:message/cpim text/plain\r\n\
               a=path:msrp://127.0.0.1:7000/rs1;tcp\r\na=setup:active\r\na=sendonly\r\n";
    let contact = format!("Contact: <{alice}>");
    let a = c.send(
        "INVITE",
        GROUP,
        &alice,
        GROUP,
        std::slice::from_ref(&contact),
        ("application/sdp", sdp),
    );
    assert_eq!(a.status(), 401, "{a:?}");
    let ch = a.headers("WWW-Authenticate");
    let cred = authorization(&ch[0], "alice", "alice-demo", "INVITE", GROUP, 1);
    let ok = c.send(
        "INVITE",
        GROUP,
        &alice,
        GROUP,
        &[contact, cred],
        ("application/sdp", sdp),
    );
    assert_eq!(ok.status(), 200, "{ok:?}\n{}", s.log());
    let focus = ok.headers("Contact")[0]
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_owned();
    let to = ok.headers("To")[0].clone();
    let ack = format!(
        "ACK {focus} SIP/2.0\r\nVia: SIP/2.0/UDP {alice_addr};branch=z9hG4bKrsack;rport\r\n\
         From: <{alice}>;tag=f2\r\nTo: {to}\r\nCall-ID: resub-inv@127.0.0.1\r\n\
         CSeq: 2 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    c.sock.send_to(ack.as_bytes(), s.sip).unwrap();

    // Alice's SUBSCRIBE to the focus: challenged, then granted with her credentials.
    let subscribe = |cseq: u32, to_tag: &str, extra: &str| {
        format!(
            "SUBSCRIBE {focus} SIP/2.0\r\nVia: SIP/2.0/UDP {alice_addr};branch=z9hG4bKrs{cseq};rport\r\n\
             From: <{alice}>;tag=rs\r\nTo: <{focus}>{to_tag}\r\nCall-ID: resub@127.0.0.1\r\n\
             CSeq: {cseq} SUBSCRIBE\r\nContact: <{alice}>\r\nMax-Forwards: 70\r\n\
             Event: conference\r\n{extra}Content-Length: 0\r\n\r\n"
        )
    };
    let (a, _) = c.exchange(&subscribe(1, "", "Expires: 600\r\n"), 0);
    assert_eq!(a.status(), 401, "{a:?}");
    let ch = a.headers("WWW-Authenticate")[0].clone();
    let cred = |user: &str, nc: u32| {
        let password = format!("{user}-demo");
        authorization(&ch, user, &password, "SUBSCRIBE", &focus, nc) + "\r\n"
    };
    let (a, n) = c.exchange(
        &subscribe(2, "", &format!("Expires: 600\r\n{}", cred("alice", 1))),
        1,
    );
    assert_eq!(a.status(), 200, "{a:?}\n{}", s.log());
    assert!(n[0].contains("version=\"1\""), "{n:?}");
    let tag = a.headers("To")[0]
        .split(";tag=")
        .nth(1)
        .expect("our tag")
        .to_owned();
    let in_dialog = format!(";tag={tag}");

    // A refresh without credentials: 401.
    let (a, _) = c.exchange(&subscribe(3, &in_dialog, "Expires: 600\r\n"), 0);
    assert_eq!(a.status(), 401, "{a:?}\n{}", s.log());
    // With bob's valid credentials: 403, the subscription is not bob's.
    let (a, n) = c.exchange(
        &subscribe(
            4,
            &in_dialog,
            &format!("Expires: 600\r\n{}", cred("bob", 2)),
        ),
        0,
    );
    assert_eq!(a.status(), 403, "{a:?}");
    assert!(n.is_empty(), "{n:?}");
    // With alice's, the same nonce and the next nc: renewed, NOTIFY version 2.
    let (a, n) = c.exchange(
        &subscribe(
            5,
            &in_dialog,
            &format!("Expires: 300\r\n{}", cred("alice", 3)),
        ),
        1,
    );
    assert_eq!(a.status(), 200, "{a:?}\n{}", s.log());
    assert_eq!(a.headers("Expires"), ["300"]);
    assert!(n[0].contains("version=\"2\""), "{n:?}");

    // An unsubscribe without credentials: 401; with alice's: 200 and the last NOTIFY.
    let (a, _) = c.exchange(&subscribe(6, &in_dialog, "Expires: 0\r\n"), 0);
    assert_eq!(a.status(), 401, "{a:?}");
    let (a, n) = c.exchange(
        &subscribe(
            7,
            &in_dialog,
            &format!("Expires: 0\r\n{}", cred("alice", 4)),
        ),
        1,
    );
    assert_eq!(a.status(), 200, "{a:?}");
    assert!(
        n[0].contains("Subscription-State: terminated;reason=timeout"),
        "{n:?}"
    );
}

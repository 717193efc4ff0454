//! Conference-state subscriptions driven in process, through `Core` only, against the real
//! server application (the machines generated from `specs/`, a group store on disk): the
//! protocol edges an end-to-end run cannot time or provoke cheaply. A SUBSCRIBE with an
//! `Accept` that excludes the document gets 406; a refresh in the dialog 200 and a NOTIFY
//! with the next version; a SUBSCRIBE in an unknown dialog 481; a subscription whose
//! time is up a last NOTIFY `terminated;reason=timeout`; one whose NOTIFY is refused (481)
//! is gone and hears nothing more; the per-user limit gives 403; the state follows the
//! invitee (pending → disconnected, busy, with its SIP reason).

// The clock is the test's own Instant, moved by hand.
#![allow(clippy::disallowed_methods)]

mod common;
// The sans-IO endpoint loop of im-runtime's tests, here over the server's application.
#[path = "../../../im-runtime/tests/common/group.rs"]
mod group;

use group::{Run, Sent, addr};
use im_runtime::endpoint::EndpointConfig;
use im_runtime::proto::digest::{Algorithm, StoredHa1, Verifier, ha1, response};
use im_runtime::proto::sip::Message;
use im_server::app::ServerApp;
use im_server::groups::{GroupStore, SharedGroups};
use im_server::metrics::Metrics;
use im_server::router::{LocationTable, Router};
use im_server::users::{SharedUsers, UserEntry, Users};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const SERVER: &str = "127.0.0.1:5060";
const ALICE: &str = "127.0.0.1:5070";
const BOB: &str = "127.0.0.2:5060";
const GROUP: &str = "sip:e2e@example.com";
const ALICE_URI: &str = "sip:alice@127.0.0.1:5070";

struct Harness {
    run: Run<ServerApp>,
    _groups: tempfile::TempDir,
    /// Our tag in the INVITE dialog of the last session opened.
    invite_tag: String,
}

impl Harness {
    fn new(tune: impl FnOnce(&mut EndpointConfig)) -> Harness {
        Harness::with_users(tune, Users::default())
    }

    /// [`Harness::new`] with the users Digest authentication knows.
    fn with_users(tune: impl FnOnce(&mut EndpointConfig), users: Users) -> Harness {
        let now = Instant::now();
        let groups =
            common::group_folder(GROUP, &[ALICE_URI.to_string(), format!("sip:bob@{BOB}")]);
        let (store, _) = GroupStore::open(groups.path(), Duration::from_secs(3600), now);
        let app = ServerApp {
            groups: SharedGroups::fixed(store),
            router: Router::new(None, LocationTable::new(64)),
            metrics: Metrics::new(None),
            bindings: None,
            users: SharedUsers::new(users),
            offline: None,
        };
        let mut cfg = EndpointConfig::new(addr(SERVER), addr("127.0.0.1:2855"));
        cfg.seed = 11;
        tune(&mut cfg);
        Harness {
            run: Run::at(now, cfg, app),
            _groups: groups,
            invite_tag: String::new(),
        }
    }

    /// One datagram in (`\n` line ends made CRLF); the SIP messages out, with where they
    /// went.
    fn udp(&mut self, from: &str, text: &str) -> Sent {
        self.run.send(from, &text.replace('\n', "\r\n"))
    }

    /// Moves the clock on by `by` and fires what is due.
    fn advance(&mut self, by: Duration) -> Sent {
        self.run.advance(by)
    }
}

fn status(m: &Message) -> u16 {
    m.status().map(u16::from).unwrap_or(0)
}

/// `head` (lines ending in `\n`) with a body; `Harness::udp` turns every `\n` into CRLF, so
/// the length counts the body's CRLFs.
fn with_body(head: &str, ct: &str, body: &str) -> String {
    let len = body.replace('\n', "\r\n").len();
    format!("{head}Content-Type: {ct}\nContent-Length: {len}\n\n{body}")
}

/// Alice's pager-mode INVITE to the group; returns the focus URI of the 200 and bob's INVITE.
fn open_session(h: &mut Harness) -> (String, Message) {
    let sdp = "v=0\no=alice 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\n\
               m=message 7000 TCP/MSRP *\na=accept-types:message/cpim text/plain\n\
               a=path:msrp://127.0.0.1:7000/a1;tcp\na=setup:active\na=sendonly\n";
    let head = format!(
        "INVITE {GROUP} SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKinv1\n\
         From: <{ALICE_URI}>;tag=a1\nTo: <{GROUP}>\nCall-ID: conf-test-1\nCSeq: 1 INVITE\n\
         Contact: <{ALICE_URI}>\nMax-Forwards: 70\n"
    );
    let out = h.udp(ALICE, &with_body(&head, "application/sdp", sdp));
    let ok = out
        .iter()
        .find(|(to, m)| *to == addr(ALICE) && status(m) == 200)
        .map(|(_, m)| m.clone())
        .expect("a 200 to alice");
    let contact = ok.header_str("Contact").expect("a Contact").to_string();
    let focus = contact
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_string();
    assert!(contact.contains("isfocus"), "{contact}");
    let invite = out
        .iter()
        .find(|(to, m)| *to == addr(BOB) && m.status().is_none())
        .map(|(_, m)| m.clone())
        .expect("an INVITE to bob");
    let to_tag = ok.to().and_then(|t| t.tag()).unwrap().to_string();
    h.invite_tag = to_tag.clone();
    h.udp(
        ALICE,
        &format!(
            "ACK {focus} SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKack1\n\
             From: <{ALICE_URI}>;tag=a1\nTo: <{GROUP}>;tag={to_tag}\nCall-ID: conf-test-1\n\
             CSeq: 1 ACK\nMax-Forwards: 70\nContent-Length: 0\n\n"
        ),
    );
    (focus, invite)
}

/// A SUBSCRIBE from `from_port` on 127.0.0.1, as `who`.
fn subscribe(focus: &str, who: &str, port: u16, call: &str, extra: &str) -> String {
    format!(
        "SUBSCRIBE {focus} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{call}\n\
         From: <{who}>;tag=s{call}\nTo: <{focus}>\nCall-ID: {call}\nCSeq: 1 SUBSCRIBE\n\
         Contact: <sip:sub@127.0.0.1:{port}>\nMax-Forwards: 70\nEvent: conference\n\
         {extra}Content-Length: 0\n\n"
    )
}

/// The responses and NOTIFYs sent to `port`.
fn to_port(out: &[(SocketAddr, Message)], port: u16) -> (Vec<Message>, Vec<Message>) {
    let mine: Vec<Message> = out
        .iter()
        .filter(|(to, _)| to.port() == port && to.ip() == addr(ALICE).ip())
        .map(|(_, m)| m.clone())
        .collect();
    let (notifies, responses) = mine.into_iter().partition(|m| m.status().is_none());
    (responses, notifies)
}

fn body(m: &Message) -> String {
    String::from_utf8_lossy(m.body_bytes()).into_owned()
}

/// The 200 for a NOTIFY (the subscriber's answer).
fn ok_for(n: &Message, code: u16) -> String {
    let via = n.header_str("Via").unwrap();
    let from = n.header_str("From").unwrap();
    let to = n.header_str("To").unwrap();
    let cid = n.header_str("Call-ID").unwrap();
    let cseq = n.header_str("CSeq").unwrap();
    format!(
        "SIP/2.0 {code} X\nVia: {via}\nFrom: {from}\nTo: {to}\nCall-ID: {cid}\nCSeq: {cseq}\n\
         Content-Length: 0\n\n"
    )
}

#[test]
fn refresh_unknown_dialog_expiry_refused_notify_and_limits() {
    let mut h = Harness::new(|c| c.max_subscriptions_per_user = 2);
    let (focus, bob_invite) = open_session(&mut h);

    // Accept without the document type: 406 naming it.
    let out = h.udp(
        "127.0.0.1:6001",
        &subscribe(&focus, ALICE_URI, 6001, "c406", "Accept: text/plain\n"),
    );
    let (r, n) = to_port(&out, 6001);
    assert_eq!(status(&r[0]), 406);
    assert_eq!(
        r[0].header_str("Accept"),
        Some("application/conference-info+xml")
    );
    assert!(n.is_empty());

    // A subscription for 5 s: 200 with Expires 5, NOTIFY version 1 with bob pending.
    let out = h.udp(
        "127.0.0.1:6002",
        &subscribe(&focus, ALICE_URI, 6002, "c1", "Expires: 5\n"),
    );
    let (r, n) = to_port(&out, 6002);
    assert_eq!(status(&r[0]), 200);
    assert_eq!(r[0].header_str("Expires"), Some("5"));
    let tag = r[0].to().and_then(|t| t.tag()).unwrap().to_string();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].header_str("Event"), Some("conference"));
    assert_eq!(
        n[0].header_str("Subscription-State"),
        Some("active;expires=5")
    );
    assert!(body(&n[0]).contains("version=\"1\""), "{}", body(&n[0]));
    assert!(body(&n[0]).contains("<status>pending</status>"));
    h.udp("127.0.0.1:6002", &ok_for(&n[0], 200));

    // A second one (Expires 600) whose NOTIFYs will be refused.
    let out = h.udp(
        "127.0.0.1:6003",
        &subscribe(&focus, ALICE_URI, 6003, "c2", "Expires: 600\n"),
    );
    let (r, n) = to_port(&out, 6003);
    assert_eq!(status(&r[0]), 200);
    h.udp("127.0.0.1:6003", &ok_for(&n[0], 200));

    // The per-user limit (2): a third gets 403 naming it.
    let out = h.udp(
        "127.0.0.1:6004",
        &subscribe(&focus, ALICE_URI, 6004, "c3", ""),
    );
    let (r, _) = to_port(&out, 6004);
    assert_eq!(status(&r[0]), 403);
    assert!(
        r[0].header_str("Warning")
            .unwrap()
            .contains("at most 2 per user")
    );

    // A refresh in the first dialog: 200, NOTIFY version 2.
    let refresh = subscribe(&focus, ALICE_URI, 6002, "c1", "Expires: 5\n")
        .replace(
            &format!("To: <{focus}>\n"),
            &format!("To: <{focus}>;tag={tag}\n"),
        )
        .replace("CSeq: 1 SUBSCRIBE", "CSeq: 2 SUBSCRIBE")
        .replace("branch=z9hG4bKc1", "branch=z9hG4bKc1r");
    let out = h.udp("127.0.0.1:6002", &refresh);
    let (r, n) = to_port(&out, 6002);
    assert_eq!(status(&r[0]), 200);
    assert!(body(&n[0]).contains("version=\"2\""));
    h.udp("127.0.0.1:6002", &ok_for(&n[0], 200));

    // A SUBSCRIBE in a dialog nobody knows: 481.
    let stray = refresh
        .replace(&format!(";tag={tag}"), ";tag=nosuchtag")
        .replace("branch=z9hG4bKc1r", "branch=z9hG4bKstray");
    let out = h.udp("127.0.0.1:6002", &stray);
    let (r, _) = to_port(&out, 6002);
    assert_eq!(status(&r[0]), 481);

    // Bob declines: both subscribers hear it; the second refuses its NOTIFY with 481.
    let via = bob_invite.header_str("Via").unwrap().to_string();
    let busy = format!(
        "SIP/2.0 486 Busy Here\nVia: {via}\nFrom: {}\nTo: {};tag=b1\nCall-ID: {}\n\
         CSeq: {}\nContent-Length: 0\n\n",
        bob_invite.header_str("From").unwrap(),
        bob_invite.header_str("To").unwrap(),
        bob_invite.header_str("Call-ID").unwrap(),
        bob_invite.header_str("CSeq").unwrap(),
    );
    let out = h.udp(BOB, &busy);
    let (_, n1) = to_port(&out, 6002);
    let (_, n2) = to_port(&out, 6003);
    assert_eq!(n1.len(), 1, "{out:?}");
    assert_eq!(n2.len(), 1);
    let b = body(&n1[0]);
    assert!(b.contains("version=\"3\""), "{b}");
    assert!(b.contains("<status>disconnected</status>"), "{b}");
    assert!(
        b.contains("<disconnection-method>busy</disconnection-method>"),
        "{b}"
    );
    assert!(
        b.contains("<reason>SIP;cause=486;text=&quot;Busy Here&quot;</reason>"),
        "{b}"
    );
    assert!(b.contains("<dr:delivery>failed</dr:delivery>"), "{b}");
    h.udp("127.0.0.1:6002", &ok_for(&n1[0], 200));
    h.udp("127.0.0.1:6003", &ok_for(&n2[0], 481));

    // Time passes: the first subscription's 5 s are up (timeout); the refused one is gone
    // and hears nothing more, not even at the session's end.
    let out = h.advance(Duration::from_secs(6));
    let (_, n1) = to_port(&out, 6002);
    let (_, n2) = to_port(&out, 6003);
    let last = n1.last().expect("a last NOTIFY");
    assert_eq!(
        last.header_str("Subscription-State"),
        Some("terminated;reason=timeout")
    );
    assert!(n2.is_empty(), "{n2:?}");
    h.udp("127.0.0.1:6002", &ok_for(last, 200));

    // The per-user count went down with them: a new subscription is admitted while the
    // session lives (it waits for alice's message).
    let out = h.udp(
        "127.0.0.1:6005",
        &subscribe(&focus, ALICE_URI, 6005, "c5", ""),
    );
    let (r, n) = to_port(&out, 6005);
    assert_eq!(status(&r[0]), 200);
    h.udp("127.0.0.1:6005", &ok_for(&n[0], 200));

    // The session ends (alice never sends): the live subscription gets its last NOTIFY
    // with reason noresource; the ended ones hear nothing.
    let out = h.advance(Duration::from_secs(120));
    assert!(to_port(&out, 6002).1.is_empty());
    assert!(to_port(&out, 6003).1.is_empty());
    let (_, n) = to_port(&out, 6005);
    assert_eq!(
        n.first().and_then(|m| m.header_str("Subscription-State")),
        Some("terminated;reason=noresource"),
        "{n:?}"
    );
    assert!(body(&n[0]).contains("<active>false</active>"));
    assert_eq!(h.run.ep.live_sessions(), 0);

    // Its focus names nothing now: 404.
    let out = h.udp(
        "127.0.0.1:6006",
        &subscribe(&focus, ALICE_URI, 6006, "c6", ""),
    );
    let (r, _) = to_port(&out, 6006);
    assert_eq!(status(&r[0]), 404);
}

/// OPTIONS says what is served: SUBSCRIBE in Allow, the package in Allow-Events
/// (RFC 6665 §7.2.2); a SUBSCRIBE for another package gets 489 naming ours.
#[test]
fn options_advertise_the_package_and_other_packages_get_489() {
    let mut h = Harness::new(|_| {});
    let out = h.udp(
        ALICE,
        &format!(
            "OPTIONS sip:{SERVER} SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKopt\n\
             From: <{ALICE_URI}>;tag=o1\nTo: <sip:{SERVER}>\nCall-ID: opt-1\nCSeq: 1 OPTIONS\n\
             Max-Forwards: 70\nContent-Length: 0\n\n"
        ),
    );
    let r = &out[0].1;
    assert_eq!(status(r), 200);
    assert!(r.header_str("Allow").unwrap().contains("SUBSCRIBE"));
    assert_eq!(r.header_str("Allow-Events"), Some("conference"));
    let (focus, _) = open_session(&mut h);
    let out = h.udp(
        "127.0.0.1:6001",
        &subscribe(&focus, ALICE_URI, 6001, "p1", "")
            .replace("Event: conference", "Event: presence"),
    );
    let (r, n) = to_port(&out, 6001);
    assert_eq!(status(&r[0]), 489);
    assert_eq!(r[0].header_str("Allow-Events"), Some("conference"));
    assert!(n.is_empty());

    // A SUBSCRIBE reusing the INVITE dialog: the session's rule answers it (6.1.3.3.2
    // `subscribe_in_dialog`), 405 with the dialog's methods and a Warning saying where to
    // subscribe.
    let reuse = format!(
        "SUBSCRIBE {focus} SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKreuse\n\
         From: <{ALICE_URI}>;tag=a1\nTo: <{GROUP}>;tag={}\nCall-ID: conf-test-1\n\
         CSeq: 5 SUBSCRIBE\nMax-Forwards: 70\nEvent: conference\nContent-Length: 0\n\n",
        h.invite_tag
    );
    let out = h.udp(ALICE, &reuse);
    let r = &out[0].1;
    assert_eq!(status(r), 405, "{out:?}");
    assert_eq!(r.header_str("Allow"), Some("ACK, BYE, CANCEL"));
    assert!(
        r.header_str("Warning")
            .unwrap()
            .contains("outside the INVITE dialog")
    );
}

/// A parameter of a Digest challenge, unquoted.
fn param(challenge: &str, name: &str) -> String {
    let at = challenge.find(&format!("{name}=")).unwrap() + name.len() + 1;
    let rest = &challenge[at..];
    match rest.strip_prefix('"') {
        Some(q) => q[..q.find('"').unwrap()].to_owned(),
        None => rest.split([',', ' ']).next().unwrap().to_owned(),
    }
}

/// The Authorization line answering `challenge` for a SUBSCRIBE to `uri` (RFC 7616 §3.4.1,
/// computed with the digest module's `ha1` and `response`, as `e2e_auth.rs` does).
fn authorization(challenge: &str, user: &str, password: &str, uri: &str, nc: u32) -> String {
    let (realm, nonce) = (param(challenge, "realm"), param(challenge, "nonce"));
    let alg = Algorithm::from_token(&param(challenge, "algorithm")).unwrap();
    let nc = format!("{nc:08x}");
    let h = ha1(alg, user, &realm, password);
    let r = response(alg, &h, &nonce, &nc, "cn", "auth", "SUBSCRIBE", uri);
    format!(
        "Authorization: Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", \
         uri=\"{uri}\", response=\"{r}\", algorithm={}, cnonce=\"cn\", qop=auth, nc={nc}\n",
        alg.as_str()
    )
}

/// The messages sent to `to`: responses, then requests.
fn sent_to(out: &[(SocketAddr, Message)], to: &str) -> (Vec<Message>, Vec<Message>) {
    out.iter()
        .filter(|(a, _)| *a == addr(to))
        .map(|(_, m)| m.clone())
        .partition(|m| m.status().is_some())
}

/// A refresh or an unsubscribe in a subscription's dialog is challenged like the SUBSCRIBE
/// that created it (RFC 3261 §22) when it comes from a host that is not trusted: without
/// credentials 401, with valid credentials of another user 403 (the subscription lives on,
/// its NOTIFYs still go to its subscriber), with the subscriber's credentials (the same
/// nonce, the next nc) 200 and a NOTIFY. Alice's INVITE comes from a trusted host; her
/// subscription from one that is not.
#[test]
fn a_refresh_from_an_untrusted_host_is_challenged_and_must_be_the_subscribers() {
    let users: Vec<UserEntry> = ["alice", "bob"]
        .iter()
        .map(|u| UserEntry {
            user: (*u).to_owned(),
            realm: Some("example.com".to_owned()),
            ha1: StoredHa1::from_password(u, "example.com", "pw"),
        })
        .collect();
    let mut h = Harness::with_users(
        |c| {
            c.auth = Some(Verifier::new("example.com", [5; 32], Instant::now()));
            c.trusted_hosts = vec![addr(ALICE).ip()];
        },
        Users::from_config(&users, "example.com"),
    );
    let (focus, _) = open_session(&mut h);
    const SUB: &str = "127.0.0.3:6001";
    let request = |cseq: u32, extra: &str, tag: &str| {
        let to_tag = if tag.is_empty() {
            String::new()
        } else {
            format!(";tag={tag}")
        };
        format!(
            "SUBSCRIBE {focus} SIP/2.0\nVia: SIP/2.0/UDP {SUB};branch=z9hG4bKrc{cseq}\n\
             From: <{ALICE_URI}>;tag=src\nTo: <{focus}>{to_tag}\nCall-ID: rechallenge\n\
             CSeq: {cseq} SUBSCRIBE\nContact: <sip:alice@{SUB}>\nMax-Forwards: 70\n\
             Event: conference\n{extra}Content-Length: 0\n\n"
        )
    };

    // The initial SUBSCRIBE: challenged, then granted with alice's credentials.
    let (r, _) = sent_to(&h.udp(SUB, &request(1, "Expires: 600\n", "")), SUB);
    assert_eq!(status(&r[0]), 401, "{r:?}");
    let challenge = r[0].header_str("WWW-Authenticate").unwrap().to_owned();
    let cred = |user: &str, nc: u32| authorization(&challenge, user, "pw", &focus, nc);
    let out = h.udp(
        SUB,
        &request(2, &format!("Expires: 600\n{}", cred("alice", 1)), ""),
    );
    let (r, n) = sent_to(&out, SUB);
    assert_eq!(status(&r[0]), 200, "{out:?}");
    let tag = r[0].to().and_then(|t| t.tag()).unwrap().to_string();
    assert_eq!(n.len(), 1);
    h.udp(SUB, &ok_for(&n[0], 200));

    // A refresh without credentials: 401, nothing renewed, no NOTIFY.
    let (r, n) = sent_to(&h.udp(SUB, &request(3, "Expires: 600\n", &tag)), SUB);
    assert_eq!(status(&r[0]), 401, "{r:?}");
    assert!(r[0].header_str("WWW-Authenticate").is_some());
    assert!(n.is_empty(), "{n:?}");

    // Bob's valid credentials on alice's subscription: 403, and no NOTIFY.
    let bob = format!("Expires: 600\n{}", cred("bob", 2));
    let (r, n) = sent_to(&h.udp(SUB, &request(4, &bob, &tag)), SUB);
    assert_eq!(status(&r[0]), 403, "{r:?}");
    assert!(n.is_empty(), "{n:?}");

    // Alice's, on the same nonce with the next nc: renewed, the next version.
    let alice = format!("Expires: 300\n{}", cred("alice", 3));
    let (r, n) = sent_to(&h.udp(SUB, &request(5, &alice, &tag)), SUB);
    assert_eq!(status(&r[0]), 200, "{r:?}");
    assert_eq!(r[0].header_str("Expires"), Some("300"));
    assert!(body(&n[0]).contains("version=\"2\""), "{}", body(&n[0]));
    h.udp(SUB, &ok_for(&n[0], 200));

    // An unsubscribe without credentials: 401, the subscription stays.
    let (r, n) = sent_to(&h.udp(SUB, &request(6, "Expires: 0\n", &tag)), SUB);
    assert_eq!(status(&r[0]), 401, "{r:?}");
    assert!(n.is_empty(), "{n:?}");
    // With alice's credentials: 200 and the last NOTIFY.
    let alice = format!("Expires: 0\n{}", cred("alice", 4));
    let (r, n) = sent_to(&h.udp(SUB, &request(7, &alice, &tag)), SUB);
    assert_eq!(status(&r[0]), 200, "{r:?}");
    assert_eq!(
        n[0].header_str("Subscription-State"),
        Some("terminated;reason=timeout")
    );
}

//! A page-mode copy kept for an offline member (ext-dr.6) carries, when it is sent later,
//! what the exploder's `forward each` block says, as the copies sent at once do (From,
//! Max-Forwards, Referred-By): the
//! sans-IO endpoint runs the RFC 5365 exploder as written and as `edits.toml` changed it (the
//! group's copies without Referred-By, with 5 hops), and the kept copy follows the spec it
//! runs, with no Rust edit. What a copy that was not sent fails with is the spec's too: a
//! copy with no route (ext-dr.10, `copy unroutable`) and a kept copy that expired (ext-dr.11,
//! `copy expired`).

use im_runtime::endpoint::{
    Application, ContactBinding, DynMachine, Endpoint, EndpointConfig, OfflineCopy, RegisterChange,
    RegisterError,
};
use im_runtime::machine::{GroupDirectory, GroupPolicy, InviteeRouter, Method, Route, Uri};
use im_runtime::proto::sip::Message;
use im_runtime::transport::{Core, Input, Output};
use imspec_spec_edit::{edited_exploder, exploder};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

const LOCAL: &str = "127.0.0.1:5060";
const ALICE: &str = "127.0.0.1:5070";
const BOB: &str = "127.0.0.1:5080";
const GROUP: &str = "sip:friends@example.com";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("a literal address")
}

fn uri(s: &str) -> Uri {
    im_runtime::proto::sip::Uri::parse(s)
        .expect("a URI")
        .to_view()
}

/// One spec's generated functions, a group of alice and bob, a location table filled by
/// REGISTER and copies kept in memory.
struct App {
    initial: fn(&Method) -> Option<Box<dyn DynMachine>>,
    by_clause: fn(&str) -> Option<Box<dyn DynMachine>>,
    methods: fn() -> Vec<Method>,
    locations: RefCell<HashMap<String, SocketAddr>>,
    kept: RefCell<Vec<OfflineCopy>>,
    /// `offline_expired` hands over every kept copy.
    expire: Cell<bool>,
}

impl GroupDirectory for App {
    fn owns(&self, group: &Uri) -> bool {
        group.same_identity(&uri(GROUP))
    }
    fn members(&self, group: &Uri) -> Option<Vec<Uri>> {
        self.owns(group)
            .then(|| vec![uri("sip:alice@example.com"), uri("sip:bob@example.com")])
    }
    fn policy(&self, group: &Uri, user: &Uri) -> Option<GroupPolicy> {
        let is_member = self.members(group)?.iter().any(|m| m.same_identity(user));
        Some(GroupPolicy {
            is_member,
            may_initiate: is_member,
            max_participants: None,
            invites_members: true,
            may_join: is_member,
            allows_anonymity: false,
        })
    }
}

impl InviteeRouter for App {
    fn route(&self, u: &Uri) -> Option<Route> {
        let key = format!("{}@{}", u.user(), u.host());
        self.locations
            .borrow()
            .get(&key)
            .copied()
            .map(Route::Direct)
    }
}

impl Application for App {
    fn initial(&self, m: &Method) -> Option<Box<dyn DynMachine>> {
        (self.initial)(m)
    }
    fn by_clause(&self, c: &str) -> Option<Box<dyn DynMachine>> {
        (self.by_clause)(c)
    }
    fn invitee_leg(&self) -> Option<Box<dyn DynMachine>> {
        // The exploder opens no dialog: no invitee legs.
        None
    }
    fn methods(&self) -> Vec<Method> {
        (self.methods)()
    }
    fn directory(&self) -> &dyn GroupDirectory {
        self
    }
    fn router(&self) -> &dyn InviteeRouter {
        self
    }
    fn register(
        &mut self,
        _now: Instant,
        aor: &Uri,
        change: &RegisterChange,
    ) -> Result<Vec<ContactBinding>, RegisterError> {
        let RegisterChange::Update(list) = change else {
            return Ok(Vec::new());
        };
        for b in list {
            self.locations
                .borrow_mut()
                .insert(format!("{}@{}", aor.user(), aor.host()), b.addr);
        }
        Ok(list.clone())
    }
    fn offers_registrar(&self) -> bool {
        true
    }
    fn offline_storable(&self, _recipient: &Uri) -> bool {
        true
    }
    fn offline_store(&self, _now: Instant, copy: OfflineCopy) -> Result<(), String> {
        self.kept.borrow_mut().push(copy);
        Ok(())
    }
    fn offline_take(&self, _now: Instant, _aor: &Uri) -> Vec<OfflineCopy> {
        self.kept.take()
    }
    fn offline_expired(&self, _now: Instant) -> Vec<OfflineCopy> {
        if self.expire.take() {
            self.kept.take()
        } else {
            Vec::new()
        }
    }
}

fn crlf(s: &str) -> String {
    s.replace('\n', "\r\n")
}

/// Hands `text` from `from` to the endpoint; the SIP messages it sends, with their targets.
fn send(
    ep: &mut Endpoint<App>,
    now: Instant,
    from: &str,
    text: &str,
) -> Vec<(SocketAddr, Message)> {
    ep.handle_input(
        now,
        Input::Datagram {
            local: addr(LOCAL),
            from: addr(from),
            data: crlf(text).into_bytes().into(),
        },
    );
    let mut out = Vec::new();
    while let Some(o) = ep.poll_output() {
        if let Output::Datagram { to, data, .. } = o
            && let Ok(m) = Message::parse(data)
        {
            out.push((to, m));
        }
    }
    out
}

/// Alice messages the group while bob is offline (his copy is kept), then bob registers:
/// the kept copy the endpoint sends him. With `online`, bob registers first: the copy sent
/// at once. With `placed`, the copy is put in the store by the test rather than kept by
/// the spec (the edited ext-dr.10 fails it 404, which ext-dr.6 does not keep).
#[allow(clippy::disallowed_methods)] // the one instant the endpoint needs
fn copy_to_bob(
    initial: fn(&Method) -> Option<Box<dyn DynMachine>>,
    by_clause: fn(&str) -> Option<Box<dyn DynMachine>>,
    methods: fn() -> Vec<Method>,
    online: bool,
    placed: bool,
) -> Message {
    let app = App {
        initial,
        by_clause,
        methods,
        locations: RefCell::default(),
        kept: RefCell::default(),
        expire: Cell::new(false),
    };
    let mut ep = Endpoint::new(
        EndpointConfig::new(addr(LOCAL), addr("127.0.0.1:2855")),
        app,
    );
    let now = Instant::now();
    let register = format!(
        "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bKr1\n\
         Max-Forwards: 70\nFrom: <sip:bob@example.com>;tag=b1\nTo: <sip:bob@example.com>\n\
         Call-ID: r1@bob\nCSeq: 1 REGISTER\nContact: <sip:bob@{BOB}>\nExpires: 300\n\
         Content-Length: 0\n\n"
    );
    if online {
        send(&mut ep, now, BOB, &register);
    }
    let body = "hello\n";
    let message = format!(
        "MESSAGE {GROUP} SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKm1\n\
         Max-Forwards: 40\nFrom: <sip:alice@example.com>;tag=a1\nTo: <{GROUP}>\n\
         Call-ID: m1@alice\nCSeq: 1 MESSAGE\nContent-Type: text/plain\n\
         Content-Length: {}\n\n{body}",
        crlf(body).len()
    );
    let out = send(&mut ep, now, ALICE, &message);
    assert!(
        out.iter()
            .any(|(a, m)| *a == addr(ALICE) && m.status().map(u16::from) == Some(202)),
        "{out:?}"
    );
    let out = if online {
        out
    } else {
        if placed {
            ep.app().kept.borrow_mut().push(OfflineCopy {
                recipient: "sip:bob@example.com".into(),
                source: addr(ALICE),
                request: crlf(&message).into_bytes().into(),
            });
        }
        assert_eq!(ep.app().kept.borrow().len(), 1, "bob's copy is kept");
        send(&mut ep, now, BOB, &register)
    };
    let mut copies: Vec<Message> = out
        .into_iter()
        .filter(|(a, m)| *a == addr(BOB) && m.method() == Some(&Method::Message))
        .map(|(_, m)| m)
        .collect();
    assert_eq!(copies.len(), 1, "one copy goes to bob");
    copies.remove(0)
}

// covers: 7.2/explode_group
#[test]
fn copies_sent_at_once_or_kept_carry_the_spec_as_written() {
    for online in [false, true] {
        let m = copy_to_bob(
            exploder::initial,
            exploder::by_clause,
            exploder::methods,
            online,
            false,
        );
        assert_eq!(m.header_str("Referred-By"), Some("<sip:alice@example.com>"));
        assert_eq!(m.header_str("Max-Forwards"), Some("39"));
        let from = m.header_str("From").unwrap_or_default();
        assert!(from.starts_with("<sip:alice@example.com>;tag="), "{from}");
    }
}

#[test]
fn copies_sent_at_once_or_kept_follow_the_edited_forward_each_block() {
    // The copy sent at once and the kept one alike.
    for online in [false, true] {
        let m = copy_to_bob(
            edited_exploder::initial,
            edited_exploder::by_clause,
            edited_exploder::methods,
            online,
            true,
        );
        assert_eq!(m.header_str("Referred-By"), None, "online {online}");
        assert_eq!(m.header_str("Max-Forwards"), Some("5"), "online {online}");
        // What the edit kept stays.
        let from = m.header_str("From").unwrap_or_default();
        assert!(from.starts_with("<sip:alice@example.com>;tag="), "{from}");
    }
}

/// One spec's generated functions.
type Spec = (
    fn(&Method) -> Option<Box<dyn DynMachine>>,
    fn(&str) -> Option<Box<dyn DynMachine>>,
    fn() -> Vec<Method>,
);

const AS_WRITTEN: Spec = (exploder::initial, exploder::by_clause, exploder::methods);
const EDITED: Spec = (
    edited_exploder::initial,
    edited_exploder::by_clause,
    edited_exploder::methods,
);

/// Alice's MESSAGE to the group, asking for negative delivery notifications (RFC 5438).
fn alice_asks_for_failures() -> String {
    // Written with LF, as every message here (`crlf` when sent).
    let cpim = "From: <sip:alice@example.com>\nTo: <sip:friends@example.com>\n\
         NS: imdn <urn:ietf:params:imdn>\nimdn.Message-ID: m7\n\
         DateTime: 2026-12-06T04:00:00Z\nimdn.Disposition-Notification: negative-delivery\n\n\
         Content-Type: text/plain\n\nhello\n";
    format!(
        "MESSAGE {GROUP} SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKm7\n\
         Max-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a7\nTo: <{GROUP}>\n\
         Call-ID: m7@alice\nCSeq: 1 MESSAGE\nContent-Type: message/cpim\n\
         Content-Length: {}\n\n",
        crlf(cpim).len()
    ) + cpim
}

#[allow(clippy::disallowed_methods)] // the one instant the endpoint needs
fn endpoint(spec: Spec) -> (Endpoint<App>, Instant) {
    let app = App {
        initial: spec.0,
        by_clause: spec.1,
        methods: spec.2,
        locations: RefCell::default(),
        kept: RefCell::default(),
        expire: Cell::new(false),
    };
    let ep = Endpoint::new(
        EndpointConfig::new(addr(LOCAL), addr("127.0.0.1:2855")),
        app,
    );
    (ep, Instant::now())
}

/// The failure notifications among `out`: MESSAGEs to alice whose IMDN says `failed`.
fn failure_notices(out: &[(SocketAddr, Message)]) -> usize {
    out.iter()
        .filter(|(a, m)| {
            *a == addr(ALICE)
                && m.method() == Some(&Method::Message)
                && String::from_utf8_lossy(&m.body()).contains("<failed/>")
        })
        .count()
}

/// Alice messages the group while bob has no registration: how many copies are kept, and
/// how many failure notifications alice gets.
fn message_to_offline_bob(spec: Spec) -> (usize, usize) {
    let (mut ep, now) = endpoint(spec);
    let out = send(&mut ep, now, ALICE, &alice_asks_for_failures());
    assert!(
        out.iter()
            .any(|(a, m)| *a == addr(ALICE) && m.status().map(u16::from) == Some(202)),
        "{out:?}"
    );
    let kept = ep.app().kept.borrow().len();
    (kept, failure_notices(&out))
}

// covers: ext-dr.10/copy_unregistered, ext-dr.6/keep_for_later
#[test]
fn a_copy_with_no_route_to_a_member_fails_480_and_is_kept() {
    assert_eq!(message_to_offline_bob(AS_WRITTEN), (1, 0));
}

#[test]
fn with_the_edited_status_the_unroutable_copy_is_not_kept_but_reported() {
    // The edit fails the copy 404, which ext-dr.6 (480 only) does not keep: ext-dr.2 reports.
    assert_eq!(message_to_offline_bob(EDITED), (0, 1));
}

/// A copy kept for bob expires: how many copies are kept afterwards, and how many failure
/// notifications alice gets.
fn kept_copy_expires(spec: Spec) -> (usize, usize) {
    let (mut ep, now) = endpoint(spec);
    ep.app().kept.borrow_mut().push(OfflineCopy {
        recipient: "sip:bob@example.com".into(),
        source: addr(ALICE),
        request: crlf(&alice_asks_for_failures()).into_bytes().into(),
    });
    ep.app().expire.set(true);
    ep.handle_input(now, Input::Timeout);
    let mut out = Vec::new();
    while let Some(o) = ep.poll_output() {
        if let Output::Datagram { to, data, .. } = o
            && let Ok(m) = Message::parse(data)
        {
            out.push((to, m));
        }
    }
    let kept = ep.app().kept.borrow().len();
    (kept, failure_notices(&out))
}

// covers: ext-dr.11/copy_expired
#[test]
fn a_kept_copy_that_expired_fails_as_the_spec_says_and_is_reported() {
    assert_eq!(kept_copy_expires(AS_WRITTEN), (0, 1));
}

#[test]
fn with_the_edited_rule_an_expired_copy_is_kept_again() {
    assert_eq!(kept_copy_expires(EDITED), (1, 0));
}

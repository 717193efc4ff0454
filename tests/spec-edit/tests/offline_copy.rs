//! A page-mode copy kept for an offline member (ext-dr.6) carries, when it is sent later,
//! what the exploder's `forward each` block says, as the copies sent at once do (From,
//! Max-Forwards, Referred-By): the
//! sans-IO endpoint runs the RFC 5365 exploder as written and as `edits.toml` changed it (the
//! group's copies without Referred-By, with 5 hops), and the kept copy follows the spec it
//! runs, with no Rust edit.

use im_runtime::endpoint::{
    Application, ContactBinding, DynMachine, Endpoint, EndpointConfig, OfflineCopy, RegisterChange,
    RegisterError,
};
use im_runtime::machine::{GroupDirectory, GroupPolicy, InviteeRouter, Method, Route, Uri};
use im_runtime::proto::sip::Message;
use im_runtime::transport::{Core, Input, Output};
use imspec_spec_edit::{edited_exploder, exploder};
use std::cell::RefCell;
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
        let key = format!("{}@{}", u.user, u.host);
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
                .insert(format!("{}@{}", aor.user, aor.host), b.addr);
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
/// at once.
#[allow(clippy::disallowed_methods)] // the one instant the endpoint needs
fn copy_to_bob(
    initial: fn(&Method) -> Option<Box<dyn DynMachine>>,
    by_clause: fn(&str) -> Option<Box<dyn DynMachine>>,
    methods: fn() -> Vec<Method>,
    online: bool,
) -> Message {
    let app = App {
        initial,
        by_clause,
        methods,
        locations: RefCell::default(),
        kept: RefCell::default(),
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
    let out = send(
        &mut ep,
        now,
        ALICE,
        &format!(
            "MESSAGE {GROUP} SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKm1\n\
             Max-Forwards: 40\nFrom: <sip:alice@example.com>;tag=a1\nTo: <{GROUP}>\n\
             Call-ID: m1@alice\nCSeq: 1 MESSAGE\nContent-Type: text/plain\n\
             Content-Length: {}\n\n{body}",
            crlf(body).len()
        ),
    );
    assert!(
        out.iter()
            .any(|(a, m)| *a == addr(ALICE) && m.status().map(u16::from) == Some(202)),
        "{out:?}"
    );
    let out = if online {
        out
    } else {
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
        );
        assert_eq!(m.header_str("Referred-By"), None, "online {online}");
        assert_eq!(m.header_str("Max-Forwards"), Some("5"), "online {online}");
        // What the edit kept stays.
        let from = m.header_str("From").unwrap_or_default();
        assert!(from.starts_with("<sip:alice@example.com>;tag="), "{from}");
    }
}

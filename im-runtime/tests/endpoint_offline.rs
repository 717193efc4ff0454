//! Offline members (extension ext-dr.6), sans-IO: the real [`Endpoint`] running the
//! machines generated from `specs/rfc5365_message_exploder.imspec` (with
//! `ext_delivery_reports.imspec`), driven through [`Core`] on a virtual clock, with an
//! application that keeps copies in memory. What the runtime must do with the
//! [`Application`] offline hooks:
//! - a page-mode copy for a member of the domain with no route is handed to
//!   `offline_store` (the spec's `store copy`) and nothing is sent to it nor notified;
//! - a REGISTER of that member makes the endpoint send the kept copy to the new contact,
//!   and its 200 makes the sender's `delivered` IMDN;
//! - a member the application cannot keep more for (`offline_storable` false) is a failed
//!   copy at once, and so is a copy `offline_store` refuses after all;
//! - an expired copy (`offline_expired`) is a failed copy; the endpoint wakes for
//!   `offline_next_expiry`.

use bytes::Bytes;
use im_runtime::endpoint::{
    Application, ContactBinding, DynMachine, Endpoint, EndpointConfig, OfflineCopy, RegisterChange,
    RegisterError,
};
use im_runtime::machine::{GroupDirectory, GroupPolicy, InviteeRouter, Method, Route, Uri};
use im_runtime::proto::sip::Message;
use im_runtime::transport::{Core, Input, Output};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[allow(unreachable_pub)]
mod generated {
    im_macros::imspec!("specs/rfc5365_message_exploder.imspec");
}

const LOCAL: &str = "127.0.0.1:5060";
const ALICE: &str = "127.0.0.1:5070";
const BOB_CONTACT: &str = "127.0.0.1:5080";
const GROUP: &str = "sip:friends@example.com";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("a literal address")
}

fn uri(s: &str) -> Uri {
    im_runtime::proto::sip::Uri::parse(s)
        .expect("a URI")
        .to_view()
}

/// One group (alice, bob), a location table filled by REGISTER, copies kept in memory.
#[derive(Default)]
struct App {
    locations: RefCell<HashMap<String, SocketAddr>>,
    kept: RefCell<Vec<OfflineCopy>>,
    storable: Cell<bool>,
    refuse_store: Cell<bool>,
    expire_now: Cell<bool>,
    next_expiry: Cell<Option<Instant>>,
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
        let members = self.members(group)?;
        let is_member = members.iter().any(|m| m.same_identity(user));
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
        generated::initial(m)
    }
    fn by_clause(&self, clause: &str) -> Option<Box<dyn DynMachine>> {
        generated::by_clause(clause)
    }
    fn invitee_leg(&self) -> Option<Box<dyn DynMachine>> {
        generated::invitee_leg()
    }
    fn methods(&self) -> Vec<Method> {
        generated::methods()
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
        self.storable.get()
    }
    fn offline_store(&self, _now: Instant, copy: OfflineCopy) -> Result<(), String> {
        if self.refuse_store.get() {
            return Err("the store is down".into());
        }
        self.kept.borrow_mut().push(copy);
        Ok(())
    }
    fn offline_take(&self, _now: Instant, aor: &Uri) -> Vec<OfflineCopy> {
        let (mine, rest): (Vec<_>, Vec<_>) = self
            .kept
            .take()
            .into_iter()
            .partition(|c| uri(&c.recipient).same_identity(aor));
        *self.kept.borrow_mut() = rest;
        mine
    }
    fn offline_expired(&self, _now: Instant) -> Vec<OfflineCopy> {
        if self.expire_now.replace(false) {
            self.next_expiry.set(None);
            return self.kept.take();
        }
        Vec::new()
    }
    fn offline_next_expiry(&self) -> Option<Instant> {
        self.next_expiry.get()
    }
}

fn crlf(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// Alice's MESSAGE to the group, asking for both delivery notifications.
fn alice_message(id: &str) -> Bytes {
    let cpim = crlf(&format!(
        "From: <sip:alice@example.com>\nTo: <{GROUP}>\nNS: imdn <urn:ietf:params:imdn>\n\
         imdn.Message-ID: {id}\nDateTime: 2026-12-06T04:00:00Z\n\
         imdn.Disposition-Notification: positive-delivery, negative-delivery\n\n\
         Content-Type: text/plain\n\nhello\n"
    ));
    Bytes::from(
        crlf(&format!(
            "MESSAGE {GROUP} SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bK{id}\n\
             Max-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a{id}\nTo: <{GROUP}>\n\
             Call-ID: {id}@alice\nCSeq: 1 MESSAGE\nContent-Type: message/cpim\n\
             Content-Length: {}\n\n",
            cpim.len()
        )) + &cpim,
    )
}

fn bob_register() -> Bytes {
    Bytes::from(crlf(&format!(
        "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP {BOB_CONTACT};branch=z9hG4bKreg1\n\
         Max-Forwards: 70\nFrom: <sip:bob@example.com>;tag=b1\nTo: <sip:bob@example.com>\n\
         Call-ID: reg1@bob\nCSeq: 1 REGISTER\nContact: <sip:bob@{BOB_CONTACT}>\n\
         Expires: 300\nContent-Length: 0\n\n"
    )))
}

/// A 200 to `req`.
fn ok_to(req: &Message) -> Bytes {
    use im_runtime::proto::sip::HeaderName;
    let h = |n| req.header(n).unwrap_or("");
    Bytes::from(crlf(&format!(
        "SIP/2.0 200 OK\nVia: {}\nFrom: {}\nTo: {};tag=ok\nCall-ID: {}\nCSeq: {}\n\
         Content-Length: 0\n\n",
        h(HeaderName::Via),
        h(HeaderName::From),
        h(HeaderName::To),
        h(HeaderName::CallId),
        h(HeaderName::CSeq),
    )))
}

struct Net {
    ep: Endpoint<App>,
    now: Instant,
}

impl Net {
    #[allow(clippy::disallowed_methods)] // the one base instant of the virtual clock
    fn new(app: App) -> Net {
        let cfg = EndpointConfig::new(addr(LOCAL), addr("127.0.0.1:2855"));
        Net {
            ep: Endpoint::new(cfg, app),
            now: Instant::now(),
        }
    }

    /// Delivers a datagram from `from`; returns every SIP message sent, with its target.
    fn send(&mut self, from: &str, data: Bytes) -> Vec<(SocketAddr, Message)> {
        self.ep.handle_input(
            self.now,
            Input::Datagram {
                local: addr(LOCAL),
                from: addr(from),
                data,
            },
        );
        self.drain()
    }

    fn drain(&mut self) -> Vec<(SocketAddr, Message)> {
        let mut out = Vec::new();
        while let Some(o) = self.ep.poll_output() {
            if let Output::Datagram { to, data, .. } = o
                && let Ok(m) = Message::parse(data)
            {
                out.push((to, m));
            }
        }
        out
    }
}

fn requests_to(out: &[(SocketAddr, Message)], to: &str) -> Vec<Message> {
    out.iter()
        .filter(|(a, m)| *a == addr(to) && m.is_request())
        .map(|(_, m)| m.clone())
        .collect()
}

fn status(out: &[(SocketAddr, Message)], to: &str) -> Option<u16> {
    out.iter()
        .filter(|(a, m)| *a == addr(to) && !m.is_request())
        .find_map(|(_, m)| m.status().map(u16::from))
}

fn imdn_status(m: &Message) -> &'static str {
    let body = String::from_utf8_lossy(m.body_bytes()).into_owned();
    assert!(
        body.contains("<recipient-uri>sip:bob@example.com</recipient-uri>"),
        "{body}"
    );
    if body.contains("<delivered/>") {
        "delivered"
    } else if body.contains("<failed/>") {
        "failed"
    } else {
        "?"
    }
}

#[test]
fn a_kept_copy_goes_out_when_the_member_registers_and_the_sender_hears_delivered() {
    let app = App::default();
    app.storable.set(true);
    let mut net = Net::new(app);
    let out = net.send(ALICE, alice_message("m1"));
    assert_eq!(status(&out, ALICE), Some(202));
    assert!(requests_to(&out, ALICE).is_empty(), "no notification yet");
    let kept = net.ep.app().kept.borrow().clone();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].recipient, "sip:bob@example.com");
    assert_eq!(kept[0].source, addr(ALICE));
    assert!(Message::parse(kept[0].request.clone()).is_ok());

    let out = net.send(BOB_CONTACT, bob_register());
    assert_eq!(status(&out, BOB_CONTACT), Some(200));
    let copies = requests_to(&out, BOB_CONTACT);
    assert_eq!(copies.len(), 1, "{out:?}");
    let copy = &copies[0];
    assert_eq!(copy.method(), Some(&Method::Message));
    assert_eq!(copy.request_uri_str(), Some("sip:bob@example.com"));
    assert!(String::from_utf8_lossy(copy.body_bytes()).contains("imdn.Message-ID: m1"));
    assert!(net.ep.app().kept.borrow().is_empty());

    let out = net.send(BOB_CONTACT, ok_to(copy));
    let imdns = requests_to(&out, ALICE);
    assert_eq!(imdns.len(), 1, "{out:?}");
    assert_eq!(imdn_status(&imdns[0]), "delivered");
}

#[test]
fn a_member_over_its_bound_or_a_refused_store_is_a_failed_copy() {
    // Not storable: failed at once, nothing kept.
    let app = App::default();
    let mut net = Net::new(app);
    let out = net.send(ALICE, alice_message("m2"));
    assert_eq!(status(&out, ALICE), Some(202));
    let imdns = requests_to(&out, ALICE);
    assert_eq!(imdns.len(), 1, "{out:?}");
    assert_eq!(imdn_status(&imdns[0]), "failed");
    assert!(net.ep.app().kept.borrow().is_empty());

    // Storable, but the store refuses it: the spec runs again, and the copy fails.
    let app = App::default();
    app.storable.set(true);
    app.refuse_store.set(true);
    let mut net = Net::new(app);
    let out = net.send(ALICE, alice_message("m3"));
    let imdns = requests_to(&out, ALICE);
    assert_eq!(imdns.len(), 1, "{out:?}");
    assert_eq!(imdn_status(&imdns[0]), "failed");
}

#[test]
fn an_expired_copy_is_a_failed_copy_and_the_endpoint_wakes_for_it() {
    let app = App::default();
    app.storable.set(true);
    let mut net = Net::new(app);
    let _ = net.send(ALICE, alice_message("m4"));
    assert_eq!(net.ep.app().kept.borrow().len(), 1);
    let due = net.now + Duration::from_secs(3600);
    net.ep.app().next_expiry.set(Some(due));
    assert!(net.ep.poll_timeout().is_some_and(|t| t <= due));
    net.ep.app().expire_now.set(true);
    net.now = due;
    net.ep.handle_input(net.now, Input::Timeout);
    let out = net.drain();
    let imdns = requests_to(&out, ALICE);
    assert_eq!(imdns.len(), 1, "{out:?}");
    assert_eq!(imdn_status(&imdns[0]), "failed");
    // Bob registering now gets nothing.
    let out = net.send(BOB_CONTACT, bob_register());
    assert!(requests_to(&out, BOB_CONTACT).is_empty(), "{out:?}");
}

/// With several workers, what a peer sends about a kept copy reaches the worker that holds
/// its session: the copy's Call-ID steers there, and so does its From tag, which is the
/// session's tag (a SUBSCRIBE naming it as To tag is steered by the tag,
/// `steer::conference_key`). Eight copies, so a tag drawn at random would miss (1 in 256 to
/// pass by chance).
#[test]
fn a_kept_copys_call_id_and_tag_steer_to_the_worker_that_holds_it() {
    use im_runtime::steer::{Shard, steer, steer_sip};
    let app = App::default();
    app.storable.set(true);
    let mut cfg = EndpointConfig::new(addr(LOCAL), addr("127.0.0.1:2855"));
    cfg.shard = Shard { index: 1, count: 2 };
    let mut net = Net {
        ep: Endpoint::new(cfg, app),
        now: net_base(),
    };
    for i in 0..8 {
        let out = net.send(ALICE, alice_message(&format!("s{i}")));
        assert_eq!(status(&out, ALICE), Some(202));
    }
    assert_eq!(net.ep.app().kept.borrow().len(), 8);
    let out = net.send(BOB_CONTACT, bob_register());
    let copies = requests_to(&out, BOB_CONTACT);
    assert_eq!(copies.len(), 8, "{out:?}");
    for c in &copies {
        let call_id = c.call_id().unwrap_or_default().to_string();
        let tag = c
            .from()
            .and_then(|f| f.tag())
            .unwrap_or_default()
            .to_string();
        assert_eq!(steer(call_id.as_bytes(), 2), 1, "{call_id}");
        assert_eq!(steer(tag.as_bytes(), 2), 1, "{tag}");
        let subscribe = format!(
            "SUBSCRIBE sip:alice@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {BOB_CONTACT};branch=z9hG4bKs\r\nFrom: <sip:bob@example.com>;tag=b\r\nTo: <sip:alice@example.com>;tag={tag}\r\nCall-ID: {call_id}\r\nCSeq: 1 SUBSCRIBE\r\nEvent: conference\r\nContent-Length: 0\r\n\r\n"
        );
        assert_eq!(steer_sip(subscribe.as_bytes(), 2), 1);
    }
}

#[allow(clippy::disallowed_methods)] // the one base instant of the virtual clock
fn net_base() -> Instant {
    Instant::now()
}

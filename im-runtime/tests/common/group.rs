//! A group application over one spec's generated machines, for the sans-IO tests that run
//! real specs rather than the stand-in machines of `mod.rs`: a group of alice and bob
//! ([`GROUP`]), a registrar whose bindings route the invitees, page-mode copies kept in
//! memory for offline members (ext-dr.6) with switches for a full or refusing store and
//! for expiry, and the endpoint it runs in with the datagrams in and out ([`Run`]).
//!
//! Self-contained (std and `im_runtime` only), so that `endpoint_offline.rs` here, the
//! spec-edit tests (`tests/spec-edit/tests/common/gap.rs`, which runs the edited specs) and
//! im-server's `conference_endpoint.rs` (its [`Run`] over the server's application) include
//! it by `#[path]` instead of keeping a copy each.

// Each test uses a different part.
#![allow(dead_code)]

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

/// Alice's UA.
pub(crate) const ALICE: &str = "127.0.0.1:5070";
/// The endpoint's SIP address.
pub(crate) const SERVER: &str = "127.0.0.1:5060";
/// The endpoint's MSRP address.
pub(crate) const MSRP: &str = "127.0.0.1:2855";
/// Where every invitee is reached when no registration says otherwise (it never answers).
pub(crate) const INVITEE: &str = "127.0.0.2:5060";
/// The group of alice and bob.
pub(crate) const GROUP: &str = "sip:friends@example.com";

/// A literal address.
pub(crate) fn addr(s: &str) -> SocketAddr {
    s.parse().expect("a literal address")
}

/// A literal URI.
pub(crate) fn uri(s: &str) -> Uri {
    im_runtime::proto::sip::Uri::parse(s)
        .expect("a URI")
        .to_view()
}

/// One spec's generated functions.
#[derive(Clone, Copy)]
pub(crate) struct Spec {
    pub(crate) initial: fn(&Method) -> Option<Box<dyn DynMachine>>,
    pub(crate) by_clause: fn(&str) -> Option<Box<dyn DynMachine>>,
    pub(crate) invitee_leg: fn() -> Option<Box<dyn DynMachine>>,
    pub(crate) methods: fn() -> Vec<Method>,
}

/// One spec's generated functions, a group of alice and bob ([`GROUP`]), invitees reached
/// where they registered else at [`INVITEE`] (unless unroutable), and copies kept in memory
/// while storable and unless the store refuses.
pub(crate) struct GroupApp {
    spec: Spec,
    /// With no registration, an invitee has no route (rather than [`INVITEE`]).
    unroutable: bool,
    /// Serves SUBSCRIBE to the sessions' focus URIs (conference state).
    conference: bool,
    /// Serves REGISTER into [`GroupApp::locations`].
    registrar: bool,
    /// `user@host` → where it registered.
    locations: RefCell<HashMap<String, SocketAddr>>,
    /// `offline_storable`: there is room for one more copy (at first, yes).
    pub(crate) storable: Cell<bool>,
    /// `offline_store` refuses every copy after all.
    pub(crate) refuse_store: Cell<bool>,
    /// The copies kept for offline members.
    pub(crate) kept: RefCell<Vec<OfflineCopy>>,
    /// How many times `store copy` reached the application.
    pub(crate) stores: Cell<usize>,
    /// `offline_expired` hands over every kept copy (once).
    pub(crate) expire: Cell<bool>,
    /// `offline_next_expiry`, until the copies expire.
    pub(crate) next_expiry: Cell<Option<Instant>>,
}

impl GroupDirectory for GroupApp {
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

impl InviteeRouter for GroupApp {
    fn route(&self, u: &Uri) -> Option<Route> {
        let key = format!("{}@{}", u.user(), u.host());
        if let Some(a) = self.locations.borrow().get(&key) {
            return Some(Route::Direct(*a));
        }
        (!self.unroutable).then(|| Route::Direct(addr(INVITEE)))
    }
}

impl Application for GroupApp {
    fn initial(&self, m: &Method) -> Option<Box<dyn DynMachine>> {
        (self.spec.initial)(m)
    }
    fn by_clause(&self, c: &str) -> Option<Box<dyn DynMachine>> {
        (self.spec.by_clause)(c)
    }
    fn invitee_leg(&self) -> Option<Box<dyn DynMachine>> {
        (self.spec.invitee_leg)()
    }
    fn methods(&self) -> Vec<Method> {
        (self.spec.methods)()
    }
    fn directory(&self) -> &dyn GroupDirectory {
        self
    }
    fn router(&self) -> &dyn InviteeRouter {
        self
    }
    fn offers_conference_state(&self) -> bool {
        self.conference
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
        self.registrar
    }
    fn offline_storable(&self, _recipient: &Uri) -> bool {
        self.storable.get()
    }
    fn offline_store(&self, _now: Instant, copy: OfflineCopy) -> Result<(), String> {
        self.stores.set(self.stores.get() + 1);
        if self.refuse_store.get() {
            return Err("the store is full".into());
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
        if self.expire.replace(false) {
            self.next_expiry.set(None);
            return self.kept.take();
        }
        Vec::new()
    }
    fn offline_next_expiry(&self) -> Option<Instant> {
        self.next_expiry.get()
    }
}

/// Builds the endpoint a group test runs: `Group::of(spec).unroutable().run()`.
pub(crate) struct Group {
    app: GroupApp,
    cfg: EndpointConfig,
}

impl Group {
    /// `spec`'s machines; every invitee reached at [`INVITEE`], no conference state, no
    /// registrar, a store that keeps every copy.
    pub(crate) fn of(spec: Spec) -> Group {
        Group {
            app: GroupApp {
                spec,
                unroutable: false,
                conference: false,
                registrar: false,
                locations: RefCell::default(),
                storable: Cell::new(true),
                refuse_store: Cell::new(false),
                kept: RefCell::default(),
                stores: Cell::new(0),
                expire: Cell::new(false),
                next_expiry: Cell::new(None),
            },
            cfg: EndpointConfig::new(addr(SERVER), addr(MSRP)),
        }
    }

    /// An invitee with no registration has no route.
    pub(crate) fn unroutable(mut self) -> Group {
        self.app.unroutable = true;
        self
    }

    /// The application refuses every copy `store copy` hands it.
    pub(crate) fn refusing_store(self) -> Group {
        self.app.refuse_store.set(true);
        self
    }

    /// Conference state is offered (SUBSCRIBE to a session's focus).
    pub(crate) fn conference(mut self) -> Group {
        self.app.conference = true;
        self
    }

    /// REGISTER is served, and invitees are reached only where they registered.
    pub(crate) fn registrar(mut self) -> Group {
        self.app.registrar = true;
        self.app.unroutable = true;
        self
    }

    /// Changes the endpoint's configuration.
    pub(crate) fn config(mut self, f: impl FnOnce(&mut EndpointConfig)) -> Group {
        f(&mut self.cfg);
        self
    }

    /// The endpoint, at the one instant a test starts from.
    pub(crate) fn run(self) -> Run {
        Run::start(self.cfg, self.app)
    }
}

/// The endpoint of a test (a group test's by default) and the instant it is at.
pub(crate) struct Run<A: Application = GroupApp> {
    pub(crate) ep: Endpoint<A>,
    pub(crate) now: Instant,
}

/// What the endpoint sent, each with its target.
pub(crate) type Sent = Vec<(SocketAddr, Message)>;

impl<A: Application> Run<A> {
    /// An endpoint configured by `cfg` serving `app`, at the one instant a test starts from.
    #[allow(clippy::disallowed_methods)] // the one instant the endpoint needs
    pub(crate) fn start(cfg: EndpointConfig, app: A) -> Run<A> {
        Run::at(Instant::now(), cfg, app)
    }

    /// The same at `now` (for a test whose application needs the start instant itself).
    pub(crate) fn at(now: Instant, cfg: EndpointConfig, app: A) -> Run<A> {
        Run {
            ep: Endpoint::new(cfg, app),
            now,
        }
    }

    /// The application.
    pub(crate) fn app(&self) -> &A {
        self.ep.app()
    }

    /// Hands `text` (CRLF as written) from `peer` to the endpoint; what it then sends.
    pub(crate) fn send(&mut self, peer: &str, text: &str) -> Sent {
        self.ep.handle_input(
            self.now,
            Input::Datagram {
                local: addr(SERVER),
                from: addr(peer),
                data: text.to_string().into_bytes().into(),
            },
        );
        self.drain()
    }

    /// Hands `text` from alice; what the endpoint then sends her.
    pub(crate) fn alice_sends(&mut self, text: &str) -> Vec<Message> {
        let sent = self.send(ALICE, text);
        to(&sent, ALICE)
    }

    /// Everything the endpoint has sent since it was last asked.
    pub(crate) fn drain(&mut self) -> Sent {
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

    /// Runs `input` at the current instant; what the endpoint then sends.
    pub(crate) fn input(&mut self, input: Input) -> Sent {
        self.ep.handle_input(self.now, input);
        self.drain()
    }

    /// Moves the clock on by `by`, firing every timer due on the way; what was sent.
    pub(crate) fn advance(&mut self, by: Duration) -> Sent {
        let end = self.now + by;
        let mut out = Vec::new();
        while let Some(t) = self.ep.poll_timeout().filter(|t| *t <= end) {
            self.now = self.now.max(t);
            out.extend(self.input(Input::Timeout));
        }
        self.now = end;
        out
    }
}

/// The messages among `sent` that went to `peer`.
pub(crate) fn to(sent: &Sent, peer: &str) -> Vec<Message> {
    sent.iter()
        .filter(|(a, _)| *a == addr(peer))
        .map(|(_, m)| m.clone())
        .collect()
}

/// A peer's response `status reason` to `req` (its Via, From, To, Call-ID, CSeq), with
/// `to_tag` added to the To when given, and `extra` header lines (each ending CRLF).
pub(crate) fn response(req: &Message, status: &str, to_tag: Option<&str>, extra: &str) -> String {
    let h = |n: &str| req.header_str(n).unwrap_or_default().to_string();
    let tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    format!(
        "SIP/2.0 {status}\r\nVia: {}\r\nFrom: {}\r\nTo: {}{tag}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
        h("Via"),
        h("From"),
        h("To"),
        h("Call-ID"),
        h("CSeq")
    )
}

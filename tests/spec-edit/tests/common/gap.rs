//! What the spec-edit tests of a group share: one spec's generated functions ([`spec!`],
//! the spec as written or a copy `gaps.toml`/`edits.toml` changed), an application with a
//! group of alice and bob ([`GroupApp`], built by [`Group`]), the sans-IO endpoint it runs
//! in with the datagrams in and out ([`Run`]), and the runtime's log captured while a test
//! runs with the assertions on its `spec gap` lines ([`logged`], [`Log`]).

// Each test file uses a different part.
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
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tracing_subscriber::fmt::MakeWriter;

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

/// The [`Spec`] of one module of `imspec_spec_edit` (`spec!(original)`).
macro_rules! spec {
    ($spec:ident) => {
        $crate::gap::Spec {
            initial: $spec::initial,
            by_clause: $spec::by_clause,
            invitee_leg: $spec::invitee_leg,
            methods: $spec::methods,
        }
    };
}
pub(crate) use spec;

/// One spec's generated functions, a group of alice and bob ([`GROUP`]), invitees reached
/// where they registered else at [`INVITEE`] (unless unroutable), and copies kept in memory
/// unless the store refuses.
pub(crate) struct GroupApp {
    spec: Spec,
    /// With no registration, an invitee has no route (rather than [`INVITEE`]).
    unroutable: bool,
    refuse_store: bool,
    /// Serves SUBSCRIBE to the sessions' focus URIs (conference state).
    conference: bool,
    /// Serves REGISTER into [`GroupApp::locations`].
    registrar: bool,
    /// `user@host` → where it registered.
    locations: RefCell<HashMap<String, SocketAddr>>,
    /// The copies kept for offline members.
    pub(crate) kept: RefCell<Vec<OfflineCopy>>,
    /// How many times `store copy` reached the application.
    pub(crate) stores: Cell<usize>,
    /// `offline_expired` hands over every kept copy (once).
    pub(crate) expire: Cell<bool>,
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
        true
    }
    fn offline_store(&self, _now: Instant, copy: OfflineCopy) -> Result<(), String> {
        self.stores.set(self.stores.get() + 1);
        if self.refuse_store {
            return Err("the store is full".into());
        }
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

/// Builds the endpoint a group test runs: `Group::of(spec!(m)).unroutable().run()`.
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
                refuse_store: false,
                conference: false,
                registrar: false,
                locations: RefCell::default(),
                kept: RefCell::default(),
                stores: Cell::new(0),
                expire: Cell::new(false),
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
    pub(crate) fn refusing_store(mut self) -> Group {
        self.app.refuse_store = true;
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
    #[allow(clippy::disallowed_methods)] // the one instant the endpoint needs
    pub(crate) fn run(self) -> Run {
        Run {
            ep: Endpoint::new(self.cfg, self.app),
            now: Instant::now(),
        }
    }
}

/// The endpoint of a group test and the instant it is at.
pub(crate) struct Run {
    pub(crate) ep: Endpoint<GroupApp>,
    pub(crate) now: Instant,
}

/// What the endpoint sent, each with its target.
pub(crate) type Sent = Vec<(SocketAddr, Message)>;

impl Run {
    /// The application.
    pub(crate) fn app(&self) -> &GroupApp {
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

/// The log lines written while `f` runs on this thread (INFO and above, no colours).
pub(crate) fn logged<T>(f: impl FnOnce() -> T) -> (T, Log) {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log buffer").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }
    let buf = Buf::default();
    let sub = tracing_subscriber::fmt()
        .with_writer(buf.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let r = tracing::subscriber::with_default(sub, f);
    let text = String::from_utf8_lossy(&buf.0.lock().expect("log buffer")).into_owned();
    (r, Log(text))
}

/// A captured log.
#[derive(Clone, Debug)]
pub(crate) struct Log(pub(crate) String);

impl std::fmt::Display for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Log {
    /// Whether some line contains `needle`.
    pub(crate) fn contains(&self, needle: &str) -> bool {
        self.0.contains(needle)
    }

    /// The lines containing `needle`.
    pub(crate) fn lines_with(&self, needle: &str) -> Vec<&str> {
        self.0.lines().filter(|l| l.contains(needle)).collect()
    }

    /// The `spec gap` lines.
    pub(crate) fn gaps(&self) -> Vec<&str> {
        self.lines_with("spec gap")
    }

    /// Asserts that no line is a spec gap.
    #[track_caller]
    pub(crate) fn assert_no_gap(&self) {
        assert!(self.gaps().is_empty(), "{}", self.0);
    }

    /// Asserts one `spec gap` line, `spec gap: {message}` with `trigger="{trigger}"`,
    /// naming `machine` (`clause/procedure@state`, or a prefix of it) and every one of
    /// `also`; returns it.
    #[track_caller]
    pub(crate) fn assert_one_gap(
        &self,
        message: &str,
        trigger: &str,
        machine: &str,
        also: &[&str],
    ) -> &str {
        let lines = self.gaps();
        assert_eq!(lines.len(), 1, "{}", self.0);
        let line = lines[0];
        let want = [
            format!("spec gap: {message}"),
            format!("trigger=\"{trigger}\""),
            machine.to_owned(),
        ];
        for w in want.iter().map(String::as_str).chain(also.iter().copied()) {
            assert!(line.contains(w), "no {w:?} in {line}");
        }
        line
    }
}

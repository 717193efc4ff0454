//! The endpoint: the sans-IO core of the IM server. It implements [`Core`] so the tokio
//! driver (or a simulated network) can run it, and ties together the SIP parser, the
//! transaction layer, dialogs, the generated machines and the MSRP relay.
//!
//! One input at a time:
//! * SIP bytes are framed, parsed and validated; what fails gets its error response
//!   (400 with a Warning, 505, 420 with Unsupported, 415, 416 …) and nothing else happens;
//! * valid requests go through the transaction layer, so a retransmission is answered from
//!   the transaction and never reaches a machine twice;
//! * initial requests create a [`Session`](session) whose machine the [`Application`]
//!   supplies; its actions are executed here (responses with SDP answers, invitee INVITEs,
//!   CANCEL, BYE, MSRP delivery and reports, timers, logs), every one logged with the
//!   `call_id`, `clause` and `rule` that produced it;
//! * every session ends on every path (BYE either way, CANCEL, no ACK, no MSRP, timeouts)
//!   and [`Endpoint::live_sessions`] returns to 0.

mod app;
mod builder;
pub mod facts;
mod ids;
mod msrp_relay;
mod session;
mod timers;
mod via;

pub use app::{Application, DynMachine};
pub use facts::{BodyLimits, FactsError};

use crate::machine::{
    Action, ActionKind, Config, Env, Event, Method, Origin, Recipients, Reply, Route, Timer, Uri,
};
use crate::proto::msrp;
use crate::proto::sdp::answer::{self, LocalMedia, OfferOptions};
use crate::proto::sip::validate::{self, Policy, Routing, Triage};
use crate::proto::sip::{self, HeaderName, Message, StatusCode, Transport};
use crate::proto::transaction::{
    self as tsx, Peer, Role, TimerConfig, Transactions, TransactionsConfig, TsxKey,
};
use crate::transport::{ConnId, Core, Input, Output, StreamKind};
use builder::{SipBuilder, tsx_message};
use bytes::{Bytes, BytesMut};
use ids::Ids;
use session::{Dialog, Leg, LegStatus, Session, SessionId};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use timers::{IdleConns, SessionTimer, SessionTimerIndex};

/// Everything the endpoint needs besides the application.
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// What specs see as `config.*`.
    pub spec: Config,
    /// The SIP address put in Via and Contact (may differ from the bound one).
    pub sip_advertised: SocketAddr,
    /// The MSRP address put in `c=`, `m=` and `a=path`.
    pub msrp_advertised: SocketAddr,
    /// Hosts whose P-Asserted-Identity is trusted.
    pub trusted_hosts: Vec<IpAddr>,
    /// What the server supports (420/415/406 decisions).
    pub policy: Policy,
    /// Transaction timers (T1, T2, T4, D).
    pub timers: TimerConfig,
    /// Largest SIP message accepted (bigger: 513 on UDP; on TCP 413 when the header
    /// section fits and the body is too big, then the connection is closed).
    pub max_message_size: usize,
    /// Most live sessions at once; a new one beyond gets 503 with Retry-After. A session
    /// stops counting once its calls are over, even while its last transactions linger.
    pub max_sessions: usize,
    /// Most SIP transactions (server and client) the endpoint holds before it sheds new
    /// sessions with 503: a load signal that rises before latency does, so the sessions
    /// already accepted keep being served.
    pub max_transactions: usize,
    /// The `Retry-After` of a 503 from admission.
    pub retry_after: Duration,
    /// How long a session may live at most before it is torn down.
    pub session_lifetime: Duration,
    /// Body parsing limits.
    pub body_limits: BodyLimits,
    /// MSRP decoder limits.
    pub msrp_limits: msrp::DecoderLimits,
    /// Largest chunk the server sends.
    pub msrp_chunk_size: usize,
    /// Seed of the id generator (tags, branches, Call-IDs, MSRP ids). The IO layer passes
    /// real randomness; tests pass a fixed value.
    pub seed: u64,
}

impl EndpointConfig {
    /// A configuration with the defaults of design.md for the given advertised addresses.
    pub fn new(sip_advertised: SocketAddr, msrp_advertised: SocketAddr) -> Self {
        let policy = Policy {
            // Only the extensions the server implements (RFC 5366, RFC 5365): a tag here
            // is advertised in OPTIONS and accepted in Require.
            supported: vec![
                "recipient-list-invite".into(),
                "recipient-list-message".into(),
            ],
            ..Policy::default()
        };
        EndpointConfig {
            spec: Config::default(),
            sip_advertised,
            msrp_advertised,
            trusted_hosts: Vec::new(),
            policy,
            timers: TimerConfig::default(),
            max_message_size: 64 * 1024,
            max_sessions: 10_000,
            max_transactions: 200_000,
            retry_after: Duration::from_secs(5),
            session_lifetime: Duration::from_secs(300),
            body_limits: BodyLimits::default(),
            msrp_limits: msrp::DecoderLimits::default(),
            msrp_chunk_size: 2048,
            seed: 0x5eed_1234_abcd_ef01,
        }
    }
}

/// Counters, for tests and logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests handed to a machine as initial requests.
    pub initial_requests: u64,
    /// Error responses sent before any machine ran (parse errors, 420, 501 …).
    pub rejected: u64,
    /// Invitee INVITEs sent.
    pub invites_sent: u64,
    /// Messages delivered to invitees over MSRP.
    pub delivered: u64,
    /// Sessions ended.
    pub sessions_ended: u64,
    /// New sessions refused with 503 by admission (limits reached or shutting down).
    pub shed: u64,
}

/// How long an MSRP connection may stay unbound (no session named by a first SEND, or our
/// connect not completed) before it is given up.
const MSRP_IDLE: Duration = Duration::from_secs(30);

struct SipConn {
    peer: SocketAddr,
    buf: BytesMut,
}

/// A client transaction some session started.
#[derive(Clone, Copy, Debug)]
struct ClientTsx {
    sid: SessionId,
    /// `None`: a request on the originator's side (BYE, forwarded MESSAGE).
    leg: Option<usize>,
    /// No final answer yet (counted in `client_in_flight`).
    in_flight: bool,
    /// While in flight it keeps its session alive (`Session::pending_client`).
    holds: bool,
}

/// The IM server's sans-IO core. See the module docs.
pub struct Endpoint<A: Application> {
    cfg: EndpointConfig,
    app: A,
    tsx: Transactions<SipBuilder>,
    out: VecDeque<Output>,
    sip_conns: HashMap<ConnId, SipConn>,
    sip_conn_by_peer: HashMap<SocketAddr, ConnId>,
    sessions: BTreeMap<SessionId, Session>,
    next_session: u64,
    /// Server INVITE/MESSAGE transaction → session.
    by_server_tsx: HashMap<TsxKey, SessionId>,
    /// Client transaction → its session and leg, and whether it is still in flight.
    by_client_tsx: HashMap<TsxKey, ClientTsx>,
    /// Client transactions in `by_client_tsx` still in flight (no final answer yet).
    client_in_flight: usize,
    /// (Call-ID, our tag) → (session, leg).
    by_dialog: HashMap<(String, String), (SessionId, Option<usize>)>,
    /// Sessions by their earliest timer.
    session_timers: SessionTimerIndex,
    /// MSRP connections waiting to be bound.
    idle_conns: IdleConns,
    /// Sessions the current input touched: only these can have ended or moved their timers.
    dirty: Vec<SessionId>,
    ids: Ids,
    msrp: msrp_relay::MsrpRelay,
    stats: Stats,
    shutting_down: bool,
}

impl<A: Application> Endpoint<A> {
    /// An endpoint running `app` with `cfg`.
    pub fn new(cfg: EndpointConfig, app: A) -> Self {
        let tsx = Transactions::new(
            TransactionsConfig {
                timers: cfg.timers,
                ..TransactionsConfig::default()
            },
            SipBuilder::new(cfg.sip_advertised),
        );
        let msrp = msrp_relay::MsrpRelay::new(&cfg);
        let ids = Ids::new(cfg.seed);
        Endpoint {
            cfg,
            app,
            tsx,
            out: VecDeque::new(),
            sip_conns: HashMap::new(),
            sip_conn_by_peer: HashMap::new(),
            sessions: BTreeMap::new(),
            next_session: 1,
            by_server_tsx: HashMap::new(),
            by_client_tsx: HashMap::new(),
            client_in_flight: 0,
            by_dialog: HashMap::new(),
            session_timers: SessionTimerIndex::default(),
            idle_conns: IdleConns::default(),
            dirty: Vec::new(),
            ids,
            msrp,
            stats: Stats::default(),
            shutting_down: false,
        }
    }

    /// Sessions alive now (originator legs with their invitee legs).
    pub fn live_sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The application.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// The application, mutably (e.g. to reload its group store).
    pub fn app_mut(&mut self) -> &mut A {
        &mut self.app
    }

    // ---- ids ----------------------------------------------------------------------------

    fn rand(&mut self) -> u64 {
        self.ids.rand()
    }

    fn token(&mut self, words: usize) -> String {
        self.ids.token(words)
    }

    fn random_bytes<const N: usize>(&mut self) -> [u8; N] {
        self.ids.random_bytes::<N>()
    }

    /// Arms (or re-arms) a timer of session `sid`.
    fn set_timer(&mut self, sid: SessionId, t: SessionTimer, at: Instant) {
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.timers.set(t, at);
            self.dirty.push(sid);
        }
    }

    /// Stops the timers of session `sid` that `pred` selects.
    fn stop_timers(&mut self, sid: SessionId, pred: impl Fn(&SessionTimer) -> bool) {
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.timers.stop(pred);
            self.dirty.push(sid);
        }
    }

    /// Remembers a client transaction the session `sid` started. An INVITE holds the
    /// session until it has a final answer (a 2xx that crosses our CANCEL still needs its
    /// ACK and BYE); a BYE or MESSAGE does not: its answer changes nothing for the session,
    /// so the session may end while the transaction layer finishes it.
    fn track_client(&mut self, key: TsxKey, sid: SessionId, leg: Option<usize>) {
        let holds = key.method() == &Method::Invite;
        if let Some(s) = self.sessions.get_mut(&sid)
            && holds
        {
            s.pending_client += 1;
        }
        self.client_in_flight += 1;
        let old = self.by_client_tsx.insert(
            key,
            ClientTsx {
                sid,
                leg,
                in_flight: true,
                holds,
            },
        );
        if let Some(old) = old
            && old.in_flight
        {
            self.client_done(old.sid, old.holds);
        }
    }

    /// The client transaction `key` may have left flight (final answer, timeout, error,
    /// terminated): update the counts `reap` and `is_idle` read instead of scanning.
    fn client_settled(&mut self, key: &TsxKey) {
        let in_flight = self.tsx.state(Role::Client, key).is_some_and(|st| {
            st != tsx::TsxState::Completed
                && st != tsx::TsxState::Accepted
                && st != tsx::TsxState::Terminated
        });
        if in_flight {
            return;
        }
        if let Some(e) = self.by_client_tsx.get_mut(key)
            && e.in_flight
        {
            e.in_flight = false;
            let (sid, holds) = (e.sid, e.holds);
            self.client_done(sid, holds);
        }
    }

    fn client_done(&mut self, sid: SessionId, holds: bool) {
        self.client_in_flight = self.client_in_flight.saturating_sub(1);
        if holds && let Some(s) = self.sessions.get_mut(&sid) {
            s.pending_client = s.pending_client.saturating_sub(1);
        }
        self.dirty.push(sid);
    }

    // ---- SIP input ----------------------------------------------------------------------

    fn agent(&self) -> String {
        self.cfg.sip_advertised.ip().to_string()
    }

    fn handle_sip_bytes(&mut self, now: Instant, peer: Peer, conn: Option<ConnId>, data: Bytes) {
        let routing = Routing::Local;
        let transport = if conn.is_some() {
            Transport::Stream
        } else {
            Transport::Datagram
        };
        // An ACK is never answered (RFC 3261 §17.2.1), so a broken one is dropped.
        let is_ack = data.starts_with(b"ACK ");
        let triage = match Message::parse_as(data, transport) {
            Ok(m) if m.is_request() => {
                // Stamp received/rport first, so every answer built from it carries them.
                let m = via::stamp_request(m, peer.addr, transport);
                validated(m, &self.cfg.policy, routing, &self.agent())
            }
            Ok(m) => validated(m, &self.cfg.policy, routing, &self.agent()),
            Err(f) if is_ack => Triage::Drop(f.error.to_string()),
            Err(f) => salvage_response(&f, &self.agent(), peer.addr),
        };
        match triage {
            Triage::Request(msg) => self.handle_request(now, peer, msg),
            Triage::Response(msg) => self.handle_response(now, msg),
            Triage::Respond(resp) => {
                self.stats.rejected += 1;
                tracing_log(
                    "sip",
                    &format!(
                        "rejected request from {} with {}",
                        peer.addr,
                        resp.status().map(u16::from).unwrap_or(0)
                    ),
                );
                self.send_sip(peer, resp.into_bytes());
            }
            Triage::Drop(why) => tracing_log("sip", &format!("dropped from {}: {why}", peer.addr)),
        }
    }

    fn send_sip(&mut self, peer: Peer, data: Bytes) {
        if peer.reliable {
            if let Some(&conn) = self.sip_conn_by_peer.get(&peer.addr) {
                self.out.push_back(Output::StreamSend { conn, data });
                return;
            }
            // The connection is gone: RFC 3261 §18.2.2 would open a new one to the Via
            // sent-by; clients we serve keep theirs open, so the response is dropped.
            tracing_log(
                "sip",
                &format!("no connection to {} for a response", peer.addr),
            );
            return;
        }
        self.out.push_back(Output::Datagram {
            local: None,
            to: peer.addr,
            data,
        });
    }

    fn handle_request(&mut self, now: Instant, peer: Peer, msg: Message) {
        let Some(tm) = tsx_message(&msg) else {
            return;
        };
        if tm.method == Method::Ack {
            // The ACK for a non-2xx final answer belongs to its INVITE server transaction
            // (§17.2.1), which absorbs it and stops retransmitting; the ACK for a 2xx is
            // end-to-end (§13.3.1.4): match it to the dialog directly.
            let non_2xx = self
                .tsx
                .state(Role::Server, &tm.key)
                .is_some_and(|st| st != tsx::TsxState::Accepted);
            if non_2xx {
                let _ = self.tsx.handle_request(now, tm, peer);
                self.drain_tsx(now);
            } else {
                self.in_dialog_request(now, peer, msg);
            }
            return;
        }
        self.tsx.builder_mut().remember(&tm.key, &msg);
        if self.tsx.handle_request(now, tm, peer).is_err() {
            return;
        }
        self.drain_tsx(now);
    }

    fn handle_response(&mut self, now: Instant, msg: Message) {
        let Some(tm) = tsx_message(&msg) else {
            return;
        };
        self.tsx.builder_mut().remember_response(&tm.key, &msg);
        let _ = self.tsx.handle_response(now, tm);
        self.drain_tsx(now);
    }

    /// Carries out what the transaction layer produced.
    fn drain_tsx(&mut self, now: Instant) {
        loop {
            while let Some(t) = self.tsx.poll_transmit() {
                self.send_sip(t.peer, t.bytes);
            }
            let Some(ev) = self.tsx.poll_event() else {
                break;
            };
            match ev {
                tsx::Event::Request { message, peer } => {
                    let Some(msg) = self.tsx.builder().request(&message.key).cloned() else {
                        continue;
                    };
                    let has_to_tag = msg.to().is_some_and(|t| t.tag().is_some());
                    if has_to_tag {
                        self.in_dialog_request(now, peer, msg);
                    } else {
                        self.initial_request(now, peer, msg, message.key);
                    }
                }
                tsx::Event::Ack { message, peer } => {
                    // The ACK's own bytes: its key is the INVITE's, so the remembered
                    // request under that key is the INVITE, not this ACK.
                    if let Ok(msg) = Message::parse(message.bytes.clone()) {
                        self.in_dialog_request(now, peer, msg);
                    }
                }
                tsx::Event::Response { message } => {
                    let resp = self.tsx.builder().response(&message.key).cloned();
                    if let Some(resp) = resp {
                        self.client_response(now, &message.key, resp);
                    }
                    self.client_settled(&message.key);
                }
                tsx::Event::Cancelled { invite } => self.cancelled(now, &invite),
                tsx::Event::Timeout { key, role, .. }
                | tsx::Event::TransportError { key, role } => {
                    if role == Role::Client {
                        self.client_timeout(now, &key);
                        self.client_settled(&key);
                    } else if let Some(sid) = self.by_server_tsx.get(&key).copied() {
                        // Timer H: the originator never ACKed our final response.
                        self.run_session_machines(now, sid, &Event::Timer(Timer::H));
                        self.end_session(now, sid, "no ACK for the final response (Timer H)");
                    }
                }
                tsx::Event::Terminated { key, role } => {
                    self.tsx.builder_mut().forget(&key);
                    match role {
                        Role::Server => {
                            self.by_server_tsx.remove(&key);
                        }
                        Role::Client => {
                            if let Some(e) = self.by_client_tsx.remove(&key)
                                && e.in_flight
                            {
                                self.client_done(e.sid, e.holds);
                            }
                        }
                    }
                }
            }
        }
        self.reap(now);
    }

    fn reply_simple(
        &mut self,
        now: Instant,
        key: &TsxKey,
        msg: &Message,
        status: u16,
        extra: &[(&str, String)],
    ) {
        let Some(code) = StatusCode::new(status) else {
            return;
        };
        let mut b = sip::build::ResponseBuilder::new(msg, code);
        if status > 100 {
            b = b.to_tag(&self.token(1));
        }
        for (n, v) in extra {
            b = b.header(n, v);
        }
        if let Ok(resp) = b.build() {
            let bytes = resp.into_bytes();
            let _ = self.tsx.respond(now, key, status, bytes);
            self.drain_tsx_transmits();
        }
    }

    fn drain_tsx_transmits(&mut self) {
        while let Some(t) = self.tsx.poll_transmit() {
            self.send_sip(t.peer, t.bytes);
        }
    }

    fn allow_header(&self) -> String {
        let mut m: Vec<String> = vec!["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"]
            .into_iter()
            .map(String::from)
            .collect();
        for x in self.app.methods() {
            let s = x.as_str().to_string();
            if !m.contains(&s) {
                m.push(s);
            }
        }
        m.join(", ")
    }

    fn initial_request(&mut self, now: Instant, peer: Peer, msg: Message, key: TsxKey) {
        let Some(method) = msg.method().cloned() else {
            return;
        };
        self.app.on_request(now);
        match method {
            Method::Options => {
                let allow = self.allow_header();
                let supported = self.cfg.policy.supported.join(", ");
                let accept = "application/sdp, multipart/mixed, application/resource-lists+xml, message/cpim, text/plain".to_string();
                self.reply_simple(
                    now,
                    &key,
                    &msg,
                    200,
                    &[
                        ("Allow", allow),
                        ("Accept", accept),
                        ("Supported", supported),
                    ],
                );
                return;
            }
            Method::Register => {
                let aor = msg.to().map(|t| t.uri().to_view()).unwrap_or_default();
                let expires = msg.expires().unwrap_or(3600);
                let contact = register_contact(&msg, peer.addr);
                if self.app.register(now, &aor, contact, expires) {
                    let mut extra = vec![("Expires", expires.to_string())];
                    if let Some(c) = msg.header(HeaderName::Contact) {
                        extra.push(("Contact", c.to_string()));
                    }
                    self.reply_simple(now, &key, &msg, 200, &extra);
                } else {
                    let allow = self.allow_header();
                    self.reply_simple(now, &key, &msg, 405, &[("Allow", allow)]);
                }
                return;
            }
            Method::Bye | Method::Cancel | Method::Prack | Method::Update | Method::Info => {
                // Out of any dialog: nothing to end or update.
                self.reply_simple(now, &key, &msg, 481, &[]);
                return;
            }
            Method::Other(_) => {
                self.stats.rejected += 1;
                let allow = self.allow_header();
                self.reply_simple(now, &key, &msg, 501, &[("Allow", allow)]);
                return;
            }
            _ => {}
        }
        if msg.max_forwards() == Some(0) {
            // Every initial request a machine handles may make the server send requests
            // on (invitee INVITEs, exploded MESSAGEs): with no hop left, refuse it
            // (RFC 3261 §16.3 step 3; OPTIONS was answered above).
            self.stats.rejected += 1;
            let w = warning(&self.agent(), "Max-Forwards is 0");
            self.reply_simple(now, &key, &msg, 483, &[("Warning", w)]);
            return;
        }
        let Some(machine) = self.app.initial(&method) else {
            let allow = self.allow_header();
            self.reply_simple(now, &key, &msg, 405, &[("Allow", allow)]);
            return;
        };
        if self.shutting_down
            || self.sessions.len() >= self.cfg.max_sessions
            || self.tsx.len() >= self.cfg.max_transactions
        {
            // RFC 3261 §21.5.4: overloaded; Retry-After says when to try again.
            self.stats.shed += 1;
            let after = self.cfg.retry_after.as_secs().max(1).to_string();
            self.reply_simple(now, &key, &msg, 503, &[("Retry-After", after)]);
            return;
        }
        let facts = match facts::build(
            &msg,
            peer.addr.ip(),
            &self.cfg.trusted_hosts,
            &self.cfg.body_limits,
        ) {
            Ok(f) => f,
            Err(e) => {
                self.stats.rejected += 1;
                let w = warning(&self.agent(), &e.to_string());
                self.reply_simple(now, &key, &msg, 400, &[("Warning", w)]);
                return;
            }
        };
        self.stats.initial_requests += 1;
        let id = SessionId(self.next_session);
        self.next_session += 1;
        let local_tag = self.token(1);
        let focus = format!(
            "sip:conf-{}-{}@{}",
            id.0,
            self.token(1).get(..8).unwrap_or("0"),
            self.cfg.sip_advertised
        );
        let msrp_sid = self.ids.msrp_session_id();
        let call_id = msg.call_id().unwrap_or("").to_string();
        let session = Session::new(
            id,
            call_id.clone(),
            local_tag.clone(),
            focus,
            msg,
            facts,
            machine,
            key.clone(),
            peer,
            msrp_sid,
        );
        self.by_server_tsx.insert(key, id);
        self.by_dialog.insert((call_id, local_tag), (id, None));
        self.sessions.insert(id, session);
        self.set_timer(id, SessionTimer::Lifetime, now + self.cfg.session_lifetime);
        let event = Event::InitialRequest(method);
        self.run_session_machines(now, id, &event);
    }

    fn in_dialog_request(&mut self, now: Instant, peer: Peer, msg: Message) {
        let Some(method) = msg.method().cloned() else {
            return;
        };
        let call_id = msg.call_id().unwrap_or("").to_string();
        let to_tag = msg
            .to()
            .and_then(|t| t.tag().map(str::to_string))
            .unwrap_or_default();
        let key = tsx_message(&msg).map(|t| t.key);
        let Some(&(sid, leg)) = self.by_dialog.get(&(call_id, to_tag)) else {
            if method != Method::Ack
                && let Some(key) = key
            {
                self.reply_simple(now, &key, &msg, 481, &[]);
            }
            return;
        };
        self.dirty.push(sid);
        match method {
            Method::Ack => {
                if let Some(s) = self.sessions.get_mut(&sid)
                    && leg.is_none()
                    && !s.acked
                {
                    s.acked = true;
                    if let Some(d) = s.dialog.as_mut() {
                        d.confirmed = true;
                    }
                    self.stop_timers(sid, |k| matches!(k, SessionTimer::OkRetransmit(_)));
                    self.msrp_after_ack(now, sid);
                    self.run_session_machines(now, sid, &Event::InDialogRequest(Method::Ack));
                }
            }
            Method::Bye => {
                // A dialog that does not exist yet or that the peer already ended with its
                // own BYE: 481 (RFC 3261 §15.1.2).
                let dialog = self.sessions.get(&sid).and_then(|s| match leg {
                    None => s.dialog.as_ref(),
                    Some(i) => s.legs.get(i).and_then(|l| l.dialog.as_ref()),
                });
                let status = if dialog.is_some_and(|d| !d.remote_bye) {
                    200
                } else {
                    481
                };
                if let Some(key) = key {
                    self.reply_simple(now, &key, &msg, status, &[]);
                }
                if status != 200 {
                    self.reap(now);
                    return;
                }
                match leg {
                    None => {
                        let mut held = false;
                        if let Some(s) = self.sessions.get_mut(&sid) {
                            s.originator_gone = true;
                            held = s.held.is_some();
                            if let Some(d) = s.dialog.as_mut() {
                                d.ended = true;
                                d.remote_bye = true;
                            }
                        }
                        self.run_session_machines(now, sid, &Event::InDialogRequest(Method::Bye));
                        self.msrp.close_originator(sid, &mut self.out);
                        if !held {
                            // The originator left before its message was complete: there
                            // is nothing to deliver, so the invitee legs are ended
                            // (pending ones CANCELled, connected ones BYE'd). With a message
                            // held, delivery goes on and the legs end by their machines.
                            self.end_session(now, sid, "originator left before its message");
                        }
                    }
                    Some(i) => {
                        if let Some(l) = self.sessions.get_mut(&sid).and_then(|s| s.legs.get_mut(i))
                        {
                            if let Some(d) = l.dialog.as_mut() {
                                d.ended = true;
                                d.remote_bye = true;
                            }
                            if l.status != LegStatus::Failed {
                                l.status = LegStatus::Ended;
                            }
                        }
                        self.run_leg_machine(now, sid, i, &Event::InDialogRequest(Method::Bye));
                        self.msrp.close_leg(sid, i, &mut self.out);
                    }
                }
                self.check_settled(now, sid);
            }
            _ => {
                if let Some(key) = key {
                    let allow = self.allow_header();
                    self.reply_simple(now, &key, &msg, 405, &[("Allow", allow)]);
                }
            }
        }
        let _ = peer;
        self.reap(now);
    }

    fn cancelled(&mut self, now: Instant, invite: &TsxKey) {
        let Some(&sid) = self.by_server_tsx.get(invite) else {
            return;
        };
        self.dirty.push(sid);
        let answered = self
            .sessions
            .get(&sid)
            .is_some_and(|s| s.answered.is_some());
        if !answered && let Some(msg) = self.sessions.get(&sid).map(|s| s.request.clone()) {
            let tag = self
                .sessions
                .get(&sid)
                .map(|s| s.local_tag.clone())
                .unwrap_or_default();
            if let Some(resp) = StatusCode::new(487).and_then(|c| {
                sip::build::ResponseBuilder::new(&msg, c)
                    .to_tag(&tag)
                    .build()
                    .ok()
            }) {
                let _ = self.tsx.respond(now, invite, 487, resp.into_bytes());
                self.drain_tsx_transmits();
            }
            if let Some(s) = self.sessions.get_mut(&sid) {
                s.answered = Some(487);
                s.originator_gone = true;
            }
        }
        self.end_session(now, sid, "cancelled by the originator");
    }

    // ---- machines -----------------------------------------------------------------------

    /// Runs every live machine of the session on `event`, then executes their actions.
    fn run_session_machines(&mut self, now: Instant, sid: SessionId, event: &Event) {
        self.run_session_machines_at(now, sid, event, None);
    }

    /// Runs the session's machines (only machine `only` when given) on `event`.
    fn run_session_machines_at(
        &mut self,
        now: Instant,
        sid: SessionId,
        event: &Event,
        only: Option<usize>,
    ) {
        // Each action is kept with the index of the machine that produced it, so that
        // `invite each` can ask that machine for its invitee-leg procedure.
        self.dirty.push(sid);
        let mut pending: VecDeque<(usize, Action)> = VecDeque::new();
        {
            let env = Env {
                config: &self.cfg.spec,
                directory: self.app.directory(),
                router: self.app.router(),
            };
            let Some(s) = self.sessions.get_mut(&sid) else {
                return;
            };
            let facts = s.facts.clone();
            for (i, m) in s.machines.iter_mut().enumerate() {
                if only.is_some_and(|o| o != i) {
                    continue;
                }
                if m.is_final() && !matches!(event, Event::InitialRequest(_)) {
                    continue;
                }
                pending.extend(
                    m.handle(now, event, &facts, &env)
                        .into_iter()
                        .map(|a| (i, a)),
                );
            }
        }
        let mut calls = 0;
        while let Some((from, a)) = pending.pop_front() {
            if let ActionKind::Call(clause) = &a.kind {
                // `call`: run the callee on the same event and facts (bounded, so a spec
                // that calls itself cannot loop forever).
                calls += 1;
                if calls > 16 {
                    continue;
                }
                let Some(mut callee) = self.app.by_clause(clause) else {
                    log_action(&self.sessions, sid, &a, "no procedure for this clause");
                    continue;
                };
                log_action(&self.sessions, sid, &a, "");
                let actions = {
                    let env = Env {
                        config: &self.cfg.spec,
                        directory: self.app.directory(),
                        router: self.app.router(),
                    };
                    let facts = self
                        .sessions
                        .get(&sid)
                        .map(|s| s.facts.clone())
                        .unwrap_or_default();
                    callee.handle(now, event, &facts, &env)
                };
                let idx = match self.sessions.get_mut(&sid) {
                    Some(s) => {
                        s.machines.push(callee);
                        s.machines.len() - 1
                    }
                    None => return,
                };
                for (i, x) in actions.into_iter().enumerate() {
                    pending.insert(i, (idx, x));
                }
                continue;
            }
            self.execute(now, sid, None, Some(from), a);
        }
    }

    fn run_leg_machine(&mut self, now: Instant, sid: SessionId, leg: usize, event: &Event) {
        self.dirty.push(sid);
        let actions = {
            let env = Env {
                config: &self.cfg.spec,
                directory: self.app.directory(),
                router: self.app.router(),
            };
            let Some(s) = self.sessions.get_mut(&sid) else {
                return;
            };
            let facts = s.legs.get(leg).map(|l| l.facts.clone()).unwrap_or_default();
            let Some(m) = s.legs.get_mut(leg).and_then(|l| l.machine.as_mut()) else {
                return;
            };
            if m.is_final() {
                return;
            }
            m.handle(now, event, &facts, &env)
        };
        for a in actions {
            self.execute(now, sid, Some(leg), None, a);
        }
    }

    fn execute(
        &mut self,
        now: Instant,
        sid: SessionId,
        leg: Option<usize>,
        from: Option<usize>,
        a: Action,
    ) {
        log_action(&self.sessions, sid, &a, "");
        let origin = a.origin;
        match a.kind {
            ActionKind::Respond(reply) => self.respond(now, sid, origin, reply),
            ActionKind::InviteEach(r) => self.invite_each(now, sid, r, from),
            ActionKind::ForwardEach(r) => self.forward_each(now, sid, r),
            ActionKind::Cancel => match leg {
                Some(i) => self.cancel_leg(now, sid, i),
                None => {
                    let n = self.sessions.get(&sid).map_or(0, |s| s.legs.len());
                    for i in 0..n {
                        self.cancel_leg(now, sid, i);
                    }
                }
            },
            ActionKind::Bye => match leg {
                Some(i) => self.bye_leg(now, sid, i),
                None => self.bye_originator(now, sid),
            },
            ActionKind::StartTimer(t, after) => {
                let id = spec_timer_id(t);
                let mi = from.unwrap_or(0);
                self.set_timer(sid, SessionTimer::Spec(leg, mi, id), now + after);
            }
            ActionKind::StopTimer(t) => {
                let id = spec_timer_id(t);
                let mi = from.unwrap_or(0);
                self.stop_timers(sid, |k| *k == SessionTimer::Spec(leg, mi, id));
            }
            ActionKind::Deliver => {
                match leg {
                    Some(i) => {
                        if let Some(l) = self.sessions.get_mut(&sid).and_then(|s| s.legs.get_mut(i))
                        {
                            l.want_delivery = true;
                        }
                    }
                    None => {
                        if let Some(s) = self.sessions.get_mut(&sid) {
                            for l in &mut s.legs {
                                l.want_delivery = true;
                            }
                        }
                    }
                }
                self.try_deliveries(now, sid);
            }
            ActionKind::Report { success } => self.report(now, sid, success),
            ActionKind::Log(_) | ActionKind::Call(_) => {}
        }
    }

    fn respond(&mut self, now: Instant, sid: SessionId, origin: Origin, reply: Reply) {
        self.dirty.push(sid);
        let Some(s) = self.sessions.get(&sid) else {
            return;
        };
        if s.answered.is_some() {
            log_action(
                &self.sessions,
                sid,
                &Action {
                    origin,
                    kind: ActionKind::Respond(reply),
                },
                "already answered; ignored",
            );
            return;
        }
        let request = s.request.clone();
        let key = s.server_tsx.clone();
        let local_tag = s.local_tag.clone();
        let focus = s.focus.clone();
        let offer = s.facts.sdp.clone();
        let msrp_sid = s.msrp_session.clone();
        let mut status = reply.status;
        let mut reason = reply.reason.to_string();
        let mut warning_text = reply.warning.as_ref().map(|w| w.to_string());
        let mut body: Option<(String, Bytes)> = None;
        let mut role = None;
        if !reply.sdp_answer.is_empty() {
            match offer {
                Some(offer) => {
                    let local = LocalMedia {
                        address: self.cfg.msrp_advertised.ip().to_string(),
                        msrp_port: self.cfg.msrp_advertised.port(),
                        path: own_msrp_path(self.cfg.msrp_advertised, &msrp_sid),
                        session_id: self.rand() >> 12,
                        session_version: 1,
                    };
                    match answer::build_answer(&offer, &reply.sdp_answer, &local, &self.cfg.spec) {
                        Ok(a) => {
                            role = Some(a.clone());
                            body = Some(("application/sdp".into(), Bytes::from(a.sdp)));
                        }
                        Err(e) => {
                            // The spec asked for an answer the offer cannot support
                            // (e.g. no common accept-types): 488 with the reason.
                            status = 488;
                            reason = "Not Acceptable Here".into();
                            warning_text = Some(e.to_string());
                        }
                    }
                }
                None => {
                    status = 488;
                    reason = "Not Acceptable Here".into();
                    warning_text = Some("an SDP offer is required".into());
                }
            }
        }
        let Some(code) = StatusCode::new(status) else {
            return;
        };
        let mut b = sip::build::ResponseBuilder::new(&request, code).reason(&reason);
        if status > 100 {
            b = b.to_tag(&local_tag);
        }
        for (name, value) in &reply.headers {
            let v = match value {
                crate::machine::HeaderValue::Text(t) => t.to_string(),
                crate::machine::HeaderValue::FocusContact => format!("<{focus}>;isfocus"),
            };
            b = b.header(name, &v);
        }
        if let Some(w) = &warning_text {
            b = b.header("Warning", &warning(&self.agent(), w));
        }
        b = b.header(
            "Reason",
            &format!("SIP;text=\"clause {} rule {}\"", origin.clause, origin.rule),
        );
        if let Some((ct, data)) = body.clone() {
            b = b.body(&ct, data);
        }
        let Ok(resp) = b.build() else {
            return;
        };
        let bytes = resp.into_bytes();
        let _ = self.tsx.respond(now, &key, status, bytes.clone());
        self.drain_tsx_transmits();
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.answered = Some(status);
            if (200..300).contains(&status) {
                s.dialog = Some(Dialog::server_side(&s.request, &local_tag, s.peer));
                s.ok_bytes = Some(bytes);
                s.ok_at = Some(now);
                if let Some(a) = role {
                    s.msrp_answer = Some(a);
                }
            } else if status >= 300 {
                s.originator_gone = true;
            }
        }
        if (200..300).contains(&status) && request.method() == Some(&Method::Invite) {
            // Over UDP the 2xx is retransmitted from T1 on; over TCP it is not, but the ACK
            // is still due within 64·T1 either way (§13.3.1.4).
            let reliable = self.sessions.get(&sid).is_some_and(|s| s.peer.reliable);
            let first = if reliable {
                self.cfg.timers.t1 * 64
            } else {
                self.cfg.timers.t1
            };
            self.set_timer(sid, SessionTimer::OkRetransmit(1), now + first);
            self.msrp_after_answer(now, sid);
        }
        self.check_settled(now, sid);
    }

    // ---- invitee legs -------------------------------------------------------------------

    fn recipients(&self, sid: SessionId, r: Recipients) -> Vec<(Uri, Option<String>)> {
        let Some(s) = self.sessions.get(&sid) else {
            return Vec::new();
        };
        match r {
            Recipients::RecipientList => s
                .facts
                .recipients
                .iter()
                .map(|e| (e.uri.clone(), e.display_name.clone()))
                .collect(),
            Recipients::GroupMembers => {
                let members = self
                    .app
                    .directory()
                    .members(&s.facts.request_uri)
                    .unwrap_or_default();
                let mut out: Vec<(Uri, Option<String>)> = Vec::new();
                for m in members {
                    if m.same_identity(&s.facts.originator)
                        || out.iter().any(|(u, _)| u.same_identity(&m))
                    {
                        continue;
                    }
                    out.push((m, None));
                }
                out
            }
        }
    }

    fn invite_each(&mut self, now: Instant, sid: SessionId, r: Recipients, from: Option<usize>) {
        let targets = self.recipients(sid, r);
        let history = match (r, self.sessions.get(&sid)) {
            (Recipients::RecipientList, Some(s)) => Some(
                crate::proto::body::resource_lists::write_history(&s.facts.recipients),
            ),
            _ => None,
        };
        for (uri, _name) in targets {
            let route = self.app.router().route(&uri);
            let leg_sid = self.ids.msrp_session_id();
            let asked = from.and_then(|i| self.sessions.get(&sid)?.machines.get(i)?.invitee_leg());
            let Some(machine) = asked.or_else(|| self.app.invitee_leg()) else {
                continue;
            };
            let idx = self.sessions.get(&sid).map_or(0, |s| s.legs.len());
            let call_id = self.ids.call_id(self.cfg.sip_advertised.ip());
            let tag = self.token(1);
            let branch = format!("{}{}", tsx::MAGIC_COOKIE, self.token(1));
            let Some((focus, originator, facts)) = self.sessions.get(&sid).map(|s| {
                (
                    s.focus.clone(),
                    s.facts.originator.raw.clone(),
                    s.facts.clone(),
                )
            }) else {
                return;
            };
            let local = LocalMedia {
                address: self.cfg.msrp_advertised.ip().to_string(),
                msrp_port: self.cfg.msrp_advertised.port(),
                path: own_msrp_path(self.cfg.msrp_advertised, &leg_sid),
                session_id: 1 + idx as u64,
                session_version: 1,
            };
            let sdp = answer::build_offer(&local, &self.cfg.spec, &OfferOptions::default());
            let body = match &history {
                Some(h) => {
                    use crate::proto::body::mime::{Disposition, MediaType};
                    use crate::proto::body::multipart::{self, OutPart};
                    let boundary = format!("imspec-{}", self.token(1));
                    let parts = [
                        OutPart::new(
                            &MediaType::new("application", "sdp"),
                            Bytes::from(sdp.clone()),
                        ),
                        OutPart::new(
                            &MediaType::new("application", "resource-lists+xml"),
                            Bytes::from(h.clone()),
                        )
                        .disposition(
                            &Disposition::new("recipient-list-history")
                                .with_param("handling", Some("optional")),
                        ),
                    ];
                    match multipart::write(&boundary, &parts) {
                        Ok(b) => (multipart::content_type(&boundary).to_string(), b),
                        Err(_) => ("application/sdp".to_string(), Bytes::from(sdp.clone())),
                    }
                }
                None => ("application/sdp".to_string(), Bytes::from(sdp)),
            };
            let via = format!(
                "SIP/2.0/UDP {};branch={branch};rport",
                self.cfg.sip_advertised
            );
            let from_addr = format!("<{focus}>");
            let mut b = sip::build::RequestBuilder::new(Method::Invite, &uri.raw)
                .via_raw(&via)
                .from(&from_addr, &tag)
                .to(&format!("<{}>", uri.raw), None)
                .call_id(&call_id)
                .cseq(1)
                .max_forwards(70)
                .contact(&format!("<{focus}>;isfocus"))
                .header("Referred-By", &format!("<{originator}>"))
                .header("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS")
                .body(&body.0, body.1);
            if let Some(Route::OutboundProxy(p)) = route {
                b = b.route(&format!("<sip:{p};lr>"));
            }
            let dest = match route {
                Some(Route::Direct(a)) | Some(Route::OutboundProxy(a)) => Some(a),
                None => None,
            };
            let mut leg = Leg::new(
                uri.clone(),
                call_id.clone(),
                tag.clone(),
                machine,
                leg_sid,
                facts,
            );
            let built = b.build();
            let Some(s) = self.sessions.get_mut(&sid) else {
                return;
            };
            match (dest, built) {
                (Some(dest), Ok(invite)) => {
                    let peer = Peer {
                        addr: dest,
                        reliable: false,
                    };
                    leg.peer = Some(peer);
                    leg.invite = Some(invite.clone());
                    s.legs.push(leg);
                    self.by_dialog.insert((call_id, tag), (sid, Some(idx)));
                    if let Some(tm) = tsx_message(&invite) {
                        self.tsx.builder_mut().remember(&tm.key, &invite);
                        self.track_client(tm.key.clone(), sid, Some(idx));
                        if let Some(s) = self.sessions.get_mut(&sid)
                            && let Some(l) = s.legs.get_mut(idx)
                        {
                            l.invite_key = Some(tm.key.clone());
                        }
                        if self.tsx.send_request(now, tm, peer).is_ok() {
                            self.stats.invites_sent += 1;
                        }
                        self.drain_tsx_transmits();
                    }
                    self.msrp
                        .register_leg(sid, idx, &self.sessions[&sid].legs[idx].msrp_session);
                }
                _ => {
                    // Unroutable invitee: the leg fails at once, as if Timer B fired.
                    leg.status = LegStatus::Failed;
                    s.legs.push(leg);
                    tracing_log("leg", &format!("no route to {}", uri.raw));
                    self.run_leg_machine(now, sid, idx, &Event::Timer(Timer::B));
                }
            }
        }
        self.check_settled(now, sid);
    }

    fn forward_each(&mut self, now: Instant, sid: SessionId, r: Recipients) {
        let targets = self.recipients(sid, r);
        let Some(s) = self.sessions.get(&sid) else {
            return;
        };
        let request = s.request.clone();
        let facts = s.facts.clone();
        // The payload: the non-list parts of the original body (RFC 5365 §7).
        let (ct, payload) = page_mode_payload(&request, &self.cfg.body_limits);
        let history = matches!(r, Recipients::RecipientList)
            .then(|| crate::proto::body::resource_lists::write_history(&facts.recipients));
        // Each copy carries the hop budget the original had left, less this hop, so that a
        // list or group that names the exploder again (directly or through a proxy) runs
        // out of hops and ends in 483 instead of looping; 0 never gets here (refused above).
        let max_forwards = request
            .max_forwards()
            .map_or(70, |m| m.saturating_sub(1).min(70));
        for (uri, _) in targets {
            let route = self.app.router().route(&uri);
            let dest = match route {
                Some(Route::Direct(a)) | Some(Route::OutboundProxy(a)) => a,
                None => {
                    tracing_log("page-mode", &format!("no route to {}", uri.raw));
                    continue;
                }
            };
            let call_id = self.ids.call_id(self.cfg.sip_advertised.ip());
            let branch = format!("{}{}", tsx::MAGIC_COOKIE, self.token(1));
            let tag = self.token(1);
            let (body_ct, body) = match &history {
                Some(h) => {
                    use crate::proto::body::mime::{Disposition, MediaType};
                    use crate::proto::body::multipart::{self, OutPart};
                    let boundary = format!("imspec-{}", self.token(1));
                    let mt = crate::proto::body::mime::MediaType::parse(&ct)
                        .unwrap_or_else(|_| MediaType::new("text", "plain"));
                    let parts = [
                        OutPart::new(&mt, payload.clone()),
                        OutPart::new(
                            &MediaType::new("application", "resource-lists+xml"),
                            Bytes::from(h.clone()),
                        )
                        .disposition(
                            &Disposition::new("recipient-list-history")
                                .with_param("handling", Some("optional")),
                        ),
                    ];
                    match multipart::write(&boundary, &parts) {
                        Ok(b) => (multipart::content_type(&boundary).to_string(), b),
                        Err(_) => (ct.clone(), payload.clone()),
                    }
                }
                None => (ct.clone(), payload.clone()),
            };
            let mut b = sip::build::RequestBuilder::new(Method::Message, &uri.raw)
                .via_raw(&format!(
                    "SIP/2.0/UDP {};branch={branch};rport",
                    self.cfg.sip_advertised
                ))
                .from(&format!("<{}>", facts.originator.raw), &tag)
                .to(&format!("<{}>", uri.raw), None)
                .call_id(&call_id)
                .cseq(1)
                .max_forwards(max_forwards)
                .header("Referred-By", &format!("<{}>", facts.originator.raw))
                .body(&body_ct, body);
            if let Some(Route::OutboundProxy(p)) = route {
                b = b.route(&format!("<sip:{p};lr>"));
            }
            if let Ok(m) = b.build()
                && let Some(tm) = tsx_message(&m)
            {
                self.tsx.builder_mut().remember(&tm.key, &m);
                self.track_client(tm.key.clone(), sid, None);
                let _ = self.tsx.send_request(
                    now,
                    tm,
                    Peer {
                        addr: dest,
                        reliable: false,
                    },
                );
                self.drain_tsx_transmits();
            }
        }
    }

    fn cancel_leg(&mut self, now: Instant, sid: SessionId, i: usize) {
        let Some(l) = self.sessions.get_mut(&sid).and_then(|s| s.legs.get_mut(i)) else {
            return;
        };
        if l.status != LegStatus::Pending {
            return;
        }
        l.cancelled = true;
        if let Some(key) = l.invite_key.clone() {
            let _ = self.tsx.cancel(now, &key);
            self.drain_tsx_transmits();
        }
    }

    fn bye_leg(&mut self, now: Instant, sid: SessionId, i: usize) {
        let req = {
            let Some(l) = self.sessions.get_mut(&sid).and_then(|s| s.legs.get_mut(i)) else {
                return;
            };
            let Some(d) = l.dialog.as_mut() else {
                return;
            };
            if d.ended {
                return;
            }
            d.ended = true;
            l.status = if l.status == LegStatus::Failed {
                LegStatus::Failed
            } else {
                LegStatus::Ended
            };
            d.request(Method::Bye, self.cfg.sip_advertised)
        };
        self.msrp.close_leg(sid, i, &mut self.out);
        self.send_in_dialog(now, sid, Some(i), req);
    }

    fn bye_originator(&mut self, now: Instant, sid: SessionId) {
        let req = {
            let Some(s) = self.sessions.get_mut(&sid) else {
                return;
            };
            let Some(d) = s.dialog.as_mut() else {
                return;
            };
            if d.ended || !d.confirmed {
                return;
            }
            d.ended = true;
            s.originator_gone = true;
            d.request(Method::Bye, self.cfg.sip_advertised)
        };
        self.msrp.close_originator(sid, &mut self.out);
        self.send_in_dialog(now, sid, None, req);
    }

    fn send_in_dialog(
        &mut self,
        now: Instant,
        sid: SessionId,
        leg: Option<usize>,
        req: Option<(Message, Peer)>,
    ) {
        let Some((m, peer)) = req else {
            return;
        };
        if m.method() == Some(&Method::Ack) {
            self.send_sip(peer, m.into_bytes());
            return;
        }
        if let Some(tm) = tsx_message(&m) {
            self.tsx.builder_mut().remember(&tm.key, &m);
            self.track_client(tm.key.clone(), sid, leg);
            let _ = self.tsx.send_request(now, tm, peer);
            self.drain_tsx_transmits();
        }
    }

    fn client_response(&mut self, now: Instant, key: &TsxKey, resp: Message) {
        let Some(&ClientTsx { sid, leg, .. }) = self.by_client_tsx.get(key) else {
            return;
        };
        self.dirty.push(sid);
        let status = resp.status().map(u16::from).unwrap_or(0);
        let is_invite = key.method() == &Method::Invite;
        let Some(i) = leg else {
            return;
        };
        if !is_invite {
            // BYE or MESSAGE answered: nothing else to do for the leg.
            return;
        }
        let Some(l) = self.sessions.get_mut(&sid).and_then(|s| s.legs.get_mut(i)) else {
            return;
        };
        l.facts.status = Some(status);
        if (200..300).contains(&status) {
            let first = l.dialog.is_none();
            if first {
                if let Some(inv) = l.invite.as_ref() {
                    l.dialog = Dialog::client_side(inv, &resp, l.peer);
                }
                l.status = if l.cancelled {
                    LegStatus::Ended
                } else {
                    LegStatus::Connected
                };
                l.answer_sdp = crate::proto::sdp::facts(&resp.body()).ok();
            }
            // ACK every 2xx (retransmissions included, §13.2.2.4).
            let ack = l
                .dialog
                .as_mut()
                .and_then(|d| d.ack(self.cfg.sip_advertised));
            let cancelled = l.cancelled;
            self.send_in_dialog(now, sid, Some(i), ack);
            if !first {
                return;
            }
            if cancelled {
                // The 2xx crossed our CANCEL: the leg is not wanted any more.
                self.bye_leg(now, sid, i);
                self.check_settled(now, sid);
                return;
            }
            self.msrp_leg_answered(now, sid, i);
        } else if status >= 300 {
            l.status = LegStatus::Failed;
        }
        self.run_leg_machine(now, sid, i, &Event::Response(status));
        self.check_settled(now, sid);
    }

    fn client_timeout(&mut self, now: Instant, key: &TsxKey) {
        let Some(&ClientTsx { sid, leg, .. }) = self.by_client_tsx.get(key) else {
            return;
        };
        self.dirty.push(sid);
        let Some(i) = leg else {
            return;
        };
        if key.method() != &Method::Invite {
            return;
        }
        if let Some(l) = self.sessions.get_mut(&sid).and_then(|s| s.legs.get_mut(i))
            && l.status == LegStatus::Pending
        {
            l.status = LegStatus::Failed;
        }
        self.run_leg_machine(now, sid, i, &Event::Timer(Timer::B));
        self.check_settled(now, sid);
    }

    /// Sends `LegsSettled` once every leg is final and every connected leg's delivery has
    /// an outcome (or no message will come); then ends the legs that are done.
    fn check_settled(&mut self, now: Instant, sid: SessionId) {
        self.dirty.push(sid);
        self.settle(now, sid);
        self.end_finished_legs(now, sid);
    }

    /// A pager-mode leg exists to carry one copy of the message. Once the legs have
    /// settled (each connected leg's copy has an outcome) and the originator's side is over
    /// (the spec BYE'd it after its report, or the originator hung up), nothing can come
    /// over a connected leg any more: BYE it, so that the session can end. The invitee-leg
    /// procedure may BYE a leg itself; `bye_leg` ignores a leg already ended.
    fn end_finished_legs(&mut self, now: Instant, sid: SessionId) {
        let Some(s) = self.sessions.get(&sid) else {
            return;
        };
        let originator_over = s.originator_gone || s.dialog.as_ref().is_some_and(|d| d.ended);
        if !s.settled_sent || !originator_over {
            return;
        }
        let connected: Vec<usize> = s
            .legs
            .iter()
            .enumerate()
            .filter(|(_, l)| l.status == LegStatus::Connected)
            .map(|(i, _)| i)
            .collect();
        for i in connected {
            self.bye_leg(now, sid, i);
        }
    }

    fn settle(&mut self, now: Instant, sid: SessionId) {
        let Some(s) = self.sessions.get(&sid) else {
            return;
        };
        if s.settled_sent || s.legs.is_empty() {
            return;
        }
        let done = s.legs.iter().all(|l| match l.status {
            LegStatus::Pending => false,
            LegStatus::Connected => l.delivery.is_some() || s.originator_gone,
            LegStatus::Failed | LegStatus::Ended => true,
        });
        if !done {
            return;
        }
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.settled_sent = true;
            s.facts.legs = s.leg_counts();
        }
        for l in self
            .sessions
            .get(&sid)
            .map(|s| s.outcomes())
            .unwrap_or_default()
        {
            tracing_log("outcome", &l);
        }
        self.run_session_machines(now, sid, &Event::LegsSettled);
    }

    // ---- MSRP glue ----------------------------------------------------------------------

    fn msrp_after_answer(&mut self, now: Instant, sid: SessionId) {
        let Some(s) = self.sessions.get(&sid) else {
            return;
        };
        let Some(a) = s.msrp_answer.clone() else {
            return;
        };
        self.msrp.register_originator(sid, &s.msrp_session, &a);
        let _ = now;
    }

    fn msrp_after_ack(&mut self, now: Instant, sid: SessionId) {
        // An active answerer connects once the dialog is confirmed.
        if let Some(conn) = self.msrp.connect_originator(sid, &mut self.out) {
            self.idle_conns.set(conn, now + MSRP_IDLE);
        }
        if self
            .sessions
            .get(&sid)
            .is_some_and(|s| s.msrp_answer.is_some())
        {
            self.set_timer(sid, SessionTimer::OriginatorMsrp, now + MSRP_IDLE);
        }
    }

    fn msrp_leg_answered(&mut self, now: Instant, sid: SessionId, i: usize) {
        let Some(l) = self.sessions.get(&sid).and_then(|s| s.legs.get(i)) else {
            return;
        };
        let Some(ans) = l.answer_sdp.clone() else {
            return;
        };
        if let Some(conn) = self.msrp.leg_answered(sid, i, &ans, &mut self.out) {
            self.idle_conns.set(conn, now + MSRP_IDLE);
        }
    }

    fn try_deliveries(&mut self, now: Instant, sid: SessionId) {
        let Some(s) = self.sessions.get(&sid) else {
            return;
        };
        let Some(held) = s.held.clone() else {
            return;
        };
        let ready: Vec<usize> = s
            .legs
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                l.status == LegStatus::Connected && l.want_delivery && !l.delivery_started
            })
            .map(|(i, _)| i)
            .filter(|&i| self.msrp.leg_ready(sid, i))
            .collect();
        for i in ready {
            if let Some(l) = self.sessions.get_mut(&sid).and_then(|s| s.legs.get_mut(i)) {
                l.delivery_started = true;
            }
            let tid_rand = self.random_bytes::<10>();
            let mid_rand = self.random_bytes::<10>();
            self.msrp
                .deliver(sid, i, &held, tid_rand, mid_rand, &mut self.out);
        }
        let _ = now;
    }

    fn report(&mut self, now: Instant, sid: SessionId, success: bool) {
        let tid = self.random_bytes::<10>();
        self.msrp
            .report_to_originator(sid, success, tid, &mut self.out);
        let _ = now;
    }

    fn handle_msrp_input(&mut self, now: Instant, conn: ConnId, data: Bytes) {
        let mut events = Vec::new();
        let tid = self.random_bytes::<10>();
        self.msrp
            .handle_bytes(conn, &data, &mut events, tid, &mut self.out);
        for ev in events {
            match ev {
                msrp_relay::RelayEvent::OriginatorBound(sid) => {
                    self.idle_conns.remove(conn);
                    self.run_session_machines(
                        now,
                        sid,
                        &Event::Msrp(crate::machine::MsrpEvent::Connected),
                    );
                    self.try_deliveries(now, sid);
                }
                msrp_relay::RelayEvent::LegBound(sid, i) => {
                    // The leg's own machine hears that its MSRP session is up.
                    self.idle_conns.remove(conn);
                    self.run_leg_machine(
                        now,
                        sid,
                        i,
                        &Event::Msrp(crate::machine::MsrpEvent::Connected),
                    );
                    self.try_deliveries(now, sid);
                }
                msrp_relay::RelayEvent::MessageComplete(sid, m) => {
                    if let Some(s) = self.sessions.get_mut(&sid)
                        && s.held.is_none()
                    {
                        s.held = Some(m);
                    }
                    self.run_session_machines(
                        now,
                        sid,
                        &Event::Msrp(crate::machine::MsrpEvent::MessageReceived),
                    );
                    self.try_deliveries(now, sid);
                }
                msrp_relay::RelayEvent::Delivered(sid, i, ok, code) => {
                    if let Some(l) = self.sessions.get_mut(&sid).and_then(|s| s.legs.get_mut(i))
                        && l.delivery.is_none()
                    {
                        l.delivery = Some(if ok { 200 } else { code });
                    }
                    if ok {
                        self.stats.delivered += 1;
                    }
                    let ev = if ok {
                        crate::machine::MsrpEvent::Delivered
                    } else {
                        crate::machine::MsrpEvent::DeliveryFailed(code)
                    };
                    self.run_leg_machine(now, sid, i, &Event::Msrp(ev));
                    self.check_settled(now, sid);
                }
                msrp_relay::RelayEvent::Closed(sid, leg) => {
                    match leg {
                        None => self.originator_msrp_lost(now, sid),
                        Some(i) => self.leg_msrp_lost(now, sid, i),
                    }
                    self.check_settled(now, sid);
                }
            }
        }
        self.reap(now);
    }

    // ---- teardown -----------------------------------------------------------------------

    /// Tears a session down: CANCEL pending legs, BYE connected ones and the originator,
    /// close MSRP. The session is removed by [`reap`](Self::reap) once nothing is pending.
    fn end_session(&mut self, now: Instant, sid: SessionId, why: &str) {
        self.dirty.push(sid);
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if s.ending {
            return;
        }
        s.ending = true;
        tracing_log("session", &format!("ending session {} ({why})", s.call_id));
        let n = s.legs.len();
        for i in 0..n {
            self.cancel_leg(now, sid, i);
            self.bye_leg(now, sid, i);
        }
        self.bye_originator(now, sid);
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.originator_gone = true;
            if s.answered.is_none() {
                s.answered = Some(0);
            }
        }
        let legs = self.sessions.get(&sid).map_or(0, |s| s.legs.len());
        self.msrp.close_session(sid, legs, &mut self.out);
        self.dirty.push(sid);
        self.reap(now);
    }

    /// Looks only at the sessions the current input touched: removes those with nothing
    /// left to wait for and re-files the others' timers. O(touched · log n); no scan.
    fn reap(&mut self, _now: Instant) {
        while let Some(id) = self.dirty.pop() {
            let Some(s) = self.sessions.get_mut(&id) else {
                continue;
            };
            if !s.is_drained() {
                let next = s.timers.next();
                self.session_timers.refile(id, &mut s.filed, next);
                continue;
            }
            if let Some(mut s) = self.sessions.remove(&id) {
                // Unindex through the session's own keys (no retain over the maps).
                self.session_timers.refile(id, &mut s.filed, None);
                self.by_server_tsx.remove(&s.server_tsx);
                self.by_dialog
                    .remove(&(s.call_id.clone(), s.local_tag.clone()));
                for l in &s.legs {
                    self.by_dialog
                        .remove(&(l.call_id.clone(), l.local_tag.clone()));
                }
                self.msrp.close_session(id, s.legs.len(), &mut self.out);
                self.stats.sessions_ended += 1;
                tracing_log("session", &format!("session {} closed", s.call_id));
            }
        }
    }

    fn fire_timer(&mut self, now: Instant, sid: SessionId, kind: SessionTimer) {
        self.dirty.push(sid);
        match kind {
            SessionTimer::OkRetransmit(n) => {
                let Some(s) = self.sessions.get(&sid) else {
                    return;
                };
                if s.acked || s.dialog.as_ref().is_some_and(|d| d.ended) {
                    return;
                }
                let t1 = self.cfg.timers.t1;
                let deadline = s.ok_at.unwrap_or(now) + t1 * 64;
                if now >= deadline {
                    // No ACK within 64·T1: end the dialog (§13.3.1.4).
                    if let Some(s) = self.sessions.get_mut(&sid)
                        && let Some(d) = s.dialog.as_mut()
                    {
                        d.confirmed = true;
                    }
                    // Reported to the machines as Timer H: the spec's "no ACK" case.
                    self.run_session_machines(now, sid, &Event::Timer(Timer::H));
                    self.end_session(now, sid, "no ACK for the 2xx");
                    return;
                }
                let key = s.server_tsx.clone();
                let reliable = s.peer.reliable;
                if let (Some(bytes), peer, false) = (s.ok_bytes.clone(), s.peer, reliable) {
                    let _ = self.tsx.respond(now, &key, 200, bytes.clone());
                    self.drain_tsx_transmits();
                    if self.tsx.state(Role::Server, &key).is_none() {
                        self.send_sip(peer, bytes);
                    }
                }
                // Intervals double from T1 up to T2 (§13.3.1.4), the last one cut at the
                // deadline so the session ends at 64·T1 exactly.
                let next = if reliable {
                    deadline
                } else {
                    (now + (t1 * (1 << n.min(6))).min(self.cfg.timers.t2)).min(deadline)
                };
                self.set_timer(sid, SessionTimer::OkRetransmit(n + 1), next);
            }
            SessionTimer::Spec(leg, mi, id) => {
                let ev = Event::Timer(Timer::Spec(id));
                match leg {
                    None => self.run_session_machines_at(now, sid, &ev, Some(mi)),
                    Some(i) => self.run_leg_machine(now, sid, i, &ev),
                }
                self.check_settled(now, sid);
            }
            SessionTimer::Lifetime => self.end_session(now, sid, "session lifetime reached"),
            SessionTimer::OriginatorMsrp => {
                if !self.msrp.originator_bound(sid) {
                    self.originator_msrp_lost(now, sid);
                }
            }
        }
        self.reap(now);
    }

    /// An MSRP connection was not bound in time.
    fn conn_idle(&mut self, now: Instant, conn: ConnId) {
        if let Some((sid, leg)) = self.msrp.idle_timeout(conn, &mut self.out) {
            self.dirty.push(sid);
            match leg {
                None => self.originator_msrp_lost(now, sid),
                Some(i) => self.leg_msrp_lost(now, sid, i),
            }
            self.check_settled(now, sid);
        }
        self.reap(now);
    }

    /// Fires every session timer and idle-connection deadline due at `now`, in deadline
    /// order, through the two indexes.
    fn fire_due(&mut self, now: Instant) {
        loop {
            let session = self.session_timers.first().filter(|at| *at <= now);
            let conn = self.idle_conns.first().filter(|at| *at <= now);
            match (session, conn) {
                (None, None) => break,
                (Some(a), Some(b)) if b < a => {
                    if let Some(c) = self.idle_conns.pop_due(now) {
                        self.conn_idle(now, c);
                    }
                }
                (Some(_), _) => {
                    let Some(sid) = self.session_timers.first_due(now) else {
                        break;
                    };
                    let due = match self.sessions.get_mut(&sid) {
                        Some(s) => s.timers.take_due(now),
                        None => Vec::new(),
                    };
                    self.dirty.push(sid);
                    if due.is_empty() {
                        // Never expected: the index and the session disagree. Drop the entry
                        // and re-file the session from its own table, so the loop ends.
                        self.session_timers.pop_first();
                        if let Some(s) = self.sessions.get_mut(&sid) {
                            s.filed = None;
                            let next = s.timers.next().filter(|at| *at > now);
                            self.session_timers.refile(sid, &mut s.filed, next);
                        }
                    }
                    for t in due {
                        self.fire_timer(now, sid, t);
                    }
                    self.reap(now);
                }
                (None, Some(_)) => {
                    if let Some(c) = self.idle_conns.pop_due(now) {
                        self.conn_idle(now, c);
                    }
                }
            }
        }
    }
}

impl<A: Application> Endpoint<A> {
    /// A request on a stream declares a body bigger than `max_message_size`: when its
    /// header section fits, answer `413 Request Entity Too Large` (RFC 3261 §21.4.11) on the
    /// connection, which the caller then closes. A header section too big to read, an ACK
    /// or a response get nothing.
    fn too_large_on_stream(&mut self, conn: ConnId, peer: SocketAddr, buf: &[u8]) {
        let start = buf
            .iter()
            .take_while(|&&c| c == b'\r' || c == b'\n')
            .count();
        let buf = buf.get(start..).unwrap_or_default();
        let Some(end) = memchr::memmem::find(buf, b"\r\n\r\n") else {
            return;
        };
        if end > self.cfg.max_message_size {
            return;
        }
        // The header section alone, its Content-Length set to 0, parses as the request.
        let mut head = String::new();
        for line in String::from_utf8_lossy(&buf[..end]).split("\r\n") {
            let name = line.split(':').next().unwrap_or("").trim();
            if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
                head.push_str("Content-Length: 0");
            } else {
                head.push_str(line);
            }
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let Ok(m) = Message::parse_as(Bytes::from(head), Transport::Stream) else {
            return;
        };
        if !m.is_request() || m.method() == Some(&Method::Ack) {
            return;
        }
        let m = via::stamp_request(m, peer, Transport::Stream);
        if let Some(r) =
            StatusCode::new(413).and_then(|c| sip::build::ResponseBuilder::new(&m, c).build().ok())
        {
            self.stats.rejected += 1;
            self.out.push_back(Output::StreamSend {
                conn,
                data: r.into_bytes(),
            });
        }
    }

    /// Forgets SIP connection `conn` (and its peer's entry, when it still names `conn`).
    fn drop_sip_conn(&mut self, conn: ConnId) {
        if let Some(c) = self.sip_conns.remove(&conn)
            && self.sip_conn_by_peer.get(&c.peer) == Some(&conn)
        {
            self.sip_conn_by_peer.remove(&c.peer);
        }
    }
}

impl<A: Application> Core for Endpoint<A> {
    fn handle_input(&mut self, now: Instant, input: Input) {
        self.input(now, input);
        // Every session this input touched is re-filed (or removed) before the driver
        // asks for the next deadline.
        self.reap(now);
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        [
            self.session_timers.first(),
            self.idle_conns.first(),
            self.tsx.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn is_idle(&self) -> bool {
        // A session ends once its calls are over, possibly before the answers to its last
        // BYEs: those are still waited for here. Server transactions still absorbing
        // retransmissions do not keep the process up.
        self.sessions.is_empty() && self.client_in_flight == 0
    }
}

impl<A: Application> Endpoint<A> {
    fn input(&mut self, now: Instant, input: Input) {
        match input {
            Input::Datagram { from, data, .. } => {
                if data.len() > self.cfg.max_message_size {
                    // RFC 3261 §21.5.14: too large for us. Only a request gets an answer
                    // (never an ACK or a response).
                    let resp = Message::parse(data.clone())
                        .ok()
                        .filter(|m| m.is_request() && m.method() != Some(&Method::Ack))
                        .map(|m| via::stamp_request(m, from, Transport::Datagram))
                        .and_then(|m| {
                            StatusCode::new(513)
                                .and_then(|c| sip::build::ResponseBuilder::new(&m, c).build().ok())
                        });
                    if let Some(r) = resp {
                        self.stats.rejected += 1;
                        self.send_sip(
                            Peer {
                                addr: from,
                                reliable: false,
                            },
                            r.into_bytes(),
                        );
                    }
                    return;
                }
                self.handle_sip_bytes(
                    now,
                    Peer {
                        addr: from,
                        reliable: false,
                    },
                    None,
                    data,
                );
            }
            Input::StreamOpened {
                conn, kind, peer, ..
            } => match kind {
                StreamKind::Sip => {
                    self.sip_conns.insert(
                        conn,
                        SipConn {
                            peer,
                            buf: BytesMut::new(),
                        },
                    );
                    self.sip_conn_by_peer.insert(peer, conn);
                }
                StreamKind::Msrp => {
                    let mut events = Vec::new();
                    let rand = self.random_bytes::<10>();
                    self.msrp
                        .opened(conn, peer, &mut events, rand, &mut self.out);
                    if conn.is_accepted() {
                        self.idle_conns.set(conn, now + MSRP_IDLE);
                    }
                    for ev in events {
                        if let msrp_relay::RelayEvent::LegBound(sid, _)
                        | msrp_relay::RelayEvent::OriginatorBound(sid) = ev
                        {
                            self.try_deliveries(now, sid);
                        }
                    }
                }
            },
            Input::StreamData { conn, data } => {
                if let Some(c) = self.sip_conns.get_mut(&conn) {
                    c.buf.extend_from_slice(&data);
                    let peer = c.peer;
                    while let Some(c) = self.sip_conns.get_mut(&conn) {
                        match sip::frame(&c.buf, self.cfg.max_message_size) {
                            Ok(sip::Frame::Message { skip, len }) => {
                                let _ = c.buf.split_to(skip);
                                let msg = c.buf.split_to(len).freeze();
                                self.handle_sip_bytes(
                                    now,
                                    Peer {
                                        addr: peer,
                                        reliable: true,
                                    },
                                    Some(conn),
                                    msg,
                                );
                            }
                            Ok(sip::Frame::KeepAlive { skip }) => {
                                let _ = c.buf.split_to(skip);
                            }
                            Ok(sip::Frame::NeedMore) => break,
                            Err(e) => {
                                // Unframeable stream (bad or oversized Content-Length): the
                                // stream cannot be resynchronised, so it is closed; a
                                // request whose body is too big is told so first.
                                if matches!(e.kind, sip::ErrorKind::TooLarge { .. }) {
                                    let head = c.buf.clone().freeze();
                                    self.too_large_on_stream(conn, peer, &head);
                                }
                                self.out.push_back(Output::Close { conn });
                                self.drop_sip_conn(conn);
                                break;
                            }
                        }
                    }
                } else {
                    self.handle_msrp_input(now, conn, data);
                }
            }
            Input::StreamClosed { conn } | Input::ConnectFailed { conn } => {
                if self.sip_conns.contains_key(&conn) {
                    self.drop_sip_conn(conn);
                } else {
                    self.handle_msrp_closed(now, conn);
                }
            }
            Input::Timeout => {
                self.tsx.handle_timeout(now);
                self.drain_tsx(now);
                self.fire_due(now);
            }
            Input::Shutdown => {
                self.shutting_down = true;
                let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
                for id in ids {
                    self.end_session(now, id, "server shutting down");
                }
            }
        }
    }
}

impl<A: Application> Endpoint<A> {
    /// An invitee's MSRP session is gone (closed, failed to connect, or idle too long): a
    /// copy that was due and not confirmed counts as undelivered (408), and the leg's machine
    /// decides what follows (typically BYE).
    fn leg_msrp_lost(&mut self, now: Instant, sid: SessionId, i: usize) {
        if let Some(l) = self.sessions.get_mut(&sid).and_then(|s| s.legs.get_mut(i))
            && l.delivery.is_none()
            && (l.delivery_started || l.status == LegStatus::Connected)
        {
            l.delivery = Some(408);
        }
        self.run_leg_machine(now, sid, i, &Event::Msrp(crate::machine::MsrpEvent::Closed));
    }

    fn handle_msrp_closed(&mut self, now: Instant, conn: ConnId) {
        let mut events = Vec::new();
        self.msrp.closed(conn, &mut events);
        for ev in events {
            if let msrp_relay::RelayEvent::Closed(sid, leg) = ev {
                match leg {
                    Some(i) => self.leg_msrp_lost(now, sid, i),
                    None => self.originator_msrp_lost(now, sid),
                }
                self.check_settled(now, sid);
            }
        }
        self.reap(now);
    }

    /// The originator's MSRP connection closed, failed or never came. Its machines hear of
    /// it; without a complete message there is nothing to deliver, so the session ends.
    fn originator_msrp_lost(&mut self, now: Instant, sid: SessionId) {
        self.run_session_machines(now, sid, &Event::Msrp(crate::machine::MsrpEvent::Closed));
        if self.sessions.get(&sid).is_some_and(|s| s.held.is_none()) {
            self.end_session(now, sid, "no MSRP message from the originator");
        }
    }
}

fn validated(m: Message, policy: &Policy, routing: Routing, agent: &str) -> Triage {
    if !m.is_request() {
        return match validate::check_response(&m) {
            Ok(()) => Triage::Response(m),
            Err(e) => Triage::Drop(format!("{e:?}")),
        };
    }
    match validate::validate_request(&m, policy, routing) {
        validate::Verdict::Accept => Triage::Request(m),
        validate::Verdict::Reject(r) => {
            if m.method() == Some(&Method::Ack) {
                return Triage::Drop("invalid ACK".into());
            }
            let mut b = sip::build::ResponseBuilder::new(&m, r.status);
            if !r.unsupported.is_empty() {
                b = b.header("Unsupported", &r.unsupported.join(", "));
            }
            if r.status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
                // RFC 3261 §21.4.13: say what is accepted.
                b = b.header("Accept", &policy.accepted_types.join(", "));
            }
            b = b.header("Warning", &warning(agent, &r.warning));
            match b.build() {
                Ok(resp) => Triage::Respond(resp),
                Err(_) => Triage::Drop("unanswerable".into()),
            }
        }
    }
}

fn salvage_response(f: &sip::ParseFailure, agent: &str, source: SocketAddr) -> Triage {
    match &f.salvage {
        Some(s) => match StatusCode::new(400).and_then(|c| {
            let mut s = (**s).clone();
            let restamped = s.via.first().and_then(|top| {
                // Only the first value of the first line is the top Via.
                let first = sip::split_values(top).next()?;
                let stamped = via::stamped(first, source)?;
                let end = (first.as_ptr() as usize - top.as_ptr() as usize) + first.len();
                Some(format!("{stamped}{}", top.get(end..).unwrap_or("")))
            });
            if let (Some(v), Some(top)) = (restamped, s.via.first_mut()) {
                *top = v;
            }
            sip::build::ResponseBuilder::from_salvage(&s, c, agent)
                .build()
                .ok()
        }) {
            Some(r) => Triage::Respond(r),
            None => Triage::Drop(f.error.to_string()),
        },
        None => Triage::Drop(f.error.to_string()),
    }
}

/// A `Warning` value: code 399 (miscellaneous), our host as agent, quoted text.
fn warning(agent: &str, text: &str) -> String {
    let t: String = text
        .chars()
        .map(|c| {
            if c == '"' || c == '\\' || c.is_control() {
                '\''
            } else {
                c
            }
        })
        .collect();
    format!("399 {agent} \"{t}\"")
}

fn own_msrp_path(addr: SocketAddr, sid: &str) -> String {
    format!("msrp://{addr}/{sid};tcp")
}

fn spec_timer_id(t: Timer) -> u16 {
    match t {
        Timer::Spec(n) => n,
        Timer::B => u16::MAX,
        Timer::F => u16::MAX - 1,
        Timer::H => u16::MAX - 2,
    }
}

fn register_contact(msg: &Message, source: SocketAddr) -> Option<SocketAddr> {
    let c = msg.header(HeaderName::Contact)?;
    let na = sip::parse_name_addrs(c).ok()?.into_iter().next()?;
    let uri = na.uri();
    let host = uri.host().trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => Some(SocketAddr::new(ip, uri.port().unwrap_or(5060))),
        // A host name we do not resolve (sans-IO): the source address reaches it.
        Err(_) => Some(source),
    }
}

fn page_mode_payload(request: &Message, limits: &BodyLimits) -> (String, Bytes) {
    let body = request.body();
    let ct = request
        .content_type()
        .map(|c| c.essence())
        .unwrap_or_else(|| "text/plain".into());
    if ct.starts_with("multipart/")
        && let Some(boundary) = request
            .content_type()
            .and_then(|c| c.param("boundary").map(|b| b.to_string()))
        && let Ok(mp) = crate::proto::body::multipart::parse(&body, &boundary, &limits.multipart)
        && let Some(p) = mp.parts.iter().find(|p| {
            let d = p
                .disposition
                .as_ref()
                .map(|d| d.kind.as_str())
                .unwrap_or("");
            d != "recipient-list" && d != "recipient-list-history"
        })
    {
        let ct = p.header("Content-Type").unwrap_or("text/plain").to_string();
        return (ct, p.body.clone());
    }
    let full = request
        .header(HeaderName::ContentType)
        .unwrap_or("text/plain")
        .to_string();
    (full, body)
}

fn log_action(sessions: &BTreeMap<SessionId, Session>, sid: SessionId, a: &Action, note: &str) {
    let call_id = sessions.get(&sid).map(|s| s.call_id.as_str()).unwrap_or("");
    tracing::info!(
        call_id,
        procedure = a.origin.procedure,
        clause = a.origin.clause,
        rule = a.origin.rule,
        action = ?a.kind,
        note,
        "spec action"
    );
}

fn tracing_log(what: &str, text: &str) {
    tracing::info!(what, "{text}");
}

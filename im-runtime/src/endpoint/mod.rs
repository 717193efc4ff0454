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
//!
//! Two layers, as quinn-proto splits its endpoint from its connections:
//! * the [`Endpoint`] demultiplexes (dialog Call-ID and our tag, transaction key, MSRP
//!   session path → session id), admits or refuses initial requests, answers what needs no
//!   session, and keeps one timer-index entry per session;
//! * a `Session` owns its originator dialog, its machines, its invitee legs, its timers and
//!   its MSRP delivery decisions. Its fields are private to it: the endpoint drives it only
//!   through `handle_event`, `handle_timeout`, `poll_timeout` and `is_drained`, and the
//!   session reaches the endpoint only through a `Ctx` (the transaction table, the output
//!   queue, id minting, the MSRP relay and the index updates it may ask for). After every
//!   input the endpoint re-files (or removes) just the sessions that input touched.

mod app;
mod builder;
mod config;
mod conns;
mod ctx;
pub mod facts;
mod ids;
mod ingress;
mod invitation;
mod live;
mod msrp_relay;
mod routing;
mod secure;
mod session;
mod stateless;
mod timers;
mod via;

pub use app::{
    Application, ContactBinding, DynMachine, OfflineCopy, RegisterChange, RegisterError,
};
pub use config::{EndpointConfig, Stats};
pub use facts::BodyLimits;
#[cfg(feature = "tokio")]
pub(crate) use live::Histogram;
pub use live::{
    HistogramSnapshot, LATENCY_BUCKETS, LegOutcome, LiveSnapshot, LiveStats, ResponseKey,
};
pub use session::route_leg::PeerTransports;

use crate::machine::{
    Action, ActionKind, Config, Env, Method, Origin, Recipients, Reply, ReportOutcome, Route,
    Selection,
};
use crate::proto::msrp;
use crate::proto::sdp::answer::{self, LocalMedia, OfferOptions};
use crate::proto::sip::validate::{self, Policy, Routing, Triage};
use crate::proto::sip::{self, HeaderName, Message, StatusCode, Transport};
use crate::proto::transaction::{
    self as tsx, Peer, Role, TimerConfig, Transactions, TransactionsConfig, TsxKey,
    sharded::ShardedTsxMap,
};
use crate::transport::{ConnId, Core, Input, Output, StreamKind};
use builder::{SipBuilder, tsx_message};
use bytes::{Bytes, BytesMut};
use ctx::Ctx;
use ids::{Ids, LegSlot};
use ingress::warning;
use msrp_relay::RelayEvent;
use session::{
    ConferenceRegistry, Session, SessionEvent, SessionId, tracing_log, tracing_log_args,
};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use timers::{IdleConns, SessionTimerIndex};

/// A map keyed by values peers choose (Call-ID and tags, MSRP session ids and paths):
/// foldhash under a per-map random seed, much cheaper than SipHash and still keyed, so a
/// peer cannot pick keys that collide.
pub(crate) type NetMap<K, V> = HashMap<K, V, foldhash::quality::RandomState>;

struct SipConn {
    peer: SocketAddr,
    buf: BytesMut,
}

/// A client transaction some session started.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClientTsx {
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
    /// Boxed: a `Session` is a few KiB, and the map's nodes hold eleven values each, so
    /// unboxed the half-empty nodes cost more than the sessions.
    sessions: BTreeMap<SessionId, Box<Session>>,
    next_session: u64,
    /// Server INVITE/MESSAGE transaction → session. Sharded like the transaction table,
    /// which it follows in size.
    by_server_tsx: ShardedTsxMap<SessionId>,
    /// Client transaction → its session and leg, and whether it is still in flight; as
    /// many entries as lingering client transactions, so sharded too.
    by_client_tsx: ShardedTsxMap<ClientTsx>,
    /// Client transactions in `by_client_tsx` still in flight (no final answer yet).
    client_in_flight: usize,
    /// Our tag's key ([`ids::tag_key`]) → (session, leg): 8 bytes a dialog and no
    /// allocation, where (Call-ID, tag) as two `String`s were 48 and two; a lookup checks
    /// the Call-ID against the session's ([`Session::dialog_call_id`]).
    by_dialog: NetMap<u64, (SessionId, LegSlot)>,
    /// Sessions by their earliest timer.
    session_timers: SessionTimerIndex,
    /// MSRP connections waiting to be bound.
    idle_conns: IdleConns,
    /// Sessions the current input touched: only these can have ended or moved their timers.
    dirty: Vec<SessionId>,
    /// See [`Ctx::released`].
    released: Vec<SessionId>,
    ids: Ids,
    msrp: msrp_relay::MsrpRelay,
    stats: Stats,
    live: live::Live,
    shutting_down: bool,
    /// The IO layer reported inputs queueing too long ([`Input::Pressure`]): new sessions
    /// are shed with 503 until it reports the backlog gone.
    overloaded: bool,
    /// Which SIP connections are TLS and our TLS connects under way; also lent to sessions.
    sip_tls: secure::SipTls,
    /// Conference-state subscriptions (`endpoint/conference.rs`); also lent to sessions.
    conf: ConferenceRegistry,
    /// Which accepted SIP connections sessions and registrations use (`endpoint/conns.rs`).
    conn_use: conns::ConnUse,
}

impl<A: Application> Endpoint<A> {
    /// An endpoint running `app` with `cfg`.
    pub fn new(cfg: EndpointConfig, app: A) -> Self {
        let tsx = Transactions::new(
            TransactionsConfig {
                timers: cfg.timers,
                linger_grid: timers::LINGER_GRID,
                // A copy's or a BYE's final answer ends its transaction: a retransmission
                // of that answer is dropped as a stray response, as Timer K would have
                // absorbed it, and nothing waits 5 s to be cleaned up.
                linger_non_invite_clients: false,
                ..TransactionsConfig::default()
            },
            SipBuilder::new(cfg.sip_advertised),
        );
        let msrp = msrp_relay::MsrpRelay::new(&cfg);
        let ids = Ids::new(cfg.seed, cfg.shard);
        Endpoint {
            cfg,
            app,
            tsx,
            out: VecDeque::new(),
            sip_conns: HashMap::new(),
            sip_conn_by_peer: HashMap::new(),
            sessions: BTreeMap::new(),
            next_session: 1,
            by_server_tsx: ShardedTsxMap::default(),
            by_client_tsx: ShardedTsxMap::default(),
            client_in_flight: 0,
            by_dialog: NetMap::default(),
            session_timers: SessionTimerIndex::default(),
            idle_conns: IdleConns::default(),
            dirty: Vec::new(),
            released: Vec::new(),
            ids,
            msrp,
            stats: Stats::default(),
            live: live::Live::default(),
            shutting_down: false,
            overloaded: false,
            sip_tls: secure::SipTls::default(),
            conf: ConferenceRegistry::default(),
            conn_use: conns::ConnUse::default(),
        }
    }

    /// Sessions alive now (originator legs with their invitee legs).
    pub fn live_sessions(&self) -> usize {
        self.sessions.len()
    }

    /// INVITEs ended without their CANCEL whose late 2xx is still awaited
    /// (`late_answers.rs`): each is dropped when its 64*T1 window ends.
    pub fn late_invites(&self) -> usize {
        self.sip_tls.out.late.len()
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Counters and latency histograms readable while the driver runs (take the handle
    /// before handing the endpoint to the driver).
    pub fn live_stats(&self) -> std::sync::Arc<LiveStats> {
        self.live.stats.clone()
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

    fn token(&mut self, words: usize) -> String {
        self.ids.token(words)
    }

    fn random_bytes<const N: usize>(&mut self) -> [u8; N] {
        self.ids.random_bytes::<N>()
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
            s.client_released();
        }
        self.dirty.push(sid);
    }

    /// Looks only at the sessions the current input touched: removes those with nothing
    /// left to wait for and re-files the others' timers. O(touched · log n); no scan.
    fn reap(&mut self, now: Instant) {
        while let Some(id) = self.dirty.pop() {
            let Some(s) = self.sessions.get(&id) else {
                continue;
            };
            if !s.is_drained() {
                self.session_timers.refile(id, s.poll_timeout());
                continue;
            }
            if s.has_subscribers() {
                // Its subscriptions get their last NOTIFY before it goes.
                self.dispatch(now, id, SessionEvent::Closing);
            }
            if let Some(s) = self.sessions.remove(&id) {
                // Unindex through the session's own keys (no retain over the maps).
                self.session_timers.refile(id, None);
                let (server_tsx, dialogs) = s.index_keys();
                self.by_server_tsx.remove(server_tsx);
                for k in &dialogs {
                    self.by_dialog.remove(k);
                }
                self.msrp.close_session(id, s.leg_count(), &mut self.out);
                self.conn_use.session_ended(id, &mut self.out);
                self.sip_tls
                    .out
                    .session_ended(id, &self.sip_conn_by_peer, &mut self.out);
                self.stats.sessions_ended += 1;
                self.live.session_ended(id);
                tracing_log_args("session", format_args!("session {} closed", s.call_id()));
            }
        }
    }
}

impl<A: Application> Endpoint<A> {
    /// Debug builds (every test) check after each input that the incremental bookkeeping
    /// equals a brute-force scan: each session is filed under its earliest timer, and the
    /// in-flight counts equal the transaction states the old `reap` scanned. Skipped above
    /// a few hundred sessions so debug runs stay linear.
    #[cfg(debug_assertions)]
    fn check_indexes(&self) {
        assert!(
            self.tsx.builder().is_empty(),
            "the parsed-message cache keeps nothing past an input"
        );
        if self.sessions.len() > 256 || self.by_client_tsx.len() > 4096 {
            return;
        }
        for (id, s) in &self.sessions {
            assert_eq!(
                self.session_timers.filed(*id),
                s.poll_timeout(),
                "session {id:?} filed off its timers"
            );
            assert!(
                s.legs_keys_live(|k| self.tsx.state(Role::Client, k).is_some()),
                "session {id:?} keeps the key of an ended INVITE to a leg"
            );
        }
        assert_eq!(
            self.session_timers.len(),
            self.sessions
                .values()
                .filter(|s| s.poll_timeout().is_some())
                .count(),
            "one timer-index entry per session with a timer"
        );
        let mut pending: HashMap<SessionId, u32> = HashMap::new();
        let mut in_flight = 0;
        for (key, e) in &self.by_client_tsx {
            let live = self.tsx.state(Role::Client, key).is_some_and(|st| {
                st != tsx::TsxState::Completed
                    && st != tsx::TsxState::Accepted
                    && st != tsx::TsxState::Terminated
            });
            assert_eq!(e.in_flight, live, "client transaction {key:?} flag");
            if e.in_flight {
                in_flight += 1;
                if e.holds {
                    *pending.entry(e.sid).or_default() += 1;
                }
            }
        }
        assert_eq!(self.client_in_flight, in_flight, "client_in_flight");
        for (id, s) in &self.sessions {
            assert_eq!(
                s.pending_client(),
                pending.get(id).copied().unwrap_or(0),
                "session {id:?} pending_client"
            );
        }
    }
}

impl<A: Application> Core for Endpoint<A> {
    fn handle_input(&mut self, now: Instant, input: Input) {
        self.offline_expired(now);
        self.input(now, input);
        // What a session asked of the transaction layer while handling this input and
        // that ends a transaction at once (a request that cannot reach its peer,
        // `route_leg.rs`) is carried out now, not at the next input; then every session
        // this input touched is re-filed (or removed) before the driver asks for the next
        // deadline (`drain_tsx` ends with `reap`).
        self.drain_tsx(now);
        #[cfg(debug_assertions)]
        self.check_indexes();
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        [
            self.session_timers.first(),
            self.idle_conns.first(),
            self.conn_use.first(),
            self.tsx.poll_timeout(),
            self.app.offline_next_expiry(),
            self.sip_tls.out.late.next_expiry(),
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

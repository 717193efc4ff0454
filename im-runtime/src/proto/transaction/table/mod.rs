//! The transaction table: matching, creation, CANCEL handling, timers and clean-up.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::client::NonInviteClient;
use super::client_inv::InviteClient;
use super::server::NonInviteServer;
use super::server_inv::InviteServer;
use super::timer::TimerConfig;
use super::{
    Event, MessageBuilder, Outbox, Peer, Role, Transmit, TsxError, TsxKey, TsxMessage, TsxState,
};
use crate::machine::Method;
use crate::proto::transaction::sharded::ShardedTsxMap;

/// Settings of a [`Transactions`] table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransactionsConfig {
    /// Timer values for server transactions and for client transactions started without
    /// their own ([`Transactions::send_request_with`]).
    pub timers: TimerConfig,
    /// Whether a new INVITE server transaction answers 100 Trying at once (§17.2.1 asks for
    /// it unless the TU answers within 200 ms). When off, the TU sends its own with
    /// [`Transactions::reply`]. Non-INVITE requests never get an automatic 100 (RFC 4320).
    pub send_trying: bool,
    /// Grid for lingering deadlines: Timers D, I, J, K, L and M, whose firing only ends
    /// the transaction and sends nothing. When non-zero, such a deadline is filed rounded
    /// up to the next multiple of this step (from a fixed epoch), so the clean-ups of many
    /// transactions fall due together and cost one wake-up instead of one each; the
    /// transaction lingers up to one step longer than RFC 3261/6026 ask, never shorter.
    /// Retransmission and timeout timers (A, B, E, F, G, H, the CANCEL give-up) stay exact.
    /// Zero (the default) files every deadline exactly.
    pub linger_grid: Duration,
    /// Whether a non-INVITE client transaction over an unreliable transport stays T4 in
    /// the Completed state after its final response (Timer K, RFC 3261 §17.1.2.2), as the
    /// RFC's state machine is written; on (the default). Completed only absorbs
    /// retransmissions of that final response, and this table drops a response that
    /// matches no transaction just the same (§18.1.2 as changed by RFC 6026 §8.9): off,
    /// the transaction ends at its final response, as over a reliable transport, and
    /// nothing changes on the wire or for the TU, which sees one [`Event::Response`] either
    /// way. What changes is what the table holds: an IM server fanning a MESSAGE out to 10
    /// recipients at 1,600/s kept 88,000 such transactions alive for nothing, each an entry
    /// and a deadline, and their look-ups and clean-ups missed the cache. Off, a late
    /// retransmission is matched against nothing, so [`Transactions::state`] reads `None`
    /// for it and a new request may reuse its key at once.
    pub linger_non_invite_clients: bool,
}

impl Default for TransactionsConfig {
    fn default() -> Self {
        TransactionsConfig {
            timers: TimerConfig::default(),
            send_trying: true,
            linger_grid: Duration::ZERO,
            linger_non_invite_clients: true,
        }
    }
}

/// What [`Transactions::cancel`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelStart {
    /// The CANCEL client transaction with this key was started and its request sent.
    Sent(TsxKey),
    /// No provisional response has arrived yet, so the CANCEL must wait (§9.1); it is sent
    /// under this key when the first one arrives, and dropped if a final response comes
    /// first.
    Deferred(TsxKey),
}

#[derive(Debug)]
enum ServerTsx {
    Invite(InviteServer),
    NonInvite(NonInviteServer),
}

impl ServerTsx {
    fn state(&self) -> TsxState {
        match self {
            ServerTsx::Invite(t) => t.state(),
            ServerTsx::NonInvite(t) => t.state(),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self {
            ServerTsx::Invite(t) => t.deadline(),
            ServerTsx::NonInvite(t) => t.deadline(),
        }
    }

    /// Whether the running timer only ends the transaction (I, J, L): nothing is sent or
    /// reported when it fires, so it may fire late.
    fn lingering(&self) -> bool {
        match self {
            ServerTsx::Invite(t) => matches!(t.state(), TsxState::Confirmed | TsxState::Accepted),
            ServerTsx::NonInvite(t) => t.state() == TsxState::Completed,
        }
    }

    /// The request, until the final response (see [`Transactions::reply`]).
    fn request(&self) -> Option<TsxMessage> {
        match self {
            ServerTsx::Invite(t) => t.request(),
            ServerTsx::NonInvite(t) => t.request(),
        }
    }
}

#[derive(Debug)]
enum ClientTsx {
    Invite {
        tsx: InviteClient,
        /// The TU asked to cancel before any provisional response arrived.
        cancel_pending: bool,
    },
    NonInvite(NonInviteClient),
}

impl ClientTsx {
    fn state(&self) -> TsxState {
        match self {
            ClientTsx::Invite { tsx, .. } => tsx.state(),
            ClientTsx::NonInvite(t) => t.state(),
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match self {
            ClientTsx::Invite { tsx, .. } => tsx.deadline(),
            ClientTsx::NonInvite(t) => t.deadline(),
        }
    }

    /// Whether the running timer only ends the transaction (D, K, M); see
    /// [`ServerTsx::lingering`].
    fn lingering(&self) -> bool {
        matches!(self.state(), TsxState::Completed | TsxState::Accepted)
    }
}

/// A table entry: the machine and its creation number, which orders work that falls due at
/// the same instant, so that runs are reproducible whatever the hash order.
#[derive(Debug)]
struct Entry<T> {
    seq: u64,
    tsx: T,
    /// The deadline this entry is filed under in [`Transactions::timers`]; kept so the old
    /// index entry can be found and removed when the machine's deadline moves. A `Cell`, so
    /// that re-filing writes it through the same look-up that found the table's key (a
    /// second, mutable look-up of the key cost ~0.1 k instructions per change).
    indexed: Cell<Option<Instant>>,
}

impl<T> Entry<T> {
    /// Boxed in the maps: a slot is then a key and a pointer, so the table's empty slots
    /// (a hash table is 44–87 % full) cost 16 bytes instead of a whole machine, and a part
    /// that resizes moves pointers.
    fn new(seq: u64, tsx: T) -> Box<Self> {
        Box::new(Entry {
            seq,
            tsx,
            indexed: Cell::new(None),
        })
    }
}

/// Deadline index: every live transaction with a running timer, by (deadline, creation
/// number). A scan of all transactions per input made the server ~5× slower with the
/// ~32 000 non-INVITE transactions that Timer J keeps alive at 1 000 requests/s.
type TimerIndex = BTreeMap<(Instant, u64), (Role, TsxKey)>;

/// All transactions of one SIP endpoint, client and server side.
///
/// # Driving it
///
/// Inputs, each with the current time:
///
/// * [`handle_request`](Self::handle_request) and [`handle_response`](Self::handle_response)
///   for every parsed message from the network;
/// * [`handle_timeout`](Self::handle_timeout) when the deadline from
///   [`poll_timeout`](Self::poll_timeout) has passed;
/// * [`handle_transport_error`](Self::handle_transport_error) when a send failed;
/// * from the transaction user: [`send_request`](Self::send_request),
///   [`respond`](Self::respond) / [`reply`](Self::reply) and [`cancel`](Self::cancel).
///
/// After every input, drain in this order:
///
/// 1. [`poll_transmit`](Self::poll_transmit) until `None`, sending each message;
/// 2. [`poll_event`](Self::poll_event) until `None`, handing each to the TU. The TU may call
///    the input methods above while handling an event; if it did, go back to step 1;
/// 3. [`poll_timeout`](Self::poll_timeout) last, to re-arm the single timer, since every
///    input can move the earliest deadline.
///
/// Transmits and events are independent queues, so draining events first loses nothing;
/// the order above just sends what was produced before the TU reacts to it.
///
/// Terminated transactions are removed at once (with an [`Event::Terminated`]), so a table
/// whose work is done is empty ([`is_empty`](Self::is_empty)).
///
/// ```
/// use std::time::Instant;
/// use im_runtime::proto::transaction::{Event, MessageBuilder, Transactions};
///
/// /// One turn of an IO loop: `now` comes from the driver's clock.
/// fn after_input<B: MessageBuilder>(tsx: &mut Transactions<B>, now: Instant) -> Option<Instant> {
///     loop {
///         while let Some(t) = tsx.poll_transmit() {
///             let _ = (t.peer.addr, t.bytes); // hand to the socket
///         }
///         let mut reacted = false;
///         while let Some(event) = tsx.poll_event() {
///             if let Event::Cancelled { invite } = event {
///                 // The TU reacts with an input, which may queue transmits.
///                 let _ = tsx.reply(now, &invite, 487);
///                 reacted = true;
///             }
///         }
///         if !reacted {
///             return tsx.poll_timeout(); // arm the one timer, then wait
///         }
///     }
/// }
/// ```
#[derive(Debug)]
pub struct Transactions<B> {
    config: TransactionsConfig,
    builder: B,
    /// Sharded so that growing past a peak never rehashes every live transaction in one
    /// insert (see [`ShardedTsxMap`]).
    servers: ShardedTsxMap<Box<Entry<ServerTsx>>>,
    clients: ShardedTsxMap<Box<Entry<ClientTsx>>>,
    /// Running timers of `servers` and `clients`, earliest first; every change to a
    /// machine goes through [`settle`](Self::settle) or [`sync_timer`](Self::sync_timer),
    /// which keep this in step with the machines' own deadlines.
    timers: TimerIndex,
    /// `config.timers`, shared by every transaction that runs with them.
    shared_timers: Arc<TimerConfig>,
    /// Origin of the [`TransactionsConfig::linger_grid`]: the first lingering deadline
    /// filed. Any fixed instant would do; this one needs no clock.
    grid_epoch: Option<Instant>,
    next_seq: u64,
    out: Outbox,
}

impl<B: MessageBuilder> Transactions<B> {
    /// An empty table that builds its own messages with `builder`.
    pub fn new(config: TransactionsConfig, builder: B) -> Self {
        Transactions {
            config,
            builder,
            servers: ShardedTsxMap::default(),
            clients: ShardedTsxMap::default(),
            timers: TimerIndex::new(),
            shared_timers: Arc::new(config.timers),
            grid_epoch: None,
            next_seq: 0,
            out: Outbox::default(),
        }
    }

    /// The table's settings.
    pub fn config(&self) -> &TransactionsConfig {
        &self.config
    }

    /// The message builder.
    pub fn builder(&self) -> &B {
        &self.builder
    }

    /// The message builder, mutably (to change its settings).
    pub fn builder_mut(&mut self) -> &mut B {
        &mut self.builder
    }

    /// Number of live transactions, both sides.
    pub fn len(&self) -> usize {
        self.servers.len() + self.clients.len()
    }

    /// Whether no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The state of a live transaction, `None` when there is none (never
    /// [`TsxState::Terminated`]: those are removed at once).
    pub fn state(&self, role: Role, key: &TsxKey) -> Option<TsxState> {
        match role {
            Role::Server => self.servers.get(key).map(|e| e.tsx.state()),
            Role::Client => self.clients.get(key).map(|e| e.tsx.state()),
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    /// The next event for the transaction user.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.out.events.pop_front()
    }

    /// The earliest deadline over all transactions; call
    /// [`handle_timeout`](Self::handle_timeout) once it has passed. `None` when no timer
    /// runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers
            .first_key_value()
            .map(|(&(deadline, _), _)| deadline)
    }

    /// `timers` as the transactions keep them: the table's own when equal, so that a
    /// transaction holds one pointer instead of the four values.
    fn timers_arc(&self, timers: TimerConfig) -> Arc<TimerConfig> {
        if *self.shared_timers == timers {
            self.shared_timers.clone()
        } else {
            Arc::new(timers)
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// A request from the network (`peer` is where it came from).
    ///
    /// * A retransmission of a request with a live server transaction is answered from
    ///   the transaction (last response, if any) and not reported again.
    /// * An ACK goes to its INVITE server transaction: absorbed for a non-2xx final
    ///   response, reported as [`Event::Ack`] in the Accepted state or when nothing
    ///   matches (an ACK for a 2xx, for the dialog layer).
    /// * A CANCEL gets its own server transaction and is answered by the table: 200 when
    ///   it matches a server INVITE transaction (plus [`Event::Cancelled`] when that one
    ///   has no final response yet), 481 otherwise (§9.2).
    /// * Any other new request creates a server transaction and is reported as
    ///   [`Event::Request`]; a new INVITE is answered 100 Trying when
    ///   [`TransactionsConfig::send_trying`] is on.
    pub fn handle_request(
        &mut self,
        now: Instant,
        msg: TsxMessage,
        peer: Peer,
    ) -> Result<(), TsxError> {
        if !msg.is_request() {
            return Err(TsxError::WrongKind {
                expected_request: true,
            });
        }
        let key = msg.key.clone();
        if let Some(entry) = self.servers.get_mut(&key) {
            match &mut entry.tsx {
                ServerTsx::Invite(t) => t.handle_request(now, msg, peer, &mut self.out),
                ServerTsx::NonInvite(t) => t.handle_request(&mut self.out),
            }
            self.settle(Role::Server, &key);
            return Ok(());
        }
        let timers = self.shared_timers.clone();
        let tsx = match msg.method {
            Method::Ack => {
                self.out.events.push_back(Event::Ack { message: msg, peer });
                return Ok(());
            }
            Method::Cancel => {
                let Some(tsx) = self.answer_cancel(now, msg, peer) else {
                    return Ok(());
                };
                ServerTsx::NonInvite(tsx)
            }
            Method::Invite => {
                let mut tsx = InviteServer::new(msg.clone(), peer, timers);
                self.out
                    .events
                    .push_back(Event::Request { message: msg, peer });
                if self.config.send_trying
                    && let Some(request) = tsx.request()
                    && let Some(trying) = self.builder.response(&request, 100)
                {
                    // Cannot fail: a fresh transaction is Proceeding and 100 is provisional.
                    let _ = tsx.send_response(now, 100, trying, &mut self.out);
                }
                ServerTsx::Invite(tsx)
            }
            _ => {
                let tsx = NonInviteServer::new(msg.clone(), peer, timers);
                self.out
                    .events
                    .push_back(Event::Request { message: msg, peer });
                ServerTsx::NonInvite(tsx)
            }
        };
        let seq = self.next_seq();
        self.servers.insert(key.clone(), Entry::new(seq, tsx));
        self.settle(Role::Server, &key);
        Ok(())
    }

    /// Answers a new CANCEL (§9.2) and returns its server transaction; `None` when the
    /// builder cannot write the answer (the CANCEL is then dropped, and its retransmission
    /// will try again).
    fn answer_cancel(
        &mut self,
        now: Instant,
        msg: TsxMessage,
        peer: Peer,
    ) -> Option<NonInviteServer> {
        let invite = msg.key.cancelled_invite()?;
        let (status, pending) = match self.servers.get(&invite).map(|e| &e.tsx) {
            Some(ServerTsx::Invite(t)) => (200, t.state() == TsxState::Proceeding),
            _ => (481, false),
        };
        let bytes = self.builder.response(&msg, status)?;
        let mut tsx = NonInviteServer::new(msg, peer, self.shared_timers.clone());
        // Cannot fail: a fresh transaction is Trying and any status may follow.
        let _ = tsx.send_response(now, status, bytes, &mut self.out);
        if pending {
            self.out.events.push_back(Event::Cancelled { invite });
        }
        Some(tsx)
    }

    /// A response from the network. It goes to the client transaction with its key; a
    /// response that matches none is dropped (§18.1.2 as changed by RFC 6026 §8.9).
    pub fn handle_response(&mut self, now: Instant, msg: TsxMessage) -> Result<(), TsxError> {
        if msg.is_request() {
            return Err(TsxError::WrongKind {
                expected_request: false,
            });
        }
        let key = msg.key.clone();
        let Some(entry) = self.clients.get_mut(&key) else {
            return Ok(());
        };
        let mut start_cancel = false;
        match &mut entry.tsx {
            ClientTsx::Invite {
                tsx,
                cancel_pending,
            } => {
                tsx.handle_response(now, msg, &mut self.builder, &mut self.out);
                if *cancel_pending && tsx.state() != TsxState::Calling {
                    *cancel_pending = false;
                    start_cancel = tsx.state() == TsxState::Proceeding;
                }
            }
            ClientTsx::NonInvite(t) => t.handle_response(now, msg, &mut self.out),
        }
        if start_cancel {
            // The TU asked already; a failure here has nobody to report to but the TU's
            // own Timer B, which still runs on the INVITE.
            let _ = self.start_cancel(now, &key);
        }
        self.settle(Role::Client, &key);
        Ok(())
    }

    /// Fires every timer whose deadline is at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        // Due transactions fire once each, in creation order (not deadline order), as they
        // did when this was a scan; a timer re-armed at or before `now` waits for the next
        // call.
        let mut due: Vec<(u64, Role, TsxKey)> = self
            .timers
            .range(..=(now, u64::MAX))
            .map(|(&(_, seq), (role, key))| (seq, *role, key.clone()))
            .collect();
        due.sort_unstable_by_key(|(seq, _, _)| *seq);
        for (_, role, key) in due {
            match role {
                Role::Server => {
                    if let Some(e) = self.servers.get_mut(&key) {
                        match &mut e.tsx {
                            ServerTsx::Invite(t) => t.handle_timeout(now, &mut self.out),
                            ServerTsx::NonInvite(t) => t.handle_timeout(now),
                        }
                    }
                }
                Role::Client => {
                    if let Some(e) = self.clients.get_mut(&key) {
                        match &mut e.tsx {
                            ClientTsx::Invite { tsx, .. } => tsx.handle_timeout(now, &mut self.out),
                            ClientTsx::NonInvite(t) => t.handle_timeout(now, &mut self.out),
                        }
                    }
                }
            }
            self.settle(role, &key);
        }
        self.servers.shrink_idle();
        self.clients.shrink_idle();
    }

    /// The transport could not deliver a message of this transaction (ICMP unreachable, a
    /// refused or reset connection). §17.1.4 and §17.2.4: the TU is told with
    /// [`Event::TransportError`] and the transaction ends in any state.
    pub fn handle_transport_error(&mut self, role: Role, key: &TsxKey) -> Result<(), TsxError> {
        let removed = match role {
            Role::Server => self.servers.remove(key).map(|e| (e.seq, e.indexed.get())),
            Role::Client => self.clients.remove(key).map(|e| (e.seq, e.indexed.get())),
        };
        let Some((seq, indexed)) = removed else {
            return Err(TsxError::UnknownTransaction { role });
        };
        if let Some(deadline) = indexed {
            self.timers.remove(&(deadline, seq));
        }
        self.out.events.push_back(Event::TransportError {
            key: key.clone(),
            role,
        });
        self.out.events.push_back(Event::Terminated {
            key: key.clone(),
            role,
        });
        Ok(())
    }

    /// Starts a client transaction for `request` towards `peer`, with the table's timers,
    /// and queues the request for sending. Returns the transaction's key (the request's).
    pub fn send_request(
        &mut self,
        now: Instant,
        request: TsxMessage,
        peer: Peer,
    ) -> Result<TsxKey, TsxError> {
        let timers = self.config.timers;
        self.send_request_with(now, request, peer, timers)
    }

    /// [`send_request`](Self::send_request) with this transaction's own timer values.
    pub fn send_request_with(
        &mut self,
        now: Instant,
        request: TsxMessage,
        peer: Peer,
        timers: TimerConfig,
    ) -> Result<TsxKey, TsxError> {
        if !request.is_request() {
            return Err(TsxError::WrongKind {
                expected_request: true,
            });
        }
        if request.method == Method::Ack {
            return Err(TsxError::AckIsNotATransaction);
        }
        let key = request.key.clone();
        if self.clients.contains_key(&key) {
            return Err(TsxError::DuplicateTransaction);
        }
        let timers = self.timers_arc(timers);
        let tsx = if request.method == Method::Invite {
            ClientTsx::Invite {
                tsx: InviteClient::start(now, request, peer, timers, &mut self.out),
                cancel_pending: false,
            }
        } else {
            ClientTsx::NonInvite(NonInviteClient::start(
                now,
                request,
                peer,
                timers,
                self.config.linger_non_invite_clients,
                &mut self.out,
            ))
        };
        let seq = self.next_seq();
        let entry = Entry::new(seq, tsx);
        // Filed from the boxed entry before it goes into the table, under the key the table
        // is about to hold (`key` is that `Arc`): one look-up of a new key in a table of
        // 10⁵ lingering transactions costs cache misses, and `sync_timer` made a second.
        let timing = (entry.tsx.deadline(), entry.tsx.lingering());
        let index = (
            &mut self.timers,
            &mut self.grid_epoch,
            self.config.linger_grid,
        );
        refile(index, Role::Client, &key, &entry, timing);
        self.clients.insert(key.clone(), entry);
        Ok(key)
    }

    /// Sends `bytes`, a response with `status`, on the server transaction `key`.
    ///
    /// Any number of provisional responses may precede one final response. After a 2xx to
    /// an INVITE (Accepted state) further 2xx are passed through: that is how the TU
    /// retransmits its 2xx (§13.3.1.4).
    pub fn respond(
        &mut self,
        now: Instant,
        key: &TsxKey,
        status: u16,
        bytes: Bytes,
    ) -> Result<(), TsxError> {
        if !(100..=699).contains(&status) {
            return Err(TsxError::InvalidStatus(status));
        }
        let entry = self
            .servers
            .get_mut(key)
            .ok_or(TsxError::UnknownTransaction { role: Role::Server })?;
        let result = match &mut entry.tsx {
            ServerTsx::Invite(t) => t.send_response(now, status, bytes, &mut self.out),
            ServerTsx::NonInvite(t) => t.send_response(now, status, bytes, &mut self.out),
        };
        self.settle(Role::Server, key);
        result
    }

    /// Like [`respond`](Self::respond), with the response written by the builder from the
    /// transaction's request (100 Trying, 487 after [`Event::Cancelled`] …). Only before
    /// the final response: the transaction drops its request then, so a 2xx retransmission
    /// while Accepted goes through [`respond`](Self::respond) with the 2xx's bytes, and
    /// anything else fails with [`TsxError::InvalidState`] as `respond` would.
    pub fn reply(&mut self, now: Instant, key: &TsxKey, status: u16) -> Result<(), TsxError> {
        if !(100..=699).contains(&status) {
            return Err(TsxError::InvalidStatus(status));
        }
        let entry = self
            .servers
            .get(key)
            .ok_or(TsxError::UnknownTransaction { role: Role::Server })?;
        // After the final response the transaction no longer holds the request: nothing
        // but a 2xx retransmission (sent with `respond`) may follow then.
        let request = entry.tsx.request().ok_or(TsxError::InvalidState {
            state: entry.tsx.state(),
        })?;
        let bytes = self
            .builder
            .response(&request, status)
            .ok_or(TsxError::Build)?;
        self.respond(now, key, status, bytes)
    }

    /// Cancels the INVITE client transaction `invite` (§9.1): a CANCEL client transaction
    /// is started once a provisional response has arrived (at once if one has, else
    /// deferred until one does). Fails once a final response has arrived.
    pub fn cancel(&mut self, now: Instant, invite: &TsxKey) -> Result<CancelStart, TsxError> {
        let entry = self
            .clients
            .get_mut(invite)
            .ok_or(TsxError::UnknownTransaction { role: Role::Client })?;
        let ClientTsx::Invite {
            tsx,
            cancel_pending,
        } = &mut entry.tsx
        else {
            return Err(TsxError::NotAnInvite);
        };
        match tsx.state() {
            TsxState::Calling => {
                *cancel_pending = true;
                Ok(CancelStart::Deferred(invite.with_method(Method::Cancel)))
            }
            TsxState::Proceeding => self.start_cancel(now, invite).map(CancelStart::Sent),
            state => Err(TsxError::InvalidState { state }),
        }
    }

    fn start_cancel(&mut self, now: Instant, invite: &TsxKey) -> Result<TsxKey, TsxError> {
        let Some(Entry {
            tsx: ClientTsx::Invite { tsx, .. },
            ..
        }) = self.clients.get(invite).map(|e| &**e)
        else {
            return Err(TsxError::UnknownTransaction { role: Role::Client });
        };
        let key = invite.with_method(Method::Cancel);
        if self.clients.contains_key(&key) {
            return Err(TsxError::DuplicateTransaction);
        }
        let invite_request = tsx
            .request()
            .ok_or(TsxError::InvalidState { state: tsx.state() })?;
        let bytes = self
            .builder
            .cancel(&invite_request)
            .ok_or(TsxError::Build)?;
        let request = TsxMessage::request(key, Method::Cancel, bytes);
        // §9.1: the CANCEL goes where the INVITE went.
        let (peer, timers) = (tsx.peer(), *tsx.timers());
        let sent = self.send_request_with(now, request, peer, timers)?;
        if let Some(Entry {
            tsx: ClientTsx::Invite { tsx, .. },
            ..
        }) = self.clients.get_mut(invite).map(|e| &mut **e)
        {
            tsx.cancelled(now);
        }
        self.sync_timer(Role::Client, invite);
        Ok(sent)
    }

    /// Brings the timer index up to date with the transaction's deadline; called after
    /// every change to a machine that does not go through [`settle`](Self::settle). The
    /// index gets the table's own key (the `key` given may be an equal one from the
    /// message at hand, which the index must not keep alive).
    fn sync_timer(&mut self, role: Role, key: &TsxKey) {
        let grid = self.config.linger_grid;
        match role {
            Role::Server => {
                if let Some((stored, e)) = self.servers.get_key_value(key) {
                    let timing = (e.tsx.deadline(), e.tsx.lingering());
                    let index = (&mut self.timers, &mut self.grid_epoch, grid);
                    refile(index, role, stored, e, timing);
                }
            }
            Role::Client => {
                if let Some((stored, e)) = self.clients.get_key_value(key) {
                    let timing = (e.tsx.deadline(), e.tsx.lingering());
                    let index = (&mut self.timers, &mut self.grid_epoch, grid);
                    refile(index, role, stored, e, timing);
                }
            }
        }
    }

    /// After any change to a transaction: removes it if it has terminated, telling the TU,
    /// and otherwise re-files its timer. One look-up of `key` when it goes on (its state,
    /// deadline and stored key read together).
    fn settle(&mut self, role: Role, key: &TsxKey) {
        let index = (
            &mut self.timers,
            &mut self.grid_epoch,
            self.config.linger_grid,
        );
        let terminated = match role {
            Role::Server => settle_in(&self.servers, key, index, role, |t| {
                (t.state(), t.deadline(), t.lingering())
            }),
            Role::Client => settle_in(&self.clients, key, index, role, |t| {
                (t.state(), t.deadline(), t.lingering())
            }),
        };
        if !terminated {
            return;
        }
        let removed = match role {
            Role::Server => self.servers.remove(key).map(|e| (e.seq, e.indexed.get())),
            Role::Client => self.clients.remove(key).map(|e| (e.seq, e.indexed.get())),
        };
        if let Some((seq, Some(deadline))) = removed {
            self.timers.remove(&(deadline, seq));
        }
        self.out.events.push_back(Event::Terminated {
            key: key.clone(),
            role,
        });
    }
}

/// [`Transactions::settle`] in the table of one role: whether `key`'s transaction has
/// terminated; if it goes on, its timer re-filed. `timing` reads the machine's state,
/// deadline and whether it lingers (the server and client machines are distinct types).
fn settle_in<T>(
    map: &ShardedTsxMap<Box<Entry<T>>>,
    key: &TsxKey,
    index: RefileIndex<'_>,
    role: Role,
    timing: impl Fn(&T) -> (TsxState, Option<Instant>, bool),
) -> bool {
    let Some((stored, e)) = map.get_key_value(key) else {
        return false;
    };
    let (state, deadline, lingering) = timing(&e.tsx);
    if state == TsxState::Terminated {
        return true;
    }
    refile(index, role, stored, e, (deadline, lingering));
    false
}

/// The timer index, the grid's epoch and the grid step, as [`refile`] changes them.
type RefileIndex<'a> = (&'a mut TimerIndex, &'a mut Option<Instant>, Duration);

/// Brings the timer index up to date with the deadline (and whether it lingers) of the
/// transaction `entry`, filed under the table's own key `stored` (the key a caller holds may
/// be an equal one from the message at hand, which the index must not keep alive).
fn refile<T>(
    (timers, grid_epoch, grid): RefileIndex<'_>,
    role: Role,
    stored: &TsxKey,
    entry: &Entry<T>,
    (deadline, lingering): (Option<Instant>, bool),
) {
    let deadline = match deadline {
        Some(d) if lingering && !grid.is_zero() => {
            let epoch = *grid_epoch.get_or_insert(d);
            Some(round_up(d, epoch, grid))
        }
        other => other,
    };
    let indexed = entry.indexed.get();
    if indexed == deadline {
        return;
    }
    if let Some(old) = indexed {
        timers.remove(&(old, entry.seq));
    }
    if let Some(new) = deadline {
        timers.insert((new, entry.seq), (role, stored.clone()));
    }
    entry.indexed.set(deadline);
}

/// The first instant at or after `d` on the grid of `step` through `epoch` (which may lie
/// on either side of `d`).
fn round_up(d: Instant, epoch: Instant, step: Duration) -> Instant {
    // In u64 nanoseconds when they fit (584 years): a u128 division is a library call
    // (~0.1 k instructions per timer re-filed).
    if let (Ok(step_ns), true) = (u64::try_from(step.as_nanos()), d >= epoch)
        && let Ok(off) = u64::try_from((d - epoch).as_nanos())
        && step_ns > 0
    {
        let k = off.div_ceil(step_ns);
        let rounded = Duration::from_nanos(k.saturating_mul(step_ns));
        return epoch.checked_add(rounded).unwrap_or(d);
    }
    let step_ns = step.as_nanos();
    if d >= epoch {
        let off = (d - epoch).as_nanos();
        let k = off.div_ceil(step_ns);
        let rounded = Duration::from_nanos(u64::try_from(k * step_ns).unwrap_or(u64::MAX));
        epoch.checked_add(rounded).unwrap_or(d)
    } else {
        // Grid points below the epoch: epoch - m·step with m·step ≤ epoch - d, so ≥ d.
        let off = (epoch - d).as_nanos();
        let m = off / step_ns;
        let back = Duration::from_nanos(u64::try_from(m * step_ns).unwrap_or(0));
        epoch - back
    }
}

#[cfg(test)]
mod tests;

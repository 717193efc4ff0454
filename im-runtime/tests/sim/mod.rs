//! Virtual-time harness for the sans-IO core: one base instant, a clock that only moves by
//! jumping to the next deadline, and a fake message builder so the transaction layer can be
//! driven without the SIP parser.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use im_runtime::Method;
use im_runtime::proto::transaction::{
    Event, MessageBuilder, Peer, Role, Transactions, TransactionsConfig, TsxKey, TsxMessage,
    TsxState,
};

/// The single clock read of the simulations: every other instant is `base() + offset`.
#[allow(clippy::disallowed_methods)] // the one base instant a virtual clock needs
pub(crate) fn base() -> Instant {
    Instant::now()
}

/// Milliseconds as a duration (readable schedules).
pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A UDP peer.
pub(crate) fn udp() -> Peer {
    Peer {
        addr: SocketAddr::from(([192, 0, 2, 1], 5060)),
        reliable: false,
    }
}

/// A TCP peer.
pub(crate) fn tcp() -> Peer {
    Peer {
        addr: SocketAddr::from(([192, 0, 2, 1], 5060)),
        reliable: true,
    }
}

/// The key of a request with `method` and `branch` from `client.example.com`.
pub(crate) fn key(method: &Method, branch: &str) -> TsxKey {
    TsxKey::from_branch(method, branch, "client.example.com")
}

/// A request; its bytes read `INVITE z9hG4bK1` so transmits are easy to tell apart.
pub(crate) fn req(method: Method, branch: &str) -> TsxMessage {
    let bytes = Bytes::from(format!("{method} {branch}"));
    TsxMessage::request(key(&method, branch), method, bytes)
}

/// A response; its bytes read `200 INVITE z9hG4bK1`.
pub(crate) fn resp(method: Method, branch: &str, status: u16) -> TsxMessage {
    let bytes = Bytes::from(format!("{status} {method} {branch}"));
    TsxMessage::response(key(&method, branch), method, status, bytes)
}

/// Writes recognisable stand-ins for the messages the table builds itself; `fail` makes
/// every build return `None`.
#[derive(Debug, Default)]
pub(crate) struct FakeBuilder {
    pub(crate) fail: bool,
}

impl MessageBuilder for FakeBuilder {
    fn response(&mut self, request: &TsxMessage, status: u16) -> Option<Bytes> {
        let req = String::from_utf8_lossy(&request.bytes);
        (!self.fail).then(|| Bytes::from(format!("{status} to {req}")))
    }

    fn ack(&mut self, invite: &TsxMessage, response: &TsxMessage) -> Option<Bytes> {
        let inv = String::from_utf8_lossy(&invite.bytes);
        let status = response.status.unwrap_or(0);
        (!self.fail).then(|| Bytes::from(format!("ACK {status} for {inv}")))
    }

    fn cancel(&mut self, invite: &TsxMessage) -> Option<Bytes> {
        let inv = String::from_utf8_lossy(&invite.bytes);
        (!self.fail).then(|| Bytes::from(format!("CANCEL for {inv}")))
    }
}

/// A transaction table on a virtual clock, with everything it sent and reported, stamped
/// with the virtual time.
pub(crate) struct Sim {
    pub(crate) base: Instant,
    pub(crate) now: Instant,
    pub(crate) tsx: Transactions<FakeBuilder>,
    /// (time since base, bytes as text) of every transmit.
    pub(crate) sent: Vec<(Duration, String)>,
    /// (time since base, event) of every event.
    pub(crate) events: Vec<(Duration, Event)>,
}

impl Sim {
    pub(crate) fn new(config: TransactionsConfig) -> Sim {
        let base = base();
        Sim {
            base,
            now: base,
            tsx: Transactions::new(config, FakeBuilder::default()),
            sent: Vec::new(),
            events: Vec::new(),
        }
    }

    pub(crate) fn default_config() -> Sim {
        Sim::new(TransactionsConfig::default())
    }

    /// The virtual time since the base.
    pub(crate) fn elapsed(&self) -> Duration {
        self.now - self.base
    }

    /// Drains transmits and events into the logs, in the documented order.
    pub(crate) fn drain(&mut self) {
        let t = self.elapsed();
        while let Some(tx) = self.tsx.poll_transmit() {
            self.sent
                .push((t, String::from_utf8_lossy(&tx.bytes).into_owned()));
        }
        while let Some(ev) = self.tsx.poll_event() {
            self.events.push((t, ev));
        }
    }

    /// Runs every timer due up to `base + until` (jumping the clock from deadline to
    /// deadline), then leaves the clock at `base + until`.
    pub(crate) fn run_until(&mut self, until: Duration) {
        let end = self.base + until;
        while let Some(deadline) = self.tsx.poll_timeout() {
            if deadline > end {
                break;
            }
            assert!(
                deadline >= self.now,
                "a deadline in the past was not handled"
            );
            self.now = deadline;
            self.tsx.handle_timeout(deadline);
            self.drain();
        }
        self.now = end;
    }

    /// Runs until no timer is left; the guard stops a runaway retransmission loop.
    pub(crate) fn run_to_idle(&mut self) {
        let mut guard = 0;
        while let Some(deadline) = self.tsx.poll_timeout() {
            guard += 1;
            assert!(guard < 10_000, "timers never settle");
            self.now = self.now.max(deadline);
            self.tsx.handle_timeout(deadline);
            self.drain();
        }
    }

    pub(crate) fn request(&mut self, msg: TsxMessage, peer: Peer) {
        self.tsx.handle_request(self.now, msg, peer).unwrap();
        self.drain();
    }

    pub(crate) fn response(&mut self, msg: TsxMessage) {
        self.tsx.handle_response(self.now, msg).unwrap();
        self.drain();
    }

    pub(crate) fn send(&mut self, msg: TsxMessage, peer: Peer) -> TsxKey {
        let key = self.tsx.send_request(self.now, msg, peer).unwrap();
        self.drain();
        key
    }

    pub(crate) fn reply(&mut self, key: &TsxKey, status: u16) {
        self.tsx.reply(self.now, key, status).unwrap();
        self.drain();
    }

    /// Times (in ms since base) at which exactly `text` was sent.
    pub(crate) fn sent_at(&self, text: &str) -> Vec<u64> {
        self.sent
            .iter()
            .filter(|(_, s)| s == text)
            .map(|(t, _)| t.as_millis() as u64)
            .collect()
    }

    /// Takes the sent log, leaving it empty.
    pub(crate) fn take_sent(&mut self) -> Vec<String> {
        std::mem::take(&mut self.sent)
            .into_iter()
            .map(|(_, s)| s)
            .collect()
    }

    /// Takes the event log, leaving it empty.
    pub(crate) fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
            .into_iter()
            .map(|(_, e)| e)
            .collect()
    }

    pub(crate) fn state(&self, role: Role, key: &TsxKey) -> Option<TsxState> {
        self.tsx.state(role, key)
    }
}

/// Reads back what [`req`], [`resp`] and [`FakeBuilder`] write: the stand-in for the SIP
/// parser in two-table simulations. `None` for anything else.
pub(crate) fn parse_fake(bytes: &[u8]) -> Option<TsxMessage> {
    let text = std::str::from_utf8(bytes).ok()?;
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let branch = *tokens.last()?;
    let bytes = Bytes::copy_from_slice(bytes);
    match tokens.first()?.parse::<u16>() {
        // "486 to INVITE z9hG4bK1", "200 to CANCEL for INVITE z9hG4bK1", "200 MESSAGE z9hG4bK1"
        Ok(status) => {
            let method = if tokens.get(1) == Some(&"to") {
                tokens.get(2)?
            } else {
                tokens.get(1)?
            };
            let method = Method::from_token(method);
            Some(TsxMessage::response(
                key(&method, branch),
                method,
                status,
                bytes,
            ))
        }
        // "INVITE z9hG4bK1", "ACK 486 for INVITE z9hG4bK1", "CANCEL for INVITE z9hG4bK1"
        Err(_) => {
            let method = Method::from_token(tokens.first()?);
            Some(TsxMessage::request(key(&method, branch), method, bytes))
        }
    }
}

/// A small deterministic generator (xorshift64*), so every simulated run is reproducible
/// from its seed.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// `true` with `pct` percent probability.
    pub(crate) fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// Which table a packet is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Client,
    Server,
}

/// A sans-IO network emulator: loss, duplication and random delay (hence reordering).
#[derive(Debug)]
pub(crate) struct Net {
    pub(crate) rng: Rng,
    pub(crate) loss_pct: u64,
    pub(crate) dup_pct: u64,
    pub(crate) max_delay: Duration,
    in_flight: Vec<(Instant, u64, Side, Bytes)>,
    seq: u64,
    pub(crate) sent: usize,
    pub(crate) dropped: usize,
}

impl Net {
    pub(crate) fn new(seed: u64, loss_pct: u64, dup_pct: u64, max_delay: Duration) -> Net {
        Net {
            rng: Rng::new(seed),
            loss_pct,
            dup_pct,
            max_delay,
            in_flight: Vec::new(),
            seq: 0,
            sent: 0,
            dropped: 0,
        }
    }

    pub(crate) fn send(&mut self, now: Instant, to: Side, bytes: Bytes) {
        self.sent += 1;
        let copies = if self.rng.chance(self.dup_pct) { 2 } else { 1 };
        for _ in 0..copies {
            if self.rng.chance(self.loss_pct) {
                self.dropped += 1;
                continue;
            }
            let delay = ms(self.rng.below(self.max_delay.as_millis() as u64 + 1));
            self.seq += 1;
            self.in_flight
                .push((now + delay, self.seq, to, bytes.clone()));
        }
    }

    pub(crate) fn next_delivery(&self) -> Option<Instant> {
        self.in_flight.iter().map(|(at, ..)| *at).min()
    }

    /// Packets due at or before `now`, in arrival order.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<(Side, Bytes)> {
        let (mut due, rest): (Vec<_>, Vec<_>) =
            self.in_flight.drain(..).partition(|(at, ..)| *at <= now);
        self.in_flight = rest;
        due.sort_by_key(|(at, seq, ..)| (*at, *seq));
        due.into_iter().map(|(_, _, to, b)| (to, b)).collect()
    }
}

/// Two tables, a UAC and a UAS, wired through a [`Net`]. The UAS's TU answers every new
/// request with `final_status` after `answer_delay`, and a CANCELled INVITE with 487.
pub(crate) struct Pair {
    pub(crate) base: Instant,
    pub(crate) now: Instant,
    pub(crate) client: Transactions<FakeBuilder>,
    pub(crate) server: Transactions<FakeBuilder>,
    pub(crate) net: Net,
    pub(crate) reliable: bool,
    pub(crate) final_status: u16,
    pub(crate) answer_delay: Duration,
    answers: Vec<(Instant, TsxKey, u16)>,
    pub(crate) client_events: Vec<Event>,
    pub(crate) server_events: Vec<Event>,
}

impl Pair {
    pub(crate) fn new(net: Net, reliable: bool, final_status: u16, answer_delay: Duration) -> Pair {
        let base = base();
        Pair {
            base,
            now: base,
            client: Transactions::new(TransactionsConfig::default(), FakeBuilder::default()),
            server: Transactions::new(TransactionsConfig::default(), FakeBuilder::default()),
            net,
            reliable,
            final_status,
            answer_delay,
            answers: Vec::new(),
            client_events: Vec::new(),
            server_events: Vec::new(),
        }
    }

    fn peer(&self) -> Peer {
        Peer {
            reliable: self.reliable,
            ..udp()
        }
    }

    fn drain(&mut self) {
        while let Some(tx) = self.client.poll_transmit() {
            self.net.send(self.now, Side::Server, tx.bytes);
        }
        while let Some(tx) = self.server.poll_transmit() {
            self.net.send(self.now, Side::Client, tx.bytes);
        }
        while let Some(ev) = self.client.poll_event() {
            self.client_events.push(ev);
        }
        while let Some(ev) = self.server.poll_event() {
            match &ev {
                Event::Request { message, .. } => {
                    let at = self.now + self.answer_delay;
                    self.answers
                        .push((at, message.key.clone(), self.final_status));
                }
                Event::Cancelled { invite } => self.answers.push((self.now, invite.clone(), 487)),
                _ => {}
            }
            self.server_events.push(ev);
        }
    }

    pub(crate) fn start(&mut self, request: TsxMessage) -> TsxKey {
        let peer = self.peer();
        let key = self.client.send_request(self.now, request, peer).unwrap();
        self.drain();
        key
    }

    /// Runs until nothing is in flight, no answer is pending and no timer runs; returns
    /// `false` if that takes more than `limit` of virtual time.
    pub(crate) fn run(&mut self, limit: Duration) -> bool {
        let peer = self.peer();
        loop {
            self.drain();
            let next = [
                self.client.poll_timeout(),
                self.server.poll_timeout(),
                self.net.next_delivery(),
                self.answers.iter().map(|(at, ..)| *at).min(),
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next else { return true };
            if next > self.base + limit {
                return false;
            }
            self.now = self.now.max(next);
            for (to, bytes) in self.net.take_due(self.now) {
                let Some(msg) = parse_fake(&bytes) else {
                    continue;
                };
                let table = match to {
                    Side::Client => &mut self.client,
                    Side::Server => &mut self.server,
                };
                // A request delivered to the client (or a response to the server) is a
                // routing bug in the harness, so unwrap is the right alarm here.
                if msg.is_request() {
                    table.handle_request(self.now, msg, peer).unwrap();
                } else {
                    table.handle_response(self.now, msg).unwrap();
                }
                self.drain();
            }
            let now = self.now;
            let (due, rest): (Vec<_>, Vec<_>) =
                self.answers.drain(..).partition(|(at, ..)| *at <= now);
            self.answers = rest;
            for (_, key, status) in due {
                // The INVITE may have been answered already (487 after a CANCEL).
                let _ = self.server.reply(now, &key, status);
                self.drain();
            }
            if self.client.poll_timeout().is_some_and(|t| t <= now) {
                self.client.handle_timeout(now);
            }
            if self.server.poll_timeout().is_some_and(|t| t <= now) {
                self.server.handle_timeout(now);
            }
        }
    }
}

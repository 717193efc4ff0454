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

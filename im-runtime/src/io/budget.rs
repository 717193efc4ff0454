//! The connection budgets: how many SIP and MSRP connections may be open at once, and from
//! one source, shared by every accept loop and outgoing connect of a driver.

use super::IoLimits;
use super::stats::{IoStats, bump};
use crate::transport::StreamKind;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The connection budgets shared by every accept loop and outgoing connect.
#[derive(Debug)]
pub(super) struct Budget {
    max_sip: usize,
    max_msrp: usize,
    per_source: usize,
    sip: AtomicUsize,
    msrp: AtomicUsize,
    sources: Mutex<HashMap<IpAddr, usize>>,
    /// Accepted connections still waiting for their first head, per kind (SIP, MSRP), oldest
    /// first: when a budget is full, the oldest of them makes room for a newcomer.
    waiting: Mutex<[WaitList; 2]>,
    pub(super) stats: Arc<IoStats>,
}

impl Budget {
    pub(super) fn new(l: &IoLimits) -> Self {
        Budget {
            max_sip: l.max_sip_connections,
            max_msrp: l.max_msrp_connections,
            per_source: l.max_connections_per_source,
            sip: AtomicUsize::new(0),
            msrp: AtomicUsize::new(0),
            sources: Mutex::new(HashMap::new()),
            waiting: Mutex::new(Default::default()),
            stats: Arc::new(IoStats::default()),
        }
    }

    /// A protocol's budget is shared by its TCP and TLS connections.
    pub(super) fn count(&self, kind: StreamKind) -> (&AtomicUsize, usize) {
        match kind.protocol() {
            StreamKind::Msrp => (&self.msrp, self.max_msrp),
            _ => (&self.sip, self.max_sip),
        }
    }

    /// A slot for a new connection of `kind`, from `source` when it was accepted; `None`
    /// (counted and logged) when a budget is full.
    pub(super) fn admit(
        self: &Arc<Self>,
        kind: StreamKind,
        source: Option<SocketAddr>,
    ) -> Option<Permit> {
        let ip = source.map(|a| a.ip());
        if let Some(ip) = ip {
            let mut m = self.sources.lock().unwrap_or_else(|e| e.into_inner());
            let c = m.entry(ip).or_insert(0);
            if *c >= self.per_source {
                drop(m);
                if let Some(k) = bump(&self.stats.refused_per_source) {
                    tracing::warn!(%ip, max = self.per_source, refused = k,
                        "too many connections from one source: refusing");
                }
                return None;
            }
            *c += 1;
        }
        // From here on the permit gives the source slot back when dropped.
        let permit = Permit {
            budget: self.clone(),
            kind,
            ip,
            counted: false,
        };
        let (n, max) = self.count(kind);
        if n.fetch_add(1, Ordering::Relaxed) >= max {
            // An accepted newcomer takes the place of the oldest connection that has not sent
            // a complete head yet (no one's good connection). The count is over by one until
            // that connection's reader ends, a moment later.
            let evict = if source.is_some() {
                self.pop_waiting(kind)
            } else {
                None
            };
            let Some(evict) = evict else {
                n.fetch_sub(1, Ordering::Relaxed);
                if source.is_some()
                    && let Some(k) = bump(&self.stats.refused_budget)
                {
                    tracing::warn!(?kind, max, refused = k, "connection budget full: refusing");
                }
                return None;
            };
            evict.notify_one();
            if let Some(k) = bump(&self.stats.evicted) {
                tracing::warn!(
                    ?kind,
                    max,
                    evicted = k,
                    "connection budget full: closing the oldest connection without a head"
                );
            }
        }
        if source.is_some() {
            self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        }
        let mut permit = permit;
        permit.counted = true;
        Some(permit)
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, [WaitList; 2]> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn slot(kind: StreamKind) -> usize {
        match kind.protocol() {
            StreamKind::Msrp => 1,
            _ => 0,
        }
    }

    /// Registers an accepted connection as waiting for its first head; `evict` is notified
    /// when a newcomer needs its slot.
    pub(super) fn wait(&self, kind: StreamKind, seq: u64, evict: Arc<tokio::sync::Notify>) {
        self.waiting()[Self::slot(kind)].insert(seq, evict);
    }

    /// The connection has its head, or is gone.
    pub(super) fn done_waiting(&self, kind: StreamKind, seq: u64) {
        self.waiting()[Self::slot(kind)].remove(&seq);
    }

    fn pop_waiting(&self, kind: StreamKind) -> Option<Arc<tokio::sync::Notify>> {
        self.waiting()[Self::slot(kind)].pop_first().map(|(_, n)| n)
    }
}

type WaitList = std::collections::BTreeMap<u64, Arc<tokio::sync::Notify>>;

/// A connection's slot in the budgets, given back when the connection ends.
pub(super) struct Permit {
    pub(super) budget: Arc<Budget>,
    kind: StreamKind,
    ip: Option<IpAddr>,
    /// Whether the kind's budget counts this connection (not yet while admitting).
    counted: bool,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.counted {
            self.budget
                .count(self.kind)
                .0
                .fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(ip) = self.ip {
            let mut m = self
                .budget
                .sources
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(c) = m.get_mut(&ip) {
                *c -= 1;
                if *c == 0 {
                    m.remove(&ip);
                }
            }
        }
    }
}

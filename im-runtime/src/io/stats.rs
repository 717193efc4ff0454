//! The IO layer's counters: connections refused, closed and evicted, UDP system calls and
//! INVITE latency, shared by every loop (monotonic, for logs, metrics and tests).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(doc)]
use super::IoLimits;
use super::{InviteLatency, UdpCounters};
#[cfg(doc)]
use crate::transport::Output;

/// Counters of the connection limits and timeouts (monotonic, for logs and tests).
#[derive(Debug, Default)]
pub struct IoStats {
    pub(super) accepted: AtomicU64,
    pub(super) refused_budget: AtomicU64,
    pub(super) refused_per_source: AtomicU64,
    pub(super) closed_head_timeout: AtomicU64,
    pub(super) closed_idle_timeout: AtomicU64,
    pub(super) closed_handshake: AtomicU64,
    pub(super) evicted: AtomicU64,
    pub(super) closed_conn_idle: AtomicU64,
    pub(super) invite_latency: InviteLatency,
    pub(super) udp: Arc<UdpCounters>,
}

impl IoStats {
    /// UDP system calls and the datagrams they carried.
    pub fn udp(&self) -> &UdpCounters {
        &self.udp
    }
    /// Initial INVITEs over UDP: from arrival (the kernel's receive stamp) to the final
    /// response's send, by outcome.
    pub fn invite_latency(&self) -> &InviteLatency {
        &self.invite_latency
    }
    /// Connections accepted and served.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
    /// Accepted connections closed at once because their protocol's budget was full.
    pub fn refused_budget(&self) -> u64 {
        self.refused_budget.load(Ordering::Relaxed)
    }
    /// Accepted connections closed at once because their source address had too many.
    pub fn refused_per_source(&self) -> u64 {
        self.refused_per_source.load(Ordering::Relaxed)
    }
    /// Connections closed because their first message head was not complete in time.
    pub fn closed_head_timeout(&self) -> u64 {
        self.closed_head_timeout.load(Ordering::Relaxed)
    }
    /// Connections still without a complete first head closed to make room for a newcomer
    /// when their protocol's budget was full.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }
    /// Connections closed because they sent nothing in time.
    pub fn closed_idle_timeout(&self) -> u64 {
        self.closed_idle_timeout.load(Ordering::Relaxed)
    }
    /// Accepted TLS connections whose handshake failed or did not finish in time.
    pub fn closed_handshake(&self) -> u64 {
        self.closed_handshake.load(Ordering::Relaxed)
    }
    /// SIP connections (accepted, or opened by a core) closed because no core used them
    /// ([`Output::ConnUse`]) and they stayed silent for [`IoLimits::conn_idle_timeout`].
    pub fn closed_conn_idle(&self) -> u64 {
        self.closed_conn_idle.load(Ordering::Relaxed)
    }
}

/// Counts `c` up and says whether this occurrence should be logged: the 1st, 2nd, 4th, 8th…
/// so that a flood is visible in the log without writing a line per connection.
pub(super) fn bump(c: &AtomicU64) -> Option<u64> {
    let n = c.fetch_add(1, Ordering::Relaxed) + 1;
    n.is_power_of_two().then_some(n)
}

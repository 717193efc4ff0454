//! RFC 3261 §17 timers (Table 4) and the RFC 6026 additions, as deadlines.

use std::time::{Duration, Instant};

/// A transaction timer, named as in RFC 3261 Table 4 and RFC 6026 §8.11.
///
/// Timer C belongs to proxies and is not kept here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// INVITE request retransmit interval, unreliable transports only (T1, doubling).
    A,
    /// INVITE client transaction timeout (64·T1).
    B,
    /// Wait time for response retransmissions in the INVITE client Completed state
    /// (≥ 32 s unreliable, 0 reliable).
    D,
    /// Non-INVITE request retransmit interval, unreliable only (T1 doubling up to T2; T2 in
    /// Proceeding).
    E,
    /// Non-INVITE client transaction timeout (64·T1).
    F,
    /// INVITE non-2xx final response retransmit interval, unreliable only (T1 doubling up
    /// to T2).
    G,
    /// Wait time for the ACK to a non-2xx final response (64·T1).
    H,
    /// Wait time for ACK retransmissions in the INVITE server Confirmed state (T4
    /// unreliable, 0 reliable).
    I,
    /// Wait time for non-INVITE request retransmissions in the server Completed state
    /// (64·T1 unreliable, 0 reliable).
    J,
    /// Wait time for response retransmissions in the non-INVITE client Completed state (T4
    /// unreliable, 0 reliable).
    K,
    /// RFC 6026: wait time for INVITE retransmissions and 2xx-ACKs in the INVITE server
    /// Accepted state (64·T1).
    L,
    /// RFC 6026: wait time for 2xx retransmissions in the INVITE client Accepted state
    /// (64·T1).
    M,
}

/// The timer base values of RFC 3261 §17 (Table 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate; 500 ms by default.
    pub t1: Duration,
    /// The longest retransmit interval for non-INVITE requests and INVITE responses; 4 s.
    pub t2: Duration,
    /// The longest time a message stays in the network; 5 s.
    pub t4: Duration,
    /// Timer D on unreliable transports; RFC 3261 asks for at least 32 s.
    pub timer_d: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            timer_d: Duration::from_secs(32),
        }
    }
}

impl TimerConfig {
    /// 64·T1: Timers B, F, H, J (unreliable), L and M.
    pub fn t1_x64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
}

/// A retransmission timer: when it fires next and the interval it was armed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Retransmit {
    pub(crate) at: Instant,
    pub(crate) interval: Duration,
}

impl Retransmit {
    /// Armed at `now + interval`.
    pub(crate) fn start(now: Instant, interval: Duration) -> Retransmit {
        Retransmit {
            at: now + interval,
            interval,
        }
    }

    /// Re-armed after firing at `now` with the interval doubled, capped at `cap` when given
    /// (Timers E and G cap at T2; Timer A does not cap). Counted from `now`, not from the
    /// missed deadline, so a driver that wakes late sends one retransmission, not a burst.
    pub(crate) fn backoff(self, now: Instant, cap: Option<Duration>) -> Retransmit {
        let doubled = self.interval.saturating_mul(2);
        let interval = cap.map_or(doubled, |cap| doubled.min(cap));
        Retransmit::start(now, interval)
    }
}

/// The earliest of some optional deadlines.
pub(crate) fn earliest(deadlines: impl IntoIterator<Item = Option<Instant>>) -> Option<Instant> {
    deadlines.into_iter().flatten().min()
}

//! Counters an operator reads while the endpoint runs ([`LiveStats`]): sessions started
//! and ended, invitee legs by outcome, responses by status and by the spec rule that chose
//! them, MSRP bytes, and latency histograms (originator INVITE → its 2xx, originator
//! message → last copy delivered).
//!
//! [`Endpoint::stats`](super::Endpoint::stats) is a plain struct only reachable once the
//! driver hands the endpoint back; these live behind an `Arc` the embedder takes before
//! the driver runs ([`Endpoint::live_stats`](super::Endpoint::live_stats)). Each endpoint
//! (worker) has its own, so workers never contend on them: counters are relaxed atomics,
//! and the one map (responses by rule) takes an uncontended lock per response. A reader
//! merges the workers' [`LiveSnapshot`]s.
//!
//! Sans-IO: every instant comes from the endpoint's inputs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::machine::Origin;
use crate::shrink::ShrinkIdle;

use super::SessionId;

/// Upper bounds of the latency histograms' buckets, in seconds (the last, +Inf, is
/// implied).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
];

/// How an invitee leg (or a MESSAGE copy) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LegOutcome {
    /// A 2xx.
    Answered,
    /// A final response of 300 or more.
    Rejected,
    /// No final response in time (Timer B/F).
    TimedOut,
    /// No route to the invitee: the leg failed before any request was sent.
    NoRoute,
}

impl LegOutcome {
    /// Every outcome, in a fixed order.
    pub const ALL: [LegOutcome; 4] = [
        LegOutcome::Answered,
        LegOutcome::Rejected,
        LegOutcome::TimedOut,
        LegOutcome::NoRoute,
    ];

    /// A short lowercase label.
    pub fn as_str(self) -> &'static str {
        match self {
            LegOutcome::Answered => "answered",
            LegOutcome::Rejected => "rejected",
            LegOutcome::TimedOut => "timeout",
            LegOutcome::NoRoute => "no_route",
        }
    }
}

/// Which responses one count covers: the status and, when a spec rule chose it, the rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResponseKey {
    /// The status code.
    pub status: u16,
    /// The procedure of the rule, or `runtime` when the runtime answered by itself.
    pub procedure: &'static str,
    /// The clause of the rule (empty for the runtime).
    pub clause: &'static str,
    /// The rule's name (empty for the runtime).
    pub rule: &'static str,
}

/// A fixed-bucket latency histogram over [`LATENCY_BUCKETS`], lock-free so that every
/// worker (and every IO loop) can observe into it and a scrape can read it at any time.
#[derive(Debug, Default)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub(crate) fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            count: self.count.load(Ordering::Relaxed),
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// A histogram's values at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// Observations per bucket of [`LATENCY_BUCKETS`] (not cumulative); those above the
    /// last bound are only in `count`.
    pub buckets: [u64; LATENCY_BUCKETS.len()],
    /// Observations in all.
    pub count: u64,
    /// Sum of the observations, in seconds.
    pub sum_seconds: f64,
}

impl HistogramSnapshot {
    /// `(upper bound, count)` per bucket, `+Inf` (what is above the last bound) last, not
    /// cumulative: the form `prometheus-client`'s histogram encoder takes (it adds them up).
    pub fn buckets_with_inf(&self) -> Vec<(f64, u64)> {
        let mut out: Vec<(f64, u64)> = LATENCY_BUCKETS.iter().copied().zip(self.buckets).collect();
        let below: u64 = self.buckets.iter().sum();
        out.push((f64::INFINITY, self.count.saturating_sub(below)));
        out
    }

    fn merge(&mut self, o: &HistogramSnapshot) {
        for (a, b) in self.buckets.iter_mut().zip(o.buckets) {
            *a += b;
        }
        self.count += o.count;
        self.sum_seconds += o.sum_seconds;
    }
}

/// One endpoint's live counters; see the module documentation.
#[derive(Debug, Default)]
pub struct LiveStats {
    sessions_started: AtomicU64,
    sessions_ended: AtomicU64,
    legs: [AtomicU64; LegOutcome::ALL.len()],
    msrp_bytes_received: AtomicU64,
    msrp_bytes_delivered: AtomicU64,
    responses: Mutex<HashMap<ResponseKey, u64>>,
    invite_to_ok: Histogram,
    message_to_last_copy: Histogram,
}

/// The values of one or more endpoints' [`LiveStats`] at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveSnapshot {
    /// Sessions created (initial requests admitted).
    pub sessions_started: u64,
    /// Sessions ended and forgotten.
    pub sessions_ended: u64,
    /// Legs by outcome, in the order of [`LegOutcome::ALL`].
    pub legs: [u64; LegOutcome::ALL.len()],
    /// MSRP message bytes received from originators.
    pub msrp_bytes_received: u64,
    /// MSRP message bytes delivered to invitees (one count per confirmed copy).
    pub msrp_bytes_delivered: u64,
    /// Responses sent (first transmissions, not retransmissions), by status and rule.
    pub responses: Vec<(ResponseKey, u64)>,
    /// Originator INVITE received → its 2xx sent.
    pub invite_to_ok: HistogramSnapshot,
    /// Originator message received (a MESSAGE, or an MSRP SEND complete) → its last copy
    /// confirmed (a MESSAGE copy's 2xx, an MSRP copy's 200), per session that had one.
    pub message_to_last_copy: HistogramSnapshot,
}

impl LiveSnapshot {
    /// Sessions started and not yet ended.
    pub fn sessions_live(&self) -> u64 {
        self.sessions_started.saturating_sub(self.sessions_ended)
    }

    /// Legs that ended with `o`.
    pub fn legs(&self, o: LegOutcome) -> u64 {
        LegOutcome::ALL
            .iter()
            .position(|x| *x == o)
            .map_or(0, |i| self.legs[i])
    }

    /// Adds `o` (another worker's snapshot) to this one.
    pub fn merge(&mut self, o: &LiveSnapshot) {
        self.sessions_started += o.sessions_started;
        self.sessions_ended += o.sessions_ended;
        for (a, b) in self.legs.iter_mut().zip(o.legs) {
            *a += b;
        }
        self.msrp_bytes_received += o.msrp_bytes_received;
        self.msrp_bytes_delivered += o.msrp_bytes_delivered;
        let mut all: HashMap<ResponseKey, u64> = self.responses.drain(..).collect();
        for (k, n) in &o.responses {
            *all.entry(*k).or_default() += n;
        }
        self.responses = all.into_iter().collect();
        self.responses.sort();
        self.invite_to_ok.merge(&o.invite_to_ok);
        self.message_to_last_copy.merge(&o.message_to_last_copy);
    }
}

impl LiveStats {
    /// The values now.
    pub fn snapshot(&self) -> LiveSnapshot {
        let mut responses: Vec<(ResponseKey, u64)> = self
            .responses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, n)| (*k, *n))
            .collect();
        responses.sort();
        LiveSnapshot {
            sessions_started: self.sessions_started.load(Ordering::Relaxed),
            sessions_ended: self.sessions_ended.load(Ordering::Relaxed),
            legs: std::array::from_fn(|i| self.legs[i].load(Ordering::Relaxed)),
            msrp_bytes_received: self.msrp_bytes_received.load(Ordering::Relaxed),
            msrp_bytes_delivered: self.msrp_bytes_delivered.load(Ordering::Relaxed),
            responses,
            invite_to_ok: self.invite_to_ok.snapshot(),
            message_to_last_copy: self.message_to_last_copy.snapshot(),
        }
    }
}

/// When a session's message came and its last copy was confirmed.
#[derive(Debug)]
struct Timing {
    started: Instant,
    message_at: Option<Instant>,
    last_copy_at: Option<Instant>,
    /// MESSAGE copies sent and not yet answered: a MESSAGE session may end before its
    /// copies are answered, and its latency is known only once they all are.
    copies_pending: u32,
    /// The session ended and this waits for its copies (counted in `lingering`).
    ended: bool,
}

/// At most this many ended sessions wait for their MESSAGE copies' answers (each copy's
/// transaction ends by Timer F anyway; this only bounds memory under a flood).
const MAX_LINGERING: usize = 65_536;

/// The endpoint's side: the shared counters and the per-session instants the latencies
/// are measured from (kept here, not in the shared part, as only the endpoint needs them).
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub(crate) stats: Arc<LiveStats>,
    timing: HashMap<SessionId, Timing>,
    lingering: usize,
}

fn add(a: &AtomicU64, n: u64) {
    a.fetch_add(n, Ordering::Relaxed);
}

impl Live {
    /// A session was created for an initial request; `is_message`: the request is the
    /// message itself (a MESSAGE to a group or list).
    pub(crate) fn session_started(&mut self, now: Instant, sid: SessionId, is_message: bool) {
        add(&self.stats.sessions_started, 1);
        self.timing.insert(
            sid,
            Timing {
                started: now,
                message_at: is_message.then_some(now),
                last_copy_at: None,
                copies_pending: 0,
                ended: false,
            },
        );
    }

    /// Gives back the capacity of a peak of live sessions.
    pub(crate) fn shrink_idle(&mut self) {
        self.timing.shrink_idle();
    }

    /// Slots of the per-session table.
    pub(crate) fn slots(&self) -> usize {
        self.timing.capacity()
    }

    /// Observes the session's message latency, if it had one, and forgets it.
    fn finish(&mut self, sid: SessionId) {
        if let Some(t) = self.timing.remove(&sid) {
            if t.ended {
                // It was waiting for its copies.
                self.lingering -= 1;
            }
            if let (Some(m), Some(l)) = (t.message_at, t.last_copy_at) {
                self.stats
                    .message_to_last_copy
                    .observe(l.saturating_duration_since(m));
            }
        }
    }

    /// The session is gone: its message latency, if it had one, is observed (once its
    /// MESSAGE copies are all answered).
    pub(crate) fn session_ended(&mut self, sid: SessionId) {
        add(&self.stats.sessions_ended, 1);
        let linger = self.lingering < MAX_LINGERING;
        match self.timing.get_mut(&sid) {
            Some(t) if t.copies_pending > 0 && linger => {
                t.ended = true;
                self.lingering += 1;
            }
            _ => self.finish(sid),
        }
    }

    /// A MESSAGE copy was sent.
    pub(crate) fn copy_sent(&mut self, sid: SessionId) {
        if let Some(t) = self.timing.get_mut(&sid) {
            t.copies_pending += 1;
        }
    }

    /// A MESSAGE copy got its final answer (`delivered`: a 2xx) or failed.
    pub(crate) fn copy_done(&mut self, now: Instant, sid: SessionId, delivered: bool) {
        let Some(t) = self.timing.get_mut(&sid) else {
            return;
        };
        t.copies_pending = t.copies_pending.saturating_sub(1);
        if delivered {
            t.last_copy_at = Some(now);
        }
        if t.ended && t.copies_pending == 0 {
            self.finish(sid);
        }
    }

    /// A response went out for the first time; `origin` is the rule that chose it (`None`:
    /// the runtime did).
    pub(crate) fn response(&self, status: u16, origin: Option<&Origin>) {
        let key = match origin {
            Some(o) => ResponseKey {
                status,
                procedure: o.procedure,
                clause: o.clause,
                rule: o.rule,
            },
            None => ResponseKey {
                status,
                procedure: "runtime",
                clause: "",
                rule: "",
            },
        };
        *self
            .stats
            .responses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default() += 1;
    }

    /// The 2xx to the originator's INVITE went out. An answered session with no message
    /// yet (an idle group session) needs its entry no more: `started` was only for this
    /// latency, and [`Live::message_received`] makes a new one when a message comes. The
    /// table then holds no slot per idle session (issue 11 item 4: 56 bytes an entry, ~130
    /// a session with the table's room at 1,000 sessions).
    pub(crate) fn invite_answered(&mut self, now: Instant, sid: SessionId) {
        let Some(t) = self.timing.get(&sid) else {
            return;
        };
        self.stats
            .invite_to_ok
            .observe(now.saturating_duration_since(t.started));
        if t.message_at.is_none() && t.copies_pending == 0 && !t.ended {
            self.timing.remove(&sid);
        }
    }

    /// An invitee leg (or a MESSAGE copy) ended with `o`.
    pub(crate) fn leg(&self, o: LegOutcome) {
        if let Some(i) = LegOutcome::ALL.iter().position(|x| *x == o) {
            add(&self.stats.legs[i], 1);
        }
    }

    /// The originator's MSRP message of `bytes` is complete.
    pub(crate) fn message_received(&mut self, now: Instant, sid: SessionId, bytes: usize) {
        add(&self.stats.msrp_bytes_received, bytes as u64);
        // The session's entry went at its 2xx (`invite_answered`) if it had no message then.
        let t = self.timing.entry(sid).or_insert_with(|| Timing {
            started: now,
            message_at: None,
            last_copy_at: None,
            copies_pending: 0,
            ended: false,
        });
        t.message_at.get_or_insert(now);
    }

    /// An MSRP copy of the session's message (`bytes` long) was confirmed.
    pub(crate) fn copy_delivered(&mut self, now: Instant, sid: SessionId, bytes: usize) {
        add(&self.stats.msrp_bytes_delivered, bytes as u64);
        if let Some(t) = self.timing.get_mut(&sid) {
            t.last_copy_at = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)]
    fn epoch() -> Instant {
        Instant::now()
    }

    #[test]
    fn latencies_counts_and_merge() {
        let t0 = epoch();
        let ms = Duration::from_millis;
        let mut live = Live::default();
        live.session_started(t0, SessionId(1), false);
        live.invite_answered(t0 + ms(3), SessionId(1));
        assert!(
            live.timing.is_empty(),
            "an answered session waiting for its message keeps no entry"
        );
        live.message_received(t0 + ms(10), SessionId(1), 100);
        live.copy_delivered(t0 + ms(12), SessionId(1), 100);
        live.copy_delivered(t0 + ms(40), SessionId(1), 100);
        live.leg(LegOutcome::Answered);
        live.leg(LegOutcome::TimedOut);
        live.response(200, None);
        live.response(200, None);
        live.session_ended(SessionId(1));
        // A MESSAGE session: the request is the message; no copy confirmed, no latency.
        live.session_started(t0, SessionId(2), true);
        let s = live.stats.snapshot();
        assert_eq!((s.sessions_started, s.sessions_live()), (2, 1));
        // A MESSAGE session that ends before its copies are answered.
        live.session_started(t0, SessionId(4), true);
        live.copy_sent(SessionId(4));
        live.copy_sent(SessionId(4));
        live.session_ended(SessionId(4));
        live.copy_done(t0 + ms(7), SessionId(4), true);
        assert_eq!(live.stats.snapshot().message_to_last_copy.count, 1);
        live.copy_done(t0 + ms(9), SessionId(4), false);
        let h = live.stats.snapshot().message_to_last_copy;
        assert_eq!(h.count, 2);
        assert!((h.sum_seconds - 0.037).abs() < 1e-9, "30 ms + 7 ms: {h:?}");
        assert!(!live.timing.contains_key(&SessionId(4)) && live.lingering == 0);
        assert_eq!(s.invite_to_ok.count, 1);
        assert_eq!(s.invite_to_ok.buckets[2], 1, "3 ms is in the 5 ms bucket");
        assert_eq!(s.message_to_last_copy.count, 1);
        assert!((s.message_to_last_copy.sum_seconds - 0.030).abs() < 1e-9);
        assert_eq!((s.msrp_bytes_received, s.msrp_bytes_delivered), (100, 200));
        assert_eq!(s.legs(LegOutcome::Answered), 1);
        assert_eq!(s.legs(LegOutcome::TimedOut), 1);
        assert_eq!(s.responses.len(), 1);
        assert_eq!(s.responses[0].1, 2);
        let mut m = s.clone();
        m.merge(&s);
        assert_eq!(m.sessions_started, 4);
        assert_eq!(m.responses[0].1, 4);
        live.session_started(t0, SessionId(3), false);
        live.invite_answered(t0 + Duration::from_secs(60), SessionId(3));
        let b = live.stats.snapshot().invite_to_ok.buckets_with_inf();
        assert_eq!(b[2], (0.005, 1));
        assert_eq!(
            b.last(),
            Some(&(f64::INFINITY, 1)),
            "60 s is above every bound"
        );
        assert_eq!(m.invite_to_ok.buckets_with_inf()[2], (0.005, 2));
    }
}

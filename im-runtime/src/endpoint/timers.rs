//! Timers without scans. Each session keeps its own few timers ([`SessionTimers`]); the
//! endpoint files each session once, under its earliest deadline ([`SessionTimerIndex`]),
//! and re-files it after every input that touched it (the pattern of the transaction
//! table's deadline index). Starting or stopping a timer costs O(timers of that session),
//! re-filing O(log n), finding the next deadline O(log n). MSRP connections not bound to any
//! session have their own small index ([`IdleConns`]).

use super::ids::LegSlot;
use super::session::SessionId;
use crate::shrink::ShrinkIdle;
use crate::transport::ConnId;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// The grid the endpoint's transaction table files lingering deadlines on (Timers D, I, J,
/// K, L, M; see [`TransactionsConfig::linger_grid`](crate::proto::transaction::TransactionsConfig::linger_grid)).
/// Each session leaves about ten of them behind; filed exactly, each woke the loop on its
/// own, and at 50 sessions/s 40 % of the server's CPU went to the kernel scheduler. On a
/// 1 s grid a whole second's clean-ups cost one wake-up, and none ends more than 1 s after
/// RFC 3261/6026 allow.
pub(crate) const LINGER_GRID: Duration = Duration::from_secs(1);

/// What a session timer does when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SessionTimer {
    /// Retransmit the 2xx to the originator's INVITE until the ACK (§13.3.1.4); the number
    /// of the retransmission.
    OkRetransmit(u32),
    /// A spec timer (its id) of a leg or of the session machine with this index: made by
    /// [`SessionTimer::spec`]. 32-bit indexes keep the timer 12 bytes, its slot with the
    /// deadline 32 (48 with `usize`s), and every session keeps its slots for its whole life.
    Spec(LegSlot, u32, u16),
    /// The session's lifetime is over.
    Lifetime,
    /// The originator's MSRP session should be bound by now (its dialog is confirmed).
    OriginatorMsrp,
    /// The earliest conference-state subscription expires (`endpoint/conference.rs`).
    Subscriptions,
    /// Leg `.0`'s copy, sent with `Success-Report: yes`, has waited its configured time
    /// (`msrp_report_wait`) for the success REPORT.
    ReportWait(LegSlot),
}

impl SessionTimer {
    /// Spec timer `id` of leg `leg` (`None`: of the session machine `machine`); `None` when
    /// an index does not fit in 32 bits (no session gets near).
    pub(crate) fn spec(leg: Option<usize>, machine: usize, id: u16) -> Option<SessionTimer> {
        Some(SessionTimer::Spec(
            LegSlot::new(leg)?,
            u32::try_from(machine).ok()?,
            id,
        ))
    }

    /// Whether `self` and `other` are the same timer (setting one replaces the other).
    fn same_slot(&self, other: &SessionTimer) -> bool {
        match (self, other) {
            (SessionTimer::OkRetransmit(_), SessionTimer::OkRetransmit(_)) => true,
            (a, b) => a == b,
        }
    }
}

/// One session's running timers: a handful, so a vector is the right table.
#[derive(Debug, Default)]
pub(crate) struct SessionTimers {
    slots: Vec<(SessionTimer, Instant)>,
}

impl SessionTimers {
    /// Room for the two timers an idle group session runs (its lifetime and the wait for
    /// the originator's MSRP session): `Vec` would make room for four at the first, and a
    /// session holds its table for its whole life.
    pub(crate) fn new() -> SessionTimers {
        SessionTimers {
            slots: Vec::with_capacity(2),
        }
    }

    /// Arms `t` at `at`, replacing the same timer if it runs.
    pub(crate) fn set(&mut self, t: SessionTimer, at: Instant) {
        self.slots.retain(|(x, _)| !x.same_slot(&t));
        self.slots.push((t, at));
    }

    /// Stops every timer `pred` selects.
    pub(crate) fn stop(&mut self, pred: impl Fn(&SessionTimer) -> bool) {
        self.slots.retain(|(x, _)| !pred(x));
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.slots.iter().map(|(_, at)| *at).min()
    }

    /// Removes and returns the timers due at `now`, earliest first.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<SessionTimer> {
        let mut due: Vec<(SessionTimer, Instant)> = Vec::new();
        self.slots.retain(|&(t, at)| {
            if at <= now {
                due.push((t, at));
                false
            } else {
                true
            }
        });
        due.sort_by_key(|(_, at)| *at);
        due.into_iter().map(|(t, _)| t).collect()
    }
}

/// Sessions by their earliest timer: one entry per session with a timer, and for each
/// session the deadline it is filed under (its key in the set, so re-filing needs no scan).
#[derive(Debug, Default)]
pub(crate) struct SessionTimerIndex {
    by_deadline: BTreeSet<(Instant, SessionId)>,
    filed: HashMap<SessionId, Instant>,
}

impl SessionTimerIndex {
    /// Files session `id` under `next` (its earliest deadline now; `None` removes it).
    /// O(log n), nothing when unchanged.
    pub(crate) fn refile(&mut self, id: SessionId, next: Option<Instant>) {
        let old = match next {
            Some(at) => {
                let old = self.filed.insert(id, at);
                if old == Some(at) {
                    return;
                }
                self.by_deadline.insert((at, id));
                old
            }
            None => self.filed.remove(&id),
        };
        if let Some(old) = old {
            self.by_deadline.remove(&(old, id));
        }
    }

    /// Gives back the reverse index's capacity once a peak of sessions is over (the set
    /// frees its nodes by itself).
    pub(crate) fn shrink_idle(&mut self) {
        self.filed.shrink_idle();
    }

    /// Slots of the reverse index.
    pub(crate) fn slots(&self) -> usize {
        self.filed.capacity()
    }

    /// The deadline session `id` is filed under (for the endpoint's debug cross-check).
    #[cfg(debug_assertions)]
    pub(crate) fn filed(&self, id: SessionId) -> Option<Instant> {
        self.filed.get(&id).copied()
    }

    /// The earliest deadline of any session.
    pub(crate) fn first(&self) -> Option<Instant> {
        self.by_deadline.first().map(|(at, _)| *at)
    }

    /// The session with the earliest deadline, when that deadline is due at `now`.
    pub(crate) fn first_due(&self, now: Instant) -> Option<SessionId> {
        self.by_deadline
            .first()
            .filter(|(at, _)| *at <= now)
            .map(|(_, id)| *id)
    }

    /// How many sessions are filed (for the endpoint's debug cross-check).
    #[cfg(debug_assertions)]
    pub(crate) fn len(&self) -> usize {
        self.by_deadline.len()
    }

    /// The entries, earliest first (for the cross-check test).
    #[cfg(test)]
    fn entries(&self) -> Vec<(Instant, SessionId)> {
        self.by_deadline.iter().copied().collect()
    }
}

/// Accepted or opened MSRP connections waiting to be bound, by deadline.
#[derive(Debug, Default)]
pub(crate) struct IdleConns {
    by_deadline: BTreeSet<(Instant, ConnId)>,
    at: HashMap<ConnId, Instant>,
}

impl IdleConns {
    /// Gives `conn` until `deadline` to be bound.
    pub(crate) fn set(&mut self, conn: ConnId, deadline: Instant) {
        self.remove(conn);
        self.by_deadline.insert((deadline, conn));
        self.at.insert(conn, deadline);
    }

    /// `conn` is bound (or gone): no deadline any more.
    pub(crate) fn remove(&mut self, conn: ConnId) {
        if let Some(old) = self.at.remove(&conn) {
            self.by_deadline.remove(&(old, conn));
        }
    }

    /// The earliest deadline.
    pub(crate) fn first(&self) -> Option<Instant> {
        self.by_deadline.first().map(|(at, _)| *at)
    }

    /// Gives back the reverse index's capacity once a peak of connections is over.
    pub(crate) fn shrink_idle(&mut self) {
        self.at.shrink_idle();
    }

    /// Removes and returns the first connection due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<ConnId> {
        let &(at, conn) = self.by_deadline.first()?;
        if at > now {
            return None;
        }
        self.remove(conn);
        Some(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::Duration;

    /// A small deterministic generator (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
        }
    }

    struct S {
        timers: SessionTimers,
    }

    #[test]
    fn a_timer_slot_is_32_bytes() {
        // Every session keeps its slots for its whole life (issue 11 item 4).
        assert_eq!(std::mem::size_of::<(SessionTimer, Instant)>(), 32);
        let t = SessionTimer::spec(Some(2), 1, 7).expect("fits");
        assert_eq!(
            t,
            SessionTimer::Spec(LegSlot::new(Some(2)).expect("fits"), 1, 7)
        );
        assert_ne!(t, SessionTimer::spec(None, 1, 7).expect("fits"));
        assert_eq!(SessionTimer::spec(Some(0), usize::MAX, 7), None);
    }

    fn timer(r: &mut Rng) -> SessionTimer {
        match r.below(4) {
            0 => SessionTimer::OkRetransmit(r.below(5) as u32),
            1 => SessionTimer::spec(
                (r.below(2) == 0).then(|| r.below(3) as usize),
                r.below(2) as usize,
                r.below(3) as u16,
            )
            .expect("small indexes fit"),
            2 => SessionTimer::Lifetime,
            _ => SessionTimer::OriginatorMsrp,
        }
    }

    /// Random starts, stops, fired timers, new and removed sessions; after each, the index
    /// holds exactly one entry per session with a timer, under its earliest deadline (a
    /// scan of every session), and `first`/`first_due` agree with the scan.
    #[test]
    fn the_index_always_equals_a_scan_of_the_sessions() {
        #[allow(clippy::disallowed_methods)] // the one base instant of a virtual clock
        let base = Instant::now();
        for seed in 1..=40u64 {
            let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let mut index = SessionTimerIndex::default();
            let mut sessions: BTreeMap<SessionId, S> = BTreeMap::new();
            let mut now = base;
            for step in 0..400 {
                let id = SessionId(r.below(12));
                match r.below(6) {
                    0 | 1 => {
                        let s = sessions.entry(id).or_insert(S {
                            timers: SessionTimers::default(),
                        });
                        let at = now + Duration::from_millis(r.below(5_000));
                        s.timers.set(timer(&mut r), at);
                        index.refile(id, s.timers.next());
                    }
                    2 => {
                        if let Some(s) = sessions.get_mut(&id) {
                            let t = timer(&mut r);
                            s.timers.stop(|x| x.same_slot(&t));
                            index.refile(id, s.timers.next());
                        }
                    }
                    3 => {
                        // Time passes and every due session fires its due timers.
                        now += Duration::from_millis(r.below(1_500));
                        while let Some(due) = index.first_due(now) {
                            let s = sessions.get_mut(&due).expect("filed sessions exist");
                            let fired = s.timers.take_due(now);
                            assert!(
                                !fired.is_empty(),
                                "seed {seed} step {step}: filed too early"
                            );
                            index.refile(due, s.timers.next());
                        }
                    }
                    // The session ends: its entry goes with it.
                    4 if sessions.remove(&id).is_some() => index.refile(id, None),
                    _ => {}
                }
                let scan: Vec<(Instant, SessionId)> = {
                    let mut v: Vec<_> = sessions
                        .iter()
                        .filter_map(|(id, s)| s.timers.next().map(|at| (at, *id)))
                        .collect();
                    v.sort();
                    v
                };
                assert_eq!(index.entries(), scan, "seed {seed} step {step}");
                assert_eq!(index.first(), scan.first().map(|(at, _)| *at));
                for (id, s) in &sessions {
                    assert_eq!(
                        index.filed(*id),
                        s.timers.next(),
                        "seed {seed} step {step} {id:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn idle_connections_come_out_in_deadline_order_once() {
        #[allow(clippy::disallowed_methods)] // the one base instant of a virtual clock
        let base = Instant::now();
        let mut idle = IdleConns::default();
        let s = Duration::from_secs;
        idle.set(ConnId(1), base + s(3));
        idle.set(ConnId(2), base + s(1));
        idle.set(ConnId(3), base + s(2));
        idle.set(ConnId(1), base + s(4)); // re-armed: the old deadline is gone
        idle.remove(ConnId(3));
        assert_eq!(idle.first(), Some(base + s(1)));
        assert_eq!(idle.pop_due(base + s(3)), Some(ConnId(2)));
        assert_eq!(idle.pop_due(base + s(3)), None);
        assert_eq!(idle.pop_due(base + s(4)), Some(ConnId(1)));
        assert_eq!(idle.first(), None);
    }
}

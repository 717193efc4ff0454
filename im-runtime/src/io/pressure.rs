//! The driver loop's overload measure ([`super::IoLimits::overload_delay`] and
//! [`super::IoLimits::overload_interval`]): how long inputs waited before the core saw them,
//! turned into [`Input::Pressure`] changes.
//!
//! One late input is not overload: after an idle pause the first inputs meet cold caches and
//! page faults, and a single stall of the loop delays everything queued behind it once. So
//! the rule is CoDel's (RFC 8289 §3.2: act on the minimum sojourn time over an interval, not
//! on one sample): the loop is overloaded once every input it took over the last interval
//! waited longer than the limit, and it is not any more as soon as one input waits less.

use crate::transport::{Core, Input};
use std::time::{Duration, Instant};

/// The loop's overload state, O(1) per input: the start of the current run of late inputs
/// and the time of the last input stand in for the minimum over the interval.
pub(super) struct Pressure {
    limit: Duration,
    interval: Duration,
    /// When the loop took the first input of the current run of late ones.
    late_since: Option<Instant>,
    /// When the loop took its last measured input.
    last: Option<Instant>,
    overloaded: bool,
}

impl Pressure {
    pub(super) fn new(limit: Duration, interval: Duration) -> Self {
        Pressure {
            limit,
            interval,
            late_since: None,
            last: None,
            overloaded: false,
        }
    }

    /// Tells `core` when the state changes (a zero limit turns the measure off).
    pub(super) fn observe<C: Core>(&mut self, core: &mut C, now: Instant, queue_delay: Duration) {
        if let Some(overloaded) = self.update(now, queue_delay) {
            core.handle_input(
                now,
                Input::Pressure {
                    overloaded,
                    queue_delay,
                },
            );
        }
    }

    /// The new state when this input changes it.
    fn update(&mut self, now: Instant, queue_delay: Duration) -> Option<bool> {
        if self.limit.is_zero() {
            return None;
        }
        // A gap longer than the interval with no input means the queue was empty in it:
        // whatever was late before (and the overload it showed) does not carry over to
        // what is late now.
        let gap = self
            .last
            .is_some_and(|l| now.saturating_duration_since(l) > self.interval);
        self.last = Some(now);
        let next = if queue_delay > self.limit {
            let since = match self.late_since {
                Some(s) if !gap => s,
                _ => *self.late_since.insert(now),
            };
            (self.overloaded && !gap) || now.saturating_duration_since(since) >= self.interval
        } else {
            self.late_since = None;
            false
        };
        if next == self.overloaded {
            return None;
        }
        self.overloaded = next;
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_millis(50);
    const INTERVAL: Duration = Duration::from_millis(100);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[allow(clippy::disallowed_methods)] // one base instant; all else is offsets
    fn base() -> Instant {
        Instant::now()
    }

    #[test]
    fn one_late_input_after_an_idle_pause_does_not_shed() {
        let mut p = Pressure::new(LIMIT, INTERVAL);
        let t0 = base();
        assert_eq!(p.update(t0, ms(1)), None);
        // Idle for 10 s, then a burst whose first inputs meet page faults: 61 ms late,
        // then back to normal within 50 ms.
        let t = t0 + Duration::from_secs(10);
        for i in 0..50 {
            assert_eq!(p.update(t + ms(i), ms(61)), None, "input {i}");
        }
        assert_eq!(p.update(t + ms(50), ms(3)), None);
        // Another late input long after is not part of that run.
        assert_eq!(p.update(t + ms(400), ms(80)), None);
        assert_eq!(p.update(t + ms(401), ms(2)), None);
    }

    #[test]
    fn late_inputs_with_quiet_gaps_between_them_do_not_shed() {
        let mut p = Pressure::new(LIMIT, INTERVAL);
        let t0 = base();
        // Each late on its own, 150 ms apart: the queue was empty between them.
        for i in 0..10 {
            assert_eq!(p.update(t0 + ms(150 * i), ms(70)), None, "input {i}");
        }
    }

    #[test]
    fn every_input_late_for_the_interval_sheds_and_one_on_time_clears() {
        let mut p = Pressure::new(LIMIT, INTERVAL);
        let t0 = base();
        // One input every 5 ms, each waiting more than the limit.
        for i in 0..20 {
            assert_eq!(p.update(t0 + ms(5 * i), ms(60 + i)), None, "input {i}");
        }
        assert_eq!(p.update(t0 + ms(100), ms(90)), Some(true));
        assert_eq!(p.update(t0 + ms(105), ms(95)), None);
        // One input under the limit ends it at once (the minimum over the interval is no
        // longer above the limit).
        assert_eq!(p.update(t0 + ms(110), ms(49)), Some(false));
        assert_eq!(p.update(t0 + ms(115), ms(60)), None);
        // A new run needs the whole interval again.
        assert_eq!(p.update(t0 + ms(210), ms(60)), None);
        assert_eq!(p.update(t0 + ms(215), ms(60)), Some(true));
        // Inputs stop; the next one, late again after the quiet gap, starts a new run.
        assert_eq!(p.update(t0 + ms(1000), ms(60)), Some(false));
    }

    #[test]
    fn one_input_on_time_in_the_run_restarts_it() {
        let mut p = Pressure::new(LIMIT, INTERVAL);
        let t0 = base();
        for i in 0..19 {
            assert_eq!(p.update(t0 + ms(5 * i), ms(70)), None);
        }
        assert_eq!(p.update(t0 + ms(95), ms(10)), None);
        assert_eq!(p.update(t0 + ms(100), ms(70)), None);
        assert_eq!(p.update(t0 + ms(195), ms(70)), None);
        assert_eq!(p.update(t0 + ms(200), ms(70)), Some(true));
    }

    #[test]
    fn a_zero_interval_acts_on_one_sample_and_a_zero_limit_never() {
        let mut p = Pressure::new(LIMIT, Duration::ZERO);
        let t0 = base();
        assert_eq!(p.update(t0, ms(51)), Some(true));
        assert_eq!(p.update(t0 + ms(1), ms(50)), Some(false));
        let mut off = Pressure::new(Duration::ZERO, INTERVAL);
        for i in 0..100 {
            assert_eq!(off.update(t0 + ms(i), Duration::from_secs(1)), None);
        }
    }
}

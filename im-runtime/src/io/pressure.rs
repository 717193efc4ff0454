//! The driver loop's overload measure ([`super::IoLimits::overload_delay`]): how long inputs
//! waited before the core saw them, turned into [`Input::Pressure`] changes.

use crate::transport::{Core, Input};
use std::time::{Duration, Instant};

/// The loop's overload state: inputs that waited in the queue longer than the limit turn it
/// on, and it turns off only when they wait under a quarter of it, so that the core does not
/// flip between shedding and admitting on every input near the limit.
pub(super) struct Pressure {
    limit: Duration,
    overloaded: bool,
}

impl Pressure {
    pub(super) fn new(limit: Duration) -> Self {
        Pressure {
            limit,
            overloaded: false,
        }
    }

    /// Tells `core` when the state changes (a zero limit turns the measure off).
    pub(super) fn observe<C: Core>(&mut self, core: &mut C, now: Instant, queue_delay: Duration) {
        if self.limit.is_zero() {
            return;
        }
        let next = if self.overloaded {
            queue_delay > self.limit / 4
        } else {
            queue_delay > self.limit
        };
        if next != self.overloaded {
            self.overloaded = next;
            core.handle_input(
                now,
                Input::Pressure {
                    overloaded: next,
                    queue_delay,
                },
            );
        }
    }
}

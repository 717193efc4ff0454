//! Memory back after a peak: the endpoint's indexes (sessions' dialogs and timers, the
//! transactions they leave lingering) grow with the load, and once the peak's sessions have
//! ended and their transactions lingered out, the timer ticks give the capacity back
//! (`crate::shrink`), so an idle server does not keep arrays sized for its busiest moment.

#![allow(clippy::expect_used)] // the shared driver states what it expects

mod common;
#[path = "../benches/support/group.rs"]
mod group;

use group::Driver;
use im_runtime::transport::{Core, Input};
use std::time::Duration;

#[test]
fn indexes_shrink_once_a_peak_has_lingered_out() {
    let mut d = Driver::new(|c| c.max_sessions = 10_000);
    let fresh = d.ep.index_slots();
    // A peak: 800 group sessions of 3 invitees live at once.
    let live: Vec<_> = (0..800).map(|i| group::open(&mut d, i, 3)).collect();
    assert_eq!(d.ep.live_sessions(), 800);
    let peak = d.ep.index_slots();
    assert!(peak > fresh + 4000, "fresh {fresh}, peak {peak}");
    for l in live {
        group::finish(&mut d, l, b"hello");
    }
    assert_eq!(d.ep.live_sessions(), 0);
    // Their INVITE transactions linger (up to 32 s; a BYE's ends with its answer): a tick
    // now keeps what they still use, well above the idle floor checked below.
    d.input(Input::Timeout);
    let lingering = d.ep.index_slots();
    let (_, filed) = d.ep.transactions();
    assert!(
        filed >= 800 && lingering >= filed,
        "{filed} filed in {lingering} slots"
    );
    // Time passes, one tick a second as the driver's timer gives them.
    for _ in 0..40 {
        d.now += Duration::from_secs(1);
        d.input(Input::Timeout);
    }
    assert_eq!(d.ep.poll_timeout(), None, "every transaction lingered out");
    // Down to the floors (the transaction indexes keep a few slots in each of their 64
    // parts).
    let idle = d.ep.index_slots();
    assert!(idle * 4 < peak, "peak {peak}, idle {idle}");
    assert!(idle * 4 < lingering, "lingering {lingering}, idle {idle}");
    // And the endpoint works as before.
    let again = group::open(&mut d, 5000, 3);
    group::finish(&mut d, again, b"again");
    assert_eq!(d.ep.live_sessions(), 0);
}

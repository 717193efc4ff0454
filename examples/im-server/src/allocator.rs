//! Keeping jemalloc's per-thread caches from holding a peak's memory once the server is idle.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How often at most a busy runtime thread hands its cached free blocks back (see
/// [`tidy_on_park`]).
pub(crate) const TCACHE_FLUSH_EVERY: Duration = Duration::from_secs(1);

/// A thread that slept at least this long before its last run of work is not busy: its
/// park after that run hands its cached blocks back even within [`TCACHE_FLUSH_EVERY`] of
/// the last time (see [`tidy_on_park`]).
pub(crate) const TCACHE_QUIET: Duration = Duration::from_millis(100);

/// Called by each runtime thread as it parks: empties the thread's jemalloc cache into the
/// arenas when [`flush_due`] says so. Each thread keeps up to a few hundred freed blocks per
/// size class for its next allocations, and each of them keeps its whole slab (one page or
/// more, shared with other blocks) in use: after a peak, an idle worker's cache pins slabs
/// that would otherwise be empty and purged (in the soak of docs/performance.md, "Per-thread
/// caches after a peak", 17 KiB of cached 48-byte blocks kept 1.8 MiB of slabs). Only the
/// thread itself can empty its cache, hence the park hook.
// A hook of the runtime itself, not of the sans-IO core: it times itself against the clock.
#[allow(clippy::disallowed_methods)]
pub(crate) fn tidy_on_park() {
    tidy_at(Instant::now());
}

/// [`tidy_on_park`] at `now`.
fn tidy_at(now: Instant) {
    thread_local! {
        static LAST_FLUSH: Cell<Option<Instant>> = const { Cell::new(None) };
        static LAST_PARK: Cell<Option<Instant>> = const { Cell::new(None) };
    }
    let last_park = LAST_PARK.replace(Some(now));
    if flush_due(now, LAST_FLUSH.get(), last_park) {
        LAST_FLUSH.set(Some(now));
        flush_thread_cache();
    }
}

/// Whether a thread parking at `now` empties its cache, given when it last did and when it
/// last parked. Under load a worker parks thousands of times a second, and each flush costs
/// ~20–25 k instructions (the cache is freed and made again), so a busy thread flushes at
/// most once per [`TCACHE_FLUSH_EVERY`]. That alone left blocks cached on an idle server:
/// the last wake-ups of a peak's tail (the transactions' lingering timers, the INVITE
/// timing records' tidy-up, two driver loops on one thread) may come within the second
/// of the previous flush, and no later park follows to empty what they freed (a soak's
/// idle end kept ~2.6 MiB of slabs for ~0.7 MiB of cached blocks; docs/performance.md,
/// "What kept jemalloc's 640-byte class"). So a thread that had slept at least
/// [`TCACHE_QUIET`] before this park's run of work flushes too: it is not busy, and its
/// run may be its last for a long time. Bound: at most 1 / [`TCACHE_QUIET`] + 1 / s flushes
/// per thread, whatever the load.
fn flush_due(now: Instant, last_flush: Option<Instant>, last_park: Option<Instant>) -> bool {
    let since = |t: Option<Instant>| t.map(|t| now.saturating_duration_since(t));
    since(last_flush).is_none_or(|d| d >= TCACHE_FLUSH_EVERY)
        || since(last_park).is_none_or(|d| d >= TCACHE_QUIET)
}

/// Empties the calling thread's cache. Turning it off flushes it into the arenas and frees
/// it; on again, the thread starts an empty one (`thread.tcache.flush` itself has no safe
/// binding, and the crate forbids `unsafe`).
fn flush_thread_cache() {
    use tikv_jemalloc_ctl::{Access, AsName};
    let enabled = b"thread.tcache.enabled\0".name();
    if enabled.write(false).is_ok() {
        let _ = enabled.write(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes jemalloc counts as allocated, blocks in the threads' caches included.
    fn allocated() -> usize {
        tikv_jemalloc_ctl::epoch::advance().unwrap();
        tikv_jemalloc_ctl::stats::allocated::read().unwrap()
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // one base instant; the rest are offsets
    fn parking_hands_the_cached_blocks_back_unless_busy() {
        let t0 = Instant::now();
        // Freed on this thread, the blocks stay in its cache (counted as allocated: the
        // arena handed them out).
        let blocks: Vec<Box<[u8; 80]>> = (0..2000).map(|_| Box::new([1u8; 80])).collect();
        drop(blocks);
        let before = allocated();
        tidy_at(t0);
        let after = allocated();
        assert!(
            after + 4096 < before,
            "cache not emptied: {before} -> {after} bytes"
        );
        // Busy: parked again 10 ms later, within the second: nothing is done (the cache
        // fills again).
        let blocks: Vec<Box<[u8; 80]>> = (0..2000).map(|_| Box::new([1u8; 80])).collect();
        drop(blocks);
        let before = allocated();
        tidy_at(t0 + Duration::from_millis(10));
        assert!(allocated() + 4096 > before, "emptied again while busy");
        // Quiet: 200 ms since the last park, still within the second of the last flush:
        // what the last run freed is handed back.
        let before = allocated();
        tidy_at(t0 + Duration::from_millis(210));
        let after = allocated();
        assert!(
            after + 4096 < before,
            "cache not emptied after a quiet spell: {before} -> {after} bytes"
        );
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // one base instant; the rest are offsets
    fn a_busy_thread_flushes_once_a_second_and_a_quiet_one_each_park() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        // The first park of a thread flushes.
        assert!(flush_due(t0, None, None));
        // Parks 1 ms apart after a flush at t0: not until the second is over.
        assert!(!flush_due(ms(1), Some(t0), Some(t0)));
        assert!(!flush_due(ms(999), Some(t0), Some(ms(998))));
        assert!(flush_due(ms(1000), Some(t0), Some(ms(999))));
        // After a sleep of TCACHE_QUIET or more, within the second: flushes.
        assert!(!flush_due(ms(399), Some(t0), Some(ms(300))));
        assert!(flush_due(ms(400), Some(t0), Some(ms(300))));
    }
}

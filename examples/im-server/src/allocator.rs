//! Keeping jemalloc's per-thread caches from holding a peak's memory once the server is idle.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How often at most a runtime thread hands its cached free blocks back (see
/// [`tidy_on_park`]).
pub(crate) const TCACHE_FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Called by each runtime thread as it parks: at most once per [`TCACHE_FLUSH_EVERY`],
/// empties the thread's jemalloc cache into the arenas. Each thread keeps freed blocks per
/// size class for its next allocations (at most 8 per small class: `.cargo/config.toml`;
/// jemalloc's default is up to 200), and each of them keeps its whole slab (one page or
/// more, shared with other blocks) in use: after a peak, an idle worker's cache pins slabs
/// that would otherwise be empty and purged (in the soak of docs/performance.md, "Per-thread
/// caches after a peak", 17 KiB of cached 48-byte blocks kept 1.8 MiB of slabs). Only the thread itself can empty its cache, hence the park hook;
/// the time limit bounds the cost under load, where a worker parks many times a second, to
/// one flush per second per thread. Idle, the timers of the lingering transactions and of
/// the INVITE timing records wake each worker after the last call, and a later park empties
/// what the last ones freed (in that soak, ~0.36 MiB was left in the caches once idle).
// A hook of the runtime itself, not of the sans-IO core: it times itself against the clock.
#[allow(clippy::disallowed_methods)]
pub(crate) fn tidy_on_park() {
    thread_local!(static LAST: Cell<Option<Instant>> = const { Cell::new(None) });
    let now = Instant::now();
    LAST.with(|last| {
        if last
            .get()
            .is_some_and(|t| now.duration_since(t) < TCACHE_FLUSH_EVERY)
        {
            return;
        }
        last.set(Some(now));
        flush_thread_cache();
    });
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
    fn parking_hands_the_cached_blocks_back_at_most_once_a_second() {
        // Freed on this thread, the blocks stay in its cache (counted as allocated: the
        // arena handed them out). 2 KiB blocks: the cache keeps 8 of a small class
        // (.cargo/config.toml), 16 KiB, well over the margin below.
        let blocks: Vec<Box<[u8; 2048]>> = (0..200).map(|_| Box::new([1u8; 2048])).collect();
        drop(blocks);
        let before = allocated();
        tidy_on_park();
        let after = allocated();
        assert!(
            after + 4096 < before,
            "cache not emptied: {before} -> {after} bytes"
        );
        // Parked again within the second: nothing is done (the cache fills again).
        let blocks: Vec<Box<[u8; 2048]>> = (0..200).map(|_| Box::new([1u8; 2048])).collect();
        drop(blocks);
        let before = allocated();
        tidy_on_park();
        assert!(
            allocated() + 4096 > before,
            "emptied again within the second"
        );
    }

    /// The cap on each thread's cache comes from the build (`.cargo/config.toml`), so a
    /// build without it would quietly bring back the slabs an idle cache pins.
    #[test]
    fn thread_caches_are_capped_by_the_build() {
        use tikv_jemalloc_ctl::{Access, AsName};
        let small: u32 = b"opt.tcache_nslots_small_max\0".name().read().unwrap();
        let large: u32 = b"opt.tcache_nslots_large\0".name().read().unwrap();
        assert_eq!(
            (small, large),
            (8, 4),
            "jemalloc built without the cache cap"
        );
    }
}

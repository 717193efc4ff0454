//! Keeping jemalloc's per-thread caches from holding a peak's memory once the server is idle.

use std::time::Duration;

/// How long a driver loop must have had no input before its thread hands its cached free
/// blocks back ([`flush_thread_cache`], run through `Driver::on_idle`). Each thread keeps
/// freed blocks per size class for its next allocations (at most 16 per small class:
/// `.cargo/config.toml`; jemalloc's default is up to 200), and each of them keeps its whole
/// slab (one page or more, shared with other blocks) in use: after a peak, an idle worker's
/// cache pins slabs that would otherwise be empty and purged (docs/performance.md, "Per-thread
/// caches after a peak": 17 KiB of cached 48-byte blocks kept 1.8 MiB of slabs). Only the
/// thread itself can empty its cache, and each worker has a thread and a loop of its own, so
/// each loop empties its own once it has been quiet this long: once per quiet spell, after its
/// last input, its last timer and its last tidying, and never under steady load (where the
/// cap bounds the caches and jemalloc's own garbage collection runs on allocations). A second
/// is far over the gap between inputs of a loaded worker, so under load this costs nothing.
pub(crate) const IDLE_FLUSH_AFTER: Duration = Duration::from_secs(1);

/// Empties the calling thread's cache into the arenas. Turning the cache off flushes and
/// frees it; on again, the thread starts an empty one. jemalloc's own `thread.tcache.flush`
/// would keep the cache's memory, but it refuses any value read or written (`EPERM`), and
/// every call of tikv-jemalloc-ctl 0.7 (`raw` included) passes one: only the `unsafe`
/// `tikv_jemalloc_sys::mallctl`, forbidden here, could call it. Run on a quiet thread only,
/// the off/on toggle's cost (~20 k instructions) does not matter.
pub(crate) fn flush_thread_cache() {
    use tikv_jemalloc_ctl::{Access, AsName};
    let enabled = b"thread.tcache.enabled\0".name();
    if enabled.write(false).is_ok() {
        let _ = enabled.write(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use im_runtime::io::{Bind, Driver, IoLimits};
    use im_runtime::transport::{Core, Input, Output};
    use std::collections::VecDeque;
    use std::net::SocketAddr;
    use std::sync::Mutex;
    use std::time::Instant;

    /// The tests read process-wide counts: one at a time.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    /// Bytes jemalloc counts as allocated, blocks in the threads' caches included.
    fn allocated() -> usize {
        tikv_jemalloc_ctl::epoch::advance().unwrap();
        tikv_jemalloc_ctl::stats::allocated::read().unwrap()
    }

    /// Bytes in every thread's cache (`stats.arenas.<MALLCTL_ARENAS_ALL>.tcache_bytes`).
    fn cached() -> usize {
        use tikv_jemalloc_ctl::{Access, AsName};
        tikv_jemalloc_ctl::epoch::advance().unwrap();
        b"stats.arenas.4096.tcache_bytes\0".name().read().unwrap()
    }

    /// Allocates and frees 64 blocks of each of the size classes of 1 to 8 KiB on the
    /// calling thread: its cache keeps 8 to 16 of each class (.cargo/config.toml; a full bin
    /// is flushed down to half), at least 4 · 36 KiB.
    fn churn() {
        let blocks: Vec<Vec<u8>> = (1..=8)
            .flat_map(|k| (0..64).map(move |_| vec![1u8; k * 1024]))
            .collect();
        drop(std::hint::black_box(blocks));
    }

    #[test]
    fn flushing_hands_the_cached_blocks_back() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        churn();
        let before = allocated();
        flush_thread_cache();
        let after = allocated();
        assert!(
            after + 96 * 1024 < before,
            "cache not emptied: {before} -> {after} bytes"
        );
    }

    /// Churns memory on each datagram and answers `done` afterwards.
    struct Churner {
        out: VecDeque<Output>,
        stopping: bool,
    }

    impl Core for Churner {
        fn handle_input(&mut self, _now: Instant, input: Input) {
            match input {
                Input::Datagram { local, from, .. } => {
                    churn();
                    self.out.push_back(Output::Datagram {
                        local: Some(local),
                        to: from,
                        data: bytes::Bytes::from_static(b"done"),
                    });
                }
                Input::Shutdown => self.stopping = true,
                _ => {}
            }
        }
        fn poll_output(&mut self) -> Option<Output> {
            self.out.pop_front()
        }
        fn poll_timeout(&self) -> Option<Instant> {
            None
        }
        fn is_idle(&self) -> bool {
            self.stopping
        }
    }

    /// Each worker of a two-worker driver leaves 32 KiB in its own thread's cache; once it
    /// has been quiet for the idle delay, its loop empties that cache itself. Fails when the
    /// server's hook (or the driver's idle call) is taken out.
    #[test]
    fn an_idle_worker_empties_its_own_cache() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
            let bind = Bind {
                sip_udp: vec![any, any],
                ..Bind::default()
            };
            let mut driver = Driver::bind(&bind, IoLimits::default()).await.unwrap();
            // The server's own delay: long enough that a loaded machine reads the caches
            // before it runs out.
            let delay = IDLE_FLUSH_AFTER;
            driver.on_idle(delay, flush_thread_cache);
            let sockets = driver.local().sip_udp.clone();
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            let cores = (0..2)
                .map(|_| Churner {
                    out: VecDeque::new(),
                    stopping: false,
                })
                .collect();
            let task = tokio::spawn(driver.run_sharded(cores, async move {
                let _ = stop_rx.await;
            }));
            let peer = tokio::net::UdpSocket::bind(any).await.unwrap();
            // This thread's own cache out of the way first.
            flush_thread_cache();
            // Socket j is read by worker j: one churn on each worker's thread.
            for s in &sockets {
                peer.send_to(b"churn", s).await.unwrap();
            }
            let mut buf = [0u8; 16];
            for _ in &sockets {
                tokio::time::timeout(Duration::from_secs(5), peer.recv_from(&mut buf))
                    .await
                    .expect("both workers answer")
                    .unwrap();
            }
            let before = cached();
            tokio::time::sleep(delay * 3).await;
            let after = cached();
            let _ = stop_tx.send(());
            task.await.unwrap();
            assert!(
                before >= after + 192 * 1024,
                "the idle workers' caches not emptied: {before} -> {after} bytes cached"
            );
        });
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
            (16, 8),
            "jemalloc built without the cache cap"
        );
    }
}

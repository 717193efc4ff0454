//! Resident memory per idle group session: RSS growth (from `/proc/self/statm`) over 1 000
//! group sessions with 3 invitees each, set up through `Endpoint` as far as an idle session
//! gets (INVITE answered and ACKed, every invitee answered 200 and ACKed, the server's MSRP
//! connection to each invitee open, the originator not connected yet). No time passes, so
//! the sessions' transactions (INVITE server and client transactions, ACKs) are still held
//! too, as they would be for the first 32 s. Then the endpoint's clock is driven past 64·T1
//! as the runtime drives it (each deadline `poll_timeout` names, then `Input::Timeout`):
//! every transaction has ended, the sessions and their dialogs are still up, and the heap
//! they hold then is what an idle session holds for the rest of its life. Both figures are
//! the server's state alone: the bench keeps no record of its own per session. Linux only.
//!
//! Run: `cargo bench -p im-runtime --bench memory`

#![allow(clippy::expect_used)] // a wrong output is a broken bench

use std::alloc::System;
use std::time::Duration;

use im_runtime::transport::{Core, Input};

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

// Counts live heap bytes and blocks (noise-free, unlike RSS) around the system allocator.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Heap bytes and blocks live now.
fn heap() -> (i64, i64) {
    let s = GLOBAL.stats();
    (
        s.bytes_allocated as i64 - s.bytes_deallocated as i64,
        s.allocations as i64 - s.deallocations as i64,
    )
}

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/group.rs"]
mod group;

/// Resident set size in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .expect("statm has a resident field");
    pages * 4096
}

/// Drives the endpoint's clock as the runtime does (each deadline `poll_timeout` names, then
/// `Input::Timeout`) to past 64·T1 from now: Timers J, L, M and the RFC 6026 Accepted state
/// are over, and the 1 s grid lingering deadlines are filed on too.
fn past_64_t1(d: &mut group::Driver) {
    let until = d.now + Duration::from_millis(500) * 64 + Duration::from_secs(2);
    while let Some(at) = d.ep.poll_timeout().filter(|&at| at <= until) {
        d.now = d.now.max(at);
        d.input(Input::Timeout);
    }
    d.now = until;
}

fn main() {
    const N: usize = 1_000;
    let mut d = group::Driver::new(|c| {
        c.max_sessions = 100_000;
        // The originator never connects here: its MSRP wait (30 s by default) would end
        // every session before the transactions are over.
        c.msrp_idle = Duration::from_secs(3_600);
    });
    // Warm up the maps and queues with sessions that end, so growth is the live ones'.
    for i in 0..200 {
        let live = group::open(&mut d, 1_000_000 + i, 3);
        group::finish(&mut d, live, b"warm");
    }
    // Their last transactions end too, so that what ends after the 1,000 sessions below is
    // theirs alone (the tables keep up to a quarter of their peak, `crate::shrink`).
    past_64_t1(&mut d);
    let before = rss();
    let heap_before = heap();
    for i in 0..N {
        // The driver's record of the session (alice's MSRP path, the invitees' connections:
        // ~130 bytes in 2 blocks, and 72 more of RSS in a kept vector) is the bench's, not
        // the server's: dropped at once, so that both figures are the server's state alone.
        // The endpoint keeps the session whatever the bench keeps.
        drop(group::open(&mut d, i, 3));
    }
    let after = rss();
    let heap_after = heap();
    assert_eq!(d.ep.live_sessions(), N);
    println!(
        "idle group session, 3 connected invitees: {:.1} KiB RSS per session (over {N})",
        after.saturating_sub(before) as f64 / 1024.0 / N as f64
    );
    println!(
        "heap live per session: {:.0} bytes in {:.1} blocks",
        (heap_after.0 - heap_before.0) as f64 / N as f64,
        (heap_after.1 - heap_before.1) as f64 / N as f64
    );
    past_64_t1(&mut d);
    let idle_rss = rss();
    let idle_heap = heap();
    assert_eq!(d.ep.live_sessions(), N, "the sessions are still up");
    assert_eq!(d.ep.transactions(), (0, 0), "no transaction is left");
    println!(
        "after 64·T1 (transactions ended, dialogs up): heap live per session: {:.0} bytes in {:.1} blocks; RSS growth {:.1} KiB per session (freed blocks stay in the allocator's pages)",
        (idle_heap.0 - heap_before.0) as f64 / N as f64,
        (idle_heap.1 - heap_before.1) as f64 / N as f64,
        idle_rss.saturating_sub(before) as f64 / 1024.0 / N as f64
    );
}

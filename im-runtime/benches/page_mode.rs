//! Page-mode MESSAGE fan-out (RFC 5365 list exploder) through the whole sans-IO endpoint:
//! a MESSAGE from the originator to a list of 10, answered 202, its 10 copies sent and each
//! answered 200 by its recipient. Prints the heap allocations the endpoint makes per MESSAGE
//! and per recipient (a counting global allocator, as `allocs`); the instructions per
//! recipient come from running this binary under callgrind, counting only
//! `group::Driver::input` (the endpoint's own work, not the peers the bench plays):
//!
//! `valgrind --tool=callgrind --toggle-collect='*group::Driver::input' <binary> --bench`,
//! total ÷ (1,200 MESSAGEs × 10 recipients).
//!
//! Run: `cargo bench -p im-runtime --bench page_mode`

#![allow(clippy::expect_used)] // a wrong output is a broken bench

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/group.rs"]
mod group;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Recipients per MESSAGE, as the load harness's larger list.
const RECIPIENTS: usize = 10;

/// Cumulative allocator calls (allocations + reallocations) and bytes requested.
fn counter() -> (u64, u64) {
    let s = GLOBAL.stats();
    (
        (s.allocations + s.reallocations) as u64,
        (s.bytes_allocated as u64).saturating_add(s.bytes_reallocated.max(0) as u64),
    )
}

fn main() {
    const N: u64 = 1_000;
    let knobs = common::Knobs {
        page_mode: true,
        ..common::Knobs::default()
    };
    let mut d = group::Driver::with_knobs(knobs, |c| c.max_sessions = 100_000);
    // Warm up the maps and queues, so that the figures are a steady state's.
    for i in 0..200 {
        group::message_to_list(&mut d, 1_000_000 + i, RECIPIENTS);
    }
    d.probe = counter;
    for i in 0..N as usize {
        group::message_to_list(&mut d, i, RECIPIENTS);
    }
    let (calls, bytes) = d.allocs;
    println!(
        "MESSAGE to a list of {RECIPIENTS}, endpoint only: {} allocations, {} bytes per MESSAGE; \
         {} allocations, {} bytes per recipient",
        calls / N,
        bytes / N,
        calls / N / RECIPIENTS as u64,
        bytes / N / RECIPIENTS as u64,
    );
}

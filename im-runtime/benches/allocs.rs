//! Heap allocations made by the endpoint per whole group session (3 invitees: INVITE,
//! answers, ACKs, MSRP connections, one MSRP message delivered, BYEs), and per parse of the
//! `parse` bench's INVITE and 200 OK. A counting global allocator (`stats_alloc`) wraps the
//! system one; only the endpoint's own work is counted (`support/group.rs` reads the counter
//! around `handle_input` + `poll_output`), not the peers the bench plays. Prints a few lines.
//!
//! Run: `cargo bench -p im-runtime --bench allocs`

#![allow(clippy::expect_used)] // a wrong output is a broken bench

use std::alloc::System;

use bytes::Bytes;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/group.rs"]
mod group;
#[path = "support/messages.rs"]
mod messages;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Cumulative allocator calls (allocations + reallocations) and bytes requested.
fn counter() -> (u64, u64) {
    let s = GLOBAL.stats();
    (
        (s.allocations + s.reallocations) as u64,
        (s.bytes_allocated as u64).saturating_add(s.bytes_reallocated.max(0) as u64),
    )
}

/// Allocator calls and bytes of one parse of `text` (the parsed message dropped after).
fn per_parse(text: &'static str) -> (u64, u64) {
    let buf = Bytes::from_static(text.as_bytes());
    const N: u64 = 1_000;
    let region = Region::new(GLOBAL);
    for _ in 0..N {
        let m = im_runtime::proto::sip::Message::parse(std::hint::black_box(buf.clone()))
            .expect("parses");
        std::hint::black_box(&m);
    }
    let s = region.change();
    (
        (s.allocations + s.reallocations) as u64 / N,
        s.bytes_allocated as u64 / N,
    )
}

fn main() {
    const N: u64 = 1_000;
    let mut d = group::Driver::new(|c| c.max_sessions = 100_000);
    // Warm up the maps and queues, so that the figures are a steady state's.
    for i in 0..200 {
        let live = group::open(&mut d, 1_000_000 + i, 3);
        group::finish(&mut d, live, b"warm");
    }
    d.probe = counter;
    let mut open = (0, 0);
    for i in 0..N as usize {
        let live = group::open(&mut d, i, 3);
        if i == 0 {
            open = d.allocs;
        }
        group::finish(&mut d, live, b"hello");
    }
    let (calls, bytes) = d.allocs;
    println!(
        "group session (3 invitees), endpoint only: {} allocations, {} bytes per session \
         (first session's set-up alone: {} allocations, {} bytes)",
        calls / N,
        bytes / N,
        open.0,
        open.1
    );
    let (c, b) = per_parse(messages::INVITE);
    println!("parse of the 1,374-byte INVITE: {c} allocations, {b} bytes");
    let (c, b) = per_parse(messages::OK);
    println!("parse of the 200 OK: {c} allocations, {b} bytes");
}

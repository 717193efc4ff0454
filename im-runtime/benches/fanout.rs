//! MSRP fan-out through the whole sans-IO endpoint: a group session with N invitees, each
//! answered and with its MSRP connection open (set up before timing), then the originator's
//! one-chunk 4 KiB SEND. Timed: from the originator's last byte in to the last invitee's last
//! byte out, i.e. `Endpoint::handle_input` with the SEND plus draining every output (the
//! 200 to the originator and the chunks to each of the N invitees).
//!
//! Run: `cargo bench -p im-runtime --bench fanout`

#![allow(clippy::expect_used)] // a wrong output is a broken bench

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/group.rs"]
mod group;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use im_runtime::transport::{Input, Output};
use std::time::Duration;

const SIZE: usize = 4096;

/// A session with `n` connected invitees, and the SEND that starts the fan-out.
fn setup(n: usize) -> (group::Driver, Input) {
    let mut d = group::Driver::new(|c| {
        // A 1000-entry recipient list is about 40 KB.
        c.max_message_size = 256 * 1024;
        c.body_limits.lists.max_bytes = 256 * 1024;
        c.body_limits.lists.max_nodes = 64 * 1024;
        c.msrp_chunk_size = 8192;
    });
    let live = group::open(&mut d, 1, n);
    let text = vec![b'x'; SIZE];
    let (conn, send) = group::alice_connects(&mut d, &live, &text);
    (d, Input::StreamData { conn, data: send })
}

/// Checks once that the SEND reaches every invitee with the whole 4 KiB.
fn check(n: usize) {
    let (mut d, send) = setup(n);
    let out = d.input(send);
    let bytes: usize = out
        .iter()
        .filter_map(|o| match o {
            Output::StreamSend { data, .. } => Some(data.len()),
            _ => None,
        })
        .sum();
    let chunks = out
        .iter()
        .filter(|o| matches!(o, Output::StreamSend { data, .. } if data.len() > SIZE))
        .count();
    assert_eq!(chunks, n, "one {SIZE}-byte chunk per invitee");
    assert!(bytes > n * SIZE);
}

fn bench_fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("msrp_fanout_4k");
    g.sample_size(10);
    for n in [10usize, 100, 1000] {
        check(n);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (mut d, send) = setup(n);
                    d.spent = Duration::ZERO;
                    let out = d.input(send);
                    total += d.spent;
                    std::hint::black_box(out);
                }
                total
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench_fanout);
criterion_main!(benches);

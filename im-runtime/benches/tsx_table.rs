//! Loop stalls from a growing transaction table (issue 11, the soak's 503 bursts).
//!
//! Two scenarios through the public [`Transactions`] API, each step one UDP OPTIONS server
//! transaction (request in, 200 out, queues drained), the way the endpoint feeds it:
//!
//! * `grow_300k`: 300,000 transactions created at one instant, none ending: the table grows
//!   from empty through every resize (a soak at 1,200 group sessions/s holds ~250,000);
//! * `steady_250k`: 62 s of virtual time at 8,000 new transactions per second, each lingering
//!   32 s (Timer J) and ended by `handle_timeout` every 10 ms: ~256,000 live at the plateau,
//!   with the churn that makes a hash table rehash in place as well as grow.
//!
//! Criterion times each whole scenario; inside it, every step (and, in `steady_250k`, every
//! `handle_timeout`) is timed on its own, and the worst case, p99.9 and p99 over all of
//! criterion's runs are printed at the end with the load average, since a stall is one
//! step, invisible in a mean. Each step is timed twice: wall time, and the thread's own CPU
//! time (`CLOCK_THREAD_CPUTIME_ID`, Linux), which leaves out the time the scheduler gave
//! other processes, so a busy machine does not pass its preemptions off as stalls.
//!
//! Run: `cargo bench -p im-runtime --bench tsx_table`

#![allow(clippy::expect_used)] // a wrong output is a broken bench
#![allow(clippy::disallowed_methods)] // a bench reads the clock to time single steps

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, SamplingMode};
use im_runtime::machine::Method;
use im_runtime::proto::transaction::{
    MessageBuilder, Peer, Transactions, TransactionsConfig, TsxKey, TsxMessage,
};

/// Writes fixed bytes: the table's own cost is what is measured, not message building.
struct Builder;

impl MessageBuilder for Builder {
    fn response(&mut self, _: &TsxMessage, _: u16) -> Option<Bytes> {
        Some(Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n"))
    }
    fn ack(&mut self, _: &TsxMessage, _: &TsxMessage) -> Option<Bytes> {
        Some(Bytes::from_static(b"ACK"))
    }
    fn cancel(&mut self, _: &TsxMessage) -> Option<Bytes> {
        Some(Bytes::from_static(b"CANCEL"))
    }
}

const PEER: Peer = Peer {
    addr: SocketAddr::new(
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)),
        5060,
    ),
    reliable: false,
};

/// Keys made before timing, so that only the table's work is in a step.
fn keys(n: usize) -> Vec<TsxKey> {
    (0..n)
        .map(|i| TsxKey::from_branch(&Method::Options, &format!("z9hG4bK{i:x}"), "h.example"))
        .collect()
}

/// One server transaction: the request, the 200, the queues drained.
fn step(t: &mut Transactions<Builder>, now: Instant, key: &TsxKey) {
    let m = TsxMessage::request(key.clone(), Method::Options, Bytes::from_static(b"OPTIONS"));
    t.handle_request(now, m, PEER).expect("a request");
    t.reply(now, key, 200).expect("a fresh transaction answers");
    drain(t);
}

fn drain(t: &mut Transactions<Builder>) {
    while t.poll_transmit().is_some() {}
    while t.poll_event().is_some() {}
}

/// This thread's CPU time so far.
#[cfg(all(target_os = "linux", feature = "tokio"))]
fn cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .expect("a thread CPU clock")
}

#[cfg(not(all(target_os = "linux", feature = "tokio")))]
fn cpu() -> Duration {
    Duration::ZERO
}

/// Per-step samples in ns: wall time and the thread's CPU time.
#[derive(Default)]
struct Lat {
    wall: Vec<u32>,
    cpu: Vec<u32>,
}

impl Lat {
    /// Runs `f`, recording both times.
    fn time(&mut self, f: impl FnOnce()) {
        let (w, c) = (Instant::now(), cpu());
        f();
        let c = cpu().saturating_sub(c);
        self.wall.push(nanos(w.elapsed()));
        self.cpu.push(nanos(c));
    }

    fn report(&mut self, what: &str) {
        println!("{what}, wall: {}", summary(&mut self.wall));
        println!("{what}, thread CPU: {}", summary(&mut self.cpu));
    }
}

fn grow(keys: &[TsxKey], lat: &mut Lat) -> Duration {
    let mut t = Transactions::new(TransactionsConfig::default(), Builder);
    let now = Instant::now();
    let start = Instant::now();
    for k in keys {
        lat.time(|| step(&mut t, now, k));
    }
    let total = start.elapsed();
    assert_eq!(t.len(), keys.len());
    total
}

const RATE: u64 = 8_000;
const SECONDS: u64 = 62;
const TICK: Duration = Duration::from_millis(10);

fn steady(keys: &[TsxKey], lat: &mut Lat, ticks: &mut Lat) -> Duration {
    let mut t = Transactions::new(TransactionsConfig::default(), Builder);
    let t0 = Instant::now();
    let per_tick = usize::try_from(RATE * 10 / 1000).expect("small");
    let start = Instant::now();
    let mut next = keys.iter();
    let mut peak = 0;
    for tick in 0..(SECONDS * 100) {
        let now = t0 + TICK * u32::try_from(tick).expect("small");
        ticks.time(|| {
            t.handle_timeout(now);
            drain(&mut t);
        });
        for k in next.by_ref().take(per_tick) {
            lat.time(|| step(&mut t, now, k));
        }
        peak = peak.max(t.len());
    }
    let total = start.elapsed();
    assert!(peak > 250_000, "plateau of {peak}");
    total
}

fn nanos(d: Duration) -> u32 {
    u32::try_from(d.as_nanos()).unwrap_or(u32::MAX)
}

/// `max`, p99.9 and p99 of `v` in µs, and how many samples.
fn summary(v: &mut [u32]) -> String {
    v.sort_unstable();
    let at = |q: f64| {
        let i = ((v.len() as f64 - 1.0) * q).round() as usize;
        f64::from(v.get(i).copied().unwrap_or(0)) / 1000.0
    };
    format!(
        "max {:.1} µs, p99.9 {:.2} µs, p99 {:.2} µs over {} samples",
        at(1.0),
        at(0.999),
        at(0.99),
        v.len()
    )
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    let load_before = loadavg();
    let all = keys(usize::try_from(RATE * SECONDS).expect("small"));

    let grow_lat = RefCell::new(Lat::default());
    let steady_lat = RefCell::new(Lat::default());
    let steady_ticks = RefCell::new(Lat::default());
    {
        let mut g = c.benchmark_group("tsx_table");
        g.sampling_mode(SamplingMode::Flat);
        g.bench_function("grow_300k", |b| {
            b.iter_custom(|iters| {
                let mut lat = grow_lat.borrow_mut();
                (0..iters)
                    .map(|_| grow(all.get(..300_000).expect("enough keys"), &mut lat))
                    .sum()
            })
        });
        g.bench_function("steady_250k", |b| {
            b.iter_custom(|iters| {
                let (mut lat, mut ticks) = (steady_lat.borrow_mut(), steady_ticks.borrow_mut());
                (0..iters).map(|_| steady(&all, &mut lat, &mut ticks)).sum()
            })
        });
        g.finish();
    }
    c.final_summary();
    println!("load average before: {load_before}, after: {}", loadavg());
    grow_lat.borrow_mut().report("grow_300k, one step");
    steady_lat.borrow_mut().report("steady_250k, one step");
    steady_ticks
        .borrow_mut()
        .report("steady_250k, one handle_timeout (10 ms of expiries)");
}

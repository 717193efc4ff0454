//! The driver's overload measure: when every input for `IoLimits::overload_interval` waited
//! in a loop's queue longer than `IoLimits::overload_delay` the core is told it is
//! overloaded, and told again when the backlog is gone. The core here is slow on purpose (it
//! blocks 5 ms per datagram), so a burst of datagrams queues behind it.
#![cfg(feature = "tokio")]

use im_runtime::io::{Bind, Driver, IoLimits};
use im_runtime::transport::{Core, Input, Output};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Slow {
    out: VecDeque<Output>,
    /// Every pressure report in order, with the number of datagrams seen before it.
    reports: Vec<(bool, Duration, usize)>,
    seen: usize,
    shutdown: bool,
    /// How long each datagram blocks the core, and one reading `stall`.
    each_ms: u64,
    stall_ms: u64,
}

impl Core for Slow {
    fn handle_input(&mut self, _now: Instant, input: Input) {
        match input {
            Input::Datagram { local, from, data } => {
                self.seen += 1;
                let ms = if &data[..] == b"stall" {
                    self.stall_ms
                } else {
                    self.each_ms
                };
                std::thread::sleep(Duration::from_millis(ms));
                self.out.push_back(Output::Datagram {
                    local: Some(local),
                    to: from,
                    data,
                });
            }
            Input::Pressure {
                overloaded,
                queue_delay,
            } => self.reports.push((overloaded, queue_delay, self.seen)),
            Input::Shutdown => self.shutdown = true,
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
        self.shutdown
    }
}

async fn run(limits: IoLimits) -> Slow {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let bind = Bind {
        sip_udp: vec![any],
        ..Bind::default()
    };
    let driver = Driver::bind(&bind, limits).await.unwrap();
    let server = driver.local().sip_udp[0];
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(driver.run(
        Slow {
            each_ms: 5,
            ..Slow::default()
        },
        async move {
            let _ = stop_rx.await;
        },
    ));
    let peer = tokio::net::UdpSocket::bind(any).await.unwrap();
    // A burst of 60: the last ones wait ~300 ms behind the core.
    for i in 0..60 {
        peer.send_to(format!("burst {i}").as_bytes(), server)
            .await
            .unwrap();
    }
    let mut buf = [0u8; 64];
    for _ in 0..60 {
        tokio::time::timeout(Duration::from_secs(10), peer.recv_from(&mut buf))
            .await
            .expect("every datagram is handled")
            .unwrap();
    }
    // The backlog is gone: the next datagrams do not wait (a few, spaced, so that one
    // scheduling hiccup on a busy machine cannot keep the state on).
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        peer.send_to(b"after", server).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), peer.recv_from(&mut buf))
            .await
            .expect("handled")
            .unwrap();
    }
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("driver stops")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_turns_pressure_on_and_its_end_turns_it_off() {
    let core = run(IoLimits {
        overload_delay: Duration::from_millis(50),
        ..IoLimits::default()
    })
    .await;
    assert!(core.reports.len() >= 2, "{:?}", core.reports);
    let (on, delay, seen) = core.reports[0];
    assert!(on, "{:?}", core.reports);
    assert!(delay > Duration::from_millis(50), "{:?}", core.reports);
    // At 5 ms per datagram, 50 ms of queueing needs about ten datagrams ahead, and 100 ms
    // of such waits twenty more; fewer when the machine is busy, since the wait counts from
    // the kernel's arrival stamp and the reader itself can be late. Never the first two: a
    // run of late inputs needs at least two to span the interval.
    assert!(seen >= 3, "{:?}", core.reports);
    let (off, _, seen_off) = *core.reports.last().unwrap();
    assert!(!off, "{:?}", core.reports);
    assert!(seen_off > seen, "{:?}", core.reports);
    // Reports alternate: each is a change of state.
    for w in core.reports.windows(2) {
        assert_ne!(w[0].0, w[1].0, "{:?}", core.reports);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_limit_turns_the_measure_off() {
    let core = run(IoLimits {
        overload_delay: Duration::ZERO,
        ..IoLimits::default()
    })
    .await;
    assert!(core.reports.is_empty(), "{:?}", core.reports);
    assert_eq!(core.seen, 65);
}

/// On one thread the UDP reader cannot run while the core is busy, so a backlog builds in
/// the socket buffer; once the core is free the reader drains it at once and the loop's own
/// queue stays short. Only the kernel's arrival stamps (SO_TIMESTAMPNS) show that those
/// datagrams waited ~250 ms and more, for longer than the interval (10 × 15 ms of work).
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "current_thread")]
async fn a_backlog_in_the_socket_buffer_counts() {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let bind = Bind {
        sip_udp: vec![any],
        ..Bind::default()
    };
    let limits = IoLimits {
        overload_delay: Duration::from_millis(50),
        ..IoLimits::default()
    };
    let driver = Driver::bind(&bind, limits).await.unwrap();
    let server = driver.local().sip_udp[0];
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // The peer runs on its own OS thread: the runtime's one thread is the one the core
    // blocks.
    let peer = std::thread::spawn(move || {
        let sock = std::net::UdpSocket::bind(any).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        sock.send_to(b"stall", server).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        for i in 0..10 {
            sock.send_to(format!("queued {i}").as_bytes(), server)
                .unwrap();
        }
        let mut buf = [0u8; 64];
        for _ in 0..11 {
            sock.recv_from(&mut buf)
                .expect("every datagram is answered");
        }
        let _ = stop_tx.send(());
    });
    let core = tokio::time::timeout(
        Duration::from_secs(15),
        driver.run(
            // Blocks its (only) thread for 300 ms on `stall`, 15 ms on the others: what
            // arrives meanwhile waits in the kernel's socket buffer, not in the loop's queue.
            Slow {
                stall_ms: 300,
                each_ms: 15,
                ..Slow::default()
            },
            async move {
                let _ = stop_rx.await;
            },
        ),
    )
    .await
    .expect("driver stops");
    peer.join().unwrap();
    assert_eq!(core.seen, 11);
    let (on, delay, seen) = *core.reports.first().expect("pressure was reported");
    assert!(on, "{:?}", core.reports);
    // Sent ~50 ms into a 300 ms stall: each waited ~250 ms in the kernel, and the later
    // ones the 15 ms of each before them too. Without the kernel's stamps the loop would
    // date them from their read and see no wait at all.
    assert!(delay >= Duration::from_millis(150), "{:?}", core.reports);
    // Every queued one is late, so the state turns on once they have been late for the
    // 100 ms interval: about seven datagrams into the ten, never on the first (`seen`
    // counts the stall too).
    assert!((2..=10).contains(&seen), "{:?}", core.reports);
}

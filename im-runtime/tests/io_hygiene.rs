//! Connection hygiene in the tokio driver: the head and idle timeouts close accepted
//! connections that do not send a first message in time, every later SIP head is timed
//! too, a SIP connection no core uses is closed after the conn-idle timeout, the
//! per-source limit refuses the connection over it (not an existing one), and SIP and MSRP
//! have budgets of their own.
#![cfg(feature = "tokio")]

use bytes::Bytes;
use im_runtime::io::{Bind, Driver, IoLimits, IoStats};
use im_runtime::transport::{Core, Input, Output};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Answers every chunk of stream data with `ok`; a chunk holding `hold` (`free`) also says
/// the core starts (stops) using the connection ([`Output::ConnUse`]).
#[derive(Default)]
struct Ack {
    out: VecDeque<Output>,
    shutdown: bool,
}

impl Core for Ack {
    fn handle_input(&mut self, _now: Instant, input: Input) {
        match input {
            Input::StreamData { conn, data } => {
                let has = |w: &[u8]| data.windows(w.len()).any(|x| x == w);
                if has(b"hold") || has(b"free") {
                    self.out.push_back(Output::ConnUse {
                        conn,
                        in_use: has(b"hold"),
                    });
                }
                self.out.push_back(Output::StreamSend {
                    conn,
                    data: Bytes::from_static(b"ok"),
                })
            }
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

struct Running {
    sip: SocketAddr,
    msrp: SocketAddr,
    stats: Arc<IoStats>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(limits: IoLimits) -> Running {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let bind = Bind {
        sip_tcp: vec![any],
        msrp_tcp: vec![any],
        ..Bind::default()
    };
    let driver = Driver::bind(&bind, limits).await.unwrap();
    let (sip, msrp) = (driver.local().sip_tcp[0], driver.local().msrp_tcp[0]);
    let stats = driver.stats();
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(driver.run(Ack::default(), async move {
        let _ = stop_rx.await;
    }));
    Running {
        sip,
        msrp,
        stats,
        _stop: stop,
    }
}

/// Reads until the peer closes; returns how long that took (None: still open at `within`).
async fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let t0 = tokio::time::Instant::now();
    let mut buf = [0u8; 64];
    loop {
        match tokio::time::timeout(within, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(t0.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn half_a_request_line_is_closed_after_the_head_timeout() {
    let r = start(IoLimits {
        head_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(30),
        ..IoLimits::default()
    })
    .await;
    let mut half = TcpStream::connect(r.sip).await.unwrap();
    half.write_all(b"OPTIONS sip:a@exa").await.unwrap();
    // A complete head in time: served, and kept open well past the head timeout.
    let mut good = TcpStream::connect(r.sip).await.unwrap();
    good.write_all(b"OPTIONS sip:a@example.com SIP/2.0\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    let t = closed_within(&mut half, Duration::from_secs(5))
        .await
        .expect("half-open connection closed");
    assert!(
        t >= Duration::from_millis(250) && t < Duration::from_secs(2),
        "closed after {t:?}"
    );
    assert_eq!(r.stats.closed_head_timeout(), 1);
    let mut buf = [0u8; 2];
    good.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ok");
    assert!(
        closed_within(&mut good, Duration::from_millis(700))
            .await
            .is_none()
    );
    // An MSRP head that stops short is closed the same way.
    let mut msrp = TcpStream::connect(r.msrp).await.unwrap();
    msrp.write_all(b"MSRP a786hjs2 SEND\r\nTo-Path: msrp://x")
        .await
        .unwrap();
    assert!(
        closed_within(&mut msrp, Duration::from_secs(5))
            .await
            .is_some()
    );
    assert_eq!(r.stats.closed_head_timeout(), 2);
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let r = start(IoLimits {
        head_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_millis(300),
        ..IoLimits::default()
    })
    .await;
    let mut silent = TcpStream::connect(r.sip).await.unwrap();
    // Keep-alives are not a message: they do not start the head clock nor stop the idle one.
    silent.write_all(b"\r\n\r\n").await.unwrap();
    let t = closed_within(&mut silent, Duration::from_secs(5))
        .await
        .expect("silent connection closed");
    assert!(t < Duration::from_secs(2), "closed after {t:?}");
    assert_eq!(r.stats.closed_idle_timeout(), 1);
    assert_eq!(r.stats.closed_head_timeout(), 0);
}

#[tokio::test]
async fn the_connection_over_the_per_source_limit_is_refused() {
    let r = start(IoLimits {
        max_connections_per_source: 3,
        ..IoLimits::default()
    })
    .await;
    let mut kept = Vec::new();
    for i in 0..3 {
        // SIP and MSRP count together against one source.
        let to = if i == 0 { r.msrp } else { r.sip };
        kept.push(TcpStream::connect(to).await.unwrap());
    }
    let mut fourth = TcpStream::connect(r.sip).await.unwrap();
    assert!(
        closed_within(&mut fourth, Duration::from_secs(2))
            .await
            .is_some(),
        "the fourth from one source is closed at once"
    );
    assert_eq!(r.stats.refused_per_source(), 1);
    // The first three still work.
    for s in &mut kept {
        s.write_all(b"MSRP x SEND\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 2];
        tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"ok");
    }
    // Another source address is not affected.
    let other = tokio::net::TcpSocket::new_v4().unwrap();
    other.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = other.connect(r.sip).await.unwrap();
    assert!(
        closed_within(&mut other, Duration::from_millis(300))
            .await
            .is_none()
    );
    // One closes, and the source may connect again.
    drop(kept.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut again = TcpStream::connect(r.sip).await.unwrap();
    assert!(
        closed_within(&mut again, Duration::from_millis(300))
            .await
            .is_none()
    );
    assert_eq!(r.stats.refused_per_source(), 1);
}

#[tokio::test]
async fn sip_and_msrp_have_budgets_of_their_own() {
    let r = start(IoLimits {
        max_sip_connections: 2,
        max_msrp_connections: 2,
        ..IoLimits::default()
    })
    .await;
    let mut sip = Vec::new();
    for _ in 0..2 {
        // Good connections (a complete head, answered): never closed to make room.
        let mut s = TcpStream::connect(r.sip).await.unwrap();
        s.write_all(b"OPTIONS sip:a SIP/2.0\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 2];
        s.read_exact(&mut buf).await.unwrap();
        sip.push(s);
    }
    let mut third = TcpStream::connect(r.sip).await.unwrap();
    assert!(
        closed_within(&mut third, Duration::from_secs(2))
            .await
            .is_some()
    );
    assert_eq!(r.stats.refused_budget(), 1);
    // A full SIP budget leaves MSRP alone.
    let mut msrp = TcpStream::connect(r.msrp).await.unwrap();
    msrp.write_all(b"MSRP x SEND\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(2), msrp.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"ok");
    assert_eq!(r.stats.refused_budget(), 1);
}

#[tokio::test]
async fn a_full_budget_makes_room_by_closing_the_oldest_connection_without_a_head() {
    let r = start(IoLimits {
        max_sip_connections: 3,
        ..IoLimits::default()
    })
    .await;
    // One good connection (a complete head), then two that never finish theirs.
    let mut good = TcpStream::connect(r.sip).await.unwrap();
    good.write_all(b"OPTIONS sip:a SIP/2.0\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 2];
    good.read_exact(&mut buf).await.unwrap();
    let mut half1 = TcpStream::connect(r.sip).await.unwrap();
    half1.write_all(b"OPT").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut half2 = TcpStream::connect(r.sip).await.unwrap();
    half2.write_all(b"OPT").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The budget is full: a newcomer is served, and the oldest half-open one pays for it.
    let mut new = TcpStream::connect(r.sip).await.unwrap();
    new.write_all(b"OPTIONS sip:a SIP/2.0\r\n\r\n")
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(2), new.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        closed_within(&mut half1, Duration::from_secs(2))
            .await
            .is_some()
    );
    assert!(
        closed_within(&mut half2, Duration::from_millis(300))
            .await
            .is_none()
    );
    assert!(
        closed_within(&mut good, Duration::from_millis(100))
            .await
            .is_none()
    );
    assert_eq!(r.stats.evicted(), 1);
    // With no half-open connection left to close, the newcomer is refused.
    let mut next = TcpStream::connect(r.sip).await.unwrap();
    next.write_all(b"OPTIONS sip:a SIP/2.0\r\n\r\n")
        .await
        .unwrap();
    let mut extra = TcpStream::connect(r.sip).await.unwrap();
    assert!(
        closed_within(&mut extra, Duration::from_secs(2))
            .await
            .is_some()
    );
    assert_eq!(r.stats.refused_budget(), 1);
}

/// Reads one `ok` answer.
async fn ok(s: &mut TcpStream) {
    let mut buf = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut buf))
        .await
        .expect("answered in time")
        .unwrap();
    assert_eq!(&buf, b"ok");
}

#[tokio::test]
async fn every_sip_head_is_timed_not_only_the_first() {
    let r = start(IoLimits {
        head_timeout: Duration::from_millis(300),
        conn_idle_timeout: Duration::from_secs(30),
        ..IoLimits::default()
    })
    .await;
    // A complete message (with a body), then half of a second head.
    let mut half = TcpStream::connect(r.sip).await.unwrap();
    half.write_all(b"MESSAGE sip:a SIP/2.0\r\nContent-Length: 4\r\n\r\nbody")
        .await
        .unwrap();
    ok(&mut half).await;
    // Longer than the head timeout between messages: no head is pending, nothing is timed.
    assert!(
        closed_within(&mut half, Duration::from_millis(500))
            .await
            .is_none(),
        "closed between messages"
    );
    half.write_all(b"OPTIONS sip:a SIP/2.0\r\nVia: SIP/2.0/TCP x\r\n")
        .await
        .unwrap();
    // A legitimate client sending whole messages on another connection, meanwhile.
    let mut good = TcpStream::connect(r.sip).await.unwrap();
    for _ in 0..3 {
        good.write_all(b"OPTIONS sip:a SIP/2.0\r\nl: 0\r\n\r\n")
            .await
            .unwrap();
        ok(&mut good).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let t = closed_within(&mut half, Duration::from_secs(5))
        .await
        .expect("the connection with half a second head is closed");
    assert!(t < Duration::from_secs(1), "closed {t:?} after the checks");
    assert_eq!(r.stats.closed_head_timeout(), 1);
    assert_eq!(r.stats.closed_conn_idle(), 0);
    // The good one is still served, a head split across two writes included.
    good.write_all(b"OPTIONS sip:a SIP/2.0\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    good.write_all(b"l: 0\r\n\r\n").await.unwrap();
    // This core answers each chunk as read: one `ok` per write.
    ok(&mut good).await;
    ok(&mut good).await;
    assert_eq!(r.stats.closed_head_timeout(), 1);
}

#[tokio::test]
async fn a_sip_connection_no_core_uses_is_closed_after_the_conn_idle_timeout() {
    let r = start(IoLimits {
        head_timeout: Duration::from_secs(30),
        conn_idle_timeout: Duration::from_millis(400),
        ..IoLimits::default()
    })
    .await;
    let mut unused = TcpStream::connect(r.sip).await.unwrap();
    unused
        .write_all(b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    ok(&mut unused).await;
    // CRLF keep-alives restart the clock (RFC 5626 §4.4.1).
    let mut alive = TcpStream::connect(r.sip).await.unwrap();
    alive
        .write_all(b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 0\r\n\r\n")
        .await
        .unwrap();
    ok(&mut alive).await;
    // An MSRP connection past its first head is the core's (msrp_idle), not this rule's.
    let mut msrp = TcpStream::connect(r.msrp).await.unwrap();
    msrp.write_all(b"MSRP x SEND\r\n\r\n").await.unwrap();
    ok(&mut msrp).await;
    let t0 = tokio::time::Instant::now();
    let closed = tokio::spawn(async move {
        let t = closed_within(&mut unused, Duration::from_secs(5)).await;
        (t, unused)
    });
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        alive.write_all(b"\r\n\r\n").await.unwrap();
    }
    let (t, _) = closed.await.unwrap();
    let t = t.expect("the unused connection is closed");
    assert!(
        t >= Duration::from_millis(350) && t < Duration::from_secs(1),
        "closed after {t:?}"
    );
    assert!(t0.elapsed() >= Duration::from_millis(1200));
    assert!(
        closed_within(&mut alive, Duration::from_millis(100))
            .await
            .is_none(),
        "keep-alives keep it"
    );
    assert!(
        closed_within(&mut msrp, Duration::from_millis(100))
            .await
            .is_none(),
        "MSRP is not under this rule"
    );
    assert_eq!(r.stats.closed_conn_idle(), 1);
    // Keep-alives stop: it goes too.
    assert!(
        closed_within(&mut alive, Duration::from_secs(3))
            .await
            .is_some()
    );
    assert_eq!(r.stats.closed_conn_idle(), 2);
    assert_eq!(r.stats.closed_idle_timeout(), 0);
    assert_eq!(r.stats.closed_head_timeout(), 0);
}

/// With `cores` driver loops the connection is shared by all of them, and it is kept while
/// any one of them uses it.
async fn a_connection_a_core_uses_is_kept(cores: usize) {
    let limits = IoLimits {
        conn_idle_timeout: Duration::from_millis(300),
        ..IoLimits::default()
    };
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let bind = Bind {
        sip_tcp: vec![any],
        ..Bind::default()
    };
    let driver = Driver::bind(&bind, limits).await.unwrap();
    let sip = driver.local().sip_tcp[0];
    let stats = driver.stats();
    let (_stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stopped = async move {
        let _ = stop_rx.await;
    };
    if cores == 1 {
        tokio::spawn(driver.run(Ack::default(), stopped));
    } else {
        let all = (0..cores).map(|_| Ack::default()).collect();
        tokio::spawn(driver.run_sharded(all, stopped));
    }
    let mut held = TcpStream::connect(sip).await.unwrap();
    // With several loops the Call-ID steers the message to one of them.
    held.write_all(b"REGISTER sip:hold SIP/2.0\r\nCall-ID: c1\r\nl: 0\r\n\r\n")
        .await
        .unwrap();
    ok(&mut held).await;
    assert!(
        closed_within(&mut held, Duration::from_millis(1200))
            .await
            .is_none(),
        "a connection in use is kept"
    );
    held.write_all(b"BYE sip:free SIP/2.0\r\nCall-ID: c1\r\nl: 0\r\n\r\n")
        .await
        .unwrap();
    ok(&mut held).await;
    let t = closed_within(&mut held, Duration::from_secs(3))
        .await
        .expect("closed once no core uses it");
    assert!(t >= Duration::from_millis(250), "closed after {t:?}");
    assert_eq!(stats.closed_conn_idle(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_a_core_uses_is_kept_until_it_lets_go() {
    a_connection_a_core_uses_is_kept(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_any_shard_uses_is_kept_until_it_lets_go() {
    a_connection_a_core_uses_is_kept(3).await;
}

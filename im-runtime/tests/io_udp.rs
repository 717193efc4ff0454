//! SIP over UDP read and sent by the driver loops themselves, with real sockets: each socket
//! is read by one loop, which forwards to the other loop what steers there; a burst is
//! drained whole, many datagrams per receive and send call; answers leave from the socket
//! the core names; and the driver's own
//! latency histogram times an initial INVITE from arrival to its final response.
#![cfg(feature = "tokio")]

use bytes::Bytes;
use im_runtime::io::{Bind, Driver, IoLimits};
use im_runtime::steer::{call_id, steer};
use im_runtime::transport::{Core, Input, Output};
use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// Answers every datagram with `s<shard> <Call-ID>` from the socket it arrived on; an
/// `INVITE` instead gets a `SIP/2.0 <code>` response that echoes its Via, Call-ID and CSeq,
/// with 486 when its Request-URI user is `busy` and 200 otherwise, after `delay` of the
/// core's own time (a busy loop, so that the latency measured is over it).
struct Answerer {
    shard: usize,
    delay: Duration,
    out: VecDeque<Output>,
    shutdown: bool,
}

impl Answerer {
    fn new(shard: usize) -> Self {
        Answerer {
            shard,
            delay: Duration::ZERO,
            out: VecDeque::new(),
            shutdown: false,
        }
    }
}

fn response(invite: &str, code: &str) -> String {
    let keep: Vec<&str> = invite
        .lines()
        .filter(|l| {
            ["Via:", "From:", "To:", "Call-ID:", "CSeq:"]
                .iter()
                .any(|h| l.starts_with(h))
        })
        .collect();
    format!(
        "SIP/2.0 {code}\r\n{}\r\nContent-Length: 0\r\n\r\n",
        keep.join("\r\n")
    )
}

impl Core for Answerer {
    fn handle_input(&mut self, now: Instant, input: Input) {
        match input {
            Input::Datagram { local, from, data } => {
                let text = String::from_utf8_lossy(&data).into_owned();
                let reply = if text.starts_with("INVITE ") {
                    while now.elapsed() < self.delay {
                        std::hint::spin_loop();
                    }
                    let code = if text.starts_with("INVITE sip:busy@") {
                        "486 Busy Here"
                    } else {
                        "200 OK"
                    };
                    response(&text, code)
                } else {
                    let id = call_id(&data).map(|i| String::from_utf8_lossy(i).into_owned());
                    format!("s{} {}", self.shard, id.unwrap_or(text))
                };
                self.out.push_back(Output::Datagram {
                    local: Some(local),
                    to: from,
                    data: Bytes::from(reply),
                });
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

/// A Call-ID that steers to `shard` of 2, the `n`th such.
fn id_for(shard: usize, n: usize) -> String {
    (0..)
        .map(|i| format!("call{i}@192.0.2.1"))
        .filter(|id| steer(id.as_bytes(), 2) == shard)
        .nth(n)
        .unwrap()
}

fn options(call_id: &str) -> String {
    format!(
        "OPTIONS sip:x@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

fn invite(user: &str, call_id: &str, branch: &str) -> String {
    format!(
        "INVITE sip:{user}@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5999;branch={branch}\r\n\
         From: <sip:a@example.com>;tag=1\r\nTo: <sip:{user}@example.com>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
}

async fn recv(peer: &UdpSocket) -> (String, SocketAddr) {
    let mut buf = [0u8; 2048];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), peer.recv_from(&mut buf))
        .await
        .expect("an answer in time")
        .unwrap();
    (String::from_utf8_lossy(&buf[..n]).into_owned(), from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_socket_feeds_both_shards_and_answers_leave_from_it() {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let bind = Bind {
        sip_udp: vec![any, any],
        ..Bind::default()
    };
    let driver = Driver::bind(&bind, IoLimits::default()).await.unwrap();
    let local = driver.local().clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(driver.run_sharded(
        vec![Answerer::new(0), Answerer::new(1)],
        async move {
            let _ = stop_rx.await;
        },
    ));
    let peer = UdpSocket::bind(any).await.unwrap();
    // Socket j is read by loop j: on each, a call of the other shard is forwarded to it,
    // answered there, and the answer still leaves from the socket the request came to.
    for (j, sock) in local.sip_udp.iter().enumerate() {
        for shard in [0, 1] {
            let id = id_for(shard, j);
            peer.send_to(options(&id).as_bytes(), sock).await.unwrap();
            let (got, from) = recv(&peer).await;
            assert_eq!(from, *sock);
            assert_eq!(got, format!("s{shard} {id}"));
        }
    }
    let _ = stop_tx.send(());
    let cores = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cores.len(), 2);
}

#[tokio::test]
async fn a_burst_is_drained_whole_in_order() {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let bind = Bind {
        sip_udp: vec![any],
        ..Bind::default()
    };
    let driver = Driver::bind(&bind, IoLimits::default()).await.unwrap();
    let server = driver.local().sip_udp[0];
    let stats = driver.stats();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(driver.run(Answerer::new(0), async move {
        let _ = stop_rx.await;
    }));
    // More than one drain batch (64), sent before the loop can answer any: the loop reads
    // them all, over several batches, and answers each once, in the order sent.
    let ids: Vec<String> = (0..150).map(|i| format!("burst{i}@192.0.2.1")).collect();
    let sender = std::net::UdpSocket::bind(any).unwrap();
    for id in &ids {
        sender.send_to(options(id).as_bytes(), server).unwrap();
    }
    sender.set_nonblocking(true).unwrap();
    let sender = UdpSocket::from_std(sender).unwrap();
    let mut answered = Vec::new();
    let mut seen = HashSet::new();
    while answered.len() < ids.len() {
        let (got, _) = recv(&sender).await;
        assert!(seen.insert(got.clone()), "answered twice: {got}");
        answered.push(got);
    }
    let want: Vec<String> = ids.iter().map(|id| format!("s0 {id}")).collect();
    assert_eq!(answered, want);
    let udp = stats.udp();
    assert_eq!((udp.received(), udp.sent()), (150, 150));
    let linux = cfg!(target_os = "linux");
    if linux {
        // Read 16 at a time (the last batch short), answered 64 at a time (one drain's
        // worth per loop turn): 10 receive and 3 send calls where there were 150 of each.
        assert_eq!((udp.recv_calls(), udp.send_calls()), (10, 3));
        // The short last batch cleared the socket's readiness without a call that reads
        // nothing.
        assert_eq!(udp.recv_empty(), 0);
    }
    // A datagram sent afterwards still wakes the loop.
    let late = "late@192.0.2.1";
    sender
        .send_to(options(late).as_bytes(), server)
        .await
        .unwrap();
    assert_eq!(recv(&sender).await.0, format!("s0 {late}"));
    assert_eq!(udp.received(), 151);
    if linux {
        assert_eq!(udp.recv_empty(), 0);
    }
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn the_driver_times_initial_invites_to_their_final_response() {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let bind = Bind {
        sip_udp: vec![any],
        ..Bind::default()
    };
    let driver = Driver::bind(&bind, IoLimits::default()).await.unwrap();
    let server = driver.local().sip_udp[0];
    let stats = driver.stats();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut core = Answerer::new(0);
    core.delay = Duration::from_millis(30);
    let task = tokio::spawn(driver.run(core, async move {
        let _ = stop_rx.await;
    }));
    let peer = UdpSocket::bind(any).await.unwrap();
    let accepted = invite("team", "inv1@192.0.2.1", "z9hG4bKinv1");
    peer.send_to(accepted.as_bytes(), server).await.unwrap();
    let (got, _) = recv(&peer).await;
    assert!(got.starts_with("SIP/2.0 200 OK\r\n"), "{got}");
    // Counted once, in a bucket at or over the core's 30 ms.
    let a = stats.invite_latency().accepted();
    assert_eq!(a.count, 1, "{a:?}");
    assert!(a.sum_seconds >= 0.030, "{a:?}");
    assert_eq!(a.buckets[..5].iter().sum::<u64>(), 0, "under 20 ms: {a:?}");
    // A retransmission of the INVITE is answered again but not timed again.
    peer.send_to(accepted.as_bytes(), server).await.unwrap();
    recv(&peer).await;
    assert_eq!(stats.invite_latency().accepted().count, 1);
    // A re-INVITE (To tag) is not an initial INVITE; a rejection goes apart.
    let re = invite("team", "inv1@192.0.2.1", "z9hG4bKre").replace(
        "To: <sip:team@example.com>",
        "To: <sip:team@example.com>;tag=2",
    );
    peer.send_to(re.as_bytes(), server).await.unwrap();
    recv(&peer).await;
    let busy = invite("busy", "inv2@192.0.2.1", "z9hG4bKinv2");
    peer.send_to(busy.as_bytes(), server).await.unwrap();
    let (got, _) = recv(&peer).await;
    assert!(got.starts_with("SIP/2.0 486 "), "{got}");
    assert_eq!(stats.invite_latency().accepted().count, 1);
    let r = stats.invite_latency().rejected();
    assert_eq!(r.count, 1, "{r:?}");
    assert!(r.sum_seconds >= 0.030, "{r:?}");
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
}

/// How many of `n` padded OPTIONS, sent from another thread while the core spends 300 ms on
/// an INVITE, the loop reads, with the receive buffer `limits` asks for; and the buffer
/// the socket got.
async fn read_during_a_stall(limits: IoLimits, n: u64) -> (u64, usize) {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let bind = Bind {
        sip_udp: vec![any],
        ..Bind::default()
    };
    let driver = Driver::bind(&bind, limits).await.unwrap();
    let server = driver.local().sip_udp[0];
    let granted = driver.local().sip_udp_recv_buffer[0];
    let stats = driver.stats();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut core = Answerer::new(0);
    core.delay = Duration::from_millis(300);
    let task = tokio::spawn(driver.run(core, async move {
        let _ = stop_rx.await;
    }));
    let peer = UdpSocket::bind(any).await.unwrap();
    peer.send_to(
        invite("team", "hold@192.0.2.1", "z9hG4bKhold").as_bytes(),
        server,
    )
    .await
    .unwrap();
    // The core is inside the INVITE (the loop reads it at once): the burst arrives while
    // nothing reads the socket. ~600 bytes each, as a SIP request with a few headers is.
    tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(50));
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let pad = "a".repeat(400);
        for i in 0..n {
            let m = options(&format!("burst{i}@192.0.2.1"))
                .replace("Content-Length", &format!("X-Pad: {pad}\r\nContent-Length"));
            s.send_to(m.as_bytes(), server).unwrap();
        }
    })
    .await
    .unwrap();
    // Every datagram the socket kept is read within a few seconds of the stall.
    for _ in 0..250 {
        if stats.udp().received() > n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // What was dropped never comes: the count settles.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let read = stats.udp().received() - 1;
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    (read, granted)
}

fn proc_usize(path: &str) -> usize {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// A burst that arrives while the loop is held up waits in the socket's receive buffer
/// (`IoLimits::udp_recv_buffer`, 4 MiB by default) and is read whole, where the system's
/// usual default (208 KiB: 166 such datagrams as the kernel counts them, here) drops most
/// of it unseen. 2,000 datagrams of ~600 bytes during a 300 ms stall of the core.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg(target_os = "linux")]
async fn a_burst_during_a_stall_waits_in_the_receive_buffer() {
    const N: u64 = 2_000;
    let (read, granted) = read_during_a_stall(IoLimits::default(), N).await;
    if granted < IoLimits::default().udp_recv_buffer {
        // Not root, and net.core.rmem_max below 4 MiB: the kernel's cap, not ours.
        eprintln!("skipped: the kernel granted a {granted}-byte receive buffer");
        return;
    }
    assert_eq!(read, N, "datagrams read of {N} sent during the stall");
    // The same burst with the system's default buffer, where that default is the usual
    // small one: most of it is lost, which is what the setting is for.
    if proc_usize("/proc/sys/net/core/rmem_default") < 1 << 20 {
        let limits = IoLimits {
            udp_recv_buffer: 0,
            ..IoLimits::default()
        };
        let (read, granted) = read_during_a_stall(limits, N).await;
        assert_eq!(granted, 0);
        assert!(
            read < N / 2,
            "{read} of {N} read with the system's default buffer"
        );
    }
}

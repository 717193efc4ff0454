//! `Driver::run_sharded` with two small cores that answer with their shard number: SIP
//! datagrams and SIP messages framed out of one TCP connection reach the core their Call-ID
//! steers to, every core can answer on a shared SIP connection, each MSRP listener belongs to
//! one core, and the two cores' outgoing connections with the same core-side id stay apart.
#![cfg(feature = "tokio")]

use bytes::Bytes;
use im_runtime::io::{Bind, Driver, IoLimits};
use im_runtime::steer::{call_id, steer};
use im_runtime::transport::{ConnId, Core, Input, Output, StreamKind};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Answers every datagram and every stream message with `s<shard> <Call-ID>` (or
/// `s<shard> <bytes>` when there is none). A datagram `connect <addr>` opens an MSRP stream
/// with core-side id 7 and writes `hello from s<shard>` on it.
struct Tagger {
    shard: usize,
    out: VecDeque<Output>,
    opened: Vec<(ConnId, StreamKind)>,
    data: Vec<Bytes>,
    shutdown: bool,
}

impl Tagger {
    fn new(shard: usize) -> Tagger {
        Tagger {
            shard,
            out: VecDeque::new(),
            opened: Vec::new(),
            data: Vec::new(),
            shutdown: false,
        }
    }

    fn answer(&self, data: &[u8]) -> Bytes {
        let id = call_id(data).unwrap_or(data);
        Bytes::from(format!("s{} {}", self.shard, String::from_utf8_lossy(id)))
    }
}

impl Core for Tagger {
    fn handle_input(&mut self, _now: Instant, input: Input) {
        match input {
            Input::Datagram { local, from, data } => {
                if let Some(Ok(to)) = std::str::from_utf8(&data)
                    .ok()
                    .and_then(|t| t.strip_prefix("connect "))
                    .map(|a| a.lines().next().unwrap_or("").trim().parse::<SocketAddr>())
                {
                    self.out.push_back(Output::Connect {
                        conn: ConnId(7),
                        kind: StreamKind::Msrp,
                        to,
                    });
                }
                let reply = self.answer(&data);
                self.out.push_back(Output::Datagram {
                    local: Some(local),
                    to: from,
                    data: reply,
                });
            }
            Input::StreamOpened { conn, kind, .. } => {
                self.opened.push((conn, kind));
                if conn == ConnId(7) {
                    self.out.push_back(Output::StreamSend {
                        conn,
                        data: Bytes::from(format!("hello from s{}", self.shard)),
                    });
                }
            }
            Input::StreamData { conn, data } => {
                let reply = self.answer(&data);
                self.data.push(data);
                self.out.push_back(Output::StreamSend { conn, data: reply });
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

/// A Call-ID that steers to `shard` of 2.
fn id_for(shard: usize) -> String {
    (0..)
        .map(|i| format!("call{i}@192.0.2.1"))
        .find(|id| steer(id.as_bytes(), 2) == shard)
        .unwrap()
}

fn sip(call_id: &str) -> String {
    format!(
        "OPTIONS sip:x@example.com SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK1\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

async fn read_some(s: &mut tokio::net::TcpStream) -> String {
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("an answer in time")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_reach_the_shard_their_call_id_steers_to() {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let bind = Bind {
        sip_udp: vec![any],
        sip_tcp: vec![any],
        msrp_tcp: vec![any, any],
    };
    let driver = Driver::bind(&bind, IoLimits::default()).await.unwrap();
    let local = driver.local().clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(
        driver.run_sharded(vec![Tagger::new(0), Tagger::new(1)], async move {
            let _ = stop_rx.await;
        }),
    );
    let (a, b) = (id_for(0), id_for(1));

    // UDP: each datagram is answered by the shard of its Call-ID.
    let peer = tokio::net::UdpSocket::bind(any).await.unwrap();
    let mut buf = [0u8; 256];
    for (id, shard) in [(&a, 0), (&b, 1), (&a, 0)] {
        peer.send_to(sip(id).as_bytes(), local.sip_udp[0])
            .await
            .unwrap();
        let (n, from) = peer.recv_from(&mut buf).await.unwrap();
        assert_eq!(from, local.sip_udp[0]);
        assert_eq!(
            std::str::from_utf8(&buf[..n]).unwrap(),
            format!("s{shard} {id}")
        );
    }

    // TCP: two messages of two calls in one write, the second split across two writes; each
    // is framed out and answered by its own shard on the one connection.
    let mut s = tokio::net::TcpStream::connect(local.sip_tcp[0])
        .await
        .unwrap();
    let both = format!("{}\r\n\r\n{}", sip(&b), sip(&a));
    s.write_all(both.as_bytes()).await.unwrap();
    let mut got = String::new();
    while got.matches(' ').count() < 2 {
        got.push_str(&read_some(&mut s).await);
    }
    assert!(got.contains(&format!("s1 {b}")), "{got}");
    assert!(got.contains(&format!("s0 {a}")), "{got}");
    let m = sip(&b);
    let (x, y) = m.split_at(30);
    s.write_all(x.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.write_all(y.as_bytes()).await.unwrap();
    assert_eq!(read_some(&mut s).await, format!("s1 {b}"));

    // MSRP listener j belongs to shard j: bytes go there unframed.
    for (j, addr) in local.msrp_tcp.iter().enumerate() {
        let mut m = tokio::net::TcpStream::connect(addr).await.unwrap();
        m.write_all(b"MSRP abc SEND").await.unwrap();
        assert_eq!(read_some(&mut m).await, format!("s{j} MSRP abc SEND"));
    }

    // Both shards open an outgoing connection with the same core-side id 7; each hears its
    // own open and writes on its own connection.
    let listener = tokio::net::TcpListener::bind(any).await.unwrap();
    let target = listener.local_addr().unwrap();
    let mut hellos = Vec::new();
    for id in [&a, &b] {
        let connect = format!("connect {target}\r\nCall-ID: {id}\r\n\r\n");
        peer.send_to(connect.as_bytes(), local.sip_udp[0])
            .await
            .unwrap();
        let _ = peer.recv_from(&mut buf).await.unwrap();
        let (mut inbound, _) = listener.accept().await.unwrap();
        hellos.push(read_some(&mut inbound).await);
    }
    assert_eq!(hellos, ["hello from s0", "hello from s1"]);

    stop_tx.send(()).unwrap();
    let cores = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("every shard stops after shutdown")
        .unwrap();
    assert_eq!(cores.len(), 2);
    for (i, core) in cores.iter().enumerate() {
        assert_eq!(core.shard, i, "cores come back in order");
        assert!(core.shutdown);
        // Every shard learnt of the shared SIP connection, and of its own id 7 only once.
        assert!(
            core.opened
                .iter()
                .any(|(c, k)| c.is_accepted() && *k == StreamKind::Sip)
        );
        assert_eq!(
            core.opened.iter().filter(|(c, _)| *c == ConnId(7)).count(),
            1
        );
        // Stream data reached a core as whole messages.
        assert!(
            core.data
                .iter()
                .all(|d| d.starts_with(b"OPTIONS") || d.starts_with(b"MSRP"))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unframeable_sip_stream_goes_to_its_shard_then_is_closed() {
    // The reader cannot frame a message whose body is over the limit; it hands what it has to
    // the shard the Call-ID steers to (whose endpoint answers 413 and closes) and stops
    // reading. The tagger answers instead of 413; the connection ends after the answer.
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let bind = Bind {
        sip_tcp: vec![any],
        ..Bind::default()
    };
    let limits = IoLimits {
        max_sip_message: 2048,
        ..IoLimits::default()
    };
    let driver = Driver::bind(&bind, limits).await.unwrap();
    let server = driver.local().sip_tcp[0];
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(
        driver.run_sharded(vec![Tagger::new(0), Tagger::new(1)], async move {
            let _ = stop_rx.await;
        }),
    );
    let mut s = tokio::net::TcpStream::connect(server).await.unwrap();
    let huge = "OPTIONS sip:x SIP/2.0\r\nCall-ID: a\r\nContent-Length: 999999\r\n\r\n";
    s.write_all(huge.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut got))
        .await
        .expect("closed in time")
        .unwrap();
    let want = format!("s{} a", steer(b"a", 2));
    assert_eq!(
        String::from_utf8_lossy(&got),
        want,
        "answered by its shard, then closed"
    );
    stop_tx.send(()).unwrap();
    let cores = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    let with_data: Vec<usize> = cores
        .iter()
        .filter(|c| !c.data.is_empty())
        .map(|c| c.shard)
        .collect();
    assert_eq!(with_data, [steer(b"a", 2)]);
}

//! The tokio driver against a small echo core: UDP datagrams and TCP streams go through the
//! driver both ways, outgoing connects work, and shutdown waits for the core to be idle.
#![cfg(feature = "tokio")]

use bytes::Bytes;
use im_runtime::io::{Bind, Driver, IoLimits};
use im_runtime::transport::{ConnId, Core, Input, Output, StreamKind};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

/// Echoes datagrams and stream data back, upper-cased; on `connect <addr>` over UDP it opens
/// a stream to that address and writes `hello`.
#[derive(Default)]
struct Echo {
    out: VecDeque<Output>,
    opened: Vec<(ConnId, StreamKind)>,
    shutdown: bool,
}

impl Core for Echo {
    fn handle_input(&mut self, _now: Instant, input: Input) {
        match input {
            Input::Datagram { local, from, data } => {
                let text = String::from_utf8_lossy(&data).to_string();
                if let Some(Ok(to)) = text
                    .strip_prefix("connect ")
                    .map(|a| a.trim().parse::<SocketAddr>())
                {
                    self.out.push_back(Output::Connect {
                        conn: ConnId(7),
                        kind: StreamKind::Msrp,
                        to,
                    });
                }
                self.out.push_back(Output::Datagram {
                    local: Some(local),
                    to: from,
                    data: Bytes::from(text.to_uppercase()),
                });
            }
            Input::StreamOpened { conn, kind, .. } => {
                self.opened.push((conn, kind));
                if conn == ConnId(7) {
                    self.out.push_back(Output::StreamSend {
                        conn,
                        data: Bytes::from_static(b"hello"),
                    });
                }
            }
            Input::StreamData { conn, data } => self.out.push_back(Output::StreamSend {
                conn,
                data: Bytes::from(String::from_utf8_lossy(&data).to_uppercase()),
            }),
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

#[tokio::test]
async fn udp_tcp_and_connect_through_the_driver() {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let bind = Bind {
        sip_udp: vec![any],
        sip_tcp: vec![any],
        msrp_tcp: vec![any],
    };
    let driver = Driver::bind(&bind, IoLimits::default()).await.unwrap();
    let local = driver.local().clone();
    assert_ne!(local.sip_udp[0].port(), 0);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(driver.run(Echo::default(), async move {
        let _ = stop_rx.await;
    }));

    // UDP echo.
    let peer = tokio::net::UdpSocket::bind(any).await.unwrap();
    peer.send_to(b"options", local.sip_udp[0]).await.unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = peer.recv_from(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"OPTIONS");
    assert_eq!(from, local.sip_udp[0]);

    // TCP echo on the SIP listener.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(local.sip_tcp[0])
        .await
        .unwrap();
    s.write_all(b"invite").await.unwrap();
    let n = s.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"INVITE");

    // The core asks for an outgoing MSRP connection.
    let listener = tokio::net::TcpListener::bind(any).await.unwrap();
    let target = listener.local_addr().unwrap();
    peer.send_to(format!("connect {target}").as_bytes(), local.sip_udp[0])
        .await
        .unwrap();
    let (mut inbound, _) = listener.accept().await.unwrap();
    let n = inbound.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"hello");

    stop_tx.send(()).unwrap();
    let core = tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .expect("driver stops after shutdown")
        .unwrap();
    assert!(core.shutdown);
    assert!(
        core.opened
            .iter()
            .any(|(c, k)| c.is_accepted() && *k == StreamKind::Sip)
    );
    assert!(core.opened.contains(&(ConnId(7), StreamKind::Msrp)));
}

#[tokio::test]
async fn connections_over_the_limit_are_closed_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let bind = Bind {
        sip_tcp: vec![any],
        ..Bind::default()
    };
    let limits = IoLimits {
        max_sip_connections: 2,
        ..IoLimits::default()
    };
    let driver = Driver::bind(&bind, limits).await.unwrap();
    let server = driver.local().sip_tcp[0];
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(driver.run(Echo::default(), async move {
        let _ = stop_rx.await;
    }));
    let wait = std::time::Duration::from_secs(5);
    let mut buf = [0u8; 16];
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut s = tokio::net::TcpStream::connect(server).await.unwrap();
        // A complete head: a connection that has spoken is never closed to make room.
        s.write_all(b"hi\r\n\r\n").await.unwrap();
        let mut got = [0u8; 6];
        tokio::time::timeout(wait, s.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&got, b"HI\r\n\r\n");
        open.push(s);
    }
    // The third is accepted by the OS and closed by the driver without being served.
    let mut third = tokio::net::TcpStream::connect(server).await.unwrap();
    let _ = third.write_all(b"hi").await;
    let n = tokio::time::timeout(wait, third.read(&mut buf))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0, "over the limit: closed, not echoed");

    // Once one closes, a new connection is served again.
    drop(open.pop());
    let mut served = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let mut s = tokio::net::TcpStream::connect(server).await.unwrap();
        if s.write_all(b"again").await.is_err() {
            continue;
        }
        if let Ok(Ok(n)) = tokio::time::timeout(wait, s.read(&mut buf)).await
            && n > 0
        {
            assert_eq!(&buf[..n], b"AGAIN");
            served = true;
            break;
        }
    }
    assert!(served, "a slot freed by a closed connection is reused");
    stop_tx.send(()).unwrap();
    tokio::time::timeout(wait, task).await.unwrap().unwrap();
}

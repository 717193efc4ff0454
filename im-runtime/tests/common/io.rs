//! The real-socket counterpart of `harness.rs`'s `Sim`: the tokio driver running an
//! endpoint on 127.0.0.1 ([`Server`]), and what the peers of a test do on real sockets
//! (read a framed SIP message off a TCP stream, wait for a datagram, accept the server's
//! connection, register over TCP, leave with a BYE).
#![cfg(feature = "tokio")]

use super::{ack_for, invite, register_request, simple_request, status_of};
use bytes::{Bytes, BytesMut};
use im_runtime::endpoint::{Application, Endpoint, EndpointConfig, LiveSnapshot, LiveStats};
use im_runtime::io::{Bind, Driver, IoLimits, IoStats};
use im_runtime::proto::sip::{self, Message, Transport};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// How long a peer waits for what the server should send.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// The wall clock (these tests run real sockets and real timers).
#[allow(clippy::disallowed_methods)]
pub(crate) fn clock() -> Instant {
    Instant::now()
}

/// Any port on 127.0.0.1.
pub(crate) fn v4() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A running driver on 127.0.0.1 (UDP, TCP and MSRP) for an application.
pub(crate) struct Server {
    /// SIP over UDP.
    pub(crate) sip: SocketAddr,
    /// SIP over TCP.
    pub(crate) sip_tcp: SocketAddr,
    /// The driver's counters.
    pub(crate) io: Arc<IoStats>,
    /// The endpoint's counters.
    pub(crate) live: Arc<LiveStats>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// `app` on fresh ports with `limits`.
    pub(crate) async fn start<A: Application + Send + 'static>(app: A, limits: IoLimits) -> Server {
        let bind = Bind {
            sip_udp: vec![v4()],
            sip_tcp: vec![v4()],
            msrp_tcp: vec![v4()],
        };
        let driver = Driver::bind(&bind, limits).await.unwrap();
        let io = driver.stats();
        let local = driver.local().clone();
        let cfg = EndpointConfig::new(local.sip_udp[0], local.msrp_tcp[0]);
        let ep = Endpoint::new(cfg, app);
        let live = ep.live_stats();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            driver
                .run(ep, async move {
                    let _ = stop_rx.await;
                })
                .await;
        });
        Server {
            sip: local.sip_udp[0],
            sip_tcp: local.sip_tcp[0],
            io,
            live,
            stop,
            task,
        }
    }

    /// Shuts the driver down and waits (up to 10 s) for it to stop.
    pub(crate) async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the driver stops after shutdown")
            .unwrap();
    }

    /// Waits (up to `within`) until `f` holds of the endpoint's live counters.
    pub(crate) async fn until(&self, within: Duration, f: impl Fn(&LiveSnapshot) -> bool) -> bool {
        let end = clock() + within;
        loop {
            if f(&self.live.snapshot()) {
                return true;
            }
            if clock() >= end {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The next datagram on `sock` (within [`WAIT`]), as SIP.
pub(crate) async fn recv_udp(sock: &UdpSocket) -> Message {
    let mut buf = vec![0u8; 65_535];
    let (n, _) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .expect("a datagram in time")
        .unwrap();
    Message::parse(Bytes::copy_from_slice(&buf[..n])).expect("parsable SIP")
}

/// The next SIP message on `s`; `None` when the server closed the connection.
pub(crate) async fn read_msg(s: &mut TcpStream, buf: &mut BytesMut) -> Option<Message> {
    loop {
        match sip::frame(buf, 65_535).expect("framable stream") {
            sip::Frame::Message { skip, len } => {
                let _ = buf.split_to(skip);
                let m = buf.split_to(len).freeze();
                return Some(Message::parse_as(m, Transport::Stream).expect("parsable SIP"));
            }
            sip::Frame::KeepAlive { skip } => {
                let _ = buf.split_to(skip);
            }
            sip::Frame::NeedMore => {
                let mut chunk = [0u8; 4096];
                let n = tokio::time::timeout(WAIT, s.read(&mut chunk))
                    .await
                    .expect("data in time")
                    .unwrap_or(0);
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

/// The connection the server opens to `l` (within [`WAIT`]; `what` names it when it
/// does not come).
pub(crate) async fn accepted(l: &TcpListener, what: &str) -> TcpStream {
    match tokio::time::timeout(WAIT, l.accept()).await {
        Ok(Ok((s, _))) => s,
        Ok(Err(e)) => panic!("{what}: {e}"),
        Err(_) => panic!("{what}: no connection in time"),
    }
}

/// Asserts that the server opens no connection to `l` within `within`.
pub(crate) async fn never_dialled(l: &TcpListener, within: Duration, what: &str) {
    let dialled = tokio::time::timeout(within, l.accept()).await;
    assert!(dialled.is_err(), "no connection to {what}");
}

/// Asserts that the server sends nothing on `s` for `d` (and does not close it).
pub(crate) async fn quiet(s: &mut TcpStream, d: Duration, what: &str) {
    let mut chunk = [0u8; 1024];
    let got = tokio::time::timeout(d, s.read(&mut chunk)).await;
    assert!(got.is_err(), "{what}: {got:?}");
}

/// An MSRP listener that accepts and holds every connection (an invitee that answered
/// `setup:passive`); its address.
pub(crate) async fn msrp_sink() -> String {
    let l = TcpListener::bind(v4()).await.unwrap();
    let a = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    a
}

/// `answer` (a stand-in invitee's response, `response_to`) with its Contact at `at` over
/// TCP, so what the server sends in the dialog goes there.
pub(crate) fn contact_over_tcp(answer: &str, user: &str, at: SocketAddr) -> String {
    answer.replace(
        "Contact: <sip:invitee@127.0.0.2:5060>",
        &format!("Contact: <sip:{user}@{at};transport=tcp>"),
    )
}

/// Bob's REGISTER over a new TCP connection to `srv` with `contact` (the whole header
/// value, with any parameters) and `extra` header lines (LF-ended); asserts the 200 and
/// returns the connection, now his flow, with what was read past the answer, and the answer.
pub(crate) async fn bob_registers_over_tcp(
    srv: &Server,
    call: &str,
    contact: &str,
    extra: &str,
) -> (TcpStream, BytesMut, Message) {
    let mut b = TcpStream::connect(srv.sip_tcp).await.unwrap();
    let bob_src = b.local_addr().unwrap().to_string();
    let via = format!("SIP/2.0/TCP {bob_src};branch=z9hG4bKreg{call}");
    let reg = register_request("bob", &format!("reg{call}"), &[via], extra, contact);
    b.write_all(reg.as_bytes()).await.unwrap();
    let mut buf = BytesMut::new();
    let r = read_msg(&mut b, &mut buf)
        .await
        .expect("the REGISTER's answer");
    assert_eq!(status_of(&r), 200);
    (b, buf, r)
}

/// Alice's INVITE to `invitees` over UDP from `alice`; returns the 200 once ACKed.
pub(crate) async fn alice_invites(
    alice: &UdpSocket,
    server: SocketAddr,
    call: &str,
    invitees: &[&str],
) -> Message {
    let me = alice.local_addr().unwrap().to_string();
    let inv = invite("UDP", &me, call, &format!("z9hG4bK{call}"), invitees);
    alice.send_to(inv.as_bytes(), server).await.unwrap();
    let ok = loop {
        let r = recv_udp(alice).await;
        if status_of(&r) >= 200 {
            break r;
        }
    };
    assert_eq!(status_of(&ok), 200);
    let ack = ack_for(&ok, "UDP", &me, &format!("z9hG4bKack{call}"));
    alice.send_to(ack.as_bytes(), server).await.unwrap();
    ok
}

/// Alice leaves the session the 200 `ok` (of call `call`) answered: her BYE over UDP.
pub(crate) async fn alice_leaves(alice: &UdpSocket, server: SocketAddr, ok: &Message, call: &str) {
    let me = alice.local_addr().unwrap().to_string();
    let to = ok.header_str("To").unwrap().to_owned();
    let branch = format!("z9hG4bKbye{call}");
    let bye = simple_request("BYE", "UDP", &me, call, &branch, &to, 2, "");
    alice.send_to(bye.as_bytes(), server).await.unwrap();
}

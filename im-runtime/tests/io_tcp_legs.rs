//! Invitees over TCP on real sockets (`endpoint/route_leg.rs`, `io/hygiene.rs`): the
//! tokio driver runs an `Endpoint` with the stand-in machines on 127.0.0.1; alice speaks UDP,
//! bob is a TCP listener whose URI says `transport=tcp`.
//! * A connection the server opened to an invitee stays open while a session uses it (here
//!   well past the idle time, its dialog live) and is closed once the session is over and
//!   the connection has been silent for `conn_idle_timeout` (RFC 3261 §18: the client may
//!   close); its slot in `max_sip_connections` comes back, so with a budget of one the next
//!   session connects again.
#![cfg(feature = "tokio")]

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use im_runtime::endpoint::{Endpoint, EndpointConfig};
use im_runtime::io::{Bind, Driver, IoLimits};
use im_runtime::machine::Method;
use im_runtime::proto::sip::{self, Message, Transport};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

const WAIT: Duration = Duration::from_secs(5);
const IDLE: Duration = Duration::from_millis(500);

#[allow(clippy::disallowed_methods)]
fn clock() -> Instant {
    Instant::now()
}

async fn recv_udp(sock: &UdpSocket) -> Message {
    let mut buf = vec![0u8; 65_535];
    let (n, _) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .expect("a datagram in time")
        .unwrap();
    Message::parse(Bytes::copy_from_slice(&buf[..n])).expect("parsable SIP")
}

/// The next SIP message on `s`; `None` when the server closed the connection.
async fn read_msg(s: &mut TcpStream, buf: &mut BytesMut) -> Option<Message> {
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

/// Alice's INVITE to `bob` over UDP; returns the 200 once ACKed.
async fn alice_invites(alice: &UdpSocket, server: SocketAddr, call: &str, bob: &str) -> Message {
    let me = alice.local_addr().unwrap().to_string();
    let inv = invite("UDP", &me, call, &format!("z9hG4bK{call}"), &[bob]);
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

#[tokio::test]
async fn an_outgoing_connection_is_closed_once_unused_and_idle() {
    let v4: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let bind = Bind {
        sip_udp: vec![v4],
        sip_tcp: vec![v4],
        msrp_tcp: vec![v4],
    };
    let limits = IoLimits {
        conn_idle_timeout: IDLE,
        max_sip_connections: 1,
        ..IoLimits::default()
    };
    let driver = Driver::bind(&bind, limits).await.unwrap();
    let stats = driver.stats();
    let local = driver.local().clone();
    let server = local.sip_udp[0];
    let cfg = EndpointConfig::new(server, local.msrp_tcp[0]);
    let ep = Endpoint::new(cfg, App(Knobs::default()));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(driver.run(ep, async move {
        let _ = stop_rx.await;
    }));

    let bob = TcpListener::bind(v4).await.unwrap();
    let bob_uri = format!("sip:bob@{};transport=tcp", bob.local_addr().unwrap());
    // Bob's MSRP side: the server connects (bob answers `setup:passive`); held open.
    let bob_msrp = TcpListener::bind(v4).await.unwrap();
    let bob_msrp_addr = bob_msrp.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = bob_msrp.accept().await {
            held.push(s);
        }
    });
    let alice = UdpSocket::bind(v4).await.unwrap();
    let alice_me = alice.local_addr().unwrap().to_string();

    let ok = alice_invites(&alice, server, "idle1", &bob_uri).await;
    let (mut s, _) = tokio::time::timeout(WAIT, bob.accept())
        .await
        .expect("the server connects to bob")
        .unwrap();
    let mut buf = BytesMut::new();
    let inv = read_msg(&mut s, &mut buf).await.expect("bob's INVITE");
    assert_eq!(inv.method(), Some(&Method::Invite));
    let answer = response_to(&inv, 200, "b1", Some(&invitee_sdp(&bob_msrp_addr, "bobs")));
    s.write_all(answer.as_bytes()).await.unwrap();
    let ack = read_msg(&mut s, &mut buf).await.expect("the ACK");
    assert_eq!(ack.method(), Some(&Method::Ack));

    // The dialog is live: three idle times of silence do not close the connection.
    let mut chunk = [0u8; 1024];
    let quiet = tokio::time::timeout(3 * IDLE, s.read(&mut chunk)).await;
    assert!(quiet.is_err(), "the connection stays open: {quiet:?}");
    assert_eq!(stats.closed_conn_idle(), 0);

    // Alice leaves: the session BYEs bob on the connection, bob answers, the session ends.
    let to = ok.header_str("To").unwrap().to_owned();
    let bye = simple_request("BYE", "UDP", &alice_me, "idle1", "z9hG4bKbye1", &to, 2, "");
    alice.send_to(bye.as_bytes(), server).await.unwrap();
    let bye = read_msg(&mut s, &mut buf).await.expect("the BYE to bob");
    assert_eq!(bye.method(), Some(&Method::Bye));
    s.write_all(response_to(&bye, 200, "", None).as_bytes())
        .await
        .unwrap();
    let answered = clock();
    // Unused now: closed once silent for the idle time, not before.
    assert!(
        read_msg(&mut s, &mut buf).await.is_none(),
        "the server closes its unused connection"
    );
    let after = answered.elapsed();
    assert!(after >= IDLE - Duration::from_millis(100), "{after:?}");
    assert_eq!(stats.closed_conn_idle(), 1);

    // Its slot came back: with a budget of one, the next session connects to bob again.
    alice_invites(&alice, server, "idle2", &bob_uri).await;
    let (mut s2, _) = tokio::time::timeout(WAIT, bob.accept())
        .await
        .expect("a new connection to bob within the budget")
        .unwrap();
    let mut buf2 = BytesMut::new();
    let inv2 = read_msg(&mut s2, &mut buf2).await.expect("the INVITE");
    assert_eq!(inv2.method(), Some(&Method::Invite));
    s2.write_all(response_to(&inv2, 486, "b2", None).as_bytes())
        .await
        .unwrap();
    let ack2 = read_msg(&mut s2, &mut buf2).await.expect("the ACK of 486");
    assert_eq!(ack2.method(), Some(&Method::Ack));

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the driver stops after shutdown")
        .unwrap();
}

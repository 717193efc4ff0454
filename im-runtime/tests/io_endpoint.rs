//! The endpoint on real sockets: the tokio driver runs an `Endpoint` with the stand-in
//! machines on 127.0.0.1 and [::1] (port 0), UDP and TCP. OPTIONS is served over each; an
//! INVITE with a recipient list over TCP reaches an invitee's UDP socket, its 100 and 200 come
//! back on the same TCP connection (with received/rport), the session ends with BYE on that
//! connection, and shutdown stops the driver with no session left.
#![cfg(feature = "tokio")]

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use im_runtime::endpoint::{Endpoint, EndpointConfig};
use im_runtime::io::{Bind, Driver, IoLimits};
use im_runtime::machine::Method;
use im_runtime::proto::sip::Message;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

const WAIT: Duration = Duration::from_secs(5);

async fn udp_exchange(sock: &UdpSocket, to: SocketAddr, text: &str) -> Message {
    sock.send_to(text.as_bytes(), to).await.unwrap();
    recv_udp(sock).await.0
}

async fn recv_udp(sock: &UdpSocket) -> (Message, SocketAddr) {
    let mut buf = vec![0u8; 65_535];
    let (n, from) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf))
        .await
        .expect("a datagram in time")
        .unwrap();
    (
        Message::parse(Bytes::copy_from_slice(&buf[..n])).expect("parsable SIP"),
        from,
    )
}

/// Reads one framed SIP message from `s`; the server must not close it first.
async fn read_msg(s: &mut TcpStream, buf: &mut BytesMut) -> Message {
    common::io::read_msg(s, buf)
        .await
        .expect("the server closed the connection")
}

fn options(transport: &str, via: SocketAddr, call: &str) -> String {
    simple_request(
        "OPTIONS",
        transport,
        &via.to_string(),
        call,
        &format!("z9hG4bK{call}"),
        "<sip:conference-factory@example.com>",
        1,
        "",
    )
}

#[tokio::test]
async fn endpoint_over_udp_and_tcp_on_ipv4_and_ipv6() {
    let v4: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let v6: SocketAddr = "[::1]:0".parse().unwrap();
    let bind = Bind {
        sip_udp: vec![v4, v6],
        sip_tcp: vec![v4, v6],
        msrp_tcp: vec![v4],
    };
    let driver = Driver::bind(&bind, IoLimits::default()).await.unwrap();
    let local = driver.local().clone();
    let cfg = EndpointConfig::new(local.sip_udp[0], local.msrp_tcp[0]);
    let ep = Endpoint::new(cfg, App(Knobs::default()));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(driver.run(ep, async move {
        let _ = stop_rx.await;
    }));

    // OPTIONS over UDP, IPv4 and IPv6: answered from the socket it was sent to.
    for (i, (server, client)) in [(local.sip_udp[0], v4), (local.sip_udp[1], v6)]
        .into_iter()
        .enumerate()
    {
        let sock = UdpSocket::bind(client).await.unwrap();
        let me = sock.local_addr().unwrap();
        sock.send_to(options("UDP", me, &format!("ou{i}")).as_bytes(), server)
            .await
            .unwrap();
        let (r, from) = recv_udp(&sock).await;
        assert_eq!(status_of(&r), 200, "UDP OPTIONS to {server}");
        assert_eq!(from, server, "the answer comes from the socket asked");
        assert!(r.header_str("Allow").unwrap().contains("INVITE"));
    }
    // OPTIONS over TCP, IPv4 and IPv6.
    for (i, server) in local.sip_tcp.iter().enumerate() {
        let mut s = TcpStream::connect(server).await.unwrap();
        let me = s.local_addr().unwrap();
        s.write_all(options("TCP", me, &format!("ot{i}")).as_bytes())
            .await
            .unwrap();
        let mut buf = BytesMut::new();
        let r = read_msg(&mut s, &mut buf).await;
        assert_eq!(status_of(&r), 200, "TCP OPTIONS to {server}");
    }

    // A recipient-list INVITE over TCP; the invitee listens on UDP.
    let bob = UdpSocket::bind(v4).await.unwrap();
    let bob_uri = format!("sip:bob@{}", bob.local_addr().unwrap());
    let mut alice = TcpStream::connect(local.sip_tcp[0]).await.unwrap();
    let alice_addr = alice.local_addr().unwrap();
    alice
        .write_all(
            invite(
                "TCP",
                "alice.invalid:5060",
                "io-call",
                "z9hG4bKio",
                &[bob_uri.as_str()],
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut abuf = BytesMut::new();
    let trying = read_msg(&mut alice, &mut abuf).await;
    assert_eq!(status_of(&trying), 100);
    let ok = read_msg(&mut alice, &mut abuf).await;
    assert_eq!(
        status_of(&ok),
        200,
        "the 200 comes back on the same connection"
    );
    let via = ok.top_via().unwrap();
    assert_eq!(via.received(), Some(alice_addr.ip().to_string().as_str()));
    assert_eq!(via.rport(), Some(Some(alice_addr.port())));
    let answer = String::from_utf8_lossy(ok.body_bytes()).to_string();
    assert!(
        answer.contains(&format!("a=path:msrp://{}/", local.msrp_tcp[0])),
        "{answer}"
    );
    alice
        .write_all(ack_for(&ok, "TCP", &alice_addr.to_string(), "z9hG4bKioack").as_bytes())
        .await
        .unwrap();

    let (inv, from) = recv_udp(&bob).await;
    assert_eq!(inv.method(), Some(&Method::Invite));
    assert_eq!(
        from, local.sip_udp[0],
        "invitee INVITEs leave from the IPv4 socket"
    );
    // Bob declines; the server ACKs the 486 and, every leg settled, ends alice's dialog.
    bob.send_to(response_to(&inv, 486, "b1", None).as_bytes(), from)
        .await
        .unwrap();
    let (ack, _) = recv_udp(&bob).await;
    assert_eq!(ack.method(), Some(&Method::Ack));
    let bye = read_msg(&mut alice, &mut abuf).await;
    assert_eq!(
        bye.method(),
        Some(&Method::Bye),
        "BYE on alice's connection"
    );
    alice
        .write_all(response_to(&bye, 200, "", None).as_bytes())
        .await
        .unwrap();
    // The server still answers on the same connection afterwards.
    alice
        .write_all(options("TCP", alice_addr, "after").as_bytes())
        .await
        .unwrap();
    let r = read_msg(&mut alice, &mut abuf).await;
    assert_eq!(status_of(&r), 200);
    // And over UDP to the same server, a plain request is still served.
    let probe = UdpSocket::bind(v4).await.unwrap();
    let me = probe.local_addr().unwrap();
    let r = udp_exchange(&probe, local.sip_udp[0], &options("UDP", me, "last")).await;
    assert_eq!(status_of(&r), 200);

    stop_tx.send(()).unwrap();
    let ep = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the driver stops after shutdown")
        .unwrap();
    assert_eq!(ep.live_sessions(), 0, "no session is left");
    assert_eq!(ep.stats().invites_sent, 1);
}

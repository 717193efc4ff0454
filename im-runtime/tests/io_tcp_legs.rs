//! Invitees over TCP on real sockets (`endpoint/route_leg.rs`, `io/hygiene.rs`): the
//! tokio driver runs an `Endpoint` with the stand-in machines on 127.0.0.1; alice speaks UDP,
//! bob is a TCP listener whose URI says `transport=tcp`.
//! * A connection the server opened to an invitee stays open while a session uses it (here
//!   well past the idle time, its dialog live) and is closed once the session is over and
//!   the connection has been silent for `conn_idle_timeout` (RFC 3261 §18: the client may
//!   close); its slot in `max_sip_connections` comes back, so with a budget of one the next
//!   session connects again.
//! * A leg holds its connection, not its session: once bob's leg has failed, his connection
//!   is closed after the idle time while carol's leg keeps the session up.
//! * Our BYE to an originator whose TCP connection closed goes over a new connection to its
//!   Contact (RFC 3261 §12.2.1.1, §18.1.1); with `ob` in that Contact (RFC 5626: its flow
//!   only) no connection is opened.
//! * A CANCEL for an INVITE sent over a registration flow that has closed is not sent: the
//!   INVITE ends at once and the leg fails now, not after Timer B's 32 s. A 2xx the invitee
//!   sends anyway over a new connection is ACKed over a new one to its Contact, and BYE'd
//!   when the leg's machine says so (7.9.1.4 `answered_after_cancel`).
//! * A contact registered as an outbound flow (RFC 5626: `reg-id`, `+sip.instance`) is
//!   reached over that flow only, `ob` or not: once it has closed, neither the INVITE nor
//!   our BYE is sent over a new connection to the Contact (the leg fails with 430).
#![cfg(feature = "tokio")]

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use im_runtime::endpoint::{Application, Endpoint, EndpointConfig, LegOutcome, LiveStats};
use im_runtime::io::{Bind, Driver, IoLimits, IoStats};
use im_runtime::machine::Method;
use im_runtime::proto::sip::{self, Message, Transport};
use std::net::SocketAddr;
use std::sync::Arc;
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

/// The server closes `s` once it has been unused for the idle time since `since`, not
/// before (`what` names the connection in the failure message).
async fn closed_once_idle(s: &mut TcpStream, buf: &mut BytesMut, since: Instant, what: &str) {
    assert!(read_msg(s, buf).await.is_none(), "the server closes {what}");
    let after = since.elapsed();
    assert!(
        after >= IDLE - Duration::from_millis(100),
        "{what}: {after:?}"
    );
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
async fn alice_invites(
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

    let ok = alice_invites(&alice, server, "idle1", &[&bob_uri]).await;
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
    // Unused now: closed once silent for the idle time, not before.
    closed_once_idle(&mut s, &mut buf, clock(), "its unused connection").await;
    assert_eq!(stats.closed_conn_idle(), 1);

    // Its slot came back: with a budget of one, the next session connects to bob again.
    alice_invites(&alice, server, "idle2", &[&bob_uri]).await;
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

/// A running driver on 127.0.0.1 (UDP, TCP and MSRP) for `app`.
struct Server {
    sip: SocketAddr,
    sip_tcp: SocketAddr,
    io: Arc<IoStats>,
    live: Arc<LiveStats>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start<A: Application + Send + 'static>(app: A, limits: IoLimits) -> Server {
        let v4: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let bind = Bind {
            sip_udp: vec![v4],
            sip_tcp: vec![v4],
            msrp_tcp: vec![v4],
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

    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the driver stops after shutdown")
            .unwrap();
    }

    /// Waits (up to `within`) until `f` holds of the endpoint's live counters.
    async fn until(
        &self,
        within: Duration,
        f: impl Fn(&im_runtime::endpoint::LiveSnapshot) -> bool,
    ) -> bool {
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

/// An MSRP listener that accepts and holds every connection (an invitee that answered
/// `setup:passive`); its address.
async fn msrp_sink() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    a
}

/// Bob's INVITE fails (486) while carol's leg is connected: the session lives on, and the
/// connection the server opened to bob is closed once silent for the idle time. Before
/// legs held their own connections it stayed open until the session ended.
#[tokio::test]
async fn a_failed_legs_connection_is_closed_while_its_session_lives() {
    let limits = IoLimits {
        conn_idle_timeout: IDLE,
        ..IoLimits::default()
    };
    let srv = Server::start(App(Knobs::default()), limits).await;
    let v4: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let bob = TcpListener::bind(v4).await.unwrap();
    let bob_uri = format!("sip:bob@{};transport=tcp", bob.local_addr().unwrap());
    let carol = UdpSocket::bind(v4).await.unwrap();
    let carol_uri = format!("sip:carol@{}", carol.local_addr().unwrap());
    let carol_msrp = msrp_sink().await;
    let alice = UdpSocket::bind(v4).await.unwrap();
    let alice_me = alice.local_addr().unwrap().to_string();

    let ok = alice_invites(&alice, srv.sip, "leg1", &[&bob_uri, &carol_uri]).await;
    let cinv = recv_udp(&carol).await;
    assert_eq!(cinv.method(), Some(&Method::Invite));
    let answer = response_to(&cinv, 200, "c1", Some(&invitee_sdp(&carol_msrp, "carols")));
    carol.send_to(answer.as_bytes(), srv.sip).await.unwrap();
    let cack = recv_udp(&carol).await;
    assert_eq!(cack.method(), Some(&Method::Ack));

    let (mut s, _) = tokio::time::timeout(WAIT, bob.accept())
        .await
        .expect("the server connects to bob")
        .unwrap();
    let mut buf = BytesMut::new();
    let inv = read_msg(&mut s, &mut buf).await.expect("bob's INVITE");
    s.write_all(response_to(&inv, 486, "b1", None).as_bytes())
        .await
        .unwrap();
    let ack = read_msg(&mut s, &mut buf).await.expect("the ACK of 486");
    assert_eq!(ack.method(), Some(&Method::Ack));
    let failed = clock();

    // Bob's leg is over: his connection goes once idle, though the session is up.
    closed_once_idle(&mut s, &mut buf, failed, "the failed leg's connection").await;
    assert_eq!(srv.io.closed_conn_idle(), 1);
    assert_eq!(
        srv.live.snapshot().sessions_live(),
        1,
        "carol's leg keeps it"
    );
    let mut dg = [0u8; 2048];
    let quiet = tokio::time::timeout(Duration::from_millis(100), carol.recv_from(&mut dg)).await;
    assert!(quiet.is_err(), "carol's dialog is untouched: {quiet:?}");

    // Alice leaves; carol's leg is BYE'd and the session ends.
    let to = ok.header_str("To").unwrap().to_owned();
    let bye = simple_request("BYE", "UDP", &alice_me, "leg1", "z9hG4bKbyel1", &to, 2, "");
    alice.send_to(bye.as_bytes(), srv.sip).await.unwrap();
    let cbye = recv_udp(&carol).await;
    assert_eq!(cbye.method(), Some(&Method::Bye));
    carol
        .send_to(response_to(&cbye, 200, "", None).as_bytes(), srv.sip)
        .await
        .unwrap();
    assert!(srv.until(WAIT, |l| l.sessions_live() == 0).await);
    srv.stop().await;
}

/// Alice calls over TCP from an ephemeral port, with her Contact (plus `params`) at a
/// listener of hers, ACKs and closes her connection; bob (UDP) then declines, so the
/// session BYEs alice. Returns the server and alice's listener.
async fn originator_leaves_her_connection(call: &str, params: &str) -> (Server, TcpListener) {
    let srv = Server::start(App(Knobs::default()), IoLimits::default()).await;
    let v4: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let alice_l = TcpListener::bind(v4).await.unwrap();
    let alice_at = alice_l.local_addr().unwrap().to_string();
    let bob = UdpSocket::bind(v4).await.unwrap();
    let bob_uri = format!("sip:bob@{}", bob.local_addr().unwrap());

    let mut s = TcpStream::connect(srv.sip_tcp).await.unwrap();
    let inv = invite(
        "TCP",
        &alice_at,
        call,
        &format!("z9hG4bK{call}"),
        &[&bob_uri],
    )
    .replace(
        &format!("Contact: <sip:alice@{alice_at}>"),
        &format!("Contact: <sip:alice@{alice_at}{params}>"),
    );
    s.write_all(inv.as_bytes()).await.unwrap();
    let mut buf = BytesMut::new();
    let ok = loop {
        let r = read_msg(&mut s, &mut buf).await.expect("alice's answer");
        if status_of(&r) >= 200 {
            break r;
        }
    };
    assert_eq!(status_of(&ok), 200);
    let ack = ack_for(&ok, "TCP", &alice_at, &format!("z9hG4bKack{call}"));
    s.write_all(ack.as_bytes()).await.unwrap();
    let binv = recv_udp(&bob).await;
    assert_eq!(binv.method(), Some(&Method::Invite));
    drop(s);
    // The server sees the connection close before bob's answer.
    tokio::time::sleep(Duration::from_millis(200)).await;
    bob.send_to(response_to(&binv, 486, "b1", None).as_bytes(), srv.sip)
        .await
        .unwrap();
    (srv, alice_l)
}

/// RFC 3261 §12.2.1.1 / §18.1.1: the BYE goes over a new connection to alice's Contact,
/// saying TCP, and her 200 ends the session.
#[tokio::test]
async fn a_bye_to_an_originator_whose_connection_closed_goes_over_a_new_one() {
    let (srv, alice_l) = originator_leaves_her_connection("orig1", "").await;
    let (mut s, _) = tokio::time::timeout(WAIT, alice_l.accept())
        .await
        .expect("the server connects to alice's Contact")
        .unwrap();
    let mut buf = BytesMut::new();
    let bye = read_msg(&mut s, &mut buf).await.expect("the BYE");
    assert_eq!(bye.method(), Some(&Method::Bye));
    let contact = format!("sip:alice@{}", alice_l.local_addr().unwrap());
    assert_eq!(bye.request_uri_str(), Some(&*contact));
    let via = bye.header_str("Via").unwrap();
    assert!(via.starts_with("SIP/2.0/TCP "), "{via}");
    s.write_all(response_to(&bye, 200, "", None).as_bytes())
        .await
        .unwrap();
    assert!(srv.until(WAIT, |l| l.sessions_live() == 0).await);
    srv.stop().await;
}

/// RFC 5626 §5.3: alice's Contact says `ob` (reach her over her flow only); her flow is
/// gone, so no connection is opened to her Contact and the session still ends.
#[tokio::test]
async fn an_originator_reached_over_its_flow_only_is_not_dialled() {
    let (srv, alice_l) = originator_leaves_her_connection("orig2", ";ob").await;
    assert!(srv.until(WAIT, |l| l.sessions_live() == 0).await);
    let dialled = tokio::time::timeout(Duration::from_millis(500), alice_l.accept()).await;
    assert!(dialled.is_err(), "no connection to alice's Contact");
    srv.stop().await;
}

/// Bob registers over TCP; his INVITE goes over that flow, he rings and closes it. Alice
/// leaves, the session CANCELs the leg: no CANCEL can travel, so the INVITE ends at once
/// and the leg fails as on Timer B, in well under Timer B's 32 s. Returns the server and
/// bob's INVITE.
async fn cancel_over_a_closed_flow(call: &str, knobs: Knobs) -> (Server, Message) {
    let app = RegApp {
        inner: App(knobs),
        locations: Locations::default(),
    };
    let srv = Server::start(app, IoLimits::default()).await;
    let v4: SocketAddr = "127.0.0.1:0".parse().unwrap();

    let mut b = TcpStream::connect(srv.sip_tcp).await.unwrap();
    let bob_src = b.local_addr().unwrap().to_string();
    let reg = crlf(&format!(
        "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/TCP {bob_src};branch=z9hG4bKreg{call}\nMax-Forwards: 70\nFrom: <sip:bob@example.com>;tag=r1\nTo: <sip:bob@example.com>\nCall-ID: reg{call}\nCSeq: 1 REGISTER\nContact: <sip:bob@127.0.0.1:9>\nExpires: 600\nContent-Length: 0\n\n"
    ));
    b.write_all(reg.as_bytes()).await.unwrap();
    let mut buf = BytesMut::new();
    let r = read_msg(&mut b, &mut buf)
        .await
        .expect("the REGISTER's answer");
    assert_eq!(status_of(&r), 200);

    let alice = UdpSocket::bind(v4).await.unwrap();
    let alice_me = alice.local_addr().unwrap().to_string();
    let ok = alice_invites(&alice, srv.sip, call, &["sip:bob@example.com"]).await;
    let inv = read_msg(&mut b, &mut buf)
        .await
        .expect("bob's INVITE on his flow");
    assert_eq!(inv.method(), Some(&Method::Invite));
    b.write_all(response_to(&inv, 180, "b1", None).as_bytes())
        .await
        .unwrap();
    // The 180 is in before the flow closes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(b);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let to = ok.header_str("To").unwrap().to_owned();
    let bye = simple_request(
        "BYE",
        "UDP",
        &alice_me,
        call,
        &format!("z9hG4bKbye{call}"),
        &to,
        2,
        "",
    );
    let left = clock();
    alice.send_to(bye.as_bytes(), srv.sip).await.unwrap();
    assert!(
        srv.until(Duration::from_secs(3), |l| l.legs(LegOutcome::TimedOut)
            == 1
            && l.sessions_live() == 0)
            .await,
        "the leg failed and the session ended at once: {:?}",
        srv.live.snapshot()
    );
    assert!(left.elapsed() < Duration::from_secs(3));
    (srv, inv)
}

#[tokio::test]
async fn a_cancel_over_a_closed_registration_flow_ends_the_invite_at_once() {
    let (srv, _) = cancel_over_a_closed_flow("cflow1", Knobs::default()).await;
    srv.stop().await;
}

/// After [`cancel_over_a_closed_flow`], bob answers his INVITE 200 anyway, over a new
/// connection to the server (RFC 3261 §18.2.2), his Contact at a listener of his. Returns
/// the connection the server opened to that Contact with the ACK read from it, bob's
/// connection and his 200.
async fn bob_answers_late(
    srv: &Server,
    inv: &Message,
) -> (TcpStream, BytesMut, TcpStream, String, Message) {
    let bob_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bob_at = bob_l.local_addr().unwrap();
    let ok = response_to(
        inv,
        200,
        "b1",
        Some(&invitee_sdp(&msrp_sink().await, "bobs")),
    )
    .replace(
        "Contact: <sip:invitee@127.0.0.2:5060>",
        &format!("Contact: <sip:bob@{bob_at};transport=tcp>"),
    );
    let mut late = TcpStream::connect(srv.sip_tcp).await.unwrap();
    late.write_all(ok.as_bytes()).await.unwrap();
    let (mut s, _) = tokio::time::timeout(WAIT, bob_l.accept())
        .await
        .expect("the server connects to bob's Contact for the ACK")
        .unwrap();
    let mut buf = BytesMut::new();
    let ack = read_msg(&mut s, &mut buf).await.expect("the ACK");
    assert_eq!(ack.method(), Some(&Method::Ack));
    assert_eq!(ack.call_id(), inv.call_id());
    assert_eq!(ack.cseq().map(|c| c.seq), Some(1));
    assert!(ack.header_str("To").unwrap().contains("tag=b1"));
    assert_eq!(
        ack.request_uri_str(),
        Some(&*format!("sip:bob@{bob_at};transport=tcp"))
    );
    (s, buf, late, ok, ack)
}

/// RFC 3261 §13.2.2.4 / RFC 6026: the 2xx to an INVITE that ended without its CANCEL is
/// ACKed over a new connection to bob's Contact, and the leg's machine (7.9.1.4
/// `answered_after_cancel`, here its stand-in) ends the dialog with BYE. A retransmitted
/// 2xx is ACKed again, and BYE'd once.
#[tokio::test]
async fn a_2xx_after_a_cancel_that_was_not_sent_is_acked_and_byed() {
    let (srv, inv) = cancel_over_a_closed_flow("cflow2", Knobs::default()).await;
    let (mut s, mut buf, mut late, ok, _) = bob_answers_late(&srv, &inv).await;
    let bye = read_msg(&mut s, &mut buf).await.expect("the BYE");
    assert_eq!(bye.method(), Some(&Method::Bye));
    assert_eq!(bye.call_id(), inv.call_id());
    assert!(bye.header_str("To").unwrap().contains("tag=b1"));
    assert_eq!(bye.cseq().map(|c| c.seq), Some(2));
    s.write_all(response_to(&bye, 200, "", None).as_bytes())
        .await
        .unwrap();
    // Bob had not seen the ACK yet: his retransmission is ACKed again, not BYE'd again.
    late.write_all(ok.as_bytes()).await.unwrap();
    let ack2 = read_msg(&mut s, &mut buf).await.expect("a second ACK");
    assert_eq!(ack2.method(), Some(&Method::Ack));
    let mut chunk = [0u8; 512];
    let quiet = tokio::time::timeout(Duration::from_millis(300), s.read(&mut chunk)).await;
    assert!(quiet.is_err(), "no second BYE: {quiet:?}");
    srv.stop().await;
}

/// The same with a leg machine that keeps a 2xx it gets after cancelling (a spec without
/// `answered_after_cancel`): the 2xx is ACKed (RFC 3261 §13.2.2.4), and no BYE follows,
/// since ending the dialog is the machine's decision, not the runtime's.
#[tokio::test]
async fn whether_a_late_2xx_is_byed_is_the_leg_machines_decision() {
    let knobs = Knobs {
        keep_crossed_2xx: true,
        ..Knobs::default()
    };
    let (srv, inv) = cancel_over_a_closed_flow("cflow3", knobs).await;
    let (mut s, _buf, _late, _, _) = bob_answers_late(&srv, &inv).await;
    let mut chunk = [0u8; 512];
    let quiet = tokio::time::timeout(Duration::from_millis(500), s.read(&mut chunk)).await;
    assert!(quiet.is_err(), "no BYE: {quiet:?}");
    srv.stop().await;
}

/// Bob registers over TCP as an outbound flow (RFC 5626 §4.2: `reg-id` and `+sip.instance`
/// on his Contact, no `ob` in its URI, which names a listener of his with
/// `transport=tcp`). Returns the server, bob's registration connection and his listener.
async fn bob_registers_outbound(call: &str) -> (Server, TcpStream, BytesMut, TcpListener) {
    let app = RegApp {
        inner: App(Knobs::default()),
        locations: Locations::default(),
    };
    let srv = Server::start(app, IoLimits::default()).await;
    let bob_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bob_at = bob_l.local_addr().unwrap();
    let mut b = TcpStream::connect(srv.sip_tcp).await.unwrap();
    let bob_src = b.local_addr().unwrap().to_string();
    let reg = crlf(&format!(
        "REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/TCP {bob_src};branch=z9hG4bKreg{call}\nMax-Forwards: 70\nFrom: <sip:bob@example.com>;tag=r1\nTo: <sip:bob@example.com>\nCall-ID: reg{call}\nCSeq: 1 REGISTER\nSupported: outbound\nContact: <sip:bob@{bob_at};transport=tcp>;reg-id=1;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\"\nExpires: 600\nContent-Length: 0\n\n"
    ));
    b.write_all(reg.as_bytes()).await.unwrap();
    let mut buf = BytesMut::new();
    let r = read_msg(&mut b, &mut buf)
        .await
        .expect("the REGISTER's answer");
    assert_eq!(status_of(&r), 200);
    // RFC 5626 §6: the registrar applied it.
    assert_eq!(r.header_str("Require"), Some("outbound"));
    (srv, b, buf, bob_l)
}

/// RFC 5626 §5.3 with the flow read from the registration, not from `ob`: once bob's
/// outbound flow has closed, his INVITE is not sent over a new connection to his Contact
/// (which says `transport=tcp`, and would be dialled for a plain registration): the leg
/// fails with 430 Flow Failed (§11.5; a rejection, not `no route`).
#[tokio::test]
async fn an_invitee_whose_outbound_flow_closed_is_not_dialled() {
    let (srv, b, _, bob_l) = bob_registers_outbound("ob1").await;
    drop(b);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let alice = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    alice_invites(&alice, srv.sip, "ob1", &["sip:bob@example.com"]).await;
    assert!(
        srv.until(WAIT, |l| l.legs(LegOutcome::Rejected) == 1
            && l.legs(LegOutcome::NoRoute) == 0)
            .await,
        "the leg fails with 430: {:?}",
        srv.live.snapshot()
    );
    let dialled = tokio::time::timeout(Duration::from_millis(500), bob_l.accept()).await;
    assert!(dialled.is_err(), "no connection to bob's Contact");
    srv.stop().await;
}

/// The same for our BYE: bob answers over his outbound flow with his registered Contact
/// (no `ob`), closes the flow, alice leaves: the BYE is not sent over a new connection to
/// that Contact, and the session still ends.
#[tokio::test]
async fn a_bye_to_an_invitee_whose_outbound_flow_closed_is_not_dialled() {
    let (srv, mut b, mut buf, bob_l) = bob_registers_outbound("ob2").await;
    let bob_at = bob_l.local_addr().unwrap();
    let alice = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let alice_me = alice.local_addr().unwrap().to_string();
    let ok = alice_invites(&alice, srv.sip, "ob2", &["sip:bob@example.com"]).await;
    let inv = read_msg(&mut b, &mut buf)
        .await
        .expect("bob's INVITE over his flow");
    assert_eq!(inv.method(), Some(&Method::Invite));
    let answer = response_to(
        &inv,
        200,
        "b1",
        Some(&invitee_sdp(&msrp_sink().await, "bobs")),
    )
    .replace(
        "Contact: <sip:invitee@127.0.0.2:5060>",
        &format!("Contact: <sip:bob@{bob_at};transport=tcp>"),
    );
    b.write_all(answer.as_bytes()).await.unwrap();
    let ack = read_msg(&mut b, &mut buf)
        .await
        .expect("the ACK over the flow");
    assert_eq!(ack.method(), Some(&Method::Ack));
    drop(b);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let to = ok.header_str("To").unwrap().to_owned();
    let bye = simple_request("BYE", "UDP", &alice_me, "ob2", "z9hG4bKbyeob2", &to, 2, "");
    alice.send_to(bye.as_bytes(), srv.sip).await.unwrap();
    assert!(
        srv.until(WAIT, |l| l.sessions_live() == 0).await,
        "the session ends: {:?}",
        srv.live.snapshot()
    );
    let dialled = tokio::time::timeout(Duration::from_millis(500), bob_l.accept()).await;
    assert!(dialled.is_err(), "no connection to bob's Contact");
    srv.stop().await;
}

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

use bytes::BytesMut;
use common::io::*;
use common::*;
use im_runtime::endpoint::LegOutcome;
use im_runtime::io::IoLimits;
use im_runtime::machine::Method;
use im_runtime::proto::sip::Message;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};

const IDLE: Duration = Duration::from_millis(500);

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

#[tokio::test]
async fn an_outgoing_connection_is_closed_once_unused_and_idle() {
    let limits = IoLimits {
        conn_idle_timeout: IDLE,
        max_sip_connections: 1,
        ..IoLimits::default()
    };
    let srv = Server::start(App(Knobs::default()), limits).await;
    let server = srv.sip;
    let v4 = v4();
    let bob = TcpListener::bind(v4).await.unwrap();
    let bob_uri = format!("sip:bob@{};transport=tcp", bob.local_addr().unwrap());
    // Bob's MSRP side: the server connects (bob answers `setup:passive`); held open.
    let bob_msrp_addr = msrp_sink().await;
    let alice = UdpSocket::bind(v4).await.unwrap();

    let ok = alice_invites(&alice, server, "idle1", &[&bob_uri]).await;
    let mut s = accepted(&bob, "the server connects to bob").await;
    let mut buf = BytesMut::new();
    let inv = read_msg(&mut s, &mut buf).await.expect("bob's INVITE");
    assert_eq!(inv.method(), Some(&Method::Invite));
    let answer = response_to(&inv, 200, "b1", Some(&invitee_sdp(&bob_msrp_addr, "bobs")));
    s.write_all(answer.as_bytes()).await.unwrap();
    let ack = read_msg(&mut s, &mut buf).await.expect("the ACK");
    assert_eq!(ack.method(), Some(&Method::Ack));

    // The dialog is live: three idle times of silence do not close the connection.
    quiet(&mut s, 3 * IDLE, "the connection stays open").await;
    assert_eq!(srv.io.closed_conn_idle(), 0);

    // Alice leaves: the session BYEs bob on the connection, bob answers, the session ends.
    alice_leaves(&alice, server, &ok, "idle1").await;
    let bye = read_msg(&mut s, &mut buf).await.expect("the BYE to bob");
    assert_eq!(bye.method(), Some(&Method::Bye));
    s.write_all(response_to(&bye, 200, "", None).as_bytes())
        .await
        .unwrap();
    // Unused now: closed once silent for the idle time, not before.
    closed_once_idle(&mut s, &mut buf, clock(), "its unused connection").await;
    assert_eq!(srv.io.closed_conn_idle(), 1);

    // Its slot came back: with a budget of one, the next session connects to bob again.
    alice_invites(&alice, server, "idle2", &[&bob_uri]).await;
    let mut s2 = accepted(&bob, "a new connection to bob within the budget").await;
    let mut buf2 = BytesMut::new();
    let inv2 = read_msg(&mut s2, &mut buf2).await.expect("the INVITE");
    assert_eq!(inv2.method(), Some(&Method::Invite));
    s2.write_all(response_to(&inv2, 486, "b2", None).as_bytes())
        .await
        .unwrap();
    let ack2 = read_msg(&mut s2, &mut buf2).await.expect("the ACK of 486");
    assert_eq!(ack2.method(), Some(&Method::Ack));

    srv.stop().await;
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
    let v4 = v4();
    let bob = TcpListener::bind(v4).await.unwrap();
    let bob_uri = format!("sip:bob@{};transport=tcp", bob.local_addr().unwrap());
    let carol = UdpSocket::bind(v4).await.unwrap();
    let carol_uri = format!("sip:carol@{}", carol.local_addr().unwrap());
    let carol_msrp = msrp_sink().await;
    let alice = UdpSocket::bind(v4).await.unwrap();

    let ok = alice_invites(&alice, srv.sip, "leg1", &[&bob_uri, &carol_uri]).await;
    let cinv = recv_udp(&carol).await;
    assert_eq!(cinv.method(), Some(&Method::Invite));
    let answer = response_to(&cinv, 200, "c1", Some(&invitee_sdp(&carol_msrp, "carols")));
    carol.send_to(answer.as_bytes(), srv.sip).await.unwrap();
    let cack = recv_udp(&carol).await;
    assert_eq!(cack.method(), Some(&Method::Ack));

    let mut s = accepted(&bob, "the server connects to bob").await;
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
    alice_leaves(&alice, srv.sip, &ok, "leg1").await;
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
    let v4 = v4();
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
    let mut s = accepted(&alice_l, "the server connects to alice's Contact").await;
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
    never_dialled(&alice_l, Duration::from_millis(500), "alice's Contact").await;
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
    let v4 = v4();

    let (mut b, mut buf, _) = bob_registers_over_tcp(&srv, call, "<sip:bob@127.0.0.1:9>", "").await;

    let alice = UdpSocket::bind(v4).await.unwrap();
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

    let left = clock();
    alice_leaves(&alice, srv.sip, &ok, call).await;
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
    );
    let ok = contact_over_tcp(&ok, "bob", bob_at);
    let mut late = TcpStream::connect(srv.sip_tcp).await.unwrap();
    late.write_all(ok.as_bytes()).await.unwrap();
    let mut s = accepted(&bob_l, "the server connects to bob's Contact for the ACK").await;
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
    quiet(&mut s, Duration::from_millis(300), "no second BYE").await;
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
    quiet(&mut s, Duration::from_millis(500), "no BYE").await;
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
    let contact = format!(
        "<sip:bob@{bob_at};transport=tcp>;reg-id=1;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\""
    );
    let (b, buf, r) = bob_registers_over_tcp(&srv, call, &contact, "Supported: outbound\n").await;
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
    never_dialled(&bob_l, Duration::from_millis(500), "bob's Contact").await;
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
    );
    let answer = contact_over_tcp(&answer, "bob", bob_at);
    b.write_all(answer.as_bytes()).await.unwrap();
    let ack = read_msg(&mut b, &mut buf)
        .await
        .expect("the ACK over the flow");
    assert_eq!(ack.method(), Some(&Method::Ack));
    drop(b);
    tokio::time::sleep(Duration::from_millis(200)).await;

    alice_leaves(&alice, srv.sip, &ok, "ob2").await;
    assert!(
        srv.until(WAIT, |l| l.sessions_live() == 0).await,
        "the session ends: {:?}",
        srv.live.snapshot()
    );
    never_dialled(&bob_l, Duration::from_millis(500), "bob's Contact").await;
    srv.stop().await;
}

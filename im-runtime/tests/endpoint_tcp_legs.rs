//! How invitees are reached, in virtual time (`endpoint/route_leg.rs`; end to end in
//! `examples/im-server/tests/e2e_tcp.rs`):
//! 1. a member URI with `transport=tcp` is invited over a TCP connection the endpoint asks
//!    for, with `SIP/2.0/TCP` in Via and a TCP Contact, and the dialog (ACK, BYE either
//!    way) stays on that connection;
//! 2. a contact registered over a TCP connection gets its INVITE over that connection while
//!    it is open; once closed, the contact is reached as its URI says (TCP or UDP);
//! 3. an INVITE over the UDP size limit goes over TCP, and over UDP again (new branch, UDP
//!    Via and Contact) when that connect fails; the limit is a configuration knob;
//! 4. when a leg's connection has closed, our BYE opens a new one to the invitee's Contact
//!    and our CANCEL a new one to where the INVITE went;
//! 5. page-mode copies follow rule 3 as INVITEs do;
//! 6. an INVITE whose CANCEL could not be sent (its registration flow closed) is remembered
//!    for a late 2xx for 64*T1, on the endpoint's timer: an idle server holds none after.

mod common;

use common::harness::{ALICE, SIP_LOCAL as SIP, Sim, conn_uses, tcp_on, udp_to};
use common::*;
use im_runtime::endpoint::{EndpointConfig, PeerTransports};
use im_runtime::machine::Method;
use im_runtime::proto::sip::{HeaderName, Message};
use im_runtime::transport::{ConnId, Core, Input, Output, StreamKind};
use std::net::SocketAddr;
use std::time::Duration;

/// An endpoint with the stand-in machines and a registrar; an INVITE over
/// `max_udp_request` octets goes over TCP (0: never).
fn endpoint(max_udp_request: usize) -> Sim<RegApp> {
    worker(
        max_udp_request,
        PeerTransports::default(),
        Locations::default(),
    )
}

/// An endpoint that serves page-mode MESSAGE too.
fn page(max_udp_request: usize) -> Sim<RegApp> {
    let knobs = Knobs {
        page_mode: true,
        ..Knobs::default()
    };
    Sim::registrar(knobs, Locations::default(), |cfg| {
        cfg.max_udp_request = max_udp_request;
    })
}

/// An endpoint (a worker) using `flows` and `locations`, which other workers may share.
fn worker(max_udp_request: usize, flows: PeerTransports, locations: Locations) -> Sim<RegApp> {
    Sim::registrar(Knobs::default(), locations, |cfg| {
        cfg.max_udp_request = max_udp_request;
        cfg.peer_transports = flows;
    })
}

fn connects(out: &[Output]) -> Vec<(ConnId, StreamKind, SocketAddr)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Connect { conn, kind, to } => Some((*conn, *kind, *to)),
            _ => None,
        })
        .collect()
}

fn via(m: &Message) -> &str {
    m.header(HeaderName::Via).unwrap_or("")
}

fn contact(m: &Message) -> &str {
    m.header(HeaderName::Contact).unwrap_or("")
}

fn method(m: &Message) -> Option<&Method> {
    m.method()
}

/// A request from an invitee in the dialog of `invite` (whose 2xx carried `to_tag`).
fn invitee_request(invite: &Message, method: &str, to_tag: &str, via: &str) -> String {
    let h = |n| invite.header(n).unwrap_or("");
    crlf(&format!(
        "{method} sip:conf@{SIP} SIP/2.0\nVia: {via};branch=z9hG4bKinv{method}\nMax-Forwards: 70\nFrom: {};tag={to_tag}\nTo: {}\nCall-ID: {}\nCSeq: 7 {method}\nContent-Length: 0\n\n",
        h(HeaderName::To),
        h(HeaderName::From),
        h(HeaderName::CallId),
    ))
}

/// Rule 1, and the dialog following the leg: INVITE, 200, ACK, the invitee's BYE and its
/// answer all on the one TCP connection, every request of ours saying TCP.
#[test]
fn transport_tcp_member_is_invited_and_kept_over_tcp() {
    let mut sim = endpoint(1300);
    let bob = "127.0.0.2:5070";
    let (out, _) = sim.session("t1", &["sip:bob@127.0.0.2:5070;transport=tcp"]);
    assert!(udp_to(&out, bob).is_empty(), "nothing over UDP: {out:?}");
    let c = connects(&out);
    assert_eq!(c.len(), 1, "{out:?}");
    let (conn, kind, to) = c[0];
    assert_eq!((kind, to), (StreamKind::Sip, addr(bob)));
    let out = sim.sip_open(conn, bob);
    let inv = tcp_on(&out, conn);
    assert_eq!(
        inv.len(),
        1,
        "the INVITE waited for the connection: {out:?}"
    );
    let inv = &inv[0];
    assert_eq!(method(inv), Some(&Method::Invite));
    assert!(
        via(inv).starts_with(&format!("SIP/2.0/TCP {SIP};")),
        "{}",
        via(inv)
    );
    assert!(
        contact(inv).starts_with("<sip:conf-") && contact(inv).contains(";transport=tcp>"),
        "{}",
        contact(inv)
    );
    // The leg's own offer stays plain MSRP (the connection is not secured).
    assert!(String::from_utf8_lossy(inv.body_bytes()).contains("TCP/MSRP"));

    let ok = response_to(inv, 200, "b1", Some(&invitee_sdp("127.0.0.2:7002", "bobs")));
    let out = sim.tcp(conn, &ok);
    let ack = tcp_on(&out, conn)
        .into_iter()
        .find(|m| method(m) == Some(&Method::Ack))
        .unwrap_or_else(|| panic!("the ACK on bob's connection: {out:?}"));
    assert!(
        via(&ack).starts_with(&format!("SIP/2.0/TCP {SIP};")),
        "{}",
        via(&ack)
    );
    assert!(udp_to(&out, bob).is_empty());

    // The invitee hangs up over the same connection and is answered there.
    let bye = invitee_request(inv, "BYE", "b1", &format!("SIP/2.0/TCP {bob}"));
    let out = sim.tcp(conn, &bye);
    let answers: Vec<u16> = tcp_on(&out, conn).iter().map(status_of).collect();
    assert!(answers.contains(&200), "{out:?}");
}

/// Our BYE to a TCP leg (the originator leaves) goes over the leg's connection with a TCP Via.
#[test]
fn bye_to_a_tcp_leg_goes_over_its_connection() {
    let mut sim = endpoint(1300);
    let bob = "127.0.0.2:5071";
    let (out, ok_alice) = sim.session("t2", &["sip:bob@127.0.0.2:5071;transport=tcp"]);
    let (conn, _, _) = connects(&out)[0];
    let inv = tcp_on(&sim.sip_open(conn, bob), conn).remove(0);
    sim.tcp(
        conn,
        &response_to(
            &inv,
            200,
            "b2",
            Some(&invitee_sdp("127.0.0.2:7002", "bobs")),
        ),
    );
    let to = ok_alice.header(HeaderName::To).unwrap().to_owned();
    let out = sim.udp(
        ALICE,
        &simple_request("BYE", "UDP", ALICE, "t2", "z9hG4bKbye2", &to, 2, ""),
    );
    let bye = tcp_on(&out, conn)
        .into_iter()
        .find(|m| method(m) == Some(&Method::Bye))
        .unwrap_or_else(|| panic!("a BYE to bob on his connection: {out:?}"));
    assert!(
        via(&bye).starts_with(&format!("SIP/2.0/TCP {SIP};")),
        "{}",
        via(&bye)
    );
    assert!(udp_to(&out, bob).is_empty());
}

/// Rule 2: a contact registered over TCP is invited over that connection (its own port
/// listens for nothing), and once that connection is gone it is reached as its Contact URI
/// says: a new TCP connection for `transport=tcp`, UDP for a plain URI.
#[test]
fn registered_contact_is_reached_over_the_registration_connection() {
    // No switch for size here (this INVITE passes 1300 octets): rules 1 and 2 alone.
    let mut sim = endpoint(0);
    // Bob registers from port 40123 a contact on 5099 (where nothing listens).
    let (bob_conn, ok) = sim.register_over_tcp(
        7,
        "127.0.0.3:40123",
        "bob",
        "r-bob",
        "",
        "<sip:bob@127.0.0.3:5099;transport=tcp>",
    );
    assert_eq!(status_of(&ok), 200);
    // Carol registers over TCP a plain contact.
    let (carol_conn, ok) = sim.register_over_tcp(
        8,
        "127.0.0.4:40124",
        "carol",
        "r-carol",
        "",
        "<sip:carol@127.0.0.4:5098>",
    );
    assert_eq!(status_of(&ok), 200);

    let (out, _) = sim.session("t3", &["sip:bob@example.com", "sip:carol@example.com"]);
    assert!(connects(&out).is_empty(), "no new connection: {out:?}");
    for (conn, user) in [(bob_conn, "bob"), (carol_conn, "carol")] {
        let inv = tcp_on(&out, conn);
        assert_eq!(inv.len(), 1, "{user}'s INVITE on its connection: {out:?}");
        assert_eq!(
            inv[0].request_uri_str(),
            Some(&*format!("sip:{user}@example.com"))
        );
        assert!(via(&inv[0]).starts_with("SIP/2.0/TCP "), "{}", via(&inv[0]));
    }

    // Both connections close: bob's URI asks for TCP, carol's for nothing (UDP).
    sim.input(Input::StreamClosed { conn: bob_conn });
    sim.input(Input::StreamClosed { conn: carol_conn });
    let (out, _) = sim.session("t4", &["sip:bob@example.com", "sip:carol@example.com"]);
    assert_eq!(
        connects(&out)
            .iter()
            .map(|(_, k, to)| (*k, *to))
            .collect::<Vec<_>>(),
        [(StreamKind::Sip, addr("127.0.0.3:5099"))],
        "{out:?}"
    );
    assert!(udp_to(&out, "127.0.0.3:5099").is_empty());
    let carol = udp_to(&out, "127.0.0.4:5098");
    assert_eq!(carol.len(), 1, "{out:?}");
    assert!(via(&carol[0]).starts_with("SIP/2.0/UDP "));
}

/// Two workers sharing the flow table (as im-server's do): the REGISTER reached worker A,
/// the session runs on worker B, and B sends the INVITE over the registration connection
/// (open in both, under the same id).
#[test]
fn a_registration_connection_serves_every_worker() {
    let flows = PeerTransports::default();
    let locations = Locations::default();
    let mut a = worker(0, flows.clone(), locations.clone());
    let mut b = worker(0, flows, locations);
    let bob_src = "127.0.0.3:40200";
    // Open in B first, as when the connection's input reaches every worker.
    b.tcp_accept(9, bob_src);
    let (bob_conn, ok) =
        a.register_over_tcp(9, bob_src, "bob", "r-bob2", "", "<sip:bob@127.0.0.3:5097>");
    assert_eq!(status_of(&ok), 200);
    let (out, _) = b.session("t8", &["sip:bob@example.com"]);
    assert!(connects(&out).is_empty(), "{out:?}");
    assert!(udp_to(&out, "127.0.0.3:5097").is_empty(), "{out:?}");
    let inv = tcp_on(&out, bob_conn);
    assert_eq!(inv.len(), 1, "{out:?}");
    assert!(via(&inv[0]).starts_with("SIP/2.0/TCP "));
    // Without the shared table, worker B would send it over UDP to the Contact.
    let mut c = worker(0, PeerTransports::default(), b.ep.app().locations.clone());
    c.sip_open(bob_conn, bob_src);
    let (out, _) = c.session("t9", &["sip:bob@example.com"]);
    assert_eq!(udp_to(&out, "127.0.0.3:5097").len(), 1, "{out:?}");
}

/// A list long enough that the invitee INVITE (offer and recipient-list-history) passes
/// 1300 octets; the first entry is the one the test answers.
fn long_list(first: &str) -> Vec<String> {
    let mut v = vec![first.to_owned()];
    v.extend((0..20).map(|i| format!("sip:somebody-with-a-long-name-{i}@127.0.0.9:{}", 6000 + i)));
    v
}

/// Rule 3: over the limit, TCP; a refused connect sends the INVITE again over UDP (UDP Via,
/// a new branch, a UDP Contact) and the leg goes on; with the limit at 0, UDP at once.
#[test]
fn large_invite_goes_over_tcp_and_falls_back_to_udp() {
    let bob = "127.0.0.2:5072";
    let list = long_list(&format!("sip:bob@{bob}"));
    let refs: Vec<&str> = list.iter().map(String::as_str).collect();

    let mut sim = endpoint(1300);
    let (out, _) = sim.session("t5", &refs);
    assert!(udp_to(&out, bob).is_empty(), "not over UDP first: {out:?}");
    let (conn, kind, _) = connects(&out)
        .into_iter()
        .find(|(_, _, to)| *to == addr(bob))
        .unwrap_or_else(|| panic!("a TCP connect to bob: {out:?}"));
    assert_eq!(kind, StreamKind::Sip);
    let out = sim.input(Input::ConnectFailed { conn });
    let inv = udp_to(&out, bob);
    assert_eq!(inv.len(), 1, "the INVITE again over UDP: {out:?}");
    let inv = &inv[0];
    assert!(inv.as_bytes().len() > 1300);
    assert!(
        via(inv).starts_with(&format!("SIP/2.0/UDP {SIP};")),
        "{}",
        via(inv)
    );
    assert!(!contact(inv).contains("transport=tcp"), "{}", contact(inv));
    // The leg did not fail: its 200 is ACKed over UDP.
    let out = sim.udp(
        bob,
        &response_to(inv, 200, "b5", Some(&invitee_sdp("127.0.0.2:7002", "bobs"))),
    );
    let acks: Vec<Message> = udp_to(&out, bob)
        .into_iter()
        .filter(|m| method(m) == Some(&Method::Ack))
        .collect();
    assert_eq!(acks.len(), 1, "{out:?}");
    assert!(via(&acks[0]).starts_with("SIP/2.0/UDP "));
    // Bob refused TCP: the next session's large INVITE goes to him over UDP at once.
    let (out, _) = sim.session("t5b", &refs);
    assert!(
        !connects(&out).iter().any(|(_, _, to)| *to == addr(bob)),
        "{out:?}"
    );
    assert_eq!(udp_to(&out, bob).len(), 1, "{out:?}");

    // A connect that succeeds carries the large INVITE over TCP.
    let mut sim = endpoint(1300);
    let (out, _) = sim.session("t6", &refs);
    let (conn, _, _) = connects(&out)
        .into_iter()
        .find(|(_, _, to)| *to == addr(bob))
        .unwrap();
    let inv = tcp_on(&sim.sip_open(conn, bob), conn);
    assert_eq!(inv.len(), 1);
    assert!(via(&inv[0]).starts_with("SIP/2.0/TCP "), "{}", via(&inv[0]));
    assert!(inv[0].as_bytes().len() > 1300);

    // A leg CANCELled (the originator left) while its connect was under way is not sent
    // again over UDP when the connect fails.
    let mut sim = endpoint(1300);
    let (out, ok) = sim.session("t6b", &refs);
    let (conn, _, _) = connects(&out)
        .into_iter()
        .find(|(_, _, to)| *to == addr(bob))
        .unwrap();
    let to = ok.header(HeaderName::To).unwrap().to_owned();
    sim.udp(
        ALICE,
        &simple_request("BYE", "UDP", ALICE, "t6b", "z9hG4bKbye6b", &to, 2, ""),
    );
    let out = sim.input(Input::ConnectFailed { conn });
    assert!(
        !udp_to(&out, bob)
            .iter()
            .any(|m| method(m) == Some(&Method::Invite)),
        "{out:?}"
    );

    // The knob: 0 keeps every INVITE on UDP.
    let mut sim = endpoint(0);
    let (out, _) = sim.session("t7", &refs);
    assert!(connects(&out).is_empty(), "{out:?}");
    assert_eq!(udp_to(&out, bob).len(), 1);
}

/// A response of bob's whose Contact is `contact` (his listening address).
fn answer_with_contact(inv: &Message, tag: &str, contact: &str) -> String {
    let r = response_to(inv, 200, tag, Some(&invitee_sdp("127.0.0.2:7002", "bobs")));
    // The Content-Length is the body's: only the head changes length.
    r.replace(
        "Contact: <sip:invitee@127.0.0.2:5060>",
        &format!("Contact: <{contact}>"),
    )
}

/// RFC 3261 §12.2.1.1 / §18.1.1: bob's connection closes after he answered; our BYE (alice
/// left) opens a new connection to his Contact and goes there, saying TCP. The session
/// holds its connection of ours while it lives (`ConnUse`).
#[test]
fn bye_to_a_leg_whose_connection_closed_goes_over_a_new_one() {
    let mut sim = endpoint(1300);
    let bob = "127.0.0.2:5074";
    let (out, ok_alice) = sim.session("t10", &[&format!("sip:bob@{bob};transport=tcp")]);
    let (conn, _, _) = connects(&out)[0];
    let out = sim.sip_open(conn, bob);
    assert_eq!(
        conn_uses(&out),
        [(conn, true)],
        "held by the session: {out:?}"
    );
    let inv = tcp_on(&out, conn).remove(0);
    let contact = format!("sip:bob@{bob};transport=tcp");
    sim.tcp(conn, &answer_with_contact(&inv, "b10", &contact));
    sim.input(Input::StreamClosed { conn });

    let to = ok_alice.header(HeaderName::To).unwrap().to_owned();
    let out = sim.udp(
        ALICE,
        &simple_request("BYE", "UDP", ALICE, "t10", "z9hG4bKbye10", &to, 2, ""),
    );
    let c = connects(&out);
    assert_eq!(c.len(), 1, "a new connection to bob's Contact: {out:?}");
    let (conn2, kind, to2) = c[0];
    assert_eq!((kind, to2), (StreamKind::Sip, addr(bob)));
    assert!(udp_to(&out, bob).is_empty(), "{out:?}");
    let out = sim.sip_open(conn2, bob);
    let bye = tcp_on(&out, conn2)
        .into_iter()
        .find(|m| method(m) == Some(&Method::Bye))
        .unwrap_or_else(|| panic!("the BYE on the new connection: {out:?}"));
    assert_eq!(bye.request_uri_str(), Some(&*contact));
    assert!(
        via(&bye).starts_with(&format!("SIP/2.0/TCP {SIP};")),
        "{}",
        via(&bye)
    );
    sim.tcp(conn2, &response_to(&bye, 200, "", None));
    assert_eq!(sim.ep.live_sessions(), 0);
}

/// §9.1: a CANCEL goes where its INVITE went; when the connection of ours it went over has
/// closed, a new one is opened to the same destination.
#[test]
fn cancel_to_a_leg_whose_connection_closed_goes_over_a_new_one() {
    let mut sim = endpoint(1300);
    let bob = "127.0.0.2:5075";
    let (out, ok_alice) = sim.session("t11", &[&format!("sip:bob@{bob};transport=tcp")]);
    let (conn, _, _) = connects(&out)[0];
    let inv = tcp_on(&sim.sip_open(conn, bob), conn).remove(0);
    sim.tcp(conn, &response_to(&inv, 180, "b11", None));
    sim.input(Input::StreamClosed { conn });
    let to = ok_alice.header(HeaderName::To).unwrap().to_owned();
    let out = sim.udp(
        ALICE,
        &simple_request("BYE", "UDP", ALICE, "t11", "z9hG4bKbye11", &to, 2, ""),
    );
    let c = connects(&out);
    assert_eq!(c.len(), 1, "{out:?}");
    let (conn2, kind, to2) = c[0];
    assert_eq!((kind, to2), (StreamKind::Sip, addr(bob)));
    let cancel = tcp_on(&sim.sip_open(conn2, bob), conn2)
        .into_iter()
        .find(|m| method(m) == Some(&Method::Cancel));
    assert!(cancel.is_some(), "the CANCEL on the new connection");
}

/// Rule 3 for page-mode copies: over the limit, each copy goes over TCP; a refused connect
/// sends it again over UDP (new branch, UDP Via).
#[test]
fn large_page_mode_copies_go_over_tcp_and_fall_back_to_udp() {
    let mut sim = page(300);
    let (bob, carol) = ("127.0.0.2:5080", "127.0.0.2:5081");
    let out = sim.udp(
        ALICE,
        &list_message(
            "p1",
            "z9hG4bKp1",
            "hello",
            &[&format!("sip:bob@{bob}"), &format!("sip:carol@{carol}")],
        ),
    );
    assert!(
        udp_to(&out, bob).is_empty() && udp_to(&out, carol).is_empty(),
        "{out:?}"
    );
    let c = connects(&out);
    let conn_to = |who: &str| {
        c.iter()
            .find(|(_, k, to)| *k == StreamKind::Sip && *to == addr(who))
            .map(|(conn, _, _)| *conn)
            .unwrap_or_else(|| panic!("a TCP connect to {who}: {out:?}"))
    };
    let (cb, cc) = (conn_to(bob), conn_to(carol));
    let out = sim.sip_open(cb, bob);
    let m = tcp_on(&out, cb);
    assert_eq!(m.len(), 1, "bob's copy waited for the connection: {out:?}");
    assert_eq!(method(&m[0]), Some(&Method::Message));
    assert!(m[0].as_bytes().len() > 300);
    assert!(
        via(&m[0]).starts_with(&format!("SIP/2.0/TCP {SIP};")),
        "{}",
        via(&m[0])
    );
    let out = sim.input(Input::ConnectFailed { conn: cc });
    let m = udp_to(&out, carol);
    assert_eq!(m.len(), 1, "carol's copy again over UDP: {out:?}");
    assert_eq!(method(&m[0]), Some(&Method::Message));
    assert!(
        via(&m[0]).starts_with(&format!("SIP/2.0/UDP {SIP};")),
        "{}",
        via(&m[0])
    );
    // Carol refused TCP: her next large copy goes over UDP at once.
    let out = sim.udp(
        ALICE,
        &list_message("p2", "z9hG4bKp2", "again", &[&format!("sip:carol@{carol}")]),
    );
    assert!(connects(&out).is_empty(), "{out:?}");
    assert_eq!(udp_to(&out, carol).len(), 1, "{out:?}");
}

/// Rule 6 (`late_answers.rs`): bob rings over his registration connection and it closes;
/// alice leaves, so the leg is cancelled, but no CANCEL can travel: the INVITE ends at once
/// and is remembered for a late 2xx (RFC 6026 §7.2). With nothing else happening, the
/// endpoint's own deadline drops it when its 64*T1 window ends: not a moment before, and
/// not only when another INVITE comes.
#[test]
fn an_invite_remembered_for_a_late_2xx_is_dropped_on_the_timer_after_64_t1() {
    let mut sim = endpoint(0);
    let (bob_conn, ok) = sim.register_over_tcp(
        9,
        "127.0.0.3:40125",
        "bob",
        "r-late",
        "",
        "<sip:bob@127.0.0.3:5099>",
    );
    assert_eq!(status_of(&ok), 200);
    let (out, ok_alice) = sim.session("t12", &["sip:bob@example.com"]);
    let inv = tcp_on(&out, bob_conn).remove(0);
    sim.tcp(bob_conn, &response_to(&inv, 180, "b12", None));
    sim.input(Input::StreamClosed { conn: bob_conn });
    let to = ok_alice.header(HeaderName::To).unwrap().to_owned();
    let left = sim.now;
    sim.udp(
        ALICE,
        &simple_request("BYE", "UDP", ALICE, "t12", "z9hG4bKbye12", &to, 2, ""),
    );
    assert_eq!(sim.ep.late_invites(), 1, "the INVITE waits for a late 2xx");

    // Only timer inputs from here, at the deadlines the endpoint asks for.
    let window = 64
        * EndpointConfig::new(addr(SIP), addr("127.0.0.1:2855"))
            .timers
            .t1;
    while let Some(t) = sim.ep.poll_timeout() {
        if t >= left + window {
            break;
        }
        sim.now = sim.now.max(t);
        sim.input(Input::Timeout);
    }
    sim.now = left + window - Duration::from_millis(1);
    sim.input(Input::Timeout);
    assert_eq!(sim.ep.late_invites(), 1, "kept for its whole window");
    let due = sim
        .ep
        .poll_timeout()
        .expect("a deadline for the remembered INVITE");
    assert!(due <= left + window, "{:?} past the window", due - left);
    for _ in 0..100 {
        let Some(t) = sim.ep.poll_timeout().filter(|t| *t <= left + window) else {
            break;
        };
        sim.now = sim.now.max(t);
        sim.input(Input::Timeout);
    }
    assert_eq!(sim.ep.late_invites(), 0, "none held after 64*T1");
}

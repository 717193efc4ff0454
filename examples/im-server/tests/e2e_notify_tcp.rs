//! A conference-state NOTIFY to a subscriber whose TCP connection closed, against the real
//! `im-server` binary (`im-runtime/src/endpoint/conference/notify.rs`): the subscriber SUBSCRIBEs
//! over TCP with a Contact that listens on TCP, gets its 200 and first NOTIFY on that
//! connection, answers, and closes it; the next NOTIFY (an invitee declined) must reach it
//! over a new connection the server opens to its Contact (RFC 3261 §12.2.1.1: the dialog's
//! remote target; §18.1.1: a new connection when the old one is gone), as the server's BYE
//! does. A subscriber whose Contact says `ob` (RFC 5626 §5.3: reach me over my flow only)
//! is not dialled: the NOTIFY fails at once and the subscription ends. The same over TLS
//! (RFC 3261 §26.2, RFC 5630): a subscriber over TLS with a `sips:` Contact gets the NOTIFY
//! over a new TLS connection the server opens to that Contact, verifying its certificate
//! against `--tls-ca`, with `SIP/2.0/TLS` in Via. The originator, the invitee and the
//! subscriber are plain sockets of this test (with rustls for TLS, certificates from
//! rcgen) speaking SIP as RFC 3261 writes it.

#![allow(clippy::disallowed_methods)]

mod common;

use common::pki::Pki;
use common::{Server, group_folder};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

const GROUP: &str = "sip:e2e@example.com";

/// The value of header `name` in `msg` (first one, name compared case-insensitively).
fn header(msg: &str, name: &str) -> Option<String> {
    msg.split("\r\n\r\n").next()?.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

fn start_line(msg: &str) -> &str {
    msg.lines().next().unwrap_or_default()
}

/// A response to request `req` with `status`, copying what RFC 3261 §8.2.6.2 says to copy
/// and adding `to_tag` (when not empty) to To when it has none.
fn response(req: &str, status: &str, to_tag: &str) -> String {
    let h = |n: &str| header(req, n).unwrap_or_default();
    let mut to = h("To");
    if !to.contains(";tag=") && !to_tag.is_empty() {
        to.push_str(&format!(";tag={to_tag}"));
    }
    let vias: String = req
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("via:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    format!(
        "SIP/2.0 {status}\r\n{vias}From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        h("From"),
        h("Call-ID"),
        h("CSeq")
    )
}

/// The next datagram on `s` that is not a provisional response, as text.
fn next_udp(s: &UdpSocket, what: &str) -> String {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, _) = s
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("no {what}: {e}"));
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        if !start_line(&m).starts_with("SIP/2.0 1") {
            return m;
        }
    }
}

/// A byte stream: a TCP connection, or a TLS session over one.
trait Stream: Read + Write {}
impl<S: Read + Write> Stream for S {}

/// Reads SIP messages off a stream (RFC 3261 §18.3: framed by Content-Length).
struct Framed {
    s: Box<dyn Stream>,
    buf: Vec<u8>,
}

impl Framed {
    /// `tcp` with a 10 s read timeout, in TLS as `pki`'s client or server when given.
    fn new(tcp: TcpStream, tls: Option<(&Pki, bool)>) -> Framed {
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let s: Box<dyn Stream> = match tls {
            None => Box::new(tcp),
            Some((pki, false)) => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(CertificateDer::from(pki.ca_der.clone())).unwrap();
                let cfg = rustls::ClientConfig::builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                let name = ServerName::try_from("127.0.0.1").unwrap();
                let c = rustls::ClientConnection::new(Arc::new(cfg), name).unwrap();
                Box::new(rustls::StreamOwned::new(c, tcp))
            }
            Some((pki, true)) => {
                let cfg = rustls::ServerConfig::builder()
                    .with_no_client_auth()
                    .with_single_cert(
                        vec![CertificateDer::from(pki.cert_der.clone())],
                        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key_der.clone())),
                    )
                    .unwrap();
                let c = rustls::ServerConnection::new(Arc::new(cfg)).unwrap();
                Box::new(rustls::StreamOwned::new(c, tcp))
            }
        };
        Framed { s, buf: Vec::new() }
    }

    fn next(&mut self, what: &str) -> String {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end + 4]).into_owned();
                let len: usize = header(&head, "Content-Length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + len {
                    let m: Vec<u8> = self.buf.drain(..end + 4 + len).collect();
                    return String::from_utf8_lossy(&m).into_owned();
                }
            }
            let mut chunk = [0u8; 8192];
            let n = self
                .s
                .read(&mut chunk)
                .unwrap_or_else(|e| panic!("no {what}: {e}"));
            assert!(n > 0, "the server closed the connection before the {what}");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// A live session whose originator alice subscribed over TCP, answered the first NOTIFY
/// and closed that connection; bob, the invitee, has just declined, so a NOTIFY is due.
struct Closed {
    server: Server,
    alice: String,
    focus: String,
    /// Our tag of the subscription's dialog.
    tag: String,
    /// Alice's Contact, listening on TCP.
    contact_listener: TcpListener,
    contact_addr: SocketAddr,
    _groups: tempfile::TempDir,
    /// Over TLS: the certificates (the server's is alice's too).
    pki: Option<Pki>,
}

/// [`Closed`] over TCP, alice's Contact carrying `contact_params` (`;ob`: reach her over
/// her flow only, RFC 5626).
fn subscribed_then_closed(contact_params: &str) -> Closed {
    subscribed_then_closed_over(false, contact_params)
}

/// [`Closed`], alice subscribing over TLS (to the server's SIP TLS address, a `sips:`
/// Contact) when `tls`.
fn subscribed_then_closed_over(tls: bool, contact_params: &str) -> Closed {
    let alice_sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let bob_sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for s in [&alice_sock, &bob_sock] {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    let alice_addr = alice_sock.local_addr().unwrap();
    let alice = format!("sip:alice@{alice_addr}");
    let bob = format!("sip:bob@{}", bob_sock.local_addr().unwrap());
    let groups = group_folder(GROUP, &[alice.clone(), bob.clone()]);
    let pki = tls.then(Pki::new);
    let sip_tls: SocketAddr = ([127, 0, 0, 1], common::free_tcp_port()).into();
    let mut args: Vec<String> = [
        "--groups",
        groups.path().to_str().unwrap(),
        "--workers",
        "1",
    ]
    .map(str::to_owned)
    .to_vec();
    if let Some(p) = &pki {
        let tls_args = [
            ("--tls-cert", p.arg("server.pem")),
            ("--tls-key", p.arg("server.key")),
            ("--tls-ca", p.arg("ca.pem")),
            ("--sip-tls", sip_tls.to_string()),
        ];
        for (flag, v) in tls_args {
            args.extend([flag.to_owned(), v]);
        }
    }
    let server = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let sip: SocketAddr = server.sip;

    // Alice's pager-mode session to the group (RFC 4975 offer, sendonly).
    let sdp = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=message 7000 TCP/MSRP *\r\na=accept-types:message/cpim text/plain\r\n\
               a=path:msrp://127.0.0.1:7000/a1x;tcp\r\na=setup:active\r\na=sendonly\r\n";
    let invite = format!(
        "INVITE {GROUP} SIP/2.0\r\nVia: SIP/2.0/UDP {alice_addr};branch=z9hG4bKnt1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <{alice}>;tag=a1\r\nTo: <{GROUP}>\r\nCall-ID: nt1@alice\r\n\
         CSeq: 1 INVITE\r\nContact: <{alice}>\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    alice_sock.send_to(invite.as_bytes(), sip).unwrap();
    let ok = next_udp(&alice_sock, "answer to alice's INVITE");
    assert!(
        start_line(&ok).starts_with("SIP/2.0 200"),
        "{ok}\n{}",
        server.log()
    );
    let contact = header(&ok, "Contact").unwrap();
    let focus = contact
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_string();
    let to = header(&ok, "To").unwrap();
    let ack = format!(
        "ACK {focus} SIP/2.0\r\nVia: SIP/2.0/UDP {alice_addr};branch=z9hG4bKnt1ack;rport\r\n\
         Max-Forwards: 70\r\nFrom: <{alice}>;tag=a1\r\nTo: {to}\r\nCall-ID: nt1@alice\r\n\
         CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    alice_sock.send_to(ack.as_bytes(), sip).unwrap();

    // Bob's INVITE: held unanswered (100 Trying) while alice subscribes.
    let bob_invite = next_udp(&bob_sock, "INVITE to bob");
    assert!(
        start_line(&bob_invite).starts_with("INVITE "),
        "{bob_invite}"
    );
    bob_sock
        .send_to(response(&bob_invite, "100 Trying", "").as_bytes(), sip)
        .unwrap();

    // Alice subscribes over TCP; her Contact is a TCP port of hers that listens.
    let contact_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let contact_addr = contact_listener.local_addr().unwrap();
    let stream = TcpStream::connect(if tls { sip_tls } else { sip }).unwrap();
    let local = stream.local_addr().unwrap();
    let mut conn = Framed::new(stream, pki.as_ref().map(|p| (p, false)));
    let (via, contact) = if tls {
        ("TLS", format!("sips:alice@{contact_addr}{contact_params}"))
    } else {
        (
            "TCP",
            format!("sip:alice@{contact_addr};transport=tcp{contact_params}"),
        )
    };
    let subscribe = format!(
        "SUBSCRIBE {focus} SIP/2.0\r\nVia: SIP/2.0/{via} {local};branch=z9hG4bKnts1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <{alice}>;tag=s1\r\nTo: <{focus}>\r\nCall-ID: nts1@alice\r\n\
         CSeq: 1 SUBSCRIBE\r\nEvent: conference\r\nAccept: application/conference-info+xml\r\n\
         Expires: 600\r\nContact: <{contact}>\r\nContent-Length: 0\r\n\r\n"
    );
    conn.s.write_all(subscribe.as_bytes()).unwrap();
    let answer = conn.next("answer to the SUBSCRIBE");
    assert!(
        start_line(&answer).starts_with("SIP/2.0 200"),
        "{answer}\n{}",
        server.log()
    );
    let tag = header(&answer, "To")
        .and_then(|t| t.split(";tag=").nth(1).map(str::to_owned))
        .expect("our tag");
    let first = conn.next("first NOTIFY");
    assert!(start_line(&first).starts_with("NOTIFY "), "{first}");
    assert!(first.contains("version=\"1\""), "{first}");
    conn.s
        .write_all(response(&first, "200 OK", "").as_bytes())
        .unwrap();
    // The subscriber's connection closes (RFC 3261 §18: the server must not count on it).
    drop(conn);
    // Time for the server to see the close before anything is sent to the subscriber.
    std::thread::sleep(Duration::from_millis(300));

    // Bob declines: what the subscriber sees changed, so the server NOTIFYs it.
    bob_sock
        .send_to(response(&bob_invite, "486 Busy Here", "b1").as_bytes(), sip)
        .unwrap();

    Closed {
        server,
        alice,
        focus,
        tag,
        contact_listener,
        contact_addr,
        _groups: groups,
        pki,
    }
}

#[test]
fn a_notify_after_the_subscribers_connection_closed_goes_over_a_new_one_to_its_contact() {
    notify_over_a_new_connection(false);
}

/// The same over TLS: the new connection is a TLS one (the subscriber's certificate
/// verified against the server's `--tls-ca`), the NOTIFY's Via `SIP/2.0/TLS`.
#[test]
fn a_notify_after_the_subscribers_tls_connection_closed_goes_over_a_new_tls_one() {
    notify_over_a_new_connection(true);
}

fn notify_over_a_new_connection(tls: bool) {
    let Closed {
        server,
        contact_listener,
        contact_addr,
        pki,
        ..
    } = subscribed_then_closed_over(tls, "");
    // The NOTIFY arrives on a new connection to alice's Contact.
    contact_listener.set_nonblocking(true).unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    let accepted = loop {
        match contact_listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!(
                "no connection to the subscriber's Contact {contact_addr}: {e}\n{}",
                server.log()
            ),
        }
    };
    accepted.set_nonblocking(false).unwrap();
    let mut conn = Framed::new(accepted, pki.as_ref().map(|p| (p, true)));
    let notify = conn.next("NOTIFY over the new connection");
    let (scheme, via) = if tls {
        ("sips", "SIP/2.0/TLS")
    } else {
        ("sip", "SIP/2.0/TCP")
    };
    assert!(
        start_line(&notify).starts_with(&format!("NOTIFY {scheme}:alice@{contact_addr}")),
        "{notify}"
    );
    assert!(
        header(&notify, "Via").is_some_and(|v| v.starts_with(via)),
        "{notify}\n{}",
        server.log()
    );
    assert_eq!(header(&notify, "Call-ID").as_deref(), Some("nts1@alice"));
    assert!(
        header(&notify, "Subscription-State").is_some_and(|s| s.starts_with("active")),
        "{notify}"
    );
    assert!(notify.contains("version=\"2\""), "{notify}");
    assert!(
        notify.contains("<disconnection-method>busy</disconnection-method>"),
        "{notify}"
    );
    conn.s
        .write_all(response(&notify, "200 OK", "").as_bytes())
        .unwrap();
}

/// With `ob` in her Contact alice asked to be reached over her flow only (RFC 5626 §5.3):
/// the server opens no connection to it, the NOTIFY fails at once, and its failure ends
/// the subscription (RFC 6665 §4.2.2): a refresh in its dialog then gets 481.
#[test]
fn a_subscriber_reached_over_its_flow_only_is_not_dialled_and_its_subscription_ends() {
    let c = subscribed_then_closed(";ob");
    assert!(
        c.server
            .wait_for_log("asks to be reached over it only", Duration::from_secs(10)),
        "{}",
        c.server.log()
    );
    assert!(
        c.server
            .wait_for_log("ended: NOTIFY got no answer", Duration::from_secs(5)),
        "{}",
        c.server.log()
    );
    c.contact_listener.set_nonblocking(true).unwrap();
    assert!(
        c.contact_listener.accept().is_err(),
        "the server dialled a Contact with ob"
    );
    // A refresh over a new connection: the subscription is gone.
    let stream = TcpStream::connect(c.server.sip).unwrap();
    let local = stream.local_addr().unwrap();
    let mut conn = Framed::new(stream, None);
    let (alice, focus, tag, contact) = (&c.alice, &c.focus, &c.tag, c.contact_addr);
    let refresh = format!(
        "SUBSCRIBE {focus} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKnts2;rport\r\n\
         Max-Forwards: 70\r\nFrom: <{alice}>;tag=s1\r\nTo: <{focus}>;tag={tag}\r\n\
         Call-ID: nts1@alice\r\nCSeq: 2 SUBSCRIBE\r\nEvent: conference\r\nExpires: 600\r\n\
         Contact: <sip:alice@{contact};transport=tcp;ob>\r\nContent-Length: 0\r\n\r\n"
    );
    conn.s.write_all(refresh.as_bytes()).unwrap();
    let answer = conn.next("answer to the refresh");
    assert!(
        start_line(&answer).starts_with("SIP/2.0 481"),
        "{answer}\n{}",
        c.server.log()
    );
}

//! Issue 12, the numbers that were runtime constants, against the real `im-server` binary:
//! * a recipient list that cannot be read is answered by the specs (400 when malformed, 413
//!   over a list limit, each with a Warning saying why), not by a runtime 400 before any
//!   machine runs; the list limits are the server's `[limits] max_list_*`;
//! * `--msrp-idle` and `--session-lifetime` are what the endpoint uses: a session whose
//!   originator never connects its MSRP session is ended (BYE) after the configured idle
//!   limit, and any session after the configured lifetime, long before the defaults.
//!
//! Raw UDP rather than SIPp: the tests time the server's BYE and read its Warning text.

// Real sockets, real process, wall-clock timeouts on purpose.
#![allow(clippy::disallowed_methods)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::Server;

/// A UDP socket bound to loopback with a short receive timeout.
fn udp() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    s
}

/// Receives datagrams until one for which `pick` holds, or until `limit`.
fn recv_until(sock: &UdpSocket, limit: Duration, pick: impl Fn(&str) -> bool) -> Option<String> {
    let end = Instant::now() + limit;
    let mut buf = vec![0u8; 65536];
    while Instant::now() < end {
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned();
            if pick(&text) {
                return Some(text);
            }
        }
    }
    None
}

/// The first final response (not 100 Trying) within `limit`.
fn final_response(sock: &UdpSocket, limit: Duration) -> Option<String> {
    recv_until(sock, limit, |t| {
        let first = t.lines().next().unwrap_or_default();
        first.starts_with("SIP/2.0 ") && !first.starts_with("SIP/2.0 1")
    })
}

fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A resource list (RFC 4826) naming `n` users of example.com.
fn list_of(n: usize) -> String {
    let entries: String = (0..n)
        .map(|i| format!("<entry uri=\"sip:user{i}@example.com\"/>"))
        .collect();
    format!(
        "<?xml version=\"1.0\"?>\r\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\">\
         <list>{entries}</list></resource-lists>\r\n"
    )
}

/// A MESSAGE to the conference factory carrying `list` as its recipient-list part (RFC 5365).
fn message_with_list(local: SocketAddr, tag: &str, list: &str) -> String {
    let body = format!(
        "--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n\
         --b1\r\nContent-Type: application/resource-lists+xml\r\n\
         Content-Disposition: recipient-list\r\n\r\n{list}\r\n--b1--\r\n"
    );
    format!(
        "MESSAGE sip:conference-factory@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-lim-{tag}\r\n\
         From: <sip:alice@example.com>;tag=l{tag}\r\n\
         To: <sip:conference-factory@example.com>\r\n\
         Call-ID: limits-{tag}@limits.test\r\n\
         CSeq: 1 MESSAGE\r\n\
         Max-Forwards: 70\r\n\
         Require: recipient-list-message\r\n\
         Content-Type: multipart/mixed;boundary=b1\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Sends the MESSAGE with `list` and returns its final response.
fn ask(server: &Server, tag: &str, list: &str) -> String {
    let sock = udp();
    let local = sock.local_addr().expect("local addr");
    let msg = message_with_list(local, tag, list);
    sock.send_to(msg.as_bytes(), server.sip).expect("send");
    final_response(&sock, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no final response:\n{}", server.log()))
}

// covers: 4/list_malformed
#[test]
fn a_malformed_list_is_answered_by_the_spec_rule() {
    let server = Server::start(&[]);
    let resp = ask(
        &server,
        "bad",
        "<resource-lists><list><entry uri=\"sip:bob@example.com\">",
    );
    assert!(resp.starts_with("SIP/2.0 400 "), "{resp}");
    let warning = header(&resp, "Warning").unwrap_or_default();
    assert!(
        warning.contains("the recipient list cannot be read: malformed XML"),
        "{resp}"
    );
    // The answer is the spec's rule, logged under its clause id.
    assert!(
        server.wait_for_log("rule=4/list_malformed", Duration::from_secs(2)),
        "{}",
        server.log()
    );
}

// covers: 9/list_too_large
#[test]
fn the_list_entry_limit_is_the_configured_one_and_the_spec_answers_it() {
    let server = Server::start(&["--max-list-entries", "3"]);
    // Three entries fit the configured limit: exploded (202).
    let resp = ask(&server, "three", &list_of(3));
    assert!(resp.starts_with("SIP/2.0 202 "), "{resp}");
    // Four do not (the default limit is 1000): the spec's 413, naming the limit.
    let resp = ask(&server, "four", &list_of(4));
    assert!(resp.starts_with("SIP/2.0 413 "), "{resp}");
    assert!(
        header(&resp, "Warning")
            .unwrap_or_default()
            .contains("the recipient list is too large: more than 3 entries"),
        "{resp}"
    );
    assert!(
        server.wait_for_log("rule=9/list_too_large", Duration::from_secs(2)),
        "{}",
        server.log()
    );
}

// covers: 7.9.1.4/list_malformed
#[test]
fn an_invite_with_a_malformed_list_is_answered_by_the_adhoc_rule() {
    let server = Server::start(&[]);
    let sock = udp();
    let local = sock.local_addr().expect("local addr");
    let sdp = pager_sdp("badlist");
    // A copyControl value outside RFC 5364's: refused rather than guessed (a misspelt bcc
    // must not disclose a blind recipient).
    let list = "<?xml version=\"1.0\"?>\r\n<resource-lists \
                xmlns=\"urn:ietf:params:xml:ns:resource-lists\" \
                xmlns:cp=\"urn:ietf:params:xml:ns:copycontrol\"><list>\
                <entry uri=\"sip:bob@example.com\" cp:copyControl=\"bc\"/></list>\
                </resource-lists>\r\n";
    let body = format!(
        "--b1\r\nContent-Type: application/sdp\r\n\r\n{sdp}\
         --b1\r\nContent-Type: application/resource-lists+xml\r\n\
         Content-Disposition: recipient-list\r\n\r\n{list}--b1--\r\n"
    );
    let invite = format!(
        "INVITE sip:conference-factory@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-inv-badlist\r\n\
         From: <sip:alice@example.com>;tag=abadlist\r\n\
         To: <sip:conference-factory@example.com>\r\n\
         Call-ID: badlist@limits.test\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:alice@{local}>\r\n\
         Max-Forwards: 70\r\n\
         Content-Type: multipart/mixed;boundary=b1\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    sock.send_to(invite.as_bytes(), server.sip)
        .expect("send INVITE");
    let resp = final_response(&sock, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no answer to the INVITE:\n{}", server.log()));
    assert!(resp.starts_with("SIP/2.0 400 "), "{resp}");
    assert!(
        header(&resp, "Warning")
            .unwrap_or_default()
            .contains("the recipient list cannot be read: invalid copyControl value"),
        "{resp}"
    );
    assert!(
        server.wait_for_log("rule=7.9.1.4/list_malformed", Duration::from_secs(2)),
        "{}",
        server.log()
    );
}

/// A pager-mode MSRP offer (`a=sendonly`) with no `a=setup`.
fn pager_sdp(tag: &str) -> String {
    format!(
        "v=0\r\n\
         o=alice 1 1 IN IP4 127.0.0.1\r\n\
         s=-\r\n\
         c=IN IP4 127.0.0.1\r\n\
         t=0 0\r\n\
         m=message 7394 TCP/MSRP *\r\n\
         a=accept-types:text/plain\r\n\
         a=path:msrp://127.0.0.1:7394/{tag};tcp\r\n\
         a=sendonly\r\n"
    )
}

/// A pager-mode INVITE to the shipped `friends` group, from alice; its offer has no
/// `a=setup`, so the server answers passive and waits for alice to connect (RFC 4975 §5.4).
fn pager_invite(local: SocketAddr, tag: &str) -> String {
    let sdp = pager_sdp(tag);
    format!(
        "INVITE sip:friends@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-inv-{tag}\r\n\
         From: <sip:alice@example.com>;tag=a{tag}\r\n\
         To: <sip:friends@example.com>\r\n\
         Call-ID: {tag}@limits.test\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:alice@{local}>\r\n\
         Max-Forwards: 70\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// Opens a pager-mode session as alice (INVITE, 200, ACK) and never connects its MSRP
/// session; returns how long after the ACK the server's BYE came (`None`: not within
/// `limit`). The BYE is answered 200.
fn seconds_until_bye(server: &Server, tag: &str, limit: Duration) -> Option<Duration> {
    let sock = udp();
    let local = sock.local_addr().expect("local addr");
    sock.send_to(pager_invite(local, tag).as_bytes(), server.sip)
        .expect("send INVITE");
    let ok = final_response(&sock, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no answer to the INVITE:\n{}", server.log()));
    assert!(ok.starts_with("SIP/2.0 200 "), "{ok}\n{}", server.log());
    let to = header(&ok, "To").unwrap_or_default();
    let contact = header(&ok, "Contact").unwrap_or_default();
    let target = contact
        .trim_start_matches('<')
        .split(['>', ';'])
        .next()
        .unwrap_or_default();
    let ack = format!(
        "ACK {target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-ack-{tag}\r\n\
         From: <sip:alice@example.com>;tag=a{tag}\r\n\
         To: {to}\r\n\
         Call-ID: {tag}@limits.test\r\n\
         CSeq: 1 ACK\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    );
    sock.send_to(ack.as_bytes(), server.sip).expect("send ACK");
    let acked = Instant::now();
    let bye = recv_until(&sock, limit, |t| t.starts_with("BYE "))?;
    let waited = acked.elapsed();
    // Answer the BYE (RFC 3261 §15.1.2), echoing its Via, From, To, Call-ID and CSeq.
    let echo: String = ["Via", "From", "To", "Call-ID", "CSeq"]
        .iter()
        .filter_map(|h| header(&bye, h).map(|v| format!("{h}: {v}\r\n")))
        .collect();
    let ok = format!("SIP/2.0 200 OK\r\n{echo}Content-Length: 0\r\n\r\n");
    sock.send_to(ok.as_bytes(), server.sip).expect("send 200");
    Some(waited)
}

#[test]
fn the_configured_msrp_idle_ends_a_session_whose_originator_never_connects() {
    // The default is 30 s, and the spec's message wait 32 s: a BYE within a few seconds
    // comes from the configured 1 s.
    let server = Server::start(&["--msrp-idle", "1s"]);
    let waited = seconds_until_bye(&server, "idle", Duration::from_secs(8))
        .unwrap_or_else(|| panic!("no BYE within 8 s:\n{}", server.log()));
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    // The spec ended it: the machines heard `msrp closed` (6.1.3.3.2 closed_before_message).
    assert!(
        server.wait_for_log(
            "rule=6.1.3.3.2/closed_before_message",
            Duration::from_secs(2)
        ),
        "{}",
        server.log()
    );
}

#[test]
fn the_configured_session_lifetime_ends_a_session() {
    // MSRP idle and the message wait (30 s, 32 s) would end it much later: a BYE within a
    // few seconds comes from the configured 2 s lifetime.
    let server = Server::start(&["--session-lifetime", "2s"]);
    let waited = seconds_until_bye(&server, "life", Duration::from_secs(9))
        .unwrap_or_else(|| panic!("no BYE within 9 s:\n{}", server.log()));
    assert!(waited >= Duration::from_millis(1500), "{waited:?}");
    // The BYE is the spec's: its machines hear `timer lifetime` (6.1.3.3.2 lifetime_over);
    // the runtime's own teardown waits 64·T1 more.
    assert!(
        server.wait_for_log("rule=6.1.3.3.2/lifetime_over", Duration::from_secs(2)),
        "{}",
        server.log()
    );
}

//! Hostile input against the real `im-server` binary (issue 14).
//!
//! Raw sockets rather than SIPp: the point is bytes that no well-behaved tool would send
//! (a UTF-8 character cut by the scheme check of an MSRP URI), and to check afterwards that
//! the process is still alive and still answering.

// Real sockets, real process, wall-clock timeouts on purpose.
#![allow(clippy::disallowed_methods)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::Server;

/// The To-Path / `a=path` that killed the server: `msrp:/` plus a two-byte Hebrew letter, so
/// byte 7 falls inside a character and `s[..7]` panicked (`MsrpUri::from_str`).
const HOSTILE_PATH: &str = "msrp:/מН;tcp";

/// A UDP socket bound to loopback with a receive timeout.
fn udp() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("read timeout");
    s
}

/// Receives datagrams until one whose first line contains `SIP/2.0 ` and is not a 100 Trying,
/// or until `limit`. Returns the text of that final response.
fn final_response(sock: &UdpSocket, limit: Duration) -> Option<String> {
    let end = Instant::now() + limit;
    let mut buf = vec![0u8; 65536];
    while Instant::now() < end {
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned();
            let first = text.lines().next().unwrap_or_default().to_owned();
            if first.starts_with("SIP/2.0 ") && !first.starts_with("SIP/2.0 100 ") {
                return Some(text);
            }
        }
    }
    None
}

/// Sends an OPTIONS over UDP (retransmitting like a UAC would) and returns its final response.
fn options(server: SocketAddr, tag: &str) -> Option<String> {
    let sock = udp();
    let local = sock.local_addr().expect("local addr");
    let msg = format!(
        "OPTIONS sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-opt-{tag}\r\n\
         From: <sip:alice@example.com>;tag=o{tag}\r\n\
         To: <sip:example.com>\r\n\
         Call-ID: options-{tag}@security.test\r\n\
         CSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    );
    for _ in 0..6 {
        sock.send_to(msg.as_bytes(), server).expect("send OPTIONS");
        if let Some(r) = final_response(&sock, Duration::from_millis(500)) {
            return Some(r);
        }
    }
    None
}

fn assert_alive(server: &mut Server, tag: &str) {
    let r = options(server.sip, tag).unwrap_or_else(|| {
        panic!(
            "no answer to OPTIONS after the hostile input:\n{}",
            server.log()
        )
    });
    assert!(r.starts_with("SIP/2.0 200 "), "OPTIONS answer: {r}");
}

/// A pager-mode INVITE to the shipped `friends` group whose SDP offer names the hostile path.
/// Pager mode (`a=sendonly`) matters: the predefined-group spec answers such an offer at once,
/// and building that answer is where the path is parsed.
fn hostile_invite(local: SocketAddr) -> String {
    let sdp = format!(
        "v=0\r\n\
         o=alice 1 1 IN IP4 127.0.0.1\r\n\
         s=-\r\n\
         c=IN IP4 127.0.0.1\r\n\
         t=0 0\r\n\
         m=message 7394 TCP/MSRP *\r\n\
         a=accept-types:text/plain\r\n\
         a=path:{HOSTILE_PATH}\r\n\
         a=sendonly\r\n"
    );
    format!(
        "INVITE sip:friends@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK-hostile-1\r\n\
         From: <sip:alice@example.com>;tag=h1\r\n\
         To: <sip:friends@example.com>\r\n\
         Call-ID: hostile-path@security.test\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:alice@{local}>\r\n\
         Max-Forwards: 70\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

#[test]
fn invite_with_multibyte_msrp_path_gets_an_error_and_the_server_lives() {
    let mut server = Server::start(&[]);
    assert_alive(&mut server, "before");

    let sock = udp();
    let local = sock.local_addr().expect("local addr");
    sock.send_to(hostile_invite(local).as_bytes(), server.sip)
        .expect("send INVITE");
    let resp = final_response(&sock, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no final response to the hostile INVITE:\n{}", server.log()));
    let first = resp.lines().next().unwrap_or_default();
    // A path that is not an MSRP URI makes the offer unusable: RFC 3261 §21.4.26 / RFC 4975
    // §8.1 — 488 Not Acceptable Here (400 would also be a proper refusal of a malformed body).
    assert!(
        first.starts_with("SIP/2.0 488 ") || first.starts_with("SIP/2.0 400 "),
        "hostile INVITE answered with: {resp}\n{}",
        server.log()
    );
    assert!(
        resp.contains("Call-ID: hostile-path@security.test"),
        "the error answers the hostile INVITE: {resp}"
    );

    assert_alive(&mut server, "after");
    assert!(
        !server.log().contains("panicked"),
        "the server panicked:\n{}",
        server.log()
    );
}

/// One MSRP SEND whose To-Path is the hostile path.
fn hostile_frame() -> Vec<u8> {
    format!(
        "MSRP a786hjs2 SEND\r\n\
         To-Path: {HOSTILE_PATH}\r\n\
         From-Path: msrp://127.0.0.1:7777/iau39soe2843z;tcp\r\n\
         Message-ID: 87652491\r\n\
         Byte-Range: 1-5/5\r\n\
         Content-Type: text/plain\r\n\r\n\
         hello\r\n\
         -------a786hjs2$\r\n"
    )
    .into_bytes()
}

/// Reads from `stream` until it closes, `needle` shows up, or `limit` passes.
fn read_until(stream: &mut TcpStream, needle: &str, limit: Duration) -> (String, bool) {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    let end = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => {
                got.extend_from_slice(buf.get(..n).unwrap_or_default());
                if String::from_utf8_lossy(&got).contains(needle) {
                    return (String::from_utf8_lossy(&got).into_owned(), false);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), false)
}

#[test]
fn msrp_frame_with_multibyte_to_path_is_refused_and_the_server_lives() {
    let mut server = Server::start(&[]);

    let mut hostile = TcpStream::connect(server.msrp).expect("connect MSRP");
    hostile.write_all(&hostile_frame()).expect("send frame");
    // Either an MSRP error response (400: the To-Path is not a URI) or a closed connection is
    // a proper refusal; silence with the connection open for 5 s is not.
    let (text, closed) = read_until(&mut hostile, "-------a786hjs2", Duration::from_secs(5));
    assert!(
        closed || text.starts_with("MSRP a786hjs2 4"),
        "hostile MSRP frame: closed={closed} answer={text:?}\n{}",
        server.log()
    );

    // The MSRP listener still accepts and still answers: an unknown but well-formed To-Path
    // gets 481 (RFC 4975 §7.3.1) on a fresh connection.
    let mut good = TcpStream::connect(server.msrp).expect("MSRP still accepts connections");
    good.write_all(
        b"MSRP b1 SEND\r\n\
          To-Path: msrp://127.0.0.1:2855/nosuchsession;tcp\r\n\
          From-Path: msrp://127.0.0.1:7777/iau39soe2843z;tcp\r\n\
          Message-ID: 1\r\n\
          Byte-Range: 1-5/5\r\n\
          Content-Type: text/plain\r\n\r\n\
          hello\r\n\
          -------b1$\r\n",
    )
    .expect("send good frame");
    let (text, _) = read_until(&mut good, "-------b1", Duration::from_secs(5));
    assert!(
        text.starts_with("MSRP b1 481"),
        "well-formed frame after the hostile one: {text:?}\n{}",
        server.log()
    );

    assert_alive(&mut server, "after-msrp");
    assert!(
        !server.log().contains("panicked"),
        "the server panicked:\n{}",
        server.log()
    );
}

/// A TCP MESSAGE declaring a 2 GB body: RFC 3261 §21.4.11 asks for 413, then the server may
/// close. With one worker the endpoint frames the stream; with two the IO reader does and
/// hands the unframeable rest to the worker its Call-ID steers to. Both must answer 413.
fn oversized_tcp_request_gets_413(workers: &str) {
    let mut server = Server::start(&["--workers", workers]);
    let mut s = TcpStream::connect(server.sip).expect("connect SIP TCP");
    let local = s.local_addr().expect("local addr");
    let req = format!(
        "MESSAGE sip:bob@example.com SIP/2.0\r\n\
         Via: SIP/2.0/TCP {local};branch=z9hG4bK-big-{workers}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@example.com>;tag=a1\r\n\
         To: <sip:bob@example.com>\r\n\
         Call-ID: big-{workers}@127.0.0.1\r\n\
         CSeq: 1 MESSAGE\r\n\
         Content-Type: text/plain\r\n\
         Content-Length: 2000000000\r\n\r\n\
         hello"
    );
    s.write_all(req.as_bytes()).expect("send");
    let (text, _) = read_until(&mut s, "\r\n\r\n", Duration::from_secs(5));
    assert!(
        text.starts_with("SIP/2.0 413 "),
        "workers={workers}: {text:?}\n{}",
        server.log()
    );
    assert!(text.contains("CSeq: 1 MESSAGE"), "{text}");
    let (_, closed) = read_until(&mut s, "never", Duration::from_secs(5));
    assert!(closed, "workers={workers}: connection closed after the 413");
    assert_alive(&mut server, &format!("after-413-{workers}"));
}

#[test]
fn oversized_tcp_request_gets_413_with_one_worker() {
    oversized_tcp_request_gets_413("1");
}

#[test]
fn oversized_tcp_request_gets_413_with_two_workers() {
    oversized_tcp_request_gets_413("2");
}

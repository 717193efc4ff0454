//! Cross-check against an independent MSRP implementation: `tests/peers/msrp_peer.py`
//! (stdlib Python written from RFC 4975 §7). Frames we encode must parse there, and what it
//! sends must decode here, over a real TCP connection on 127.0.0.1.
//!
//! Needs `python3` on PATH; without it these tests fail (they do not skip).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use im_runtime::proto::msrp::*;
use serde_json::Value;

fn peer_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/peers/msrp_peer.py")
}

fn python(args: &[&str]) -> Command {
    let probe = Command::new("python3").arg("--version").output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "python3 is required for the MSRP cross-check tests (tests/peers/msrp_peer.py) but \
         could not be run; install Python 3"
    );
    let mut c = Command::new("python3");
    c.arg(peer_script()).args(args);
    c
}

/// Kills the peer if a test fails half-way.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn uri(s: &str) -> MsrpUri {
    s.parse().unwrap()
}

fn next_event(lines: &mut impl Iterator<Item = std::io::Result<String>>) -> Value {
    let line = lines
        .next()
        .expect("peer closed stdout early")
        .expect("read peer stdout");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad JSON line {line:?}: {e}"))
}

fn frames_for_python() -> Vec<Frame> {
    let a = uri("msrp://alice.example.com:7777/ali;tcp");
    let b = uri("msrps://[2001:db8::1]/b0b+=x;tcp;k=v");
    let mut out = Vec::new();
    let mut s = Frame::request(
        TransactionId::new("tx0001").unwrap(),
        Method::Send,
        vec![b.clone(), uri("msrp://relay.example.net:2855/r;tcp")],
        vec![a.clone()],
    );
    s.message_id = Some(MessageId::new("m-1").unwrap());
    s.byte_range = Some("1-*/*".parse().unwrap());
    s.success_report = Some(SuccessReport::Yes);
    s.failure_report = Some(FailureReport::Partial);
    s.other_headers.push(Header {
        name: "Content-Disposition".into(),
        value: "inline".into(),
    });
    s.body = Some(Body {
        content_type: "message/cpim".into(),
        data: Bytes::from_static(
            b"From: <sip:a@x>\r\n\r\nline\r\n-------tx0001x\r\n-------tx0001\r\n\x00\xff",
        ),
    });
    s.flag = ContinuationFlag::More;
    out.push(s.clone());
    out.push(response_to(&s, StatusCode::STOP_SENDING, None).unwrap());
    out.push(success_report(&s, TransactionId::new("rp0001").unwrap(), 9).unwrap());
    let mut empty = Frame::request(
        TransactionId::new("tx0002").unwrap(),
        Method::Send,
        vec![b],
        vec![a],
    );
    empty.message_id = Some(MessageId::new("m-2").unwrap());
    out.push(empty.clone());
    empty.transaction_id = TransactionId::new("tx0003").unwrap();
    empty.body = Some(Body {
        content_type: "text/plain".into(),
        data: Bytes::new(),
    });
    empty.flag = ContinuationFlag::Aborted;
    out.push(empty);
    out
}

#[test]
fn python_peer_parses_frames_we_encode() {
    let frames = frames_for_python();
    let mut wire = Vec::new();
    for f in &frames {
        encode(f, &mut wire).unwrap();
    }
    let mut child = Peer(
        python(&["parse"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn python3"),
    );
    child.0.stdin.take().unwrap().write_all(&wire).unwrap();
    let mut out = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let status = child.0.wait().unwrap();
    assert!(status.success(), "python parse failed: {out}");
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), frames.len(), "{out}");
    for (f, e) in frames.iter().zip(&events) {
        assert_eq!(e["tid"], f.transaction_id.as_str());
        assert_eq!(e["flag"], (f.flag.as_byte() as char).to_string());
        match &f.kind {
            FrameKind::Request(m) => assert_eq!(e["method"], m.as_str()),
            FrameKind::Response { code, comment } => {
                assert_eq!(e["code"], code.0);
                assert_eq!(e["comment"].as_str(), comment.as_deref());
            }
        }
        // Header names and values in wire order, as the Python side saw them.
        let headers: Vec<(String, String)> = e["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h[0].as_str().unwrap().to_owned(),
                    h[1].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let path = |p: &[MsrpUri]| {
            p.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(headers[0], ("To-Path".into(), path(&f.to_path)));
        assert_eq!(headers[1], ("From-Path".into(), path(&f.from_path)));
        let find = |n: &str| headers.iter().find(|h| h.0 == n).map(|h| h.1.clone());
        assert_eq!(
            find("Message-ID"),
            f.message_id.as_ref().map(|m| m.to_string())
        );
        assert_eq!(find("Byte-Range"), f.byte_range.map(|r| r.to_string()));
        assert_eq!(find("Status"), f.status.as_ref().map(|s| s.to_string()));
        match &f.body {
            Some(b) => {
                assert_eq!(e["content_type"], b.content_type.as_str());
                let decoded = base64_decode(e["body_b64"].as_str().unwrap());
                assert_eq!(decoded, &b.data[..]);
            }
            None => assert!(e.get("body_b64").is_none()),
        }
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = A.iter().position(|&a| a == c).expect("base64 digit") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Reads frames from `sock` until `want` frames were decoded.
fn read_frames(sock: &mut TcpStream, dec: &mut Decoder, want: usize) -> Vec<Frame> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < want {
        while let Some(r) = dec.poll_frame() {
            got.push(r.expect("python frame decodes"));
        }
        if got.len() >= want {
            break;
        }
        let n = sock.read(&mut buf).expect("read from python peer");
        assert!(n > 0, "python peer closed after {} frames", got.len());
        dec.handle_bytes(&buf[..n]);
    }
    got
}

#[test]
fn we_decode_a_chunked_message_from_the_python_sender() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let ours = format!("msrp://127.0.0.1:{port}/srv1;tcp");
    let theirs = "msrp://127.0.0.1:9/py1;tcp";
    let text = "A message, with\r\n-------dashes and CRLF, cut into 7-byte chunks.";
    let mut child = Peer(
        python(&[
            "send",
            "--connect",
            &format!("127.0.0.1:{port}"),
            "--to-path",
            &ours,
            "--from-path",
            theirs,
            "--data",
            text,
            "--chunk-size",
            "7",
            "--success-report",
            "yes",
            "--timeout",
            "10",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn python3"),
    );
    let (mut sock, _) = listener.accept().unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut dec = Decoder::default();
    let mut re = Reassembler::default();
    let chunks = text.len().div_ceil(7);
    let frames = read_frames(&mut sock, &mut dec, chunks);
    let mut message = None;
    for f in &frames {
        assert_eq!(f.method(), Some(&Method::Send));
        assert_eq!(f.to_path, vec![uri(&ours)]);
        assert_eq!(f.effective_success_report(), SuccessReport::Yes);
        let resp = response_to(f, StatusCode::OK, None).unwrap();
        sock.write_all(&encode_to_vec(&resp).unwrap()).unwrap();
        if let ReassemblyOutcome::Complete(m) = re.handle_chunk(f).unwrap() {
            message = Some(m);
        }
    }
    let m = message.expect("message complete after the last chunk");
    assert_eq!(&m.data[..], text.as_bytes());
    assert_eq!(m.content_type.as_deref(), Some("text/plain"));
    let report = success_report(
        frames.last().unwrap(),
        TransactionId::from_random(&[7; 10]),
        m.data.len() as u64,
    )
    .unwrap();
    sock.write_all(&encode_to_vec(&report).unwrap()).unwrap();

    let stdout: ChildStdout = child.0.stdout.take().unwrap();
    let events: Vec<Value> = BufReader::new(stdout)
        .lines()
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    let status = child.0.wait().unwrap();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(status.success(), "python sender failed: {events:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "response").count(), chunks);
    assert!(
        events
            .iter()
            .filter(|e| e["event"] == "response")
            .all(|e| e["code"] == 200 && e["to_path"] == theirs)
    );
    let rep = events.iter().find(|e| e["event"] == "report").unwrap();
    assert_eq!(
        rep["byte_range"],
        format!("1-{}/{}", text.len(), text.len())
    );
    assert_eq!(rep["status"], "000 200 OK");
    assert_eq!(kinds.last(), Some(&"done"));
}

#[test]
fn python_receiver_reassembles_what_we_chunk() {
    let mut child = Peer(
        python(&["recv", "--listen", "127.0.0.1:0", "--timeout", "10"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn python3"),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let listening = next_event(&mut lines);
    assert_eq!(listening["event"], "listening");
    let port = listening["port"].as_u64().unwrap();
    let mut sock = TcpStream::connect(("127.0.0.1", port as u16)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let data: Vec<u8> = (0..3000u32)
        .map(|i| b"\r\n-MSRP $#+"[(i % 11) as usize] ^ (i / 11 % 2) as u8)
        .collect();
    let theirs = format!("msrp://127.0.0.1:{port}/py2;tcp");
    let ours = "msrp://127.0.0.1:9/rs2;tcp";
    let mut tpl = Frame::request(
        TransactionId::new("tpl00000").unwrap(),
        Method::Send,
        vec![uri(&theirs)],
        vec![uri(ours)],
    );
    tpl.message_id = Some(MessageId::from_random(&[3; 10]));
    tpl.success_report = Some(SuccessReport::Yes);
    let mut chunker = Chunker::new(
        tpl,
        "application/octet-stream".into(),
        Bytes::from(data.clone()),
        1000,
    );
    let mut tids = Vec::new();
    let mut n = 0u8;
    while let Some(f) = chunker.next_chunk(TransactionId::from_random(&[n; 10])) {
        n += 1;
        tids.push(f.transaction_id.clone());
        sock.write_all(&encode_to_vec(&f).unwrap()).unwrap();
    }
    assert_eq!(tids.len(), 3);
    let mut dec = Decoder::default();
    let frames = read_frames(&mut sock, &mut dec, 4);
    for (f, tid) in frames[..3].iter().zip(&tids) {
        assert_eq!(&f.transaction_id, tid);
        assert_eq!(f.status_code(), Some(StatusCode::OK));
        assert_eq!(f.to_path, vec![uri(ours)]);
        assert_eq!(f.from_path, vec![uri(&theirs)]);
    }
    let rep = &frames[3];
    assert_eq!(rep.method(), Some(&Method::Report));
    assert_eq!(rep.byte_range.unwrap().to_string(), "1-3000/3000");
    assert_eq!(rep.status.as_ref().unwrap().code, StatusCode::OK);
    drop(sock);

    let mut message = None;
    for l in lines {
        let e: Value = serde_json::from_str(&l.unwrap()).unwrap();
        if e["event"] == "message" {
            message = Some(e);
        }
    }
    let status = child.0.wait().unwrap();
    assert!(status.success());
    let m = message.expect("python reported the message");
    assert_eq!(m["length"], 3000);
    assert_eq!(m["content_type"], "application/octet-stream");
    assert_eq!(base64_decode(m["data_b64"].as_str().unwrap()), data);
}

//! MSRP codec: exact wire bytes, decoding at every split point, faults and recovery.

use bytes::Bytes;
use im_runtime::proto::msrp::*;

const ALICE: &str = "msrp://atlanta.example.com:7654/jshA7weztas;tcp";
const BOB: &str = "msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp";

fn uri(s: &str) -> MsrpUri {
    s.parse().unwrap()
}

fn tid(s: &str) -> TransactionId {
    TransactionId::new(s).unwrap()
}

fn send(t: &str, body: &[u8]) -> Frame {
    let mut f = Frame::request(tid(t), Method::Send, vec![uri(BOB)], vec![uri(ALICE)]);
    f.message_id = Some(MessageId::new("87652491").unwrap());
    let n = body.len() as u64;
    f.byte_range = Some(ByteRange {
        start: 1,
        end: Some(n),
        total: Some(n),
    });
    f.body = Some(Body {
        content_type: "text/plain".into(),
        data: Bytes::copy_from_slice(body),
    });
    f
}

const RFC_SEND: &[u8] = b"MSRP a786hjs2 SEND\r\n\
To-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp\r\n\
From-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp\r\n\
Message-ID: 87652491\r\n\
Byte-Range: 1-25/25\r\n\
Content-Type: text/plain\r\n\
\r\n\
Hey Bob, are you there?\r\n\
\r\n\
-------a786hjs2$\r\n";

fn decode_all(chunks: &[&[u8]]) -> Vec<Result<Frame, DecodeError>> {
    let mut d = Decoder::default();
    let mut out = Vec::new();
    for c in chunks {
        d.handle_bytes(c);
        while let Some(r) = d.poll_frame() {
            out.push(r);
        }
    }
    out
}

#[test]
fn decodes_the_rfc_send_example() {
    let f = decode_one(RFC_SEND).unwrap();
    assert_eq!(f.transaction_id.as_str(), "a786hjs2");
    assert_eq!(f.method(), Some(&Method::Send));
    assert_eq!(f.to_path, vec![uri(BOB)]);
    assert_eq!(f.from_path, vec![uri(ALICE)]);
    assert_eq!(f.message_id.as_ref().unwrap().as_str(), "87652491");
    assert_eq!(f.byte_range.unwrap().to_string(), "1-25/25");
    assert_eq!(f.data(), b"Hey Bob, are you there?\r\n");
    assert_eq!(f.body.as_ref().unwrap().content_type, "text/plain");
    assert_eq!(f.flag, ContinuationFlag::End);
    assert_eq!(f.effective_failure_report(), FailureReport::Yes);
    assert_eq!(f.effective_success_report(), SuccessReport::No);
    // And it encodes back to the very same bytes.
    assert_eq!(encode_to_vec(&f).unwrap(), RFC_SEND);
}

#[test]
fn encodes_exact_bytes_for_send_response_and_report() {
    let mut f = send("a786hjs2", b"Hi");
    f.success_report = Some(SuccessReport::Yes);
    f.failure_report = Some(FailureReport::Partial);
    f.other_headers.push(Header {
        name: "Content-ID".into(),
        value: "<x@y>".into(),
    });
    assert_eq!(
        String::from_utf8(encode_to_vec(&f).unwrap()).unwrap(),
        "MSRP a786hjs2 SEND\r\nTo-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp\r\n\
         From-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp\r\nMessage-ID: 87652491\r\n\
         Byte-Range: 1-2/2\r\nSuccess-Report: yes\r\nFailure-Report: partial\r\n\
         Content-ID: <x@y>\r\nContent-Type: text/plain\r\n\r\nHi\r\n-------a786hjs2$\r\n"
    );

    let resp = response_to(&f, StatusCode::OK, None).unwrap();
    assert_eq!(
        String::from_utf8(encode_to_vec(&resp).unwrap()).unwrap(),
        "MSRP a786hjs2 200 OK\r\nTo-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp\r\n\
         From-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp\r\n-------a786hjs2$\r\n"
    );
    let resp = response_to(&f, StatusCode(499), Some("Odd")).unwrap();
    assert!(
        encode_to_vec(&resp)
            .unwrap()
            .starts_with(b"MSRP a786hjs2 499 Odd\r\n")
    );

    let rep = success_report(&f, tid("dkei38sd"), 2).unwrap();
    assert_eq!(
        String::from_utf8(encode_to_vec(&rep).unwrap()).unwrap(),
        "MSRP dkei38sd REPORT\r\nTo-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp\r\n\
         From-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp\r\nMessage-ID: 87652491\r\n\
         Byte-Range: 1-2/2\r\nStatus: 000 200 OK\r\n-------dkei38sd$\r\n"
    );
    let fail = failure_report(&f, tid("dkei38se"), StatusCode::STOP_SENDING).unwrap();
    assert_eq!(
        fail.status.as_ref().unwrap().to_string(),
        "000 413 Stop Sending Message"
    );
    // REPORTs are never answered, responses neither.
    assert!(response_to(&rep, StatusCode::OK, None).is_none());
    assert!(response_to(&resp, StatusCode::OK, None).is_none());
    assert!(success_report(&rep, tid("abcd1234"), 1).is_none());
}

#[test]
fn response_to_multi_hop_request_goes_to_previous_hop() {
    let relay = uri("msrp://relay.example.net:2855/r1;tcp");
    let mut f = send("tid00001", b"x");
    f.from_path = vec![relay.clone(), uri(ALICE)];
    let r = response_to(&f, StatusCode::OK, None).unwrap();
    assert_eq!(r.to_path, vec![relay.clone()]);
    assert_eq!(r.from_path, vec![uri(BOB)]);
    let rep = success_report(&f, tid("tid00002"), 1).unwrap();
    assert_eq!(rep.to_path, vec![relay, uri(ALICE)]);
}

#[test]
fn encoder_refuses_frames_it_cannot_write_faithfully() {
    let f = send("abcd", b"x\r\n-------abcd$\r\ny");
    assert_eq!(
        encode_to_vec(&f),
        Err(EncodeError::BodyContainsEndLine(tid("abcd")))
    );
    // The trailing CRLF the encoder adds would complete an end-line at the body's end.
    assert!(encode_to_vec(&send("abcd", b"x\r\n-------abcd+")).is_err());
    // Near misses are fine and survive a round trip.
    for body in [
        &b"x\r\n-------abcdX\r\n"[..],
        b"-------abcd$\r\n",
        b"x\r\n-------abcd",
        b"x\n-------abcd$\r\n",
        b"\r\n",
        b"",
    ] {
        let f = send("abcd", body);
        let bytes = encode_to_vec(&f).unwrap();
        assert_eq!(decode_one(&bytes).unwrap(), f, "{body:?}");
    }
    let mut f = send("abcd", b"x");
    f.other_headers.push(Header {
        name: "X-A".into(),
        value: "a\r\nb".into(),
    });
    assert!(matches!(encode_to_vec(&f), Err(EncodeError::LineBreak(_))));
    let mut f = send("abcd", b"x");
    f.other_headers.push(Header {
        name: "message-id".into(),
        value: "a".into(),
    });
    assert!(matches!(
        encode_to_vec(&f),
        Err(EncodeError::ReservedHeader(_))
    ));
    let mut f = send("abcd", b"x");
    f.to_path.clear();
    assert_eq!(encode_to_vec(&f), Err(EncodeError::EmptyPath("To-Path")));
}

/// A stream of varied frames: chunked SEND, a body with near-end-lines, a response with a
/// comment, a REPORT, an empty binding SEND, an unknown method, a bodiless response.
fn varied_frames() -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut c1 = send("chunk0001", b"first half ");
    c1.byte_range = Some(ByteRange {
        start: 1,
        end: Some(11),
        total: None,
    });
    c1.flag = ContinuationFlag::More;
    frames.push(c1);
    let mut c2 = send(
        "chunk0002",
        b"second\r\n-------chunk0002x\r\n-------chunk0001$\r\n",
    );
    c2.byte_range = Some(ByteRange {
        start: 12,
        end: None,
        total: None,
    });
    frames.push(c2);
    let mut r = response_to(&frames[0], StatusCode::OK, None).unwrap();
    r.transaction_id = tid("resp0001");
    frames.push(r);
    frames.push(success_report(&frames[0], tid("rep00001"), 42).unwrap());
    let mut empty = Frame::request(
        tid("bind0001"),
        Method::Send,
        vec![uri(BOB)],
        vec![uri(ALICE)],
    );
    empty.message_id = Some(MessageId::new("m1").unwrap());
    frames.push(empty);
    let mut auth = Frame::request(
        tid("auth0001"),
        Method::Other("AUTH".into()),
        vec![uri("msrps://relay.example.net;tcp")],
        vec![uri("msrps://[2001:db8::7]:9000/xyz;tcp")],
    );
    auth.other_headers.push(Header {
        name: "Authorization".into(),
        value: "Digest username=\"a\"".into(),
    });
    frames.push(auth);
    let mut big = send("big00001", &[0u8, 13, 10, 45, 255, 0].repeat(50));
    big.body.as_mut().unwrap().content_type = "application/octet-stream".into();
    frames.push(big);
    let mut aborted = send("abort001", b"");
    aborted.flag = ContinuationFlag::Aborted;
    frames.push(aborted);
    frames
}

fn stream(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        encode(f, &mut out).unwrap();
    }
    out
}

#[test]
fn decodes_a_stream_cut_at_every_position() {
    let frames = varied_frames();
    let bytes = stream(&frames);
    let whole: Vec<Frame> = decode_all(&[&bytes])
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(whole, frames);
    for cut in 0..=bytes.len() {
        let got = decode_all(&[&bytes[..cut], &bytes[cut..]]);
        let got: Vec<Frame> = got.into_iter().map(Result::unwrap).collect();
        assert_eq!(got, frames, "cut at {cut}");
    }
    for cut in (0..bytes.len()).step_by(11) {
        for cut2 in (cut..=bytes.len()).step_by(17) {
            let got = decode_all(&[&bytes[..cut], &bytes[cut..cut2], &bytes[cut2..]]);
            assert_eq!(got.len(), frames.len(), "cuts {cut} {cut2}");
            assert!(got.iter().all(Result::is_ok));
        }
    }
}

#[test]
fn decodes_a_stream_fed_byte_by_byte() {
    let frames = varied_frames();
    let bytes = stream(&frames);
    let pieces: Vec<&[u8]> = bytes.chunks(1).collect();
    let mut d = Decoder::default();
    let mut got = Vec::new();
    for p in pieces {
        d.handle_bytes(p);
        while let Some(r) = d.poll_frame() {
            got.push(r.unwrap());
        }
        // Never more than one frame plus its end-line is held.
        assert!(d.buffered() < 600, "buffered {}", d.buffered());
    }
    assert_eq!(got, frames);
    assert!(d.is_idle());
}

#[test]
fn accepts_lenient_forms() {
    // Extra blanks around header values, lower-case header names, CRLFs between frames,
    // Content-Type not last, unknown headers kept in order.
    let text =
        b"\r\n\r\nMSRP abcd SEND\r\nto-path:  msrp://h/s;tcp \r\nFROM-PATH: msrp://g/t;tcp\r\n\
Content-Type: text/plain\r\nmessage-id: m1\r\nX-Foo: 1\r\nX-Bar: 2\r\n\r\nhi\r\n-------abcd$\r\n";
    let f = decode_one(text).unwrap();
    assert_eq!(f.data(), b"hi");
    assert_eq!(f.header("x-foo"), Some("1"));
    assert_eq!(f.other_headers.len(), 2);
    assert_eq!(f.other_headers[1].name, "X-Bar");
    // A Content-Type without a content section is kept as an empty body.
    let text = b"MSRP abcd SEND\r\nTo-Path: msrp://h/s;tcp\r\nFrom-Path: msrp://g/t;tcp\r\n\
Message-ID: m1\r\nContent-Type: text/plain\r\n-------abcd+\r\n";
    let f = decode_one(text).unwrap();
    assert_eq!(f.body.as_ref().unwrap().data.len(), 0);
    assert_eq!(f.flag, ContinuationFlag::More);
}

const OK_FRAME: &[u8] =
    b"MSRP good0001 200 OK\r\nTo-Path: msrp://h/s;tcp\r\nFrom-Path: msrp://g/t;tcp\r\n-------good0001$\r\n";

/// Feeds `bad` then a valid frame, whole and byte by byte; expects exactly one error with
/// `kind`, then the valid frame.
fn fault_then_recovery(bad: &[u8], kind: DecodeErrorKind) -> DecodeError {
    let mut all = bad.to_vec();
    all.extend_from_slice(OK_FRAME);
    let mut results = Vec::new();
    for whole in [true, false] {
        let pieces: Vec<&[u8]> = if whole {
            vec![&all[..]]
        } else {
            all.chunks(1).collect()
        };
        let got = decode_all(&pieces);
        assert_eq!(got.len(), 2, "{:?}: {got:?}", String::from_utf8_lossy(bad));
        let err = got[0].clone().unwrap_err();
        assert_eq!(err.kind, kind);
        assert_eq!(got[1].as_ref().unwrap().transaction_id.as_str(), "good0001");
        results.push(err);
    }
    assert_eq!(
        results[0], results[1],
        "error independent of how bytes arrive"
    );
    results.remove(0)
}

#[test]
fn faults_are_typed_located_and_recovered_from() {
    let head = "MSRP bad00001 SEND\r\nTo-Path: msrp://h/s;tcp\r\nFrom-Path: msrp://g/t;tcp\r\n";
    let e = fault_then_recovery(
        format!("{head}Message-ID: m1\r\nByte-Range: 0-3/3\r\nContent-Type: text/plain\r\n\r\nabc\r\n-------bad00001$\r\n").as_bytes(),
        DecodeErrorKind::HeaderValue { header: "Byte-Range", error: ValueError::ByteRange },
    );
    assert_eq!(e.offset, (head.len() + "Message-ID: m1\r\n".len()) as u64);
    assert_eq!(e.status_code(), StatusCode::BAD_REQUEST);
    let r = e.response().unwrap();
    assert_eq!(r.transaction_id.as_str(), "bad00001");
    assert_eq!(r.status_code(), Some(StatusCode(400)));
    assert_eq!(r.to_path, vec![uri("msrp://g/t;tcp")]);
    assert_eq!(r.from_path, vec![uri("msrp://h/s;tcp")]);

    fault_then_recovery(
        format!("{head}Content-Type: text/plain\r\n\r\nabc\r\n-------bad00001$\r\n").as_bytes(),
        DecodeErrorKind::MissingHeader("Message-ID"),
    );
    fault_then_recovery(
        format!("{head}Message-ID: m1\r\nMessage-ID: m2\r\n-------bad00001$\r\n").as_bytes(),
        DecodeErrorKind::DuplicateHeader("Message-ID"),
    );
    fault_then_recovery(
        format!("{head}Message-ID: m1\r\n\r\nabc\r\n-------bad00001$\r\n").as_bytes(),
        DecodeErrorKind::MissingHeader("Content-Type"),
    );
    fault_then_recovery(
        format!("{head}Message-ID: m1\r\nno colon here\r\n-------bad00001$\r\n").as_bytes(),
        DecodeErrorKind::HeaderLine,
    );
    let mut bad = format!("{head}Message-ID: m1\r\nX: ").into_bytes();
    bad.extend_from_slice(b"\xff\r\n-------bad00001$\r\n");
    let e = fault_then_recovery(&bad, DecodeErrorKind::NotUtf8);
    assert_eq!(
        e.offset,
        (head.len() + "Message-ID: m1\r\nX: ".len()) as u64
    );
    let e = fault_then_recovery(
        format!("{head}Message-ID: m1\r\n-------bad00002$\r\n").as_bytes(),
        DecodeErrorKind::EndLine,
    );
    assert!(e.response().is_some());
    fault_then_recovery(
        b"MSRP bad00001 200 OK\r\nTo-Path: msrp://h/s;tcp\r\nFrom-Path: msrp://g/t;tcp\r\n-------bad00001+\r\n",
        DecodeErrorKind::ResponseFlag,
    );
    // Garbage with no transaction id: one error, then resynchronisation on `MSRP `.
    let e = fault_then_recovery(
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        DecodeErrorKind::StartLine("does not start with `MSRP `"),
    );
    assert_eq!(e.offset, 0);
    assert!(e.response().is_none());
    fault_then_recovery(
        b"MSRP x y z\r\nmore junk\r\n",
        DecodeErrorKind::StartLine("text after the method"),
    );
    fault_then_recovery(
        b"MSRP -x SEND\r\n",
        DecodeErrorKind::StartLine("invalid transaction id"),
    );
    fault_then_recovery(
        &[0xde, 0xad, 0xbe, 0xef, 0, 1, 2, b'\r', b'\n'],
        DecodeErrorKind::StartLine("does not start with `MSRP `"),
    );
}

#[test]
fn limits_give_typed_errors_and_bounded_memory() {
    let limits = DecoderLimits {
        max_header_bytes: 200,
        max_body_bytes: 100,
    };
    // A body over the limit: 413 with a response, the rest skipped without buffering it all.
    let mut d = Decoder::new(limits);
    d.handle_bytes(
        b"MSRP big00001 SEND\r\nTo-Path: msrp://h/s;tcp\r\nFrom-Path: msrp://g/t;tcp\r\n\
Message-ID: m1\r\nContent-Type: text/plain\r\n\r\n",
    );
    assert!(d.poll_frame().is_none());
    let mut errors = Vec::new();
    for _ in 0..1000 {
        d.handle_bytes(&[b'a'; 100]);
        while let Some(r) = d.poll_frame() {
            errors.push(r.unwrap_err());
        }
        assert!(d.buffered() < 400, "buffered {}", d.buffered());
    }
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].kind, DecodeErrorKind::BodyTooLarge { limit: 100 });
    assert_eq!(errors[0].status_code(), StatusCode::STOP_SENDING);
    let resp = errors[0].response().unwrap();
    assert_eq!(resp.status_code(), Some(StatusCode(413)));
    d.handle_bytes(b"\r\n-------big00001$\r\n");
    d.handle_bytes(OK_FRAME);
    assert_eq!(
        d.poll_frame().unwrap().unwrap().transaction_id.as_str(),
        "good0001"
    );

    // A body over the limit that arrives whole.
    let mut d = Decoder::new(limits);
    let mut f = Frame::request(
        tid("big00002"),
        Method::Send,
        vec![uri("msrp://h/s;tcp")],
        vec![uri("msrp://g/t;tcp")],
    );
    f.message_id = Some(MessageId::new("m1").unwrap());
    f.body = Some(Body {
        content_type: "text/plain".into(),
        data: Bytes::from(vec![b'z'; 101]),
    });
    d.handle_bytes(&encode_to_vec(&f).unwrap());
    d.handle_bytes(OK_FRAME);
    let e = d.poll_frame().unwrap().unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::BodyTooLarge { limit: 100 });
    assert!(d.poll_frame().unwrap().is_ok());
    // Exactly at the limit is fine.
    f.body.as_mut().unwrap().data = Bytes::from(vec![b'z'; 100]);
    d.handle_bytes(&encode_to_vec(&f).unwrap());
    assert!(d.poll_frame().unwrap().is_ok());

    // Headers over the limit, with and without a complete start line.
    let mut d = Decoder::new(limits);
    d.handle_bytes(b"MSRP hdr00001 SEND\r\n");
    for _ in 0..100 {
        d.handle_bytes(b"X-Pad: 0123456789\r\n");
    }
    let e = d.poll_frame().unwrap().unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::HeadersTooLarge { limit: 200 });
    assert_eq!(
        e.context.as_ref().unwrap().transaction_id.as_str(),
        "hdr00001"
    );
    d.handle_bytes(b"-------hdr00001$\r\n");
    d.handle_bytes(OK_FRAME);
    assert!(d.poll_frame().unwrap().is_ok());
    let mut d = Decoder::new(limits);
    d.handle_bytes(b"MSRP ");
    d.handle_bytes(&[b'a'; 300]);
    let e = d.poll_frame().unwrap().unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::HeadersTooLarge { limit: 200 });
    assert!(e.context.is_none());
}

#[test]
fn report_and_failure_report_no_get_no_error_response() {
    let e = decode_one(
        b"MSRP rep00001 REPORT\r\nTo-Path: msrp://h/s;tcp\r\nFrom-Path: msrp://g/t;tcp\r\n\
Message-ID: m1\r\n-------rep00001$\r\n",
    )
    .unwrap_err();
    let DecodeOneError::Decode(e) = e else {
        panic!("{e:?}")
    };
    assert_eq!(e.kind, DecodeErrorKind::MissingHeader("Status"));
    assert!(e.response().is_none());
    let e = decode_one(
        b"MSRP snd00001 SEND\r\nTo-Path: msrp://h/s;tcp\r\nFrom-Path: msrp://g/t;tcp\r\n\
Failure-Report: no\r\nMessage-ID: m1\r\nByte-Range: x\r\n-------snd00001$\r\n",
    )
    .unwrap_err();
    let DecodeOneError::Decode(e) = e else {
        panic!("{e:?}")
    };
    assert!(e.response().is_none());
    assert_eq!(
        decode_one(OK_FRAME).map(|f| f.flag),
        Ok(ContinuationFlag::End)
    );
    assert_eq!(decode_one(&OK_FRAME[..20]), Err(DecodeOneError::Incomplete));
}

/// Found by the `msrp` fuzz target: a header line that begins with seven dashes but is far
/// longer than any end-line used to end the head when its CRLF was in the buffer, and to
/// fail the head as too large when the bytes came in small pieces. Either way it is now a
/// header line, and the head too large.
#[test]
fn a_long_line_of_dashes_is_no_end_line_however_the_stream_is_cut() {
    let mut wire =
        b"MSRP a786hjs2 SEND\r\nTo-Path: msrp://biloxi.example.com/s;tcp\r\n-------".to_vec();
    wire.extend(std::iter::repeat_n(b'x', 20_000));
    wire.extend_from_slice(b"\r\n\r\n");
    let whole = decode_all(&[&wire]);
    let pieces: Vec<&[u8]> = wire.chunks(4).collect();
    let cut = decode_all(&pieces);
    assert_eq!(whole, cut);
    assert!(
        matches!(
            whole.first(),
            Some(Err(DecodeError {
                kind: DecodeErrorKind::HeadersTooLarge { .. },
                ..
            }))
        ),
        "{whole:?}"
    );
}

//! MSRP chunking: the chunker's ranges and flags, reassembly in and out of order,
//! interruption, overlap, limits.

use bytes::Bytes;
use im_runtime::proto::msrp::*;

fn uri(s: &str) -> MsrpUri {
    s.parse().unwrap()
}

fn template(mid: &str) -> Frame {
    let mut f = Frame::request(
        TransactionId::new("template").unwrap(),
        Method::Send,
        vec![uri("msrp://h/s;tcp")],
        vec![uri("msrp://g/t;tcp")],
    );
    f.message_id = Some(MessageId::new(mid).unwrap());
    f
}

fn chunks(mid: &str, data: &[u8], size: usize) -> Vec<Frame> {
    let mut c = Chunker::new(
        template(mid),
        "text/plain".into(),
        Bytes::copy_from_slice(data),
        size,
    );
    let mut out = Vec::new();
    let mut n = 0u64;
    while let Some(f) = c.next_chunk(TransactionId::from_random(&[n as u8; 10])) {
        n += 1;
        out.push(f);
    }
    out
}

fn message_data(data: &[u8]) -> Vec<u8> {
    (0..data.len()).map(|i| data[i]).collect()
}

#[test]
fn chunker_sets_ranges_and_flags() {
    let data = b"0123456789abcdefghij";
    let cs = chunks("m1", data, 8);
    let ranges: Vec<String> = cs
        .iter()
        .map(|f| f.byte_range.unwrap().to_string())
        .collect();
    assert_eq!(ranges, ["1-8/20", "9-16/20", "17-20/20"]);
    let flags: Vec<ContinuationFlag> = cs.iter().map(|f| f.flag).collect();
    assert_eq!(
        flags,
        [
            ContinuationFlag::More,
            ContinuationFlag::More,
            ContinuationFlag::End
        ]
    );
    assert_eq!(cs[1].data(), b"89abcdef");
    assert!(
        cs.iter()
            .all(|f| f.message_id.as_ref().unwrap().as_str() == "m1")
    );
    // Each chunk has its own transaction id and survives the wire.
    assert_ne!(cs[0].transaction_id, cs[1].transaction_id);
    for f in &cs {
        assert_eq!(&decode_one(&encode_to_vec(f).unwrap()).unwrap(), f);
    }
    // Exact multiple, single chunk, empty message, zero chunk size.
    assert_eq!(chunks("m", &[7; 16], 8).len(), 2);
    assert_eq!(chunks("m", &[7; 16], 100).len(), 1);
    let empty = chunks("m", b"", 8);
    assert_eq!(empty.len(), 1);
    assert_eq!(empty[0].byte_range.unwrap().to_string(), "1-0/0");
    assert_eq!(chunks("m", b"abc", 0).len(), 3);
}

#[test]
fn reassembles_in_order_and_out_of_order() {
    let data: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let cs = chunks("m1", &data, 700);
    let orders: Vec<Vec<usize>> = vec![
        (0..cs.len()).collect(),
        (0..cs.len()).rev().collect(),
        vec![3, 0, 7, 1, 6, 2, 5, 4],
    ];
    for order in orders {
        assert_eq!(order.len(), cs.len());
        let mut r = Reassembler::default();
        for (i, &k) in order.iter().enumerate() {
            let out = r.handle_chunk(&cs[k]).unwrap();
            if i + 1 < order.len() {
                assert!(
                    matches!(out, ReassemblyOutcome::Incomplete { .. }),
                    "{out:?}"
                );
            } else {
                let ReassemblyOutcome::Complete(m) = out else {
                    panic!("{out:?}")
                };
                assert_eq!(&m.data[..], &message_data(&data)[..]);
                assert_eq!(m.content_type.as_deref(), Some("text/plain"));
                assert_eq!(m.received, vec![(0, 5000)]);
            }
        }
        assert_eq!(r.in_progress(), 0);
    }
}

fn chunk(mid: &str, range: &str, body: &[u8], flag: ContinuationFlag) -> Frame {
    let mut f = template(mid);
    f.byte_range = Some(range.parse().unwrap());
    f.body = Some(Body {
        content_type: "text/plain".into(),
        data: Bytes::copy_from_slice(body),
    });
    f.flag = flag;
    f
}

#[test]
fn unknown_totals_overlaps_and_duplicates() {
    use ContinuationFlag::*;
    let mut r = Reassembler::default();
    // Totals unknown until the last chunk; the last arrives first.
    assert!(matches!(
        r.handle_chunk(&chunk("m2", "7-*/*", b"world", End))
            .unwrap(),
        ReassemblyOutcome::Incomplete { received: 5, .. }
    ));
    assert!(matches!(
        r.handle_chunk(&chunk("m2", "1-4/*", b"hell", More))
            .unwrap(),
        ReassemblyOutcome::Incomplete { received: 9, .. }
    ));
    // Duplicate of the first chunk changes nothing.
    assert!(matches!(
        r.handle_chunk(&chunk("m2", "1-4/*", b"hell", More))
            .unwrap(),
        ReassemblyOutcome::Incomplete { received: 9, .. }
    ));
    // Overlapping chunk fills the gap.
    let ReassemblyOutcome::Complete(m) = r
        .handle_chunk(&chunk("m2", "3-6/*", b"llo ", More))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(&m.data[..], b"hello world");

    // Two messages interleaved.
    let a = chunks("ma", b"aaaaaaaaaa", 3);
    let b = chunks("mb", b"bbbbbbb", 3);
    let mut done = Vec::new();
    for i in 0..a.len().max(b.len()) {
        for cs in [&a, &b] {
            if let Some(f) = cs.get(i)
                && let ReassemblyOutcome::Complete(m) = r.handle_chunk(f).unwrap()
            {
                done.push((m.message_id.as_str().to_owned(), m.data));
            }
        }
    }
    assert_eq!(
        done,
        vec![
            ("mb".to_owned(), Bytes::from_static(b"bbbbbbb")),
            ("ma".to_owned(), Bytes::from_static(b"aaaaaaaaaa"))
        ]
    );
}

#[test]
fn aborted_messages_report_what_arrived() {
    use ContinuationFlag::*;
    let mut r = Reassembler::default();
    r.handle_chunk(&chunk("m3", "1-5/20", b"abcde", More))
        .unwrap();
    r.handle_chunk(&chunk("m3", "11-15/20", b"klmno", More))
        .unwrap();
    let ReassemblyOutcome::Aborted(m) = r
        .handle_chunk(&chunk("m3", "16-15/20", b"", Aborted))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(m.received, vec![(0, 5), (10, 15)]);
    assert_eq!(&m.data[..5], b"abcde");
    assert_eq!(r.in_progress(), 0);
    // The chunker's abort produces such a chunk.
    let mut c = Chunker::new(
        template("m4"),
        "text/plain".into(),
        Bytes::from_static(b"0123456789"),
        4,
    );
    let first = c.next_chunk(TransactionId::new("t1").unwrap()).unwrap();
    let abort = c.abort(TransactionId::new("t2").unwrap()).unwrap();
    assert_eq!(abort.byte_range.unwrap().to_string(), "5-4/10");
    assert_eq!(abort.flag, Aborted);
    assert!(c.next_chunk(TransactionId::new("t3").unwrap()).is_none());
    r.handle_chunk(&first).unwrap();
    assert!(matches!(
        r.handle_chunk(&abort).unwrap(),
        ReassemblyOutcome::Aborted(Message { ref received, .. }) if received == &[(0, 4)]
    ));
    // Connection loss: partial messages are handed back.
    r.handle_chunk(&chunk("m5", "1-2/4", b"ab", More)).unwrap();
    let left = r.abort_all();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].received, vec![(0, 2)]);
}

#[test]
fn single_sends_and_empty_sends() {
    let mut r = Reassembler::default();
    let mut f = template("m6");
    f.body = Some(Body {
        content_type: "message/cpim".into(),
        data: Bytes::from_static(b"whole"),
    });
    let ReassemblyOutcome::Complete(m) = r.handle_chunk(&f).unwrap() else {
        panic!()
    };
    assert_eq!(&m.data[..], b"whole");
    assert_eq!(m.content_type.as_deref(), Some("message/cpim"));
    let ReassemblyOutcome::Complete(m) = r.handle_chunk(&template("m7")).unwrap() else {
        panic!()
    };
    assert!(m.data.is_empty());
    assert_eq!(m.content_type, None);
}

#[test]
fn inconsistent_chunks_and_limits_are_errors_with_status() {
    use ContinuationFlag::*;
    let mut r = Reassembler::new(ReassemblyLimits {
        max_message_bytes: 100,
        max_messages_in_progress: 2,
    });
    let e = r
        .handle_chunk(&chunk("m", "1-5/10", b"abc", More))
        .unwrap_err();
    assert!(matches!(e, ReassemblyError::RangeMismatch { len: 3, .. }));
    assert_eq!(e.status_code(), StatusCode::BAD_REQUEST);
    r.handle_chunk(&chunk("m", "1-3/10", b"abc", More)).unwrap();
    let e = r
        .handle_chunk(&chunk("m", "4-6/12", b"def", More))
        .unwrap_err();
    assert!(matches!(e, ReassemblyError::TotalMismatch(_)));
    assert_eq!(r.in_progress(), 0, "a faulty message is dropped");
    r.handle_chunk(&chunk("m", "1-3/*", b"abc", More)).unwrap();
    let e = r
        .handle_chunk(&chunk("m", "1-2/*", b"ab", End))
        .unwrap_err();
    assert!(
        matches!(e, ReassemblyError::TotalMismatch(_)),
        "a `$` chunk ending before bytes already received"
    );
    r.handle_chunk(&chunk("m", "1-3/*", b"abc", More)).unwrap();
    let mut no_range = template("m");
    no_range.byte_range = None;
    assert!(matches!(
        r.handle_chunk(&no_range),
        Err(ReassemblyError::MissingByteRange(_))
    ));
    let e = r
        .handle_chunk(&chunk("big", "1-3/101", b"abc", More))
        .unwrap_err();
    assert_eq!(e.status_code(), StatusCode::STOP_SENDING);
    let e = r
        .handle_chunk(&chunk("big", "99-101/*", b"abc", More))
        .unwrap_err();
    assert!(matches!(e, ReassemblyError::TooLarge { limit: 100, .. }));
    r.handle_chunk(&chunk("x1", "1-1/5", b"a", More)).unwrap();
    r.handle_chunk(&chunk("x2", "1-1/5", b"a", More)).unwrap();
    let e = r
        .handle_chunk(&chunk("x3", "1-1/5", b"a", More))
        .unwrap_err();
    assert_eq!(e, ReassemblyError::TooManyMessages(2));
    assert_eq!(e.status_code(), StatusCode::STOP_SENDING);
    let mut report = template("x1");
    report.kind = FrameKind::Request(Method::Report);
    assert_eq!(r.handle_chunk(&report), Err(ReassemblyError::NotSend));
}

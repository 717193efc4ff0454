//! Property tests: the decoder never panics or stalls on arbitrary bytes, and generated
//! frames round-trip through encode and decode however the stream is cut.

use bytes::Bytes;
use im_runtime::proto::msrp::*;
use proptest::prelude::*;

fn ident() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9][a-zA-Z0-9.+%=-]{3,31}"
}

fn arb_uri() -> impl Strategy<Value = MsrpUri> {
    (
        any::<bool>(),
        proptest::option::of("[a-z]{1,6}"),
        prop_oneof![
            "[a-z][a-z0-9-]{0,10}(\\.[a-z]{2,5}){0,2}",
            "\\[[0-9a-f:]{2,10}\\]",
            "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        ],
        proptest::option::of(any::<u16>()),
        proptest::option::of("[a-zA-Z0-9+=/_~.-]{1,20}"),
        proptest::collection::vec(("[a-z]{1,5}", proptest::option::of("[a-z0-9]{1,5}")), 0..2),
    )
        .prop_map(|(tls, user, host, port, sid, params)| MsrpUri {
            scheme: if tls { Scheme::Msrps } else { Scheme::Msrp },
            user,
            host,
            port,
            session_id: sid,
            transport: "tcp".into(),
            params,
        })
}

fn arb_range() -> impl Strategy<Value = ByteRange> {
    (
        1u64..1000,
        0u64..1000,
        proptest::option::of(0u64..1000),
        any::<bool>(),
    )
        .prop_map(|(start, len, extra, end_known)| {
            let end = start - 1 + len;
            ByteRange {
                start,
                end: end_known.then_some(end),
                total: extra.map(|x| end + x),
            }
        })
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    let kind = prop_oneof![
        Just(FrameKind::Request(Method::Send)),
        Just(FrameKind::Request(Method::Report)),
        "[A-Z]{1,8}".prop_map(|m| FrameKind::Request(method(&m))),
        (0u16..1000, proptest::option::of("[ -~]{1,20}")).prop_map(|(c, comment)| {
            FrameKind::Response {
                code: StatusCode(c),
                comment: comment
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty()),
            }
        }),
    ];
    (
        ident(),
        kind,
        proptest::collection::vec(arb_uri(), 1..3),
        proptest::collection::vec(arb_uri(), 1..3),
        proptest::option::of(ident()),
        proptest::option::of(arb_range()),
        proptest::option::of(prop_oneof![
            Just(SuccessReport::Yes),
            Just(SuccessReport::No)
        ]),
        proptest::option::of(prop_oneof![
            Just(FailureReport::Yes),
            Just(FailureReport::No),
            Just(FailureReport::Partial)
        ]),
        proptest::option::of((
            0u16..1000,
            0u16..1000,
            proptest::option::of("[a-zA-Z ]{1,10}"),
        )),
        proptest::collection::vec(("X-[A-Za-z0-9-]{1,10}", "[ -~]{0,20}"), 0..3),
        proptest::option::of((
            "(text|application|message)/[a-z0-9.+-]{1,10}",
            proptest::collection::vec(any::<u8>(), 0..300),
        )),
        0u8..3,
    )
        .prop_map(
            |(tid, kind, to, from, mid, range, sr, fr, status, extra, body, flag)| {
                let is_response = matches!(kind, FrameKind::Response { .. });
                let mut f =
                    Frame::request(TransactionId::new(tid).unwrap(), Method::Send, to, from);
                f.kind = kind;
                f.message_id = mid.map(|m| MessageId::new(m).unwrap());
                f.byte_range = range;
                f.success_report = sr;
                f.failure_report = fr;
                f.status = status.map(|(ns, c, comment)| Status {
                    namespace: ns,
                    code: StatusCode(c),
                    comment: comment
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty()),
                });
                f.other_headers = extra
                    .into_iter()
                    .map(|(name, value)| Header {
                        name,
                        value: value.trim().to_owned(),
                    })
                    .collect();
                f.body = body.map(|(ct, data)| Body {
                    content_type: ct,
                    data: Bytes::from(data),
                });
                f.flag = match (is_response, flag) {
                    (true, _) | (_, 0) => ContinuationFlag::End,
                    (_, 1) => ContinuationFlag::More,
                    _ => ContinuationFlag::Aborted,
                };
                // The decoder insists on what RFC 4975 makes mandatory.
                if let FrameKind::Request(Method::Send | Method::Report) = f.kind
                    && f.message_id.is_none()
                {
                    f.message_id = Some(MessageId::new("mid1").unwrap());
                }
                if f.kind == FrameKind::Request(Method::Report) && f.status.is_none() {
                    f.status = Some(Status::new(StatusCode::OK));
                }
                f
            },
        )
}

fn method(s: &str) -> Method {
    match s {
        "SEND" => Method::Send,
        "REPORT" => Method::Report,
        _ => Method::Other(s.to_owned()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn frames_round_trip_however_cut(
        frames in proptest::collection::vec(arb_frame(), 1..4),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let mut wire = Vec::new();
        let mut expected = Vec::new();
        for f in &frames {
            // Skip the (rare) generated bodies that contain their own end-line.
            if encode(f, &mut wire).is_ok() {
                expected.push(f.clone());
            }
        }
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        points.push(0);
        points.push(wire.len());
        points.sort_unstable();
        let mut d = Decoder::new(DecoderLimits { max_header_bytes: 64 * 1024, max_body_bytes: 64 * 1024 });
        let mut got = Vec::new();
        for w in points.windows(2) {
            d.handle_bytes(&wire[w[0]..w[1]]);
            while let Some(r) = d.poll_frame() {
                got.push(r.unwrap());
            }
        }
        prop_assert_eq!(got, expected);
        prop_assert!(d.is_idle());
    }

    #[test]
    fn decoder_never_panics_or_stalls(
        pieces in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..8),
    ) {
        let mut d = Decoder::new(DecoderLimits { max_header_bytes: 256, max_body_bytes: 256 });
        let mut total = 0;
        for p in &pieces {
            total += p.len();
            d.handle_bytes(p);
            let mut n = 0;
            while let Some(r) = d.poll_frame() {
                let _ = r;
                n += 1;
                // Each result consumes input: a result per byte is a generous ceiling.
                prop_assert!(n <= total + 1);
            }
            prop_assert!(d.buffered() <= total);
        }
    }

    #[test]
    fn decoder_survives_mutated_frames(
        frame in arb_frame(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let Ok(mut wire) = encode_to_vec(&frame) else { return Ok(()); };
        for (i, b) in flips {
            let at = i.index(wire.len());
            wire[at] = b;
        }
        // A valid frame after the damage is still found (the damaged one may swallow it only
        // by never closing, which the limits bound).
        let mut d = Decoder::default();
        d.handle_bytes(&wire);
        d.handle_bytes(b"\r\nMSRP zzzz9999 200 OK\r\nTo-Path: msrp://h/s;tcp\r\nFrom-Path: msrp://g/t;tcp\r\n-------zzzz9999$\r\n");
        let mut results = 0;
        while let Some(_r) = d.poll_frame() {
            results += 1;
            prop_assert!(results < 1000);
        }
    }

    #[test]
    fn uris_round_trip(u in arb_uri()) {
        let text = u.to_string();
        let back: MsrpUri = text.parse().unwrap();
        prop_assert!(back.matches(&u));
        prop_assert_eq!(back, u);
    }

    #[test]
    fn chunker_and_reassembler_agree(
        data in proptest::collection::vec(any::<u8>(), 0..2000),
        size in 1usize..700,
        seed in any::<u64>(),
    ) {
        let mut tpl = Frame::request(TransactionId::new("tpl0").unwrap(), Method::Send,
            vec!["msrp://h/s;tcp".parse().unwrap()], vec!["msrp://g/t;tcp".parse().unwrap()]);
        tpl.message_id = Some(MessageId::new("m1").unwrap());
        let mut c = Chunker::new(tpl, "text/plain".into(), Bytes::from(data.clone()), size);
        let mut cs = Vec::new();
        let mut n = 0u8;
        while let Some(f) = c.next_chunk(TransactionId::from_random(&[n; 10])) {
            n = n.wrapping_add(1);
            cs.push(f);
        }
        // Deterministic shuffle from the seed.
        let mut s = seed;
        for i in (1..cs.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            cs.swap(i, (s >> 33) as usize % (i + 1));
        }
        let mut r = Reassembler::default();
        let mut complete = None;
        for f in &cs {
            prop_assert!(complete.is_none());
            if let ReassemblyOutcome::Complete(m) = r.handle_chunk(f).unwrap() {
                complete = Some(m);
            }
        }
        let m = complete.expect("complete after the last chunk");
        prop_assert_eq!(&m.data[..], &data[..]);
    }
}

/// Pieces that make decoder-interesting streams: valid frames, damaged ones, garbage, long
/// headers and bodies around small limits.
fn arb_fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        arb_frame().prop_filter_map("encodable", |f| encode_to_vec(&f).ok()),
        arb_frame()
            .prop_filter_map("encodable", |f| encode_to_vec(&f).ok())
            .prop_flat_map(|w| {
                let n = w.len();
                (Just(w), 0..n, any::<u8>()).prop_map(|(mut w, i, b)| {
                    w[i] = b;
                    w
                })
            }),
        arb_frame()
            .prop_filter_map("encodable", |f| encode_to_vec(&f).ok())
            .prop_flat_map(|w| {
                let n = w.len();
                (Just(w), 0..n).prop_map(|(w, i)| w[..i].to_vec())
            }),
        proptest::collection::vec(any::<u8>(), 0..40),
        Just(b"\r\n".to_vec()),
        Just(b"MSRP abcd SEND\r\n".to_vec()),
        Just(b"X-Pad: 0123456789012345678901234567890123456789\r\n".to_vec()),
        Just(b"-------abcd$\r\n".to_vec()),
        Just(b"\r\n-------abcd+\r\n".to_vec()),
        Just(vec![b'z'; 150]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// What the decoder yields (frames, error kinds and offsets) is the same however the
    /// stream is cut, including around the size limits and after faults.
    #[test]
    fn outcome_does_not_depend_on_cuts(
        fragments in proptest::collection::vec(arb_fragment(), 1..6),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 1..8),
    ) {
        let wire: Vec<u8> = fragments.concat();
        let limits = DecoderLimits { max_header_bytes: 150, max_body_bytes: 100 };
        let run = |points: &[usize]| {
            let mut d = Decoder::new(limits);
            let mut out = Vec::new();
            for w in points.windows(2) {
                d.handle_bytes(&wire[w[0]..w[1]]);
                while let Some(r) = d.poll_frame() {
                    out.push(r);
                }
            }
            out
        };
        let whole = run(&[0, wire.len()]);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        points.push(0);
        points.push(wire.len());
        points.sort_unstable();
        prop_assert_eq!(&run(&points), &whole);
        let bytewise: Vec<usize> = (0..=wire.len()).collect();
        prop_assert_eq!(&run(&bytewise), &whole);
        // Every decoded frame re-encodes and decodes to itself.
        for f in whole.iter().flatten() {
            let w = encode_to_vec(f).unwrap();
            prop_assert_eq!(&decode_one(&w).unwrap(), f);
        }
    }
}

//! Property tests: the parser never panics (arbitrary bytes, mutated torture messages), and
//! whatever parses round-trips and can be read through every typed accessor.

use std::path::Path;

use bytes::Bytes;
use im_runtime::proto::sip::validate::{Policy, Routing, triage, validate_request};
use im_runtime::proto::sip::{Message, Transport, frame};
use proptest::prelude::*;

fn torture() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/torture");
    let mut out = Vec::new();
    for sub in ["rfc4475", "rfc5118/wire", "rfc5118/archive"] {
        for e in std::fs::read_dir(dir.join(sub)).unwrap() {
            let p = e.unwrap().path();
            if matches!(p.extension().and_then(|e| e.to_str()), Some("dat" | "sip")) {
                out.push(std::fs::read(p).unwrap());
            }
        }
    }
    out.sort();
    out
}

/// The accessors that read what the parse-time check recorded (top Via, From, To, Call-ID,
/// CSeq) give what parsing their first header line again gives.
fn recorded_matches_reparsed(m: &Message) {
    use im_runtime::proto::sip::{CSeq, HeaderName, NameAddr, Via};
    let first = |n| m.header(n);
    assert_eq!(
        m.from(),
        first(HeaderName::From).and_then(|v| NameAddr::parse(v).ok())
    );
    assert_eq!(
        m.to(),
        first(HeaderName::To).and_then(|v| NameAddr::parse(v).ok())
    );
    let via = first(HeaderName::Via)
        .and_then(|v| Via::parse_list(v).ok())
        .and_then(|l| l.into_iter().next());
    assert_eq!(m.top_via(), via);
    assert_eq!(
        m.cseq(),
        first(HeaderName::CSeq).and_then(|v| CSeq::parse(v).ok())
    );
    assert_eq!(m.call_id(), first(HeaderName::CallId));
}

/// Exercises everything a caller might touch on a parsed message.
fn exercise(m: &Message) {
    recorded_matches_reparsed(m);
    let _ = (
        m.vias(),
        m.top_via().map(|v| (v.branch(), v.rport(), v.received())),
    );
    let _ = (
        m.from()
            .map(|f| (f.tag(), f.display_name(), f.uri().to_view())),
        m.to(),
    );
    let _ = (
        m.call_id(),
        m.cseq(),
        m.max_forwards(),
        m.contacts(),
        m.content_type(),
    );
    let _ = (
        m.content_disposition(),
        m.require(),
        m.supported(),
        m.unsupported(),
        m.allow(),
    );
    let _ = (
        m.accept(),
        m.routes(),
        m.record_routes(),
        m.p_asserted_identity(),
        m.warnings(),
    );
    let _ = (
        m.expires(),
        m.request_uri().map(|u| u.to_view()),
        m.facts_headers(),
        m.body(),
    );
    let _ = validate_request(m, &Policy::default(), Routing::Forward);
    deferred_checks_hold(m);
    let again = Message::parse(m.as_bytes().clone()).expect("a parsed message parses again");
    assert_eq!(&again, m);
}

/// The checks the parse leaves to first use: a request that fails them is answered 400 (as
/// when the parse rejected it), a response is dropped; one that passes them reads every
/// header they cover.
fn deferred_checks_hold(m: &Message) {
    use im_runtime::proto::sip::HeaderName;
    use im_runtime::proto::sip::validate::{Verdict, check_response};
    match m.check_deferred() {
        Err(e) if m.is_request() => {
            for routing in [Routing::Local, Routing::Forward] {
                match validate_request(m, &Policy::default(), routing) {
                    Verdict::Reject(r) => assert_eq!(r.status.as_u16(), 400, "{e}: {r:?}"),
                    Verdict::Accept => panic!("accepted despite {e}"),
                }
            }
        }
        Err(e) => assert!(check_response(m).is_err(), "response kept despite {e}"),
        Ok(()) => {
            let has = |n| m.header(n).is_some();
            assert_eq!(m.request_uri().is_some(), m.is_request());
            assert_eq!(m.max_forwards().is_some(), has(HeaderName::MaxForwards));
            assert_eq!(m.contacts().is_some(), has(HeaderName::Contact));
            assert_eq!(m.content_type().is_some(), has(HeaderName::ContentType));
        }
    }
}

fn check(bytes: &[u8]) {
    let b = Bytes::copy_from_slice(bytes);
    if let Ok(m) = Message::parse(b.clone()) {
        exercise(&m);
    }
    let _ = Message::parse_as(b.clone(), Transport::Stream);
    // Without the grammar checks, what is recorded is only what parses.
    if let Ok(m) = Message::parse_structure(b.clone()) {
        recorded_matches_reparsed(&m);
    }
    let _ = frame(bytes, 1 << 16);
    let _ = triage(b, &Policy::default(), Routing::Local, "h");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        check(&bytes);
    }

    #[test]
    fn sip_like_text_never_panics(
        lines in proptest::collection::vec("[A-Za-z:;,<>\"@=. /\\[\\]%0-9\t-]{0,40}(\r\n)?( )?", 0..12)
    ) {
        let text = format!("INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n{}\r\n", lines.concat());
        check(text.as_bytes());
    }

    #[test]
    fn mutated_torture_messages_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..6),
    ) {
        let all = torture();
        let mut m = all[pick.index(all.len())].clone();
        for (at, byte, op) in edits {
            if m.is_empty() { break; }
            let i = at.index(m.len());
            match op {
                0 => m[i] = byte,
                1 => m.insert(i, byte),
                2 => { m.remove(i); }
                _ => m.truncate(i),
            }
        }
        check(&m);
    }
}

#[test]
fn every_torture_message_is_exercised() {
    for t in torture() {
        check(&t);
    }
}

//! SIP messages: the IO layer's shard choice, datagram and stream parsing, framing and the
//! core's triage. Checks: no panic; the shard is in range; a parsed message re-parses to
//! itself from its own bytes; every typed accessor runs; stream framing agrees with stream
//! parsing on the framed slice; the accessors that read what the parse recorded agree with
//! parsing the header again; a message failing the checks the parse defers is rejected by
//! the core; a request the builder writes is, without being parsed back, the message the
//! structure parse makes of its bytes.
#![no_main]

use bytes::Bytes;
use im_runtime::proto::sip::validate::{
    Policy, Routing, Verdict, check_response, triage, validate_request,
};
use im_runtime::proto::sip::{Frame, Message, Transport, frame};
use libfuzzer_sys::fuzz_target;

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

/// The first value of the first Via line, by the general parse (`Message::top_via` may read
/// it with the one-pass reader).
fn general_top_via(m: &Message) -> Option<im_runtime::proto::sip::Via<'_>> {
    use im_runtime::proto::sip::{HeaderName, Via};
    m.header(HeaderName::Via)
        .and_then(|v| Via::parse_list(v).ok())
        .and_then(|l| l.into_iter().next())
}

/// A request built from the input's pieces (split at NUL: Request-URI and, after a `\x01` in
/// it, the Via value, From, To, Call-ID,
/// a Route, then header name/value pairs, the last odd piece the body): what
/// `build_in_dialog` and `build_own` make from where they wrote each line is the structure
/// parse of the same bytes, or both fail alike.
fn built_matches_structure_parse(data: &[u8]) {
    use im_runtime::machine::Method;
    use im_runtime::proto::sip::build::RequestBuilder;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut p = text.split('\0');
    let mut next = || p.next().unwrap_or("");
    let (uri, from, to, call_id, route) = (next(), next(), next(), next(), next());
    // The Via too, in the one-pass form or not, as the input says.
    let (uri, via) = uri
        .split_once('\x01')
        .unwrap_or((uri, "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKfuzz"));
    let mut b = RequestBuilder::new(Method::Message, uri)
        .via_raw(via)
        .from(from, "t1")
        .to(to, None)
        .call_id(call_id);
    if !route.is_empty() {
        b = b.route(route);
    }
    loop {
        let (name, value) = (next(), next());
        if name.is_empty() && value.is_empty() {
            break;
        }
        if value.is_empty() {
            b = b.body("text/plain", Bytes::copy_from_slice(name.as_bytes()));
            break;
        }
        b = b.header(name, value);
    }
    let reparsed = Message::parse_structure(b.clone().write());
    let own = b.clone().build_own();
    let in_dialog = b.build_in_dialog();
    match reparsed {
        Ok(m) => {
            assert_eq!(in_dialog.as_ref().ok(), Some(&m));
            // build_own checks the Request-URI first.
            if let Ok(o) = own {
                assert_eq!(o, m);
                // What the builder records reads as the parse of the bytes.
                assert_eq!(o.cseq(), m.cseq());
                assert_eq!(o.top_via(), general_top_via(&m));
            }
            if let Ok(d) = &in_dialog {
                assert_eq!(d.cseq(), m.cseq());
                assert_eq!(d.top_via(), general_top_via(&m));
            }
        }
        Err(e) => {
            assert_eq!(in_dialog.err().map(|f| f.error), Some(e.error));
            assert!(own.is_err());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    built_matches_structure_parse(data);
    // The IO layer's shard choice reads every datagram before any parser (`steer.rs`).
    assert!(im_runtime::steer::steer_sip(data, 3) < 3);
    let _ = im_runtime::steer::conference_key(data);
    let buf = Bytes::copy_from_slice(data);
    if let Ok(m) = Message::parse(buf.clone()) {
        let again = Message::parse(m.as_bytes().clone()).expect("own bytes must parse");
        assert_eq!(again, m);
        let _ = (
            m.vias(),
            m.from(),
            m.to(),
            m.call_id(),
            m.cseq(),
            m.contacts(),
        );
        let _ = (
            m.max_forwards(),
            m.content_type(),
            m.content_disposition(),
            m.accept(),
        );
        let _ = (
            m.routes(),
            m.record_routes(),
            m.p_asserted_identity(),
            m.warnings(),
        );
        let _ = (
            m.request_uri().map(|u| u.to_view()),
            m.facts_headers(),
            m.body(),
        );
        let verdict = validate_request(&m, &Policy::default(), Routing::Forward);
        // What the parse leaves to first use still gets a request its 400 and drops a
        // response, as when the parse rejected it.
        if m.check_deferred().is_err() {
            if m.is_request() {
                assert!(
                    matches!(&verdict, Verdict::Reject(r) if r.status.as_u16() == 400),
                    "{verdict:?}"
                );
            } else {
                assert!(check_response(&m).is_err());
            }
        }
        recorded_matches_reparsed(&m);
    }
    if let Ok(m) = Message::parse_structure(buf.clone()) {
        recorded_matches_reparsed(&m);
    }
    if let Ok(Frame::Message { skip, len }) = frame(data, 1 << 16) {
        // A frame is a complete header section plus Content-Length octets; if the stream
        // parser rejects it, that is a grammar error, never a length disagreement.
        if let Err(f) = Message::parse_as(buf.slice(skip..skip + len), Transport::Stream) {
            assert!(
                !matches!(
                    f.error.kind,
                    im_runtime::proto::sip::ErrorKind::BodyLength { .. }
                ),
                "{f}"
            );
        }
    }
    let _ = triage(buf, &Policy::default(), Routing::Local, "fuzz.example.com");
});

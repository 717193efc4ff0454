//! multipart/mixed splitter and writer: fixed vectors, limits, zero-copy, round-trip,
//! a differential test against mailparse, and "never panics" properties.

use bytes::Bytes;
use im_runtime::proto::body::mime::{Disposition, MediaType};
use im_runtime::proto::body::multipart::{self, Limits, MultipartError, OutPart, WriteError};
use proptest::prelude::*;

/// The rcsjta ad-hoc INVITE body of digest §1.4, with a preamble and an epilogue added.
const RCSJTA: &str = "This is a preamble\r\n\
--boundary1\r\n\
Content-Type: application/sdp\r\n\
\r\n\
v=0\r\n\
o=- 1 1 IN IP4 10.0.0.1\r\n\
s=-\r\n\
c=IN IP4 10.0.0.1\r\n\
t=0 0\r\n\
m=message 7394 TCP/MSRP *\r\n\
a=path:msrp://10.0.0.1:7394/abc;tcp\r\n\
a=connection:new\r\n\
a=setup:active\r\n\
a=accept-types:message/cpim\r\n\
a=sendrecv\r\n\
\r\n\
--boundary1\r\n\
Content-Type: application/resource-lists+xml\r\n\
Content-Disposition: recipient-list\r\n\
\r\n\
<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list><entry uri=\"tel:+1\"/></list></resource-lists>\r\n\
--boundary1--\r\n\
epilogue here";

fn split(body: &str, boundary: &str) -> Result<multipart::Multipart, MultipartError> {
    multipart::parse(
        &Bytes::copy_from_slice(body.as_bytes()),
        boundary,
        &Limits::default(),
    )
}

#[test]
fn rcsjta_adhoc_invite_body() {
    let m = split(RCSJTA, "boundary1").unwrap();
    assert_eq!(&m.preamble[..], b"This is a preamble");
    assert_eq!(&m.epilogue[..], b"epilogue here");
    assert_eq!(m.parts.len(), 2);
    assert_eq!(m.parts[0].essence(), "application/sdp");
    assert!(m.parts[0].disposition.is_none());
    // The SDP's own trailing CRLF stays; the CRLF before the delimiter does not.
    assert!(m.parts[0].body.starts_with(b"v=0\r\n"));
    assert!(m.parts[0].body.ends_with(b"a=sendrecv\r\n"));
    let list = &m.parts[1];
    assert_eq!(list.essence(), "application/resource-lists+xml");
    assert_eq!(list.disposition.as_ref().unwrap().kind, "recipient-list");
    assert!(list.body.starts_with(b"<resource-lists"));
    assert!(list.body.ends_with(b"</resource-lists>"));
    let bp = list.to_body_part();
    assert_eq!(bp.content_type, "application/resource-lists+xml");
    assert_eq!(bp.disposition, "recipient-list");
    assert_eq!(bp.len, list.body.len());
}

#[test]
fn parts_of_multipart_and_single_bodies() {
    let whole = Bytes::copy_from_slice(RCSJTA.as_bytes());
    let ct = MediaType::parse("multipart/mixed;boundary=boundary1").unwrap();
    let parts = multipart::parts_of(Some(&ct), None, &whole, &Limits::default()).unwrap();
    assert_eq!(parts.len(), 2);
    let no_boundary = MediaType::parse("multipart/mixed").unwrap();
    assert_eq!(
        multipart::parts_of(Some(&no_boundary), None, &whole, &Limits::default()),
        Err(MultipartError::MissingBoundary)
    );
    let sdp = MediaType::parse("application/sdp").unwrap();
    let cd = Disposition::parse("session").unwrap();
    let single = multipart::parts_of(Some(&sdp), Some(&cd), &whole, &Limits::default()).unwrap();
    assert_eq!(single.len(), 1);
    let bp = single[0].to_body_part();
    assert_eq!(
        (bp.content_type.as_str(), bp.disposition.as_str(), bp.len),
        ("application/sdp", "session", whole.len())
    );
    // No Content-Type at all: one part with the RFC 2046 default type.
    let none = multipart::parts_of(None, None, &whole, &Limits::default()).unwrap();
    assert_eq!(none[0].essence(), "text/plain");
}

#[test]
fn parts_are_zero_copy_slices() {
    let whole = Bytes::copy_from_slice(RCSJTA.as_bytes());
    let m = multipart::parse(&whole, "boundary1", &Limits::default()).unwrap();
    let range = whole.as_ptr() as usize..whole.as_ptr() as usize + whole.len();
    for p in &m.parts {
        assert!(range.contains(&(p.body.as_ptr() as usize)));
    }
}

#[test]
fn boundary_at_start_no_preamble_no_epilogue() {
    let m = split("--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--", "b").unwrap();
    assert!(m.preamble.is_empty());
    assert!(m.epilogue.is_empty());
    assert_eq!(&m.parts[0].body[..], b"hi");
}

#[test]
fn boundary_only_at_line_start_and_exact() {
    // `x--b` mid-line and `--bX` are content, not delimiters; padding after `--b` is allowed.
    let body = "--b \t\r\n\r\nline x--b\r\n--bX not a delimiter\r\n--b\r\n\r\ntwo\r\n--b--  \r\n";
    let m = split(body, "b").unwrap();
    assert_eq!(m.parts.len(), 2);
    assert_eq!(&m.parts[0].body[..], b"line x--b\r\n--bX not a delimiter");
    assert_eq!(&m.parts[1].body[..], b"two");
    assert!(m.epilogue.is_empty());
}

#[test]
fn sip_whitespace_folding_content_id_and_other_headers() {
    let body = "--b\r\n\
Content-Type : text/plain ; charset = \"utf-8\"\r\n\
Content-ID: <part1@example.com>\r\n\
X-Custom: one\r\n two\r\n\
Content-Disposition: render;\r\n\thandling=optional\r\n\
\r\n\
body\r\n--b--";
    let m = split(body, "b").unwrap();
    let p = &m.parts[0];
    assert_eq!(
        p.content_type.as_ref().unwrap().param("charset"),
        Some("utf-8")
    );
    assert_eq!(p.content_id.as_deref(), Some("part1@example.com"));
    assert_eq!(p.header("x-custom"), Some("one two"));
    assert!(p.disposition.as_ref().unwrap().is_optional());
    assert_eq!(p.headers.len(), 4);
}

#[test]
fn part_without_headers_and_part_without_content() {
    let m = split(
        "--b\r\n\r\nno headers\r\n--b\r\nContent-Type: text/plain\r\n--b--",
        "b",
    )
    .unwrap();
    assert!(m.parts[0].headers.is_empty());
    assert_eq!(m.parts[0].essence(), "text/plain");
    assert_eq!(&m.parts[0].body[..], b"no headers");
    assert_eq!(m.parts[1].headers.len(), 1);
    assert!(m.parts[1].body.is_empty());
}

#[test]
fn structural_errors() {
    assert_eq!(split("no delimiter", "b"), Err(MultipartError::NoDelimiter));
    assert_eq!(
        split("--b\r\n\r\ntruncated", "b"),
        Err(MultipartError::MissingCloseDelimiter)
    );
    assert_eq!(
        split("--b\r\n\r\nx\r\n--b--", ""),
        Err(MultipartError::InvalidBoundary)
    );
    assert_eq!(
        split("--b\r\n\r\nx\r\n--b--", &"b".repeat(71)),
        Err(MultipartError::InvalidBoundary)
    );
    assert_eq!(
        split("--b\r\nno colon\r\n\r\nx\r\n--b--", "b"),
        Err(MultipartError::MalformedHeader { part: 0 })
    );
    assert!(matches!(
        split("--b\r\nContent-Type: text\r\n\r\nx\r\n--b--", "b"),
        Err(MultipartError::BadHeaderValue {
            part: 0,
            header: "content-type",
            ..
        })
    ));
    // LF-only line ends are not delimiters (SIP uses CRLF).
    assert_eq!(
        split("--b\n\nx\n--b--\n", "b"),
        Err(MultipartError::NoDelimiter)
    );
}

#[test]
fn limits_are_typed_errors() {
    let limits = Limits {
        max_parts: 2,
        max_part_header_bytes: 30,
    };
    let three = "--b\r\n\r\n1\r\n--b\r\n\r\n2\r\n--b\r\n\r\n3\r\n--b--";
    let bytes = Bytes::from_static(three.as_bytes());
    assert_eq!(
        multipart::parse(&bytes, "b", &limits),
        Err(MultipartError::TooManyParts { limit: 2 })
    );
    let two = Bytes::from_static(b"--b\r\n\r\n1\r\n--b\r\n\r\n2\r\n--b--");
    assert_eq!(multipart::parse(&two, "b", &limits).unwrap().parts.len(), 2);
    let big = Bytes::from(format!(
        "--b\r\nX-Long: {}\r\n\r\nx\r\n--b--",
        "y".repeat(40)
    ));
    assert_eq!(
        multipart::parse(&big, "b", &limits),
        Err(MultipartError::PartHeadersTooLarge { part: 0, limit: 30 })
    );
}

fn sdp_and_history() -> Vec<OutPart> {
    vec![
        OutPart::new(&MediaType::new("application", "sdp"), "v=0\r\ns=-\r\n"),
        OutPart::new(
            &MediaType::new("application", "resource-lists+xml"),
            "<resource-lists/>",
        )
        .disposition(
            &Disposition::new("recipient-list-history").with_param("handling", Some("optional")),
        )
        .header("Content-ID", "<hist@example.com>"),
    ]
}

#[test]
fn writer_exact_bytes_and_round_trip() {
    let out = multipart::write("imspec-b1", &sdp_and_history()).unwrap();
    assert_eq!(
        std::str::from_utf8(&out).unwrap(),
        "--imspec-b1\r\n\
Content-Type: application/sdp\r\n\
\r\n\
v=0\r\ns=-\r\n\r\n\
--imspec-b1\r\n\
Content-Type: application/resource-lists+xml\r\n\
Content-Disposition: recipient-list-history;handling=optional\r\n\
Content-ID: <hist@example.com>\r\n\
\r\n\
<resource-lists/>\r\n\
--imspec-b1--\r\n"
    );
    assert_eq!(
        multipart::content_type("imspec-b1").to_string(),
        "multipart/mixed;boundary=imspec-b1"
    );
    let m = multipart::parse(&out, "imspec-b1", &Limits::default()).unwrap();
    assert_eq!(m.parts.len(), 2);
    assert_eq!(&m.parts[0].body[..], b"v=0\r\ns=-\r\n");
    assert_eq!(
        m.parts[1].disposition.as_ref().unwrap().kind,
        "recipient-list-history"
    );
    assert_eq!(m.parts[1].content_id.as_deref(), Some("hist@example.com"));
    assert!(m.preamble.is_empty() && m.epilogue.is_empty());
}

#[test]
fn writer_refuses_boundary_inside_part_and_bad_headers() {
    let parts = vec![OutPart::new(
        &MediaType::new("text", "plain"),
        "x\r\n--b1\r\n",
    )];
    assert_eq!(
        multipart::write("b1", &parts),
        Err(WriteError::BoundaryInPart { part: 0 })
    );
    let bad = vec![OutPart::default().header("X", "a\r\nInjected: 1")];
    assert_eq!(
        multipart::write("b1", &bad),
        Err(WriteError::BadHeader { part: 0 })
    );
    assert_eq!(multipart::write("", &[]), Err(WriteError::InvalidBoundary));
}

/// Part contents that never contain the boundary `--zz9`: bytes from a small alphabet rich
/// in CR, LF and dashes so delimiter look-alikes are frequent.
fn content() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(b"ab-\r\n z9:".to_vec()), 0..60)
        .prop_filter("no boundary", |v| !v.windows(5).any(|w| w == b"--zz9"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever we write, we read back identically, and mailparse agrees on every part.
    #[test]
    fn round_trip_and_mailparse_agree(
        bodies in prop::collection::vec(content(), 0..5),
        preamble in "[a-z ]{0,10}",
        epilogue in "[a-z ]{0,10}",
    ) {
        let parts: Vec<OutPart> = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| {
                OutPart::new(&MediaType::new("text", "plain"), b.clone())
                    .header("X-Index", &i.to_string())
            })
            .collect();
        let written = multipart::write("zz9", &parts).unwrap();
        let mut whole = Vec::new();
        if !preamble.is_empty() {
            whole.extend_from_slice(preamble.as_bytes());
            whole.extend_from_slice(b"\r\n");
        }
        whole.extend_from_slice(&written);
        whole.extend_from_slice(epilogue.as_bytes());
        let whole = Bytes::from(whole);
        let m = multipart::parse(&whole, "zz9", &Limits::default()).unwrap();
        prop_assert_eq!(&m.preamble[..], preamble.as_bytes());
        prop_assert_eq!(&m.epilogue[..], epilogue.as_bytes());
        prop_assert_eq!(m.parts.len(), bodies.len());
        for (p, b) in m.parts.iter().zip(&bodies) {
            prop_assert_eq!(&p.body[..], &b[..]);
        }

        if bodies.is_empty() {
            return Ok(()); // mailparse needs at least one part to say anything.
        }
        let mut mail = b"Content-Type: multipart/mixed; boundary=zz9\r\n\r\n".to_vec();
        mail.extend_from_slice(&whole);
        let oracle = mailparse::parse_mail(&mail).unwrap();
        prop_assert_eq!(oracle.subparts.len(), m.parts.len());
        for (o, p) in oracle.subparts.iter().zip(&m.parts) {
            prop_assert_eq!(o.get_body_raw().unwrap(), p.body.to_vec());
            prop_assert_eq!(o.ctype.mimetype.clone(), p.essence());
        }
    }

    #[test]
    fn never_panics_on_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..300), boundary in "[a-z0-9 ]{0,8}") {
        let _ = multipart::parse(&Bytes::from(data), &boundary, &Limits::default());
    }

    #[test]
    fn never_panics_on_mutated_bodies(pos in 0usize..400, len in 0usize..20, fill in any::<u8>()) {
        let mut v = RCSJTA.as_bytes().to_vec();
        let start = pos.min(v.len());
        let end = (start + len).min(v.len());
        for b in &mut v[start..end] { *b = fill; }
        let _ = multipart::parse(&Bytes::from(v.clone()), "boundary1", &Limits::default());
        v.truncate(start);
        let _ = multipart::parse(&Bytes::from(v), "boundary1", &Limits::default());
    }

    #[test]
    fn media_type_parsers_never_panic(s in "\\PC{0,40}") {
        let _ = MediaType::parse(&s);
        let _ = Disposition::parse(&s);
    }

    #[test]
    fn media_type_display_round_trips(
        ty in "[a-z][a-z0-9+.-]{0,8}", sub in "[a-z][a-z0-9+.-]{0,8}",
        params in prop::collection::vec(("[a-z][a-z0-9-]{0,5}", "[ -~]{1,10}"), 0..3),
    ) {
        let mut m = MediaType::new(&ty, &sub);
        for (n, v) in &params { m = m.with_param(n, v); }
        prop_assert_eq!(MediaType::parse(&m.to_string()).unwrap(), m);
    }
}

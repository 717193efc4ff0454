//! Unit tests for the SIP message parser: header names, folding, list splitting, typed
//! headers, URIs and the contract view, errors, framing.

use bytes::Bytes;
use im_runtime::proto::sip::{
    Contacts, ErrorKind, Frame, HeaderName, Message, Scheme, Transport, frame,
};

fn msg(head: &str) -> Message {
    let text = format!("{head}\r\n");
    Message::parse(Bytes::from(text)).unwrap_or_else(|f| panic!("{f}"))
}

/// The error the parse gives, or else the one of the checks it leaves to first use (which
/// the core runs before using a message: a 400, or a dropped response).
fn fail(head: &str) -> im_runtime::proto::sip::ParseError {
    match Message::parse(Bytes::from(format!("{head}\r\n"))) {
        Err(f) => f.error,
        Ok(m) => m.check_deferred().expect_err("should fail"),
    }
}

const BASE: &str = "OPTIONS sip:u@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\n\
From: <sip:a@example.com>;tag=1\r\n\
To: <sip:u@example.com>\r\n\
Call-ID: c1\r\n\
CSeq: 1 OPTIONS\r\n";

#[test]
fn compact_forms() {
    let m = msg("MESSAGE sip:u@example.com SIP/2.0\r\n\
v: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
f: <sip:a@example.com>;tag=1\r\n\
t: <sip:u@example.com>\r\n\
i: c1\r\n\
CSeq: 1 MESSAGE\r\n\
m: <sip:a@h>\r\n\
c: text/plain\r\n\
k: 100rel\r\n\
s: hi\r\n\
e: gzip\r\n\
o: presence\r\n\
u: dialog\r\n\
r: <sip:x@y>\r\n\
b: <sip:z@y>\r\n\
j: *;audio\r\n\
x: 90\r\n\
y: abc\r\n\
L: 2\r\n\
\r\nhi");
    let names: Vec<HeaderName> = m.headers().map(|h| h.name).collect();
    use HeaderName::*;
    assert_eq!(
        names,
        vec![
            Via,
            From,
            To,
            CallId,
            CSeq,
            Contact,
            ContentType,
            Supported,
            Subject,
            ContentEncoding,
            Event,
            AllowEvents,
            ReferTo,
            ReferredBy,
            RejectContact,
            SessionExpires,
            Identity,
            ContentLength
        ]
    );
    assert_eq!(m.call_id(), Some("c1"));
    assert_eq!(m.content_length(), Some(2));
    assert_eq!(&m.body()[..], b"hi");
    assert_eq!(m.header_str("content-type"), Some("text/plain"));
    assert_eq!(m.header_str("C"), Some("text/plain"));
    assert_eq!(HeaderName::Via.compact(), Some('v'));
    assert_eq!(HeaderName::from_name("cALL-id"), CallId);
}

#[test]
fn folding_and_whitespace_before_colon() {
    let m = msg("INVITE sip:u@example.com SIP/2.0\r\n\
Via  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw\r\n\
TO :\r\n sip:u@example.com ;   tag    = 1918181833n\r\n\
from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8\r\n\
Call-ID: x\r\n\
cseq: 0009\r\n  INVITE\r\n\
NewFangledHeader:   newfangled value\r\n continued newfangled value\r\n\
Content-Length: 0\r\n");
    let via = m.top_via().unwrap();
    assert_eq!(
        (via.protocol(), via.version(), via.transport()),
        ("SIP", "2.0", "UDP")
    );
    assert_eq!(via.host(), "192.0.2.2");
    assert_eq!(via.branch(), Some("390skdjuw"));
    assert!(!via.has_rfc3261_branch());
    assert_eq!(m.to().unwrap().tag(), Some("1918181833n"));
    let from = m.from().unwrap();
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(from.display_name().unwrap(), "J Rosenberg \\\"");
    let cseq = m.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method.as_str()), (9, "INVITE"));
    assert_eq!(
        m.header_str("newfangledheader"),
        Some("newfangled value\r\n continued newfangled value")
    );
}

#[test]
fn list_values_split_outside_quotes_and_angles() {
    let m = msg(&format!(
        "{BASE}Contact: \"Doe, John\" <sip:j@example.com>;q=0.5, <sip:a,b@example.com>\r\n\
Contact: sip:c@example.com;expires=60\r\nX-Custom:  one, two \r\nContent-Length: 0\r\n"
    ));
    let Some(Contacts::List(c)) = m.contacts() else {
        panic!()
    };
    assert_eq!(c.len(), 3);
    assert_eq!(c[0].addr().display_name().unwrap(), "Doe, John");
    assert_eq!(c[0].q(), Some("0.5"));
    assert_eq!(c[1].uri().user(), Some("a,b"));
    assert_eq!(c[2].expires(), Some(60));
    assert_eq!(m.values(HeaderName::Contact).len(), 3);
    // Unknown headers are not split: their grammar is unknown (Date has commas).
    assert_eq!(m.header_str("x-custom"), Some("one, two"));
}

#[test]
fn via_parameters_and_ipv6() {
    let m = msg(&format!(
        "OPTIONS sip:[2001:db8::10] SIP/2.0\r\n\
Via: SIP/2.0/UDP [2001:db8::9:1]:6050;received=2001:db8::9:255;branch=z9hG4bKas3;rport, \
SIP/2.0/TCP 192.0.2.1;received=[2001:db8::9:255];rport=5061;branch=z9hG4bK2\r\n\
v: SIP/2.0/WS edge.example.com:443;branch=z9hG4bK3;maddr=224.2.0.1\r\n\
{}Content-Length: 0\r\n",
        &BASE[BASE.find("From").unwrap()..]
    ));
    let v = m.vias();
    assert_eq!(v.len(), 3);
    assert_eq!((v[0].host(), v[0].port()), ("[2001:db8::9:1]", Some(6050)));
    assert_eq!(v[0].received(), Some("2001:db8::9:255"));
    assert_eq!(v[0].rport(), Some(None));
    assert!(v[0].has_rfc3261_branch());
    assert_eq!(v[1].received(), Some("[2001:db8::9:255]"));
    assert_eq!(v[1].rport(), Some(Some(5061)));
    assert_eq!(v[1].transport(), "TCP");
    assert_eq!(v[2].maddr(), Some("224.2.0.1"));
    assert_eq!(v[2].rport(), None);
    let ruri = m.request_uri().unwrap();
    assert_eq!(ruri.host(), "[2001:db8::10]");
    assert_eq!(ruri.to_view().host(), "[2001:db8::10]");
}

#[test]
fn typed_headers() {
    let m = msg(&format!(
        "{BASE}Max-Forwards: 0068\r\n\
Contact: <sip:conf@im.example.com;transport=tcp>;isfocus;expires=280297596632815\r\n\
Content-Type: multipart/mixed ; boundary = \"b 1\" ;type=application/sdp\r\n\
Content-Disposition: recipient-list;handling=optional\r\n\
Require: recipient-list-invite\r\n\
Supported: 100rel, timer\r\nSupported:\r\n\
Unsupported: foo\r\n\
Allow: INVITE, ACK,BYE , FOOBAR\r\n\
Accept: application/sdp;q=1, message/*\r\n\
Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n\
Record-Route: <sip:p3.example.com;lr>\r\n\
P-Asserted-Identity: \"Alice\" <sip:alice@example.com>, <tel:+15551234>\r\n\
Warning: 399 im.example.com \"Bad, really \\\"bad\\\"\", 301 [2001:db8::1]:5060 \"x\"\r\n\
Expires: 10000000000000000000000\r\n\
Content-Length: 0\r\n"
    ));
    assert_eq!(m.max_forwards(), Some(68));
    let Some(Contacts::List(c)) = m.contacts() else {
        panic!()
    };
    assert!(c[0].is_focus());
    assert_eq!(c[0].expires(), Some(u32::MAX));
    assert_eq!(c[0].uri().param("transport"), Some(Some("tcp")));
    let ct = m.content_type().unwrap();
    assert!(ct.is("Multipart", "MIXED"));
    assert_eq!(ct.essence(), "multipart/mixed");
    assert_eq!(ct.param("boundary").unwrap(), "b 1");
    assert_eq!(ct.param("type").unwrap(), "application/sdp");
    let cd = m.content_disposition().unwrap().unwrap();
    assert_eq!(cd.ty(), "recipient-list");
    assert!(cd.is_optional());
    assert_eq!(m.require(), vec!["recipient-list-invite"]);
    assert_eq!(m.supported().unwrap(), vec!["100rel", "timer"]);
    assert_eq!(m.unsupported().unwrap(), vec!["foo"]);
    let allow: Vec<String> = m.allow().unwrap().iter().map(|m| m.to_string()).collect();
    assert_eq!(allow, vec!["INVITE", "ACK", "BYE", "FOOBAR"]);
    let accept = m.accept().unwrap().unwrap();
    assert_eq!(accept.len(), 2);
    assert!(accept[1].matches("message", "cpim"));
    assert!(!accept[1].matches("text", "plain"));
    let routes = m.routes();
    assert_eq!(routes.len(), 2);
    assert_eq!(routes[1].uri().param("lr"), Some(None));
    assert_eq!(m.record_routes()[0].uri().host(), "p3.example.com");
    let pai = m.p_asserted_identity().unwrap();
    assert_eq!(pai[0].display_name().unwrap(), "Alice");
    assert_eq!(pai[1].uri().scheme(), Scheme::Tel);
    let w = m.warnings().unwrap();
    assert_eq!(w.len(), 2);
    assert_eq!((w[0].code, w[0].agent), (399, "im.example.com"));
    assert_eq!(w[0].text, "Bad, really \"bad\"");
    assert_eq!(w[1].agent, "[2001:db8::1]:5060");
    assert_eq!(m.expires(), Some(u32::MAX));
}

#[test]
fn contact_star_and_display_names() {
    let m = msg(
        "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
From: caller<sip:caller@example.com>;tag=323\r\n\
To: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>\r\n\
Call-ID: c\r\nCSeq: 2 REGISTER\r\nContact: *\r\nExpires: 0\r\nl: 0\r\n",
    );
    assert_eq!(m.contacts(), Some(Contacts::Star));
    assert_eq!(m.from().unwrap().display_name().unwrap(), "caller");
    assert_eq!(
        m.to().unwrap().display_name().unwrap(),
        "token1~` token2'+_ token3*%!.-"
    );
    assert_eq!(m.to().unwrap().tag(), None);
    assert_eq!(m.expires(), Some(0));
}

#[test]
fn uri_views_for_the_contract() {
    let m = msg(&format!(
        "MESSAGE sip:%61lice@Example.COM:5070;transport=TCP;Lr SIP/2.0\r\n{}",
        &BASE[BASE.find("Via").unwrap()..].replace("1 OPTIONS", "1 MESSAGE")
    ));
    let v: im_runtime::Uri = m.request_uri().unwrap().into();
    assert_eq!(v.scheme(), "sip");
    assert_eq!(v.user(), "alice");
    assert_eq!(v.host(), "example.com");
    assert_eq!(v.port(), Some(5070));
    assert_eq!(v.param("lr"), Some(None));
    assert_eq!(v.param("transport"), Some(Some("TCP")));
    assert_eq!(v.raw(), "sip:%61lice@Example.COM:5070;transport=TCP;Lr");
    let from = m.from().unwrap().uri().to_view();
    assert!(
        from.same_identity(&im_runtime::Uri::new(im_runtime::UriParts {
            scheme: "SIP",
            user: "a",
            host: "EXAMPLE.com",
            ..Default::default()
        }))
    );
}

#[test]
fn errors_carry_offset_header_and_context() {
    let e = fail(&format!("{BASE}Via: SIP/2.0/UDP h;branch\r\n"));
    assert_eq!(e.header, Some("Via"));
    assert_eq!(e.context, vec!["Via", "branch"]);
    let e = fail(&format!("{BASE}Route: <sip:a@b;lr\r\n"));
    assert_eq!(e.kind, ErrorKind::Unterminated("<URI>"));
    assert_eq!(e.header, Some("Route"));
    assert_eq!(e.offset, BASE.len() + "Route: ".len());
    let e = fail(&format!("{BASE}Contact: <sip:a@b:99999>\r\n"));
    assert_eq!(
        (e.kind.clone(), e.context.clone()),
        (ErrorKind::Port, vec!["Contact", "URI", "host"])
    );
    assert!(e.to_string().contains("Contact > URI > host"), "{e}");
    let e = fail(&format!("{BASE}Max-Forwards: 256\r\n"));
    assert_eq!(e.kind, ErrorKind::Scalar("Max-Forwards"));
    let e = fail(&format!("{BASE} folded-at-start\r\n").replacen("\r\nVia", "\r\n Via", 1));
    assert_eq!(e.kind, ErrorKind::FoldAtStart);
    assert_eq!(
        fail("OPTIONS sip:x SIP/2.0\r\nBad Header: x\r\n").kind,
        ErrorKind::HeaderLine
    );
    assert_eq!(fail("SIP/2.0 99 Low\r\n").kind, ErrorKind::StatusCode);
    assert_eq!(fail("SIP/2.0 2000 OK\r\n").kind, ErrorKind::StatusCode);
    let e = Message::parse(Bytes::from_static(
        b"OPTIONS sip:x SIP/2.0\r\nX: \xff\r\n\r\n",
    ))
    .unwrap_err();
    assert_eq!(e.error.kind, ErrorKind::NotUtf8);
    assert_eq!(
        Message::parse(Bytes::from_static(b"\r\n\r\n"))
            .unwrap_err()
            .error
            .kind,
        ErrorKind::Empty
    );
}

#[test]
fn responses() {
    let m = msg("SIP/2.0 100 \r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nl: 0\r\n");
    assert_eq!(m.status().unwrap().as_u16(), 100);
    assert_eq!(m.reason(), Some(""));
    assert!(!m.is_request());
    assert!(m.method().is_none());
    let m = msg("SIP/2.0 486 Busy Here\r\nl: 0\r\n");
    assert_eq!(m.reason(), Some("Busy Here"));
    assert_eq!(m.version(), "SIP/2.0");
}

#[test]
fn datagram_and_stream_framing() {
    let one = format!("{BASE}Content-Length: 5\r\n\r\nhello");
    // Datagram: octets past Content-Length are discarded; none at all is an error.
    let m = Message::parse(Bytes::from(format!("{one}JUNK"))).unwrap();
    assert_eq!(m.as_bytes().len(), one.len());
    assert_eq!(&m.body()[..], b"hello");
    let short = Message::parse(Bytes::from(one[..one.len() - 1].to_owned())).unwrap_err();
    assert!(matches!(
        short.error.kind,
        ErrorKind::BodyLength {
            declared: 5,
            actual: 4
        }
    ));
    // Without Content-Length a datagram's body runs to its end; a stream message needs one.
    let no_cl = format!("{BASE}\r\nbody");
    assert_eq!(
        &Message::parse(Bytes::from(no_cl.clone())).unwrap().body()[..],
        b"body"
    );
    assert_eq!(
        Message::parse_as(Bytes::from(no_cl), Transport::Stream)
            .unwrap_err()
            .error
            .kind,
        ErrorKind::MissingContentLength
    );

    let stream = format!("\r\n\r\n{one}{one}");
    assert_eq!(frame(b"", 4096).unwrap(), Frame::NeedMore);
    assert_eq!(
        frame(b"\r\n\r\n", 4096).unwrap(),
        Frame::KeepAlive { skip: 4 }
    );
    assert_eq!(
        frame(&stream.as_bytes()[..20], 4096).unwrap(),
        Frame::NeedMore
    );
    assert_eq!(
        frame(&stream.as_bytes()[..stream.len() / 2 - 1], 4096).unwrap(),
        Frame::NeedMore
    );
    let Frame::Message { skip, len } = frame(stream.as_bytes(), 4096).unwrap() else {
        panic!()
    };
    assert_eq!((skip, len), (4, one.len()));
    let first = Message::parse_as(
        Bytes::from(stream[skip..skip + len].to_owned()),
        Transport::Stream,
    );
    assert_eq!(first.unwrap().body_bytes(), b"hello");
    let rest = &stream.as_bytes()[skip + len..];
    assert_eq!(
        frame(rest, 4096).unwrap(),
        Frame::Message {
            skip: 0,
            len: one.len()
        }
    );
    // Limits: a header section or a declared length beyond the cap is an error.
    assert!(matches!(
        frame(stream.as_bytes(), 100).unwrap_err().kind,
        ErrorKind::TooLarge { .. }
    ));
    let big = format!("{BASE}Content-Length: 100000\r\n\r\n");
    assert!(matches!(
        frame(big.as_bytes(), 4096).unwrap_err().kind,
        ErrorKind::TooLarge { .. }
    ));
    let none = format!("{BASE}\r\n");
    assert_eq!(
        frame(none.as_bytes(), 4096).unwrap_err().kind,
        ErrorKind::MissingContentLength
    );
    let two = format!("{BASE}l: 1\r\nContent-Length: 2\r\n\r\nxx");
    assert_eq!(
        frame(two.as_bytes(), 4096).unwrap_err().kind,
        ErrorKind::DuplicateContentLength
    );
}

#[test]
fn facts_headers_use_full_lower_case_names() {
    let m = msg(&format!("{BASE}X-Foo: bar\r\nl: 0\r\n"));
    let h = m.facts_headers();
    assert_eq!(
        h[0],
        (
            "via".into(),
            "SIP/2.0/UDP h.example.com;branch=z9hG4bK1".into()
        )
    );
    assert!(h.contains(&("content-length".into(), "0".into())));
    assert!(h.contains(&("x-foo".into(), "bar".into())));
}

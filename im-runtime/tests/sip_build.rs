//! Builders: responses per RFC 3261 §8.2.6, 400 from salvage, new requests, canonical form
//! and round trips.

use bytes::Bytes;
use im_runtime::Method;
use im_runtime::proto::sip::build::{RequestBuilder, ResponseBuilder};
use im_runtime::proto::sip::validate::{Policy, Routing, Triage, triage};
use im_runtime::proto::sip::{HeaderName, Message, StatusCode};

const INVITE: &str = "INVITE sip:conf@im.example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP p1.example.com;branch=z9hG4bKp1, SIP/2.0/TCP c.example.com\r\n ;branch=z9hG4bKc;rport=5060\r\n\
Max-Forwards: 69\r\n\
f: \"Alice\" <sip:alice@example.com>;tag=a1\r\n\
To: <sip:conf@im.example.com>\r\n\
Call-ID: call-1@c.example.com\r\n\
CSeq: 7 INVITE\r\n\
Route: <sip:p2.example.com;lr>\r\n\
Content-Length: 0\r\n\r\n";

fn invite() -> Message {
    Message::parse(Bytes::from_static(INVITE.as_bytes())).unwrap()
}

#[test]
fn response_copies_the_request_headers() {
    let req = invite();
    let r = ResponseBuilder::new(&req, StatusCode::OK)
        .to_tag("srv1")
        .header(
            "Contact",
            "<sip:conf-1@im.example.com;transport=tcp>;isfocus",
        )
        .body("application/sdp", Bytes::from_static(b"v=0\r\n"))
        .build()
        .unwrap();
    let expected = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/TCP p1.example.com;branch=z9hG4bKp1\r\n\
Via: SIP/2.0/TCP c.example.com ;branch=z9hG4bKc;rport=5060\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=a1\r\n\
To: <sip:conf@im.example.com>;tag=srv1\r\n\
Call-ID: call-1@c.example.com\r\n\
CSeq: 7 INVITE\r\n\
Contact: <sip:conf-1@im.example.com;transport=tcp>;isfocus\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 5\r\n\r\nv=0\r\n";
    assert_eq!(std::str::from_utf8(r.as_bytes()).unwrap(), expected);
    assert_eq!(r.status(), Some(StatusCode::OK));
    assert_eq!(r.to().unwrap().tag(), Some("srv1"));
    let vias = r.vias();
    assert_eq!(vias.len(), 2);
    assert_eq!(vias[1].branch(), Some("z9hG4bKc"));
    // Round trip: parse(serialise(m)) == m, and serialising again is byte-identical.
    let again = Message::parse(r.as_bytes().clone()).unwrap();
    assert_eq!(again, r);
}

#[test]
fn existing_to_tag_is_kept() {
    let text = INVITE.replace(
        "To: <sip:conf@im.example.com>",
        "To: <sip:conf@im.example.com>;tag=x",
    );
    let req = Message::parse(Bytes::from(text)).unwrap();
    let r = ResponseBuilder::new(&req, StatusCode::new(481).unwrap())
        .to_tag("y")
        .build()
        .unwrap();
    assert_eq!(r.to().unwrap().tag(), Some("x"));
    assert_eq!(r.reason(), Some("Call/Transaction Does Not Exist"));
    let r = ResponseBuilder::new(&req, StatusCode::new(499).unwrap())
        .reason("Odd\r\nX: y")
        .build()
        .unwrap();
    // Caller text cannot inject header lines.
    assert_eq!(r.reason(), Some("Odd  X: y"));
    assert_eq!(r.header_str("X"), None);
}

#[test]
fn bad_request_from_salvage_carries_a_warning() {
    let bad = INVITE.replace(
        "To: <sip:conf@im.example.com>",
        "To: \"unterminated <sip:conf@im.example.com>",
    );
    let f = Message::parse(Bytes::from(bad.clone())).unwrap_err();
    let s = f.salvage.as_deref().unwrap();
    assert_eq!(s.via.len(), 1); // one line, two values: copied as written
    let r = ResponseBuilder::from_salvage(s, StatusCode::BAD_REQUEST, "im.example.com")
        .build()
        .unwrap();
    assert_eq!(r.status(), Some(StatusCode::BAD_REQUEST));
    assert_eq!(r.values(HeaderName::Via).len(), 2);
    assert_eq!(
        r.header(HeaderName::To),
        Some("\"unterminated <sip:conf@im.example.com>")
    );
    let w = r.header_str("Warning").unwrap();
    assert!(
        w.starts_with("399 im.example.com \"unterminated quoted string"),
        "{w}"
    );
    assert!(r.warnings().is_ok());
    // triage does the same in one call.
    let Triage::Respond(t) = triage(
        Bytes::from(bad),
        &Policy::default(),
        Routing::Local,
        "im.example.com",
    ) else {
        panic!()
    };
    assert_eq!(t.as_bytes(), r.as_bytes());
    // A broken ACK is never answered.
    let ack = INVITE.replace("INVITE", "ACK").replace("To: <", "To: \"<");
    assert!(matches!(
        triage(Bytes::from(ack), &Policy::default(), Routing::Local, "h"),
        Triage::Drop(_)
    ));
}

#[test]
fn request_builder_makes_canonical_requests() {
    let m = RequestBuilder::new(Method::Message, "sip:bob@example.net")
        .via("TCP", "im.example.com:5060", "z9hG4bKabc")
        .from("<sip:group@im.example.com>", "t1")
        .to("\"Bob\" <sip:bob@example.net>", None)
        .call_id("cid-1")
        .cseq(42)
        .contact("<sip:im.example.com;transport=tcp>")
        .route("<sip:proxy.example.net;lr>")
        .header("Supported", "100rel")
        .body("text/plain", Bytes::from_static(b"hello"))
        .build()
        .unwrap();
    let expected = "MESSAGE sip:bob@example.net SIP/2.0\r\n\
Via: SIP/2.0/TCP im.example.com:5060;branch=z9hG4bKabc\r\n\
Max-Forwards: 70\r\n\
Route: <sip:proxy.example.net;lr>\r\n\
From: <sip:group@im.example.com>;tag=t1\r\n\
To: \"Bob\" <sip:bob@example.net>\r\n\
Call-ID: cid-1\r\n\
CSeq: 42 MESSAGE\r\n\
Contact: <sip:im.example.com;transport=tcp>\r\n\
Supported: 100rel\r\n\
Content-Type: text/plain\r\n\
Content-Length: 5\r\n\r\nhello";
    assert_eq!(std::str::from_utf8(m.as_bytes()).unwrap(), expected);
    assert_eq!(m.cseq().unwrap().method, Method::Message);
    assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bKabc"));
    // A malformed value makes build fail instead of sending garbage.
    assert!(
        RequestBuilder::new(Method::Bye, "not a uri")
            .build()
            .is_err()
    );
}

#[test]
fn cancel_and_ack_follow_the_invite() {
    let inv = invite();
    let c = RequestBuilder::cancel_for(&inv).build().unwrap();
    assert_eq!(c.method(), Some(&Method::Cancel));
    assert_eq!(c.request_uri_str(), inv.request_uri_str());
    assert_eq!(c.vias().len(), 1);
    assert_eq!(c.top_via().unwrap().branch(), Some("z9hG4bKp1"));
    assert_eq!(c.cseq().unwrap().seq, 7);
    assert_eq!(c.call_id(), inv.call_id());
    assert_eq!(c.routes().len(), 1);
    let resp = ResponseBuilder::new(&inv, StatusCode::new(486).unwrap())
        .to_tag("r9")
        .build()
        .unwrap();
    let a = RequestBuilder::ack_for_failure(&inv, &resp)
        .build()
        .unwrap();
    assert_eq!(a.method(), Some(&Method::Ack));
    assert_eq!(a.cseq().unwrap().method, Method::Ack);
    assert_eq!(a.to().unwrap().tag(), Some("r9"));
    assert_eq!(a.from().unwrap().tag(), Some("a1"));
}

#[test]
fn rejections_build_full_responses() {
    let text = INVITE.replace(
        "Route: <sip:p2.example.com;lr>\r\n",
        "Require: foo, bar\r\n",
    );
    let Triage::Respond(r) = triage(Bytes::from(text), &Policy::default(), Routing::Local, "h")
    else {
        panic!()
    };
    assert_eq!(r.status().unwrap().as_u16(), 420);
    assert_eq!(r.unsupported().unwrap(), vec!["foo", "bar"]);
    let text = INVITE.replace(
        "Content-Length: 0\r\n\r\n",
        "Content-Type: image/png\r\nContent-Length: 1\r\n\r\nx",
    );
    let Triage::Respond(r) = triage(Bytes::from(text), &Policy::default(), Routing::Local, "h")
    else {
        panic!()
    };
    assert_eq!(r.status().unwrap().as_u16(), 415);
    assert!(r.header_str("Accept").unwrap().contains("application/sdp"));
    let text = INVITE.replace("Content-Length: 0\r\n\r\n", "Content-Length: 1\r\n\r\nx");
    let Triage::Respond(r) = triage(Bytes::from(text), &Policy::default(), Routing::Local, "h")
    else {
        panic!()
    };
    assert_eq!(r.status().unwrap().as_u16(), 400);
}

/// `write` gives the bytes `build` would (it only skips parsing them back), with and
/// without a body, for responses and requests.
#[test]
fn write_equals_build_bytes() {
    let inv = invite();
    let resp = || {
        ResponseBuilder::new(&inv, StatusCode::OK)
            .to_tag("t1")
            .header("Contact", "<sip:conf@example.com>;isfocus")
            .body("application/sdp", Bytes::from_static(b"v=0\r\n"))
    };
    assert_eq!(resp().write(), resp().build().unwrap().into_bytes());
    let plain = || ResponseBuilder::new(&inv, StatusCode::new(487).unwrap()).to_tag("t2");
    assert_eq!(plain().write(), plain().build().unwrap().into_bytes());
    let req = || {
        RequestBuilder::new(Method::Ack, "sip:bob@192.0.2.4:5070")
            .via_raw("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKack1;rport")
            .from("<sip:conf@example.com>", "ft")
            .to("<sip:bob@example.com>", Some("tt"))
            .call_id("c1@example.com")
            .cseq(1)
            .max_forwards(70)
            .route("<sip:proxy.example.com;lr>")
    };
    assert_eq!(req().write(), req().build().unwrap().into_bytes());
    let in_dialog = req().build_in_dialog().unwrap();
    assert_eq!(in_dialog.as_bytes(), &req().build().unwrap().into_bytes());
    assert_eq!(in_dialog.top_via().unwrap().branch(), Some("z9hG4bKack1"));
    assert_eq!(in_dialog.cseq().unwrap().seq, 1);
}

use super::*;

/// Parsed messages are queued, cached and kept by transactions: what the parse records
/// for the accessors must stay small next to the buffer handle and header index.
#[test]
fn message_stays_small() {
    assert!(size_of::<Known>() <= 112, "{}", size_of::<Known>());
    assert!(size_of::<Message>() <= 224, "{}", size_of::<Message>());
}

/// The usual forms are recorded without the general walk: the top Via and the CSeq of a
/// request we build (the transaction key reads both), the Via, From and To of a response
/// as a peer echoes them. (What is recorded reads as the general parse: the tests in
/// `build.rs` and `header/tests.rs`.)
#[test]
fn usual_forms_are_recorded() {
    use crate::proto::sip::build::RequestBuilder;
    let built = RequestBuilder::new(Method::Message, "sip:r1@127.0.0.1:43524")
        .via_raw("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKcopy;rport")
        .from("<sip:loader@example.com>", "t1")
        .to("<sip:r1@127.0.0.1:43524>", None)
        .call_id("c1@127.0.0.1")
        .cseq(1)
        .build_own()
        .expect("builds");
    let (via, cseq) = (built.known.via, built.known.cseq);
    assert!(via.is_some() && cseq.is_some(), "{:?}", built.known);
    assert_eq!(
        built.top_via().and_then(|v| v.branch()),
        Some("z9hG4bKcopy")
    );
    assert_eq!(
        built.cseq(),
        Some(CSeq {
            seq: 1,
            method: Method::Message
        })
    );
    let ok = Message::parse(Bytes::from_static(
        b"SIP/2.0 200 OK\r\n\
          Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKcopy;rport\r\n\
          From: <sip:loader@example.com>;tag=t1\r\n\
          To: <sip:r1@127.0.0.1:43524>;tag=1234SIPpTag201\r\n\
          Call-ID: c1@127.0.0.1\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
    ))
    .expect("parses");
    // A response's From and To are parsed when read, not at parse time.
    assert!(ok.known.via.is_some() && ok.known.from.is_none() && ok.known.to.is_none());
    assert_eq!(ok.to().and_then(|t| t.tag()), Some("1234SIPpTag201"));
    assert_eq!(ok.from().and_then(|t| t.tag()), Some("t1"));
}

/// A response's From and To are checked at parse time when it answers an INVITE (the
/// dialog layer reads them) and recorded; in any other response they are parsed when read:
/// the parse takes a malformed one, the accessor reads it as `None`, and `check_response`
/// lets the answer through to its transaction. A request with the same header still fails
/// to parse.
#[test]
fn a_response_checks_from_and_to_when_it_answers_an_invite() {
    use crate::proto::sip::validate::check_response;
    let response = |method: &str, from: &str| {
        Message::parse(Bytes::from(format!(
            "SIP/2.0 200 OK\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKcopy\r\n\
             From: {from}\r\n\
             To: <sip:r1@127.0.0.1>;tag=2\r\n\
             Call-ID: c1@127.0.0.1\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        )))
    };
    let bad = "<sip:loader@exa mple.com>;tag=t1";
    for method in ["MESSAGE", "INVITE", "BYE"] {
        let good = response(method, "<sip:loader@example.com>;tag=t1").expect("parses");
        assert_eq!(check_response(&good), Ok(()));
        assert_eq!(good.from().and_then(|f| f.tag()), Some("t1"));
        assert_eq!(good.to().and_then(|t| t.tag()), Some("2"));
        let invite = method == "INVITE";
        assert_eq!(good.known.from.is_some(), invite, "{method}");
        assert_eq!(good.known.to.is_some(), invite, "{method}");
        match response(method, bad) {
            Ok(m) => {
                assert!(!invite, "an INVITE's answer with a malformed From parsed");
                assert_eq!(m.from(), None);
                assert_eq!(check_response(&m), Ok(()));
            }
            Err(_) => assert!(invite, "a {method} answer's From was checked at parse"),
        }
    }
    let request = Message::parse(Bytes::from(format!(
        "MESSAGE sip:r1@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKcopy\r\n\
         Max-Forwards: 70\r\nFrom: {bad}\r\nTo: <sip:r1@127.0.0.1>\r\n\
         Call-ID: c1@127.0.0.1\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
    )));
    assert!(request.is_err());
}

/// The one-pass presence the validity checks read agrees with [`Message::count`] for
/// every name: absent, once, twice, compact forms, unknown names, a name past 32 lines.
#[test]
fn name_presence_agrees_with_count() {
    let names = [
        HeaderName::Via,
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::CSeq,
        HeaderName::MaxForwards,
        HeaderName::Contact,
        HeaderName::ContentType,
        HeaderName::ContentLength,
        HeaderName::Expires,
        HeaderName::Route,
        HeaderName::RecordRoute,
        HeaderName::Require,
        HeaderName::Accept,
        HeaderName::Other,
    ];
    let mut many = String::new();
    for i in 0..40 {
        many.push_str(&format!("X-{i}: y\r\n"));
    }
    let heads = [
        "f: <sip:a@b>;tag=1\r\nt: <sip:c@d>\r\n".to_owned(),
        "From: <sip:a@b>;tag=1\r\nFrom: <sip:a@b>;tag=2\r\nExpires: 5\r\n".to_owned(),
        "Route: <sip:p;lr>\r\nRoute: <sip:q;lr>\r\nX-A: 1\r\nx-b: 2\r\n".to_owned(),
        format!("{many}Expires: 1\r\nc: text/plain\r\nContent-Type: text/plain\r\n"),
        String::new(),
    ];
    for head in heads {
        let text = format!(
            "MESSAGE sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
             Call-ID: c\r\nCSeq: 1 MESSAGE\r\n{head}Content-Length: 0\r\n\r\n"
        );
        let m = Message::parse_structure(Bytes::from(text)).expect("parses");
        let p = m.name_presence();
        for n in names {
            assert_eq!(p.has(n), m.count(n) > 0, "{n:?} in {head:?}");
            assert_eq!(p.repeated(n), m.count(n) > 1, "{n:?} in {head:?}");
        }
    }
}

/// A message is checked for UTF-8 once, whole, and read as text after: a text message is
/// `Text`, and its values are the same as from a message whose body is not UTF-8 (`Raw`,
/// each value checked when read), or whose datagram runs on past its Content-Length,
/// cut there on a character boundary (`Text`) or inside a character (`Raw`). A header
/// section that is not UTF-8 is still refused, at the first bad byte.
#[test]
fn a_message_is_checked_for_utf8_once_and_read_as_text() {
    let head = concat!(
        "MESSAGE sip:bob@example.com SIP/2.0\r\n",
        "Via: SIP/2.0/UDP h.example:5060;branch=z9hG4bKu8\r\n",
        "From: \"Zoë\" <sip:zoe@example.com>;tag=f1\r\n",
        "To: <sip:bob@example.com>\r\n",
        "Call-ID: u8@h\r\n",
        "CSeq: 7 MESSAGE\r\n",
        "Max-Forwards: 70\r\n",
    );
    let with = |body: &[u8], declared: usize, trailer: &[u8]| {
        let mut b = format!("{head}Content-Length: {declared}\r\n\r\n").into_bytes();
        b.extend_from_slice(body);
        b.extend_from_slice(trailer);
        Message::parse(Bytes::from(b)).expect("parses")
    };
    let cases = [
        (with("héllo".as_bytes(), 6, b""), true, "héllo".as_bytes()),
        (with(b"\xff\xfe", 2, b""), false, b"\xff\xfe".as_slice()),
        // Past the Content-Length, a whole character, then half of one.
        (with(b"hi", 2, "é".as_bytes()), true, b"hi".as_slice()),
        (with("é".as_bytes(), 1, b""), false, b"\xc3".as_slice()),
    ];
    for (m, text, body) in &cases {
        assert_eq!(matches!(m.buf, Buf::Text(_)), *text, "{m:?}");
        assert_eq!(m.body_bytes(), *body);
        let cl = format!("Content-Length: {}\r\n\r\n", body.len());
        assert_eq!(m.as_bytes().len(), head.len() + cl.len() + body.len());
        assert_eq!(m.top_via().and_then(|v| v.branch()), Some("z9hG4bKu8"));
        assert_eq!(m.cseq().map(|c| c.seq), Some(7));
        let from = m.from().expect("From");
        assert_eq!(from.display_name().as_deref(), Some("Zoë"));
        assert_eq!(m.call_id(), Some("u8@h"));
    }
    let mut bad = head.as_bytes().to_vec();
    bad.extend_from_slice(b"X: \xc3(\r\n\r\n");
    let e = Message::parse(Bytes::from(bad)).expect_err("not UTF-8");
    assert_eq!(e.error.kind, ErrorKind::NotUtf8);
    assert_eq!(e.error.offset, head.len() + 3);
}

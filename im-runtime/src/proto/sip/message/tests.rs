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
    assert!(ok.known.via.is_some() && ok.known.from.is_some() && ok.known.to.is_some());
    assert_eq!(ok.to().and_then(|t| t.tag()), Some("1234SIPpTag201"));
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

//! Parse the same messages with im-runtime's SIP parser, ezk-sip-types and rsip, each
//! extracting the same fields: top Via branch, From tag, To tag, Call-ID, CSeq and body.
//!
//! Run: `cargo bench -p im-runtime --bench parse`

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};

/// A 1374-byte INVITE to a conference factory with a multipart/mixed body: an MSRP SDP offer and
/// a recipient-list (RFC 5366 ad-hoc group).
const INVITE: &str = concat!(
    "INVITE sip:conference-factory@example.com SIP/2.0\r\n",
    "Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;rport\r\n",
    "Max-Forwards: 70\r\n",
    "From: \"Alice\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n",
    "To: <sip:conference-factory@example.com>\r\n",
    "Call-ID: 3848276298220188511@atlanta.example.com\r\n",
    "CSeq: 31862 INVITE\r\n",
    "Contact: <sip:alice@client.atlanta.example.com;transport=tcp>\r\n",
    "Require: recipient-list-invite\r\n",
    "Accept: application/sdp, message/cpim\r\n",
    "Content-Type: multipart/mixed;boundary=boundary1\r\n",
    "Content-Length: 848\r\n",
    "\r\n",
    "--boundary1\r\n",
    "Content-Type: application/sdp\r\n",
    "\r\n",
    "v=0\r\n",
    "o=alice 2890844526 2890844526 IN IP4 client.atlanta.example.com\r\n",
    "s=-\r\n",
    "c=IN IP4 client.atlanta.example.com\r\n",
    "t=0 0\r\n",
    "m=message 7394 TCP/MSRP *\r\n",
    "a=accept-types:message/cpim text/plain\r\n",
    "a=path:msrp://client.atlanta.example.com:7394/2s93i93idk;tcp\r\n",
    "\r\n",
    "--boundary1\r\n",
    "Content-Type: application/resource-lists+xml\r\n",
    "Content-Disposition: recipient-list\r\n",
    "\r\n",
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n",
    "<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"\r\n",
    "   xmlns:cp=\"urn:ietf:params:xml:ns:copycontrol\">\r\n",
    "  <list>\r\n",
    "    <entry uri=\"sip:bill@example.com\" cp:copyControl=\"to\"/>\r\n",
    "    <entry uri=\"sip:randy@example.net\" cp:copyControl=\"to\"/>\r\n",
    "    <entry uri=\"sip:eddy@example.com\" cp:copyControl=\"cc\"/>\r\n",
    "    <entry uri=\"sip:joe@example.org\" cp:copyControl=\"bcc\"/>\r\n",
    "  </list>\r\n",
    "</resource-lists>\r\n",
    "--boundary1--\r\n",
);

const OK: &str = concat!(
    "SIP/2.0 200 OK\r\n",
    "Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9;received=192.0.2.101;rport=5060\r\n",
    "From: \"Alice\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n",
    "To: <sip:conference-factory@example.com>;tag=8321234356\r\n",
    "Call-ID: 3848276298220188511@atlanta.example.com\r\n",
    "CSeq: 31862 INVITE\r\n",
    "Contact: <sip:conf-3f8a@im.example.com;transport=tcp>;isfocus\r\n",
    "Content-Length: 0\r\n",
    "\r\n",
);

/// The fields every parser has to deliver.
type Fields = (
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    u32,
    usize,
);

fn ours(buf: &Bytes) -> Fields {
    let m = im_runtime::proto::sip::Message::parse(buf.clone()).expect("parses");
    let via = m.top_via().and_then(|v| v.branch().map(str::to_owned));
    let from = m.from().and_then(|f| f.tag().map(str::to_owned));
    let to = m.to().and_then(|t| t.tag().map(str::to_owned));
    let call_id = m.call_id().unwrap_or_default().to_owned();
    let cseq = m.cseq().map_or(0, |c| c.seq);
    (via, from, to, call_id, cseq, m.body().len())
}

/// ezk-sip-types has no public whole-message parser (ezk-sip-core's is crate-private);
/// this is the same loop: PullParser for lines, MessageLine and Line parsers, lazy typed
/// headers.
fn ezk(buf: &Bytes) -> Fields {
    use ezk_sip_types::Headers;
    use ezk_sip_types::Name;
    use ezk_sip_types::header::typed::{CSeq, CallID, ContentLength, FromTo, Via};
    use ezk_sip_types::msg::{Line, MessageLine, PullParser};
    use ezk_sip_types::parse::Parse;

    let mut parser = PullParser::new(buf, 0);
    let first = std::str::from_utf8(parser.next().unwrap().unwrap()).unwrap();
    let (_, line) = MessageLine::parse(buf)(first).unwrap();
    black_box(&line);
    let mut headers = Headers::with_capacity(16);
    for l in &mut parser {
        let l = std::str::from_utf8(l.unwrap()).unwrap();
        let (_, Line { name, value }) = Line::parse(buf, l).unwrap();
        headers.insert(name, value);
    }
    let head_end = parser.head_end();
    let cl = headers.get_named::<ContentLength>().map_or(0, |c| c.0);
    let body = buf.slice(head_end..head_end + cl);
    let via: Via = headers.get_named().unwrap();
    let from: FromTo = headers.get(Name::FROM).unwrap();
    let to: FromTo = headers.get(Name::TO).unwrap();
    let call_id: CallID = headers.get_named().unwrap();
    let cseq: CSeq = headers.get_named().unwrap();
    (
        via.params.get_val("branch").map(|b| b.to_string()),
        from.tag.map(|t| t.to_string()),
        to.tag.map(|t| t.to_string()),
        call_id.0.to_string(),
        cseq.cseq,
        body.len(),
    )
}

fn rsip(buf: &Bytes) -> Fields {
    use rsip::prelude::*;
    let m = rsip::SipMessage::try_from(&buf[..]).unwrap();
    let via = m.via_header().unwrap().typed().unwrap();
    let from = m.from_header().unwrap().tag().unwrap();
    let to = m.to_header().unwrap().tag().unwrap();
    let call_id = m.call_id_header().unwrap().value().to_owned();
    let cseq = m.cseq_header().unwrap().seq().unwrap();
    (
        via.branch().map(|b| b.to_string()),
        from.map(|t| t.to_string()),
        to.map(|t| t.to_string()),
        call_id,
        cseq,
        m.body().len(),
    )
}

fn bench(c: &mut Criterion) {
    for (name, text) in [("invite_multipart", INVITE), ("ok_200", OK)] {
        let buf = Bytes::from_static(text.as_bytes());
        // All three must agree before their speed is compared.
        let expected = ours(&buf);
        assert_eq!(ezk(&buf), expected, "ezk disagrees on {name}");
        assert_eq!(rsip(&buf), expected, "rsip disagrees on {name}");
        let mut g = c.benchmark_group(name);
        g.bench_function("im-runtime", |b| b.iter(|| ours(black_box(&buf))));
        g.bench_function("ezk-sip-types", |b| b.iter(|| ezk(black_box(&buf))));
        g.bench_function("rsip", |b| b.iter(|| rsip(black_box(&buf))));
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

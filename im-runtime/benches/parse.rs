//! Parse the same messages with im-runtime's SIP parser, ezk-sip-types and rsip, each
//! extracting the same fields: top Via branch, From tag, To tag, Call-ID, CSeq and body.
//!
//! Run: `cargo bench -p im-runtime --bench parse`

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};

#[path = "support/messages.rs"]
mod messages;
use messages::{INVITE, OK};

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

//! Regression tests for hostile input found by hand or by fuzzing (issue 14). Each test names
//! the input that used to panic or misbehave.

use std::borrow::Cow;

use im_runtime::machine::{Config, SdpAnswerItem};
use im_runtime::proto::msrp::{self, MsrpUri};
use im_runtime::proto::sdp::{
    self,
    answer::{self, AnswerError, LocalMedia},
};

/// The To-Path / `a=path` value of issue 14: byte 7 falls inside `מ`.
const HOSTILE_PATH: &str = "msrp:/מН;tcp";

#[test]
fn msrp_uri_with_multibyte_char_at_scheme_boundary_is_an_error() {
    assert!(HOSTILE_PATH.parse::<MsrpUri>().is_err());
}

/// The MSRP decoder reads To-Path as URIs: a frame carrying the hostile one decodes to an
/// error (answered 400 by the relay) rather than panicking.
#[test]
fn msrp_frame_with_multibyte_to_path_decodes_to_an_error() {
    let frame = format!(
        "MSRP a786hjs2 SEND\r\nTo-Path: {HOSTILE_PATH}\r\n\
         From-Path: msrp://127.0.0.1:7777/iau39soe2843z;tcp\r\nMessage-ID: 87652491\r\n\
         Byte-Range: 1-5/5\r\nContent-Type: text/plain\r\n\r\nhello\r\n-------a786hjs2$\r\n"
    );
    assert!(msrp::decode_one(frame.as_bytes()).is_err());
}

fn local() -> LocalMedia {
    LocalMedia {
        address: "198.51.100.7".into(),
        msrp_port: 2855,
        path: "msrp://198.51.100.7:2855/s3ss10n;tcp".into(),
        session_id: 42,
        session_version: 1,
    }
}

fn answer_with_path(path_line: &str) -> Result<answer::Answer, AnswerError> {
    let offer = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=message 7394 TCP/MSRP *\r\na=accept-types:text/plain\r\n{path_line}a=sendonly\r\n"
    );
    let facts = sdp::facts(offer.as_bytes()).expect("the offer is valid SDP");
    let items = [
        SdpAnswerItem::MediaFromOffer,
        SdpAnswerItem::OwnPath,
        SdpAnswerItem::AcceptTypesIntersection,
        SdpAnswerItem::Echo(Cow::Borrowed("msrp-cema")),
    ];
    answer::build_answer(&facts, &items, &local(), &Config::default())
}

/// An offer whose path is not a list of MSRP URIs is refused (the endpoint turns the error
/// into 488 + Warning) instead of being accepted with a path nobody can use.
#[test]
fn offer_with_unusable_path_is_refused() {
    for line in [
        format!("a=path:{HOSTILE_PATH}\r\n"),
        "a=path:msrp://relay.example.com:2855;tcp not-a-uri\r\n".to_owned(),
    ] {
        assert_eq!(
            answer_with_path(&line),
            Err(AnswerError::BadPath),
            "{line:?}"
        );
    }
    let ok = answer_with_path(
        "a=path:msrp://relay.example.com:2855;tcp msrp://127.0.0.1:7394/abc;tcp\r\n",
    );
    assert!(ok.is_ok(), "{ok:?}");
}

/// Fuzz find (`msrp` target, crash-18a50cf5): a response whose comment holds a bare CR
/// (`200 OK$\r2 200 OK$`) decoded fine but could not be re-encoded, so a frame the decoder
/// accepted could not be forwarded. RFC 4975 §9 allows no control character but HTAB in a
/// comment: the decoder now refuses it, and every frame it accepts re-encodes.
#[test]
fn msrp_response_comment_with_bare_cr_is_refused() {
    let stream: &[u8] = b"MSRP a786hjs2 200 OK$\r2 200 OK$\r\nTo-Path: msrp://a/b;tcp\r\n\
F: msrp?/\0\0\0\0\0\0\0/a\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x04\0\0\0/b;tcp\r\n\
From-Path: msrp://c/d;tcp\r\n-------a786hjs2$\r\nMSRP dkei38sd REPORT\r\nsr08sd$\r\n";
    let mut d = msrp::Decoder::new(msrp::DecoderLimits {
        max_header_bytes: 2048,
        max_body_bytes: 4096,
    });
    d.handle_bytes(stream);
    let mut frames = 0;
    while let Some(r) = d.poll_frame() {
        if let Ok(f) = r {
            frames += 1;
            let wire = msrp::encode_to_vec(&f).expect("every decoded frame re-encodes");
            assert_eq!(msrp::decode_one(&wire).as_ref(), Ok(&f));
        }
    }
    assert_eq!(frames, 0, "the frame with a CR in its comment is an error");
    let tab = b"MSRP a1 200 OK\tfine\r\nTo-Path: msrp://a/b;tcp\r\nFrom-Path: msrp://c/d;tcp\r\n-------a1$\r\n";
    assert!(msrp::decode_one(tab).is_ok(), "HTAB stays allowed");
}

/// Found while proving the `indexing_slicing` sites of the reassembler: a Byte-Range start
/// near `u64::MAX` made `start + len` wrap (or panic with overflow checks), and the copy into
/// the message buffer then sliced `[huge..small]`. It is now a "too large" error.
#[test]
fn byte_range_start_near_u64_max_is_too_large_not_a_panic() {
    let frame = b"MSRP t1 SEND\r\nTo-Path: msrp://a/b;tcp\r\nFrom-Path: msrp://c/d;tcp\r\n\
Message-ID: m1\r\nByte-Range: 18446744073709551615-*/*\r\nContent-Type: text/plain\r\n\r\n\
hello\r\n-------t1+\r\n";
    let f = msrp::decode_one(frame).expect("the frame itself is well-formed");
    let mut re = msrp::Reassembler::new(msrp::ReassemblyLimits {
        max_message_bytes: 1 << 16,
        max_messages_in_progress: 4,
    });
    assert!(re.handle_chunk(&f).is_err());
}

//! MSRP decoder over a stream cut into pieces whose size comes from the first byte.
//! Checks: no panic, no stall; the frames and errors do not depend on how the stream is cut;
//! every decoded frame re-encodes to bytes that decode back to the same frame; chunks of
//! decoded SENDs go through the reassembler without panicking.
#![no_main]

use im_runtime::proto::msrp::{
    Decoder, DecoderLimits, Method, Reassembler, ReassemblyLimits, decode_one, encode_to_vec,
};
use libfuzzer_sys::fuzz_target;

fn run(data: &[u8], piece: usize) -> Vec<String> {
    let limits = DecoderLimits {
        max_header_bytes: 2048,
        max_body_bytes: 4096,
    };
    let mut d = Decoder::new(limits);
    let mut out = Vec::new();
    let mut re = Reassembler::new(ReassemblyLimits {
        max_message_bytes: 1 << 16,
        max_messages_in_progress: 4,
    });
    for p in data.chunks(piece.max(1)) {
        d.handle_bytes(p);
        let mut polls = 0;
        while let Some(r) = d.poll_frame() {
            polls += 1;
            assert!(polls <= data.len() + 1, "decoder stalls");
            match r {
                Ok(f) => {
                    let wire = encode_to_vec(&f).expect("decoded frames re-encode");
                    assert_eq!(decode_one(&wire).as_ref(), Ok(&f), "round trip");
                    if f.method() == Some(&Method::Send) {
                        let _ = re.handle_chunk(&f);
                    }
                    out.push(format!("{f:?}"));
                }
                Err(e) => {
                    let _ = e.response();
                    out.push(format!("{e:?}"));
                }
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let whole = run(rest, rest.len());
    let cut = run(rest, usize::from(first % 16) + 1);
    assert_eq!(whole, cut, "result depends on how the stream is cut");
});

//! multipart/mixed: the first line is a Content-Type value whose `boundary` splits the
//! rest. Checks: no panic; parts are slices of the input; whatever the writer accepts
//! splits back into the same parts.
#![no_main]

use bytes::Bytes;
use im_runtime::proto::body::mime::MediaType;
use im_runtime::proto::body::multipart::{self, Limits, OutPart};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (ct, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) if i < 200 => (&data[..i], &data[i + 1..]),
        _ => (&b"multipart/mixed;boundary=b"[..], data),
    };
    let Ok(ct) = std::str::from_utf8(ct) else {
        return;
    };
    let Ok(mt) = MediaType::parse(ct) else { return };
    let Some(boundary) = mt.param("boundary") else {
        return;
    };
    let whole = Bytes::copy_from_slice(body);
    let Ok(m) = multipart::parse(&whole, boundary, &Limits::default()) else {
        return;
    };
    let range = whole.as_ptr() as usize..=whole.as_ptr() as usize + whole.len();
    for p in &m.parts {
        assert!(range.contains(&(p.body.as_ptr() as usize)));
    }
    let out: Vec<OutPart> = m
        .parts
        .iter()
        .map(|p| OutPart {
            headers: p
                .headers
                .iter()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect(),
            body: p.body.clone(),
        })
        .collect();
    if let Ok(written) = multipart::write(boundary, &out) {
        let back = multipart::parse(&written, boundary, &Limits::default())
            .expect("writer output must split");
        assert_eq!(back.parts.len(), m.parts.len());
        for (a, b) in back.parts.iter().zip(&m.parts) {
            assert_eq!(a.body, b.body);
        }
    }
});

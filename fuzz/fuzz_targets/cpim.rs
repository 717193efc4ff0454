//! CPIM (RFC 3862) and IMDN (RFC 5438): no panic within the default limits; an accepted
//! CPIM message written back reads back the same, and so does an accepted IMDN document
//! (whether it came alone or as the CPIM content).
#![no_main]

use im_runtime::proto::body::cpim::{self, Cpim, Limits};
use im_runtime::proto::body::imdn::Imdn;
use libfuzzer_sys::fuzz_target;

fn imdn_round_trip(doc: &[u8]) {
    if let Ok(i) = Imdn::parse(doc) {
        let again = Imdn::parse(i.to_xml().as_bytes()).expect("written IMDN must parse");
        assert_eq!(again, i);
    }
}

fuzz_target!(|data: &[u8]| {
    imdn_round_trip(data);
    let Ok(m) = Cpim::parse(data, Limits::default()) else {
        return;
    };
    let names: Vec<String> = m
        .headers
        .iter()
        .map(|h| match h.prefix {
            Some(p) => format!("{p}.{}", h.name),
            None => h.name.to_owned(),
        })
        .collect();
    let headers: Vec<(&str, &str)> = names
        .iter()
        .zip(&m.headers)
        .map(|(n, h)| (n.as_str(), h.value))
        .collect();
    let out = cpim::write(&headers, &m.content_headers, m.content);
    let back = Cpim::parse(
        &out,
        Limits {
            max_line: usize::MAX,
            ..Limits::default()
        },
    )
    .expect("written CPIM must parse");
    assert_eq!(back, m);
    let _ = m.dispositions();
    let _ = m.imdn_message_id();
    imdn_round_trip(m.content);
});

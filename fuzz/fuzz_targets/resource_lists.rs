//! Resource lists: no panic within the default limits, the plain-form reader agrees with the
//! roxmltree walk on every input, and the recipient-list-history written from any accepted
//! list parses back with every visible recipient.
#![no_main]

use im_runtime::machine::{CopyControl, Uri, UriParts};
use im_runtime::proto::body::resource_lists::{self, ANONYMOUS_URI, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let read = resource_lists::parse(data, &Limits::default());
    // The plain-form reader (taken when it is sure) reads what roxmltree's tree walk reads.
    assert_eq!(
        read,
        resource_lists::parse_tree(data, &Limits::default()),
        "the plain reader and the tree walk differ"
    );
    let Ok(rl) = read else {
        return;
    };
    let Ok(entries) = rl.list_entries(|raw| {
        Some(Uri::new(UriParts {
            raw,
            ..UriParts::default()
        }))
    }) else {
        return;
    };
    let history = resource_lists::write_history(&entries);
    let back = resource_lists::parse(
        history.as_bytes(),
        &Limits {
            max_bytes: usize::MAX,
            max_nodes: u32::MAX,
            max_entries: usize::MAX,
            ..Limits::default()
        },
    )
    .expect("history must parse");
    let visible = entries
        .iter()
        .filter(|e| e.copy_control != CopyControl::Bcc && !e.anonymize)
        .count();
    let named = back
        .entries
        .iter()
        .filter(|e| e.uri != ANONYMOUS_URI)
        .count();
    assert_eq!(named, visible);
});

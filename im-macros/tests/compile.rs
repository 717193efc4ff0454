//! Compile-only: every spec in `specs/` expands and compiles with warnings denied (the crate
//! is also linted by `cargo clippy --all-targets -- -D warnings`). Each file is a root of its
//! own here, imports included, as a user may name any of them.
#![deny(warnings)]

macro_rules! specs {
    ($($module:ident => $path:literal,)*) => {
        $(
            #[allow(dead_code)]
            mod $module {
                im_macros::imspec!($path);
            }
        )*

        /// The spec files this test expands, to compare with the directory.
        const EXPANDED: &[&str] = &[$($path),*];
    };
}

specs! {
    page_mode_group_invite => "specs/page_mode_group_invite.imspec",
    general_7_9_1_1 => "specs/7.9.1.1_general.imspec",
    adhoc_7_9_1_4 => "specs/7.9.1.4_adhoc_group.imspec",
    predefined_7_9_1_5 => "specs/7.9.1.5_predefined_group.imspec",
    pager_6_1_3_3_2 => "specs/6.1.3.3.2_pager_mode_session.imspec",
    exploder_rfc5365 => "specs/rfc5365_message_exploder.imspec",
    ext_delivery_reports => "specs/ext_delivery_reports.imspec",
}

/// Codegen fixtures (im-dsl/tests/fixtures) exercise what the specs do not: extension
/// methods, MSRP triggers, interpolated text of every type, conditional SDP items.
#[allow(dead_code)]
mod fixture_extension_method_and_msrp {
    im_macros::imspec!("im-dsl/tests/fixtures/extension_method_and_msrp.imspec");
}

#[test]
fn every_spec_in_the_directory_is_expanded() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../specs");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".imspec"))
        .map(|n| format!("specs/{n}"))
        .collect();
    on_disk.sort();
    let mut expanded: Vec<String> = EXPANDED.iter().map(|s| s.to_string()).collect();
    expanded.sort();
    assert_eq!(on_disk, expanded, "add new specs to the specs! list above");
}

#[test]
fn expansions_list_their_rules() {
    assert!(!page_mode_group_invite::SPEC.is_empty());
    assert!(
        page_mode_group_invite::SPEC
            .iter()
            .all(|r| r.location.starts_with("specs/"))
    );
    assert!(!exploder_rfc5365::SPEC.is_empty());
}

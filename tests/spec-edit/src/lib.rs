//! Test-only crate (see `build.rs` and `tests/edit.rs`): the generated machines of the seed
//! spec as written, and of a copy edited by the build script, side by side.

/// `specs/page_mode_group_invite.imspec` as written.
pub mod original {
    include!(concat!(
        env!("OUT_DIR"),
        "/original/page_mode_group_invite.rs"
    ));
}

/// The same spec after the build script applied `edits.toml`; `cases/*.toml` says what it
/// must do.
pub mod edited {
    include!(concat!(
        env!("OUT_DIR"),
        "/edited/page_mode_group_invite.rs"
    ));
}

/// `specs/rfc5365_message_exploder.imspec` after the build script applied `edits.toml`.
pub mod edited_exploder {
    include!(concat!(
        env!("OUT_DIR"),
        "/edited/rfc5365_message_exploder.rs"
    ));
}

/// `specs/rfc5365_message_exploder.imspec`, compiled by the build script (for clippy, and
/// as written for tests/offline_copy.rs).
pub mod exploder {
    include!(concat!(env!("OUT_DIR"), "/all/rfc5365_message_exploder.rs"));
}

/// The codegen fixture of im-dsl, compiled by the build script (for clippy).
pub mod fixture {
    include!(concat!(
        env!("OUT_DIR"),
        "/fixtures/extension_method_and_msrp.rs"
    ));
}

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

/// `specs/page_mode_group_invite.imspec` whose `originator_bye` answers nothing
/// (`gaps.toml`, tests/spec_gap.rs).
pub mod gap_no_originator_bye {
    include!(concat!(
        env!("OUT_DIR"),
        "/gap-no_originator_bye/page_mode_group_invite.rs"
    ));
}

/// `specs/page_mode_group_invite.imspec` without its `shutdown` handler (`gaps.toml`).
pub mod gap_no_shutdown {
    include!(concat!(
        env!("OUT_DIR"),
        "/gap-no_shutdown/page_mode_group_invite.rs"
    ));
}

/// `specs/rfc5365_message_exploder.imspec` without its `copy unroutable` handler
/// (`gaps.toml`).
pub mod gap_no_copy_unroutable {
    include!(concat!(
        env!("OUT_DIR"),
        "/gap-no_copy_unroutable/rfc5365_message_exploder.rs"
    ));
}

/// `specs/rfc5365_message_exploder.imspec` whose ext-dr.10 keeps a storable copy with no
/// route (`gaps.toml`).
pub mod store_when_unroutable {
    include!(concat!(
        env!("OUT_DIR"),
        "/gap-store_when_unroutable/rfc5365_message_exploder.rs"
    ));
}

/// `specs/rfc5365_message_exploder.imspec` whose ext-dr.10 keeps every copy with no route
/// (`gaps.toml`).
pub mod store_always_when_unroutable {
    include!(concat!(
        env!("OUT_DIR"),
        "/gap-store_always_when_unroutable/rfc5365_message_exploder.rs"
    ));
}

/// `specs/page_mode_group_invite.imspec` refusing the INVITE (486) after inviting the legs
/// (`gaps.toml`).
pub mod refused_after_inviting {
    include!(concat!(
        env!("OUT_DIR"),
        "/gap-refused_after_inviting/page_mode_group_invite.rs"
    ));
}

/// The same, whose `no_ack` leaves the legs up (`gaps.toml`).
pub mod refused_after_inviting_legs_left_up {
    include!(concat!(
        env!("OUT_DIR"),
        "/gap-refused_after_inviting_legs_left_up/page_mode_group_invite.rs"
    ));
}

/// `specs/page_mode_group_invite.imspec` with no rule deciding a new conference-state
/// subscription (`gaps.toml`).
pub mod no_subscription_decision {
    include!(concat!(
        env!("OUT_DIR"),
        "/gap-no_subscription_decision/page_mode_group_invite.rs"
    ));
}

/// The same spec whose ext-dr.13 `unsubscribes` decides nothing (`gaps.toml`).
// It and `in_invite_dialog` before it are both rules with no action: the generated `first`
// has two identical branches, which is what this edit means.
#[allow(clippy::if_same_then_else)]
pub mod unsubscribe_undecided {
    include!(concat!(
        env!("OUT_DIR"),
        "/gap-unsubscribe_undecided/page_mode_group_invite.rs"
    ));
}

/// `specs/page_mode_group_invite.imspec` whose 7.9.1.4 `declined` records no outcome
/// (`gaps.toml`).
pub mod declined_without_outcome {
    include!(concat!(
        env!("OUT_DIR"),
        "/gap-declined_without_outcome/page_mode_group_invite.rs"
    ));
}

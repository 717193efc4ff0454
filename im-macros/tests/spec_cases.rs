//! The conformance cases owned by the specs: every `specs/cases/*.toml` case runs against the
//! machines generated from the real specs. A spec change request edits a spec and its cases;
//! no Rust test changes. The `covers` of each case count as citations for `imspec trace`.

mod support {
    pub(crate) mod cases;
}

use support::cases::{self, Machines};

mod group_invite {
    im_macros::imspec!("specs/page_mode_group_invite.imspec");
}

mod exploder {
    im_macros::imspec!("specs/rfc5365_message_exploder.imspec");
}

fn group_invite() -> Machines {
    Machines {
        initial: group_invite::initial,
        by_clause: group_invite::by_clause,
        invitee_leg: group_invite::invitee_leg,
        methods: group_invite::methods,
        rules: vec![group_invite::SPEC],
        timers: vec![
            (
                "invitee_leg",
                "invite_timeout",
                group_invite::invitee_leg::TIMER_INVITE_TIMEOUT,
            ),
            (
                "pager_mode_session",
                "message_wait",
                group_invite::pager_mode_session::TIMER_MESSAGE_WAIT,
            ),
        ],
    }
}

/// Both spec roots in one set of machines: a case's request method picks the root.
fn all() -> Machines {
    fn initial(
        m: &im_runtime::machine::Method,
    ) -> Option<Box<dyn im_runtime::endpoint::DynMachine>> {
        group_invite::initial(m).or_else(|| exploder::initial(m))
    }
    fn by_clause(c: &str) -> Option<Box<dyn im_runtime::endpoint::DynMachine>> {
        group_invite::by_clause(c).or_else(|| exploder::by_clause(c))
    }
    fn methods() -> Vec<im_runtime::machine::Method> {
        let mut v = group_invite::methods();
        v.extend(exploder::methods());
        v
    }
    Machines {
        initial,
        by_clause,
        methods,
        rules: vec![group_invite::SPEC, exploder::SPEC],
        ..group_invite()
    }
}

fn specs_cases() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("specs/cases")
}

#[test]
fn every_case_in_specs_cases_holds() {
    let n = cases::run_dir(&all(), &specs_cases());
    assert!(n > 0);
}

/// The comparer is not a rubber stamp: a case whose expected status, Warning, actions or
/// state is wrong is reported with its file and case name.
#[test]
fn a_wrong_expectation_is_reported() {
    let file = cases::parse(
        r#"
        [[case]]
        name = "other URI, no list"
        request = { uri = "other" }
        expect = { status = 410, warning = "gone", actions = ["respond 410"], states = { page_mode_group_invite = "nowhere" } }
        "#,
    )
    .expect("parses");
    let diff = cases::compare(&all(), &file.case[0]);
    assert_eq!(diff.len(), 4, "{diff:#?}");
    assert!(
        diff[0].contains("status: expected \"410\", got \"404\""),
        "{diff:#?}"
    );
    assert!(diff[1].contains("warning"), "{diff:#?}");
    assert!(diff[2].contains("actions"), "{diff:#?}");
    assert!(
        diff[3].contains("state of page_mode_group_invite"),
        "{diff:#?}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("wrong.toml"),
        "[[case]]\nname = \"wrong status\"\nrequest = { uri = \"other\" }\nexpect = { status = 403 }\n",
    )
    .expect("write");
    let panic = std::panic::catch_unwind(|| cases::run_dir(&all(), dir.path()))
        .expect_err("a wrong status fails the run");
    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("wrong.toml [case \"wrong status\"]"), "{msg}");
    assert!(
        msg.contains("status: expected \"403\", got \"404\""),
        "{msg}"
    );
}

/// A case cannot cite a rule its run never reaches.
#[test]
fn a_citation_the_run_does_not_earn_is_reported() {
    let file = cases::parse(
        r#"
        [[case]]
        name = "other URI, no list, citing the factory rule"
        covers = ["5.2.1.1/factory_without_list", "5.2.1.1/not_for_this_server"]
        request = { uri = "other" }
        expect = { status = 404 }
        "#,
    )
    .expect("parses");
    let diff = cases::compare(&all(), &file.case[0]);
    assert_eq!(diff.len(), 1, "{diff:#?}");
    assert!(
        diff[0].contains("covers \"5.2.1.1/factory_without_list\": that rule produced no action"),
        "{diff:#?}"
    );
}

/// Case files that do not parse (an unknown field, a typo in a key) fail, not pass silently.
#[test]
fn unknown_fields_are_rejected() {
    assert!(cases::parse("[[case]]\nname = \"x\"\nexpect = { statuss = 200 }\n").is_err());
    assert!(cases::parse("[[case]]\nname = \"x\"\nrequst = {}\nexpect = {}\n").is_err());
}

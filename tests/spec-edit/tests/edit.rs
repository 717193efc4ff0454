//! A spec edit changes behaviour with no Rust edit: `build.rs` compiles the seed spec as
//! written and a copy with `edits.toml` applied; `cases/*.toml` says what the edited copy must
//! do, and runs through the same case runner as `specs/cases/` (im-macros/tests/spec_cases.rs).

#[path = "../../../im-macros/tests/support/cases.rs"]
mod cases;

use cases::Machines;
use imspec_spec_edit::{edited, original};
use std::path::{Path, PathBuf};

fn edited() -> Machines {
    Machines {
        initial: edited::initial,
        by_clause: edited::by_clause,
        invitee_leg: edited::invitee_leg,
        methods: edited::methods,
        rules: vec![edited::SPEC],
        timers: vec![
            (
                "invitee_leg",
                "invite_timeout",
                edited::invitee_leg::TIMER_INVITE_TIMEOUT,
            ),
            (
                "pager_mode_session",
                "message_wait",
                edited::pager_mode_session::TIMER_MESSAGE_WAIT,
            ),
        ],
    }
}

fn original() -> Machines {
    Machines {
        initial: original::initial,
        by_clause: original::by_clause,
        invitee_leg: original::invitee_leg,
        methods: original::methods,
        rules: vec![original::SPEC],
        timers: vec![
            (
                "invitee_leg",
                "invite_timeout",
                original::invitee_leg::TIMER_INVITE_TIMEOUT,
            ),
            (
                "pager_mode_session",
                "message_wait",
                original::pager_mode_session::TIMER_MESSAGE_WAIT,
            ),
        ],
    }
}

fn case_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cases")
}

#[test]
fn the_edited_spec_meets_its_cases() {
    assert!(cases::run_dir(&edited(), &case_dir()) > 0);
}

/// The cases describe a change: the spec as written fails the ones about edited behaviour
/// (and passes the one about behaviour the edit keeps).
#[test]
fn the_spec_as_written_does_not_meet_the_edited_cases() {
    let mut failing = Vec::new();
    for f in cases::case_files(&case_dir()) {
        let text = std::fs::read_to_string(&f).expect("read");
        for case in cases::parse(&text).expect("parses").case {
            if !cases::compare(&original(), &case).is_empty() {
                failing.push(case.name);
            }
        }
    }
    assert_eq!(
        failing,
        [
            "other URI, no list: 410 Gone (was 404 Not Found)",
            "two recipients: over the edited limit of 1 (was accepted)",
            "a list naming only the sender: accepted, the sender is invited, with no de-duplication (was 403)",
            "message, then one leg declined: failure REPORT 480 (was 408)",
            "originator BYE: answered 202 by the edited rule (was 200), the legs left up (were CANCELled and BYE'd)",
            "every copy delivered: report success and BYE the originator, the legs left up (were BYE'd)",
            "leg: a 2xx that crossed the CANCEL is left to the edited spec, which keeps it (was BYE)",
            "an offer the answer cannot be built for gets the edited else: 606 (was 488)",
            "the 200 OK's focus Contact carries only the edited feature tag (was both)",
            "a list over a list limit: 403 by the edited rule (was 413)",
            "leg: MSRP connection lost: counted delivered by the edited rule (was outcome failed 408)",
            "re-INVITE in the originator's dialog: 501 by the edited rule (was 405)",
            "a copy timed out (timer F), negative delivery asked: no IMDN without the rule (was IMDN failed)",
            "the invitee INVITE is from \"Team\" with 16 hops, to the entry's display name, has no Referred-By, no focus Contact, no history and offers setup active, sendrecv (was <focus>, 70, <invitee>, Referred-By, isfocus, history, actpass, sendonly)",
            "leg: the invitee's BYE before its copy was confirmed: 202 by the edited rule (was 200)",
            "leg: the invitee's BYE after delivery: no rule answers it in the edited spec (was 200)",
            "leg: SUBSCRIBE in the leg's dialog: 403 by the edited rule (was 405)",
            "no common accept-types: the edited Warning has code 399 (was 305)",
            "leg: a declined invitee (480) fails with the edited outcome 404 (was its status)",
            "leg: a 2xx that crossed the session's CANCEL is kept without answered_after_cancel (was BYE, by the runtime before issue 12)",
            "leg: a 2xx after a CANCEL that could not be sent is not BYE'd without answered_after_cancel (was BYE)",
            "leg: no route to a user of this domain: the edited rule fails it 404 (was 480)",
            "lifetime over: the edited rule only logs (was BYE, CANCEL and BYE the legs)",
            "no ACK for the 200 (Timer H): the edited rule BYEs the originator only (was the legs too)",
            "no message in time: the edited rule BYEs the originator only (was the legs too)",
            "MSRP closed before the message: the edited rule only logs (was BYE and the legs ended)",
            "a group with invite-members=false: accepted without the rule (was 403)",
            "Privacy: id without allow-anonymity: 433 by the edited rule (was 403)",
            "a body that cannot be parsed: without body_malformed the list rules decide (was 400)",
            "Digest user admin speaks for alice: accepted by the edited rule (was 403)",
            "SUBSCRIBE in the originator's dialog: 403 by the edited rule (was 405)",
            "the originator's BYE after the session closed: no rule answers it (was 200)",
            "the originator subscribes past a limit: granted without the rule (was 403)",
            "a list with references it cannot resolve: accepted without list_unresolved (was 400)",
            "Digest user admin subscribes as the originator alice: accepted by the edited rule (was 403)",
            "no route to a member with no registration: the edited rule fails the copy 404 (was 480)",
            "a kept copy that expired: the edited rule keeps it again (was outcome failed 408)",
            "server shutdown: the edited rule ends the legs only, the originator's dialog is left up (was BYE)",
            "the originator refreshes her subscription: 403 by the edited rule (was accepted)",
            "a refresh for an hour: no rule decides it in the edited spec (was accepted)",
            "leg: the originator asked for no success REPORT, the copy asks for one anyway (was no)",
        ]
    );
}

/// The build script's copy of the seed spec meets the seed's own cases (those of
/// `specs/cases/` that the 5.2.1.1 entry takes: INVITE, not the RFC 5365 MESSAGE exploder).
#[test]
fn the_spec_as_written_meets_specs_cases() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../specs/cases");
    let m = original();
    let mut n = 0;
    for f in cases::case_files(&dir) {
        let text = std::fs::read_to_string(&f).expect("read");
        for case in cases::parse(&text).expect("parses").case {
            if case.request.method != "INVITE" {
                continue;
            }
            n += 1;
            let diff = cases::compare(&m, &case);
            assert!(
                diff.is_empty(),
                "{} [case \"{}\"]: {diff:#?}",
                f.display(),
                case.name
            );
        }
    }
    assert!(n > 40, "{n}");
}

//! `imspec diff`: a one-status edit prints exactly that row and exits 1; layout, comment and
//! rule-name edits print nothing and exit 0.

use std::path::{Path, PathBuf};
use std::process::Command;

fn specs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs")
}

fn imspec(args: &[&Path], flags: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_imspec"))
        .arg("diff")
        .args(flags)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("runs")
}

/// A copy of `specs/` with `edit` applied to the text of `file`.
fn edited(file: &str, edit: impl Fn(&str) -> String) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tmp");
    for e in std::fs::read_dir(specs()).expect("specs") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            continue; // specs/cases/
        }
        let text = std::fs::read_to_string(&p).expect("read");
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        let text = if name == file { edit(&text) } else { text };
        std::fs::write(tmp.path().join(&name), text).expect("write");
    }
    tmp
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn one_status_edit_prints_exactly_that_row() {
    let new = edited("7.9.1.4_adhoc_group.imspec", |t| {
        let at = t.find("rule too_many_recipients").expect("rule");
        let r = at + t[at..].find("respond 403").expect("respond");
        format!("{}respond 413{}", &t[..r], &t[r + "respond 403".len()..])
    });
    let out = imspec(&[&specs(), new.path()], &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = stdout(&out);
    let rows: Vec<&str> = text.lines().filter(|l| !l.starts_with(' ')).collect();
    // The rule is reached by two request classes (outside recipients allowed by the
    // configuration, or none named), both of that one handler and nothing else.
    assert_eq!(
        rows, ["adhoc_group_setup | state active | on initial INVITE"; 2],
        "{text}"
    );
    assert!(
        text.contains(
            "  when: count(distinct(without(recipients, request.originator))) > config.max_recipients\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("  when: not no_one_but_originator\n"),
        "{text}"
    );
    assert!(
        text.contains("- old: rule 7.9.1.4/too_many_recipients: respond 403 \"Forbidden\""),
        "{text}"
    );
    assert!(
        text.contains("+ new: rule 7.9.1.4/too_many_recipients: respond 413 \"Forbidden\""),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 behaviour rows changed"));
}

#[test]
fn layout_comment_and_rule_name_edits_print_nothing() {
    // Every line re-indented, every full-line comment dropped, a rule renamed: the same
    // behaviour, so no row and exit status 0.
    let new = edited("page_mode_group_invite.imspec", |t| {
        t.lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
            .replace("rule adhoc ", "rule adhoc_list ")
    });
    let out = imspec(&[&specs(), new.path()], &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout(&out), "");
}

#[test]
fn precedence_swap_prints_the_classes_it_moves() {
    // Checking the offer before the list policy changes what an empty list with no offer
    // gets: 488 instead of 403. Only those classes are printed.
    let new = edited("7.9.1.4_adhoc_group.imspec", |t| {
        let a = t.find("      // Empty list").expect("first rule");
        let b = t.find("      // The offer:").expect("offer rules");
        let c = t.find("      // Accept:").expect("accept");
        format!("{}{}{}{}", &t[..a], &t[b..c], &t[a..b], &t[c..])
    });
    let out = imspec(&[&specs(), new.path()], &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.lines()
            .filter(|l| !l.starts_with(' '))
            .all(|l| l.starts_with("adhoc_group_setup |")),
        "{text}"
    );
    assert!(
        text.contains("- old: rule 7.9.1.4/no_recipients: respond 403"),
        "{text}"
    );
    assert!(
        text.contains("+ new: rule 5.2.1.1/no_offer: respond 488"),
        "{text}"
    );
    assert!(
        !text.contains("rule 7.9.1.4/setup"),
        "accepting is unchanged: {text}"
    );
}

#[test]
fn all_lists_the_request_classes_of_5_2_1_1() {
    let out = imspec(&[&specs(), &specs()], &["--all"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = stdout(&out);
    let rows = text
        .lines()
        .filter(|l| l.starts_with("page_mode_group_invite | state active | on initial INVITE"))
        .count();
    // Unauthenticated; a Digest user speaking for someone else; then, for each of the two
    // ways not to (no Digest user, or the From user), a body that cannot be parsed, list,
    // owned group, factory without list and anything else (the table in the spec).
    assert_eq!(rows, 2 + 2 * 5, "{text}");
    assert!(text.contains("= rule 5.2.1.1/not_for_this_server: respond 404 \"Not Found\"; done"));
}

#[test]
fn a_spec_that_does_not_check_is_an_error() {
    let new = edited("7.9.1.1_general.imspec", |t| {
        t.replace("respond 200", "respond 2000")
    });
    let out = imspec(&[&specs(), new.path()], &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

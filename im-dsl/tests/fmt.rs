//! The canonical formatter: golden layouts for tricky inputs, comment preservation,
//! idempotence and tree preservation on every spec in `specs/`, and the `imspec fmt` command.

use im_dsl::fmt::{format_source, run, same_ignoring_spans, scan_comments};
use im_dsl::parse::parse_file;
use std::path::{Path, PathBuf};

fn specs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs")
}

fn spec_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(specs_dir())
        .expect("specs/ is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "imspec"))
        .collect();
    files.sort();
    files
}

fn comment_texts(src: &str) -> Vec<String> {
    let mut v: Vec<String> = scan_comments(src).into_iter().map(|c| c.text).collect();
    v.sort();
    v
}

/// Formats `src` and checks the three formatter properties on it: the tree is the same, every
/// comment is still there, and formatting the output changes nothing.
fn check_properties(name: &str, src: &str) -> String {
    let out = format_source(src).unwrap_or_else(|d| panic!("{name}: {}", d.message));
    let before = parse_file(0, src).expect("input parses");
    let after = parse_file(0, &out).unwrap_or_else(|d| {
        panic!(
            "{name}: formatted output does not parse: {}\n{out}",
            d.message
        )
    });
    assert!(
        same_ignoring_spans(&before, &after),
        "{name}: formatting changed the tree\n{out}"
    );
    assert_eq!(
        comment_texts(src),
        comment_texts(&out),
        "{name}: comments lost or changed\n{out}"
    );
    let again = format_source(&out).expect("formatted output parses");
    assert_eq!(out, again, "{name}: formatting is not idempotent");
    out
}

fn golden(src: &str, expected: &str) {
    let out = check_properties("golden", src);
    assert_eq!(
        out, expected,
        "\n--- got ---\n{out}--- expected ---\n{expected}"
    );
}

#[test]
fn specs_format_idempotently_and_keep_their_tree() {
    let files = spec_files();
    assert!(
        !files.is_empty(),
        "no specs found in {}",
        specs_dir().display()
    );
    for f in files {
        let src = std::fs::read_to_string(&f).expect("spec is readable");
        check_properties(&f.display().to_string(), &src);
    }
}

#[test]
fn specs_are_fmt_clean() {
    let mut dirty = Vec::new();
    for f in spec_files() {
        let src = std::fs::read_to_string(&f).expect("spec is readable");
        if format_source(&src).expect("spec parses") != src {
            dirty.push(f.display().to_string());
        }
    }
    assert!(
        dirty.is_empty(),
        "not fmt-clean (run `imspec fmt specs/`): {dirty:?}"
    );
}

#[test]
fn layout_of_a_small_procedure() {
    golden(
        "procedure invitee_leg [7.9.1.4] { states { initial inviting  ringing  final connected }
  timer invite_timeout
  on response 1xx in inviting { rule ringing [7.9.1.4] => { goto ringing } }
  on response 300..699 in inviting,ringing { rule declined [7.9.1.4] => { goto connected deliver } }
  on timer invite_timeout { rule too_slow [7.9.1.4] => { cancel  start timer invite_timeout after 32000ms } }
  on legs settled { rule done => {} } on msrp connected {} }
import \"a.imspec\" import \"b.imspec\"",
        "procedure invitee_leg [7.9.1.4] {
  states { initial inviting  ringing  final connected }
  timer invite_timeout

  on response 1xx in inviting {
    rule ringing [7.9.1.4] => goto ringing
  }
  on response 300..699 in inviting, ringing {
    rule declined [7.9.1.4] => { goto connected  deliver }
  }
  on timer invite_timeout {
    rule too_slow [7.9.1.4] => { cancel  start timer invite_timeout after 32s }
  }
  on legs settled {
    rule done => {}
  }
  on msrp connected {}
}

import \"a.imspec\"
import \"b.imspec\"
",
    );
}

#[test]
fn comment_at_end_of_file_without_newline() {
    golden(
        "import \"a.imspec\"\n\n\n// the end",
        "import \"a.imspec\"\n\n// the end\n",
    );
    golden("// only a comment", "// only a comment\n");
    golden("", "");
    golden("  \n\n", "");
}

#[test]
fn trailing_comments_stay_on_their_line() {
    golden(
        "procedure p { // the procedure
  on initial INVITE { // the handler
    rule a [1] => goto x   // the rule
  } // end of handler
} // end of procedure
",
        "procedure p {            // the procedure
  on initial INVITE {    // the handler
    rule a [1] => goto x // the rule
  }                      // end of handler
}                        // end of procedure
",
    );
}

#[test]
fn comments_inside_blocks_and_before_closing_braces() {
    golden(
        "procedure p {
  on initial INVITE {
    first {
      // first rule

      rule a [1] => cancel
      // nothing after
    }

    // last words
  }
}",
        "procedure p {
  on initial INVITE {
    first {
      // first rule

      rule a [1] => cancel
      // nothing after
    }

    // last words
  }
}
",
    );
}

#[test]
fn comments_between_brackets_keep_the_block_broken() {
    golden(
        "procedure p { states { initial a // waiting
  b // ringing
  final c }
  on initial INVITE { rule r [1] when (x // why x
    or y) and z // and z
    and w => { cancel // first
    bye } } }",
        "procedure p {
  states {
    initial a // waiting
    b         // ringing
    final c
  }

  on initial INVITE {
    rule r [1]
        when (
          x // why x
          or y
        )
        and z // and z
        and w => {
      cancel // first
      bye
    }
  }
}
",
    );
}

#[test]
fn comments_between_operands_stay_and_others_move_above_the_rule() {
    golden(
        "condition c [1] = a // about a
  and b // about b
  and c
procedure p { on initial INVITE { rule r [1] when x == // odd place
  1 => { bye // bye
  } } }",
        "condition c [1] =
  a     // about a
  and b // about b
  and c

procedure p {
  on initial INVITE {
    // odd place
    rule r [1] when x == 1 => bye // bye
  }
}
",
    );
}

#[test]
fn comment_like_text_in_strings_is_not_a_comment() {
    golden(
        "procedure p \"title // not a comment\" { on initial INVITE { rule r => log \"a // b \\\" // c\" } }",
        "procedure p \"title // not a comment\" {
  on initial INVITE {
    rule r => log \"a // b \\\" // c\"
  }
}
",
    );
}

#[test]
fn nested_parentheses_are_kept_and_broken_from_the_outside_in() {
    golden(
        "condition c [1] = ((a)) and (b or (c and not (d)))",
        "condition c [1] = ((a)) and (b or (c and not (d)))\n",
    );
    golden(
        "condition pager_mode_offer [6.1.3.3.2] = count(sdp.media) == 1 and any m in sdp.media where (m.media == \"message\" and (m.proto == \"TCP/MSRP\" or m.proto == \"TCP/TLS/MSRP\") and m.has(\"sendonly\"))",
        "condition pager_mode_offer [6.1.3.3.2] =
  count(sdp.media) == 1
  and any m in sdp.media where (
    m.media == \"message\"
    and (m.proto == \"TCP/MSRP\" or m.proto == \"TCP/TLS/MSRP\")
    and m.has(\"sendonly\")
  )
",
    );
}

#[test]
fn long_conditions_break_at_and_or_with_a_continuation_indent() {
    golden(
        "procedure p { on initial INVITE { rule may_not_initiate [7.9.1.5] when not directory.may_initiate(request.uri, request.originator) => respond 403 } }",
        "procedure p {
  on initial INVITE {
    rule may_not_initiate [7.9.1.5]
        when not directory.may_initiate(request.uri, request.originator) =>
      respond 403
  }
}
",
    );
    golden(
        "procedure p { on initial MESSAGE { rule very_long_rule_name_here [5.2.1.1] when request.uri == config.conference_factory and body.parts.count(x) > 3 or request.method == \"MESSAGE\" => { respond 403 \"Forbidden\" log \"why\" } } }",
        "procedure p {
  on initial MESSAGE {
    rule very_long_rule_name_here [5.2.1.1]
        when request.uri == config.conference_factory and body.parts.count(x) > 3
        or request.method == \"MESSAGE\" => {
      respond 403 \"Forbidden\"
      log \"why\"
    }
  }
}
",
    );
}

#[test]
fn respond_bodies_and_sdp_blocks() {
    golden(
        "procedure p { on initial INVITE { rule r [1] => respond 200 \"OK\" { header X-A = \"1\" contact focus warning \"w\" sdp { path own media from offer accept-types intersect accept-wrapped-types intersect max-size own direction mirror setup complement echo a attribute x when y == 1 attribute z = \"v\" else 488 \"Not Acceptable Here\" } } rule s [2] => respond 404 { } otherwise other [3] => respond 486 \"Busy Here\" { warning \"short\" } } }",
        "procedure p {
  on initial INVITE {
    rule r [1] => respond 200 \"OK\" {
      header X-A = \"1\"
      contact focus
      warning \"w\"
      sdp {
        path own
        media from offer
        accept-types intersect
        accept-wrapped-types intersect
        max-size own
        direction mirror
        setup complement
        echo a
        attribute x when y == 1
        attribute z = \"v\"
        else 488 \"Not Acceptable Here\"
      }
    }
    rule s [2] => respond 404
    otherwise other [3] => respond 486 \"Busy Here\" { warning \"short\" }
  }
}
",
    );
}

#[test]
fn syntax_errors_are_diagnostics() {
    let d = format_source("procedure p { on initial INVITE { rule => bye } }").unwrap_err();
    assert_eq!(d.code.as_str(), "E0001");
    assert!(d.message.contains("expected"), "{}", d.message);
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("imspec-fmt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sub")).expect("temp dir");
    dir
}

#[test]
fn run_check_lists_unformatted_files_and_rewrites_without_check() {
    let dir = temp_dir("run");
    let clean = "import \"a.imspec\"\n";
    let dirty = "import   \"a.imspec\"   // hi\n";
    std::fs::write(dir.join("clean.imspec"), clean).unwrap();
    std::fs::write(dir.join("sub/dirty.imspec"), dirty).unwrap();
    std::fs::write(dir.join("sub/other.txt"), "not a spec").unwrap();

    let (mut out, mut err) = (Vec::new(), Vec::new());
    let s = run(std::slice::from_ref(&dir), true, &mut out, &mut err);
    let out = String::from_utf8(out).unwrap();
    assert_eq!((s.files, s.changed, s.errors), (2, 1, 0), "{out}");
    assert_eq!(s.exit_code(true), 1);
    assert!(out.contains("dirty.imspec is not formatted"), "{out}");
    assert!(out.contains("+import \"a.imspec\" // hi"), "{out}");
    assert!(!out.contains("clean.imspec"), "{out}");
    assert_eq!(
        std::fs::read_to_string(dir.join("sub/dirty.imspec")).unwrap(),
        dirty,
        "--check must not write"
    );

    let (mut out, mut err) = (Vec::new(), Vec::new());
    let s = run(std::slice::from_ref(&dir), false, &mut out, &mut err);
    assert_eq!((s.files, s.changed, s.errors), (2, 1, 0));
    assert_eq!(s.exit_code(false), 0);
    assert_eq!(
        std::fs::read_to_string(dir.join("sub/dirty.imspec")).unwrap(),
        "import \"a.imspec\" // hi\n"
    );

    let (mut out, mut err) = (Vec::new(), Vec::new());
    let s = run(std::slice::from_ref(&dir), true, &mut out, &mut err);
    assert_eq!((s.changed, s.exit_code(true)), (0, 0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn binary_exits_1_with_a_rendered_diagnostic_on_syntax_errors() {
    let dir = temp_dir("bin");
    let bad = dir.join("bad.imspec");
    std::fs::write(
        &bad,
        "procedure p {\n  on initial INVITE { rule x => respond 200 ( }\n}\n",
    )
    .unwrap();
    let good = dir.join("good.imspec");
    std::fs::write(&good, "import \"a.imspec\"\n").unwrap();
    let exe = env!("CARGO_BIN_EXE_imspec");

    let o = std::process::Command::new(exe)
        .args(["fmt", "--check"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{o:?}");

    let o = std::process::Command::new(exe)
        .arg("fmt")
        .arg(&bad)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("error[E0001]"), "{stderr}");
    assert!(stderr.contains("bad.imspec:2:"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let o = std::process::Command::new(exe)
        .arg("fmt")
        .arg(dir.join("missing.imspec"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_states_block_with_a_comment_per_state_stays_in_place() {
    let src = "procedure invitee_leg [7.9.1.4] {
  states {
    initial inviting // INVITE sent, waiting for any response
    ringing          // waiting for the final response
    cancelling       // CANCEL sent; waiting for the 487
    final connected
    final failed
  }
  timer invite_timeout

  on timer invite_timeout in ringing {
    rule ring_too_long [7.9.1.4] => { cancel  goto cancelling }
  }
  on response 2xx in inviting, ringing {
    rule answered [7.9.1.4] => goto connected
  }
  on response 3xx in inviting {
    rule declined [7.9.1.4] => goto failed
  }
}
";
    golden(src, src);
    // Broken by its author without comments: stays broken; on one line: stays on one line.
    golden(
        "procedure p {\n  states {\n    initial a\n    final b\n  }\n  on timer B { rule r [1] => goto b }\n}\n",
        "procedure p {\n  states {\n    initial a\n    final b\n  }\n\n  on timer B {\n    rule r [1] => goto b\n  }\n}\n",
    );
    golden(
        "procedure p {\n  states { initial a\n    final b }\n  on timer B { rule r [1] => goto b }\n}\n",
        "procedure p {\n  states { initial a  final b }\n\n  on timer B {\n    rule r [1] => goto b\n  }\n}\n",
    );
}

#[test]
fn action_blocks_keep_the_authors_line_breaks_and_otherwise_follow_the_width() {
    // The two exploder rules of rfc5365: both broken by the author, both stay broken, though
    // the second would fit on one line.
    golden(
        "procedure p {
  on initial MESSAGE {
    first {
      rule explode_list [7.2] when message_has_recipient_list => {
        respond 202 \"Accepted\"
        forward each recipient_list
      }
      otherwise explode_group [7.2] => {
        respond 202 \"Accepted\"
        forward each group_members
      }
    }
  }
}
",
        "procedure p {
  on initial MESSAGE {
    first {
      rule explode_list [7.2] when message_has_recipient_list => {
        respond 202 \"Accepted\"
        forward each recipient_list
      }
      otherwise explode_group [7.2] => {
        respond 202 \"Accepted\"
        forward each group_members
      }
    }
  }
}
",
    );
    // Written on one line: joined with two spaces while it fits, broken when it does not.
    golden(
        "procedure p { on initial MESSAGE { first {
      rule explode_list [7.2] when message_has_recipient_list => { respond 202 \"Accepted\" forward each recipient_list }
      otherwise explode_group [7.2] => { respond 202 \"Accepted\" forward each group_members } } } }",
        "procedure p {
  on initial MESSAGE {
    first {
      rule explode_list [7.2] when message_has_recipient_list => {
        respond 202 \"Accepted\"
        forward each recipient_list
      }
      otherwise explode_group [7.2] => { respond 202 \"Accepted\"  forward each group_members }
    }
  }
}
",
    );
    // The same for response bodies: a body the author broke stays broken (and, as any
    // multi-line action, starts on the line after `=>`).
    golden(
        "procedure p { on initial INVITE { rule r [1] => respond 403 \"Forbidden\" {
      warning \"short\"
    } } }",
        "procedure p {
  on initial INVITE {
    rule r [1] =>
      respond 403 \"Forbidden\" {
        warning \"short\"
      }
  }
}
",
    );
}

#[test]
fn long_built_in_comparisons_break_before_the_operator() {
    golden(
        "procedure p { on initial INVITE { rule over_limit [7.9.1.5] when directory.member_count(config.conference_factory) > directory.max_participants(config.conference_factory) => respond 403 } }",
        "procedure p {
  on initial INVITE {
    rule over_limit [7.9.1.5]
        when directory.member_count(config.conference_factory)
          > directory.max_participants(config.conference_factory) =>
      respond 403
  }
}
",
    );
    golden(
        "condition group_over_its_limit_because_of_a_long_name [7.9.1.5] = directory.max_participants(request.uri) > 0 and directory.member_count(config.conference_factory) > directory.max_participants(config.conference_factory)",
        "condition group_over_its_limit_because_of_a_long_name [7.9.1.5] =
  directory.max_participants(request.uri) > 0
  and directory.member_count(config.conference_factory)
    > directory.max_participants(config.conference_factory)
",
    );
    // Short comparisons are untouched.
    golden(
        "condition c [1] = count(recipients) > config.max_recipients",
        "condition c [1] = count(recipients) > config.max_recipients\n",
    );
}

//! `imspec trace`: the workspace's specs are fully cited, and the check fails when a
//! citation goes missing, names no rule, or a procedure's clause has no rule.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn imspec(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_imspec"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("runs")
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The marker for a citation, split so this file does not cite anything itself.
fn covers() -> String {
    ["// cov", "ers: "].concat()
}

#[test]
fn the_workspace_specs_pass_the_check() {
    let out = imspec(&workspace(), &["trace", "--check", "specs/"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("each cited by a test"),
        "{}",
        stderr(&out)
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("clause 7.9.1.4"), "{table}");
    assert!(
        table.contains("log: procedure=adhoc_group_setup rule=7.9.1.4/too_many_recipients"),
        "{table}"
    );
}

#[test]
fn json_and_markdown_list_every_rule() {
    let out = imspec(&workspace(), &["trace", "--format", "json", "specs/"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let rules = v["rules"].as_array().expect("rules");
    assert!(rules.len() > 40, "{}", rules.len());
    assert!(
        rules
            .iter()
            .all(|r| !r["tests"].as_array().expect("tests").is_empty())
    );
    let md = imspec(&workspace(), &["trace", "--format", "markdown", "specs/"]);
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(md.starts_with("| Clause | Rule |"), "{md}");
    assert_eq!(md.lines().count(), rules.len() + 2);
}

/// Copies the specs, the workspace manifest and every file holding a citation into a temp
/// tree, so a test can break one of them.
fn copy_tree() -> (tempfile::TempDir, Vec<String>) {
    let root = workspace();
    let tmp = tempfile::tempdir().expect("tmp");
    let cites = im_dsl::trace::scan_citations(&root).expect("scan");
    let mut files: Vec<String> = cites
        .iter()
        .map(|c| c.at.rsplit_once(':').expect("path:line").0.to_owned())
        .collect();
    files.sort();
    files.dedup();
    let specs: Vec<String> = std::fs::read_dir(root.join("specs"))
        .expect("specs")
        .map(|e| e.expect("entry"))
        // specs/cases/ is a directory; its cited files are in `files`.
        .filter(|e| e.path().is_file())
        .map(|e| format!("specs/{}", e.file_name().to_string_lossy()))
        .collect();
    for f in files.iter().chain(&specs).chain(&["Cargo.toml".to_owned()]) {
        let to = tmp.path().join(f);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(root.join(f), &to).expect("copy");
    }
    (tmp, files)
}

#[test]
fn removing_the_only_citation_of_a_rule_fails_the_check() {
    let (tmp, _) = copy_tree();
    let out = imspec(tmp.path(), &["trace", "--check", "specs/"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the copy passes: {}",
        stderr(&out)
    );

    // Remove every line citing one rule (Rust tests and case files cite most rules twice).
    let cites = im_dsl::trace::scan_citations(tmp.path()).expect("scan");
    let only = cites
        .iter()
        .min_by_key(|c| cites.iter().filter(|o| o.text == c.text).count())
        .expect("some rule is cited");
    let mut lines: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
    for c in cites.iter().filter(|c| c.text == only.text) {
        let (path, line) = c.at.rsplit_once(':').expect("path:line");
        lines
            .entry(path.to_owned())
            .or_default()
            .push(line.parse().expect("line"));
    }
    for (path, drop) in &lines {
        let file = tmp.path().join(path);
        let text = std::fs::read_to_string(&file).expect("read");
        let kept: Vec<&str> = text
            .lines()
            .enumerate()
            .filter(|(i, _)| !drop.contains(&(i + 1)))
            .map(|(_, l)| l)
            .collect();
        std::fs::write(&file, kept.join("\n")).expect("write");
    }

    let out = imspec(tmp.path(), &["trace", "--check", "specs/"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rule = only.text.rsplit(['/', ':']).next().expect("rule");
    let err = stderr(&out);
    assert!(err.contains(&format!("rule {rule} ")), "{err}");
    assert!(err.contains("has no test"), "{err}");
    assert!(err.contains("trace check failed"), "{err}");
}

#[test]
fn a_citation_of_no_rule_and_a_clause_without_rules_fail_the_check() {
    let tmp = tempfile::tempdir().expect("tmp");
    std::fs::write(tmp.path().join("Cargo.toml"), "[workspace]\n").expect("manifest");
    std::fs::create_dir_all(tmp.path().join("specs")).expect("specs");
    std::fs::create_dir_all(tmp.path().join("tests")).expect("tests");
    std::fs::write(
        tmp.path().join("specs/p.imspec"),
        "procedure p [9.9] {\n  on initial INVITE { rule r [9.8] => respond 200 \"OK\" { contact focus } }\n}\n",
    )
    .expect("spec");
    let c = covers();
    std::fs::write(
        tmp.path().join("tests/t.rs"),
        format!("{c}9.8/r\n#[test]\nfn t() {{}}\n{c}9.8/nope, 9.8/p::r\n#[test]\nfn u() {{}}\n"),
    )
    .expect("test");
    let out = imspec(tmp.path(), &["trace", "--check", "specs/"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("tests/t.rs:4: `covers: 9.8/nope` names no rule"),
        "{err}"
    );
    assert!(
        err.contains("clause 9.9 is in a procedure header but no rule implements it"),
        "{err}"
    );
    assert!(!err.contains("has no test"), "r is cited twice: {err}");
    // Without --check the matrix prints and the exit status is 0.
    let out = imspec(tmp.path(), &["trace", "specs/"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("test: tests/t.rs::t"), "{table}");
    assert!(table.contains("test: tests/t.rs::u"), "{table}");
}

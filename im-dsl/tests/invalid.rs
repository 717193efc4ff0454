//! The invalid-spec corpus: each `tests/invalid/<check>-<nn>.imspec` states the diagnostics
//! it must produce in leading comments (`// expect: E0007 @ 12:5`, or
//! `// expect: E0013 @ imports/x.imspec:2:8` for a diagnostic in another file, relative to
//! `tests/invalid/`). The codes and positions must match exactly (no more, no fewer), and the
//! rendered diagnostics are snapshots (`tests/snapshots/invalid__<name>.snap`).

use im_dsl::load::check_path;
use std::path::{Path, PathBuf};

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/invalid exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "imspec"))
        .collect();
    files.sort();
    files
}

/// (code, file relative to tests/invalid, line, column) from the `// expect:` lines.
fn expectations(path: &Path, text: &str) -> Vec<(String, String, usize, usize)> {
    let own = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines().take_while(|l| l.starts_with("//")) {
        let Some(rest) = line.strip_prefix("// expect:") else {
            continue;
        };
        let (code, at) = rest
            .split_once('@')
            .unwrap_or_else(|| panic!("{own}: bad expect line `{line}`"));
        let parts: Vec<&str> = at.trim().split(':').collect();
        let (file, l, c) = match parts.as_slice() {
            [l, c] => (own.clone(), *l, *c),
            [f, l, c] => (f.to_string(), *l, *c),
            _ => panic!("{own}: bad position in `{line}`"),
        };
        out.push((
            code.trim().to_string(),
            file,
            l.parse().expect("line"),
            c.parse().expect("column"),
        ));
    }
    out.sort();
    out
}

#[test]
fn corpus_is_big_enough() {
    let files = corpus();
    assert!(files.len() >= 14, "{} files", files.len());
    // Every diagnostic code the checker can emit appears in the corpus.
    let mut codes = std::collections::BTreeSet::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        for (c, ..) in expectations(f, &text) {
            codes.insert(c);
        }
    }
    let all: Vec<String> = (1..=18).map(|n| format!("E{n:04}")).collect();
    let missing: Vec<&String> = all.iter().filter(|c| !codes.contains(*c)).collect();
    assert!(
        missing.is_empty(),
        "codes without a corpus file: {missing:?}"
    );
}

#[test]
fn each_file_gives_exactly_its_expected_diagnostics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid");
    let prefix = "im-dsl/tests/invalid/";
    let mut failures = Vec::new();
    for f in corpus() {
        let text = std::fs::read_to_string(&f).expect("read");
        let want = expectations(&f, &text);
        let name = f.file_stem().expect("stem").to_string_lossy().into_owned();
        assert!(!want.is_empty(), "{name}: no `// expect:` line");
        let (sources, diags) = match check_path(&f) {
            Ok(_) => {
                failures.push(format!("{name}: checked clean"));
                continue;
            }
            Err(e) => e,
        };
        let mut got: Vec<(String, String, usize, usize)> = diags
            .iter()
            .map(|d| {
                let (l, c) = d.line_col(&sources);
                let file = sources
                    .get(d.span.file)
                    .map(|s| s.display.clone())
                    .unwrap_or_default();
                let rel = file.strip_prefix(prefix).unwrap_or(&file).to_string();
                (d.code.as_str().to_string(), rel, l, c)
            })
            .collect();
        got.sort();
        if got != want {
            failures.push(format!("{name}:\n  want {want:?}\n  got  {got:?}"));
        }
        for d in &diags {
            assert!(
                d.help.is_some(),
                "{name}: {} has no help line",
                d.code.as_str()
            );
            assert!(
                !d.label.is_empty(),
                "{name}: {} has no label",
                d.code.as_str()
            );
        }
        let rendered: Vec<String> = diags.iter().map(|d| d.render(&sources)).collect();
        let rendered = rendered.join("\n\n");
        assert!(
            rendered.contains(prefix),
            "{name}: paths are workspace-relative"
        );
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(dir.join("../snapshots"));
        settings.set_prepend_module_to_snapshot(false);
        settings.bind(|| insta::assert_snapshot!(format!("invalid__{name}"), rendered));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

//! Whole-file snapshots of the generator's output (prettyplease-formatted) for every spec in
//! `specs/` and every fixture in `tests/fixtures/`, plus the graph output of the seed spec.
//! Review changes with `cargo insta review`. Absolute paths (the `include_str!`s) are
//! replaced by `$WORKSPACE` so the snapshots hold in any checkout.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .expect("workspace root")
}

fn imspec_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "imspec"))
        .collect();
    v.sort();
    v
}

fn expand(path: &Path) -> String {
    let (sources, spec) = match im_dsl::load::check_path(path) {
        Ok(x) => x,
        Err((sources, diags)) => {
            let text: Vec<String> = diags.iter().map(|d| d.render(&sources)).collect();
            panic!("{} does not check:\n{}", path.display(), text.join("\n"));
        }
    };
    assert!(!sources.files.is_empty());
    let tokens = im_dsl::codegen::generate(&spec);
    // Replace the checkout's path before formatting: prettyplease breaks lines by width, so
    // replacing afterwards would make the layout depend on where the repository lives.
    let root = workspace().canonicalize().expect("root");
    let text = tokens
        .to_string()
        .replace(&*root.to_string_lossy(), "$WORKSPACE");
    let file = syn::parse_str::<syn::File>(&text).expect("the output parses as a Rust file");
    prettyplease::unparse(&file)
}

fn snapshot_dir(dir: &Path, prefix: &str) -> usize {
    let files = imspec_files(dir);
    for f in &files {
        let stem = f
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .replace('.', "_");
        insta::assert_snapshot!(format!("{prefix}__{stem}"), expand(f));
    }
    files.len()
}

#[test]
fn every_spec_expands() {
    assert!(snapshot_dir(&workspace().join("specs"), "spec") >= 6);
}

#[test]
fn every_fixture_expands() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    assert!(snapshot_dir(&dir, "fixture") >= 1);
}

#[test]
fn graphs_of_the_seed_spec() {
    let path = workspace().join("specs/page_mode_group_invite.imspec");
    let (_, spec) = im_dsl::load::check_path(&path).expect("checks");
    insta::assert_snapshot!(
        "graph_dot",
        im_dsl::graph::render(&spec, im_dsl::graph::Format::Dot)
    );
    insta::assert_snapshot!(
        "graph_mermaid",
        im_dsl::graph::render(&spec, im_dsl::graph::Format::Mermaid)
    );
}

#[test]
fn graph_command_prints_mermaid_and_rejects_bad_specs() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_imspec"))
            .args(args)
            .current_dir(workspace())
            .env("NO_COLOR", "1")
            .output()
            .expect("runs")
    };
    let out = run(&[
        "graph",
        "specs/7.9.1.4_adhoc_group.imspec",
        "--format",
        "mermaid",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("stateDiagram-v2\n"), "{text}");
    assert!(text.contains("state \"ringing\""), "{text}");
    assert!(text.contains(
        ": response 2xx [first: otherwise] / stop timer invite_timeout, deliver (answered 7.9.1.4)"
    ));
    let out = run(&["graph", "specs/7.9.1.4_adhoc_group.imspec"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("digraph imspec {"));
    let bad = workspace().join("im-macros/tests/ui/unknown_state/goto.imspec");
    let out = run(&["graph", bad.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[E0009]"));
}

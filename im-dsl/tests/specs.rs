//! Every spec in `specs/` loads and checks clean, and its model keeps the invariants
//! documented in `im_dsl::model`.

use im_dsl::load::check_path;
use std::path::PathBuf;

fn spec_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../specs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("specs/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "imspec"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_spec_checks_clean() {
    let files = spec_files();
    assert!(!files.is_empty(), "no specs found");
    let mut failures = String::new();
    for f in &files {
        match check_path(f) {
            Ok((_, spec)) => {
                for p in &spec.procedures {
                    assert!(!p.states.is_empty(), "{}: no states", p.name);
                    assert!(p.initial < p.states.len(), "{}: bad initial", p.name);
                    assert!(!p.clause.is_empty(), "{}: no clause", p.name);
                }
                assert_eq!(spec.files.len(), {
                    let (s, _, _) = im_dsl::load::load(f);
                    s.files.len()
                });
            }
            Err((sources, diags)) => {
                for d in diags {
                    failures.push_str(&d.render(&sources));
                    failures.push('\n');
                }
            }
        }
    }
    assert!(failures.is_empty(), "specs with errors:\n{failures}");
}

#[test]
fn the_entry_spec_reads_its_imports() {
    let root =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../specs/page_mode_group_invite.imspec");
    let (_, spec) = check_path(&root)
        .map_err(|(s, d)| {
            d.iter()
                .map(|d| d.render(&s))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .expect("clean");
    assert_eq!(spec.files[0].0, "specs/page_mode_group_invite.imspec");
    assert!(spec.files.len() > 1, "imports are listed: {:?}", spec.files);
    assert!(
        spec.files
            .iter()
            .all(|(_, p)| p.as_ref().is_some_and(|p| p.is_absolute()))
    );
}

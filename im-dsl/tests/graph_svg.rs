//! `imspec graph --format svg`: laid out in-process, well-formed SVG (parsed with roxmltree)
//! that names every procedure, every state and every rule of each spec.

use std::path::Path;
use std::process::Command;

#[test]
fn every_spec_draws_as_svg_naming_each_state_and_rule() {
    let specs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs");
    let mut files: Vec<_> = std::fs::read_dir(&specs)
        .expect("specs")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "imspec"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for f in files {
        let out = Command::new(env!("CARGO_BIN_EXE_imspec"))
            .args(["graph", "--format", "svg"])
            .arg(&f)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(0), "{}: {out:?}", f.display());
        let svg = String::from_utf8(out.stdout).expect("utf8");
        let doc = roxmltree::Document::parse(&svg)
            .unwrap_or_else(|e| panic!("{}: not well-formed XML: {e}", f.display()));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg", "{}", f.display());
        assert_eq!(
            root.tag_name().namespace(),
            Some("http://www.w3.org/2000/svg")
        );
        // Labels of states and of edges (layout-rs draws an edge label as a box on the edge)
        // are <tspan>s, one per line.
        let texts = |tag: &str| -> Vec<String> {
            doc.descendants()
                .filter(|n| n.tag_name().name() == tag)
                .map(|n| n.text().unwrap_or("").trim().to_owned())
                .collect()
        };
        let nodes = texts("tspan");

        let (_, spec) = im_dsl::load::check_path(&f).expect("checks");
        for p in &spec.procedures {
            let title = format!("procedure {} [{}]", p.name, p.clause);
            assert!(
                nodes.contains(&title),
                "{}: no `{title}` in {nodes:?}",
                f.display()
            );
            for s in &p.states {
                assert!(
                    nodes.contains(&s.name),
                    "{}: state {} missing",
                    f.display(),
                    s.name
                );
            }
            for r in im_dsl::trace::procedure_rules(p) {
                let tag = format!("({} {})", r.name, r.clause);
                assert!(
                    nodes.contains(&tag),
                    "{}: no edge for rule {} in {nodes:?}",
                    f.display(),
                    r.name
                );
            }
        }
    }
}

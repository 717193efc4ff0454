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

/// A leg procedure may share its inviter's clause and even come first: `call` (in the model)
/// and the generated `by_clause` both pick the procedure with an `on initial` handler, and the
/// inviter still gets that leg.
#[test]
fn call_targets_are_the_procedures_that_take_an_initial_request() {
    let text = "procedure dispatch [5.2.1.1] {
  on initial INVITE { rule adhoc [5.2.1.1] => call 7.9.1.4 }
}
procedure leg [7.9.1.4] {
  states { initial inviting  final done }
  on response 2xx in inviting { rule answered [7.9.1.4] => goto done }
}
procedure adhoc [7.9.1.4] {
  on initial INVITE { rule go [7.9.1.4] => invite each recipient_list }
}
";
    let (_, spec) = im_dsl::load::check_str("legs_first.imspec", text)
        .map_err(|(s, d)| {
            d.iter()
                .map(|d| d.render(&s))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .expect("clean");
    let callee = match &spec.procedures[0].handlers[0].alternatives[..] {
        [im_dsl::model::Alternative::Rule(r)] => match r.actions[..] {
            [im_dsl::model::Action::Call(i)] => i,
            _ => panic!("not one call: {:?}", r.actions),
        },
        other => panic!("not one rule: {other:?}"),
    };
    assert_eq!(spec.procedures[callee].name, "adhoc");
    assert_eq!(
        spec.procedure_by_clause("7.9.1.4").map(|p| p.name.as_str()),
        Some("adhoc")
    );
    assert_eq!(im_dsl::codegen::invitee_leg_of(&spec, callee), Some(1));
    let code = im_dsl::codegen::generate(&spec).to_string();
    let arm = code
        .split("fn by_clause")
        .nth(1)
        .and_then(|s| s.split("\"7.9.1.4\" =>").nth(1))
        .expect("a by_clause arm for 7.9.1.4");
    let first_machine = arm.split(", ").next().unwrap_or_default();
    assert!(
        first_machine.contains("AnyMachine :: Adhoc"),
        "by_clause(\"7.9.1.4\") must create the adhoc machine: {first_machine}"
    );
}

//! The TextMate grammar in `editors/vscode/syntaxes/imspec.tmLanguage.json`, run by a real
//! TextMate engine (syntect with Oniguruma, the regex dialect VS Code uses), on every spec of
//! `specs/`, of `examples/` and of the invalid corpus: every non-whitespace character gets a
//! scope beyond the file's base scope, keywords, strings, comments and clause ids get theirs,
//! and no character of a valid spec is marked illegal.

use std::path::{Path, PathBuf};
use syntect::easy::ScopeRangeIterator;
use syntect::parsing::{ParseState, Scope, ScopeStack, SyntaxSet, SyntaxSetBuilder};
use syntect::util::LinesWithEndings;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn syntaxes() -> SyntaxSet {
    let path = root().join("editors/vscode/syntaxes/imspec.tmLanguage.json");
    let def = syntect_tmlanguage::load_file(&path).expect("the grammar loads");
    let mut b = SyntaxSetBuilder::new();
    b.add(def);
    b.build()
}

/// Each non-whitespace character's innermost scope, as `(line, text, scope)` runs.
fn tokens(ss: &SyntaxSet, text: &str) -> Vec<(usize, String, String)> {
    let syntax = ss
        .find_syntax_by_scope(Scope::new("source.imspec").expect("scope"))
        .expect("source.imspec");
    let mut state = ParseState::new(syntax);
    let mut stack = ScopeStack::new();
    let mut out = Vec::new();
    for (n, line) in LinesWithEndings::from(text).enumerate() {
        let ops = state.parse_line(line, ss).expect("tokenizes");
        for (range, op) in ScopeRangeIterator::new(&ops, line) {
            stack.apply(op).expect("scope op");
            let piece = &line[range];
            if piece.trim().is_empty() {
                continue;
            }
            let scope = stack
                .as_slice()
                .last()
                .map(|s| s.build_string())
                .unwrap_or_default();
            out.push((n + 1, piece.trim().to_owned(), scope));
        }
    }
    out
}

fn spec_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.expect("entry").path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            spec_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "imspec") {
            out.push(p);
        }
    }
}

fn files(under: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for u in under {
        spec_files(&root().join(u), &mut out);
    }
    out.sort();
    assert!(!out.is_empty(), "no specs under {under:?}");
    out
}

#[test]
fn every_token_of_every_spec_is_classified() {
    let ss = syntaxes();
    let valid = files(&["specs", "examples", "im-dsl/tests/fixtures"]);
    let invalid = files(&["im-dsl/tests/invalid"]);
    for f in valid.iter().chain(&invalid) {
        let text = std::fs::read_to_string(f).expect("read");
        for (line, piece, scope) in tokens(&ss, &text) {
            assert!(
                scope != "source.imspec" && !scope.is_empty(),
                "{}:{line}: `{piece}` has only the base scope",
                f.display()
            );
        }
    }
    // Valid specs: nothing illegal.
    for f in &valid {
        let text = std::fs::read_to_string(f).expect("read");
        if im_dsl::parse::parse_file(0, &text).is_err() {
            continue; // a fixture that is meant not to parse
        }
        for (line, piece, scope) in tokens(&ss, &text) {
            assert!(
                !scope.starts_with("invalid"),
                "{}:{line}: `{piece}` is marked {scope}",
                f.display()
            );
        }
    }
}

#[test]
fn keywords_strings_comments_and_clauses_get_their_scopes() {
    let ss = syntaxes();
    let text =
        std::fs::read_to_string(root().join("specs/7.9.1.4_adhoc_group.imspec")).expect("read");
    let toks = tokens(&ss, &text);
    let scope_of = |piece: &str| {
        toks.iter()
            .find(|(_, p, _)| p == piece)
            .map(|(_, _, s)| s.clone())
            .unwrap_or_else(|| panic!("no token `{piece}`"))
    };
    assert!(scope_of("procedure").starts_with("storage.type"));
    assert!(scope_of("adhoc_group_setup").starts_with("entity.name.function"));
    assert!(scope_of("first").starts_with("keyword.control"));
    assert!(scope_of("respond").starts_with("keyword.control"));
    assert!(scope_of("and").starts_with("keyword.operator"));
    assert!(scope_of("7.9.1.4").starts_with("constant.other.clause"));
    assert!(scope_of("403").starts_with("constant.numeric"));
    assert!(scope_of("INVITE").starts_with("support.constant.method"));
    assert!(scope_of("config").starts_with("variable.language.fact"));
    assert!(scope_of("invite_timeout").starts_with("variable.other.timer"));
    assert!(
        toks.iter()
            .any(|(_, p, s)| p == "invite_timeout" && s.starts_with("variable.other.member")),
        "config.invite_timeout's field"
    );
    assert!(
        toks.iter()
            .any(|(_, p, s)| p.contains("Forbidden") && s.starts_with("string.quoted.double")),
        "a string"
    );
    assert!(
        toks.iter()
            .any(|(_, p, s)| p.starts_with("// OMA SIMPLE IM") && s.starts_with("comment.line")),
        "a comment"
    );
    // Interpolation inside a warning.
    assert!(
        toks.iter().any(|(_, p, s)| p == "config.max_recipients"
            && s.starts_with("variable.other.interpolated")),
        "an interpolated fact"
    );
}

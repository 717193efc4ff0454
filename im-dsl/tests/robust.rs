//! Arbitrary input never panics the loader or the checker: random strings, and random
//! mutations of the real specs (which reach much deeper into the checks than noise does).

use im_dsl::load::check_str;
use proptest::prelude::*;
use std::path::Path;

fn specs() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs");
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .expect("specs/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "imspec"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect();
    out.sort();
    out
}

/// Every diagnostic renders, and its span lies in its file.
fn run(text: &str) {
    // A name under specs/ so that imports of the real specs resolve.
    let display = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/__proptest.imspec");
    if let Err((sources, diags)) = check_str(&display.to_string_lossy(), text) {
        assert!(!diags.is_empty());
        for d in diags {
            let f = sources.get(d.span.file).expect("span file exists");
            assert!(
                d.span.start <= d.span.end && d.span.end <= f.text.len(),
                "{d:?}"
            );
            let _ = d.render(&sources);
        }
    }
}

/// An edit applied to a spec text at a relative position.
#[derive(Clone, Debug)]
enum Edit {
    Delete(f64, usize),
    Insert(f64, String),
    Duplicate(f64, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let tokens = prop::sample::select(vec![
        "{",
        "}",
        "(",
        ")",
        "\"",
        "not ",
        " and ",
        " or ",
        "==",
        "first {",
        "otherwise [1] => bye",
        "rule r [1] when x => bye ",
        "goto nowhere ",
        "{config.max_recipients}",
        "\\{",
        "[",
        "]",
        "respond ",
        "999",
        "7xx",
        "..",
        "any m in sdp.media where (",
        "count(",
        ",",
        "import \"a\"",
        "\u{e9}",
        "\n",
        "0",
        "-",
        "states { }",
        "initial ",
        "final ",
    ]);
    prop_oneof![
        (0.0..1.0f64, 1usize..40).prop_map(|(p, n)| Edit::Delete(p, n)),
        (0.0..1.0f64, tokens.prop_map(String::from)).prop_map(|(p, s)| Edit::Insert(p, s)),
        (0.0..1.0f64, 1usize..200).prop_map(|(p, n)| Edit::Duplicate(p, n)),
    ]
}

fn boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(mut s: String, edits: &[Edit]) -> String {
    for e in edits {
        match e {
            Edit::Delete(p, n) => {
                let a = boundary(&s, (s.len() as f64 * p) as usize);
                let b = boundary(&s, a + n);
                s.replace_range(a..b, "");
            }
            Edit::Insert(p, t) => {
                let a = boundary(&s, (s.len() as f64 * p) as usize);
                s.insert_str(a, t);
            }
            Edit::Duplicate(p, n) => {
                let a = boundary(&s, (s.len() as f64 * p) as usize);
                let b = boundary(&s, a + n);
                let chunk = s[a..b].to_string();
                s.insert_str(b, &chunk);
            }
        }
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_do_not_panic(s in ".{0,300}") {
        run(&s);
    }

    #[test]
    fn grammar_shaped_noise_does_not_panic(s in "(procedure|condition|rule|on|first|otherwise|when|respond|goto|states|initial|final|timer|\\{|\\}|\\[1\\]|=>|=|x|y|and|or|not|\\(|\\)|==|\"a\"|1|2xx| |\n){0,80}") {
        run(&s);
    }

    #[test]
    fn mutated_specs_do_not_panic(which in 0usize..64, edits in prop::collection::vec(edit(), 1..6)) {
        let all = specs();
        prop_assume!(!all.is_empty());
        let text = apply(all[which % all.len()].clone(), &edits);
        run(&text);
    }
}

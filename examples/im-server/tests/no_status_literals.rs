//! Every SIP status the server sends comes from `specs/` (or from the runtime's SIP core):
//! the application code in `examples/im-server/src/` never writes one. This test reads every
//! `.rs` file under `src/` and fails, naming file and line, on a status-code literal.
//!
//! # What counts as a status-code literal
//!
//! The sources are split into Rust tokens by a small lexer below (comments, strings, raw
//! strings, byte strings, char literals, lifetimes, numbers and identifiers), so that
//! comments are never read as code and a number inside a longer token is never read alone.
//! Then, in code:
//!
//! 1. an **integer literal** whose value is 100–699: decimal, `_` separators and an integer
//!    suffix allowed (`404`, `4_04`, `486u16`). Hex, octal and binary literals and floats
//!    are not counted: nobody writes a status so;
//! 2. a **string, byte-string or char literal** whose trimmed content is a three-digit
//!    number 100–699 (`"486"`), starts with one followed by a space and an upper-case
//!    letter, as a reason phrase does (`"486 Busy Here"`, but not `"200 ms"`), or holds `SIP/2.0 ` followed by one (a status line);
//! 3. a **named status**: `StatusCode::` followed by an upper-case constant
//!    (`StatusCode::NOT_FOUND`): a name is the same decision as a number.
//!
//! Not counted:
//! * comments, doc comments included (docs may name the status a spec gives);
//! * items under `#[cfg(test)]`, and files that open with `#![cfg(test)]` (unit tests assert
//!   what was decided; they decide nothing);
//! * numbers inside the argument list of `Duration::from_secs` / `from_millis` /
//!   `from_micros` / `from_nanos` (a time, e.g. T1 = 500 ms, is not a status);
//! * numbers inside longer tokens: `"127.0.0.1:5060"`, `0x200`, `2.500`, `x404`;
//! * the files in [`HTTP_ONLY`]: they speak HTTP, not SIP (the XCAP interface, whose
//!   statuses RFC 4825 fixes), and never see a SIP request;
//! * a line carrying the marker comment `// not a SIP status: <why>`: an explicit,
//!   reviewable exception for a number that happens to fall in 100–699 (a minimum chunk
//!   size of 256 octets, say). The reason after the colon must not be empty.

use std::path::{Path, PathBuf};

/// Files under `src/` that answer HTTP only (XCAP, RFC 4825): their statuses are HTTP ones.
const HTTP_ONLY: &[&str] = &["src/xcap.rs"];

/// The marker that exempts one line (see the module docs).
const MARKER: &str = "not a SIP status:";

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Int(String),
    Float,
    Str(String),
    Punct(char),
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    line: usize,
}

/// Tokens of `src` plus, per line, the text of the comments on it.
fn lex(src: &str) -> (Vec<Token>, Vec<(usize, String)>) {
    let c: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut comments = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            let start = i;
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
            comments.push((line, c[start..i].iter().collect()));
        } else if ch == '/' && at(i + 1) == '*' {
            // Block comments nest in Rust.
            let mut depth = 0;
            let start_line = line;
            let start = i;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
            comments.push((start_line, c[start..i].iter().collect()));
        } else if let Some((len, hashes)) = raw_string_start(&c, i) {
            // r"…", r#"…"#, br"…", cr#"…"# …: no escapes, ends at a quote plus the hashes.
            let start_line = line;
            i += len;
            let body_start = i;
            loop {
                if i >= c.len() {
                    break;
                }
                if c[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#') {
                    break;
                }
                if c[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
            let body: String = c[body_start..i.min(c.len())].iter().collect();
            i += 1 + hashes;
            toks.push(Token {
                tok: Tok::Str(body),
                line: start_line,
            });
        } else if ch == '"' || ((ch == 'b' || ch == 'c') && at(i + 1) == '"') {
            let start_line = line;
            i += if ch == '"' { 1 } else { 2 };
            let mut body = String::new();
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    body.push(c[i]);
                    i += 1;
                }
                if at(i) == '\n' {
                    line += 1;
                }
                if i < c.len() {
                    body.push(c[i]);
                }
                i += 1;
            }
            i += 1;
            toks.push(Token {
                tok: Tok::Str(body),
                line: start_line,
            });
        } else if ch == '\'' || (ch == 'b' && at(i + 1) == '\'') {
            let q = if ch == 'b' { i + 1 } else { i };
            // A char literal is a quote, one (possibly escaped) char and a quote; anything
            // else after the quote is a lifetime or a label.
            if at(q + 1) == '\\' {
                let mut j = q + 2;
                while j < c.len() && c[j] != '\'' && c[j] != '\n' {
                    j += 1;
                }
                let body: String = c[q + 1..j.min(c.len())].iter().collect();
                toks.push(Token {
                    tok: Tok::Str(body),
                    line,
                });
                i = j + 1;
            } else if at(q + 2) == '\'' {
                toks.push(Token {
                    tok: Tok::Str(at(q + 1).to_string()),
                    line,
                });
                i = q + 3;
            } else {
                toks.push(Token {
                    tok: Tok::Punct('\''),
                    line,
                });
                i = q + 1;
            }
        } else if ch.is_ascii_digit() {
            let start = i;
            while at(i).is_ascii_alphanumeric() || at(i) == '_' {
                i += 1;
            }
            let mut float = false;
            // `1.5`, `2.500`: a float. `1..5` (a range) and `1.max(2)` are not.
            if at(i) == '.' && at(i + 1).is_ascii_digit() {
                float = true;
                i += 1;
                while at(i).is_ascii_alphanumeric() || at(i) == '_' {
                    i += 1;
                }
            }
            let text: String = c[start..i].iter().collect();
            // `1e3` stays an Int token here; `int_value` rejects its `e3` "suffix".
            toks.push(Token {
                tok: if float { Tok::Float } else { Tok::Int(text) },
                line,
            });
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            if ch == 'r' && at(i + 1) == '#' {
                i += 2; // raw identifier r#name
            }
            while at(i).is_alphanumeric() || at(i) == '_' {
                i += 1;
            }
            toks.push(Token {
                tok: Tok::Ident(c[start..i].iter().collect::<String>().replace("r#", "")),
                line,
            });
        } else {
            toks.push(Token {
                tok: Tok::Punct(ch),
                line,
            });
            i += 1;
        }
    }
    (toks, comments)
}

/// `Some((prefix length including the opening quote, number of hashes))` when a raw string
/// starts at `i`.
fn raw_string_start(c: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if matches!(c.get(j), Some('b' | 'c')) {
        j += 1;
    }
    if c.get(j) != Some(&'r') {
        return None;
    }
    // An identifier ending in r (`for"`) is not a raw string: look at what precedes.
    if i > 0
        && c.get(i - 1)
            .is_some_and(|p| p.is_alphanumeric() || *p == '_')
    {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while c.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (c.get(j) == Some(&'"')).then_some((j + 1 - i, hashes))
}

fn is_status(n: u64) -> bool {
    (100..=699).contains(&n)
}

/// The value of a decimal integer literal (`_` and an integer suffix allowed).
fn int_value(text: &str) -> Option<u64> {
    if text.len() > 1 && text.starts_with('0') && text[1..].starts_with(['x', 'o', 'b']) {
        return None;
    }
    let digits: String = text
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '_')
        .filter(|c| *c != '_')
        .collect();
    let suffix = &text[text
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '_'))
        .map_or(text.len(), |(i, _)| i)..];
    const SUFFIXES: &[&str] = &[
        "", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
    ];
    if !SUFFIXES.contains(&suffix) {
        return None;
    }
    digits.parse().ok()
}

/// Whether a string literal's content is a status (rule 2).
fn string_is_status(s: &str) -> bool {
    let three = |t: &str| {
        t.len() >= 3
            && t.as_bytes()[..3].iter().all(u8::is_ascii_digit)
            && t[..3].parse().is_ok_and(is_status)
    };
    let t = s.trim();
    if three(t) && t.len() == 3 {
        return true;
    }
    if three(t) && t.as_bytes().get(3) == Some(&b' ') && t[4..].starts_with(char::is_uppercase) {
        return true;
    }
    s.match_indices("SIP/2.0 ").any(|(i, m)| {
        let rest = &s[i + m.len()..];
        three(rest) && !rest.as_bytes().get(3).is_some_and(u8::is_ascii_digit)
    })
}

const DURATION_CTORS: &[&str] = &["from_secs", "from_millis", "from_micros", "from_nanos"];

/// Every status-code literal in `src`: (line, what was found).
fn status_literals(src: &str) -> Vec<(usize, String)> {
    let (toks, comments) = lex(src);
    let exempt_lines: Vec<usize> = comments
        .iter()
        .filter(|(_, text)| {
            text.find(MARKER)
                .is_some_and(|i| !text[i + MARKER.len()..].trim().is_empty())
        })
        .map(|(l, _)| *l)
        .collect();
    let mut found = Vec::new();
    // Open parentheses: whether each is a Duration constructor's argument list.
    let mut parens: Vec<bool> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        let prev_ident = |k: usize| match k.checked_sub(1).map(|p| &toks[p].tok) {
            Some(Tok::Ident(s)) => Some(s.as_str()),
            _ => None,
        };
        match &t.tok {
            Tok::Punct('#') if is_cfg_test(&toks, i) => {
                i = skip_item(&toks, i);
                continue;
            }
            Tok::Punct('(') => {
                parens.push(prev_ident(i).is_some_and(|p| DURATION_CTORS.contains(&p)));
            }
            Tok::Punct(')') => {
                parens.pop();
            }
            Tok::Int(text) => {
                let in_duration = parens.iter().any(|d| *d);
                if !in_duration
                    && int_value(text).is_some_and(is_status)
                    && !exempt_lines.contains(&t.line)
                {
                    found.push((t.line, text.clone()));
                }
            }
            Tok::Str(s) if string_is_status(s) && !exempt_lines.contains(&t.line) => {
                found.push((t.line, format!("{s:?}")));
            }
            Tok::Ident(name) if name == "StatusCode" => {
                let colons = matches!(
                    (
                        toks.get(i + 1).map(|t| &t.tok),
                        toks.get(i + 2).map(|t| &t.tok)
                    ),
                    (Some(Tok::Punct(':')), Some(Tok::Punct(':')))
                );
                if colons
                    && let Some(Tok::Ident(c)) = toks.get(i + 3).map(|t| &t.tok)
                    && c.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_')
                    && !exempt_lines.contains(&t.line)
                {
                    found.push((t.line, format!("StatusCode::{c}")));
                }
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// Whether the file is a test module as a whole: its first line after comments is the
/// inner attribute `#![cfg(test)]`.
fn is_test_file(src: &str) -> bool {
    src.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("//"))
        == Some("#![cfg(test)]")
}

/// Whether `#[cfg(test)]` starts at token `i`.
fn is_cfg_test(toks: &[Token], i: usize) -> bool {
    let want = [
        Tok::Punct('#'),
        Tok::Punct('['),
        Tok::Ident("cfg".into()),
        Tok::Punct('('),
        Tok::Ident("test".into()),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    toks.get(i..i + want.len())
        .is_some_and(|w| w.iter().zip(&want).all(|(a, b)| a.tok == *b))
}

/// The index after the item that follows the attribute at `i`: up to its first `;` at
/// depth 0, or through the `{…}` block that comes first.
fn skip_item(toks: &[Token], i: usize) -> usize {
    let mut j = i + 7;
    let mut depth = 0usize;
    while j < toks.len() {
        match toks[j].tok {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return j + 1;
                }
            }
            Tok::Punct(';') if depth == 0 => return j + 1,
            _ => {}
        }
        j += 1;
    }
    j
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn server_sources_have_no_status_literals() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("src/app.rs")),
        "scanned the wrong folder: {files:?}"
    );
    let mut problems = Vec::new();
    for f in &files {
        if HTTP_ONLY.iter().any(|h| f.ends_with(h)) {
            continue;
        }
        let src = std::fs::read_to_string(f).expect("read source");
        if is_test_file(&src) {
            continue;
        }
        // The lexer must not lose its way in any real file (an unterminated string or
        // comment would hide the rest): a literal appended at the end is still found.
        let probe = format!("{src}\nfn probe() -> u16 {{ 404 }}\n");
        let last = probe.lines().count();
        assert!(
            status_literals(&probe).contains(&(last, "404".to_owned())),
            "the lexer lost its way in {}",
            f.display()
        );
        for (line, what) in status_literals(&src) {
            problems.push(format!(
                "{}:{line}: {what}",
                f.strip_prefix(root).unwrap_or(f).display()
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "SIP status-code literals in the server's code (statuses come from specs/; see the \
         rule at the top of tests/no_status_literals.rs):\n{}",
        problems.join("\n")
    );
}

fn lines(src: &str) -> Vec<usize> {
    status_literals(src).into_iter().map(|(l, _)| l).collect()
}

#[test]
fn flags_numbers_strings_and_named_statuses_in_code() {
    let src = r##"
fn a() -> u16 { 200 }
fn b() { respond(StatusCode::new(404)); }
fn c() { let s = "486"; }
fn d() { let s = "486 Busy Here"; }
fn e() { let s = b"SIP/2.0 603 Decline\r\n"; }
fn f() { let x = 4_04u16; }
fn g() { reply(StatusCode::NOT_FOUND); }
fn h() { let s = r#"SIP/2.0 180 Ringing"#; }
fn i() { match x { 300..=399 => {} _ => {} } }
fn j() { let x = Duration::from_secs(1) + Duration::from_secs(0); call(480); }
"##;
    assert_eq!(lines(src), vec![2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 11]);
}

#[test]
fn ignores_comments_tests_times_and_longer_tokens() {
    let src = r##"
// A 404 in a comment, /* and 486 */ here.
/// Doc: more get 486 (Busy Here).
/* block 403 /* nested 404 */ still 405 */
fn a() { let addr = "127.0.0.1:5060"; let t = Duration::from_millis(500); }
fn b() { let x = 0x200; let y = 2.500; let z = x404; let w = 1.5e2; let q = 5060; }
fn c() { let s = "200 ms"; let d = Duration::from_secs(365 * 24 * 3600); }
fn d<'a>(x: &'a str) -> char { 'x' }
fn e() { let min = 256; } // not a SIP status: the smallest MSRP chunk
#[cfg(test)]
mod tests { fn t() { assert_eq!(status, 404); } }
fn f() { let n = 99; let m = 700; let r = 1..200; }
"##;
    // Only `1..200` is left: a range bound in 100–699 is still a literal in code.
    assert_eq!(lines(src), vec![12]);
}

#[test]
fn marker_needs_a_reason() {
    assert_eq!(lines("let min = 256; // not a SIP status:\n"), vec![1]);
    assert_eq!(
        lines("let min = 256; // not a SIP status: a size\n"),
        Vec::<usize>::new()
    );
}

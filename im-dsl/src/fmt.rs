//! The canonical formatter behind `imspec fmt`.
//!
//! The text is parsed to the [`ast`](crate::ast), the tree is turned into a small layout
//! document (Wadler/Oppen style groups that print flat when they fit in [`WIDTH`] columns and
//! break at their line points otherwise), and the document is rendered to lines. Each rendered
//! line remembers the source byte range of the tokens it shows.
//!
//! Comments are silent in the grammar, so they are recovered from the source text by position
//! and put back relative to those lines:
//!
//! * a comment that follows, on the same source line, the last token of an output line stays
//!   a trailing comment of that line;
//! * a comment that falls between the first and last token of an output line (inside an
//!   expression that now prints on one line, say) moves above that line;
//! * any other comment goes above the output line whose first token is the next one after it
//!   in the source, or to the end of the file when no token follows.
//!
//! Every comment therefore survives, and formatting is idempotent: a comment written above a
//! line is found again right before that line's first token, and a trailing comment right after
//! its last token.
//!
//! ## When a block breaks
//!
//! A brace block whose items may share a line — a `states { … }` block, a rule's action block
//! `=> { a  b }` and a response body `respond 403 { … }` — prints on one line only when all of
//! these hold: it fits in [`WIDTH`] columns, no comment lies between its braces, and the author
//! did not break the line right after its `{`. Otherwise it prints one item per line, each
//! item's trailing comment beside it. The author's choice is thus kept both ways (as prettier
//! does for object literals), and the rule is idempotent: a block printed broken has a line
//! break after its `{` and stays broken. Handler, `first`, procedure and `sdp` blocks always
//! take one item per line.
//!
//! Expressions break from the outside in, by width only: an `and`/`or` chain before each
//! operator, then a comparison before its operator, then a parenthesis or an argument list
//! inside. A long built-in comparison such as `directory.member_count(request.uri) >
//! directory.max_participants(request.uri)` therefore breaks before `>` and keeps each call
//! whole.

use crate::ast::*;
use crate::diag::Diagnostic;
use crate::parse::parse_file;
use std::collections::HashMap;

/// Lines are broken when they would be longer than this many characters.
pub const WIDTH: usize = 100;

/// Indentation of a block level.
const INDENT: usize = 2;
/// Extra indentation of a broken `when` condition, so it stands apart from the rule's actions.
const CONTINUATION: usize = 4;

/// Formats `.imspec` source text in the canonical layout, keeping every comment.
///
/// A syntax error is returned as the parser's diagnostic (for file index 0).
// The error is the parser's own diagnostic, returned as `parse_file` returns it.
#[allow(clippy::result_large_err)]
pub fn format_source(text: &str) -> Result<String, Diagnostic> {
    let file = parse_file(0, text)?;
    Ok(format_file(&file, text))
}

/// Formats an already parsed file; `src` must be the text `file` was parsed from (its spans
/// index into it, and its comments are read from it).
pub fn format_file(file: &File, src: &str) -> String {
    let comments = scan_comments(src);
    let printer = Printer {
        src,
        comments: comments.iter().map(|c| c.start).collect(),
        trivia: trivia_map(src),
    };
    let doc = printer.file(file);
    let lines = render(&doc, WIDTH);
    place_comments(lines, comments, src)
}

/// A comment found in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    /// Byte offset of the `//`.
    pub start: usize,
    /// The comment from `//` to the end of its line, trailing whitespace removed.
    pub text: String,
    /// Whether a blank line separates it from whatever precedes it.
    blank_before: bool,
    /// Whether a blank line separates it from whatever follows it.
    blank_after: bool,
}

/// Every `//` comment of `src` that is outside a string literal, in source order.
///
/// Strings cannot span lines in the grammar, so an unterminated string (only possible in text
/// that does not parse) ends at the end of its line.
pub fn scan_comments(src: &str) -> Vec<Comment> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() {
                    match b[i] {
                        b'\\' => i += 2,
                        b'"' => {
                            i += 1;
                            break;
                        }
                        b'\n' => break,
                        _ => i += 1,
                    }
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let end = src[i..].find('\n').map(|n| i + n).unwrap_or(src.len());
                out.push(Comment {
                    start: i,
                    text: src[i..end].trim_end().to_string(),
                    blank_before: newlines_before(src, i) >= 2,
                    blank_after: newlines_after(src, end) >= 2,
                });
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}

/// Per byte of `src`: whether it is whitespace or part of a comment (outside strings).
fn trivia_map(src: &str) -> Vec<bool> {
    let b = src.as_bytes();
    let mut map: Vec<bool> = b.iter().map(|c| is_space(*c)).collect();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                map[i] = false;
                i += 1;
                while i < b.len() {
                    map[i] = false;
                    match b[i] {
                        b'\\' => {
                            if let Some(m) = map.get_mut(i + 1) {
                                *m = false;
                            }
                            i += 2;
                        }
                        b'"' => {
                            i += 1;
                            break;
                        }
                        b'\n' => break,
                        _ => i += 1,
                    }
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    map[i] = true;
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    map
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// Newlines in the whitespace run that ends at `pos`.
fn newlines_before(src: &str, pos: usize) -> usize {
    src.as_bytes()[..pos]
        .iter()
        .rev()
        .take_while(|c| is_space(**c))
        .filter(|c| **c == b'\n')
        .count()
}

/// Newlines in the whitespace run that starts at `pos`.
fn newlines_after(src: &str, pos: usize) -> usize {
    src.as_bytes()[pos..]
        .iter()
        .take_while(|c| is_space(**c))
        .filter(|c| **c == b'\n')
        .count()
}

// ---- layout documents ------------------------------------------------------------------------

/// A layout document. `Text` carries the source range of the token it prints, when known.
#[derive(Clone, Debug)]
enum Doc {
    Text(String, Option<(usize, usize)>),
    /// The given text when flat, a newline when broken.
    Line(&'static str),
    /// Always a newline; a group holding one never prints flat.
    HardLine,
    /// Always a newline followed by an empty line.
    BlankLine,
    Nest(usize, Box<Doc>),
    /// Flat when it fits; `true` forces it to break (it holds a comment).
    Group(Box<Doc>, bool),
    Concat(Vec<Doc>),
}

/// A space when flat.
const LINE: Doc = Doc::Line(" ");
/// Nothing when flat.
const SOFT: Doc = Doc::Line("");
/// Two spaces when flat: between actions, and between state declarations, which have no
/// other separator.
const WIDE: Doc = Doc::Line("  ");

fn text(s: impl Into<String>) -> Doc {
    Doc::Text(s.into(), None)
}

fn nest(i: usize, d: Doc) -> Doc {
    Doc::Nest(i, Box::new(d))
}

fn group(d: Doc) -> Doc {
    Doc::Group(Box::new(d), false)
}

fn cat(ds: Vec<Doc>) -> Doc {
    Doc::Concat(ds)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Flat,
    Break,
}

/// One rendered line with the source range of the tokens on it.
#[derive(Clone, Debug, Default)]
struct OutLine {
    indent: usize,
    text: String,
    /// Start of the first token with a known source position.
    start: Option<usize>,
    /// End of the last token with a known source position.
    end: Option<usize>,
}

fn render(doc: &Doc, width: usize) -> Vec<OutLine> {
    let mut lines = vec![OutLine::default()];
    let mut col = 0usize;
    let mut stack: Vec<(usize, Mode, &Doc)> = vec![(0, Mode::Break, doc)];
    let newline = |lines: &mut Vec<OutLine>, indent: usize| {
        lines.push(OutLine {
            indent,
            ..OutLine::default()
        });
    };
    while let Some((i, m, d)) = stack.pop() {
        match d {
            Doc::Text(s, span) => {
                if let Some(line) = lines.last_mut() {
                    if line.text.is_empty() {
                        col = line.indent;
                    }
                    line.text.push_str(s);
                    if let Some((a, b)) = span {
                        line.start.get_or_insert(*a);
                        line.end = Some(*b);
                    }
                }
                col += s.chars().count();
            }
            Doc::Line(flat) if m == Mode::Flat => {
                if let Some(line) = lines.last_mut() {
                    line.text.push_str(flat);
                }
                col += flat.len();
            }
            Doc::Line(_) | Doc::HardLine => {
                newline(&mut lines, i);
                col = i;
            }
            Doc::BlankLine => {
                newline(&mut lines, 0);
                newline(&mut lines, i);
                col = i;
            }
            Doc::Nest(j, inner) => stack.push((i + j, m, inner)),
            Doc::Group(inner, forced) => {
                let flat = !forced
                    && (m == Mode::Flat
                        || fits(
                            width as isize - col as isize,
                            (i, Mode::Flat, inner),
                            &stack,
                        ));
                stack.push((i, if flat { Mode::Flat } else { Mode::Break }, inner));
            }
            Doc::Concat(ds) => stack.extend(ds.iter().rev().map(|x| (i, m, x))),
        }
    }
    for l in &mut lines {
        let t = l.text.trim_end().len();
        l.text.truncate(t);
    }
    lines
}

/// Whether `next`, printed flat, and what follows it up to the next line break fit in `rem`
/// columns. Later groups are assumed to break at their first line point (as prettier does).
fn fits(mut rem: isize, next: (usize, Mode, &Doc), rest: &[(usize, Mode, &Doc)]) -> bool {
    let mut work = vec![next];
    let mut rest_idx = rest.len();
    loop {
        if rem < 0 {
            return false;
        }
        let (i, m, d) = match work.pop() {
            Some(x) => x,
            None => {
                if rest_idx == 0 {
                    return true;
                }
                rest_idx -= 1;
                rest[rest_idx]
            }
        };
        match d {
            Doc::Text(s, _) => rem -= s.chars().count() as isize,
            Doc::Line(flat) if m == Mode::Flat => rem -= flat.len() as isize,
            Doc::Line(_) => return true,
            Doc::HardLine | Doc::BlankLine => return m == Mode::Break,
            Doc::Nest(j, inner) => work.push((i + j, m, inner)),
            Doc::Group(_, true) if m == Mode::Flat => return false,
            Doc::Group(inner, true) => work.push((i, Mode::Break, inner)),
            Doc::Group(inner, false) => work.push((i, m, inner)),
            Doc::Concat(ds) => work.extend(ds.iter().rev().map(|x| (i, m, x))),
        }
    }
}

// ---- comments --------------------------------------------------------------------------------

enum Place {
    Leading(usize),
    Trailing(usize),
    End,
}

fn place_comments(lines: Vec<OutLine>, comments: Vec<Comment>, src: &str) -> String {
    let by_end: HashMap<usize, usize> = lines
        .iter()
        .enumerate()
        .filter_map(|(n, l)| l.end.map(|e| (e, n)))
        .collect();
    let mut leading: Vec<Vec<&Comment>> = vec![Vec::new(); lines.len()];
    let mut trailing: Vec<Option<&Comment>> = vec![None; lines.len()];
    let mut end = Vec::new();
    for c in &comments {
        match place(c.start, &lines, &by_end, src) {
            Place::Trailing(n) if trailing[n].is_none() => trailing[n] = Some(c),
            Place::Trailing(n) | Place::Leading(n) => leading[n].push(c),
            Place::End => end.push(c),
        }
    }

    // Trailing comments of consecutive lines line up one space after the longest line.
    let width = |n: usize| lines[n].indent + lines[n].text.chars().count();
    let mut column = vec![0; lines.len()];
    let mut n = 0;
    while n < lines.len() {
        if trailing[n].is_none() {
            n += 1;
            continue;
        }
        let mut end = n + 1;
        while end < lines.len() && trailing[end].is_some() && leading[end].is_empty() {
            end += 1;
        }
        let col = (n..end).map(width).max().unwrap_or(0) + 1;
        column[n..end].iter_mut().for_each(|c| *c = col);
        n = end;
    }

    let mut out = Out::default();
    for (n, line) in lines.iter().enumerate() {
        let closing = line.text.starts_with('}') || line.text.starts_with(')');
        let cindent = line.indent + if closing { INDENT } else { 0 };
        for c in &leading[n] {
            out.comment(c, cindent);
        }
        if let Some(last) = leading[n].last()
            && last.blank_after
            && !closing
        {
            out.blank();
        }
        match &trailing[n] {
            Some(c) => {
                let pad = column[n].saturating_sub(width(n)).max(1);
                let padded = format!("{}{}{}", line.text, " ".repeat(pad), c.text);
                out.code(line.indent, &padded, &line.text)
            }
            None => out.code(line.indent, &line.text, &line.text),
        }
    }
    for c in end {
        out.comment(c, 0);
    }
    while out.lines.last().is_some_and(|l| l.is_empty()) {
        out.lines.pop();
    }
    let mut s = out.lines.join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    s
}

fn place(c: usize, lines: &[OutLine], by_end: &HashMap<usize, usize>, src: &str) -> Place {
    // Trailing: only blanks (no newline) between the end of a line's last token and the comment.
    let before = src.as_bytes()[..c]
        .iter()
        .rev()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\r'))
        .count();
    if let Some(n) = by_end.get(&(c - before)) {
        return Place::Trailing(*n);
    }
    // Inside the tokens of one output line: above that line.
    if let Some(n) = lines
        .iter()
        .position(|l| matches!((l.start, l.end), (Some(s), Some(e)) if s < c && c < e))
    {
        return Place::Leading(n);
    }
    // Above the line whose first token comes next in the source.
    lines
        .iter()
        .enumerate()
        .filter_map(|(n, l)| l.start.filter(|s| *s > c).map(|s| (s, n)))
        .min()
        .map(|(_, n)| Place::Leading(n))
        .unwrap_or(Place::End)
}

/// The output being assembled, with what the last line was (for blank-line decisions).
#[derive(Default)]
struct Out {
    lines: Vec<String>,
    /// The last line opens a block or a parenthesis (no blank line after it).
    after_open: bool,
}

impl Out {
    fn blank(&mut self) {
        if self.lines.last().is_some_and(|l| !l.is_empty()) && !self.after_open {
            self.lines.push(String::new());
        }
    }

    fn comment(&mut self, c: &Comment, indent: usize) {
        if c.blank_before {
            self.blank();
        }
        self.lines.push(format!("{}{}", " ".repeat(indent), c.text));
        self.after_open = false;
    }

    fn code(&mut self, indent: usize, line: &str, code: &str) {
        if line.is_empty() {
            // An empty document renders as one empty line; a file never starts blank.
            if !self.lines.is_empty() {
                self.lines.push(String::new());
            }
        } else {
            self.lines.push(format!("{}{}", " ".repeat(indent), line));
        }
        self.after_open = code.ends_with('{') || code.ends_with('(');
    }
}

// ---- printing the tree -------------------------------------------------------------------------

struct Printer<'a> {
    src: &'a str,
    /// Offsets of the comments, ascending.
    comments: Vec<usize>,
    /// Per byte: whitespace or comment (outside string literals).
    trivia: Vec<bool>,
}

impl Printer<'_> {
    /// `end` moved back over whitespace and comments. The spans of rules that end in an
    /// optional or repeated part (`a.b` without call arguments, `respond 200`, `x and y`)
    /// include the blanks and comments pest skipped while looking for that part.
    fn trim(&self, end: usize) -> usize {
        let mut e = end.min(self.trivia.len());
        while e > 0 && self.trivia[e - 1] {
            e -= 1;
        }
        e
    }

    /// Whether a comment starts strictly between `lo` and `hi`.
    fn comment_between(&self, lo: usize, hi: usize) -> bool {
        let i = self.comments.partition_point(|c| *c <= lo);
        self.comments.get(i).is_some_and(|c| *c < hi)
    }

    /// A group that is forced to break when a comment lies between `lo` and `hi` (its
    /// brackets): the comment then keeps its place among the lines instead of moving above.
    fn group_around(&self, d: Doc, lo: usize, hi: usize) -> Doc {
        Doc::Group(Box::new(d), self.comment_between(lo, hi))
    }

    /// A brace block that may print on one line (see the module docs): forced to break when
    /// a comment lies between its braces (`open` is the `{`, `close` the `}`) or when the
    /// author broke the line right after the `{`.
    fn brace_group(&self, d: Doc, open: usize, close: usize) -> Doc {
        let broken = self.comment_between(open, close) || self.line_break_after(open);
        Doc::Group(Box::new(d), broken)
    }

    /// Whether the `{` at `open` ends its source line (only blanks or a comment follow it).
    fn line_break_after(&self, open: usize) -> bool {
        if self.src.as_bytes().get(open) != Some(&b'{') {
            return false;
        }
        let rest = &self.src.as_bytes()[open + 1..];
        let blanks = rest
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t' | b'\r'))
            .count();
        matches!(rest.get(blanks), Some(b'\n')) || rest[blanks..].starts_with(b"//")
    }

    /// Offset of `tok` after `pos`, or `pos` when it is not there.
    fn find_or(&self, pos: usize, tok: &str) -> usize {
        self.find(pos, tok).unwrap_or(pos)
    }

    /// A token printed as `s` whose source starts at `start` and is `len` bytes long.
    fn tok(&self, s: impl Into<String>, start: usize, len: usize) -> Doc {
        Doc::Text(s.into(), Some((start, start + len)))
    }

    /// The token at `span`, printed as `s`.
    fn at(&self, s: impl Into<String>, span: Span) -> Doc {
        Doc::Text(
            s.into(),
            Some((span.start, self.trim(span.end).max(span.start))),
        )
    }

    /// The source text of `span` (literals are printed as the author escaped them).
    fn slice(&self, span: Span) -> Doc {
        let s = self.src.get(span.start..self.trim(span.end)).unwrap_or("");
        self.at(s, span)
    }

    fn string(&self, s: &StrLit) -> Doc {
        match self.src.get(s.span.start..s.span.end) {
            Some(raw) if raw.starts_with('"') => self.at(raw, s.span),
            _ => self.at(quote(&s.value), s.span),
        }
    }

    fn ident(&self, id: &Ident) -> Doc {
        self.at(id.name.clone(), id.span)
    }

    fn clause(&self, c: &ClauseRef) -> Doc {
        self.at(format!("[{}]", c.id), c.span)
    }

    /// Offset of `tok` as the next token at or after `pos` (skipping blanks and comments).
    fn find(&self, pos: usize, tok: &str) -> Option<usize> {
        let b = self.src.as_bytes();
        let mut i = pos;
        loop {
            while i < b.len() && is_space(b[i]) {
                i += 1;
            }
            if b[i..].starts_with(b"//") {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            return b[i..].starts_with(tok.as_bytes()).then_some(i);
        }
    }

    /// `tok` found after `pos`, spanned when found.
    fn punct(&self, pos: usize, tok: &str) -> Doc {
        match self.find(pos, tok) {
            Some(at) => self.tok(tok, at, tok.len()),
            None => text(tok),
        }
    }

    /// The `}` that ends `span`.
    fn close(&self, span: Span) -> Doc {
        if span.end > 0 && self.src.as_bytes().get(span.end - 1) == Some(&b'}') {
            self.tok("}", span.end - 1, 1)
        } else {
            text("}")
        }
    }

    /// `{ items }` with one item per line, `{}` when empty.
    fn block(
        &self,
        open: Doc,
        items: Vec<Doc>,
        close: Doc,
        blank_between: impl Fn(usize) -> bool,
    ) -> Doc {
        if items.is_empty() {
            return cat(vec![open, close]);
        }
        let mut inner = Vec::new();
        for (n, it) in items.into_iter().enumerate() {
            inner.push(if n > 0 && blank_between(n) {
                Doc::BlankLine
            } else {
                Doc::HardLine
            });
            inner.push(it);
        }
        cat(vec![open, nest(INDENT, cat(inner)), Doc::HardLine, close])
    }

    fn file(&self, f: &File) -> Doc {
        let mut out = Vec::new();
        let mut prev_import = false;
        for (n, item) in f.items.iter().enumerate() {
            let is_import = matches!(item, Item::Import(_));
            if n > 0 {
                out.push(if is_import && prev_import {
                    Doc::HardLine
                } else {
                    Doc::BlankLine
                });
            }
            prev_import = is_import;
            out.push(match item {
                Item::Import(s) => cat(vec![text("import "), self.string(s)]),
                Item::Condition(c) => self.condition(c),
                Item::Procedure(p) => self.procedure(p),
            });
        }
        cat(out)
    }

    fn condition(&self, c: &ConditionDef) -> Doc {
        let mut head = vec![
            self.tok("condition", c.span.start, "condition".len()),
            text(" "),
            self.ident(&c.name),
        ];
        if let Some(cl) = &c.clause {
            head.push(text(" "));
            head.push(self.clause(cl));
        }
        let eq_from = c
            .clause
            .as_ref()
            .map(|x| x.span.end)
            .unwrap_or(c.name.span.end);
        head.push(text(" "));
        head.push(self.punct(eq_from, "="));
        head.push(nest(INDENT, cat(vec![LINE, self.expr(&c.expr)])));
        group(cat(head))
    }

    fn procedure(&self, p: &Procedure) -> Doc {
        let mut head = vec![
            self.tok("procedure", p.span.start, "procedure".len()),
            text(" "),
            self.ident(&p.name),
        ];
        let mut after = p.name.span.end;
        if let Some(cl) = &p.clause {
            head.push(text(" "));
            head.push(self.clause(cl));
            after = cl.span.end;
        }
        if let Some(t) = &p.title {
            head.push(text(" "));
            head.push(self.string(t));
            after = t.span.end;
        }
        head.push(text(" "));
        head.push(self.punct(after, "{"));
        let mut items = Vec::new();
        let mut handler_from = 0;
        for s in &p.states {
            items.push(self.states(s));
            handler_from += 1;
        }
        for t in &p.timers {
            items.push(cat(vec![text("timer "), self.ident(t)]));
            handler_from += 1;
        }
        for h in &p.handlers {
            items.push(self.handler(h));
        }
        let close = self.close(p.span);
        self.block(cat(head), items, close, |n| n == handler_from)
    }

    fn states(&self, s: &StatesBlock) -> Doc {
        let open = cat(vec![
            self.tok("states", s.span.start, "states".len()),
            text(" "),
            self.punct(s.span.start + "states".len(), "{"),
        ]);
        let close = self.close(s.span);
        if s.states.is_empty() {
            return cat(vec![open, close]);
        }
        let open_at = self.find_or(s.span.start + "states".len(), "{");
        let mut inner = Vec::new();
        for (n, d) in s.states.iter().enumerate() {
            inner.push(if n == 0 { LINE } else { WIDE });
            let mut words = Vec::new();
            if d.initial {
                words.push("initial ");
            }
            if d.is_final {
                words.push("final ");
            }
            let flags = words.concat();
            if flags.is_empty() {
                inner.push(self.ident(&d.name));
            } else {
                inner.push(cat(vec![
                    Doc::Text(flags, Some((d.span.start, d.span.start))),
                    self.ident(&d.name),
                ]));
            }
        }
        self.brace_group(
            cat(vec![open, nest(INDENT, cat(inner)), LINE, close]),
            open_at,
            s.span.end.saturating_sub(1),
        )
    }

    fn handler(&self, h: &Handler) -> Doc {
        let mut head = vec![
            self.tok("on", h.span.start, 2),
            text(" "),
            self.at(trigger_text(&h.trigger.kind), h.trigger.span),
        ];
        for (n, s) in h.in_states.iter().enumerate() {
            head.push(text(if n == 0 { " in " } else { ", " }));
            head.push(self.ident(s));
        }
        head.push(text(" "));
        head.push(self.tok("{", h.block.span.start, 1));
        self.block_items(cat(head), &h.block.items, self.close(h.block.span))
    }

    fn block_items(&self, open: Doc, items: &[BlockItem], close: Doc) -> Doc {
        let items = items.iter().map(|i| self.block_item(i)).collect();
        self.block(open, items, close, |_| false)
    }

    fn block_item(&self, item: &BlockItem) -> Doc {
        match item {
            BlockItem::Rule(r) => self.rule(r, false),
            BlockItem::Otherwise(r) => self.rule(r, true),
            BlockItem::First(f) => {
                let open = cat(vec![
                    self.tok("first", f.span.start, "first".len()),
                    text(" "),
                    self.punct(f.span.start + "first".len(), "{"),
                ]);
                self.block_items(open, &f.items, self.close(f.span))
            }
        }
    }

    fn rule(&self, r: &Rule, otherwise: bool) -> Doc {
        let mut head = Vec::new();
        let mut after;
        if otherwise {
            // An `otherwise` without a name is given the keyword as its name (and span).
            head.push(self.tok("otherwise", r.span.start, "otherwise".len()));
            after = r.span.start + "otherwise".len();
            if r.name.name != "otherwise" {
                head.push(text(" "));
                head.push(self.ident(&r.name));
                after = r.name.span.end;
            }
        } else {
            head.push(self.tok("rule", r.span.start, "rule".len()));
            head.push(text(" "));
            head.push(self.ident(&r.name));
            after = r.name.span.end;
        }
        if let Some(c) = &r.clause {
            head.push(text(" "));
            head.push(self.clause(c));
            after = c.span.end;
        }
        if let Some(w) = &r.when {
            // A header too long for one line puts the condition on its own lines.
            head.push(nest(
                CONTINUATION,
                cat(vec![LINE, text("when "), self.expr(w)]),
            ));
            after = w.span.end;
        }
        head.push(text(" "));
        head.push(self.punct(after, "=>"));
        let head = group(cat(head));
        let arrow_end = self.find(after, "=>").map(|a| a + 2).unwrap_or(after);
        match r.actions.as_slice() {
            [] => {
                let braces = match self.find(arrow_end, "{") {
                    Some(open) => Doc::Text("{}".into(), Some((open, r.span.end.max(open + 1)))),
                    None => text("{}"),
                };
                cat(vec![head, text(" "), braces])
            }
            // A response with an SDP body always takes several lines: start it after `=>`.
            [one] if is_sdp_response(one) => cat(vec![head, text(" "), self.action(one)]),
            [one] => group(cat(vec![
                head,
                nest(INDENT, cat(vec![LINE, self.action(one)])),
            ])),
            many => {
                let open = self.find_or(arrow_end, "{");
                let mut inner = Vec::new();
                for (n, a) in many.iter().enumerate() {
                    inner.push(if n == 0 { LINE } else { WIDE });
                    inner.push(self.action(a));
                }
                self.brace_group(
                    cat(vec![
                        head,
                        text(" "),
                        self.punct(arrow_end, "{"),
                        nest(INDENT, cat(inner)),
                        LINE,
                        self.close(r.span),
                    ]),
                    open,
                    r.span.end.saturating_sub(1),
                )
            }
        }
    }

    fn action(&self, a: &Action) -> Doc {
        let s = a.span;
        let kw = |w: &str| self.tok(w.to_string(), s.start, w.len());
        match &a.kind {
            ActionKind::Respond(r) => self.respond(r, s),
            ActionKind::Call(c) => cat(vec![kw("call"), text(" "), self.at(c.id.clone(), c.span)]),
            ActionKind::Goto(id) => cat(vec![kw("goto"), text(" "), self.ident(id)]),
            ActionKind::InviteEach(r) => self.at(format!("invite each {}", recipients_text(*r)), s),
            ActionKind::ForwardEach(r) => {
                self.at(format!("forward each {}", recipients_text(*r)), s)
            }
            ActionKind::Cancel => self.at("cancel", s),
            ActionKind::Bye => self.at("bye", s),
            ActionKind::Deliver => self.at("deliver", s),
            ActionKind::SendImdn(true) => self.at("send imdn delivered", s),
            ActionKind::SendImdn(false) => self.at("send imdn failed", s),
            ActionKind::ForwardImdn => self.at("forward imdn", s),
            ActionKind::AcceptSubscription => self.at("accept subscription", s),
            ActionKind::NotifySubscribers => self.at("notify subscribers", s),
            ActionKind::StoreCopy => self.at("store copy", s),
            ActionKind::Report(Report::Success) => self.at("report success", s),
            ActionKind::Report(Report::Failure { status, reason }) => {
                // `report failure` is one token spanning up to its status (or the action's
                // end): a comment the author put between the two words then stays behind
                // them on every pass instead of moving (idempotence).
                let head_end = status
                    .map(|(_, sp)| sp.start)
                    .or(reason.as_ref().map(|r| r.span.start))
                    .unwrap_or(s.end);
                let head = Span {
                    end: head_end.max(s.start),
                    ..s
                };
                let mut parts = vec![self.at("report failure", head)];
                if let Some((code, span)) = status {
                    parts.push(text(" "));
                    parts.push(self.at(format!("{code:03}"), *span));
                }
                if let Some(r) = reason {
                    parts.push(text(" "));
                    parts.push(self.string(r));
                }
                cat(parts)
            }
            ActionKind::StartTimer(id, after) => cat(vec![
                kw("start"),
                text(" timer "),
                self.ident(id),
                text(" after "),
                self.expr(after),
            ]),
            ActionKind::StopTimer(id) => cat(vec![kw("stop"), text(" timer "), self.ident(id)]),
            ActionKind::Log(m) => cat(vec![kw("log"), text(" "), self.string(m)]),
        }
    }

    fn respond(&self, r: &Respond, s: Span) -> Doc {
        let mut d = vec![self.tok("respond", s.start, "respond".len())];
        let mut after = s.start + "respond".len();
        if let Some((code, span)) = &r.status {
            d.push(text(" "));
            d.push(self.at(format!("{code:03}"), *span));
            after = span.end;
        }
        if let Some(reason) = &r.reason {
            d.push(text(" "));
            d.push(self.string(reason));
            after = reason.span.end;
        }
        if r.items.is_empty() {
            return cat(d);
        }
        d.push(text(" "));
        d.push(self.punct(after, "{"));
        let mut inner = Vec::new();
        for it in &r.items {
            inner.push(LINE);
            inner.push(self.respond_item(it));
        }
        d.push(nest(INDENT, cat(inner)));
        d.push(LINE);
        d.push(self.close(s));
        self.brace_group(cat(d), self.find_or(after, "{"), s.end.saturating_sub(1))
    }

    fn respond_item(&self, it: &RespondItem) -> Doc {
        match it {
            RespondItem::Header(name, value) => cat(vec![
                text("header "),
                self.ident(name),
                text(" = "),
                self.string(value),
            ]),
            RespondItem::ContactFocus(span) => self.at("contact focus", *span),
            RespondItem::Warning(w) => cat(vec![text("warning "), self.string(w)]),
            RespondItem::Sdp(items, span) => {
                let open = cat(vec![
                    self.tok("sdp", span.start, 3),
                    text(" "),
                    self.punct(span.start + 3, "{"),
                ]);
                let items = items.iter().map(|i| self.sdp_item(i)).collect();
                self.block(open, items, self.close(*span), |_| false)
            }
        }
    }

    fn sdp_item(&self, it: &SdpItem) -> Doc {
        let s = it.span;
        match &it.kind {
            SdpItemKind::PathOwn => self.at("path own", s),
            SdpItemKind::MediaFromOffer => self.at("media from offer", s),
            SdpItemKind::AcceptTypesIntersect => self.at("accept-types intersect", s),
            SdpItemKind::AcceptWrappedTypesIntersect => {
                self.at("accept-wrapped-types intersect", s)
            }
            SdpItemKind::MaxSizeOwn => self.at("max-size own", s),
            SdpItemKind::DirectionMirror => self.at("direction mirror", s),
            SdpItemKind::SetupComplement => self.at("setup complement", s),
            SdpItemKind::Echo(name) => self.at(format!("echo {name}"), s),
            SdpItemKind::Attribute(name, value, when) => {
                let kw = "attribute".len();
                let name_end = self
                    .find(s.start + kw, name)
                    .map(|at| at + name.len())
                    .unwrap_or(s.start + kw);
                let mut d =
                    vec![self.tok(format!("attribute {name}"), s.start, name_end - s.start)];
                if let Some(v) = value {
                    d.push(text(" = "));
                    d.push(self.string(v));
                }
                if let Some(w) = when {
                    d.push(text(" when "));
                    d.push(nest(CONTINUATION, self.expr(w)));
                }
                cat(d)
            }
        }
    }

    fn expr(&self, e: &Expr) -> Doc {
        match &e.kind {
            ExprKind::Lit(l) => match l {
                Lit::Str(_) => self.slice(e.span),
                other => self.at(lit_text(other), e.span),
            },
            ExprKind::Ref { path, args } => {
                let mut d = Vec::new();
                for (n, id) in path.iter().enumerate() {
                    if n > 0 {
                        d.push(text("."));
                    }
                    d.push(self.ident(id));
                }
                let mut open = e.span.end;
                if let Some(args) = args {
                    let after = path.last().map(|p| p.span.end).unwrap_or(e.span.start);
                    // `()` has no line to keep a comment on: it never forces a break.
                    if !args.is_empty() {
                        open = self.find_or(after, "(");
                    }
                    d.push(self.punct(after, "("));
                    if !args.is_empty() {
                        let mut inner = vec![SOFT];
                        for (n, a) in args.iter().enumerate() {
                            if n > 0 {
                                inner.push(self.punct(args[n - 1].span.end, ","));
                                inner.push(LINE);
                            }
                            inner.push(self.expr(a));
                        }
                        d.push(nest(INDENT, cat(inner)));
                        d.push(SOFT);
                    }
                    d.push(self.close_paren(e.span));
                }
                self.group_around(cat(d), open, e.span.end.saturating_sub(1))
            }
            ExprKind::Not(inner) => cat(vec![
                self.tok("not", e.span.start, "not".len()),
                text(" "),
                self.expr(inner),
            ]),
            ExprKind::And(parts) => self.chain(parts, "and "),
            ExprKind::Or(parts) => self.chain(parts, "or "),
            // Breaks before the operator before either operand's argument list breaks.
            ExprKind::Cmp(op, l, r) => group(cat(vec![
                self.expr(l),
                nest(
                    INDENT,
                    cat(vec![LINE, text(format!("{} ", op.as_str())), self.expr(r)]),
                ),
            ])),
            ExprKind::Quant {
                quant,
                var,
                list,
                body,
            } => cat(vec![
                self.tok(quant.as_str(), e.span.start, quant.as_str().len()),
                text(" "),
                self.ident(var),
                text(" in "),
                self.expr(list),
                text(" where "),
                self.expr(body),
            ]),
            ExprKind::Paren(inner) => self.group_around(
                cat(vec![
                    self.tok("(", e.span.start, 1),
                    nest(INDENT, cat(vec![SOFT, self.expr(inner)])),
                    SOFT,
                    self.close_paren(e.span),
                ]),
                e.span.start,
                e.span.end.saturating_sub(1),
            ),
        }
    }

    fn close_paren(&self, span: Span) -> Doc {
        if span.end > 0 && self.src.as_bytes().get(span.end - 1) == Some(&b')') {
            self.tok(")", span.end - 1, 1)
        } else {
            text(")")
        }
    }

    /// `a and b and c`, broken before each operator when too long.
    fn chain(&self, parts: &[Expr], op: &str) -> Doc {
        let mut d = Vec::new();
        let mut forced = false;
        for (n, p) in parts.iter().enumerate() {
            if n > 0 {
                // A comment between two operands keeps the chain one operand per line.
                forced |= self.comment_between(self.trim(parts[n - 1].span.end), p.span.start);
                d.push(LINE);
                d.push(text(op));
            }
            d.push(self.expr(p));
        }
        Doc::Group(Box::new(cat(d)), forced)
    }
}

fn is_sdp_response(a: &Action) -> bool {
    matches!(&a.kind, ActionKind::Respond(r) if r.items.iter().any(|i| matches!(i, RespondItem::Sdp(..))))
}

/// A trigger as written in canonical form.
pub fn trigger_text(t: &TriggerKind) -> String {
    match t {
        TriggerKind::Initial(m) => format!("initial {m}"),
        TriggerKind::Request(m) => format!("request {m}"),
        TriggerKind::Response(lo, None) => format!("response {lo}"),
        TriggerKind::Response(lo, Some(hi)) => format!("response {lo}..{hi}"),
        TriggerKind::Timer(id) => format!("timer {}", id.name),
        TriggerKind::Msrp(ev) => format!("msrp {ev}"),
        TriggerKind::LegsSettled => "legs settled".to_string(),
        TriggerKind::LegsChanged => "legs changed".to_string(),
        TriggerKind::Copy(true) => "copy delivered".to_string(),
        TriggerKind::Copy(false) => "copy failed".to_string(),
    }
}

fn recipients_text(r: Recipients) -> &'static str {
    match r {
        Recipients::RecipientList => "recipient_list",
        Recipients::GroupMembers => "group_members",
    }
}

/// A literal as written in canonical form (durations in whole seconds when they are).
pub fn lit_text(l: &Lit) -> String {
    match l {
        Lit::Bool(b) => b.to_string(),
        Lit::Int(i) => i.to_string(),
        Lit::Str(s) => quote(s),
        Lit::DurationMs(ms) if *ms % 1000 == 0 => format!("{}s", ms / 1000),
        Lit::DurationMs(ms) => format!("{ms}ms"),
    }
}

/// A string value (as the parser unescapes it) written back as a literal that parses to it.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // The parser keeps `\{` and `\}` escaped in the value; write them back as is.
            '\\' if matches!(chars.peek(), Some('{' | '}')) => out.push('\\'),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---- comparing trees -------------------------------------------------------------------------

/// A copy of `file` with every span (and the file index) zeroed, so that two parses of
/// differently laid out text compare equal when they say the same thing.
pub fn without_spans(file: &File) -> File {
    let mut f = file.clone();
    f.file = 0;
    for item in &mut f.items {
        match item {
            Item::Import(s) => s.span = Span::default(),
            Item::Condition(c) => {
                c.span = Span::default();
                erase_ident(&mut c.name);
                erase_clause(&mut c.clause);
                erase_expr(&mut c.expr);
            }
            Item::Procedure(p) => {
                p.span = Span::default();
                erase_ident(&mut p.name);
                erase_clause(&mut p.clause);
                erase_str(&mut p.title);
                for s in &mut p.states {
                    s.span = Span::default();
                    for d in &mut s.states {
                        d.span = Span::default();
                        erase_ident(&mut d.name);
                    }
                }
                p.timers.iter_mut().for_each(erase_ident);
                for h in &mut p.handlers {
                    h.span = Span::default();
                    h.trigger.span = Span::default();
                    if let TriggerKind::Timer(id) = &mut h.trigger.kind {
                        erase_ident(id);
                    }
                    h.in_states.iter_mut().for_each(erase_ident);
                    h.block.span = Span::default();
                    h.block.items.iter_mut().for_each(erase_block_item);
                }
            }
        }
    }
    f
}

/// Whether two files say the same thing, ignoring spans.
pub fn same_ignoring_spans(a: &File, b: &File) -> bool {
    without_spans(a) == without_spans(b)
}

fn erase_ident(i: &mut Ident) {
    i.span = Span::default();
}

fn erase_clause(c: &mut Option<ClauseRef>) {
    if let Some(c) = c {
        c.span = Span::default();
    }
}

fn erase_str(s: &mut Option<StrLit>) {
    if let Some(s) = s {
        s.span = Span::default();
    }
}

fn erase_block_item(item: &mut BlockItem) {
    match item {
        BlockItem::Rule(r) | BlockItem::Otherwise(r) => {
            r.span = Span::default();
            erase_ident(&mut r.name);
            erase_clause(&mut r.clause);
            if let Some(w) = &mut r.when {
                erase_expr(w);
            }
            r.actions.iter_mut().for_each(erase_action);
        }
        BlockItem::First(f) => {
            f.span = Span::default();
            f.items.iter_mut().for_each(erase_block_item);
        }
    }
}

fn erase_action(a: &mut Action) {
    a.span = Span::default();
    match &mut a.kind {
        ActionKind::Respond(r) => {
            if let Some((_, s)) = &mut r.status {
                *s = Span::default();
            }
            erase_str(&mut r.reason);
            for it in &mut r.items {
                match it {
                    RespondItem::Header(n, v) => {
                        erase_ident(n);
                        v.span = Span::default();
                    }
                    RespondItem::ContactFocus(s) => *s = Span::default(),
                    RespondItem::Warning(w) => w.span = Span::default(),
                    RespondItem::Sdp(items, s) => {
                        *s = Span::default();
                        for i in items {
                            i.span = Span::default();
                            if let SdpItemKind::Attribute(_, v, w) = &mut i.kind {
                                erase_str(v);
                                if let Some(w) = w {
                                    erase_expr(w);
                                }
                            }
                        }
                    }
                }
            }
        }
        ActionKind::Call(c) => c.span = Span::default(),
        ActionKind::Goto(id) | ActionKind::StopTimer(id) => erase_ident(id),
        ActionKind::StartTimer(id, e) => {
            erase_ident(id);
            erase_expr(e);
        }
        ActionKind::Log(s) => s.span = Span::default(),
        ActionKind::Report(Report::Failure { status, reason }) => {
            if let Some((_, s)) = status {
                *s = Span::default();
            }
            erase_str(reason);
        }
        ActionKind::InviteEach(_)
        | ActionKind::ForwardEach(_)
        | ActionKind::Cancel
        | ActionKind::Bye
        | ActionKind::Deliver
        | ActionKind::SendImdn(_)
        | ActionKind::ForwardImdn
        | ActionKind::AcceptSubscription
        | ActionKind::NotifySubscribers
        | ActionKind::StoreCopy
        | ActionKind::Report(Report::Success) => {}
    }
}

fn erase_expr(e: &mut Expr) {
    e.span = Span::default();
    match &mut e.kind {
        ExprKind::Lit(_) => {}
        ExprKind::Ref { path, args } => {
            path.iter_mut().for_each(erase_ident);
            if let Some(args) = args {
                args.iter_mut().for_each(erase_expr);
            }
        }
        ExprKind::Not(x) | ExprKind::Paren(x) => erase_expr(x),
        ExprKind::And(xs) | ExprKind::Or(xs) => xs.iter_mut().for_each(erase_expr),
        ExprKind::Cmp(_, l, r) => {
            erase_expr(l);
            erase_expr(r);
        }
        ExprKind::Quant {
            var, list, body, ..
        } => {
            erase_ident(var);
            erase_expr(list);
            erase_expr(body);
        }
    }
}

// ---- the `imspec fmt` command ----------------------------------------------------------------

/// What `imspec fmt` found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FmtSummary {
    /// Files looked at.
    pub files: usize,
    /// Files that were (or, with `--check`, would be) rewritten.
    pub changed: usize,
    /// Files with a syntax error.
    pub errors: usize,
    /// Paths that could not be read or written.
    pub io_errors: usize,
}

impl FmtSummary {
    /// The process exit status: 0 when every file was clean (or was rewritten), 1 when a
    /// check found a file to change or a file has a syntax error, 2 when a path could not be
    /// read or written (as `imspec check` does).
    pub fn exit_code(&self, check: bool) -> u8 {
        if self.io_errors > 0 {
            2
        } else {
            u8::from(self.errors > 0 || (check && self.changed > 0))
        }
    }
}

/// Lines of diff shown per file by `--check` before it is cut short.
const DIFF_LINES: usize = 24;

/// `imspec fmt PATH…`: formats every `.imspec` file named or found (recursively) under a named
/// directory. Without `check` changed files are rewritten in place; with it they are listed
/// on `out` with a short diff and left alone. Errors (unreadable files, syntax errors rendered
/// as diagnostics) go to `err`.
pub fn run(
    paths: &[std::path::PathBuf],
    check: bool,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> FmtSummary {
    use crate::source::{SourceFile, Sources, display_path};
    let mut summary = FmtSummary::default();
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            if let Err(e) = collect_specs(p, &mut files) {
                let _ = writeln!(err, "error: cannot read {}: {e}", p.display());
                summary.io_errors += 1;
            }
        } else {
            files.push(p.clone());
        }
    }
    for path in files {
        summary.files += 1;
        let shown = display_path(&path);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                let _ = writeln!(err, "error: cannot read {shown}: {e}");
                summary.io_errors += 1;
                continue;
            }
        };
        let formatted = match format_source(&text) {
            Ok(f) => f,
            Err(d) => {
                let mut sources = Sources::default();
                sources.add(SourceFile::new(shown.clone(), Some(path.clone()), text));
                let _ = writeln!(err, "{}", d.render(&sources));
                summary.errors += 1;
                continue;
            }
        };
        if formatted == text {
            continue;
        }
        summary.changed += 1;
        if check {
            let _ = writeln!(out, "{shown} is not formatted:");
            let _ = write!(out, "{}", short_diff(&shown, &text, &formatted));
        } else if let Err(e) = std::fs::write(&path, formatted) {
            let _ = writeln!(err, "error: cannot write {shown}: {e}");
            summary.io_errors += 1;
        }
    }
    summary
}

fn collect_specs(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect_specs(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "imspec") {
            out.push(p);
        }
    }
    Ok(())
}

/// A unified diff of `old` → `new`, cut after [`DIFF_LINES`] lines.
fn short_diff(name: &str, old: &str, new: &str) -> String {
    let diff = similar::TextDiff::from_lines(old, new);
    let full = diff
        .unified_diff()
        .context_radius(1)
        .header(name, &format!("{name} (formatted)"))
        .to_string();
    let lines: Vec<&str> = full.lines().collect();
    let mut s = lines
        .iter()
        .take(DIFF_LINES)
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    if lines.len() > DIFF_LINES {
        s.push_str(&format!(
            "… ({} more diff lines)\n",
            lines.len() - DIFF_LINES
        ));
    }
    s
}

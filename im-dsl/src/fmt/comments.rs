//! Comments: found in the source by position and put back relative to the rendered lines.

use super::INDENT;
use super::layout::OutLine;
use std::collections::HashMap;

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
pub(super) fn trivia_map(src: &str) -> Vec<bool> {
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

pub(super) fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// Newlines in the whitespace run that ends at `pos`.
pub(super) fn newlines_before(src: &str, pos: usize) -> usize {
    src.as_bytes()[..pos]
        .iter()
        .rev()
        .take_while(|c| is_space(**c))
        .filter(|c| **c == b'\n')
        .count()
}

/// Newlines in the whitespace run that starts at `pos`.
pub(super) fn newlines_after(src: &str, pos: usize) -> usize {
    src.as_bytes()[pos..]
        .iter()
        .take_while(|c| is_space(**c))
        .filter(|c| **c == b'\n')
        .count()
}

pub(super) enum Place {
    Leading(usize),
    Trailing(usize),
    End,
}

pub(super) fn place_comments(lines: Vec<OutLine>, comments: Vec<Comment>, src: &str) -> String {
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

pub(super) fn place(
    c: usize,
    lines: &[OutLine],
    by_end: &HashMap<usize, usize>,
    src: &str,
) -> Place {
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
pub(super) struct Out {
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

//! Layout documents: groups that print flat when they fit and break at their line points otherwise.

/// A layout document. `Text` carries the source range of the token it prints, when known.
#[derive(Clone, Debug)]
pub(super) enum Doc {
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
pub(super) const LINE: Doc = Doc::Line(" ");
/// Nothing when flat.
pub(super) const SOFT: Doc = Doc::Line("");
/// Two spaces when flat: between actions, and between state declarations, which have no
/// other separator.
pub(super) const WIDE: Doc = Doc::Line("  ");

pub(super) fn text(s: impl Into<String>) -> Doc {
    Doc::Text(s.into(), None)
}

pub(super) fn nest(i: usize, d: Doc) -> Doc {
    Doc::Nest(i, Box::new(d))
}

pub(super) fn group(d: Doc) -> Doc {
    Doc::Group(Box::new(d), false)
}

pub(super) fn cat(ds: Vec<Doc>) -> Doc {
    Doc::Concat(ds)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    Flat,
    Break,
}

/// One rendered line with the source range of the tokens on it.
#[derive(Clone, Debug, Default)]
pub(super) struct OutLine {
    pub(super) indent: usize,
    pub(super) text: String,
    /// Start of the first token with a known source position.
    pub(super) start: Option<usize>,
    /// End of the last token with a known source position.
    pub(super) end: Option<usize>,
}

pub(super) fn render(doc: &Doc, width: usize) -> Vec<OutLine> {
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
pub(super) fn fits(
    mut rem: isize,
    next: (usize, Mode, &Doc),
    rest: &[(usize, Mode, &Doc)],
) -> bool {
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

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

mod cli;
mod comments;
mod compare;
mod layout;
mod print;

pub use cli::{FmtSummary, run};
pub use comments::{Comment, scan_comments};
pub use compare::{same_ignoring_spans, without_spans};
pub use print::{lit_text, quote, trigger_text};
pub(crate) use print::{outcome_text, selection_text};

use crate::ast::File;
use crate::diag::Diagnostic;
use crate::parse::parse_file;
use comments::{place_comments, trivia_map};
use layout::render;
use print::Printer;

/// Lines are broken when they would be longer than this many characters.
pub const WIDTH: usize = 100;

/// Indentation of a block level.
pub(super) const INDENT: usize = 2;
/// Extra indentation of a broken `when` condition, so it stands apart from the rule's actions.
pub(super) const CONTINUATION: usize = 4;

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

//! # im-dsl
//!
//! The `.imspec` language: `grammar.pest` → spanned AST ([`ast`]) → checks ([`check`]) →
//! validated model ([`model`]) → generated Rust tokens. The same model feeds the formatter,
//! the graph output and the `imspec` command-line tool.
//!
//! * [`parse`] turns text into the spanned [`ast`]; syntax errors are diagnostics (E0001).
//! * [`load`] reads a spec file and everything it imports into [`source::Sources`].
//! * [`diag`] holds diagnostics: a stable code, a span, a label and a help line, rendered
//!   like rustc's.
//! * [`model`] is the validated IR without pest types or spans beyond `file:line:col`.

pub mod ast;
pub mod build;
pub mod check;
pub mod codegen;
pub mod diag;
pub mod diff;
pub mod fmt;
pub mod graph;
pub mod load;
pub mod lsp;
pub mod model;
pub mod parse;
pub mod source;
pub mod trace;
mod vocab;

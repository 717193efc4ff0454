//! # im-dsl
//!
//! The `.imspec` language: `grammar.pest` → spanned AST → checks → validated model →
//! generated Rust tokens. The same model feeds the formatter, the graph output and the
//! `imspec` command-line tool.

//! Interpolated text in `warning` and `log`: `"limit is {config.max_recipients}"`. Each
//! `{…}` holds an expression, resolved and typed like any other; `\{` and `\}` are literal
//! braces. The raw source of the literal is scanned (not the unescaped value) so that
//! diagnostics point at the exact bytes.

use super::types::{ExprCx, Ty};
use crate::ast::{self, ExprKind, Span, StrLit};
use crate::diag::{Code, Diagnostic};
use crate::model::{Text, TextPart, Type};
use crate::parse::parse_expr;
use crate::source::Sources;

pub(crate) fn lower_text(cx: &mut ExprCx<'_>, sources: &Sources, lit: &StrLit) -> Option<Text> {
    let file = lit.span.file;
    let raw = sources
        .get(file)
        .and_then(|f| f.text.get(lit.span.start..lit.span.end))
        .filter(|r| r.len() >= 2 && r.starts_with('"') && r.ends_with('"'));
    let Some(raw) = raw else {
        // No source to scan (should not happen for parsed text): keep the value literal.
        return Some(Text {
            parts: vec![TextPart::Lit(super::types::plain_braces(&lit.value))],
        });
    };
    let base = lit.span.start + 1;
    let inner = &raw[1..raw.len() - 1];
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut ok = true;
    let mut it = inner.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        match c {
            '\\' => match it.next() {
                Some((_, 'n')) => cur.push('\n'),
                Some((_, 't')) => cur.push('\t'),
                Some((_, c)) => cur.push(c),
                None => {}
            },
            '{' => {
                let Some(close) = inner[i..].find('}').map(|k| i + k) else {
                    cx.diags.push(
                        Diagnostic::new(
                            Code::Syntax,
                            "unclosed `{` in text",
                            span(file, base + i, base + i + 1),
                            "this brace starts a value but nothing closes it",
                        )
                        .help("close it with `}`, or write `\\{` for a literal brace"),
                    );
                    ok = false;
                    break;
                };
                while it.peek().is_some_and(|(k, _)| *k <= close) {
                    it.next();
                }
                if !cur.is_empty() {
                    parts.push(TextPart::Lit(std::mem::take(&mut cur)));
                }
                match value(cx, file, base + i + 1, &inner[i + 1..close]) {
                    Some(x) => parts.push(TextPart::Value(x)),
                    None => ok = false,
                }
            }
            '}' => {
                cx.diags.push(
                    Diagnostic::new(
                        Code::Syntax,
                        "unmatched `}` in text",
                        span(file, base + i, base + i + 1),
                        "no `{` opens this",
                    )
                    .help("write `\\}` for a literal brace"),
                );
                ok = false;
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        parts.push(TextPart::Lit(cur));
    }
    ok.then_some(Text { parts })
}

fn span(file: usize, start: usize, end: usize) -> Span {
    Span { file, start, end }
}

/// Parses, resolves and types one `{…}` (at byte `start` of the file).
fn value(cx: &mut ExprCx<'_>, file: usize, start: usize, src: &str) -> Option<crate::model::Expr> {
    let lead = src.len() - src.trim_start().len();
    let trimmed = src.trim();
    if trimmed.is_empty() {
        cx.diags.push(
            Diagnostic::new(
                Code::Syntax,
                "empty `{}` in text",
                span(file, start - 1, start + src.len() + 1),
                "no value inside",
            )
            .help("put a fact inside, e.g. `{config.max_recipients}`, or write `\\{\\}` for literal braces"),
        );
        return None;
    }
    let off = start + lead;
    let mut e = match parse_expr(file, trimmed) {
        Ok(e) => e,
        Err(mut d) => {
            d.span.start += off;
            d.span.end += off;
            cx.diags.push(d);
            return None;
        }
    };
    shift(&mut e, off);
    let (x, t) = cx.lower(&e)?;
    match t {
        Ty::V(Type::Bool | Type::Int | Type::Str | Type::Uri | Type::Duration) => Some(x),
        t => {
            cx.diags.push(
                Diagnostic::new(
                    Code::TypeMismatch,
                    format!("a {t} cannot be printed in text"),
                    e.span,
                    format!("this is {t}"),
                )
                .help("print a single value, e.g. `{count(recipients)}` or a field of an element"),
            );
            None
        }
    }
}

/// Moves every span of `e` by `off` bytes (the expression was parsed on its own).
fn shift(e: &mut ast::Expr, off: usize) {
    let mv = |s: &mut Span| {
        s.start += off;
        s.end += off;
    };
    mv(&mut e.span);
    match &mut e.kind {
        ExprKind::Lit(_) => {}
        ExprKind::Ref { path, args } => {
            for i in path {
                mv(&mut i.span);
            }
            for a in args.iter_mut().flatten() {
                shift(a, off);
            }
        }
        ExprKind::Not(x) | ExprKind::Paren(x) => shift(x, off),
        ExprKind::And(xs) | ExprKind::Or(xs) => xs.iter_mut().for_each(|x| shift(x, off)),
        ExprKind::Cmp(_, a, b) => {
            shift(a, off);
            shift(b, off);
        }
        ExprKind::Quant {
            var, list, body, ..
        } => {
            mv(&mut var.span);
            shift(list, off);
            shift(body, off);
        }
    }
}

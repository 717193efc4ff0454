//! Spec names → Rust identifiers. Spec names are `[A-Za-z_][A-Za-z0-9_]*`; Rust keywords
//! become raw identifiers, and the few that cannot be raw get a `__` prefix.

use proc_macro2::{Ident, Span};

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern", "false",
    "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "static", "struct", "trait", "true", "try", "type", "unsafe", "use", "where",
    "while", "abstract", "become", "box", "do", "final", "macro", "override", "priv", "typeof",
    "unsized", "virtual", "yield",
];
const NOT_RAW: &[&str] = &["self", "Self", "super", "crate", "_"];

fn make(name: &str) -> Ident {
    if NOT_RAW.contains(&name) || name.is_empty() {
        Ident::new(&format!("__{name}"), Span::call_site())
    } else if KEYWORDS.contains(&name) {
        Ident::new_raw(name, Span::call_site())
    } else {
        Ident::new(name, Span::call_site())
    }
}

/// `PageMode` / `page_mode` → `page_mode`.
pub(crate) fn snake(name: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else {
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            out.push(c);
        }
    }
    out
}

/// `no_answer` → `NoAnswer`.
pub(crate) fn camel(name: &str) -> String {
    let mut out = String::new();
    let mut up = true;
    for c in name.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.push(c.to_ascii_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'S');
    }
    out
}

/// A snake-case identifier (module, function) for a spec name.
pub(crate) fn snake_ident(name: &str) -> Ident {
    make(&snake(name))
}

/// A camel-case identifier (type, variant) for a spec name.
pub(crate) fn camel_ident(name: &str) -> Ident {
    make(&camel(name))
}

/// An internal identifier: `__<prefix>_<snake name>`, never a keyword.
pub(crate) fn internal(prefix: &str, name: &str) -> Ident {
    Ident::new(&format!("__{prefix}_{}", snake(name)), Span::call_site())
}

/// `invite_timeout` → `TIMER_INVITE_TIMEOUT`.
pub(crate) fn timer_const(name: &str) -> Ident {
    Ident::new(
        &format!("TIMER_{}", snake(name).to_ascii_uppercase()),
        Span::call_site(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(snake("pageMode"), "page_mode");
        assert_eq!(snake("page_mode_group_invite"), "page_mode_group_invite");
        assert_eq!(camel("no_answer"), "NoAnswer");
        assert_eq!(camel("inviting"), "Inviting");
        assert_eq!(snake_ident("match").to_string(), "r#match");
        assert_eq!(snake_ident("self").to_string(), "__self");
        assert_eq!(camel_ident("self").to_string(), "__Self");
        assert_eq!(
            internal("cond", "owned_group").to_string(),
            "__cond_owned_group"
        );
        assert_eq!(
            timer_const("invite_timeout").to_string(),
            "TIMER_INVITE_TIMEOUT"
        );
    }
}

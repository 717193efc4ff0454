//! Media types and Content-Disposition values with SIP syntax (RFC 3261 §20.11, §20.15, §25.1).
//!
//! SIP allows linear whitespace around `/`, `;` and `=` (`SLASH`, `SEMI`, `EQUAL` are all
//! `SWS x SWS`), so `multipart/mixed ; boundary = b1` is legal; the `mime` and `mediatype`
//! crates reject it (shared/crates.md §4), hence this small hand-written parser.
//!
//! ```
//! use im_runtime::proto::body::mime::{Disposition, MediaType};
//!
//! let ct = MediaType::parse("Multipart/Mixed ; Boundary = \"b 1\" ;type=application/sdp").unwrap();
//! assert_eq!(ct.essence(), "multipart/mixed");
//! assert_eq!(ct.param("boundary"), Some("b 1"));
//!
//! let cd = Disposition::parse("recipient-list;handling=optional").unwrap();
//! assert_eq!(cd.kind, "recipient-list");
//! assert_eq!(cd.param("handling"), Some(Some("optional")));
//! ```
//!
//! Names (type, subtype, disposition type, parameter names) are case-insensitive and are
//! stored in lower case; parameter values keep their case, with quoted-strings unquoted and
//! `\`-escapes resolved. Leniency, on purpose: an unquoted parameter value may contain any
//! visible ASCII except `;` and `"` (boundaries such as `----=_Part_1` are sent unquoted in
//! the wild even though `=` is not a token character), and empty parameters (`;;`, a trailing
//! `;`) are skipped. Everything else outside the grammar is an error with its byte offset.

use std::fmt;

/// Why a media type or disposition did not parse. `at` is a byte offset into the input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MimeError {
    /// The value is empty or only whitespace.
    #[error("empty value")]
    Empty,
    /// A token (type, subtype, parameter name …) was expected at `at`.
    #[error("expected a token at byte {at}")]
    ExpectedToken {
        /// Byte offset.
        at: usize,
    },
    /// The `/` between type and subtype is missing.
    #[error("expected '/' at byte {at}")]
    ExpectedSlash {
        /// Byte offset.
        at: usize,
    },
    /// A media-type parameter has no `=value`.
    #[error("parameter without '=' at byte {at}")]
    ExpectedEquals {
        /// Byte offset.
        at: usize,
    },
    /// A parameter value is missing after `=`.
    #[error("expected a parameter value at byte {at}")]
    ExpectedValue {
        /// Byte offset.
        at: usize,
    },
    /// A quoted-string is not closed.
    #[error("unterminated quoted-string starting at byte {at}")]
    UnterminatedQuote {
        /// Byte offset of the opening quote.
        at: usize,
    },
    /// Something other than `;` or the end follows a complete element.
    #[error("unexpected character at byte {at}")]
    Unexpected {
        /// Byte offset.
        at: usize,
    },
}

/// A media type (`type/subtype;param=value…`), as in Content-Type and Accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaType {
    /// Top-level type in lower case (`multipart`).
    pub ty: String,
    /// Subtype in lower case (`mixed`).
    pub subtype: String,
    /// Parameters in order: lower-case name, unquoted value.
    pub params: Vec<(String, String)>,
}

impl MediaType {
    /// A media type without parameters. Names are lower-cased.
    pub fn new(ty: &str, subtype: &str) -> MediaType {
        MediaType {
            ty: ty.to_ascii_lowercase(),
            subtype: subtype.to_ascii_lowercase(),
            params: Vec::new(),
        }
    }

    /// Adds a parameter (name lower-cased) and returns the type, builder style.
    pub fn with_param(mut self, name: &str, value: &str) -> MediaType {
        self.params
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// Parses a Content-Type / media-type value with SIP whitespace rules.
    pub fn parse(input: &str) -> Result<MediaType, MimeError> {
        let mut c = Cursor::new(input);
        c.skip_ws();
        if c.at_end() {
            return Err(MimeError::Empty);
        }
        let ty = c.token()?.to_ascii_lowercase();
        c.skip_ws();
        if !c.eat(b'/') {
            return Err(MimeError::ExpectedSlash { at: c.pos });
        }
        c.skip_ws();
        let subtype = c.token()?.to_ascii_lowercase();
        let mut params = Vec::new();
        for (name, value, at) in c.params()? {
            match value {
                Some(v) => params.push((name, v)),
                None => return Err(MimeError::ExpectedEquals { at }),
            }
        }
        Ok(MediaType {
            ty,
            subtype,
            params,
        })
    }

    /// `type/subtype` in lower case, without parameters (`application/sdp`).
    pub fn essence(&self) -> String {
        format!("{}/{}", self.ty, self.subtype)
    }

    /// Whether the type is `ty/subtype` (case-insensitive).
    pub fn is(&self, ty: &str, subtype: &str) -> bool {
        self.ty.eq_ignore_ascii_case(ty) && self.subtype.eq_ignore_ascii_case(subtype)
    }

    /// The value of the first parameter called `name` (any case).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for MediaType {
    /// Writes `type/subtype;name=value`, quoting values that are not tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ty, self.subtype)?;
        for (n, v) in &self.params {
            write!(f, ";{n}=")?;
            write_value(f, v)?;
        }
        Ok(())
    }
}

/// A Content-Disposition value (`recipient-list;handling=required`), RFC 3261 §20.11.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disposition {
    /// Disposition type in lower case (`render`, `session`, `recipient-list` …).
    pub kind: String,
    /// Parameters in order: lower-case name, unquoted value (`None` for a bare flag).
    pub params: Vec<(String, Option<String>)>,
}

impl Disposition {
    /// A disposition without parameters; the type is lower-cased.
    pub fn new(kind: &str) -> Disposition {
        Disposition {
            kind: kind.to_ascii_lowercase(),
            params: Vec::new(),
        }
    }

    /// Adds a parameter (name lower-cased; `None` for a flag), builder style.
    pub fn with_param(mut self, name: &str, value: Option<&str>) -> Disposition {
        self.params
            .push((name.to_ascii_lowercase(), value.map(str::to_owned)));
        self
    }

    /// Parses a Content-Disposition value with SIP whitespace rules.
    pub fn parse(input: &str) -> Result<Disposition, MimeError> {
        let mut c = Cursor::new(input);
        c.skip_ws();
        if c.at_end() {
            return Err(MimeError::Empty);
        }
        let kind = c.token()?.to_ascii_lowercase();
        let params = c.params()?.into_iter().map(|(n, v, _)| (n, v)).collect();
        Ok(Disposition { kind, params })
    }

    /// The parameter `name` (any case): `None` when absent, `Some(None)` for a flag.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// Whether the `handling` parameter says `optional` (RFC 3261 §20.11; default `required`).
    pub fn is_optional(&self) -> bool {
        matches!(self.param("handling"), Some(Some(v)) if v.eq_ignore_ascii_case("optional"))
    }
}

impl fmt::Display for Disposition {
    /// Writes `kind;name=value;flag`, quoting values that are not tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)?;
        for (n, v) in &self.params {
            write!(f, ";{n}")?;
            if let Some(v) = v {
                f.write_str("=")?;
                write_value(f, v)?;
            }
        }
        Ok(())
    }
}

/// RFC 3261 §25.1 `token` characters.
pub fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// Whether `s` is a non-empty RFC 3261 token.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

fn write_value(f: &mut fmt::Formatter<'_>, v: &str) -> fmt::Result {
    if is_token(v) {
        return f.write_str(v);
    }
    f.write_str("\"")?;
    for ch in v.chars() {
        if ch == '"' || ch == '\\' {
            f.write_str("\\")?;
        }
        write!(f, "{ch}")?;
    }
    f.write_str("\"")
}

fn is_ws(b: u8) -> bool {
    // CR and LF count as whitespace so that a value still folded (LWS) parses too.
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
    }

    fn token(&mut self) -> Result<&'a str, MimeError> {
        let start = self.pos;
        while self.peek().is_some_and(is_token_char) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(MimeError::ExpectedToken { at: start });
        }
        // Only ASCII token bytes were passed, so both ends are character boundaries.
        Ok(self.s.get(start..self.pos).unwrap_or_default())
    }

    fn quoted(&mut self) -> Result<String, MimeError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        // Iterate over chars so that UTF-8 inside quotes (allowed by SIP's qdtext) survives.
        let rest = self.s.get(self.pos..).unwrap_or_default();
        let mut chars = rest.char_indices();
        while let Some((i, ch)) = chars.next() {
            match ch {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, esc)) => out.push(esc),
                    None => break,
                },
                _ => out.push(ch),
            }
        }
        Err(MimeError::UnterminatedQuote { at: open })
    }

    fn bare_value(&mut self) -> &'a str {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_graphic() && b != b';' && b != b'"')
        {
            self.pos += 1;
        }
        self.s.get(start..self.pos).unwrap_or_default()
    }

    /// `*(SEMI name [EQUAL value])` up to the end; yields (lower-case name, value, offset).
    #[allow(clippy::type_complexity)]
    fn params(&mut self) -> Result<Vec<(String, Option<String>, usize)>, MimeError> {
        let mut out = Vec::new();
        loop {
            self.skip_ws();
            if self.at_end() {
                return Ok(out);
            }
            if !self.eat(b';') {
                return Err(MimeError::Unexpected { at: self.pos });
            }
            self.skip_ws();
            if self.at_end() || self.peek() == Some(b';') {
                continue;
            }
            let at = self.pos;
            let name = self.token()?.to_ascii_lowercase();
            self.skip_ws();
            let value = if self.eat(b'=') {
                self.skip_ws();
                if self.peek() == Some(b'"') {
                    Some(self.quoted()?)
                } else {
                    let v = self.bare_value();
                    if v.is_empty() {
                        return Err(MimeError::ExpectedValue { at: self.pos });
                    }
                    Some(v.to_owned())
                }
            } else {
                None
            };
            out.push((name, value, at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_whitespace_everywhere() {
        let m =
            MediaType::parse(" multipart / mixed ; boundary = b1 ;type=application/sdp ").unwrap();
        assert_eq!(m.essence(), "multipart/mixed");
        assert_eq!(m.param("BOUNDARY"), Some("b1"));
        assert_eq!(m.param("type"), Some("application/sdp"));
    }

    #[test]
    fn quoted_values_and_escapes() {
        let m = MediaType::parse(r#"text/plain;x="a\"b;c""#).unwrap();
        assert_eq!(m.param("x"), Some("a\"b;c"));
        assert_eq!(m.to_string(), r#"text/plain;x="a\"b;c""#);
        assert_eq!(MediaType::parse(&m.to_string()).unwrap(), m);
    }

    #[test]
    fn errors_have_offsets() {
        assert_eq!(MediaType::parse(""), Err(MimeError::Empty));
        assert_eq!(
            MediaType::parse("text"),
            Err(MimeError::ExpectedSlash { at: 4 })
        );
        assert_eq!(
            MediaType::parse("text/plain;flag"),
            Err(MimeError::ExpectedEquals { at: 11 })
        );
        assert_eq!(
            MediaType::parse("text/plain;a=\"x"),
            Err(MimeError::UnterminatedQuote { at: 13 })
        );
        assert_eq!(
            MediaType::parse("text/plain x"),
            Err(MimeError::Unexpected { at: 11 })
        );
        assert_eq!(
            MediaType::parse("text/plain;a="),
            Err(MimeError::ExpectedValue { at: 13 })
        );
    }

    #[test]
    fn disposition_flags() {
        let d = Disposition::parse("Recipient-List ; handling = OPTIONAL;x").unwrap();
        assert_eq!(d.kind, "recipient-list");
        assert!(d.is_optional());
        assert_eq!(d.param("x"), Some(None));
        assert_eq!(d.to_string(), "recipient-list;handling=OPTIONAL;x");
    }
}

//! Character classes and a small cursor for RFC 3261 §25 grammar over header values.
//!
//! Header values handed to the cursor still contain their folds (`CRLF 1*WSP`): the line
//! splitter guarantees that every CR/LF inside a value is followed by whitespace, so skipping
//! `[ \t\r\n]` is exactly skipping LWS.

use super::error::{ErrorKind, ParseError};

const TOKEN: u8 = 1;
const WORD: u8 = 2;
const LWS: u8 = 4;
const GEN_VALUE: u8 = 8;

/// Character classes of RFC 3261 §25 as one bit set per byte, so that a class test is one
/// load instead of a chain of comparisons (these tests are most of the parser's time).
static CLASSES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0usize;
    while c < 256 {
        let b = c as u8;
        let token = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        let word_extra = matches!(
            b,
            b'(' | b')'
                | b'<'
                | b'>'
                | b':'
                | b'\\'
                | b'"'
                | b'/'
                | b'['
                | b']'
                | b'?'
                | b'{'
                | b'}'
        );
        // gen-value = token / host / quoted-string; host adds ':' '[' ']' (IPv6, RFC 5118 §4.5).
        let gen_extra = matches!(b, b':' | b'[' | b']');
        let mut bits = 0;
        if token {
            bits |= TOKEN | WORD | GEN_VALUE;
        }
        if word_extra {
            bits |= WORD;
        }
        if gen_extra {
            bits |= GEN_VALUE;
        }
        if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
            bits |= LWS;
        }
        // Evaluated at compile time: an out-of-bounds index would fail the build, not panic.
        #[allow(clippy::indexing_slicing)]
        {
            t[c] = bits;
        }
        c += 1;
    }
    t
};

#[inline]
fn class(c: u8, bits: u8) -> bool {
    // A u8 index is always in bounds of a 256-entry table; the check compiles away.
    CLASSES.get(usize::from(c)).is_some_and(|&b| b & bits != 0)
}

/// RFC 3261 `token` characters.
#[inline]
pub(crate) fn is_token(c: u8) -> bool {
    class(c, TOKEN)
}

/// RFC 3261 `word` characters (Call-ID).
#[inline]
pub(crate) fn is_word(c: u8) -> bool {
    class(c, WORD)
}

/// `gen-value` characters outside quoted strings: token plus the host characters.
#[inline]
pub(crate) fn is_gen_value(c: u8) -> bool {
    class(c, GEN_VALUE)
}

#[inline]
pub(crate) fn is_lws(c: u8) -> bool {
    class(c, LWS)
}

/// Position of the ASCII byte `b` in `s`. A plain byte loop: the strings searched here (URI
/// parts) are short, where `str::find(char)`'s searcher costs more than it saves.
#[inline]
pub(crate) fn find_byte(s: &str, b: u8) -> Option<usize> {
    s.bytes().position(|c| c == b)
}

/// `str::split_once` for an ASCII byte (so both sides are on char boundaries).
#[inline]
pub(crate) fn split_once_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    let i = find_byte(s, b)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// A range inside one header value, relative to the value's start: what the parse-time
/// check records so that typed accessors rebuild a view with slicing instead of parsing
/// again. `u8` keeps the records small (a `Message` holds five); a value longer than 255 bytes
/// is not recorded, and its accessor parses it as before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Rel {
    s: u8,
    e: u8,
}

impl Rel {
    /// Where `part` lies inside `base`; `part` must be a sub-slice of `base` or empty (an
    /// empty part may be a literal `""`, so its position means nothing and is not kept).
    pub(crate) fn of(base: &str, part: &str) -> Option<Rel> {
        if part.is_empty() {
            return Some(Rel::default());
        }
        let off = (part.as_ptr() as usize).checked_sub(base.as_ptr() as usize)?;
        let end = off.checked_add(part.len()).filter(|&e| e <= base.len())?;
        Some(Rel {
            s: u8::try_from(off).ok()?,
            e: u8::try_from(end).ok()?,
        })
    }

    /// The range `s..e` of a value, when both fit (what [`Rel::of`] gives for that slice).
    pub(crate) fn new(s: usize, e: usize) -> Option<Rel> {
        Some(Rel {
            s: u8::try_from(s).ok()?,
            e: u8::try_from(e).ok()?,
        })
    }

    /// [`Rel::of`] for an optional part.
    pub(crate) fn of_opt(base: &str, part: Option<&str>) -> Option<Option<Rel>> {
        match part {
            None => Some(None),
            Some(p) => Rel::of(base, p).map(Some),
        }
    }

    /// The part of `base` this range covers (the same `base` it was recorded from).
    #[inline]
    pub(crate) fn get(self, base: &str) -> &str {
        base.get(usize::from(self.s)..usize::from(self.e))
            .unwrap_or("")
    }

    /// [`Rel::get`] for an optional part.
    #[inline]
    pub(crate) fn get_opt(r: Option<Rel>, base: &str) -> Option<&str> {
        r.map(|r| r.get(base))
    }
}

/// Trims LWS (including folds) from both ends.
pub(crate) fn trim_lws(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_ascii() && is_lws(c as u8))
}

/// A position in a header value; errors carry `base + pos`.
pub(crate) struct Cur<'a> {
    pub(crate) s: &'a str,
    pub(crate) pos: usize,
}

impl<'a> Cur<'a> {
    pub(crate) fn new(s: &'a str) -> Cur<'a> {
        Cur { s, pos: 0 }
    }

    #[inline]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    pub(crate) fn eof(&self) -> bool {
        self.pos >= self.s.len()
    }

    pub(crate) fn err(&self, kind: ErrorKind) -> ParseError {
        ParseError::new(kind, self.pos)
    }

    pub(crate) fn skip_lws(&mut self) {
        while let Some(c) = self.peek() {
            if is_lws(c) {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    /// `SWS c SWS`: skips whitespace, eats `c` and the whitespace after it. Leaves the
    /// position untouched when `c` is not next.
    pub(crate) fn sep(&mut self, c: u8) -> bool {
        let save = self.pos;
        self.skip_lws();
        if self.peek() == Some(c) {
            self.pos += 1;
            self.skip_lws();
            true
        } else {
            self.pos = save;
            false
        }
    }

    /// Eats `c` right here (no whitespace skipping).
    pub(crate) fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    #[inline]
    pub(crate) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if f(c) {
                self.pos += 1;
            } else {
                break;
            }
        }
        // Every predicate used stops on ASCII bytes only or consumes whole UTF-8 sequences,
        // so the slice boundaries are char boundaries; fall back to "" defensively.
        self.s.get(start..self.pos).unwrap_or("")
    }

    pub(crate) fn token(&mut self, what: &'static str) -> Result<&'a str, ParseError> {
        let t = self.take_while(is_token);
        if t.is_empty() {
            Err(self.err(ErrorKind::Expected(what)))
        } else {
            Ok(t)
        }
    }

    /// A quoted-string starting at the cursor; returns it with its quotes.
    pub(crate) fn quoted(&mut self) -> Result<&'a str, ParseError> {
        let start = self.pos;
        if !self.eat(b'"') {
            return Err(self.err(ErrorKind::Expected("quoted string")));
        }
        let b = self.s.as_bytes();
        while let Some(&c) = b.get(self.pos) {
            match c {
                b'"' => {
                    self.pos += 1;
                    return Ok(self.s.get(start..self.pos).unwrap_or(""));
                }
                b'\\' => {
                    // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
                    match b.get(self.pos + 1) {
                        Some(&c) if c <= 0x7f && c != b'\r' && c != b'\n' => self.pos += 2,
                        _ => return Err(self.err(ErrorKind::Expected("quoted-pair"))),
                    }
                }
                b'\r' | b'\n' => {
                    // Only a fold (CRLF followed by whitespace) may appear inside.
                    self.pos += 1;
                }
                c if c < 0x20 && c != b'\t' => {
                    return Err(self.err(ErrorKind::Expected("qdtext")));
                }
                _ => self.pos += 1,
            }
        }
        Err(ParseError::new(
            ErrorKind::Unterminated("quoted string"),
            start,
        ))
    }

    pub(crate) fn expect_end(&mut self) -> Result<(), ParseError> {
        self.skip_lws();
        if self.eof() {
            Ok(())
        } else {
            Err(self.err(ErrorKind::Trailing))
        }
    }
}

/// Removes the quotes and quoted-pair backslashes of a quoted-string.
pub(crate) fn unquote(q: &str) -> String {
    let inner = q
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(q);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses a run of ASCII digits into `u64`, `None` on overflow or a non-digit.
pub(crate) fn digits_u64(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    // One pass: a non-digit and an overflow are both `None`, so which comes first does
    // not matter (two passes cost ~40 % more on the ports and sequence numbers of every
    // message).
    let mut v: u64 = 0;
    for c in s.bytes() {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(v)
}

/// Splits a list-valued header on top-level commas (not inside quotes or `<…>`), trimming
/// LWS; yields `(offset, item)`. Empty items are yielded too so that callers can reject them.
pub(crate) fn split_commas(s: &str) -> Vec<(usize, &str)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut in_q = false;
    let mut in_a = false;
    while let Some(&c) = b.get(i) {
        if in_q {
            if c == b'\\' {
                i += 1;
            } else if c == b'"' {
                in_q = false;
            }
        } else if c == b'"' {
            in_q = true;
        } else if c == b'<' {
            in_a = true;
        } else if c == b'>' {
            in_a = false;
        } else if c == b',' && !in_a {
            out.push(item(s, start, i));
            start = i + 1;
        }
        i += 1;
    }
    out.push(item(s, start, b.len()));
    out
}

fn item(s: &str, start: usize, end: usize) -> (usize, &str) {
    let raw = s.get(start..end.min(s.len())).unwrap_or("");
    let lead = raw.len()
        - raw
            .trim_start_matches(|c: char| c.is_ascii() && is_lws(c as u8))
            .len();
    (start + lead, trim_lws(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_quotes_and_angles() {
        let s = r#""a, b" <sip:x;p=1,2>;q=1 , <sip:y>"#;
        let v = split_commas(s);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].1, r#""a, b" <sip:x;p=1,2>;q=1"#);
        assert_eq!(v[1].1, "<sip:y>");
        assert_eq!(&s[v[1].0..], "<sip:y>");
        let v = split_commas(r#""a \", b", c"#);
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn quoted_pairs_and_unquote() {
        let mut c = Cur::new(r#""J Rosenberg \\\"" rest"#);
        let q = c.quoted().unwrap();
        assert_eq!(unquote(q), r#"J Rosenberg \""#);
        let mut c = Cur::new(r#""open"#);
        assert_eq!(
            c.quoted().unwrap_err().kind,
            ErrorKind::Unterminated("quoted string")
        );
    }

    #[test]
    fn digits() {
        assert_eq!(digits_u64("0068"), Some(68));
        assert_eq!(digits_u64("36893488147419103232"), None);
        assert_eq!(digits_u64("-1"), None);
        assert_eq!(digits_u64(""), None);
    }
}

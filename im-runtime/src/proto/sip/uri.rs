//! SIP, SIPS and tel URIs (RFC 3261 §19.1, §25; RFC 3966), IPv6 references (RFC 5118) and
//! any other absolute URI kept opaque. Zero-copy: every part borrows the message.

use std::borrow::Cow;
use std::fmt;

use super::error::{ErrorKind, ParseError};
use super::scan::{Rel, find_byte, split_once_byte};
use crate::machine;

/// The URI scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
    /// `tel:` (RFC 3966)
    Tel,
    /// Any other scheme; the URI is kept opaque.
    Other,
}

/// A parsed URI borrowing from the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uri<'a> {
    raw: &'a str,
    scheme: Scheme,
    scheme_str: &'a str,
    user: Option<&'a str>,
    password: Option<&'a str>,
    host: &'a str,
    port: Option<u16>,
    params: &'a str,
    headers: &'a str,
}

/// A checked URI's parts as ranges inside the header value it was parsed from, so that
/// [`UriRec::view`] rebuilds the [`Uri`] by slicing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UriRec {
    raw: Rel,
    scheme: Scheme,
    scheme_str: Rel,
    user: Option<Rel>,
    password: Option<Rel>,
    host: Rel,
    port: Option<u16>,
    params: Rel,
    headers: Rel,
}

impl UriRec {
    /// The URI rebuilt from `base`, the value it was recorded from.
    #[inline]
    pub(crate) fn view<'a>(&self, base: &'a str) -> Uri<'a> {
        Uri {
            raw: self.raw.get(base),
            scheme: self.scheme,
            scheme_str: self.scheme_str.get(base),
            user: Rel::get_opt(self.user, base),
            password: Rel::get_opt(self.password, base),
            host: self.host.get(base),
            port: self.port,
            params: self.params.get(base),
            headers: self.headers.get(base),
        }
    }
}

const UNRESERVED: u8 = 1;
const USER: u8 = 2;
const PASSWORD: u8 = 4;
const PARAM: u8 = 8;
const HNV: u8 = 16;
const RESERVED: u8 = 32;
const HOST: u8 = 64;

/// The URI character classes of RFC 3261 §25 as one bit set per byte (a class test is one
/// load; URIs are checked in every From, To, Contact and Request-URI).
static CLASSES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0usize;
    while c < 256 {
        let b = c as u8;
        let unreserved = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
            );
        let mut bits = 0;
        if unreserved {
            bits |= UNRESERVED;
        }
        if unreserved || matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/') {
            bits |= USER;
        }
        if unreserved || matches!(b, b'&' | b'=' | b'+' | b'$' | b',') {
            bits |= PASSWORD;
        }
        if unreserved || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$') {
            bits |= PARAM;
        }
        if unreserved || matches!(b, b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$') {
            bits |= HNV;
        }
        if matches!(
            b,
            b';' | b'/' | b'?' | b':' | b'@' | b'&' | b'=' | b'+' | b'$' | b','
        ) {
            bits |= RESERVED;
        }
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' {
            bits |= HOST;
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

fn is_unreserved(c: u8) -> bool {
    class(c, UNRESERVED)
}

fn is_user_char(c: u8) -> bool {
    class(c, USER)
}

fn is_password_char(c: u8) -> bool {
    class(c, PASSWORD)
}

fn is_param_char(c: u8) -> bool {
    class(c, PARAM)
}

fn is_hnv_char(c: u8) -> bool {
    class(c, HNV)
}

fn is_reserved(c: u8) -> bool {
    class(c, RESERVED)
}

/// Hostname and IPv4 characters: letters, digits, `-` and `.`.
#[inline]
pub(crate) fn is_host_char(c: u8) -> bool {
    class(c, HOST)
}

/// Checks `s` against a character class where `%HH` escapes are also allowed.
fn check_escaped(
    s: &str,
    base: usize,
    ok: impl Fn(u8) -> bool,
    what: &'static str,
) -> Result<(), ParseError> {
    check_escaped_upto(s, base, ok, what, b'%').map(drop)
}

/// [`check_escaped`] up to the first `stop` byte (not in the class): its position, or the
/// length when there is none. A `stop` of `%` stops nowhere (it starts an escape).
fn check_escaped_upto(
    s: &str,
    base: usize,
    ok: impl Fn(u8) -> bool,
    what: &'static str,
    stop: u8,
) -> Result<usize, ParseError> {
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        // Runs of class characters in a tight loop (escapes are rare); stop at anything else.
        i += b
            .get(i..)
            .unwrap_or_default()
            .iter()
            .position(|&c| c == b'%' || !ok(c))
            .unwrap_or(b.len() - i.min(b.len()));
        let Some(&c) = b.get(i) else {
            break;
        };
        if c == stop && c != b'%' {
            return Ok(i);
        }
        if c == b'%' {
            let hex_pair = b.get(i + 1..i + 3);
            if !hex_pair.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return Err(ParseError::new(ErrorKind::Escape, base + i).ctx(what));
            }
            i += 3;
        } else {
            return Err(ParseError::new(ErrorKind::Expected("URI character"), base + i).ctx(what));
        }
    }
    Ok(b.len())
}

/// Validates a host: hostname, IPv4 address or bracketed IPv6 reference. The IPv6 check is
/// deliberately loose (hex digits, colons, dots): RFC 5118 §4.10 asks parsers to accept the
/// historical three-colon form too.
pub(crate) fn check_host(h: &str, base: usize) -> Result<(), ParseError> {
    let err = || Err(ParseError::new(ErrorKind::Host, base));
    if let Some(inner) = h.strip_prefix('[') {
        let Some(inner) = inner.strip_suffix(']') else {
            return err();
        };
        if inner.is_empty()
            || !inner.contains(':')
            || !inner
                .bytes()
                .all(|c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
        {
            return err();
        }
        return Ok(());
    }
    if h.is_empty()
        || !h.bytes().all(is_host_char)
        || matches!(h.as_bytes().first(), Some(b'-' | b'.'))
    {
        return err();
    }
    Ok(())
}

/// Splits `host[:port]` (host may be a bracketed IPv6 reference).
pub(crate) fn split_hostport(s: &str, base: usize) -> Result<(&str, Option<u16>), ParseError> {
    let (host, port) = if s.starts_with('[') {
        match find_byte(s, b']') {
            Some(i) => {
                let (h, rest) = s.split_at(i + 1);
                match rest.strip_prefix(':') {
                    Some(p) => (h, Some(p)),
                    None if rest.is_empty() => (h, None),
                    None => return Err(ParseError::new(ErrorKind::Host, base + i + 1)),
                }
            }
            None => {
                return Err(ParseError::new(
                    ErrorKind::Unterminated("IPv6 reference"),
                    base,
                ));
            }
        }
    } else {
        match split_once_byte(s, b':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    check_host(host, base)?;
    let port = match port {
        None => None,
        Some(p) => {
            let off = base + host.len() + 1;
            match super::scan::digits_u64(p) {
                Some(v) if v <= u64::from(u16::MAX) => Some(v as u16),
                _ => return Err(ParseError::new(ErrorKind::Port, off)),
            }
        }
    };
    Ok((host, port))
}

/// The common `host[:port]` (a hostname or IPv4 address) at the start of `s`, followed by
/// `;`, `?` or the end, in one pass: `(host, port, end of hostport)`. `None` for anything
/// else (an IPv6 reference, an error), which the general path then handles; whatever this
/// accepts, that path accepts with the same result.
fn plain_hostport(s: &str) -> Option<(&str, Option<u16>, usize)> {
    let b = s.as_bytes();
    let h = b.iter().position(|&c| !is_host_char(c)).unwrap_or(b.len());
    if h == 0 || matches!(b.first(), Some(b'-' | b'.')) {
        return None;
    }
    let host = s.get(..h)?;
    match b.get(h) {
        None | Some(b';' | b'?') => Some((host, None, h)),
        Some(b':') => {
            // The digits counted and their value taken in one pass (a port has at most five
            // digits, so six or more are out of range however they continue).
            let digits = b.get(h + 1..)?;
            let mut port: u32 = 0;
            let mut d = 0;
            while let Some(&c) = digits.get(d) {
                let v = c.wrapping_sub(b'0');
                if v > 9 {
                    break;
                }
                port = port.saturating_mul(10).saturating_add(u32::from(v));
                d += 1;
            }
            if d == 0 || !matches!(digits.get(d), None | Some(b';' | b'?')) {
                return None;
            }
            let port = u16::try_from(port).ok()?;
            Some((host, Some(port), h + 1 + d))
        }
        Some(_) => None,
    }
}

impl<'a> Uri<'a> {
    /// Parses a complete URI (the caller has already cut it out of its header or line).
    pub fn parse(s: &'a str) -> Result<Uri<'a>, ParseError> {
        Self::parse_at(s, 0)
    }

    pub(crate) fn parse_at(s: &'a str, base: usize) -> Result<Uri<'a>, ParseError> {
        let colon = find_byte(s, b':')
            .ok_or_else(|| ParseError::new(ErrorKind::Expected("URI scheme"), base).ctx("URI"))?;
        let (scheme_str, colon_rest) = s.split_at_checked(colon).unwrap_or((s, ""));
        let sb = scheme_str.as_bytes();
        if !sb.first().is_some_and(u8::is_ascii_alphabetic)
            || !sb
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        {
            return Err(ParseError::new(ErrorKind::Expected("URI scheme"), base).ctx("URI"));
        }
        let scheme = if scheme_str.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme_str.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else if scheme_str.eq_ignore_ascii_case("tel") {
            Scheme::Tel
        } else {
            Scheme::Other
        };
        let rest = colon_rest.strip_prefix(':').unwrap_or_default();
        let rbase = base + colon + 1;
        let mut uri = Uri {
            raw: s,
            scheme,
            scheme_str,
            user: None,
            password: None,
            host: "",
            port: None,
            params: "",
            headers: "",
        };
        match scheme {
            Scheme::Sip | Scheme::Sips => uri.parse_sip(rest, rbase).map_err(|e| e.ctx("URI"))?,
            Scheme::Tel => uri.parse_tel(rest, rbase).map_err(|e| e.ctx("URI"))?,
            Scheme::Other => {
                if rest.is_empty() {
                    return Err(ParseError::new(ErrorKind::Expected("URI body"), rbase).ctx("URI"));
                }
                // Opaque: RFC 3986 characters; escapes are not checked for unknown schemes.
                if let Some(i) = rest.bytes().position(|c| {
                    !(is_unreserved(c) || is_reserved(c) || matches!(c, b'%' | b'#' | b'[' | b']'))
                }) {
                    return Err(
                        ParseError::new(ErrorKind::Expected("URI character"), rbase + i).ctx("URI"),
                    );
                }
            }
        }
        Ok(uri)
    }

    fn parse_sip(&mut self, rest: &'a str, base: usize) -> Result<(), ParseError> {
        let (hostpart, hbase) = match split_once_byte(rest, b'@') {
            Some((userinfo, after_at)) => {
                let at = userinfo.len();
                // `:` is not a user character: the walk that checks the user stops at the
                // first one, where the password starts (as splitting at it first would).
                let u = check_escaped_upto(userinfo, base, is_user_char, "user", b':')?;
                let (user, password) = match userinfo.split_at_checked(u) {
                    Some((u, p)) if !p.is_empty() => (u, Some(p.get(1..).unwrap_or(""))),
                    _ => (userinfo, None),
                };
                if user.is_empty() {
                    return Err(ParseError::new(ErrorKind::Expected("user"), base).ctx("user"));
                }
                if let Some(p) = password {
                    check_escaped(p, base + user.len() + 1, is_password_char, "password")?;
                }
                self.user = Some(user);
                self.password = password;
                (after_at, base + at + 1)
            }
            None => (rest, base),
        };
        if let Some((host, port, end)) = plain_hostport(hostpart) {
            self.host = host;
            self.port = port;
            return self.split_params(hostpart.get(end..).unwrap_or(""), hbase + end);
        }
        let end = hostpart
            .bytes()
            .position(|c| c == b';' || c == b'?')
            .unwrap_or(hostpart.len());
        let (hostport, tail) = hostpart.split_at_checked(end).unwrap_or((hostpart, ""));
        let (host, port) = split_hostport(hostport, hbase).map_err(|e| e.ctx("host"))?;
        self.host = host;
        self.port = port;
        self.split_params(tail, hbase + end)
    }

    fn parse_tel(&mut self, rest: &'a str, base: usize) -> Result<(), ParseError> {
        let end = rest.find([';', '?']).unwrap_or(rest.len());
        let (number, tail) = rest.split_at_checked(end).unwrap_or((rest, ""));
        if number.is_empty()
            || !number.bytes().all(|c| {
                c.is_ascii_hexdigit()
                    || matches!(c, b'*' | b'#' | b'+' | b'-' | b'.' | b'(' | b')')
                    || c == b'p'
                    || c == b'w'
            })
        {
            return Err(
                ParseError::new(ErrorKind::Expected("telephone number"), base)
                    .ctx("telephone-subscriber"),
            );
        }
        self.user = Some(number);
        self.split_params(tail, base + end)
    }

    /// `tail` starts with `;` (params), `?` (headers) or is empty.
    fn split_params(&mut self, tail: &'a str, base: usize) -> Result<(), ParseError> {
        let (params, headers, hbase) = match split_once_byte(tail, b'?') {
            Some((p, h)) => (p, h, base + p.len() + 1),
            None => (tail, "", base),
        };
        if let Some(p) = params.strip_prefix(';') {
            let mut off = base + 1;
            for param in p.split(';') {
                let (name, value) = match split_once_byte(param, b'=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (param, None),
                };
                if name.is_empty() || value == Some("") {
                    return Err(ParseError::new(ErrorKind::Expected("uri-parameter"), off)
                        .ctx("uri-parameter"));
                }
                check_escaped(
                    param,
                    off,
                    |c| is_param_char(c) || c == b'=',
                    "uri-parameter",
                )?;
                off += param.len() + 1;
            }
            self.params = p;
        }
        if hbase != base {
            let mut off = hbase;
            for h in headers.split('&') {
                match split_once_byte(h, b'=') {
                    Some((n, v)) if !n.is_empty() => {
                        check_escaped(n, off, is_hnv_char, "header")?;
                        check_escaped(v, off + n.len() + 1, is_hnv_char, "header")?;
                    }
                    _ => {
                        return Err(
                            ParseError::new(ErrorKind::Expected("hname=hvalue"), off).ctx("header")
                        );
                    }
                }
                off += h.len() + 1;
            }
            self.headers = headers;
        }
        Ok(())
    }

    /// Records where the parts lie in `base` (the value this URI was parsed from).
    pub(crate) fn record(&self, base: &str) -> Option<UriRec> {
        Some(UriRec {
            raw: Rel::of(base, self.raw)?,
            scheme: self.scheme,
            scheme_str: Rel::of(base, self.scheme_str)?,
            user: Rel::of_opt(base, self.user)?,
            password: Rel::of_opt(base, self.password)?,
            host: Rel::of(base, self.host)?,
            port: self.port,
            params: Rel::of(base, self.params)?,
            headers: Rel::of(base, self.headers)?,
        })
    }

    /// The URI exactly as written.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The scheme as written (`sip`, `SIP`, `isbn` …).
    pub fn scheme_str(&self) -> &'a str {
        self.scheme_str
    }

    /// The user part as written (still %-escaped); the number for `tel`.
    pub fn user(&self) -> Option<&'a str> {
        self.user
    }

    /// The user part with %-escapes decoded (invalid UTF-8 replaced).
    pub fn user_unescaped(&self) -> Option<Cow<'a, str>> {
        self.user.map(unescape)
    }

    /// The password, as written.
    pub fn password(&self) -> Option<&'a str> {
        self.password
    }

    /// The host as written (IPv6 references keep their brackets); empty for tel and
    /// other schemes.
    pub fn host(&self) -> &'a str {
        self.host
    }

    /// The explicit port.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// URI parameters in order as `(name, value)`, still escaped.
    pub fn params(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
        let p = self.params;
        p.split(';')
            .filter(|s| !s.is_empty())
            .map(|s| match split_once_byte(s, b'=') {
                Some((n, v)) => (n, Some(v)),
                None => (s, None),
            })
    }

    /// A URI parameter by name (case-insensitive): `Some(None)` for a flag like `lr`.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        self.params()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// URI headers (`?name=value&…`) in order, still escaped.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let h = self.headers;
        h.split('&')
            .filter(|s| !s.is_empty())
            .filter_map(|s| split_once_byte(s, b'='))
    }

    /// The contract's view of this URI (lower-cased scheme and host, unescaped user).
    pub fn to_view(&self) -> machine::Uri {
        // Without parameters (a list entry, most From and To URIs) the two vectors below are
        // not set up at all (~140 instructions a view, two views per list entry and copy).
        if self.params.is_empty() {
            return self.view_with(&[]);
        }
        // Each part is copied once, into the view's single text: the lower-cased and
        // unescaped forms are borrowed when they equal what the message says (nearly always).
        let params: Vec<(Cow<'_, str>, Option<Cow<'_, str>>)> = self
            .params()
            .map(|(n, v)| (lower(unescape(n)), v.map(unescape)))
            .collect();
        let pairs: Vec<(&str, Option<&str>)> = params
            .iter()
            .map(|(n, v)| (n.as_ref(), v.as_deref()))
            .collect();
        self.view_with(&pairs)
    }

    /// [`Uri::to_view`] with its parameters already normalized.
    fn view_with(&self, params: &[(&str, Option<&str>)]) -> machine::Uri {
        let user = self.user.map(unescape).unwrap_or_default();
        machine::Uri::new(machine::UriParts {
            scheme: &lower(Cow::Borrowed(self.scheme_str)),
            user: &user,
            host: &lower(Cow::Borrowed(self.host)),
            port: self.port,
            params,
            raw: self.raw,
        })
    }
}

/// `s` in ASCII lower case, borrowed when it has no upper-case letter.
fn lower(s: Cow<'_, str>) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        s
    }
}

impl From<Uri<'_>> for machine::Uri {
    fn from(u: Uri<'_>) -> machine::Uri {
        u.to_view()
    }
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw)
    }
}

/// Decodes `%HH` escapes; malformed escapes are kept as written, invalid UTF-8 is replaced.
pub fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%'
            && let Some(&[hi, lo]) = b.get(i + 1..i + 3).and_then(|h| h.first_chunk::<2>())
        {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(hi), hex(lo)) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_parts() {
        let u =
            Uri::parse("sip:alice:pw@Example.COM:5070;transport=tcp;lr?subject=hi&x=y").unwrap();
        assert_eq!(u.scheme(), Scheme::Sip);
        assert_eq!(u.user(), Some("alice"));
        assert_eq!(u.password(), Some("pw"));
        assert_eq!(u.host(), "Example.COM");
        assert_eq!(u.port(), Some(5070));
        assert_eq!(u.param("TRANSPORT"), Some(Some("tcp")));
        assert_eq!(u.param("lr"), Some(None));
        assert_eq!(
            u.headers().collect::<Vec<_>>(),
            vec![("subject", "hi"), ("x", "y")]
        );
        let v = u.to_view();
        assert_eq!(v.host(), "example.com");
        assert_eq!(v.params().next(), Some(("transport", Some("tcp"))));
    }

    #[test]
    fn escapes() {
        let u = Uri::parse("sip:sips%3Auser%40example.com@example.net").unwrap();
        assert_eq!(u.user_unescaped().unwrap(), "sips:user@example.com");
        assert_eq!(u.host(), "example.net");
        let u = Uri::parse("sip:null-%00-null@example.com").unwrap();
        assert_eq!(u.to_view().user(), "null-\0-null");
        assert_eq!(Uri::parse("sip:a%4@x").unwrap_err().kind, ErrorKind::Escape);
        let u =
            Uri::parse("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31").unwrap();
        let v = u.to_view();
        assert_eq!(v.user(), "caller");
        assert_eq!(v.param("lr"), Some(None));
        assert_eq!(v.param("name"), Some(Some("value%41")));
    }

    #[test]
    fn ipv6_references() {
        let u = Uri::parse("sip:[2001:db8::10]:5070").unwrap();
        assert_eq!((u.host(), u.port()), ("[2001:db8::10]", Some(5070)));
        let u = Uri::parse("sip:[2001:db8::10:5070]").unwrap();
        assert_eq!((u.host(), u.port()), ("[2001:db8::10:5070]", None));
        let u = Uri::parse("sip:user@[::ffff:192.0.2.10]").unwrap();
        assert_eq!(u.host(), "[::ffff:192.0.2.10]");
        assert!(Uri::parse("sip:user@[2001:db8:::192.0.2.1]").is_ok());
        assert_eq!(
            Uri::parse("sip:2001:db8::10").unwrap_err().kind,
            ErrorKind::Port
        );
        assert!(Uri::parse("sip:[2001:db8::10").is_err());
    }

    #[test]
    fn tel_and_other() {
        let u = Uri::parse("tel:+1-201-555-0123;phone-context=example.com").unwrap();
        assert_eq!(u.scheme(), Scheme::Tel);
        assert_eq!(u.user(), Some("+1-201-555-0123"));
        assert_eq!(u.to_view().host(), "");
        let u = Uri::parse("soap.beep://192.0.2.103:3002").unwrap();
        assert_eq!(u.scheme(), Scheme::Other);
        assert_eq!(u.scheme_str(), "soap.beep");
        assert!(Uri::parse("<sip:x@y>").is_err());
        assert!(Uri::parse("nocolon").is_err());
    }

    #[test]
    fn unusual_user_and_password() {
        let s = "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com";
        let u = Uri::parse(s).unwrap();
        assert_eq!(
            u.user(),
            Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        );
        assert_eq!(u.host(), "example.com");
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user_unescaped().unwrap(), "user;par=u@example.net");
    }

    #[test]
    fn plain_hostport_agrees_with_the_general_path() {
        for s in [
            "example.com",
            "example.com:5060",
            "example.com:5060;lr",
            "192.0.2.1?x=y",
            "h:;x",
            "h:99999",
            "h:5060:1",
            "-h",
            ".h",
            "h x",
            "[::1]:5060",
            "h:50a",
            "h:0068;p",
            "h:65535",
            "h:65536?x=y",
            "h:00000000000000000000005060;lr",
            "h:99999999999999999999999",
            "",
        ] {
            let Some((host, port, end)) = plain_hostport(s) else {
                continue;
            };
            let general_end = s.find([';', '?']).unwrap_or(s.len());
            assert_eq!(end, general_end, "{s}");
            assert_eq!(split_hostport(&s[..end], 0).unwrap(), (host, port), "{s}");
        }
        assert_eq!(plain_hostport("h:0068;p"), Some(("h", Some(68), 6)));
        assert_eq!(plain_hostport("h:65535"), Some(("h", Some(65535), 7)));
        assert_eq!(plain_hostport("h:65536"), None);
        assert_eq!(plain_hostport("h:5060:1"), None);
        assert_eq!(plain_hostport("[::1]"), None);
    }

    #[test]
    fn rejects() {
        assert!(Uri::parse("sip:user@example.com;").is_err());
        assert!(Uri::parse("sip:@example.com").is_err());
        assert!(Uri::parse("sip:user@exa mple.com").is_err());
        assert!(Uri::parse("sip:user@example.com:99999").is_err());
        assert!(Uri::parse("sip:user@example.com?x").is_err());
    }
}

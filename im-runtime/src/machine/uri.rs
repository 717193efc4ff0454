//! [`Uri`], the URI view conditions test, kept compact: a session holds a dozen or more of
//! them (the request's URIs, every recipient, every leg), so each is one shared text
//! allocation and a few offsets rather than four strings and a vector.

use std::fmt;
use std::sync::Arc;

/// A SIP, SIPS or tel URI reduced to the parts conditions test. Comparisons follow
/// RFC 3261 §19.1.4 for the parts kept here (scheme and host case-insensitive, user exact).
///
/// The parts live in one reference-counted text (the URI as written, then the normalized
/// scheme, user, host and parameters), so a clone (a leg's copy of its recipient's URI)
/// shares it and an empty URI allocates nothing. Build one from a parsed URI
/// (`From<proto::sip::Uri>`) or from its parts with [`Uri::new`].
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Uri {
    /// `raw ++ scheme ++ user ++ host ++ params`; `None` when every part is empty.
    text: Option<Arc<str>>,
    /// Where the scheme starts (= the length of `raw`).
    scheme_at: u32,
    /// Where the user starts (the scheme ends).
    user_at: u32,
    /// Where the host starts.
    host_at: u32,
    /// Where the encoded parameters start; they run to the end of the text.
    params_at: u32,
    port: Option<u16>,
}

/// The parts of a [`Uri`], borrowed, for [`Uri::new`]. The parts are stored as given:
/// normalizing them (lower-case scheme and host, unescaped user) is the caller's job, as
/// the parser's view does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UriParts<'a> {
    /// `sip`, `sips`, `tel`, … in lower case.
    pub scheme: &'a str,
    /// User part (or the telephone number for `tel`), unescaped; empty when absent.
    pub user: &'a str,
    /// Host in lower case (IPv6 references keep their brackets); empty for `tel`.
    pub host: &'a str,
    /// Port when given explicitly.
    pub port: Option<u16>,
    /// URI parameters, names in lower case, in order.
    pub params: &'a [(&'a str, Option<&'a str>)],
    /// The URI as it appeared in the message.
    pub raw: &'a str,
}

impl Uri {
    /// The empty URI (every part empty, no port), as [`Default`] builds it.
    pub const EMPTY: Uri = Uri {
        text: None,
        scheme_at: 0,
        user_at: 0,
        host_at: 0,
        params_at: 0,
        port: None,
    };

    /// A URI from its parts, in one allocation (none when every part is empty). Parts
    /// whose total length does not fit in 32 bits (no message the parser accepts has one)
    /// leave the URI empty rather than cut.
    pub fn new(parts: UriParts<'_>) -> Uri {
        let mut params_len = 0;
        for (n, v) in parts.params {
            params_len += varint_len(n.len()) + n.len();
            params_len += varint_len(v.map_or(0, |v| v.len() + 1)) + v.map_or(0, str::len);
        }
        let total =
            parts.raw.len() + parts.scheme.len() + parts.user.len() + parts.host.len() + params_len;
        if total == 0 || u32::try_from(total).is_err() {
            return Uri {
                port: parts.port,
                ..Uri::EMPTY
            };
        }
        let mut text = String::with_capacity(total);
        let mark = |text: &mut String, s: &str| {
            let at = text.len() as u32; // fits: total fits in u32
            text.push_str(s);
            at
        };
        mark(&mut text, parts.raw);
        let scheme_at = mark(&mut text, parts.scheme);
        let user_at = mark(&mut text, parts.user);
        let host_at = mark(&mut text, parts.host);
        let params_at = mark(&mut text, "");
        for (n, v) in parts.params {
            push_varint(&mut text, n.len());
            text.push_str(n);
            push_varint(&mut text, v.map_or(0, |v| v.len() + 1));
            text.push_str(v.unwrap_or(""));
        }
        Uri {
            text: Some(Arc::from(text)),
            scheme_at,
            user_at,
            host_at,
            params_at,
            port: parts.port,
        }
    }

    fn slice(&self, from: u32, to: Option<u32>) -> &str {
        let Some(t) = self.text.as_deref() else {
            return "";
        };
        let to = to.map_or(t.len(), |x| x as usize);
        t.get(from as usize..to).unwrap_or("")
    }

    /// `sip`, `sips`, `tel`, … in lower case.
    pub fn scheme(&self) -> &str {
        self.slice(self.scheme_at, Some(self.user_at))
    }

    /// User part (or the telephone number for `tel`), unescaped; empty when absent.
    pub fn user(&self) -> &str {
        self.slice(self.user_at, Some(self.host_at))
    }

    /// Host in lower case (IPv6 references keep their brackets); empty for `tel`.
    pub fn host(&self) -> &str {
        self.slice(self.host_at, Some(self.params_at))
    }

    /// Port when given explicitly.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The URI as it appeared in the message; empty for a URI built without it.
    pub fn raw(&self) -> &str {
        self.slice(0, Some(self.scheme_at))
    }

    /// URI parameters in order: names in lower case, values unescaped (`None` for a flag).
    pub fn params(&self) -> Params<'_> {
        Params {
            rest: self.slice(self.params_at, None),
        }
    }

    /// The parts, borrowed (to build a changed copy with [`Uri::new`]).
    pub fn parts<'a>(&'a self, params: &'a [(&'a str, Option<&'a str>)]) -> UriParts<'a> {
        UriParts {
            scheme: self.scheme(),
            user: self.user(),
            host: self.host(),
            port: self.port,
            params,
            raw: self.raw(),
        }
    }

    /// RFC 3261 §19.1.4 equivalence on the parts this view keeps: scheme, user, host and port.
    /// Parameters are ignored here on purpose: conditions compare identities (a group URI with
    /// a `transport` parameter is still the same group).
    pub fn same_identity(&self, other: &Uri) -> bool {
        // The parts that differ most often between two list entries first (`distinct`
        // compares every pair): the port and the user are compared byte for byte, the
        // scheme, the same in nearly every pair, last.
        self.port == other.port
            && self.user() == other.user()
            && self.host().eq_ignore_ascii_case(other.host())
            && self.scheme().eq_ignore_ascii_case(other.scheme())
    }

    /// The value of a URI parameter (`None` when absent, `Some(None)` for a flag).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

impl fmt::Debug for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Uri")
            .field("scheme", &self.scheme())
            .field("user", &self.user())
            .field("host", &self.host())
            .field("port", &self.port)
            .field("params", &self.params().collect::<Vec<_>>())
            .field("raw", &self.raw())
            .finish()
    }
}

impl<'a> From<UriParts<'a>> for Uri {
    fn from(parts: UriParts<'a>) -> Uri {
        Uri::new(parts)
    }
}

/// The parameters of a [`Uri`] in order ([`Uri::params`]).
#[derive(Clone, Debug)]
pub struct Params<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Params<'a> {
    type Item = (&'a str, Option<&'a str>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let n = take_varint(&mut self.rest)?;
        let name = take(&mut self.rest, n)?;
        let v = take_varint(&mut self.rest)?;
        let value = match v.checked_sub(1) {
            None => None,
            Some(len) => Some(take(&mut self.rest, len)?),
        };
        Some((name, value))
    }
}

// Lengths inside the text are written in ASCII (6 bits a byte, 0x40 marks "more follows"), so
// the text stays a `str` and a part never needs escaping whatever its bytes.
fn push_varint(out: &mut String, mut n: usize) {
    loop {
        let low = (n & 0x3f) as u8;
        n >>= 6;
        if n == 0 {
            out.push(char::from(low));
            return;
        }
        out.push(char::from(low | 0x40));
    }
}

fn varint_len(mut n: usize) -> usize {
    let mut len = 1;
    while n >= 0x40 {
        n >>= 6;
        len += 1;
    }
    len
}

fn take_varint(rest: &mut &str) -> Option<usize> {
    let mut n = 0usize;
    let mut shift = 0u32;
    for (i, b) in rest.bytes().enumerate() {
        n |= usize::from(b & 0x3f).checked_shl(shift)?;
        if b & 0x40 == 0 {
            *rest = rest.get(i + 1..)?;
            return Some(n);
        }
        shift += 6;
    }
    None
}

fn take<'a>(rest: &mut &'a str, n: usize) -> Option<&'a str> {
    let s = rest.get(..n)?;
    *rest = rest.get(n..)?;
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_come_back_as_given() {
        let long = "v".repeat(5_000);
        let params = [
            ("transport", Some("tcp")),
            ("lr", None),
            ("x", Some(long.as_str())),
        ];
        let u = Uri::new(UriParts {
            scheme: "sip",
            user: "alice",
            host: "example.com",
            port: Some(5070),
            params: &params,
            raw: "SIP:alice@Example.com:5070;transport=tcp;lr;x=…",
        });
        assert_eq!(u.scheme(), "sip");
        assert_eq!(u.user(), "alice");
        assert_eq!(u.host(), "example.com");
        assert_eq!(u.port(), Some(5070));
        assert_eq!(u.raw(), "SIP:alice@Example.com:5070;transport=tcp;lr;x=…");
        assert_eq!(u.params().collect::<Vec<_>>(), params);
        assert_eq!(u.param("LR"), Some(None));
        assert_eq!(u.param("transport"), Some(Some("tcp")));
        assert_eq!(u.param("maddr"), None);
    }

    #[test]
    fn empty_parts_allocate_nothing_and_equal_the_default() {
        let u = Uri::new(UriParts::default());
        assert!(u.text.is_none());
        assert_eq!(u, Uri::default());
        assert_eq!(u, Uri::EMPTY);
        assert_eq!(u.scheme(), "");
        assert_eq!(u.params().next(), None);
    }

    #[test]
    fn parts_that_run_together_stay_apart() {
        // The same concatenated text split differently is a different URI.
        let a = Uri::new(UriParts {
            user: "ab",
            host: "c",
            ..UriParts::default()
        });
        let b = Uri::new(UriParts {
            user: "a",
            host: "bc",
            ..UriParts::default()
        });
        assert_ne!(a, b);
        assert_eq!(a.user(), "ab");
        assert_eq!(b.host(), "bc");
    }
}

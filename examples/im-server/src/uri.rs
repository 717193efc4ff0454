//! A small reader from URI text (a configuration value, a group document's `uri` attribute)
//! to the contract's [`Uri`] view.
//!
//! The runtime's SIP parser reads URIs inside messages; this one reads the handful of URIs
//! that come from files and flags, where it is enough to split scheme, user, host, port and
//! parameters and to normalise them the way [`Uri::same_identity`] compares them (scheme and
//! host in lower case, user unescaped and exact).

use im_runtime::machine::{Uri, UriParts};

/// Why a URI was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// No `scheme:` prefix.
    #[error("no scheme (expected sip:, sips: or tel:)")]
    NoScheme,
    /// A scheme other than sip, sips or tel.
    #[error("unsupported scheme {0:?} (expected sip, sips or tel)")]
    Scheme(String),
    /// The host part is empty or has characters a host cannot have.
    #[error("bad host {0:?}")]
    Host(String),
    /// The port is not a number from 1 to 65535.
    #[error("bad port {0:?}")]
    Port(String),
    /// A `%` escape is not followed by two hex digits, or the result is not UTF-8.
    #[error("bad %-escape in {0:?}")]
    Escape(String),
    /// A character no URI may contain (white space, angle brackets, quotes …).
    #[error("character {0:?} not allowed in a URI")]
    Char(char),
}

/// Parses `sip:`/`sips:`/`tel:` URI text. Angle brackets around the URI are accepted and
/// dropped (`<sip:alice@example.com>`), URI headers (`?…`) are dropped.
pub fn parse_uri(text: &str) -> Result<Uri, UriError> {
    let raw = text.trim();
    let raw = raw
        .strip_prefix('<')
        .and_then(|r| r.strip_suffix('>'))
        .unwrap_or(raw);
    if let Some(c) = raw
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'))
    {
        return Err(UriError::Char(c));
    }
    let (scheme, rest) = raw.split_once(':').ok_or(UriError::NoScheme)?;
    let scheme = scheme.to_ascii_lowercase();
    let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
    match scheme.as_str() {
        "sip" | "sips" => {}
        "tel" => {
            let (number, params) = split_params(rest);
            if number.is_empty() {
                return Err(UriError::Host(String::new()));
            }
            return Ok(Uri::new(UriParts {
                scheme: &scheme,
                user: &unescape(number)?,
                params: &pairs(&params),
                raw,
                ..UriParts::default()
            }));
        }
        "" => return Err(UriError::NoScheme),
        other => return Err(UriError::Scheme(other.to_owned())),
    }
    // The user part may itself contain ';' (user parameters), so split at the last '@'
    // before the host part, then the parameters after the host.
    let (user, hostpart) = match rest.rfind('@') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => ("", rest),
    };
    // A password (`user:secret@`) is not part of the identity.
    let user = user.split_once(':').map_or(user, |(u, _)| u);
    let (hostport, params) = split_params(hostpart);
    let (host, port) = split_hostport(hostport)?;
    Ok(Uri::new(UriParts {
        scheme: &scheme,
        user: &unescape(user)?,
        host: &host,
        port,
        params: &pairs(&params),
        raw,
    }))
}

/// The parameters borrowed, as [`UriParts`] takes them.
fn pairs(params: &[(String, Option<String>)]) -> Vec<(&str, Option<&str>)> {
    params
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_deref()))
        .collect()
}

fn split_params(s: &str) -> (&str, Vec<(String, Option<String>)>) {
    let mut it = s.split(';');
    let head = it.next().unwrap_or("");
    let params = it
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((n, v)) => (n.to_ascii_lowercase(), Some(v.to_owned())),
            None => (p.to_ascii_lowercase(), None),
        })
        .collect();
    (head, params)
}

/// Splits `host[:port]`; the host may be a bracketed IPv6 reference (kept with brackets, as
/// the contract's [`Uri::host`] says). The host comes back in lower case.
pub(crate) fn split_hostport(s: &str) -> Result<(String, Option<u16>), UriError> {
    let (host, port) = if let Some(inner) = s.strip_prefix('[') {
        let end = inner
            .find(']')
            .ok_or_else(|| UriError::Host(s.to_owned()))?;
        let v6 = &inner[..end];
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(UriError::Host(s.to_owned()));
        }
        let after = &inner[end + 1..];
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| UriError::Host(s.to_owned()))?,
            ),
        };
        (format!("[{}]", v6.to_ascii_lowercase()), port)
    } else {
        let (h, p) = match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        let ok = !h.is_empty()
            && !h.starts_with(['-', '.'])
            && h.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.');
        if !ok {
            return Err(UriError::Host(h.to_owned()));
        }
        (h.to_ascii_lowercase(), p)
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(UriError::Port(p.to_owned())),
        },
    };
    Ok((host, port))
}

fn unescape(s: &str) -> Result<String, UriError> {
    if !s.contains('%') {
        return Ok(s.to_owned());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .ok_or_else(|| UriError::Escape(s.into()))?;
            let v = u8::from_str_radix(hex, 16).map_err(|_| UriError::Escape(s.into()))?;
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UriError::Escape(s.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_parts() {
        let u = parse_uri("SIP:alice@Example.COM:5070;transport=tcp;lr").unwrap();
        assert_eq!(u.scheme(), "sip");
        assert_eq!(u.user(), "alice");
        assert_eq!(u.host(), "example.com");
        assert_eq!(u.port(), Some(5070));
        assert_eq!(u.param("transport"), Some(Some("tcp")));
        assert_eq!(u.param("lr"), Some(None));
        assert_eq!(u.raw(), "SIP:alice@Example.COM:5070;transport=tcp;lr");
    }

    #[test]
    fn brackets_headers_password_and_escapes() {
        let u = parse_uri(" <sips:b%6Fb:pw@[2001:DB8::1]:5061?subject=x> ").unwrap();
        assert_eq!(u.scheme(), "sips");
        assert_eq!(u.user(), "bob");
        assert_eq!(u.host(), "[2001:db8::1]");
        assert_eq!(u.port(), Some(5061));
        let a = parse_uri("sip:%61lice@example.com").unwrap();
        assert!(a.same_identity(&parse_uri("sip:alice@EXAMPLE.com;transport=udp").unwrap()));
    }

    #[test]
    fn tel_uri() {
        let u = parse_uri("tel:+1-201-555-0123;phone-context=x").unwrap();
        assert_eq!(u.user(), "+1-201-555-0123");
        assert!(u.host().is_empty());
    }

    #[test]
    fn bad_uris_are_errors() {
        assert_eq!(parse_uri("alice"), Err(UriError::NoScheme));
        assert!(matches!(parse_uri("http://x"), Err(UriError::Scheme(_))));
        assert!(matches!(parse_uri("sip:alice@"), Err(UriError::Host(_))));
        assert!(matches!(parse_uri("sip:a@b:0"), Err(UriError::Port(_))));
        assert!(matches!(parse_uri("sip:a@b:99999"), Err(UriError::Port(_))));
        assert!(matches!(parse_uri("sip:a@[::1"), Err(UriError::Host(_))));
        assert!(matches!(parse_uri("sip:a@[zz]"), Err(UriError::Host(_))));
        assert!(matches!(parse_uri("sip:a%zz@b"), Err(UriError::Escape(_))));
        assert!(matches!(parse_uri("sip:a b@c"), Err(UriError::Char(' '))));
        assert_eq!(parse_uri(""), Err(UriError::NoScheme));
    }
}

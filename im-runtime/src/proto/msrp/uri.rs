//! MSRP URIs (RFC 4975 §6, syntax in §9) and their §6.1 comparison.
//!
//! ```text
//! MSRP-URI = msrp-scheme "://" authority ["/" session-id] ";" transport *( ";" URI-parameter)
//! ```

use crate::proto::decimal::decimal;
use std::fmt;
use std::str::FromStr;

/// The TCP port an MSRP URI without an explicit port refers to (RFC 4975 §6).
pub const DEFAULT_PORT: u16 = 2855;

/// `msrp` (plain TCP) or `msrps` (TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `msrp:` over plain TCP.
    Msrp,
    /// `msrps:` over TLS.
    Msrps,
}

impl Scheme {
    /// The scheme as written in a URI.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Msrp => "msrp",
            Scheme::Msrps => "msrps",
        }
    }
}

/// A parsed MSRP URI. Fields keep what was written (case included) so that printing a parsed
/// URI gives back the same text; use [`MsrpUri::matches`] or [`MsrpUri::comparison_key`] to
/// compare URIs the way RFC 4975 §6.1 says. The derived `PartialEq` is structural.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MsrpUri {
    /// `msrp` or `msrps`.
    pub scheme: Scheme,
    /// The userinfo part before `@`, if any (ignored when comparing).
    pub user: Option<String>,
    /// The host: a name, an IPv4 address, or an IPv6 reference including its brackets.
    pub host: String,
    /// The explicit port, if written.
    pub port: Option<u16>,
    /// The session id after `/`. The grammar makes it optional (relay URIs have none).
    pub session_id: Option<String>,
    /// The transport token, `tcp` in RFC 4975.
    pub transport: String,
    /// URI parameters after the transport, as `name` or `name=value`.
    pub params: Vec<(String, Option<String>)>,
}

/// Why a string is not an MSRP URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// The scheme is not `msrp://` or `msrps://`.
    #[error("scheme is not msrp:// or msrps://")]
    Scheme,
    /// The host is empty or has a character a host cannot have.
    #[error("invalid host")]
    Host,
    /// The port is not a number from 0 to 65535.
    #[error("invalid port")]
    Port,
    /// The session id is empty or has a character outside unreserved / `+` / `=` / `/`.
    #[error("invalid session id")]
    SessionId,
    /// The mandatory `;transport` is missing or not alphanumeric.
    #[error("missing or invalid transport")]
    Transport,
    /// A URI parameter is not `token` or `token=token`.
    #[error("invalid URI parameter")]
    Param,
    /// The userinfo part has a character it cannot have.
    #[error("invalid userinfo")]
    User,
}

/// The fields RFC 4975 §6.1 compares, normalised. Two URIs match when their keys are equal,
/// so the key can index a session table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UriKey {
    /// The scheme.
    pub scheme: Scheme,
    /// The host in lower case.
    pub host: String,
    /// The port, [`DEFAULT_PORT`] when absent.
    pub port: u16,
    /// The session id, case kept (it compares case-sensitively).
    pub session_id: Option<String>,
    /// The transport in lower case.
    pub transport: String,
}

impl MsrpUri {
    fn for_listener_text(
        scheme: Scheme,
        addr: std::net::SocketAddr,
        session_id: &str,
    ) -> Option<MsrpUri> {
        format!("{}://{addr}/{session_id};tcp", scheme.as_str())
            .parse()
            .ok()
    }

    /// `msrp[s]://<addr>/<session_id>;tcp`: the URI a server listening on `addr` gives a
    /// session, the same as parsing that text (`None` where parsing fails), built
    /// without writing and parsing the text for an IPv4 address and a plain session id.
    pub fn for_listener(
        scheme: Scheme,
        addr: std::net::SocketAddr,
        session_id: &str,
    ) -> Option<MsrpUri> {
        // Anything but an IPv4 address and a plain session id (ours are hex) takes the
        // text, so that odd ids (`a;b` reads as id `a`, transport `b`) and IPv6 zones give
        // exactly what parsing gives.
        let plain = !session_id.is_empty() && session_id.bytes().all(is_session_id_char);
        let std::net::SocketAddr::V4(v4) = addr else {
            return Self::for_listener_text(scheme, addr, session_id);
        };
        if !plain {
            return Self::for_listener_text(scheme, addr, session_id);
        }
        Some(MsrpUri {
            scheme,
            user: None,
            host: ipv4_text(*v4.ip()),
            port: Some(v4.port()),
            session_id: Some(session_id.to_owned()),
            transport: "tcp".to_owned(),
            params: Vec::new(),
        })
    }

    /// The port to connect to: the explicit one or [`DEFAULT_PORT`].
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(DEFAULT_PORT)
    }

    /// The normalised fields compared by RFC 4975 §6.1 (user part and parameters left out).
    pub fn comparison_key(&self) -> UriKey {
        UriKey {
            scheme: self.scheme,
            host: self.host.to_ascii_lowercase(),
            port: self.effective_port(),
            session_id: self.session_id.clone(),
            transport: self.transport.to_ascii_lowercase(),
        }
    }

    /// RFC 4975 §6.1 equality: scheme, host (case-insensitive), port (2855 when absent),
    /// session id (case-sensitive) and transport (case-insensitive); the user part is ignored.
    pub fn matches(&self, other: &MsrpUri) -> bool {
        self.scheme == other.scheme
            && self.host.eq_ignore_ascii_case(&other.host)
            && self.effective_port() == other.effective_port()
            && self.session_id == other.session_id
            && self.transport.eq_ignore_ascii_case(&other.transport)
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

/// `token` characters from RFC 3261, which RFC 4975 borrows for URI parameters.
pub(crate) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

fn is_session_id_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'+' | b'=' | b'/')
}

fn parse_host(s: &str) -> Result<(), UriError> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Err(UriError::Host);
    }
    if b.first() == Some(&b'[') {
        let inner = s
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .ok_or(UriError::Host)?;
        if inner.is_empty()
            || !inner
                .bytes()
                .all(|c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
        {
            return Err(UriError::Host);
        }
        return Ok(());
    }
    // reg-name / IPv4: unreserved and percent-escapes; sub-delims other than ';' are legal in
    // RFC 3986 but ';' would be ambiguous with the transport separator.
    if b.iter()
        .all(|&c| is_unreserved(c) || c == b'%' || (is_sub_delim(c) && c != b';'))
    {
        Ok(())
    } else {
        Err(UriError::Host)
    }
}

/// `s` without `prefix` (compared ASCII case-insensitively), or `None`. The split goes
/// through `get`, so untrusted input whose `prefix.len()`-th byte falls inside a multi-byte
/// character (`msrp:/מН;tcp`) is simply not a match instead of a panic.
fn strip_prefix_ignore_ascii_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

impl FromStr for MsrpUri {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Self, UriError> {
        let (scheme, rest) = if let Some(rest) = strip_prefix_ignore_ascii_case(s, "msrp://") {
            (Scheme::Msrp, rest)
        } else if let Some(rest) = strip_prefix_ignore_ascii_case(s, "msrps://") {
            (Scheme::Msrps, rest)
        } else {
            return Err(UriError::Scheme);
        };
        let auth_end = rest
            .bytes()
            .position(|c| c == b'/' || c == b';')
            .ok_or(UriError::Transport)?;
        let (authority, mut tail) = rest.split_at_checked(auth_end).ok_or(UriError::Transport)?;

        // Delimiters are found by byte (`memrchr`): they are ASCII, so every split falls
        // on a character boundary, and a char searcher costs several times as much.
        let (user, hostport) = match memchr::memrchr(b'@', authority.as_bytes()) {
            Some(at) => (
                authority.get(..at),
                authority.get(at + 1..).ok_or(UriError::Host)?,
            ),
            None => (None, authority),
        };
        if let Some(u) = user
            && !u
                .bytes()
                .all(|c| is_unreserved(c) || c == b'%' || c == b':' || is_sub_delim(c))
        {
            return Err(UriError::User);
        }
        // The port colon is the last ':' after any IPv6 closing bracket.
        let hb = hostport.as_bytes();
        let port_sep = match memchr::memrchr(b']', hb) {
            Some(close) => hb
                .get(close..)
                .and_then(|after| memchr::memchr(b':', after))
                .map(|i| close + i),
            None => memchr::memrchr(b':', hb),
        };
        let (host, port) = match port_sep.and_then(|i| hostport.split_at_checked(i)) {
            Some((host, colon_port)) => {
                let p = colon_port.strip_prefix(':').ok_or(UriError::Port)?;
                if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
                    return Err(UriError::Port);
                }
                (host, Some(p.parse::<u16>().map_err(|_| UriError::Port)?))
            }
            None => (hostport, None),
        };
        parse_host(host)?;

        let session_id = if let Some(r) = tail.strip_prefix('/') {
            let end = r
                .bytes()
                .position(|c| c == b';')
                .ok_or(UriError::Transport)?;
            let (sid, rest) = r.split_at_checked(end).ok_or(UriError::Transport)?;
            if sid.is_empty() || !sid.bytes().all(is_session_id_char) {
                return Err(UriError::SessionId);
            }
            tail = rest;
            Some(sid.to_owned())
        } else {
            None
        };
        let tail = tail.strip_prefix(';').ok_or(UriError::Transport)?;
        let mut parts = tail.split(';');
        let transport = parts.next().unwrap_or("");
        if transport.is_empty() || !transport.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Err(UriError::Transport);
        }
        let mut params = Vec::new();
        for p in parts {
            let (name, value) = match p.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (p, None),
            };
            let ok = |t: &str| !t.is_empty() && t.bytes().all(is_token_char);
            if !ok(name) || value.is_some_and(|v| !ok(v)) {
                return Err(UriError::Param);
            }
            params.push((name.to_owned(), value.map(str::to_owned)));
        }
        Ok(MsrpUri {
            scheme,
            user: user.map(str::to_owned),
            host: host.to_owned(),
            port,
            session_id,
            transport: transport.to_owned(),
            params,
        })
    }
}

impl MsrpUri {
    /// Hands the URI's text to `put` piece by piece, as [`Display`](fmt::Display) writes it.
    fn pieces<E>(&self, mut put: impl FnMut(&str) -> Result<(), E>) -> Result<(), E> {
        put(self.scheme.as_str())?;
        put("://")?;
        if let Some(u) = &self.user {
            put(u)?;
            put("@")?;
        }
        put(&self.host)?;
        if let Some(p) = self.port {
            put(":")?;
            let mut buf = [0u8; 20];
            put(decimal(&mut buf, u64::from(p)))?;
        }
        if let Some(s) = &self.session_id {
            put("/")?;
            put(s)?;
        }
        put(";")?;
        put(&self.transport)?;
        for (n, v) in &self.params {
            put(";")?;
            put(n)?;
            if let Some(v) = v {
                put("=")?;
                put(v)?;
            }
        }
        Ok(())
    }

    /// Appends the URI's text (what [`Display`](fmt::Display) writes) to `out`: the
    /// encoder writes every path this way, with no `String` per URI.
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        let _ = self.pieces(|s| {
            out.extend_from_slice(s.as_bytes());
            Ok::<(), std::convert::Infallible>(())
        });
    }
}

impl fmt::Display for MsrpUri {
    // Written piece by piece: a URI is written for every MSRP frame sent and every side
    // registered, and the formatting machinery costs several times the copying.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.pieces(|s| f.write_str(s))
    }
}

/// `ip` as its `Display` writes it, without the formatting machinery (a few per session).
fn ipv4_text(ip: std::net::Ipv4Addr) -> String {
    let mut s = String::with_capacity(15);
    let mut num = [0u8; 20];
    for (i, o) in ip.octets().iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        s.push_str(decimal(&mut num, u64::from(*o)));
    }
    s
}

/// A new random session id for an MSRP URI from caller-supplied random bytes: 96 bits, more
/// than the 80 RFC 4975 §14.1 asks for, written as 24 lower-case hex digits.
pub fn session_id_from_random(random: &[u8; 12]) -> String {
    hex(random)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // A nibble is below 16, the length of DIGITS.
        #[allow(clippy::indexing_slicing)]
        {
            s.push(DIGITS[usize::from(b >> 4)] as char);
            s.push(DIGITS[usize::from(b & 15)] as char);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `for_listener` gives what parsing the written URI gives, for IPv4, IPv6 (with and
    /// without a zone), both schemes and session ids the grammar allows or refuses.
    #[test]
    fn for_listener_equals_parsing_the_text() {
        let addrs: [std::net::SocketAddr; 5] = [
            "192.0.2.1:2855".parse().unwrap(),
            "0.0.0.0:0".parse().unwrap(),
            "255.255.255.255:65535".parse().unwrap(),
            "[2001:db8::1]:9".parse().unwrap(),
            "[fe80::1%2]:7".parse().unwrap(),
        ];
        for addr in addrs {
            for scheme in [Scheme::Msrp, Scheme::Msrps] {
                for sid in ["s3ss10n", "a+b=c/d~_.-", "", "a;b", "x y", "é"] {
                    let text = format!("{}://{addr}/{sid};tcp", scheme.as_str());
                    let built = MsrpUri::for_listener(scheme, addr, sid);
                    assert_eq!(built, text.parse().ok(), "{text}");
                    if let Some(u) = built {
                        assert_eq!(u.to_string(), text);
                    }
                }
            }
        }
    }

    fn uri(s: &str) -> MsrpUri {
        s.parse().unwrap()
    }

    #[test]
    fn parses_full_uri_and_prints_it_back() {
        for s in [
            "msrp://alice@atlanta.example.com:7654/jshA7weztas;tcp",
            "msrps://bob.example.com/9di4ea;tcp",
            "msrp://[2001:db8::1]:2855/s1d;tcp;foo=bar;baz",
            "msrp://192.0.2.1:12763/kjhd37s2s20w2a;tcp",
            "msrp://relay.example.net:2855;tcp",
            "msrp://h/a+b=c/d;tcp",
        ] {
            assert_eq!(uri(s).to_string(), s);
        }
        let u = uri("msrp://alice@atlanta.example.com:7654/jshA7weztas;tcp");
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.host, "atlanta.example.com");
        assert_eq!(u.port, Some(7654));
        assert_eq!(u.session_id.as_deref(), Some("jshA7weztas"));
        let v6 = uri("msrp://[::1]/x;tcp");
        assert_eq!(v6.host, "[::1]");
        assert_eq!(v6.port, None);
        assert_eq!(v6.effective_port(), 2855);
    }

    #[test]
    fn rejects_malformed_uris() {
        for (s, e) in [
            ("sip://a/b;tcp", UriError::Scheme),
            ("msrp://a/b", UriError::Transport),
            ("msrp://a:99999/b;tcp", UriError::Port),
            ("msrp://a:/b;tcp", UriError::Port),
            ("msrp:///b;tcp", UriError::Host),
            ("msrp://a b/c;tcp", UriError::Host),
            ("msrp://a/;tcp", UriError::SessionId),
            ("msrp://a/b c;tcp", UriError::SessionId),
            ("msrp://a/b;", UriError::Transport),
            ("msrp://a/b;t-p", UriError::Transport),
            ("msrp://a/b;tcp;=x", UriError::Param),
            ("msrp://[::1/b;tcp", UriError::Host),
            ("msrp://us er@a/b;tcp", UriError::User),
        ] {
            assert_eq!(s.parse::<MsrpUri>(), Err(e), "{s}");
        }
    }

    /// Issue 14: `s[..7]` on `msrp:/מН;tcp` cut the two-byte `מ` in half and panicked, which
    /// killed the server from one SDP offer or one MSRP frame. Every prefix length that lands
    /// inside a multi-byte character must give an error.
    #[test]
    fn multibyte_character_at_scheme_boundary_is_an_error_not_a_panic() {
        for s in [
            "msrp:/מН;tcp",
            "msrp:/\u{05de}",
            "msrps:/מН;tcp",
            "msrp:/€/x;tcp",
            "msrps:/€x;tcp",
            "ms\u{1F600}rp://a/b;tcp",
            "מ",
            "msrp://מ/x;tcp",
            "msrp://a/מ;tcp",
            "msrp://a/b;מ",
            "msrp://a:מ/b;tcp",
            "msrp://מ@a/b;tcp",
            "msrp://[מ]/b;tcp",
            "msrp://a/b;tcp;מ=x",
        ] {
            assert!(s.parse::<MsrpUri>().is_err(), "{s}");
        }
        assert_eq!("msrp:/מН;tcp".parse::<MsrpUri>(), Err(UriError::Scheme));
    }

    #[test]
    fn comparison_follows_rfc4975_6_1() {
        let a = uri("msrp://alice@Atlanta.Example.COM:2855/abcDEF;TCP");
        assert!(a.matches(&uri("msrp://atlanta.example.com/abcDEF;tcp")));
        assert!(a.matches(&uri("MSRP://bob@atlanta.example.com:2855/abcDEF;tcp;x=y")));
        assert!(!a.matches(&uri("msrp://atlanta.example.com/abcdef;tcp")));
        assert!(!a.matches(&uri("msrps://atlanta.example.com/abcDEF;tcp")));
        assert!(!a.matches(&uri("msrp://atlanta.example.com:2856/abcDEF;tcp")));
        assert!(!a.matches(&uri("msrp://atlanta.example.org/abcDEF;tcp")));
        assert_eq!(
            a.comparison_key(),
            uri("msrp://atlanta.example.com/abcDEF;tcp").comparison_key()
        );
    }

    /// RFC 4975 §6: `msrps:` is the TLS scheme; same syntax, default port 2855, and it never
    /// matches the `msrp:` URI with the same other parts (§6.1).
    #[test]
    fn msrps_uris() {
        let u = uri("msrps://127.0.0.1:2856/s3ss;tcp");
        assert_eq!(u.scheme, Scheme::Msrps);
        assert_eq!(u.scheme.as_str(), "msrps");
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", Some(2856)));
        assert_eq!(u.to_string(), "msrps://127.0.0.1:2856/s3ss;tcp");
        let upper = uri("MSRPS://[2001:db8::1]/s3ss;TCP");
        assert_eq!(upper.scheme, Scheme::Msrps);
        assert_eq!(upper.effective_port(), DEFAULT_PORT);
        assert!(upper.matches(&uri("msrps://[2001:db8::1]:2855/s3ss;tcp")));
        assert!(!upper.matches(&uri("msrp://[2001:db8::1]:2855/s3ss;tcp")));
        assert_ne!(
            uri("msrps://h/x;tcp").comparison_key(),
            uri("msrp://h/x;tcp").comparison_key()
        );
        for bad in [
            "msrps:/h/x;tcp",
            "msrps//h/x;tcp",
            "msrps://h/x",
            "msrpss://h/x;tcp",
        ] {
            assert!(bad.parse::<MsrpUri>().is_err(), "{bad}");
        }
    }

    #[test]
    fn session_ids_have_enough_randomness() {
        let s = session_id_from_random(&[0xab; 12]);
        assert_eq!(s.len(), 24);
        assert_eq!(&s[..4], "abab");
        let u = uri(&format!("msrp://h/{s};tcp"));
        assert_eq!(u.session_id.as_deref(), Some(s.as_str()));
    }
}

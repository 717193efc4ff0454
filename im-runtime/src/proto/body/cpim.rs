//! `message/cpim` (RFC 3862) with the IMDN header fields (RFC 5438 §6): a bounded, zero-copy
//! reader and a writer.
//!
//! A CPIM message is three blocks:
//!
//! ```text
//! From: Alice <im:alice@example.com>          message headers, some in a namespace
//! NS: imdn <urn:ietf:params:imdn>             declared by NS (RFC 3862 §3.3.4)
//! imdn.Message-ID: 34jk324j
//! imdn.Disposition-Notification: positive-delivery, negative-delivery
//!                                             empty line
//! Content-Type: text/plain                    MIME headers of the content
//!                                             empty line
//! Hello                                       the content
//! ```
//!
//! Reading is lenient where senders differ and strict where a guess would be wrong:
//! * lines end in CRLF (RFC 3862 §3.1); a bare LF is accepted too, as several clients send it;
//! * header names are matched without regard to case. RFC 3862 §3.1 calls them
//!   case-sensitive, but no registered name differs from another only in case, and clients
//!   in the wild write `imdn.Message-Id` as often as `imdn.Message-ID`;
//! * a namespaced header is found through the prefix its `NS` header declares, whatever that
//!   prefix is (`imdn.` by convention, not by rule);
//! * a header line without `:` or a message with no empty line after its headers is an
//!   error, not a guess, and every dimension (header count, line length) is bounded.

use std::fmt::Write as _;

/// The CPIM namespace URN of the IMDN header fields (RFC 5438 §6.1).
pub const NS_IMDN_HEADERS: &str = "urn:ietf:params:imdn";

/// Bounds applied while reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most header lines in the message-header block plus the content-header block.
    pub max_headers: usize,
    /// Longest header line, in octets.
    pub max_line: usize,
}

impl Default for Limits {
    /// 64 headers and 4 KiB lines: an IMDN request needs about 8 headers; URIs with display
    /// names stay far below 4 KiB.
    fn default() -> Self {
        Limits {
            max_headers: 64,
            max_line: 4096,
        }
    }
}

/// Why a CPIM message could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CpimError {
    /// A header line is not UTF-8 (RFC 3862 §3.1: the headers are UTF-8).
    #[error("CPIM header line {line} is not UTF-8")]
    NotUtf8 {
        /// 1-based line number.
        line: usize,
    },
    /// A header line has no `:`.
    #[error("CPIM header line {line} has no ':'")]
    NoColon {
        /// 1-based line number.
        line: usize,
    },
    /// A header name is empty or holds a character outside the token set (RFC 3862 §3.1).
    #[error("CPIM header line {line} has no valid header name")]
    BadName {
        /// 1-based line number.
        line: usize,
    },
    /// The message ends before the empty line that closes a header block.
    #[error("CPIM message ends inside its {0} headers")]
    Truncated(&'static str),
    /// More header lines than [`Limits::max_headers`].
    #[error("CPIM message has more than {0} header lines")]
    TooManyHeaders(usize),
    /// A header line longer than [`Limits::max_line`].
    #[error("CPIM header line {line} is longer than {max} octets")]
    LineTooLong {
        /// 1-based line number.
        line: usize,
        /// The limit.
        max: usize,
    },
}

/// One header of the message-header block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpimHeader<'a> {
    /// The namespace prefix (`imdn` of `imdn.Message-ID`), `None` for a core header.
    pub prefix: Option<&'a str>,
    /// The name after the prefix.
    pub name: &'a str,
    /// The value, without surrounding whitespace.
    pub value: &'a str,
}

/// A parsed `message/cpim` body, borrowing from the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cpim<'a> {
    /// The message headers, in order.
    pub headers: Vec<CpimHeader<'a>>,
    /// The MIME headers of the content (`Content-Type` …), in order.
    pub content_headers: Vec<(&'a str, &'a str)>,
    /// The content octets.
    pub content: &'a [u8],
}

/// The notifications a sender asks for in `imdn.Disposition-Notification` (RFC 5438 §6.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dispositions {
    /// `positive-delivery`: tell me when it was delivered.
    pub positive_delivery: bool,
    /// `negative-delivery`: tell me when it could not be.
    pub negative_delivery: bool,
    /// `processing`: tell me what an intermediary did with it.
    pub processing: bool,
    /// `display`: tell me when it was shown to the user.
    pub display: bool,
}

impl Dispositions {
    /// Reads a comma-separated list; unknown tokens are ignored (RFC 5438 §6.2 lets the
    /// list grow).
    pub fn parse(value: &str) -> Dispositions {
        let mut d = Dispositions::default();
        for token in value.split(',').map(str::trim) {
            if token.eq_ignore_ascii_case("positive-delivery") {
                d.positive_delivery = true;
            } else if token.eq_ignore_ascii_case("negative-delivery") {
                d.negative_delivery = true;
            } else if token.eq_ignore_ascii_case("processing") {
                d.processing = true;
            } else if token.eq_ignore_ascii_case("display") {
                d.display = true;
            }
        }
        d
    }

    /// Whether any delivery notification is asked for.
    pub fn any_delivery(self) -> bool {
        self.positive_delivery || self.negative_delivery
    }
}

impl<'a> Cpim<'a> {
    /// Reads `data` within `limits`.
    pub fn parse(data: &'a [u8], limits: Limits) -> Result<Cpim<'a>, CpimError> {
        let mut lines = Lines {
            rest: data,
            line: 0,
            count: 0,
            limits,
        };
        let mut headers = Vec::new();
        while let Some((name, value)) = lines.header("message")? {
            let (prefix, name) = match name.split_once('.') {
                Some((p, n)) if !p.is_empty() && !n.is_empty() => (Some(p), n),
                _ => (None, name),
            };
            headers.push(CpimHeader {
                prefix,
                name,
                value,
            });
        }
        let mut content_headers = Vec::new();
        while let Some(h) = lines.header("content")? {
            content_headers.push(h);
        }
        Ok(Cpim {
            headers,
            content_headers,
            content: lines.rest,
        })
    }

    /// The first core (unprefixed) header `name` (`From`, `To`, `DateTime` …).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|h| h.prefix.is_none() && h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// Every core header `name` (`To` and `cc` may repeat).
    pub fn headers_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.headers
            .iter()
            .filter(move |h| h.prefix.is_none() && h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// The prefix the message's `NS` headers declare for `urn` (RFC 3862 §3.3.4:
    /// `NS: prefix <urn>`).
    pub fn prefix_of(&self, urn: &str) -> Option<&'a str> {
        self.headers_named("NS").find_map(|v| {
            let (prefix, uri) = v.split_once('<')?;
            let uri = uri.strip_suffix('>')?.trim();
            uri.eq_ignore_ascii_case(urn).then(|| prefix.trim())
        })
    }

    /// The header `name` in namespace `urn`, whatever prefix the message declared for it.
    pub fn ns_header(&self, urn: &str, name: &str) -> Option<&'a str> {
        let prefix = self.prefix_of(urn)?;
        self.headers
            .iter()
            .find(|h| {
                h.prefix.is_some_and(|p| p.eq_ignore_ascii_case(prefix))
                    && h.name.eq_ignore_ascii_case(name)
            })
            .map(|h| h.value)
    }

    /// `imdn.Message-ID` (RFC 5438 §6.3).
    pub fn imdn_message_id(&self) -> Option<&'a str> {
        self.ns_header(NS_IMDN_HEADERS, "Message-ID")
    }

    /// `imdn.Disposition-Notification` (RFC 5438 §6.2); none asked when absent.
    pub fn dispositions(&self) -> Dispositions {
        self.ns_header(NS_IMDN_HEADERS, "Disposition-Notification")
            .map(Dispositions::parse)
            .unwrap_or_default()
    }

    /// The content's `Content-Type`, when given.
    pub fn content_type(&self) -> Option<&'a str> {
        self.content_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Content-Type"))
            .map(|(_, v)| *v)
    }
}

struct Lines<'a> {
    rest: &'a [u8],
    line: usize,
    count: usize,
    limits: Limits,
}

impl<'a> Lines<'a> {
    /// The next header of the current block, `None` at the empty line that ends it.
    fn header(&mut self, block: &'static str) -> Result<Option<(&'a str, &'a str)>, CpimError> {
        let Some(end) = self.rest.iter().position(|&b| b == b'\n') else {
            return Err(CpimError::Truncated(block));
        };
        self.line += 1;
        let (raw, rest) = self.rest.split_at(end);
        self.rest = rest.get(1..).unwrap_or_default();
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.is_empty() {
            return Ok(None);
        }
        if raw.len() > self.limits.max_line {
            return Err(CpimError::LineTooLong {
                line: self.line,
                max: self.limits.max_line,
            });
        }
        self.count += 1;
        if self.count > self.limits.max_headers {
            return Err(CpimError::TooManyHeaders(self.limits.max_headers));
        }
        let text = std::str::from_utf8(raw).map_err(|_| CpimError::NotUtf8 { line: self.line })?;
        let (name, value) = text
            .split_once(':')
            .ok_or(CpimError::NoColon { line: self.line })?;
        let name = name.trim();
        let token = |c: char| c.is_ascii_alphanumeric() || "-_.!%*+`'~".contains(c);
        if name.is_empty() || !name.chars().all(token) {
            return Err(CpimError::BadName { line: self.line });
        }
        Ok(Some((name, value.trim())))
    }
}

/// Writes a CPIM message: `headers` (name, value; a namespaced name carries its prefix, and
/// its `NS` header must be among `headers`), the content headers and the content. CRLF line
/// ends; values are written as given, so callers must not pass CR or LF in them.
pub fn write(
    headers: &[(&str, &str)],
    content_headers: &[(&str, &str)],
    content: &[u8],
) -> Vec<u8> {
    let mut head = String::with_capacity(256);
    for (n, v) in headers {
        let _ = write!(head, "{n}: {v}\r\n");
    }
    head.push_str("\r\n");
    for (n, v) in content_headers {
        let _ = write!(head, "{n}: {v}\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5438 §7.1.1.1's example request, with the prefix renamed to show that it is the
    /// `NS` declaration, not the conventional `imdn.`, that names the namespace.
    const REQUEST: &[u8] = b"From: Alice <im:alice@example.com>\r\n\
To: Bob <im:bob@example.com>\r\n\
NS: x <urn:ietf:params:imdn>\r\n\
x.Message-ID: 34jk324j\r\n\
DateTime: 2006-04-04T12:16:49-05:00\r\n\
x.Disposition-Notification: positive-delivery, negative-delivery\r\n\
\r\n\
Content-type: text/plain\r\n\
Content-length: 12\r\n\
\r\n\
Hello World\n";

    #[test]
    fn reads_the_imdn_request_through_its_ns_declaration() {
        let m = Cpim::parse(REQUEST, Limits::default()).unwrap();
        assert_eq!(m.header("from"), Some("Alice <im:alice@example.com>"));
        assert_eq!(m.header("DateTime"), Some("2006-04-04T12:16:49-05:00"));
        assert_eq!(m.imdn_message_id(), Some("34jk324j"));
        let d = m.dispositions();
        assert!(d.positive_delivery && d.negative_delivery && !d.display && !d.processing);
        assert_eq!(m.content_type(), Some("text/plain"));
        assert_eq!(m.content, b"Hello World\n");
    }

    #[test]
    fn an_undeclared_prefix_is_not_the_imdn_namespace() {
        let text = b"imdn.Message-ID: 1\r\n\r\nContent-Type: text/plain\r\n\r\nx";
        let m = Cpim::parse(text, Limits::default()).unwrap();
        assert_eq!(m.imdn_message_id(), None);
        assert_eq!(m.dispositions(), Dispositions::default());
    }

    #[test]
    fn bare_lf_line_ends_are_read() {
        let text = b"From: <im:a@x>\nNS: imdn <urn:ietf:params:imdn>\nimdn.Message-ID: q\n\nContent-Type: text/plain\n\nhi";
        let m = Cpim::parse(text, Limits::default()).unwrap();
        assert_eq!(m.imdn_message_id(), Some("q"));
        assert_eq!(m.content, b"hi");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let l = Limits::default();
        assert_eq!(
            Cpim::parse(b"From <im:a@x>\r\n\r\n\r\n", l),
            Err(CpimError::BadName { line: 1 })
        );
        assert_eq!(
            Cpim::parse(b"From\r\n\r\n\r\n", l),
            Err(CpimError::NoColon { line: 1 })
        );
        assert_eq!(
            Cpim::parse(b"From: <im:a@x>\r\n", l),
            Err(CpimError::Truncated("message"))
        );
        assert_eq!(
            Cpim::parse(b"From: <im:a@x>\r\n\r\nContent-Type: text/plain\r\n", l),
            Err(CpimError::Truncated("content"))
        );
        assert_eq!(
            Cpim::parse(b"From: \xff\r\n\r\n\r\n", l),
            Err(CpimError::NotUtf8 { line: 1 })
        );
        let many = "A: b\r\n".repeat(3) + "\r\n\r\n";
        assert_eq!(
            Cpim::parse(
                many.as_bytes(),
                Limits {
                    max_headers: 2,
                    ..l
                }
            ),
            Err(CpimError::TooManyHeaders(2))
        );
        let long = format!("A: {}\r\n\r\n\r\n", "b".repeat(50));
        assert_eq!(
            Cpim::parse(long.as_bytes(), Limits { max_line: 20, ..l }),
            Err(CpimError::LineTooLong { line: 1, max: 20 })
        );
    }

    #[test]
    fn written_messages_read_back() {
        let out = write(
            &[
                ("From", "<sip:bob@example.com>"),
                ("To", "<sip:alice@example.com>"),
                ("NS", "imdn <urn:ietf:params:imdn>"),
                ("imdn.Message-ID", "n1"),
            ],
            &[
                ("Content-Type", "message/imdn+xml"),
                ("Content-Disposition", "notification"),
            ],
            b"<imdn/>",
        );
        let m = Cpim::parse(&out, Limits::default()).unwrap();
        assert_eq!(m.imdn_message_id(), Some("n1"));
        assert_eq!(m.content_type(), Some("message/imdn+xml"));
        assert_eq!(m.content, b"<imdn/>");
        assert_eq!(
            m.headers_named("to").collect::<Vec<_>>(),
            ["<sip:alice@example.com>"]
        );
    }
}

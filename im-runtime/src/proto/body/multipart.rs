//! `multipart/mixed` bodies (RFC 2046 §5.1): a zero-copy splitter and a writer.
//!
//! Splitting rules (RFC 2046 §5.1.1):
//! * a delimiter is `--boundary` either at the very start of the body or right after CRLF;
//!   that CRLF belongs to the delimiter, not to the preceding part;
//! * after `--boundary` come optional spaces/tabs (transport padding) and CRLF, or `--`
//!   for the close delimiter. A line that starts with `--boundary` but continues otherwise
//!   (`--boundaryX`) is not a delimiter and stays part content;
//! * text before the first delimiter is the preamble (without the CRLF that belongs to the
//!   delimiter); text after the CRLF that follows the close delimiter is the epilogue;
//! * each part is `headers CRLF CRLF content`, or only headers, or `CRLF content` without
//!   headers. Header lines may be folded (a line starting with a space or tab continues the
//!   previous one).
//!
//! Line ends must be CRLF, as SIP requires (RFC 3261 §7); bare LF is not taken as a line end.
//! A body without a close delimiter is an error rather than a guess: a truncated body should
//! be rejected, not half-used.
//!
//! Part contents are `Bytes::slice`s of the input: no copy. Header values are unfolded into
//! `String`s (they are short, and folding has to be undone anyway).

use bytes::{BufMut, Bytes, BytesMut};
use memchr::memmem;

use super::mime::{Disposition, MediaType, MimeError};
use crate::machine::BodyPart;

/// Limits applied while splitting; exceeding one is a typed [`MultipartError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most parts accepted.
    pub max_parts: usize,
    /// Largest header block of one part, in octets.
    pub max_part_header_bytes: usize,
}

impl Default for Limits {
    /// 16 parts and 4 KiB of headers per part: a SIP request carries two or three parts
    /// with a few short headers each.
    fn default() -> Self {
        Limits {
            max_parts: 16,
            max_part_header_bytes: 4096,
        }
    }
}

/// Why a multipart body did not split.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MultipartError {
    /// The boundary parameter is not 1–70 RFC 2046 `bchars` (or ends in a space).
    #[error("invalid boundary")]
    InvalidBoundary,
    /// No delimiter line was found.
    #[error("no delimiter line for the boundary")]
    NoDelimiter,
    /// The body ends without the close delimiter `--boundary--`.
    #[error("missing close delimiter")]
    MissingCloseDelimiter,
    /// A `multipart/*` Content-Type without a `boundary` parameter.
    #[error("multipart content type without boundary")]
    MissingBoundary,
    /// More parts than [`Limits::max_parts`].
    #[error("more than {limit} body parts")]
    TooManyParts {
        /// The limit.
        limit: usize,
    },
    /// A part's header block is larger than [`Limits::max_part_header_bytes`].
    #[error("headers of part {part} exceed {limit} octets")]
    PartHeadersTooLarge {
        /// Index of the part (0-based).
        part: usize,
        /// The limit.
        limit: usize,
    },
    /// A header line of a part has no colon, is not UTF-8, or starts with a continuation.
    #[error("malformed header line in part {part}")]
    MalformedHeader {
        /// Index of the part (0-based).
        part: usize,
    },
    /// The Content-Type or Content-Disposition of a part does not parse.
    #[error("bad {header} in part {part}: {source}")]
    BadHeaderValue {
        /// Index of the part (0-based).
        part: usize,
        /// `content-type` or `content-disposition`.
        header: &'static str,
        /// The parse error.
        source: MimeError,
    },
}

/// One header of a body part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartHeader {
    /// Name as received (compare with `eq_ignore_ascii_case`).
    pub name: String,
    /// Value with surrounding whitespace trimmed and folding undone.
    pub value: String,
}

/// One body part: its headers and its content (a slice of the whole body).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// Every header in order, the ones parsed below included.
    pub headers: Vec<PartHeader>,
    /// Parsed `Content-Type`, when present.
    pub content_type: Option<MediaType>,
    /// Parsed `Content-Disposition`, when present.
    pub disposition: Option<Disposition>,
    /// `Content-ID` without its angle brackets, when present (RFC 2392; `cid:` URLs of
    /// RFC 5363 refer to it).
    pub content_id: Option<String>,
    /// The content: everything after the blank line up to the CRLF of the next delimiter.
    pub body: Bytes,
}

impl Part {
    /// The first header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// `type/subtype` in lower case; `text/plain` when the part has no Content-Type
    /// (the RFC 2046 §5.1 default).
    pub fn essence(&self) -> String {
        self.content_type
            .as_ref()
            .map_or_else(|| "text/plain".to_owned(), MediaType::essence)
    }

    /// The contract's view of the part.
    pub fn to_body_part(&self) -> BodyPart {
        BodyPart {
            content_type: self.essence(),
            disposition: self
                .disposition
                .as_ref()
                .map(|d| d.kind.clone())
                .unwrap_or_default(),
            len: self.body.len(),
        }
    }
}

/// A split `multipart/mixed` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Multipart {
    /// Text before the first delimiter (usually empty).
    pub preamble: Bytes,
    /// The parts in order.
    pub parts: Vec<Part>,
    /// Text after the close delimiter line (usually empty).
    pub epilogue: Bytes,
}

/// Whether `b` is a valid RFC 2046 boundary: 1–70 `bchars`, not ending in a space.
pub fn is_valid_boundary(b: &str) -> bool {
    let bytes = b.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 70
        && !b.ends_with(' ')
        && bytes.iter().all(|&c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    b'\''
                        | b'('
                        | b')'
                        | b'+'
                        | b'_'
                        | b','
                        | b'-'
                        | b'.'
                        | b'/'
                        | b':'
                        | b'='
                        | b'?'
                        | b' '
                )
        })
}

/// The parts of a message body, as [`crate::machine::Facts::parts`] lists them: each part
/// of a `multipart/mixed` (or other `multipart/*`) body, else the whole body as one part
/// carrying the message's own Content-Type and Content-Disposition.
pub fn parts_of(
    content_type: Option<&MediaType>,
    disposition: Option<&Disposition>,
    body: &Bytes,
    limits: &Limits,
) -> Result<Vec<Part>, MultipartError> {
    match content_type {
        Some(ct) if ct.ty == "multipart" => {
            let boundary = ct
                .param("boundary")
                .ok_or(MultipartError::MissingBoundary)?;
            Ok(parse(body, boundary, limits)?.parts)
        }
        _ => Ok(vec![Part {
            headers: Vec::new(),
            content_type: content_type.cloned(),
            disposition: disposition.cloned(),
            content_id: None,
            body: body.clone(),
        }]),
    }
}

/// Splits `body` with the `boundary` parameter of its Content-Type.
pub fn parse(body: &Bytes, boundary: &str, limits: &Limits) -> Result<Multipart, MultipartError> {
    if !is_valid_boundary(boundary) {
        return Err(MultipartError::InvalidBoundary);
    }
    let dash = {
        let mut d = Vec::with_capacity(boundary.len() + 2);
        d.extend_from_slice(b"--");
        d.extend_from_slice(boundary.as_bytes());
        d
    };
    let delim = {
        let mut d = Vec::with_capacity(dash.len() + 2);
        d.extend_from_slice(b"\r\n");
        d.extend_from_slice(&dash);
        d
    };
    let finder = memmem::Finder::new(&delim);
    let buf: &[u8] = body;

    // Candidates: (start of the delimiter including its CRLF, index just after `--boundary`).
    let next_delim = |from: usize| -> Option<(usize, usize)> {
        let mut search = from;
        loop {
            let at = search + finder.find(buf.get(search..)?)?;
            let after = at + delim.len();
            if delimiter_tail(buf.get(after..).unwrap_or_default()).is_some() {
                return Some((at, after));
            }
            search = at + 2;
        }
    };

    let (preamble_end, mut after) = if buf.starts_with(&dash)
        && delimiter_tail(buf.get(dash.len()..).unwrap_or_default()).is_some()
    {
        (0, dash.len())
    } else {
        next_delim(0).ok_or(MultipartError::NoDelimiter)?
    };
    let preamble = body.slice(..preamble_end);
    let mut parts = Vec::new();
    loop {
        // `after` is just past `--boundary`; delimiter_tail says how the line ends.
        match delimiter_tail(buf.get(after..).unwrap_or_default()) {
            Some(Tail::Close(len)) => {
                let epilogue = body.slice((after + len).min(buf.len())..);
                return Ok(Multipart {
                    preamble,
                    parts,
                    epilogue,
                });
            }
            Some(Tail::Open(len)) => {
                let start = after + len;
                let (end, next_after) =
                    next_delim(start).ok_or(MultipartError::MissingCloseDelimiter)?;
                if parts.len() == limits.max_parts {
                    return Err(MultipartError::TooManyParts {
                        limit: limits.max_parts,
                    });
                }
                parts.push(parse_part(body, start, end, parts.len(), limits)?);
                after = next_after;
            }
            None => return Err(MultipartError::MissingCloseDelimiter),
        }
    }
}

enum Tail {
    /// `--` then optional `padding CRLF`: the length consumed.
    Close(usize),
    /// `padding CRLF`: the length consumed.
    Open(usize),
}

/// What follows `--boundary` on a delimiter line, or `None` when the line is not one.
fn delimiter_tail(rest: &[u8]) -> Option<Tail> {
    if let Some(after_dashes) = rest.strip_prefix(b"--") {
        let pad = after_dashes
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        let tail = after_dashes.get(pad..).unwrap_or_default();
        // The close delimiter may end the body, or be followed by CRLF and an epilogue.
        if tail.is_empty() {
            return Some(Tail::Close(2 + pad));
        }
        if tail.starts_with(b"\r\n") {
            return Some(Tail::Close(2 + pad + 2));
        }
        // Anything else after the close delimiter is epilogue without a line break; RFC 2046
        // wants CRLF there but the close delimiter itself is unambiguous.
        return Some(Tail::Close(2));
    }
    let pad = rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    if rest.get(pad..).is_some_and(|r| r.starts_with(b"\r\n")) {
        Some(Tail::Open(pad + 2))
    } else {
        None
    }
}

fn parse_part(
    body: &Bytes,
    start: usize,
    end: usize,
    index: usize,
    limits: &Limits,
) -> Result<Part, MultipartError> {
    let raw = body.get(start..end).unwrap_or_default();
    let (head, content_start) = if raw.starts_with(b"\r\n") {
        (&b""[..], 2)
    } else {
        match memmem::find(raw, b"\r\n\r\n") {
            Some(i) => (raw.get(..i).unwrap_or_default(), i + 4),
            // Only headers, no content (RFC 2046: `MIME-part-headers [CRLF *OCTET]`).
            None => (raw, raw.len()),
        }
    };
    if head.len() > limits.max_part_header_bytes {
        return Err(MultipartError::PartHeadersTooLarge {
            part: index,
            limit: limits.max_part_header_bytes,
        });
    }
    let headers = parse_headers(head).ok_or(MultipartError::MalformedHeader { part: index })?;
    let mut content_type = None;
    let mut disposition = None;
    let mut content_id = None;
    for h in &headers {
        let name = h.name.as_str();
        // `c` is SIP's compact Content-Type; harmless to accept inside a part.
        if name.eq_ignore_ascii_case("content-type") || name.eq_ignore_ascii_case("c") {
            if content_type.is_none() {
                content_type = Some(MediaType::parse(&h.value).map_err(|source| {
                    MultipartError::BadHeaderValue {
                        part: index,
                        header: "content-type",
                        source,
                    }
                })?);
            }
        } else if name.eq_ignore_ascii_case("content-disposition") {
            if disposition.is_none() {
                disposition = Some(Disposition::parse(&h.value).map_err(|source| {
                    MultipartError::BadHeaderValue {
                        part: index,
                        header: "content-disposition",
                        source,
                    }
                })?);
            }
        } else if name.eq_ignore_ascii_case("content-id") && content_id.is_none() {
            let v = h.value.trim();
            let v = v
                .strip_prefix('<')
                .and_then(|v| v.strip_suffix('>'))
                .unwrap_or(v);
            content_id = Some(v.to_owned());
        }
    }
    Ok(Part {
        headers,
        content_type,
        disposition,
        content_id,
        body: body.slice(start + content_start..end),
    })
}

fn parse_headers(head: &[u8]) -> Option<Vec<PartHeader>> {
    let text = std::str::from_utf8(head).ok()?;
    let mut out: Vec<PartHeader> = Vec::new();
    if text.is_empty() {
        return Some(out);
    }
    for line in text.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            let last = out.last_mut()?;
            let cont = line.trim();
            if !cont.is_empty() {
                if !last.value.is_empty() {
                    last.value.push(' ');
                }
                last.value.push_str(cont);
            }
            continue;
        }
        let (name, value) = line.split_once(':')?;
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(super::mime::is_token_char) {
            return None;
        }
        out.push(PartHeader {
            name: name.to_owned(),
            value: value.trim().to_owned(),
        });
    }
    Some(out)
}

/// Why a multipart body could not be written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The boundary is not a valid RFC 2046 boundary.
    #[error("invalid boundary")]
    InvalidBoundary,
    /// The boundary occurs in a part (content or header), so the body would not split back.
    #[error("boundary occurs inside part {part}")]
    BoundaryInPart {
        /// Index of the offending part.
        part: usize,
    },
    /// A header name is not a token, or a name or value contains CR or LF.
    #[error("bad header in part {part}")]
    BadHeader {
        /// Index of the offending part.
        part: usize,
    },
}

/// A part to write: headers in order and the content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutPart {
    /// Header (name, value) pairs written as `Name: value`.
    pub headers: Vec<(String, String)>,
    /// The content.
    pub body: Bytes,
}

impl OutPart {
    /// A part with a Content-Type header and `body`.
    pub fn new(content_type: &MediaType, body: impl Into<Bytes>) -> OutPart {
        OutPart {
            headers: vec![("Content-Type".into(), content_type.to_string())],
            body: body.into(),
        }
    }

    /// Adds a Content-Disposition header, builder style.
    pub fn disposition(mut self, d: &Disposition) -> OutPart {
        self.headers
            .push(("Content-Disposition".into(), d.to_string()));
        self
    }

    /// Adds any header, builder style.
    pub fn header(mut self, name: &str, value: &str) -> OutPart {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// The Content-Type of a body written with `boundary`: `multipart/mixed;boundary=…`.
pub fn content_type(boundary: &str) -> MediaType {
    MediaType::new("multipart", "mixed").with_param("boundary", boundary)
}

/// Writes `parts` as a `multipart/mixed` body delimited by `boundary`: no preamble,
/// `--boundary CRLF headers CRLF CRLF content CRLF` per part, then `--boundary-- CRLF`.
///
/// The caller chooses the boundary (this core has no randomness); the writer refuses one
/// that occurs in any part, so the result always splits back into the same parts.
pub fn write(boundary: &str, parts: &[OutPart]) -> Result<Bytes, WriteError> {
    let headers: Vec<Vec<(&str, &str)>> = parts
        .iter()
        .map(|p| {
            p.headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect()
        })
        .collect();
    let refs: Vec<PartRef<'_>> = parts
        .iter()
        .zip(&headers)
        .map(|(p, h)| PartRef {
            headers: h,
            body: &p.body,
        })
        .collect();
    write_parts(boundary, &refs)
}

/// A part to write, borrowed: [`write_parts`] copies it straight into the body, where
/// [`OutPart`] owns its header strings and content.
#[derive(Clone, Copy, Debug)]
pub struct PartRef<'a> {
    /// Header (name, value) pairs written as `Name: value`.
    pub headers: &'a [(&'a str, &'a str)],
    /// The content.
    pub body: &'a [u8],
}

/// [`write`] from borrowed parts: the same checks and the same bytes, without an owned
/// copy of each header and content first (a list MESSAGE writes its copies' body with the
/// recipient-list history this way, once per MESSAGE).
pub fn write_parts(boundary: &str, parts: &[PartRef<'_>]) -> Result<Bytes, WriteError> {
    if !is_valid_boundary(boundary) {
        return Err(WriteError::InvalidBoundary);
    }
    let mut dash = String::with_capacity(boundary.len() + 2);
    dash.push_str("--");
    dash.push_str(boundary);
    let finder = memmem::Finder::new(dash.as_bytes());
    let mut size = dash.len() + 4;
    for (i, p) in parts.iter().enumerate() {
        if finder.find(p.body).is_some() {
            return Err(WriteError::BoundaryInPart { part: i });
        }
        for &(n, v) in p.headers {
            if !super::mime::is_token(n) || v.contains(['\r', '\n']) {
                return Err(WriteError::BadHeader { part: i });
            }
            if finder.find(v.as_bytes()).is_some() {
                return Err(WriteError::BoundaryInPart { part: i });
            }
            size += n.len() + v.len() + 4;
        }
        size += dash.len() + 6 + p.body.len();
    }
    let mut out = BytesMut::with_capacity(size);
    for p in parts {
        out.put_slice(dash.as_bytes());
        out.put_slice(b"\r\n");
        for &(n, v) in p.headers {
            out.put_slice(n.as_bytes());
            out.put_slice(b": ");
            out.put_slice(v.as_bytes());
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"\r\n");
        out.put_slice(p.body);
        out.put_slice(b"\r\n");
    }
    out.put_slice(dash.as_bytes());
    out.put_slice(b"--\r\n");
    Ok(out.freeze())
}

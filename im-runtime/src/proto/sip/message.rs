//! The message: one `Bytes` plus ranges, parsed once; typed header views on demand.

mod buf;
mod framing;
use buf::Buf;
use framing::salvage;
pub use framing::{Frame, frame};
use std::fmt;

use bytes::Bytes;
use bytestring::ByteString;

use super::error::{ErrorKind, ParseError, ParseFailure, Salvage};
use super::header::{
    AddrRec, CSeq, Contacts, Disposition, HeaderName, MediaType, NameAddr, Via, ViaRec, Warning,
    check_call_id, check_contacts, check_name_addrs, check_tokens, parse_name_addrs, parse_number,
    parse_tokens, split_values,
};
use super::scan::{Rel, is_token, trim_lws};
use super::status::StatusCode;
use super::uri::Uri;
use crate::machine::Method;

/// A byte range inside the message buffer. `u32` keeps [`Header`] at 20 bytes; messages are
/// limited to 4 GiB (far above any sane limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    s: u32,
    e: u32,
}

impl Span {
    fn new(s: usize, e: usize) -> Span {
        Span {
            s: s as u32,
            e: e as u32,
        }
    }
    fn range(self) -> std::ops::Range<usize> {
        self.s as usize..self.e as usize
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Start {
    Request {
        method: Method,
        uri: Span,
        version: Span,
    },
    Response {
        version: Span,
        status: StatusCode,
        reason: Span,
    },
}

/// One header line (with its folds) of a parsed message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    name: HeaderName,
    name_span: Span,
    value: Span,
}

/// What the parse-time check found in the first line of the headers every layer reads, so
/// that the typed accessors slice instead of parsing again. `None` when the header is absent
/// or its first line was not recorded (it did not parse in [`Message::parse_structure`], or
/// is longer than [`Rel`] can hold): the accessors then parse that first line as before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Known {
    /// Header index and the first value of the first Via line.
    via: Option<(u8, ViaRec)>,
    from: Option<(u8, AddrRec)>,
    to: Option<(u8, AddrRec)>,
    call_id: Option<u8>,
    /// Header index, number and method token of the first CSeq line.
    cseq: Option<(u8, u32, Rel)>,
}

/// Which [`HeaderName`]s a message holds and which it holds more than once, one bit per
/// name ([`Message::name_presence`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct NamePresence {
    seen: u64,
    repeated: u64,
}

impl NamePresence {
    /// The bit of `name`: its place in the enum (fewer than 64 names; `Other` included).
    #[inline]
    fn bit(name: HeaderName) -> u64 {
        1u64 << ((name as u32) & 63)
    }

    /// Whether a line of `name` is there.
    #[inline]
    pub(crate) fn has(self, name: HeaderName) -> bool {
        self.seen & Self::bit(name) != 0
    }

    /// Whether more than one line of `name` is there.
    #[inline]
    pub(crate) fn repeated(self, name: HeaderName) -> bool {
        self.repeated & Self::bit(name) != 0
    }
}

/// A borrowed view of one header line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderRef<'a> {
    /// The recognised name ([`HeaderName::Other`] for unknown ones).
    pub name: HeaderName,
    /// The name as written in the message (`v`, `VIA`, `X-Foo` …).
    pub name_str: &'a str,
    /// The value with leading/trailing whitespace removed; folds are kept as written.
    pub value: &'a str,
    /// Byte offset of the value in the message.
    pub offset: usize,
}

/// A parsed SIP request or response.
///
/// Holds the message's bytes in one [`Bytes`] (so it is `'static`, cheap to clone and to
/// move between tasks) plus `u32` ranges for the start line, each header and the body.
/// Nothing is copied while parsing; typed header views ([`Message::vias`],
/// [`Message::from`] …) borrow from the buffer and are decoded when asked for.
///
/// Serialising ([`Message::as_bytes`]) gives back exactly the bytes that were parsed (for a
/// datagram: without octets past Content-Length); messages made by the builders in
/// [`super::build`] are in canonical RFC 3261 form.
#[derive(Clone)]
pub struct Message {
    buf: Buf,
    start: Start,
    headers: Vec<Header>,
    body: Span,
    known: Known,
}

/// Two messages are equal when their bytes and the structure read from them are: `known`
/// only saves the accessors a parse, so a message a builder made (which records what it
/// wrote) equals the parse of its bytes (which may record nothing).
impl PartialEq for Message {
    fn eq(&self, other: &Message) -> bool {
        self.buf.bytes() == other.buf.bytes()
            && self.start == other.start
            && self.headers == other.headers
            && self.body == other.body
    }
}

impl Eq for Message {}

/// Whether the bytes came in a datagram or were cut out of a stream by [`frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// One datagram: octets past Content-Length are discarded, and without Content-Length
    /// the body runs to the end (RFC 3261 §18.3).
    Datagram,
    /// Exactly one framed message from a stream: Content-Length is mandatory and must match.
    Stream,
}

fn version_ok(v: &[u8]) -> bool {
    // "SIP" "/" 1*DIGIT "." 1*DIGIT, case-insensitive.
    let Some((sip, rest)) = v.split_at_checked(4) else {
        return false;
    };
    if v.len() < 7 || !sip.eq_ignore_ascii_case(b"SIP/") {
        return false;
    }
    let Some(dot) = rest.iter().position(|&c| c == b'.') else {
        return false;
    };
    let Some((a, dot_b)) = rest.split_at_checked(dot) else {
        return false;
    };
    let b = dot_b.get(1..).unwrap_or_default();
    !a.is_empty() && !b.is_empty() && a.iter().chain(b).all(u8::is_ascii_digit)
}

/// How many decimal digits `n` is written with.
fn decimal_width(mut n: u32) -> usize {
    let mut w = 1;
    while n >= 10 {
        n /= 10;
        w += 1;
    }
    w
}

/// A From or To value: the one-pass reader for the usual form, the general parse (and its
/// error) for the rest.
fn name_addr(v: &str) -> Result<NameAddr<'_>, ParseError> {
    match NameAddr::parse_plain(v) {
        Some(a) => Ok(a),
        None => NameAddr::parse(v),
    }
}

/// Position of the next LF at or after `from`. (A word-at-a-time loop instead of `memchr`
/// was tried: ~1.5 k instructions more per INVITE.)
fn next_lf(b: &[u8], from: usize) -> Option<usize> {
    memchr::memchr(b'\n', b.get(from..)?).map(|i| i + from)
}

/// End of the line content (drops a CR before the LF).
fn line_end(b: &[u8], lf: usize, start: usize) -> usize {
    if lf > start && lf.checked_sub(1).and_then(|i| b.get(i)) == Some(&b'\r') {
        lf - 1
    } else {
        lf
    }
}

impl Message {
    /// Parses one datagram (RFC 3261 §18.3 framing). On failure, a request's Via, From, To,
    /// Call-ID and CSeq are salvaged so that it can still be answered with 400.
    pub fn parse(buf: Bytes) -> Result<Message, ParseFailure> {
        Self::parse_as(buf, Transport::Datagram)
    }

    /// Parses a message delivered by `transport`; see [`Transport`].
    pub fn parse_as(buf: Bytes, transport: Transport) -> Result<Message, ParseFailure> {
        match Self::parse_inner(&buf, transport) {
            Ok(m) => Ok(m),
            Err(error) => {
                let salvage = salvage(&buf, &error).map(Box::new);
                Err(ParseFailure { error, salvage })
            }
        }
    }

    /// Parses only the structure (start line, header lines, Content-Length framing as for a
    /// stream) without checking the grammar of individual headers. Used for responses built
    /// from salvaged, possibly malformed values; typed accessors return `None` for headers
    /// that do not parse.
    pub fn parse_structure(buf: Bytes) -> Result<Message, ParseFailure> {
        Self::parse_inner_checked(&buf, Transport::Stream, false).map_err(|error| ParseFailure {
            error,
            salvage: None,
        })
    }

    /// A message a builder ([`super::build`]) wrote, made from the places it wrote each part
    /// instead of by parsing the bytes back: the same [`Message`] as
    /// [`Message::parse_structure`] of `buf` (the builders' tests compare them), for a
    /// message whose every header line is `Name: value` CRLF with a token name and a value
    /// on one line, one Content-Length that matches its body, and the blank line at
    /// `body_start - 2`. `lines` holds, per header line in order, its name, where the name
    /// starts and ends (the colon follows it) and where the line ends (before its CRLF).
    /// `None` when the start line does not parse or the message is too large; the builder
    /// then parses it back, which gives the error. `request_line`: how long the method and
    /// the Request-URI the builder wrote are (read without a search when they are what the
    /// parse takes them for). `cseq`: the number of the first CSeq
    /// line, which the builder wrote as `<number> <the Request-Line's method>`, recorded for
    /// [`Message::cseq`] (the transaction key reads it on every request we send).
    pub(super) fn from_written(
        buf: Bytes,
        lines: &[(HeaderName, usize, usize, usize)],
        body_start: usize,
        request_line: (usize, usize),
        cseq: Option<u32>,
    ) -> Option<Message> {
        if buf.len() > u32::MAX as usize {
            return None;
        }
        let b = &buf[..];
        let start = match written_request_line(b, request_line) {
            Some(start) => start,
            None => {
                let sl_end = memchr::memchr(b'\r', b)?;
                parse_start_line(b.get(..sl_end)?).ok()?
            }
        };
        let headers: Vec<Header> = lines
            .iter()
            .map(|&(name, ns, ne, end)| {
                // Trimmed as the parser trims a value (LWS on both sides).
                let mut s = ne + 1;
                let mut e = end;
                while s < e && b.get(s).is_some_and(|&c| super::scan::is_lws(c)) {
                    s += 1;
                }
                while e > s && b.get(e - 1).is_some_and(|&c| super::scan::is_lws(c)) {
                    e -= 1;
                }
                Header {
                    name,
                    name_span: Span::new(ns, ne),
                    value: Span::new(s, e),
                }
            })
            .collect();
        let body = Span::new(body_start, b.len());
        let mut known = Known::default();
        // The CSeq line the builder wrote first, `<number> SP <the start line's method>`
        // (a token: the start line parsed), read as `CSeq::parse_parts` reads it: where the
        // method starts follows from the number's width, so nothing is searched or checked.
        if let Some(seq) = cseq.filter(|&n| n < 1 << 31)
            && let Some(i) = headers.iter().position(|h| h.name == HeaderName::CSeq)
            && let Some(h) = headers.get(i)
        {
            let len = (h.value.e - h.value.s) as usize;
            let m = decimal_width(seq) + 1;
            known.cseq = u8::try_from(i)
                .ok()
                .zip(Rel::new(m, len).filter(|_| len > m))
                .map(|(i, r)| (i, seq, r));
        }
        // The top Via, when it has the usual form (every Via we write): the transaction key
        // reads it on every request we send, and parsing it there cost ~1.5 k instructions.
        if let Some((i, h)) = headers
            .iter()
            .enumerate()
            .find(|(_, h)| h.name == HeaderName::Via)
            && let Some(v) = b
                .get(h.value.range())
                .and_then(|v| std::str::from_utf8(v).ok())
            && let Some(via) = Via::parse_plain(v)
        {
            known.via = u8::try_from(i).ok().zip(via.record(v));
        }
        Some(Message {
            buf: Buf::Raw(buf),
            start,
            headers,
            body,
            known,
        })
    }

    fn parse_inner(full: &Bytes, transport: Transport) -> Result<Message, ParseError> {
        Self::parse_inner_checked(full, transport, true)
    }

    fn parse_inner_checked(
        full: &Bytes,
        transport: Transport,
        check: bool,
    ) -> Result<Message, ParseError> {
        if full.len() > u32::MAX as usize {
            return Err(ParseError::new(
                ErrorKind::TooLarge {
                    limit: u32::MAX as usize,
                },
                0,
            ));
        }
        // RFC 3261 §7.5: CRLFs before the start line are ignored.
        let skip = full
            .iter()
            .take_while(|&&c| c == b'\r' || c == b'\n')
            .count();
        let b = full.get(skip..).unwrap_or_default();
        if b.is_empty() {
            return Err(ParseError::new(ErrorKind::Empty, skip));
        }
        let at = |e: ParseError| ParseError {
            offset: e.offset + skip,
            ..e
        };
        let lf = next_lf(b, 0).ok_or_else(|| ParseError::new(ErrorKind::NoHeaderEnd, b.len()))?;
        let sl_end = line_end(b, lf, 0);
        let start = parse_start_line(b.get(..sl_end).unwrap_or_default()).map_err(at)?;

        let mut headers: Vec<Header> = Vec::with_capacity(16);
        let mut pos = lf + 1;
        let body_start;
        loop {
            let Some(lf) = next_lf(b, pos) else {
                return Err(at(ParseError::new(ErrorKind::NoHeaderEnd, b.len())));
            };
            let end = line_end(b, lf, pos);
            if end == pos {
                body_start = lf + 1;
                break;
            }
            if matches!(b.get(pos), Some(b' ' | b'\t')) {
                let Some(h) = headers.last_mut() else {
                    return Err(at(ParseError::new(ErrorKind::FoldAtStart, pos)));
                };
                h.value.e = end as u32;
            } else {
                let name_end = pos
                    + b.get(pos..end)
                        .unwrap_or_default()
                        .iter()
                        .take_while(|&&c| is_token(c))
                        .count();
                let mut i = name_end;
                while i < end && matches!(b.get(i), Some(b' ' | b'\t')) {
                    i += 1;
                }
                if name_end == pos || i >= end || b.get(i) != Some(&b':') {
                    return Err(at(ParseError::new(ErrorKind::HeaderLine, pos)));
                }
                headers.push(Header {
                    name: HeaderName::from_bytes(b.get(pos..name_end).unwrap_or_default()),
                    name_span: Span::new(pos, name_end),
                    value: Span::new(i + 1, end),
                });
            }
            pos = lf + 1;
        }
        // Checked once here, the whole message after the skipped CRLFs (a datagram's bytes
        // past its Content-Length included); the header checks below and every accessor
        // slice the `str` rather than checking each value again. A body that is not UTF-8
        // leaves the message `Raw`: only its header section must be.
        let text = ByteString::try_from(full.slice(skip..));
        if let Err(e) = &text
            && e.valid_up_to() < body_start
        {
            return Err(at(ParseError::new(ErrorKind::NotUtf8, e.valid_up_to())));
        }
        let text = text.ok();
        let head = match &text {
            Some(t) => t.get(..body_start).unwrap_or(""),
            // The check above found the header section valid.
            None => std::str::from_utf8(b.get(..body_start).unwrap_or_default()).unwrap_or(""),
        };
        // Trim LWS (folds included) around each value.
        for h in &mut headers {
            let mut s = h.value.s as usize;
            let mut e = h.value.e as usize;
            while s < e && b.get(s).is_some_and(|&c| super::scan::is_lws(c)) {
                s += 1;
            }
            while e > s && b.get(e - 1).is_some_and(|&c| super::scan::is_lws(c)) {
                e -= 1;
            }
            h.value = Span::new(s, e);
        }

        let mut cl: Option<(usize, &Header)> = None;
        for h in headers
            .iter()
            .filter(|h| h.name == HeaderName::ContentLength)
        {
            if cl.is_some() {
                return Err(at(ParseError::new(
                    ErrorKind::DuplicateContentLength,
                    h.value.s as usize,
                )
                .in_header("Content-Length", 0)));
            }
            let v = head.get(h.value.range()).unwrap_or("");
            let n = parse_number(v, u32::MAX as u64, "Content-Length")
                .map_err(|e| at(e.in_header("Content-Length", h.value.s as usize)))?;
            cl = Some((n as usize, h));
        }
        let avail = b.len() - body_start;
        let body_len = match (cl, transport) {
            (Some((n, _)), _) if n > avail => {
                return Err(at(ParseError::new(
                    ErrorKind::BodyLength {
                        declared: n,
                        actual: avail,
                    },
                    b.len(),
                )));
            }
            (Some((n, _)), Transport::Stream) if n != avail => {
                return Err(at(ParseError::new(
                    ErrorKind::BodyLength {
                        declared: n,
                        actual: avail,
                    },
                    body_start + n,
                )));
            }
            (Some((n, _)), _) => n,
            (None, Transport::Datagram) => avail,
            (None, Transport::Stream) => {
                return Err(at(ParseError::new(
                    ErrorKind::MissingContentLength,
                    body_start,
                )));
            }
        };

        let total = skip + body_start + body_len;
        let kept = body_start + body_len;
        let buf = match text {
            Some(t) if kept == t.len() => Buf::Text(t),
            // Past the Content-Length: cut where the body ends, unless that is inside a
            // character (the message proper is then not all text).
            Some(t) if t.is_char_boundary(kept) => {
                Buf::Text(t.slice_ref(t.get(..kept).unwrap_or("")))
            }
            _ if skip == 0 && total == full.len() => Buf::Raw(full.clone()),
            _ => Buf::Raw(full.slice(skip..total)),
        };
        let mut msg = Message {
            buf,
            start,
            headers,
            body: Span::new(body_start, body_start + body_len),
            known: Known::default(),
        };
        let head = msg.buf.str_at(Span::new(0, body_start));
        msg.known = msg.check_headers(head, check).map_err(at)?;
        Ok(msg)
    }

    /// Checks the grammar of the headers the transaction and dialog layers read on every
    /// message (Via, From, To, Call-ID, CSeq; the From and To of a response that does not
    /// answer an INVITE only when read, see below), so that a message that parses can be
    /// answered and matched, and records what it found in their first lines. The other
    /// checked headers (Request-URI, Max-Forwards, Contact, Content-Type, Route,
    /// Record-Route, Require, Proxy-Require) are left to [`Message::check_deferred`], which
    /// the core's [`super::validate`] runs before a message reaches the transaction layer: a
    /// message that is only forwarded or matched does not pay for decoding them. Without `check` (a
    /// structure-only parse of a message we built), nothing is parsed or recorded: the few
    /// accessors read on such a message parse their header when asked.
    fn check_headers(&self, head: &str, check: bool) -> Result<Known, ParseError> {
        if !check {
            return Ok(Known::default());
        }
        let at = |s: Span| head.get(s.range()).unwrap_or("");
        let mut k = Known::default();
        // Whether the first line of each recorded header has been seen (a line past index 255
        // is seen but not recorded, and its accessor parses it).
        let (mut via, mut from, mut to, mut call_id, mut cseq) =
            (false, false, false, false, false);
        // A response's From and To are read by the dialog layer only, in the answers to an
        // INVITE: those are checked here as a request's are (after the loop, once the CSeq
        // has said which method it answers), any other response's are left to whoever reads
        // them (their accessors parse them then). The answers to a list MESSAGE's copies are
        // the bulk of what the server receives, and parsing their From and To was ~2.4 k
        // instructions each, a twentieth of a recipient's cost.
        let request = self.is_request();
        let mut answers_invite = false;
        let mut address = |i: usize, h: &Header, k: &mut Known| -> Result<(), ParseError> {
            let v = at(h.value);
            let a = name_addr(v).map_err(|e| {
                e.in_header(h.name.canonical().unwrap_or("header"), h.value.s as usize)
            })?;
            let (seen, slot) = match h.name {
                HeaderName::From => (&mut from, &mut k.from),
                _ => (&mut to, &mut k.to),
            };
            if !std::mem::replace(seen, true) {
                *slot = u8::try_from(i).ok().zip(a.record(v));
            }
            Ok(())
        };
        for (i, h) in self.headers.iter().enumerate() {
            let idx = u8::try_from(i).ok();
            let fail = |e: ParseError| {
                e.in_header(h.name.canonical().unwrap_or("header"), h.value.s as usize)
            };
            match h.name {
                HeaderName::Via => {
                    let v = at(h.value);
                    let first = match Via::parse_plain(v) {
                        Some(first) => first,
                        None => Via::parse_first(v).map_err(fail)?,
                    };
                    if !std::mem::replace(&mut via, true) {
                        k.via = idx.zip(first.record(v));
                    }
                }
                HeaderName::From | HeaderName::To if request => address(i, h, &mut k)?,
                HeaderName::CallId => {
                    check_call_id(at(h.value)).map_err(fail)?;
                    if !std::mem::replace(&mut call_id, true) {
                        k.call_id = idx;
                    }
                }
                HeaderName::CSeq => {
                    let v = at(h.value);
                    let (n, m) = CSeq::parse_parts(v).map_err(fail)?;
                    if !std::mem::replace(&mut cseq, true) {
                        answers_invite = m == "INVITE";
                        k.cseq = idx.zip(Rel::of(v, m)).map(|(i, m)| (i, n, m));
                    }
                }
                _ => {}
            }
        }
        if !request && answers_invite {
            for (i, h) in self.headers.iter().enumerate() {
                if matches!(h.name, HeaderName::From | HeaderName::To) {
                    address(i, h, &mut k)?;
                }
            }
        }
        Ok(k)
    }

    /// Checks what [`Message::parse`] leaves to first use: the Request-URI and the grammar of
    /// Max-Forwards, Contact, Content-Type, Route, Record-Route, Require and Proxy-Require,
    /// every line of each. [`super::validate::validate_request`] (400) and
    /// [`super::validate::check_response`] (drop) run it, and the builders run it on what they
    /// build, so a message that reaches the transaction layer or the wire has passed the same
    /// checks as when they ran at parse time; the accessors of these headers ([`Message::contacts`],
    /// [`Message::routes`] …) read a message that has not passed it as `None` or empty where
    /// a value is malformed. The error is the one the parse gave when it made them (offsets in
    /// this message's bytes).
    pub fn check_deferred(&self) -> Result<(), ParseError> {
        self.check_request_uri()?;
        self.check_deferred_headers(false)
    }

    /// The Request-URI, checked (`Ok(None)` for a response).
    pub(crate) fn check_request_uri(&self) -> Result<Option<Uri<'_>>, ParseError> {
        match &self.start {
            Start::Request { uri, .. } => Uri::parse_at(self.str_at(*uri), uri.s as usize)
                .map(Some)
                .map_err(|e| e.ctx("Request-URI")),
            Start::Response { .. } => Ok(None),
        }
    }

    /// The header part of [`Message::check_deferred`]; without the first Content-Type line
    /// when `skip_first_content_type` (the caller checks that one while reading it; further
    /// lines are still checked here, so that their error comes before any other verdict).
    pub(crate) fn check_deferred_headers(
        &self,
        skip_first_content_type: bool,
    ) -> Result<(), ParseError> {
        let mut skip_ct = skip_first_content_type;
        for h in &self.headers {
            let check: fn(&str) -> Result<(), ParseError> = match h.name {
                HeaderName::MaxForwards => |v| parse_number(v, 255, "Max-Forwards").map(drop),
                HeaderName::Contact => check_contacts,
                HeaderName::ContentType if std::mem::replace(&mut skip_ct, false) => continue,
                HeaderName::ContentType => |v| MediaType::parse(v).map(drop),
                HeaderName::Route | HeaderName::RecordRoute => check_name_addrs,
                HeaderName::Require | HeaderName::ProxyRequire => check_tokens,
                _ => continue,
            };
            check(self.str_at(h.value)).map_err(|e| {
                e.in_header(h.name.canonical().unwrap_or("header"), h.value.s as usize)
            })?;
        }
        Ok(())
    }

    /// Content-Type with its error (a malformed one is `Some(Err)`).
    pub(crate) fn content_type_checked(&self) -> Option<Result<MediaType<'_>, ParseError>> {
        self.typed(HeaderName::ContentType, MediaType::parse)
    }

    /// The value of header line `i` (an index recorded in [`Known`]).
    #[inline]
    fn value_at(&self, i: u8) -> &str {
        self.headers
            .get(usize::from(i))
            .map_or("", |h| self.str_at(h.value))
    }

    fn str_at(&self, s: Span) -> &str {
        self.buf.str_at(s)
    }

    /// The message bytes, exactly as parsed (or as built).
    pub fn as_bytes(&self) -> &Bytes {
        self.buf.bytes()
    }

    /// The message bytes.
    pub fn into_bytes(self) -> Bytes {
        self.buf.into_bytes()
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, Start::Request { .. })
    }

    /// The request method (`None` for a response).
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            Start::Request { method, .. } => Some(method),
            Start::Response { .. } => None,
        }
    }

    /// The Request-URI as written.
    pub fn request_uri_str(&self) -> Option<&str> {
        match &self.start {
            Start::Request { uri, .. } => Some(self.str_at(*uri)),
            Start::Response { .. } => None,
        }
    }

    /// The Request-URI; `None` for a response or a malformed one (see
    /// [`Message::check_deferred`]).
    pub fn request_uri(&self) -> Option<Uri<'_>> {
        self.request_uri_str().and_then(|s| Uri::parse(s).ok())
    }

    /// The SIP-Version of the start line as written (`SIP/2.0`).
    pub fn version(&self) -> &str {
        match &self.start {
            Start::Request { version, .. } | Start::Response { version, .. } => {
                self.str_at(*version)
            }
        }
    }

    /// The status code (`None` for a request).
    pub fn status(&self) -> Option<StatusCode> {
        match &self.start {
            Start::Response { status, .. } => Some(*status),
            Start::Request { .. } => None,
        }
    }

    /// The reason phrase (`None` for a request; may be empty).
    pub fn reason(&self) -> Option<&str> {
        match &self.start {
            Start::Response { reason, .. } => Some(self.str_at(*reason)),
            Start::Request { .. } => None,
        }
    }

    /// Every header line in order.
    pub fn headers(&self) -> impl Iterator<Item = HeaderRef<'_>> + '_ {
        self.headers.iter().map(|h| HeaderRef {
            name: h.name,
            name_str: self.str_at(h.name_span),
            value: self.str_at(h.value),
            offset: h.value.s as usize,
        })
    }

    /// The values of every line of a known header, in order.
    pub fn header_lines(&self, name: HeaderName) -> impl Iterator<Item = &str> + '_ {
        self.headers
            .iter()
            .filter(move |h| h.name == name)
            .map(|h| self.str_at(h.value))
    }

    /// The first line of a known header.
    pub fn header(&self, name: HeaderName) -> Option<&str> {
        self.header_lines(name).next()
    }

    /// The first header with this name (any case; full or compact form for known names).
    pub fn header_str(&self, name: &str) -> Option<&str> {
        match HeaderName::from_name(name) {
            HeaderName::Other => self
                .headers()
                .find(|h| h.name == HeaderName::Other && h.name_str.eq_ignore_ascii_case(name))
                .map(|h| h.value),
            known => self.header(known),
        }
    }

    /// Which header names the message holds, and which more than once, from one pass over
    /// its header index: the validity checks ask this of a dozen names per message, which
    /// [`Message::count`] answers with a pass per name.
    pub(crate) fn name_presence(&self) -> NamePresence {
        let mut p = NamePresence::default();
        for h in &self.headers {
            let bit = NamePresence::bit(h.name);
            p.repeated |= p.seen & bit;
            p.seen |= bit;
        }
        p
    }

    /// How many lines of a known header there are.
    pub fn count(&self, name: HeaderName) -> usize {
        self.headers.iter().filter(|h| h.name == name).count()
    }

    /// The individual values of a list header across all its lines (top-level commas split,
    /// not inside quotes or `<…>`); for other headers, one value per line.
    pub fn values(&self, name: HeaderName) -> Vec<&str> {
        if name.is_list() {
            self.header_lines(name)
                .flat_map(split_values)
                .filter(|v| !v.is_empty())
                .collect()
        } else {
            self.header_lines(name).collect()
        }
    }

    /// All Via values, top first (checked at parse time).
    pub fn vias(&self) -> Vec<Via<'_>> {
        self.header_lines(HeaderName::Via)
            .flat_map(|v| Via::parse_list(v).unwrap_or_default())
            .collect()
    }

    /// The topmost Via.
    pub fn top_via(&self) -> Option<Via<'_>> {
        if let Some((i, rec)) = &self.known.via {
            return Some(rec.view(self.value_at(*i)));
        }
        let v = self.header(HeaderName::Via)?;
        Via::parse_plain(v).or_else(|| Via::parse_first(v).ok())
    }

    /// From (first line; checked at parse time in a request and in an answer to an INVITE,
    /// parsed here in any other response: `None` when malformed).
    pub fn from(&self) -> Option<NameAddr<'_>> {
        if let Some((i, rec)) = &self.known.from {
            return Some(rec.view(self.value_at(*i)));
        }
        name_addr(self.header(HeaderName::From)?).ok()
    }

    /// To (first line; checked at parse time in a request and in an answer to an INVITE,
    /// parsed here in any other response: `None` when malformed).
    pub fn to(&self) -> Option<NameAddr<'_>> {
        if let Some((i, rec)) = &self.known.to {
            return Some(rec.view(self.value_at(*i)));
        }
        name_addr(self.header(HeaderName::To)?).ok()
    }

    /// Call-ID.
    pub fn call_id(&self) -> Option<&str> {
        if let Some(i) = self.known.call_id {
            return Some(self.value_at(i));
        }
        self.header(HeaderName::CallId)
    }

    /// CSeq (first line; checked at parse time).
    pub fn cseq(&self) -> Option<CSeq> {
        if let Some((i, seq, m)) = self.known.cseq {
            return Some(CSeq {
                seq,
                method: Method::from_token(m.get(self.value_at(i))),
            });
        }
        CSeq::parse(self.header(HeaderName::CSeq)?).ok()
    }

    /// Max-Forwards (0..=255); `None` when absent or malformed (see
    /// [`Message::check_deferred`]).
    pub fn max_forwards(&self) -> Option<u8> {
        parse_number(self.header(HeaderName::MaxForwards)?, 255, "Max-Forwards")
            .ok()
            .map(|v| v as u8)
    }

    /// Contact, merged across lines: `Star` if any line is `*`; `None` when absent or when a
    /// line is malformed (see [`Message::check_deferred`]).
    pub fn contacts(&self) -> Option<Contacts<'_>> {
        let mut list = Vec::new();
        let mut any = false;
        for v in self.header_lines(HeaderName::Contact) {
            any = true;
            match Contacts::parse(v).ok()? {
                Contacts::Star => return Some(Contacts::Star),
                Contacts::List(l) => list.extend(l),
            }
        }
        any.then_some(Contacts::List(list))
    }

    /// Content-Type; `None` when absent or malformed (see [`Message::check_deferred`]).
    pub fn content_type(&self) -> Option<MediaType<'_>> {
        MediaType::parse(self.header(HeaderName::ContentType)?).ok()
    }

    /// Content-Length as declared.
    pub fn content_length(&self) -> Option<usize> {
        let v = self.header(HeaderName::ContentLength)?;
        parse_number(v, u32::MAX as u64, "Content-Length")
            .ok()
            .map(|v| v as usize)
    }

    /// Content-Disposition.
    pub fn content_disposition(&self) -> Option<Result<Disposition<'_>, ParseError>> {
        self.typed(HeaderName::ContentDisposition, Disposition::parse)
    }

    /// Expires; values above 2**32-1 saturate (RFC 3261 §20.19), `None` when absent or not
    /// a number.
    pub fn expires(&self) -> Option<u32> {
        let v = self.header(HeaderName::Expires)?;
        if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        Some(super::scan::digits_u64(v).map_or(u32::MAX, |n| n.min(u64::from(u32::MAX)) as u32))
    }

    fn typed<'a, T>(
        &'a self,
        name: HeaderName,
        f: impl Fn(&'a str) -> Result<T, ParseError>,
    ) -> Option<Result<T, ParseError>> {
        let h = self.headers.iter().find(|h| h.name == name)?;
        Some(
            f(self.str_at(h.value))
                .map_err(|e| e.in_header(name.canonical().unwrap_or("header"), h.value.s as usize)),
        )
    }

    fn token_list(&self, name: HeaderName) -> Result<Vec<&str>, ParseError> {
        let mut out = Vec::new();
        for h in self.headers.iter().filter(|h| h.name == name) {
            let v = parse_tokens(self.str_at(h.value)).map_err(|e| {
                e.in_header(name.canonical().unwrap_or("header"), h.value.s as usize)
            })?;
            out.extend(v);
        }
        Ok(out)
    }

    /// Option tags of Require; empty when a line is malformed (see
    /// [`Message::check_deferred`]).
    pub fn require(&self) -> Vec<&str> {
        self.token_list(HeaderName::Require).unwrap_or_default()
    }

    /// Option tags of Proxy-Require; empty when a line is malformed (see
    /// [`Message::check_deferred`]).
    pub fn proxy_require(&self) -> Vec<&str> {
        self.token_list(HeaderName::ProxyRequire)
            .unwrap_or_default()
    }

    /// Option tags of Supported.
    pub fn supported(&self) -> Result<Vec<&str>, ParseError> {
        self.token_list(HeaderName::Supported)
    }

    /// Option tags of Unsupported.
    pub fn unsupported(&self) -> Result<Vec<&str>, ParseError> {
        self.token_list(HeaderName::Unsupported)
    }

    /// Methods of Allow.
    pub fn allow(&self) -> Result<Vec<Method>, ParseError> {
        Ok(self
            .token_list(HeaderName::Allow)?
            .into_iter()
            .map(Method::from_token)
            .collect())
    }

    /// Accept media ranges across all lines; `None` when there is no Accept header,
    /// `Some(Ok(vec![]))` for an empty one (nothing acceptable, RFC 3261 §20.1).
    pub fn accept(&self) -> Option<Result<Vec<MediaType<'_>>, ParseError>> {
        let mut out = Vec::new();
        let mut any = false;
        for h in self.headers.iter().filter(|h| h.name == HeaderName::Accept) {
            any = true;
            match MediaType::parse_accept(self.str_at(h.value)) {
                Ok(v) => out.extend(v),
                Err(e) => return Some(Err(e.in_header("Accept", h.value.s as usize))),
            }
        }
        any.then_some(Ok(out))
    }

    fn name_addr_list(&self, name: HeaderName) -> Result<Vec<NameAddr<'_>>, ParseError> {
        let mut out = Vec::new();
        for h in self.headers.iter().filter(|h| h.name == name) {
            let v = parse_name_addrs(self.str_at(h.value)).map_err(|e| {
                e.in_header(name.canonical().unwrap_or("header"), h.value.s as usize)
            })?;
            out.extend(v);
        }
        Ok(out)
    }

    /// Route values in order; empty when a line is malformed (see
    /// [`Message::check_deferred`]).
    pub fn routes(&self) -> Vec<NameAddr<'_>> {
        self.name_addr_list(HeaderName::Route).unwrap_or_default()
    }

    /// Record-Route values in order; empty when a line is malformed (see
    /// [`Message::check_deferred`]).
    pub fn record_routes(&self) -> Vec<NameAddr<'_>> {
        self.name_addr_list(HeaderName::RecordRoute)
            .unwrap_or_default()
    }

    /// P-Asserted-Identity values (RFC 3325).
    pub fn p_asserted_identity(&self) -> Result<Vec<NameAddr<'_>>, ParseError> {
        self.name_addr_list(HeaderName::PAssertedIdentity)
    }

    /// Warning values.
    pub fn warnings(&self) -> Result<Vec<Warning<'_>>, ParseError> {
        let mut out = Vec::new();
        for h in self
            .headers
            .iter()
            .filter(|h| h.name == HeaderName::Warning)
        {
            out.extend(
                Warning::parse_list(self.str_at(h.value))
                    .map_err(|e| e.in_header("Warning", h.value.s as usize))?,
            );
        }
        Ok(out)
    }

    /// The body (zero-copy slice of the message).
    pub fn body(&self) -> Bytes {
        self.buf.bytes().slice(self.body.range())
    }

    /// The body as a byte slice.
    pub fn body_bytes(&self) -> &[u8] {
        self.buf.bytes().get(self.body.range()).unwrap_or(b"")
    }

    /// Every header as (lower-case full name, value) for [`crate::machine::Facts::headers`].
    pub fn facts_headers(&self) -> Vec<(String, String)> {
        self.headers()
            .map(|h| {
                let name = match h.name.canonical() {
                    Some(c) => c.to_ascii_lowercase(),
                    None => h.name_str.to_ascii_lowercase(),
                };
                (name, h.value.to_owned())
            })
            .collect()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let start = self
            .as_bytes()
            .iter()
            .position(|&c| c == b'\r' || c == b'\n')
            .unwrap_or(0);
        f.debug_struct("Message")
            .field(
                "start_line",
                &String::from_utf8_lossy(self.as_bytes().get(..start).unwrap_or_default()),
            )
            .field("headers", &self.headers.len())
            .field("body_len", &self.body_bytes().len())
            .finish()
    }
}

/// The Request-Line a builder wrote, `<method> SP <Request-URI> SP SIP/2.0 CRLF` with the
/// method and URI `lens` long, as [`parse_start_line`] reads it, in one pass over the
/// method and the URI: `None` when the method is not a token or the URI is empty or holds a
/// byte the parse refuses (the caller then parses the line, which gives the error). The
/// first space ends the method (a token holds none) and the second the URI (which holds no
/// byte up to space), so the parse splits the line where it was written.
fn written_request_line(b: &[u8], (method_len, uri_len): (usize, usize)) -> Option<Start> {
    let m = b.get(..method_len).filter(|m| !m.is_empty())?;
    let uri_end = method_len + 1 + uri_len;
    let uri = b.get(method_len + 1..uri_end).filter(|u| !u.is_empty())?;
    if !m.iter().all(|&c| is_token(c))
        || b.get(method_len) != Some(&b' ')
        || uri.iter().any(|&c| c <= b' ' || c >= 0x7f)
        || b.get(uri_end..uri_end + 10) != Some(b" SIP/2.0\r\n".as_slice())
    {
        return None;
    }
    Some(Start::Request {
        method: Method::from_token(std::str::from_utf8(m).ok()?),
        uri: Span::new(method_len + 1, uri_end),
        version: Span::new(uri_end + 1, uri_end + 8),
    })
}

fn parse_start_line(line: &[u8]) -> Result<Start, ParseError> {
    if line
        .get(..4)
        .is_some_and(|v| v.eq_ignore_ascii_case(b"SIP/"))
    {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let sp = line.iter().position(|&c| c == b' ').ok_or_else(|| {
            ParseError::new(ErrorKind::StartLine("missing status code"), line.len())
        })?;
        let (version, sp_rest) = line.split_at_checked(sp).unwrap_or((line, &[]));
        if !version_ok(version) {
            return Err(ParseError::new(ErrorKind::Version, 0).ctx("Status-Line"));
        }
        let rest = sp_rest.get(1..).unwrap_or_default();
        let code_len = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        let after = rest.get(code_len).copied();
        let (&[d0, d1, d2], true) = (
            rest.first_chunk::<3>().unwrap_or(&[0; 3]),
            code_len == 3 && (after.is_none() || after == Some(b' ')),
        ) else {
            return Err(ParseError::new(ErrorKind::StatusCode, sp + 1).ctx("Status-Line"));
        };
        // Three ASCII digits: each `d - b'0'` is 0..=9.
        let code = u16::from(d0 - b'0') * 100 + u16::from(d1 - b'0') * 10 + u16::from(d2 - b'0');
        let status = StatusCode::new(code)
            .ok_or_else(|| ParseError::new(ErrorKind::StatusCode, sp + 1).ctx("Status-Line"))?;
        let rs = (sp + 1 + 4).min(line.len());
        let reason = line.get(rs..).unwrap_or_default();
        if reason.iter().any(|&c| c < 0x20 && c != b'\t') || std::str::from_utf8(reason).is_err() {
            return Err(ParseError::new(
                ErrorKind::StartLine("bad reason phrase"),
                rs,
            ));
        }
        return Ok(Start::Response {
            version: Span::new(0, sp),
            status,
            reason: Span::new(rs, line.len()),
        });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version
    let sp1 = line
        .iter()
        .position(|&c| c == b' ')
        .ok_or_else(|| ParseError::new(ErrorKind::StartLine("missing Request-URI"), line.len()))?;
    let (m, sp_rest) = line.split_at_checked(sp1).unwrap_or((line, &[]));
    let after_method = sp_rest.get(1..).unwrap_or_default();
    if m.is_empty() || !m.iter().all(|&c| is_token(c)) {
        return Err(ParseError::new(
            ErrorKind::StartLine("method is not a token"),
            0,
        ));
    }
    let sp2 = after_method
        .iter()
        .position(|&c| c == b' ')
        .map(|i| i + sp1 + 1)
        .ok_or_else(|| ParseError::new(ErrorKind::StartLine("missing SIP-Version"), line.len()))?;
    if sp2 == sp1 + 1 {
        return Err(ParseError::new(
            ErrorKind::StartLine("empty Request-URI"),
            sp2,
        ));
    }
    let uri = line.get(sp1 + 1..sp2).unwrap_or_default();
    if uri.iter().any(|&c| c <= b' ' || c >= 0x7f) {
        return Err(ParseError::new(
            ErrorKind::StartLine("bad character in Request-URI"),
            sp1 + 1,
        ));
    }
    if !version_ok(line.get(sp2 + 1..).unwrap_or_default()) {
        return Err(ParseError::new(ErrorKind::Version, sp2 + 1).ctx("Request-Line"));
    }
    let method = Method::from_token(std::str::from_utf8(m).unwrap_or(""));
    Ok(Start::Request {
        method,
        uri: Span::new(sp1 + 1, sp2),
        version: Span::new(sp2 + 1, line.len()),
    })
}

#[cfg(test)]
mod tests;

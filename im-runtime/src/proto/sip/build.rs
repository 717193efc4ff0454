//! Building messages: responses from requests (RFC 3261 §8.2.6), responses to requests that
//! failed to parse (from a [`Salvage`]), and new requests (INVITE, ACK, BYE, CANCEL, MESSAGE).
//!
//! Builders write canonical RFC 3261 form (full header names, `Name: value` CRLF, one Via
//! value per line, Content-Length always present) and then parse what they wrote, so a
//! built [`Message`] is checked exactly like a received one.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};

use super::error::{ParseFailure, Salvage};
use super::header::{HeaderName, split_values};
use super::message::{Message, Transport};
use super::status::StatusCode;
use crate::machine::Method;

/// Whether `v` holds a CR or LF: `memchr2` looks at 16 or 32 bytes a step where
/// `str::contains` with a char set decodes each char (3.5 M of a page-mode run's 108 M
/// instructions were `one_line`).
fn has_line_end(v: &str) -> bool {
    memchr::memchr2(b'\r', b'\n', v.as_bytes()).is_some()
}

/// Collapses folds (`CRLF 1*WSP`) into one space so copied values sit on one line.
fn unfold(v: &str) -> String {
    if !has_line_end(v) {
        return v.to_owned();
    }
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' || c == '\n' {
            while chars
                .peek()
                .is_some_and(|&n| matches!(n, '\r' | '\n' | ' ' | '\t'))
            {
                chars.next();
            }
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

/// Strips CR/LF from caller-supplied text so it cannot inject header lines.
/// Borrows when there is nothing to strip (the usual case), so building a message does not
/// copy every value twice.
fn one_line(v: &str) -> Cow<'_, str> {
    if has_line_end(v) {
        Cow::Owned(v.replace(['\r', '\n'], " "))
    } else {
        Cow::Borrowed(v)
    }
}

fn write_header(out: &mut BytesMut, name: &str, value: &str) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    out.put_slice(value.as_bytes());
    out.put_slice(b"\r\n");
}

/// Per header line written: its name, where the name starts and ends, where the line ends
/// (what [`Message::from_written`] takes).
type Line = (HeaderName, usize, usize, usize);

/// Where a request's header lines went as they were written, so that
/// [`RequestBuilder::build_own`] makes its [`Message`] without parsing the bytes back.
/// `plain` turns false on a line the parser could read otherwise than as written (a caller
/// name that is not a token, a second Content-Length): the message is then parsed back.
struct Lines {
    lines: Vec<Line>,
    plain: bool,
}

impl Lines {
    fn new(n: usize) -> Lines {
        Lines {
            lines: Vec::with_capacity(n),
            plain: true,
        }
    }

    /// [`write_header`], recording the line as `name` when recording.
    fn write(lines: &mut Option<Lines>, out: &mut BytesMut, name: HeaderName, n: &str, v: &str) {
        let start = out.len();
        write_header(out, n, v);
        if let Some(l) = lines {
            l.lines
                .push((name, start, start + n.len(), out.len().saturating_sub(2)));
        }
    }

    /// Records the line just written at `at` (by [`write_header_num`]) as `name`.
    fn written_at(lines: &mut Option<Lines>, out: &BytesMut, name: HeaderName, n: &str, at: usize) {
        if let Some(l) = lines {
            l.lines
                .push((name, at, at + n.len(), out.len().saturating_sub(2)));
        }
    }

    /// [`Lines::write`] for a name the caller supplied.
    fn write_named(lines: &mut Option<Lines>, out: &mut BytesMut, n: &str, v: &str) {
        let name = match lines {
            Some(l) => {
                let name = HeaderName::from_bytes(n.as_bytes());
                if n.is_empty()
                    || !n.bytes().all(super::scan::is_token)
                    || name == HeaderName::ContentLength
                {
                    l.plain = false;
                }
                name
            }
            None => HeaderName::Other,
        };
        Self::write(lines, out, name, n, v);
    }
}

/// Room for the whole message, so that writing it never grows the buffer (each growth is a
/// reallocation and a copy): a fixed allowance for the start line and the fixed headers plus
/// what the caller supplied.
fn capacity(via: &[String], headers: &[(String, String)], body: &Option<(String, Bytes)>) -> usize {
    let via: usize = via.iter().map(|v| v.len() + 7).sum();
    let headers: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
    let body = body.as_ref().map_or(0, |(ct, b)| ct.len() + b.len() + 40);
    512 + via + headers + body
}

/// `n` in decimal, written as `Display` writes it but without the formatting machinery
/// (~250 instructions a number; three numbers go in every request we build).
fn put_decimal(out: &mut BytesMut, n: u64) {
    let mut digits = [0u8; 20];
    out.put_slice(crate::proto::decimal::decimal_bytes(&mut digits, n));
}

/// A header whose value is a number followed by the pieces of `suffix` (Max-Forwards,
/// Content-Length, CSeq with its method), written straight into the buffer.
fn write_header_num(out: &mut BytesMut, name: &str, n: u64, suffix: &[&str]) {
    out.put_slice(name.as_bytes());
    out.put_slice(b": ");
    put_decimal(out, n);
    for p in suffix {
        out.put_slice(p.as_bytes());
    }
    out.put_slice(b"\r\n");
}

fn finish<'a>(
    out: BytesMut,
    headers: impl Iterator<Item = (&'a str, &'a str)>,
    body: Option<(&'a str, &'a Bytes)>,
    checked: bool,
) -> Result<Message, ParseFailure> {
    let out = write_tail(out, headers, body);
    if checked {
        let m = Message::parse_as(out, Transport::Stream)?;
        // Everything a received message is checked for before it is used, so that a
        // malformed caller value fails here instead of going out.
        m.check_deferred().map_err(|error| ParseFailure {
            error,
            salvage: None,
        })?;
        Ok(m)
    } else {
        Message::parse_structure(out)
    }
}

/// The extra headers, Content-Type and Content-Length, the blank line and the body.
fn write_tail<'a>(
    out: BytesMut,
    headers: impl Iterator<Item = (&'a str, &'a str)>,
    body: Option<(&'a str, &'a Bytes)>,
) -> Bytes {
    write_tail_lines(out, headers, body, &mut None).0
}

/// [`write_tail`], recording the lines in `lines` when given; also where the body starts.
fn write_tail_lines<'a>(
    mut out: BytesMut,
    headers: impl Iterator<Item = (&'a str, &'a str)>,
    body: Option<(&'a str, &'a Bytes)>,
    lines: &mut Option<Lines>,
) -> (Bytes, usize) {
    for (n, v) in headers {
        Lines::write_named(lines, &mut out, n, v);
    }
    let (ct, len) = match body {
        Some((ct, b)) => (Some(ct), b.len()),
        None => (None, 0),
    };
    if let Some(ct) = ct {
        Lines::write(lines, &mut out, HeaderName::ContentType, "Content-Type", ct);
    }
    let at = out.len();
    write_header_num(&mut out, "Content-Length", len as u64, &[]);
    Lines::written_at(lines, &out, HeaderName::ContentLength, "Content-Length", at);
    out.put_slice(b"\r\n");
    let body_start = out.len();
    if let Some((_, b)) = body {
        out.put_slice(b);
    }
    (out.freeze(), body_start)
}

/// A response builder's headers as the writers take them.
fn pairs(headers: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))
}

/// A response builder's body as the writers take it.
fn body_ref(body: &Option<(String, Bytes)>) -> Option<(&str, &Bytes)> {
    body.as_ref().map(|(ct, b)| (ct.as_str(), b))
}

/// A response to a request (RFC 3261 §8.2.6).
#[derive(Clone, Debug)]
pub struct ResponseBuilder {
    status: StatusCode,
    reason: String,
    via: Vec<String>,
    from: Option<String>,
    to: Option<String>,
    to_has_tag: bool,
    to_tag: Option<String>,
    call_id: Option<String>,
    cseq: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<(String, Bytes)>,
    checked: bool,
}

impl ResponseBuilder {
    /// Starts a response to `request`, copying every Via value (in order), From, To,
    /// Call-ID and CSeq (RFC 3261 §8.2.6.2). The reason defaults to the code's usual phrase.
    pub fn new(request: &Message, status: StatusCode) -> ResponseBuilder {
        let via = request
            .header_lines(HeaderName::Via)
            .flat_map(split_values)
            .map(unfold)
            .collect();
        let to = request.header(HeaderName::To).map(unfold);
        let to_has_tag = request.to().is_some_and(|t| t.tag().is_some());
        ResponseBuilder {
            status,
            reason: status.default_reason().to_owned(),
            via,
            from: request.header(HeaderName::From).map(unfold),
            to,
            to_has_tag,
            to_tag: None,
            call_id: request.header(HeaderName::CallId).map(unfold),
            cseq: request.header(HeaderName::CSeq).map(unfold),
            headers: Vec::new(),
            body: None,
            checked: true,
        }
    }

    /// Starts a response to a request that failed to parse, from its salvaged headers, with
    /// a `Warning: 399 <agent> "<what was wrong>"` header. The copied values may be the
    /// malformed ones, so the built message is only checked for its structure (start line,
    /// header lines, Content-Length), not for the grammar of those headers.
    pub fn from_salvage(s: &Salvage, status: StatusCode, agent: &str) -> ResponseBuilder {
        let mut b = ResponseBuilder {
            status,
            reason: status.default_reason().to_owned(),
            via: s.via.iter().map(|v| unfold(v)).collect(),
            from: s.from.as_deref().map(unfold),
            to: s.to.as_deref().map(unfold),
            to_has_tag: true,
            to_tag: None,
            call_id: s.call_id.as_deref().map(unfold),
            cseq: s.cseq.as_deref().map(unfold),
            headers: Vec::new(),
            body: None,
            checked: false,
        };
        b.headers.push((
            "Warning".into(),
            format!("399 {} \"{}\"", one_line(agent), s.warning),
        ));
        b
    }

    /// Sets the reason phrase.
    pub fn reason(mut self, reason: &str) -> Self {
        self.reason = one_line(reason).into_owned();
        self
    }

    /// Adds a To-tag unless the request's To already has one (RFC 3261 §8.2.6.2).
    pub fn to_tag(mut self, tag: &str) -> Self {
        self.to_tag = Some(one_line(tag).into_owned());
        self
    }

    /// Adds a header (in canonical form the caller supplies the full name).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((one_line(name).into_owned(), one_line(value).into_owned()));
        self
    }

    /// Sets the body and its Content-Type; Content-Length is computed.
    pub fn body(mut self, content_type: &str, body: Bytes) -> Self {
        self.body = Some((one_line(content_type).into_owned(), body));
        self
    }

    /// Writes and parses the response. Fails if a supplied or copied value is malformed.
    pub fn build(self) -> Result<Message, ParseFailure> {
        let checked = self.checked;
        let (out, headers, body) = self.write_head();
        finish(out, pairs(&headers), body_ref(&body), checked)
    }

    /// Writes the response without parsing it back, for a sender that needs only its
    /// bytes. Every value still stands on one line and Content-Length is computed, so the
    /// message is well framed; what [`build`](Self::build) adds is the grammar check of the
    /// values, which a response copying them from a request that was itself checked (as
    /// every request the endpoint answers was) and adding only the sender's own headers
    /// does not need.
    pub fn write(self) -> Bytes {
        let (out, headers, body) = self.write_head();
        write_tail(out, pairs(&headers), body_ref(&body))
    }

    #[allow(clippy::type_complexity)]
    fn write_head(self) -> (BytesMut, Vec<(String, String)>, Option<(String, Bytes)>) {
        let mut out = BytesMut::with_capacity(capacity(&self.via, &self.headers, &self.body));
        out.put_slice(b"SIP/2.0 ");
        put_decimal(&mut out, u64::from(self.status.as_u16()));
        out.put_u8(b' ');
        out.put_slice(self.reason.as_bytes());
        out.put_slice(b"\r\n");
        for v in &self.via {
            write_header(&mut out, "Via", v);
        }
        if let Some(f) = &self.from {
            write_header(&mut out, "From", f);
        }
        if let Some(t) = &self.to {
            match (&self.to_tag, self.to_has_tag) {
                (Some(tag), false) => {
                    out.put_slice(b"To: ");
                    out.put_slice(t.as_bytes());
                    out.put_slice(b";tag=");
                    out.put_slice(tag.as_bytes());
                    out.put_slice(b"\r\n");
                }
                _ => write_header(&mut out, "To", t),
            }
        }
        if let Some(c) = &self.call_id {
            write_header(&mut out, "Call-ID", c);
        }
        if let Some(c) = &self.cseq {
            write_header(&mut out, "CSeq", c);
        }
        (out, self.headers, self.body)
    }
}

/// Where one value lies in a [`RequestBuilder`]'s text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Val {
    s: u32,
    e: u32,
}

/// What a line of [`RequestBuilder::lines`] is (each kind is written at its own place).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Via,
    Route,
    /// A caller's header: name and value.
    Header,
}

/// A new request (what the runtime sends: INVITE, ACK, BYE, CANCEL, MESSAGE …).
///
/// Every value a setter is given goes, already on one line, into one text, and the
/// builder keeps where each lies: a page-mode copy's seven or eight values were as many
/// allocations (and frees) before, ~2.5 k instructions of each copy.
#[derive(Clone, Debug)]
pub struct RequestBuilder {
    method: Method,
    text: String,
    uri: Val,
    /// Via, Route and caller header lines in the order given (name `Val::default()` for
    /// Via and Route).
    lines: Vec<(Kind, Val, Val)>,
    from: Val,
    to: Val,
    call_id: Val,
    cseq: u32,
    max_forwards: u8,
    contact: Option<Val>,
    body: Option<(Val, Bytes)>,
}

impl RequestBuilder {
    /// Starts a request for `method` to `request_uri` (Max-Forwards 70, CSeq 1).
    pub fn new(method: Method, request_uri: &str) -> RequestBuilder {
        // Room for the usual values (a Via, From, To, Call-ID, a header or two) besides
        // the Request-URI, so that the text rarely grows.
        let mut b = RequestBuilder {
            method,
            text: String::with_capacity(request_uri.len() + 320),
            uri: Val::default(),
            lines: Vec::new(),
            from: Val::default(),
            to: Val::default(),
            call_id: Val::default(),
            cseq: 1,
            max_forwards: 70,
            contact: None,
            body: None,
        };
        b.uri = b.put_one_line(request_uri);
        b
    }

    /// The text of `v`.
    fn get(&self, v: Val) -> &str {
        self.text.get(v.s as usize..v.e as usize).unwrap_or("")
    }

    /// Where the next value starts. A builder's text beyond 4 GiB cannot be written as a
    /// message the parser takes; it is cut to an empty value rather than wrapped.
    fn mark(&self) -> u32 {
        u32::try_from(self.text.len()).unwrap_or(u32::MAX)
    }

    /// The value written since `s`.
    fn since(&self, s: u32) -> Val {
        let e = self.mark();
        Val { s: s.min(e), e }
    }

    /// Appends `v` as [`one_line`] gives it.
    fn push_one_line(&mut self, v: &str) {
        match one_line(v) {
            Cow::Borrowed(v) => self.text.push_str(v),
            Cow::Owned(v) => self.text.push_str(&v),
        }
    }

    /// `v` as [`one_line`] gives it, appended.
    fn put_one_line(&mut self, v: &str) -> Val {
        let s = self.mark();
        self.push_one_line(v);
        self.since(s)
    }

    /// `v` as [`unfold`] gives it, appended.
    fn put_unfolded(&mut self, v: &str) -> Val {
        let s = self.mark();
        if has_line_end(v) {
            self.text.push_str(&unfold(v));
        } else {
            self.text.push_str(v);
        }
        self.since(s)
    }

    /// `addr;tag=tag` as [`with_tag`] gives it, appended.
    fn put_with_tag(&mut self, addr: &str, tag: &str) -> Val {
        let s = self.mark();
        self.push_one_line(addr);
        self.text.push_str(";tag=");
        self.push_one_line(tag);
        self.since(s)
    }

    /// Adds our Via: `SIP/2.0/<transport> <sent_by>;branch=<branch>`. The branch must be
    /// unique per transaction and start with the `z9hG4bK` cookie (RFC 3261 §8.1.1.7); the
    /// caller supplies it because this module has no randomness.
    pub fn via(mut self, transport: &str, sent_by: &str, branch: &str) -> Self {
        let s = self.mark();
        self.text.push_str("SIP/2.0/");
        self.push_one_line(transport);
        self.text.push(' ');
        self.push_one_line(sent_by);
        self.text.push_str(";branch=");
        self.push_one_line(branch);
        let v = self.since(s);
        self.lines.push((Kind::Via, Val::default(), v));
        self
    }

    /// Adds a Via value as given (CANCEL and non-2xx ACK copy the INVITE's top Via).
    pub fn via_raw(mut self, value: &str) -> Self {
        let v = self.put_unfolded(value);
        self.lines.push((Kind::Via, Val::default(), v));
        self
    }

    /// From: a name-addr or URI (`"Alice" <sip:alice@example.com>`) and our tag.
    pub fn from(mut self, addr: &str, tag: &str) -> Self {
        self.from = self.put_with_tag(addr, tag);
        self
    }

    /// From, as a complete value (already carrying its tag).
    pub fn from_raw(mut self, value: &str) -> Self {
        self.from = self.put_unfolded(value);
        self
    }

    /// To: a name-addr or URI, with the remote tag inside a dialog.
    pub fn to(mut self, addr: &str, tag: Option<&str>) -> Self {
        self.to = match tag {
            Some(t) => self.put_with_tag(addr, t),
            None => self.put_one_line(addr),
        };
        self
    }

    /// To, as a complete value.
    pub fn to_raw(mut self, value: &str) -> Self {
        self.to = self.put_unfolded(value);
        self
    }

    /// Call-ID.
    pub fn call_id(mut self, id: &str) -> Self {
        self.call_id = self.put_one_line(id);
        self
    }

    /// CSeq number (the method is the request's).
    pub fn cseq(mut self, seq: u32) -> Self {
        self.cseq = seq;
        self
    }

    /// Max-Forwards (default 70).
    pub fn max_forwards(mut self, n: u8) -> Self {
        self.max_forwards = n;
        self
    }

    /// Contact value (`<sip:conf@host;transport=tcp>;isfocus` …).
    pub fn contact(mut self, value: &str) -> Self {
        self.contact = Some(self.put_one_line(value));
        self
    }

    /// Adds a Route value (route set, in order).
    pub fn route(mut self, value: &str) -> Self {
        let v = self.put_unfolded(value);
        self.lines.push((Kind::Route, Val::default(), v));
        self
    }

    /// Adds any other header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let n = self.put_one_line(name);
        let v = self.put_one_line(value);
        self.lines.push((Kind::Header, n, v));
        self
    }

    /// Sets the body and its Content-Type.
    pub fn body(mut self, content_type: &str, body: Bytes) -> Self {
        self.body = Some((self.put_one_line(content_type), body));
        self
    }

    /// CANCEL for a pending INVITE (RFC 3261 §9.1): same Request-URI, Call-ID, From, To,
    /// CSeq number and top Via; Route copied.
    pub fn cancel_for(invite: &Message) -> RequestBuilder {
        Self::same_transaction(invite, Method::Cancel)
    }

    /// ACK for a non-2xx final response to `invite` (RFC 3261 §17.1.1.3): like CANCEL, but
    /// To comes from the response (it carries the tag).
    pub fn ack_for_failure(invite: &Message, response: &Message) -> RequestBuilder {
        let mut b = Self::same_transaction(invite, Method::Ack);
        if let Some(t) = response.header(HeaderName::To) {
            b.to = b.put_unfolded(t);
        }
        b
    }

    fn same_transaction(invite: &Message, method: Method) -> RequestBuilder {
        let mut b = RequestBuilder::new(method, invite.request_uri_str().unwrap_or(""));
        if let Some(v) = invite
            .header(HeaderName::Via)
            .and_then(|v| split_values(v).next())
        {
            let v = b.put_unfolded(v);
            b.lines.push((Kind::Via, Val::default(), v));
        }
        b.from = b.put_unfolded(invite.header(HeaderName::From).unwrap_or(""));
        b.to = b.put_unfolded(invite.header(HeaderName::To).unwrap_or(""));
        b.call_id = b.put_unfolded(invite.call_id().unwrap_or(""));
        b.cseq = invite.cseq().map_or(1, |c| c.seq);
        b.max_forwards = 70;
        for r in invite
            .header_lines(HeaderName::Route)
            .flat_map(split_values)
        {
            let v = b.put_unfolded(r);
            b.lines.push((Kind::Route, Val::default(), v));
        }
        b
    }

    /// The caller's headers, as (name, value).
    fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.lines
            .iter()
            .filter(|(k, _, _)| *k == Kind::Header)
            .map(|&(_, n, v)| (self.get(n), self.get(v)))
    }

    /// The body with its Content-Type.
    fn body_ref(&self) -> Option<(&str, &Bytes)> {
        self.body.as_ref().map(|(ct, b)| (self.get(*ct), b))
    }

    /// Writes and parses the request. Fails if a value is malformed (for example a
    /// Request-URI that does not parse).
    pub fn build(self) -> Result<Message, ParseFailure> {
        let out = self.write_head(&mut None);
        finish(out, self.headers(), self.body_ref(), true)
    }

    /// Writes the request and parses back only its structure (start line, header lines,
    /// framing), not the grammar of its values, for a request whose every value comes from
    /// a dialog built from checked messages (a BYE in that dialog): the transaction layer
    /// still gets a [`Message`], whose typed accessors parse what they read.
    pub fn build_in_dialog(self) -> Result<Message, ParseFailure> {
        self.written()
    }

    /// Writes a request whose header values the caller made from checked parts (an
    /// invitee INVITE: URIs taken from a checked request or the focus, our own Via,
    /// Contact and body) and parses back only its structure, as
    /// [`build_in_dialog`](Self::build_in_dialog) does. The Request-URI alone is checked
    /// with the URI grammar first, because it may come from an application's directory
    /// rather than from a checked message. The [`Message`] records none of its values, so
    /// its typed accessors parse what they read; the unit test below shows they read the
    /// same as after [`build`](Self::build).
    pub fn build_own(self) -> Result<Message, ParseFailure> {
        if let Err(error) = super::uri::Uri::parse(self.get(self.uri)) {
            return Err(ParseFailure {
                error,
                salvage: None,
            });
        }
        self.written()
    }

    /// The request as [`Message::parse_structure`] reads what it writes, made from where
    /// each line was written rather than by parsing it back (a third of a page-mode copy's
    /// cost was that parse); parsed back when a caller's header name is one the parser could
    /// read otherwise.
    fn written(self) -> Result<Message, ParseFailure> {
        let n = self.lines.len() + 8;
        let cseq = Some(self.cseq);
        let request_line = (self.method.as_str().len(), self.get(self.uri).len());
        let mut lines = Some(Lines::new(n));
        let out = self.write_head(&mut lines);
        let (bytes, body_start) =
            write_tail_lines(out, self.headers(), self.body_ref(), &mut lines);
        match lines {
            Some(l) if l.plain => {
                match Message::from_written(bytes.clone(), &l.lines, body_start, request_line, cseq)
                {
                    Some(m) => Ok(m),
                    None => Message::parse_structure(bytes),
                }
            }
            _ => Message::parse_structure(bytes),
        }
    }

    /// Writes the request without parsing it back, for a sender that needs only its bytes
    /// (an ACK for a 2xx, sent outside any transaction) and whose values all come from a
    /// dialog built from checked messages. Values stand on one line and Content-Length is
    /// computed; the grammar check of [`build`](Self::build) is what is skipped.
    pub fn write(self) -> Bytes {
        let out = self.write_head(&mut None);
        write_tail(out, self.headers(), self.body_ref())
    }

    /// Writes the start line and the headers before the caller's, recording the lines in
    /// `lines` when given.
    fn write_head(&self, lines: &mut Option<Lines>) -> BytesMut {
        let m = self.method.as_str();
        // Sized from the request's own values rather than with a fixed allowance: the
        // buffer becomes the message's `Bytes`, which a transaction keeps (with any slack)
        // for as long as it may retransmit. Every value is in `text` (a value set twice
        // counts twice: a few bytes of slack at most); each line adds its name and 4. The
        // total is what the allowance was when each value was a string of its own.
        let lines_len: usize = self
            .lines
            .iter()
            .map(|(k, _, _)| match k {
                Kind::Via => 7,
                Kind::Route => 9,
                Kind::Header => 4,
            })
            .sum();
        // The Content-Type value is in `text` already; its line adds its name and 4.
        let body_len = self.body.as_ref().map_or(0, |(_, b)| 16 + b.len());
        let size = self.text.len()
            + lines_len
            + body_len
            + m.len()
            + 11 // the Request-Line's spaces, version and CRLF
            + 21 // Max-Forwards
            + 8 + 6 + 11 // From, To, Call-ID
            + 19 + m.len() // CSeq
            + self.contact.map_or(0, |_| 11)
            + 24 // Content-Length, the blank line
            + 32;
        let mut out = BytesMut::with_capacity(size);
        out.put_slice(m.as_bytes());
        out.put_u8(b' ');
        out.put_slice(self.get(self.uri).as_bytes());
        out.put_slice(b" SIP/2.0\r\n");
        for &(_, _, v) in self.lines.iter().filter(|(k, _, _)| *k == Kind::Via) {
            Lines::write(lines, &mut out, HeaderName::Via, "Via", self.get(v));
        }
        let at = out.len();
        write_header_num(&mut out, "Max-Forwards", u64::from(self.max_forwards), &[]);
        Lines::written_at(lines, &out, HeaderName::MaxForwards, "Max-Forwards", at);
        for &(_, _, r) in self.lines.iter().filter(|(k, _, _)| *k == Kind::Route) {
            Lines::write(lines, &mut out, HeaderName::Route, "Route", self.get(r));
        }
        Lines::write(
            lines,
            &mut out,
            HeaderName::From,
            "From",
            self.get(self.from),
        );
        Lines::write(lines, &mut out, HeaderName::To, "To", self.get(self.to));
        Lines::write(
            lines,
            &mut out,
            HeaderName::CallId,
            "Call-ID",
            self.get(self.call_id),
        );
        let at = out.len();
        write_header_num(&mut out, "CSeq", u64::from(self.cseq), &[" ", m]);
        Lines::written_at(lines, &out, HeaderName::CSeq, "CSeq", at);
        if let Some(c) = self.contact {
            Lines::write(lines, &mut out, HeaderName::Contact, "Contact", self.get(c));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An INVITE as the endpoint sends to an invitee: multipart body (SDP offer and
    /// recipient-list history), Route, Referred-By, focus Contact.
    fn invitee_invite(uri: &str) -> RequestBuilder {
        let sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
                   m=message 2855 TCP/MSRP *\r\na=path:msrp://192.0.2.1:2855/s1;tcp\r\n\
                   a=accept-types:message/cpim text/plain\r\na=setup:actpass\r\n\
                   a=connection:new\r\na=sendonly\r\n";
        let body = format!(
            "--b1\r\nContent-Type: application/sdp\r\n\r\n{sdp}\r\n--b1\r\n\
             Content-Type: application/resource-lists+xml\r\n\
             Content-Disposition: recipient-list-history;handling=optional\r\n\r\n\
             <resource-lists/>\r\n--b1--\r\n"
        );
        RequestBuilder::new(Method::Invite, uri)
            .via_raw("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc;rport")
            .from("<sip:conf-1@192.0.2.1:5060>", "t1")
            .to(&format!("<{uri}>"), None)
            .call_id("c1@192.0.2.1")
            .cseq(1)
            .max_forwards(70)
            .contact("<sip:conf-1@192.0.2.1:5060>;isfocus")
            .header("Referred-By", "<sip:alice@example.com>")
            .header("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS")
            .route("<sip:192.0.2.9:5060;lr>")
            .body(
                "multipart/mixed;boundary=b1",
                Bytes::from(body.into_bytes()),
            )
    }

    /// Every setter's value lands where it did when each was a `String` of its own (the
    /// builder now keeps them in one text): lines in their fixed order whatever the order
    /// of the calls, CR/LF made spaces (`one_line`), folds collapsed (`unfold`), a value set
    /// twice written once with its last value.
    #[test]
    fn request_bytes_are_as_written() {
        let b = RequestBuilder::new(Method::Message, "sip:bob@example.com")
            .via("UDP", "192.0.2.1:5060", "z9hG4bKa")
            .route("<sip:p1@192.0.2.9;lr>")
            .via_raw("SIP/2.0/TCP 192.0.2.2;branch=z9hG4bKb,\r\n SIP/2.0/UDP 192.0.2.3")
            .from("<sip:alice@example.com>", "t\n1")
            .to("<sip:carol@example.com>", None)
            .to("<sip:bob@example.com>", Some("t2"))
            .call_id("c1@192.0.2.1")
            .cseq(7)
            .max_forwards(69)
            .header("Subject", "hi\r\nthere")
            .contact("<sip:a@192.0.2.1>")
            .route("<sip:p2@192.0.2.9;lr>")
            .header("X-A", "1")
            .body("text/plain", Bytes::from_static(b"hello"));
        let want = "MESSAGE sip:bob@example.com SIP/2.0\r\n\
                    Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKa\r\n\
                    Via: SIP/2.0/TCP 192.0.2.2;branch=z9hG4bKb, SIP/2.0/UDP 192.0.2.3\r\n\
                    Max-Forwards: 69\r\n\
                    Route: <sip:p1@192.0.2.9;lr>\r\n\
                    Route: <sip:p2@192.0.2.9;lr>\r\n\
                    From: <sip:alice@example.com>;tag=t 1\r\n\
                    To: <sip:bob@example.com>;tag=t2\r\n\
                    Call-ID: c1@192.0.2.1\r\n\
                    CSeq: 7 MESSAGE\r\n\
                    Contact: <sip:a@192.0.2.1>\r\n\
                    Subject: hi  there\r\n\
                    X-A: 1\r\n\
                    Content-Type: text/plain\r\n\
                    Content-Length: 5\r\n\
                    \r\n\
                    hello";
        assert_eq!(std::str::from_utf8(&b.clone().write()), Ok(want));
        let built = b.build_in_dialog().expect("a request");
        assert_eq!(std::str::from_utf8(built.as_bytes()), Ok(want));
        // A CANCEL copies the INVITE's Request-URI, top Via, From, To, Call-ID, CSeq
        // number and Route set.
        let invite = RequestBuilder::new(Method::Invite, "sip:bob@example.com")
            .via("UDP", "192.0.2.1:5060", "z9hG4bKi")
            .via("UDP", "192.0.2.7", "z9hG4bKj")
            .route("<sip:p1@192.0.2.9;lr>")
            .from("<sip:alice@example.com>", "f1")
            .to("<sip:bob@example.com>", None)
            .call_id("c2@192.0.2.1")
            .cseq(4)
            .build()
            .expect("an INVITE");
        let cancel = RequestBuilder::cancel_for(&invite).write();
        assert_eq!(
            std::str::from_utf8(&cancel),
            Ok("CANCEL sip:bob@example.com SIP/2.0\r\n\
                Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKi\r\n\
                Max-Forwards: 70\r\n\
                Route: <sip:p1@192.0.2.9;lr>\r\n\
                From: <sip:alice@example.com>;tag=f1\r\n\
                To: <sip:bob@example.com>\r\n\
                Call-ID: c2@192.0.2.1\r\n\
                CSeq: 4 CANCEL\r\n\
                Content-Length: 0\r\n\r\n")
        );
    }

    #[test]
    fn own_build_reads_like_the_checked_build() {
        for uri in [
            "sip:bob@example.com",
            "sips:carol@[2001:db8::1]:5061;transport=tcp",
            "sip:%61lice@example.com;user=phone?subject=x",
        ] {
            let full = invitee_invite(uri).build().expect("checked build");
            let own = invitee_invite(uri).build_own().expect("own build");
            assert_eq!(full.as_bytes(), own.as_bytes());
            assert_eq!(full.method(), own.method());
            assert_eq!(full.request_uri_str(), own.request_uri_str());
            assert_eq!(full.request_uri(), own.request_uri());
            assert_eq!(full.vias(), own.vias());
            assert_eq!(full.top_via(), own.top_via());
            assert_eq!(
                full.top_via().and_then(|v| v.branch()),
                own.top_via().and_then(|v| v.branch())
            );
            assert_eq!(full.from(), own.from());
            assert_eq!(full.to(), own.to());
            assert_eq!(full.from().and_then(|a| a.tag()), Some("t1"));
            assert_eq!(own.from().and_then(|a| a.tag()), Some("t1"));
            assert_eq!(full.call_id(), own.call_id());
            assert_eq!(full.cseq(), own.cseq());
            assert_eq!(full.max_forwards(), own.max_forwards());
            assert_eq!(full.routes(), own.routes());
            assert_eq!(full.content_type(), own.content_type());
            assert_eq!(full.content_length(), own.content_length());
            assert_eq!(full.allow(), own.allow());
            assert_eq!(
                full.header(HeaderName::Contact),
                own.header(HeaderName::Contact)
            );
            assert_eq!(full.body(), own.body());
            assert_eq!(
                full.headers().map(|h| h.value).collect::<Vec<_>>(),
                own.headers().map(|h| h.value).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn own_build_refuses_a_request_uri_the_checked_build_refuses() {
        for uri in [
            "bob",
            "sip:",
            "sip:bob@exa mple.com",
            "sip:bob@example.com>",
        ] {
            assert!(invitee_invite(uri).build().is_err(), "{uri}");
            assert!(invitee_invite(uri).build_own().is_err(), "{uri}");
        }
    }

    /// `build_own` and `build_in_dialog` make their message from where the lines were
    /// written: it must be the very message the structure parse makes of the same bytes
    /// (spans, names, start line, body), for every shape a caller can give, including names
    /// and values the parse reads otherwise than as written (then they parse back).
    /// Numbers are written as `Display` writes them.
    #[test]
    fn decimals_are_written_as_display_writes_them() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            255,
            65_535,
            1 << 31,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = BytesMut::new();
            put_decimal(&mut out, n);
            assert_eq!(&out[..], n.to_string().as_bytes());
        }
    }

    #[test]
    fn written_message_is_the_structure_parse_of_its_bytes() {
        let plain = || {
            RequestBuilder::new(Method::Message, "sip:bob@example.com")
                .via("UDP", "192.0.2.1:5060", "z9hG4bKx")
                .from("<sip:alice@example.com>", "a1")
                .to("<sip:bob@example.com>", None)
                .call_id("c@h")
        };
        let cases: Vec<(&str, RequestBuilder)> = vec![
            ("invitee INVITE", invitee_invite("sip:bob@example.com")),
            ("bodiless", plain()),
            (
                "text body",
                plain().body("text/plain", Bytes::from_static(b"hi")),
            ),
            ("empty body", plain().body("text/plain", Bytes::new())),
            (
                "values with spaces around",
                plain()
                    .header("Subject", "  spaced  ")
                    .header("X-Empty", "")
                    .header("X-Tab", "\ta\t"),
            ),
            (
                "folded and multi-line values",
                plain()
                    .via_raw("SIP/2.0/UDP a;branch=z9hG4bK1,\r\n SIP/2.0/UDP b;branch=z9hG4bK2")
                    .route("<sip:p1;lr>,\r\n\t<sip:p2;lr>")
                    .header("Subject", "one\r\ntwo"),
            ),
            (
                "compact and odd names",
                plain().header("v", "x").header("X-A.b!%", "1"),
            ),
            ("name with a space", plain().header("X Bad", "1")),
            ("name with a colon", plain().header("X:Bad", "1")),
            ("empty name", plain().header("", "1")),
            (
                "second Content-Length",
                plain().header("Content-Length", "0"),
            ),
            ("compact Content-Length", plain().header("l", "0")),
            (
                "contact and route",
                plain().contact("<sip:f@h>;isfocus").route("<sip:p;lr>"),
            ),
            (
                "odd method",
                RequestBuilder::new(Method::from_token("FOO"), "sip:x@y"),
            ),
            // The parse refuses CSeq numbers from 2**31: nothing may be recorded for them.
            ("CSeq 0", plain().cseq(0)),
            ("largest CSeq", plain().cseq((1 << 31) - 1)),
            ("CSeq past 2**31", plain().cseq(1 << 31)),
            ("largest u32 CSeq", plain().cseq(u32::MAX)),
            (
                "a caller's CSeq after ours",
                plain().header("CSeq", "7 BYE"),
            ),
            (
                "Via not in the one-pass form",
                RequestBuilder::new(Method::Message, "sip:bob@example.com")
                    .via("UDP", "[2001:db8::1]:5060", "z9hG4bKx")
                    .call_id("c@h"),
            ),
            (
                "Via with a bad rport",
                RequestBuilder::new(Method::Message, "sip:bob@example.com")
                    .via_raw("SIP/2.0/UDP h;branch=z9hG4bKx;rport=99999")
                    .call_id("c@h"),
            ),
            (
                "copy's Via",
                RequestBuilder::new(Method::Message, "sip:bob@example.com")
                    .via_raw("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx;rport")
                    .call_id("c@h")
                    .cseq(4_000_000),
            ),
            (
                "extension method",
                RequestBuilder::new(Method::from_token("X-LONGER.METHOD"), "sip:x@y").cseq(12),
            ),
        ];
        for (what, b) in cases {
            let reparsed = Message::parse_structure(b.clone().write());
            let own = b.clone().build_own();
            let in_dialog = b.build_in_dialog();
            match reparsed {
                Ok(m) => {
                    assert_eq!(own.as_ref().ok(), Some(&m), "{what}: build_own");
                    assert_eq!(in_dialog.as_ref().ok(), Some(&m), "{what}: build_in_dialog");
                    // What the builder records reads as the parse of the bytes.
                    for built in [&own, &in_dialog] {
                        let built = built.as_ref().expect("built");
                        assert_eq!(built.cseq(), m.cseq(), "{what}: CSeq");
                        // The general parse of the first Via line, not `m.top_via()`,
                        // which may read it with the same one-pass reader the builder used.
                        let via = m
                            .header(HeaderName::Via)
                            .and_then(|v| super::super::header::Via::parse_list(v).ok())
                            .and_then(|l| l.into_iter().next());
                        assert_eq!(built.top_via(), via, "{what}: Via");
                        assert_eq!(built.call_id(), m.call_id(), "{what}: Call-ID");
                    }
                }
                Err(e) => {
                    assert_eq!(own.err().map(|f| f.error), Some(e.error.clone()), "{what}");
                    assert_eq!(in_dialog.err().map(|f| f.error), Some(e.error), "{what}");
                }
            }
        }
    }
}

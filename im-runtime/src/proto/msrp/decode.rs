//! The incremental MSRP decoder: push stream bytes in, pull whole frames out.

use bytes::{Buf, Bytes, BytesMut};
use memchr::memmem;

use super::encode::response_to;
use super::frame::{
    Body, ContinuationFlag, FailureReport, Frame, FrameKind, Header, Method, StatusCode,
    TransactionId, ValueError, check_media_type, parse_path, three_digits,
};
use super::uri::MsrpUri;

/// Size limits the decoder enforces. Exceeding one gives a typed error, never unbounded
/// buffering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderLimits {
    /// Largest start line plus header block, in bytes.
    pub max_header_bytes: usize,
    /// Largest body of one frame (one chunk), in bytes.
    pub max_body_bytes: usize,
}

impl Default for DecoderLimits {
    fn default() -> Self {
        DecoderLimits {
            max_header_bytes: 16 * 1024,
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// What went wrong, without where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The bytes at a frame start are not `MSRP <tid> <METHOD>` or `MSRP <tid> <code>`.
    #[error("bad start line: {0}")]
    StartLine(&'static str),
    /// Start line plus headers exceed [`DecoderLimits::max_header_bytes`].
    #[error("header block larger than {limit} bytes")]
    HeadersTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// The body exceeds [`DecoderLimits::max_body_bytes`]; the rest of the frame is skipped.
    #[error("body larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// A header line has no `:` or a name that is not a token.
    #[error("malformed header line")]
    HeaderLine,
    /// The header block is not valid UTF-8.
    #[error("header block is not UTF-8")]
    NotUtf8,
    /// A typed header's value is malformed.
    #[error("invalid {header} header: {error}")]
    HeaderValue {
        /// The header name.
        header: &'static str,
        /// What is wrong with the value.
        error: ValueError,
    },
    /// A typed header appears twice.
    #[error("duplicate {0} header")]
    DuplicateHeader(&'static str),
    /// A header the frame cannot do without is absent (To-Path, From-Path on every frame;
    /// Message-ID on SEND and REPORT; Status on REPORT; Content-Type when there is a body).
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A line in the header block starts with `-------` but is not this frame's end-line.
    #[error("end-line does not match the transaction id or has no valid flag")]
    EndLine,
    /// A response ended with `+` or `#`.
    #[error("response with continuation flag other than `$`")]
    ResponseFlag,
}

/// What is known of the frame an error happened in, enough to answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorContext {
    /// The frame's transaction id.
    pub transaction_id: TransactionId,
    /// Request method or response code.
    pub kind: FrameKind,
    /// To-Path, empty if it was missing or malformed.
    pub to_path: Vec<MsrpUri>,
    /// From-Path, empty if it was missing or malformed.
    pub from_path: Vec<MsrpUri>,
    /// Failure-Report, if it was present and parsed before the fault.
    pub failure_report: Option<FailureReport>,
}

/// A decoding fault, where it was found (offset from the first byte ever pushed) and what is
/// known of the frame it happened in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at byte {offset}")]
pub struct DecodeError {
    /// What went wrong.
    pub kind: DecodeErrorKind,
    /// Stream offset of the faulty line or byte.
    pub offset: u64,
    /// The frame's transaction id, kind and paths when they were read before the fault.
    pub context: Option<Box<ErrorContext>>,
}

impl DecodeError {
    /// The status a request with this fault is answered with: 413 for an oversized body,
    /// 400 for everything else (RFC 4975 §10).
    pub fn status_code(&self) -> StatusCode {
        match self.kind {
            DecodeErrorKind::BodyTooLarge { .. } => StatusCode::STOP_SENDING,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The response to send for this fault, when there is someone to send it to: the fault
    /// was in a request other than REPORT whose paths were read, and its Failure-Report is
    /// not `no` (RFC 4975 §7.1.2: no transaction response at all then).
    pub fn response(&self) -> Option<Frame> {
        let ctx = self.context.as_deref()?;
        if ctx.failure_report == Some(FailureReport::No) {
            return None;
        }
        let FrameKind::Request(method) = &ctx.kind else {
            return None;
        };
        let req = Frame::request(
            ctx.transaction_id.clone(),
            method.clone(),
            ctx.to_path.clone(),
            ctx.from_path.clone(),
        );
        response_to(&req, self.status_code(), None)
    }
}

/// A parsed start line and header block waiting for its body.
#[derive(Debug)]
struct PendingBody {
    frame: Frame,
    content_type: String,
    /// Where the body starts in `buf`.
    body_start: usize,
}

#[derive(Debug)]
enum State {
    /// Waiting for a complete header block. `scanned` is where the next unexamined line
    /// starts (0 before the start line is complete).
    Head {
        scanned: usize,
        start: Option<(TransactionId, FrameKind)>,
    },
    /// Waiting for the end-line after a body.
    Body(Box<PendingBody>),
    /// After a fault inside a frame with a known id: dropping bytes up to its end-line.
    Skip,
    /// After garbage with no frame id: dropping bytes up to a line starting `MSRP `.
    Resync,
}

/// An incremental MSRP decoder for one connection.
///
/// Push bytes as they arrive with [`handle_bytes`](Decoder::handle_bytes) (cut anywhere), then
/// call [`poll_frame`](Decoder::poll_frame) until it returns `None`. Each `Some` is a frame or
/// an error; after an error the decoder skips to the end of the faulty frame (when its
/// transaction id is known) or to the next line starting `MSRP `, and carries on. The body
/// of a frame ends at the first `CRLF -------<tid>` followed by a flag and CRLF, as
/// RFC 4975 §7.1 requires senders to ensure.
#[derive(Debug)]
pub struct Decoder {
    limits: DecoderLimits,
    buf: BytesMut,
    /// Stream offset of `buf[0]`.
    consumed: u64,
    state: State,
    /// `CRLF -------<tid>` of the frame being read or skipped.
    end_pattern: Vec<u8>,
    /// In `Body`/`Skip`: no end-line starts before this index of `buf`.
    scan_from: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DecoderLimits::default())
    }
}

const SEVEN_DASHES: &[u8] = b"-------";
/// A buffer that passed on more than this many bytes at once is not kept at that size
/// ([`Decoder::release_after`]); typical chunks and headers stay under it.
const RELEASE_ABOVE: usize = 16 * 1024;
/// The longest end-line without its CRLF: seven dashes, a 64-byte transaction id, the flag.
const MAX_END_LINE: usize = 7 + 64 + 1;

impl Decoder {
    /// A decoder with the given limits.
    pub fn new(limits: DecoderLimits) -> Self {
        Decoder {
            limits,
            buf: BytesMut::new(),
            consumed: 0,
            state: State::Head {
                scanned: 0,
                start: None,
            },
            end_pattern: Vec::new(),
            scan_from: 0,
        }
    }

    /// Appends bytes received from the peer.
    pub fn handle_bytes(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held that are not yet part of a returned frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether the decoder sits between frames with nothing buffered, i.e. the peer may close
    /// the connection here without cutting a frame.
    pub fn is_idle(&self) -> bool {
        self.buf.is_empty() && matches!(self.state, State::Head { start: None, .. })
    }

    /// The next complete frame or fault, `None` when more bytes are needed.
    pub fn poll_frame(&mut self) -> Option<Result<Frame, DecodeError>> {
        loop {
            match &mut self.state {
                State::Head { .. } => return self.poll_head(),
                State::Body(_) => return self.poll_body(),
                State::Skip => {
                    if !self.poll_skip() {
                        return None;
                    }
                }
                State::Resync => {
                    if !self.poll_resync() {
                        return None;
                    }
                }
            }
        }
    }

    fn advance(&mut self, n: usize) {
        self.buf.advance(n);
        self.consumed += n as u64;
        self.scan_from = self.scan_from.saturating_sub(n);
        self.release_after(n);
    }

    /// After `n` bytes left the buffer: when they were many and little is left, the rest
    /// moves to a buffer of its own size. Otherwise the connection would keep the room of
    /// its largest message for its whole life: the buffer still points into that
    /// allocation, and takes all of it back (`BytesMut::reserve`) once the frame handed
    /// out is dropped.
    fn release_after(&mut self, n: usize) {
        if n > RELEASE_ABOVE && self.buf.len() <= RELEASE_ABOVE / 4 {
            self.buf = BytesMut::from(&self.buf[..]);
        }
    }

    /// Bytes of room the decoder's buffer holds (its capacity), for memory accounting.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    fn set_end_pattern(&mut self, tid: &TransactionId) {
        self.end_pattern.clear();
        self.end_pattern.extend_from_slice(b"\r\n");
        self.end_pattern.extend_from_slice(SEVEN_DASHES);
        self.end_pattern.extend_from_slice(tid.as_str().as_bytes());
    }

    fn reset_head(&mut self) {
        self.state = State::Head {
            scanned: 0,
            start: None,
        };
    }

    /// Fault without a usable transaction id: resynchronise on the next `MSRP ` line.
    fn garbage(&mut self, kind: DecodeErrorKind, at: usize) -> Option<Result<Frame, DecodeError>> {
        let offset = self.consumed + at as u64;
        self.state = State::Resync;
        Some(Err(DecodeError {
            kind,
            offset,
            context: None,
        }))
    }

    /// Fault inside a frame whose id is known: skip to its end-line. The search starts at
    /// `buf[0]` so that an end-line directly after a header line is found too.
    fn frame_fault(
        &mut self,
        kind: DecodeErrorKind,
        at: usize,
        context: ErrorContext,
    ) -> Option<Result<Frame, DecodeError>> {
        let offset = self.consumed + at as u64;
        self.set_end_pattern(&context.transaction_id);
        self.scan_from = 0;
        self.state = State::Skip;
        Some(Err(DecodeError {
            kind,
            offset,
            context: Some(Box::new(context)),
        }))
    }

    fn poll_head(&mut self) -> Option<Result<Frame, DecodeError>> {
        let State::Head { start, .. } = &self.state else {
            return None;
        };
        if start.is_none() {
            // Tolerate blank lines between frames (keep-alive CRLFs).
            let blank = self.buf.iter().take_while(|&&b| b == b'\r' || b == b'\n');
            let n = blank.count();
            if n > 0 {
                self.advance(n);
            }
            let prefix_len = self.buf.len().min(5);
            if !b"MSRP ".starts_with(self.buf.get(..prefix_len).unwrap_or_default()) {
                return self.garbage(DecodeErrorKind::StartLine("does not start with `MSRP `"), 0);
            }
            // The limits are checked so that the outcome is the same however the stream is
            // cut: a start line is too long iff its CRLF starts past the limit.
            let limit = self.limits.max_header_bytes;
            let eol = memmem::find(&self.buf, b"\r\n");
            if eol.map_or(self.buf.len() > limit + 1, |e| e > limit) {
                return self.garbage(DecodeErrorKind::HeadersTooLarge { limit }, limit);
            }
            let eol = eol?;
            match parse_start_line(self.buf.get(..eol).unwrap_or_default()) {
                Ok(s) => {
                    let State::Head { scanned, start } = &mut self.state else {
                        return None;
                    };
                    *start = Some(s);
                    *scanned = eol + 2;
                }
                Err(why) => return self.garbage(DecodeErrorKind::StartLine(why), 0),
            }
        }
        let State::Head { scanned, start } = &mut self.state else {
            return None;
        };
        let (tid, kind) = start.clone()?;
        // Find the line that ends the header block: blank (a body follows) or the end-line.
        loop {
            let line_start = *scanned;
            let Some(rel) = self
                .buf
                .get(line_start..)
                .and_then(|rest| memmem::find(rest, b"\r\n"))
            else {
                break;
            };
            let line_end = line_start + rel;
            // `rel` was found inside `buf[line_start..]`, so the range is in bounds.
            let line = self.buf.get(line_start..line_end).unwrap_or_default();
            if line.is_empty() {
                return self.finish_head(tid, kind, line_start, None);
            }
            // A line this long cannot be an end-line (a transaction id has at most 64
            // bytes), however malformed: it is a header line like any other. Taking it for
            // the terminator would make the outcome depend on whether its CRLF had arrived
            // before the buffer passed the limit below.
            if line.len() <= MAX_END_LINE
                && let Some(rest) = line.strip_prefix(SEVEN_DASHES)
            {
                let tid_b = tid.as_str().as_bytes();
                let flag = (rest.len() == tid_b.len() + 1)
                    .then(|| rest.strip_prefix(tid_b))
                    .flatten()
                    .and_then(|f| f.first().copied())
                    .and_then(ContinuationFlag::from_byte);
                return self.finish_head(tid, kind, line_start, Some(flag));
            }
            *scanned = line_end + 2;
        }
        // Too large iff the block's terminator starts past the limit: either the unfinished
        // line already does, or the buffer extends past where any terminator starting within
        // the limit (at most `MAX_END_LINE` + CRLF) would have ended.
        let limit = self.limits.max_header_bytes;
        if *scanned > limit || self.buf.len() > limit + 128 {
            let at = limit;
            let ctx = ErrorContext {
                transaction_id: tid,
                kind,
                to_path: Vec::new(),
                from_path: Vec::new(),
                failure_report: None,
            };
            return self.frame_fault(DecodeErrorKind::HeadersTooLarge { limit }, at, ctx);
        }
        None
    }

    /// The header block spans `buf[..end]` (start line included, terminator excluded).
    /// `end_line` is `None` when a blank line ends it (a body follows), `Some(flag)` when the
    /// end-line does (`Some(None)` if that end-line was malformed).
    fn finish_head(
        &mut self,
        tid: TransactionId,
        kind: FrameKind,
        end: usize,
        end_line: Option<Option<ContinuationFlag>>,
    ) -> Option<Result<Frame, DecodeError>> {
        if end > self.limits.max_header_bytes {
            let limit = self.limits.max_header_bytes;
            let ctx = ErrorContext {
                transaction_id: tid,
                kind,
                to_path: Vec::new(),
                from_path: Vec::new(),
                failure_report: None,
            };
            return self.frame_fault(DecodeErrorKind::HeadersTooLarge { limit }, limit, ctx);
        }
        // `end` is the position of the block's terminator, found inside `buf`.
        let block = self.buf.get(..end).unwrap_or_default();
        let first_eol = memmem::find(block, b"\r\n").unwrap_or(end);
        let headers_start = (first_eol + 2).min(end);
        let headers = block.get(headers_start..).unwrap_or_default();
        let parsed = parse_headers(headers, headers_start, tid, kind);
        let (mut frame, content_type) = match parsed {
            Ok(x) => x,
            Err((kind, at, ctx)) => return self.frame_fault(kind, at, *ctx),
        };
        let fault = |frame: &Frame, kind, at| {
            (
                kind,
                at,
                ErrorContext {
                    transaction_id: frame.transaction_id.clone(),
                    kind: frame.kind.clone(),
                    to_path: frame.to_path.clone(),
                    from_path: frame.from_path.clone(),
                    failure_report: frame.failure_report,
                },
            )
        };
        match end_line {
            Some(None) => {
                // The frame ended here, only its end-line is wrong: drop through that line.
                let (k, at, ctx) = fault(&frame, DecodeErrorKind::EndLine, end);
                let line_end = self
                    .buf
                    .get(end..)
                    .and_then(|rest| memmem::find(rest, b"\r\n"))
                    .map_or(end, |i| end + i + 2);
                let err = DecodeError {
                    kind: k,
                    offset: self.consumed + at as u64,
                    context: Some(Box::new(ctx)),
                };
                self.advance(line_end);
                self.reset_head();
                Some(Err(err))
            }
            Some(Some(flag)) => {
                if frame.status_code().is_some() && flag != ContinuationFlag::End {
                    let (k, at, ctx) = fault(&frame, DecodeErrorKind::ResponseFlag, end);
                    return self.frame_fault(k, at, ctx);
                }
                frame.flag = flag;
                // Lenient: a Content-Type without a content section is kept as an empty body.
                frame.body = content_type.map(|content_type| Body {
                    content_type,
                    data: Bytes::new(),
                });
                let total = end + SEVEN_DASHES.len() + frame.transaction_id.as_str().len() + 3;
                self.advance(total);
                self.reset_head();
                Some(Ok(frame))
            }
            None => {
                let Some(content_type) = content_type else {
                    let (k, at, ctx) =
                        fault(&frame, DecodeErrorKind::MissingHeader("Content-Type"), end);
                    return self.frame_fault(k, at, ctx);
                };
                self.set_end_pattern(&frame.transaction_id);
                let body_start = end + 2;
                self.scan_from = body_start;
                self.state = State::Body(Box::new(PendingBody {
                    frame,
                    content_type,
                    body_start,
                }));
                self.poll_body()
            }
        }
    }

    /// Looks for a complete end-line at or after `scan_from`. Returns its position and flag,
    /// and otherwise moves `scan_from` past every position that can no longer start one.
    fn find_end_line(&mut self) -> Option<(usize, ContinuationFlag)> {
        let pat = self.end_pattern.len();
        let finder = memmem::Finder::new(&self.end_pattern);
        let mut from = self.scan_from;
        while let Some(rel) = self.buf.get(from..).and_then(|h| finder.find(h)) {
            let p = from + rel;
            let after = p + pat;
            if self.buf.len() < after + 3 {
                // A candidate whose flag and CRLF have not arrived yet.
                self.scan_from = p;
                return None;
            }
            if let Some(flag) = self
                .buf
                .get(after)
                .copied()
                .and_then(ContinuationFlag::from_byte)
                && self.buf.get(after + 1..after + 3) == Some(&b"\r\n"[..])
            {
                return Some((p, flag));
            }
            from = p + 1;
        }
        // The last pat-1 bytes may be the beginning of a pattern still arriving.
        self.scan_from = self.buf.len().saturating_sub(pat - 1).max(from);
        None
    }

    fn poll_body(&mut self) -> Option<Result<Frame, DecodeError>> {
        let found = self.find_end_line();
        let State::Body(pending) = &mut self.state else {
            return None;
        };
        let body_start = pending.body_start;
        let Some((p, flag)) = found else {
            if self.scan_from.saturating_sub(body_start) > self.limits.max_body_bytes {
                let limit = self.limits.max_body_bytes;
                let f = &pending.frame;
                let ctx = ErrorContext {
                    transaction_id: f.transaction_id.clone(),
                    kind: f.kind.clone(),
                    to_path: f.to_path.clone(),
                    from_path: f.from_path.clone(),
                    failure_report: f.failure_report,
                };
                let at = body_start + limit;
                // Keep scanning where we were: the body part already searched is dropped.
                let keep = self.scan_from;
                let err = self.frame_fault(DecodeErrorKind::BodyTooLarge { limit }, at, ctx);
                self.advance(keep);
                return err;
            }
            return None;
        };
        if p - body_start > self.limits.max_body_bytes {
            let limit = self.limits.max_body_bytes;
            let f = &pending.frame;
            let ctx = ErrorContext {
                transaction_id: f.transaction_id.clone(),
                kind: f.kind.clone(),
                to_path: f.to_path.clone(),
                from_path: f.from_path.clone(),
                failure_report: f.failure_report,
            };
            let at = body_start + limit;
            let err = self.frame_fault(DecodeErrorKind::BodyTooLarge { limit }, at, ctx);
            self.advance(p);
            return err;
        }
        let State::Body(pending) = std::mem::replace(&mut self.state, State::Resync) else {
            return None;
        };
        let PendingBody {
            mut frame,
            content_type,
            body_start,
        } = *pending;
        if frame.status_code().is_some() && flag != ContinuationFlag::End {
            let ctx = ErrorContext {
                transaction_id: frame.transaction_id.clone(),
                kind: frame.kind.clone(),
                to_path: frame.to_path.clone(),
                from_path: frame.from_path.clone(),
                failure_report: frame.failure_report,
            };
            let err = self.frame_fault(DecodeErrorKind::ResponseFlag, p + 2, ctx);
            self.advance(p);
            return err;
        }
        let total = p + self.end_pattern.len() + 3;
        let bytes = self.buf.split_to(total).freeze();
        self.consumed += total as u64;
        self.scan_from = 0;
        self.release_after(total);
        frame.flag = flag;
        frame.body = Some(Body {
            content_type,
            data: bytes.slice(body_start..p),
        });
        self.reset_head();
        Some(Ok(frame))
    }

    /// Drops bytes up to and including the skipped frame's end-line. True when it was found.
    fn poll_skip(&mut self) -> bool {
        match self.find_end_line() {
            Some((p, _)) => {
                let n = p + self.end_pattern.len() + 3;
                self.advance(n);
                self.reset_head();
                true
            }
            None => {
                // Keep only what may still hold the start of the end-line.
                let keep_from = self.scan_from.min(self.buf.len());
                self.advance(keep_from);
                false
            }
        }
    }

    /// Drops bytes up to the next line starting `MSRP `. True when one was found.
    fn poll_resync(&mut self) -> bool {
        match memmem::find(&self.buf, b"\nMSRP ") {
            Some(p) => {
                self.advance(p + 1);
                self.reset_head();
                true
            }
            None => {
                let keep = self.buf.len().min(5);
                let n = self.buf.len() - keep;
                self.advance(n);
                false
            }
        }
    }
}

fn parse_start_line(line: &[u8]) -> Result<(TransactionId, FrameKind), &'static str> {
    let line = std::str::from_utf8(line).map_err(|_| "not UTF-8")?;
    let rest = line
        .strip_prefix("MSRP ")
        .ok_or("does not start with `MSRP `")?;
    let (tid, rest) = rest.split_once(' ').ok_or("no method or status code")?;
    let tid = TransactionId::new(tid).map_err(|_| "invalid transaction id")?;
    let (word, comment) = match rest.split_once(' ') {
        Some((w, c)) => (w, Some(c)),
        None => (rest, None),
    };
    if let Some(code) = three_digits(word) {
        // RFC 4975 §9: comment = utf8text = *(HTAB / %x20-7E / UTF8-NONASCII). A bare CR in
        // it (fuzz find) would make the frame impossible to re-encode or forward.
        if comment.is_some_and(|c| c.chars().any(|ch| ch.is_control() && ch != '\t')) {
            return Err("control character in the response comment");
        }
        return Ok((
            tid,
            FrameKind::Response {
                code: StatusCode(code),
                comment: comment.map(str::to_owned),
            },
        ));
    }
    if comment.is_some() {
        return Err("text after the method");
    }
    let method = Method::parse(word).ok_or("method is not upper-case letters")?;
    Ok((tid, FrameKind::Request(method)))
}

type HeadFault = (DecodeErrorKind, usize, Box<ErrorContext>);

/// Parses the header lines in `block` (which starts at `base` in the buffer).
fn parse_headers(
    block: &[u8],
    base: usize,
    tid: TransactionId,
    kind: FrameKind,
) -> Result<(Frame, Option<String>), HeadFault> {
    let mut frame = Frame::request(tid, Method::Send, Vec::new(), Vec::new());
    frame.kind = kind;
    let ctx = |f: &Frame| {
        Box::new(ErrorContext {
            transaction_id: f.transaction_id.clone(),
            kind: f.kind.clone(),
            to_path: f.to_path.clone(),
            from_path: f.from_path.clone(),
            failure_report: f.failure_report,
        })
    };
    let text = match std::str::from_utf8(block) {
        Ok(t) => t,
        Err(e) => {
            return Err((
                DecodeErrorKind::NotUtf8,
                base + e.valid_up_to(),
                ctx(&frame),
            ));
        }
    };
    let mut content_type: Option<String> = None;
    let mut pos = 0;
    // Each line ends with CRLF; the block ends right after the last header's CRLF.
    for line in text.split_terminator("\r\n") {
        let at = base + pos;
        pos += line.len() + 2;
        let bad_line = |f: &Frame| Err((DecodeErrorKind::HeaderLine, at, ctx(f)));
        let Some((name, value)) = line.split_once(':') else {
            return bad_line(&frame);
        };
        let nb = name.as_bytes();
        if !nb.first().is_some_and(u8::is_ascii_alphabetic)
            || !nb.iter().all(|&c| super::uri::is_token_char(c))
            || value.contains(['\r', '\n'])
        {
            return bad_line(&frame);
        }
        // RFC 4975 puts exactly one SP after the colon; be lenient about extra blanks.
        let value = value.trim_matches([' ', '\t']);
        macro_rules! typed {
            ($field:expr, $hname:literal, $parse:expr) => {{
                if $field.is_some() {
                    return Err((DecodeErrorKind::DuplicateHeader($hname), at, ctx(&frame)));
                }
                match $parse {
                    Ok(v) => $field = Some(v),
                    Err(error) => {
                        return Err((
                            DecodeErrorKind::HeaderValue {
                                header: $hname,
                                error,
                            },
                            at,
                            ctx(&frame),
                        ));
                    }
                }
            }};
        }
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("To-Path") || is("From-Path") {
            let (hname, empty) = if is("To-Path") {
                ("To-Path", frame.to_path.is_empty())
            } else {
                ("From-Path", frame.from_path.is_empty())
            };
            if !empty {
                return Err((DecodeErrorKind::DuplicateHeader(hname), at, ctx(&frame)));
            }
            match parse_path(value) {
                Ok(p) if hname == "To-Path" => frame.to_path = p,
                Ok(p) => frame.from_path = p,
                Err(error) => {
                    return Err((
                        DecodeErrorKind::HeaderValue {
                            header: hname,
                            error,
                        },
                        at,
                        ctx(&frame),
                    ));
                }
            }
        } else if is("Message-ID") {
            typed!(frame.message_id, "Message-ID", value.parse())
        } else if is("Byte-Range") {
            typed!(frame.byte_range, "Byte-Range", value.parse())
        } else if is("Success-Report") {
            typed!(frame.success_report, "Success-Report", value.parse())
        } else if is("Failure-Report") {
            typed!(frame.failure_report, "Failure-Report", value.parse())
        } else if is("Status") {
            typed!(frame.status, "Status", value.parse())
        } else if is("Content-Type") {
            typed!(
                content_type,
                "Content-Type",
                check_media_type(value).map(|()| value.to_owned())
            )
        } else {
            frame.other_headers.push(Header {
                name: name.to_owned(),
                value: value.to_owned(),
            });
        }
    }
    let end = base + block.len();
    let missing = |h, f: &Frame| Err((DecodeErrorKind::MissingHeader(h), end, ctx(f)));
    if frame.to_path.is_empty() {
        return missing("To-Path", &frame);
    }
    if frame.from_path.is_empty() {
        return missing("From-Path", &frame);
    }
    match frame.method() {
        Some(Method::Send) if frame.message_id.is_none() => return missing("Message-ID", &frame),
        Some(Method::Report) if frame.message_id.is_none() => {
            return missing("Message-ID", &frame);
        }
        Some(Method::Report) if frame.status.is_none() => return missing("Status", &frame),
        _ => {}
    }
    Ok((frame, content_type))
}

/// Decodes exactly one frame from a complete buffer (convenience for tests and tools).
/// Errors if `bytes` hold less or more than one frame.
pub fn decode_one(bytes: &[u8]) -> Result<Frame, DecodeOneError> {
    let mut d = Decoder::default();
    d.handle_bytes(bytes);
    match d.poll_frame() {
        Some(Ok(f)) if d.buffered() == 0 => Ok(f),
        Some(Ok(_)) => Err(DecodeOneError::TrailingBytes),
        Some(Err(e)) => Err(DecodeOneError::Decode(e)),
        None => Err(DecodeOneError::Incomplete),
    }
}

/// Why [`decode_one`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeOneError {
    /// The bytes are not a valid frame.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The bytes end before the frame does.
    #[error("incomplete frame")]
    Incomplete,
    /// Bytes follow the frame.
    #[error("bytes after the frame")]
    TrailingBytes,
}

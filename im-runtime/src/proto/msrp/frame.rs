//! The MSRP frame model: requests, responses and their typed header fields.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;

use super::uri::{MsrpUri, hex};

/// Why a header field value is malformed. Used inside [`super::DecodeError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// Not an `ident` (RFC 4975 §9): 1 to 64 of ALPHANUM `.` `-` `+` `%` `=` starting with
    /// ALPHANUM.
    #[error("not an identifier")]
    Ident,
    /// Byte-Range is not `start-end/total` with `end` and `total` numbers or `*`, start >= 1,
    /// end >= start - 1 and end <= total.
    #[error("invalid Byte-Range")]
    ByteRange,
    /// Status is not `NNN NNN [comment]`.
    #[error("invalid Status")]
    Status,
    /// A report header is not one of its allowed words.
    #[error("invalid report value")]
    Report,
    /// Content-Type is not `type/subtype[;params]`.
    #[error("invalid media type")]
    MediaType,
    /// A To-Path / From-Path entry is not an MSRP URI.
    #[error("invalid MSRP URI: {0}")]
    Uri(#[from] super::uri::UriError),
    /// A To-Path / From-Path header has no URI.
    #[error("empty path")]
    EmptyPath,
}

fn is_ident(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() <= 64
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'+' | b'%' | b'='))
}

macro_rules! ident_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Checks `s` is an identifier: 1 to 64 of ALPHANUM `.` `-` `+` `%` `=`, starting
            /// with ALPHANUM. RFC 4975 §9 says 4 to 32; shorter and longer ones seen from
            /// peers are accepted anyway.
            pub fn new(s: impl Into<String>) -> Result<Self, ValueError> {
                let s = s.into();
                if is_ident(&s) { Ok(Self(s)) } else { Err(ValueError::Ident) }
            }

            /// A new identifier from 10 caller-supplied random bytes: 80 bits of randomness
            /// written as 20 lower-case hex digits (RFC 4975 §7.1 asks for at least 64).
            pub fn from_random(random: &[u8; 10]) -> Self {
                Self(hex(random))
            }

            /// The identifier text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = ValueError;
            fn from_str(s: &str) -> Result<Self, ValueError> {
                Self::new(s)
            }
        }
    };
}

ident_newtype!(
    /// A transaction identifier: it names one request, its response and its end-line.
    TransactionId
);
ident_newtype!(
    /// A Message-ID: it names one message across all its chunks and reports.
    MessageId
);

/// An MSRP request method. Unknown methods are kept so the receiver can answer them 501.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// `SEND`: carries (a chunk of) a message.
    Send,
    /// `REPORT`: an end-to-end delivery status; never answered with a response.
    Report,
    /// Any other method (1*UPALPHA), e.g. RFC 4976 `AUTH`.
    Other(String),
}

impl Method {
    /// The method as written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Send => "SEND",
            Method::Report => "REPORT",
            Method::Other(m) => m,
        }
    }

    /// Whether this is SEND or REPORT, the methods RFC 4975 defines. Requests with any other
    /// method are answered with [`StatusCode::UNKNOWN_METHOD`] (RFC 4975 §7.3).
    pub fn is_known(&self) -> bool {
        !matches!(self, Method::Other(_))
    }

    pub(crate) fn parse(s: &str) -> Option<Method> {
        match s {
            "SEND" => Some(Method::Send),
            "REPORT" => Some(Method::Report),
            _ if !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase()) => {
                Some(Method::Other(s.to_owned()))
            }
            _ => None,
        }
    }
}

/// A three-digit MSRP status code (RFC 4975 §10). Open: any code 0..=999 round-trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusCode(pub u16);

impl StatusCode {
    /// 200: the request was received.
    pub const OK: StatusCode = StatusCode(200);
    /// 400: the request was malformed.
    pub const BAD_REQUEST: StatusCode = StatusCode(400);
    /// 403: the action is not allowed.
    pub const FORBIDDEN: StatusCode = StatusCode(403);
    /// 408: no response in time (only ever generated locally, never sent).
    pub const REQUEST_TIMEOUT: StatusCode = StatusCode(408);
    /// 413: stop sending this message (too large).
    pub const STOP_SENDING: StatusCode = StatusCode(413);
    /// 415: the media type is not understood.
    pub const UNSUPPORTED_MEDIA_TYPE: StatusCode = StatusCode(415);
    /// 423: a parameter was out of bounds (relays).
    pub const PARAMETER_OUT_OF_BOUNDS: StatusCode = StatusCode(423);
    /// 481: the session named in the To-Path does not exist.
    pub const SESSION_DOES_NOT_EXIST: StatusCode = StatusCode(481);
    /// 501: the method is not understood.
    pub const UNKNOWN_METHOD: StatusCode = StatusCode(501);
    /// 506: the session is already bound to another connection.
    pub const SESSION_ALREADY_BOUND: StatusCode = StatusCode(506);

    /// The comment RFC 4975 §10 uses for the codes it defines.
    pub fn default_comment(self) -> Option<&'static str> {
        Some(match self.0 {
            200 => "OK",
            400 => "Bad Request",
            403 => "Forbidden",
            408 => "Request Timeout",
            413 => "Stop Sending Message",
            415 => "Unsupported Media Type",
            423 => "Parameter Out Of Bounds",
            481 => "Session Does Not Exist",
            501 => "Unknown Method",
            506 => "Session Already Bound",
            _ => return None,
        })
    }
}

/// The flag closing an end-line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContinuationFlag {
    /// `$`: the last chunk of the message (and the only flag on responses).
    End,
    /// `+`: more chunks follow.
    More,
    /// `#`: the sender gave up on the message; it is incomplete.
    Aborted,
}

impl ContinuationFlag {
    /// The flag byte.
    pub fn as_byte(self) -> u8 {
        match self {
            ContinuationFlag::End => b'$',
            ContinuationFlag::More => b'+',
            ContinuationFlag::Aborted => b'#',
        }
    }

    /// The flag for a byte, if it is one.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            b'$' => Some(ContinuationFlag::End),
            b'+' => Some(ContinuationFlag::More),
            b'#' => Some(ContinuationFlag::Aborted),
            _ => None,
        }
    }
}

/// A Byte-Range header: 1-based inclusive `start-end/total`, `None` for `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteRange {
    /// First byte of the chunk in the message, counting from 1.
    pub start: u64,
    /// Last byte of the chunk, or `None` (`*`) when the sender did not know it yet.
    pub end: Option<u64>,
    /// Size of the whole message, or `None` (`*`) when unknown.
    pub total: Option<u64>,
}

impl FromStr for ByteRange {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        let num = |t: &str| -> Result<Option<u64>, ValueError> {
            if t == "*" {
                Ok(None)
            } else if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                t.parse().map(Some).map_err(|_| ValueError::ByteRange)
            } else {
                Err(ValueError::ByteRange)
            }
        };
        let (range, total) = s.split_once('/').ok_or(ValueError::ByteRange)?;
        let (start, end) = range.split_once('-').ok_or(ValueError::ByteRange)?;
        let start = num(start)?.ok_or(ValueError::ByteRange)?;
        let r = ByteRange {
            start,
            end: num(end)?,
            total: num(total)?,
        };
        if r.start == 0
            || r.end.is_some_and(|e| e < r.start - 1)
            || matches!((r.end, r.total), (Some(e), Some(t)) if e > t)
        {
            return Err(ValueError::ByteRange);
        }
        Ok(r)
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-", self.start)?;
        match self.end {
            Some(e) => write!(f, "{e}/")?,
            None => f.write_str("*/")?,
        }
        match self.total {
            Some(t) => write!(f, "{t}"),
            None => f.write_str("*"),
        }
    }
}

/// The Success-Report header (default `no` when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SuccessReport {
    /// `yes`: the receiver MUST send success REPORTs.
    Yes,
    /// `no`: the receiver MUST NOT send success REPORTs.
    No,
}

/// The Failure-Report header (default `yes` when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReport {
    /// `yes`: transaction responses and failure REPORTs.
    Yes,
    /// `no`: no transaction responses and no failure REPORTs.
    No,
    /// `partial`: no 200 response, but non-200 responses and failure REPORTs on failure.
    Partial,
}

impl SuccessReport {
    /// The value as written on the wire.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SuccessReport::Yes => "yes",
            SuccessReport::No => "no",
        }
    }
}

impl FromStr for SuccessReport {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        match s {
            "yes" => Ok(SuccessReport::Yes),
            "no" => Ok(SuccessReport::No),
            _ => Err(ValueError::Report),
        }
    }
}

impl FailureReport {
    /// The value as written on the wire.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FailureReport::Yes => "yes",
            FailureReport::No => "no",
            FailureReport::Partial => "partial",
        }
    }
}

impl FromStr for FailureReport {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        match s {
            "yes" => Ok(FailureReport::Yes),
            "no" => Ok(FailureReport::No),
            "partial" => Ok(FailureReport::Partial),
            _ => Err(ValueError::Report),
        }
    }
}

impl fmt::Display for SuccessReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for FailureReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Status header of a REPORT: `namespace code [comment]`, namespace `000` in RFC 4975.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Status {
    /// The namespace, 0 for the RFC 4975 codes.
    pub namespace: u16,
    /// The status code.
    pub code: StatusCode,
    /// The optional comment after the code.
    pub comment: Option<String>,
}

impl Status {
    /// A namespace-000 status with the RFC's comment for the code.
    pub fn new(code: StatusCode) -> Self {
        Status {
            namespace: 0,
            code,
            comment: code.default_comment().map(str::to_owned),
        }
    }
}

pub(crate) fn three_digits(s: &str) -> Option<u16> {
    if s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

impl FromStr for Status {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let mut it = s.splitn(3, ' ');
        let namespace = it.next().and_then(three_digits).ok_or(ValueError::Status)?;
        let code = it.next().and_then(three_digits).ok_or(ValueError::Status)?;
        let comment = it.next().map(str::to_owned);
        Ok(Status {
            namespace,
            code: StatusCode(code),
            comment,
        })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03} {:03}", self.namespace, self.code.0)?;
        if let Some(c) = &self.comment {
            write!(f, " {c}")?;
        }
        Ok(())
    }
}

/// What kind of frame: a request with its method, or a response with its code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// `MSRP <tid> <METHOD>`.
    Request(Method),
    /// `MSRP <tid> <code> [comment]`.
    Response {
        /// The status code.
        code: StatusCode,
        /// The comment after the code, if any.
        comment: Option<String>,
    },
}

/// A body and its media type. Present exactly when the frame has a content section.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Body {
    /// The Content-Type value, e.g. `message/cpim` or `text/plain;charset=UTF-8`.
    pub content_type: String,
    /// The body bytes (possibly empty).
    pub data: Bytes,
}

/// A header field with no typed slot in [`Frame`], kept in order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// The field name as written.
    pub name: String,
    /// The value, without the leading space and trailing CRLF.
    pub value: String,
}

/// One MSRP request or response, with its body and end-line flag.
///
/// The typed headers are written in a fixed order by the encoder (To-Path, From-Path, then
/// Message-ID, Byte-Range, Success-Report, Failure-Report, Status, the
/// [`other_headers`](Frame::other_headers) in order, and Content-Type last).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    /// The transaction id on the start line and the end-line.
    pub transaction_id: TransactionId,
    /// Request method or response status.
    pub kind: FrameKind,
    /// To-Path URIs, leftmost first (next hop first).
    pub to_path: Vec<MsrpUri>,
    /// From-Path URIs, leftmost first (previous hop first, originator last).
    pub from_path: Vec<MsrpUri>,
    /// Message-ID.
    pub message_id: Option<MessageId>,
    /// Byte-Range.
    pub byte_range: Option<ByteRange>,
    /// Success-Report (absent means `no`).
    pub success_report: Option<SuccessReport>,
    /// Failure-Report (absent means `yes`).
    pub failure_report: Option<FailureReport>,
    /// Status (REPORT).
    pub status: Option<Status>,
    /// Every other header field in order, including MIME fields like Content-ID.
    pub other_headers: Vec<Header>,
    /// The content: `None` when the end-line follows the headers directly.
    pub body: Option<Body>,
    /// The end-line flag.
    pub flag: ContinuationFlag,
}

impl Frame {
    /// A bare request: no headers besides the paths, no body, flag `$`.
    pub fn request(
        transaction_id: TransactionId,
        method: Method,
        to_path: Vec<MsrpUri>,
        from_path: Vec<MsrpUri>,
    ) -> Frame {
        Frame {
            transaction_id,
            kind: FrameKind::Request(method),
            to_path,
            from_path,
            message_id: None,
            byte_range: None,
            success_report: None,
            failure_report: None,
            status: None,
            other_headers: Vec::new(),
            body: None,
            flag: ContinuationFlag::End,
        }
    }

    /// Moves the frame out, leaving an empty one that allocates nothing (what a
    /// [`Chunker`](super::Chunker) leaves after its last chunk, which takes its template).
    pub(crate) fn take(&mut self) -> Frame {
        std::mem::replace(
            self,
            Frame::request(
                TransactionId(String::new()),
                Method::Send,
                Vec::new(),
                Vec::new(),
            ),
        )
    }

    /// The method, if this is a request.
    pub fn method(&self) -> Option<&Method> {
        match &self.kind {
            FrameKind::Request(m) => Some(m),
            FrameKind::Response { .. } => None,
        }
    }

    /// The status code, if this is a response.
    pub fn status_code(&self) -> Option<StatusCode> {
        match &self.kind {
            FrameKind::Response { code, .. } => Some(*code),
            FrameKind::Request(_) => None,
        }
    }

    /// Success-Report with its default (`no`) applied.
    pub fn effective_success_report(&self) -> SuccessReport {
        self.success_report.unwrap_or(SuccessReport::No)
    }

    /// Failure-Report with its default (`yes`) applied.
    pub fn effective_failure_report(&self) -> FailureReport {
        self.failure_report.unwrap_or(FailureReport::Yes)
    }

    /// The body bytes, empty when there is no body.
    pub fn data(&self) -> &[u8] {
        self.body.as_ref().map_or(&[][..], |b| &b.data[..])
    }

    /// The value of the first header named `name` (ASCII case-insensitive) among
    /// [`other_headers`](Frame::other_headers).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.other_headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }
}

pub(crate) fn parse_path(value: &str) -> Result<Vec<MsrpUri>, ValueError> {
    let uris = value
        .split_ascii_whitespace()
        .map(|u| u.parse::<MsrpUri>().map_err(ValueError::from))
        .collect::<Result<Vec<_>, _>>()?;
    if uris.is_empty() {
        return Err(ValueError::EmptyPath);
    }
    Ok(uris)
}

pub(crate) fn check_media_type(s: &str) -> Result<(), ValueError> {
    let main = s.split(';').next().unwrap_or("").trim();
    let (t, sub) = main.split_once('/').ok_or(ValueError::MediaType)?;
    let tok = |x: &str| !x.is_empty() && x.bytes().all(super::uri::is_token_char);
    if tok(t) && tok(sub) {
        Ok(())
    } else {
        Err(ValueError::MediaType)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_range_parses_and_prints() {
        for s in ["1-25/100", "1-*/*", "26-*/100", "1-0/0", "101-200/*"] {
            assert_eq!(s.parse::<ByteRange>().unwrap().to_string(), s);
        }
        let r: ByteRange = "26-50/100".parse().unwrap();
        assert_eq!(
            r,
            ByteRange {
                start: 26,
                end: Some(50),
                total: Some(100)
            }
        );
        for bad in [
            "0-1/1",
            "5-3/10",
            "1-10/5",
            "1-2",
            "a-2/3",
            "1-2/x",
            "",
            "-/",
            "1--2/3",
            "1-99999999999999999999/*",
        ] {
            assert_eq!(
                bad.parse::<ByteRange>(),
                Err(ValueError::ByteRange),
                "{bad}"
            );
        }
    }

    #[test]
    fn status_parses_and_prints() {
        let s: Status = "000 200 OK".parse().unwrap();
        assert_eq!(s, Status::new(StatusCode::OK));
        assert_eq!(s.to_string(), "000 200 OK");
        let s: Status = "000 413".parse().unwrap();
        assert_eq!(s.comment, None);
        assert_eq!(s.to_string(), "000 413");
        assert!("00 200 OK".parse::<Status>().is_err());
        assert!("000 2000".parse::<Status>().is_err());
    }

    #[test]
    fn idents_and_methods() {
        assert!(TransactionId::new("a786hjs2").is_ok());
        assert!(TransactionId::new("-abc").is_err());
        assert!(TransactionId::new("ab c").is_err());
        assert!(TransactionId::new("x".repeat(65)).is_err());
        let t = TransactionId::from_random(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(t.as_str(), "0102030405060708090a");
        assert_eq!(Method::parse("SEND"), Some(Method::Send));
        assert_eq!(Method::parse("AUTH"), Some(Method::Other("AUTH".into())));
        assert_eq!(Method::parse("send"), None);
        assert!(!Method::parse("AUTH").unwrap().is_known());
    }

    #[test]
    fn media_types() {
        assert!(check_media_type("text/plain").is_ok());
        assert!(check_media_type("message/cpim").is_ok());
        assert!(check_media_type("text/plain; charset=utf-8").is_ok());
        assert!(check_media_type("textplain").is_err());
        assert!(check_media_type("text/").is_err());
    }
}

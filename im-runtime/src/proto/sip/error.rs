//! Parse errors: kind, byte offset, header and a context stack, plus what can be salvaged
//! from a request that failed to parse so that the server can still answer 400.

use std::fmt;

/// What went wrong while parsing a SIP message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The buffer holds no message (empty, or only CRLFs).
    #[error("empty message")]
    Empty,
    /// The request or status line does not follow RFC 3261 §7.1 / §7.2.
    #[error("malformed start line: {0}")]
    StartLine(&'static str),
    /// The SIP-Version is not `SIP/<digits>.<digits>`.
    #[error("malformed SIP version")]
    Version,
    /// The status code is not three digits from 100 to 699.
    #[error("status code is not three digits in 100..=699")]
    StatusCode,
    /// A header line does not start with a token followed by a colon.
    #[error("malformed header line")]
    HeaderLine,
    /// A continuation line (starting with whitespace) came before any header.
    #[error("continuation line before the first header")]
    FoldAtStart,
    /// The header section is not valid UTF-8 (RFC 3261 header values are UTF-8 text).
    #[error("header section is not UTF-8")]
    NotUtf8,
    /// The header section does not end with an empty line.
    #[error("header section not terminated by an empty line")]
    NoHeaderEnd,
    /// A specific element was expected.
    #[error("expected {0}")]
    Expected(&'static str),
    /// A quoted string, `<…>` or similar was not closed.
    #[error("unterminated {0}")]
    Unterminated(&'static str),
    /// Characters left over after a complete value.
    #[error("unexpected characters after the value")]
    Trailing,
    /// A numeric value is larger than its field allows.
    #[error("{0} out of range")]
    Scalar(&'static str),
    /// Content-Length appears more than once.
    #[error("several Content-Length header fields")]
    DuplicateContentLength,
    /// The body is shorter than Content-Length says.
    #[error("body has {actual} octets, Content-Length says {declared}")]
    BodyLength {
        /// Value of Content-Length.
        declared: usize,
        /// Octets actually present.
        actual: usize,
    },
    /// A `%` not followed by two hex digits inside a URI.
    #[error("malformed %-escape")]
    Escape,
    /// A host (name, IPv4 or bracketed IPv6 reference) is malformed.
    #[error("malformed host")]
    Host,
    /// A port is not a number in 0..=65535.
    #[error("malformed port")]
    Port,
    /// A message (or its header section) exceeds the configured limit.
    #[error("message larger than the {limit}-octet limit")]
    TooLarge {
        /// The limit in octets.
        limit: usize,
    },
    /// A stream message has no Content-Length (RFC 3261 §18.3 makes it mandatory there).
    #[error("Content-Length missing on a stream transport")]
    MissingContentLength,
}

/// A parse error with enough detail for a useful `Warning` text and for debugging.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Byte offset in the message where the problem was noticed.
    pub offset: usize,
    /// The header being parsed (canonical name), if any.
    pub header: Option<&'static str>,
    /// The nested elements being parsed, outermost first (`["Via", "branch"]`).
    pub context: Vec<&'static str>,
}

impl ParseError {
    /// A new error at `offset`.
    pub fn new(kind: ErrorKind, offset: usize) -> ParseError {
        ParseError {
            kind,
            offset,
            header: None,
            context: Vec::new(),
        }
    }

    /// Pushes an enclosing element onto the context stack (called while climbing out of
    /// nested parsers, so the outermost element ends up first).
    pub(crate) fn ctx(mut self, what: &'static str) -> ParseError {
        self.context.insert(0, what);
        self
    }

    /// Moves the offset by `base` and names the header (used when a header value parser,
    /// which counts from the value's start, reports to the message level).
    pub(crate) fn in_header(mut self, name: &'static str, base: usize) -> ParseError {
        self.offset += base;
        self.header = Some(name);
        self
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.kind, self.offset)?;
        if let Some(h) = self.header {
            write!(f, " in {h}")?;
        }
        if !self.context.is_empty() {
            write!(f, " ({})", self.context.join(" > "))?;
        }
        Ok(())
    }
}

/// The raw values of the headers a 400 response must copy (RFC 3261 §8.2.6.2), taken from a
/// request that failed to parse.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Salvage {
    /// Every Via value in order, as written (one entry per header line).
    pub via: Vec<String>,
    /// The From value.
    pub from: Option<String>,
    /// The To value.
    pub to: Option<String>,
    /// The Call-ID value.
    pub call_id: Option<String>,
    /// The CSeq value.
    pub cseq: Option<String>,
    /// Text for a `Warning: 399` header explaining the failure.
    pub warning: String,
}

/// A message that could not be parsed, with what was salvaged to answer it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct ParseFailure {
    /// Why parsing failed.
    pub error: ParseError,
    /// For something that looks like a request with at least one Via: the raw values needed
    /// to answer 400. `None` for responses and for requests that cannot be answered.
    pub salvage: Option<Box<Salvage>>,
}

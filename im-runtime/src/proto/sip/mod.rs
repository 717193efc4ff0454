//! SIP messages (RFC 3261): zero-copy parsing, typed header access and serialisation.
//!
//! Sans-IO: everything here works on byte buffers; no sockets, no clock.
//!
//! * [`Message::parse`] parses a datagram (or [`Message::parse_as`] a framed stream message)
//!   into one [`bytes::Bytes`] plus `u32` ranges: nothing is copied, the result is `'static`
//!   and cheap to move. A request that fails to parse still yields a [`Salvage`] with the
//!   headers needed to answer 400.
//! * [`frame`] does Content-Length framing for stream transports.
//! * [`validate::validate_request`] gives the response the core would send for a request
//!   before any application logic runs (400, 505, 416, 420, 415, 406, 483).
//! * [`build`] makes responses from requests (RFC 3261 §8.2.6) and new requests.
//!
//! ## Why our own parser (shared/crates.md §1)
//!
//! rsip keeps one owned `String` per header and fails on folded lines and on whitespace
//! before the colon (both legal, RFC 3261 §7.3.1); ezk-sip-types copies the message once and
//! is lenient, but has no public whole-message parse and percent-decodes Via branches; both
//! reject non-SIP Request-URIs that RFC 4475 wants answered with 416. This parser keeps the
//! message in one `Bytes` with `u32` ranges (no per-header allocation), checks the grammar of
//! the headers the transaction layer relies on once, keeps what that check found in the top
//! Via, From, To, Call-ID and CSeq (so their accessors slice rather than parse again), and
//! decodes other typed views lazily. A response's From and To are read only by the dialog
//! layer, in the answers to an INVITE: the parse checks those, and leaves any other
//! response's to their accessors. The grammar of the other headers the core relies on
//! (Request-URI, Max-Forwards, Contact, Content-Type, Route, Record-Route, Require,
//! Proxy-Require) is checked by [`Message::check_deferred`], which [`validate`] runs before a
//! message is used and the builders run on what they build.
//!
//! Measured with `cargo bench -p im-runtime --bench parse` (criterion, each parser parsing
//! and extracting top Via branch, From/To tags, Call-ID, CSeq and body; a 2-core VM shared
//! with other builds, load average 4–7, so absolute times are inflated and noisy):
//!
//! | message | im-runtime | ezk-sip-types | rsip |
//! |---|---|---|---|
//! | 1374-byte INVITE, multipart/mixed body (SDP + recipient-list) | 3.7 µs | 14.4 µs (3.9×) | 9.0 µs (2.5×) |
//! | 200 OK | 4.4 µs | 8.2 µs (1.9×) | 8.4 µs (1.9×) |
//!
//! (Figures from before the deferred checks; see docs/performance.md for later ones.) Our time
//! includes what the others skip: full grammar checks of Via, From, To, Call-ID and CSeq at
//! parse time.

pub mod build;
mod error;
mod header;
mod message;
mod scan;
mod status;
mod uri;
pub mod validate;

pub use error::{ErrorKind, ParseError, ParseFailure, Salvage};
pub use header::{
    CSeq, ContactValue, Contacts, Disposition, HeaderName, MediaType, NameAddr, Params, Via,
    Warning, parse_name_addrs, parse_tokens, split_values,
};
pub use message::{Frame, HeaderRef, Message, Transport, frame};
pub use status::StatusCode;
pub use uri::{Scheme, Uri, unescape};

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

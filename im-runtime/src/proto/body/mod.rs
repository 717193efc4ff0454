//! Message bodies: `multipart/mixed` (RFC 2046) and resource lists (RFC 4826, RFC 5364).
//!
//! * [`mime`]: media types and Content-Disposition values with SIP whitespace rules;
//! * [`multipart`]: a zero-copy `multipart/mixed` splitter and a writer.

pub mod mime;
pub mod multipart;

//! Message bodies: `multipart/mixed` (RFC 2046) and resource lists (RFC 4826, RFC 5364).
//!
//! * [`mime`]: media types and Content-Disposition values with SIP whitespace rules;
//! * [`multipart`]: a zero-copy `multipart/mixed` splitter and a writer;
//! * [`resource_lists`]: RFC 4826 / RFC 5364 recipient lists, read with limits and written
//!   as `recipient-list-history`.

pub mod mime;
pub mod multipart;
pub mod resource_lists;

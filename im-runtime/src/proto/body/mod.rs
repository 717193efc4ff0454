//! Message bodies: `multipart/mixed` (RFC 2046), resource lists (RFC 4826, RFC 5364), and
//! `message/cpim` (RFC 3862) with disposition notifications (RFC 5438).
//!
//! * [`mime`]: media types and Content-Disposition values with SIP whitespace rules;
//! * [`multipart`]: a zero-copy `multipart/mixed` splitter and a writer;
//! * [`resource_lists`]: RFC 4826 / RFC 5364 recipient lists, read with limits and written
//!   as `recipient-list-history`;
//! * [`cpim`]: a zero-copy `message/cpim` reader with the IMDN header fields, and a writer;
//! * [`imdn`]: the `message/imdn+xml` document and the CPIM wrapper it travels in;
//! * [`conference_info`]: the RFC 4575 `application/conference-info+xml` document.

pub mod conference_info;
pub mod cpim;
pub mod imdn;
pub mod mime;
pub mod multipart;
pub mod resource_lists;

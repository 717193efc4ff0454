//! The sans-IO protocol core: codecs and state over byte buffers. No sockets, no clock.
//!
//! Everything here reads bytes from the network, so a slice or index out of range, or a `str`
//! cut inside a character, is a remote crash (issue 14: one `s[..7]` killed the server). The
//! lints below make every such site either checked (`get`, iterators, `split_at_checked`) or
//! an `#[allow]` with the reason it cannot panic. Unit tests may index freely.
#![cfg_attr(not(test), deny(clippy::string_slice, clippy::indexing_slicing))]

pub mod body;
pub(crate) mod decimal;
pub mod digest;
pub mod msrp;
pub mod sdp;
pub mod sip;
pub mod transaction;

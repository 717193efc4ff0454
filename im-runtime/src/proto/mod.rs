//! The sans-IO protocol core: codecs and state over byte buffers. No sockets, no clock.

pub mod body;
pub mod msrp;
pub mod sdp;
pub mod sip;
pub mod transaction;

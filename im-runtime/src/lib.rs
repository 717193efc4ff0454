//! # im-runtime
//!
//! The protocol core and runtime that run the state machines generated from `.imspec` files.
//!
//! The crate is split like `quinn-proto` beside `quinn`:
//!
//! * the **sans-IO core** parses and serialises SIP, SDP, resource lists, multipart bodies
//!   and MSRP, and keeps transaction and dialog state. It never opens a socket and never
//!   reads a clock: time is always an argument, inputs go in through `handle_*` methods and
//!   outputs come out through `poll_*` methods;
//! * the **tokio layer** (feature `tokio`, on by default) owns sockets and timers and drives
//!   the core.
//!
//! Generated code talks to the runtime only through [`machine`]: the [`Machine`] trait, the
//! [`Event`]s it consumes, the [`Action`]s it returns and the typed [`Facts`] view of a
//! request it reads.

pub mod endpoint;
pub mod machine;
pub mod proto;
pub mod steer;
pub mod transport;

mod shrink;

#[cfg(feature = "tokio")]
pub mod io;

#[doc(hidden)]
pub mod __private;

pub use machine::{
    Action, ActionKind, Config, Env, Event, Facts, GroupDirectory, InviteeRouter, Machine, Method,
    Origin, Uri, UriParts,
};

//! The sans-IO boundary between a protocol core and whatever moves its bytes.
//!
//! A [`Core`] never touches a socket or a clock. The IO layer (the tokio driver in `io`, or a
//! simulated network in tests) feeds it [`Input`]s with the current time, then drains it:
//!
//! 1. call [`Core::handle_input`] for each thing that happened (datagram, stream bytes,
//!    connection opened or closed, timeout, shutdown);
//! 2. call [`Core::poll_output`] until it returns `None`, carrying out each [`Output`];
//! 3. sleep until [`Core::poll_timeout`] (or the next input), then feed [`Input::Timeout`].
//!
//! Connection ids are allocated by the core for the connections it asks for
//! ([`Output::Connect`]) and by the IO layer for accepted ones (ids with the high bit set), so
//! the two never collide.

use bytes::Bytes;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A connection (TCP stream) known to both the core and the IO layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl ConnId {
    /// The bit the IO layer sets on ids of accepted connections.
    pub const ACCEPTED: u64 = 1 << 63;

    /// Whether the IO layer allocated this id for an accepted connection.
    pub fn is_accepted(self) -> bool {
        self.0 & Self::ACCEPTED != 0
    }
}

/// Which protocol a stream carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// SIP over TCP (RFC 3261 §18).
    Sip,
    /// MSRP over TCP (RFC 4975).
    Msrp,
    /// SIP over TLS (RFC 3261 §26.2, RFC 5630): the IO layer does the handshake, the core
    /// sees the plaintext and says `TLS` in Via and `sips:` where it names itself.
    SipTls,
    /// MSRP over TLS (RFC 4975 §14, `msrps:` URIs, `TCP/TLS/MSRP` in SDP).
    MsrpTls,
}

impl StreamKind {
    /// Whether the stream runs over TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, StreamKind::SipTls | StreamKind::MsrpTls)
    }

    /// The protocol without its security: [`StreamKind::Sip`] or [`StreamKind::Msrp`].
    pub fn protocol(self) -> StreamKind {
        match self {
            StreamKind::Sip | StreamKind::SipTls => StreamKind::Sip,
            StreamKind::Msrp | StreamKind::MsrpTls => StreamKind::Msrp,
        }
    }

    /// The same protocol over TLS when `tls`, over plain TCP otherwise.
    pub fn secured(self, tls: bool) -> StreamKind {
        match (self.protocol(), tls) {
            (StreamKind::Sip, true) => StreamKind::SipTls,
            (StreamKind::Msrp, true) => StreamKind::MsrpTls,
            (p, _) => p,
        }
    }
}

/// Something that happened, fed to the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A UDP datagram arrived on the socket bound to `local`.
    Datagram {
        /// The socket's bound address.
        local: SocketAddr,
        /// The sender.
        from: SocketAddr,
        /// The payload.
        data: Bytes,
    },
    /// A stream connection is up: accepted on a listener, or the result of [`Output::Connect`].
    StreamOpened {
        /// Its id.
        conn: ConnId,
        /// What it carries.
        kind: StreamKind,
        /// Local address.
        local: SocketAddr,
        /// Remote address.
        peer: SocketAddr,
    },
    /// Bytes arrived on a stream (any split: the core reassembles).
    StreamData {
        /// Which stream.
        conn: ConnId,
        /// The bytes.
        data: Bytes,
    },
    /// A stream closed (peer closed, error, or after [`Output::Close`]).
    StreamClosed {
        /// Which stream.
        conn: ConnId,
    },
    /// An [`Output::Connect`] failed or timed out.
    ConnectFailed {
        /// The id the core asked for.
        conn: ConnId,
    },
    /// The time from [`Core::poll_timeout`] has come.
    Timeout,
    /// The process is asked to stop: end every session cleanly.
    Shutdown,
    /// The IO layer's measure of load changed: `overloaded` is true once every input for an
    /// interval waited in its queue longer than its limit
    /// ([`crate::io::IoLimits::overload_delay`], [`crate::io::IoLimits::overload_interval`]),
    /// and false again once one does not. While overloaded the core sheds work that would start
    /// something new (503 with Retry-After, RFC 3261 §21.5.4) and keeps serving what it
    /// already accepted, so latency stays bounded instead of collapsing for everyone.
    Pressure {
        /// Whether the core should shed new work.
        overloaded: bool,
        /// How long the input that changed the state waited in the queue.
        queue_delay: Duration,
    },
}

/// Something the core wants done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send a datagram from the socket bound to `local` (or any UDP socket when `None`).
    Datagram {
        /// Source socket, when it matters.
        local: Option<SocketAddr>,
        /// Destination.
        to: SocketAddr,
        /// Payload.
        data: Bytes,
    },
    /// Write bytes to a stream.
    StreamSend {
        /// Which stream.
        conn: ConnId,
        /// The bytes.
        data: Bytes,
    },
    /// Open a stream to `to`; the outcome comes back as [`Input::StreamOpened`] or
    /// [`Input::ConnectFailed`] with the same id.
    Connect {
        /// Id chosen by the core (high bit clear).
        conn: ConnId,
        /// What it will carry.
        kind: StreamKind,
        /// Destination.
        to: SocketAddr,
    },
    /// Close a stream after what was queued for it is written.
    Close {
        /// Which stream.
        conn: ConnId,
    },
    /// Whether the core needs a SIP stream: `in_use` becomes true once something of the
    /// core's is reached over it (a session's originator, a registration made over it, an
    /// invitee or recipient over a stream the core opened) and false once nothing is. Sent
    /// only when that changes. The IO layer closes a SIP connection that no core uses and
    /// that has been silent for [`crate::io::IoLimits::conn_idle_timeout`]; a core that
    /// never sends this leaves its connections to that rule.
    ConnUse {
        /// Which stream.
        conn: ConnId,
        /// Whether the core needs it now.
        in_use: bool,
    },
}

/// A sans-IO protocol core driven by an IO layer.
pub trait Core {
    /// Feeds one input observed at `now`.
    fn handle_input(&mut self, now: Instant, input: Input);
    /// The next thing to do, if any.
    fn poll_output(&mut self) -> Option<Output>;
    /// When the core next needs [`Input::Timeout`].
    fn poll_timeout(&self) -> Option<Instant>;
    /// After [`Input::Shutdown`]: whether everything has ended and the IO layer may stop.
    fn is_idle(&self) -> bool;
}

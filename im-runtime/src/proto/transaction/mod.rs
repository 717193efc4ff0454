//! SIP transactions: RFC 3261 §17 with the RFC 6026 changes, sans-IO.
//!
//! Four state machines, one per kind of transaction, live behind one table,
//! [`Transactions`]: INVITE and non-INVITE, client and server. The table matches incoming
//! messages to transactions by [`TsxKey`], creates server transactions for new requests,
//! answers CANCEL, and reports to the transaction user (TU) through [`Event`]s. Time is
//! always an argument; nothing here reads a clock or touches a socket.
//!
//! The layer does not parse SIP. It works on [`TsxMessage`], an already-parsed summary of a
//! message (its key, method, status and raw bytes: the bytes are what gets retransmitted),
//! and asks a [`MessageBuilder`] for the few messages it must write itself (100 Trying, the
//! ACK for a non-2xx final response, the 200 or 481 for a CANCEL, the CANCEL a client sends).
//!
//! What is deliberately left to the TU, as RFC 3261 assigns it: retransmitting a 2xx to
//! INVITE until its ACK arrives (§13.3.1.4) and sending the ACK for a 2xx (§13.2.2.4); both
//! belong to the dialog layer. The transaction only passes those messages through.

mod client;
mod client_inv;
mod key;
mod server;
mod server_inv;
pub(crate) mod sharded;
mod table;
mod timer;

use std::collections::VecDeque;
use std::net::SocketAddr;

use bytes::Bytes;

use crate::machine::Method;

pub use key::{BuildKeyHasher, KeyHasher, MAGIC_COOKIE, Rfc2543Parts, TopVia, TsxKey, TsxMap};
pub use table::{CancelStart, Transactions, TransactionsConfig};
pub use timer::{Timer, TimerConfig};

/// A SIP message as the transaction layer sees it: already parsed by the caller and reduced
/// to the fields matching and state changes need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsxMessage {
    /// The transaction the message belongs to.
    pub key: TsxKey,
    /// The request method; for a response, the CSeq method.
    pub method: Method,
    /// The status code of a response; `None` for a request.
    pub status: Option<u16>,
    /// The message as it goes on the wire; retransmissions send these bytes again.
    pub bytes: Bytes,
}

impl TsxMessage {
    /// A request.
    pub fn request(key: TsxKey, method: Method, bytes: Bytes) -> TsxMessage {
        TsxMessage {
            key,
            method,
            status: None,
            bytes,
        }
    }

    /// A response with `status` to a request of `cseq_method`.
    pub fn response(key: TsxKey, cseq_method: Method, status: u16, bytes: Bytes) -> TsxMessage {
        TsxMessage {
            key,
            method: cseq_method,
            status: Some(status),
            bytes,
        }
    }

    /// Whether the message is a request.
    pub fn is_request(&self) -> bool {
        self.status.is_none()
    }
}

/// Where a transaction's messages go, and whether the transport is reliable (TCP, TLS,
/// SCTP). On a reliable transport nothing is retransmitted and the wait timers D, I, J and
/// K are zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Peer {
    /// The remote address: the source of a request for a server transaction, the
    /// destination for a client transaction.
    pub addr: SocketAddr,
    /// Whether the transport is reliable.
    pub reliable: bool,
}

/// Bytes to send to a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Destination and transport.
    pub peer: Peer,
    /// The message.
    pub bytes: Bytes,
}

/// Client or server side of a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// We sent the request.
    Client,
    /// We received the request.
    Server,
}

/// The RFC 3261 / RFC 6026 state a transaction is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TsxState {
    /// INVITE client: the INVITE is out, nothing heard yet.
    Calling,
    /// Non-INVITE: request out (client) or received (server), no response yet.
    Trying,
    /// A provisional response was received (client) or sent (server).
    Proceeding,
    /// A final response (3xx–6xx for INVITE, any for non-INVITE) was received or sent.
    Completed,
    /// INVITE server: the ACK for a non-2xx final response arrived.
    Confirmed,
    /// RFC 6026: a 2xx to INVITE was received or sent.
    Accepted,
    /// Done; the table removes such transactions at once, so callers never see it there.
    Terminated,
}

/// What the transaction layer tells its user. Drained with [`Transactions::poll_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A new request created a server transaction. The TU answers it with
    /// [`Transactions::respond`] or [`Transactions::reply`]. Retransmissions of it are
    /// absorbed by the transaction and never reported again.
    Request {
        /// The request.
        message: TsxMessage,
        /// Where it came from.
        peer: Peer,
    },
    /// An ACK the TU must see: one for a 2xx (it matches no transaction, or an INVITE
    /// server transaction in the Accepted state). ACKs for non-2xx responses are absorbed.
    Ack {
        /// The ACK.
        message: TsxMessage,
        /// Where it came from.
        peer: Peer,
    },
    /// A response for one of our client transactions (provisional, final, and further 2xx
    /// to an INVITE while Accepted). Retransmitted non-2xx final responses are absorbed.
    Response {
        /// The response; `message.key` names the client transaction.
        message: TsxMessage,
    },
    /// A CANCEL matched a pending INVITE server transaction. The CANCEL has already been
    /// answered 200; the TU should now answer the INVITE with 487 (§9.2), e.g. with
    /// [`Transactions::reply`].
    Cancelled {
        /// The INVITE server transaction the CANCEL matched.
        invite: TsxKey,
    },
    /// Timer B, F (client: no final response) or H (server: no ACK) fired. A
    /// [`Event::Terminated`] follows.
    Timeout {
        /// The transaction.
        key: TsxKey,
        /// Its side.
        role: Role,
        /// Which timer fired.
        timer: Timer,
    },
    /// The transport failed to deliver a message of the transaction (reported with
    /// [`Transactions::handle_transport_error`]). A [`Event::Terminated`] follows.
    TransportError {
        /// The transaction.
        key: TsxKey,
        /// Its side.
        role: Role,
    },
    /// The transaction ended and was removed from the table.
    Terminated {
        /// The transaction.
        key: TsxKey,
        /// Its side.
        role: Role,
    },
}

/// Misuse of the transaction layer by its user. Incoming messages never produce errors:
/// what matches nothing is dropped (stray responses, §18.1.2 as changed by RFC 6026) or
/// answered (481 to CANCEL).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TsxError {
    /// No transaction with this key on that side.
    #[error("no {role:?} transaction with this key")]
    UnknownTransaction {
        /// The side that was searched.
        role: Role,
    },
    /// A transaction with this key already exists.
    #[error("a client transaction with this key already exists")]
    DuplicateTransaction,
    /// A request was given where a response was expected, or the other way round.
    #[error("expected a {}", if *.expected_request { "request" } else { "response" })]
    WrongKind {
        /// Whether a request was expected.
        expected_request: bool,
    },
    /// [`Transactions::cancel`] was given a non-INVITE client transaction; only INVITE is
    /// cancelled (§9.1).
    #[error("only an INVITE client transaction can be cancelled")]
    NotAnInvite,
    /// ACK never has a client transaction of its own (§17.1.1.3 for non-2xx, §13.2.2.4 for
    /// 2xx: the TU sends it straight to the transport).
    #[error("ACK is not sent through a client transaction")]
    AckIsNotATransaction,
    /// A status code outside 100–699.
    #[error("invalid status code {0}")]
    InvalidStatus(u16),
    /// The transaction's state does not allow this (a second final response, CANCEL after
    /// a final response …).
    #[error("not allowed in state {state:?}")]
    InvalidState {
        /// The state the transaction is in.
        state: TsxState,
    },
    /// The [`MessageBuilder`] could not build the message.
    #[error("the message builder could not build the message")]
    Build,
}

/// Builds the few messages the transaction layer writes itself. Implemented over the SIP
/// parser and printer by the layer above; tests use a fake.
///
/// Each method gets messages the caller already parsed (or built) once, so building should
/// not fail; `None` is allowed for robustness and means the message is not sent (see each
/// method for what happens then).
pub trait MessageBuilder {
    /// A response with `status` to `request` (§8.2.6: Via, From, To, Call-ID and CSeq
    /// copied; a To tag added for non-100 responses). Used for 100 Trying (skipped on
    /// `None`), for the 200 or 481 to a CANCEL (the CANCEL is dropped on `None`) and by
    /// [`Transactions::reply`] (which then fails with [`TsxError::Build`]).
    fn response(&mut self, request: &TsxMessage, status: u16) -> Option<Bytes>;

    /// The ACK for the non-2xx final `response` to `invite` (§17.1.1.3: Request-URI,
    /// Call-ID, From, CSeq number and top Via of the INVITE, To of the response, Route of
    /// the INVITE). On `None` no ACK is sent and the server retransmits until its Timer H.
    fn ack(&mut self, invite: &TsxMessage, response: &TsxMessage) -> Option<Bytes>;

    /// The CANCEL for `invite` (§9.1: Request-URI, Call-ID, To, From, CSeq number, top Via
    /// and Route of the INVITE, method CANCEL). [`Transactions::cancel`] fails with
    /// [`TsxError::Build`] on `None`.
    fn cancel(&mut self, invite: &TsxMessage) -> Option<Bytes>;
}

/// Where the machines put what they produce; owned by the table.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pub(crate) transmits: VecDeque<Transmit>,
    pub(crate) events: VecDeque<Event>,
}

impl Outbox {
    pub(crate) fn send(&mut self, peer: Peer, bytes: Bytes) {
        self.transmits.push_back(Transmit { peer, bytes });
    }
}

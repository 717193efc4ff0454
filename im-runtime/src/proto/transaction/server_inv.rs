//! The INVITE server transaction: RFC 3261 §17.2.1 as changed by RFC 6026 §7.1 (Figure 7).

use std::mem;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::timer::{Retransmit, Timer, TimerConfig, earliest};
use super::{Event, Outbox, Peer, Role, TsxError, TsxKey, TsxMessage, TsxState};

/// Per-state data; a transition consumes the old state.
#[derive(Debug)]
enum State {
    /// No final response yet; `last` is the latest provisional response sent.
    Proceeding {
        last: Option<Bytes>,
    },
    /// A 3xx–6xx was sent and waits for its ACK.
    Completed {
        response: Bytes,
        timer_g: Option<Retransmit>,
        timer_h: Instant,
    },
    /// The ACK arrived; later ACK retransmissions are absorbed until Timer I.
    Confirmed {
        timer_i: Instant,
    },
    /// RFC 6026: a 2xx was sent; INVITE retransmissions are absorbed, 2xx-ACKs passed up.
    Accepted {
        timer_l: Instant,
    },
    Terminated,
}

#[derive(Debug)]
pub(crate) struct InviteServer {
    key: TsxKey,
    /// The INVITE while the TU may still answer it through the builder
    /// ([`Transactions::reply`](super::Transactions::reply)); dropped with the final
    /// response: retransmitted INVITEs are then absorbed or answered from `Completed`, and
    /// a 2xx retransmission comes from the TU as bytes.
    request: Option<Bytes>,
    peer: Peer,
    /// Shared with the table and its other transactions when they run the same values.
    timers: Arc<TimerConfig>,
    state: State,
}

impl InviteServer {
    pub(crate) fn new(request: TsxMessage, peer: Peer, timers: Arc<TimerConfig>) -> InviteServer {
        InviteServer {
            key: request.key,
            request: Some(request.bytes),
            peer,
            timers,
            state: State::Proceeding { last: None },
        }
    }

    /// The INVITE, until the final response.
    pub(crate) fn request(&self) -> Option<TsxMessage> {
        let bytes = self.request.clone()?;
        Some(TsxMessage::request(
            self.key.clone(),
            crate::machine::Method::Invite,
            bytes,
        ))
    }

    pub(crate) fn state(&self) -> TsxState {
        state_name(&self.state)
    }

    /// A request matching this transaction: an INVITE retransmission or an ACK.
    pub(crate) fn handle_request(
        &mut self,
        now: Instant,
        msg: TsxMessage,
        peer: Peer,
        out: &mut Outbox,
    ) {
        let is_ack = msg.method == crate::machine::Method::Ack;
        let state = mem::replace(&mut self.state, State::Terminated);
        self.state = match state {
            State::Proceeding { last } => {
                // A retransmitted INVITE is answered from here and never reaches the TU
                // again; an ACK before any final response is meaningless and dropped.
                if let (false, Some(bytes)) = (is_ack, &last) {
                    out.send(self.peer, bytes.clone());
                }
                State::Proceeding { last }
            }
            State::Completed {
                response,
                timer_g,
                timer_h,
            } => {
                if is_ack {
                    self.confirmed(now)
                } else {
                    out.send(self.peer, response.clone());
                    State::Completed {
                        response,
                        timer_g,
                        timer_h,
                    }
                }
            }
            State::Confirmed { timer_i } => State::Confirmed { timer_i },
            State::Accepted { timer_l } => {
                if is_ack {
                    out.events.push_back(Event::Ack { message: msg, peer });
                }
                State::Accepted { timer_l }
            }
            State::Terminated => State::Terminated,
        };
    }

    fn confirmed(&self, now: Instant) -> State {
        if self.peer.reliable {
            State::Terminated
        } else {
            State::Confirmed {
                timer_i: now + self.timers.t4,
            }
        }
    }

    /// The TU sends a response (a 2xx retransmission too, while Accepted).
    pub(crate) fn send_response(
        &mut self,
        now: Instant,
        status: u16,
        bytes: Bytes,
        out: &mut Outbox,
    ) -> Result<(), TsxError> {
        let state = mem::replace(&mut self.state, State::Terminated);
        let (next, result) = match (state, status) {
            (State::Proceeding { .. }, 100..=199) => {
                out.send(self.peer, bytes.clone());
                (State::Proceeding { last: Some(bytes) }, Ok(()))
            }
            (State::Proceeding { .. }, 200..=299) => {
                out.send(self.peer, bytes);
                let timer_l = now + self.timers.t1_x64();
                (State::Accepted { timer_l }, Ok(()))
            }
            (State::Proceeding { .. }, 300..=699) => {
                out.send(self.peer, bytes.clone());
                let timer_g = (!self.peer.reliable).then(|| Retransmit::start(now, self.timers.t1));
                let timer_h = now + self.timers.t1_x64();
                let next = State::Completed {
                    response: bytes,
                    timer_g,
                    timer_h,
                };
                (next, Ok(()))
            }
            (State::Accepted { timer_l }, 200..=299) => {
                // RFC 6026 §7.1: 2xx retransmissions from the TU go out unchanged.
                out.send(self.peer, bytes);
                (State::Accepted { timer_l }, Ok(()))
            }
            (state, _) => {
                let err = TsxError::InvalidState {
                    state: state_name(&state),
                };
                (state, Err(err))
            }
        };
        if !matches!(next, State::Proceeding { .. }) {
            self.request = None;
        }
        self.state = next;
        result
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Proceeding { .. } | State::Terminated => None,
            State::Completed {
                timer_g, timer_h, ..
            } => earliest([timer_g.map(|g| g.at), Some(*timer_h)]),
            State::Confirmed { timer_i } => Some(*timer_i),
            State::Accepted { timer_l } => Some(*timer_l),
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant, out: &mut Outbox) {
        let state = mem::replace(&mut self.state, State::Terminated);
        self.state = match state {
            State::Completed { timer_h, .. } if timer_h <= now => {
                out.events.push_back(Event::Timeout {
                    key: self.key.clone(),
                    role: Role::Server,
                    timer: Timer::H,
                });
                State::Terminated
            }
            State::Completed {
                response,
                timer_g: Some(g),
                timer_h,
            } if g.at <= now => {
                out.send(self.peer, response.clone());
                State::Completed {
                    response,
                    timer_g: Some(g.backoff(now, Some(self.timers.t2))),
                    timer_h,
                }
            }
            State::Confirmed { timer_i } if timer_i <= now => State::Terminated,
            State::Accepted { timer_l } if timer_l <= now => State::Terminated,
            other => other,
        };
    }
}

fn state_name(state: &State) -> TsxState {
    match state {
        State::Proceeding { .. } => TsxState::Proceeding,
        State::Completed { .. } => TsxState::Completed,
        State::Confirmed { .. } => TsxState::Confirmed,
        State::Accepted { .. } => TsxState::Accepted,
        State::Terminated => TsxState::Terminated,
    }
}

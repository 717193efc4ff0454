//! The non-INVITE server transaction: RFC 3261 §17.2.2 (Figure 8).

use std::mem;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::timer::TimerConfig;
use super::{Outbox, Peer, TsxError, TsxKey, TsxMessage, TsxState};

/// Per-state data; a transition consumes the old state.
#[derive(Debug)]
enum State {
    /// No response yet: retransmitted requests are dropped.
    Trying,
    /// A provisional response was sent; retransmitted requests get it again.
    Proceeding {
        last: Bytes,
    },
    /// A final response was sent; retransmitted requests get it again until Timer J.
    Completed {
        response: Bytes,
        timer_j: Instant,
    },
    Terminated,
}

#[derive(Debug)]
pub(crate) struct NonInviteServer {
    /// The request while the TU may still answer it through the builder; dropped with the
    /// final response (retransmissions then get the stored response).
    request: Option<Bytes>,
    key: TsxKey,
    peer: Peer,
    /// Shared with the table and its other transactions when they run the same values.
    timers: Arc<TimerConfig>,
    state: State,
}

impl NonInviteServer {
    pub(crate) fn new(
        request: TsxMessage,
        peer: Peer,
        timers: Arc<TimerConfig>,
    ) -> NonInviteServer {
        NonInviteServer {
            request: Some(request.bytes),
            key: request.key,
            peer,
            timers,
            state: State::Trying,
        }
    }

    /// The request, until the final response.
    pub(crate) fn request(&self) -> Option<TsxMessage> {
        let bytes = self.request.clone()?;
        Some(TsxMessage::request(
            self.key.clone(),
            self.key.method().clone(),
            bytes,
        ))
    }

    pub(crate) fn state(&self) -> TsxState {
        state_name(&self.state)
    }

    /// A retransmission of the request.
    pub(crate) fn handle_request(&mut self, out: &mut Outbox) {
        match &self.state {
            State::Proceeding { last: bytes }
            | State::Completed {
                response: bytes, ..
            } => {
                out.send(self.peer, bytes.clone());
            }
            State::Trying | State::Terminated => {}
        }
    }

    pub(crate) fn send_response(
        &mut self,
        now: Instant,
        status: u16,
        bytes: Bytes,
        out: &mut Outbox,
    ) -> Result<(), TsxError> {
        let state = mem::replace(&mut self.state, State::Terminated);
        let (next, result) = match (state, status) {
            (State::Trying | State::Proceeding { .. }, 100..=199) => {
                out.send(self.peer, bytes.clone());
                (State::Proceeding { last: bytes }, Ok(()))
            }
            (State::Trying | State::Proceeding { .. }, 200..=699) => {
                out.send(self.peer, bytes.clone());
                let next = if self.peer.reliable {
                    // Timer J is 0 on a reliable transport: nothing is retransmitted to us.
                    State::Terminated
                } else {
                    State::Completed {
                        response: bytes,
                        timer_j: now + self.timers.t1_x64(),
                    }
                };
                (next, Ok(()))
            }
            (state, _) => {
                let err = TsxError::InvalidState {
                    state: state_name(&state),
                };
                (state, Err(err))
            }
        };
        if !matches!(next, State::Trying | State::Proceeding { .. }) {
            self.request = None;
        }
        self.state = next;
        result
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Completed { timer_j, .. } => Some(*timer_j),
            _ => None,
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let state = mem::replace(&mut self.state, State::Terminated);
        self.state = match state {
            State::Completed { timer_j, .. } if timer_j <= now => State::Terminated,
            other => other,
        };
    }
}

fn state_name(state: &State) -> TsxState {
    match state {
        State::Trying => TsxState::Trying,
        State::Proceeding { .. } => TsxState::Proceeding,
        State::Completed { .. } => TsxState::Completed,
        State::Terminated => TsxState::Terminated,
    }
}

//! The non-INVITE client transaction: RFC 3261 §17.1.2 (Figure 6).

use std::mem;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::timer::{Retransmit, Timer, TimerConfig, earliest};
use super::{Event, Outbox, Peer, Role, TsxKey, TsxMessage, TsxState};

/// Per-state data; a transition consumes the old state.
#[derive(Debug)]
enum State {
    /// The request is out; Timer E retransmits it (unreliable only) until Timer F.
    Trying {
        timer_e: Option<Retransmit>,
        timer_f: Instant,
    },
    /// A provisional response arrived; Timer E keeps retransmitting, every T2.
    Proceeding {
        timer_e: Option<Retransmit>,
        timer_f: Instant,
    },
    /// A final response arrived; retransmissions of it are absorbed until Timer K.
    Completed {
        timer_k: Instant,
    },
    Terminated,
}

#[derive(Debug)]
pub(crate) struct NonInviteClient {
    key: TsxKey,
    /// The request while Timer E may retransmit it; dropped with the final response.
    request: Option<Bytes>,
    peer: Peer,
    /// Shared with the table and its other transactions when they run the same values.
    timers: Arc<TimerConfig>,
    /// Whether the Completed state runs over an unreliable transport (see
    /// [`TransactionsConfig::linger_non_invite_clients`](super::TransactionsConfig)).
    linger: bool,
    state: State,
}

impl NonInviteClient {
    /// Sends the request now and arms Timers E and F.
    pub(crate) fn start(
        now: Instant,
        request: TsxMessage,
        peer: Peer,
        timers: Arc<TimerConfig>,
        linger: bool,
        out: &mut Outbox,
    ) -> NonInviteClient {
        out.send(peer, request.bytes.clone());
        let state = State::Trying {
            timer_e: (!peer.reliable).then(|| Retransmit::start(now, timers.t1)),
            timer_f: now + timers.t1_x64(),
        };
        NonInviteClient {
            key: request.key,
            request: Some(request.bytes),
            peer,
            timers,
            linger,
            state,
        }
    }

    /// The request, until the final response.
    #[cfg(test)]
    pub(crate) fn request(&self) -> Option<&Bytes> {
        self.request.as_ref()
    }

    pub(crate) fn state(&self) -> TsxState {
        match self.state {
            State::Trying { .. } => TsxState::Trying,
            State::Proceeding { .. } => TsxState::Proceeding,
            State::Completed { .. } => TsxState::Completed,
            State::Terminated => TsxState::Terminated,
        }
    }

    pub(crate) fn handle_response(&mut self, now: Instant, msg: TsxMessage, out: &mut Outbox) {
        let Some(status) = msg.status else { return };
        let state = mem::replace(&mut self.state, State::Terminated);
        self.state = match (state, status) {
            (
                State::Trying { timer_e, timer_f } | State::Proceeding { timer_e, timer_f },
                100..=199,
            ) => {
                out.events.push_back(Event::Response { message: msg });
                State::Proceeding { timer_e, timer_f }
            }
            (State::Trying { .. } | State::Proceeding { .. }, 200..=699) => {
                self.request = None;
                out.events.push_back(Event::Response { message: msg });
                if self.peer.reliable || !self.linger {
                    State::Terminated
                } else {
                    State::Completed {
                        timer_k: now + self.timers.t4,
                    }
                }
            }
            (other, _) => other,
        };
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Trying { timer_e, timer_f } | State::Proceeding { timer_e, timer_f } => {
                earliest([timer_e.map(|e| e.at), Some(*timer_f)])
            }
            State::Completed { timer_k } => Some(*timer_k),
            State::Terminated => None,
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant, out: &mut Outbox) {
        let state = mem::replace(&mut self.state, State::Terminated);
        self.state = match state {
            State::Trying { timer_f, .. } | State::Proceeding { timer_f, .. } if timer_f <= now => {
                out.events.push_back(Event::Timeout {
                    key: self.key.clone(),
                    role: Role::Client,
                    timer: Timer::F,
                });
                State::Terminated
            }
            State::Trying {
                timer_e: Some(e),
                timer_f,
            } if e.at <= now => {
                if let Some(request) = &self.request {
                    out.send(self.peer, request.clone());
                }
                State::Trying {
                    timer_e: Some(e.backoff(now, Some(self.timers.t2))),
                    timer_f,
                }
            }
            State::Proceeding {
                timer_e: Some(e),
                timer_f,
            } if e.at <= now => {
                if let Some(request) = &self.request {
                    out.send(self.peer, request.clone());
                }
                // §17.1.2.2: in Proceeding Timer E is reset to T2, not doubled.
                State::Proceeding {
                    timer_e: Some(Retransmit::start(now, self.timers.t2)),
                    timer_f,
                }
            }
            State::Completed { timer_k } if timer_k <= now => State::Terminated,
            other => other,
        };
    }
}

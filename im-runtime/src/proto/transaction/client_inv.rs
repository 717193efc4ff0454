//! The INVITE client transaction: RFC 3261 §17.1.1 as changed by RFC 6026 §7.2 (Figure 5).

use std::mem;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::timer::{Retransmit, Timer, TimerConfig, earliest};
use crate::machine::Method;

use super::{Event, MessageBuilder, Outbox, Peer, Role, TsxKey, TsxMessage, TsxState};

/// Per-state data; a transition consumes the old state.
#[derive(Debug)]
enum State {
    /// The INVITE is out; Timer A retransmits it (unreliable only) until Timer B.
    Calling {
        timer_a: Option<Retransmit>,
        timer_b: Instant,
    },
    /// A provisional response arrived; the transaction waits for the final one, untimed
    /// until the TU cancels it: then `give_up` is 64·T1 after the CANCEL (§9.1), when the
    /// transaction is destroyed if the peer never sent a final response.
    Proceeding {
        give_up: Option<Instant>,
    },
    /// A 3xx–6xx arrived and was ACKed; its retransmissions are ACKed again until Timer D.
    Completed {
        ack: Option<Bytes>,
        timer_d: Instant,
    },
    /// RFC 6026: a 2xx arrived; further 2xx (retransmissions, forks) go up until Timer M.
    Accepted {
        timer_m: Instant,
    },
    Terminated,
}

#[derive(Debug)]
pub(crate) struct InviteClient {
    key: TsxKey,
    /// The INVITE while it may still be retransmitted (Timer A), ACKed against a non-2xx
    /// or cancelled; dropped with the first final response, after which neither happens
    /// (the ACK for a retransmitted non-2xx is kept in `Completed`, and 2xx are passed up
    /// for the TU, which ACKs them from its dialog).
    request: Option<Bytes>,
    peer: Peer,
    /// Shared with the table and its other transactions when they run the same values.
    timers: Arc<TimerConfig>,
    state: State,
}

impl InviteClient {
    /// Sends the INVITE now and arms Timers A and B.
    pub(crate) fn start(
        now: Instant,
        request: TsxMessage,
        peer: Peer,
        timers: Arc<TimerConfig>,
        out: &mut Outbox,
    ) -> InviteClient {
        out.send(peer, request.bytes.clone());
        let state = State::Calling {
            timer_a: (!peer.reliable).then(|| Retransmit::start(now, timers.t1)),
            timer_b: now + timers.t1_x64(),
        };
        InviteClient {
            key: request.key,
            request: Some(request.bytes),
            peer,
            timers,
            state,
        }
    }

    /// The INVITE, until the first final response.
    pub(crate) fn request(&self) -> Option<TsxMessage> {
        let bytes = self.request.clone()?;
        Some(TsxMessage::request(self.key.clone(), Method::Invite, bytes))
    }

    pub(crate) fn peer(&self) -> Peer {
        self.peer
    }

    pub(crate) fn timers(&self) -> Arc<TimerConfig> {
        self.timers.clone()
    }

    pub(crate) fn state(&self) -> TsxState {
        match self.state {
            State::Calling { .. } => TsxState::Calling,
            State::Proceeding { .. } => TsxState::Proceeding,
            State::Completed { .. } => TsxState::Completed,
            State::Accepted { .. } => TsxState::Accepted,
            State::Terminated => TsxState::Terminated,
        }
    }

    pub(crate) fn handle_response(
        &mut self,
        now: Instant,
        msg: TsxMessage,
        builder: &mut impl MessageBuilder,
        out: &mut Outbox,
    ) {
        let Some(status) = msg.status else { return };
        let state = mem::replace(&mut self.state, State::Terminated);
        self.state = match (state, status) {
            (State::Calling { .. }, 100..=199) => {
                out.events.push_back(Event::Response { message: msg });
                State::Proceeding { give_up: None }
            }
            (State::Proceeding { give_up }, 100..=199) => {
                out.events.push_back(Event::Response { message: msg });
                State::Proceeding { give_up }
            }
            (State::Calling { .. } | State::Proceeding { .. }, 200..=299) => {
                self.request = None;
                out.events.push_back(Event::Response { message: msg });
                State::Accepted {
                    timer_m: now + self.timers.t1_x64(),
                }
            }
            (State::Calling { .. } | State::Proceeding { .. }, 300..=699) => {
                // §17.1.1.3: the transaction itself ACKs a non-2xx final response.
                let ack = self.request.take().and_then(|bytes| {
                    let invite = TsxMessage::request(self.key.clone(), Method::Invite, bytes);
                    builder.ack(&invite, &msg)
                });
                if let Some(ack) = &ack {
                    out.send(self.peer, ack.clone());
                }
                out.events.push_back(Event::Response { message: msg });
                if self.peer.reliable {
                    State::Terminated
                } else {
                    State::Completed {
                        ack,
                        timer_d: now + self.timers.timer_d,
                    }
                }
            }
            (State::Completed { ack, timer_d }, 300..=699) => {
                // A retransmitted final response: ACK again, do not bother the TU.
                if let Some(ack) = &ack {
                    out.send(self.peer, ack.clone());
                }
                State::Completed { ack, timer_d }
            }
            (State::Accepted { timer_m }, 200..=299) => {
                out.events.push_back(Event::Response { message: msg });
                State::Accepted { timer_m }
            }
            (other, _) => other,
        };
    }

    /// The TU sent a CANCEL for this INVITE (§9.1): if no final response arrives within
    /// 64·T1, the transaction gives up. Without this a peer that sent 100 and then went
    /// silent would hold the transaction, and the session waiting on it, forever.
    pub(crate) fn cancelled(&mut self, now: Instant) {
        if let State::Proceeding { give_up: None } = self.state {
            self.state = State::Proceeding {
                give_up: Some(now + self.timers.t1_x64()),
            };
        }
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Calling { timer_a, timer_b } => {
                earliest([timer_a.map(|a| a.at), Some(*timer_b)])
            }
            State::Completed { timer_d, .. } => Some(*timer_d),
            State::Accepted { timer_m } => Some(*timer_m),
            State::Proceeding { give_up } => *give_up,
            State::Terminated => None,
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant, out: &mut Outbox) {
        let state = mem::replace(&mut self.state, State::Terminated);
        self.state = match state {
            State::Calling { timer_b, .. } if timer_b <= now => {
                out.events.push_back(Event::Timeout {
                    key: self.key.clone(),
                    role: Role::Client,
                    timer: Timer::B,
                });
                State::Terminated
            }
            State::Calling {
                timer_a: Some(a),
                timer_b,
            } if a.at <= now => {
                if let Some(invite) = &self.request {
                    out.send(self.peer, invite.clone());
                }
                State::Calling {
                    // Timer A doubles without the T2 cap (§17.1.1.2).
                    timer_a: Some(a.backoff(now, None)),
                    timer_b,
                }
            }
            State::Proceeding {
                give_up: Some(at), ..
            } if at <= now => {
                // §9.1: no final response 64·T1 after our CANCEL: the transaction is
                // destroyed. Reported as Timer B, the TU's "no final response" event.
                out.events.push_back(Event::Timeout {
                    key: self.key.clone(),
                    role: Role::Client,
                    timer: Timer::B,
                });
                State::Terminated
            }
            State::Completed { timer_d, .. } if timer_d <= now => State::Terminated,
            State::Accepted { timer_m } if timer_m <= now => State::Terminated,
            other => other,
        };
    }
}

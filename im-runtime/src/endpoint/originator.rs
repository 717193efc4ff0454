//! The originator's dialog: ACK, BYE and CANCEL from the originator, our BYE to it and
//! in-dialog requests we send.

use super::*;

impl<A: Application> Endpoint<A> {
    pub(super) fn in_dialog_request(&mut self, now: Instant, peer: Peer, msg: Message) {
        let Some(method) = msg.method().cloned() else {
            return;
        };
        let call_id = msg.call_id().unwrap_or("").to_string();
        let to_tag = msg
            .to()
            .and_then(|t| t.tag().map(str::to_string))
            .unwrap_or_default();
        let key = tsx_message(&msg).map(|t| t.key);
        let Some(&(sid, leg)) = self.by_dialog.get(&(call_id, to_tag)) else {
            if method != Method::Ack
                && let Some(key) = key
            {
                self.reply_simple(now, &key, &msg, 481, &[]);
            }
            return;
        };
        self.dirty.push(sid);
        match method {
            Method::Ack => {
                if let Some(s) = self.sessions.get_mut(&sid)
                    && leg.is_none()
                    && !s.acked
                {
                    s.acked = true;
                    if let Some(d) = s.dialog.as_mut() {
                        d.confirmed = true;
                    }
                    self.stop_timers(sid, |k| matches!(k, SessionTimer::OkRetransmit(_)));
                    self.msrp_after_ack(now, sid);
                    self.run_session_machines(now, sid, &Event::InDialogRequest(Method::Ack));
                }
            }
            Method::Bye => {
                // A dialog that does not exist yet or that the peer already ended with its
                // own BYE: 481 (RFC 3261 §15.1.2).
                let dialog = self.sessions.get(&sid).and_then(|s| match leg {
                    None => s.dialog.as_ref(),
                    Some(i) => s.legs.get(i).and_then(|l| l.dialog.as_ref()),
                });
                let status = if dialog.is_some_and(|d| !d.remote_bye) {
                    200
                } else {
                    481
                };
                // The runtime answers only the 481; an existing dialog's BYE from the
                // originator is answered by the spec's rule (its `respond`) while one of the
                // session's machines still runs. Once they are all final (the session's
                // procedures are over, e.g. our own BYE crossed this one) and for an
                // invitee's BYE (no leg rule answers requests yet) the runtime answers 200.
                let spec_answers = leg.is_none()
                    && self
                        .sessions
                        .get(&sid)
                        .is_some_and(|s| s.machines.iter().any(|m| !m.is_final()));
                if (status != 200 || !spec_answers)
                    && let Some(key) = key.clone()
                {
                    self.reply_simple(now, &key, &msg, status, &[]);
                }
                if status != 200 {
                    self.reap(now);
                    return;
                }
                match leg {
                    None => {
                        let mut held = false;
                        if let Some(s) = self.sessions.get_mut(&sid) {
                            s.originator_gone = true;
                            held = s.held.is_some();
                            if let Some(d) = s.dialog.as_mut() {
                                d.ended = true;
                                d.remote_bye = true;
                            }
                        }
                        if spec_answers {
                            self.in_dialog_tsx = key.clone().map(|k| (k, msg.clone()));
                        }
                        self.run_session_machines(now, sid, &Event::InDialogRequest(Method::Bye));
                        if let Some((key, msg)) = self.in_dialog_tsx.take() {
                            // No rule answered the BYE: a spec bug. The transaction still
                            // needs a final response (RFC 3261 §17.2.2).
                            tracing::error!(
                                session = sid.0,
                                "no spec rule answered the originator's BYE; 500 sent"
                            );
                            self.reply_simple(now, &key, &msg, 500, &[]);
                        }
                        self.msrp.close_originator(sid, &mut self.out);
                        if !held {
                            // The originator left before its message was complete: there
                            // is nothing to deliver, so the invitee legs are ended
                            // (pending ones CANCELled, connected ones BYE'd). With a message
                            // held, delivery goes on and the legs end by their machines.
                            self.end_session(now, sid, "originator left before its message");
                        }
                    }
                    Some(i) => {
                        if let Some(l) = self.sessions.get_mut(&sid).and_then(|s| s.legs.get_mut(i))
                        {
                            if let Some(d) = l.dialog.as_mut() {
                                d.ended = true;
                                d.remote_bye = true;
                            }
                            if l.status != LegStatus::Failed {
                                l.status = LegStatus::Ended;
                            }
                        }
                        self.run_leg_machine(now, sid, i, &Event::InDialogRequest(Method::Bye));
                        self.msrp.close_leg(sid, i, &mut self.out);
                    }
                }
                self.check_settled(now, sid);
            }
            _ => {
                if let Some(key) = key {
                    let allow = self.allow_header();
                    self.reply_simple(now, &key, &msg, 405, &[("Allow", allow)]);
                }
            }
        }
        let _ = peer;
        self.reap(now);
    }

    pub(super) fn cancelled(&mut self, now: Instant, invite: &TsxKey) {
        let Some(&sid) = self.by_server_tsx.get(invite) else {
            return;
        };
        self.dirty.push(sid);
        let answered = self
            .sessions
            .get(&sid)
            .is_some_and(|s| s.answered.is_some());
        if !answered && let Some(msg) = self.sessions.get(&sid).map(|s| s.request.clone()) {
            let tag = self
                .sessions
                .get(&sid)
                .map(|s| s.local_tag.clone())
                .unwrap_or_default();
            if let Some(resp) = StatusCode::new(487).and_then(|c| {
                sip::build::ResponseBuilder::new(&msg, c)
                    .to_tag(&tag)
                    .build()
                    .ok()
            }) {
                let _ = self.tsx.respond(now, invite, 487, resp.into_bytes());
                self.live.response(487, None);
                self.drain_tsx_transmits();
            }
            if let Some(s) = self.sessions.get_mut(&sid) {
                s.answered = Some(487);
                s.originator_gone = true;
            }
        }
        self.end_session(now, sid, "cancelled by the originator");
    }

    pub(super) fn bye_originator(&mut self, now: Instant, sid: SessionId) {
        let req = {
            let Some(s) = self.sessions.get_mut(&sid) else {
                return;
            };
            let Some(d) = s.dialog.as_mut() else {
                return;
            };
            if d.ended || !d.confirmed {
                return;
            }
            d.ended = true;
            s.originator_gone = true;
            d.request(Method::Bye, self.cfg.sip_advertised)
        };
        self.msrp.close_originator(sid, &mut self.out);
        self.send_in_dialog(now, sid, None, req);
    }

    pub(super) fn send_in_dialog(
        &mut self,
        now: Instant,
        sid: SessionId,
        leg: Option<usize>,
        req: Option<(Message, Peer)>,
    ) {
        let Some((m, peer)) = req else {
            return;
        };
        if m.method() == Some(&Method::Ack) {
            self.send_sip(peer, m.into_bytes());
            return;
        }
        if let Some(tm) = tsx_message(&m) {
            self.tsx.builder_mut().remember(&tm.key, &m);
            self.track_client(tm.key.clone(), sid, leg);
            let _ = self.tsx.send_request(now, tm, peer);
            self.drain_tsx_transmits();
        }
    }
}

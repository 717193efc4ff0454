//! The originator's dialog: ACK, BYE and CANCEL from the originator, BYE from an invitee,
//! our BYE to the originator and the in-dialog requests we send.

use super::super::*;
use super::*;

impl Session {
    /// An ACK or BYE the endpoint matched to this session's dialog (`leg: None`: the
    /// originator's) by Call-ID and our tag.
    pub(super) fn in_dialog<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        leg: Option<usize>,
        key: Option<TsxKey>,
        msg: Message,
    ) {
        match msg.method() {
            Some(Method::Ack) if leg.is_none() && !self.acked => {
                self.acked = true;
                if let Some(d) = self.dialog.as_mut() {
                    d.confirmed = true;
                }
                self.timers
                    .stop(|k| matches!(k, SessionTimer::OkRetransmit(_)));
                self.msrp_after_ack(cx);
                if self.bye_when_confirmed {
                    self.bye_originator(cx);
                }
                self.run_machines(cx, &Event::InDialogRequest(Method::Ack));
            }
            Some(Method::Bye) => self.bye_received(cx, leg, key, msg),
            _ => {}
        }
    }

    fn bye_received<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        leg: Option<usize>,
        key: Option<TsxKey>,
        msg: Message,
    ) {
        // A dialog that does not exist yet or that the peer already ended with its own
        // BYE: 481 (RFC 3261 §15.1.2).
        let dialog = match leg {
            None => self.dialog.as_ref(),
            Some(i) => self.legs.get(i).and_then(|l| l.dialog.as_ref()),
        };
        let status = if dialog.is_some_and(|d| !d.remote_bye) {
            200
        } else {
            481
        };
        // The runtime answers only the 481; an existing dialog's BYE from the originator is
        // answered by the spec's rule (its `respond`) while one of the session's machines
        // still runs. Once they are all final (the session's procedures are over, e.g. our
        // own BYE crossed this one) and for an invitee's BYE (no leg rule answers requests
        // yet) the runtime answers 200.
        let spec_answers = leg.is_none() && self.machines.iter().any(|m| !m.is_final());
        if (status != 200 || !spec_answers)
            && let Some(key) = &key
        {
            cx.reply_simple(key, &msg, status, &[]);
        }
        if status != 200 {
            return;
        }
        match leg {
            None => {
                self.originator_gone = true;
                if let Some(d) = self.dialog.as_mut() {
                    d.ended = true;
                    d.remote_bye = true;
                }
                if spec_answers {
                    self.answering = key.map(|k| (k, msg));
                }
                self.run_machines(cx, &Event::InDialogRequest(Method::Bye));
                if let Some((key, msg)) = self.answering.take() {
                    // No rule answered the BYE: a spec bug. The transaction still needs a
                    // final response (RFC 3261 §17.2.2).
                    tracing::error!(
                        session = self.id.0,
                        "no spec rule answered the originator's BYE; 500 sent"
                    );
                    cx.reply_simple(&key, &msg, 500, &[]);
                }
                // What becomes of the invitee legs (ended at once when no message is
                // held, left to deliver otherwise) is the spec's rule for this BYE
                // (`cancel legs`, `bye legs`).
                cx.msrp.close_originator(self.id, cx.out);
            }
            Some(i) => {
                if let Some(l) = self.legs.get_mut(i) {
                    if let Some(d) = l.dialog.as_mut() {
                        d.ended = true;
                        d.remote_bye = true;
                    }
                    if l.status != LegStatus::Failed {
                        l.status = LegStatus::Ended;
                    }
                }
                self.run_leg_machine(cx, i, &Event::InDialogRequest(Method::Bye));
                cx.msrp.close_leg(self.id, i, cx.out);
            }
        }
        self.check_settled(cx);
    }

    /// The originator CANCELled our INVITE while it was pending. The machines hear it as
    /// `request CANCEL`: their rule answers the INVITE (RFC 3261 §9.2: 487) and says what
    /// becomes of the legs. Only when no rule answered does the runtime send the 487 the
    /// transaction still needs, log the spec gap, and end the session.
    pub(super) fn cancelled<A: Application>(&mut self, cx: &mut Ctx<'_, A>) {
        if self.answered.is_none() {
            self.run_machines(cx, &Event::InDialogRequest(Method::Cancel));
        }
        if self.answered.is_none() {
            tracing::error!(
                session = self.id.0,
                "no spec rule answered the INVITE the originator CANCELled; 487 sent"
            );
            if let Some(c) = StatusCode::new(487) {
                let resp = sip::build::ResponseBuilder::new(&self.request, c)
                    .to_tag(&self.local_tag)
                    .write();
                let _ = cx.tsx.respond(cx.now, &self.server_tsx, 487, resp);
                cx.live.response(487, None);
                cx.flush();
            }
            self.answered = Some(487);
            self.originator_gone = true;
            self.end(cx, "cancelled by the originator; no rule answered");
        }
    }

    pub(super) fn bye_originator<A: Application>(&mut self, cx: &mut Ctx<'_, A>) {
        let req = {
            let Some(d) = self.dialog.as_mut() else {
                return;
            };
            if d.ended {
                return;
            }
            if !d.confirmed {
                self.bye_when_confirmed = true;
                return;
            }
            d.ended = true;
            self.originator_gone = true;
            d.request(Method::Bye, cx.cfg.sip_advertised)
        };
        cx.msrp.close_originator(self.id, cx.out);
        self.send_in_dialog(cx, None, req);
    }

    pub(super) fn send_in_dialog<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        leg: Option<usize>,
        req: Option<(Message, Peer)>,
    ) {
        let Some((m, peer)) = req else {
            return;
        };
        if let Some((_, holds, _)) = cx.send_request(&m, peer, self.id, leg) {
            self.track(holds);
        }
    }
}

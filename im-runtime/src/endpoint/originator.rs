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
                // The 2xx is retransmitted only until its ACK, and nothing after the ACK
                // reads more of the INVITE than its method (`OriginatorRequest`).
                self.unacked_ok = None;
                self.request = OriginatorRequest::AckedInvite;
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
            Some(Method::Ack) => {}
            Some(_) => self.other_request(cx, leg, key, msg),
            None => {}
        }
    }

    /// Any other in-dialog request (re-INVITE, UPDATE, INFO, OPTIONS, MESSAGE, SUBSCRIBE
    /// …): the machine that owns the dialog answers it (6.1.3.3.2 `other_method`,
    /// `subscribe_in_dialog`: 405), final or not, since a dialog outlives its procedure's
    /// last state. The runtime answers only
    /// a dialog that does not exist or is over (481, RFC 3261 §12.2.2), and, when no rule
    /// answered, the 500 the transaction still needs (a spec gap, logged).
    fn other_request<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        leg: Option<usize>,
        key: Option<TsxKey>,
        msg: Message,
    ) {
        let Some(key) = key else {
            return;
        };
        let Some(method) = msg.method().cloned() else {
            return;
        };
        let dialog = match leg {
            None => self.dialog.as_ref(),
            Some(i) => self.legs.get(i).and_then(|l| l.dialog.as_ref()),
        };
        if dialog.is_none_or(|d| d.ended) {
            cx.reply_simple(&key, &msg, 481, &[]);
            return;
        }
        self.answering = Some(Box::new((key, msg)));
        // A SUBSCRIBE here reuses the INVITE dialog (RFC 5057): the rules tell it from a
        // subscription to the focus URI by `subscription.in_invite_dialog`.
        self.facts.subscription.in_invite_dialog = method == Method::Subscribe;
        let ev = Event::InDialogRequest(method.clone());
        match leg {
            None => self.run_machines(cx, &ev),
            Some(i) => self.run_leg_machine(cx, i, &ev),
        }
        self.facts.subscription.in_invite_dialog = false;
        if let Some((key, msg)) = self.answering.take().map(|b| *b) {
            self.spec_gap(
                leg,
                &format!("request {method}"),
                format_args!("no spec rule answered the in-dialog {method}; 500 sent"),
            );
            cx.reply_simple(&key, &msg, 500, &[]);
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
        // The runtime answers only the 481; an existing dialog's BYE is answered by the
        // spec's rule (its `respond`), final machine or not: the originator's by the
        // session's (6.1.3.3.2 `originator_bye`, and `bye_after_close` once the session's
        // procedure is over, e.g. when our own BYE crossed this one), an invitee's by its
        // leg machine (7.9.1.4 `invitee_left`, `invitee_bye`).
        if status != 200 {
            if let Some(key) = &key {
                cx.reply_simple(key, &msg, status, &[]);
            }
            return;
        }
        self.answering = key.map(|k| Box::new((k, msg)));
        match leg {
            None => {
                self.originator_gone = true;
                if let Some(d) = self.dialog.as_mut() {
                    d.ended = true;
                    d.remote_bye = true;
                }
                self.run_machines(cx, &Event::InDialogRequest(Method::Bye));
                if let Some((key, msg)) = self.answering.take().map(|b| *b) {
                    // No rule answered the BYE: a spec bug. The transaction still needs a
                    // final response (RFC 3261 §17.2.2).
                    self.spec_gap(
                        None,
                        "request BYE",
                        format_args!("no spec rule answered the originator's BYE; 500 sent"),
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
                if let Some((key, msg)) = self.answering.take().map(|b| *b) {
                    // No leg rule answered the BYE: a spec gap, logged; the transaction
                    // still needs a final response (RFC 3261 §17.2.2).
                    self.spec_gap(
                        Some(i),
                        "request BYE",
                        format_args!("no spec rule answered the invitee's BYE; 500 sent"),
                    );
                    cx.reply_simple(&key, &msg, 500, &[]);
                }
                cx.msrp.close_leg(self.id, i, cx.out);
                // The invitee ended the dialog: the leg no longer holds its connection.
                cx.leg_ended(self.id, i);
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
            self.spec_gap(
                None,
                "request CANCEL",
                format_args!("no spec rule answered the INVITE the originator CANCELled; 487 sent"),
            );
            // Unanswered, so the request is kept (`OriginatorRequest`).
            if let (Some(c), Some(request)) = (StatusCode::new(487), self.request.message()) {
                let resp = sip::build::ResponseBuilder::new(request, c)
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
            // The originator's connection may have closed since its INVITE: RFC 3261
            // §12.2.1.1/§18.1.1, a new one to its Contact, unless it asked for its flow
            // only (RFC 5626).
            let reachable = cx.redial(d, (self.id, None));
            d.request(Method::Bye, cx.cfg.sip_advertised)
                .map(|(m, p)| (m, p, reachable))
        };
        cx.msrp.close_originator(self.id, cx.out);
        self.send_in_dialog(cx, None, req);
    }

    /// Sends in-dialog request `req` to its peer in a client transaction of leg `leg` (or
    /// of the originator's dialog); when it cannot reach that peer (`false`: its flow is
    /// gone, [`Ctx::redial`]), the transaction ends at once with a transport error, so the
    /// machines hear Timer F now, not after 64*T1.
    pub(super) fn send_in_dialog<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        leg: Option<usize>,
        req: Option<(Message, Peer, bool)>,
    ) {
        let Some((m, peer, reachable)) = req else {
            return;
        };
        if let Some((key, holds, _)) = cx.send_request(&m, peer, self.id, leg) {
            self.track(holds);
            if !reachable {
                cx.fail_now(&key);
            }
        }
    }
}

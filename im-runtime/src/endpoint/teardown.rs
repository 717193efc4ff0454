//! Ending a session and firing its timers.

use super::super::*;
use super::*;

impl Session {
    /// Logs a spec gap: `trigger` reached the session's machines (leg `leg`'s only, when
    /// given) and no rule decided what the transaction or the session still needed, so the
    /// runtime did `what`. One error line, `spec gap: …`, with the trigger as the spec writes it
    /// and the procedures that heard it as `clause/procedure@state`: where in `specs/` the
    /// missing rule belongs. A rule that decided and whose action failed is no gap and is
    /// not logged here.
    pub(super) fn spec_gap(
        &self,
        leg: Option<usize>,
        trigger: &str,
        what: std::fmt::Arguments<'_>,
    ) {
        let describe =
            |m: &dyn DynMachine| format!("{}/{}@{}", m.clause(), m.procedure(), m.state_name());
        let heard_by: Vec<String> = match leg {
            Some(i) => self
                .legs
                .get(i)
                .and_then(|l| l.machine.as_deref())
                .map(describe)
                .into_iter()
                .collect(),
            None => self.machines.iter().map(|m| describe(m.as_ref())).collect(),
        };
        tracing::error!(
            call_id = %self.call_id,
            session = self.id.0,
            leg,
            trigger,
            heard_by = %heard_by.join(", "),
            "spec gap: {what}"
        );
    }

    /// The server is shutting down: the machines hear `shutdown` and their rules say what
    /// becomes of the originator and the legs (6.1.3.3.2 `server_shutdown`). When a rule
    /// acted, the runtime sends nothing of its own (the session's MSRP closes, and it drains
    /// as the rule left it); when none did, its teardown is the last resort.
    pub(super) fn shutdown<A: Application>(&mut self, cx: &mut Ctx<'_, A>, why: &'static str) {
        if self.ending {
            return;
        }
        let acted = self.run_machines_counted(cx, &Event::Shutdown, None) > 0;
        self.check_settled(cx);
        if !acted {
            self.end_unruled(cx, "shutdown", why);
            return;
        }
        self.ending = true;
        self.originator_gone = true;
        if self.answered.is_none() {
            self.answered = Some(0);
        }
        cx.msrp.close_session(self.id, self.legs.len(), cx.out);
    }

    /// Timer H of the INVITE server transaction: a non-2xx final response was never ACKed
    /// (RFC 3261 §17.2.1), while the session still has legs (one without any has drained).
    /// The machines hear `timer H`, and what becomes of the legs is their rule's (6.1.3.3.2
    /// `no_ack`); the runtime ends what is left only when no rule acted.
    pub(super) fn unacked_final<A: Application>(&mut self, cx: &mut Ctx<'_, A>) {
        if self.run_machines_counted(cx, &Event::Timer(Timer::H), None) == 0 {
            self.end_unruled(cx, "timer H", "no ACK for the final response (Timer H)");
        }
        self.check_settled(cx);
    }

    /// The runtime's own teardown where no rule ended the session (shutdown with no
    /// `shutdown` rule acting, a lifetime no rule ended): a spec gap when there is still a
    /// dialog or an INVITE to end, logged as an error, since the BYE/CANCEL then sent is no
    /// machine's decision.
    pub(super) fn end_unruled<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        trigger: &str,
        why: &str,
    ) {
        let open_legs = self.legs.iter().any(|l| match l.status {
            LegStatus::Pending => !l.cancelled,
            LegStatus::Connected => l.dialog.as_ref().is_some_and(|d| !d.ended),
            LegStatus::Failed | LegStatus::Ended => false,
        });
        let originator_up = !self.originator_gone && self.dialog.as_ref().is_some_and(|d| !d.ended);
        if open_legs || originator_up {
            self.spec_gap(
                None,
                trigger,
                format_args!(
                    "no spec rule ended the session ({why}); the runtime CANCELs and BYEs what is left"
                ),
            );
        }
        self.end(cx, why);
    }

    /// Tears the session down: CANCEL pending legs, BYE connected ones and the originator,
    /// close MSRP. The endpoint removes the session once [`is_drained`](Session::is_drained).
    pub(super) fn end<A: Application>(&mut self, cx: &mut Ctx<'_, A>, why: &str) {
        if self.ending {
            return;
        }
        self.ending = true;
        tracing_log_args(
            "session",
            format_args!("ending session {} ({why})", self.call_id),
        );
        for i in 0..self.legs.len() {
            let _ = self.cancel_leg(cx, i);
            self.bye_leg(cx, i);
        }
        self.bye_originator(cx);
        self.originator_gone = true;
        if self.answered.is_none() {
            self.answered = Some(0);
        }
        cx.msrp.close_session(self.id, self.legs.len(), cx.out);
    }

    pub(super) fn fire_timer<A: Application>(&mut self, cx: &mut Ctx<'_, A>, kind: SessionTimer) {
        let now = cx.now;
        match kind {
            SessionTimer::OkRetransmit(n) => {
                if self.acked || self.dialog.as_ref().is_some_and(|d| d.ended) {
                    return;
                }
                let t1 = cx.cfg.timers.t1;
                let deadline = self.unacked_ok.as_ref().map_or(now, |ok| ok.1) + t1 * 64;
                if now >= deadline {
                    // The 2xx is not sent again.
                    self.unacked_ok = None;
                    // No ACK within 64·T1: end the dialog (§13.3.1.4).
                    if let Some(d) = self.dialog.as_mut() {
                        d.confirmed = true;
                    }
                    // Reported to the machines as Timer H: the spec's "no ACK" case, whose
                    // rule says what becomes of the originator and the legs.
                    self.run_machines(cx, &Event::Timer(Timer::H));
                    if self.bye_when_confirmed {
                        self.bye_originator(cx);
                    }
                    return;
                }
                let reliable = self.peer.reliable;
                if let (Some((bytes, _)), false) = (self.unacked_ok.as_deref(), reliable) {
                    let _ = cx.tsx.respond(now, &self.server_tsx, 200, bytes.clone());
                    cx.flush();
                    if cx.tsx.state(Role::Server, &self.server_tsx).is_none() {
                        cx.transmit(self.peer, bytes.clone());
                    }
                }
                // Intervals double from T1 up to T2 (§13.3.1.4), the last one cut at the
                // deadline so the session ends at 64·T1 exactly.
                let next = if reliable {
                    deadline
                } else {
                    (now + (t1 * (1 << n.min(6))).min(cx.cfg.timers.t2)).min(deadline)
                };
                self.timers.set(SessionTimer::OkRetransmit(n + 1), next);
            }
            SessionTimer::Spec(leg, mi, id) => {
                let ev = Event::Timer(Timer::Spec(id));
                match leg.leg() {
                    None => self.run_machines_at(cx, &ev, Some(mi as usize)),
                    Some(i) => self.run_leg_machine(cx, i, &ev),
                }
                self.check_settled(cx);
            }
            SessionTimer::Lifetime if !self.lifetime_heard => {
                // The machines hear it first: ending the legs and the originator is the
                // spec's (6.1.3.3.2 `lifetime_over`). The runtime's teardown is the last
                // resort, for a session still not drained 64·T1 later.
                self.lifetime_heard = true;
                self.timers
                    .set(SessionTimer::Lifetime, now + cx.cfg.timers.t1 * 64);
                self.run_machines(cx, &Event::Timer(Timer::Lifetime));
                self.check_settled(cx);
            }
            SessionTimer::Lifetime => {
                self.end_unruled(cx, "timer lifetime", "session lifetime reached")
            }
            SessionTimer::Subscriptions => self.subscriptions_due(cx),
            SessionTimer::OriginatorMsrp => {
                if !cx.msrp.originator_bound(self.id) {
                    self.originator_msrp_lost(cx);
                }
            }
            SessionTimer::ReportWait(slot) => {
                if let Some(i) = slot.leg() {
                    self.report_wait_over(cx, i);
                }
            }
        }
    }

    /// A request whose body or recipient list could not be read and that no rule answered:
    /// the spec has no rule for `body.malformed` or `list.malformed` / `list.too_large` (a
    /// spec gap, logged as an error). The transaction still needs a final response
    /// (RFC 3261 §17.2.1): for a body that cannot be parsed the 400 with a Warning saying
    /// why that RFC 3261 §21.4.1 gives malformed syntax; for a list, whose status is no
    /// protocol's, 500, as for any request no rule answered.
    pub(super) fn unanswered_unreadable<A: Application>(&mut self, cx: &mut Ctx<'_, A>) {
        if self.answered.is_some() {
            return;
        }
        let (status, error, what) = if self.facts.body.malformed {
            (400, self.facts.body.error.clone(), "body")
        } else if !self.facts.list.error.is_empty() {
            (500, self.facts.list.error.clone(), "recipient list")
        } else {
            return;
        };
        let trigger = format!(
            "initial {}",
            self.request.method().map(|m| m.as_str()).unwrap_or("?")
        );
        self.spec_gap(
            None,
            &trigger,
            format_args!(
                "no spec rule answered a request whose {what} could not be read ({error}); {status} sent"
            ),
        );
        // Unanswered, so the request is kept (`OriginatorRequest`).
        if let (Some(c), Some(request)) = (StatusCode::new(status), self.request.message()) {
            let w = warning(&cx.agent(), &error);
            let mut b = sip::build::ResponseBuilder::new(request, c).to_tag(&self.local_tag);
            if status == 400 {
                b = b.header("Warning", &w);
            }
            let resp = b.write();
            let _ = cx.tsx.respond(cx.now, &self.server_tsx, status, resp);
            cx.live.response(status, None);
            cx.flush();
        }
        self.answered = Some(status);
        self.end(cx, "body or recipient list unreadable; no rule answered");
    }
}

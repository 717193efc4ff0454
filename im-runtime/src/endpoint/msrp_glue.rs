//! Between a session and the MSRP relay: binding after the answer and the ACK, delivery
//! of the held message to ready legs, reports, and what lost MSRP sessions mean. The relay
//! stays the endpoint's (it demultiplexes connections to sessions); the session decides.

use super::super::*;
use super::*;
use crate::proto::sdp::msrp::MsrpAttributes;
use msrp_relay::RelayEvent;

impl Session {
    pub(super) fn msrp_after_ack<A: Application>(&mut self, cx: &mut Ctx<'_, A>) {
        // An active answerer connects once the dialog is confirmed.
        if let Some(conn) = cx.msrp.connect_originator(self.id, cx.out) {
            cx.idle_conns.set(conn, cx.now + cx.cfg.msrp_idle);
        }
        if self.msrp_originator {
            self.timers
                .set(SessionTimer::OriginatorMsrp, cx.now + cx.cfg.msrp_idle);
        }
    }

    pub(super) fn msrp_leg_answered<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        i: usize,
        ans: &MsrpAttributes,
    ) {
        if let Some(conn) = cx.msrp.leg_answered(self.id, i, ans, cx.out) {
            cx.idle_conns.set(conn, cx.now + cx.cfg.msrp_idle);
        }
    }

    /// Sends the held message to every leg whose machine asked for it and whose MSRP
    /// session is up.
    pub(super) fn try_deliveries<A: Application>(&mut self, cx: &mut Ctx<'_, A>) {
        if self.held.is_none() {
            return;
        }
        for i in 0..self.legs.len() {
            self.try_delivery(cx, i);
        }
    }

    /// Sends the held message to leg `i` if its machine asked for it (`deliver`), its MSRP
    /// session is up and the copy has not gone yet.
    pub(super) fn try_delivery<A: Application>(&mut self, cx: &mut Ctx<'_, A>, i: usize) {
        let (Some(held), Some(l)) = (&self.held, self.legs.get_mut(i)) else {
            return;
        };
        if l.status != LegStatus::Connected
            || !l.want_delivery
            || l.delivery_started
            || !cx.msrp.leg_ready(self.id, i)
        {
            return;
        }
        l.delivery_started = true;
        let success_report = l.want_success_report;
        let tid_rand = cx.ids.random_bytes::<10>();
        let mid_rand = cx.ids.random_bytes::<10>();
        if let Some(conn) =
            cx.msrp
                .deliver(self.id, i, held, success_report, tid_rand, mid_rand, cx.out)
        {
            // The SEND's transaction timeout (RFC 4975 §7.1.1 suggests 30 s): no
            // response or REPORT by then and the leg's MSRP side is given up.
            cx.idle_conns.set(conn, cx.now + cx.cfg.msrp_idle);
            if success_report && let Some(slot) = LegSlot::new(Some(i)) {
                self.timers.set(
                    SessionTimer::ReportWait(slot),
                    cx.now + cx.cfg.msrp_report_wait,
                );
            }
        }
    }

    /// Leg `i`'s success REPORT did not come in time: unless its copy settled meanwhile,
    /// the leg's machine hears `msrp failed` with 408, the status RFC 4975 §7.1.1 gives a
    /// transaction that timed out (7.9.1.4 `copy_refused` records it).
    pub(super) fn report_wait_over<A: Application>(&mut self, cx: &mut Ctx<'_, A>, i: usize) {
        if cx.msrp.report_wait_over(self.id, i) {
            self.relay_event(cx, RelayEvent::Delivered(self.id, i, false, 408));
        }
    }

    pub(super) fn report<A: Application>(&mut self, cx: &mut Ctx<'_, A>, outcome: &ReportOutcome) {
        let tid = cx.ids.random_bytes::<10>();
        cx.msrp.report_to_originator(self.id, outcome, tid, cx.out);
    }

    /// What the relay reported for one of this session's MSRP sides.
    pub(super) fn relay_event<A: Application>(&mut self, cx: &mut Ctx<'_, A>, ev: RelayEvent) {
        match ev {
            RelayEvent::OriginatorBound(_) => {
                self.run_machines(cx, &Event::Msrp(crate::machine::MsrpEvent::Connected));
                self.try_deliveries(cx);
            }
            RelayEvent::LegBound(_, i) => {
                // The leg's own machine hears that its MSRP session is up.
                self.run_leg_machine(cx, i, &Event::Msrp(crate::machine::MsrpEvent::Connected));
                self.try_deliveries(cx);
            }
            RelayEvent::MessageComplete(_, m) => {
                cx.live.message_received(cx.now, self.id, m.data.len());
                if self.held.is_none() {
                    self.held = Some(Box::new(m));
                    self.facts.message.success_report =
                        cx.msrp.originator_wants_success_report(self.id);
                }
                let ev = Event::Msrp(crate::machine::MsrpEvent::MessageReceived);
                self.run_machines(cx, &ev);
                // The legs hear it too: one answered before the message came can now say how
                // its copy goes (`message.success_report` is known from here on).
                for i in 0..self.legs.len() {
                    self.run_leg_machine(cx, i, &ev);
                }
                self.try_deliveries(cx);
            }
            RelayEvent::Delivered(_, i, ok, code) => {
                let slot = LegSlot::new(Some(i));
                self.timers
                    .stop(|t| Some(*t) == slot.map(SessionTimer::ReportWait));
                // What the copy's outcome is, the leg's machine records (`outcome …`).
                if ok {
                    cx.stats.delivered += 1;
                    let bytes = self.held.as_ref().map_or(0, |m| m.data.len());
                    cx.live.copy_delivered(cx.now, self.id, bytes);
                }
                let ev = if ok {
                    crate::machine::MsrpEvent::Delivered
                } else {
                    crate::machine::MsrpEvent::DeliveryFailed(code)
                };
                self.run_leg_machine(cx, i, &Event::Msrp(ev));
                self.check_settled(cx);
            }
            RelayEvent::Closed(_, leg) => {
                match leg {
                    None => self.originator_msrp_lost(cx),
                    Some(i) => self.leg_msrp_lost(cx, i),
                }
                self.check_settled(cx);
            }
        }
    }

    /// An invitee's MSRP session is gone (closed, failed to connect, or idle too long): the
    /// leg's machine hears `msrp closed` and decides what it means for the copy (7.9.1.4
    /// `connection_lost`: failed, 408).
    fn leg_msrp_lost<A: Application>(&mut self, cx: &mut Ctx<'_, A>, i: usize) {
        self.run_leg_machine(cx, i, &Event::Msrp(crate::machine::MsrpEvent::Closed));
    }

    /// The originator's MSRP connection closed, failed or never came. Its machines hear of
    /// it and decide what becomes of the session (6.1.3.3.2 `closed_before_message`: BYE
    /// the originator, CANCEL and BYE the legs); with a message held, delivery goes on.
    pub(super) fn originator_msrp_lost<A: Application>(&mut self, cx: &mut Ctx<'_, A>) {
        self.run_machines(cx, &Event::Msrp(crate::machine::MsrpEvent::Closed));
    }
}

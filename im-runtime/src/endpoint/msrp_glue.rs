//! Between the sessions and the MSRP relay: binding after the answer and the ACK,
//! delivery of the held message to ready legs, reports, and what lost MSRP sessions mean.

use super::*;

impl<A: Application> Endpoint<A> {
    pub(super) fn msrp_after_answer(&mut self, now: Instant, sid: SessionId) {
        let Some(s) = self.sessions.get(&sid) else {
            return;
        };
        let Some(a) = s.msrp_answer.clone() else {
            return;
        };
        self.msrp.register_originator(sid, &s.msrp_session, &a);
        let _ = now;
    }

    pub(super) fn msrp_after_ack(&mut self, now: Instant, sid: SessionId) {
        // An active answerer connects once the dialog is confirmed.
        if let Some(conn) = self.msrp.connect_originator(sid, &mut self.out) {
            self.idle_conns.set(conn, now + MSRP_IDLE);
        }
        if self
            .sessions
            .get(&sid)
            .is_some_and(|s| s.msrp_answer.is_some())
        {
            self.set_timer(sid, SessionTimer::OriginatorMsrp, now + MSRP_IDLE);
        }
    }

    pub(super) fn msrp_leg_answered(&mut self, now: Instant, sid: SessionId, i: usize) {
        let Some(l) = self.sessions.get(&sid).and_then(|s| s.legs.get(i)) else {
            return;
        };
        let Some(ans) = l.answer_sdp.clone() else {
            return;
        };
        if let Some(conn) = self.msrp.leg_answered(sid, i, &ans, &mut self.out) {
            self.idle_conns.set(conn, now + MSRP_IDLE);
        }
    }

    pub(super) fn try_deliveries(&mut self, now: Instant, sid: SessionId) {
        let Some(s) = self.sessions.get(&sid) else {
            return;
        };
        let Some(held) = s.held.clone() else {
            return;
        };
        let ready: Vec<usize> = s
            .legs
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                l.status == LegStatus::Connected && l.want_delivery && !l.delivery_started
            })
            .map(|(i, _)| i)
            .filter(|&i| self.msrp.leg_ready(sid, i))
            .collect();
        for i in ready {
            if let Some(l) = self.sessions.get_mut(&sid).and_then(|s| s.legs.get_mut(i)) {
                l.delivery_started = true;
            }
            let tid_rand = self.random_bytes::<10>();
            let mid_rand = self.random_bytes::<10>();
            self.msrp
                .deliver(sid, i, &held, tid_rand, mid_rand, &mut self.out);
        }
        let _ = now;
    }

    pub(super) fn report(&mut self, now: Instant, sid: SessionId, outcome: &ReportOutcome) {
        let tid = self.random_bytes::<10>();
        self.msrp
            .report_to_originator(sid, outcome, tid, &mut self.out);
        let _ = now;
    }

    pub(super) fn handle_msrp_input(&mut self, now: Instant, conn: ConnId, data: Bytes) {
        let mut events = Vec::new();
        let tid = self.random_bytes::<10>();
        self.msrp
            .handle_bytes(conn, &data, &mut events, tid, &mut self.out);
        for ev in events {
            match ev {
                msrp_relay::RelayEvent::OriginatorBound(sid) => {
                    self.idle_conns.remove(conn);
                    self.run_session_machines(
                        now,
                        sid,
                        &Event::Msrp(crate::machine::MsrpEvent::Connected),
                    );
                    self.try_deliveries(now, sid);
                }
                msrp_relay::RelayEvent::LegBound(sid, i) => {
                    // The leg's own machine hears that its MSRP session is up.
                    self.idle_conns.remove(conn);
                    self.run_leg_machine(
                        now,
                        sid,
                        i,
                        &Event::Msrp(crate::machine::MsrpEvent::Connected),
                    );
                    self.try_deliveries(now, sid);
                }
                msrp_relay::RelayEvent::MessageComplete(sid, m) => {
                    self.live.message_received(now, sid, m.data.len());
                    if let Some(s) = self.sessions.get_mut(&sid)
                        && s.held.is_none()
                    {
                        s.held = Some(m);
                    }
                    self.run_session_machines(
                        now,
                        sid,
                        &Event::Msrp(crate::machine::MsrpEvent::MessageReceived),
                    );
                    self.try_deliveries(now, sid);
                }
                msrp_relay::RelayEvent::Delivered(sid, i, ok, code) => {
                    if let Some(l) = self.sessions.get_mut(&sid).and_then(|s| s.legs.get_mut(i))
                        && l.delivery.is_none()
                    {
                        l.delivery = Some(if ok { 200 } else { code });
                    }
                    if ok {
                        self.stats.delivered += 1;
                        let bytes = self
                            .sessions
                            .get(&sid)
                            .and_then(|s| s.held.as_ref())
                            .map_or(0, |m| m.data.len());
                        self.live.copy_delivered(now, sid, bytes);
                    }
                    let ev = if ok {
                        crate::machine::MsrpEvent::Delivered
                    } else {
                        crate::machine::MsrpEvent::DeliveryFailed(code)
                    };
                    self.run_leg_machine(now, sid, i, &Event::Msrp(ev));
                    self.check_settled(now, sid);
                }
                msrp_relay::RelayEvent::Closed(sid, leg) => {
                    match leg {
                        None => self.originator_msrp_lost(now, sid),
                        Some(i) => self.leg_msrp_lost(now, sid, i),
                    }
                    self.check_settled(now, sid);
                }
            }
        }
        self.reap(now);
    }

    /// An invitee's MSRP session is gone (closed, failed to connect, or idle too long): a
    /// copy that was due and not confirmed counts as undelivered (408), and the leg's machine
    /// decides what follows (typically BYE).
    pub(super) fn leg_msrp_lost(&mut self, now: Instant, sid: SessionId, i: usize) {
        if let Some(l) = self.sessions.get_mut(&sid).and_then(|s| s.legs.get_mut(i))
            && l.delivery.is_none()
            && (l.delivery_started || l.status == LegStatus::Connected)
        {
            l.delivery = Some(408);
        }
        self.run_leg_machine(now, sid, i, &Event::Msrp(crate::machine::MsrpEvent::Closed));
    }

    pub(super) fn handle_msrp_closed(&mut self, now: Instant, conn: ConnId) {
        let mut events = Vec::new();
        self.msrp.closed(conn, &mut events);
        for ev in events {
            if let msrp_relay::RelayEvent::Closed(sid, leg) = ev {
                match leg {
                    Some(i) => self.leg_msrp_lost(now, sid, i),
                    None => self.originator_msrp_lost(now, sid),
                }
                self.check_settled(now, sid);
            }
        }
        self.reap(now);
    }

    /// The originator's MSRP connection closed, failed or never came. Its machines hear of
    /// it; without a complete message there is nothing to deliver, so the session ends.
    pub(super) fn originator_msrp_lost(&mut self, now: Instant, sid: SessionId) {
        self.run_session_machines(now, sid, &Event::Msrp(crate::machine::MsrpEvent::Closed));
        if self.sessions.get(&sid).is_some_and(|s| s.held.is_none()) {
            self.end_session(now, sid, "no MSRP message from the originator");
        }
    }
}

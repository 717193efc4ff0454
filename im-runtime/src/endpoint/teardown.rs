//! Timers and teardown: ending a session, firing session timers and idle-connection
//! deadlines through their indexes.

use super::*;

impl<A: Application> Endpoint<A> {
    /// Tears a session down: CANCEL pending legs, BYE connected ones and the originator,
    /// close MSRP. The session is removed by [`reap`](Self::reap) once nothing is pending.
    pub(super) fn end_session(&mut self, now: Instant, sid: SessionId, why: &str) {
        self.dirty.push(sid);
        let Some(s) = self.sessions.get_mut(&sid) else {
            return;
        };
        if s.ending {
            return;
        }
        s.ending = true;
        tracing_log("session", &format!("ending session {} ({why})", s.call_id));
        let n = s.legs.len();
        for i in 0..n {
            self.cancel_leg(now, sid, i);
            self.bye_leg(now, sid, i);
        }
        self.bye_originator(now, sid);
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.originator_gone = true;
            if s.answered.is_none() {
                s.answered = Some(0);
            }
        }
        let legs = self.sessions.get(&sid).map_or(0, |s| s.legs.len());
        self.msrp.close_session(sid, legs, &mut self.out);
        self.dirty.push(sid);
        self.reap(now);
    }

    pub(super) fn fire_timer(&mut self, now: Instant, sid: SessionId, kind: SessionTimer) {
        self.dirty.push(sid);
        match kind {
            SessionTimer::OkRetransmit(n) => {
                let Some(s) = self.sessions.get(&sid) else {
                    return;
                };
                if s.acked || s.dialog.as_ref().is_some_and(|d| d.ended) {
                    return;
                }
                let t1 = self.cfg.timers.t1;
                let deadline = s.ok_at.unwrap_or(now) + t1 * 64;
                if now >= deadline {
                    // No ACK within 64·T1: end the dialog (§13.3.1.4).
                    if let Some(s) = self.sessions.get_mut(&sid)
                        && let Some(d) = s.dialog.as_mut()
                    {
                        d.confirmed = true;
                    }
                    // Reported to the machines as Timer H: the spec's "no ACK" case.
                    self.run_session_machines(now, sid, &Event::Timer(Timer::H));
                    self.end_session(now, sid, "no ACK for the 2xx");
                    return;
                }
                let key = s.server_tsx.clone();
                let reliable = s.peer.reliable;
                if let (Some(bytes), peer, false) = (s.ok_bytes.clone(), s.peer, reliable) {
                    let _ = self.tsx.respond(now, &key, 200, bytes.clone());
                    self.drain_tsx_transmits();
                    if self.tsx.state(Role::Server, &key).is_none() {
                        self.send_sip(peer, bytes);
                    }
                }
                // Intervals double from T1 up to T2 (§13.3.1.4), the last one cut at the
                // deadline so the session ends at 64·T1 exactly.
                let next = if reliable {
                    deadline
                } else {
                    (now + (t1 * (1 << n.min(6))).min(self.cfg.timers.t2)).min(deadline)
                };
                self.set_timer(sid, SessionTimer::OkRetransmit(n + 1), next);
            }
            SessionTimer::Spec(leg, mi, id) => {
                let ev = Event::Timer(Timer::Spec(id));
                match leg {
                    None => self.run_session_machines_at(now, sid, &ev, Some(mi)),
                    Some(i) => self.run_leg_machine(now, sid, i, &ev),
                }
                self.check_settled(now, sid);
            }
            SessionTimer::Lifetime => self.end_session(now, sid, "session lifetime reached"),
            SessionTimer::OriginatorMsrp => {
                if !self.msrp.originator_bound(sid) {
                    self.originator_msrp_lost(now, sid);
                }
            }
        }
        self.reap(now);
    }

    /// An MSRP connection was not bound in time.
    pub(super) fn conn_idle(&mut self, now: Instant, conn: ConnId) {
        if let Some((sid, leg)) = self.msrp.idle_timeout(conn, &mut self.out) {
            self.dirty.push(sid);
            match leg {
                None => self.originator_msrp_lost(now, sid),
                Some(i) => self.leg_msrp_lost(now, sid, i),
            }
            self.check_settled(now, sid);
        }
        self.reap(now);
    }

    /// Fires every session timer and idle-connection deadline due at `now`, in deadline
    /// order, through the two indexes.
    pub(super) fn fire_due(&mut self, now: Instant) {
        loop {
            let session = self.session_timers.first().filter(|at| *at <= now);
            let conn = self.idle_conns.first().filter(|at| *at <= now);
            match (session, conn) {
                (None, None) => break,
                (Some(a), Some(b)) if b < a => {
                    if let Some(c) = self.idle_conns.pop_due(now) {
                        self.conn_idle(now, c);
                    }
                }
                (Some(_), _) => {
                    let Some(sid) = self.session_timers.first_due(now) else {
                        break;
                    };
                    let due = match self.sessions.get_mut(&sid) {
                        Some(s) => s.timers.take_due(now),
                        None => Vec::new(),
                    };
                    self.dirty.push(sid);
                    if due.is_empty() {
                        // Never expected: the index and the session disagree. Drop the entry
                        // and re-file the session from its own table, so the loop ends.
                        self.session_timers.pop_first();
                        if let Some(s) = self.sessions.get_mut(&sid) {
                            s.filed = None;
                            let next = s.timers.next().filter(|at| *at > now);
                            self.session_timers.refile(sid, &mut s.filed, next);
                        }
                    }
                    for t in due {
                        self.fire_timer(now, sid, t);
                    }
                    self.reap(now);
                }
                (None, Some(_)) => {
                    if let Some(c) = self.idle_conns.pop_due(now) {
                        self.conn_idle(now, c);
                    }
                }
            }
        }
    }
}

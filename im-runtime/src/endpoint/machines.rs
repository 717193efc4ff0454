//! Running a session's generated machines (with `call`) and its legs' machines, and
//! executing their actions; the answer to the originator with its SDP answer.

use super::*;

impl<A: Application> Endpoint<A> {
    /// Runs every live machine of the session on `event`, then executes their actions.
    pub(super) fn run_session_machines(&mut self, now: Instant, sid: SessionId, event: &Event) {
        self.run_session_machines_at(now, sid, event, None);
    }

    /// Runs the session's machines (only machine `only` when given) on `event`.
    pub(super) fn run_session_machines_at(
        &mut self,
        now: Instant,
        sid: SessionId,
        event: &Event,
        only: Option<usize>,
    ) {
        // Each action is kept with the index of the machine that produced it, so that
        // `invite each` can ask that machine for its invitee-leg procedure.
        self.dirty.push(sid);
        let mut pending: VecDeque<(usize, Action)> = VecDeque::new();
        {
            let env = Env {
                config: &self.cfg.spec,
                directory: self.app.directory(),
                router: self.app.router(),
            };
            let Some(s) = self.sessions.get_mut(&sid) else {
                return;
            };
            // Disjoint borrows of the session: the machines run on its facts in place.
            let Session {
                facts, machines, ..
            } = s;
            for (i, m) in machines.iter_mut().enumerate() {
                if only.is_some_and(|o| o != i) {
                    continue;
                }
                if m.is_final() && !matches!(event, Event::InitialRequest(_)) {
                    continue;
                }
                pending.extend(
                    m.handle(now, event, facts, &env)
                        .into_iter()
                        .map(|a| (i, a)),
                );
            }
        }
        let mut calls = 0;
        while let Some((from, a)) = pending.pop_front() {
            if let ActionKind::Call(clause) = &a.kind {
                // `call`: run the callee on the same event and facts (bounded, so a spec
                // that calls itself cannot loop forever).
                calls += 1;
                if calls > 16 {
                    continue;
                }
                let Some(mut callee) = self.app.by_clause(clause) else {
                    log_action(&self.sessions, sid, &a, "no procedure for this clause");
                    continue;
                };
                log_action(&self.sessions, sid, &a, "");
                let actions = {
                    let env = Env {
                        config: &self.cfg.spec,
                        directory: self.app.directory(),
                        router: self.app.router(),
                    };
                    let facts = self
                        .sessions
                        .get(&sid)
                        .map(|s| s.facts.clone())
                        .unwrap_or_default();
                    callee.handle(now, event, &facts, &env)
                };
                let idx = match self.sessions.get_mut(&sid) {
                    Some(s) => {
                        s.machines.push(callee);
                        s.machines.len() - 1
                    }
                    None => return,
                };
                for (i, x) in actions.into_iter().enumerate() {
                    pending.insert(i, (idx, x));
                }
                continue;
            }
            self.execute(now, sid, None, Some(from), a);
        }
    }

    pub(super) fn run_leg_machine(
        &mut self,
        now: Instant,
        sid: SessionId,
        leg: usize,
        event: &Event,
    ) {
        self.dirty.push(sid);
        let actions = {
            let env = Env {
                config: &self.cfg.spec,
                directory: self.app.directory(),
                router: self.app.router(),
            };
            let Some(s) = self.sessions.get_mut(&sid) else {
                return;
            };
            // A leg's machine sees the session's facts with the leg's own status: no copy
            // of the facts per leg (that was O(legs²) for a list) nor per run.
            let Session { facts, legs, .. } = s;
            let Some(l) = legs.get_mut(leg) else {
                return;
            };
            let Some(m) = l.machine.as_mut() else {
                return;
            };
            if m.is_final() {
                return;
            }
            let session_status = std::mem::replace(&mut facts.status, l.status_code);
            let actions = m.handle(now, event, facts, &env);
            facts.status = session_status;
            actions
        };
        for a in actions {
            self.execute(now, sid, Some(leg), None, a);
        }
    }

    pub(super) fn execute(
        &mut self,
        now: Instant,
        sid: SessionId,
        leg: Option<usize>,
        from: Option<usize>,
        a: Action,
    ) {
        log_action(&self.sessions, sid, &a, "");
        let origin = a.origin;
        match a.kind {
            ActionKind::Respond(reply) => self.respond(now, sid, origin, reply),
            ActionKind::InviteEach(r) => self.invite_each(now, sid, r, from),
            ActionKind::ForwardEach(r) => self.forward_each(now, sid, r),
            ActionKind::Cancel => match leg {
                Some(i) => self.cancel_leg(now, sid, i),
                None => {
                    let n = self.sessions.get(&sid).map_or(0, |s| s.legs.len());
                    for i in 0..n {
                        self.cancel_leg(now, sid, i);
                    }
                }
            },
            ActionKind::Bye => match leg {
                Some(i) => self.bye_leg(now, sid, i),
                None => self.bye_originator(now, sid),
            },
            ActionKind::StartTimer(t, after) => {
                let id = spec_timer_id(t);
                let mi = from.unwrap_or(0);
                self.set_timer(sid, SessionTimer::Spec(leg, mi, id), now + after);
            }
            ActionKind::StopTimer(t) => {
                let id = spec_timer_id(t);
                let mi = from.unwrap_or(0);
                self.stop_timers(sid, |k| *k == SessionTimer::Spec(leg, mi, id));
            }
            ActionKind::Deliver => {
                match leg {
                    Some(i) => {
                        if let Some(l) = self.sessions.get_mut(&sid).and_then(|s| s.legs.get_mut(i))
                        {
                            l.want_delivery = true;
                        }
                    }
                    None => {
                        if let Some(s) = self.sessions.get_mut(&sid) {
                            for l in &mut s.legs {
                                l.want_delivery = true;
                            }
                        }
                    }
                }
                self.try_deliveries(now, sid);
            }
            ActionKind::Report(outcome) => self.report(now, sid, &outcome),
            ActionKind::Log(_) | ActionKind::Call(_) => {}
        }
    }

    pub(super) fn respond(&mut self, now: Instant, sid: SessionId, origin: Origin, reply: Reply) {
        self.dirty.push(sid);
        if let Some((key, msg)) = self.in_dialog_tsx.take() {
            self.respond_in_dialog(now, &key, &msg, origin, &reply);
            return;
        }
        let Some(s) = self.sessions.get(&sid) else {
            return;
        };
        if s.answered.is_some() {
            log_action(
                &self.sessions,
                sid,
                &Action {
                    origin,
                    kind: ActionKind::Respond(reply),
                },
                "already answered; ignored",
            );
            return;
        }
        let request = s.request.clone();
        let key = s.server_tsx.clone();
        let local_tag = s.local_tag.clone();
        let focus = s.focus.clone();
        let offer = s.facts.sdp.clone();
        let msrp_sid = s.msrp_session.clone();
        let mut status = reply.status;
        let mut reason = reply.reason.to_string();
        let mut warning_text = reply.warning.as_ref().map(|w| w.to_string());
        let mut body: Option<(String, Bytes)> = None;
        let mut role = None;
        if !reply.sdp_answer.is_empty() {
            match offer {
                Some(offer) => {
                    let local = LocalMedia {
                        address: self.cfg.msrp_advertised.ip().to_string(),
                        msrp_port: self.cfg.msrp_advertised.port(),
                        path: own_msrp_path(self.cfg.msrp_advertised, &msrp_sid),
                        session_id: self.rand() >> 12,
                        session_version: 1,
                    };
                    match answer::build_answer(&offer, &reply.sdp_answer, &local, &self.cfg.spec) {
                        Ok(a) => {
                            role = Some(a.clone());
                            body = Some(("application/sdp".into(), Bytes::from(a.sdp)));
                        }
                        Err(e) => {
                            // The spec asked for an answer the offer cannot support
                            // (e.g. no common accept-types): 488 with the reason.
                            status = 488;
                            reason = "Not Acceptable Here".into();
                            warning_text = Some(e.to_string());
                        }
                    }
                }
                None => {
                    status = 488;
                    reason = "Not Acceptable Here".into();
                    warning_text = Some("an SDP offer is required".into());
                }
            }
        }
        let Some(code) = StatusCode::new(status) else {
            return;
        };
        let mut b = sip::build::ResponseBuilder::new(&request, code).reason(&reason);
        if status > 100 {
            b = b.to_tag(&local_tag);
        }
        for (name, value) in &reply.headers {
            let v = match value {
                crate::machine::HeaderValue::Text(t) => t.to_string(),
                crate::machine::HeaderValue::FocusContact => format!("<{focus}>;isfocus"),
            };
            b = b.header(name, &v);
        }
        if let Some(w) = &warning_text {
            b = b.header("Warning", &warning(&self.agent(), w));
        }
        b = b.header(
            "Reason",
            &format!("SIP;text=\"clause {} rule {}\"", origin.clause, origin.rule),
        );
        if request.method() == Some(&Method::Invite) && (101..300).contains(&status) {
            // RFC 3261 §12.1.1: the dialog's route set goes back to the originator, so its
            // in-dialog requests take the proxies that record-routed (Kamailio in front of
            // several instances).
            for rr in request.header_lines(HeaderName::RecordRoute) {
                b = b.header("Record-Route", rr);
            }
        }
        if let Some((ct, data)) = body.clone() {
            b = b.body(&ct, data);
        }
        let Ok(resp) = b.build() else {
            return;
        };
        let bytes = resp.into_bytes();
        let _ = self.tsx.respond(now, &key, status, bytes.clone());
        self.live.response(status, Some(&origin));
        if (200..300).contains(&status) && request.method() == Some(&Method::Invite) {
            self.live.invite_answered(now, sid);
        }
        self.drain_tsx_transmits();
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.answered = Some(status);
            if (200..300).contains(&status) {
                s.dialog = Some(Dialog::server_side(&s.request, &local_tag, s.peer));
                s.ok_bytes = Some(bytes);
                s.ok_at = Some(now);
                if let Some(a) = role {
                    s.msrp_answer = Some(a);
                }
            } else if status >= 300 {
                s.originator_gone = true;
            }
        }
        if (200..300).contains(&status) && request.method() == Some(&Method::Invite) {
            // Over UDP the 2xx is retransmitted from T1 on; over TCP it is not, but the ACK
            // is still due within 64·T1 either way (§13.3.1.4).
            let reliable = self.sessions.get(&sid).is_some_and(|s| s.peer.reliable);
            let first = if reliable {
                self.cfg.timers.t1 * 64
            } else {
                self.cfg.timers.t1
            };
            self.set_timer(sid, SessionTimer::OkRetransmit(1), now + first);
            self.msrp_after_answer(now, sid);
        }
        self.check_settled(now, sid);
    }
}

impl<A: Application> Endpoint<A> {
    /// A spec `respond` to the in-dialog request being handled: status, reason, headers and
    /// Warning as the rule says; no SDP (an in-dialog answer carries no offer/answer here).
    fn respond_in_dialog(
        &mut self,
        now: Instant,
        key: &TsxKey,
        msg: &Message,
        origin: Origin,
        reply: &Reply,
    ) {
        let Some(code) = StatusCode::new(reply.status) else {
            return;
        };
        let mut b = sip::build::ResponseBuilder::new(msg, code).reason(&reply.reason);
        for (name, value) in &reply.headers {
            if let crate::machine::HeaderValue::Text(t) = value {
                b = b.header(name, t);
            }
        }
        if let Some(w) = &reply.warning {
            b = b.header("Warning", &warning(&self.agent(), w));
        }
        b = b.header(
            "Reason",
            &format!("SIP;text=\"clause {} rule {}\"", origin.clause, origin.rule),
        );
        if let Ok(resp) = b.build() {
            let _ = self.tsx.respond(now, key, reply.status, resp.into_bytes());
            self.live.response(reply.status, Some(&origin));
            self.drain_tsx_transmits();
        }
    }
}

pub(super) fn own_msrp_path(addr: SocketAddr, sid: &str) -> String {
    format!("msrp://{addr}/{sid};tcp")
}

pub(super) fn spec_timer_id(t: Timer) -> u16 {
    match t {
        Timer::Spec(n) => n,
        Timer::B => u16::MAX,
        Timer::F => u16::MAX - 1,
        Timer::H => u16::MAX - 2,
    }
}

pub(super) fn log_action(
    sessions: &BTreeMap<SessionId, Session>,
    sid: SessionId,
    a: &Action,
    note: &str,
) {
    let call_id = sessions.get(&sid).map(|s| s.call_id.as_str()).unwrap_or("");
    tracing::info!(
        call_id,
        procedure = a.origin.procedure,
        clause = a.origin.clause,
        rule = a.origin.rule,
        action = ?a.kind,
        note,
        "spec action"
    );
}

pub(super) fn tracing_log(what: &str, text: &str) {
    tracing::info!(what, "{text}");
}

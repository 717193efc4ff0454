//! Invitee legs (the server as UAC): recipients, invite each / forward each, CANCEL and
//! BYE of a leg, the invitees' answers and timeouts, and when the legs have settled.

use super::*;

impl<A: Application> Endpoint<A> {
    pub(super) fn recipients(&self, sid: SessionId, r: Recipients) -> Vec<(Uri, Option<String>)> {
        let Some(s) = self.sessions.get(&sid) else {
            return Vec::new();
        };
        match r {
            Recipients::RecipientList => s
                .facts
                .recipients
                .iter()
                .map(|e| (e.uri.clone(), e.display_name.clone()))
                .collect(),
            Recipients::GroupMembers => {
                let members = self
                    .app
                    .directory()
                    .members(&s.facts.request_uri)
                    .unwrap_or_default();
                let mut out: Vec<(Uri, Option<String>)> = Vec::new();
                for m in members {
                    if m.same_identity(&s.facts.originator)
                        || out.iter().any(|(u, _)| u.same_identity(&m))
                    {
                        continue;
                    }
                    out.push((m, None));
                }
                out
            }
        }
    }

    pub(super) fn invite_each(
        &mut self,
        now: Instant,
        sid: SessionId,
        r: Recipients,
        from: Option<usize>,
    ) {
        let targets = self.recipients(sid, r);
        let history = match (r, self.sessions.get(&sid)) {
            (Recipients::RecipientList, Some(s)) => Some(
                crate::proto::body::resource_lists::write_history(&s.facts.recipients),
            ),
            _ => None,
        };
        for (uri, _name) in targets {
            let route = self.app.router().route(&uri);
            let leg_sid = self.ids.msrp_session_id();
            let asked = from.and_then(|i| self.sessions.get(&sid)?.machines.get(i)?.invitee_leg());
            let Some(machine) = asked.or_else(|| self.app.invitee_leg()) else {
                continue;
            };
            let idx = self.sessions.get(&sid).map_or(0, |s| s.legs.len());
            let call_id = self.ids.call_id(self.cfg.sip_advertised.ip());
            let tag = self.token(1);
            let branch = format!("{}{}", tsx::MAGIC_COOKIE, self.token(1));
            let Some((focus, originator)) = self
                .sessions
                .get(&sid)
                .map(|s| (s.focus.clone(), s.facts.originator.raw.clone()))
            else {
                return;
            };
            let local = LocalMedia {
                address: self.cfg.msrp_advertised.ip().to_string(),
                msrp_port: self.cfg.msrp_advertised.port(),
                path: own_msrp_path(self.cfg.msrp_advertised, &leg_sid),
                session_id: 1 + idx as u64,
                session_version: 1,
            };
            let sdp = answer::build_offer(&local, &self.cfg.spec, &OfferOptions::default());
            let body = match &history {
                Some(h) => {
                    use crate::proto::body::mime::{Disposition, MediaType};
                    use crate::proto::body::multipart::{self, OutPart};
                    let boundary = format!("imspec-{}", self.token(1));
                    let parts = [
                        OutPart::new(
                            &MediaType::new("application", "sdp"),
                            Bytes::from(sdp.clone()),
                        ),
                        OutPart::new(
                            &MediaType::new("application", "resource-lists+xml"),
                            Bytes::from(h.clone()),
                        )
                        .disposition(
                            &Disposition::new("recipient-list-history")
                                .with_param("handling", Some("optional")),
                        ),
                    ];
                    match multipart::write(&boundary, &parts) {
                        Ok(b) => (multipart::content_type(&boundary).to_string(), b),
                        Err(_) => ("application/sdp".to_string(), Bytes::from(sdp.clone())),
                    }
                }
                None => ("application/sdp".to_string(), Bytes::from(sdp)),
            };
            let via = format!(
                "SIP/2.0/UDP {};branch={branch};rport",
                self.cfg.sip_advertised
            );
            let from_addr = format!("<{focus}>");
            let mut b = sip::build::RequestBuilder::new(Method::Invite, &uri.raw)
                .via_raw(&via)
                .from(&from_addr, &tag)
                .to(&format!("<{}>", uri.raw), None)
                .call_id(&call_id)
                .cseq(1)
                .max_forwards(70)
                .contact(&format!("<{focus}>;isfocus"))
                .header("Referred-By", &format!("<{originator}>"))
                .header("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS")
                .body(&body.0, body.1);
            if let Some(Route::OutboundProxy(p)) = route {
                b = b.route(&format!("<sip:{p};lr>"));
            }
            let dest = match route {
                Some(Route::Direct(a)) | Some(Route::OutboundProxy(a)) => Some(a),
                None => None,
            };
            let mut leg = Leg::new(uri.clone(), call_id.clone(), tag.clone(), machine, leg_sid);
            let built = b.build();
            let Some(s) = self.sessions.get_mut(&sid) else {
                return;
            };
            match (dest, built) {
                (Some(dest), Ok(invite)) => {
                    let peer = Peer {
                        addr: dest,
                        reliable: false,
                    };
                    leg.peer = Some(peer);
                    leg.invite = Some(invite.clone());
                    s.legs.push(leg);
                    self.by_dialog.insert((call_id, tag), (sid, Some(idx)));
                    if let Some(tm) = tsx_message(&invite) {
                        self.tsx.builder_mut().remember(&tm.key, &invite);
                        self.track_client(tm.key.clone(), sid, Some(idx));
                        if let Some(s) = self.sessions.get_mut(&sid)
                            && let Some(l) = s.legs.get_mut(idx)
                        {
                            l.invite_key = Some(tm.key.clone());
                        }
                        if self.tsx.send_request(now, tm, peer).is_ok() {
                            self.stats.invites_sent += 1;
                        }
                        self.drain_tsx_transmits();
                    }
                    self.msrp
                        .register_leg(sid, idx, &self.sessions[&sid].legs[idx].msrp_session);
                }
                _ => {
                    // Unroutable invitee: the leg fails at once, as if Timer B fired.
                    leg.status = LegStatus::Failed;
                    s.legs.push(leg);
                    self.live.leg(LegOutcome::NoRoute);
                    tracing_log("leg", &format!("no route to {}", uri.raw));
                    self.run_leg_machine(now, sid, idx, &Event::Timer(Timer::B));
                }
            }
        }
        self.check_settled(now, sid);
    }

    pub(super) fn forward_each(&mut self, now: Instant, sid: SessionId, r: Recipients) {
        let targets = self.recipients(sid, r);
        let Some(s) = self.sessions.get(&sid) else {
            return;
        };
        let request = s.request.clone();
        let facts = s.facts.clone();
        // The payload: the non-list parts of the original body (RFC 5365 §7).
        let (ct, payload) = page_mode_payload(&request, &self.cfg.body_limits);
        let history = matches!(r, Recipients::RecipientList)
            .then(|| crate::proto::body::resource_lists::write_history(&facts.recipients));
        // Each copy carries the hop budget the original had left, less this hop, so that a
        // list or group that names the exploder again (directly or through a proxy) runs
        // out of hops and ends in 483 instead of looping; 0 never gets here (refused above).
        let max_forwards = request
            .max_forwards()
            .map_or(70, |m| m.saturating_sub(1).min(70));
        for (uri, _) in targets {
            let route = self.app.router().route(&uri);
            let dest = match route {
                Some(Route::Direct(a)) | Some(Route::OutboundProxy(a)) => a,
                None => {
                    tracing_log("page-mode", &format!("no route to {}", uri.raw));
                    continue;
                }
            };
            let call_id = self.ids.call_id(self.cfg.sip_advertised.ip());
            let branch = format!("{}{}", tsx::MAGIC_COOKIE, self.token(1));
            let tag = self.token(1);
            let (body_ct, body) = match &history {
                Some(h) => {
                    use crate::proto::body::mime::{Disposition, MediaType};
                    use crate::proto::body::multipart::{self, OutPart};
                    let boundary = format!("imspec-{}", self.token(1));
                    let mt = crate::proto::body::mime::MediaType::parse(&ct)
                        .unwrap_or_else(|_| MediaType::new("text", "plain"));
                    let parts = [
                        OutPart::new(&mt, payload.clone()),
                        OutPart::new(
                            &MediaType::new("application", "resource-lists+xml"),
                            Bytes::from(h.clone()),
                        )
                        .disposition(
                            &Disposition::new("recipient-list-history")
                                .with_param("handling", Some("optional")),
                        ),
                    ];
                    match multipart::write(&boundary, &parts) {
                        Ok(b) => (multipart::content_type(&boundary).to_string(), b),
                        Err(_) => (ct.clone(), payload.clone()),
                    }
                }
                None => (ct.clone(), payload.clone()),
            };
            let mut b = sip::build::RequestBuilder::new(Method::Message, &uri.raw)
                .via_raw(&format!(
                    "SIP/2.0/UDP {};branch={branch};rport",
                    self.cfg.sip_advertised
                ))
                .from(&format!("<{}>", facts.originator.raw), &tag)
                .to(&format!("<{}>", uri.raw), None)
                .call_id(&call_id)
                .cseq(1)
                .max_forwards(max_forwards)
                .header("Referred-By", &format!("<{}>", facts.originator.raw))
                .body(&body_ct, body);
            if let Some(Route::OutboundProxy(p)) = route {
                b = b.route(&format!("<sip:{p};lr>"));
            }
            if let Ok(m) = b.build()
                && let Some(tm) = tsx_message(&m)
            {
                self.tsx.builder_mut().remember(&tm.key, &m);
                self.track_client(tm.key.clone(), sid, None);
                self.live.copy_sent(sid);
                let _ = self.tsx.send_request(
                    now,
                    tm,
                    Peer {
                        addr: dest,
                        reliable: false,
                    },
                );
                self.drain_tsx_transmits();
            }
        }
    }

    pub(super) fn cancel_leg(&mut self, now: Instant, sid: SessionId, i: usize) {
        let Some(l) = self.sessions.get_mut(&sid).and_then(|s| s.legs.get_mut(i)) else {
            return;
        };
        if l.status != LegStatus::Pending {
            return;
        }
        l.cancelled = true;
        if let Some(key) = l.invite_key.clone() {
            let _ = self.tsx.cancel(now, &key);
            self.drain_tsx_transmits();
        }
    }

    pub(super) fn bye_leg(&mut self, now: Instant, sid: SessionId, i: usize) {
        let req = {
            let Some(l) = self.sessions.get_mut(&sid).and_then(|s| s.legs.get_mut(i)) else {
                return;
            };
            let Some(d) = l.dialog.as_mut() else {
                return;
            };
            if d.ended {
                return;
            }
            d.ended = true;
            l.status = if l.status == LegStatus::Failed {
                LegStatus::Failed
            } else {
                LegStatus::Ended
            };
            d.request(Method::Bye, self.cfg.sip_advertised)
        };
        self.msrp.close_leg(sid, i, &mut self.out);
        self.send_in_dialog(now, sid, Some(i), req);
    }

    pub(super) fn client_response(&mut self, now: Instant, key: &TsxKey, resp: Message) {
        let Some(&ClientTsx { sid, leg, .. }) = self.by_client_tsx.get(key) else {
            return;
        };
        self.dirty.push(sid);
        let status = resp.status().map(u16::from).unwrap_or(0);
        let is_invite = key.method() == &Method::Invite;
        if key.method() == &Method::Message && status >= 200 {
            // A copy of a MESSAGE (its own leg-less transaction).
            self.live.leg(if status < 300 {
                LegOutcome::Answered
            } else {
                LegOutcome::Rejected
            });
            self.live.copy_done(now, sid, status < 300);
        }
        let Some(i) = leg else {
            return;
        };
        if !is_invite {
            // BYE or MESSAGE answered: nothing else to do for the leg.
            return;
        }
        let Some(l) = self.sessions.get_mut(&sid).and_then(|s| s.legs.get_mut(i)) else {
            return;
        };
        l.status_code = Some(status);
        if (200..300).contains(&status) {
            let first = l.dialog.is_none();
            if first {
                self.live.leg(LegOutcome::Answered);
            }
            if first {
                // The INVITE (with its history part, O(recipients) bytes) is needed only
                // to build the dialog; the leg keeps the dialog, not the request.
                if let Some(inv) = l.invite.take() {
                    l.dialog = Dialog::client_side(&inv, &resp, l.peer);
                }
                l.status = if l.cancelled {
                    LegStatus::Ended
                } else {
                    LegStatus::Connected
                };
                l.answer_sdp = crate::proto::sdp::facts(&resp.body()).ok();
            }
            // ACK every 2xx (retransmissions included, §13.2.2.4).
            let ack = l
                .dialog
                .as_mut()
                .and_then(|d| d.ack(self.cfg.sip_advertised));
            let cancelled = l.cancelled;
            self.send_in_dialog(now, sid, Some(i), ack);
            if !first {
                return;
            }
            if cancelled {
                // The 2xx crossed our CANCEL: the leg is not wanted any more.
                self.bye_leg(now, sid, i);
                self.check_settled(now, sid);
                return;
            }
            self.msrp_leg_answered(now, sid, i);
        } else if status >= 300 {
            l.status = LegStatus::Failed;
            l.invite = None;
            self.live.leg(LegOutcome::Rejected);
        }
        self.run_leg_machine(now, sid, i, &Event::Response(status));
        self.check_settled(now, sid);
    }

    pub(super) fn client_timeout(&mut self, now: Instant, key: &TsxKey) {
        let Some(&ClientTsx { sid, leg, .. }) = self.by_client_tsx.get(key) else {
            return;
        };
        self.dirty.push(sid);
        if key.method() == &Method::Message {
            self.live.leg(LegOutcome::TimedOut);
            self.live.copy_done(now, sid, false);
        }
        let Some(i) = leg else {
            return;
        };
        if key.method() != &Method::Invite {
            return;
        }
        if let Some(l) = self.sessions.get_mut(&sid).and_then(|s| s.legs.get_mut(i))
            && l.status == LegStatus::Pending
        {
            l.status = LegStatus::Failed;
            self.live.leg(LegOutcome::TimedOut);
        }
        self.run_leg_machine(now, sid, i, &Event::Timer(Timer::B));
        self.check_settled(now, sid);
    }

    /// Sends `LegsSettled` once every leg is final and every connected leg's delivery has
    /// an outcome (or no message will come); then ends the legs that are done.
    pub(super) fn check_settled(&mut self, now: Instant, sid: SessionId) {
        self.dirty.push(sid);
        self.settle(now, sid);
        self.end_finished_legs(now, sid);
    }

    /// A pager-mode leg exists to carry one copy of the message. Once the legs have
    /// settled (each connected leg's copy has an outcome) and the originator's side is over
    /// (the spec BYE'd it after its report, or the originator hung up), nothing can come
    /// over a connected leg any more: BYE it, so that the session can end. The invitee-leg
    /// procedure may BYE a leg itself; `bye_leg` ignores a leg already ended.
    pub(super) fn end_finished_legs(&mut self, now: Instant, sid: SessionId) {
        let Some(s) = self.sessions.get(&sid) else {
            return;
        };
        let originator_over = s.originator_gone || s.dialog.as_ref().is_some_and(|d| d.ended);
        if !s.settled_sent || !originator_over {
            return;
        }
        let connected: Vec<usize> = s
            .legs
            .iter()
            .enumerate()
            .filter(|(_, l)| l.status == LegStatus::Connected)
            .map(|(i, _)| i)
            .collect();
        for i in connected {
            self.bye_leg(now, sid, i);
        }
    }

    pub(super) fn settle(&mut self, now: Instant, sid: SessionId) {
        let Some(s) = self.sessions.get(&sid) else {
            return;
        };
        if s.settled_sent || s.legs.is_empty() {
            return;
        }
        let done = s.legs.iter().all(|l| match l.status {
            LegStatus::Pending => false,
            LegStatus::Connected => l.delivery.is_some() || s.originator_gone,
            LegStatus::Failed | LegStatus::Ended => true,
        });
        if !done {
            return;
        }
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.settled_sent = true;
            s.facts.legs = s.leg_counts();
        }
        for l in self
            .sessions
            .get(&sid)
            .map(|s| s.outcomes())
            .unwrap_or_default()
        {
            tracing_log("outcome", &l);
        }
        self.run_session_machines(now, sid, &Event::LegsSettled);
    }
}

pub(super) fn page_mode_payload(request: &Message, limits: &BodyLimits) -> (String, Bytes) {
    let body = request.body();
    let ct = request
        .content_type()
        .map(|c| c.essence())
        .unwrap_or_else(|| "text/plain".into());
    if ct.starts_with("multipart/")
        && let Some(boundary) = request
            .content_type()
            .and_then(|c| c.param("boundary").map(|b| b.to_string()))
        && let Ok(mp) = crate::proto::body::multipart::parse(&body, &boundary, &limits.multipart)
        && let Some(p) = mp.parts.iter().find(|p| {
            let d = p
                .disposition
                .as_ref()
                .map(|d| d.kind.as_str())
                .unwrap_or("");
            d != "recipient-list" && d != "recipient-list-history"
        })
    {
        let ct = p.header("Content-Type").unwrap_or("text/plain").to_string();
        return (ct, p.body.clone());
    }
    let full = request
        .header(HeaderName::ContentType)
        .unwrap_or("text/plain")
        .to_string();
    (full, body)
}

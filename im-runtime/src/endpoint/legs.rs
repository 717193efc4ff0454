//! Invitee legs (the server as UAC): recipients, invite each / forward each, CANCEL and
//! BYE of a leg, the invitees' answers and timeouts, and when the legs have settled.

use super::super::*;
use super::*;
use crate::machine::{Invitation, ListEntry};
use route_leg::LegTransport;
use std::borrow::Cow;

/// 430 Flow Failed (RFC 5626 §11.5): what a leg hears when its invitee's outbound flow has
/// closed (§5.3).
const FLOW_FAILED: u16 = 430;

impl Session {
    /// The addresses a fan-out reaches: the source the spec names, narrowed by the spec's
    /// selection (nothing is dropped unless the spec says so).
    fn recipients<A: Application>(
        &self,
        cx: &Ctx<'_, A>,
        r: Recipients,
        s: Selection,
    ) -> Vec<ListEntry> {
        // Each as a list entry: what `{invitee.…}` in the spec's headers reads (a group
        // member has no display name).
        let all: Vec<ListEntry> = match r {
            Recipients::RecipientList => self.facts.recipients.clone(),
            Recipients::GroupMembers => cx
                .app
                .directory()
                .members(&self.facts.request_uri)
                .unwrap_or_default()
                .iter()
                .map(super::super::invitation::entry)
                .collect(),
        };
        s.apply(all, &self.facts.originator, |e| &e.uri)
    }

    pub(super) fn invite_each<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        r: Recipients,
        s: Selection,
        inv: &Invitation,
        from: Option<usize>,
    ) {
        let targets = self.recipients(cx, r, s);
        // A leg is several hundred bytes: no doubling slack kept with each idle session.
        self.legs.reserve_exact(targets.len());
        // The history part only when the spec asks for it (RFC 5364); it names whom the
        // spec's selection addresses (RFC 5365 §7.2).
        let history = inv.history.then(|| {
            crate::proto::body::resource_lists::write_history(s.apply(
                self.facts.recipients.iter().collect(),
                &self.facts.originator,
                |e| &e.uri,
            ))
        });
        for target in targets {
            let uri = &target.uri;
            // Transport and connection: `route_leg.rs` (an invitee that wants TLS from a
            // server without it is unroutable).
            let (mut routed, path_routes) = match cx.route_leg(uri) {
                Some((r, route, p)) => (Some((r, route)), p),
                None => (None, None),
            };
            let tls = routed
                .as_ref()
                .is_some_and(|(r, _)| r.transport == LegTransport::Tls);
            let proxy = match &routed {
                Some((_, Route::OutboundProxy(p))) => Some(*p),
                _ => None,
            };
            let leg_sid = cx.ids.msrp_session_id();
            let asked = from.and_then(|i| self.machines.get(i)?.invitee_leg());
            let Some(machine) = asked.or_else(|| cx.app.invitee_leg()) else {
                continue;
            };
            let idx = self.legs.len();
            let call_id = cx.ids.call_id(cx.cfg.sip_advertised.ip());
            // An invitee's SUBSCRIBE in the leg's dialog is steered by this tag.
            let tag = cx.ids.dialog_tag();
            let branch = cx.ids.prefixed_token(tsx::MAGIC_COOKIE);
            let (own, path, opts) = cx.leg_media(tls, &leg_sid);
            let local = LocalMedia {
                address: ip_string(own.ip()),
                msrp_port: own.port(),
                path,
                session_id: 1 + idx as u64,
                session_version: 1,
            };
            let sdp = super::super::invitation::offer(&local, &cx.cfg.spec, opts.tls, inv);
            let body = history
                .as_ref()
                .and_then(|h| with_history(cx.ids, "application/sdp", sdp.as_bytes(), h))
                .unwrap_or_else(|| ("application/sdp".to_string(), Bytes::from(sdp)));
            let build = |t: LegTransport| {
                let (via, focus_contact) = cx.via_contact(t, self.facts.focus.raw(), &branch);
                let (contact, headers) =
                    super::super::invitation::headers(inv, &focus_contact, &target);
                // RFC 3261 §8.1.1: what every request carries; the rest is the spec's. From,
                // To and Max-Forwards are the spec's when it gives them (7.9.1.4: the
                // session's focus, the invitee, 70), these defaults only for a spec that
                // says nothing.
                let from_addr = match super::super::invitation::from(inv, &target) {
                    Some(f) => f.into_owned(),
                    None => format!("<{}>", self.facts.focus.raw()),
                };
                let hops = super::super::invitation::max_forwards(inv).unwrap_or(70);
                let mut b = sip::build::RequestBuilder::new(Method::Invite, uri.raw())
                    .via_raw(&via)
                    .from(&from_addr, &tag)
                    .to(&super::super::invitation::to(inv, &target), None)
                    .call_id(&call_id)
                    .cseq(1)
                    .max_forwards(hops)
                    .contact(&contact);
                for (name, value) in &headers {
                    b = b.header(name, value);
                }
                let mut b = b.body(&body.0, body.1.clone());
                if let Some(p) = proxy {
                    b = b.route(&format!("<sip:{p};lr>"));
                }
                // The invitee registered through proxies: its Path is the route set (RFC
                // 3327 §5.3).
                for r in path_routes.iter().flat_map(|p| p.iter()) {
                    b = b.route(r);
                }
                b.build_own()
            };
            let mut built = build(
                routed
                    .as_ref()
                    .map_or(LegTransport::Udp, |(r, _)| r.transport),
            );
            let mut udp_retry = false;
            if let (Some((r, _)), Ok(m)) = (routed.as_mut(), &built)
                && cx.upgrade_for_size(r, m.as_bytes().len())
            {
                udp_retry = true;
                built = build(LegTransport::Tcp);
            }
            let mut leg = Leg::new(uri.clone(), call_id, tag, machine, leg_sid);
            leg.udp_retry = udp_retry;
            if let (Some((r, _)), Ok(_)) = (&routed, &built) {
                cx.open_leg(r, (self.id, Some(idx)));
            }
            match (routed, built) {
                (Some((r, _)), Ok(invite)) => {
                    let peer = r.peer;
                    leg.peer = Some(peer);
                    cx.index_dialog(leg.dialog_key().1, self.id, Some(idx));
                    if let Some((key, holds, sent)) =
                        cx.send_request(&invite, peer, self.id, Some(idx))
                    {
                        self.track(holds);
                        leg.invite_key = Some(key);
                        if sent {
                            cx.stats.invites_sent += 1;
                        }
                    }
                    leg.invite = Some(Box::new(invite));
                    cx.msrp
                        .register_leg(self.id, idx, &leg.msrp_session, opts.tls);
                    self.legs.push(leg);
                }
                (None, Ok(_)) if cx.flow_failed(uri) => {
                    // The invitee's outbound flow has closed and it registered no other
                    // (RFC 5626 §5.3): its leg fails as if the edge proxy had answered 430
                    // Flow Failed (§11.5), a status a spec rule can tell from no route.
                    tracing_log(
                        "leg",
                        &format!("outbound flow of {} closed: 430 Flow Failed", uri.raw()),
                    );
                    leg.status = LegStatus::Failed;
                    leg.status_code = Some(FLOW_FAILED);
                    self.legs.push(leg);
                    cx.live.leg(LegOutcome::Rejected);
                    self.run_leg_machine(cx, idx, &Event::Response(FLOW_FAILED));
                }
                _ => {
                    // Unroutable invitee: nothing is sent, no response or timer will come.
                    // Its machine hears `leg unroutable`, with `copy.recipient_offline` for
                    // a user of this domain (who could register); the status its copy
                    // fails with is the machine's (7.9.1.4 `on leg unroutable`: 480 or 503).
                    let offline = super::offline::no_route_status(cx, uri) != 0;
                    // No `status_code`: no response came (logs say "no answer").
                    leg.status = LegStatus::Failed;
                    self.legs.push(leg);
                    cx.live.leg(LegOutcome::NoRoute);
                    tracing_log(
                        "leg",
                        &format!("no route to {} (offline user: {offline})", uri.raw()),
                    );
                    let copy = crate::machine::CopyFacts {
                        recipient_offline: offline,
                        storable: false,
                    };
                    let session_copy = std::mem::replace(&mut self.facts.copy, copy);
                    self.run_leg_machine(
                        cx,
                        idx,
                        &Event::Leg(crate::machine::LegEvent::Unroutable),
                    );
                    self.facts.copy = session_copy;
                }
            }
        }
        if self.legs.is_empty() {
            // No one to invite (the spec's selection left nobody, or no leg procedure):
            // every leg has settled at once, and the session machines hear it now rather
            // than never (6.1.3.3.2 reads `legs.total` 0 as a failure).
            self.send_settled(cx);
        } else {
            self.check_settled(cx);
        }
    }

    pub(super) fn forward_each<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        r: Recipients,
        s: Selection,
        inv: &Invitation,
    ) {
        let targets = self.recipients(cx, r, s);
        // The payload: the non-list parts of the original body (RFC 5365 §7).
        let (ct, payload) = self.payload(cx);
        let request = self.request.message();
        let facts = &self.facts;
        // The history part and the headers only when the spec asks for them.
        let history = inv.history.then(|| {
            let named = s.apply(facts.recipients.iter().collect(), &facts.originator, |e| {
                &e.uri
            });
            crate::proto::body::resource_lists::write_history(named)
        });
        // Each copy carries the hop budget the original had left, less this hop, so that a
        // list or group that names the exploder again (directly or through a proxy) runs
        // out of hops and ends in 483 instead of looping; 0 never gets here (refused above).
        // The spec gives it (RFC 5365 exploder: `{request.max_forwards_decremented}`); for
        // a spec that says nothing, the same default.
        let max_forwards = super::super::invitation::max_forwards(inv).unwrap_or_else(|| {
            request
                .and_then(Message::max_forwards)
                .map_or(70, |m| m.saturating_sub(1).min(70))
        });
        let mut holds_any = 0;
        let mut sent = Vec::new();
        let mut unroutable = Vec::new();
        // One body for every copy, written once: the copies differ only in their headers,
        // and a boundary the payload and history do not hold is absent from every copy.
        let with = history.as_ref().and_then(|h| {
            let mt = crate::proto::body::mime::MediaType::parse(&ct)
                .unwrap_or_else(|_| crate::proto::body::mime::MediaType::new("text", "plain"));
            with_history(cx.ids, &mt.to_string(), &payload, h)
        });
        let our_ct = with.is_some();
        let (body_ct, body) = with.unwrap_or_else(|| (ct.clone(), payload.clone()));
        // Every value of a copy is ours, the spec's, or from the checked request, but for
        // the originator's URI (from an identity header) and a payload's own Content-Type
        // sent as the copy's: with the URI checked here once and the multipart type ours, a
        // copy is parsed back for its structure only (`build_own` checks each
        // Request-URI), as an invitee INVITE is; otherwise it gets the full check.
        let checked = our_ct && crate::proto::sip::Uri::parse(facts.originator.raw()).is_ok();
        for target in targets {
            // A recipient's copy travels as an invitee's INVITE would (`route_leg.rs`), its
            // size included (RFC 3428 §7, RFC 3261 §18.1.1).
            let (mut r, route, path) = match cx.route_leg(&target.uri) {
                Some(routed) => routed,
                None => {
                    tracing_log("page-mode", &format!("no route to {}", target.uri.raw()));
                    unroutable.push(target.uri);
                    continue;
                }
            };
            let uri = &target.uri;
            let from_addr = super::super::invitation::from(inv, &target)
                .map_or_else(|| format!("<{}>", facts.originator.raw()), Cow::into_owned);
            let call_id = cx.ids.call_id(cx.cfg.sip_advertised.ip());
            let branch = cx.ids.prefixed_token(tsx::MAGIC_COOKIE);
            let tag = cx.ids.token(1);
            let via = cx.via(r.transport, &branch);
            let mut b = sip::build::RequestBuilder::new(Method::Message, uri.raw())
                .via_raw(&via)
                .from(&from_addr, &tag)
                .to(&super::super::invitation::to(inv, &target), None)
                .call_id(&call_id)
                .cseq(1)
                .max_forwards(max_forwards);
            // A MESSAGE opens no dialog: a focus Contact does not apply (the checker refuses
            // one on `forward each`).
            for (name, t) in super::super::invitation::text_headers(inv, &target) {
                b = b.header(name, &t);
            }
            let mut b = b.body(&body_ct, body.clone());
            if let Route::OutboundProxy(p) = route {
                b = b.route(&format!("<sip:{p};lr>"));
            }
            for r in path.iter().flat_map(|p| p.iter()) {
                b = b.route(r);
            }
            let built = if checked { b.build_own() } else { b.build() };
            if let Ok(m) = built {
                // Over `max_udp_request`: TCP, as for an invitee INVITE (`route_leg.rs`).
                let (m, for_size) = cx.size_copy(&mut r, m, &branch);
                let peer = r.peer;
                cx.open_leg(&r, (self.id, None));
                cx.live.copy_sent(self.id);
                // A copy whose outcome a delivery report may need holds the session until
                // its final answer.
                let hold =
                    facts.message.wants_positive_delivery || facts.message.wants_negative_delivery;
                if let Some((key, holds, _)) =
                    cx.send_request_holding(&m, peer, self.id, None, hold)
                {
                    if for_size {
                        cx.sized_copy_sent(peer.addr, self.id, key.clone(), m, hold);
                    }
                    holds_any += usize::from(holds);
                    sent.push((target.uri, key));
                }
            }
        }
        for _ in 0..holds_any {
            self.track(true);
        }
        for (uri, key) in sent {
            self.copy_sent(uri, key);
        }
        // Not every copy is in `copies` until the loop ends: an aggregate waits for it.
        self.copies.fanning_out = true;
        for uri in unroutable {
            self.copy_unroutable(cx, uri);
        }
        self.copies.fanning_out = false;
        self.flush_collected(cx);
    }

    /// CANCELs leg `i` if its INVITE is still unanswered; whether it did.
    pub(super) fn cancel_leg<A: Application>(&mut self, cx: &mut Ctx<'_, A>, i: usize) -> bool {
        let Some(l) = self.legs.get_mut(i) else {
            return false;
        };
        if l.status != LegStatus::Pending {
            return false;
        }
        l.cancelled = true;
        let reachable = l.peer.is_none_or(|p| cx.redial_peer(p, self.id));
        if let Some(key) = &l.invite_key {
            if reachable {
                let _ = cx.tsx.cancel(cx.now, key);
                cx.flush();
            } else {
                // The INVITE went over the invitee's registration flow, now closed: no
                // CANCEL can reach it and no answer can come back (RFC 5626 §5.3), so it
                // ends now as Timer B would end it (RFC 3261 §9.1), and the leg's machine
                // hears that at once rather than after 64*T1.
                tracing_log(
                    "leg",
                    &format!(
                        "flow to {} closed: CANCEL not sent, INVITE to {} ended",
                        l.peer.map_or_else(String::new, |p| p.addr.to_string()),
                        l.uri.raw()
                    ),
                );
                // The invitee may still answer 2xx over a new connection (RFC 3261
                // §18.2.2): that 2xx finds no transaction, so it is recognised by this
                // INVITE's key for the 2xx window (RFC 6026 §7.2), ACKed, and the leg's
                // machine says what becomes of it (`late_answers.rs`).
                if let (Some(inv), Some(p)) = (l.invite.as_deref(), l.peer) {
                    let until = cx.now + 64 * cx.cfg.timers.t1;
                    cx.sip_tls.out.late.expect(
                        cx.now,
                        until,
                        key.clone(),
                        (self.id, i),
                        l.dialog_key(),
                        inv,
                        p,
                    );
                }
                cx.fail_now(key);
            }
        }
        true
    }

    /// A session machine's `cancel legs` (or `cancel`): each leg still waiting for its answer
    /// is CANCELled and its machine hears `leg cancelled`, so that what a 2xx crossing the
    /// CANCEL means is the leg machine's rule (7.9.1.4 `answered_after_cancel`: BYE).
    pub(super) fn cancel_legs<A: Application>(&mut self, cx: &mut Ctx<'_, A>) {
        for i in 0..self.legs.len() {
            if self.cancel_leg(cx, i) {
                self.run_leg_machine(cx, i, &Event::Leg(crate::machine::LegEvent::Cancelled));
            }
        }
        // No settling here, in the middle of a session rule's actions: the CANCELled
        // INVITE's final response (or Timer B) comes next and settles the legs.
    }

    pub(super) fn bye_leg<A: Application>(&mut self, cx: &mut Ctx<'_, A>, i: usize) {
        let sid = self.id;
        let req = {
            let Some(l) = self.legs.get_mut(i) else {
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
            let reachable = cx.redial(d, (sid, Some(i)));
            d.request(Method::Bye, cx.cfg.sip_advertised)
                .map(|(m, p)| (m, p, reachable))
        };
        cx.msrp.close_leg(self.id, i, cx.out);
        self.send_in_dialog(cx, Some(i), req);
        // Its dialog is over: the leg no longer holds its connection (the BYE's own
        // transaction is short and its answer restarts the idle clock).
        cx.leg_ended(sid, i);
    }

    /// The INVITE transactions of this session's legs still waiting for an answer from
    /// `addr`: what a failed TLS connect to `addr` ends (`endpoint/secure.rs`).
    pub(crate) fn pending_invites_to(&self, addr: SocketAddr) -> impl Iterator<Item = TsxKey> {
        self.legs
            .iter()
            .filter(move |l| {
                l.status == LegStatus::Pending
                    && l.peer.is_some_and(|x| x.addr == addr && x.reliable)
            })
            .filter_map(|l| l.invite_key.clone())
    }

    pub(super) fn client_response<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        leg: Option<usize>,
        key: &TsxKey,
        resp: Message,
    ) {
        let status = resp.status().map(u16::from).unwrap_or(0);
        let is_invite = key.method() == &Method::Invite;
        let Some(i) = leg else {
            // Outside any leg: a page-mode copy (or a notification, which is ignored).
            self.copy_answered(cx, key, Some(status));
            return;
        };
        if !is_invite {
            // BYE or MESSAGE answered: nothing else to do for the leg.
            return;
        }
        let Some(l) = self.legs.get_mut(i) else {
            return;
        };
        l.status_code = Some(status);
        if (200..300).contains(&status) {
            let first = l.dialog.is_none();
            if first {
                cx.live.leg(LegOutcome::Answered);
            }
            if first {
                // The INVITE (with its history part, O(recipients) bytes) is needed only
                // to build the dialog; the leg keeps the dialog, not the request.
                if let Some(inv) = l.invite.take() {
                    l.make_dialog(&inv, &resp);
                }
                // Over TLS the dialog's requests say TLS; over TCP, TCP (`route_leg.rs`).
                if let Some(d) = l.dialog.as_mut() {
                    d.tls = cx.dialog_tls(d.peer);
                }
                l.status = LegStatus::Connected;
            }
            // ACK every 2xx (retransmissions included, §13.2.2.4).
            if let Some((ack, peer)) = l.dialog.as_mut().map(|d| d.ack(cx.cfg.sip_advertised)) {
                cx.transmit(peer, ack);
            }
            let cancelled = l.cancelled;
            let own_cancel = l.cancelled_by_own_machine;
            if !first {
                return;
            }
            if cancelled && !own_cancel && self.ending {
                // The 2xx crossed a CANCEL of the runtime's last-resort teardown (`end`:
                // shutdown, a session no rule ended), which no machine heard: the session
                // is going, so is the dialog.
                self.bye_leg(cx, i);
                self.check_settled(cx);
                return;
            }
            // The answer's SDP is read once, to set up the leg's MSRP side (its MSRP
            // section's attributes only: the leg keeps none of it, so no facts are built). A 2xx that crossed a CANCEL (the leg machine's own, or the
            // session's `cancel legs`, which the leg machine heard as `leg cancelled`) sets
            // up no MSRP: the leg machine decides what becomes of the dialog (7.9.1.4
            // `answered_after_cancel`: BYE).
            if !cancelled && let Some(answer) = crate::proto::sdp::answer_msrp(&resp.body()) {
                self.msrp_leg_answered(cx, i, &answer);
            }
        } else if status >= 300 {
            l.status = LegStatus::Failed;
            l.invite = None;
            cx.live.leg(LegOutcome::Rejected);
            // No dialog: the leg no longer holds its connection (the ACK of this answer
            // goes at once).
            cx.leg_ended(self.id, i);
        }
        self.run_leg_machine(cx, i, &Event::Response(status));
        self.check_settled(cx);
    }

    pub(super) fn client_timeout<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        leg: Option<usize>,
        key: &TsxKey,
    ) {
        // A non-INVITE request the session sent got no final answer (RFC 3261 §17.1.2.2:
        // Timer F, or a transport error): the machines hear `timer F` and decide what it
        // means (ext-dr.8: a page-mode copy is a failed copy).
        let Some(i) = leg else {
            if key.method() == &Method::Message {
                self.copy_timed_out(cx, key);
            } else if key.method() == &Method::Bye {
                self.run_machines(cx, &Event::Timer(Timer::F));
            }
            return;
        };
        if key.method() != &Method::Invite {
            self.run_leg_machine(cx, i, &Event::Timer(Timer::F));
            self.check_settled(cx);
            return;
        }
        if self
            .legs
            .get(i)
            .is_some_and(|l| l.invite_key.as_ref() != Some(key))
        {
            // An INVITE sent again over UDP (`route_leg.rs`): its first try ends quietly.
            return;
        }
        if let Some(l) = self.legs.get_mut(i)
            && l.status == LegStatus::Pending
        {
            l.status = LegStatus::Failed;
            cx.live.leg(LegOutcome::TimedOut);
            cx.leg_ended(self.id, i);
        }
        self.run_leg_machine(cx, i, &Event::Timer(Timer::B));
        // An INVITE ended without its CANCEL: a late 2xx to it goes to this machine, which
        // leaves the leg (a leg without a machine has settled).
        if cx.sip_tls.out.late.waits_for(key)
            && let Some(m) = self.legs.get_mut(i).and_then(|l| l.machine.take())
        {
            cx.sip_tls.out.late.decided_by(key, m);
        }
        self.check_settled(cx);
    }

    /// Sends `LegsSettled` once every leg's machine has reached a final state: when a leg
    /// is over, and what became of its copy (`outcome …`), is its machine's decision
    /// (7.9.1.4 `invitee_leg`), as ending the connected legs then is the session's
    /// (`bye legs`, 6.1.3.3.2), not the runtime's.
    pub(super) fn check_settled<A: Application>(&mut self, cx: &mut Ctx<'_, A>) {
        self.settle(cx);
    }

    fn settle<A: Application>(&mut self, cx: &mut Ctx<'_, A>) {
        if self.legs.is_empty() || !self.legs.iter().all(Leg::machine_final) {
            return;
        }
        self.send_settled(cx);
    }

    /// `legs settled` to the session machines, once.
    fn send_settled<A: Application>(&mut self, cx: &mut Ctx<'_, A>) {
        if self.settled_sent {
            return;
        }
        self.settled_sent = true;
        self.facts.legs = self.leg_counts();
        self.log_outcomes();
        self.legs_copies_settled(cx);
        self.run_machines(cx, &Event::LegsSettled);
    }
}

/// The page-mode payload of `request` ([`facts::payload`]), for a request that is read
/// again (a kept copy's); a session's own request has it from its facts (`Copies`).
pub(super) fn page_mode_payload(request: &Message, limits: &BodyLimits) -> (String, Bytes) {
    facts::payload(request, limits)
}

/// `first` and the recipient-list-history part (RFC 5364) after it, as one multipart/mixed
/// body under a boundary of ours: its Content-Type and bytes, or `None` when the parts cannot
/// be written (the caller then sends `first` alone).
pub(crate) fn with_history(
    ids: &mut super::super::ids::Ids,
    first_type: &str,
    first: &[u8],
    history: &str,
) -> Option<(String, Bytes)> {
    use crate::proto::body::multipart::{self, PartRef};
    let boundary = ids.prefixed_token("imspec-");
    let parts = [
        PartRef {
            headers: &[("Content-Type", first_type)],
            body: first,
        },
        PartRef {
            headers: &[
                ("Content-Type", "application/resource-lists+xml"),
                (
                    "Content-Disposition",
                    "recipient-list-history;handling=optional",
                ),
            ],
            body: history.as_bytes(),
        },
    ];
    let b = multipart::write_parts(&boundary, &parts).ok()?;
    // `multipart::content_type(&boundary)` as text: our boundary is a token, so unquoted.
    let mut ct = String::with_capacity(26 + boundary.len());
    ct.push_str("multipart/mixed;boundary=");
    ct.push_str(&boundary);
    Some((ct, b))
}

#[cfg(test)]
mod tests {
    use super::with_history;
    use crate::endpoint::ids::Ids;
    use crate::proto::body::mime::{Disposition, MediaType};
    use crate::proto::body::multipart::{self, OutPart};
    use bytes::Bytes;

    /// The borrowing writer gives the bytes and Content-Type the owned one (`MediaType`,
    /// `Disposition`, `OutPart`, `multipart::write`) gave, and the body splits back.
    #[test]
    fn history_body_is_what_the_owned_writer_wrote() {
        let history = "<?xml version=\"1.0\"?>\r\n<resource-lists/>\r\n";
        for (ty, first) in [
            (MediaType::new("application", "sdp"), &b"v=0\r\n"[..]),
            (
                MediaType::new("text", "plain").with_param("charset", "utf-8"),
                &b"hi"[..],
            ),
        ] {
            let (ct, body) = with_history(
                &mut Ids::new(7, Default::default()),
                &ty.to_string(),
                first,
                history,
            )
            .expect("written");
            let boundary = Ids::new(7, Default::default()).prefixed_token("imspec-");
            let parts = [
                OutPart::new(&ty, Bytes::copy_from_slice(first)),
                OutPart::new(
                    &MediaType::new("application", "resource-lists+xml"),
                    Bytes::from(history),
                )
                .disposition(
                    &Disposition::new("recipient-list-history")
                        .with_param("handling", Some("optional")),
                ),
            ];
            assert_eq!(body, multipart::write(&boundary, &parts).unwrap());
            assert_eq!(ct, multipart::content_type(&boundary).to_string());
            let split =
                multipart::parse(&body, &boundary, &Default::default()).expect("splits back");
            assert_eq!(split.parts.len(), 2);
        }
    }
}

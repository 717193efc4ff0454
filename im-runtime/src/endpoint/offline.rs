//! Page-mode copies kept for members with no registration (extension ext-dr.6 in
//! `specs/ext_delivery_reports.imspec`). The spec decides, per copy, whether it is kept
//! (`store copy` when `copy.recipient_offline and copy.storable`); this file gives the spec
//! those facts, carries out `store copy` through the [`Application`] (which owns the store:
//! the runtime stays sans-IO) and, when the member registers or a kept copy expires, runs
//! the copy again in a session of its own whose only machine is the delivery-reports
//! procedure, so the sender's notification comes from the same rules as any other copy's.
//! What the copy carries (From, Max-Forwards, Referred-By, the history part) is what the
//! spec's `forward each` block says, read again from the spec when the copy is sent.

use super::super::*;
use super::*;
use crate::endpoint::app::OfflineCopy;
use crate::machine::{Action, ActionKind, CopyFacts, Env, Invitation, Selection};

/// The status a kept copy that expired fails with when no spec rule gives one (a spec gap;
/// ext-dr.11 `copy_expired` gives 408, RFC 3261 §21.4.9: no answer in time).
const EXPIRED: u16 = 408;

/// A kept copy that is due, for the session that carries it out.
pub(crate) struct Due {
    copy: OfflineCopy,
    /// `false`: send it; `true`: it expired (the machines hear `copy expired`).
    expired: bool,
    /// The copy's MESSAGE, built before the session so that the session can be keyed by
    /// its transaction (`None` for an expired copy).
    message: Option<(Message, Peer, Uri)>,
}

impl<A: Application> Endpoint<A> {
    /// `aor` registered (the 200 listed at least one binding): every copy kept for it is
    /// sent now, each in a session of its own.
    pub(in crate::endpoint) fn offline_registered(&mut self, now: Instant, aor: &Uri) {
        for copy in self.app.offline_take(now, aor) {
            tracing_log(
                "offline",
                &format!("{} registered: sending a kept copy", copy.recipient),
            );
            self.offline_session(now, copy, false);
        }
    }

    /// The kept copies that expired are reported as failed copies.
    pub(in crate::endpoint) fn offline_expired(&mut self, now: Instant) {
        if self.shutting_down {
            // Reported by the next run, which finds them expired in the store.
            return;
        }
        for copy in self.app.offline_expired(now) {
            tracing_log(
                "offline",
                &format!("a copy kept for {} expired", copy.recipient),
            );
            self.offline_session(now, copy, true);
        }
    }

    /// A session for one kept copy: its request is the sender's, read again (facts and
    /// IMDN request as when it arrived), its only machine the delivery-reports procedure.
    fn offline_session(&mut self, now: Instant, copy: OfflineCopy, expired: bool) {
        let Ok(msg) = Message::parse(copy.request.clone()) else {
            tracing_log("offline", "a kept copy's request does not parse; dropped");
            return;
        };
        let facts = facts::build(
            &msg,
            copy.source.ip(),
            &self.cfg.trusted_hosts,
            &self.cfg.body_limits,
        );
        let Some(machine) = self.app.by_clause("ext-dr") else {
            tracing_log(
                "offline",
                "no delivery-reports procedure (ext-dr); copy dropped",
            );
            return;
        };
        let Some(recipient) = crate::proto::sip::Uri::parse(&copy.recipient)
            .ok()
            .map(|u| u.to_view())
        else {
            tracing_log("offline", "a kept copy's recipient does not parse; dropped");
            return;
        };
        let call_id = self.ids.call_id(self.cfg.sip_advertised.ip());
        // Filed under (Call-ID, tag) as every session is: a SUBSCRIBE naming the tag as its
        // To tag is steered by that tag (`steer::conference_key`), so with several workers
        // the tag must steer to this shard too, as the Call-ID does.
        let local_tag = self.ids.dialog_tag();
        let message = if expired {
            None
        } else {
            let (selection, inv) = self.offline_fan_out(now, &msg, &facts);
            self.offline_message(
                &msg,
                &facts,
                (selection, &inv),
                &recipient,
                &call_id,
                &local_tag,
            )
        };
        // The session is filed under a key of its own (its copy's client transaction, or
        // a fresh one), never the original request's, whose session may still be alive.
        let key = message
            .as_ref()
            .and_then(|(m, _, _)| tsx_message(m))
            .map(|t| t.key)
            .unwrap_or_else(|| {
                let branch = format!("{}{}", tsx::MAGIC_COOKIE, self.ids.token(1));
                TsxKey::from_branch(
                    &Method::Message,
                    &branch,
                    &self.cfg.sip_advertised.to_string(),
                )
            });
        let id = SessionId(self.next_session);
        self.next_session += 1;
        let msrp_sid = self.ids.msrp_session_id();
        let peer = Peer {
            addr: copy.source,
            reliable: false,
        };
        let dialog_key = crate::endpoint::ids::tag_key(&local_tag);
        let session = Session::new(
            id,
            call_id,
            local_tag,
            String::new(),
            msg,
            facts,
            machine,
            key,
            peer,
            msrp_sid,
            now + self.cfg.session_lifetime,
        );
        if let Some(k) = dialog_key {
            self.by_dialog.insert(k, (id, LegSlot::ORIGINATOR_SIDE));
        }
        self.sessions.insert(id, Box::new(session));
        self.live.session_started(now, id, true);
        self.dispatch(
            now,
            id,
            SessionEvent::Offline(Box::new(Due {
                copy,
                expired,
                message,
            })),
        );
    }

    /// The selection and items of the spec's `forward each` for the kept request: the
    /// spec's procedure for its method runs again on it (a machine only returns actions;
    /// nothing is carried out) and its first fan-out is read, so a kept copy carries what
    /// the block says, as the copies sent at once did. When the spec no longer fans the
    /// request out (it changed, or the group did), the copy goes with the runtime's defaults
    /// only (no Referred-By, no history part), logged.
    fn offline_fan_out(
        &self,
        now: Instant,
        msg: &Message,
        facts: &crate::machine::Facts,
    ) -> (Selection, Invitation) {
        let env = Env {
            config: &self.cfg.spec,
            directory: self.app.directory(),
            router: self.app.router(),
        };
        let method = msg.method().cloned().unwrap_or(Method::Message);
        let event = Event::InitialRequest(method.clone());
        let mut pending: VecDeque<Action> = self
            .app
            .initial(&method)
            .map(|mut m| m.handle(now, &event, facts, &env).into())
            .unwrap_or_default();
        // `call`s are followed (bounded, as when the request arrived).
        let mut calls = 0;
        while let Some(a) = pending.pop_front() {
            match a.kind {
                ActionKind::ForwardEach(_, s, inv) => return (s, inv),
                ActionKind::Call(clause) if calls < 16 => {
                    calls += 1;
                    if let Some(mut callee) = self.app.by_clause(clause) {
                        for (i, x) in callee
                            .handle(now, &event, facts, &env)
                            .into_iter()
                            .enumerate()
                        {
                            pending.insert(i, x);
                        }
                    }
                }
                _ => {}
            }
        }
        tracing_log(
            "offline",
            "the spec no longer forwards the kept request: the copy carries the runtime's defaults only",
        );
        (Selection::default(), Invitation::default())
    }

    /// The copy of `msg` for `recipient`, as the spec's `forward each` block (`fan_out`)
    /// says (the payload; From, Max-Forwards and the other headers; the
    /// recipient-list-history part of the entries its selection addresses), and where it
    /// goes; `None` when the recipient has no route (again).
    fn offline_message(
        &mut self,
        msg: &Message,
        facts: &crate::machine::Facts,
        fan_out: (Selection, &Invitation),
        recipient: &Uri,
        call_id: &str,
        tag: &str,
    ) -> Option<(Message, Peer, Uri)> {
        let (selection, inv) = fan_out;
        let tls = self.cfg.sip_tls_advertised.is_some()
            && (recipient.scheme() == "sips"
                || recipient.params().any(|(n, v)| {
                    n == "transport" && v.is_some_and(|v| v.eq_ignore_ascii_case("tls"))
                }));
        let route = self.app.router().route(recipient)?;
        let dest = match route {
            Route::Direct(a) | Route::OutboundProxy(a) => a,
        };
        let (ct, payload) = legs::page_mode_payload(msg, &self.cfg.body_limits);
        let (body_ct, body) = if !inv.history || facts.recipients.is_empty() {
            (ct, payload)
        } else {
            use crate::proto::body::mime::MediaType;
            let named = selection.apply(facts.recipients.clone(), &facts.originator, |e| &e.uri);
            let history = crate::proto::body::resource_lists::write_history(&named);
            let mt = MediaType::parse(&ct).unwrap_or_else(|_| MediaType::new("text", "plain"));
            legs::with_history(&mut self.ids, &mt.to_string(), &payload, &history)
                .unwrap_or((ct, payload))
        };
        let branch = format!("{}{}", tsx::MAGIC_COOKIE, self.ids.token(1));
        let via = match self.cfg.sip_tls_advertised {
            Some(a) if tls => format!("SIP/2.0/TLS {a};branch={branch};rport"),
            _ => format!(
                "SIP/2.0/UDP {};branch={branch};rport",
                self.cfg.sip_advertised
            ),
        };
        // As `forward each` writes them (`legs.rs`): the spec's, else the same defaults.
        let max_forwards = super::super::invitation::max_forwards(inv).unwrap_or_else(|| {
            msg.max_forwards()
                .map_or(70, |m| m.saturating_sub(1).min(70))
        });
        // A kept copy knows its recipient by URI only (no display name).
        let target = super::super::invitation::entry(recipient);
        let from = super::super::invitation::from(inv, &target).map_or_else(
            || format!("<{}>", facts.originator.raw()),
            std::borrow::Cow::into_owned,
        );
        let mut b = sip::build::RequestBuilder::new(Method::Message, recipient.raw())
            .via_raw(&via)
            .from(&from, tag)
            .to(&super::super::invitation::to(inv, &target), None)
            .call_id(call_id)
            .cseq(1)
            .max_forwards(max_forwards);
        for (name, value) in super::super::invitation::text_headers(inv, &target) {
            b = b.header(name, &value);
        }
        let mut b = b.body(&body_ct, body);
        if let Route::OutboundProxy(p) = route {
            b = b.route(&format!("<sip:{p};lr>"));
        }
        let m = b.build().ok()?;
        Some((
            m,
            Peer {
                addr: dest,
                reliable: tls,
            },
            recipient.clone(),
        ))
    }
}

/// The status a copy that was not sent fails with when no spec rule gave one (a spec gap,
/// logged by the caller): [`EXPIRED`] for a kept copy that expired, else
/// [`no_route_status`].
pub(super) fn unsent_fallback<A: Application>(
    cx: &Ctx<'_, A>,
    uri: &Uri,
    why: crate::machine::CopyOutcome,
) -> u16 {
    match why {
        crate::machine::CopyOutcome::Expired => EXPIRED,
        _ => no_route_status(cx, uri),
    }
}

/// The status of a copy (or invitation) to `uri` that had no route: 480 Temporarily
/// Unavailable for a user of this domain, who has no registration (RFC 3261 §16.5: a
/// proxy whose location service finds no binding answers 480); 0 (no SIP status) for a
/// recipient elsewhere.
pub(super) fn no_route_status<A: Application>(cx: &Ctx<'_, A>, uri: &Uri) -> u16 {
    if is_local_user(cx, uri) { 480 } else { 0 }
}

fn is_local_user<A: Application>(cx: &Ctx<'_, A>, uri: &Uri) -> bool {
    (uri.scheme() == "sip" || uri.scheme() == "sips")
        && !uri.user().is_empty()
        && uri.host().eq_ignore_ascii_case(&cx.cfg.spec.domain)
}

impl Session {
    /// `copy.*` for a copy to `uri` that had no route: a page-mode copy for a user of this
    /// domain (who could register) is offline; it is storable when the application says so.
    pub(super) fn offline_facts<A: Application>(&self, cx: &Ctx<'_, A>, uri: &Uri) -> CopyFacts {
        let offline = self.request.method() == Some(&Method::Message) && is_local_user(cx, uri);
        CopyFacts {
            recipient_offline: offline,
            storable: offline && cx.app.offline_storable(uri),
        }
    }

    /// `store copy`: the application keeps the current copy. If it cannot after all, the
    /// copy's event runs again with `copy.storable` false (`imdn.rs`).
    pub(super) fn store_copy<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        origin: crate::machine::Origin,
    ) {
        let Some(uri) = self.copies.current_recipient().cloned() else {
            tracing_log("offline", "store copy outside a copy event: ignored");
            return;
        };
        let copy = OfflineCopy {
            recipient: uri.raw().to_string(),
            source: self.peer.addr,
            request: self
                .request
                .message()
                .map(|r| r.as_bytes().clone())
                .unwrap_or_default(),
        };
        match cx.app.offline_store(cx.now, copy) {
            Ok(()) => {
                if self.copies.unsent == super::copies::Unsent::Asking {
                    self.copies.unsent = super::copies::Unsent::Kept;
                }
                tracing_log(
                    "offline",
                    &format!(
                        "session {} recipient {}: kept until it registers",
                        self.call_id,
                        uri.raw()
                    ),
                )
            }
            Err(e) => {
                tracing_log(
                    "offline",
                    &format!(
                        "session {} recipient {}: cannot keep the copy: {e}",
                        self.call_id,
                        uri.raw()
                    ),
                );
                self.copies.store_refused = Some(origin);
            }
        }
    }

    /// Carries out a due kept copy: the session is answered already (the sender had its
    /// 202 when the copy was kept); the copy is sent now, or reported failed.
    pub(super) fn offline_start<A: Application>(&mut self, cx: &mut Ctx<'_, A>, due: Due) {
        self.answered = Some(202);
        self.read_imdn_request(cx);
        let recipient = crate::proto::sip::Uri::parse(&due.copy.recipient)
            .map(|u| u.to_view())
            .unwrap_or_default();
        if due.expired {
            // The spec decides its fate (ext-dr.11): the status it fails with, or kept again.
            let facts = CopyFacts {
                recipient_offline: true,
                storable: cx.app.offline_storable(&recipient),
            };
            self.copy_not_sent(cx, recipient, crate::machine::CopyOutcome::Expired, facts);
            return;
        }
        let Some((m, peer, uri)) = due.message else {
            // No route again (the binding went away in between): as any unroutable copy.
            self.copy_unroutable(cx, recipient);
            return;
        };
        if peer.reliable {
            cx.connect_sip_tls(peer.addr);
        }
        cx.live.copy_sent(self.id);
        if let Some((key, holds, _)) = cx.send_request_holding(&m, peer, self.id, None, true) {
            self.track(holds);
            self.copy_sent(uri, key);
        }
    }
}

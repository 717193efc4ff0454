//! The endpoint's side of every session event: find the session an input belongs to (by
//! dialog, transaction key, MSRP side or timer), lend it a [`Ctx`] and let it act. What
//! needs no session (481 outside any dialog, 405 to a CANCEL in a dialog) is answered here.

use super::*;

impl<A: Application> Endpoint<A> {
    /// The endpoint's state a session may use, without any session.
    pub(super) fn ctx(&mut self, now: Instant) -> Ctx<'_, A> {
        let Endpoint {
            cfg,
            app,
            tsx,
            out,
            sip_conn_by_peer,
            sip_tls,
            by_client_tsx,
            client_in_flight,
            by_dialog,
            idle_conns,
            ids,
            msrp,
            stats,
            released,
            live,
            conf,
            ..
        } = self;
        Ctx {
            now,
            cfg,
            app,
            tsx,
            out,
            ids,
            msrp,
            stats,
            idle_conns,
            sip_conn_by_peer,
            sip_tls,
            by_dialog,
            by_client_tsx,
            client_in_flight,
            released,
            live,
            conf,
        }
    }

    /// Session `sid` and the context it runs with: disjoint borrows of the endpoint.
    fn split(&mut self, now: Instant, sid: SessionId) -> Option<(&mut Session, Ctx<'_, A>)> {
        let Endpoint {
            cfg,
            app,
            tsx,
            out,
            sip_conn_by_peer,
            sip_tls,
            sessions,
            by_client_tsx,
            client_in_flight,
            by_dialog,
            idle_conns,
            ids,
            msrp,
            stats,
            released,
            live,
            conf,
            ..
        } = self;
        let s = sessions.get_mut(&sid)?;
        Some((
            s,
            Ctx {
                now,
                cfg,
                app,
                tsx,
                out,
                ids,
                msrp,
                stats,
                idle_conns,
                sip_conn_by_peer,
                sip_tls,
                by_dialog,
                by_client_tsx,
                client_in_flight,
                released,
                live,
                conf,
            },
        ))
    }

    /// Hands `ev` to session `sid`; the session is re-filed (or removed) by `reap`.
    pub(super) fn dispatch(&mut self, now: Instant, sid: SessionId, ev: SessionEvent) {
        self.dirty.push(sid);
        if let Some((s, mut cx)) = self.split(now, sid) {
            s.handle_event(ev, &mut cx);
        }
        self.apply_released();
    }

    /// Sessions whose held client transaction was displaced by a reused key hear of it.
    fn apply_released(&mut self) {
        while let Some(id) = self.released.pop() {
            if let Some(s) = self.sessions.get_mut(&id) {
                s.client_released();
            }
            self.dirty.push(id);
        }
    }

    /// An in-dialog request (or the ACK of a 2xx): to the session whose dialog it names.
    pub(super) fn in_dialog_request(&mut self, now: Instant, peer: Peer, msg: Message) {
        let Some(method) = msg.method().cloned() else {
            return;
        };
        let call_id = msg.call_id().unwrap_or("");
        let to_tag = msg.to().and_then(|t| t.tag()).unwrap_or("");
        // Our tag names the dialog; the Call-ID must be that dialog's too (RFC 3261 §12:
        // a dialog is both), checked against the session that holds it.
        let found = crate::endpoint::ids::tag_key(to_tag)
            .and_then(|k| self.by_dialog.get(&k).copied())
            .map(|(sid, slot)| (sid, slot.leg()))
            .filter(|&(sid, leg)| {
                self.sessions
                    .get(&sid)
                    .is_some_and(|s| s.dialog_call_id(leg) == Some(call_id))
            });
        // A SUBSCRIBE in one of a session's INVITE dialogs is that dialog's machine's to
        // answer (7.9.1.4 `invitee_subscribes`, 6.1.3.3.2 `subscribe_in_dialog`),
        // conference state offered or not; any other in-dialog SUBSCRIBE is a
        // subscription's refresh or unsubscribe (`conference.rs`).
        if method == Method::Subscribe && found.is_none() && self.app.offers_conference_state() {
            self.subscribe_in_dialog(now, peer, msg);
            return;
        }
        let key = tsx_message(&msg).map(|t| t.key);
        let Some((sid, leg)) = found else {
            if method != Method::Ack
                && let Some(key) = key
            {
                self.reply_simple(now, &key, &msg, 481, &[]);
            }
            return;
        };
        if method == Method::Cancel {
            // A CANCEL is its transaction's business, never a dialog's (RFC 3261 §9.2).
            if let Some(key) = key {
                let allow = self.allow_header();
                self.reply_simple(now, &key, &msg, 405, &[("Allow", allow)]);
            }
            return;
        }
        // Every other in-dialog request goes to the session: what is answered to it is the
        // spec's (`on request …`).
        self.dispatch(now, sid, SessionEvent::InDialog { leg, key, msg });
    }

    /// An answer to a client transaction: to the session (and leg) that sent the request.
    pub(super) fn client_response(&mut self, now: Instant, key: &TsxKey, resp: Message) {
        let Some(&ClientTsx { sid, leg, .. }) = self.by_client_tsx.get(key) else {
            return;
        };
        let status = resp.status().map(u16::from).unwrap_or(0);
        if key.method() == &Method::Message && status >= 200 {
            // A copy of a MESSAGE (its own leg-less transaction). Counted here, not in the
            // session: a page-mode session does not wait for its copies' answers.
            self.live.leg(if status < 300 {
                LegOutcome::Answered
            } else {
                LegOutcome::Rejected
            });
            self.live.copy_done(now, sid, status < 300);
        }
        let key = key.clone();
        self.dispatch(now, sid, SessionEvent::Response { leg, key, resp });
    }

    /// A client transaction timed out or failed.
    pub(super) fn client_timeout(&mut self, now: Instant, key: &TsxKey) {
        let Some(&ClientTsx { sid, leg, .. }) = self.by_client_tsx.get(key) else {
            return;
        };
        if key.method() == &Method::Message {
            self.live.leg(LegOutcome::TimedOut);
            self.live.copy_done(now, sid, false);
        }
        let key = key.clone();
        self.dispatch(now, sid, SessionEvent::ClientTimeout { leg, key });
    }

    /// CANCEL matched the INVITE server transaction `invite`.
    pub(super) fn cancelled(&mut self, now: Instant, invite: &TsxKey) {
        if let Some(&sid) = self.by_server_tsx.get(invite) {
            self.dispatch(now, sid, SessionEvent::Cancelled);
        }
    }

    /// Timer H of session `sid`'s INVITE server transaction.
    pub(super) fn no_ack(&mut self, now: Instant, sid: SessionId) {
        self.dispatch(now, sid, SessionEvent::NoAck);
    }

    /// Ends session `sid` (shutdown).
    pub(super) fn end_session(&mut self, now: Instant, sid: SessionId, why: &'static str) {
        self.dispatch(now, sid, SessionEvent::End(why));
    }

    /// MSRP bytes on `conn`: the relay frames them and names the sessions concerned.
    pub(super) fn handle_msrp_input(&mut self, now: Instant, conn: ConnId, data: Bytes) {
        let mut events = Vec::new();
        let tid = self.ids.random_bytes::<10>();
        self.msrp
            .handle_bytes(conn, &data, &mut events, tid, &mut self.out);
        for ev in events {
            let sid = match &ev {
                RelayEvent::OriginatorBound(sid) | RelayEvent::LegBound(sid, _) => {
                    self.idle_conns.remove(conn);
                    *sid
                }
                RelayEvent::MessageComplete(sid, _)
                | RelayEvent::Delivered(sid, ..)
                | RelayEvent::Closed(sid, _) => *sid,
            };
            self.dispatch(now, sid, SessionEvent::Msrp(ev));
        }
    }

    /// MSRP connection `conn` closed (or never opened).
    pub(super) fn handle_msrp_closed(&mut self, now: Instant, conn: ConnId) {
        let mut events = Vec::new();
        self.msrp.closed(conn, &mut events);
        for ev in events {
            if let RelayEvent::Closed(sid, _) = ev {
                self.dispatch(now, sid, SessionEvent::Msrp(ev));
            }
        }
    }

    /// An MSRP connection was not bound in time.
    fn conn_idle(&mut self, now: Instant, conn: ConnId) {
        if let Some((sid, leg)) = self.msrp.idle_timeout(conn, &mut self.out) {
            self.dispatch(now, sid, SessionEvent::Msrp(RelayEvent::Closed(sid, leg)));
        }
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
                    self.dirty.push(sid);
                    let fired = match self.split(now, sid) {
                        Some((s, mut cx)) => s.handle_timeout(&mut cx),
                        None => false,
                    };
                    self.apply_released();
                    if !fired {
                        // Never expected: the index and the session disagree. Re-file the
                        // session from its own table (past deadlines dropped), so the loop
                        // ends.
                        let next = self
                            .sessions
                            .get(&sid)
                            .and_then(|s| s.poll_timeout())
                            .filter(|at| *at > now);
                        self.session_timers.refile(sid, next);
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

//! Admission and the answers that need no session: OPTIONS, REGISTER (to the
//! application), 481/501/483/405, 503 with Retry-After when a limit is reached; and the
//! creation of a session for an admitted request.

use super::*;

pub(super) mod auth;
mod registrar;

impl<A: Application> Endpoint<A> {
    pub(super) fn reply_simple(
        &mut self,
        now: Instant,
        key: &TsxKey,
        msg: &Message,
        status: u16,
        extra: &[(&str, String)],
    ) {
        self.ctx(now).reply_simple(key, msg, status, extra);
    }

    pub(super) fn allow_header(&self) -> String {
        let mut m: Vec<String> = vec!["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"]
            .into_iter()
            .map(String::from)
            .collect();
        if self.app.offers_registrar() {
            m.push("REGISTER".into());
        }
        if self.app.offers_conference_state() {
            m.push("SUBSCRIBE".into());
        }
        for x in self.app.methods() {
            let s = x.as_str().to_string();
            if !m.contains(&s) {
                m.push(s);
            }
        }
        m.join(", ")
    }

    pub(super) fn initial_request(&mut self, now: Instant, peer: Peer, msg: Message, key: TsxKey) {
        let Some(method) = msg.method().cloned() else {
            return;
        };
        self.app.on_request(now);
        match method {
            Method::Options => {
                let allow = self.allow_header();
                let mut supported = self.cfg.policy.supported.join(", ");
                if self.app.offers_registrar() {
                    // The registrar keeps Path (RFC 3327) and outbound flows (RFC 5626
                    // §6); a tag for what this server does as a registrar only, so not in
                    // the policy's list that Require is checked against.
                    for tag in ["path", "outbound"] {
                        if !supported.is_empty() {
                            supported.push_str(", ");
                        }
                        supported.push_str(tag);
                    }
                }
                // The media types a request body may have: the same list the 415 check
                // reads (and its Accept names), so OPTIONS never advertises a type a
                // request is then refused for, nor hides one it would take.
                let accept = self.cfg.policy.accepted_types.join(", ");
                let mut headers = vec![
                    ("Allow", allow),
                    ("Accept", accept),
                    ("Supported", supported),
                ];
                if self.app.offers_conference_state() {
                    // RFC 6665 §7.2.2: the event packages served.
                    headers.push(("Allow-Events", "conference".to_string()));
                }
                self.reply_simple(now, &key, &msg, 200, &headers);
                return;
            }
            Method::Register => {
                self.registrar(now, peer, &msg, &key);
                return;
            }
            Method::Subscribe if self.app.offers_conference_state() => {
                // Conference state (`conference.rs`): to a session's focus, never a session
                // of its own.
                self.subscribe_initial(now, peer, msg, key);
                return;
            }
            Method::Bye | Method::Cancel | Method::Prack | Method::Update | Method::Info => {
                // Out of any dialog: nothing to end or update.
                self.reply_simple(now, &key, &msg, 481, &[]);
                return;
            }
            Method::Other(_) => {
                self.stats.rejected += 1;
                let allow = self.allow_header();
                self.reply_simple(now, &key, &msg, 501, &[("Allow", allow)]);
                return;
            }
            _ => {}
        }
        if msg.max_forwards() == Some(0) {
            // Every initial request a machine handles may make the server send requests
            // on (invitee INVITEs, exploded MESSAGEs): with no hop left, refuse it
            // (RFC 3261 §16.3 step 3; OPTIONS was answered above).
            self.stats.rejected += 1;
            let w = warning(&self.agent(), "Max-Forwards is 0");
            self.reply_simple(now, &key, &msg, 483, &[("Warning", w)]);
            return;
        }
        // Every request that may start a session (and so make the server send requests on)
        // is authenticated first. Whether the authenticated user may speak for its From is
        // the spec's rule (`request.authenticated_user`).
        let Some(vouched) = self.authenticate(now, peer, &msg, &key, None) else {
            return;
        };
        let Some(machine) = self.app.initial(&method) else {
            let allow = self.allow_header();
            self.reply_simple(now, &key, &msg, 405, &[("Allow", allow)]);
            return;
        };
        if self.shutting_down
            || self.overloaded
            || self.sessions.len() >= self.cfg.max_sessions
            || self.tsx.len() >= self.cfg.max_transactions
        {
            // RFC 3261 §21.5.4: overloaded; Retry-After says when to try again.
            self.stats.shed += 1;
            let after = self.cfg.retry_after_header();
            self.reply_simple(now, &key, &msg, 503, &[("Retry-After", after)]);
            return;
        }
        // A body that cannot be read is a fact (`body.malformed`): the spec answers it.
        let (mut facts, payload) = facts::read(
            &msg,
            peer.addr.ip(),
            &self.cfg.trusted_hosts,
            &self.cfg.body_limits,
        );
        facts.originator_domain = match vouched {
            auth::Vouched::Off => None,
            auth::Vouched::Trusted => Some(facts.originator.host().to_ascii_lowercase()),
            auth::Vouched::Realm(r, user) => {
                facts.authenticated_user = user;
                Some(r)
            }
        };
        self.stats.initial_requests += 1;
        let id = SessionId(self.next_session);
        self.next_session += 1;
        // Our tag steers a SUBSCRIBE in this dialog back to this shard (6.1.3.3.2
        // `subscribe_in_dialog` answers it; by its To tag, not the originator's Call-ID).
        let local_tag = self.ids.dialog_tag();
        // The focus user steers a SUBSCRIBE to it back to this shard
        // (`steer::conference_key`), as minted Call-IDs do.
        let mut user = String::new();
        for _ in 0..64 * self.cfg.shard.count.max(1) {
            user = format!("conf-{}-{}", id.0, self.token(1).get(..8).unwrap_or("0"));
            if self.cfg.shard.owns(user.as_bytes()) {
                break;
            }
        }
        let focus = self.focus_uri(&user, peer, &msg);
        let msrp_sid = self.ids.msrp_session_id();
        let call_id = msg.call_id().unwrap_or("").to_string();
        let dialog_key = crate::endpoint::ids::tag_key(&local_tag);
        let mut session = Box::new(Session::new(
            id,
            call_id,
            local_tag,
            focus,
            msg,
            facts,
            machine,
            key.clone(),
            peer,
            msrp_sid,
            now + self.cfg.session_lifetime,
        ));
        // Only a MESSAGE has one: a session's copies stay unallocated until written.
        if payload.is_some() {
            session.keep_payload(payload);
        }
        self.by_server_tsx.insert(key, id);
        if let Some(k) = dialog_key {
            self.by_dialog.insert(k, (id, LegSlot::ORIGINATOR_SIDE));
        }
        self.sessions.insert(id, session);
        let conn = self.stream_of(peer);
        self.conn_use.session_started(id, conn, &mut self.out);
        self.live
            .session_started(now, id, method == Method::Message);
        self.dispatch(now, id, SessionEvent::Start(method));
    }
}

//! The endpoint's side of a SUBSCRIBE: what is protocol (489, 406, 404, 400, 481, the
//! Digest challenge) is answered here; the rest goes to the session it names.

use super::super::super::*;
use super::super::*;
use super::*;

impl<A: Application> Endpoint<A> {
    /// A SUBSCRIBE outside any dialog: checked here, then handed to the session whose focus
    /// it names.
    pub(in crate::endpoint) fn subscribe_initial(
        &mut self,
        now: Instant,
        peer: Peer,
        msg: Message,
        key: TsxKey,
    ) {
        if self.other_package(now, &key, &msg) {
            return;
        }
        if !accepts_document(&msg) {
            let accept = CONTENT_TYPE.to_string();
            self.conf_reply(
                now,
                &key,
                &msg,
                406,
                "Not Acceptable",
                &[("Accept", accept)],
            );
            return;
        }
        // The focus user is `conf-<session id>-<random>`: the id finds the session, the
        // whole user must match its focus (an old or guessed URI finds nothing).
        let user = msg
            .request_uri()
            .and_then(|u| u.user().map(str::to_owned))
            .unwrap_or_default();
        let sid = user
            .strip_prefix("conf-")
            .and_then(|r| r.split('-').next())
            .and_then(|n| n.parse::<u64>().ok())
            .map(SessionId);
        let found = sid.filter(|sid| {
            self.sessions
                .get(sid)
                .is_some_and(|s| s.conference_focus_user() == Some(user.as_str()))
        });
        let Some(sid) = found else {
            let w = warning(&self.agent(), "no conference session at this URI");
            self.conf_reply(now, &key, &msg, 404, "Not Found", &[("Warning", w)]);
            return;
        };
        // The challenge is protocol (RFC 3261 §22); whether the authenticated user may
        // subscribe as the From user is the spec's rule (`subscription.authenticated_user`,
        // ext-dr.12).
        let Some(vouched) = self.authenticate(now, peer, &msg, &key, None) else {
            return;
        };
        let authenticated_user = match vouched {
            stateless::auth::Vouched::Realm(_, user) => user,
            stateless::auth::Vouched::Off | stateless::auth::Vouched::Trusted => String::new(),
        };
        let facts = facts::build(
            &msg,
            peer.addr.ip(),
            &self.cfg.trusted_hosts,
            &self.cfg.body_limits,
        );
        if facts.body.malformed {
            // The SUBSCRIBE's own body: no spec reads it (a `request SUBSCRIBE` rule sees
            // the session's INVITE), so a body that cannot be parsed is protocol, 400.
            let w = warning(&self.agent(), &facts.body.error);
            self.conf_reply(now, &key, &msg, 400, "Bad Request", &[("Warning", w)]);
            return;
        }
        let who = identity(&facts.originator);
        let held = self.conf.per_user.get(&who).copied().unwrap_or(0);
        let limit = if held >= self.cfg.max_subscriptions_per_user {
            Some(format!(
                "too many subscriptions: at most {} per user",
                self.cfg.max_subscriptions_per_user
            ))
        } else if self
            .sessions
            .get(&sid)
            .is_some_and(|s| s.conference.subs.len() >= self.cfg.max_subscriptions_per_session)
        {
            Some(format!(
                "too many subscriptions: at most {} per session",
                self.cfg.max_subscriptions_per_session
            ))
        } else {
            None
        };
        // Whether a subscription past a limit is refused, and how, is the spec's rule
        // (`subscription.over_limit`, ext-dr.4).
        let expires = granted(&msg, self.cfg.max_subscription_expires);
        let req = SubscribeRequest {
            key,
            msg,
            subscriber: facts.originator,
            expires,
            in_dialog: false,
            peer,
            limit,
            authenticated_user,
        };
        self.dispatch(now, sid, SessionEvent::Subscribe(Box::new(req)));
    }

    /// A SUBSCRIBE inside a dialog: a refresh or an unsubscribe of a subscription, or 481.
    pub(in crate::endpoint) fn subscribe_in_dialog(
        &mut self,
        now: Instant,
        peer: Peer,
        msg: Message,
    ) {
        let Some(key) = tsx_message(&msg).map(|t| t.key) else {
            return;
        };
        let dialog = (
            msg.call_id().unwrap_or("").to_string(),
            msg.to().and_then(|t| t.tag()).unwrap_or("").to_string(),
        );
        // (A SUBSCRIBE in a session's INVITE dialog went to that session's machines.)
        let Some(sid) = self.conf.dialogs.get(&dialog).copied() else {
            self.reply_simple(now, &key, &msg, 481, &[]);
            return;
        };
        if self.other_package(now, &key, &msg) {
            return;
        }
        // A refresh or an unsubscribe is challenged as its SUBSCRIBE was (RFC 3261 §22: a
        // UAS may challenge any request): the dialog's identifiers are no credential, since
        // Call-ID and tags travel in the clear and a refresh moves the NOTIFYs to where it
        // came from (`refreshed`). Whether the authenticated user may speak for the
        // subscriber is the spec's rule, as for the creation (ext-dr.12,
        // `subscription.authenticated_user`). Not a setting of its own: authentication
        // on/off and the trusted hosts decide it, as for every other request.
        let exists = self
            .sessions
            .get(&sid)
            .is_some_and(|s| s.subscription_owner(&dialog.1).is_some());
        let authenticated_user = if exists {
            let Some(vouched) = self.authenticate(now, peer, &msg, &key, None) else {
                return;
            };
            match vouched {
                stateless::auth::Vouched::Realm(_, user) => user,
                stateless::auth::Vouched::Off | stateless::auth::Vouched::Trusted => String::new(),
            }
        } else {
            String::new()
        };
        let expires = granted(&msg, self.cfg.max_subscription_expires);
        let req = SubscribeRequest {
            key,
            msg,
            subscriber: Uri::default(),
            expires,
            in_dialog: true,
            peer,
            limit: None,
            authenticated_user,
        };
        self.dispatch(now, sid, SessionEvent::Subscribe(Box::new(req)));
    }

    /// Answers 489 naming the package served when `msg`'s Event is another (RFC 6665
    /// §8.2.1); returns whether it did.
    fn other_package(&mut self, now: Instant, key: &TsxKey, msg: &Message) -> bool {
        if is_conference(msg) {
            return false;
        }
        let allow = PACKAGE.to_string();
        self.conf_reply(now, key, msg, 489, "Bad Event", &[("Allow-Events", allow)]);
        true
    }

    fn conf_reply(
        &mut self,
        now: Instant,
        key: &TsxKey,
        msg: &Message,
        status: u16,
        reason: &str,
        extra: &[(&str, String)],
    ) {
        let Some(code) = StatusCode::new(status) else {
            return;
        };
        self.stats.rejected += 1;
        let mut cx = self.ctx(now);
        let mut b = sip::build::ResponseBuilder::new(msg, code)
            .reason(reason)
            .to_tag(&cx.ids.token(1));
        for (n, v) in extra {
            b = b.header(n, v);
        }
        let _ = cx.tsx.respond(now, key, status, b.write());
        cx.live.response(status, None);
        cx.flush();
    }
}

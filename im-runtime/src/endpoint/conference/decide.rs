//! A session deciding a SUBSCRIBE: the machines' answer, `accept subscription`, and
//! a subscription renewed or ended.

use super::super::super::*;
use super::super::*;
use super::*;

impl Session {
    /// A SUBSCRIBE the endpoint routed here: a new subscription, or a refresh or an
    /// unsubscribe in one's dialog, decided alike by the machines (RFC 6665 §4.2.1.2: a
    /// refresh is handled as the creation was), with `subscription.refresh` telling them
    /// apart. A refresh is decided with the identity its subscription was created with.
    pub(in crate::endpoint::session) fn subscribe<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        req: SubscribeRequest,
    ) {
        let SubscribeRequest {
            key,
            msg,
            subscriber,
            expires,
            in_dialog,
            peer,
            limit,
            authenticated_user,
        } = req;
        // A refresh is decided for the subscriber it was granted to, with the credentials
        // it carries itself (the rules compare them, ext-dr.12). `by_owner`: it comes from
        // that subscriber's user (or a trusted host): only then can its refusal end the
        // subscription, since §4.2.2's `rejected` withdraws the subscriber's own
        // authorization, which another user's request cannot.
        let (subscriber, refresh, by_owner) = if in_dialog {
            let tag = msg.to().and_then(|t| t.tag()).unwrap_or("");
            let Some(s) = self.conference.find(tag) else {
                // Ended while the SUBSCRIBE was on its way (RFC 6665 §4.1.2.2: 481).
                cx.reply_simple(&key, &msg, 481, &[]);
                return;
            };
            let by_owner = authenticated_user.is_empty()
                || self
                    .subscription_owner(tag)
                    .is_some_and(|owner| owner == authenticated_user);
            (s.subscriber.clone(), Some(tag.to_owned()), by_owner)
        } else {
            (subscriber, None, true)
        };
        let who = identity(&subscriber);
        self.facts.subscriber = subscriber.into();
        self.facts.subscription = crate::machine::SubscriptionFacts {
            in_invite_dialog: false,
            over_limit: limit.is_some(),
            error: limit.unwrap_or_default(),
            authenticated_user,
            refresh: refresh.is_some(),
            expires,
        }
        .into();
        self.answering = Some(Box::new((key.clone(), msg.clone())));
        self.conference.deciding = Some(Box::new(Deciding {
            key,
            msg,
            who,
            expires,
            peer,
            refresh,
            by_owner,
        }));
        self.run_machines(cx, &Event::InDialogRequest(Method::Subscribe));
        self.facts.subscriber = Uri::default().into();
        self.facts.subscription = crate::machine::SubscriptionFacts::default().into();
        // `accept subscription` took it; still here, a rule answered otherwise or none did.
        let Some(d) = self.conference.deciding.take() else {
            return;
        };
        let unanswered = self.answering.take().map(|b| *b);
        match (d.refresh.as_deref(), unanswered) {
            (None, None) => {}
            (None, Some((key, msg))) => {
                // No rule decided (a spec without ext-dr.4): the subscription is not granted,
                // and the missing rule is logged like every other fallback.
                self.spec_gap(
                    None,
                    "request SUBSCRIBE",
                    format_args!("no spec rule decided a new subscription; 403 sent"),
                );
                let w = warning(&cx.agent(), "no rule of the spec accepts this subscription");
                cx.reply_simple(&key, &msg, 403, &[("Warning", w)]);
            }
            (Some(tag), None) => {
                // A rule answered the refresh without `accept subscription` (ext-dr.13): it
                // was not renewed, so it ends now. An unsubscribe ends as the subscriber
                // asked (`reason=timeout`, RFC 6665 §4.2.1.2); a refused refresh tells the
                // subscriber it is no longer authorized (`reason=rejected`, §4.2.2), which
                // it would not assume from a 403 alone (§4.1.2.2 keeps it valid then).
                if !d.by_owner {
                    // Another user's refresh or unsubscribe, refused: the subscription stays.
                    return;
                }
                let reason = if d.expires == 0 {
                    "timeout"
                } else {
                    "rejected"
                };
                self.end_subscription(cx, tag, reason);
            }
            (Some(tag), Some((key, msg))) => {
                // No rule decided (a spec gap): nothing is granted that no rule grants. A
                // refresh is refused (403) and its subscription ends, as a refused one does;
                // an unsubscribe is answered 200 and ends, since the subscriber may always
                // end its own subscription (RFC 6665 §4.2.1.2) and granting it nothing
                // grants nothing.
                let tag = tag.to_owned();
                if !d.by_owner {
                    // Not the subscriber's own request: nothing granted, nothing ended.
                    self.spec_gap(
                        None,
                        "request SUBSCRIBE",
                        format_args!(
                            "no spec rule decided another user's refresh or unsubscribe; 403 sent"
                        ),
                    );
                    let w = warning(&cx.agent(), "no rule of the spec renews this subscription");
                    cx.reply_simple(&key, &msg, 403, &[("Warning", w)]);
                } else if d.expires == 0 {
                    self.spec_gap(
                        None,
                        "request SUBSCRIBE",
                        format_args!(
                            "no spec rule decided an unsubscribe; 200 sent, subscription ended"
                        ),
                    );
                    self.refreshed(cx, &d, &tag, None);
                } else {
                    self.spec_gap(
                        None,
                        "request SUBSCRIBE",
                        format_args!(
                            "no spec rule decided a subscription refresh; 403 sent, subscription ended"
                        ),
                    );
                    let w = warning(&cx.agent(), "no rule of the spec renews this subscription");
                    cx.reply_simple(&key, &msg, 403, &[("Warning", w)]);
                    self.end_subscription(cx, &tag, "rejected");
                }
            }
        }
    }

    /// `accept subscription`: 200 with Expires, then the full state.
    pub(in crate::endpoint::session) fn accept_subscription<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        origin: Origin,
    ) {
        let Some(d) = self.conference.deciding.take() else {
            tracing_log(
                "conference",
                "accept subscription outside a SUBSCRIBE: ignored",
            );
            return;
        };
        self.answering = None;
        if let Some(tag) = d.refresh.as_deref() {
            self.refreshed(cx, &d, tag, Some(&origin));
            return;
        }
        if self.facts.subscription.over_limit {
            // The configured limits are the operator's ceiling on what subscriptions may
            // hold (docs/security.md): a spec chooses how one past them is refused (ext-dr.9
            // `too_many_subscriptions`), but it cannot grant one. 503 (RFC 3261 §21.5.4,
            // RFC 6665 §4.2.1.2): the server cannot take more now, the subscriber may retry.
            let error = &self.facts.subscription.error;
            self.spec_gap(
                None,
                "request SUBSCRIBE",
                format_args!("a rule accepted a subscription past a limit ({error}); 503 sent"),
            );
            let w = warning(&cx.agent(), error);
            let after = cx.cfg.retry_after_header();
            cx.reply_simple(
                &d.key,
                &d.msg,
                503,
                &[("Retry-After", after), ("Warning", w)],
            );
            return;
        }
        // Our tag steers the subscription's later messages back to this shard
        // (`steer::conference_key`).
        let tag = cx.ids.dialog_tag();
        let Some(code) = StatusCode::new(200) else {
            return;
        };
        let contact = format!("<{}>", self.facts.focus.raw());
        let resp = sip::build::ResponseBuilder::new(&d.msg, code)
            .to_tag(&tag)
            .header("Expires", &d.expires.to_string())
            .header("Contact", &contact)
            .write();
        let _ = cx.tsx.respond(cx.now, &d.key, 200, resp);
        cx.live.response(200, Some(&origin));
        cx.flush();
        let peer = d.peer;
        let mut sub = Subscription {
            dialog: Dialog::server_side(&d.msg, &tag, peer),
            who: d.who,
            subscriber: (*self.facts.subscriber).clone(),
            authenticated_user: self.facts.subscription.authenticated_user.clone(),
            expires_at: cx.now + Duration::from_secs(u64::from(d.expires)),
            version: 0,
            in_flight: Vec::new(),
        };
        sub.dialog.tls = cx.dialog_tls(peer);
        tracing_log(
            "conference",
            &format!(
                "session {} subscription from {} for {} s",
                self.call_id,
                sub.dialog.remote_uri(),
                d.expires
            ),
        );
        if d.expires == 0 {
            // A fetch (RFC 6665 §4.4.3): the state once, and no subscription.
            self.notify_one(cx, &mut sub, Some("timeout"));
            return;
        }
        cx.conf.added(sub.key(), self.id, &sub.who);
        self.notify_one(cx, &mut sub, None);
        self.conference.subs.push(sub);
        self.conference.seen = self.participants();
        self.arm_subscription_timer();
    }

    /// A refresh (Expires > 0) or an unsubscribe (Expires: 0) granted: 200 with the granted
    /// Expires, then a NOTIFY with the full state (`terminated;reason=timeout` for an
    /// unsubscribe, RFC 6665 §4.2.1.2). NOTIFYs go where the refresh came from from now on
    /// (a SUBSCRIBE is a target refresh request, RFC 6665 §4.1.2.2).
    pub(super) fn refreshed<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        d: &Deciding,
        tag: &str,
        origin: Option<&Origin>,
    ) {
        let Some(i) = self.conference.position(tag) else {
            cx.reply_simple(&d.key, &d.msg, 481, &[]);
            return;
        };
        let Some(code) = StatusCode::new(200) else {
            return;
        };
        let resp = sip::build::ResponseBuilder::new(&d.msg, code)
            .header("Expires", &d.expires.to_string())
            .header("Contact", &format!("<{}>", self.facts.focus.raw()))
            .write();
        let _ = cx.tsx.respond(cx.now, &d.key, 200, resp);
        cx.live.response(200, origin);
        cx.flush();
        let mut sub = self.conference.subs.remove(i);
        if d.expires == 0 {
            cx.conf.removed(&sub.key(), &sub.who);
            self.notify_one(cx, &mut sub, Some("timeout"));
        } else {
            sub.expires_at = cx.now + Duration::from_secs(u64::from(d.expires));
            sub.dialog.peer = d.peer;
            sub.dialog.tls = cx.dialog_tls(d.peer);
            self.notify_one(cx, &mut sub, None);
            self.conference.subs.insert(i, sub);
        }
        self.arm_subscription_timer();
    }

    /// Ends the subscription whose dialog has our tag `tag` with a last NOTIFY
    /// (`terminated;reason=…`).
    pub(super) fn end_subscription<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        tag: &str,
        reason: &str,
    ) {
        let Some(i) = self.conference.position(tag) else {
            return;
        };
        let mut sub = self.conference.subs.remove(i);
        cx.conf.removed(&sub.key(), &sub.who);
        tracing_log(
            "conference",
            &format!(
                "session {} subscription of {} ended: {reason}",
                self.call_id,
                sub.dialog.remote_uri()
            ),
        );
        self.notify_one(cx, &mut sub, Some(reason));
        self.arm_subscription_timer();
    }
}

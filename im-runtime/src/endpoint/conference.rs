//! Conference state over SUBSCRIBE/NOTIFY (RFC 6665, the RFC 4575 `conference` event
//! package), an extension beyond OMA IM 5.2.1.1 whose decisions are rules of
//! `specs/ext_delivery_reports.imspec` (ext-dr.4, ext-dr.5, ext-dr.9, ext-dr.12).
//!
//! A client subscribes to the focus URI a session's 200 named in Contact, outside the
//! INVITE dialog (RFC 4579 §5, RFC 4575 §3; RFC 5057 advises against reusing the INVITE
//! dialog). The endpoint answers what is protocol, not policy (each has one answer under the
//! RFCs; `docs/language.md` gives the clause of each): 489 Bad Event for another package,
//! 406 when `Accept` excludes `application/conference-info+xml`, 404 for a URI naming no
//! live session (no session, so no machine), 400 for a SUBSCRIBE body that cannot be
//! parsed (no rule reads it), 481 for an unknown subscription dialog, and the Digest
//! challenge. The rest reaches the session's machines as `request SUBSCRIBE` with
//! `subscription.subscriber`, `subscription.authenticated_user` (whom a Digest user may
//! subscribe as is ext-dr.12's), and `subscription.over_limit` / `subscription.error` when
//! granting it would pass the configured limits per subscriber or per session;
//! `accept subscription` answers 200 with the granted Expires and sends the full state at
//! once, `notify subscribers` sends it again. The runtime fires `legs changed` after an input that
//! changed what a subscriber sees, while there are subscribers. Every NOTIFY carries the
//! full state (version one higher per subscription each time). A refresh or an unsubscribe
//! (Expires: 0) in a subscription's dialog reaches the machines too, with
//! `subscription.refresh` and `subscription.expires` (ext-dr.13): `accept subscription`
//! renews it (200, a NOTIFY) or, for an unsubscribe, ends it with a last NOTIFY
//! `terminated;reason=timeout`; any other answer ends it (`reason=rejected`; an unsubscribe
//! `reason=timeout`). An expiry gets a last NOTIFY with
//! `terminated;reason=timeout`; the session's end a last one with
//! `terminated;reason=noresource`; a NOTIFY answered with an error (or never answered)
//! ends its subscription (RFC 6665 §4.2.2). A NOTIFY to a subscriber whose TCP or TLS
//! connection has closed goes over a new one to the dialog's remote target (RFC 3261
//! §12.2.1.1, §18.1.1), as our BYE does; one whose Contact asks to be reached over its flow
//! only (`ob`, RFC 5626 §5.3) is not dialled, and the NOTIFY failing at once ends it.

use super::super::*;
use super::*;
use crate::proto::body::conference_info::{
    CONTENT_TYPE, Cause, ConferenceInfo, Delivery, Method as Disconnect, Participant, Status,
};

/// The one event package served.
const PACKAGE: &str = "conference";

/// The endpoint's index of subscriptions: their dialogs (for in-dialog SUBSCRIBEs) and how
/// many each subscriber identity holds (for the per-user limit).
#[derive(Debug, Default)]
pub(crate) struct Registry {
    dialogs: HashMap<(String, String), SessionId>,
    per_user: HashMap<String, usize>,
}

impl Registry {
    fn added(&mut self, dialog: (String, String), sid: SessionId, who: &str) {
        self.dialogs.insert(dialog, sid);
        *self.per_user.entry(who.to_owned()).or_default() += 1;
    }

    fn removed(&mut self, dialog: &(String, String), who: &str) {
        self.dialogs.remove(dialog);
        if let Some(n) = self.per_user.get_mut(who) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_user.remove(who);
            }
        }
    }
}

/// One accepted subscription.
#[derive(Debug)]
struct Subscription {
    dialog: Dialog,
    /// The subscriber identity it counts against (`user@host`).
    who: String,
    /// `subscription.subscriber` and `subscription.authenticated_user` of the SUBSCRIBE
    /// that created it: what a refresh in its dialog is decided with (the dialog, not a new
    /// challenge, binds the refresh to them).
    subscriber: Uri,
    authenticated_user: String,
    expires_at: Instant,
    /// The version of the last document sent.
    version: u32,
    /// NOTIFY transactions not answered yet.
    in_flight: Vec<TsxKey>,
}

impl Subscription {
    fn key(&self) -> (String, String) {
        (self.dialog.call_id.clone(), self.dialog.local_tag.clone())
    }
}

/// The SUBSCRIBE the machines are deciding on.
#[derive(Debug)]
struct Deciding {
    key: TsxKey,
    msg: Message,
    who: String,
    expires: u32,
    peer: Peer,
    /// A refresh or an unsubscribe of the subscription whose dialog has our tag `local_tag`
    /// (`subscription.refresh`); `None` for a SUBSCRIBE creating one.
    refresh: Option<String>,
}

/// A session's subscriptions.
#[derive(Debug, Default)]
pub(crate) struct Conference {
    subs: Vec<Subscription>,
    /// Boxed: set only while a SUBSCRIBE is decided, so an idle session keeps a pointer.
    deciding: Option<Box<Deciding>>,
    /// What subscribers were last told changed from (`legs changed` fires on a difference).
    seen: Vec<Participant>,
}

/// What the endpoint checked before a SUBSCRIBE reaches a session.
pub(crate) struct SubscribeRequest {
    pub(crate) key: TsxKey,
    pub(crate) msg: Message,
    /// `subscription.subscriber`.
    pub(crate) subscriber: Uri,
    /// The granted interval (0: a fetch, RFC 6665 §4.4.3).
    pub(crate) expires: u32,
    /// Inside an existing subscription's dialog: a refresh or an unsubscribe.
    pub(crate) in_dialog: bool,
    /// Where it came from: where the NOTIFYs go (its connection for TCP/TLS), as for
    /// every in-dialog request the server sends.
    pub(crate) peer: Peer,
    /// The configured limit granting it would pass, in words (`subscription.error`).
    pub(crate) limit: Option<String>,
    /// `subscription.authenticated_user`: the Digest user name, empty when none.
    pub(crate) authenticated_user: String,
}

/// The identity a subscription counts against.
fn identity(u: &Uri) -> String {
    format!("{}@{}", u.user(), u.host().to_ascii_lowercase())
}

/// The value of header `name` (or its compact form), first line.
fn header<'m>(msg: &'m Message, name: &str, compact: &str) -> Option<&'m str> {
    msg.headers()
        .find(|h| h.name_str.eq_ignore_ascii_case(name) || h.name_str.eq_ignore_ascii_case(compact))
        .map(|h| h.value)
}

/// Whether the request's Event names the conference package (RFC 6665 §8.2.1: the type
/// before any parameter, compared case-insensitively).
fn is_conference(msg: &Message) -> bool {
    header(msg, "Event", "o")
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(PACKAGE))
}

/// Whether `Accept` (absent: the package default) admits the conference-info type.
fn accepts_document(msg: &Message) -> bool {
    let mut any = false;
    for line in msg.header_lines(HeaderName::Accept) {
        for v in sip::split_values(line) {
            any = true;
            let t = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if t == CONTENT_TYPE || t == "*/*" || t == "application/*" {
                return true;
            }
        }
    }
    !any
}

/// The granted interval: the request's Expires, at most `max` (absent: `max`).
fn granted(msg: &Message, max: u32) -> u32 {
    msg.header(HeaderName::Expires)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(max, |e| e.min(u64::from(max)) as u32)
}

/// The reason phrase of an MSRP status (RFC 4975 §10).
fn msrp_reason(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        403 => "Forbidden",
        408 => "Request Timeout",
        413 => "Stop Sending Message",
        415 => "Unsupported Media Type",
        423 => "Interval Out-of-Bounds",
        481 => "Session Does Not Exist",
        501 => "Unknown Method",
        506 => "Session Already Bound",
        _ => "",
    }
}

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
        if !is_conference(&msg) {
            let allow = PACKAGE.to_string();
            self.conf_reply(
                now,
                &key,
                &msg,
                489,
                "Bad Event",
                &[("Allow-Events", allow)],
            );
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
        if !is_conference(&msg) {
            let allow = PACKAGE.to_string();
            self.conf_reply(
                now,
                &key,
                &msg,
                489,
                "Bad Event",
                &[("Allow-Events", allow)],
            );
            return;
        }
        let expires = granted(&msg, self.cfg.max_subscription_expires);
        let req = SubscribeRequest {
            key,
            msg,
            subscriber: Uri::default(),
            expires,
            in_dialog: true,
            peer,
            limit: None,
            authenticated_user: String::new(),
        };
        self.dispatch(now, sid, SessionEvent::Subscribe(Box::new(req)));
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

impl Session {
    /// Whether any conference-state subscription is live (the session's end must tell it).
    pub(crate) fn has_subscribers(&self) -> bool {
        !self.conference.subs.is_empty()
    }

    /// The user part of the focus URI a SUBSCRIBE may name: only an INVITE session's, once
    /// its 2xx gave the URI out.
    pub(crate) fn conference_focus_user(&self) -> Option<&str> {
        if self.request.method() != Some(&Method::Invite) || self.dialog.is_none() {
            return None;
        }
        self.focus
            .split_once(':')
            .and_then(|(_, r)| r.split_once('@'))
            .map(|(u, _)| u)
    }

    /// A SUBSCRIBE the endpoint routed here: a new subscription, or a refresh or an
    /// unsubscribe in one's dialog, decided alike by the machines (RFC 6665 §4.2.1.2: a
    /// refresh is handled as the creation was), with `subscription.refresh` telling them
    /// apart. A refresh is decided with the identity its subscription was created with.
    pub(super) fn subscribe<A: Application>(&mut self, cx: &mut Ctx<'_, A>, req: SubscribeRequest) {
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
        let (subscriber, authenticated_user, refresh) = if in_dialog {
            let tag = msg.to().and_then(|t| t.tag()).unwrap_or("");
            let Some(s) = self
                .conference
                .subs
                .iter()
                .find(|s| s.dialog.local_tag == tag)
            else {
                // Ended while the SUBSCRIBE was on its way (RFC 6665 §4.1.2.2: 481).
                cx.reply_simple(&key, &msg, 481, &[]);
                return;
            };
            (
                s.subscriber.clone(),
                s.authenticated_user.clone(),
                Some(tag.to_owned()),
            )
        } else {
            (subscriber, authenticated_user, None)
        };
        let who = identity(&subscriber);
        self.facts.subscriber = subscriber;
        self.facts.subscription = crate::machine::SubscriptionFacts {
            in_invite_dialog: false,
            over_limit: limit.is_some(),
            error: limit.unwrap_or_default(),
            authenticated_user,
            refresh: refresh.is_some(),
            expires,
        };
        self.answering = Some(Box::new((key.clone(), msg.clone())));
        self.conference.deciding = Some(Box::new(Deciding {
            key,
            msg,
            who,
            expires,
            peer,
            refresh,
        }));
        self.run_machines(cx, &Event::InDialogRequest(Method::Subscribe));
        self.facts.subscriber = Uri::default();
        self.facts.subscription = crate::machine::SubscriptionFacts::default();
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
                if d.expires == 0 {
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
    pub(super) fn accept_subscription<A: Application>(
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
        let contact = format!("<{}>", self.focus);
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
            subscriber: self.facts.subscriber.clone(),
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
                self.call_id, sub.dialog.remote_uri, d.expires
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
    fn refreshed<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        d: &Deciding,
        tag: &str,
        origin: Option<&Origin>,
    ) {
        let Some(i) = self
            .conference
            .subs
            .iter()
            .position(|s| s.dialog.local_tag == tag)
        else {
            cx.reply_simple(&d.key, &d.msg, 481, &[]);
            return;
        };
        let Some(code) = StatusCode::new(200) else {
            return;
        };
        let resp = sip::build::ResponseBuilder::new(&d.msg, code)
            .header("Expires", &d.expires.to_string())
            .header("Contact", &format!("<{}>", self.focus))
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
    fn end_subscription<A: Application>(&mut self, cx: &mut Ctx<'_, A>, tag: &str, reason: &str) {
        let Some(i) = self
            .conference
            .subs
            .iter()
            .position(|s| s.dialog.local_tag == tag)
        else {
            return;
        };
        let mut sub = self.conference.subs.remove(i);
        cx.conf.removed(&sub.key(), &sub.who);
        tracing_log(
            "conference",
            &format!(
                "session {} subscription of {} ended: {reason}",
                self.call_id, sub.dialog.remote_uri
            ),
        );
        self.notify_one(cx, &mut sub, Some(reason));
        self.arm_subscription_timer();
    }

    /// `notify subscribers`: the current state to every subscriber.
    pub(super) fn notify_subscribers<A: Application>(&mut self, cx: &mut Ctx<'_, A>) {
        let mut subs = std::mem::take(&mut self.conference.subs);
        for s in &mut subs {
            self.notify_one(cx, s, None);
        }
        self.conference.subs = subs;
    }

    /// After an input: when what subscribers see changed since they were last told, the
    /// machines hear `legs changed` (only while there are subscribers: no one else reads it).
    pub(super) fn conference_after_input<A: Application>(&mut self, cx: &mut Ctx<'_, A>) {
        if self.conference.subs.is_empty() {
            return;
        }
        let now = self.participants();
        if now == self.conference.seen {
            return;
        }
        self.conference.seen = now;
        self.run_machines(cx, &Event::LegsChanged);
    }

    /// Subscriptions whose time is up get their last NOTIFY (`reason=timeout`).
    pub(super) fn subscriptions_due<A: Application>(&mut self, cx: &mut Ctx<'_, A>) {
        let (due, keep): (Vec<Subscription>, Vec<Subscription>) =
            std::mem::take(&mut self.conference.subs)
                .into_iter()
                .partition(|s| s.expires_at <= cx.now);
        self.conference.subs = keep;
        for mut s in due {
            cx.conf.removed(&s.key(), &s.who);
            self.notify_one(cx, &mut s, Some("timeout"));
        }
        self.arm_subscription_timer();
    }

    /// The session is over: every subscription gets its last NOTIFY
    /// (`terminated;reason=noresource`, RFC 6665 §4.2.2) with the final state.
    pub(super) fn end_subscriptions<A: Application>(&mut self, cx: &mut Ctx<'_, A>) {
        for mut s in std::mem::take(&mut self.conference.subs) {
            cx.conf.removed(&s.key(), &s.who);
            self.notify_one(cx, &mut s, Some("noresource"));
        }
        self.timers
            .stop(|k| matches!(k, SessionTimer::Subscriptions));
    }

    /// A NOTIFY was answered (`Some(status)`) or timed out (`None`). Returns whether it was
    /// one of ours. An error answer ends the subscription without another NOTIFY.
    pub(super) fn notify_answered<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        key: &TsxKey,
        status: Option<u16>,
    ) -> bool {
        let Some(i) = self
            .conference
            .subs
            .iter()
            .position(|s| s.in_flight.contains(key))
        else {
            return key.method() == &Method::Notify;
        };
        if matches!(status, Some(s) if s < 200) {
            return true;
        }
        self.conference.subs[i].in_flight.retain(|k| k != key);
        if matches!(status, Some(s) if s < 300) {
            return true;
        }
        let s = self.conference.subs.remove(i);
        cx.conf.removed(&s.key(), &s.who);
        tracing_log(
            "conference",
            &format!(
                "session {} subscription of {} ended: NOTIFY got {}",
                self.call_id,
                s.dialog.remote_uri,
                status.map_or("no answer".to_string(), |c| c.to_string())
            ),
        );
        self.arm_subscription_timer();
        true
    }

    fn arm_subscription_timer(&mut self) {
        match self.conference.subs.iter().map(|s| s.expires_at).min() {
            Some(at) => self.timers.set(SessionTimer::Subscriptions, at),
            None => self
                .timers
                .stop(|k| matches!(k, SessionTimer::Subscriptions)),
        }
    }

    /// Sends `sub` a NOTIFY with the full state; `terminated` ends it with that reason.
    fn notify_one<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        sub: &mut Subscription,
        terminated: Option<&str>,
    ) {
        sub.version += 1;
        let participants = self.participants();
        let body = ConferenceInfo {
            entity: &self.focus,
            version: sub.version,
            active: terminated != Some("noresource"),
            participants: &participants,
        }
        .write();
        let state = match terminated {
            Some(reason) => format!("terminated;reason={reason}"),
            None => {
                let left = sub.expires_at.saturating_duration_since(cx.now).as_secs();
                format!("active;expires={left}")
            }
        };
        let d = &mut sub.dialog;
        // The subscriber's connection may have closed since its SUBSCRIBE: a new one to the
        // dialog's remote target (RFC 3261 §12.2.1.1, §18.1.1), as for our BYE, unless it
        // asked to be reached over its flow only (`ob`, RFC 5626 §5.3). A NOTIFY that
        // cannot travel fails at once, and its failure ends the subscription
        // (`notify_answered`, RFC 6665 §4.2.2) instead of waiting out Timer F.
        let reachable = cx.redial(d, (self.id, None));
        d.local_cseq = d.local_cseq.max(d.invite_cseq) + 1;
        let cseq = d.local_cseq;
        let m = d
            .builder(Method::Notify, cseq, cx.cfg.sip_advertised)
            .contact(&format!("<{}>", self.focus))
            .header("Event", PACKAGE)
            .header("Subscription-State", &state)
            .body(CONTENT_TYPE, Bytes::from(body))
            .build_in_dialog();
        let Ok(m) = m else {
            return;
        };
        tracing_log(
            "conference",
            &format!(
                "session {} NOTIFY version {} ({state}) to {}",
                self.call_id, sub.version, d.remote_uri
            ),
        );
        let peer = d.peer;
        if let Some((key, holds, _)) = cx.send_request(&m, peer, self.id, None) {
            self.track(holds);
            if !reachable {
                cx.fail_now(&key);
            }
            if terminated.is_none() {
                sub.in_flight.push(key);
            }
        }
    }

    /// Every invitee as a subscriber sees it.
    fn participants(&self) -> Vec<Participant> {
        self.legs
            .iter()
            .map(|l| {
                let delivery = match (l.delivery, l.status) {
                    (Some(200), _) => Delivery::Delivered,
                    (Some(_), _) | (None, LegStatus::Failed | LegStatus::Ended) => Delivery::Failed,
                    (None, _) => Delivery::Pending,
                };
                let (status, disconnection) = match l.status {
                    LegStatus::Pending => (Status::Pending, None),
                    LegStatus::Connected => (Status::Connected, None),
                    LegStatus::Failed => {
                        // The invitee's own final response; when none came (no route: the
                        // server sent nothing), the status the leg's machine failed it with
                        // (7.9.1.4 `leg unroutable`: 480 or 503, as a proxy would answer,
                        // RFC 3261 §16.5), so the subscriber sees why.
                        let code = l
                            .status_code
                            .or(l.delivery.filter(|c| (300..700).contains(c)));
                        let method = if matches!(code, Some(486 | 600)) {
                            Disconnect::Busy
                        } else {
                            Disconnect::Failed
                        };
                        let cause = code.and_then(StatusCode::new).map(|c| Cause {
                            protocol: "SIP",
                            code: u16::from(c),
                            text: c.default_reason().to_string(),
                        });
                        (Status::Disconnected, Some((method, cause)))
                    }
                    LegStatus::Ended => match l.delivery {
                        Some(code) if code != 200 => (
                            Status::Disconnected,
                            Some((
                                Disconnect::Failed,
                                Some(Cause {
                                    protocol: "MSRP",
                                    code,
                                    text: msrp_reason(code).to_string(),
                                }),
                            )),
                        ),
                        _ => (Status::Disconnected, Some((Disconnect::Departed, None))),
                    },
                };
                Participant {
                    entity: l.uri.raw().to_string(),
                    status,
                    disconnection,
                    delivery,
                }
            })
            .collect()
    }
}

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

#[path = "conference/decide.rs"]
mod decide;
#[path = "conference/ingress.rs"]
mod ingress;
#[path = "conference/notify.rs"]
mod notify;

use super::super::*;
use super::*;
use crate::proto::body::conference_info::{CONTENT_TYPE, Participant};

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
        (
            self.dialog.call_id().to_string(),
            self.dialog.local_tag().to_string(),
        )
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
    /// Sent by the user the subscription was granted to (or vouched for by a trusted host,
    /// or a creation): a refusal may end the subscription.
    by_owner: bool,
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

/// A session's [`Conference`], allocated at the first write, as `LazyCopies` is: most
/// sessions have no subscriber, and an idle one holds a null pointer where `Conference`
/// was 56 bytes inline (issue 11 item 4). Reads before then see an empty `Conference`; a
/// path that may write without a subscriber checks first, so as not to allocate one.
#[derive(Debug, Default)]
pub(crate) struct LazyConference(Option<Box<Conference>>);

/// What an unwritten [`LazyConference`] reads as.
static NO_CONFERENCE: Conference = Conference {
    subs: Vec::new(),
    deciding: None,
    seen: Vec::new(),
};

impl std::ops::Deref for LazyConference {
    type Target = Conference;
    fn deref(&self) -> &Conference {
        self.0.as_deref().unwrap_or(&NO_CONFERENCE)
    }
}

impl std::ops::DerefMut for LazyConference {
    fn deref_mut(&mut self) -> &mut Conference {
        self.0.get_or_insert_with(Box::default)
    }
}

impl Conference {
    /// Where the subscription whose dialog has our tag `tag` stands in `subs` (our tag
    /// alone names it: the registry already matched the Call-ID to this session).
    fn position(&self, tag: &str) -> Option<usize> {
        self.subs.iter().position(|s| s.dialog.local_tag() == tag)
    }

    /// Where the subscription whose NOTIFY `key` is unanswered stands in `subs`.
    fn awaiting(&self, key: &TsxKey) -> Option<usize> {
        self.subs.iter().position(|s| s.in_flight.contains(key))
    }

    /// The subscription whose dialog has our tag `tag`.
    fn find(&self, tag: &str) -> Option<&Subscription> {
        self.position(tag).map(|i| &self.subs[i])
    }
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

impl Session {
    /// Whether any conference-state subscription is live (the session's end must tell it).
    pub(crate) fn has_subscribers(&self) -> bool {
        !self.conference.subs.is_empty()
    }

    /// The Digest user whose credentials a refresh or an unsubscribe of the subscription
    /// with our tag `tag` must carry: the user that authenticated its SUBSCRIBE, or, when
    /// none did (a trusted host vouched for it), its subscriber's user. `None`: no such
    /// subscription (it ended while the request was on its way; the session answers 481).
    pub(crate) fn subscription_owner(&self, tag: &str) -> Option<String> {
        let s = self.conference.find(tag)?;
        Some(if s.authenticated_user.is_empty() {
            s.subscriber.user().to_string()
        } else {
            s.authenticated_user.clone()
        })
    }

    /// The user part of the focus URI a SUBSCRIBE may name: only an INVITE session's, once
    /// its 2xx gave the URI out.
    pub(crate) fn conference_focus_user(&self) -> Option<&str> {
        if self.request.method() != Some(&Method::Invite) || self.dialog.is_none() {
            return None;
        }
        self.facts
            .focus
            .raw()
            .split_once(':')
            .and_then(|(_, r)| r.split_once('@'))
            .map(|(u, _)| u)
    }
}

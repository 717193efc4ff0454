//! Per-session state: the originator's leg, its dialog, the machines running for it and one
//! leg per invitee.

#[path = "conference.rs"]
mod conference;
#[path = "copies.rs"]
mod copies;
#[path = "dialog.rs"]
mod dialog;
#[path = "imdn.rs"]
mod imdn;
#[path = "legs.rs"]
mod legs;
#[path = "machines.rs"]
mod machines;
#[path = "msrp_glue.rs"]
mod msrp_glue;
#[path = "offline.rs"]
mod offline;
#[path = "originator.rs"]
mod originator;
#[path = "route_leg.rs"]
pub(super) mod route_leg;
#[path = "teardown.rs"]
mod teardown;

pub(super) use conference::{Registry as ConferenceRegistry, SubscribeRequest};
pub(crate) use dialog::Dialog;
use dialog::{Piece, UacInvite, addr_of};
pub(super) use machines::{
    ip_string, msrp_path, own_msrp_path, push_addr, push_ip, tracing_log, tracing_log_args,
};

use super::app::{Application, DynMachine};
use super::ctx::Ctx;
use super::msrp_relay;
use super::timers::{SessionTimer, SessionTimers};
use crate::machine::{Event, Facts, Method, Timer, Uri};
use crate::proto::msrp;
use crate::proto::sip::{HeaderName, Message};
use crate::proto::transaction::{Peer, TsxKey};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;

/// Identifies a session inside one endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SessionId(pub(crate) u64);

/// Where an invitee leg stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LegStatus {
    /// INVITE sent, no final response.
    Pending,
    /// 2xx received.
    Connected,
    /// Declined, timed out or unroutable.
    Failed,
    /// BYE sent or received after connecting.
    Ended,
}

/// One invitee.
pub(crate) struct Leg {
    pub(crate) uri: Uri,
    /// Call-ID and our tag of the leg's dialog (its key in the endpoint's dialog index)
    /// until the dialog exists, which then holds them, so a connected leg holds one copy
    /// of each. Read them with [`Leg::dialog_key`]. Boxed: a
    /// connected leg has none, and two `String`s are 48 bytes inline in every leg.
    pending_key: Option<Box<(String, String)>>,
    pub(crate) machine: Option<Box<dyn DynMachine>>,
    /// The last final status of the leg's INVITE (`status` in the leg machine's facts).
    pub(crate) status_code: Option<u16>,
    pub(crate) status: LegStatus,
    /// Boxed: kept only until the leg's first final answer, so a connected leg holds a
    /// pointer rather than a `Message`'s inline bytes.
    pub(crate) invite: Option<Box<Message>>,
    pub(crate) invite_key: Option<TsxKey>,
    pub(crate) peer: Option<Peer>,
    pub(crate) dialog: Option<Dialog>,
    /// Our MSRP session id for the leg, shared with the relay's side and its index.
    pub(crate) msrp_session: Arc<str>,
    pub(crate) want_delivery: bool,
    /// The machine's last `deliver` asked for a success REPORT (read when the copy goes).
    pub(crate) want_success_report: bool,
    pub(crate) delivery_started: bool,
    /// The outcome the leg's machine recorded (`outcome …`): 200 delivered, else the
    /// failure status it gave.
    pub(crate) delivery: Option<u16>,
    pub(crate) cancelled: bool,
    /// The CANCEL was the leg machine's own `cancel`: a 2xx that crosses it goes to that
    /// machine (7.9.1.4 `answered_after_cancel`). A leg CANCELled by the session (`cancel
    /// legs`, or teardown) that answers 2xx anyway is BYE'd, as the CANCEL meant.
    pub(crate) cancelled_by_own_machine: bool,
    /// Its INVITE went over TCP for its size alone: a failed connect sends it again over
    /// UDP (`route_leg.rs`).
    pub(crate) udp_retry: bool,
}

impl Leg {
    /// Call-ID and our tag: the leg's key in the endpoint's dialog index.
    pub(crate) fn dialog_key(&self) -> (&str, &str) {
        match &self.dialog {
            Some(d) => (d.call_id(), d.local_tag()),
            None => self
                .pending_key
                .as_deref()
                .map_or(("", ""), |(c, t)| (c.as_str(), t.as_str())),
        }
    }

    /// The dialog a 2xx to the leg's `invite` makes ([`Dialog::client_side`]), holding
    /// the leg's Call-ID and tag from then on.
    pub(crate) fn make_dialog(&mut self, invite: &Message, resp: &Message) {
        let Some((call_id, local_tag)) = self.pending_key.as_deref() else {
            return;
        };
        self.dialog = Dialog::client_side(invite, resp, self.peer, call_id, local_tag);
        if self.dialog.is_some() {
            self.pending_key = None;
        }
    }

    /// The leg's machine has reached a final state (a leg without one has nothing to wait
    /// for): what `legs settled` waits for.
    pub(crate) fn machine_final(&self) -> bool {
        self.machine.as_ref().is_none_or(|m| m.is_final())
    }

    pub(crate) fn new(
        uri: Uri,
        call_id: String,
        local_tag: String,
        machine: Box<dyn DynMachine>,
        msrp_session: String,
    ) -> Leg {
        Leg {
            uri,
            pending_key: Some(Box::new((call_id, local_tag))),
            machine: Some(machine),
            status_code: None,
            status: LegStatus::Pending,
            invite: None,
            invite_key: None,
            peer: None,
            dialog: None,
            msrp_session: msrp_session.into(),
            want_delivery: false,
            want_success_report: false,
            delivery_started: false,
            delivery: None,
            cancelled: false,
            cancelled_by_own_machine: false,
            udp_retry: false,
        }
    }
}

/// One originator request and everything it started: the originator's dialog, the
/// machines running for it, one leg per invitee, its timers and its MSRP delivery. Its
/// fields are private to this module and its children (`machines`, `legs`, `originator`,
/// `msrp_glue`, `teardown`): the endpoint drives it through [`Session::handle_event`],
/// [`Session::handle_timeout`], [`Session::poll_timeout`] and [`Session::is_drained`], and
/// the session reaches the endpoint only through [`Ctx`].
pub(crate) struct Session {
    id: SessionId,
    call_id: String,
    local_tag: String,
    request: OriginatorRequest,
    facts: Facts,
    machines: Vec<Box<dyn DynMachine>>,
    server_tsx: TsxKey,
    peer: Peer,
    answered: Option<u16>,
    /// The 2xx to the originator's INVITE and when it was first sent, from then until its
    /// ACK or 64·T1 without one (§13.3.1.4), sent again over UDP meanwhile. Boxed: an idle
    /// session holds a pointer where the two took 48 bytes inline.
    unacked_ok: Option<Box<(Bytes, std::time::Instant)>>,
    acked: bool,
    dialog: Option<Dialog>,
    legs: Vec<Leg>,
    /// Our MSRP session id with the originator, shared with the relay's side and its index.
    msrp_session: Arc<str>,
    /// The 2xx answered an MSRP offer: the originator's MSRP side is registered.
    msrp_originator: bool,
    /// Boxed: an idle session has none yet, and a `Message` is large inline.
    held: Option<Box<msrp::Message>>,
    settled_sent: bool,
    /// The machines have heard `timer lifetime`; the next lifetime deadline ends the session.
    lifetime_heard: bool,
    originator_gone: bool,
    ending: bool,
    /// A spec `bye` to the originator came before the ACK: sent once the dialog is
    /// confirmed (ACK, or 64·T1 without one), as RFC 3261 §15 allows a UAS no sooner.
    bye_when_confirmed: bool,
    /// The session's own timers.
    timers: SessionTimers,
    /// Client transactions that hold the session (INVITEs to invitees) with no final answer
    /// yet: what `is_drained` reads instead of scanning the transaction index.
    pending_client: u32,
    /// The originator's in-dialog request whose machines are running: a spec `respond`
    /// answers this transaction rather than the session's INVITE.
    /// Boxed, as `held`: set only while such a request is handled.
    answering: Option<Box<(TsxKey, Message)>>,
    /// Page-mode copies and their delivery reports (`imdn.rs`): unallocated until first
    /// written ([`LazyCopies`]).
    copies: LazyCopies,
    /// Conference-state subscriptions (`conference.rs`).
    conference: conference::LazyConference,
}

/// The request that opened a session: boxed (an idle session holds a pointer where a
/// `Message` was 224 bytes inline), and given up once an INVITE's 2xx is ACKed. From then on
/// nothing reads more of it than its method: every response to it has gone (a spec
/// `respond` after the final one is ignored, `machines.rs`), the dialog holds what the
/// in-dialog requests need, and its facts were read when it came. An idle group session
/// so keeps none of it (it kept its head, ~490 bytes in two blocks; issue 11 item 4).
pub(crate) enum OriginatorRequest {
    /// The request as received (a page-mode MESSAGE, or an INVITE not yet ACKed).
    Kept(Box<Message>),
    /// An INVITE whose 2xx was ACKed.
    AckedInvite,
}

impl OriginatorRequest {
    /// The request's method (INVITE once given up).
    pub(crate) fn method(&self) -> Option<&Method> {
        match self {
            OriginatorRequest::Kept(m) => m.method(),
            OriginatorRequest::AckedInvite => Some(&Method::Invite),
        }
    }

    /// The request, unless given up.
    pub(crate) fn message(&self) -> Option<&Message> {
        match self {
            OriginatorRequest::Kept(m) => Some(m),
            OriginatorRequest::AckedInvite => None,
        }
    }
}

/// A session's [`copies::Copies`], allocated at the first write: a group session writes
/// none until its message has gone (page-mode copies, their reports, kept copies), so an
/// idle one holds a null pointer where `Copies` was 248 bytes inline in every session
/// (issue 11 item 4). Reads before then see an empty `Copies`.
#[derive(Default)]
struct LazyCopies(Option<Box<copies::Copies>>);

/// What an unwritten [`LazyCopies`] reads as (`Copies::default()`, spelled out as a
/// `static` needs).
static NO_COPIES: copies::Copies = copies::Copies {
    request: None,
    entries: Vec::new(),
    current: None,
    store_refused: None,
    collected: Vec::new(),
    fanning_out: false,
    unsent: copies::Unsent::Idle,
    payload: None,
};

impl std::ops::Deref for LazyCopies {
    type Target = copies::Copies;
    fn deref(&self) -> &copies::Copies {
        self.0.as_deref().unwrap_or(&NO_COPIES)
    }
}

impl std::ops::DerefMut for LazyCopies {
    fn deref_mut(&mut self) -> &mut copies::Copies {
        self.0.get_or_insert_with(Box::default)
    }
}

/// What the endpoint routes to a session.
pub(crate) enum SessionEvent {
    /// The admitted initial request: the session's machines start.
    Start(Method),
    /// An in-dialog request (ACK, BYE or any other but CANCEL) in the originator's dialog
    /// (`leg: None`) or in a leg's; `key` is the server transaction (none for the ACK of a
    /// 2xx).
    InDialog {
        leg: Option<usize>,
        key: Option<TsxKey>,
        msg: Message,
    },
    /// An answer to a client transaction the session started.
    Response {
        leg: Option<usize>,
        key: TsxKey,
        resp: Message,
    },
    /// A client transaction of the session timed out or met a transport error.
    ClientTimeout { leg: Option<usize>, key: TsxKey },
    /// The originator CANCELled the session's INVITE.
    Cancelled,
    /// Timer H: the originator never ACKed our final answer.
    NoAck,
    /// Something happened on one of the session's MSRP sides.
    Msrp(msrp_relay::RelayEvent),
    /// The server is shutting down: the machines hear `shutdown` (the runtime's teardown
    /// only when no rule acts).
    End(&'static str),
    /// A SUBSCRIBE to the session's focus, or in one of its subscriptions' dialogs.
    Subscribe(Box<SubscribeRequest>),
    /// The session is drained and about to be removed: its subscriptions end.
    Closing,
    /// A kept copy is due (`offline.rs`): send it, or report it expired.
    Offline(Box<offline::Due>),
}

impl Session {
    /// A session for the admitted `request`; its lifetime timer runs until `lifetime_end`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: SessionId,
        call_id: String,
        local_tag: String,
        focus: String,
        request: Message,
        mut facts: Facts,
        machine: Box<dyn DynMachine>,
        server_tsx: TsxKey,
        peer: Peer,
        msrp_session: String,
        lifetime_end: std::time::Instant,
    ) -> Session {
        let mut timers = SessionTimers::new();
        timers.set(SessionTimer::Lifetime, lifetime_end);
        // `session.focus`: what a spec names the session by (the invitee INVITE's From),
        // and the one copy of it the session keeps (its Contact, conference entity…).
        facts.focus = match crate::proto::sip::Uri::parse(&focus) {
            Ok(u) => u.to_view(),
            // Not one the parser reads (never for one `focus_uri` makes): kept as written, an
            // empty URI to the rules.
            Err(_) => crate::machine::Uri::new(crate::machine::UriParts {
                raw: &focus,
                ..crate::machine::UriParts::default()
            }),
        };
        super::facts::shrink(&mut facts);
        Session {
            id,
            call_id,
            local_tag,
            request: OriginatorRequest::Kept(Box::new(request)),
            facts,
            machines: vec![machine],
            server_tsx,
            peer,
            answered: None,
            unacked_ok: None,
            acked: false,
            dialog: None,
            legs: Vec::new(),
            msrp_session: msrp_session.into(),
            msrp_originator: false,
            held: None,
            settled_sent: false,
            lifetime_heard: false,
            originator_gone: false,
            ending: false,
            bye_when_confirmed: false,
            timers,
            pending_client: 0,
            answering: None,
            copies: LazyCopies::default(),
            conference: conference::LazyConference::default(),
        }
    }

    /// Handles one event the endpoint routed here.
    pub(crate) fn handle_event<A: Application>(&mut self, ev: SessionEvent, cx: &mut Ctx<'_, A>) {
        match ev {
            SessionEvent::Start(method) => {
                self.read_imdn_request(cx);
                self.run_machines(cx, &Event::InitialRequest(method));
                self.unanswered_unreadable(cx);
            }
            SessionEvent::InDialog { leg, key, msg } => {
                self.in_dialog(cx, leg, key, msg);
                // `in_invite_dialog` was set and reset for the request's rules: no
                // allocation kept for a default.
                self.facts.subscription.tidy();
            }
            SessionEvent::Response {
                leg: None,
                key,
                resp,
            } if key.method() == &Method::Notify => {
                self.notify_answered(cx, &key, resp.status().map(u16::from));
            }
            SessionEvent::ClientTimeout { leg: None, key } if key.method() == &Method::Notify => {
                self.notify_answered(cx, &key, None);
            }
            SessionEvent::Response { leg, key, resp } => self.client_response(cx, leg, &key, resp),
            SessionEvent::ClientTimeout { leg, key } => self.client_timeout(cx, leg, &key),
            SessionEvent::Cancelled => self.cancelled(cx),
            SessionEvent::NoAck => self.unacked_final(cx),
            SessionEvent::Msrp(ev) => self.relay_event(cx, ev),
            SessionEvent::End(why) => self.shutdown(cx, why),
            SessionEvent::Subscribe(req) => self.subscribe(cx, *req),
            SessionEvent::Closing => {
                self.end_subscriptions(cx);
                return;
            }
            SessionEvent::Offline(due) => self.offline_start(cx, *due),
        }
        self.conference_after_input(cx);
    }

    /// Fires the session's timers due at `cx.now`, earliest first; returns whether any was.
    pub(crate) fn handle_timeout<A: Application>(&mut self, cx: &mut Ctx<'_, A>) -> bool {
        let due = self.timers.take_due(cx.now);
        let fired = !due.is_empty();
        for t in due {
            self.fire_timer(cx, t);
        }
        self.conference_after_input(cx);
        fired
    }

    /// The session's next deadline (the endpoint files the session under it).
    pub(crate) fn poll_timeout(&self) -> Option<std::time::Instant> {
        self.timers.next()
    }

    /// A held client transaction (an INVITE to an invitee) has its final answer, timed out
    /// or is gone.
    pub(crate) fn client_released(&mut self) {
        self.pending_client = self.pending_client.saturating_sub(1);
    }

    /// Leg `i`'s client transaction `key` has ended (Timers B, D, M …): the leg keeps no
    /// key of a transaction that is gone. An answered leg held its INVITE's key for the
    /// session's life, and with it the key's two allocations (~100 bytes a leg, issue 11
    /// item 4); nothing reads it once the transaction is over (a CANCEL, a timeout or a
    /// response only come while it lives).
    pub(crate) fn client_tsx_ended(&mut self, i: usize, key: &TsxKey) {
        if let Some(l) = self.legs.get_mut(i)
            && l.invite_key.as_ref() == Some(key)
        {
            l.invite_key = None;
        }
    }

    /// Every leg's INVITE key names a transaction `live` says is there (for the endpoint's
    /// debug cross-check).
    #[cfg(debug_assertions)]
    pub(crate) fn legs_keys_live(&self, live: impl Fn(&TsxKey) -> bool) -> bool {
        self.legs
            .iter()
            .filter_map(|l| l.invite_key.as_ref())
            .all(live)
    }

    /// Client transactions holding the session (for the endpoint's debug cross-check).
    #[cfg(debug_assertions)]
    pub(crate) fn pending_client(&self) -> u32 {
        self.pending_client
    }

    /// The session's keys in the endpoint's indexes, for its removal without a scan: its
    /// server transaction and the dialog key (our tag's, [`crate::endpoint::ids::tag_key`]) of the
    /// originator's side and of every leg.
    pub(crate) fn index_keys(&self) -> (&TsxKey, Vec<u64>) {
        let mut dialogs = Vec::with_capacity(self.legs.len() + 1);
        dialogs.extend(crate::endpoint::ids::tag_key(&self.local_tag));
        for l in &self.legs {
            dialogs.extend(crate::endpoint::ids::tag_key(l.dialog_key().1));
        }
        (&self.server_tsx, dialogs)
    }

    /// The Call-ID of the session's dialog with the originator (`leg: None`) or of leg
    /// `leg`'s: what the dialog index, keyed by our tag alone, checks a request against.
    pub(crate) fn dialog_call_id(&self, leg: Option<usize>) -> Option<&str> {
        match leg {
            None => Some(&self.call_id),
            Some(i) => self.legs.get(i).map(|l| l.dialog_key().0),
        }
    }

    /// How many invitee legs the session has (the MSRP relay's sides are keyed by index).
    pub(crate) fn leg_count(&self) -> usize {
        self.legs.len()
    }

    /// The originator's Call-ID.
    pub(crate) fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Tracks a client transaction the session started (see [`Ctx::send_request`]).
    fn track(&mut self, holds: bool) {
        if holds {
            self.pending_client += 1;
        }
    }

    /// Nothing left to wait for: the originator's side is over, every leg is over, the
    /// machines have answered and no INVITE to an invitee awaits its final answer. The
    /// session's calls are over, so it no longer counts against `max_sessions`; client
    /// transactions that linger (BYE answers, Completed or Accepted INVITEs absorbing
    /// retransmissions) belong to the transaction layer, not to the session. O(legs).
    pub(crate) fn is_drained(&self) -> bool {
        let originator_done = self.originator_gone
            || self.dialog.as_ref().is_some_and(|d| d.ended)
            || matches!(self.answered, Some(x) if x >= 300 || x == 0)
            || (self.answered.is_some_and(|x| (200..300).contains(&x))
                && self.request.method() != Some(&Method::Invite));
        let legs_done = self.legs.iter().all(|l| match l.status {
            LegStatus::Failed | LegStatus::Ended => true,
            LegStatus::Connected | LegStatus::Pending => false,
        });
        let machines_done = self.answered.is_some();
        originator_done && legs_done && machines_done && self.pending_client == 0
    }

    /// The `legs.*` facts.
    fn leg_counts(&self) -> crate::machine::LegCounts {
        let mut c = crate::machine::LegCounts {
            total: self.legs.len(),
            ..Default::default()
        };
        // Delivered and failed are what each leg's machine decided (`outcome …`): a leg
        // whose machine ended without `outcome delivered` did not get its copy.
        for l in &self.legs {
            if l.dialog.is_some() {
                c.connected += 1;
            }
            match l.delivery {
                Some(200) => c.delivered += 1,
                Some(_) => c.failed += 1,
                None if l.machine_final() => c.failed += 1,
                None => {}
            }
        }
        c
    }

    /// One log line per recipient: how its leg ended. The text is formatted only when a
    /// subscriber takes it.
    fn log_outcomes(&self) {
        for l in &self.legs {
            tracing_log_args(
                "outcome",
                format_args!(
                    "session {} recipient {}: {}",
                    self.call_id,
                    l.uri.raw(),
                    OutcomeText(l)
                ),
            );
        }
    }
}

/// What became of a leg, as the outcome log line says it.
struct OutcomeText<'a>(&'a Leg);

impl std::fmt::Display for OutcomeText<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = self.0;
        match (l.status, l.delivery) {
            (_, Some(200)) => f.write_str("delivered"),
            // A failed outcome of a leg that never connected: the invitee was not reached
            // (declined, timed out, unroutable).
            (LegStatus::Failed, Some(_)) if l.dialog.is_none() => match l.status_code {
                Some(s) => write!(f, "not reached ({s})"),
                None => f.write_str("not reached (no answer)"),
            },
            (_, Some(code)) => write!(f, "delivery failed ({code})"),
            (LegStatus::Failed, None) => match l.status_code {
                Some(s) => write!(f, "not reached ({s})"),
                None => f.write_str("not reached (no answer)"),
            },
            (s, None) => f.write_str(&format!("{s:?}").to_lowercase()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LazyCopies;

    #[test]
    fn copies_read_empty_and_are_allocated_at_their_first_write() {
        let mut c = LazyCopies::default();
        assert!(c.entries.is_empty() && c.payload.is_none() && !c.fanning_out);
        assert!(c.0.is_none(), "nothing allocated to read");
        c.fanning_out = true;
        assert!(c.0.is_some() && c.fanning_out);
    }
}

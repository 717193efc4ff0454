//! The conformance-case runner: loads `*.toml` case files (see `specs/cases/README.md` for
//! the format) and runs each case against the machines generated from a spec, the way the
//! endpoint runs them (`call` runs the callee on the same event and splices its actions).
//!
//! Shared by `im-macros/tests/spec_cases.rs` (the specs as written, `specs/cases/`) and
//! `tests/spec-edit/tests/edit.rs` (an edited copy, `tests/spec-edit/cases/`), included by
//! path so both run the same comparer.

#![allow(dead_code, unreachable_pub)]

use im_runtime::endpoint::DynMachine;
use im_runtime::machine::{
    Action, ActionKind, BodyFacts, BodyPart, Config, CopyOutcome, DeliveryOutcome, Env, Event,
    Facts, GroupDirectory, GroupPolicy, ImdnStatus, InviteeRouter, LegCounts, ListEntry, ListFacts,
    MessageFacts, Method, MsrpEvent, Recipients, ReportOutcome, Route, RuleInfo, SdpFacts,
    Selection, SubscriptionFacts, Timer, Uri, UriParts,
};
use serde::Deserialize;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What the runner needs of a generated spec module (`im_macros::imspec!` or `include!`).
pub struct Machines {
    /// `spec::initial`.
    pub initial: fn(&Method) -> Option<Box<dyn DynMachine>>,
    /// `spec::by_clause`.
    pub by_clause: fn(&str) -> Option<Box<dyn DynMachine>>,
    /// `spec::invitee_leg`.
    pub invitee_leg: fn() -> Option<Box<dyn DynMachine>>,
    /// `spec::methods`.
    pub methods: fn() -> Vec<Method>,
    /// `spec::SPEC` of each spec root: every rule, to find procedures by name.
    pub rules: Vec<&'static [RuleInfo]>,
    /// The spec's own timers: (procedure, name, `TIMER_*` constant).
    pub timers: Vec<(&'static str, &'static str, Timer)>,
}

/// One case file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// The cases, in file order.
    #[serde(default)]
    pub case: Vec<Case>,
}

/// One request class (or event sequence) and what the spec must do with it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Shown on failure; unique within its file.
    pub name: String,
    /// `CLAUSE/RULE` citations, read by `imspec trace`.
    #[serde(default)]
    pub covers: Vec<String>,
    /// The procedure driven; absent: the spec's entry procedure for the request's method.
    pub procedure: Option<String>,
    /// The request's facts.
    #[serde(default)]
    pub request: Request,
    /// The pre-defined group at `group` (the directory's only group).
    #[serde(default)]
    pub group: Group,
    /// Server configuration.
    #[serde(default)]
    pub config: CaseConfig,
    /// `legs.*` counts, seen by every event after the first.
    #[serde(default)]
    pub legs: Legs,
    /// `copy.*` facts, seen by the `copy …` events.
    #[serde(default)]
    pub copy: CopyCase,
    /// Events in order; absent: `["initial"]` (the initial request).
    pub events: Option<Vec<String>>,
    /// The expected outcome.
    pub expect: Expect,
}

/// The request class, as facts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Request {
    /// `INVITE` or `MESSAGE`.
    pub method: String,
    /// Request-URI: `factory`, `group`, `other`, or a literal `sip:` URI.
    pub uri: String,
    /// The originator (P-Asserted-Identity or From).
    pub originator: String,
    /// The RFC 5366/5365 recipient list; absent: no `recipient-list` body part.
    pub list: Option<Vec<String>>,
    /// The SDP offer: `pager`, `pager-session-sendonly`, `pager-text-wildcard`,
    /// `pager-no-common-type`, `chat`, `audio`, `two-media`, `pager-plus-chat`, `none`.
    pub offer: String,
    /// `Require` option tags.
    pub require: Vec<String>,
    /// MESSAGE only: a message body part besides the list.
    pub payload: bool,
    /// The `Privacy` header (RFC 3323), when present.
    pub privacy: Option<String>,
    /// The `Max-Forwards` header, when present (`request.max_forwards_decremented`).
    pub max_forwards: Option<u8>,
    /// `request.authenticated`.
    pub authenticated: bool,
    /// `request.originator_domain`; absent: authentication off (`config.domain`).
    pub originator_domain: Option<String>,
    /// The dispositions the message (page mode: the MESSAGE body; pager mode: the MSRP
    /// message) asks for in
    /// `imdn.Disposition-Notification` (`positive-delivery`, `negative-delivery`), or
    /// `notification` when the message is itself an IMDN.
    pub imdn: Vec<String>,
    /// `subscription.subscriber`: who sent the SUBSCRIBE of a `request SUBSCRIBE` event.
    pub subscriber: Option<String>,
    /// A `recipient-list` part the runtime could not read: `malformed` (`list.malformed`,
    /// `list.error` = [`LIST_MALFORMED`]) or `too_large` (`list.too_large`, `list.error` =
    /// [`LIST_TOO_LARGE`]); `recipients` is then empty.
    pub list_error: Option<String>,
    /// A body the runtime could not parse: `body.malformed`, and this text as `body.error`.
    pub body_error: Option<String>,
    /// `request.authenticated_user` (absent: empty, not Digest-authenticated).
    pub authenticated_user: Option<String>,
    /// `subscription.in_invite_dialog`: the `request SUBSCRIBE` came in an INVITE dialog.
    pub in_invite_dialog: bool,
    /// `subscription.over_limit`, with this text as `subscription.error`.
    pub subscription_limit: Option<String>,
    /// `subscription.authenticated_user`: the Digest user of the `request SUBSCRIBE`
    /// (absent: empty, not Digest-authenticated).
    pub subscription_authenticated_user: Option<String>,
    /// `subscription.refresh`: the `request SUBSCRIBE` came in a subscription's own dialog.
    pub subscription_refresh: bool,
    /// `subscription.expires`: the interval it would be granted (0: an unsubscribe or a
    /// fetch).
    pub subscription_expires: u32,
    /// `list.unresolved`: `<entry-ref>` / `<external>` elements of the list.
    pub unresolved: usize,
    /// `message.success_report`: the held MSRP message's first SEND asked
    /// `Success-Report: yes` (RFC 4975 §7.1.2).
    pub success_report: bool,
}

/// `subscription.expires` when a case gives none: the runtime's default maximum interval.
pub const DEFAULT_SUBSCRIPTION_EXPIRES: u32 = 3600;

/// `list.error` of a `list_error = "malformed"` case: the runtime's words for a document
/// whose root is not `<resource-lists>`.
pub const LIST_MALFORMED: &str = "root element is not resource-lists";
/// `list.error` of a `list_error = "too_large"` case: the runtime's words for a list over
/// the default entry limit.
pub const LIST_TOO_LARGE: &str = "more than 1000 entries";

impl Default for Request {
    fn default() -> Self {
        Request {
            method: "INVITE".into(),
            uri: "factory".into(),
            originator: ALICE.into(),
            list: None,
            offer: "pager".into(),
            require: Vec::new(),
            payload: true,
            privacy: None,
            max_forwards: None,
            authenticated: true,
            originator_domain: None,
            subscriber: None,
            imdn: Vec::new(),
            list_error: None,
            body_error: None,
            authenticated_user: None,
            in_invite_dialog: false,
            subscription_limit: None,
            subscription_authenticated_user: None,
            subscription_refresh: false,
            success_report: false,
            subscription_expires: DEFAULT_SUBSCRIPTION_EXPIRES,
            unresolved: 0,
        }
    }
}

/// The group `sip:friends@example.com` and its policy for the originator.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Group {
    /// Members (`<list>`).
    pub members: Vec<String>,
    /// `allow-initiate-conference` for the originator.
    pub may_initiate: bool,
    /// `<max-participant-count>`.
    pub max_participants: Option<usize>,
    /// `<invite-members>`.
    pub invite_members: bool,
    /// `<allow-anonymity>` for the originator.
    pub allows_anonymity: bool,
}

impl Default for Group {
    fn default() -> Self {
        Group {
            members: vec![ALICE.into(), BOB.into(), CAROL.into()],
            may_initiate: true,
            max_participants: None,
            invite_members: true,
            allows_anonymity: false,
        }
    }
}

/// The configuration fields the specs read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaseConfig {
    /// `config.max_recipients`.
    pub max_recipients: usize,
    /// `config.tb_granted`.
    pub tb_granted: bool,
    /// `config.aggregate_imdns`.
    pub aggregate_imdns: bool,
    /// `config.invite_timeout`, in seconds.
    pub invite_timeout: u64,
    /// `config.allow_external_recipients`.
    pub allow_external_recipients: bool,
}

impl Default for CaseConfig {
    fn default() -> Self {
        CaseConfig {
            max_recipients: 3,
            tb_granted: false,
            aggregate_imdns: false,
            invite_timeout: 32,
            allow_external_recipients: false,
        }
    }
}

/// `legs.*`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Legs {
    /// `legs.total`.
    pub total: usize,
    /// `legs.connected`.
    pub connected: usize,
    /// `legs.delivered`.
    pub delivered: usize,
    /// `legs.failed`.
    pub failed: usize,
}

/// `copy.*`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CopyCase {
    /// `copy.recipient_offline`.
    pub recipient_offline: bool,
    /// `copy.storable`.
    pub storable: bool,
}

/// The outcome; every field given is compared, the others are not.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The status of the one response of the run.
    pub status: Option<u16>,
    /// Its reason phrase.
    pub reason: Option<String>,
    /// Its Warning text (`""`: none).
    pub warning: Option<String>,
    /// `procedure::rule` that produced it.
    pub answered_by: Option<String>,
    /// What its `sdp { … else STATUS "reason" }` sends when no answer can be built:
    /// `"488 Not Acceptable Here"` (`""`: no `else`).
    pub unanswerable: Option<String>,
    /// Its Contact as the runtime writes it, the focus URI shown as `<focus>`
    /// (`"<focus>;isfocus;+g.oma.sip-im"`; `""`: none).
    pub contact: Option<String>,
    /// What the run's one `invite each` puts on its INVITEs (or `forward each` on its
    /// MESSAGEs), one line each, in the spec's
    /// order: headers as `Name: value` (the focus Contact as `<focus>;isfocus…`),
    /// `history` for the recipient-list-history part, and the offer's attribute lines after
    /// the mandatory ones as `a=…` (the server's values from `Config::default()`).
    pub invitation: Option<Vec<String>>,
    /// Every action of the run, in order (`call 7.9.1.4`, `respond 200`, `invite each
    /// recipient_list`, `start timer invite_timeout 32s`, `bye`, `report failure` …).
    pub actions: Option<Vec<String>>,
    /// Procedure → state when the run ends.
    #[serde(default)]
    pub states: BTreeMap<String, String>,
    /// Its Warning's code (RFC 3261 §20.43; 399 unless the spec writes one).
    pub warning_code: Option<u16>,
}

/// The originator of every default request.
pub const ALICE: &str = "sip:alice@example.com";
const BOB: &str = "sip:bob@example.com";
const CAROL: &str = "sip:carol@example.com";
const GROUP: &str = "sip:friends@example.com";
const FACTORY: &str = "sip:conference-factory@example.com";
const OTHER: &str = "sip:someone@elsewhere.example.org";

fn uri(s: &str) -> Uri {
    let s = match s {
        "factory" => FACTORY,
        "group" => GROUP,
        "other" => OTHER,
        s => s,
    };
    let (scheme, rest) = s.split_once(':').unwrap_or(("sip", s));
    let (user, host) = rest.split_once('@').unwrap_or(("", rest));
    Uri::new(UriParts {
        scheme,
        user,
        host,
        port: None,
        raw: s,
        ..UriParts::default()
    })
}

struct Dir<'a>(&'a Group);

impl GroupDirectory for Dir<'_> {
    fn owns(&self, g: &Uri) -> bool {
        g.same_identity(&uri(GROUP))
    }
    fn members(&self, g: &Uri) -> Option<Vec<Uri>> {
        self.owns(g)
            .then(|| self.0.members.iter().map(|m| uri(m)).collect())
    }
    fn policy(&self, g: &Uri, u: &Uri) -> Option<GroupPolicy> {
        self.owns(g).then(|| GroupPolicy {
            is_member: self.0.members.iter().any(|m| uri(m).same_identity(u)),
            may_initiate: self.0.may_initiate,
            max_participants: self.0.max_participants,
            invites_members: self.0.invite_members,
            allows_anonymity: self.0.allows_anonymity,
            ..GroupPolicy::default()
        })
    }
}

struct NoRoute;
impl InviteeRouter for NoRoute {
    fn route(&self, _: &Uri) -> Option<Route> {
        None
    }
}

/// The offer named by a case, as SDP text parsed by the runtime's own SDP reader, so a case
/// sees what the endpoint would (session-level attributes inherited, RFC 4566 §6).
fn sdp(offer: &str) -> Result<Option<SdpFacts>, String> {
    const HEAD: &str =
        "v=0\r\no=alice 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n";
    let msrp = |types: &str, dir: &str| {
        let dir = if dir.is_empty() {
            String::new()
        } else {
            format!("a={dir}\r\n")
        };
        format!(
            "m=message 7394 TCP/MSRP *\r\na=accept-types:{types}\r\n\
             a=path:msrp://alice.example.com:7394/abc;tcp\r\n{dir}"
        )
    };
    let audio = "m=audio 49170 RTP/AVP 0\r\n";
    let body = match offer {
        "pager" => msrp("message/cpim text/plain", "sendonly"),
        "pager-session-sendonly" => {
            format!("a=sendonly\r\n{}", msrp("message/cpim text/plain", ""))
        }
        "pager-text-wildcard" => msrp("text/*", "sendonly"),
        "pager-no-common-type" => msrp("text/html", "sendonly"),
        "chat" => msrp("message/cpim text/plain", "sendrecv"),
        "audio" => audio.to_owned(),
        "two-media" => format!("{}{audio}", msrp("message/cpim text/plain", "sendonly")),
        "pager-plus-chat" => format!(
            "{}{}",
            msrp("message/cpim text/plain", "sendonly"),
            msrp("message/cpim text/plain", "sendrecv")
        ),
        "none" => return Ok(None),
        o => return Err(format!("unknown offer `{o}`")),
    };
    im_runtime::proto::sdp::facts(format!("{HEAD}{body}").as_bytes())
        .map(Some)
        .map_err(|e| format!("offer `{offer}`: {e}"))
}

fn method(m: &str) -> Method {
    Method::from_token(m)
}

fn facts(case: &Case) -> Result<Facts, String> {
    let r = &case.request;
    let mut parts = Vec::new();
    let sdp = if method(&r.method) == Method::Invite {
        sdp(&r.offer)?
    } else {
        None
    };
    if sdp.is_some() {
        parts.push(BodyPart {
            content_type: "application/sdp".into(),
            disposition: "session".into(),
            len: 200,
        });
    }
    if method(&r.method) == Method::Message && r.payload {
        parts.push(BodyPart {
            content_type: "text/plain".into(),
            disposition: "render".into(),
            len: 5,
        });
    }
    let mut recipients = Vec::new();
    if let Some(list) = &r.list {
        parts.push(BodyPart {
            content_type: "application/resource-lists+xml".into(),
            disposition: "recipient-list".into(),
            len: 300,
        });
        recipients = list
            .iter()
            .map(|u| ListEntry {
                uri: uri(u),
                ..ListEntry::default()
            })
            .collect();
    }
    let mut list = ListFacts {
        unresolved: r.unresolved,
        ..ListFacts::default()
    };
    if let Some(kind) = &r.list_error {
        (list.malformed, list.too_large, list.error) = match kind.as_str() {
            "malformed" => (true, false, LIST_MALFORMED.to_owned()),
            "too_large" => (false, true, LIST_TOO_LARGE.to_owned()),
            other => return Err(format!("list_error `{other}`: malformed or too_large")),
        };
        if r.list.is_none() {
            parts.push(BodyPart {
                content_type: "application/resource-lists+xml".into(),
                disposition: "recipient-list".into(),
                len: 300,
            });
        }
        recipients.clear();
    }
    Ok(Facts {
        list: list.into(),
        body: BodyFacts {
            malformed: r.body_error.is_some(),
            error: r.body_error.clone().unwrap_or_default(),
        }
        .into(),
        method: Some(method(&r.method)),
        request_uri: uri(&r.uri),
        from: uri(&r.originator),
        to: uri(&r.uri),
        originator: uri(&r.originator),
        require: r.require.clone(),
        parts,
        recipients,
        sdp,
        headers: r
            .privacy
            .iter()
            .map(|v| ("privacy".to_owned(), v.clone()))
            .chain(
                r.max_forwards
                    .map(|n| ("max-forwards".to_owned(), n.to_string())),
            )
            .collect(),
        // The session's focus URI prints as `focus`, as the focus Contact prints `<focus>`.
        focus: Uri::new(UriParts {
            raw: "focus",
            ..UriParts::default()
        }),
        unauthenticated: !r.authenticated,
        authenticated_user: r.authenticated_user.clone().unwrap_or_default(),
        subscription: SubscriptionFacts {
            in_invite_dialog: r.in_invite_dialog,
            over_limit: r.subscription_limit.is_some(),
            error: r.subscription_limit.clone().unwrap_or_default(),
            authenticated_user: r
                .subscription_authenticated_user
                .clone()
                .unwrap_or_default(),
            refresh: r.subscription_refresh,
            expires: r.subscription_expires,
        }
        .into(),
        originator_domain: r.originator_domain.clone(),
        message: MessageFacts {
            wants_positive_delivery: r.imdn.iter().any(|d| d == "positive-delivery"),
            wants_negative_delivery: r.imdn.iter().any(|d| d == "negative-delivery"),
            is_notification: r.imdn.iter().any(|d| d == "notification"),
            success_report: r.success_report,
        },
        subscriber: r.subscriber.as_deref().map(uri).unwrap_or_default().into(),
        ..Facts::default()
    })
}

fn event(m: &Machines, case: &Case, text: &str) -> Result<Event, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    Ok(match words.as_slice() {
        ["initial"] => Event::InitialRequest(method(&case.request.method)),
        ["request", meth] => Event::InDialogRequest(method(meth)),
        ["response", code] => Event::Response(
            code.parse()
                .map_err(|_| format!("bad status in `{text}`"))?,
        ),
        ["timer", "B"] => Event::Timer(Timer::B),
        ["timer", "F"] => Event::Timer(Timer::F),
        ["timer", "H"] => Event::Timer(Timer::H),
        ["timer", "lifetime"] => Event::Timer(Timer::Lifetime),
        ["timer", name] => Event::Timer(
            m.timers
                .iter()
                .find(|(_, n, _)| n == name)
                .map(|(_, _, t)| *t)
                .ok_or_else(|| format!("unknown timer `{name}`"))?,
        ),
        ["msrp", "message"] => Event::Msrp(MsrpEvent::MessageReceived),
        ["msrp", "closed"] => Event::Msrp(MsrpEvent::Closed),
        ["msrp", "connected"] => Event::Msrp(MsrpEvent::Connected),
        ["msrp", "delivered"] => Event::Msrp(MsrpEvent::Delivered),
        ["msrp", "failed", code] => Event::Msrp(MsrpEvent::DeliveryFailed(
            code.parse()
                .map_err(|_| format!("bad status in `{text}`"))?,
        )),
        ["legs", "settled"] => Event::LegsSettled,
        ["legs", "changed"] => Event::LegsChanged,
        ["leg", "cancelled"] => Event::Leg(im_runtime::machine::LegEvent::Cancelled),
        ["leg", "unroutable"] => Event::Leg(im_runtime::machine::LegEvent::Unroutable),
        ["copy", "delivered"] => Event::Copy(CopyOutcome::Delivered),
        ["shutdown"] => Event::Shutdown,
        ["copy", "unroutable"] => Event::Copy(CopyOutcome::Unroutable),
        ["copy", "expired"] => Event::Copy(CopyOutcome::Expired),
        ["copy", "failed", code] => Event::Copy(CopyOutcome::Failed(
            code.parse()
                .map_err(|_| format!("bad status in `{text}`"))?,
        )),
        _ => return Err(format!("unknown event `{text}`")),
    })
}

fn timer_name(m: &Machines, procedure: &str, t: Timer) -> String {
    match t {
        Timer::B => "B".into(),
        Timer::F => "F".into(),
        Timer::H => "H".into(),
        Timer::Lifetime => "lifetime".into(),
        Timer::Spec(_) => m
            .timers
            .iter()
            .find(|(p, _, x)| *p == procedure && *x == t)
            .map_or_else(|| format!("{t:?}"), |(_, n, _)| (*n).to_string()),
    }
}

fn recipients(r: &Recipients, s: &Selection) -> String {
    let source = match r {
        Recipients::RecipientList => "recipient_list",
        Recipients::GroupMembers => "group_members",
    };
    let without = if s.without_originator {
        " without originator"
    } else {
        ""
    };
    let distinct = if s.distinct { " distinct" } else { "" };
    format!("{source}{without}{distinct}")
}

/// An invitation as case files write it (`expect.invitation`).
pub fn invitation_lines(inv: &im_runtime::machine::Invitation) -> Vec<String> {
    use im_runtime::machine::HeaderValue;
    let mut out: Vec<String> = inv
        .headers
        .iter()
        .map(|(n, v)| match v {
            HeaderValue::Text(t) => format!("{n}: {t}"),
            HeaderValue::FocusContact => format!("{n}: <focus>;isfocus"),
            HeaderValue::FocusContactWith(p) => format!("{n}: <focus>;isfocus{p}"),
            HeaderValue::PerInvitee(p) => {
                format!("{n}: {}", im_runtime::machine::invitee_template(p))
            }
        })
        .collect();
    if inv.history {
        out.push("history".into());
    }
    out.extend(inv.offer_lines(&Config::default()));
    out
}

/// An action as case files write it.
pub fn render(m: &Machines, a: &Action) -> String {
    match &a.kind {
        ActionKind::Respond(r) => format!("respond {}", r.status),
        ActionKind::Call(c) => format!("call {c}"),
        ActionKind::InviteEach(r, s, _) => format!("invite each {}", recipients(r, s)),
        ActionKind::ForwardEach(r, s, _) => format!("forward each {}", recipients(r, s)),
        ActionKind::Cancel => "cancel".into(),
        ActionKind::Bye => "bye".into(),
        ActionKind::CancelLegs => "cancel legs".into(),
        ActionKind::ByeLegs => "bye legs".into(),
        ActionKind::StartTimer(t, d) => format!(
            "start timer {} {}s",
            timer_name(m, a.origin.procedure, *t),
            d.as_secs()
        ),
        ActionKind::StopTimer(t) => {
            format!("stop timer {}", timer_name(m, a.origin.procedure, *t))
        }
        ActionKind::Deliver {
            success_report: false,
        } => "deliver".into(),
        ActionKind::Deliver {
            success_report: true,
        } => "deliver success-report yes".into(),
        ActionKind::Report(ReportOutcome::Success) => "report success".into(),
        ActionKind::Report(ReportOutcome::Failure { status, .. }) => {
            format!("report failure {status}")
        }
        ActionKind::Log(s) => format!("log {s}"),
        ActionKind::SendImdn(ImdnStatus::Delivered) => "send imdn delivered".into(),
        ActionKind::SendImdn(ImdnStatus::Failed) => "send imdn failed".into(),
        ActionKind::CollectImdn(ImdnStatus::Delivered) => "collect imdn delivered".into(),
        ActionKind::CollectImdn(ImdnStatus::Failed) => "collect imdn failed".into(),
        ActionKind::ForwardImdn => "forward imdn".into(),
        ActionKind::AcceptSubscription => "accept subscription".into(),
        ActionKind::NotifySubscribers => "notify subscribers".into(),
        ActionKind::StoreCopy => "store copy".into(),
        ActionKind::Outcome(DeliveryOutcome::Delivered) => "outcome delivered".into(),
        ActionKind::Outcome(DeliveryOutcome::Failed(None)) => "outcome failed".into(),
        ActionKind::Outcome(DeliveryOutcome::Failed(Some(s))) => format!("outcome failed {s}"),
    }
}

fn machine(m: &Machines, procedure: &str) -> Option<Box<dyn DynMachine>> {
    let mut all: Vec<Box<dyn DynMachine>> = (m.methods)()
        .iter()
        .filter_map(|x| (m.initial)(x))
        .collect();
    all.extend(
        m.rules
            .iter()
            .flat_map(|s| s.iter())
            .filter_map(|r| (m.by_clause)(r.clause)),
    );
    all.extend((m.invitee_leg)());
    all.into_iter().find(|x| x.procedure() == procedure)
}

/// Any instant will do: the machines take the time as an argument and these ones ignore it.
#[allow(clippy::disallowed_methods)]
fn epoch() -> Instant {
    Instant::now()
}

/// What a run did: every action, and the machines the session ended with.
pub struct Run {
    /// Every action, calls included, in order.
    pub actions: Vec<Action>,
    /// The entry (or driven) machine first, then each callee.
    pub machines: Vec<Box<dyn DynMachine>>,
}

/// Runs `case`.
pub fn run(m: &Machines, case: &Case) -> Result<Run, String> {
    let mut facts = facts(case)?;
    let cfg = Config {
        max_recipients: case.config.max_recipients,
        tb_granted: case.config.tb_granted,
        aggregate_imdns: case.config.aggregate_imdns,
        invite_timeout: std::time::Duration::from_secs(case.config.invite_timeout),
        allow_external_recipients: case.config.allow_external_recipients,
        ..Config::default()
    };
    let dir = Dir(&case.group);
    let env = Env {
        config: &cfg,
        directory: &dir,
        router: &NoRoute,
    };
    let root = match &case.procedure {
        Some(p) => machine(m, p).ok_or_else(|| format!("no procedure `{p}` in the spec"))?,
        None => (m.initial)(&method(&case.request.method))
            .ok_or_else(|| format!("no procedure takes {}", case.request.method))?,
    };
    let mut machines = vec![root];
    let mut out = Vec::new();
    let default_events = vec!["initial".to_string()];
    for (i, text) in case
        .events
        .as_ref()
        .unwrap_or(&default_events)
        .iter()
        .enumerate()
    {
        let ev = event(m, case, text)?;
        facts.status = match ev {
            Event::Response(s) | Event::Copy(CopyOutcome::Failed(s)) => Some(s),
            Event::Copy(CopyOutcome::Delivered) => Some(200),
            _ => None,
        };
        facts.copy = match ev {
            Event::Copy(_) | Event::Leg(im_runtime::machine::LegEvent::Unroutable) => {
                im_runtime::machine::CopyFacts {
                    recipient_offline: case.copy.recipient_offline,
                    storable: case.copy.storable,
                }
            }
            _ => im_runtime::machine::CopyFacts::default(),
        };
        if i > 0 {
            facts.legs = LegCounts {
                total: case.legs.total,
                connected: case.legs.connected,
                delivered: case.legs.delivered,
                failed: case.legs.failed,
            };
        }
        // Every live machine of the session sees the event, as the endpoint would route it
        // to whichever of them waits for it; the others ignore it. An in-dialog request that
        // needs an answer (not ACK, CANCEL) reaches final machines too, as in the endpoint:
        // the dialog outlives the procedure's last state. So does a 2xx: the endpoint hands
        // a leg machine that ended when its INVITE was given up without a CANCEL the 2xx
        // that comes anyway (`im-runtime/src/endpoint/late_answers.rs`).
        let answers = matches!(&ev, Event::InDialogRequest(x)
            if !matches!(x, Method::Ack | Method::Cancel))
            || matches!(&ev, Event::Response(s) if (200..300).contains(s));
        let live = machines.len();
        for k in 0..live {
            if machines[k].is_final() && i > 0 && !answers {
                continue;
            }
            let mut pending: VecDeque<Action> =
                machines[k].handle(epoch(), &ev, &facts, &env).into();
            while let Some(a) = pending.pop_front() {
                if let ActionKind::Call(clause) = &a.kind {
                    let mut callee = (m.by_clause)(clause)
                        .ok_or_else(|| format!("no procedure for `call {clause}`"))?;
                    for (j, x) in callee
                        .handle(epoch(), &ev, &facts, &env)
                        .into_iter()
                        .enumerate()
                    {
                        pending.insert(j, x);
                    }
                    machines.push(callee);
                }
                out.push(a);
            }
        }
    }
    Ok(Run {
        actions: out,
        machines,
    })
}

/// The differences between what `case` expects and what the machines did (empty: it
/// passes).
pub fn compare(m: &Machines, case: &Case) -> Vec<String> {
    let Run { actions, machines } = match run(m, case) {
        Ok(x) => x,
        Err(e) => return vec![e],
    };
    let mut diff = Vec::new();
    let e = &case.expect;
    let responses: Vec<&Action> = actions
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::Respond(_)))
        .collect();
    if e.status.is_some()
        || e.reason.is_some()
        || e.warning.is_some()
        || e.warning_code.is_some()
        || e.answered_by.is_some()
        || e.unanswerable.is_some()
        || e.contact.is_some()
    {
        match responses.as_slice() {
            [a] => {
                let ActionKind::Respond(r) = &a.kind else {
                    unreachable!("filtered on Respond")
                };
                let mut check = |what: &str, want: Option<String>, got: String| {
                    if let Some(want) = want
                        && want != got
                    {
                        diff.push(format!("{what}: expected {want:?}, got {got:?}"));
                    }
                };
                check(
                    "status",
                    e.status.map(|s| s.to_string()),
                    r.status.to_string(),
                );
                check("reason", e.reason.clone(), r.reason.to_string());
                check(
                    "warning",
                    e.warning.clone(),
                    r.warning.as_deref().unwrap_or("").to_string(),
                );
                check(
                    "warning_code",
                    e.warning_code.map(|c| c.to_string()),
                    r.warning
                        .as_ref()
                        .map_or(String::new(), |w| w.code.to_string()),
                );
                check(
                    "answered_by",
                    e.answered_by.clone(),
                    format!("{}::{}", a.origin.procedure, a.origin.rule),
                );
                check(
                    "contact",
                    e.contact.clone(),
                    r.headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case("Contact"))
                        .map(|(_, v)| match v {
                            im_runtime::machine::HeaderValue::Text(t) => t.to_string(),
                            im_runtime::machine::HeaderValue::FocusContact => {
                                "<focus>;isfocus".to_string()
                            }
                            im_runtime::machine::HeaderValue::FocusContactWith(p) => {
                                format!("<focus>;isfocus{p}")
                            }
                            im_runtime::machine::HeaderValue::PerInvitee(p) => {
                                im_runtime::machine::invitee_template(p)
                            }
                        })
                        .unwrap_or_default(),
                );
                check(
                    "unanswerable",
                    e.unanswerable.clone(),
                    r.sdp_answer
                        .iter()
                        .find_map(|i| match i {
                            im_runtime::machine::SdpAnswerItem::Else(s, why) => {
                                Some(format!("{s} {why}"))
                            }
                            _ => None,
                        })
                        .unwrap_or_default(),
                );
            }
            rs => diff.push(format!("expected exactly one response, got {}", rs.len())),
        }
    }
    if let Some(want) = &e.invitation {
        let invites: Vec<&im_runtime::machine::Invitation> = actions
            .iter()
            .filter_map(|a| match &a.kind {
                ActionKind::InviteEach(_, _, inv) | ActionKind::ForwardEach(_, _, inv) => Some(inv),
                _ => None,
            })
            .collect();
        match invites.as_slice() {
            [inv] => {
                let got = invitation_lines(inv);
                if *want != got {
                    diff.push(format!(
                        "invitation:\n    expected {want:?}\n    got      {got:?}"
                    ));
                }
            }
            is => diff.push(format!(
                "expected exactly one `invite each` or `forward each`, got {}",
                is.len()
            )),
        }
    }
    let got: Vec<String> = actions.iter().map(|a| render(m, a)).collect();
    if let Some(want) = &e.actions
        && *want != got
    {
        diff.push(format!(
            "actions:\n    expected {want:?}\n    got      {got:?}"
        ));
    }
    // A citation must be earned: the cited rule produced an action in this run, or (a rule
    // that only changes state) the case checks the states the run ends in.
    for c in &case.covers {
        let Some((clause, rest)) = c.split_once('/') else {
            diff.push(format!("covers {c:?}: not CLAUSE/RULE"));
            continue;
        };
        let (procedure, rule) = rest
            .split_once("::")
            .map_or((None, rest), |(p, r)| (Some(p), r));
        let fired = actions.iter().any(|a| {
            a.origin.clause == clause
                && a.origin.rule == rule
                && procedure.is_none_or(|p| a.origin.procedure == p)
        });
        if !fired && e.states.is_empty() {
            diff.push(format!(
                "covers {c:?}: that rule produced no action in this run, and the case checks no state"
            ));
        }
    }
    for (p, want) in &e.states {
        match machines.iter().find(|x| x.procedure() == p) {
            Some(x) if x.state_name() == want => {}
            Some(x) => diff.push(format!(
                "state of {p}: expected {want:?}, got {:?}",
                x.state_name()
            )),
            None => diff.push(format!("state of {p}: no such machine ran")),
        }
    }
    diff
}

/// Every `*.toml` in `dir`, sorted.
pub fn case_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

/// Parses one case file.
pub fn parse(text: &str) -> Result<CaseFile, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

/// Runs every case of every file in `dir`; panics with every mismatch, each under its file
/// and case name. Returns how many cases ran.
pub fn run_dir(m: &Machines, dir: &Path) -> usize {
    let mut failures = Vec::new();
    let mut n = 0;
    let files = case_files(dir);
    assert!(!files.is_empty(), "no case files in {}", dir.display());
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let file = match parse(&text) {
            Ok(x) => x,
            Err(e) => {
                failures.push(format!("{}: {e}", f.display()));
                continue;
            }
        };
        for case in &file.case {
            n += 1;
            let diff = compare(m, case);
            if !diff.is_empty() {
                failures.push(format!(
                    "{} [case \"{}\"]:\n  {}",
                    f.display(),
                    case.name,
                    diff.join("\n  ")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    n
}

//! The validated model: what a spec means, with every name resolved and every expression
//! typed. No pest types and no byte spans — locations are `file:line:col` for traces and
//! generated docs. Code generation, the graph output and the reference interpreter read
//! only this.
//!
//! A [`Spec`] is produced by `check::check` from the AST of a file and its imports, and only
//! when no check failed, so consumers can rely on its invariants:
//! * every index (`Expr::Condition`, `Action::Goto`, `Action::Call`, `TimerRef::Spec` …) is in
//!   range;
//! * every `Expr` is well typed (conditions are `Bool`, comparisons compare like types);
//! * every procedure has at least one state and exactly one initial state (a procedure with
//!   no `states` block gets one implicit state named `active`, initial and final);
//! * within a handler, unordered alternatives are mutually exclusive and no ordered rule is
//!   shadowed, so evaluating alternatives in any order gives the same result.

/// A location in a spec file, for traces and generated docs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Loc {
    /// Path relative to the workspace root.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// A whole spec: one root file and everything it imports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// Every file read, root first, as (display path, absolute path if read from disk). The
    /// generator emits an `include_str!` of each so editing any of them rebuilds.
    pub files: Vec<(String, Option<std::path::PathBuf>)>,
    /// Named conditions, in definition order.
    pub conditions: Vec<Condition>,
    /// Procedures, in definition order (the root file's first procedure is the entry).
    pub procedures: Vec<Procedure>,
}

impl Spec {
    /// The procedure a `call` of `clause` runs: the one implementing it that has an
    /// `on initial` handler (the checker makes it unique, E0018), else the first procedure
    /// implementing it, if any.
    pub fn procedure_by_clause(&self, clause: &str) -> Option<&Procedure> {
        let mut of_clause = self.procedures.iter().filter(|p| p.clause == clause);
        let takes_initial = |p: &&Procedure| {
            p.handlers
                .iter()
                .any(|h| matches!(h.trigger, Trigger::Initial(_)))
        };
        of_clause
            .clone()
            .find(takes_initial)
            .or_else(|| of_clause.next())
    }
}

/// A named condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    /// Name.
    pub name: String,
    /// Clause it is defined by, when given.
    pub clause: Option<String>,
    /// The condition (type `Bool`).
    pub expr: Expr,
    /// Where it is defined.
    pub loc: Loc,
}

/// A procedure: a state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Procedure {
    /// Name (`page_mode_group_invite`).
    pub name: String,
    /// Clause id (`5.2.1.1`).
    pub clause: String,
    /// Clause title, when given.
    pub title: Option<String>,
    /// States; never empty.
    pub states: Vec<State>,
    /// Index of the initial state.
    pub initial: usize,
    /// Declared timers, by name; `TimerRef::Spec(i)` indexes this.
    pub timers: Vec<String>,
    /// Handlers in source order.
    pub handlers: Vec<Handler>,
    /// Whether the states were declared (`false`: the implicit `active` state).
    pub explicit_states: bool,
    /// Where it is defined.
    pub loc: Loc,
}

/// A state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// Name as written.
    pub name: String,
    /// Reaching it ends the machine.
    pub is_final: bool,
    /// Where it is declared.
    pub loc: Loc,
}

/// What a handler reacts to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// An initial request of this method (upper case token).
    Initial(String),
    /// An in-dialog request of this method; `other` ([`crate::ast::OTHER_METHODS`]): of
    /// any method no `Request` handler of the spec names, ACK and CANCEL excepted.
    Request(String),
    /// A response whose status is in `lo..=hi` (`2xx` is 200..=299).
    Response {
        /// Lowest status.
        lo: u16,
        /// Highest status.
        hi: u16,
    },
    /// A timer.
    Timer(TimerRef),
    /// An MSRP event.
    Msrp(MsrpTrigger),
    /// All invitee legs settled.
    LegsSettled,
    /// An invitee leg's state or its copy's outcome changed.
    LegsChanged,
    /// One recipient's copy: its outcome, or it was not sent.
    Copy(CopyTrigger),
    /// Something happened to this invitee leg outside its transactions.
    Leg(LegTrigger),
    /// The server is shutting down.
    Shutdown,
}

/// Copy triggers (mirror `im_runtime::machine::CopyOutcome`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CopyTrigger {
    /// `copy delivered`: the recipient accepted its copy.
    Delivered,
    /// `copy failed`: the copy was refused, timed out or was not sent.
    Failed,
    /// `copy unroutable`: the copy had no route and was not sent; the handler's `outcome`
    /// says what it fails with.
    Unroutable,
    /// `copy expired`: a copy kept for an offline recipient was kept too long and is not
    /// sent; the handler's `outcome` says what it fails with.
    Expired,
}

impl CopyTrigger {
    /// A copy that was never sent, whose status the handler gives (`outcome failed N`).
    pub fn is_unsent(self) -> bool {
        matches!(self, CopyTrigger::Unroutable | CopyTrigger::Expired)
    }

    /// The event word as a spec writes it.
    pub fn word(self) -> &'static str {
        match self {
            CopyTrigger::Delivered => "delivered",
            CopyTrigger::Failed => "failed",
            CopyTrigger::Unroutable => "unroutable",
            CopyTrigger::Expired => "expired",
        }
    }
}

/// Leg triggers (mirror `im_runtime::machine::LegEvent`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LegTrigger {
    /// `leg cancelled`: the session's `cancel legs` (or `cancel`) sent this leg's CANCEL.
    Cancelled,
    /// `leg unroutable`: the leg's INVITE had no route and was not sent.
    Unroutable,
}

/// MSRP triggers (mirror `im_runtime::machine::MsrpEvent`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MsrpTrigger {
    /// `msrp connected`.
    Connected,
    /// `msrp message`: a complete message arrived.
    Message,
    /// `msrp delivered`.
    Delivered,
    /// `msrp failed`.
    Failed,
    /// `msrp closed`.
    Closed,
}

/// A timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimerRef {
    /// RFC 3261 Timer B.
    B,
    /// RFC 3261 Timer F.
    F,
    /// RFC 3261 Timer H.
    H,
    /// `timer lifetime`: the session's lifetime (configuration) is over.
    Lifetime,
    /// A declared timer: index into [`Procedure::timers`].
    Spec(usize),
}

/// `on TRIGGER [in …] { … }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handler {
    /// What starts it.
    pub trigger: Trigger,
    /// States it applies in (indices); empty means every non-final state.
    pub states: Vec<usize>,
    /// Mutually exclusive alternatives.
    pub alternatives: Vec<Alternative>,
    /// Fires when no alternative does.
    pub otherwise: Option<Rule>,
    /// Where it is defined.
    pub loc: Loc,
}

/// One alternative of a handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Alternative {
    /// A single rule (its condition is `Some` unless it is the handler's only alternative).
    Rule(Rule),
    /// `first { … }`: tried in order; `otherwise` closes the group when present.
    First {
        /// Rules in order.
        rules: Vec<Rule>,
        /// The group's `otherwise`.
        otherwise: Option<Rule>,
    },
}

/// A rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Name (`otherwise` for an unnamed otherwise).
    pub name: String,
    /// Clause id; always present after checking.
    pub clause: String,
    /// Condition; `None` fires unconditionally (an `otherwise`, or a lone rule).
    pub condition: Option<Expr>,
    /// Actions in order.
    pub actions: Vec<Action>,
    /// Where it is defined.
    pub loc: Loc,
}

pub use crate::ast::Selection;

/// Who a fan-out addresses (mirrors `im_runtime::machine::Recipients`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Recipients {
    /// The request's recipient-list entries.
    RecipientList,
    /// The members of the group named by the Request-URI.
    GroupMembers,
}

/// An action (mirrors `im_runtime::machine::ActionKind`, plus `Goto`, which stays inside the
/// machine).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send a response.
    Respond(Respond),
    /// Run the procedure at this index (its clause is `spec.procedures[i].clause`).
    Call(usize),
    /// Move to the state at this index.
    Goto(usize),
    /// Invite each recipient, with what the INVITE carries.
    InviteEach(Recipients, Selection, Invitation),
    /// Forward the request to each recipient, with what each copy carries (headers and
    /// the history part; no Contact, no offer).
    ForwardEach(Recipients, Selection, Invitation),
    /// CANCEL the pending INVITE.
    Cancel,
    /// BYE.
    Bye,
    /// CANCEL every invitee leg still waiting for its final response.
    CancelLegs,
    /// BYE every invitee leg whose dialog is up.
    ByeLegs,
    /// Deliver the held message. `success_report`: its SEND asks for a success REPORT (RFC
    /// 4975 §7.1.2, `deliver { success-report yes }`), and the leg hears `msrp delivered` on
    /// that REPORT rather than on the 200 to the last chunk.
    Deliver {
        /// `Success-Report: yes` on the copy's SEND.
        success_report: bool,
    },
    /// Record the leg's outcome: `None` delivered, `Some(status)` failed with that status
    /// (`Some(None)`: the status the event carries).
    Outcome(Option<Option<u16>>),
    /// Report the outcome: `None` for success, else the failure's MSRP status and comment.
    Report(Option<(u16, String)>),
    /// Start a timer; `after` has type `Duration`.
    StartTimer(TimerRef, Expr),
    /// Stop a timer.
    StopTimer(TimerRef),
    /// Log a line.
    Log(Text),
    /// Send the sender a delivery notification about the current copy: `delivered`
    /// (`true`) or `failed` (`false`).
    SendImdn(bool),
    /// Keep that notification for the aggregated IMDN message sent once every copy has
    /// its outcome: `delivered` (`true`) or `failed` (`false`).
    CollectImdn(bool),
    /// Pass the request's own IMDN on to the message's original sender.
    ForwardImdn,
    /// Accept the SUBSCRIBE being handled (200, then a full-state NOTIFY).
    AcceptSubscription,
    /// Send every subscriber of the session the current state.
    NotifySubscribers,
    /// Keep the current copy for its recipient, to deliver when it registers.
    StoreCopy,
}

/// What an invitee INVITE carries besides what RFC 3261 §8.1.1 makes mandatory and the MSRP
/// offer's own lines (mirrors `im_runtime::machine::Invitation`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Invitation {
    /// Headers in order, values interpolated when the INVITE is written.
    pub headers: Vec<(String, Text)>,
    /// `contact focus`: `Some(parameters after isfocus)`; `None`: a plain Contact.
    pub contact_focus: Option<Vec<String>>,
    /// The recipient-list-history body part (RFC 5364).
    pub history: bool,
    /// The offer's attributes after the mandatory lines, in order.
    pub offer: Vec<OfferAttr>,
}

/// One attribute of the server's MSRP offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OfferAttr {
    /// `a=accept-wrapped-types` with the server's types.
    OwnAcceptWrappedTypes,
    /// `a=max-size` with the server's limit.
    OwnMaxSize,
    /// `a=name[:value]` (`setup`, the direction and `attribute` items all become one).
    Fixed(String, Option<String>),
}

/// A response to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Respond {
    /// Status code, 100..=699.
    pub status: u16,
    /// Reason phrase (the standard one when the spec gives none).
    pub reason: String,
    /// Extra headers in order.
    pub headers: Vec<(String, String)>,
    /// `contact focus` was given.
    pub contact_focus: bool,
    /// Parameters the focus Contact carries after `isfocus` (feature tags), in order.
    pub contact_params: Vec<String>,
    /// Warning text.
    pub warning: Option<Text>,
    /// The Warning's code (RFC 3261 §20.43): the spec's, else 399.
    pub warning_code: u16,
    /// SDP answer items; `None` for no body.
    pub sdp: Option<Vec<SdpItem>>,
}

/// Text with interpolated facts (`"limit is {config.max_recipients}"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text {
    /// Pieces in order.
    pub parts: Vec<TextPart>,
}

/// A piece of [`Text`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TextPart {
    /// Literal text.
    Lit(String),
    /// A value printed with `Display` (any type but lists).
    Value(Expr),
}

/// One SDP answer item (design.md a–d).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SdpItem {
    /// (a) own `a=path`.
    OwnPath,
    /// (b) `m=message <own port> <offer proto> *`, `c=` own address.
    MediaFromOffer,
    /// (c) accept-types intersection.
    AcceptTypesIntersect,
    /// (c) accept-wrapped-types intersection.
    AcceptWrappedTypesIntersect,
    /// (c) own max-size.
    OwnMaxSize,
    /// (c) mirrored direction.
    MirrorDirection,
    /// (c) complementary setup.
    ComplementSetup,
    /// (c) echo this attribute when offered.
    Echo(String),
    /// (d) a fixed attribute, added when `when` holds (always when `None`).
    Attribute {
        /// Attribute name.
        name: String,
        /// Value, when any.
        value: Option<String>,
        /// Condition (type `Bool`).
        when: Option<Expr>,
    },
    /// The response (status, reason) sent instead when the offer cannot be answered.
    Else(u16, String),
}

/// Value types of the expression language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    /// `true` / `false`.
    Bool,
    /// A signed integer.
    Int,
    /// A string.
    Str,
    /// A SIP/SIPS/tel URI.
    Uri,
    /// A list of strings (option tags, accept-types).
    StrList,
    /// A duration.
    Duration,
    /// A list of elements.
    List(Elem),
}

/// Element types of list facts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Elem {
    /// A body part.
    Part,
    /// A recipient-list entry.
    Entry,
    /// An SDP media section.
    Media,
}

/// Root facts: the primitive vocabulary of conditions (see docs/language.md, "Facts").
/// Each maps to one field or method of `im_runtime::machine::{Facts, Config}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fact {
    /// `request.method` : Str.
    RequestMethod,
    /// `request.uri` : Uri.
    RequestUri,
    /// `request.from` : Uri.
    RequestFrom,
    /// `request.to` : Uri.
    RequestTo,
    /// `request.originator` : Uri (P-Asserted-Identity from a trusted host, else From).
    RequestOriginator,
    /// `request.asserted_identity` : Uri (empty URI when absent).
    RequestAssertedIdentity,
    /// `request.authenticated` : Bool (Digest-authenticated, from a trusted host, or
    /// authentication off).
    RequestAuthenticated,
    /// `request.originator_domain` : Str (the realm the originator authenticated in; the
    /// asserted host from a trusted host; `config.domain` with authentication off).
    RequestOriginatorDomain,
    /// `request.require` : StrList.
    RequestRequire,
    /// `request.supported` : StrList.
    RequestSupported,
    /// `body.parts` : List(Part).
    BodyParts,
    /// `recipients` : List(Entry).
    Recipients,
    /// `sdp.present` : Bool.
    SdpPresent,
    /// `sdp.media` : List(Media).
    SdpMedia,
    /// `response.status` : Int (0 when the event is not a response).
    ResponseStatus,
    /// `config.domain` : Str.
    ConfigDomain,
    /// `config.conference_factory` : Uri.
    ConfigConferenceFactory,
    /// `config.accept_types` : StrList.
    ConfigAcceptTypes,
    /// `config.accept_wrapped_types` : StrList.
    ConfigAcceptWrappedTypes,
    /// `config.max_size` : Int (0 when unlimited).
    ConfigMaxSize,
    /// `config.tb_granted` : Bool.
    ConfigTbGranted,
    /// `config.aggregate_imdns` : Bool — the deployment sends a sender its delivery
    /// notifications about one message aggregated in one message (RFC 5438 leaves
    /// aggregation to the list server's local policy).
    ConfigAggregateImdns,
    /// `config.allow_external_recipients` : Bool.
    ConfigAllowExternalRecipients,
    /// `config.max_recipients` : Int.
    ConfigMaxRecipients,
    /// `config.invite_timeout` : Duration.
    ConfigInviteTimeout,
    /// `legs.total` : Int — invitee legs started for the session.
    LegsTotal,
    /// `legs.connected` : Int — legs that answered 2xx.
    LegsConnected,
    /// `legs.delivered` : Int — legs the message was delivered to.
    LegsDelivered,
    /// `legs.failed` : Int — legs that declined, timed out, were unroutable or whose
    /// delivery failed.
    LegsFailed,
    /// `message.wants_positive_delivery` : Bool — the message is `message/cpim` whose
    /// `imdn.Disposition-Notification` asks for `positive-delivery` (RFC 5438 §6.2).
    MessageWantsPositiveDelivery,
    /// `message.wants_negative_delivery` : Bool — … asks for `negative-delivery`.
    MessageWantsNegativeDelivery,
    /// `message.is_notification` : Bool — the message is itself an IMDN (`message/cpim`
    /// carrying `message/imdn+xml`).
    MessageIsNotification,
    /// `message.success_report` : Bool — the sender of the session's held message asked
    /// for a success REPORT (`Success-Report: yes` on its first SEND with a body, RFC 4975
    /// §7.1.2); false before the message is held.
    MessageSuccessReport,
    /// `subscription.subscriber` : Uri — who sent the SUBSCRIBE being handled
    /// (P-Asserted-Identity from a trusted host, else From); empty for other events.
    SubscriptionSubscriber,
    /// `copy.recipient_offline` : Bool — in a `copy …` handler: the copy had no route and
    /// its recipient is a user of this server's domain (`config.domain`) with no registration.
    CopyRecipientOffline,
    /// `copy.storable` : Bool — … the application can keep the copy for later (it offers
    /// storage, the recipient is under its per-user bound, the copy is not too old).
    CopyStorable,
    /// `list.malformed` : Bool — the `recipient-list` part is not a resource list the server
    /// can read (bad XML, a DTD, a bad entry URI or copyControl …); `recipients` is empty.
    ListMalformed,
    /// `list.too_large` : Bool — the `recipient-list` part breaks a configured list limit
    /// (octets, depth, nodes, entries); `recipients` is empty.
    ListTooLarge,
    /// `list.error` : Str — why the list could not be read, naming the limit; empty when
    /// it was read or there is none.
    ListError,
    /// `session.focus` : Uri — the session's focus URI, the IM Session Identity the server
    /// made for it (RFC 4579; the Contact of its 200 OK).
    SessionFocus,
    /// `request.max_forwards_decremented` : Int — the request's Max-Forwards less one, as a
    /// request sent on its behalf carries it (RFC 3261 §16.6 step 3), 70 when it had none,
    /// never above 70.
    RequestMaxForwardsDecremented,
    /// `body.malformed` : Bool — the request's body (multipart, or its SDP part) cannot be
    /// parsed; the facts read from it are then partial.
    BodyMalformed,
    /// `body.error` : Str — why the body cannot be parsed; empty when it was read.
    BodyError,
    /// `request.authenticated_user` : Str — the user name Digest authentication established
    /// for the request; empty when it was not Digest-authenticated.
    RequestAuthenticatedUser,
    /// `subscription.in_invite_dialog` : Bool — the SUBSCRIBE being handled came inside one
    /// of the session's INVITE dialogs, not to the focus URI in a dialog of its own.
    SubscriptionInInviteDialog,
    /// `subscription.over_limit` : Bool — granting the SUBSCRIBE would pass a configured
    /// subscription limit (per subscriber or per session).
    SubscriptionOverLimit,
    /// `subscription.error` : Str — which limit, in words; empty when none is passed.
    SubscriptionError,
    /// `subscription.authenticated_user` : Str — the user name Digest authentication
    /// established for the SUBSCRIBE being handled; empty when it was not
    /// Digest-authenticated.
    SubscriptionAuthenticatedUser,
    /// `subscription.refresh` : Bool — the SUBSCRIBE being handled came inside the dialog
    /// of one of the session's subscriptions (a refresh, or an unsubscribe when
    /// `subscription.expires` is 0), not to create one.
    SubscriptionRefresh,
    /// `subscription.expires` : Int — the interval, in seconds, the SUBSCRIBE would be
    /// granted (its Expires, at most the configured maximum); 0 for a fetch or an
    /// unsubscribe.
    SubscriptionExpires,
    /// `list.unresolved` : Int — `<entry-ref>` / `<external>` elements of the recipient
    /// list, which the server cannot resolve and which name no recipient.
    ListUnresolved,
}

/// Fields of URIs and list elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// `uri.scheme` : Str.
    UriScheme,
    /// `uri.user` : Str.
    UriUser,
    /// `uri.host` : Str.
    UriHost,
    /// `uri.port` : Int (0 when absent).
    UriPort,
    /// `part.type` : Str.
    PartType,
    /// `part.disposition` : Str.
    PartDisposition,
    /// `part.len` : Int.
    PartLen,
    /// `entry.uri` : Uri.
    EntryUri,
    /// `entry.display_name` : Str.
    EntryDisplayName,
    /// `entry.copy_control` : Str (`to`, `cc`, `bcc`).
    EntryCopyControl,
    /// `entry.anonymize` : Bool.
    EntryAnonymize,
    /// `media.media` : Str.
    MediaMedia,
    /// `media.proto` : Str.
    MediaProto,
    /// `media.port` : Int.
    MediaPort,
    /// `media.formats` : StrList.
    MediaFormats,
}

/// Built-in functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Builtin {
    /// `count(list)` : Int — any list or StrList.
    Count,
    /// `overlap(a, b)` : Bool — StrLists share an element (case-insensitive; `*` matches all).
    Overlap,
    /// `request.header(name)` : Str — first value, empty when absent.
    Header,
    /// `request.has_header(name)` : Bool.
    HasHeader,
    /// `directory.owns(uri)` : Bool.
    DirectoryOwns,
    /// `directory.is_member(group, user)` : Bool.
    DirectoryIsMember,
    /// `directory.may_initiate(group, user)` : Bool.
    DirectoryMayInitiate,
    /// `directory.invites_members(group)` : Bool (`<invite-members>`, absent = true).
    DirectoryInvitesMembers,
    /// `directory.may_join(group, user)` : Bool (`<join-handling>`).
    DirectoryMayJoin,
    /// `directory.allows_anonymity(group, user)` : Bool (`<allow-anonymity>`).
    DirectoryAllowsAnonymity,
    /// `directory.member_count(group)` : Int (0 for an unknown group).
    DirectoryMemberCount,
    /// `directory.max_participants(group)` : Int (0 when unlimited or unknown).
    DirectoryMaxParticipants,
    /// `distinct(entries)` : List(Entry) — each identity once, the first entry kept.
    Distinct,
    /// `without(entries, uri)` : List(Entry) — the entries whose identity is not `uri`'s.
    Without,
    /// `directory.members(group)` : List(Entry) — the group's members (empty when unknown).
    DirectoryMembers,
    /// `m.has(name)` : Bool — media has attribute `name`.
    MediaHas,
    /// `m.attr(name)` : Str — attribute value, empty when absent or a flag.
    MediaAttr,
    /// `m.tokens(name)` : StrList — whitespace-separated tokens of attribute `name`.
    MediaTokens,
}

/// Comparison operators (as in the AST).
pub use crate::ast::CmpOp;
/// Quantifiers (as in the AST).
pub use crate::ast::Quant;

/// A typed expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    /// A boolean literal.
    Bool(bool),
    /// An integer literal.
    Int(i64),
    /// A string literal.
    Str(String),
    /// A duration literal in milliseconds.
    DurationMs(u64),
    /// A root fact.
    Fact(Fact),
    /// A named condition: index into [`Spec::conditions`].
    Condition(usize),
    /// A variable bound by an enclosing quantifier.
    Var(String),
    /// A field of a URI or list element value.
    Field(Box<Expr>, Field),
    /// A built-in call. For the media methods (`m.has(name)` …) the receiver is the first
    /// argument: `Call(MediaHas, [Var("m"), Str(name)])`.
    Call(Builtin, Vec<Expr>),
    /// Negation.
    Not(Box<Expr>),
    /// Conjunction (two or more).
    And(Vec<Expr>),
    /// Disjunction (two or more).
    Or(Vec<Expr>),
    /// Comparison of two values of the same type (`contains`: StrList or Str on the left,
    /// Str on the right).
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// Quantifier over a list fact.
    Quant {
        /// Which.
        quant: Quant,
        /// Bound variable name.
        var: String,
        /// Element type.
        elem: Elem,
        /// The list (type `List(elem)`).
        list: Box<Expr>,
        /// The body (type `Bool`).
        body: Box<Expr>,
    },
}

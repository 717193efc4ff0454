//! The spanned syntax tree: mirrors the grammar, keeps every name and literal as written,
//! and records where it came from. Nothing is resolved here; see `check` and `model`.

/// A byte range in one source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    /// Index of the file in the [`crate::source::Sources`] it was parsed from.
    pub file: usize,
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// A span covering both `self` and `other` (same file).
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// A name with its span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    /// The name as written.
    pub name: String,
    /// Where.
    pub span: Span,
}

/// A clause reference `[7.9.1.4]` (or the target of `call 7.9.1.4`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClauseRef {
    /// The clause id without brackets.
    pub id: String,
    /// Where.
    pub span: Span,
}

/// A string literal, unescaped, with the span of the whole literal (quotes included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrLit {
    /// The value after unescaping `\"`, `\\`, `\n`, `\t`; `\{` and `\}` are kept escaped so
    /// that interpolation (`{config.max_recipients}`) can tell them apart later.
    pub value: String,
    /// Where.
    pub span: Span,
}

/// One parsed file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    /// Index of the file in its [`crate::source::Sources`].
    pub file: usize,
    /// Top-level items in source order.
    pub items: Vec<Item>,
}

/// A top-level item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// `import "other.imspec"`.
    Import(StrLit),
    /// `condition NAME [clause] = EXPR`.
    Condition(ConditionDef),
    /// `procedure NAME [clause] "title" { … }`.
    Procedure(Procedure),
}

/// A named, reusable condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionDef {
    /// Its name.
    pub name: Ident,
    /// Clause reference, when given.
    pub clause: Option<ClauseRef>,
    /// The condition.
    pub expr: Expr,
    /// The whole definition.
    pub span: Span,
}

/// A procedure: optional states and timers, then handlers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Procedure {
    /// Its name.
    pub name: Ident,
    /// The clause it implements.
    pub clause: Option<ClauseRef>,
    /// Title (the clause heading), when given.
    pub title: Option<StrLit>,
    /// `states { … }` blocks (normally at most one).
    pub states: Vec<StatesBlock>,
    /// `timer NAME` declarations.
    pub timers: Vec<Ident>,
    /// `on …` handlers in source order.
    pub handlers: Vec<Handler>,
    /// The whole procedure.
    pub span: Span,
}

/// `states { initial a  b  final c }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatesBlock {
    /// Declared states in order.
    pub states: Vec<StateDecl>,
    /// The whole block.
    pub span: Span,
}

/// One state declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateDecl {
    /// Its name.
    pub name: Ident,
    /// Marked `initial`.
    pub initial: bool,
    /// Marked `final`.
    pub is_final: bool,
    /// The declaration.
    pub span: Span,
}

/// `on TRIGGER [in s1, s2] { … }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handler {
    /// What starts it.
    pub trigger: Trigger,
    /// The states it applies in; empty means every state.
    pub in_states: Vec<Ident>,
    /// The rules.
    pub block: Block,
    /// The whole handler.
    pub span: Span,
}

/// What a handler reacts to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TriggerKind {
    /// `initial METHOD`: a request outside a dialog.
    Initial(String),
    /// `request METHOD`: a request inside the procedure's dialog. [`OTHER_METHODS`]
    /// (`request other`) stands for every method no `on request` handler of the spec names,
    /// ACK and CANCEL excepted.
    Request(String),
    /// `response LO[..HI]`: patterns as written (`180`, `2xx`).
    Response(String, Option<String>),
    /// `timer NAME` (RFC 3261 `B`, `F`, `H`, or a declared timer).
    Timer(Ident),
    /// `msrp EVENT` (`connected`, `message`, `delivered`, `failed`, `closed`).
    Msrp(String),
    /// `legs settled`.
    LegsSettled,
    /// `legs changed`: an invitee leg's state or its copy's outcome changed.
    LegsChanged,
    /// `leg cancelled` / `leg unroutable` (an invitee-leg procedure): the session's `cancel
    /// legs` cancelled this leg; the leg's INVITE could not be sent (no route).
    Leg(String),
    /// `copy delivered` / `copy failed`: one recipient's copy of the message has its
    /// outcome; `copy unroutable` / `copy expired`: a copy was not sent (no route; kept for
    /// an offline recipient past its time) and the machines say what it fails with.
    Copy(String),
    /// `shutdown`: the server is shutting down; the rule says what becomes of the
    /// originator and the legs.
    Shutdown,
}

/// A trigger with its span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trigger {
    /// Which.
    pub kind: TriggerKind,
    /// Where.
    pub span: Span,
}

/// The body of a handler: alternatives in source order (source order never decides which
/// fires; only `first { }` orders rules).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// Items in source order.
    pub items: Vec<BlockItem>,
    /// The braces and everything between.
    pub span: Span,
}

/// An item of a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockItem {
    /// An unordered rule.
    Rule(Rule),
    /// `first { … }`: rules tried in order.
    First(FirstBlock),
    /// `otherwise …`: fires when nothing else does.
    Otherwise(Rule),
}

/// `first { rule … rule … otherwise … }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirstBlock {
    /// Rules and `otherwise` in order (an `otherwise` is a [`BlockItem::Otherwise`]).
    pub items: Vec<BlockItem>,
    /// The whole block.
    pub span: Span,
}

/// A rule (`rule NAME [clause] when EXPR => …`) or an `otherwise` (no condition; the name
/// defaults to `otherwise`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Its name (`otherwise` when an `otherwise` gives none).
    pub name: Ident,
    /// The clause it implements.
    pub clause: Option<ClauseRef>,
    /// `when EXPR`; `None` for `otherwise` and for an unconditional rule.
    pub when: Option<Expr>,
    /// What it does.
    pub actions: Vec<Action>,
    /// The whole rule.
    pub span: Span,
}

/// An action with its span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    /// Which.
    pub kind: ActionKind,
    /// Where.
    pub span: Span,
}

/// Who a fan-out action addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipients {
    /// `recipient_list`: entries of the request's recipient-list part.
    RecipientList,
    /// `group_members`: members of the group named by the Request-URI.
    GroupMembers,
}

/// Which addresses of a fan-out are kept (`invite each recipient_list without originator
/// distinct`); mirrors `im_runtime::machine::Selection`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Selection {
    /// `without originator`: the request's originator is not addressed.
    pub without_originator: bool,
    /// `distinct`: an identity named twice is addressed once.
    pub distinct: bool,
}

/// The method word of `on request other` (lower case, so no method token can be it).
pub const OTHER_METHODS: &str = "other";

/// The actions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionKind {
    /// `respond [STATUS] ["reason"] [{ … }]`.
    Respond(Respond),
    /// `call CLAUSE`.
    Call(ClauseRef),
    /// `goto STATE`.
    Goto(Ident),
    /// `invite each … [{ … }]`: what the INVITE carries (empty without a block).
    InviteEach(Recipients, Selection, Vec<InviteItem>),
    /// `forward each … [{ … }]`: what each copy carries (`header`, `history`).
    ForwardEach(Recipients, Selection, Vec<InviteItem>),
    /// `cancel`.
    Cancel,
    /// `bye`.
    Bye,
    /// `cancel legs`.
    CancelLegs,
    /// `bye legs`.
    ByeLegs,
    /// `deliver`, with the items of its `{ … }` (none when it has no body).
    Deliver(Vec<DeliverItem>),
    /// `report success` or `report failure STATUS "REASON"`.
    Report(Report),
    /// `start timer NAME after DURATION`.
    StartTimer(Ident, Expr),
    /// `stop timer NAME`.
    StopTimer(Ident),
    /// `log "text"`.
    Log(StrLit),
    /// `send imdn delivered` (`true`) or `send imdn failed` (`false`).
    SendImdn(bool),
    /// `collect imdn delivered` (`true`) or `collect imdn failed` (`false`).
    CollectImdn(bool),
    /// `forward imdn`.
    ForwardImdn,
    /// `accept subscription`.
    AcceptSubscription,
    /// `notify subscribers`.
    NotifySubscribers,
    /// `store copy`.
    StoreCopy,
    /// `outcome delivered` (`None`) or `outcome failed [STATUS]` (`Some`, the status and
    /// where it is written when given).
    Outcome(Option<Option<(u16, Span)>>),
}

/// One item of `deliver { … }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliverItem {
    /// `success-report WORD`: the word as written (the checker knows `yes` and `no`) and
    /// where the item is.
    SuccessReport(String, Span),
}

/// What a `report` action says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Report {
    /// `report success`.
    Success,
    /// `report failure STATUS "REASON"`; either may be missing in the source (the checker
    /// then says so).
    Failure {
        /// The MSRP status code and where it is written.
        status: Option<(u16, Span)>,
        /// The comment of the REPORT's Status header.
        reason: Option<StrLit>,
    },
}

/// A response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Respond {
    /// Status code and its span, when given (a missing status is a check error).
    pub status: Option<(u16, Span)>,
    /// Reason phrase, when given.
    pub reason: Option<StrLit>,
    /// Items of the `{ … }` body in order.
    pub items: Vec<RespondItem>,
}

/// An item in a response body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RespondItem {
    /// `header NAME = "value"`.
    Header(Ident, StrLit),
    /// `contact focus ["param" …]`: the span of the words, and the parameters.
    ContactFocus(Span, Vec<StrLit>),
    /// `warning [CODE] "text"`: the Warning code (RFC 3261 §20.43) and where it is written,
    /// when given (the checker then requires 300..=399; none means 399).
    Warning(Option<(u16, Span)>, StrLit),
    /// `sdp { … }`.
    Sdp(Vec<SdpItem>, Span),
}

/// An item of an `invite each … { … }` block: what the invitee INVITE carries beyond what
/// RFC 3261 §8.1.1 makes mandatory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InviteItem {
    /// `header NAME = "value"` (the value interpolates facts).
    Header(Ident, StrLit),
    /// `contact focus ["param" …]`: the span of the words, and the parameters.
    ContactFocus(Span, Vec<StrLit>),
    /// `history`: the recipient-list-history body part (RFC 5364).
    History(Span),
    /// `offer { … }`: the items and the span of the whole block.
    Offer(Vec<OfferItem>, Span),
}

/// One attribute of the server's MSRP offer in an invitee INVITE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OfferItemKind {
    /// `direction WORD` (`sendonly`, `recvonly`, `sendrecv`, `inactive`).
    Direction(String),
    /// `setup WORD` (`actpass`, `active`, `passive`, `holdconn`).
    Setup(String),
    /// `accept-wrapped-types own`.
    AcceptWrappedTypesOwn,
    /// `max-size own`.
    MaxSizeOwn,
    /// `attribute NAME [= "value"]`.
    Attribute(String, Option<StrLit>),
}

/// An offer item with its span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferItem {
    /// Which.
    pub kind: OfferItemKind,
    /// Where.
    pub span: Span,
}

/// One line of the SDP answer construction (design.md a–d).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SdpItemKind {
    /// `path own`.
    PathOwn,
    /// `media from offer`.
    MediaFromOffer,
    /// `accept-types intersect`.
    AcceptTypesIntersect,
    /// `accept-wrapped-types intersect`.
    AcceptWrappedTypesIntersect,
    /// `max-size own`.
    MaxSizeOwn,
    /// `direction mirror`.
    DirectionMirror,
    /// `setup complement`.
    SetupComplement,
    /// `echo NAME`.
    Echo(String),
    /// `attribute NAME [= "value"] [when EXPR]`.
    Attribute(String, Option<StrLit>, Option<Expr>),
    /// `else STATUS ["reason"]`: the response when the offer cannot be answered; either may
    /// be missing in the source (the checker then says so).
    Else(Option<(u16, Span)>, Option<StrLit>),
}

/// An SDP item with its span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdpItem {
    /// Which.
    pub kind: SdpItemKind,
    /// Where.
    pub span: Span,
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `contains`
    Contains,
}

impl CmpOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Contains => "contains",
        }
    }
}

/// Quantifiers over a list fact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Quant {
    /// `any x in L where (…)`.
    Any,
    /// `all x in L where (…)`.
    All,
    /// `none x in L where (…)`.
    None,
}

impl Quant {
    /// The keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Quant::Any => "any",
            Quant::All => "all",
            Quant::None => "none",
        }
    }
}

/// A literal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lit {
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
    /// A duration in milliseconds (`32s`, `500ms`).
    DurationMs(u64),
}

/// An expression node with its span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expr {
    /// Which.
    pub kind: ExprKind,
    /// Where.
    pub span: Span,
}

/// Expression forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExprKind {
    /// A literal.
    Lit(Lit),
    /// `a.b.c` or `a.b(args)`: a fact, a named condition, a bound variable's field, or a
    /// built-in call — resolved by the checker.
    Ref {
        /// The dotted path.
        path: Vec<Ident>,
        /// Call arguments, when the path ends in `( … )`.
        args: Option<Vec<Expr>>,
    },
    /// `not e`.
    Not(Box<Expr>),
    /// `a and b and …` (two or more).
    And(Vec<Expr>),
    /// `a or b or …` (two or more).
    Or(Vec<Expr>),
    /// `a OP b`.
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// `any|all|none x in LIST where (body)`.
    Quant {
        /// Which quantifier.
        quant: Quant,
        /// The bound variable.
        var: Ident,
        /// The list.
        list: Box<Expr>,
        /// The body.
        body: Box<Expr>,
    },
    /// `( e )`, kept so the formatter can reproduce the author's grouping.
    Paren(Box<Expr>),
}

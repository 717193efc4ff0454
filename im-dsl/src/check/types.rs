//! Name resolution and typing of expressions (E0002, E0005, E0016): an AST expression
//! becomes a typed [`model::Expr`]. The fact vocabulary is the one documented on
//! [`model::Fact`], [`model::Field`] and [`model::Builtin`].

use crate::ast::{self, CmpOp, ExprKind, Ident, Lit, Span};
use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::model::{Builtin, Elem, Expr, Fact, Field, Type};
use std::collections::HashMap;

/// The type of a value during checking: a model type, or a list element bound by a
/// quantifier (which has fields but is not itself a value of the language).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    V(Type),
    E(Elem),
}

impl std::fmt::Display for Ty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ty::V(t) => f.write_str(type_name(*t)),
            Ty::E(e) => f.write_str(elem_name(*e)),
        }
    }
}

pub(crate) fn type_name(t: Type) -> &'static str {
    match t {
        Type::Bool => "Bool",
        Type::Int => "Int",
        Type::Str => "Str",
        Type::Uri => "Uri",
        Type::StrList => "StrList",
        Type::Duration => "Duration",
        Type::List(Elem::Part) => "List<Part>",
        Type::List(Elem::Entry) => "List<Entry>",
        Type::List(Elem::Media) => "List<Media>",
    }
}

fn elem_name(e: Elem) -> &'static str {
    match e {
        Elem::Part => "Part",
        Elem::Entry => "Entry",
        Elem::Media => "Media",
    }
}

/// Root facts by dotted path.
pub(crate) const FACTS: &[(&str, Fact, Type)] = &[
    ("request.method", Fact::RequestMethod, Type::Str),
    ("request.uri", Fact::RequestUri, Type::Uri),
    ("request.from", Fact::RequestFrom, Type::Uri),
    ("request.to", Fact::RequestTo, Type::Uri),
    ("request.originator", Fact::RequestOriginator, Type::Uri),
    (
        "request.asserted_identity",
        Fact::RequestAssertedIdentity,
        Type::Uri,
    ),
    (
        "request.authenticated",
        Fact::RequestAuthenticated,
        Type::Bool,
    ),
    (
        "request.originator_domain",
        Fact::RequestOriginatorDomain,
        Type::Str,
    ),
    ("request.require", Fact::RequestRequire, Type::StrList),
    ("request.supported", Fact::RequestSupported, Type::StrList),
    ("body.parts", Fact::BodyParts, Type::List(Elem::Part)),
    ("recipients", Fact::Recipients, Type::List(Elem::Entry)),
    ("sdp.present", Fact::SdpPresent, Type::Bool),
    ("sdp.media", Fact::SdpMedia, Type::List(Elem::Media)),
    ("response.status", Fact::ResponseStatus, Type::Int),
    ("config.domain", Fact::ConfigDomain, Type::Str),
    (
        "config.conference_factory",
        Fact::ConfigConferenceFactory,
        Type::Uri,
    ),
    (
        "config.accept_types",
        Fact::ConfigAcceptTypes,
        Type::StrList,
    ),
    (
        "config.accept_wrapped_types",
        Fact::ConfigAcceptWrappedTypes,
        Type::StrList,
    ),
    ("config.max_size", Fact::ConfigMaxSize, Type::Int),
    ("config.tb_granted", Fact::ConfigTbGranted, Type::Bool),
    (
        "config.aggregate_imdns",
        Fact::ConfigAggregateImdns,
        Type::Bool,
    ),
    (
        "config.allow_external_recipients",
        Fact::ConfigAllowExternalRecipients,
        Type::Bool,
    ),
    (
        "config.max_recipients",
        Fact::ConfigMaxRecipients,
        Type::Int,
    ),
    (
        "config.invite_timeout",
        Fact::ConfigInviteTimeout,
        Type::Duration,
    ),
    ("legs.total", Fact::LegsTotal, Type::Int),
    ("legs.connected", Fact::LegsConnected, Type::Int),
    ("legs.delivered", Fact::LegsDelivered, Type::Int),
    ("legs.failed", Fact::LegsFailed, Type::Int),
    (
        "message.wants_positive_delivery",
        Fact::MessageWantsPositiveDelivery,
        Type::Bool,
    ),
    (
        "message.wants_negative_delivery",
        Fact::MessageWantsNegativeDelivery,
        Type::Bool,
    ),
    (
        "message.is_notification",
        Fact::MessageIsNotification,
        Type::Bool,
    ),
    (
        "message.success_report",
        Fact::MessageSuccessReport,
        Type::Bool,
    ),
    (
        "subscription.subscriber",
        Fact::SubscriptionSubscriber,
        Type::Uri,
    ),
    (
        "copy.recipient_offline",
        Fact::CopyRecipientOffline,
        Type::Bool,
    ),
    ("copy.storable", Fact::CopyStorable, Type::Bool),
    ("list.malformed", Fact::ListMalformed, Type::Bool),
    ("list.too_large", Fact::ListTooLarge, Type::Bool),
    ("list.error", Fact::ListError, Type::Str),
    ("session.focus", Fact::SessionFocus, Type::Uri),
    (
        "request.max_forwards_decremented",
        Fact::RequestMaxForwardsDecremented,
        Type::Int,
    ),
    ("body.malformed", Fact::BodyMalformed, Type::Bool),
    ("body.error", Fact::BodyError, Type::Str),
    (
        "request.authenticated_user",
        Fact::RequestAuthenticatedUser,
        Type::Str,
    ),
    (
        "subscription.in_invite_dialog",
        Fact::SubscriptionInInviteDialog,
        Type::Bool,
    ),
    (
        "subscription.over_limit",
        Fact::SubscriptionOverLimit,
        Type::Bool,
    ),
    ("subscription.error", Fact::SubscriptionError, Type::Str),
    (
        "subscription.authenticated_user",
        Fact::SubscriptionAuthenticatedUser,
        Type::Str,
    ),
    (
        "subscription.refresh",
        Fact::SubscriptionRefresh,
        Type::Bool,
    ),
    ("subscription.expires", Fact::SubscriptionExpires, Type::Int),
    ("list.unresolved", Fact::ListUnresolved, Type::Int),
];

/// Fields by the type they belong to.
const FIELDS: &[(Ty, &str, Field, Type)] = &[
    (Ty::V(Type::Uri), "scheme", Field::UriScheme, Type::Str),
    (Ty::V(Type::Uri), "user", Field::UriUser, Type::Str),
    (Ty::V(Type::Uri), "host", Field::UriHost, Type::Str),
    (Ty::V(Type::Uri), "port", Field::UriPort, Type::Int),
    (Ty::E(Elem::Part), "type", Field::PartType, Type::Str),
    (
        Ty::E(Elem::Part),
        "disposition",
        Field::PartDisposition,
        Type::Str,
    ),
    (Ty::E(Elem::Part), "len", Field::PartLen, Type::Int),
    (Ty::E(Elem::Entry), "uri", Field::EntryUri, Type::Uri),
    (
        Ty::E(Elem::Entry),
        "display_name",
        Field::EntryDisplayName,
        Type::Str,
    ),
    (
        Ty::E(Elem::Entry),
        "copy_control",
        Field::EntryCopyControl,
        Type::Str,
    ),
    (
        Ty::E(Elem::Entry),
        "anonymize",
        Field::EntryAnonymize,
        Type::Bool,
    ),
    (Ty::E(Elem::Media), "media", Field::MediaMedia, Type::Str),
    (Ty::E(Elem::Media), "proto", Field::MediaProto, Type::Str),
    (Ty::E(Elem::Media), "port", Field::MediaPort, Type::Int),
    (
        Ty::E(Elem::Media),
        "formats",
        Field::MediaFormats,
        Type::StrList,
    ),
];

/// A parameter of a built-in.
#[derive(Clone, Copy)]
enum P {
    T(Type),
    AnyList,
}

/// Built-ins: written name, builtin, parameters (after the receiver for methods), result.
const FREE: &[(&str, Builtin, &[P], Type)] = &[
    ("count", Builtin::Count, &[P::AnyList], Type::Int),
    (
        "overlap",
        Builtin::Overlap,
        &[P::T(Type::StrList), P::T(Type::StrList)],
        Type::Bool,
    ),
    (
        "request.header",
        Builtin::Header,
        &[P::T(Type::Str)],
        Type::Str,
    ),
    (
        "request.has_header",
        Builtin::HasHeader,
        &[P::T(Type::Str)],
        Type::Bool,
    ),
    (
        "directory.owns",
        Builtin::DirectoryOwns,
        &[P::T(Type::Uri)],
        Type::Bool,
    ),
    (
        "directory.is_member",
        Builtin::DirectoryIsMember,
        &[P::T(Type::Uri), P::T(Type::Uri)],
        Type::Bool,
    ),
    (
        "directory.may_initiate",
        Builtin::DirectoryMayInitiate,
        &[P::T(Type::Uri), P::T(Type::Uri)],
        Type::Bool,
    ),
    (
        "directory.invites_members",
        Builtin::DirectoryInvitesMembers,
        &[P::T(Type::Uri)],
        Type::Bool,
    ),
    (
        "directory.may_join",
        Builtin::DirectoryMayJoin,
        &[P::T(Type::Uri), P::T(Type::Uri)],
        Type::Bool,
    ),
    (
        "directory.allows_anonymity",
        Builtin::DirectoryAllowsAnonymity,
        &[P::T(Type::Uri), P::T(Type::Uri)],
        Type::Bool,
    ),
    (
        "directory.member_count",
        Builtin::DirectoryMemberCount,
        &[P::T(Type::Uri)],
        Type::Int,
    ),
    (
        "distinct",
        Builtin::Distinct,
        &[P::T(Type::List(Elem::Entry))],
        Type::List(Elem::Entry),
    ),
    (
        "without",
        Builtin::Without,
        &[P::T(Type::List(Elem::Entry)), P::T(Type::Uri)],
        Type::List(Elem::Entry),
    ),
    (
        "directory.members",
        Builtin::DirectoryMembers,
        &[P::T(Type::Uri)],
        Type::List(Elem::Entry),
    ),
    (
        "directory.max_participants",
        Builtin::DirectoryMaxParticipants,
        &[P::T(Type::Uri)],
        Type::Int,
    ),
];

/// Methods on a media element; the receiver becomes the first argument of the call.
const MEDIA_METHODS: &[(&str, Builtin, Type)] = &[
    ("has", Builtin::MediaHas, Type::Bool),
    ("attr", Builtin::MediaAttr, Type::Str),
    ("tokens", Builtin::MediaTokens, Type::StrList),
];

/// Replaces the `\{` / `\}` escapes the parser keeps (for interpolation) by plain braces.
pub(crate) fn plain_braces(s: &str) -> String {
    s.replace("\\{", "{").replace("\\}", "}")
}

/// Resolves and types expressions of one context (a condition, a rule, a text).
pub(crate) struct ExprCx<'a> {
    /// Named conditions by name.
    pub conditions: &'a HashMap<String, usize>,
    pub diags: &'a mut Diagnostics,
    /// Quantifier variables in scope, innermost last.
    pub vars: Vec<(String, Elem)>,
    /// Every named condition referenced, with where (for the cycle check).
    pub cond_refs: Vec<(usize, Span)>,
}

impl<'a> ExprCx<'a> {
    pub(crate) fn new(conditions: &'a HashMap<String, usize>, diags: &'a mut Diagnostics) -> Self {
        ExprCx {
            conditions,
            diags,
            vars: Vec::new(),
            cond_refs: Vec::new(),
        }
    }

    /// Lowers `e` and requires type `want`; `what` names the place for the message.
    pub(crate) fn lower_as(&mut self, e: &ast::Expr, want: Type, what: &str) -> Option<Expr> {
        let (x, t) = self.lower(e)?;
        if t == Ty::V(want) {
            Some(x)
        } else {
            let help = match (want, t) {
                (Type::Bool, Ty::V(Type::Int)) => {
                    "compare the number, e.g. `count(recipients) > 0`".to_string()
                }
                (Type::Bool, Ty::V(Type::StrList)) => {
                    "test membership, e.g. `request.supported contains \"tag\"`".to_string()
                }
                (Type::Bool, Ty::V(Type::List(_))) => {
                    "use a quantifier, e.g. `any x in LIST where (…)`, or `count(LIST) > 0`"
                        .to_string()
                }
                (Type::Duration, _) => "write a duration like `32s` or `500ms`, or a Duration fact such as `config.invite_timeout`".to_string(),
                _ => format!("{what} must have type {}", type_name(want)),
            };
            self.diags.push(
                Diagnostic::new(
                    Code::TypeMismatch,
                    format!(
                        "mismatched types: {what} must be {}, found {t}",
                        type_name(want)
                    ),
                    e.span,
                    format!("this is {t}"),
                )
                .help(help),
            );
            None
        }
    }

    /// Lowers `e`, returning the typed expression, or `None` after reporting.
    pub(crate) fn lower(&mut self, e: &ast::Expr) -> Option<(Expr, Ty)> {
        match &e.kind {
            ExprKind::Lit(l) => Some(match l {
                Lit::Bool(b) => (Expr::Bool(*b), Ty::V(Type::Bool)),
                Lit::Int(i) => (Expr::Int(*i), Ty::V(Type::Int)),
                Lit::Str(s) => (Expr::Str(plain_braces(s)), Ty::V(Type::Str)),
                Lit::DurationMs(ms) => (Expr::DurationMs(*ms), Ty::V(Type::Duration)),
            }),
            ExprKind::Paren(inner) => self.lower(inner),
            ExprKind::Not(inner) => {
                let x = self.lower_as(inner, Type::Bool, "the operand of `not`")?;
                Some((Expr::Not(Box::new(x)), Ty::V(Type::Bool)))
            }
            ExprKind::And(parts) | ExprKind::Or(parts) => {
                let is_and = matches!(e.kind, ExprKind::And(_));
                let word = if is_and {
                    "an operand of `and`"
                } else {
                    "an operand of `or`"
                };
                let lowered: Vec<Option<Expr>> = parts
                    .iter()
                    .map(|p| self.lower_as(p, Type::Bool, word))
                    .collect();
                let xs: Option<Vec<Expr>> = lowered.into_iter().collect();
                let xs = xs?;
                Some((
                    if is_and { Expr::And(xs) } else { Expr::Or(xs) },
                    Ty::V(Type::Bool),
                ))
            }
            ExprKind::Cmp(op, l, r) => self.cmp(*op, l, r, e.span),
            ExprKind::Quant {
                quant,
                var,
                list,
                body,
            } => {
                let list_x = self.lower(list);
                let elem = match list_x {
                    Some((_, Ty::V(Type::List(elem)))) => Some(elem),
                    Some((_, t)) => {
                        let help = if t == Ty::V(Type::StrList) {
                            "for a list of strings use `contains` or `overlap(a, b)`"
                        } else {
                            "quantifiers range over `body.parts`, `recipients` or `sdp.media`"
                        };
                        self.diags.push(
                            Diagnostic::new(
                                Code::TypeMismatch,
                                format!(
                                    "mismatched types: `{}` needs a list of parts, entries or media, found {t}",
                                    quant.as_str()
                                ),
                                list.span,
                                format!("this is {t}"),
                            )
                            .help(help),
                        );
                        None
                    }
                    None => None,
                };
                // Without an element type the variable cannot be typed; checking the body
                // would only report it as undefined everywhere.
                let elem = elem?;
                self.vars.push((var.name.clone(), elem));
                let body_x = self.lower_as(body, Type::Bool, "a quantifier body");
                self.vars.pop();
                let (list_x, _) = list_x?;
                Some((
                    Expr::Quant {
                        quant: *quant,
                        var: var.name.clone(),
                        elem,
                        list: Box::new(list_x),
                        body: Box::new(body_x?),
                    },
                    Ty::V(Type::Bool),
                ))
            }
            ExprKind::Ref { path, args } => self.reference(path, args.as_deref(), e.span),
        }
    }

    fn cmp(&mut self, op: CmpOp, l: &ast::Expr, r: &ast::Expr, span: Span) -> Option<(Expr, Ty)> {
        let lx = self.lower(l);
        let rx = self.lower(r);
        let ((lx, lt), (rx, rt)) = (lx?, rx?);
        let ok = match op {
            CmpOp::Eq | CmpOp::Ne => lt == rt && !matches!(lt, Ty::E(_) | Ty::V(Type::List(_))),
            CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => {
                lt == rt && matches!(lt, Ty::V(Type::Int | Type::Duration))
            }
            CmpOp::Contains => {
                matches!(lt, Ty::V(Type::StrList | Type::Str)) && rt == Ty::V(Type::Str)
            }
        };
        if ok {
            return Some((Expr::Cmp(op, Box::new(lx), Box::new(rx)), Ty::V(Type::Bool)));
        }
        let (message, help) = match op {
            CmpOp::Contains if !matches!(lt, Ty::V(Type::StrList | Type::Str)) => (
                format!("mismatched types: `contains` needs a StrList or Str on the left, found {lt}"),
                match lt {
                    Ty::V(Type::List(_)) => "for parts, entries or media use `any x in LIST where (…)`".to_string(),
                    _ => "`contains` tests membership in a list of strings (`request.supported contains \"tag\"`) or a substring".to_string(),
                },
            ),
            CmpOp::Contains => (
                format!("mismatched types: `contains` needs a Str on the right, found {rt}"),
                "write the element to look for as a string".to_string(),
            ),
            CmpOp::Eq | CmpOp::Ne if lt == rt => (
                format!("`{}` cannot compare values of type {lt}", op.as_str()),
                "compare a field of each element inside a quantifier, or use `count(…)`".to_string(),
            ),
            CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge if lt == rt => (
                format!("`{}` orders numbers and durations only, found {lt}", op.as_str()),
                "use `==` or `!=` to compare these values".to_string(),
            ),
            _ => (
                format!("mismatched types: {lt} compared with {rt}"),
                match (lt, rt) {
                    (Ty::V(Type::Uri), Ty::V(Type::Str)) | (Ty::V(Type::Str), Ty::V(Type::Uri)) => {
                        "compare a part of the URI (`.user`, `.host`, `.scheme`) with a string, or compare two URIs".to_string()
                    }
                    _ => format!("both sides of `{}` must have the same type", op.as_str()),
                },
            ),
        };
        self.diags.push(
            Diagnostic::new(
                Code::TypeMismatch,
                message,
                span,
                format!("{lt} {} {rt}", op.as_str()),
            )
            .note(l.span, format!("{lt}"))
            .note(r.span, format!("{rt}"))
            .help(help),
        );
        None
    }

    fn reference(
        &mut self,
        path: &[Ident],
        args: Option<&[ast::Expr]>,
        span: Span,
    ) -> Option<(Expr, Ty)> {
        let head = path.first()?;
        let dotted = |n: usize| {
            path[..n]
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(".")
        };
        // Built-in functions: `count(x)`, `request.header(n)`, `directory.owns(u)`.
        if let Some(args) = args {
            let is_var = self.vars.iter().any(|(v, _)| *v == head.name);
            let namespaced =
                path.len() == 2 && !is_var && matches!(head.name.as_str(), "request" | "directory");
            if path.len() == 1 || namespaced {
                let name = dotted(path.len());
                if let Some((_, b, params, ret)) = FREE.iter().find(|f| f.0 == name) {
                    let xs = self.args(&name, params, args, span)?;
                    return Some((Expr::Call(*b, xs), Ty::V(*ret)));
                }
                if FACTS.iter().all(|f| f.0 != name) {
                    let known: Vec<&str> = FREE.iter().map(|f| f.0).collect();
                    self.diags.push(
                        Diagnostic::new(
                            Code::Undefined,
                            format!("no built-in function `{name}`"),
                            span_of(path),
                            "unknown function",
                        )
                        .help(suggest(&name, &known, "the built-ins are")),
                    );
                    return None;
                }
            }
        }
        let (mut x, mut ty, used) =
            if let Some((_, elem)) = self.vars.iter().rev().find(|(v, _)| *v == head.name) {
                (Expr::Var(head.name.clone()), Ty::E(*elem), 1)
            } else if let Some((n, fact, t)) = [2usize, 1]
                .iter()
                .filter(|n| **n <= path.len())
                .find_map(|n| {
                    let name = dotted(*n);
                    FACTS.iter().find(|f| f.0 == name).map(|f| (*n, f.1, f.2))
                })
            {
                (Expr::Fact(fact), Ty::V(t), n)
            } else if let Some(&i) = self.conditions.get(&head.name) {
                self.cond_refs.push((i, head.span));
                (Expr::Condition(i), Ty::V(Type::Bool), 1)
            } else {
                self.undefined(path, args.is_some());
                return None;
            };
        for (k, seg) in path.iter().enumerate().skip(used) {
            let last = k + 1 == path.len();
            if last && let Some(args) = args {
                if ty == Ty::E(Elem::Media)
                    && let Some((_, b, ret)) = MEDIA_METHODS.iter().find(|m| m.0 == seg.name)
                {
                    let name = format!("{}.{}", dotted(k), seg.name);
                    let mut xs = vec![x];
                    xs.extend(self.args(&name, &[P::T(Type::Str)], args, span)?);
                    return Some((Expr::Call(*b, xs), Ty::V(*ret)));
                }
                let methods = if ty == Ty::E(Elem::Media) {
                    "media elements have the methods `has`, `attr` and `tokens`"
                } else {
                    "only media elements (`m` in `any m in sdp.media …`) have methods"
                };
                self.diags.push(
                    Diagnostic::new(
                        Code::Undefined,
                        format!("{ty} has no method `{}`", seg.name),
                        seg.span,
                        "unknown method",
                    )
                    .help(methods),
                );
                return None;
            }
            match FIELDS.iter().find(|f| f.0 == ty && f.1 == seg.name) {
                Some((_, _, field, t)) => {
                    x = Expr::Field(Box::new(x), *field);
                    ty = Ty::V(*t);
                }
                None => {
                    let fields: Vec<&str> =
                        FIELDS.iter().filter(|f| f.0 == ty).map(|f| f.1).collect();
                    let help = if fields.is_empty() {
                        format!("values of type {ty} have no fields")
                    } else {
                        suggest(&seg.name, &fields, &format!("fields of {ty} are"))
                    };
                    self.diags.push(
                        Diagnostic::new(
                            Code::Undefined,
                            format!("no field `{}` on {ty} `{}`", seg.name, dotted(k)),
                            seg.span,
                            "unknown field",
                        )
                        .help(help),
                    );
                    return None;
                }
            }
        }
        if args.is_some() {
            self.diags.push(
                Diagnostic::new(
                    Code::BadArgument,
                    format!("`{}` is not a function", dotted(path.len())),
                    span,
                    "called here",
                )
                .help("remove the parentheses"),
            );
            return None;
        }
        Some((x, ty))
    }

    fn args(
        &mut self,
        name: &str,
        params: &[P],
        args: &[ast::Expr],
        span: Span,
    ) -> Option<Vec<Expr>> {
        let lowered: Vec<Option<(Expr, Ty)>> = args.iter().map(|a| self.lower(a)).collect();
        if args.len() != params.len() {
            let sig: Vec<&str> = params
                .iter()
                .map(|p| match p {
                    P::T(t) => type_name(*t),
                    P::AnyList => "list",
                })
                .collect();
            self.diags.push(
                Diagnostic::new(
                    Code::BadArgument,
                    format!(
                        "`{name}` takes {} argument{}, found {}",
                        params.len(),
                        if params.len() == 1 { "" } else { "s" },
                        args.len()
                    ),
                    span,
                    format!("wrong number of arguments to `{name}`"),
                )
                .help(format!("call it as `{name}({})`", sig.join(", "))),
            );
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for ((a, l), p) in args.iter().zip(lowered).zip(params) {
            let Some((x, t)) = l else {
                ok = false;
                continue;
            };
            let fits = match p {
                P::T(want) => t == Ty::V(*want),
                P::AnyList => matches!(t, Ty::V(Type::List(_) | Type::StrList)),
            };
            if !fits {
                ok = false;
                let want = match p {
                    P::T(w) => type_name(*w),
                    P::AnyList => "a list",
                };
                self.diags.push(
                    Diagnostic::new(
                        Code::TypeMismatch,
                        format!("mismatched types: `{name}` expects {want}, found {t}"),
                        a.span,
                        format!("this is {t}"),
                    )
                    .help(format!("pass {want} to `{name}`")),
                );
            }
            out.push(x);
        }
        ok.then_some(out)
    }

    fn undefined(&mut self, path: &[Ident], called: bool) {
        let Some(head) = path.first() else { return };
        let full = path
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join(".");
        let mut known: Vec<String> = FACTS.iter().map(|f| f.0.to_string()).collect();
        known.extend(self.conditions.keys().cloned());
        known.extend(self.vars.iter().map(|v| v.0.clone()));
        let known_refs: Vec<&str> = known.iter().map(String::as_str).collect();
        let under: Vec<&str> = FACTS
            .iter()
            .filter_map(|f| f.0.strip_prefix(&format!("{}.", head.name)))
            .collect();
        let help = if head.name == super::invite::INVITEE {
            "`invitee` is the recipient of each request of a fan-out: it exists only in the header values of an `invite each` / `forward each` block (`header To = \"<{invitee.uri}>\"`)".to_string()
        } else if !under.is_empty() {
            let name = path.get(1).map(|i| i.name.as_str()).unwrap_or("");
            suggest(name, &under, &format!("facts under `{}.` are", head.name))
        } else if called {
            "not a built-in function".to_string()
        } else {
            let s = suggest(&full, &known_refs, "");
            if s.is_empty() {
                "define it with `condition NAME [clause] = …`, or use a fact from docs/language.md"
                    .to_string()
            } else {
                s
            }
        };
        let span = if under.is_empty() {
            head.span
        } else {
            span_of(path)
        };
        self.diags.push(
            Diagnostic::new(
                Code::Undefined,
                format!("cannot find `{full}`: not a fact, condition or bound variable"),
                span,
                "not defined",
            )
            .help(help),
        );
    }
}

fn span_of(path: &[Ident]) -> Span {
    match (path.first(), path.last()) {
        (Some(a), Some(b)) => a.span.to(b.span),
        _ => Span::default(),
    }
}

/// "did you mean `x`?" when one name is close, else the list (prefixed by `intro`).
pub(crate) fn suggest(name: &str, known: &[&str], intro: &str) -> String {
    match closest(name, known) {
        Some(k) => format!("did you mean `{k}`?"),
        None if intro.is_empty() => String::new(),
        None => format!(
            "{intro} {}",
            known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The known name nearest to `name` by edit distance, if one is within a third of the
/// longer's length (at least one edit).
pub(crate) fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= (k.len().max(name.len()) / 3).max(1))
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

//! Expressions → Rust. Every fact, field and built-in maps to one `__private` helper (or a
//! plain field read), so the meaning of a primitive lives in the runtime, unit-tested there.
//! Generated expressions read `__facts: &Facts` and `__env: &Env<'_>`.

use crate::model::{Builtin, CmpOp, Elem, Expr, Fact, Field, Quant, Spec, Text, TextPart};
use proc_macro2::{Literal, TokenStream};
use quote::quote;

/// The type of an expression as the generator sees it: the model's value types plus the
/// element types of quantifier variables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    Bool,
    Int,
    Str,
    Uri,
    StrList,
    Duration,
    List(Elem),
    Elem(Elem),
}

/// Binding strength of the emitted Rust, loosest first; used to parenthesise only where
/// Rust needs it (stray parentheses would trip `unused_parens` under `-D warnings`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Prec {
    Or,
    And,
    Cmp,
    Unary,
}

/// Compiles expressions of one spec in one scope.
pub(crate) struct Cx<'a> {
    spec: &'a Spec,
    /// Path prefix to the condition functions (`super::` inside a procedure module).
    cond_path: TokenStream,
    vars: Vec<(String, Elem)>,
}

fn p() -> TokenStream {
    quote!(::im_runtime::__private)
}

fn lit_str(s: &str) -> Literal {
    Literal::string(s)
}

impl<'a> Cx<'a> {
    pub(crate) fn new(spec: &'a Spec, cond_path: TokenStream) -> Self {
        Cx {
            spec,
            cond_path,
            vars: Vec::new(),
        }
    }

    fn var(&self, name: &str) -> Option<Elem> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, e)| *e)
    }

    /// The type of `e` (the model guarantees expressions are well typed).
    pub(crate) fn ty(&self, e: &Expr) -> Ty {
        match e {
            Expr::Bool(_)
            | Expr::Condition(_)
            | Expr::Not(_)
            | Expr::And(_)
            | Expr::Or(_)
            | Expr::Cmp(..)
            | Expr::Quant { .. } => Ty::Bool,
            Expr::Int(_) => Ty::Int,
            Expr::Str(_) => Ty::Str,
            Expr::DurationMs(_) => Ty::Duration,
            Expr::Fact(f) => fact_ty(*f),
            Expr::Var(v) => self.var(v).map(Ty::Elem).unwrap_or(Ty::Bool),
            Expr::Field(_, f) => field_ty(*f),
            Expr::Call(b, _) => builtin_ty(*b),
        }
    }

    /// The expression as Rust, in a position that needs no parentheses (an `if` condition,
    /// a function body or argument).
    pub(crate) fn expr(&mut self, e: &Expr) -> TokenStream {
        self.compile(e).0
    }

    fn at_least(&mut self, e: &Expr, min: Prec) -> TokenStream {
        let (ts, prec) = self.compile(e);
        if prec < min { quote!((#ts)) } else { ts }
    }

    fn compile(&mut self, e: &Expr) -> (TokenStream, Prec) {
        let p = p();
        let atom = |ts| (ts, Prec::Unary);
        match e {
            Expr::Bool(b) => atom(quote!(#b)),
            Expr::Int(n) => {
                let l = Literal::i64_suffixed(*n);
                if *n < 0 {
                    (quote!(#l), Prec::Cmp)
                } else {
                    atom(quote!(#l))
                }
            }
            Expr::Str(s) => {
                let l = lit_str(s);
                atom(quote!(#l))
            }
            Expr::DurationMs(ms) => {
                let l = Literal::u64_suffixed(*ms);
                atom(quote!(::core::time::Duration::from_millis(#l)))
            }
            Expr::Fact(f) => atom(fact(*f)),
            Expr::Condition(i) => {
                let name = self
                    .spec
                    .conditions
                    .get(*i)
                    .map(|c| c.name.as_str())
                    .unwrap_or("missing");
                let f = super::names::internal("cond", name);
                let path = &self.cond_path;
                atom(quote!(#path #f(__facts, __env)))
            }
            Expr::Var(v) => {
                let id = super::names::internal("v", v);
                atom(quote!(#id))
            }
            Expr::Field(inner, f) => {
                let x = self.expr(inner);
                let h = field_helper(*f);
                if *f == Field::MediaFormats {
                    // Read from the section's one text: a list made on the spot.
                    atom(quote!(#p::#h(#x).as_slice()))
                } else {
                    atom(quote!(#p::#h(#x)))
                }
            }
            Expr::Call(b, args) => atom(self.builtin(*b, args)),
            Expr::Not(inner) => match &**inner {
                Expr::Not(x) => self.compile(x),
                Expr::Cmp(op, a, b) => self.cmp(*op, a, b, true),
                Expr::Bool(b) => {
                    let v = !b;
                    atom(quote!(#v))
                }
                other => {
                    let x = self.at_least(other, Prec::Unary);
                    atom(quote!(!#x))
                }
            },
            Expr::And(xs) => {
                let parts: Vec<_> = xs.iter().map(|x| self.at_least(x, Prec::Cmp)).collect();
                (quote!(#(#parts)&&*), Prec::And)
            }
            Expr::Or(xs) => {
                let parts: Vec<_> = xs.iter().map(|x| self.at_least(x, Prec::Cmp)).collect();
                (quote!(#(#parts)||*), Prec::Or)
            }
            Expr::Cmp(op, a, b) => self.cmp(*op, a, b, false),
            Expr::Quant {
                quant,
                var,
                elem,
                list,
                body,
            } => {
                let l = self.at_least(list, Prec::Unary);
                self.vars.push((var.clone(), *elem));
                let b = self.expr(body);
                self.vars.pop();
                let v = super::names::internal("v", var);
                match quant {
                    Quant::Any => atom(quote!(#l.iter().any(|#v| #b))),
                    Quant::All => atom(quote!(#l.iter().all(|#v| #b))),
                    Quant::None => atom(quote!(!#l.iter().any(|#v| #b))),
                }
            }
        }
    }

    fn cmp(&mut self, op: CmpOp, a: &Expr, b: &Expr, negate: bool) -> (TokenStream, Prec) {
        let p = p();
        let ty = self.ty(a);
        let neg = |ts: TokenStream| -> (TokenStream, Prec) {
            if negate {
                (quote!(!#ts), Prec::Unary)
            } else {
                (ts, Prec::Unary)
            }
        };
        // `x == true` and friends: say `x` (clippy's bool_comparison).
        if ty == Ty::Bool && matches!(op, CmpOp::Eq | CmpOp::Ne) {
            let (x, lit) = match (a, b) {
                (x, Expr::Bool(l)) | (Expr::Bool(l), x) => (x, Some(*l)),
                _ => (a, None),
            };
            if let Some(l) = lit {
                let positive = l == (op == CmpOp::Eq);
                return if positive != negate {
                    self.compile(x)
                } else {
                    let x = self.at_least(x, Prec::Unary);
                    (quote!(!#x), Prec::Unary)
                };
            }
        }
        let x = self.at_least(a, Prec::Unary);
        let y = self.at_least(b, Prec::Unary);
        match (ty, op) {
            (Ty::Uri, CmpOp::Eq) => neg(quote!(#p::uri_eq(#x, #y))),
            (Ty::Uri, CmpOp::Ne) => neg(quote!(!#p::uri_eq(#x, #y))),
            (Ty::StrList, CmpOp::Eq) => neg(quote!(#p::list_eq(#x, #y))),
            (Ty::StrList, CmpOp::Ne) => neg(quote!(!#p::list_eq(#x, #y))),
            (Ty::StrList, CmpOp::Contains) => neg(quote!(#p::list_contains(#x, #y))),
            (Ty::Str, CmpOp::Contains) => neg(quote!(#p::str_contains(#x, #y))),
            (Ty::Int | Ty::Str | Ty::Duration | Ty::Bool, op) if op != CmpOp::Contains => {
                let op = if negate { negate_op(op) } else { op };
                let o = rust_op(op);
                (quote!(#x #o #y), Prec::Cmp)
            }
            _ => {
                let msg = format!(
                    "imspec: internal error: cannot compare values of type {ty:?} with `{}`",
                    op.as_str()
                );
                (quote!(::core::compile_error!(#msg)), Prec::Unary)
            }
        }
    }

    fn builtin(&mut self, b: Builtin, args: &[Expr]) -> TokenStream {
        let p = p();
        let a: Vec<TokenStream> = args.iter().map(|x| self.expr(x)).collect();
        let arg = |i: usize| a.get(i).cloned().unwrap_or_else(|| quote!(()));
        let (a0, a1) = (arg(0), arg(1));
        match b {
            Builtin::Count => quote!(#p::count(#a0)),
            Builtin::Overlap => quote!(#p::overlap(#a0, #a1)),
            Builtin::Header => quote!(#p::header(__facts, #a0)),
            Builtin::HasHeader => quote!(#p::has_header(__facts, #a0)),
            Builtin::DirectoryOwns => quote!(#p::owns(__env, #a0)),
            Builtin::DirectoryIsMember => quote!(#p::is_member(__env, #a0, #a1)),
            Builtin::DirectoryMayInitiate => quote!(#p::may_initiate(__env, #a0, #a1)),
            Builtin::DirectoryInvitesMembers => {
                quote!(#p::invites_members(__facts, __env, #a0))
            }
            Builtin::DirectoryMayJoin => quote!(#p::may_join(__env, #a0, #a1)),
            Builtin::DirectoryAllowsAnonymity => quote!(#p::allows_anonymity(__env, #a0, #a1)),
            Builtin::DirectoryMemberCount => quote!(#p::member_count(__env, #a0)),
            Builtin::DirectoryMaxParticipants => {
                quote!(#p::max_participants(__facts, __env, #a0))
            }
            Builtin::Distinct => quote!(#p::distinct(#a0).as_slice()),
            Builtin::Without => quote!(#p::without(#a0, #a1).as_slice()),
            Builtin::DirectoryMembers => quote!(#p::members(__env, #a0).as_slice()),
            Builtin::MediaHas => quote!(#p::media_has(#a0, #a1)),
            Builtin::MediaAttr => quote!(#p::media_attr(#a0, #a1)),
            Builtin::MediaTokens => quote!(#p::media_tokens(#a0, #a1).as_slice()),
        }
    }

    /// Interpolated text as a `Cow<'static, str>` expression.
    pub(crate) fn text(&mut self, t: &Text) -> TokenStream {
        let p = p();
        if let Some(s) = literal_text(t) {
            let l = lit_str(&s);
            return quote!(::std::borrow::Cow::Borrowed(#l));
        }
        let pieces: Vec<TokenStream> = t
            .parts
            .iter()
            .map(|part| match part {
                TextPart::Lit(s) => {
                    let l = lit_str(s);
                    quote!(#p::Piece::Lit(#l))
                }
                TextPart::Value(e) => {
                    let x = self.expr(e);
                    match self.ty(e) {
                        Ty::Str => quote!(#p::Piece::Str(#x)),
                        Ty::Int => quote!(#p::Piece::Int(#x)),
                        Ty::Bool => quote!(#p::Piece::Bool(#x)),
                        Ty::Uri => quote!(#p::Piece::Uri(#x)),
                        Ty::Duration => quote!(#p::Piece::Duration(#x)),
                        other => {
                            let msg = format!(
                                "imspec: internal error: cannot print a value of type {other:?}"
                            );
                            quote!(::core::compile_error!(#msg))
                        }
                    }
                }
            })
            .collect();
        quote!(::std::borrow::Cow::Owned(#p::text(&[#(#pieces),*])))
    }
}

/// The text when it has no interpolated values.
pub(crate) fn literal_text(t: &Text) -> Option<String> {
    let mut s = String::new();
    for part in &t.parts {
        match part {
            TextPart::Lit(l) => s.push_str(l),
            TextPart::Value(_) => return None,
        }
    }
    Some(s)
}

fn negate_op(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Eq => CmpOp::Ne,
        CmpOp::Ne => CmpOp::Eq,
        CmpOp::Lt => CmpOp::Ge,
        CmpOp::Le => CmpOp::Gt,
        CmpOp::Gt => CmpOp::Le,
        CmpOp::Ge => CmpOp::Lt,
        CmpOp::Contains => CmpOp::Contains,
    }
}

fn rust_op(op: CmpOp) -> TokenStream {
    match op {
        CmpOp::Eq => quote!(==),
        CmpOp::Ne => quote!(!=),
        CmpOp::Lt => quote!(<),
        CmpOp::Le => quote!(<=),
        CmpOp::Gt => quote!(>),
        CmpOp::Ge | CmpOp::Contains => quote!(>=),
    }
}

fn fact(f: Fact) -> TokenStream {
    let p = p();
    match f {
        Fact::RequestMethod => quote!(#p::method(__facts)),
        Fact::RequestUri => quote!(&__facts.request_uri),
        Fact::RequestFrom => quote!(&__facts.from),
        Fact::RequestTo => quote!(&__facts.to),
        Fact::RequestOriginator => quote!(&__facts.originator),
        Fact::RequestAssertedIdentity => quote!(#p::asserted_identity(__facts)),
        Fact::RequestAuthenticated => quote!(#p::authenticated(__facts)),
        Fact::RequestOriginatorDomain => quote!(#p::originator_domain(__facts, __env.config)),
        Fact::RequestRequire => quote!(__facts.require.as_slice()),
        Fact::RequestSupported => quote!(__facts.supported.as_slice()),
        Fact::BodyParts => quote!(__facts.parts.as_slice()),
        Fact::Recipients => quote!(__facts.recipients.as_slice()),
        Fact::SdpPresent => quote!(#p::sdp_present(__facts)),
        Fact::SdpMedia => quote!(#p::sdp_media(__facts)),
        Fact::ResponseStatus => quote!(#p::status(__facts)),
        Fact::ConfigDomain => quote!(__env.config.domain.as_str()),
        Fact::ConfigConferenceFactory => quote!(&__env.config.conference_factory),
        Fact::ConfigAcceptTypes => quote!(__env.config.accept_types.as_slice()),
        Fact::ConfigAcceptWrappedTypes => quote!(__env.config.accept_wrapped_types.as_slice()),
        Fact::ConfigMaxSize => quote!(#p::max_size(__env.config)),
        Fact::ConfigTbGranted => quote!(__env.config.tb_granted),
        Fact::ConfigAggregateImdns => quote!(__env.config.aggregate_imdns),
        Fact::ConfigAllowExternalRecipients => quote!(__env.config.allow_external_recipients),
        Fact::ConfigMaxRecipients => quote!(#p::max_recipients(__env.config)),
        Fact::ConfigInviteTimeout => quote!(__env.config.invite_timeout),
        Fact::LegsTotal => quote!(#p::count_i64(__facts.legs.total)),
        Fact::LegsConnected => quote!(#p::count_i64(__facts.legs.connected)),
        Fact::LegsDelivered => quote!(#p::count_i64(__facts.legs.delivered)),
        Fact::LegsFailed => quote!(#p::count_i64(__facts.legs.failed)),
        Fact::MessageWantsPositiveDelivery => quote!(__facts.message.wants_positive_delivery),
        Fact::MessageWantsNegativeDelivery => quote!(__facts.message.wants_negative_delivery),
        Fact::MessageIsNotification => quote!(__facts.message.is_notification),
        Fact::MessageSuccessReport => quote!(__facts.message.success_report),
        Fact::SubscriptionSubscriber => quote!(&__facts.subscriber),
        Fact::CopyRecipientOffline => quote!(__facts.copy.recipient_offline),
        Fact::CopyStorable => quote!(__facts.copy.storable),
        Fact::ListMalformed => quote!(__facts.list.malformed),
        Fact::ListTooLarge => quote!(__facts.list.too_large),
        Fact::ListError => quote!(__facts.list.error.as_str()),
        Fact::SessionFocus => quote!(&__facts.focus),
        Fact::RequestMaxForwardsDecremented => quote!(#p::max_forwards_decremented(__facts)),
        Fact::BodyMalformed => quote!(__facts.body.malformed),
        Fact::BodyError => quote!(__facts.body.error.as_str()),
        Fact::RequestAuthenticatedUser => quote!(__facts.authenticated_user.as_str()),
        Fact::SubscriptionInInviteDialog => quote!(__facts.subscription.in_invite_dialog),
        Fact::SubscriptionOverLimit => quote!(__facts.subscription.over_limit),
        Fact::SubscriptionError => quote!(__facts.subscription.error.as_str()),
        Fact::SubscriptionAuthenticatedUser => {
            quote!(__facts.subscription.authenticated_user.as_str())
        }
        Fact::SubscriptionRefresh => quote!(__facts.subscription.refresh),
        Fact::SubscriptionExpires => quote!(i64::from(__facts.subscription.expires)),
        Fact::ListUnresolved => quote!(#p::count_i64(__facts.list.unresolved)),
    }
}

pub(crate) fn fact_ty(f: Fact) -> Ty {
    match f {
        Fact::RequestMethod
        | Fact::ConfigDomain
        | Fact::RequestOriginatorDomain
        | Fact::ListError
        | Fact::BodyError
        | Fact::RequestAuthenticatedUser
        | Fact::SubscriptionError
        | Fact::SubscriptionAuthenticatedUser => Ty::Str,
        Fact::RequestUri
        | Fact::RequestFrom
        | Fact::RequestTo
        | Fact::RequestOriginator
        | Fact::RequestAssertedIdentity
        | Fact::SubscriptionSubscriber
        | Fact::SessionFocus
        | Fact::ConfigConferenceFactory => Ty::Uri,
        Fact::RequestRequire
        | Fact::RequestSupported
        | Fact::ConfigAcceptTypes
        | Fact::ConfigAcceptWrappedTypes => Ty::StrList,
        Fact::BodyParts => Ty::List(Elem::Part),
        Fact::Recipients => Ty::List(Elem::Entry),
        Fact::SdpMedia => Ty::List(Elem::Media),
        Fact::SdpPresent
        | Fact::ConfigTbGranted
        | Fact::ConfigAggregateImdns
        | Fact::RequestAuthenticated
        | Fact::ConfigAllowExternalRecipients
        | Fact::MessageWantsPositiveDelivery
        | Fact::MessageWantsNegativeDelivery
        | Fact::MessageIsNotification
        | Fact::MessageSuccessReport
        | Fact::CopyRecipientOffline
        | Fact::CopyStorable
        | Fact::ListMalformed
        | Fact::ListTooLarge
        | Fact::BodyMalformed
        | Fact::SubscriptionInInviteDialog
        | Fact::SubscriptionOverLimit
        | Fact::SubscriptionRefresh => Ty::Bool,
        Fact::ResponseStatus
        | Fact::ConfigMaxSize
        | Fact::ConfigMaxRecipients
        | Fact::LegsTotal
        | Fact::LegsConnected
        | Fact::LegsDelivered
        | Fact::LegsFailed
        | Fact::RequestMaxForwardsDecremented
        | Fact::ListUnresolved
        | Fact::SubscriptionExpires => Ty::Int,
        Fact::ConfigInviteTimeout => Ty::Duration,
    }
}

fn field_helper(f: Field) -> proc_macro2::Ident {
    let name = match f {
        Field::UriScheme => "uri_scheme",
        Field::UriUser => "uri_user",
        Field::UriHost => "uri_host",
        Field::UriPort => "uri_port",
        Field::PartType => "part_type",
        Field::PartDisposition => "part_disposition",
        Field::PartLen => "part_len",
        Field::EntryUri => "entry_uri",
        Field::EntryDisplayName => "entry_display_name",
        Field::EntryCopyControl => "entry_copy_control",
        Field::EntryAnonymize => "entry_anonymize",
        Field::MediaMedia => "media_media",
        Field::MediaProto => "media_proto",
        Field::MediaPort => "media_port",
        Field::MediaFormats => "media_formats",
    };
    proc_macro2::Ident::new(name, proc_macro2::Span::call_site())
}

fn field_ty(f: Field) -> Ty {
    match f {
        Field::UriScheme
        | Field::UriUser
        | Field::UriHost
        | Field::PartType
        | Field::PartDisposition
        | Field::EntryDisplayName
        | Field::EntryCopyControl
        | Field::MediaMedia
        | Field::MediaProto => Ty::Str,
        Field::UriPort | Field::PartLen | Field::MediaPort => Ty::Int,
        Field::EntryUri => Ty::Uri,
        Field::EntryAnonymize => Ty::Bool,
        Field::MediaFormats => Ty::StrList,
    }
}

fn builtin_ty(b: Builtin) -> Ty {
    match b {
        Builtin::Count | Builtin::DirectoryMemberCount | Builtin::DirectoryMaxParticipants => {
            Ty::Int
        }
        Builtin::Overlap
        | Builtin::HasHeader
        | Builtin::DirectoryOwns
        | Builtin::DirectoryIsMember
        | Builtin::DirectoryMayInitiate
        | Builtin::DirectoryInvitesMembers
        | Builtin::DirectoryMayJoin
        | Builtin::DirectoryAllowsAnonymity
        | Builtin::MediaHas => Ty::Bool,
        Builtin::Header | Builtin::MediaAttr => Ty::Str,
        Builtin::MediaTokens => Ty::StrList,
        Builtin::Distinct | Builtin::Without | Builtin::DirectoryMembers => Ty::List(Elem::Entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Spec;

    fn spec() -> Spec {
        Spec {
            files: Vec::new(),
            conditions: Vec::new(),
            procedures: Vec::new(),
        }
    }

    fn compile(e: &Expr) -> String {
        let s = spec();
        Cx::new(&s, quote!(super::)).expr(e).to_string()
    }

    #[test]
    fn negated_comparison_flips_the_operator() {
        let e = Expr::Not(Box::new(Expr::Cmp(
            CmpOp::Lt,
            Box::new(Expr::Fact(Fact::ResponseStatus)),
            Box::new(Expr::Int(200)),
        )));
        assert_eq!(
            compile(&e),
            ":: im_runtime :: __private :: status (__facts) >= 200i64"
        );
    }

    #[test]
    fn bool_literal_comparison_is_simplified() {
        let e = Expr::Cmp(
            CmpOp::Eq,
            Box::new(Expr::Fact(Fact::ConfigTbGranted)),
            Box::new(Expr::Bool(false)),
        );
        assert_eq!(compile(&e), "! __env . config . tb_granted");
    }

    #[test]
    fn or_inside_and_is_parenthesised() {
        let e = Expr::And(vec![
            Expr::Fact(Fact::SdpPresent),
            Expr::Or(vec![Expr::Bool(true), Expr::Fact(Fact::ConfigTbGranted)]),
        ]);
        assert_eq!(
            compile(&e),
            ":: im_runtime :: __private :: sdp_present (__facts) && (true || __env . config . tb_granted)"
        );
    }

    #[test]
    fn uri_equality_uses_identity() {
        let e = Expr::Not(Box::new(Expr::Cmp(
            CmpOp::Eq,
            Box::new(Expr::Fact(Fact::RequestUri)),
            Box::new(Expr::Fact(Fact::ConfigConferenceFactory)),
        )));
        assert_eq!(
            compile(&e),
            "! :: im_runtime :: __private :: uri_eq (& __facts . request_uri , & __env . config . conference_factory)"
        );
    }

    #[test]
    fn quantifier_binds_a_prefixed_variable() {
        let e = Expr::Quant {
            quant: Quant::None,
            var: "m".into(),
            elem: Elem::Media,
            list: Box::new(Expr::Fact(Fact::SdpMedia)),
            body: Box::new(Expr::Call(
                Builtin::MediaHas,
                vec![Expr::Var("m".into()), Expr::Str("sendonly".into())],
            )),
        };
        assert_eq!(
            compile(&e),
            "! :: im_runtime :: __private :: sdp_media (__facts) . iter () . any (| __v_m | :: im_runtime :: __private :: media_has (__v_m , \"sendonly\"))"
        );
    }
}

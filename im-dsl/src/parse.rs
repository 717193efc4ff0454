//! pest pairs → spanned AST. Syntax errors become [`Diagnostic`]s with code E0001 whose
//! message names what was expected in words a spec editor uses, not grammar rule names.

use crate::ast::*;
use crate::diag::{Code, Diagnostic};
use pest::Parser as _;
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;

// pest_derive generates a public `Rule` enum without docs; it stays private to this module.
#[allow(missing_docs, unreachable_pub)]
mod grammar {
    #[derive(pest_derive::Parser)]
    #[grammar = "src/grammar.pest"]
    pub(crate) struct Grammar;
}
use grammar::{Grammar, Rule};

/// Parses the text of file `file` (its index in the spec's [`crate::source::Sources`]).
#[allow(clippy::result_large_err)] // one diagnostic per file; not a hot path
pub fn parse_file(file: usize, text: &str) -> Result<File, Diagnostic> {
    let mut pairs = Grammar::parse(Rule::file, text).map_err(|e| syntax_error(file, text, e))?;
    let Some(top) = pairs.next() else {
        return Ok(File {
            file,
            items: Vec::new(),
        });
    };
    let b = Builder { file };
    let mut items = Vec::new();
    for p in top.into_inner() {
        match p.as_rule() {
            Rule::import => {
                if let Some(s) = p.into_inner().next() {
                    items.push(Item::Import(b.string(s)));
                }
            }
            Rule::condition_def => items.push(Item::Condition(b.condition(p))),
            Rule::procedure => items.push(Item::Procedure(b.procedure(p))),
            _ => {}
        }
    }
    Ok(File { file, items })
}

/// Parses a standalone expression (used by tests and the `trace` tool).
#[allow(clippy::result_large_err)]
pub fn parse_expr(file: usize, text: &str) -> Result<Expr, Diagnostic> {
    let mut pairs = Grammar::parse(Rule::expr, text).map_err(|e| syntax_error(file, text, e))?;
    let end = pairs.peek().map(|p| p.as_span().end()).unwrap_or(0);
    if text[end..].trim().is_empty()
        && let Some(p) = pairs.next()
    {
        return Ok(Builder { file }.expr(p));
    }
    Err(Diagnostic::new(
        Code::Syntax,
        "unexpected text after the expression",
        Span {
            file,
            start: end,
            end: text.len(),
        },
        "not part of the expression",
    ))
}

struct Builder {
    file: usize,
}

impl Builder {
    fn span(&self, p: &Pair<'_, Rule>) -> Span {
        let s = p.as_span();
        Span {
            file: self.file,
            start: s.start(),
            end: s.end(),
        }
    }

    fn ident(&self, p: Pair<'_, Rule>) -> Ident {
        Ident {
            name: p.as_str().to_string(),
            span: self.span(&p),
        }
    }

    fn string(&self, p: Pair<'_, Rule>) -> StrLit {
        let span = self.span(&p);
        let raw = p.into_inner().next().map(|i| i.as_str()).unwrap_or("");
        StrLit {
            value: unescape(raw),
            span,
        }
    }

    fn clause(&self, p: Pair<'_, Rule>) -> ClauseRef {
        let span = self.span(&p);
        let id = match p.as_rule() {
            Rule::clause => p
                .into_inner()
                .next()
                .map(|i| i.as_str().to_string())
                .unwrap_or_default(),
            _ => p.as_str().to_string(),
        };
        ClauseRef { id, span }
    }

    fn condition(&self, p: Pair<'_, Rule>) -> ConditionDef {
        let span = self.span(&p);
        let mut name = None;
        let mut clause = None;
        let mut expr = None;
        for i in p.into_inner() {
            match i.as_rule() {
                Rule::ident => name = Some(self.ident(i)),
                Rule::clause => clause = Some(self.clause(i)),
                Rule::expr => expr = Some(self.expr(i)),
                _ => {}
            }
        }
        ConditionDef {
            name: name.unwrap_or_else(|| self.missing_ident(span)),
            clause,
            expr: expr.unwrap_or_else(|| self.missing_expr(span)),
            span,
        }
    }

    fn missing_ident(&self, span: Span) -> Ident {
        Ident {
            name: String::new(),
            span,
        }
    }

    fn missing_expr(&self, span: Span) -> Expr {
        Expr {
            kind: ExprKind::Lit(Lit::Bool(false)),
            span,
        }
    }

    fn procedure(&self, p: Pair<'_, Rule>) -> Procedure {
        let span = self.span(&p);
        let mut proc_ = Procedure {
            name: self.missing_ident(span),
            clause: None,
            title: None,
            states: Vec::new(),
            timers: Vec::new(),
            handlers: Vec::new(),
            span,
        };
        for i in p.into_inner() {
            match i.as_rule() {
                Rule::ident => proc_.name = self.ident(i),
                Rule::clause => proc_.clause = Some(self.clause(i)),
                Rule::string => proc_.title = Some(self.string(i)),
                Rule::states => proc_.states.push(self.states(i)),
                Rule::timer_decl => {
                    if let Some(id) = i.into_inner().next() {
                        proc_.timers.push(self.ident(id));
                    }
                }
                Rule::handler => proc_.handlers.push(self.handler(i)),
                _ => {}
            }
        }
        proc_
    }

    fn states(&self, p: Pair<'_, Rule>) -> StatesBlock {
        let span = self.span(&p);
        let mut states = Vec::new();
        for d in p.into_inner() {
            let dspan = self.span(&d);
            let mut decl = StateDecl {
                name: self.missing_ident(dspan),
                initial: false,
                is_final: false,
                span: dspan,
            };
            for i in d.into_inner() {
                match i.as_rule() {
                    Rule::state_flag => match i.into_inner().next().map(|f| f.as_rule()) {
                        Some(Rule::kw_initial) => decl.initial = true,
                        Some(Rule::kw_final) => decl.is_final = true,
                        _ => {}
                    },
                    Rule::ident => decl.name = self.ident(i),
                    _ => {}
                }
            }
            states.push(decl);
        }
        StatesBlock { states, span }
    }

    fn handler(&self, p: Pair<'_, Rule>) -> Handler {
        let span = self.span(&p);
        let mut trigger = Trigger {
            kind: TriggerKind::LegsSettled,
            span,
        };
        let mut in_states = Vec::new();
        let mut block = Block {
            items: Vec::new(),
            span,
        };
        for i in p.into_inner() {
            match i.as_rule() {
                Rule::trigger => trigger = self.trigger(i),
                Rule::in_states => {
                    in_states = i
                        .into_inner()
                        .filter(|x| x.as_rule() == Rule::ident)
                        .map(|x| self.ident(x))
                        .collect()
                }
                Rule::block => block = self.block(i),
                _ => {}
            }
        }
        Handler {
            trigger,
            in_states,
            block,
            span,
        }
    }

    fn trigger(&self, p: Pair<'_, Rule>) -> Trigger {
        let span = self.span(&p);
        let Some(t) = p.into_inner().next() else {
            return Trigger {
                kind: TriggerKind::LegsSettled,
                span,
            };
        };
        let which = t.as_rule();
        let mut inner: Vec<Pair<'_, Rule>> = t.into_inner().collect();
        let kind = match which {
            Rule::trig_initial => TriggerKind::Initial(
                inner
                    .iter()
                    .find(|x| x.as_rule() == Rule::method)
                    .map(|x| x.as_str().to_string())
                    .unwrap_or_default(),
            ),
            Rule::trig_request => TriggerKind::Request(
                inner
                    .first()
                    .map(|x| x.as_str().to_string())
                    .unwrap_or_default(),
            ),
            Rule::trig_response => {
                let lo = inner
                    .first()
                    .map(|x| x.as_str().to_string())
                    .unwrap_or_default();
                let hi = inner.get(1).map(|x| x.as_str().to_string());
                TriggerKind::Response(lo, hi)
            }
            Rule::trig_timer => match inner.pop() {
                Some(id) => TriggerKind::Timer(self.ident(id)),
                None => TriggerKind::LegsSettled,
            },
            Rule::trig_msrp => TriggerKind::Msrp(
                inner
                    .first()
                    .map(|x| x.as_str().to_string())
                    .unwrap_or_default(),
            ),
            Rule::trig_legs => {
                if inner.first().is_some_and(|x| x.as_str() == "changed") {
                    TriggerKind::LegsChanged
                } else {
                    TriggerKind::LegsSettled
                }
            }
            Rule::trig_copy => TriggerKind::Copy(
                inner
                    .first()
                    .map(|x| x.as_str().to_string())
                    .unwrap_or_default(),
            ),
            Rule::trig_shutdown => TriggerKind::Shutdown,
            Rule::trig_leg => TriggerKind::Leg(
                inner
                    .first()
                    .map(|x| x.as_str().to_string())
                    .unwrap_or_default(),
            ),
            _ => TriggerKind::LegsSettled,
        };
        Trigger { kind, span }
    }

    fn block(&self, p: Pair<'_, Rule>) -> Block {
        let span = self.span(&p);
        Block {
            items: p.into_inner().filter_map(|i| self.block_item(i)).collect(),
            span,
        }
    }

    fn block_item(&self, i: Pair<'_, Rule>) -> Option<BlockItem> {
        match i.as_rule() {
            Rule::rule => Some(BlockItem::Rule(self.rule(i, false))),
            Rule::otherwise => Some(BlockItem::Otherwise(self.rule(i, true))),
            Rule::first_block => {
                let span = self.span(&i);
                Some(BlockItem::First(FirstBlock {
                    items: i.into_inner().filter_map(|x| self.block_item(x)).collect(),
                    span,
                }))
            }
            _ => None,
        }
    }

    fn rule(&self, p: Pair<'_, Rule>, otherwise: bool) -> Rule_ {
        let span = self.span(&p);
        let mut name = None;
        let mut clause = None;
        let mut when = None;
        let mut actions = Vec::new();
        let mut kw_span = None;
        for i in p.into_inner() {
            match i.as_rule() {
                Rule::kw_otherwise | Rule::kw_rule => kw_span = Some(self.span(&i)),
                Rule::ident => name = Some(self.ident(i)),
                Rule::clause => clause = Some(self.clause(i)),
                Rule::expr => when = Some(self.expr(i)),
                Rule::actions => actions = i.into_inner().map(|a| self.action(a)).collect(),
                _ => {}
            }
        }
        let name = name.unwrap_or_else(|| Ident {
            name: if otherwise {
                "otherwise".into()
            } else {
                String::new()
            },
            span: kw_span.unwrap_or(span),
        });
        Rule_ {
            name,
            clause,
            when,
            actions,
            span,
        }
    }

    fn action(&self, p: Pair<'_, Rule>) -> Action {
        let span = self.span(&p);
        let which = p.as_rule();
        let mut inner = p.into_inner();
        let kind = match which {
            Rule::act_respond => ActionKind::Respond(self.respond(inner)),
            Rule::act_call => ActionKind::Call(match inner.next() {
                Some(c) => self.clause(c),
                None => ClauseRef {
                    id: String::new(),
                    span,
                },
            }),
            Rule::act_goto => ActionKind::Goto(match inner.next() {
                Some(i) => self.ident(i),
                None => self.missing_ident(span),
            }),
            Rule::act_invite | Rule::act_forward => {
                let r = recipients(inner.next());
                let rest: Vec<_> = inner.collect();
                let body = rest
                    .iter()
                    .find(|p| p.as_rule() == Rule::invite_body)
                    .map(|b| self.invite_items(b.clone()))
                    .unwrap_or_default();
                let sel = selection(rest.into_iter().filter(|p| p.as_rule() == Rule::select));
                if which == Rule::act_invite {
                    ActionKind::InviteEach(r, sel, body)
                } else {
                    ActionKind::ForwardEach(r, sel, body)
                }
            }
            Rule::act_cancel => ActionKind::Cancel,
            Rule::act_bye => ActionKind::Bye,
            Rule::act_cancel_legs => ActionKind::CancelLegs,
            Rule::act_bye_legs => ActionKind::ByeLegs,
            Rule::act_deliver => ActionKind::Deliver(
                inner
                    .next()
                    .map(|body| {
                        body.into_inner()
                            .map(|i| {
                                let span = self.span(&i);
                                let word = i
                                    .into_inner()
                                    .next()
                                    .map(|w| w.as_str().to_string())
                                    .unwrap_or_default();
                                DeliverItem::SuccessReport(word, span)
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            Rule::act_forward_imdn => ActionKind::ForwardImdn,
            Rule::act_accept_sub => ActionKind::AcceptSubscription,
            Rule::act_notify_subs => ActionKind::NotifySubscribers,
            Rule::act_store_copy => ActionKind::StoreCopy,
            Rule::act_outcome => ActionKind::Outcome(match inner.next() {
                Some(k) if k.as_rule() == Rule::outcome_failed => Some(
                    k.into_inner()
                        .find(|i| i.as_rule() == Rule::status)
                        .and_then(|i| {
                            let span = self.span(&i);
                            i.as_str().parse().ok().map(|s| (s, span))
                        }),
                ),
                _ => None,
            }),
            Rule::act_imdn => {
                ActionKind::SendImdn(inner.next().is_some_and(|x| x.as_str() == "delivered"))
            }
            Rule::act_collect_imdn => {
                ActionKind::CollectImdn(inner.next().is_some_and(|x| x.as_str() == "delivered"))
            }
            Rule::act_report => ActionKind::Report(match inner.next() {
                Some(k) if k.as_rule() == Rule::report_failure => {
                    let mut status = None;
                    let mut reason = None;
                    for i in k.into_inner() {
                        match i.as_rule() {
                            Rule::status => {
                                let span = self.span(&i);
                                status = i.as_str().parse().ok().map(|s| (s, span));
                            }
                            Rule::string => reason = Some(self.string(i)),
                            _ => {}
                        }
                    }
                    crate::ast::Report::Failure { status, reason }
                }
                _ => crate::ast::Report::Success,
            }),
            Rule::act_start_timer => {
                let id = match inner.next() {
                    Some(i) => self.ident(i),
                    None => self.missing_ident(span),
                };
                let after = match inner.next() {
                    Some(o) => self.operand(o),
                    None => self.missing_expr(span),
                };
                ActionKind::StartTimer(id, after)
            }
            Rule::act_stop_timer => ActionKind::StopTimer(match inner.next() {
                Some(i) => self.ident(i),
                None => self.missing_ident(span),
            }),
            Rule::act_log => ActionKind::Log(match inner.next() {
                Some(s) => self.string(s),
                None => StrLit {
                    value: String::new(),
                    span,
                },
            }),
            _ => ActionKind::Cancel,
        };
        Action { kind, span }
    }

    fn respond(&self, inner: pest::iterators::Pairs<'_, Rule>) -> Respond {
        let mut r = Respond {
            status: None,
            reason: None,
            items: Vec::new(),
        };
        for i in inner {
            match i.as_rule() {
                Rule::status => {
                    let span = self.span(&i);
                    r.status = i.as_str().parse().ok().map(|s| (s, span));
                }
                Rule::string => r.reason = Some(self.string(i)),
                Rule::respond_body => {
                    for item in i.into_inner() {
                        let ispan = self.span(&item);
                        match item.as_rule() {
                            Rule::resp_header => {
                                let mut it = item.into_inner();
                                let name = it.next().map(|n| self.ident(n));
                                let value = it.next().map(|v| self.string(v));
                                if let (Some(n), Some(v)) = (name, value) {
                                    r.items.push(RespondItem::Header(n, v));
                                }
                            }
                            Rule::resp_contact => {
                                let params = item.into_inner().map(|s| self.string(s)).collect();
                                r.items.push(RespondItem::ContactFocus(ispan, params))
                            }
                            Rule::resp_warning => {
                                let mut code = None;
                                for w in item.into_inner() {
                                    match w.as_rule() {
                                        Rule::status => {
                                            let span = self.span(&w);
                                            code = w.as_str().parse().ok().map(|c| (c, span));
                                        }
                                        Rule::string => {
                                            r.items.push(RespondItem::Warning(code, self.string(w)))
                                        }
                                        _ => {}
                                    }
                                }
                            }
                            Rule::sdp_block => {
                                let items = item.into_inner().map(|s| self.sdp_item(s)).collect();
                                r.items.push(RespondItem::Sdp(items, ispan));
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        r
    }

    /// The items of an `invite each … { … }` block.
    fn invite_items(&self, body: Pair<'_, Rule>) -> Vec<InviteItem> {
        let mut out = Vec::new();
        for item in body.into_inner() {
            let ispan = self.span(&item);
            match item.as_rule() {
                Rule::resp_header => {
                    let mut it = item.into_inner();
                    let name = it.next().map(|n| self.ident(n));
                    let value = it.next().map(|v| self.string(v));
                    if let (Some(n), Some(v)) = (name, value) {
                        out.push(InviteItem::Header(n, v));
                    }
                }
                Rule::resp_contact => {
                    let params = item.into_inner().map(|s| self.string(s)).collect();
                    out.push(InviteItem::ContactFocus(ispan, params));
                }
                Rule::inv_history => out.push(InviteItem::History(ispan)),
                Rule::inv_offer => {
                    let items = item.into_inner().map(|o| self.offer_item(o)).collect();
                    out.push(InviteItem::Offer(items, ispan));
                }
                _ => {}
            }
        }
        out
    }

    fn offer_item(&self, p: Pair<'_, Rule>) -> OfferItem {
        let span = self.span(&p);
        let which = p.as_rule();
        let mut inner = p.into_inner();
        let word = inner
            .next()
            .map(|n| n.as_str().to_string())
            .unwrap_or_default();
        let kind = match which {
            Rule::offer_direction => OfferItemKind::Direction(word),
            Rule::offer_setup => OfferItemKind::Setup(word),
            Rule::offer_wrapped => OfferItemKind::AcceptWrappedTypesOwn,
            Rule::offer_max_size => OfferItemKind::MaxSizeOwn,
            _ => OfferItemKind::Attribute(word, inner.next().map(|v| self.string(v))),
        };
        OfferItem { kind, span }
    }

    fn sdp_item(&self, p: Pair<'_, Rule>) -> SdpItem {
        let span = self.span(&p);
        let which = p.as_rule();
        let mut inner = p.into_inner();
        let kind = match which {
            Rule::sdp_path => SdpItemKind::PathOwn,
            Rule::sdp_media => SdpItemKind::MediaFromOffer,
            Rule::sdp_accept => SdpItemKind::AcceptTypesIntersect,
            Rule::sdp_wrapped => SdpItemKind::AcceptWrappedTypesIntersect,
            Rule::sdp_max_size => SdpItemKind::MaxSizeOwn,
            Rule::sdp_direction => SdpItemKind::DirectionMirror,
            Rule::sdp_setup => SdpItemKind::SetupComplement,
            Rule::sdp_echo => SdpItemKind::Echo(
                inner
                    .next()
                    .map(|n| n.as_str().to_string())
                    .unwrap_or_default(),
            ),
            Rule::sdp_else => {
                let mut status = None;
                let mut reason = None;
                for i in inner {
                    match i.as_rule() {
                        Rule::status => {
                            let span = self.span(&i);
                            status = i.as_str().parse().ok().map(|s| (s, span));
                        }
                        Rule::string => reason = Some(self.string(i)),
                        _ => {}
                    }
                }
                SdpItemKind::Else(status, reason)
            }
            _ => {
                let name = inner
                    .next()
                    .map(|n| n.as_str().to_string())
                    .unwrap_or_default();
                let mut value = None;
                let mut when = None;
                for i in inner {
                    match i.as_rule() {
                        Rule::string => value = Some(self.string(i)),
                        Rule::expr => when = Some(self.expr(i)),
                        _ => {}
                    }
                }
                SdpItemKind::Attribute(name, value, when)
            }
        };
        SdpItem { kind, span }
    }

    fn expr(&self, p: Pair<'_, Rule>) -> Expr {
        match p.as_rule() {
            Rule::expr | Rule::paren => {
                let span = self.span(&p);
                let is_paren = p.as_rule() == Rule::paren;
                let inner = p.into_inner().next();
                let e = match inner {
                    Some(i) => self.expr(i),
                    None => self.missing_expr(span),
                };
                if is_paren {
                    Expr {
                        kind: ExprKind::Paren(Box::new(e)),
                        span,
                    }
                } else {
                    e
                }
            }
            Rule::disj | Rule::conj => {
                let span = self.span(&p);
                let is_or = p.as_rule() == Rule::disj;
                let parts: Vec<Expr> = p
                    .into_inner()
                    .filter(|i| !matches!(i.as_rule(), Rule::kw_or | Rule::kw_and))
                    .map(|i| self.expr(i))
                    .collect();
                if parts.len() == 1 {
                    parts
                        .into_iter()
                        .next()
                        .unwrap_or_else(|| self.missing_expr(span))
                } else if is_or {
                    Expr {
                        kind: ExprKind::Or(parts),
                        span,
                    }
                } else {
                    Expr {
                        kind: ExprKind::And(parts),
                        span,
                    }
                }
            }
            Rule::neg => {
                let span = self.span(&p);
                let mut nots = Vec::new();
                let mut body = None;
                for i in p.into_inner() {
                    match i.as_rule() {
                        Rule::not_op => nots.push(self.span(&i)),
                        _ => body = Some(self.expr(i)),
                    }
                }
                let mut e = body.unwrap_or_else(|| self.missing_expr(span));
                for s in nots.into_iter().rev() {
                    let span = s.to(e.span);
                    e = Expr {
                        kind: ExprKind::Not(Box::new(e)),
                        span,
                    };
                }
                e
            }
            Rule::comparison => {
                let span = self.span(&p);
                let mut it = p.into_inner();
                let lhs = match it.next() {
                    Some(o) => self.operand(o),
                    None => self.missing_expr(span),
                };
                match (it.next(), it.next()) {
                    (Some(op), Some(rhs)) => {
                        let op = match op.as_str() {
                            "==" => CmpOp::Eq,
                            "!=" => CmpOp::Ne,
                            "<=" => CmpOp::Le,
                            ">=" => CmpOp::Ge,
                            "<" => CmpOp::Lt,
                            ">" => CmpOp::Gt,
                            _ => CmpOp::Contains,
                        };
                        Expr {
                            kind: ExprKind::Cmp(op, Box::new(lhs), Box::new(self.operand(rhs))),
                            span,
                        }
                    }
                    _ => lhs,
                }
            }
            _ => self.operand(p),
        }
    }

    fn operand(&self, p: Pair<'_, Rule>) -> Expr {
        let span = self.span(&p);
        match p.as_rule() {
            Rule::operand => match p.into_inner().next() {
                Some(i) => self.operand(i),
                None => self.missing_expr(span),
            },
            Rule::paren => self.expr(p),
            Rule::quantifier => {
                let mut quant = Quant::Any;
                let mut var = None;
                let mut list = None;
                let mut body = None;
                for i in p.into_inner() {
                    match i.as_rule() {
                        Rule::quant_kind => {
                            quant = match i.as_str() {
                                "all" => Quant::All,
                                "none" => Quant::None,
                                _ => Quant::Any,
                            }
                        }
                        Rule::ident => var = Some(self.ident(i)),
                        Rule::reference => list = Some(self.operand(i)),
                        Rule::paren => body = Some(self.expr(i)),
                        _ => {}
                    }
                }
                Expr {
                    kind: ExprKind::Quant {
                        quant,
                        var: var.unwrap_or_else(|| self.missing_ident(span)),
                        list: Box::new(list.unwrap_or_else(|| self.missing_expr(span))),
                        body: Box::new(body.unwrap_or_else(|| self.missing_expr(span))),
                    },
                    span,
                }
            }
            Rule::literal => {
                let lit = match p.into_inner().next() {
                    Some(l) => match l.as_rule() {
                        Rule::duration => Lit::DurationMs(parse_duration(l.as_str())),
                        Rule::int => Lit::Int(l.as_str().parse().unwrap_or(i64::MAX)),
                        Rule::string => Lit::Str(self.string(l).value),
                        Rule::boolean => Lit::Bool(l.as_str() == "true"),
                        _ => Lit::Bool(false),
                    },
                    None => Lit::Bool(false),
                };
                Expr {
                    kind: ExprKind::Lit(lit),
                    span,
                }
            }
            Rule::reference => {
                let mut path = Vec::new();
                let mut args = None;
                for i in p.into_inner() {
                    match i.as_rule() {
                        Rule::ident => path.push(self.ident(i)),
                        Rule::call_args => {
                            args = Some(i.into_inner().map(|a| self.expr(a)).collect())
                        }
                        _ => {}
                    }
                }
                Expr {
                    kind: ExprKind::Ref { path, args },
                    span,
                }
            }
            _ => self.expr(p),
        }
    }
}

type Rule_ = crate::ast::Rule;

fn recipients(p: Option<Pair<'_, Rule>>) -> Recipients {
    match p.map(|p| p.as_str()) {
        Some("group_members") => Recipients::GroupMembers,
        _ => Recipients::RecipientList,
    }
}

/// The `without originator` / `distinct` words after a fan-out's recipients.
fn selection<'a>(rest: impl Iterator<Item = Pair<'a, Rule>>) -> crate::ast::Selection {
    let mut s = crate::ast::Selection::default();
    for p in rest {
        match p.into_inner().next().map(|w| w.as_rule()) {
            Some(Rule::sel_without) => s.without_originator = true,
            Some(Rule::sel_distinct) => s.distinct = true,
            _ => {}
        }
    }
    s
}

/// Milliseconds of a duration literal (`32s`, `500ms`); saturates instead of overflowing.
fn parse_duration(s: &str) -> u64 {
    if let Some(ms) = s.strip_suffix("ms") {
        ms.parse().unwrap_or(u64::MAX)
    } else if let Some(secs) = s.strip_suffix('s') {
        secs.parse::<u64>()
            .map(|v| v.saturating_mul(1000))
            .unwrap_or(u64::MAX)
    } else {
        0
    }
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                // Interpolation braces stay escaped; `model` resolves them.
                Some(c @ ('{' | '}')) => {
                    out.push('\\');
                    out.push(c);
                }
                Some(c) => out.push(c),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Words a spec editor understands for the grammar's rules.
fn rule_word(r: &Rule) -> &'static str {
    match r {
        Rule::EOI => "end of file",
        Rule::import => "`import`",
        Rule::condition_def | Rule::kw_condition => "`condition`",
        Rule::procedure => "`procedure`",
        Rule::states => "`states { … }`",
        Rule::state_decl | Rule::state_flag => "a state declaration",
        Rule::timer_decl => "`timer NAME`",
        Rule::handler => "`on …` handler",
        Rule::in_states | Rule::kw_in => "`in`",
        Rule::trigger
        | Rule::trig_initial
        | Rule::trig_request
        | Rule::trig_response
        | Rule::trig_timer
        | Rule::trig_msrp
        | Rule::trig_legs
        | Rule::trig_leg
        | Rule::trig_copy
        | Rule::trig_shutdown => {
            "a trigger (`initial INVITE`, `request BYE`, `response 2xx`, `timer B`, `msrp …`, `legs settled`, `legs changed`, `leg cancelled`, `copy delivered`, `shutdown`)"
        }
        Rule::leg_event => "a leg event (`cancelled`, `unroutable`)",
        Rule::copy_event => "a copy event (`delivered`, `failed`, `unroutable`, `expired`)",
        Rule::method => "a SIP method in capitals",
        Rule::status_pattern => "a status code or pattern like `2xx`",
        Rule::msrp_event => {
            "an MSRP event (`connected`, `message`, `delivered`, `failed`, `closed`)"
        }
        Rule::block => "`{`",
        Rule::first_block | Rule::kw_first => "`first { … }`",
        Rule::rule | Rule::kw_rule => "`rule`",
        Rule::otherwise | Rule::kw_otherwise => "`otherwise`",
        Rule::actions => "an action",
        Rule::clause => "a clause reference like `[7.9.1.4]`",
        Rule::clause_id => "a clause id like `7.9.1.4`",
        Rule::act_respond => "`respond`",
        Rule::status => "a three-digit status code",
        Rule::respond_body => "`{ … }` after respond",
        Rule::resp_header => "`header NAME = \"value\"`",
        Rule::header_name => "a header name",
        Rule::resp_contact => "`contact focus`",
        Rule::resp_warning => "`warning [CODE] \"text\"`",
        Rule::sdp_block => "`sdp { … }`",
        Rule::sdp_else => "`else STATUS \"reason\"`",
        Rule::sdp_path
        | Rule::sdp_media
        | Rule::sdp_accept
        | Rule::sdp_wrapped
        | Rule::sdp_max_size
        | Rule::sdp_direction
        | Rule::sdp_setup
        | Rule::sdp_echo
        | Rule::sdp_attribute => "an SDP answer item",
        Rule::attr_name => "an SDP attribute name",
        Rule::act_call => "`call CLAUSE`",
        Rule::act_goto => "`goto STATE`",
        Rule::act_invite => "`invite each …`",
        Rule::act_forward => "`forward each …`",
        Rule::recipients => "`recipient_list` or `group_members`",
        Rule::act_cancel => "`cancel`",
        Rule::act_bye => "`bye`",
        Rule::act_cancel_legs => "`cancel legs`",
        Rule::act_bye_legs => "`bye legs`",
        Rule::act_deliver => "`deliver`",
        Rule::deliver_body => "`{ … }` after deliver",
        Rule::dlv_success => "`success-report yes` or `success-report no`",
        Rule::act_imdn => "`send imdn delivered`",
        Rule::act_collect_imdn => "`collect imdn delivered`",
        Rule::act_forward_imdn => "`forward imdn`",
        Rule::act_accept_sub => "`accept subscription`",
        Rule::act_notify_subs => "`notify subscribers`",
        Rule::act_store_copy => "`store copy`",
        Rule::act_outcome | Rule::outcome_delivered | Rule::outcome_failed => {
            "`outcome delivered` or `outcome failed [STATUS]`"
        }
        Rule::act_report => "`report`",
        Rule::report_success => "`success`",
        Rule::report_failure => "`failure`",
        Rule::act_start_timer => "`start timer`",
        Rule::act_stop_timer => "`stop timer`",
        Rule::act_log => "`log`",
        Rule::expr | Rule::disj | Rule::conj | Rule::neg | Rule::comparison => "an expression",
        Rule::not_op | Rule::kw_not => "`not`",
        Rule::cmp_op | Rule::kw_contains => "a comparison operator (`==`, `!=`, `<`, `contains` …)",
        Rule::operand | Rule::reference => "a value (fact, literal, condition name)",
        Rule::paren => "`(`",
        Rule::quantifier | Rule::quant_kind | Rule::kw_any | Rule::kw_all | Rule::kw_none => {
            "a quantifier (`any x in … where (…)`)"
        }
        Rule::literal | Rule::boolean | Rule::kw_true | Rule::kw_false => "a literal",
        Rule::call_args => "`(`",
        Rule::duration => "a duration like `32s`",
        Rule::int => "a number",
        Rule::string | Rule::str_inner => "a string in double quotes",
        Rule::ident => "a name",
        Rule::kw_and => "`and`",
        Rule::kw_or => "`or`",
        Rule::kw_where => "`where`",
        Rule::kw_when => "`when`",
        Rule::kw_initial => "`initial`",
        Rule::kw_final => "`final`",
        Rule::file => "a spec item",
        _ => "more input",
    }
}

fn syntax_error(file: usize, text: &str, e: pest::error::Error<Rule>) -> Diagnostic {
    let (start, end) = match e.location {
        InputLocation::Pos(p) => (p, p),
        InputLocation::Span((s, e)) => (s, e),
    };
    if let ErrorVariant::ParsingError { positives, .. } = &e.variant
        && let Some(d) = misspelt_trigger(file, text, start, positives)
    {
        return d;
    }
    // Point at the offending token (up to the next whitespace) so the caret is visible.
    let end = if end > start {
        end
    } else {
        let rest = text.get(start..).unwrap_or("");
        let tok = rest
            .char_indices()
            .find(|(_, c)| c.is_whitespace())
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let tok = if tok == 0 {
            rest.chars().next().map(|c| c.len_utf8()).unwrap_or(0)
        } else {
            tok
        };
        start + tok
    };
    let found = text
        .get(start..end)
        .filter(|s| !s.is_empty())
        .map(|s| format!("`{s}`"))
        .unwrap_or_else(|| "end of file".to_string());
    let (message, label) = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let mut words: Vec<&str> = positives.iter().map(rule_word).collect();
            words.sort_unstable();
            words.dedup();
            let expected = match words.len() {
                0 => "something else".to_string(),
                1 => words[0].to_string(),
                _ => {
                    let (last, rest) = words.split_last().unwrap_or((&"", &[]));
                    format!("{} or {}", rest.join(", "), last)
                }
            };
            (
                format!("expected {expected}, found {found}"),
                format!("expected {expected}"),
            )
        }
        ErrorVariant::CustomError { message } => (message.clone(), message.clone()),
    };
    Diagnostic::new(Code::Syntax, message, Span { file, start, end }, label)
        .help("see docs/language.md for the grammar of each construct")
}

/// A trigger word the grammar does not know (`on shutdwon`, `on copy unroutabel`): the
/// diagnostic names the wrong word and the closest trigger, from the vocabulary the grammar
/// declares ([`crate::vocab`]). `None` when the parser expected something else at `start`.
fn misspelt_trigger(
    file: usize,
    text: &str,
    start: usize,
    expected: &[Rule],
) -> Option<Diagnostic> {
    let rest = text.get(start..)?;
    let len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(rest.len());
    let word = rest.get(..len).filter(|w| !w.is_empty())?;
    let names: Vec<String> = expected.iter().map(|r| format!("{r:?}")).collect();
    let forms = crate::vocab::triggers();
    let span = Span {
        file,
        start,
        end: start + len,
    };
    // The second word of a form with a closed set of words (`copy unroutable`).
    if let Some(form) = forms
        .iter()
        .find(|f| f.event_rule.as_ref().is_some_and(|r| names.contains(r)))
    {
        let known: Vec<&str> = form.events.iter().map(String::as_str).collect();
        let head = &form.head;
        let help = match crate::check::types::closest(word, &known) {
            Some(k) => format!("did you mean `{head} {k}`?"),
            None => format!(
                "`{head}` is followed by one of {}",
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        return Some(
            Diagnostic::new(
                Code::Syntax,
                format!("unknown trigger `{head} {word}`"),
                span,
                format!("not a word that follows `{head}`"),
            )
            .help(help),
        );
    }
    // The first word after `on`.
    if names
        .iter()
        .any(|n| n == "trigger" || n.starts_with("trig_"))
    {
        let known: Vec<&str> = forms.iter().map(|f| f.head.as_str()).collect();
        let help = crate::check::types::suggest(word, &known, "a trigger starts with");
        return Some(
            Diagnostic::new(
                Code::Syntax,
                format!("unknown trigger `{word}`"),
                span,
                "not a trigger",
            )
            .help(help),
        );
    }
    None
}

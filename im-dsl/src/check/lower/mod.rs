//! Name resolution and lowering AST → [`model::Spec`], in one pass that also reports what
//! only the lowering can see: undefined and duplicate names (E0002, E0003), unknown call
//! targets (E0004), types (E0005, via `types`), misplaced `otherwise` (E0006), unknown
//! states (E0009), `respond` without status (E0011), missing clause references (E0012),
//! out-of-range status codes and patterns (E0016), malformed states blocks (E0017) and
//! ambiguous call targets (E0018: a `call`'s clause is implemented by several procedures
//! with an `on initial` handler; only those are call targets).
//!
//! Besides the model it returns a [`Side`] table with the spans the later passes (overlap,
//! reachability, condition cycles) need to point at, index-aligned with the model.

mod reply;

use super::reason::standard_reason;
use super::text::lower_text;
use super::types::{ExprCx, plain_braces, suggest};
use crate::ast::{self, ActionKind, BlockItem, Span, TriggerKind};
use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::model::{self, Loc, Type};
use crate::source::Sources;
use std::collections::HashMap;

/// The runtime's timers a spec names without declaring them (`on timer lifetime`).
const BUILTIN_TIMERS: [(&str, model::TimerRef); 4] = [
    ("B", model::TimerRef::B),
    ("F", model::TimerRef::F),
    ("H", model::TimerRef::H),
    ("lifetime", model::TimerRef::Lifetime),
];

/// Spans of a lowered rule.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RuleSide {
    /// Its name (or the `otherwise` keyword).
    pub name: Span,
    /// Its condition lowered without error (later passes skip rules that did not).
    pub ok: bool,
}

/// Spans of a lowered alternative.
#[derive(Clone, Debug)]
pub(crate) enum AltSide {
    Rule(RuleSide),
    First {
        /// The `first` keyword up to its brace.
        span: Span,
        rules: Vec<RuleSide>,
        otherwise: Option<RuleSide>,
    },
}

/// Spans of a lowered handler.
#[derive(Clone, Debug)]
pub(crate) struct HandlerSide {
    pub trigger: Span,
    /// The trigger resolved (a placeholder stands in otherwise).
    pub trigger_ok: bool,
    pub alts: Vec<AltSide>,
    pub otherwise: Option<RuleSide>,
}

/// Spans of a lowered procedure.
#[derive(Clone, Debug, Default)]
pub(crate) struct ProcSide {
    /// Declaration of each state (the procedure's name for the implicit one).
    pub states: Vec<Span>,
    pub handlers: Vec<HandlerSide>,
    /// A state name or the initial state was wrong: reachability would only echo that.
    pub states_broken: bool,
}

/// Spans for the passes after lowering.
#[derive(Clone, Debug, Default)]
pub(crate) struct Side {
    /// Name of each condition.
    pub conditions: Vec<Span>,
    /// Conditions each condition refers to, with where.
    pub cond_refs: Vec<Vec<(usize, Span)>>,
    pub procs: Vec<ProcSide>,
}

struct Lowerer<'a> {
    sources: &'a Sources,
    diags: &'a mut Diagnostics,
    conditions: HashMap<String, usize>,
    /// The procedures implementing each clause id, in spec order.
    by_clause: HashMap<String, Vec<ClauseImpl>>,
    /// An unknown state was named in the procedure being lowered.
    bad_state: bool,
}

/// A procedure implementing a clause, as a `call` target candidate.
#[derive(Clone)]
struct ClauseImpl {
    index: usize,
    name: String,
    span: Span,
    /// It has an `on initial …` handler. Only such procedures are call targets: the callee
    /// runs on the caller's event, an initial request. Leg procedures (reacting to the
    /// responses to `invite each`) share their inviter's clause on purpose — the generator
    /// pairs a leg with its inviter by clause (`codegen::invitee_leg_of`) — and are never
    /// called.
    callable: bool,
}

pub(crate) fn lower(
    sources: &Sources,
    files: &[ast::File],
    diags: &mut Diagnostics,
) -> (model::Spec, Side) {
    let mut l = Lowerer {
        sources,
        diags,
        conditions: HashMap::new(),
        by_clause: HashMap::new(),
        bad_state: false,
    };
    let conds: Vec<&ast::ConditionDef> = items(files)
        .filter_map(|i| match i {
            ast::Item::Condition(c) => Some(c),
            _ => None,
        })
        .collect();
    let procs: Vec<&ast::Procedure> = items(files)
        .filter_map(|i| match i {
            ast::Item::Procedure(p) => Some(p),
            _ => None,
        })
        .collect();

    // Names first, so that definitions may come in any order and across files.
    let mut first_cond: HashMap<&str, Span> = HashMap::new();
    let mut kept = Vec::new();
    for c in &conds {
        if let Some(prev) = first_cond.get(c.name.name.as_str()) {
            l.duplicate("condition", &c.name, *prev);
            continue;
        }
        first_cond.insert(&c.name.name, c.name.span);
        l.conditions.insert(c.name.name.clone(), kept.len());
        kept.push(*c);
    }
    let mut first_proc: HashMap<&str, Span> = HashMap::new();
    for (i, p) in procs.iter().enumerate() {
        if let Some(prev) = first_proc.get(p.name.name.as_str()) {
            l.duplicate("procedure", &p.name, *prev);
        } else {
            first_proc.insert(&p.name.name, p.name.span);
        }
        if let Some(c) = &p.clause {
            // A callee runs on the caller's initial request, or (a procedure that watches
            // copies, like the delivery-reports extension) lives on for the session's
            // later `copy …` events without taking the initial request itself.
            let callable = p.handlers.iter().any(|h| {
                matches!(
                    h.trigger.kind,
                    TriggerKind::Initial(_) | TriggerKind::Copy(_)
                )
            });
            l.by_clause
                .entry(c.id.clone())
                .or_default()
                .push(ClauseImpl {
                    index: i,
                    name: p.name.name.clone(),
                    span: p.name.span,
                    callable,
                });
        }
    }

    let mut side = Side::default();
    let mut conditions = Vec::new();
    for c in kept {
        let mut cx = ExprCx::new(&l.conditions, l.diags);
        let expr = cx
            .lower_as(&c.expr, Type::Bool, "a condition")
            .unwrap_or(model::Expr::Bool(false));
        side.conditions.push(c.name.span);
        side.cond_refs.push(cx.cond_refs);
        conditions.push(model::Condition {
            name: c.name.name.clone(),
            clause: c.clause.as_ref().map(|c| c.id.clone()),
            expr,
            loc: l.loc(c.name.span),
        });
    }
    let mut procedures = Vec::new();
    for p in procs {
        let (mp, ps) = l.procedure(p);
        procedures.push(mp);
        side.procs.push(ps);
    }
    let spec = model::Spec {
        files: sources
            .files
            .iter()
            .map(|f| (f.display.clone(), f.path.clone()))
            .collect(),
        conditions,
        procedures,
    };
    (spec, side)
}

fn items(files: &[ast::File]) -> impl Iterator<Item = &ast::Item> {
    files.iter().flat_map(|f| f.items.iter())
}

/// What a procedure body resolves names against.
#[derive(Clone)]
struct ProcCx {
    states: HashMap<String, usize>,
    timers: HashMap<String, usize>,
    explicit_states: bool,
    /// An invitee-leg procedure (responses, no initial request): it has no legs of its own.
    leg: bool,
    /// The handler being lowered is `copy unroutable` / `copy expired`: its `outcome failed
    /// STATUS` is what the copy that was not sent fails with.
    copy_unsent: bool,
}

impl Lowerer<'_> {
    fn loc(&self, span: Span) -> Loc {
        match self.sources.get(span.file) {
            Some(f) => {
                let (line, col) = f.line_col(span.start);
                Loc {
                    file: f.display.clone(),
                    line,
                    col,
                }
            }
            None => Loc {
                file: String::new(),
                line: 0,
                col: 0,
            },
        }
    }

    /// The one procedure with an `on initial` handler among those implementing the called
    /// clause: none is E0004, several are E0018.
    fn call_target(&mut self, c: &ast::ClauseRef, impls: &[ClauseImpl]) -> Option<usize> {
        let targets: Vec<&ClauseImpl> = impls.iter().filter(|p| p.callable).collect();
        if let [one] = targets.as_slice() {
            return Some(one.index);
        }
        let d = if targets.is_empty() {
            let mut d = Diagnostic::new(
                Code::UnknownProcedure,
                format!(
                    "no procedure that takes an initial request implements clause {}",
                    c.id
                ),
                c.span,
                "no call target",
            );
            for p in impls {
                d = d.note(
                    p.span,
                    format!(
                        "`{}` implements {} but has no `on initial` handler",
                        p.name, c.id
                    ),
                );
            }
            d.help(
                "a called procedure runs on the caller's initial request: give the target an \
                 `on initial METHOD` handler, or call the clause of a procedure that has one",
            )
        } else {
            let mut d = Diagnostic::new(
                Code::AmbiguousCall,
                format!(
                    "{} procedures that take an initial request implement clause {}",
                    targets.len(),
                    c.id
                ),
                c.span,
                "ambiguous call target",
            );
            for p in &targets {
                d = d.note(p.span, format!("`{}` implements {}", p.name, c.id));
            }
            d.help(
                "make the target unique: give the others a distinct clause id (only one procedure \
                 with an `on initial` handler may implement a called clause; an invitee-leg \
                 procedure, which has none, may share its inviter's clause)",
            )
        };
        self.diags.push(d);
        None
    }

    fn duplicate(&mut self, what: &str, name: &ast::Ident, prev: Span) {
        self.diags.push(
            Diagnostic::new(
                Code::Duplicate,
                format!("the {what} `{}` is defined twice", name.name),
                name.span,
                format!("second {what} named `{}`", name.name),
            )
            .note(prev, "first defined here")
            .help(format!("rename one of them; {what} names must be unique")),
        );
    }

    fn need_clause(&mut self, clause: &Option<ast::ClauseRef>, at: Span, what: &str) -> String {
        match clause {
            Some(c) => c.id.clone(),
            None => {
                self.diags.push(
                    Diagnostic::new(
                        Code::NoClause,
                        format!("{what} has no clause reference"),
                        at,
                        "add the clause it implements, e.g. `[5.2.1.1]`",
                    )
                    .help("every procedure and rule names the clause it implements, so a running server can say which clause produced each message"),
                );
                String::new()
            }
        }
    }

    fn procedure(&mut self, p: &ast::Procedure) -> (model::Procedure, ProcSide) {
        let clause = self.need_clause(
            &p.clause,
            p.name.span,
            &format!("procedure `{}`", p.name.name),
        );
        let mut side = ProcSide::default();
        self.bad_state = false;

        // States.
        let mut states = Vec::new();
        let mut cx = ProcCx {
            states: HashMap::new(),
            timers: HashMap::new(),
            explicit_states: !p.states.is_empty(),
            leg: p
                .handlers
                .iter()
                .any(|h| matches!(h.trigger.kind, ast::TriggerKind::Response(..)))
                && !p
                    .handlers
                    .iter()
                    .any(|h| matches!(h.trigger.kind, ast::TriggerKind::Initial(_))),
            copy_unsent: false,
        };
        let mut initial = Vec::new();
        for (k, b) in p.states.iter().enumerate() {
            if k > 0 {
                self.diags.push(
                    Diagnostic::new(
                        Code::BadStates,
                        format!("procedure `{}` has several `states` blocks", p.name.name),
                        b.span,
                        "second `states` block",
                    )
                    .note(p.states[0].span, "first block")
                    .help("declare all states in one block"),
                );
            }
            for d in &b.states {
                if let Some(&prev) = cx.states.get(&d.name.name) {
                    let prev_span = side.states[prev];
                    self.duplicate("state", &d.name, prev_span);
                    continue;
                }
                if d.initial {
                    initial.push((states.len(), d.span));
                }
                cx.states.insert(d.name.name.clone(), states.len());
                side.states.push(d.name.span);
                states.push(model::State {
                    name: d.name.name.clone(),
                    is_final: d.is_final,
                    loc: self.loc(d.name.span),
                });
            }
        }
        let initial_idx = if p.states.is_empty() {
            cx.states.insert("active".into(), 0);
            side.states.push(p.name.span);
            states.push(model::State {
                name: "active".into(),
                is_final: true,
                loc: self.loc(p.name.span),
            });
            0
        } else {
            match initial.as_slice() {
                [] => {
                    self.diags.push(
                        Diagnostic::new(
                            Code::BadStates,
                            format!("procedure `{}` has no initial state", p.name.name),
                            p.states[0].span,
                            "no state here is marked `initial`",
                        )
                        .help("mark the state the machine starts in with `initial`"),
                    );
                    0
                }
                [(i, _)] => *i,
                [(i, first), rest @ ..] => {
                    side.states_broken = true;
                    for (_, s) in rest {
                        self.diags.push(
                            Diagnostic::new(
                                Code::BadStates,
                                format!("procedure `{}` has several initial states", p.name.name),
                                *s,
                                "second initial state",
                            )
                            .note(*first, "first initial state")
                            .help("a machine starts in exactly one state; keep one `initial`"),
                        );
                    }
                    *i
                }
            }
        };

        // Timers.
        let mut timers = Vec::new();
        let mut timer_spans: Vec<Span> = Vec::new();
        for t in &p.timers {
            if let Some(&prev) = cx.timers.get(&t.name) {
                self.duplicate("timer", t, timer_spans[prev]);
                continue;
            }
            if BUILTIN_TIMERS.iter().any(|(n, _)| *n == t.name) {
                let (what, by) = match t.name.as_str() {
                    "lifetime" => ("the session's lifetime", "the runtime's"),
                    _ => ("an RFC 3261 timer", "already defined by RFC 3261"),
                };
                self.diags.push(
                    Diagnostic::new(
                        Code::Duplicate,
                        format!("the timer `{}` is {what}", t.name),
                        t.span,
                        by,
                    )
                    .help(
                        "give the timer another name; `B`, `F` and `H` are the transaction timers, `lifetime` the session's",
                    ),
                );
                continue;
            }
            cx.timers.insert(t.name.clone(), timers.len());
            timer_spans.push(t.span);
            timers.push(t.name.clone());
        }

        // Handlers.
        let mut rule_names: HashMap<String, Span> = HashMap::new();
        let mut handlers = Vec::new();
        for h in &p.handlers {
            let (mh, hs) = self.handler(h, &cx, &mut rule_names);
            handlers.push(mh);
            side.handlers.push(hs);
        }
        side.states_broken |= self.bad_state;
        let mp = model::Procedure {
            name: p.name.name.clone(),
            clause,
            title: p.title.as_ref().map(|t| plain_braces(&t.value)),
            states,
            initial: initial_idx,
            timers,
            handlers,
            explicit_states: cx.explicit_states,
            loc: self.loc(p.name.span),
        };
        (mp, side)
    }

    fn timer(&mut self, id: &ast::Ident, cx: &ProcCx) -> Option<model::TimerRef> {
        if let Some(&i) = cx.timers.get(&id.name) {
            return Some(model::TimerRef::Spec(i));
        }
        match BUILTIN_TIMERS.iter().find(|(n, _)| *n == id.name) {
            Some((_, t)) => Some(*t),
            None => {
                let mut known: Vec<&str> = cx.timers.keys().map(String::as_str).collect();
                // A one- or two-letter name is one edit from `B`/`F`/`H` whatever it is, so
                // only a longer name is matched against the runtime's timers.
                if id.name.len() > 2 {
                    known.extend(BUILTIN_TIMERS.iter().map(|(n, _)| *n));
                }
                known.sort_unstable();
                let s = suggest(&id.name, &known, "");
                self.diags.push(
                    Diagnostic::new(
                        Code::Undefined,
                        format!("cannot find timer `{}`", id.name),
                        id.span,
                        "not declared in this procedure",
                    )
                    .help(if s.is_empty() {
                        format!("declare it with `timer {}` in the procedure, or use the RFC 3261 timers `B`, `F`, `H`", id.name)
                    } else {
                        s
                    }),
                );
                None
            }
        }
    }

    fn state(&mut self, id: &ast::Ident, cx: &ProcCx) -> Option<usize> {
        if let Some(&i) = cx.states.get(&id.name) {
            return Some(i);
        }
        self.bad_state = true;
        let mut known: Vec<&str> = cx.states.keys().map(String::as_str).collect();
        known.sort_unstable();
        let help = if cx.explicit_states {
            suggest(&id.name, &known, "the states are")
        } else {
            "this procedure declares no states; add a `states { initial … }` block".to_string()
        };
        self.diags.push(
            Diagnostic::new(
                Code::UnknownState,
                format!("no state `{}` in this procedure", id.name),
                id.span,
                "unknown state",
            )
            .help(help),
        );
        None
    }

    fn handler(
        &mut self,
        h: &ast::Handler,
        cx: &ProcCx,
        names: &mut HashMap<String, Span>,
    ) -> (model::Handler, HandlerSide) {
        let trigger = self.trigger(&h.trigger, cx);
        let trigger_ok = trigger.is_some();
        let unsent_cx;
        let cx = match trigger {
            Some(model::Trigger::Copy(c)) if c.is_unsent() => {
                unsent_cx = ProcCx {
                    copy_unsent: true,
                    ..cx.clone()
                };
                &unsent_cx
            }
            _ => cx,
        };
        let mut states = Vec::new();
        for s in &h.in_states {
            if let Some(i) = self.state(s, cx)
                && !states.contains(&i)
            {
                states.push(i);
            }
        }
        let (alts, alt_sides, otherwise, ow_side) = self.block(&h.block.items, cx, names, false);
        let mh = model::Handler {
            trigger: trigger.unwrap_or(model::Trigger::LegsSettled),
            states,
            alternatives: alts,
            otherwise,
            loc: self.loc(h.trigger.span),
        };
        (
            mh,
            HandlerSide {
                trigger: h.trigger.span,
                trigger_ok,
                alts: alt_sides,
                otherwise: ow_side,
            },
        )
    }

    #[allow(clippy::type_complexity)]
    fn block(
        &mut self,
        items: &[BlockItem],
        cx: &ProcCx,
        names: &mut HashMap<String, Span>,
        in_first: bool,
    ) -> (
        Vec<model::Alternative>,
        Vec<AltSide>,
        Option<model::Rule>,
        Option<RuleSide>,
    ) {
        let mut alts = Vec::new();
        let mut sides = Vec::new();
        let mut otherwise: Option<(model::Rule, RuleSide)> = None;
        for item in items {
            let after = otherwise.as_ref().map(|(_, s)| s.name);
            match item {
                BlockItem::Rule(r) => {
                    let (mr, rs) = self.rule(r, cx, names, false);
                    if let Some(ow) = after {
                        let what = format!("rule `{}`", r.name.name);
                        let head = Span {
                            end: r.name.span.end.max(r.span.start),
                            ..r.span
                        };
                        self.after_otherwise(head, ow, &what, in_first);
                    } else {
                        alts.push(model::Alternative::Rule(mr));
                        sides.push(AltSide::Rule(rs));
                    }
                }
                BlockItem::Otherwise(r) => {
                    let (mr, rs) = self.rule(r, cx, names, true);
                    if let Some(ow) = after {
                        let head = Span {
                            end: r.span.start + "otherwise".len().min(r.span.end - r.span.start),
                            ..r.span
                        };
                        self.after_otherwise(head, ow, "a second `otherwise`", in_first);
                    } else {
                        otherwise = Some((mr, rs));
                    }
                }
                BlockItem::First(f) => {
                    let head = Span {
                        file: f.span.file,
                        start: f.span.start,
                        end: (f.span.start + "first".len()).min(f.span.end),
                    };
                    let (inner, inner_sides, ow, ow_side) = self.block(&f.items, cx, names, true);
                    let mut rules = Vec::new();
                    let mut rule_sides = Vec::new();
                    for (a, s) in inner.into_iter().zip(inner_sides) {
                        if let (model::Alternative::Rule(r), AltSide::Rule(s)) = (a, s) {
                            rules.push(r);
                            rule_sides.push(s);
                        }
                    }
                    if let Some(ow) = after {
                        self.after_otherwise(head, ow, "`first` group", in_first);
                    } else {
                        alts.push(model::Alternative::First {
                            rules,
                            otherwise: ow,
                        });
                        sides.push(AltSide::First {
                            span: head,
                            rules: rule_sides,
                            otherwise: ow_side,
                        });
                    }
                }
            }
        }
        let (ow, ow_side) = match otherwise {
            Some((r, s)) => (Some(r), Some(s)),
            None => (None, None),
        };
        (alts, sides, ow, ow_side)
    }

    fn after_otherwise(&mut self, at: Span, ow: Span, what: &str, in_first: bool) {
        let scope = if in_first { "`first` group" } else { "handler" };
        self.diags.push(
            Diagnostic::new(
                Code::AfterOtherwise,
                format!("{what} after the `otherwise` of this {scope}"),
                at,
                "never considered: `otherwise` must come last",
            )
            .note(ow, "the `otherwise` of this {scope}".replace("{scope}", scope))
            .help(format!(
                "a {scope} has at most one `otherwise`, and it closes the {scope}; move this before it or remove it"
            )),
        );
    }

    fn rule(
        &mut self,
        r: &ast::Rule,
        cx: &ProcCx,
        names: &mut HashMap<String, Span>,
        is_otherwise: bool,
    ) -> (model::Rule, RuleSide) {
        let what = if is_otherwise {
            "this `otherwise`".to_string()
        } else {
            format!("rule `{}`", r.name.name)
        };
        let clause = self.need_clause(&r.clause, r.name.span, &what);
        // An unnamed `otherwise` is called `otherwise` in every handler; only written
        // names must be unique.
        let written = !(r.name.name.is_empty() || is_otherwise && r.name.name == "otherwise");
        if written {
            if let Some(prev) = names.get(&r.name.name) {
                self.duplicate("rule", &r.name, *prev);
            } else {
                names.insert(r.name.name.clone(), r.name.span);
            }
        }
        let mut ok = true;
        let condition = match &r.when {
            Some(w) => {
                let mut ecx = ExprCx::new(&self.conditions, self.diags);
                let c = ecx.lower_as(w, Type::Bool, "a rule condition");
                ok = c.is_some();
                c
            }
            None => None,
        };
        let actions = r
            .actions
            .iter()
            .filter_map(|a| self.action(a, cx))
            .collect();
        (
            model::Rule {
                name: r.name.name.clone(),
                clause,
                condition,
                actions,
                loc: self.loc(r.name.span),
            },
            RuleSide {
                name: r.name.span,
                ok,
            },
        )
    }

    fn action(&mut self, a: &ast::Action, cx: &ProcCx) -> Option<model::Action> {
        Some(match &a.kind {
            ActionKind::Respond(r) => model::Action::Respond(self.respond(r, a.span)?),
            ActionKind::Call(c) => match self.by_clause.get(&c.id) {
                Some(impls) => {
                    let impls = impls.clone();
                    model::Action::Call(self.call_target(c, &impls)?)
                }
                None => {
                    let mut known: Vec<&str> = self.by_clause.keys().map(String::as_str).collect();
                    known.sort_unstable();
                    let help = if known.is_empty() {
                        "no procedure in this spec has a clause reference; import the file that implements it".to_string()
                    } else {
                        format!(
                            "procedures exist for {}; import the file that implements {} or fix the clause id",
                            known
                                .iter()
                                .map(|k| format!("`{k}`"))
                                .collect::<Vec<_>>()
                                .join(", "),
                            c.id
                        )
                    };
                    self.diags.push(
                        Diagnostic::new(
                            Code::UnknownProcedure,
                            format!("no procedure implements clause {}", c.id),
                            c.span,
                            "unknown clause",
                        )
                        .help(help),
                    );
                    return None;
                }
            },
            ActionKind::Goto(s) => model::Action::Goto(self.state(s, cx)?),
            ActionKind::InviteEach(r, s, items) => model::Action::InviteEach(
                recipients(*r),
                *s,
                super::invite::lower_invitation(
                    self.sources,
                    self.diags,
                    &self.conditions,
                    *r == ast::Recipients::RecipientList,
                    false,
                    items,
                )?,
            ),
            ActionKind::ForwardEach(r, s, items) => model::Action::ForwardEach(
                recipients(*r),
                *s,
                super::invite::lower_invitation(
                    self.sources,
                    self.diags,
                    &self.conditions,
                    *r == ast::Recipients::RecipientList,
                    true,
                    items,
                )?,
            ),
            ActionKind::Cancel => model::Action::Cancel,
            ActionKind::Bye => model::Action::Bye,
            ActionKind::CancelLegs | ActionKind::ByeLegs if cx.leg => {
                let what = if a.kind == ActionKind::CancelLegs {
                    "cancel"
                } else {
                    "bye"
                };
                self.diags.push(
                    Diagnostic::new(
                        Code::BadArgument,
                        format!("`{what} legs` in an invitee-leg procedure"),
                        a.span,
                        "this procedure runs one leg, not a session",
                    )
                    .help(format!(
                        "a leg ends itself with `{what}`; `{what} legs` belongs to the originator's procedure"
                    )),
                );
                return None;
            }
            ActionKind::CancelLegs => model::Action::CancelLegs,
            ActionKind::ByeLegs => model::Action::ByeLegs,
            ActionKind::Deliver(items) => self.deliver(items)?,
            ActionKind::Outcome(o) => self.outcome(*o, a.span, cx)?,
            ActionKind::SendImdn(d) => model::Action::SendImdn(*d),
            ActionKind::CollectImdn(d) => model::Action::CollectImdn(*d),
            ActionKind::ForwardImdn => model::Action::ForwardImdn,
            ActionKind::AcceptSubscription => model::Action::AcceptSubscription,
            ActionKind::NotifySubscribers => model::Action::NotifySubscribers,
            ActionKind::StoreCopy => model::Action::StoreCopy,
            ActionKind::Report(ast::Report::Success) => model::Action::Report(None),
            ActionKind::Report(ast::Report::Failure { status, reason }) => model::Action::Report(
                Some(self.report_failure(*status, reason.as_ref(), a.span)?),
            ),
            ActionKind::StartTimer(t, after) => {
                let t = self.timer(t, cx);
                let mut ecx = ExprCx::new(&self.conditions, self.diags);
                let after = ecx.lower_as(after, Type::Duration, "a timer duration");
                model::Action::StartTimer(t?, after?)
            }
            ActionKind::StopTimer(t) => model::Action::StopTimer(self.timer(t, cx)?),
            ActionKind::Log(s) => {
                let mut ecx = ExprCx::new(&self.conditions, self.diags);
                model::Action::Log(lower_text(&mut ecx, self.sources, s)?)
            }
        })
    }

    fn trigger(&mut self, t: &ast::Trigger, cx: &ProcCx) -> Option<model::Trigger> {
        Some(match &t.kind {
            TriggerKind::Initial(m) => model::Trigger::Initial(m.clone()),
            TriggerKind::Request(m) => model::Trigger::Request(m.clone()),
            TriggerKind::Response(lo, hi) => {
                let (a, a_hi) = self.status_pattern(lo, t.span)?;
                let (b_lo, b) = match hi {
                    Some(h) => self.status_pattern(h, t.span)?,
                    None => (a, a_hi),
                };
                let _ = b_lo;
                if a > b {
                    self.diags.push(
                        Diagnostic::new(
                            Code::BadArgument,
                            format!("empty status range {a}..{b}"),
                            t.span,
                            "the low end is above the high end",
                        )
                        .help("write the range low to high, e.g. `response 300..699`"),
                    );
                    return None;
                }
                model::Trigger::Response { lo: a, hi: b }
            }
            TriggerKind::Timer(id) => model::Trigger::Timer(self.timer(id, cx)?),
            TriggerKind::Msrp(ev) => model::Trigger::Msrp(match ev.as_str() {
                "connected" => model::MsrpTrigger::Connected,
                "message" => model::MsrpTrigger::Message,
                "delivered" => model::MsrpTrigger::Delivered,
                "failed" => model::MsrpTrigger::Failed,
                _ => model::MsrpTrigger::Closed,
            }),
            TriggerKind::LegsSettled => model::Trigger::LegsSettled,
            TriggerKind::LegsChanged => model::Trigger::LegsChanged,
            TriggerKind::Copy(ev) => model::Trigger::Copy(match ev.as_str() {
                "delivered" => model::CopyTrigger::Delivered,
                "unroutable" => model::CopyTrigger::Unroutable,
                "expired" => model::CopyTrigger::Expired,
                _ => model::CopyTrigger::Failed,
            }),
            TriggerKind::Shutdown => model::Trigger::Shutdown,
            TriggerKind::Leg(ev) => model::Trigger::Leg(match ev.as_str() {
                "cancelled" => model::LegTrigger::Cancelled,
                _ => model::LegTrigger::Unroutable,
            }),
        })
    }

    /// `180` → (180, 180); `2xx` → (200, 299); `18x` → (180, 189).
    fn status_pattern(&mut self, p: &str, span: Span) -> Option<(u16, u16)> {
        let at = self.sources.get(span.file).and_then(|f| {
            f.text
                .get(span.start..span.end)
                .and_then(|s| s.find(p))
                .map(|k| Span {
                    file: span.file,
                    start: span.start + k,
                    end: span.start + k + p.len(),
                })
        });
        let at = at.unwrap_or(span);
        let digits = p.trim_end_matches('x');
        let well_formed =
            p.len() == 3 && !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit());
        let parsed = well_formed.then(|| {
            let scale = 10u16.pow((3 - digits.len()) as u32);
            let base: u16 = digits.parse().unwrap_or(0) * scale;
            (base, base + scale - 1)
        });
        match parsed {
            Some((lo, hi)) if lo >= 100 && hi <= 699 => Some((lo, hi)),
            Some(_) => {
                self.diags.push(
                    Diagnostic::new(
                        Code::BadArgument,
                        format!("status pattern `{p}` is out of range"),
                        at,
                        "not a SIP status",
                    )
                    .help("SIP status codes are 100 to 699 (`1xx` … `6xx`)"),
                );
                None
            }
            None => {
                self.diags.push(
                    Diagnostic::new(
                        Code::BadArgument,
                        format!("bad status pattern `{p}`"),
                        at,
                        "`x` may only replace trailing digits",
                    )
                    .help("write a code (`180`), a class (`2xx`) or a decade (`18x`)"),
                );
                None
            }
        }
    }
}

fn recipients(r: ast::Recipients) -> model::Recipients {
    match r {
        ast::Recipients::RecipientList => model::Recipients::RecipientList,
        ast::Recipients::GroupMembers => model::Recipients::GroupMembers,
    }
}

//! Behavioural diff of two versions of the specs (`imspec diff OLD NEW`).
//!
//! Both versions are checked, then every procedure is run by a small interpreter over the
//! checked [`model`](crate::model) for each state and each event its handlers (old or new)
//! react to. Requests are not enumerated from a fixed table: the classes of request are the
//! combinations of the *atomic tests* the conditions make — each comparison, quantifier,
//! directory call or boolean fact (`count(recipients) > config.max_recipients`,
//! `any part in body.parts where (…)`, `directory.owns(request.uri)`, `sdp.present` …),
//! named conditions being expanded into the tests they are made of. The interpreter asks for
//! a test's value only when a rule's condition needs it, and each question splits the class in
//! two, so the classes are exactly the ones the rules distinguish (the rows of the table in
//! `page_mode_group_invite.imspec`, per procedure), and both versions are asked about the same
//! class. Response triggers are split at every status boundary either version uses.
//!
//! Rows whose outcome (status, reason, warning, headers, SDP answer, actions, next state) is
//! the same in both versions are not printed; rule names and locations are not part of the
//! outcome, so a rename, a comment or a layout change prints nothing. Calls are outcomes
//! (`call 7.9.1.4`), not followed, so a change inside a called procedure prints once, under
//! that procedure. Procedures and states are matched by name: renaming one prints its rows
//! as gone from the old name and new under the new one.
//!
//! A class may combine tests that cannot all hold at once (a Request-URI that is both the
//! conference factory and an owned group); such a row is printed only when the two versions
//! disagree on it.

use crate::graph::{action_text, expr_text, trigger_text};
use crate::model::{
    Action, Alternative, Expr, Handler, Procedure, Respond, Rule, SdpItem, Spec, Text, TextPart,
    Trigger,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// One version of the specs: every checked root, procedures merged by name.
pub struct Version<'s> {
    procs: BTreeMap<&'s str, (&'s Spec, &'s Procedure)>,
}

impl<'s> Version<'s> {
    /// Merges the procedures of `specs` (a file imported by several roots counts once).
    pub fn new(specs: &'s [Spec]) -> Self {
        let mut procs = BTreeMap::new();
        for s in specs {
            for p in &s.procedures {
                procs.entry(p.name.as_str()).or_insert((s, p));
            }
        }
        Version { procs }
    }
}

/// What one version does for one class of one event in one state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The procedure does not exist in this version.
    NoProcedure,
    /// The state does not exist in this version.
    NoState,
    /// No handler reacts: the event is ignored.
    Ignored,
    /// A handler matched but no rule fired (no `otherwise`).
    NoRule,
    /// A rule fired.
    Fired {
        /// `clause/rule`, for the reader; not compared.
        rule: String,
        /// The observable behaviour, compared.
        behaviour: Vec<String>,
    },
}

impl Outcome {
    fn same_behaviour(&self, other: &Outcome) -> bool {
        match (self, other) {
            (Outcome::Fired { behaviour: a, .. }, Outcome::Fired { behaviour: b, .. }) => a == b,
            (a, b) => a == b,
        }
    }

    fn text(&self) -> String {
        match self {
            Outcome::NoProcedure => "(no such procedure)".into(),
            Outcome::NoState => "(no such state)".into(),
            Outcome::Ignored => "(no handler: ignored)".into(),
            Outcome::NoRule => "(no rule fires)".into(),
            Outcome::Fired { rule, behaviour } => {
                format!("rule {rule}: {}", behaviour.join("; "))
            }
        }
    }
}

/// One row: a procedure, state, event and class of request, with both outcomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// Procedure name.
    pub procedure: String,
    /// State name.
    pub state: String,
    /// Event (`initial INVITE`, `response 300..699`).
    pub event: String,
    /// The class: each atomic test the rules asked about, with its value.
    pub class: Vec<(String, bool)>,
    /// Old outcome.
    pub old: String,
    /// New outcome.
    pub new: String,
}

/// Every row whose outcome differs between `old` and `new` (every row when `all`).
pub fn diff(old: &Version<'_>, new: &Version<'_>, all: bool) -> Vec<Row> {
    let mut rows = Vec::new();
    let names: BTreeSet<&str> = old.procs.keys().chain(new.procs.keys()).copied().collect();
    for name in names {
        let (o, n) = (old.procs.get(name), new.procs.get(name));
        let states: BTreeSet<String> = o
            .iter()
            .chain(n.iter())
            .flat_map(|(_, p)| {
                p.states
                    .iter()
                    .filter(|s| !s.is_final || !p.explicit_states)
                    .map(|s| s.name.clone())
            })
            .collect();
        let events = events(o.map(|x| x.1), n.map(|x| x.1));
        for state in &states {
            for ev in &events {
                explore(name, state, ev, o.copied(), n.copied(), all, &mut rows);
            }
        }
    }
    rows
}

/// An event class: a trigger kind with, for responses, a status interval.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Other(String),
    Status(u16, u16),
}

impl Ev {
    fn text(&self) -> String {
        match self {
            Ev::Other(t) => t.clone(),
            Ev::Status(lo, hi) if lo == hi => format!("response {lo}"),
            Ev::Status(lo, hi) => format!("response {lo}..{hi}"),
        }
    }

    fn matches(&self, proc: &Procedure, t: &Trigger) -> bool {
        match (self, t) {
            (Ev::Status(a, b), Trigger::Response { lo, hi }) => lo <= a && b <= hi,
            (Ev::Other(x), t) if !matches!(t, Trigger::Response { .. }) => {
                *x == trigger_text(proc, t)
            }
            _ => false,
        }
    }
}

fn events(o: Option<&Procedure>, n: Option<&Procedure>) -> Vec<Ev> {
    let mut other = BTreeSet::new();
    let mut cuts = BTreeSet::new();
    for p in o.iter().chain(n.iter()) {
        for h in &p.handlers {
            match h.trigger {
                Trigger::Response { lo, hi } => {
                    cuts.insert(lo);
                    cuts.insert(hi + 1);
                }
                ref t => {
                    other.insert(trigger_text(p, t));
                }
            }
        }
    }
    let mut out: Vec<Ev> = other.into_iter().map(Ev::Other).collect();
    let cuts: Vec<u16> = cuts.into_iter().collect();
    for w in cuts.windows(2) {
        let ev = Ev::Status(w[0], w[1] - 1);
        // Only intervals some handler covers: the gaps are ignored in both versions.
        let covered = o
            .iter()
            .chain(n.iter())
            .any(|p| p.handlers.iter().any(|h| ev.matches(p, &h.trigger)));
        if covered {
            out.push(ev);
        }
    }
    out
}

/// Truth values of atomic tests, by their text, in the order the rules asked about them.
type Assignment = Vec<(String, bool)>;

fn lookup(a: &Assignment, key: &str) -> Option<bool> {
    a.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
}

/// Evaluation stopped: the value of this atom (text, display) is needed.
struct Need(String, String);

fn explore(
    name: &str,
    state: &str,
    ev: &Ev,
    old: Option<(&Spec, &Procedure)>,
    new: Option<(&Spec, &Procedure)>,
    all: bool,
    rows: &mut Vec<Row>,
) {
    let mut work: Vec<Assignment> = vec![Assignment::new()];
    let mut display: BTreeMap<String, String> = BTreeMap::new();
    while let Some(a) = work.pop() {
        let o = outcome(old, state, ev, &a);
        let n = outcome(new, state, ev, &a);
        match (o, n) {
            (Err(Need(k, d)), _) | (_, Err(Need(k, d))) => {
                display.insert(k.clone(), d);
                for v in [false, true] {
                    let mut b = a.clone();
                    b.push((k.clone(), v));
                    work.push(b);
                }
            }
            (Ok(o), Ok(n)) => {
                if all || !o.same_behaviour(&n) {
                    rows.push(Row {
                        procedure: name.to_string(),
                        state: state.to_string(),
                        event: ev.text(),
                        class: a
                            .iter()
                            .map(|(k, v)| (display.get(k).cloned().unwrap_or(k.clone()), *v))
                            .collect(),
                        old: o.text(),
                        new: n.text(),
                    });
                }
            }
        }
    }
}

fn outcome(
    v: Option<(&Spec, &Procedure)>,
    state: &str,
    ev: &Ev,
    a: &Assignment,
) -> Result<Outcome, Need> {
    let Some((spec, proc)) = v else {
        return Ok(Outcome::NoProcedure);
    };
    let Some(si) = proc.states.iter().position(|s| s.name == state) else {
        return Ok(Outcome::NoState);
    };
    let applies = |h: &&Handler| {
        (h.states.is_empty() || h.states.contains(&si)) && ev.matches(proc, &h.trigger)
    };
    let Some(h) = proc.handlers.iter().find(applies) else {
        return Ok(Outcome::Ignored);
    };
    let fired = fire(spec, h, a)?;
    Ok(match fired {
        None => Outcome::NoRule,
        Some(r) => Outcome::Fired {
            rule: format!("{}/{}", r.clause, r.name),
            behaviour: behaviour(spec, proc, si, r),
        },
    })
}

fn fire<'a>(spec: &Spec, h: &'a Handler, a: &Assignment) -> Result<Option<&'a Rule>, Need> {
    let holds = |r: &Rule| match &r.condition {
        None => Ok(true),
        Some(c) => eval(spec, c, a),
    };
    for alt in &h.alternatives {
        match alt {
            Alternative::Rule(r) => {
                if holds(r)? {
                    return Ok(Some(r));
                }
            }
            Alternative::First { rules, otherwise } => {
                for r in rules {
                    if holds(r)? {
                        return Ok(Some(r));
                    }
                }
                if let Some(r) = otherwise {
                    return Ok(Some(r));
                }
            }
        }
    }
    Ok(h.otherwise.as_ref())
}

fn eval(spec: &Spec, e: &Expr, a: &Assignment) -> Result<bool, Need> {
    match e {
        Expr::Bool(b) => Ok(*b),
        Expr::Condition(i) => {
            let c = &spec.conditions[*i];
            if matches!(
                c.expr,
                Expr::Not(_) | Expr::And(_) | Expr::Or(_) | Expr::Bool(_) | Expr::Condition(_)
            ) {
                eval(spec, &c.expr, a)
            } else {
                // A condition that is one test: name it so the row reads like the spec.
                atom(spec, &c.expr, c.name.clone(), a)
            }
        }
        Expr::Not(x) => Ok(!eval(spec, x, a)?),
        Expr::And(xs) => {
            for x in xs {
                if !eval(spec, x, a)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Expr::Or(xs) => {
            for x in xs {
                if eval(spec, x, a)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        other => atom(spec, other, expr_text(spec, other), a),
    }
}

fn atom(spec: &Spec, e: &Expr, display: String, a: &Assignment) -> Result<bool, Need> {
    let key = expr_text(spec, e);
    match lookup(a, &key) {
        Some(v) => Ok(v),
        None => Err(Need(key, display)),
    }
}

fn text(spec: &Spec, t: &Text) -> String {
    let mut s = String::new();
    for p in &t.parts {
        match p {
            TextPart::Lit(l) => s.push_str(l),
            TextPart::Value(e) => {
                let _ = write!(s, "{{{}}}", expr_text(spec, e));
            }
        }
    }
    s
}

fn respond_text(spec: &Spec, r: &Respond) -> String {
    let mut s = format!("respond {} {:?}", r.status, r.reason);
    if let Some(w) = &r.warning {
        let _ = write!(s, " warning {} {:?}", r.warning_code, text(spec, w));
    }
    for (n, v) in &r.headers {
        let _ = write!(s, " header {n}={v:?}");
    }
    if r.contact_focus {
        s.push_str(" contact focus");
        for p in &r.contact_params {
            let _ = write!(s, " {p:?}");
        }
    }
    if let Some(items) = &r.sdp {
        let items: Vec<String> = items
            .iter()
            .map(|i| match i {
                SdpItem::Attribute { name, value, when } => format!(
                    "attribute {name}{}{}",
                    value
                        .as_ref()
                        .map(|v| format!("={v:?}"))
                        .unwrap_or_default(),
                    when.as_ref()
                        .map(|w| format!(" when {}", expr_text(spec, w)))
                        .unwrap_or_default()
                ),
                other => format!("{other:?}"),
            })
            .collect();
        let _ = write!(s, " sdp {{{}}}", items.join(", "));
    }
    s
}

/// The observable behaviour of a rule fired in state `si`: its actions in order and the
/// state it leaves the machine in.
fn behaviour(spec: &Spec, proc: &Procedure, si: usize, r: &Rule) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = si;
    for act in &r.actions {
        match act {
            Action::Goto(s) => next = *s,
            Action::Respond(resp) => out.push(respond_text(spec, resp)),
            Action::Log(t) => out.push(format!("log {:?}", text(spec, t))),
            Action::InviteEach(_, _, inv) | Action::ForwardEach(_, _, inv) => {
                // What the INVITE carries is behaviour too (`imspec diff` shows an edited
                // header or offer attribute).
                let mut s = action_text(spec, proc, act);
                for (n, v) in &inv.headers {
                    let _ = write!(s, " header {n}={:?}", text(spec, v));
                }
                if let Some(params) = &inv.contact_focus {
                    s.push_str(" contact focus");
                    for p in params {
                        let _ = write!(s, " {p:?}");
                    }
                }
                if inv.history {
                    s.push_str(" history");
                }
                if !inv.offer.is_empty() {
                    let _ = write!(s, " offer {:?}", inv.offer);
                }
                out.push(s);
            }
            other => out.push(action_text(spec, proc, other)),
        }
    }
    out.push(if !proc.explicit_states {
        "done".to_string()
    } else if next == si {
        format!("stay in {}", proc.states[si].name)
    } else {
        format!("-> {}", proc.states[next].name)
    });
    out
}

/// The rows as text: one block per row.
pub fn render(rows: &[Row]) -> String {
    let mut s = String::new();
    for r in rows {
        let _ = writeln!(s, "{} | state {} | on {}", r.procedure, r.state, r.event);
        if r.class.is_empty() {
            let _ = writeln!(s, "  when: (every case)");
        }
        for (k, v) in &r.class {
            let _ = writeln!(s, "  when: {}{k}", if *v { "" } else { "not " });
        }
        if r.old == r.new {
            let _ = writeln!(s, "  = {}", r.old);
        } else {
            let _ = writeln!(s, "  - old: {}", r.old);
            let _ = writeln!(s, "  + new: {}", r.new);
        }
    }
    s
}

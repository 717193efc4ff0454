//! State diagrams of a spec's machines, as Graphviz DOT, Mermaid or SVG (laid out in-process), drawn from the validated
//! [`model`](crate::model) — the same one the generator reads, so the picture is the code.
//!
//! Each procedure is one cluster (DOT) or composite state (Mermaid). Every rule that applies
//! in a state draws one edge from it, labelled `trigger [condition] / actions (clause)`: to the
//! state its `goto` names, or back to the same state when it has none.
//!
//! [`expr_text`] prints a model expression in `.imspec` syntax; the generator uses it for the
//! docs of condition functions.

use crate::model::{
    Action, Alternative, Builtin, Expr, Fact, Field, MsrpTrigger, Procedure, Quant, Recipients,
    Rule, Spec, TimerRef, Trigger,
};
use std::fmt::Write as _;

/// Output formats of [`render`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
    /// Mermaid `stateDiagram-v2`.
    Mermaid,
    /// SVG, laid out in-process (no Graphviz install needed).
    Svg,
}

/// Renders every procedure of `spec` in `format`.
pub fn render(spec: &Spec, format: Format) -> String {
    match format {
        Format::Dot => dot(spec),
        Format::Mermaid => mermaid(spec),
        Format::Svg => svg(spec),
    }
}

/// SVG drawn with `layout-rs`: per procedure a title box (`procedure name [clause]`) pointing
/// at the initial state, a box per state (final states as double circles), and an edge per
/// rule labelled with its trigger, actions, rule name and clause.
fn svg(spec: &Spec) -> String {
    use layout::backends::svg::SVGWriter;
    use layout::core::base::Orientation;
    use layout::core::color::Color;
    use layout::core::style::StyleAttr;
    use layout::std_shapes::render::get_shape_size;
    use layout::std_shapes::shapes::{Arrow, Element, ShapeKind};
    use layout::topo::layout::VisualGraph;

    let dir = Orientation::TopToBottom;
    let mut vg = VisualGraph::new(dir);
    let node = |vg: &mut VisualGraph, shape: ShapeKind, look: StyleAttr| {
        let size = get_shape_size(dir, &shape, look.font_size, false);
        vg.add_node(Element::create(shape, look, dir, size))
    };
    let state_look = StyleAttr::new(
        Color::new(0x000000ff),
        2,
        Some(Color::new(0xffffffff)),
        6,
        14,
    );
    let title_look = StyleAttr::new(
        Color::new(0x555555ff),
        1,
        Some(Color::new(0xe8eef7ff)),
        0,
        14,
    );
    for proc in &spec.procedures {
        let title = node(
            &mut vg,
            ShapeKind::new_box(&format!("procedure {} [{}]", proc.name, proc.clause)),
            title_look.clone(),
        );
        let states: Vec<_> = proc
            .states
            .iter()
            .map(|st| {
                let shape = if st.is_final && proc.explicit_states {
                    ShapeKind::new_double_circle(&st.name)
                } else {
                    ShapeKind::new_box(&st.name)
                };
                node(&mut vg, shape, state_look.clone())
            })
            .collect();
        vg.add_edge(Arrow::simple(""), title, states[proc.initial]);
        for e in edges(spec, proc) {
            // layout-rs places an edge's label as a box on the edge, one <tspan> per line.
            vg.add_edge(Arrow::simple(&e.lines), states[e.from], states[e.to]);
        }
    }
    let mut w = SVGWriter::new();
    vg.do_it(false, false, false, &mut w);
    w.finalize()
}

/// One edge of a machine.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Edge {
    from: usize,
    to: usize,
    label: String,
    /// The label on several lines (trigger, guard, actions, rule), for SVG.
    lines: String,
}

/// The states a handler applies in (see the model: empty means every non-final state; a
/// procedure whose only state is the implicit `active` one reacts in it).
pub(crate) fn handler_states(proc: &Procedure, states: &[usize]) -> Vec<usize> {
    if !states.is_empty() {
        return states.to_vec();
    }
    let non_final: Vec<usize> = (0..proc.states.len())
        .filter(|&i| !proc.states[i].is_final)
        .collect();
    if non_final.is_empty() || !proc.explicit_states {
        (0..proc.states.len()).collect()
    } else {
        non_final
    }
}

/// The states a handler applies in. `request other` without `in` answers the dialog's
/// requests for as long as the dialog is up, final states included (the runtime hands such a
/// request to a final machine too).
pub(crate) fn handler_states_of(proc: &Procedure, h: &crate::model::Handler) -> Vec<usize> {
    match &h.trigger {
        Trigger::Request(m) if m == crate::ast::OTHER_METHODS && h.states.is_empty() => {
            (0..proc.states.len()).collect()
        }
        _ => handler_states(proc, &h.states),
    }
}

/// Every rule of a handler with the text of its guard, in evaluation order.
pub(crate) fn handler_rules<'h>(
    spec: &Spec,
    h: &'h crate::model::Handler,
) -> Vec<(String, &'h Rule)> {
    let mut out = Vec::new();
    let guard = |r: &Rule, prefix: &str| match &r.condition {
        Some(c) => format!("{prefix}{}", expr_text(spec, c)),
        None if prefix.is_empty() && r.name != "otherwise" => String::new(),
        None => format!("{prefix}otherwise"),
    };
    for alt in &h.alternatives {
        match alt {
            Alternative::Rule(r) => out.push((guard(r, ""), r)),
            Alternative::First { rules, otherwise } => {
                for (i, r) in rules.iter().enumerate() {
                    out.push((guard(r, &format!("first {}: ", i + 1)), r));
                }
                if let Some(r) = otherwise {
                    out.push(("first: otherwise".to_string(), r));
                }
            }
        }
    }
    if let Some(r) = &h.otherwise {
        out.push(("otherwise".to_string(), r));
    }
    out
}

fn edges(spec: &Spec, proc: &Procedure) -> Vec<Edge> {
    let mut out = Vec::new();
    for h in &proc.handlers {
        let trig = trigger_text(proc, &h.trigger);
        for (guard, rule) in handler_rules(spec, h) {
            let goto = rule.actions.iter().rev().find_map(|a| match a {
                Action::Goto(s) => Some(s),
                _ => None,
            });
            let acts: Vec<String> = rule
                .actions
                .iter()
                .filter(|a| !matches!(a, Action::Goto(_)))
                .map(|a| action_text(spec, proc, a))
                .collect();
            let mut label = trig.clone();
            let mut lines = trig.clone();
            if !guard.is_empty() {
                let _ = write!(label, " [{guard}]");
                let _ = write!(lines, "\n[{guard}]");
            }
            if !acts.is_empty() {
                let _ = write!(label, " / {}", acts.join("; "));
                let _ = write!(lines, "\n/ {}", acts.join("; "));
            }
            let _ = write!(label, " ({} {})", rule.name, rule.clause);
            let _ = write!(lines, "\n({} {})", rule.name, rule.clause);
            for from in handler_states_of(proc, h) {
                out.push(Edge {
                    from,
                    to: goto.copied().unwrap_or(from),
                    label: label.clone(),
                    lines: lines.clone(),
                });
            }
        }
    }
    out
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn dot(spec: &Spec) -> String {
    let mut s = String::from("digraph imspec {\n  rankdir=LR;\n  node [shape=ellipse];\n");
    for (pi, proc) in spec.procedures.iter().enumerate() {
        let title = match &proc.title {
            Some(t) => format!("{} [{}] {t}", proc.name, proc.clause),
            None => format!("{} [{}]", proc.name, proc.clause),
        };
        let _ = writeln!(s, "  subgraph cluster_{pi} {{");
        let _ = writeln!(s, "    label=\"{}\";", dot_escape(&title));
        let _ = writeln!(s, "    \"{pi}.start\" [shape=point, label=\"\"];");
        for (si, st) in proc.states.iter().enumerate() {
            let shape = if st.is_final {
                "doublecircle"
            } else {
                "ellipse"
            };
            let _ = writeln!(
                s,
                "    \"{pi}.{si}\" [label=\"{}\", shape={shape}];",
                dot_escape(&st.name)
            );
        }
        let _ = writeln!(s, "    \"{pi}.start\" -> \"{pi}.{}\";", proc.initial);
        for e in edges(spec, proc) {
            let _ = writeln!(
                s,
                "    \"{pi}.{}\" -> \"{pi}.{}\" [label=\"{}\"];",
                e.from,
                e.to,
                dot_escape(&e.label)
            );
        }
        s.push_str("  }\n");
    }
    s.push_str("}\n");
    s
}

fn mermaid_escape(s: &str) -> String {
    // Mermaid ends a label at `;` and a newline, and takes `"` / `#` specially.
    s.replace(';', ",")
        .replace('"', "'")
        .replace('#', "no. ")
        .replace('\n', " ")
}

fn mermaid(spec: &Spec) -> String {
    let mut s = String::from("stateDiagram-v2\n");
    for (pi, proc) in spec.procedures.iter().enumerate() {
        let id = |si: usize| format!("p{pi}_{si}");
        let _ = writeln!(
            s,
            "  state \"{} [{}]\" as p{pi} {{",
            mermaid_escape(&proc.name),
            proc.clause
        );
        for (si, st) in proc.states.iter().enumerate() {
            let _ = writeln!(
                s,
                "    state \"{}\" as {}",
                mermaid_escape(&st.name),
                id(si)
            );
        }
        let _ = writeln!(s, "    [*] --> {}", id(proc.initial));
        for e in edges(spec, proc) {
            let _ = writeln!(
                s,
                "    {} --> {} : {}",
                id(e.from),
                id(e.to),
                mermaid_escape(&e.label)
            );
        }
        for (si, st) in proc.states.iter().enumerate() {
            if st.is_final && proc.explicit_states {
                let _ = writeln!(s, "    {} --> [*]", id(si));
            }
        }
        s.push_str("  }\n");
    }
    s
}

/// A trigger as written in the spec (`initial INVITE`, `response 2xx`, `timer B`).
pub fn trigger_text(proc: &Procedure, t: &Trigger) -> String {
    match t {
        Trigger::Initial(m) => format!("initial {m}"),
        Trigger::Request(m) => format!("request {m}"),
        Trigger::Response { lo, hi } => {
            if lo == hi {
                format!("response {lo}")
            } else if lo % 100 == 0 && *hi == lo + 99 {
                format!("response {}xx", lo / 100)
            } else {
                format!("response {lo}..{hi}")
            }
        }
        Trigger::Timer(t) => format!("timer {}", timer_text(proc, *t)),
        Trigger::Msrp(m) => format!(
            "msrp {}",
            match m {
                MsrpTrigger::Connected => "connected",
                MsrpTrigger::Message => "message",
                MsrpTrigger::Delivered => "delivered",
                MsrpTrigger::Failed => "failed",
                MsrpTrigger::Closed => "closed",
            }
        ),
        Trigger::LegsSettled => "legs settled".to_string(),
        Trigger::LegsChanged => "legs changed".to_string(),
        Trigger::Copy(c) => format!("copy {}", c.word()),
        Trigger::Leg(crate::model::LegTrigger::Cancelled) => "leg cancelled".to_string(),
        Trigger::Leg(crate::model::LegTrigger::Unroutable) => "leg unroutable".to_string(),
        Trigger::Shutdown => "shutdown".to_string(),
    }
}

fn timer_text(proc: &Procedure, t: TimerRef) -> String {
    match t {
        TimerRef::B => "B".into(),
        TimerRef::F => "F".into(),
        TimerRef::H => "H".into(),
        TimerRef::Lifetime => "lifetime".into(),
        TimerRef::Spec(i) => proc
            .timers
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("#{i}")),
    }
}

fn recipients_text(r: Recipients) -> &'static str {
    match r {
        Recipients::RecipientList => "recipient_list",
        Recipients::GroupMembers => "group_members",
    }
}

/// An action, shortly (`respond 404`, `call 7.9.1.4`, `goto ringing`).
pub fn action_text(spec: &Spec, proc: &Procedure, a: &Action) -> String {
    match a {
        Action::Respond(r) => format!("respond {}", r.status),
        Action::Call(i) => format!(
            "call {}",
            spec.procedures
                .get(*i)
                .map(|p| p.clause.as_str())
                .unwrap_or("?")
        ),
        Action::Goto(s) => format!(
            "goto {}",
            proc.states.get(*s).map(|s| s.name.as_str()).unwrap_or("?")
        ),
        Action::InviteEach(r, s, _) => format!(
            "invite each {}{}",
            recipients_text(*r),
            crate::fmt::selection_text(*s)
        ),
        Action::ForwardEach(r, s, _) => format!(
            "forward each {}{}",
            recipients_text(*r),
            crate::fmt::selection_text(*s)
        ),
        Action::Cancel => "cancel".into(),
        Action::Bye => "bye".into(),
        Action::CancelLegs => "cancel legs".into(),
        Action::ByeLegs => "bye legs".into(),
        Action::Deliver {
            success_report: false,
        } => "deliver".into(),
        Action::Deliver {
            success_report: true,
        } => "deliver { success-report yes }".into(),
        Action::SendImdn(true) => "send imdn delivered".into(),
        Action::SendImdn(false) => "send imdn failed".into(),
        Action::CollectImdn(true) => "collect imdn delivered".into(),
        Action::CollectImdn(false) => "collect imdn failed".into(),
        Action::ForwardImdn => "forward imdn".into(),
        Action::AcceptSubscription => "accept subscription".into(),
        Action::NotifySubscribers => "notify subscribers".into(),
        Action::StoreCopy => "store copy".into(),
        Action::Outcome(o) => crate::fmt::outcome_text(*o),
        Action::Report(None) => "report success".to_string(),
        Action::Report(Some((status, _))) => format!("report failure {status}"),
        Action::StartTimer(t, e) => format!(
            "start timer {} after {}",
            timer_text(proc, *t),
            expr_text(spec, e)
        ),
        Action::StopTimer(t) => format!("stop timer {}", timer_text(proc, *t)),
        Action::Log(_) => "log".into(),
    }
}

fn quote_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn fact_text(f: Fact) -> &'static str {
    // The checker's table is the one place that spells each fact's path.
    crate::check::types::FACTS
        .iter()
        .find(|(_, x, _)| *x == f)
        .map_or("?", |(path, _, _)| path)
}

fn field_text(f: Field) -> &'static str {
    match f {
        Field::UriScheme => "scheme",
        Field::UriUser => "user",
        Field::UriHost => "host",
        Field::UriPort | Field::MediaPort => "port",
        Field::PartType => "type",
        Field::PartDisposition => "disposition",
        Field::PartLen => "len",
        Field::EntryUri => "uri",
        Field::EntryDisplayName => "display_name",
        Field::EntryCopyControl => "copy_control",
        Field::EntryAnonymize => "anonymize",
        Field::MediaMedia => "media",
        Field::MediaProto => "proto",
        Field::MediaFormats => "formats",
    }
}

// Binding strength, loosest first, as in the grammar: or, and, not, comparison, operand.
const OR: u8 = 0;
const AND: u8 = 1;
const NOT: u8 = 2;
const CMP: u8 = 3;
const OPERAND: u8 = 4;

/// Prints a model expression in `.imspec` syntax, with parentheses only where the grammar
/// needs them.
pub fn expr_text(spec: &Spec, e: &Expr) -> String {
    let mut s = String::new();
    print(spec, e, OR, &mut s);
    s
}

fn prec(e: &Expr) -> u8 {
    match e {
        Expr::Or(_) => OR,
        Expr::And(_) => AND,
        Expr::Not(_) => NOT,
        Expr::Cmp(..) => CMP,
        _ => OPERAND,
    }
}

fn print(spec: &Spec, e: &Expr, min: u8, out: &mut String) {
    let paren = prec(e) < min;
    if paren {
        out.push('(');
    }
    match e {
        Expr::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Expr::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Expr::Str(s) => out.push_str(&quote_str(s)),
        Expr::DurationMs(ms) => {
            if ms % 1000 == 0 {
                let _ = write!(out, "{}s", ms / 1000);
            } else {
                let _ = write!(out, "{ms}ms");
            }
        }
        Expr::Fact(f) => out.push_str(fact_text(*f)),
        Expr::Condition(i) => out.push_str(
            spec.conditions
                .get(*i)
                .map(|c| c.name.as_str())
                .unwrap_or("?"),
        ),
        Expr::Var(v) => out.push_str(v),
        Expr::Field(x, f) => {
            print(spec, x, OPERAND, out);
            out.push('.');
            out.push_str(field_text(*f));
        }
        Expr::Call(b, args) => print_call(spec, *b, args, out),
        Expr::Not(x) => {
            out.push_str("not ");
            print(spec, x, NOT, out);
        }
        Expr::And(xs) | Expr::Or(xs) => {
            let (sep, child) = if matches!(e, Expr::And(_)) {
                (" and ", NOT)
            } else {
                (" or ", AND)
            };
            for (i, x) in xs.iter().enumerate() {
                if i > 0 {
                    out.push_str(sep);
                }
                print(spec, x, child, out);
            }
        }
        Expr::Cmp(op, a, b) => {
            print(spec, a, OPERAND, out);
            let _ = write!(out, " {} ", op.as_str());
            print(spec, b, OPERAND, out);
        }
        Expr::Quant {
            quant,
            var,
            list,
            body,
            ..
        } => {
            let q = match quant {
                Quant::Any => "any",
                Quant::All => "all",
                Quant::None => "none",
            };
            let _ = write!(out, "{q} {var} in ");
            print(spec, list, OPERAND, out);
            out.push_str(" where (");
            print(spec, body, OR, out);
            out.push(')');
        }
    }
    if paren {
        out.push(')');
    }
}

fn print_call(spec: &Spec, b: Builtin, args: &[Expr], out: &mut String) {
    let list = |args: &[Expr], out: &mut String| {
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            print(spec, a, OR, out);
        }
    };
    let (recv, name, rest): (Option<&str>, &str, &[Expr]) = match b {
        Builtin::Count => (None, "count", args),
        Builtin::Overlap => (None, "overlap", args),
        Builtin::Header => (Some("request"), "header", args),
        Builtin::HasHeader => (Some("request"), "has_header", args),
        Builtin::DirectoryOwns => (Some("directory"), "owns", args),
        Builtin::DirectoryIsMember => (Some("directory"), "is_member", args),
        Builtin::DirectoryMayInitiate => (Some("directory"), "may_initiate", args),
        Builtin::DirectoryInvitesMembers => (Some("directory"), "invites_members", args),
        Builtin::DirectoryMayJoin => (Some("directory"), "may_join", args),
        Builtin::DirectoryAllowsAnonymity => (Some("directory"), "allows_anonymity", args),
        Builtin::DirectoryMemberCount => (Some("directory"), "member_count", args),
        Builtin::DirectoryMaxParticipants => (Some("directory"), "max_participants", args),
        Builtin::Distinct => (None, "distinct", args),
        Builtin::Without => (None, "without", args),
        Builtin::DirectoryMembers => (Some("directory"), "members", args),
        Builtin::MediaHas | Builtin::MediaAttr | Builtin::MediaTokens => {
            let name = match b {
                Builtin::MediaHas => "has",
                Builtin::MediaAttr => "attr",
                _ => "tokens",
            };
            if let Some((m, rest)) = args.split_first() {
                print(spec, m, OPERAND, out);
                let _ = write!(out, ".{name}(");
                list(rest, out);
                out.push(')');
                return;
            }
            (None, name, args)
        }
    };
    if let Some(r) = recv {
        let _ = write!(out, "{r}.");
    }
    let _ = write!(out, "{name}(");
    list(rest, out);
    out.push(')');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CmpOp, Elem, Handler, Loc, State};

    fn loc() -> Loc {
        Loc {
            file: "t.imspec".into(),
            line: 1,
            col: 1,
        }
    }

    #[test]
    fn expressions_print_with_minimal_parentheses() {
        let spec = Spec {
            files: vec![],
            conditions: vec![],
            procedures: vec![],
        };
        let e = Expr::And(vec![
            Expr::Cmp(
                CmpOp::Eq,
                Box::new(Expr::Call(Builtin::Count, vec![Expr::Fact(Fact::SdpMedia)])),
                Box::new(Expr::Int(1)),
            ),
            Expr::Quant {
                quant: Quant::Any,
                var: "m".into(),
                elem: Elem::Media,
                list: Box::new(Expr::Fact(Fact::SdpMedia)),
                body: Box::new(Expr::And(vec![
                    Expr::Cmp(
                        CmpOp::Eq,
                        Box::new(Expr::Field(
                            Box::new(Expr::Var("m".into())),
                            Field::MediaMedia,
                        )),
                        Box::new(Expr::Str("message".into())),
                    ),
                    Expr::Or(vec![
                        Expr::Call(
                            Builtin::MediaHas,
                            vec![Expr::Var("m".into()), Expr::Str("sendonly".into())],
                        ),
                        Expr::Not(Box::new(Expr::Fact(Fact::SdpPresent))),
                    ]),
                ])),
            },
        ]);
        assert_eq!(
            expr_text(&spec, &e),
            "count(sdp.media) == 1 and any m in sdp.media where \
             (m.media == \"message\" and (m.has(\"sendonly\") or not sdp.present))"
        );
        let n = Expr::Not(Box::new(Expr::Or(vec![
            Expr::Bool(true),
            Expr::Bool(false),
        ])));
        assert_eq!(expr_text(&spec, &n), "not (true or false)");
        let d = Expr::Call(Builtin::DirectoryOwns, vec![Expr::Fact(Fact::RequestUri)]);
        assert_eq!(expr_text(&spec, &d), "directory.owns(request.uri)");
    }

    fn leg() -> Spec {
        let st = |n: &str, f: bool| State {
            name: n.into(),
            is_final: f,
            loc: loc(),
        };
        let rule = |name: &str, actions| Rule {
            name: name.into(),
            clause: "7.9.1.4".into(),
            condition: None,
            actions,
            loc: loc(),
        };
        Spec {
            files: vec![],
            conditions: vec![],
            procedures: vec![Procedure {
                name: "invitee_leg".into(),
                clause: "7.9.1.4".into(),
                title: None,
                states: vec![st("inviting", false), st("connected", true)],
                initial: 0,
                timers: vec![],
                handlers: vec![Handler {
                    trigger: Trigger::Response { lo: 200, hi: 299 },
                    states: vec![],
                    alternatives: vec![Alternative::Rule(rule(
                        "answered",
                        vec![
                            Action::Goto(1),
                            Action::Deliver {
                                success_report: false,
                            },
                        ],
                    ))],
                    otherwise: None,
                    loc: loc(),
                }],
                explicit_states: true,
                loc: loc(),
            }],
        }
    }

    #[test]
    fn dot_draws_states_and_labelled_transitions() {
        let out = render(&leg(), Format::Dot);
        assert!(out.contains("\"0.1\" [label=\"connected\", shape=doublecircle];"));
        assert!(
            out.contains(
                "\"0.0\" -> \"0.1\" [label=\"response 2xx / deliver (answered 7.9.1.4)\"];"
            )
        );
        assert!(out.contains("\"0.start\" -> \"0.0\";"));
    }

    #[test]
    fn mermaid_draws_composite_states() {
        let out = render(&leg(), Format::Mermaid);
        assert!(out.starts_with("stateDiagram-v2\n"));
        assert!(out.contains("state \"invitee_leg [7.9.1.4]\" as p0 {"));
        assert!(out.contains("p0_0 --> p0_1 : response 2xx / deliver (answered 7.9.1.4)"));
        assert!(out.contains("p0_1 --> [*]"));
    }
}

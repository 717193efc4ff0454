//! States no transition reaches from the initial state (E0010).

use super::lower::Side;
use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::model::{Action, Alternative, Handler, Spec};

/// A state is reached when some handler that applies in a reached state has a rule with
/// `goto` to it. Which rule fires is not considered (any rule may).
pub(crate) fn check_reachable(spec: &Spec, side: &Side, diags: &mut Diagnostics) {
    for (p, ps) in spec.procedures.iter().zip(&side.procs) {
        let n = p.states.len();
        if n == 0 || p.initial >= n || ps.states_broken {
            continue;
        }
        let mut reached = vec![false; n];
        reached[p.initial] = true;
        let mut work = vec![p.initial];
        while let Some(s) = work.pop() {
            for h in &p.handlers {
                let applies = if h.states.is_empty() {
                    !p.states[s].is_final || !p.explicit_states
                } else {
                    h.states.contains(&s)
                };
                if !applies {
                    continue;
                }
                for t in gotos(h) {
                    if t < n && !reached[t] {
                        reached[t] = true;
                        work.push(t);
                    }
                }
            }
        }
        for (i, r) in reached.iter().enumerate() {
            if !r {
                let Some(span) = ps.states.get(i) else {
                    continue;
                };
                diags.push(
                    Diagnostic::new(
                        Code::Unreachable,
                        format!(
                            "state `{}` of procedure `{}` is unreachable",
                            p.states[i].name, p.name
                        ),
                        *span,
                        format!("no `goto {}` from a reachable state", p.states[i].name),
                    )
                    .note(
                        ps.states.get(p.initial).copied().unwrap_or(*span),
                        "the machine starts here",
                    )
                    .help(format!(
                        "add `goto {}` to a rule of a handler that applies in a reachable state, or remove the state",
                        p.states[i].name
                    )),
                );
            }
        }
    }
}

fn gotos(h: &Handler) -> Vec<usize> {
    let mut out = Vec::new();
    let mut rule = |r: &crate::model::Rule| {
        for a in &r.actions {
            if let Action::Goto(t) = a {
                out.push(*t);
            }
        }
    };
    for a in &h.alternatives {
        match a {
            Alternative::Rule(r) => rule(r),
            Alternative::First { rules, otherwise } => {
                rules.iter().for_each(&mut rule);
                if let Some(o) = otherwise {
                    rule(o);
                }
            }
        }
    }
    if let Some(o) = &h.otherwise {
        rule(o);
    }
    out
}

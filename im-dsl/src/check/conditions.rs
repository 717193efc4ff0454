//! Named conditions that refer to each other in a cycle (E0015).

use super::lower::Side;
use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::model::Spec;

/// Reports each cycle once, at the reference that closes it. Returns whether any was found.
pub(crate) fn check_cycles(spec: &Spec, side: &Side, diags: &mut Diagnostics) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let n = spec.conditions.len().min(side.cond_refs.len());
    let mut mark = vec![Mark::New; n];
    let mut found = false;
    for root in 0..n {
        if mark[root] != Mark::New {
            continue;
        }
        // Iterative DFS: (condition, next reference to follow).
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = Mark::Active;
        while let Some(&mut (c, ref mut k)) = stack.last_mut() {
            let refs = &side.cond_refs[c];
            if *k >= refs.len() {
                mark[c] = Mark::Done;
                stack.pop();
                continue;
            }
            let (to, at) = refs[*k];
            *k += 1;
            if to >= n {
                continue;
            }
            match mark[to] {
                Mark::New => {
                    mark[to] = Mark::Active;
                    stack.push((to, 0));
                }
                Mark::Active => {
                    found = true;
                    let pos = stack.iter().position(|(x, _)| *x == to).unwrap_or(0);
                    let mut chain: Vec<&str> = stack[pos..]
                        .iter()
                        .map(|(x, _)| spec.conditions[*x].name.as_str())
                        .collect();
                    chain.push(spec.conditions[to].name.as_str());
                    let mut d = Diagnostic::new(
                        Code::ConditionCycle,
                        format!("conditions refer to each other in a cycle: {}", chain.join(" → ")),
                        at,
                        format!("`{}` refers back to `{}` here", spec.conditions[c].name, spec.conditions[to].name),
                    )
                    .help("a condition must be definable from facts alone; break the cycle by spelling one of them out");
                    if let Some(s) = side.conditions.get(to) {
                        d = d.note(*s, "the cycle starts here");
                    }
                    diags.push(d);
                }
                Mark::Done => {}
            }
        }
    }
    found
}

//! Overlap (E0008) and shadowing (E0007).
//!
//! Conditions (named ones inlined) are brought to disjunctive normal form over atoms: a term
//! is a conjunction of literals, a literal an atom or its negation. Atoms are
//! * `lhs == literal` for string and boolean literals,
//! * `lo <= lhs <= hi` for comparisons of an Int or Duration with a literal
//!   (`<`, `<=`, `>`, `>=`, `==`; `!=` is a negated point range),
//! * any other Bool expression, compared structurally (`none` is read as `not any`).
//!
//! Two alternatives are **disjoint** only when every pair of their terms is provably
//! unsatisfiable: a literal and its negation, one `lhs` equal to two different literals, or
//! integer ranges of one `lhs` with an empty intersection. Anything else — including
//! conditions whose normal form exceeds [`MAX_TERMS`] — counts as an overlap: the checker
//! is conservative and asks for `first { }` when it cannot prove exclusivity.
//!
//! **Shadowing** is syntactic: a later rule is shadowed when each term of its normal form
//! contains every literal of some term of an earlier rule (a positive range literal also
//! counts when the later term's range on the same `lhs` lies inside it). The limits: it does
//! not reason about facts' meanings (`count(x) > 0` vs `any e in x …`), about two earlier
//! rules jointly covering a later term unless one term alone does, or about quantifier
//! bodies (compared as written, variable names included).

use super::lower::{AltSide, HandlerSide, RuleSide, Side};
use crate::ast::Span;
use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::model::{Alternative, CmpOp, Expr, Handler, Procedure, Quant, Rule, Spec, Trigger};

/// Beyond this many terms a normal form is abandoned (and treated as "may overlap").
const MAX_TERMS: usize = 256;
/// Named conditions nest at most this deep when inlined.
const MAX_DEPTH: usize = 64;

#[derive(Clone, Debug, PartialEq)]
enum Atom {
    Opaque(Expr),
    Eq(Expr, Expr),
    Range(Expr, i64, i64),
}

type Lit = (usize, bool);
type Term = Vec<Lit>;
type Dnf = Vec<Term>;

struct Nf<'s> {
    spec: &'s Spec,
    atoms: Vec<Atom>,
}

impl Nf<'_> {
    fn atom(&mut self, a: Atom) -> usize {
        match self.atoms.iter().position(|x| *x == a) {
            Some(i) => i,
            None => {
                self.atoms.push(a);
                self.atoms.len() - 1
            }
        }
    }

    fn lit(&mut self, a: Atom, pos: bool) -> Option<Dnf> {
        // A negated half-open range is the complementary half-open range.
        let (a, pos) = match a {
            Atom::Range(l, lo, hi) if !pos && lo == i64::MIN && hi < i64::MAX => {
                (Atom::Range(l, hi.saturating_add(1), i64::MAX), true)
            }
            Atom::Range(l, lo, hi) if !pos && hi == i64::MAX && lo > i64::MIN => {
                (Atom::Range(l, i64::MIN, lo.saturating_sub(1)), true)
            }
            a => (a, pos),
        };
        let id = self.atom(a);
        Some(vec![vec![(id, pos)]])
    }

    /// The normal form of `e` (or of `not e` when `pos` is false).
    fn dnf(&mut self, e: &Expr, pos: bool, depth: usize) -> Option<Dnf> {
        if depth > MAX_DEPTH {
            return None;
        }
        match e {
            Expr::Bool(b) => Some(if *b == pos { vec![vec![]] } else { vec![] }),
            Expr::Not(x) => self.dnf(x, !pos, depth),
            Expr::And(xs) | Expr::Or(xs) => {
                let conj = matches!(e, Expr::And(_)) == pos;
                let mut acc: Dnf = if conj { vec![vec![]] } else { vec![] };
                for x in xs {
                    let d = self.dnf(x, pos, depth)?;
                    acc = if conj {
                        self.product(&acc, &d)?
                    } else {
                        acc.extend(d);
                        if acc.len() > MAX_TERMS {
                            return None;
                        }
                        acc
                    };
                }
                Some(acc)
            }
            Expr::Condition(i) => {
                let spec = self.spec;
                match spec.conditions.get(*i) {
                    Some(c) => self.dnf(&c.expr, pos, depth + 1),
                    None => self.lit(Atom::Opaque(e.clone()), pos),
                }
            }
            Expr::Quant {
                quant: Quant::None,
                var,
                elem,
                list,
                body,
            } => {
                let any = Expr::Quant {
                    quant: Quant::Any,
                    var: var.clone(),
                    elem: *elem,
                    list: list.clone(),
                    body: body.clone(),
                };
                self.lit(Atom::Opaque(any), !pos)
            }
            Expr::Cmp(op, l, r) => self.cmp(*op, l, r, e, pos),
            _ => self.lit(Atom::Opaque(e.clone()), pos),
        }
    }

    fn cmp(&mut self, op: CmpOp, l: &Expr, r: &Expr, whole: &Expr, pos: bool) -> Option<Dnf> {
        let num = |e: &Expr| match e {
            Expr::Int(i) => Some(*i),
            Expr::DurationMs(ms) => Some(i64::try_from(*ms).unwrap_or(i64::MAX)),
            _ => None,
        };
        let flip = |op| match op {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            o => o,
        };
        let is_lit = |e: &Expr| matches!(e, Expr::Str(_) | Expr::Bool(_));
        if let Some((lhs, op, v)) = match (num(l), num(r)) {
            (_, Some(v)) if op != CmpOp::Contains => Some((l, op, v)),
            (Some(v), None) if op != CmpOp::Contains => Some((r, flip(op), v)),
            _ => None,
        } {
            let lhs = lhs.clone();
            return match op {
                CmpOp::Eq => self.lit(Atom::Range(lhs, v, v), pos),
                CmpOp::Ne => self.lit(Atom::Range(lhs, v, v), !pos),
                CmpOp::Lt => self.lit(Atom::Range(lhs, i64::MIN, v.saturating_sub(1)), pos),
                CmpOp::Le => self.lit(Atom::Range(lhs, i64::MIN, v), pos),
                CmpOp::Gt => self.lit(Atom::Range(lhs, v.saturating_add(1), i64::MAX), pos),
                CmpOp::Ge => self.lit(Atom::Range(lhs, v, i64::MAX), pos),
                CmpOp::Contains => self.lit(Atom::Opaque(whole.clone()), pos),
            };
        }
        if matches!(op, CmpOp::Eq | CmpOp::Ne) {
            let eq_pos = if op == CmpOp::Eq { pos } else { !pos };
            if is_lit(r) && !is_lit(l) {
                return self.lit(Atom::Eq(l.clone(), r.clone()), eq_pos);
            }
            if is_lit(l) && !is_lit(r) {
                return self.lit(Atom::Eq(r.clone(), l.clone()), eq_pos);
            }
            let eq = Expr::Cmp(CmpOp::Eq, Box::new(l.clone()), Box::new(r.clone()));
            return self.lit(Atom::Opaque(eq), eq_pos);
        }
        self.lit(Atom::Opaque(whole.clone()), pos)
    }

    fn product(&self, a: &Dnf, b: &Dnf) -> Option<Dnf> {
        let mut out = Vec::new();
        for ta in a {
            for tb in b {
                let mut t: Term = ta.iter().chain(tb).copied().collect();
                t.sort_unstable();
                t.dedup();
                if !self.unsat(&t) {
                    out.push(t);
                    if out.len() > MAX_TERMS {
                        return None;
                    }
                }
            }
        }
        Some(out)
    }

    /// Whether a conjunction is provably unsatisfiable.
    fn unsat(&self, t: &[Lit]) -> bool {
        if t.windows(2).any(|w| w[0].0 == w[1].0 && w[0].1 != w[1].1) {
            return true;
        }
        for (i, &(a, p)) in t.iter().enumerate() {
            for &(b, q) in &t[i + 1..] {
                match (&self.atoms[a], &self.atoms[b]) {
                    (Atom::Eq(l1, v1), Atom::Eq(l2, v2)) if p && q && l1 == l2 && v1 != v2 => {
                        return true;
                    }
                    _ => {}
                }
            }
        }
        // Ranges: intersect the positive ones per lhs, then test the excluded points.
        let mut bounds: Vec<(&Expr, i64, i64)> = Vec::new();
        for &(a, p) in t {
            if let (Atom::Range(l, lo, hi), true) = (&self.atoms[a], p) {
                match bounds.iter_mut().find(|b| b.0 == l) {
                    Some(b) => {
                        b.1 = b.1.max(*lo);
                        b.2 = b.2.min(*hi);
                    }
                    None => bounds.push((l, *lo, *hi)),
                }
            }
        }
        if bounds.iter().any(|b| b.1 > b.2) {
            return true;
        }
        t.iter().any(|&(a, p)| match (&self.atoms[a], p) {
            (Atom::Range(l, lo, hi), false) => {
                bounds.iter().any(|b| b.0 == l && *lo <= b.1 && b.2 <= *hi)
            }
            _ => false,
        })
    }

    fn disjoint(&self, a: &Dnf, b: &Dnf) -> bool {
        a.iter().all(|ta| {
            b.iter().all(|tb| {
                let mut t: Term = ta.iter().chain(tb).copied().collect();
                t.sort_unstable();
                t.dedup();
                self.unsat(&t)
            })
        })
    }

    /// Whether term `s` (earlier) holds whenever term `t` (later) does, syntactically.
    fn covers(&self, s: &[Lit], t: &[Lit]) -> bool {
        s.iter().all(|&(a, p)| {
            t.contains(&(a, p))
                || match (&self.atoms[a], p) {
                    (Atom::Range(l, lo, hi), true) => t.iter().any(|&(b, q)| {
                        matches!(&self.atoms[b], Atom::Range(l2, lo2, hi2)
                            if q && l2 == l && lo <= lo2 && hi2 <= hi)
                    }),
                    _ => false,
                }
        })
    }

    fn rule(&mut self, r: &Rule) -> Option<Dnf> {
        match &r.condition {
            Some(c) => self.dnf(c, true, 0),
            None => Some(vec![vec![]]),
        }
    }
}

fn always(d: &Option<Dnf>) -> bool {
    d.as_ref().is_some_and(|d| d.iter().any(|t| t.is_empty()))
}

/// E0008 within and across handlers, E0007 within `first` groups and for `otherwise`.
pub(crate) fn check_overlap(spec: &Spec, side: &Side, diags: &mut Diagnostics) {
    let mut nf = Nf {
        spec,
        atoms: Vec::new(),
    };
    for (p, ps) in spec.procedures.iter().zip(&side.procs) {
        for (h, hs) in p.handlers.iter().zip(&ps.handlers) {
            handler(&mut nf, h, hs, diags);
        }
        across_handlers(p, &ps.handlers, diags);
    }
}

fn handler(nf: &mut Nf<'_>, h: &Handler, hs: &HandlerSide, diags: &mut Diagnostics) {
    // When an alternative fires, as a normal form; `None` when unknown or not checkable.
    let mut fires: Vec<(Option<Dnf>, Span, bool)> = Vec::new();
    for (a, s) in h.alternatives.iter().zip(&hs.alts) {
        match (a, s) {
            (Alternative::Rule(r), AltSide::Rule(rs)) => {
                fires.push((nf.rule(r), rs.name, rs.ok));
            }
            (
                Alternative::First { rules, otherwise },
                AltSide::First {
                    span,
                    rules: sides,
                    otherwise: ow_side,
                },
            ) => {
                let ok = sides.iter().all(|s| s.ok);
                let dnfs: Vec<Option<Dnf>> = rules.iter().map(|r| nf.rule(r)).collect();
                first_group(nf, rules, &dnfs, sides, otherwise.as_ref(), *ow_side, diags);
                let d = if otherwise.is_some() {
                    Some(vec![vec![]])
                } else {
                    dnfs.iter()
                        .try_fold(Vec::new(), |mut acc, d| {
                            acc.extend(d.clone()?);
                            Some(acc)
                        })
                        .filter(|d| d.len() <= MAX_TERMS)
                };
                fires.push((d, *span, ok));
            }
            _ => {}
        }
    }
    for j in 0..fires.len() {
        for i in 0..j {
            let (di, si, oki) = &fires[i];
            let (dj, sj, okj) = &fires[j];
            if !(*oki && *okj) {
                continue;
            }
            let overlap = match (di, dj) {
                (Some(a), Some(b)) => !nf.disjoint(a, b),
                _ => true,
            };
            if overlap {
                diags.push(
                    Diagnostic::new(
                        Code::Overlap,
                        "two unordered alternatives can fire on the same input",
                        *sj,
                        "this can fire together with an earlier alternative",
                    )
                    .note(*si, "this one")
                    .help("order them in `first { … }` to say which wins, or make the conditions exclusive (`when x` / `when not x`, different values of one fact)"),
                );
                break;
            }
        }
    }
    if let (Some(_), Some(ow)) = (&h.otherwise, &hs.otherwise)
        && let Some((_, s, _)) = fires.iter().find(|(d, _, ok)| *ok && always(d))
    {
        diags.push(
            Diagnostic::new(
                Code::Shadowed,
                "this `otherwise` can never fire",
                ow.name,
                "never reached",
            )
            .note(*s, "this alternative always fires")
            .help("remove the `otherwise`, or give the alternative a condition"),
        );
    }
}

fn first_group(
    nf: &Nf<'_>,
    rules: &[Rule],
    dnfs: &[Option<Dnf>],
    sides: &[RuleSide],
    otherwise: Option<&Rule>,
    ow_side: Option<RuleSide>,
    diags: &mut Diagnostics,
) {
    for (j, dj) in dnfs.iter().enumerate() {
        let Some(dj) = dj else { continue };
        if !sides[j].ok || dj.is_empty() {
            continue;
        }
        let coverer = dj.iter().try_fold(None, |first: Option<usize>, t| {
            (0..j)
                .find(|&i| {
                    sides[i].ok
                        && dnfs[i]
                            .as_ref()
                            .is_some_and(|di| di.iter().any(|s| nf.covers(s, t)))
                })
                .map(|i| Some(first.map_or(i, |f: usize| f.min(i))))
        });
        if let Some(Some(i)) = coverer {
            diags.push(
                Diagnostic::new(
                    Code::Shadowed,
                    format!("rule `{}` can never fire", rules[j].name),
                    sides[j].name,
                    "shadowed by an earlier rule",
                )
                .note(sides[i].name, "this earlier rule matches every input it matches")
                .help("in `first { … }` the first matching rule wins: move the more specific rule up, or remove it"),
            );
        }
    }
    if let (Some(_), Some(ow)) = (otherwise, ow_side)
        && let Some(i) = (0..dnfs.len()).find(|&i| sides[i].ok && always(&dnfs[i]))
    {
        diags.push(
            Diagnostic::new(
                Code::Shadowed,
                "this `otherwise` can never fire",
                ow.name,
                "never reached",
            )
            .note(sides[i].name, "this rule always fires")
            .help("remove the `otherwise`, or give the rule a condition"),
        );
    }
}

fn triggers_overlap(a: &Trigger, b: &Trigger) -> bool {
    match (a, b) {
        (Trigger::Response { lo: l1, hi: h1 }, Trigger::Response { lo: l2, hi: h2 }) => {
            l1 <= h2 && l2 <= h1
        }
        _ => a == b,
    }
}

/// Two handlers for overlapping triggers that apply in a common state: which one runs
/// would depend on textual order.
fn across_handlers(p: &Procedure, sides: &[HandlerSide], diags: &mut Diagnostics) {
    let applies = |h: &Handler| -> Vec<usize> {
        if h.states.is_empty() {
            (0..p.states.len())
                .filter(|&s| !p.explicit_states || !p.states[s].is_final)
                .collect()
        } else {
            h.states.clone()
        }
    };
    for j in 0..p.handlers.len() {
        for i in 0..j {
            let (a, b) = (&p.handlers[i], &p.handlers[j]);
            if !triggers_overlap(&a.trigger, &b.trigger) {
                continue;
            }
            let sa = applies(a);
            let common: Vec<&str> = applies(b)
                .into_iter()
                .filter(|s| sa.contains(s))
                .map(|s| p.states[s].name.as_str())
                .collect();
            if common.is_empty() {
                continue;
            }
            let (Some(si), Some(sj)) = (sides.get(i), sides.get(j)) else {
                continue;
            };
            if !(si.trigger_ok && sj.trigger_ok) {
                continue;
            }
            diags.push(
                Diagnostic::new(
                    Code::Overlap,
                    "two handlers react to the same event in the same state",
                    sj.trigger,
                    format!("also handled in state{} {}", if common.len() == 1 { "" } else { "s" }, common.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")),
                )
                .note(si.trigger, "the other handler")
                .help("give each trigger one handler per state: split the states with `in …`, or merge the rules into one handler"),
            );
            break;
        }
    }
}

//! The trigger vocabulary (`on copy unroutable`, `on shutdown`, `on legs settled` …) read from
//! `grammar.pest`, the one place it is declared, so that a misspelt trigger word can be answered
//! with "did you mean" and a trigger added to the grammar is suggested without a second list to
//! keep in step.

use pest_meta::ast::Expr;
use std::collections::HashMap;
use std::sync::OnceLock;

/// The grammar the parser is derived from (the same file `pest_derive` reads).
const GRAMMAR: &str = include_str!("grammar.pest");

/// One form of trigger: its first word and, when a fixed set of words must follow, the grammar
/// rule naming that set and its words (`copy` → `copy_event`: `delivered`, `failed` …).
#[derive(Debug)]
pub(crate) struct TriggerForm {
    /// The first word after `on` (`copy`, `shutdown`, `initial`).
    pub(crate) head: String,
    /// The grammar rule of the word that follows, when it is a closed set of words.
    pub(crate) event_rule: Option<String>,
    /// That rule's words, in grammar order.
    pub(crate) events: Vec<String>,
}

/// Every trigger form of the grammar's `trigger` rule, in grammar order (empty if the grammar
/// cannot be read, which the parser derived from the same file rules out).
pub(crate) fn triggers() -> &'static [TriggerForm] {
    static FORMS: OnceLock<Vec<TriggerForm>> = OnceLock::new();
    FORMS.get_or_init(|| read_triggers(GRAMMAR))
}

fn read_triggers(grammar: &str) -> Vec<TriggerForm> {
    let Ok(pairs) = pest_meta::parser::parse(pest_meta::parser::Rule::grammar_rules, grammar)
    else {
        return Vec::new();
    };
    let Ok(rules) = pest_meta::parser::consume_rules(pairs) else {
        return Vec::new();
    };
    let by_name: HashMap<&str, &Expr> = rules.iter().map(|r| (r.name.as_str(), &r.expr)).collect();
    let Some(trigger) = by_name.get("trigger") else {
        return Vec::new();
    };
    let mut forms = Vec::new();
    for alt in alternatives(trigger) {
        let Expr::Ident(form) = alt else { continue };
        let Some(body) = by_name.get(form.as_str()) else {
            continue;
        };
        let parts = sequence(body);
        let Some(head) = parts.first().and_then(|p| first_word(p, &by_name)) else {
            continue;
        };
        let closed = parts.get(1).and_then(|p| match p {
            Expr::Ident(r) => closed_set(by_name.get(r.as_str())?).map(|w| (r.clone(), w)),
            _ => None,
        });
        let (event_rule, events) = match closed {
            Some((r, w)) => (Some(r), w),
            None => (None, Vec::new()),
        };
        forms.push(TriggerForm {
            head,
            event_rule,
            events,
        });
    }
    forms
}

/// `a | b | c` as `[a, b, c]` (one element when `e` is not a choice).
fn alternatives(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::Choice(a, b) => {
            let mut v = alternatives(a);
            v.extend(alternatives(b));
            v
        }
        other => vec![other],
    }
}

/// `a ~ b ~ c` as `[a, b, c]`.
fn sequence(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::Seq(a, b) => {
            let mut v = sequence(a);
            v.extend(sequence(b));
            v
        }
        other => vec![other],
    }
}

/// The literal word an expression starts with, through keyword rules (`kw_initial` →
/// `initial`); `None` when it starts with anything but a literal.
fn first_word(e: &Expr, rules: &HashMap<&str, &Expr>) -> Option<String> {
    match e {
        Expr::Str(s) => Some(s.clone()),
        Expr::Ident(r) => first_word(rules.get(r.as_str())?, rules),
        Expr::Seq(a, _) => first_word(a, rules),
        _ => None,
    }
}

/// The words of a rule that is a choice of literals only (`"settled" | "changed"`).
fn closed_set(e: &Expr) -> Option<Vec<String>> {
    alternatives(e)
        .into_iter()
        .map(|a| match a {
            Expr::Str(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar_s_triggers_are_read_with_their_closed_word_sets() {
        let forms = triggers();
        let heads: Vec<&str> = forms.iter().map(|f| f.head.as_str()).collect();
        for h in [
            "initial", "request", "response", "timer", "msrp", "legs", "leg", "copy", "shutdown",
        ] {
            assert!(heads.contains(&h), "{h} missing from {heads:?}");
        }
        let copy = forms.iter().find(|f| f.head == "copy").expect("copy");
        assert_eq!(copy.event_rule.as_deref(), Some("copy_event"));
        assert!(copy.events.iter().any(|w| w == "unroutable"));
        // `timer NAME` and `request METHOD` take an open word: no set to suggest from.
        let timer = forms.iter().find(|f| f.head == "timer").expect("timer");
        assert!(timer.events.is_empty() && timer.event_rule.is_none());
        let shutdown = forms
            .iter()
            .find(|f| f.head == "shutdown")
            .expect("shutdown");
        assert!(shutdown.events.is_empty());
    }

    #[test]
    fn a_new_trigger_in_a_grammar_is_read_without_a_list_to_update() {
        let g = "trigger = { trig_a | trig_b }\n\
                 trig_a = { kw_x ~ a_event }\n\
                 kw_x = @{ \"ex\" ~ !\"y\" }\n\
                 a_event = { \"one\" | \"two\" }\n\
                 trig_b = { \"bee\" }\n";
        let forms = read_triggers(g);
        assert_eq!(forms.len(), 2);
        assert_eq!(forms[0].head, "ex");
        assert_eq!(forms[0].events, ["one", "two"]);
        assert_eq!(forms[1].head, "bee");
    }
}

//! The generator: validated [`model::Spec`](crate::model::Spec) → Rust tokens.
//!
//! [`generate`] is a plain library function returning a [`proc_macro2::TokenStream`]; the
//! `imspec!` macro, [`crate::build::compile`] and the tests all call it. The expansion is:
//!
//! * `const _: &str = include_str!("<abs path>");` for every file read, so that editing any
//!   of them (imports too) rebuilds the crate;
//! * one private `fn __cond_<name>(__facts, __env) -> bool` per named condition that some
//!   procedure uses (directly or through another condition) — unused ones are left out so the
//!   output stays free of `dead_code` warnings;
//! * per procedure, a module named after it (snake case) with `PROCEDURE`, `CLAUSE`, `SPEC`
//!   (its rules), `TIMER_<NAME>` constants, a `State` enum and a `Machine` implementing
//!   [`im_runtime::machine::Machine`] — `handle` matches `(event, state)` with real patterns,
//!   evaluates the handler's alternatives, then its `otherwise`, and returns the actions,
//!   each stamped with the rule's `Origin`;
//! * `SPEC`, every rule of the spec;
//! * `AnyMachine`, an enum over all machines implementing `im_runtime::endpoint::DynMachine`,
//!   and the factory functions an `im_runtime::endpoint::Application` forwards to:
//!   `initial(&Method)`, `by_clause(&str)`, `invitee_leg()` and `methods()` (all omitted when
//!   the spec has no procedure).
//!
//! ## Calls and invitee legs
//!
//! `call 7.9.1.4` emits `ActionKind::Call("7.9.1.4")`: the runtime creates the callee with
//! `by_clause("7.9.1.4")` and feeds it the same event and facts; from then on the callee is
//! one more machine of the session and receives its later events. Machines therefore never
//! nest, a call cycle in a spec costs nothing at compile time, and every action keeps the
//! origin of the rule that really made it. `by_clause` returns the clause's procedure that has
//! an `on initial` handler — the checker's call target, unique by E0018 — so an invitee-leg
//! procedure sharing its inviter's clause (as the pairing below prefers) is never the callee;
//! only for a clause no such procedure implements does it fall back to the first one.
//!
//! An `invite each` starts one leg per recipient; each leg runs the machine returned by
//! `DynMachine::invitee_leg` of the inviting `AnyMachine`. The grammar does not name the leg
//! procedure, so the generator assigns it by convention: among the other procedures, those
//! that react to responses and to no initial request are leg procedures; one with the
//! inviter's clause is preferred, else the first in spec order.
//!
//! Generated code reaches behaviour through `::im_runtime::__private` (helpers for facts,
//! fields, built-ins and text interpolation), uses absolute paths, prefixes internal names
//! with `__`, marks trait impls `#[automatically_derived]`, and carries clause ids and
//! titles in `#[doc]`s. It contains no `unwrap`, `expect` or `panic!`.

mod expr;
mod invite;
mod machine;
mod names;

use crate::model::{Action, Expr, Procedure, Rule, SdpItem, Spec, Text, TextPart, Trigger};
use proc_macro2::TokenStream;
use quote::quote;

/// Generates the Rust items for `spec` (see the module docs for their shape).
pub fn generate(spec: &Spec) -> TokenStream {
    let includes = spec
        .files
        .iter()
        .filter_map(|(_, abs)| include(abs.as_deref()?));

    let used = used_conditions(spec);
    let conditions = spec
        .conditions
        .iter()
        .enumerate()
        .filter(|(i, _)| used.get(*i).copied().unwrap_or(false))
        .map(|(_, c)| {
            let f = names::internal("cond", &c.name);
            let body = expr::Cx::new(spec, TokenStream::new()).expr(&c.expr);
            let clause = c
                .clause
                .as_ref()
                .map(|c| format!(" [{c}]"))
                .unwrap_or_default();
            let doc = format!(
                " Condition `{}`{clause}, defined at `{}`:\n\n```text\n{}\n```",
                c.name,
                c.loc,
                crate::graph::expr_text(spec, &c.expr)
            );
            quote! {
                #[doc = #doc]
                fn #f(
                    __facts: &::im_runtime::machine::Facts,
                    __env: &::im_runtime::machine::Env<'_>,
                ) -> bool {
                    #body
                }
            }
        });

    let procedures = spec.procedures.iter().map(|p| machine::procedure(spec, p));

    let infos = spec.procedures.iter().flat_map(|p| {
        machine::rules(p)
            .into_iter()
            .map(move |r| machine::rule_info(p, r))
    });

    let any = any_machine(spec);

    quote! {
        #(#includes)*

        /// Every rule of the spec (procedure, rule, clause, `file:line`), for traces.
        pub const SPEC: &[::im_runtime::machine::RuleInfo] = &[#(#infos),*];

        #(#conditions)*

        #(#procedures)*

        #any
    }
}

/// `const _: &str = include_str!("<abs path>");`: makes the file a rebuild dependency (the
/// only way on stable Rust, see crates.md §6). Relative paths are made absolute first,
/// because `include_str!` would resolve them against the invoking source file.
pub fn include(path: &std::path::Path) -> Option<TokenStream> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        path.canonicalize().ok()?
    };
    let abs = abs.to_str()?;
    Some(quote!(
        const _: &str = ::core::include_str!(#abs);
    ))
}

/// For each condition, whether a procedure uses it (directly or through other conditions).
fn used_conditions(spec: &Spec) -> Vec<bool> {
    let mut used = vec![false; spec.conditions.len()];
    let mut work = Vec::new();
    for p in &spec.procedures {
        for r in machine::rules(p) {
            rule_conditions(r, &mut work);
        }
    }
    while let Some(i) = work.pop() {
        if let Some(u) = used.get_mut(i)
            && !*u
        {
            *u = true;
            if let Some(c) = spec.conditions.get(i) {
                expr_conditions(&c.expr, &mut work);
            }
        }
    }
    used
}

fn rule_conditions(r: &Rule, out: &mut Vec<usize>) {
    if let Some(c) = &r.condition {
        expr_conditions(c, out);
    }
    let text = |t: &Text, out: &mut Vec<usize>| {
        for p in &t.parts {
            if let TextPart::Value(e) = p {
                expr_conditions(e, out);
            }
        }
    };
    for a in &r.actions {
        match a {
            Action::Respond(resp) => {
                if let Some(w) = &resp.warning {
                    text(w, out);
                }
                for item in resp.sdp.iter().flatten() {
                    if let SdpItem::Attribute { when: Some(w), .. } = item {
                        expr_conditions(w, out);
                    }
                }
            }
            Action::StartTimer(_, e) => expr_conditions(e, out),
            Action::Log(t) => text(t, out),
            Action::InviteEach(_, _, inv) | Action::ForwardEach(_, _, inv) => {
                inv.headers.iter().for_each(|(_, v)| text(v, out))
            }
            _ => {}
        }
    }
}

fn expr_conditions(e: &Expr, out: &mut Vec<usize>) {
    match e {
        Expr::Condition(i) => out.push(*i),
        Expr::Field(x, _) | Expr::Not(x) => expr_conditions(x, out),
        Expr::Call(_, xs) | Expr::And(xs) | Expr::Or(xs) => {
            xs.iter().for_each(|x| expr_conditions(x, out));
        }
        Expr::Cmp(_, a, b) => {
            expr_conditions(a, out);
            expr_conditions(b, out);
        }
        Expr::Quant { list, body, .. } => {
            expr_conditions(list, out);
            expr_conditions(body, out);
        }
        Expr::Bool(_)
        | Expr::Int(_)
        | Expr::Str(_)
        | Expr::DurationMs(_)
        | Expr::Fact(_)
        | Expr::Var(_) => {}
    }
}

fn invites(p: &Procedure) -> bool {
    machine::rules(p).iter().any(|r| {
        r.actions
            .iter()
            .any(|a| matches!(a, Action::InviteEach(..)))
    })
}

fn is_leg(p: &Procedure) -> bool {
    let has = |f: fn(&Trigger) -> bool| p.handlers.iter().any(|h| f(&h.trigger));
    has(|t| matches!(t, Trigger::Response { .. })) && !has(|t| matches!(t, Trigger::Initial(_)))
}

/// The leg procedure of `inviter` (see the module docs).
pub fn invitee_leg_of(spec: &Spec, inviter: usize) -> Option<usize> {
    let me = spec.procedures.get(inviter)?;
    let legs: Vec<usize> = (0..spec.procedures.len())
        .filter(|&i| i != inviter && is_leg(&spec.procedures[i]))
        .collect();
    legs.iter()
        .copied()
        .find(|&i| spec.procedures[i].clause == me.clause)
        .or_else(|| legs.first().copied())
}

fn handles_initial(p: &Procedure, method: &str) -> bool {
    p.handlers.iter().any(|h| {
        matches!(&h.trigger, Trigger::Initial(m) if m == method)
            && crate::graph::handler_states(p, &h.states).contains(&p.initial)
    })
}

fn any_machine(spec: &Spec) -> TokenStream {
    if spec.procedures.is_empty() {
        return TokenStream::new();
    }
    let var = |p: &Procedure| names::camel_ident(&p.name);
    let module = |p: &Procedure| names::snake_ident(&p.name);
    let new = |p: &Procedure| {
        let (v, m) = (var(p), module(p));
        quote!(AnyMachine::#v(#m::Machine::new()))
    };
    let some_box = |p: &Procedure| {
        let n = new(p);
        quote!(::core::option::Option::Some(::std::boxed::Box::new(#n)))
    };
    let none = quote!(::core::option::Option::None);
    let variants = spec.procedures.iter().map(|p| {
        let (v, m) = (var(p), module(p));
        let doc = format!(
            " A machine of procedure `{}` (clause {}).",
            p.name, p.clause
        );
        quote!(#[doc = #doc] #v(#m::Machine),)
    });

    // Initial requests: per method, the root's first procedure when it takes that method,
    // else the first procedure in spec order that does (in its initial state).
    let mut methods: Vec<&str> = Vec::new();
    for p in &spec.procedures {
        for h in &p.handlers {
            if let Trigger::Initial(m) = &h.trigger
                && !methods.contains(&m.as_str())
                && handles_initial(p, m)
            {
                methods.push(m);
            }
        }
    }
    let initial_arms = methods.iter().filter_map(|m| {
        let p = spec.procedures.iter().find(|p| handles_initial(p, m))?;
        let b = some_box(p);
        Some(quote!(#m => #b,))
    });
    let method_list = methods
        .iter()
        .map(|m| quote!(::im_runtime::machine::Method::from_token(#m)));

    let mut seen = Vec::new();
    let clause_arms = spec.procedures.iter().filter_map(|p| {
        if seen.contains(&&p.clause) {
            return None;
        }
        seen.push(&p.clause);
        let target = spec.procedure_by_clause(&p.clause).unwrap_or(p);
        let (c, b) = (&p.clause, some_box(target));
        Some(quote!(#c => #b,))
    });
    let legs: Vec<TokenStream> = (0..spec.procedures.len())
        .filter(|&i| invites(&spec.procedures[i]))
        .filter_map(|i| {
            let leg = &spec.procedures[invitee_leg_of(spec, i)?];
            let me = var(&spec.procedures[i]);
            let b = some_box(leg);
            Some(quote!(Self::#me(_) => #b,))
        })
        .collect();
    let leg_body = if legs.is_empty() {
        none.clone()
    } else {
        quote!(match self { #(#legs)* _ => #none })
    };
    let any_leg = match (0..spec.procedures.len()).find(|&i| is_leg(&spec.procedures[i])) {
        Some(i) => some_box(&spec.procedures[i]),
        None => none.clone(),
    };
    let each = |body: TokenStream| {
        let arms = spec.procedures.iter().map(|p| {
            let v = var(p);
            quote!(Self::#v(__m) => #body,)
        });
        quote!(match self { #(#arms)* })
    };
    let arms_const = |c: TokenStream| {
        let arms = spec.procedures.iter().map(|p| {
            let (v, m) = (var(p), module(p));
            quote!(Self::#v(_) => #m::#c,)
        });
        quote!(match self { #(#arms)* })
    };
    let procedure = arms_const(quote!(PROCEDURE));
    let clause = arms_const(quote!(CLAUSE));
    let handle = each(quote!(::im_runtime::machine::Machine::handle(
        __m, now, event, facts, env
    )));
    let state_name = each(quote!(::im_runtime::machine::Machine::state_name(__m)));
    let is_final = each(quote!(::im_runtime::machine::Machine::is_final(__m)));
    let dynm = quote!(::std::boxed::Box<dyn ::im_runtime::endpoint::DynMachine>);

    quote! {
        /// Any machine of this spec, as the runtime holds it per request or invitee leg. It
        /// knows which machine runs the legs its `invite each` starts.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum AnyMachine {
            #(#variants)*
        }

        #[automatically_derived]
        impl ::im_runtime::endpoint::DynMachine for AnyMachine {
            fn procedure(&self) -> &'static str {
                #procedure
            }

            fn clause(&self) -> &'static str {
                #clause
            }

            fn handle(
                &mut self,
                now: ::std::time::Instant,
                event: &::im_runtime::machine::Event,
                facts: &::im_runtime::machine::Facts,
                env: &::im_runtime::machine::Env<'_>,
            ) -> ::std::vec::Vec<::im_runtime::machine::Action> {
                #handle
            }

            fn state_name(&self) -> &'static str {
                #state_name
            }

            fn is_final(&self) -> bool {
                #is_final
            }

            fn invitee_leg(&self) -> ::core::option::Option<#dynm> {
                #leg_body
            }
        }

        /// A fresh machine for an initial request of `method`, or `None` when no procedure
        /// of the spec takes it (for `Application::initial`).
        pub fn initial(method: &::im_runtime::machine::Method) -> ::core::option::Option<#dynm> {
            match method.as_str() {
                #(#initial_arms)*
                _ => #none,
            }
        }

        /// A fresh machine of the procedure implementing `clause`, the target of
        /// `ActionKind::Call` (for `Application::by_clause`).
        pub fn by_clause(clause: &str) -> ::core::option::Option<#dynm> {
            match clause {
                #(#clause_arms)*
                _ => #none,
            }
        }

        /// A fresh invitee-leg machine (the spec's first leg procedure), for legs whose
        /// inviting machine names none (for `Application::invitee_leg`).
        pub fn invitee_leg() -> ::core::option::Option<#dynm> {
            #any_leg
        }

        /// The methods the spec takes as initial requests (for `Allow`).
        pub fn methods() -> ::std::vec::Vec<::im_runtime::machine::Method> {
            ::std::vec::Vec::from([#(#method_list),*])
        }
    }
}

/// Items with the public names a spec's expansion would have, and no behaviour: what the
/// macro emits beside its `compile_error!`s when a spec fails to check, so that user code
/// naming `<procedure>::Machine`, `AnyMachine` or `SPEC` reports no follow-on errors.
///
/// `procedures` are the names found in the failed spec (see [`procedure_names`]). Each gets a
/// module with `PROCEDURE`, `CLAUSE`, `SPEC`, an empty `State` and a `Machine` whose `handle`
/// does nothing; `AnyMachine` gets one variant per procedure (a `Spec` variant when none).
pub fn generate_stub(procedures: &[String]) -> TokenStream {
    let mut names: Vec<&String> = Vec::new();
    for p in procedures {
        if !names.contains(&p) {
            names.push(p);
        }
    }
    let modules = names.iter().map(|n| {
        let m = names::snake_ident(n);
        quote! {
            /// Not generated: the spec failed to check.
            pub mod #m {
                /// Procedure name.
                pub const PROCEDURE: &str = #n;
                /// Clause id (unknown: the spec failed to check).
                pub const CLAUSE: &str = "";
                /// No rules: the spec failed to check.
                pub const SPEC: &[::im_runtime::machine::RuleInfo] = &[];
                /// No states: the spec failed to check.
                #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
                pub enum State {}
                /// A machine that does nothing: the spec failed to check.
                #[derive(Clone, Debug, Default, PartialEq, Eq)]
                pub struct Machine;
                impl Machine {
                    /// A machine that does nothing.
                    pub const fn new() -> Self {
                        Machine
                    }
                }
                #[automatically_derived]
                impl ::im_runtime::machine::Machine for Machine {
                    const PROCEDURE: &'static str = PROCEDURE;
                    const CLAUSE: &'static str = CLAUSE;
                    fn handle(
                        &mut self,
                        _: ::std::time::Instant,
                        _: &::im_runtime::machine::Event,
                        _: &::im_runtime::machine::Facts,
                        _: &::im_runtime::machine::Env<'_>,
                    ) -> ::std::vec::Vec<::im_runtime::machine::Action> {
                        ::std::vec::Vec::new()
                    }
                    fn state_name(&self) -> &'static str {
                        ""
                    }
                    fn is_final(&self) -> bool {
                        true
                    }
                }
            }
        }
    });
    let variants: Vec<TokenStream> = if names.is_empty() {
        vec![quote!(/// No procedures: the spec failed to check.
            Spec,)]
    } else {
        names
            .iter()
            .map(|n| {
                let (v, m) = (names::camel_ident(n), names::snake_ident(n));
                quote!(/// Not generated: the spec failed to check.
                    #v(#m::Machine),)
            })
            .collect()
    };
    let dynm = quote!(::std::boxed::Box<dyn ::im_runtime::endpoint::DynMachine>);
    quote! {
        /// No rules: the spec failed to check.
        pub const SPEC: &[::im_runtime::machine::RuleInfo] = &[];
        #(#modules)*
        /// Not generated: the spec failed to check.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum AnyMachine {
            #(#variants)*
        }
        /// No machine: the spec failed to check.
        pub fn initial(_: &::im_runtime::machine::Method) -> ::core::option::Option<#dynm> {
            ::core::option::Option::None
        }
        /// No machine: the spec failed to check.
        pub fn by_clause(_: &str) -> ::core::option::Option<#dynm> {
            ::core::option::Option::None
        }
        /// No machine: the spec failed to check.
        pub fn invitee_leg() -> ::core::option::Option<#dynm> {
            ::core::option::Option::None
        }
        /// No methods: the spec failed to check.
        pub fn methods() -> ::std::vec::Vec<::im_runtime::machine::Method> {
            ::std::vec::Vec::new()
        }
    }
}

/// Names of the procedures a spec's sources declare, found lexically (`procedure NAME`), so
/// that it works on text that does not parse.
pub fn procedure_names<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out = Vec::new();
    for text in texts {
        for line in text.lines() {
            let code = line.split("//").next().unwrap_or("");
            let mut words = code.split_whitespace();
            while let Some(w) = words.next() {
                if w == "procedure"
                    && let Some(name) = words.next()
                {
                    let name: String = name
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    let ok = name
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
                    if ok && !out.contains(&name) {
                        out.push(name);
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procedure_names_are_found_lexically() {
        let text =
            "// procedure commented\nprocedure a_b [1.2] {\n  states { }\n}\n procedure  c{ x";
        assert_eq!(procedure_names([text]), vec!["a_b", "c"]);
        assert!(procedure_names(["procedure 1x"]).is_empty());
    }

    #[test]
    fn stub_has_the_public_names() {
        let ts = generate_stub(&["invitee_leg".to_string()]).to_string();
        assert!(ts.contains("pub mod invitee_leg"));
        assert!(ts.contains("InviteeLeg (invitee_leg :: Machine)"));
        assert!(ts.contains("pub const SPEC"));
        let none = generate_stub(&[]).to_string();
        assert!(none.contains("Spec ,"));
    }
}

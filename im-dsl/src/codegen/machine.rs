//! One procedure → one module: `State`, `Machine`, the `Machine` impl, timers and `SPEC`.

use super::expr::Cx;
use super::names::{camel_ident, snake_ident, timer_const};
use crate::graph::{handler_states_of, trigger_text};
use crate::model::{
    Action, Alternative, Handler, MsrpTrigger, Procedure, Recipients, Respond, Rule, SdpItem, Spec,
    TimerRef, Trigger,
};
use proc_macro2::{Literal, TokenStream};
use quote::quote;

pub(crate) fn rule_info(proc: &Procedure, r: &Rule) -> TokenStream {
    let (pname, rname, clause) = (&proc.name, &r.name, &r.clause);
    let location = format!("{}:{}", r.loc.file, r.loc.line);
    quote! {
        ::im_runtime::machine::RuleInfo {
            procedure: #pname,
            rule: #rname,
            clause: #clause,
            location: #location,
        }
    }
}

/// Every rule of a procedure, in source order.
pub(crate) fn rules(proc: &Procedure) -> Vec<&Rule> {
    let mut out = Vec::new();
    for h in &proc.handlers {
        for alt in &h.alternatives {
            match alt {
                Alternative::Rule(r) => out.push(r),
                Alternative::First { rules, otherwise } => {
                    out.extend(rules.iter());
                    out.extend(otherwise.iter());
                }
            }
        }
        out.extend(h.otherwise.iter());
    }
    out
}

fn timer(t: TimerRef) -> TokenStream {
    match t {
        TimerRef::B => quote!(::im_runtime::machine::Timer::B),
        TimerRef::F => quote!(::im_runtime::machine::Timer::F),
        TimerRef::H => quote!(::im_runtime::machine::Timer::H),
        TimerRef::Lifetime => quote!(::im_runtime::machine::Timer::Lifetime),
        TimerRef::Spec(i) => {
            let n = Literal::u16_unsuffixed(u16::try_from(i).unwrap_or(u16::MAX));
            quote!(::im_runtime::machine::Timer::Spec(#n))
        }
    }
}

fn method_pattern(m: &str) -> (TokenStream, Option<TokenStream>) {
    let known = [
        ("INVITE", "Invite"),
        ("ACK", "Ack"),
        ("BYE", "Bye"),
        ("CANCEL", "Cancel"),
        ("OPTIONS", "Options"),
        ("REGISTER", "Register"),
        ("MESSAGE", "Message"),
        ("SUBSCRIBE", "Subscribe"),
        ("NOTIFY", "Notify"),
        ("REFER", "Refer"),
        ("UPDATE", "Update"),
        ("INFO", "Info"),
        ("PRACK", "Prack"),
        ("PUBLISH", "Publish"),
    ];
    match known.iter().find(|(t, _)| *t == m) {
        Some((_, v)) => {
            let v = proc_macro2::Ident::new(v, proc_macro2::Span::call_site());
            (quote!(::im_runtime::machine::Method::#v), None)
        }
        // An extension method has no variant; `Method::Other` keeps its token.
        None => (
            quote!(::im_runtime::machine::Method::Other(__method)),
            Some(quote!(&**__method == #m)),
        ),
    }
}

/// The event pattern of a trigger, with a guard when a pattern cannot say it all.
fn trigger_pattern(t: &Trigger) -> (TokenStream, Option<TokenStream>) {
    let ev = quote!(::im_runtime::machine::Event);
    match t {
        Trigger::Initial(m) => {
            let (p, g) = method_pattern(m);
            (quote!(#ev::InitialRequest(#p)), g)
        }
        Trigger::Request(m) => {
            let (p, g) = method_pattern(m);
            (quote!(#ev::InDialogRequest(#p)), g)
        }
        Trigger::Response { lo, hi } => {
            let (l, h) = (Literal::u16_unsuffixed(*lo), Literal::u16_unsuffixed(*hi));
            if lo == hi {
                (quote!(#ev::Response(#l)), None)
            } else {
                (quote!(#ev::Response(#l..=#h)), None)
            }
        }
        Trigger::Timer(t) => {
            let t = timer(*t);
            (quote!(#ev::Timer(#t)), None)
        }
        Trigger::Msrp(m) => {
            let me = quote!(::im_runtime::machine::MsrpEvent);
            let p = match m {
                MsrpTrigger::Connected => quote!(#me::Connected),
                MsrpTrigger::Message => quote!(#me::MessageReceived),
                MsrpTrigger::Delivered => quote!(#me::Delivered),
                MsrpTrigger::Failed => quote!(#me::DeliveryFailed(_)),
                MsrpTrigger::Closed => quote!(#me::Closed),
            };
            (quote!(#ev::Msrp(#p)), None)
        }
        Trigger::LegsSettled => (quote!(#ev::LegsSettled), None),
        Trigger::LegsChanged => (quote!(#ev::LegsChanged), None),
        Trigger::Copy(crate::model::CopyTrigger::Unroutable) => (
            quote!(#ev::Copy(::im_runtime::machine::CopyOutcome::Unroutable)),
            None,
        ),
        Trigger::Copy(crate::model::CopyTrigger::Expired) => (
            quote!(#ev::Copy(::im_runtime::machine::CopyOutcome::Expired)),
            None,
        ),
        Trigger::Copy(crate::model::CopyTrigger::Delivered) => (
            quote!(#ev::Copy(::im_runtime::machine::CopyOutcome::Delivered)),
            None,
        ),
        Trigger::Copy(crate::model::CopyTrigger::Failed) => (
            quote!(#ev::Copy(::im_runtime::machine::CopyOutcome::Failed(_))),
            None,
        ),
        Trigger::Shutdown => (quote!(#ev::Shutdown), None),
        Trigger::Leg(l) => {
            let le = quote!(::im_runtime::machine::LegEvent);
            let p = match l {
                crate::model::LegTrigger::Cancelled => quote!(#le::Cancelled),
                crate::model::LegTrigger::Unroutable => quote!(#le::Unroutable),
            };
            (quote!(#ev::Leg(#p)), None)
        }
    }
}

/// `request other`: an in-dialog request whose method no `on request` handler of the spec
/// names (any procedure's: a SUBSCRIBE that ext-dr answers is not "other" to 6.1.3.3.2);
/// ACK (never answered) and CANCEL (answered by its own transaction, RFC 3261 §9.2) are not
/// "other" either.
fn other_requests(spec: &Spec) -> (TokenStream, Option<TokenStream>) {
    let mut named = vec!["ACK".to_string(), "CANCEL".to_string()];
    for h in spec.procedures.iter().flat_map(|p| &p.handlers) {
        if let Trigger::Request(m) = &h.trigger
            && m != crate::ast::OTHER_METHODS
            && !named.contains(m)
        {
            named.push(m.clone());
        }
    }
    (
        quote!(::im_runtime::machine::Event::InDialogRequest(__method)),
        Some(
            quote!(!{ const NAMED: &[&str] = &[#(#named),*]; NAMED.contains(&__method.as_str()) }),
        ),
    )
}

struct Gen<'a> {
    spec: &'a Spec,
    proc: &'a Procedure,
    cx: Cx<'a>,
}

impl Gen<'_> {
    fn origin(&self, r: &Rule) -> TokenStream {
        let (clause, rule) = (&r.clause, &r.name);
        quote! {
            ::im_runtime::machine::Origin { procedure: PROCEDURE, clause: #clause, rule: #rule }
        }
    }

    fn respond(&mut self, r: &Respond) -> TokenStream {
        let cow = quote!(::std::borrow::Cow::Borrowed);
        let hv = quote!(::im_runtime::machine::HeaderValue);
        let status = Literal::u16_unsuffixed(r.status);
        let reason = &r.reason;
        let mut headers = Vec::new();
        if r.contact_focus && r.contact_params.is_empty() {
            headers.push(quote!((#cow("Contact"), #hv::FocusContact)));
        } else if r.contact_focus {
            let params: String = r.contact_params.iter().map(|p| format!(";{p}")).collect();
            headers.push(quote!((#cow("Contact"), #hv::FocusContactWith(#cow(#params)))));
        }
        for (n, v) in &r.headers {
            headers.push(quote!((#cow(#n), #hv::Text(#cow(#v)))));
        }
        let headers = vec_expr(&headers);
        let warning = match &r.warning {
            Some(t) => {
                let t = self.cx.text(t);
                let code = r.warning_code;
                quote!(::core::option::Option::Some(::im_runtime::machine::Warning {
                    code: #code,
                    text: #t,
                }))
            }
            None => quote!(::core::option::Option::None),
        };
        let sdp = match &r.sdp {
            Some(items) => self.sdp(items),
            None => quote!(::std::vec::Vec::new()),
        };
        quote! {
            ::im_runtime::machine::ActionKind::Respond(::im_runtime::machine::Reply {
                status: #status,
                reason: #cow(#reason),
                headers: #headers,
                warning: #warning,
                sdp_answer: #sdp,
            })
        }
    }

    fn sdp(&mut self, items: &[SdpItem]) -> TokenStream {
        let it = quote!(::im_runtime::machine::SdpAnswerItem);
        let cow = quote!(::std::borrow::Cow::Borrowed);
        let mut conditional = false;
        let mut out = Vec::new();
        for item in items {
            let (ts, when) = match item {
                SdpItem::OwnPath => (quote!(#it::OwnPath), None),
                SdpItem::MediaFromOffer => (quote!(#it::MediaFromOffer), None),
                SdpItem::AcceptTypesIntersect => (quote!(#it::AcceptTypesIntersection), None),
                SdpItem::AcceptWrappedTypesIntersect => {
                    (quote!(#it::AcceptWrappedTypesIntersection), None)
                }
                SdpItem::OwnMaxSize => (quote!(#it::OwnMaxSize), None),
                SdpItem::MirrorDirection => (quote!(#it::MirrorDirection), None),
                SdpItem::ComplementSetup => (quote!(#it::ComplementSetup), None),
                SdpItem::Echo(n) => (quote!(#it::Echo(#cow(#n))), None),
                SdpItem::Else(status, reason) => (quote!(#it::Else(#status, #cow(#reason))), None),
                SdpItem::Attribute { name, value, when } => {
                    let v = match value {
                        Some(v) => quote!(::core::option::Option::Some(#cow(#v))),
                        None => quote!(::core::option::Option::None),
                    };
                    let w = when.as_ref().map(|w| self.cx.expr(w));
                    (quote!(#it::Fixed(#cow(#name), #v)), w)
                }
            };
            conditional |= when.is_some();
            out.push((ts, when));
        }
        if !conditional {
            let items: Vec<_> = out.into_iter().map(|(ts, _)| ts).collect();
            return vec_expr(&items);
        }
        let opts = out.into_iter().map(|(ts, when)| match when {
            Some(w) => quote! {
                if #w { ::core::option::Option::Some(#ts) } else { ::core::option::Option::None }
            },
            None => quote!(::core::option::Option::Some(#ts)),
        });
        quote!(::im_runtime::__private::present([#(#opts),*]))
    }

    fn action(&mut self, r: &Rule, a: &Action) -> Option<TokenStream> {
        let k = quote!(::im_runtime::machine::ActionKind);
        let rec = |r: Recipients| match r {
            Recipients::RecipientList => {
                quote!(::im_runtime::machine::Recipients::RecipientList)
            }
            Recipients::GroupMembers => quote!(::im_runtime::machine::Recipients::GroupMembers),
        };
        let sel = |s: crate::model::Selection| {
            let (w, d) = (s.without_originator, s.distinct);
            quote!(::im_runtime::machine::Selection { without_originator: #w, distinct: #d })
        };
        let kind = match a {
            Action::Goto(_) => return None,
            Action::Respond(resp) => self.respond(resp),
            Action::Call(i) => {
                let clause = self
                    .spec
                    .procedures
                    .get(*i)
                    .map(|p| p.clause.as_str())
                    .unwrap_or("");
                quote!(#k::Call(#clause))
            }
            Action::InviteEach(x, s, inv) => {
                let (x, s) = (rec(*x), sel(*s));
                let inv = super::invite::invitation(&mut self.cx, inv);
                quote!(#k::InviteEach(#x, #s, #inv))
            }
            Action::ForwardEach(x, s, inv) => {
                let (x, s) = (rec(*x), sel(*s));
                let inv = super::invite::invitation(&mut self.cx, inv);
                quote!(#k::ForwardEach(#x, #s, #inv))
            }
            Action::Cancel => quote!(#k::Cancel),
            Action::Bye => quote!(#k::Bye),
            Action::CancelLegs => quote!(#k::CancelLegs),
            Action::ByeLegs => quote!(#k::ByeLegs),
            Action::Deliver { success_report } => quote!(#k::Deliver {
                success_report: #success_report
            }),
            Action::Outcome(o) => {
                let d = quote!(::im_runtime::machine::DeliveryOutcome);
                match o {
                    None => quote!(#k::Outcome(#d::Delivered)),
                    Some(None) => quote!(#k::Outcome(#d::Failed(::core::option::Option::None))),
                    Some(Some(s)) => {
                        let s = Literal::u16_unsuffixed(*s);
                        quote!(#k::Outcome(#d::Failed(::core::option::Option::Some(#s))))
                    }
                }
            }
            Action::SendImdn(true) => {
                quote!(#k::SendImdn(::im_runtime::machine::ImdnStatus::Delivered))
            }
            Action::ForwardImdn => quote!(#k::ForwardImdn),
            Action::AcceptSubscription => quote!(#k::AcceptSubscription),
            Action::NotifySubscribers => quote!(#k::NotifySubscribers),
            Action::StoreCopy => quote!(#k::StoreCopy),
            Action::SendImdn(false) => {
                quote!(#k::SendImdn(::im_runtime::machine::ImdnStatus::Failed))
            }
            Action::CollectImdn(true) => {
                quote!(#k::CollectImdn(::im_runtime::machine::ImdnStatus::Delivered))
            }
            Action::CollectImdn(false) => {
                quote!(#k::CollectImdn(::im_runtime::machine::ImdnStatus::Failed))
            }
            Action::Report(None) => {
                quote!(#k::Report(::im_runtime::machine::ReportOutcome::Success))
            }
            Action::Report(Some((status, reason))) => quote!(#k::Report(
                ::im_runtime::machine::ReportOutcome::Failure {
                    status: #status,
                    reason: ::std::borrow::Cow::Borrowed(#reason),
                }
            )),
            Action::StartTimer(t, after) => {
                let t = timer(*t);
                let after = self.cx.expr(after);
                quote!(#k::StartTimer(#t, #after))
            }
            Action::StopTimer(t) => {
                let t = timer(*t);
                quote!(#k::StopTimer(#t))
            }
            Action::Log(text) => {
                let t = self.cx.text(text);
                quote!(#k::Log(#t))
            }
        };
        let origin = self.origin(r);
        Some(quote!(::im_runtime::machine::Action { origin: #origin, kind: #kind }))
    }

    /// A rule's effect: the state change, then the actions it returns.
    fn rule_body(&mut self, r: &Rule) -> TokenStream {
        let goto = r.actions.iter().rev().find_map(|a| match a {
            Action::Goto(s) => self.proc.states.get(*s),
            _ => None,
        });
        let actions: Vec<TokenStream> =
            r.actions.iter().filter_map(|a| self.action(r, a)).collect();
        let list = vec_expr(&actions);
        match goto {
            Some(st) => {
                let v = camel_ident(&st.name);
                quote!({ self.state = State::#v; #list })
            }
            None => quote!(#list),
        }
    }

    /// The handler's alternatives as one `if … else if … else` chain. Alternatives are
    /// mutually exclusive (model invariant), so the order among them is immaterial; the
    /// rules of a `first` group keep their order. A `first` group closed by its own
    /// `otherwise` comes last, since it fires whenever no other alternative does.
    fn handler_body(&mut self, h: &Handler) -> TokenStream {
        let mut chain: Vec<(Option<TokenStream>, TokenStream)> = Vec::new();
        let mut closers: Vec<(&Rule, Vec<&Rule>)> = Vec::new();
        for alt in &h.alternatives {
            match alt {
                Alternative::Rule(r) => {
                    let c = r.condition.as_ref().map(|c| self.cx.expr(c));
                    chain.push((c, self.rule_body(r)));
                }
                Alternative::First {
                    rules,
                    otherwise: Some(o),
                } => closers.push((o, rules.iter().collect())),
                Alternative::First {
                    rules,
                    otherwise: None,
                } => {
                    for r in rules {
                        let c = r.condition.as_ref().map(|c| self.cx.expr(c));
                        chain.push((c, self.rule_body(r)));
                    }
                }
            }
        }
        for (o, rules) in closers {
            for r in rules {
                let c = r.condition.as_ref().map(|c| self.cx.expr(c));
                chain.push((c, self.rule_body(r)));
            }
            chain.push((None, self.rule_body(o)));
        }
        if let Some(o) = &h.otherwise {
            chain.push((None, self.rule_body(o)));
        }
        // Everything after the first unconditional branch is unreachable.
        let mut out: Option<TokenStream> = None;
        let mut ifs: Vec<(TokenStream, TokenStream)> = Vec::new();
        for (c, body) in chain {
            match c {
                Some(c) => ifs.push((c, body)),
                None => {
                    out = Some(body);
                    break;
                }
            }
        }
        let last = out.unwrap_or_else(|| quote!(::std::vec::Vec::new()));
        match ifs.split_first() {
            None => last,
            Some(((c0, b0), rest)) => {
                let (cs, bs): (Vec<_>, Vec<_>) = rest.iter().cloned().unzip();
                quote!(if #c0 { #b0 } #(else if #cs { #bs })* else { #last })
            }
        }
    }

    fn arms(&mut self) -> Vec<TokenStream> {
        let mut arms = Vec::new();
        for h in &self.proc.handlers {
            let (pat, guard) = match &h.trigger {
                Trigger::Request(m) if m == crate::ast::OTHER_METHODS => other_requests(self.spec),
                t => trigger_pattern(t),
            };
            let states = handler_states_of(self.proc, h);
            let state_pat = if states.len() == self.proc.states.len() {
                quote!(_)
            } else {
                let vs = states
                    .iter()
                    .filter_map(|&i| self.proc.states.get(i))
                    .map(|s| {
                        let v = camel_ident(&s.name);
                        quote!(State::#v)
                    });
                quote!(#(#vs)|*)
            };
            let guard = guard.map(|g| quote!(if #g));
            let body = self.handler_body(h);
            arms.push(quote!((#pat, #state_pat) #guard => #body,));
        }
        arms
    }
}

fn vec_expr(items: &[TokenStream]) -> TokenStream {
    if items.is_empty() {
        quote!(::std::vec::Vec::new())
    } else {
        quote!(::std::vec::Vec::from([#(#items),*]))
    }
}

/// The module for one procedure.
pub(crate) fn procedure(spec: &Spec, proc: &Procedure) -> TokenStream {
    let module = snake_ident(&proc.name);
    let (name, clause) = (&proc.name, &proc.clause);
    let title = proc
        .title
        .as_ref()
        .map(|t| format!(": {t}"))
        .unwrap_or_default();
    let module_doc = format!(
        " Procedure `{name}`, clause {clause}{title}.\n\nGenerated from `{}`; see [`Machine`] \
         for the states and transitions.",
        proc.loc
    );

    let variants = proc.states.iter().enumerate().map(|(i, s)| {
        let v = camel_ident(&s.name);
        let mut flags = Vec::new();
        if i == proc.initial {
            flags.push("initial");
        }
        if s.is_final {
            flags.push("final");
        }
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!(" ({})", flags.join(", "))
        };
        let doc = format!(" State `{}`{flags}, declared at `{}`.", s.name, s.loc);
        let default = (i == proc.initial).then(|| quote!(#[default]));
        quote!(#[doc = #doc] #default #v,)
    });
    let name_arms = proc.states.iter().map(|s| {
        let v = camel_ident(&s.name);
        let n = &s.name;
        quote!(State::#v => #n,)
    });
    let finals: Vec<_> = proc
        .states
        .iter()
        .filter(|s| s.is_final)
        .map(|s| {
            let v = camel_ident(&s.name);
            quote!(State::#v)
        })
        .collect();
    let is_final = if finals.is_empty() {
        quote!(false)
    } else {
        quote!(::core::matches!(self, #(#finals)|*))
    };
    let initial = proc
        .states
        .get(proc.initial)
        .map(|s| camel_ident(&s.name))
        .unwrap_or_else(|| camel_ident("active"));

    let timers = proc.timers.iter().enumerate().map(|(i, t)| {
        let c = timer_const(t);
        let v = timer(TimerRef::Spec(i));
        let doc = format!(" Timer `{t}` of this procedure.");
        quote!(#[doc = #doc] pub const #c: ::im_runtime::machine::Timer = #v;)
    });

    let infos = rules(proc).into_iter().map(|r| rule_info(proc, r));

    let mut g = Gen {
        spec,
        proc,
        cx: Cx::new(spec, quote!(super::)),
    };
    let arms = g.arms();
    let machine_doc = machine_doc(spec, proc);

    quote! {
        #[doc = #module_doc]
        pub mod #module {
            /// Procedure name as written in the spec.
            pub const PROCEDURE: &str = #name;
            /// Clause id of the procedure.
            pub const CLAUSE: &str = #clause;
            /// The procedure's rules (name, clause, `file:line`), for traces.
            pub const SPEC: &[::im_runtime::machine::RuleInfo] = &[#(#infos),*];
            #(#timers)*

            /// The procedure's states.
            #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
            pub enum State {
                #(#variants)*
            }

            impl State {
                /// The state's name as written in the spec.
                pub const fn name(self) -> &'static str {
                    match self { #(#name_arms)* }
                }

                /// Whether the state is final.
                pub const fn is_final(self) -> bool {
                    #is_final
                }
            }

            #[doc = #machine_doc]
            #[derive(Clone, Debug, Default, PartialEq, Eq)]
            pub struct Machine {
                state: State,
            }

            impl Machine {
                /// A machine in the initial state.
                pub const fn new() -> Self {
                    Machine { state: State::#initial }
                }

                /// The current state.
                pub const fn state(&self) -> State {
                    self.state
                }
            }

            #[automatically_derived]
            impl ::im_runtime::machine::Machine for Machine {
                const PROCEDURE: &'static str = PROCEDURE;
                const CLAUSE: &'static str = CLAUSE;

                fn handle(
                    &mut self,
                    __now: ::std::time::Instant,
                    __event: &::im_runtime::machine::Event,
                    __facts: &::im_runtime::machine::Facts,
                    __env: &::im_runtime::machine::Env<'_>,
                ) -> ::std::vec::Vec<::im_runtime::machine::Action> {
                    match (__event, self.state) {
                        #(#arms)*
                        #[allow(unreachable_patterns)]
                        _ => ::std::vec::Vec::new(),
                    }
                }

                fn state_name(&self) -> &'static str {
                    self.state.name()
                }

                fn is_final(&self) -> bool {
                    self.state.is_final()
                }
            }
        }
    }
}

/// The machine's doc: a transition table, one line per rule.
fn machine_doc(spec: &Spec, proc: &Procedure) -> String {
    let mut s = format!(
        " The state machine of procedure `{}` (clause {}).\n\n| state | on | rule | clause | does |\n|---|---|---|---|---|\n",
        proc.name, proc.clause
    );
    for h in &proc.handlers {
        let states: Vec<&str> = handler_states_of(proc, h)
            .into_iter()
            .filter_map(|i| proc.states.get(i).map(|s| s.name.as_str()))
            .collect();
        let trig = trigger_text(proc, &h.trigger);
        for (guard, r) in crate::graph::handler_rules(spec, h) {
            let acts: Vec<String> = r
                .actions
                .iter()
                .map(|a| crate::graph::action_text(spec, proc, a))
                .collect();
            let on = if guard.is_empty() {
                trig.clone()
            } else {
                format!("{trig} when {guard}")
            };
            s.push_str(&format!(
                "| {} | `{}` | `{}` | {} | {} |\n",
                states.join(", "),
                on.replace('|', "\\|"),
                r.name,
                r.clause,
                acts.join("; ").replace('|', "\\|")
            ));
        }
    }
    s
}

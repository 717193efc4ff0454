//! The "noisy printer" of `proptest_parse.rs`: prints a tree as tokens, joined by random
//! whitespace, optional braces and comments, so that the parser meets every spelling a spec
//! editor might write.

use im_dsl::ast::*;
use im_dsl::fmt::quote;

/// SplitMix64: the printer's choices come from one seed drawn by proptest.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Prints a tree as tokens, then joins them with random whitespace and comments.
struct Noisy {
    rng: Rng,
    toks: Vec<String>,
    /// Every comment written, as `scan_comments` reports it (from `//`, trailing blanks cut).
    comments: Vec<String>,
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '"' | '-')
}

impl Noisy {
    fn t(&mut self, s: impl Into<String>) {
        self.toks.push(s.into());
    }

    fn comment(&mut self) -> String {
        const CHARS: &[char] = &[
            'a', 'z', ' ', ' ', '/', '"', '{', '}', '\\', 'é', '*', '(', ')', '\t', '=',
        ];
        let n = self.rng.below(12) as usize;
        let body: String = (0..n)
            .map(|_| CHARS[self.rng.below(CHARS.len() as u64) as usize])
            .collect();
        let c = format!("//{body}");
        self.comments.push(c.trim_end().to_string());
        c
    }

    fn separator(&mut self, prev: &str, next: &str) -> String {
        let glue_ok =
            !prev.chars().last().is_some_and(is_word) && !next.chars().next().is_some_and(is_word);
        match self.rng.below(100) {
            0..=44 => " ".into(),
            45..=59 => format!("\n{}", " ".repeat(self.rng.below(9) as usize)),
            60..=69 => [" \t ", "  ", "\t", "\n\n  ", " \n\t"][self.rng.below(5) as usize].into(),
            70..=79 if glue_ok => String::new(),
            70..=79 => "\r\n".into(),
            _ => {
                let lead = [" ", "", "\t", "\n"][self.rng.below(4) as usize];
                let c = self.comment();
                let tail = ["\n", "\n\n", "\r\n  "][self.rng.below(3) as usize];
                format!("{lead}{c}{tail}")
            }
        }
    }

    fn finish(mut self) -> (String, Vec<String>) {
        let toks = std::mem::take(&mut self.toks);
        let mut out = String::new();
        if self.rng.chance(30) {
            let c = self.comment();
            out.push_str(&c);
            out.push('\n');
        }
        for (n, tok) in toks.iter().enumerate() {
            if n > 0 {
                let sep = self.separator(&toks[n - 1], tok);
                out.push_str(&sep);
            }
            out.push_str(tok);
        }
        if self.rng.chance(30) {
            out.push_str(" \n");
            let c = self.comment();
            out.push_str(&c);
            if self.rng.chance(50) {
                out.push('\n');
            }
        }
        (out, self.comments)
    }

    fn file(&mut self, f: &File) {
        for item in &f.items {
            match item {
                Item::Import(s) => {
                    self.t("import");
                    self.t(quote(&s.value));
                }
                Item::Condition(c) => {
                    self.t("condition");
                    self.t(c.name.name.clone());
                    self.clause(&c.clause);
                    self.t("=");
                    self.expr(&c.expr);
                }
                Item::Procedure(p) => self.procedure(p),
            }
        }
    }

    fn clause(&mut self, c: &Option<ClauseRef>) {
        if let Some(c) = c {
            self.t(format!("[{}]", c.id));
        }
    }

    fn procedure(&mut self, p: &Procedure) {
        self.t("procedure");
        self.t(p.name.name.clone());
        self.clause(&p.clause);
        if let Some(t) = &p.title {
            self.t(quote(&t.value));
        }
        self.t("{");
        // Interleave the three lists at random, keeping each list's order.
        let (mut s, mut t, mut h) = (0, 0, 0);
        while s < p.states.len() || t < p.timers.len() || h < p.handlers.len() {
            match self.rng.below(3) {
                0 if s < p.states.len() => {
                    self.states(&p.states[s]);
                    s += 1;
                }
                1 if t < p.timers.len() => {
                    self.t("timer");
                    self.t(p.timers[t].name.clone());
                    t += 1;
                }
                2 if h < p.handlers.len() => {
                    self.handler(&p.handlers[h]);
                    h += 1;
                }
                _ => {}
            }
        }
        self.t("}");
    }

    fn states(&mut self, s: &StatesBlock) {
        self.t("states");
        self.t("{");
        for d in &s.states {
            let mut flags = Vec::new();
            if d.initial {
                flags.push("initial");
            }
            if d.is_final {
                flags.push("final");
            }
            if self.rng.chance(20) && !flags.is_empty() {
                flags.push(flags[0]);
            }
            if self.rng.chance(50) {
                flags.reverse();
            }
            for f in flags {
                self.t(f);
            }
            self.t(d.name.name.clone());
        }
        self.t("}");
    }

    fn handler(&mut self, h: &Handler) {
        self.t("on");
        match &h.trigger.kind {
            TriggerKind::Initial(m) => {
                self.t("initial");
                self.t(m.clone());
            }
            TriggerKind::Request(m) => {
                self.t("request");
                self.t(m.clone());
            }
            TriggerKind::Response(lo, hi) => {
                self.t("response");
                self.t(lo.clone());
                if let Some(hi) = hi {
                    self.t("..");
                    self.t(hi.clone());
                }
            }
            TriggerKind::Timer(id) => {
                self.t("timer");
                self.t(id.name.clone());
            }
            TriggerKind::Msrp(e) => {
                self.t("msrp");
                self.t(e.clone());
            }
            TriggerKind::LegsSettled => {
                self.t("legs");
                self.t("settled");
            }
            TriggerKind::LegsChanged => {
                self.t("legs");
                self.t("changed");
            }
            TriggerKind::Copy(e) => {
                self.t("copy");
                self.t(e.clone());
            }
            TriggerKind::Leg(e) => {
                self.t("leg");
                self.t(e.clone());
            }
            TriggerKind::Shutdown => self.t("shutdown"),
        }
        for (n, s) in h.in_states.iter().enumerate() {
            self.t(if n == 0 { "in" } else { "," });
            self.t(s.name.clone());
        }
        self.t("{");
        for it in &h.block.items {
            self.block_item(it);
        }
        self.t("}");
    }

    fn block_item(&mut self, it: &BlockItem) {
        match it {
            BlockItem::Rule(r) => self.rule(r, false),
            BlockItem::Otherwise(r) => self.rule(r, true),
            BlockItem::First(f) => {
                self.t("first");
                self.t("{");
                for i in &f.items {
                    self.block_item(i);
                }
                self.t("}");
            }
        }
    }

    fn rule(&mut self, r: &Rule, otherwise: bool) {
        if otherwise {
            self.t("otherwise");
            if r.name.name != "otherwise" {
                self.t(r.name.name.clone());
            }
        } else {
            self.t("rule");
            self.t(r.name.name.clone());
        }
        self.clause(&r.clause);
        if let Some(w) = &r.when {
            self.t("when");
            self.expr(w);
        }
        self.t("=>");
        let braces = r.actions.len() != 1 || self.rng.chance(40);
        if braces {
            self.t("{");
        }
        for a in &r.actions {
            self.action(a);
        }
        if braces {
            self.t("}");
        }
    }

    fn action(&mut self, a: &Action) {
        match &a.kind {
            ActionKind::Respond(r) => {
                self.t("respond");
                if let Some((s, _)) = r.status {
                    self.t(format!("{s:03}"));
                }
                if let Some(reason) = &r.reason {
                    self.t(quote(&reason.value));
                }
                if !r.items.is_empty() || self.rng.chance(20) {
                    self.t("{");
                    for it in &r.items {
                        self.respond_item(it);
                    }
                    self.t("}");
                }
            }
            ActionKind::Call(c) => {
                self.t("call");
                self.t(c.id.clone());
            }
            ActionKind::Goto(s) => {
                self.t("goto");
                self.t(s.name.clone());
            }
            ActionKind::InviteEach(r, sel, _) | ActionKind::ForwardEach(r, sel, _) => {
                self.t(if matches!(a.kind, ActionKind::InviteEach(..)) {
                    "invite"
                } else {
                    "forward"
                });
                self.t("each");
                self.t(match r {
                    Recipients::RecipientList => "recipient_list",
                    Recipients::GroupMembers => "group_members",
                });
                if sel.without_originator {
                    self.t("without");
                    self.t("originator");
                }
                if sel.distinct {
                    self.t("distinct");
                }
                if let ActionKind::InviteEach(_, _, items) | ActionKind::ForwardEach(_, _, items) =
                    &a.kind
                    && (!items.is_empty() || self.rng.chance(20))
                {
                    self.t("{");
                    for it in items {
                        self.invite_item(it);
                    }
                    self.t("}");
                }
            }
            ActionKind::Cancel => self.t("cancel"),
            ActionKind::Bye => self.t("bye"),
            ActionKind::CancelLegs => {
                self.t("cancel");
                self.t("legs");
            }
            ActionKind::ByeLegs => {
                self.t("bye");
                self.t("legs");
            }
            ActionKind::Deliver(items) => {
                self.t("deliver");
                if !items.is_empty() {
                    self.t("{");
                    for DeliverItem::SuccessReport(w, _) in items {
                        self.t("success-report");
                        self.t(w.clone());
                    }
                    self.t("}");
                }
            }
            ActionKind::ForwardImdn => {
                self.t("forward");
                self.t("imdn");
            }
            ActionKind::AcceptSubscription => {
                self.t("accept");
                self.t("subscription");
            }
            ActionKind::NotifySubscribers => {
                self.t("notify");
                self.t("subscribers");
            }
            ActionKind::StoreCopy => {
                self.t("store");
                self.t("copy");
            }
            ActionKind::SendImdn(d) => {
                self.t("send");
                self.t("imdn");
                self.t(if *d { "delivered" } else { "failed" });
            }
            ActionKind::CollectImdn(d) => {
                self.t("collect");
                self.t("imdn");
                self.t(if *d { "delivered" } else { "failed" });
            }
            ActionKind::Report(Report::Success) => {
                self.t("report");
                self.t("success");
            }
            ActionKind::Outcome(o) => {
                self.t("outcome");
                match o {
                    None => self.t("delivered"),
                    Some(s) => {
                        self.t("failed");
                        if let Some((s, _)) = s {
                            self.t(format!("{s:03}"));
                        }
                    }
                }
            }
            ActionKind::Report(Report::Failure { status, reason }) => {
                self.t("report");
                self.t("failure");
                if let Some((s, _)) = status {
                    self.t(format!("{s:03}"));
                }
                if let Some(reason) = reason {
                    self.t(quote(&reason.value));
                }
            }
            ActionKind::StartTimer(t, e) => {
                self.t("start");
                self.t("timer");
                self.t(t.name.clone());
                self.t("after");
                self.expr(e);
            }
            ActionKind::StopTimer(t) => {
                self.t("stop");
                self.t("timer");
                self.t(t.name.clone());
            }
            ActionKind::Log(s) => {
                self.t("log");
                self.t(quote(&s.value));
            }
        }
    }

    fn respond_item(&mut self, it: &RespondItem) {
        match it {
            RespondItem::Header(n, v) => {
                self.t("header");
                self.t(n.name.clone());
                self.t("=");
                self.t(quote(&v.value));
            }
            RespondItem::ContactFocus(_, params) => {
                self.t("contact");
                self.t("focus");
                for p in params {
                    self.t(quote(&p.value));
                }
            }
            RespondItem::Warning(code, w) => {
                self.t("warning");
                if let Some((c, _)) = code {
                    self.t(c.to_string());
                }
                self.t(quote(&w.value));
            }
            RespondItem::Sdp(items, _) => {
                self.t("sdp");
                self.t("{");
                for i in items {
                    self.sdp_item(i);
                }
                self.t("}");
            }
        }
    }

    fn invite_item(&mut self, it: &InviteItem) {
        match it {
            InviteItem::Header(n, v) => {
                self.respond_item(&RespondItem::Header(n.clone(), v.clone()))
            }
            InviteItem::ContactFocus(s, p) => {
                self.respond_item(&RespondItem::ContactFocus(*s, p.clone()))
            }
            InviteItem::History(_) => self.t("history"),
            InviteItem::Offer(items, _) => {
                self.t("offer");
                self.t("{");
                for i in items {
                    match &i.kind {
                        OfferItemKind::Direction(w) => {
                            self.t("direction");
                            self.t(w.clone());
                        }
                        OfferItemKind::Setup(w) => {
                            self.t("setup");
                            self.t(w.clone());
                        }
                        OfferItemKind::AcceptWrappedTypesOwn => {
                            self.t("accept-wrapped-types");
                            self.t("own");
                        }
                        OfferItemKind::MaxSizeOwn => {
                            self.t("max-size");
                            self.t("own");
                        }
                        OfferItemKind::Attribute(n, v) => {
                            self.t("attribute");
                            self.t(n.clone());
                            if let Some(v) = v {
                                self.t("=");
                                self.t(quote(&v.value));
                            }
                        }
                    }
                }
                self.t("}");
            }
        }
    }

    fn sdp_item(&mut self, it: &SdpItem) {
        let words: &[&str] = match &it.kind {
            SdpItemKind::PathOwn => &["path", "own"],
            SdpItemKind::MediaFromOffer => &["media", "from", "offer"],
            SdpItemKind::AcceptTypesIntersect => &["accept-types", "intersect"],
            SdpItemKind::AcceptWrappedTypesIntersect => &["accept-wrapped-types", "intersect"],
            SdpItemKind::MaxSizeOwn => &["max-size", "own"],
            SdpItemKind::DirectionMirror => &["direction", "mirror"],
            SdpItemKind::SetupComplement => &["setup", "complement"],
            SdpItemKind::Echo(n) => {
                self.t("echo");
                self.t(n.clone());
                return;
            }
            SdpItemKind::Attribute(n, v, w) => {
                self.t("attribute");
                self.t(n.clone());
                if let Some(v) = v {
                    self.t("=");
                    self.t(quote(&v.value));
                }
                if let Some(w) = w {
                    self.t("when");
                    self.expr(w);
                }
                return;
            }
            SdpItemKind::Else(s, r) => {
                self.t("else");
                if let Some((s, _)) = s {
                    self.t(format!("{s:03}"));
                }
                if let Some(r) = r {
                    self.t(quote(&r.value));
                }
                return;
            }
        };
        for w in words {
            self.t(*w);
        }
    }

    fn expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Lit(l) => {
                let s = match l {
                    Lit::Bool(b) => b.to_string(),
                    Lit::Int(i) if *i >= 0 && self.rng.chance(10) => format!("00{i}"),
                    Lit::Int(i) => i.to_string(),
                    Lit::Str(s) => quote(s),
                    Lit::DurationMs(ms) if ms % 1000 == 0 && self.rng.chance(50) => {
                        format!("{}s", ms / 1000)
                    }
                    Lit::DurationMs(ms) => format!("{ms}ms"),
                };
                self.t(s);
            }
            ExprKind::Ref { path, args } => {
                for (n, p) in path.iter().enumerate() {
                    if n > 0 {
                        self.t(".");
                    }
                    self.t(p.name.clone());
                }
                if let Some(args) = args {
                    self.t("(");
                    for (n, a) in args.iter().enumerate() {
                        if n > 0 {
                            self.t(",");
                        }
                        self.expr(a);
                    }
                    self.t(")");
                }
            }
            ExprKind::Not(x) => {
                self.t("not");
                self.expr(x);
            }
            ExprKind::And(xs) | ExprKind::Or(xs) => {
                let op = if matches!(e.kind, ExprKind::And(_)) {
                    "and"
                } else {
                    "or"
                };
                for (n, x) in xs.iter().enumerate() {
                    if n > 0 {
                        self.t(op);
                    }
                    self.expr(x);
                }
            }
            ExprKind::Cmp(op, l, r) => {
                self.expr(l);
                self.t(op.as_str());
                self.expr(r);
            }
            ExprKind::Quant {
                quant,
                var,
                list,
                body,
            } => {
                self.t(quant.as_str());
                self.t(var.name.clone());
                self.t("in");
                self.expr(list);
                self.t("where");
                self.expr(body);
            }
            ExprKind::Paren(x) => {
                self.t("(");
                self.expr(x);
                self.t(")");
            }
        }
    }
}

pub(crate) fn noisy(f: &File, seed: u64) -> (String, Vec<String>) {
    let mut p = Noisy {
        rng: Rng(seed),
        toks: Vec::new(),
        comments: Vec::new(),
    };
    p.file(f);
    p.finish()
}

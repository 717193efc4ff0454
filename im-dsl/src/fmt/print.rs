//! Printing the tree as a layout document.

use super::comments::is_space;
use super::layout::*;
use super::{CONTINUATION, INDENT};
use crate::ast::*;

pub(super) struct Printer<'a> {
    pub(super) src: &'a str,
    /// Offsets of the comments, ascending.
    pub(super) comments: Vec<usize>,
    /// Per byte: whitespace or comment (outside string literals).
    pub(super) trivia: Vec<bool>,
}

impl Printer<'_> {
    /// `end` moved back over whitespace and comments. The spans of rules that end in an
    /// optional or repeated part (`a.b` without call arguments, `respond 200`, `x and y`)
    /// include the blanks and comments pest skipped while looking for that part.
    fn trim(&self, end: usize) -> usize {
        let mut e = end.min(self.trivia.len());
        while e > 0 && self.trivia[e - 1] {
            e -= 1;
        }
        e
    }

    /// Whether a comment starts strictly between `lo` and `hi`.
    fn comment_between(&self, lo: usize, hi: usize) -> bool {
        let i = self.comments.partition_point(|c| *c <= lo);
        self.comments.get(i).is_some_and(|c| *c < hi)
    }

    /// A group that is forced to break when a comment lies between `lo` and `hi` (its
    /// brackets): the comment then keeps its place among the lines instead of moving above.
    fn group_around(&self, d: Doc, lo: usize, hi: usize) -> Doc {
        Doc::Group(Box::new(d), self.comment_between(lo, hi))
    }

    /// A brace block that may print on one line (see the module docs): forced to break when
    /// a comment lies between its braces (`open` is the `{`, `close` the `}`) or when the
    /// author broke the line right after the `{`.
    fn brace_group(&self, d: Doc, open: usize, close: usize) -> Doc {
        let broken = self.comment_between(open, close) || self.line_break_after(open);
        Doc::Group(Box::new(d), broken)
    }

    /// Whether the `{` at `open` ends its source line (only blanks or a comment follow it).
    fn line_break_after(&self, open: usize) -> bool {
        if self.src.as_bytes().get(open) != Some(&b'{') {
            return false;
        }
        let rest = &self.src.as_bytes()[open + 1..];
        let blanks = rest
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t' | b'\r'))
            .count();
        matches!(rest.get(blanks), Some(b'\n')) || rest[blanks..].starts_with(b"//")
    }

    /// Offset of `tok` after `pos`, or `pos` when it is not there.
    fn find_or(&self, pos: usize, tok: &str) -> usize {
        self.find(pos, tok).unwrap_or(pos)
    }

    /// A token printed as `s` whose source starts at `start` and is `len` bytes long.
    fn tok(&self, s: impl Into<String>, start: usize, len: usize) -> Doc {
        Doc::Text(s.into(), Some((start, start + len)))
    }

    /// The token at `span`, printed as `s`.
    fn at(&self, s: impl Into<String>, span: Span) -> Doc {
        Doc::Text(
            s.into(),
            Some((span.start, self.trim(span.end).max(span.start))),
        )
    }

    /// The source text of `span` (literals are printed as the author escaped them).
    fn slice(&self, span: Span) -> Doc {
        let s = self.src.get(span.start..self.trim(span.end)).unwrap_or("");
        self.at(s, span)
    }

    fn string(&self, s: &StrLit) -> Doc {
        match self.src.get(s.span.start..s.span.end) {
            Some(raw) if raw.starts_with('"') => self.at(raw, s.span),
            _ => self.at(quote(&s.value), s.span),
        }
    }

    fn ident(&self, id: &Ident) -> Doc {
        self.at(id.name.clone(), id.span)
    }

    fn clause(&self, c: &ClauseRef) -> Doc {
        self.at(format!("[{}]", c.id), c.span)
    }

    /// Offset of `tok` as the next token at or after `pos` (skipping blanks and comments).
    fn find(&self, pos: usize, tok: &str) -> Option<usize> {
        let b = self.src.as_bytes();
        let mut i = pos;
        loop {
            while i < b.len() && is_space(b[i]) {
                i += 1;
            }
            if b[i..].starts_with(b"//") {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            return b[i..].starts_with(tok.as_bytes()).then_some(i);
        }
    }

    /// `tok` found after `pos`, spanned when found.
    fn punct(&self, pos: usize, tok: &str) -> Doc {
        match self.find(pos, tok) {
            Some(at) => self.tok(tok, at, tok.len()),
            None => text(tok),
        }
    }

    /// The `}` that ends `span`.
    fn close(&self, span: Span) -> Doc {
        if span.end > 0 && self.src.as_bytes().get(span.end - 1) == Some(&b'}') {
            self.tok("}", span.end - 1, 1)
        } else {
            text("}")
        }
    }

    /// `{ items }` with one item per line, `{}` when empty.
    fn block(
        &self,
        open: Doc,
        items: Vec<Doc>,
        close: Doc,
        blank_between: impl Fn(usize) -> bool,
    ) -> Doc {
        if items.is_empty() {
            return cat(vec![open, close]);
        }
        let mut inner = Vec::new();
        for (n, it) in items.into_iter().enumerate() {
            inner.push(if n > 0 && blank_between(n) {
                Doc::BlankLine
            } else {
                Doc::HardLine
            });
            inner.push(it);
        }
        cat(vec![open, nest(INDENT, cat(inner)), Doc::HardLine, close])
    }

    pub(super) fn file(&self, f: &File) -> Doc {
        let mut out = Vec::new();
        let mut prev_import = false;
        for (n, item) in f.items.iter().enumerate() {
            let is_import = matches!(item, Item::Import(_));
            if n > 0 {
                out.push(if is_import && prev_import {
                    Doc::HardLine
                } else {
                    Doc::BlankLine
                });
            }
            prev_import = is_import;
            out.push(match item {
                Item::Import(s) => cat(vec![text("import "), self.string(s)]),
                Item::Condition(c) => self.condition(c),
                Item::Procedure(p) => self.procedure(p),
            });
        }
        cat(out)
    }

    fn condition(&self, c: &ConditionDef) -> Doc {
        let mut head = vec![
            self.tok("condition", c.span.start, "condition".len()),
            text(" "),
            self.ident(&c.name),
        ];
        if let Some(cl) = &c.clause {
            head.push(text(" "));
            head.push(self.clause(cl));
        }
        let eq_from = c
            .clause
            .as_ref()
            .map(|x| x.span.end)
            .unwrap_or(c.name.span.end);
        head.push(text(" "));
        head.push(self.punct(eq_from, "="));
        head.push(nest(INDENT, cat(vec![LINE, self.expr(&c.expr)])));
        group(cat(head))
    }

    fn procedure(&self, p: &Procedure) -> Doc {
        let mut head = vec![
            self.tok("procedure", p.span.start, "procedure".len()),
            text(" "),
            self.ident(&p.name),
        ];
        let mut after = p.name.span.end;
        if let Some(cl) = &p.clause {
            head.push(text(" "));
            head.push(self.clause(cl));
            after = cl.span.end;
        }
        if let Some(t) = &p.title {
            head.push(text(" "));
            head.push(self.string(t));
            after = t.span.end;
        }
        head.push(text(" "));
        head.push(self.punct(after, "{"));
        let mut items = Vec::new();
        let mut handler_from = 0;
        for s in &p.states {
            items.push(self.states(s));
            handler_from += 1;
        }
        for t in &p.timers {
            items.push(cat(vec![text("timer "), self.ident(t)]));
            handler_from += 1;
        }
        for h in &p.handlers {
            items.push(self.handler(h));
        }
        let close = self.close(p.span);
        self.block(cat(head), items, close, |n| n == handler_from)
    }

    fn states(&self, s: &StatesBlock) -> Doc {
        let open = cat(vec![
            self.tok("states", s.span.start, "states".len()),
            text(" "),
            self.punct(s.span.start + "states".len(), "{"),
        ]);
        let close = self.close(s.span);
        if s.states.is_empty() {
            return cat(vec![open, close]);
        }
        let open_at = self.find_or(s.span.start + "states".len(), "{");
        let mut inner = Vec::new();
        for (n, d) in s.states.iter().enumerate() {
            inner.push(if n == 0 { LINE } else { WIDE });
            let mut words = Vec::new();
            if d.initial {
                words.push("initial ");
            }
            if d.is_final {
                words.push("final ");
            }
            let flags = words.concat();
            if flags.is_empty() {
                inner.push(self.ident(&d.name));
            } else {
                inner.push(cat(vec![
                    Doc::Text(flags, Some((d.span.start, d.span.start))),
                    self.ident(&d.name),
                ]));
            }
        }
        self.brace_group(
            cat(vec![open, nest(INDENT, cat(inner)), LINE, close]),
            open_at,
            s.span.end.saturating_sub(1),
        )
    }

    fn handler(&self, h: &Handler) -> Doc {
        let mut head = vec![
            self.tok("on", h.span.start, 2),
            text(" "),
            self.at(trigger_text(&h.trigger.kind), h.trigger.span),
        ];
        for (n, s) in h.in_states.iter().enumerate() {
            head.push(text(if n == 0 { " in " } else { ", " }));
            head.push(self.ident(s));
        }
        head.push(text(" "));
        head.push(self.tok("{", h.block.span.start, 1));
        self.block_items(cat(head), &h.block.items, self.close(h.block.span))
    }

    fn block_items(&self, open: Doc, items: &[BlockItem], close: Doc) -> Doc {
        let items = items.iter().map(|i| self.block_item(i)).collect();
        self.block(open, items, close, |_| false)
    }

    fn block_item(&self, item: &BlockItem) -> Doc {
        match item {
            BlockItem::Rule(r) => self.rule(r, false),
            BlockItem::Otherwise(r) => self.rule(r, true),
            BlockItem::First(f) => {
                let open = cat(vec![
                    self.tok("first", f.span.start, "first".len()),
                    text(" "),
                    self.punct(f.span.start + "first".len(), "{"),
                ]);
                self.block_items(open, &f.items, self.close(f.span))
            }
        }
    }

    fn rule(&self, r: &Rule, otherwise: bool) -> Doc {
        let mut head = Vec::new();
        let mut after;
        if otherwise {
            // An `otherwise` without a name is given the keyword as its name (and span).
            head.push(self.tok("otherwise", r.span.start, "otherwise".len()));
            after = r.span.start + "otherwise".len();
            if r.name.name != "otherwise" {
                head.push(text(" "));
                head.push(self.ident(&r.name));
                after = r.name.span.end;
            }
        } else {
            head.push(self.tok("rule", r.span.start, "rule".len()));
            head.push(text(" "));
            head.push(self.ident(&r.name));
            after = r.name.span.end;
        }
        if let Some(c) = &r.clause {
            head.push(text(" "));
            head.push(self.clause(c));
            after = c.span.end;
        }
        if let Some(w) = &r.when {
            // A header too long for one line puts the condition on its own lines.
            head.push(nest(
                CONTINUATION,
                cat(vec![LINE, text("when "), self.expr(w)]),
            ));
            after = w.span.end;
        }
        head.push(text(" "));
        head.push(self.punct(after, "=>"));
        let head = group(cat(head));
        let arrow_end = self.find(after, "=>").map(|a| a + 2).unwrap_or(after);
        match r.actions.as_slice() {
            [] => {
                let braces = match self.find(arrow_end, "{") {
                    Some(open) => Doc::Text("{}".into(), Some((open, r.span.end.max(open + 1)))),
                    None => text("{}"),
                };
                cat(vec![head, text(" "), braces])
            }
            // A response with an SDP body always takes several lines: start it after `=>`.
            [one] if is_sdp_response(one) => cat(vec![head, text(" "), self.action(one)]),
            [one] => group(cat(vec![
                head,
                nest(INDENT, cat(vec![LINE, self.action(one)])),
            ])),
            many => {
                let open = self.find_or(arrow_end, "{");
                let mut inner = Vec::new();
                for (n, a) in many.iter().enumerate() {
                    inner.push(if n == 0 { LINE } else { WIDE });
                    inner.push(self.action(a));
                }
                self.brace_group(
                    cat(vec![
                        head,
                        text(" "),
                        self.punct(arrow_end, "{"),
                        nest(INDENT, cat(inner)),
                        LINE,
                        self.close(r.span),
                    ]),
                    open,
                    r.span.end.saturating_sub(1),
                )
            }
        }
    }

    fn action(&self, a: &Action) -> Doc {
        let s = a.span;
        let kw = |w: &str| self.tok(w.to_string(), s.start, w.len());
        match &a.kind {
            ActionKind::Respond(r) => self.respond(r, s),
            ActionKind::Call(c) => cat(vec![kw("call"), text(" "), self.at(c.id.clone(), c.span)]),
            ActionKind::Goto(id) => cat(vec![kw("goto"), text(" "), self.ident(id)]),
            ActionKind::InviteEach(r, sel, items) if items.is_empty() => self.at(
                format!(
                    "invite each {}{}",
                    recipients_text(*r),
                    selection_text(*sel)
                ),
                s,
            ),
            ActionKind::InviteEach(r, sel, items) => self.fan_out("invite", *r, *sel, items, s),
            ActionKind::ForwardEach(r, sel, items) if !items.is_empty() => {
                self.fan_out("forward", *r, *sel, items, s)
            }
            ActionKind::ForwardEach(r, sel, _) => self.at(
                format!(
                    "forward each {}{}",
                    recipients_text(*r),
                    selection_text(*sel)
                ),
                s,
            ),
            ActionKind::Cancel => self.at("cancel", s),
            ActionKind::CancelLegs => self.at("cancel legs", s),
            ActionKind::ByeLegs => self.at("bye legs", s),
            ActionKind::Bye => self.at("bye", s),
            ActionKind::Deliver(items) if items.is_empty() => self.at("deliver", s),
            ActionKind::Deliver(items) => {
                let open = cat(vec![
                    kw("deliver"),
                    text(" "),
                    self.punct(s.start + "deliver".len(), "{"),
                ]);
                // Short enough to stay on the action's line (`deliver { success-report yes }`)
                // unless it does not fit.
                let mut inner = Vec::new();
                for DeliverItem::SuccessReport(w, at) in items {
                    inner.push(LINE);
                    inner.push(self.at(format!("success-report {w}"), *at));
                }
                group(cat(vec![
                    open,
                    nest(INDENT, cat(inner)),
                    LINE,
                    self.close(s),
                ]))
            }
            ActionKind::SendImdn(true) => self.at("send imdn delivered", s),
            ActionKind::SendImdn(false) => self.at("send imdn failed", s),
            ActionKind::CollectImdn(true) => self.at("collect imdn delivered", s),
            ActionKind::CollectImdn(false) => self.at("collect imdn failed", s),
            ActionKind::ForwardImdn => self.at("forward imdn", s),
            ActionKind::AcceptSubscription => self.at("accept subscription", s),
            ActionKind::NotifySubscribers => self.at("notify subscribers", s),
            ActionKind::StoreCopy => self.at("store copy", s),
            ActionKind::Outcome(o) => self.at(outcome_text(o.map(|x| x.map(|(v, _)| v))), s),
            ActionKind::Report(Report::Success) => self.at("report success", s),
            ActionKind::Report(Report::Failure { status, reason }) => {
                // `report failure` is one token spanning up to its status (or the action's
                // end): a comment the author put between the two words then stays behind
                // them on every pass instead of moving (idempotence).
                let head_end = status
                    .map(|(_, sp)| sp.start)
                    .or(reason.as_ref().map(|r| r.span.start))
                    .unwrap_or(s.end);
                let head = Span {
                    end: head_end.max(s.start),
                    ..s
                };
                let mut parts = vec![self.at("report failure", head)];
                if let Some((code, span)) = status {
                    parts.push(text(" "));
                    parts.push(self.at(format!("{code:03}"), *span));
                }
                if let Some(r) = reason {
                    parts.push(text(" "));
                    parts.push(self.string(r));
                }
                cat(parts)
            }
            ActionKind::StartTimer(id, after) => cat(vec![
                kw("start"),
                text(" timer "),
                self.ident(id),
                text(" after "),
                self.expr(after),
            ]),
            ActionKind::StopTimer(id) => cat(vec![kw("stop"), text(" timer "), self.ident(id)]),
            ActionKind::Log(m) => cat(vec![kw("log"), text(" "), self.string(m)]),
        }
    }

    fn respond(&self, r: &Respond, s: Span) -> Doc {
        let mut d = vec![self.tok("respond", s.start, "respond".len())];
        let mut after = s.start + "respond".len();
        if let Some((code, span)) = &r.status {
            d.push(text(" "));
            d.push(self.at(format!("{code:03}"), *span));
            after = span.end;
        }
        if let Some(reason) = &r.reason {
            d.push(text(" "));
            d.push(self.string(reason));
            after = reason.span.end;
        }
        if r.items.is_empty() {
            return cat(d);
        }
        d.push(text(" "));
        d.push(self.punct(after, "{"));
        let mut inner = Vec::new();
        for it in &r.items {
            inner.push(LINE);
            inner.push(self.respond_item(it));
        }
        d.push(nest(INDENT, cat(inner)));
        d.push(LINE);
        d.push(self.close(s));
        self.brace_group(cat(d), self.find_or(after, "{"), s.end.saturating_sub(1))
    }

    fn respond_item(&self, it: &RespondItem) -> Doc {
        match it {
            RespondItem::Header(name, value) => cat(vec![
                text("header "),
                self.ident(name),
                text(" = "),
                self.string(value),
            ]),
            RespondItem::ContactFocus(span, params) if params.is_empty() => {
                self.at("contact focus", *span)
            }
            RespondItem::ContactFocus(span, params) => {
                let end = self
                    .find(span.start + "contact".len(), "focus")
                    .map_or(span.start + "contact".len(), |at| at + "focus".len());
                let mut d = vec![self.tok("contact focus", span.start, end - span.start)];
                for p in params {
                    d.push(text(" "));
                    d.push(self.string(p));
                }
                cat(d)
            }
            RespondItem::Warning(None, w) => cat(vec![text("warning "), self.string(w)]),
            RespondItem::Warning(Some((code, _)), w) => {
                cat(vec![text(format!("warning {code} ")), self.string(w)])
            }
            RespondItem::Sdp(items, span) => {
                let open = cat(vec![
                    self.tok("sdp", span.start, 3),
                    text(" "),
                    self.punct(span.start + 3, "{"),
                ]);
                let items = items.iter().map(|i| self.sdp_item(i)).collect();
                self.block(open, items, self.close(*span), |_| false)
            }
        }
    }

    /// `invite each … { … }` / `forward each … { … }`: the head, then one item per line.
    fn fan_out(
        &self,
        verb: &str,
        r: Recipients,
        sel: Selection,
        items: &[InviteItem],
        s: Span,
    ) -> Doc {
        // The head holds no string, so its first `{` outside a comment opens the block.
        let b = self.src.as_bytes();
        let mut open_at = s.start;
        while open_at < s.end.min(b.len()) && b[open_at] != b'{' {
            if b[open_at..].starts_with(b"//") {
                while open_at < b.len() && b[open_at] != b'\n' {
                    open_at += 1;
                }
                continue;
            }
            open_at += 1;
        }
        let head = self.tok(
            format!("{verb} each {}{}", recipients_text(r), selection_text(sel)),
            s.start,
            self.trim(open_at).saturating_sub(s.start),
        );
        let open = cat(vec![head, text(" "), self.punct(open_at, "{")]);
        let items = items.iter().map(|i| self.invite_item(i)).collect();
        self.block(open, items, self.close(s), |_| false)
    }

    fn invite_item(&self, it: &InviteItem) -> Doc {
        match it {
            InviteItem::Header(name, value) => {
                self.respond_item(&RespondItem::Header(name.clone(), value.clone()))
            }
            InviteItem::ContactFocus(span, params) => {
                self.respond_item(&RespondItem::ContactFocus(*span, params.clone()))
            }
            InviteItem::History(span) => self.at("history", *span),
            InviteItem::Offer(items, span) => {
                let open = cat(vec![
                    self.tok("offer", span.start, 5),
                    text(" "),
                    self.punct(span.start + 5, "{"),
                ]);
                let items = items.iter().map(|i| self.offer_item(i)).collect();
                self.block(open, items, self.close(*span), |_| false)
            }
        }
    }

    fn offer_item(&self, it: &OfferItem) -> Doc {
        let s = it.span;
        match &it.kind {
            OfferItemKind::Direction(w) => self.at(format!("direction {w}"), s),
            OfferItemKind::Setup(w) => self.at(format!("setup {w}"), s),
            OfferItemKind::AcceptWrappedTypesOwn => self.at("accept-wrapped-types own", s),
            OfferItemKind::MaxSizeOwn => self.at("max-size own", s),
            OfferItemKind::Attribute(name, None) => self.at(format!("attribute {name}"), s),
            OfferItemKind::Attribute(name, Some(v)) => {
                let kw = "attribute".len();
                let name_end = self
                    .find(s.start + kw, name)
                    .map(|at| at + name.len())
                    .unwrap_or(s.start + kw);
                cat(vec![
                    self.tok(format!("attribute {name}"), s.start, name_end - s.start),
                    text(" = "),
                    self.string(v),
                ])
            }
        }
    }

    fn sdp_item(&self, it: &SdpItem) -> Doc {
        let s = it.span;
        match &it.kind {
            SdpItemKind::PathOwn => self.at("path own", s),
            SdpItemKind::MediaFromOffer => self.at("media from offer", s),
            SdpItemKind::AcceptTypesIntersect => self.at("accept-types intersect", s),
            SdpItemKind::AcceptWrappedTypesIntersect => {
                self.at("accept-wrapped-types intersect", s)
            }
            SdpItemKind::MaxSizeOwn => self.at("max-size own", s),
            SdpItemKind::DirectionMirror => self.at("direction mirror", s),
            SdpItemKind::SetupComplement => self.at("setup complement", s),
            SdpItemKind::Echo(name) => self.at(format!("echo {name}"), s),
            SdpItemKind::Else(status, reason) => {
                let mut d = vec![match status {
                    Some((code, sp)) => self.tok(format!("else {code}"), s.start, sp.end - s.start),
                    None => self.at("else", s),
                }];
                if let Some(r) = reason {
                    d.push(text(" "));
                    d.push(self.string(r));
                }
                cat(d)
            }
            SdpItemKind::Attribute(name, value, when) => {
                let kw = "attribute".len();
                let name_end = self
                    .find(s.start + kw, name)
                    .map(|at| at + name.len())
                    .unwrap_or(s.start + kw);
                let mut d =
                    vec![self.tok(format!("attribute {name}"), s.start, name_end - s.start)];
                if let Some(v) = value {
                    d.push(text(" = "));
                    d.push(self.string(v));
                }
                if let Some(w) = when {
                    d.push(text(" when "));
                    d.push(nest(CONTINUATION, self.expr(w)));
                }
                cat(d)
            }
        }
    }

    fn expr(&self, e: &Expr) -> Doc {
        match &e.kind {
            ExprKind::Lit(l) => match l {
                Lit::Str(_) => self.slice(e.span),
                other => self.at(lit_text(other), e.span),
            },
            ExprKind::Ref { path, args } => {
                let mut d = Vec::new();
                for (n, id) in path.iter().enumerate() {
                    if n > 0 {
                        d.push(text("."));
                    }
                    d.push(self.ident(id));
                }
                let mut open = e.span.end;
                if let Some(args) = args {
                    let after = path.last().map(|p| p.span.end).unwrap_or(e.span.start);
                    // `()` has no line to keep a comment on: it never forces a break.
                    if !args.is_empty() {
                        open = self.find_or(after, "(");
                    }
                    d.push(self.punct(after, "("));
                    if !args.is_empty() {
                        let mut inner = vec![SOFT];
                        for (n, a) in args.iter().enumerate() {
                            if n > 0 {
                                inner.push(self.punct(args[n - 1].span.end, ","));
                                inner.push(LINE);
                            }
                            inner.push(self.expr(a));
                        }
                        d.push(nest(INDENT, cat(inner)));
                        d.push(SOFT);
                    }
                    d.push(self.close_paren(e.span));
                }
                self.group_around(cat(d), open, e.span.end.saturating_sub(1))
            }
            ExprKind::Not(inner) => cat(vec![
                self.tok("not", e.span.start, "not".len()),
                text(" "),
                self.expr(inner),
            ]),
            ExprKind::And(parts) => self.chain(parts, "and "),
            ExprKind::Or(parts) => self.chain(parts, "or "),
            // Breaks before the operator before either operand's argument list breaks.
            ExprKind::Cmp(op, l, r) => group(cat(vec![
                self.expr(l),
                nest(
                    INDENT,
                    cat(vec![LINE, text(format!("{} ", op.as_str())), self.expr(r)]),
                ),
            ])),
            ExprKind::Quant {
                quant,
                var,
                list,
                body,
            } => cat(vec![
                self.tok(quant.as_str(), e.span.start, quant.as_str().len()),
                text(" "),
                self.ident(var),
                text(" in "),
                self.expr(list),
                text(" where "),
                self.expr(body),
            ]),
            ExprKind::Paren(inner) => self.group_around(
                cat(vec![
                    self.tok("(", e.span.start, 1),
                    nest(INDENT, cat(vec![SOFT, self.expr(inner)])),
                    SOFT,
                    self.close_paren(e.span),
                ]),
                e.span.start,
                e.span.end.saturating_sub(1),
            ),
        }
    }

    fn close_paren(&self, span: Span) -> Doc {
        if span.end > 0 && self.src.as_bytes().get(span.end - 1) == Some(&b')') {
            self.tok(")", span.end - 1, 1)
        } else {
            text(")")
        }
    }

    /// `a and b and c`, broken before each operator when too long.
    fn chain(&self, parts: &[Expr], op: &str) -> Doc {
        let mut d = Vec::new();
        let mut forced = false;
        for (n, p) in parts.iter().enumerate() {
            if n > 0 {
                // A comment between two operands keeps the chain one operand per line.
                forced |= self.comment_between(self.trim(parts[n - 1].span.end), p.span.start);
                d.push(LINE);
                d.push(text(op));
            }
            d.push(self.expr(p));
        }
        Doc::Group(Box::new(cat(d)), forced)
    }
}

pub(super) fn is_sdp_response(a: &Action) -> bool {
    matches!(&a.kind, ActionKind::Respond(r) if r.items.iter().any(|i| matches!(i, RespondItem::Sdp(..))))
}

/// A trigger as written in canonical form.
pub fn trigger_text(t: &TriggerKind) -> String {
    match t {
        TriggerKind::Initial(m) => format!("initial {m}"),
        TriggerKind::Request(m) => format!("request {m}"),
        TriggerKind::Response(lo, None) => format!("response {lo}"),
        TriggerKind::Response(lo, Some(hi)) => format!("response {lo}..{hi}"),
        TriggerKind::Timer(id) => format!("timer {}", id.name),
        TriggerKind::Msrp(ev) => format!("msrp {ev}"),
        TriggerKind::LegsSettled => "legs settled".to_string(),
        TriggerKind::LegsChanged => "legs changed".to_string(),
        TriggerKind::Copy(ev) => format!("copy {ev}"),
        TriggerKind::Leg(ev) => format!("leg {ev}"),
        TriggerKind::Shutdown => "shutdown".to_string(),
    }
}

/// The words after a fan-out's recipients, each with its leading space, in a fixed order.
pub(crate) fn selection_text(s: crate::ast::Selection) -> &'static str {
    match (s.without_originator, s.distinct) {
        (false, false) => "",
        (true, false) => " without originator",
        (false, true) => " distinct",
        (true, true) => " without originator distinct",
    }
}

pub(super) fn recipients_text(r: Recipients) -> &'static str {
    match r {
        Recipients::RecipientList => "recipient_list",
        Recipients::GroupMembers => "group_members",
    }
}

/// A literal as written in canonical form (durations in whole seconds when they are).
pub fn lit_text(l: &Lit) -> String {
    match l {
        Lit::Bool(b) => b.to_string(),
        Lit::Int(i) => i.to_string(),
        Lit::Str(s) => quote(s),
        Lit::DurationMs(ms) if *ms % 1000 == 0 => format!("{}s", ms / 1000),
        Lit::DurationMs(ms) => format!("{ms}ms"),
    }
}

/// A string value (as the parser unescapes it) written back as a literal that parses to it.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // The parser keeps `\{` and `\}` escaped in the value; write them back as is.
            '\\' if matches!(chars.peek(), Some('{' | '}')) => out.push('\\'),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `outcome delivered` (`None`) or `outcome failed [STATUS]`, as the formatter and the
/// graphs write it.
pub(crate) fn outcome_text(o: Option<Option<u16>>) -> String {
    match o {
        None => "outcome delivered".into(),
        Some(None) => "outcome failed".into(),
        Some(Some(s)) => format!("outcome failed {s:03}"),
    }
}

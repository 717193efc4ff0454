//! Comparing trees whatever their layout (for the formatter's own checks).

use crate::ast::*;

/// A copy of `file` with every span (and the file index) zeroed, so that two parses of
/// differently laid out text compare equal when they say the same thing.
pub fn without_spans(file: &File) -> File {
    let mut f = file.clone();
    f.file = 0;
    for item in &mut f.items {
        match item {
            Item::Import(s) => s.span = Span::default(),
            Item::Condition(c) => {
                c.span = Span::default();
                erase_ident(&mut c.name);
                erase_clause(&mut c.clause);
                erase_expr(&mut c.expr);
            }
            Item::Procedure(p) => {
                p.span = Span::default();
                erase_ident(&mut p.name);
                erase_clause(&mut p.clause);
                erase_str(&mut p.title);
                for s in &mut p.states {
                    s.span = Span::default();
                    for d in &mut s.states {
                        d.span = Span::default();
                        erase_ident(&mut d.name);
                    }
                }
                p.timers.iter_mut().for_each(erase_ident);
                for h in &mut p.handlers {
                    h.span = Span::default();
                    h.trigger.span = Span::default();
                    if let TriggerKind::Timer(id) = &mut h.trigger.kind {
                        erase_ident(id);
                    }
                    h.in_states.iter_mut().for_each(erase_ident);
                    h.block.span = Span::default();
                    h.block.items.iter_mut().for_each(erase_block_item);
                }
            }
        }
    }
    f
}

/// Whether two files say the same thing, ignoring spans.
pub fn same_ignoring_spans(a: &File, b: &File) -> bool {
    without_spans(a) == without_spans(b)
}

fn erase_ident(i: &mut Ident) {
    i.span = Span::default();
}

fn erase_clause(c: &mut Option<ClauseRef>) {
    if let Some(c) = c {
        c.span = Span::default();
    }
}

fn erase_str(s: &mut Option<StrLit>) {
    if let Some(s) = s {
        s.span = Span::default();
    }
}

fn erase_block_item(item: &mut BlockItem) {
    match item {
        BlockItem::Rule(r) | BlockItem::Otherwise(r) => {
            r.span = Span::default();
            erase_ident(&mut r.name);
            erase_clause(&mut r.clause);
            if let Some(w) = &mut r.when {
                erase_expr(w);
            }
            r.actions.iter_mut().for_each(erase_action);
        }
        BlockItem::First(f) => {
            f.span = Span::default();
            f.items.iter_mut().for_each(erase_block_item);
        }
    }
}

fn erase_action(a: &mut Action) {
    a.span = Span::default();
    match &mut a.kind {
        ActionKind::Respond(r) => {
            if let Some((_, s)) = &mut r.status {
                *s = Span::default();
            }
            erase_str(&mut r.reason);
            for it in &mut r.items {
                match it {
                    RespondItem::Header(n, v) => {
                        erase_ident(n);
                        v.span = Span::default();
                    }
                    RespondItem::ContactFocus(s, params) => {
                        *s = Span::default();
                        for p in params {
                            p.span = Span::default();
                        }
                    }
                    RespondItem::Warning(code, w) => {
                        if let Some((_, s)) = code {
                            *s = Span::default();
                        }
                        w.span = Span::default();
                    }
                    RespondItem::Sdp(items, s) => {
                        *s = Span::default();
                        for i in items {
                            i.span = Span::default();
                            if let SdpItemKind::Attribute(_, v, w) = &mut i.kind {
                                erase_str(v);
                                if let Some(w) = w {
                                    erase_expr(w);
                                }
                            }
                            if let SdpItemKind::Else(status, reason) = &mut i.kind {
                                if let Some((_, s)) = status {
                                    *s = Span::default();
                                }
                                erase_str(reason);
                            }
                        }
                    }
                }
            }
        }
        ActionKind::Call(c) => c.span = Span::default(),
        ActionKind::Goto(id) | ActionKind::StopTimer(id) => erase_ident(id),
        ActionKind::StartTimer(id, e) => {
            erase_ident(id);
            erase_expr(e);
        }
        ActionKind::Log(s) => s.span = Span::default(),
        ActionKind::Report(Report::Failure { status, reason }) => {
            if let Some((_, s)) = status {
                *s = Span::default();
            }
            erase_str(reason);
        }
        ActionKind::Outcome(Some(Some((_, s)))) => *s = Span::default(),
        ActionKind::Deliver(items) => {
            for it in items {
                let crate::ast::DeliverItem::SuccessReport(_, s) = it;
                *s = Span::default();
            }
        }
        ActionKind::InviteEach(_, _, items) | ActionKind::ForwardEach(_, _, items) => {
            for it in items {
                match it {
                    InviteItem::Header(n, v) => {
                        erase_ident(n);
                        v.span = Span::default();
                    }
                    InviteItem::ContactFocus(s, params) => {
                        *s = Span::default();
                        for p in params {
                            p.span = Span::default();
                        }
                    }
                    InviteItem::History(s) => *s = Span::default(),
                    InviteItem::Offer(items, s) => {
                        *s = Span::default();
                        for i in items {
                            i.span = Span::default();
                            if let OfferItemKind::Attribute(_, v) = &mut i.kind {
                                erase_str(v);
                            }
                        }
                    }
                }
            }
        }
        ActionKind::Outcome(_)
        | ActionKind::Cancel
        | ActionKind::Bye
        | ActionKind::CancelLegs
        | ActionKind::ByeLegs
        | ActionKind::SendImdn(_)
        | ActionKind::CollectImdn(_)
        | ActionKind::ForwardImdn
        | ActionKind::AcceptSubscription
        | ActionKind::NotifySubscribers
        | ActionKind::StoreCopy
        | ActionKind::Report(Report::Success) => {}
    }
}

fn erase_expr(e: &mut Expr) {
    e.span = Span::default();
    match &mut e.kind {
        ExprKind::Lit(_) => {}
        ExprKind::Ref { path, args } => {
            path.iter_mut().for_each(erase_ident);
            if let Some(args) = args {
                args.iter_mut().for_each(erase_expr);
            }
        }
        ExprKind::Not(x) | ExprKind::Paren(x) => erase_expr(x),
        ExprKind::And(xs) | ExprKind::Or(xs) => xs.iter_mut().for_each(erase_expr),
        ExprKind::Cmp(_, l, r) => {
            erase_expr(l);
            erase_expr(r);
        }
        ExprKind::Quant {
            var, list, body, ..
        } => {
            erase_ident(var);
            erase_expr(list);
            erase_expr(body);
        }
    }
}

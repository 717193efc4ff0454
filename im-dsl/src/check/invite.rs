//! The `invite each … { … }` block: what the invitee INVITE carries beyond what RFC 3261
//! §8.1.1 makes mandatory. Headers the runtime writes itself (E0019), `history` without a
//! recipient list (E0020), items given twice (E0003) and values that are not an offer word,
//! a Contact parameter, one header line, one name-addr (`From`, `To`) or a hop count
//! (`Max-Forwards`) (E0016). A header value may name its recipient: `{invitee.uri}`,
//! `{invitee.display_name}`, `{invitee.copy_control}`, `{invitee.anonymize}` (the list entry
//! or group member the request goes to), filled in by the runtime for each recipient.

use super::text::lower_text;
use super::types::{ExprCx, FACTS, suggest};
use crate::ast::{self, InviteItem, OfferItemKind, Span};
use crate::diag::{Code, Diagnostic, Diagnostics};
use crate::model::{Elem, Expr, Invitation, OfferAttr, Text, TextPart, Type};
use crate::source::Sources;
use std::collections::HashMap;

/// Headers of the INVITE that the runtime writes (RFC 3261 §8.1.1 and the body's own), long
/// and compact forms (§7.3.3), lower case; `Route` follows the router's choice. `From`, `To`
/// and `Max-Forwards` are the spec's to give (the From tag stays the runtime's, §8.1.1.3);
/// the runtime writes its own only when the spec gives none.
const RUNTIME_HEADERS: &[&str] = &[
    "via",
    "v",
    "call-id",
    "i",
    "cseq",
    "contact",
    "m",
    "content-type",
    "c",
    "content-length",
    "l",
    "route",
];

/// Offer lines the runtime writes for every MSRP offer (RFC 4975 §8: the path and the
/// accepted types are mandatory).
const RUNTIME_ATTRIBUTES: &[&str] = &["path", "accept-types"];

/// The name a fan-out's header values give the recipient (`{invitee.uri}`).
pub(crate) const INVITEE: &str = "invitee";

const DIRECTIONS: &[&str] = &["sendonly", "recvonly", "sendrecv", "inactive"];
const SETUPS: &[&str] = &["actpass", "active", "passive", "holdconn"];

/// Lowers the items of one `invite each` or (`forward`) `forward each` (`list`: it addresses
/// a recipient list). `None` when a diagnostic was pushed.
pub(super) fn lower_invitation(
    sources: &Sources,
    diags: &mut Diagnostics,
    conditions: &HashMap<String, usize>,
    list: bool,
    forward: bool,
    items: &[InviteItem],
) -> Option<Invitation> {
    let mut inv = Invitation::default();
    let mut ok = true;
    let mut seen: HashMap<&'static str, Span> = HashMap::new();
    let mut twice = |diags: &mut Diagnostics, what: &'static str, at: Span| -> bool {
        if let Some(prev) = seen.get(what) {
            diags.push(
                Diagnostic::new(
                    Code::Duplicate,
                    format!("`{what}` is given twice for this fan-out"),
                    at,
                    "given again",
                )
                .note(*prev, "first given here")
                .help(format!("keep one `{what}`")),
            );
            return true;
        }
        seen.insert(what, at);
        false
    };
    for item in items {
        // A forwarded MESSAGE opens no dialog and carries the sender's payload: no focus
        // Contact (RFC 3428 §4), no offer.
        let dialog_only = match item {
            InviteItem::ContactFocus(span, _) => Some(("contact focus", *span)),
            InviteItem::Offer(_, span) => Some(("offer", *span)),
            _ => None,
        };
        if let (true, Some((what, span))) = (forward, dialog_only) {
            diags.push(
                Diagnostic::new(
                    Code::BadArgument,
                    format!("`{what}` on a forwarded MESSAGE"),
                    span,
                    "only for `invite each`",
                )
                .help("`forward each` copies the sender's message (RFC 3428: no dialog, no SDP); it takes `header` and `history`"),
            );
            ok = false;
            continue;
        }
        match item {
            InviteItem::Header(name, value) => {
                let lower = name.name.to_ascii_lowercase();
                if RUNTIME_HEADERS.contains(&lower.as_str()) {
                    let help = if lower == "contact" || lower == "m" {
                        "the runtime writes the Contact (RFC 3261 §8.1.1.8: the session's focus URI); `contact focus \"PARAM\"` adds `isfocus` and feature tags".to_string()
                    } else {
                        format!(
                            "the runtime writes `{}` on every request it sends (RFC 3261 §8.1.1, or the body's own header); leave it out",
                            name.name
                        )
                    };
                    diags.push(
                        Diagnostic::new(
                            Code::ReservedHeader,
                            format!("`{}` is written by the runtime", name.name),
                            name.span,
                            "not the spec's to set",
                        )
                        .help(help),
                    );
                    ok = false;
                    continue;
                }
                if value.value.contains(['\r', '\n']) {
                    diags.push(
                        Diagnostic::new(
                            Code::BadArgument,
                            "a header value spans lines",
                            value.span,
                            "line break in a header value",
                        )
                        .help("a header value is one line; remove the `\\n`"),
                    );
                    ok = false;
                    continue;
                }
                let from = lower == "from" || lower == "f";
                let to = lower == "to" || lower == "t";
                let hops = lower == "max-forwards";
                if from && twice(diags, "header From", name.span)
                    || to && twice(diags, "header To", name.span)
                    || hops && twice(diags, "header Max-Forwards", name.span)
                {
                    ok = false;
                    continue;
                }
                let mut ecx = ExprCx::new(conditions, diags);
                // The recipient each request goes to, as a list entry.
                ecx.vars.push((INVITEE.into(), Elem::Entry));
                let Some(t) = lower_text(&mut ecx, sources, value) else {
                    ok = false;
                    continue;
                };
                if !invitee_fields_only(diags, &t, value.span) {
                    ok = false;
                    continue;
                }
                if (from || to) && !name_addr(diags, &t, value.span)
                    || hops && !hop_count(diags, &t, value.span)
                {
                    ok = false;
                    continue;
                }
                inv.headers.push((name.name.clone(), t));
            }
            InviteItem::ContactFocus(span, params) => {
                if twice(diags, "contact focus", *span) {
                    ok = false;
                    continue;
                }
                let mut out = Vec::new();
                for p in params {
                    if contact_param(&p.value) {
                        out.push(p.value.clone());
                    } else {
                        diags.push(
                            Diagnostic::new(
                                Code::BadArgument,
                                format!("{:?} is not a Contact parameter", p.value),
                                p.span,
                                "not name or name=value",
                            )
                            .help("give each parameter alone, without `;`, e.g. `contact focus \"+g.oma.sip-im\"` (RFC 3840 feature tag)"),
                        );
                        ok = false;
                    }
                }
                inv.contact_focus = Some(out);
            }
            InviteItem::History(span) => {
                if twice(diags, "history", *span) {
                    ok = false;
                    continue;
                }
                if !list {
                    diags.push(
                        Diagnostic::new(
                            Code::HistoryWithoutList,
                            "`history` on a fan-out that addresses no recipient list",
                            *span,
                            "no list to write the history of",
                        )
                        .help("the recipient-list-history part (RFC 5364) names the entries of the request's `recipient-list`; it goes with `recipient_list`"),
                    );
                    ok = false;
                    continue;
                }
                inv.history = true;
            }
            InviteItem::Offer(items, span) => {
                if twice(diags, "offer", *span) {
                    ok = false;
                    continue;
                }
                ok &= offer(diags, items, &mut inv.offer);
            }
        }
    }
    ok.then_some(inv)
}

/// The offer's attributes, in order; `false` when a diagnostic was pushed.
fn offer(diags: &mut Diagnostics, items: &[ast::OfferItem], out: &mut Vec<OfferAttr>) -> bool {
    let mut ok = true;
    let mut seen: HashMap<&'static str, Span> = HashMap::new();
    for item in items {
        let key = match &item.kind {
            OfferItemKind::Direction(_) => Some("direction"),
            OfferItemKind::Setup(_) => Some("setup"),
            OfferItemKind::AcceptWrappedTypesOwn => Some("accept-wrapped-types"),
            OfferItemKind::MaxSizeOwn => Some("max-size"),
            OfferItemKind::Attribute(..) => None,
        };
        if let Some(k) = key {
            if let Some(prev) = seen.get(k) {
                diags.push(
                    Diagnostic::new(
                        Code::Duplicate,
                        format!("`{k}` is given twice in this offer"),
                        item.span,
                        "given again",
                    )
                    .note(*prev, "first given here")
                    .help(format!("an offer has one `{k}`; keep one")),
                );
                ok = false;
                continue;
            }
            seen.insert(k, item.span);
        }
        let mut word = |w: &str, known: &[&str], what: &str, rfc: &str| -> bool {
            if known.contains(&w) {
                return true;
            }
            diags.push(
                Diagnostic::new(
                    Code::BadArgument,
                    format!("`{w}` is not a {what}"),
                    item.span,
                    format!("unknown {what}"),
                )
                .help(suggest(w, known, &format!("{rfc} knows"))),
            );
            false
        };
        match &item.kind {
            OfferItemKind::Direction(w) => {
                if word(w, DIRECTIONS, "media direction", "RFC 4566 §6") {
                    out.push(OfferAttr::Fixed(w.clone(), None));
                } else {
                    ok = false;
                }
            }
            OfferItemKind::Setup(w) => {
                if word(w, SETUPS, "setup role", "RFC 4145 §4") {
                    out.push(OfferAttr::Fixed("setup".into(), Some(w.clone())));
                } else {
                    ok = false;
                }
            }
            OfferItemKind::AcceptWrappedTypesOwn => out.push(OfferAttr::OwnAcceptWrappedTypes),
            OfferItemKind::MaxSizeOwn => out.push(OfferAttr::OwnMaxSize),
            OfferItemKind::Attribute(name, value) => {
                if RUNTIME_ATTRIBUTES.contains(&name.to_ascii_lowercase().as_str()) {
                    diags.push(
                        Diagnostic::new(
                            Code::ReservedHeader,
                            format!("`a={name}` is written by the runtime"),
                            item.span,
                            "not the spec's to set",
                        )
                        .help("every MSRP offer carries the server's own `a=path` and `a=accept-types` (RFC 4975 §8); leave it out"),
                    );
                    ok = false;
                    continue;
                }
                let value = value.as_ref().map(|v| v.value.clone());
                if value.as_deref().is_some_and(|v| v.contains(['\r', '\n'])) {
                    diags.push(
                        Diagnostic::new(
                            Code::BadArgument,
                            "an attribute value spans lines",
                            item.span,
                            "line break in an SDP line",
                        )
                        .help("an SDP attribute is one line; remove the `\\n`"),
                    );
                    ok = false;
                    continue;
                }
                out.push(OfferAttr::Fixed(name.clone(), value));
            }
        }
    }
    ok
}

/// Whether `e` reads the recipient (`invitee`) anywhere.
fn names_invitee(e: &Expr) -> bool {
    match e {
        Expr::Var(v) => v == INVITEE,
        Expr::Field(x, _) | Expr::Not(x) => names_invitee(x),
        Expr::Call(_, xs) | Expr::And(xs) | Expr::Or(xs) => xs.iter().any(names_invitee),
        Expr::Cmp(_, a, b) => names_invitee(a) || names_invitee(b),
        Expr::Quant { list, body, .. } => names_invitee(list) || names_invitee(body),
        _ => false,
    }
}

/// The recipient is printed field by field (`{invitee.uri}`): the runtime fills in each field
/// per recipient, so it cannot be compared, counted or taken apart (`{invitee.uri.host}`)
/// inside a value; `false` when a diagnostic was pushed.
fn invitee_fields_only(diags: &mut Diagnostics, t: &Text, at: Span) -> bool {
    let bad = t.parts.iter().any(|p| match p {
        TextPart::Value(Expr::Field(x, _)) if matches!(&**x, Expr::Var(v) if v == INVITEE) => false,
        TextPart::Value(e) => names_invitee(e),
        TextPart::Lit(_) => false,
    });
    if bad {
        diags.push(
            Diagnostic::new(
                Code::BadArgument,
                "the recipient is written one field at a time",
                at,
                "`invitee` used inside an expression",
            )
            .help("write `{invitee.uri}`, `{invitee.display_name}`, `{invitee.copy_control}` or `{invitee.anonymize}` on their own; the runtime fills them in for each recipient"),
        );
    }
    !bad
}

/// A `From` or `To` value is one name-addr (RFC 3261 §20.20, §20.39: `"Name" <URI>` or
/// `<URI>`) without a tag: the runtime adds the From tag (§8.1.1.3: fresh for each request),
/// and a request outside a dialog has no To tag (§8.1.1.2). Interpolated values are
/// read as they stand (a URI between the brackets); `false` when a diagnostic was pushed.
fn name_addr(diags: &mut Diagnostics, t: &Text, at: Span) -> bool {
    let skeleton: String = t
        .parts
        .iter()
        .map(|p| match p {
            TextPart::Lit(s) => s.as_str(),
            TextPart::Value(_) => "x",
        })
        .collect();
    let s = skeleton.trim();
    if s.to_ascii_lowercase().contains("tag=") {
        diags.push(
            Diagnostic::new(
                Code::ReservedHeader,
                "the From or To tag is written by the runtime",
                at,
                "not the spec's to set",
            )
            .help("a From tag is fresh for every request (RFC 3261 §8.1.1.3); give the name-addr alone, e.g. `\"<{session.focus}>\"`"),
        );
        return false;
    }
    let open = s.matches('<').count();
    let close = s.matches('>').count();
    let before = s.split('<').next().unwrap_or("");
    if open != 1 || close != 1 || !s.ends_with('>') || before.contains(',') {
        diags.push(
            Diagnostic::new(
                Code::BadArgument,
                "a From or To value is one name-addr",
                at,
                "not `\"Name\" <URI>` or `<URI>`",
            )
            .help("write the URI in angle brackets, optionally after a display name: `\"<{session.focus}>\"`, `\"<{invitee.uri}>\"` (RFC 3261 §20.20, §20.39); the runtime adds the tag"),
        );
        return false;
    }
    true
}

/// A `Max-Forwards` value is a hop count 0–255 (RFC 3261 §20.22): a number, or one
/// interpolated Int (`{request.max_forwards_decremented}`); `false` when a diagnostic was
/// pushed.
fn hop_count(diags: &mut Diagnostics, t: &Text, at: Span) -> bool {
    let fine = match t.parts.as_slice() {
        [TextPart::Lit(n)] => n.trim().parse::<u8>().is_ok(),
        [TextPart::Value(Expr::Int(n))] => (0..=255).contains(n),
        [TextPart::Value(Expr::Fact(f))] => {
            FACTS.iter().any(|(_, g, ty)| g == f && *ty == Type::Int)
        }
        _ => false,
    };
    if !fine {
        diags.push(
            Diagnostic::new(
                Code::BadArgument,
                "Max-Forwards is a number from 0 to 255",
                at,
                "not a hop count",
            )
            .help("write a number, e.g. `\"70\"` (RFC 3261 §8.1.1.6), or one Int fact such as `\"{request.max_forwards_decremented}\"` (§16.6 step 3)"),
        );
    }
    fine
}

/// A Contact header parameter (RFC 3261 §25.1 generic-param; feature tags of RFC 3840 start
/// with `+`): a token, optionally `=value`.
fn contact_param(p: &str) -> bool {
    let token = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.!%*_+`'~\"".contains(c))
    };
    match p.split_once('=') {
        Some((n, v)) => token(n) && !v.is_empty() && !v.contains([';', ' ', '<', '>', ',']),
        None => token(p),
    }
}

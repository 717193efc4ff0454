//! A 2xx to an initial INVITE establishes a dialog, and RFC 3261 §12.1.1 has the UAS put a
//! Contact in it: the remote target the peer sends every later request of the dialog to
//! (ACK, BYE, re-INVITE). The server's Contact is `contact focus` (a literal `header
//! Contact` would do as well); a `respond 2xx` in an `on initial INVITE` handler with
//! neither is E0021, so that no spec edit can make the server answer a dialog nobody can
//! reach.

use crate::ast::{self, ActionKind, BlockItem, RespondItem, TriggerKind};
use crate::diag::{Code, Diagnostic, Diagnostics};

/// Reports every `respond 2xx` to an initial INVITE without a Contact.
pub(super) fn check_dialog_contact(files: &[ast::File], diags: &mut Diagnostics) {
    for file in files {
        for item in &file.items {
            let ast::Item::Procedure(p) = item else {
                continue;
            };
            for h in &p.handlers {
                if matches!(&h.trigger.kind, TriggerKind::Initial(m) if m.eq_ignore_ascii_case("INVITE"))
                {
                    block(&h.block.items, diags);
                }
            }
        }
    }
}

fn block(items: &[BlockItem], diags: &mut Diagnostics) {
    for item in items {
        match item {
            BlockItem::Rule(r) | BlockItem::Otherwise(r) => {
                for a in &r.actions {
                    if let ActionKind::Respond(resp) = &a.kind {
                        respond(resp, diags);
                    }
                }
            }
            BlockItem::First(f) => block(&f.items, diags),
        }
    }
}

fn respond(r: &ast::Respond, diags: &mut Diagnostics) {
    let Some((status, at)) = r.status else {
        return;
    };
    if !(200..=299).contains(&status) {
        return;
    }
    let has_contact = r.items.iter().any(|i| match i {
        RespondItem::ContactFocus(..) => true,
        RespondItem::Header(name, _) => {
            name.name.eq_ignore_ascii_case("contact") || name.name.eq_ignore_ascii_case("m")
        }
        _ => false,
    });
    if has_contact {
        return;
    }
    diags.push(
        Diagnostic::new(
            Code::DialogWithoutContact,
            format!("a {status} to an initial INVITE without a Contact"),
            at,
            "this response establishes a dialog",
        )
        .help("add `contact focus` to its `{ … }`: a 2xx that creates a dialog carries the Contact the peer sends its later requests to (RFC 3261 §12.1.1)"),
    );
}

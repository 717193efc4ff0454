//! Checks: AST → validated [`model::Spec`], or every diagnostic.
//!
//! One file per family, each a plain function writing into a [`Diagnostics`] sink:
//! * `lower` — name resolution and lowering (E0002–E0006, E0009, E0011, E0012, E0016,
//!   E0017), with `types` (expression typing) and `text` (interpolation) under it;
//! * `invite` (under `lower`) — the `invite each … { … }` block: headers the runtime writes
//!   (E0019), `history` without a list (E0020), repeated items and bad offer words;
//! * `contact` — a `respond 2xx` to an initial INVITE without a Contact (E0021);
//! * `conditions` — named conditions referring to each other in a cycle (E0015);
//! * `states` — states no `goto` reaches from the initial state (E0010);
//! * `overlap` — unordered alternatives that can fire together (E0008) and ordered rules
//!   an earlier rule shadows (E0007).
//!
//! The passes after lowering run on the model plus a side table of spans; they skip rules
//! whose conditions did not lower, so one mistake does not cascade into overlap reports.

mod conditions;
mod contact;
mod invite;
mod lower;
mod overlap;
mod reason;
mod states;
mod text;
pub(crate) mod types;
mod warning;

pub(crate) use invite::INVITEE;

use crate::ast;
use crate::diag::{Diagnostic, Diagnostics};
use crate::model;
use crate::source::Sources;

/// Checks the parsed files of one spec (root first, as [`crate::load`] returns them) and
/// lowers them to the model. `Err` holds every diagnostic, sorted by position.
pub fn check(sources: &Sources, files: &[ast::File]) -> Result<model::Spec, Vec<Diagnostic>> {
    let mut diags = Diagnostics::new();
    let (spec, side) = lower::lower(sources, files, &mut diags);
    contact::check_dialog_contact(files, &mut diags);
    let cycles = conditions::check_cycles(&spec, &side, &mut diags);
    states::check_reachable(&spec, &side, &mut diags);
    // Overlap inlines named conditions; with a cycle among them that would not end.
    if !cycles {
        overlap::check_overlap(&spec, &side, &mut diags);
    }
    diags.finish(spec)
}

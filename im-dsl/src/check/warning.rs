//! The Warning code of a `respond … { warning [CODE] "text" }` (RFC 3261 §20.43): a 3xx warn
//! code, 399 (miscellaneous) when the spec gives none. Out-of-range codes are E0016.

use crate::ast::Span;
use crate::diag::{Code, Diagnostic, Diagnostics};

/// The code a Warning without one carries: RFC 3261 §20.43 "399 Miscellaneous warning".
pub(crate) const DEFAULT_WARNING_CODE: u16 = 399;

/// The Warning code written (or the default), `None` after reporting an out-of-range one.
pub(crate) fn warning_code(diags: &mut Diagnostics, code: Option<(u16, Span)>) -> Option<u16> {
    match code {
        None => Some(DEFAULT_WARNING_CODE),
        // RFC 3261 §20.43: warn-code is three digits; the codes it defines, and those IANA
        // registers since, are all 3xx ("warning codes … 300 … 399").
        Some((c, _)) if (300..=399).contains(&c) => Some(c),
        Some((c, span)) => {
            diags.push(
                Diagnostic::new(
                    Code::BadArgument,
                    format!("Warning code {c} is out of range"),
                    span,
                    "not a Warning code",
                )
                .help("Warning codes are 300 to 399 (RFC 3261 §20.43), e.g. `warning 305 \"incompatible media format\"`; without one the code is 399"),
            );
            None
        }
    }
}

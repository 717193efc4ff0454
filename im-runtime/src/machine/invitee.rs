//! Header values of an invitee request that depend on the recipient (`{invitee.uri}`,
//! `{invitee.display_name}` in an `invite each` / `forward each` block): the generated machine
//! interpolates everything else when the action is produced, and the runtime fills in these
//! pieces once per recipient ([`HeaderValue::PerInvitee`](super::HeaderValue::PerInvitee)).

use super::{CopyControl, ListEntry};
use std::borrow::Cow;

/// What happened to an invitee leg outside its own transactions ([`Event::Leg`](super::Event::Leg),
/// `on leg …` in a spec), heard by that leg's machine only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegEvent {
    /// The session cancelled the leg (`cancel legs`, or `cancel` of a session machine): its
    /// CANCEL is sent, and a 2xx that crosses it comes to the leg machine as any response.
    Cancelled,
    /// The leg's INVITE had no route (RFC 3261 §8.1.3.1, §16.5) and was not sent; the facts'
    /// `copy.recipient_offline` says whether the invitee is a user of this domain with no
    /// registration. No response and no timer will follow.
    Unroutable,
}

/// One piece of a per-recipient header value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InviteePiece {
    /// Text already interpolated (literals and facts that are the same for every recipient).
    Text(Cow<'static, str>),
    /// `invitee.uri`: the recipient's URI as the list or the directory wrote it.
    Uri,
    /// `invitee.display_name`: the list entry's `<display-name>` (empty without one, and for
    /// a group member), written as the content of a quoted-string (RFC 3261 §25.1: `"` and
    /// `\` escaped, control characters but tab dropped) since that is where a display name
    /// goes in a header.
    DisplayName,
    /// `invitee.copy_control`: `to`, `cc` or `bcc` (RFC 5364).
    CopyControl,
    /// `invitee.anonymize`: `true` or `false`.
    Anonymize,
}

/// The header value for `entry`: the pieces in order, with no CR or LF, so that the value
/// stays on its header line whatever the list held.
pub fn render(pieces: &[InviteePiece], entry: &ListEntry) -> String {
    let mut out = String::with_capacity(entry.uri.raw().len() + 32);
    for p in pieces {
        match p {
            InviteePiece::Text(t) => out.push_str(t),
            // Written in place, as `{…}` interpolation prints a URI, without a `String` of
            // its own (this runs once or twice per copy of a page-mode message).
            InviteePiece::Uri => crate::__private::write_uri(&mut out, &entry.uri),
            InviteePiece::DisplayName => {
                for c in entry.display_name.as_deref().unwrap_or("").chars() {
                    if c.is_control() && c != '\t' {
                        continue;
                    }
                    if matches!(c, '"' | '\\') {
                        out.push('\\');
                    }
                    out.push(c);
                }
            }
            InviteePiece::CopyControl => out.push_str(match entry.copy_control {
                CopyControl::To => "to",
                CopyControl::Cc => "cc",
                CopyControl::Bcc => "bcc",
            }),
            InviteePiece::Anonymize => out.push_str(if entry.anonymize { "true" } else { "false" }),
        }
    }
    if memchr::memchr2(b'\r', b'\n', out.as_bytes()).is_some() {
        out.retain(|c| !matches!(c, '\r' | '\n'));
    }
    out
}

/// The template as a spec writes it, the per-recipient pieces shown as `{invitee.…}` (for
/// conformance cases and logs, where there is no one recipient).
pub fn template(pieces: &[InviteePiece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            InviteePiece::Text(t) => t.as_ref(),
            InviteePiece::Uri => "{invitee.uri}",
            InviteePiece::DisplayName => "{invitee.display_name}",
            InviteePiece::CopyControl => "{invitee.copy_control}",
            InviteePiece::Anonymize => "{invitee.anonymize}",
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{Uri, UriParts};

    fn entry(name: Option<&str>) -> ListEntry {
        ListEntry {
            uri: Uri::new(UriParts {
                raw: "sip:bob@example.com",
                ..UriParts::default()
            }),
            display_name: name.map(str::to_string),
            copy_control: CopyControl::Cc,
            anonymize: false,
        }
    }

    #[test]
    fn a_display_name_is_escaped_and_stays_on_its_line() {
        let to = [
            InviteePiece::Text("\"".into()),
            InviteePiece::DisplayName,
            InviteePiece::Text("\" <".into()),
            InviteePiece::Uri,
            InviteePiece::Text(">".into()),
        ];
        assert_eq!(
            render(&to, &entry(Some("Bob \"B\" \\ x\r\nVia:\u{0} evil"))),
            "\"Bob \\\"B\\\" \\\\ xVia: evil\" <sip:bob@example.com>"
        );
        assert_eq!(render(&to, &entry(None)), "\"\" <sip:bob@example.com>");
        assert_eq!(template(&to), "\"{invitee.display_name}\" <{invitee.uri}>");
        let cc = [InviteePiece::CopyControl, InviteePiece::Anonymize];
        assert_eq!(render(&cc, &entry(None)), "ccfalse");
    }
}

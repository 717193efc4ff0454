//! The parts of an invitee INVITE that the spec's `invite each … { … }` gives
//! ([`Invitation`]): the runtime adds only what RFC 3261 §8.1.1 makes mandatory and the MSRP
//! offer's own lines (RFC 4975 §8), and writes nothing the spec leaves out.

use crate::machine::{Config, HeaderValue, Invitation, ListEntry};
use crate::proto::sdp::answer::{LocalMedia, write_offer_head};
use std::borrow::Cow;

/// The Contact and the other headers of the INVITE to `to`, in the spec's order, without
/// From, To and Max-Forwards ([`from`], [`to`], [`max_forwards`]: the runtime writes them in
/// their place). `focus` is the Contact URI the runtime writes in any case
/// (`<sip:conf-…@host>`, RFC 3261 §8.1.1.8); a `contact focus` of the spec adds `isfocus`
/// (RFC 4579) and its parameters.
pub(super) fn headers<'a>(
    inv: &'a Invitation,
    focus: &str,
    to: &ListEntry,
) -> (String, Vec<(&'a str, String)>) {
    // The parameters of the spec's last `contact focus`, if any: the Contact is written
    // once, after the loop, without `format!` (~1.7 k instructions per invitee).
    let mut isfocus: Option<&str> = None;
    let mut out = Vec::with_capacity(inv.headers.len());
    for (name, value) in &inv.headers {
        let focus_params = match value {
            HeaderValue::Text(_) | HeaderValue::PerInvitee(_) if placed(name) => continue,
            HeaderValue::Text(t) => {
                out.push((name.as_ref(), t.to_string()));
                continue;
            }
            HeaderValue::PerInvitee(p) => {
                out.push((name.as_ref(), crate::machine::render_invitee(p, to)));
                continue;
            }
            HeaderValue::FocusContact => "",
            HeaderValue::FocusContactWith(p) => p.as_ref(),
        };
        isfocus = Some(focus_params);
    }
    let contact = match isfocus {
        None => focus.to_string(),
        Some(p) => {
            let mut c = String::with_capacity(focus.len() + ";isfocus".len() + p.len());
            c.push_str(focus);
            c.push_str(";isfocus");
            c.push_str(p);
            c
        }
    };
    (contact, out)
}

/// From, To and Max-Forwards: written by the runtime in their place (From with its tag),
/// with the spec's value when it gives one.
fn placed(name: &str) -> bool {
    ["from", "f", "to", "t", "max-forwards"]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
}

/// The spec's value of header `names` (long and compact form) for recipient `to`.
fn given<'a>(inv: &'a Invitation, names: [&str; 2], to: &ListEntry) -> Option<Cow<'a, str>> {
    inv.headers.iter().find_map(|(n, v)| {
        if !names.iter().any(|x| n.eq_ignore_ascii_case(x)) {
            return None;
        }
        match v {
            HeaderValue::Text(t) => Some(Cow::Borrowed(t.as_ref())),
            HeaderValue::PerInvitee(p) => Some(Cow::Owned(crate::machine::render_invitee(p, to))),
            _ => None,
        }
    })
}

/// The spec's From (`header From = "<{session.focus}>"`) for recipient `to`: one name-addr,
/// to which the runtime adds the tag (RFC 3261 §8.1.1.3); `None` when the spec gives none.
pub(super) fn from<'a>(inv: &'a Invitation, to: &ListEntry) -> Option<Cow<'a, str>> {
    given(inv, ["from", "f"], to)
}

/// The To of the request to recipient `to`: the spec's (`header To = "<{invitee.uri}>"`,
/// RFC 3261 §8.1.1.2), else the recipient's URI alone, the runtime's default for a spec that
/// says nothing.
pub(super) fn to<'a>(inv: &'a Invitation, to: &ListEntry) -> Cow<'a, str> {
    given(inv, ["to", "t"], to).unwrap_or_else(|| Cow::Owned(format!("<{}>", to.uri.raw())))
}

/// The spec's Max-Forwards, when it gives one that is a hop count (the checker allows no
/// other, E0016; a hand-built [`Invitation`]'s unreadable value is left to the default).
pub(super) fn max_forwards(inv: &Invitation) -> Option<u8> {
    inv.headers.iter().find_map(|(n, v)| match v {
        HeaderValue::Text(t) if n.eq_ignore_ascii_case("max-forwards") => t.trim().parse().ok(),
        _ => None,
    })
}

/// The spec's plain headers of a copy to `to` that opens no dialog (`forward each`), in
/// order, without From, To and Max-Forwards (written in their place) and any focus Contact.
pub(super) fn text_headers<'a>(
    inv: &'a Invitation,
    to: &'a ListEntry,
) -> impl Iterator<Item = (&'a str, Cow<'a, str>)> {
    inv.headers.iter().filter_map(|(n, v)| match v {
        HeaderValue::Text(t) if !placed(n) => Some((n.as_ref(), Cow::Borrowed(t.as_ref()))),
        HeaderValue::PerInvitee(p) if !placed(n) => Some((
            n.as_ref(),
            Cow::Owned(crate::machine::render_invitee(p, to)),
        )),
        _ => None,
    })
}

/// A recipient the runtime knows only by its URI (a group member, a kept copy's recipient):
/// no display name, `to`, not anonymized.
pub(super) fn entry(uri: &crate::machine::Uri) -> ListEntry {
    ListEntry {
        uri: uri.clone(),
        display_name: None,
        copy_control: crate::machine::CopyControl::To,
        anonymize: false,
    }
}

/// The server's MSRP offer: `v=`/`o=`/`s=`/`c=`/`t=`, `m=message <port> TCP/MSRP *` (or
/// TCP/TLS/MSRP), its own `a=path` and `a=accept-types` (RFC 4975 §8: mandatory), written by
/// the same head writer as every offer of the server, then the spec's attribute lines in
/// order.
pub(super) fn offer(local: &LocalMedia, config: &Config, tls: bool, inv: &Invitation) -> String {
    let mut s = String::with_capacity(256 + local.path.len());
    write_offer_head(&mut s, local, &config.accept_types, tls);
    inv.write_offer_lines(config, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::OfferItem;

    fn local() -> LocalMedia {
        LocalMedia {
            address: "192.0.2.1".into(),
            msrp_port: 2855,
            path: "msrp://192.0.2.1:2855/s1;tcp".into(),
            session_id: 1,
            session_version: 1,
        }
    }

    /// `s` without NUL, CR and LF: values from the configuration stay on their SDP line
    /// whatever they hold.
    fn line(s: &str) -> String {
        s.replace(['\0', '\r', '\n'], "")
    }

    /// The offer as `write!` wrote it before it was written piece by piece (the address type
    /// read from the configured address, as in the answer).
    fn offer_formatted(local: &LocalMedia, config: &Config, tls: bool, inv: &Invitation) -> String {
        use std::fmt::Write as _;
        let addr = line(&local.address);
        let at = if local.address.parse::<std::net::Ipv6Addr>().is_ok() {
            "IP6"
        } else {
            "IP4"
        };
        let proto = if tls { "TCP/TLS/MSRP" } else { "TCP/MSRP" };
        let mut s = String::new();
        let _ = write!(
            s,
            "v=0\r\no=- {} {} IN {at} {addr}\r\ns=-\r\nc=IN {at} {addr}\r\nt=0 0\r\n\
             m=message {} {proto} *\r\na=path:{}\r\na=accept-types:",
            local.session_id,
            local.session_version,
            local.msrp_port,
            line(&local.path),
        );
        for (i, t) in config.accept_types.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(&line(t));
        }
        s.push_str("\r\n");
        inv.write_offer_lines(config, &mut s);
        s
    }

    #[test]
    fn the_offer_is_written_as_write_wrote_it() {
        let cases = [
            ("192.0.2.1", 2855, "msrp://192.0.2.1:2855/s1;tcp", 1, 1),
            ("2001:db8::1", 0, "msrp://[2001:db8::1]:0/s;tcp", 0, 0),
            (
                "203.0.113.250",
                u16::MAX,
                "msrp://x/\r\ny;tcp",
                u64::MAX,
                10,
            ),
            ("host\r\n.example", 9, "", 1 << 40, 123_456_789),
            ("192.0.2.\09", 7, "msrp://\0h/\0s;tcp", 5, 6),
        ];
        for (address, msrp_port, path, session_id, session_version) in cases {
            let local = LocalMedia {
                address: address.into(),
                msrp_port,
                path: path.into(),
                session_id,
                session_version,
            };
            let odd_types = Config {
                accept_types: vec!["text/\r\nplain".into(), "message/\0cpim".into()],
                ..Config::default()
            };
            for config in [Config::default(), odd_types] {
                for tls in [false, true] {
                    assert_eq!(
                        offer(&local, &config, tls, &Invitation::default()),
                        offer_formatted(&local, &config, tls, &Invitation::default()),
                        "{address:?} {tls}"
                    );
                }
            }
        }
    }

    /// A CR or LF in a spec's or the configuration's value is dropped, so each attribute
    /// stays on its own line; a value without either is written as it is.
    #[test]
    fn the_spec_lines_stay_one_line_each() {
        let inv = Invitation {
            offer: vec![
                OfferItem::OwnAcceptWrappedTypes,
                OfferItem::Fixed("x\r\ny".into(), Some("a\nb:c".into())),
                OfferItem::Fixed("setup".into(), Some("active".into())),
            ],
            ..Invitation::default()
        };
        let config = Config {
            accept_wrapped_types: vec!["text/\r\nplain".into(), "*".into()],
            ..Config::default()
        };
        let s = offer(&local(), &config, false, &inv);
        assert!(
            s.ends_with(
                "a=accept-types:message/cpim text/plain\r\n\
                 a=accept-wrapped-types:text/plain *\r\na=xy:ab:c\r\na=setup:active\r\n"
            ),
            "{s:?}"
        );
    }

    #[test]
    fn an_empty_invitation_offers_only_the_mandatory_lines() {
        let s = offer(&local(), &Config::default(), false, &Invitation::default());
        assert_eq!(
            s,
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
             m=message 2855 TCP/MSRP *\r\na=path:msrp://192.0.2.1:2855/s1;tcp\r\n\
             a=accept-types:message/cpim text/plain\r\n"
        );
        let none = Invitation::default();
        let (contact, rest) = headers(&none, "<sip:conf@h>", &bob());
        assert_eq!((contact.as_str(), rest.len()), ("<sip:conf@h>", 0));
    }

    #[test]
    fn the_spec_items_follow_in_order() {
        let inv = Invitation {
            headers: vec![
                (
                    Cow::Borrowed("Contact"),
                    HeaderValue::FocusContactWith(";+g.oma.sip-im".into()),
                ),
                (
                    Cow::Borrowed("Referred-By"),
                    HeaderValue::Text("<sip:a@h>".into()),
                ),
            ],
            history: false,
            offer: vec![
                OfferItem::OwnMaxSize,
                OfferItem::Fixed("setup".into(), Some("active".into())),
                OfferItem::Fixed("sendonly".into(), None),
            ],
        };
        let s = offer(&local(), &Config::default(), true, &inv);
        assert!(s.contains("TCP/TLS/MSRP"), "{s}");
        assert!(
            s.ends_with("a=max-size:1048576\r\na=setup:active\r\na=sendonly\r\n"),
            "{s}"
        );
        let (contact, rest) = headers(&inv, "<sip:conf@h>", &bob());
        assert_eq!(contact, "<sip:conf@h>;isfocus;+g.oma.sip-im");
        assert_eq!(rest, [("Referred-By", "<sip:a@h>".to_string())]);
    }

    #[test]
    fn from_and_max_forwards_are_placed_not_repeated() {
        let text =
            |n: &'static str, v: &'static str| (Cow::Borrowed(n), HeaderValue::Text(v.into()));
        let inv = Invitation {
            headers: vec![
                text("From", "\"Team\" <sip:conf-1@h>"),
                text("Max-Forwards", "12"),
                text("Referred-By", "<sip:a@h>"),
            ],
            ..Invitation::default()
        };
        let b = bob();
        assert_eq!(from(&inv, &b).as_deref(), Some("\"Team\" <sip:conf-1@h>"));
        assert_eq!(max_forwards(&inv), Some(12));
        let (_, rest) = headers(&inv, "<sip:conf@h>", &b);
        assert_eq!(rest, [("Referred-By", "<sip:a@h>".to_string())]);
        assert_eq!(
            text_headers(&inv, &b).collect::<Vec<_>>(),
            [("Referred-By", Cow::Borrowed("<sip:a@h>"))]
        );
        let none = Invitation::default();
        assert_eq!((from(&none, &b), max_forwards(&none)), (None, None));
        // Without a spec To, the recipient's URI alone (RFC 3261 §8.1.1.2).
        assert_eq!(to(&none, &b), "<sip:bob@h>");
    }

    fn bob() -> ListEntry {
        ListEntry {
            uri: crate::machine::Uri::new(crate::machine::UriParts {
                raw: "sip:bob@h",
                ..crate::machine::UriParts::default()
            }),
            display_name: Some("Bob".into()),
            ..entry(&crate::machine::Uri::default())
        }
    }

    #[test]
    fn a_per_invitee_to_names_each_recipient() {
        use crate::machine::InviteePiece as P;
        let inv = Invitation {
            headers: vec![
                (
                    Cow::Borrowed("To"),
                    HeaderValue::PerInvitee(vec![
                        P::Text("\"".into()),
                        P::DisplayName,
                        P::Text("\" <".into()),
                        P::Uri,
                        P::Text(">".into()),
                    ]),
                ),
                (
                    Cow::Borrowed("X-Cc"),
                    HeaderValue::PerInvitee(vec![P::CopyControl]),
                ),
            ],
            ..Invitation::default()
        };
        let b = bob();
        assert_eq!(to(&inv, &b), "\"Bob\" <sip:bob@h>");
        let (_, rest) = headers(&inv, "<sip:conf@h>", &b);
        assert_eq!(rest, [("X-Cc", "to".to_string())]);
    }
}

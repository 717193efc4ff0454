//! `application/conference-info+xml` documents (RFC 4575, the `conference` event package)
//! describing a group session's invitees, for the NOTIFYs of a conference-state
//! subscription.
//!
//! Every document is a full state (`state="full"`): each invitee is one `<user>` with one
//! `<endpoint>` whose `<status>` is `pending`, `connected` or `disconnected`; a disconnected
//! endpoint has its `<disconnection-method>` and, when a status code explains it,
//! `<disconnection-info><reason>` in the syntax of the SIP `Reason` header (RFC 3326:
//! `SIP;cause=486;text="Busy Here"`, or `MSRP;cause=408;…` when its MSRP delivery failed).
//! Whether the invitee's copy of the message arrived is not in RFC 4575's vocabulary; it is
//! the extension element `<dr:delivery>` (namespace [`DELIVERY_NS`]) inside the
//! `<endpoint>`, whose schema allows elements of other namespaces (`##other`), with the
//! text `pending`, `delivered` or `failed`.

use super::resource_lists::escape_into;
use std::fmt::Write as _;

/// The media type of the documents.
pub const CONTENT_TYPE: &str = "application/conference-info+xml";
/// RFC 4575's namespace.
pub const NS: &str = "urn:ietf:params:xml:ns:conference-info";
/// This server's extension namespace for the copy's delivery outcome.
pub const DELIVERY_NS: &str = "urn:imspec:params:xml:ns:conference-delivery";

/// An endpoint's `<status>` (RFC 4575 §5.7.2), the values a group session's invitee takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Invited, no final answer yet.
    Pending,
    /// Answered 2xx and still in the session.
    Connected,
    /// Declined, unreachable, or left.
    Disconnected,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Connected => "connected",
            Status::Disconnected => "disconnected",
        }
    }
}

/// `<disconnection-method>` (RFC 4575 §5.7.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// The session ended normally for it.
    Departed,
    /// It answered busy (486, 600).
    Busy,
    /// It declined, could not be reached, or its delivery failed.
    Failed,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Departed => "departed",
            Method::Busy => "busy",
            Method::Failed => "failed",
        }
    }
}

/// Why an endpoint disconnected: a protocol status, written as a `Reason` header value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// `SIP` or `MSRP`.
    pub protocol: &'static str,
    /// The status code (0: none arrived, e.g. a timeout).
    pub code: u16,
    /// Its reason phrase.
    pub text: String,
}

/// Whether an invitee's copy of the message arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Not known yet.
    Pending,
    /// The invitee confirmed it (MSRP 200).
    Delivered,
    /// It will not arrive.
    Failed,
}

impl Delivery {
    fn as_str(self) -> &'static str {
        match self {
            Delivery::Pending => "pending",
            Delivery::Delivered => "delivered",
            Delivery::Failed => "failed",
        }
    }
}

/// One invitee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Participant {
    /// Its URI (the `<user>` and `<endpoint>` entity).
    pub entity: String,
    /// Its `<status>`.
    pub status: Status,
    /// For a disconnected one: how, and the status that says why (when there is one).
    pub disconnection: Option<(Method, Option<Cause>)>,
    /// Its copy's outcome.
    pub delivery: Delivery,
}

/// One document.
#[derive(Clone, Debug)]
pub struct ConferenceInfo<'a> {
    /// The conference (focus) URI.
    pub entity: &'a str,
    /// The subscription's version counter (RFC 4575 §4.6: one higher in each NOTIFY).
    pub version: u32,
    /// Whether the session still runs (`<conference-state><active>`).
    pub active: bool,
    /// The invitees.
    pub participants: &'a [Participant],
}

impl ConferenceInfo<'_> {
    /// The document, UTF-8.
    pub fn write(&self) -> String {
        let mut out = String::with_capacity(256 + self.participants.len() * 320);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = write!(
            out,
            "<conference-info xmlns=\"{NS}\" xmlns:dr=\"{DELIVERY_NS}\" entity=\""
        );
        escape_into(&mut out, self.entity);
        let _ = writeln!(out, "\" state=\"full\" version=\"{}\">", self.version);
        let _ = writeln!(
            out,
            "  <conference-state>\n    <user-count>{}</user-count>\n    <active>{}</active>\n  </conference-state>",
            self.participants.len(),
            self.active
        );
        out.push_str("  <users>\n");
        for p in self.participants {
            out.push_str("    <user entity=\"");
            escape_into(&mut out, &p.entity);
            out.push_str("\" state=\"full\">\n      <endpoint entity=\"");
            escape_into(&mut out, &p.entity);
            let _ = writeln!(
                out,
                "\" state=\"full\">\n        <status>{}</status>",
                p.status.as_str()
            );
            if let Some((method, cause)) = &p.disconnection {
                let _ = writeln!(
                    out,
                    "        <disconnection-method>{}</disconnection-method>",
                    method.as_str()
                );
                if let Some(c) = cause {
                    out.push_str("        <disconnection-info>\n          <reason>");
                    let mut reason = format!("{};cause={}", c.protocol, c.code);
                    if !c.text.is_empty() {
                        // RFC 3326 quoted-string: the escaper below handles XML, the
                        // quotes and backslashes are taken out of the phrase first.
                        let text: String = c
                            .text
                            .chars()
                            .filter(|&ch| ch != '"' && ch != '\\')
                            .collect();
                        let _ = write!(reason, ";text=\"{text}\"");
                    }
                    escape_into(&mut out, &reason);
                    out.push_str("</reason>\n        </disconnection-info>\n");
                }
            }
            let _ = writeln!(
                out,
                "        <dr:delivery>{}</dr:delivery>\n      </endpoint>\n    </user>",
                p.delivery.as_str()
            );
        }
        out.push_str("  </users>\n</conference-info>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts() -> Vec<Participant> {
        vec![
            Participant {
                entity: "sip:bob@example.com".into(),
                status: Status::Disconnected,
                disconnection: Some((Method::Departed, None)),
                delivery: Delivery::Delivered,
            },
            Participant {
                entity: "sip:busy@example.com".into(),
                status: Status::Disconnected,
                disconnection: Some((
                    Method::Busy,
                    Some(Cause {
                        protocol: "SIP",
                        code: 486,
                        text: "Busy Here".into(),
                    }),
                )),
                delivery: Delivery::Failed,
            },
            Participant {
                entity: "sip:carol@example.com;x=\"<&>\"".into(),
                status: Status::Pending,
                disconnection: None,
                delivery: Delivery::Pending,
            },
            Participant {
                entity: "sip:drop@example.com".into(),
                status: Status::Connected,
                disconnection: None,
                delivery: Delivery::Pending,
            },
        ]
    }

    /// What an independent XML reader sees: (entity, status, method, reason, delivery).
    type Row = (String, String, Option<String>, Option<String>, String);

    fn read(doc: &str) -> (roxmltree::Document<'_>, Vec<Row>) {
        let d = roxmltree::Document::parse(doc).expect("well-formed XML");
        let mut rows = Vec::new();
        for user in d.descendants().filter(|n| n.has_tag_name((NS, "user"))) {
            let ep = user
                .children()
                .find(|n| n.has_tag_name((NS, "endpoint")))
                .expect("an endpoint per user");
            let text = |ns: &str, name: &str| {
                ep.descendants()
                    .find(|n| n.has_tag_name((ns, name)))
                    .and_then(|n| n.text())
                    .map(str::to_owned)
            };
            assert_eq!(user.attribute("entity"), ep.attribute("entity"));
            rows.push((
                user.attribute("entity").unwrap_or("").to_owned(),
                text(NS, "status").unwrap_or_default(),
                text(NS, "disconnection-method"),
                text(NS, "reason"),
                text(DELIVERY_NS, "delivery").unwrap_or_default(),
            ));
        }
        (d, rows)
    }

    #[test]
    fn every_invitee_with_status_reason_and_delivery() {
        let p = parts();
        let doc = ConferenceInfo {
            entity: "sip:conf-1-ab@192.0.2.1:5060",
            version: 3,
            active: true,
            participants: &p,
        }
        .write();
        let (d, rows) = read(&doc);
        let root = d.root_element();
        assert!(root.has_tag_name((NS, "conference-info")));
        assert_eq!(
            root.attribute("entity"),
            Some("sip:conf-1-ab@192.0.2.1:5060")
        );
        assert_eq!(root.attribute("state"), Some("full"));
        assert_eq!(root.attribute("version"), Some("3"));
        let count = d
            .descendants()
            .find(|n| n.has_tag_name((NS, "user-count")))
            .and_then(|n| n.text());
        assert_eq!(count, Some("4"));
        let s = |x: &str| x.to_owned();
        assert_eq!(
            rows,
            vec![
                (
                    s("sip:bob@example.com"),
                    s("disconnected"),
                    Some(s("departed")),
                    None,
                    s("delivered")
                ),
                (
                    s("sip:busy@example.com"),
                    s("disconnected"),
                    Some(s("busy")),
                    Some(s("SIP;cause=486;text=\"Busy Here\"")),
                    s("failed")
                ),
                (
                    // Markup in a URI comes back as it went in.
                    s("sip:carol@example.com;x=\"<&>\""),
                    s("pending"),
                    None,
                    None,
                    s("pending")
                ),
                (
                    s("sip:drop@example.com"),
                    s("connected"),
                    None,
                    None,
                    s("pending")
                ),
            ]
        );
    }

    #[test]
    fn an_empty_session_and_the_inactive_flag() {
        let doc = ConferenceInfo {
            entity: "sip:conf@h",
            version: 1,
            active: false,
            participants: &[],
        }
        .write();
        let (d, rows) = read(&doc);
        assert!(rows.is_empty());
        let active = d
            .descendants()
            .find(|n| n.has_tag_name((NS, "active")))
            .and_then(|n| n.text());
        assert_eq!(active, Some("false"));
    }

    #[test]
    fn a_reason_phrase_cannot_break_out_of_its_quotes() {
        let p = vec![Participant {
            entity: "sip:x@h".into(),
            status: Status::Disconnected,
            disconnection: Some((
                Method::Failed,
                Some(Cause {
                    protocol: "MSRP",
                    code: 408,
                    text: "a \"b\" \\ </reason>".into(),
                }),
            )),
            delivery: Delivery::Failed,
        }];
        let doc = ConferenceInfo {
            entity: "sip:conf@h",
            version: 2,
            active: false,
            participants: &p,
        }
        .write();
        let (_, rows) = read(&doc);
        assert_eq!(
            rows[0].3.as_deref(),
            Some("MSRP;cause=408;text=\"a b  </reason>\"")
        );
    }
}

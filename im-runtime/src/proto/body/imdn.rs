//! Disposition notifications (RFC 5438 §7): the `message/imdn+xml` document, read and
//! written, and the `message/cpim` wrapper a notification travels in (§7.1.1.2).
//!
//! Reading uses `roxmltree` like [`super::resource_lists`] (no DTD, so no entity expansion,
//! no I/O) with a node limit; elements are matched by local name in the IMDN namespace, and
//! unknown elements (RFC 5438 §7.2.2 lets the schema grow) are skipped.

use std::fmt::Write as _;

use super::cpim;
use super::resource_lists::escape_into;

/// The XML namespace of the IMDN document (RFC 5438 §7.2).
pub const NS_IMDN: &str = "urn:ietf:params:xml:ns:imdn";
/// Its media type.
pub const CONTENT_TYPE: &str = "message/imdn+xml";

/// The largest IMDN document read, in octets: one notification is a few hundred octets.
pub const MAX_DOCUMENT: usize = 16 * 1024;
const MAX_NODES: u32 = 256;

/// Outcome of a delivery (RFC 5438 §7.2.1.1 `delivery-notification`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// The message reached the recipient.
    Delivered,
    /// It could not be delivered.
    Failed,
    /// Policy forbids telling.
    Forbidden,
    /// The notification could not be produced.
    Error,
}

/// Outcome of a display (RFC 5438 §7.2.1.2 `display-notification`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisplayStatus {
    /// The user saw it.
    Displayed,
    /// Policy forbids telling.
    Forbidden,
    /// The notification could not be produced.
    Error,
}

/// What an intermediary did (RFC 5438 §7.2.1.3 `processing-notification`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessingStatus {
    /// Processed (e.g. exploded to a list).
    Processed,
    /// Stored for later delivery.
    Stored,
    /// Policy forbids telling.
    Forbidden,
    /// The notification could not be produced.
    Error,
}

/// The notification an IMDN carries: exactly one (RFC 5438 §7.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notification {
    /// `delivery-notification`.
    Delivery(DeliveryStatus),
    /// `display-notification`.
    Display(DisplayStatus),
    /// `processing-notification`.
    Processing(ProcessingStatus),
}

impl Notification {
    fn element(self) -> (&'static str, &'static str) {
        match self {
            Notification::Delivery(s) => (
                "delivery-notification",
                match s {
                    DeliveryStatus::Delivered => "delivered",
                    DeliveryStatus::Failed => "failed",
                    DeliveryStatus::Forbidden => "forbidden",
                    DeliveryStatus::Error => "error",
                },
            ),
            Notification::Display(s) => (
                "display-notification",
                match s {
                    DisplayStatus::Displayed => "displayed",
                    DisplayStatus::Forbidden => "forbidden",
                    DisplayStatus::Error => "error",
                },
            ),
            Notification::Processing(s) => (
                "processing-notification",
                match s {
                    ProcessingStatus::Processed => "processed",
                    ProcessingStatus::Stored => "stored",
                    ProcessingStatus::Forbidden => "forbidden",
                    ProcessingStatus::Error => "error",
                },
            ),
        }
    }

    fn from_element(kind: &str, status: &str) -> Option<Notification> {
        Some(match (kind, status) {
            ("delivery-notification", "delivered") => {
                Notification::Delivery(DeliveryStatus::Delivered)
            }
            ("delivery-notification", "failed") => Notification::Delivery(DeliveryStatus::Failed),
            ("delivery-notification", "forbidden") => {
                Notification::Delivery(DeliveryStatus::Forbidden)
            }
            ("delivery-notification", "error") => Notification::Delivery(DeliveryStatus::Error),
            ("display-notification", "displayed") => {
                Notification::Display(DisplayStatus::Displayed)
            }
            ("display-notification", "forbidden") => {
                Notification::Display(DisplayStatus::Forbidden)
            }
            ("display-notification", "error") => Notification::Display(DisplayStatus::Error),
            ("processing-notification", "processed") => {
                Notification::Processing(ProcessingStatus::Processed)
            }
            ("processing-notification", "stored") => {
                Notification::Processing(ProcessingStatus::Stored)
            }
            ("processing-notification", "forbidden") => {
                Notification::Processing(ProcessingStatus::Forbidden)
            }
            ("processing-notification", "error") => {
                Notification::Processing(ProcessingStatus::Error)
            }
            _ => return None,
        })
    }
}

/// One IMDN document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imdn {
    /// The `imdn.Message-ID` of the message this notification is about.
    pub message_id: String,
    /// The `DateTime` of that message (RFC 5438 §7.2.1: copied from it).
    pub datetime: String,
    /// The recipient this notification speaks for (`recipient-uri`), when given.
    pub recipient_uri: Option<String>,
    /// The recipient the sender addressed (`original-recipient-uri`, e.g. the list member
    /// before retargeting), when given.
    pub original_recipient_uri: Option<String>,
    /// The message's subject, when given.
    pub subject: Option<String>,
    /// The notification.
    pub notification: Notification,
}

/// Why an IMDN document could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImdnError {
    /// Larger than [`MAX_DOCUMENT`].
    #[error("IMDN document larger than {MAX_DOCUMENT} octets")]
    TooLarge,
    /// Not well-formed XML (or over the node limit, or with a DTD).
    #[error("IMDN document is not acceptable XML: {0}")]
    Xml(String),
    /// The root is not `<imdn>` in the IMDN namespace.
    #[error("root element is not imdn in {NS_IMDN}")]
    NotImdn,
    /// A mandatory element is missing (`message-id`, `datetime` or a notification).
    #[error("IMDN document lacks {0}")]
    Missing(&'static str),
    /// A notification's status is not one the RFC defines for it.
    #[error("unknown {kind} status")]
    UnknownStatus {
        /// The notification element.
        kind: String,
    },
}

impl Imdn {
    /// The document (UTF-8, XML-escaped values).
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(384);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n");
        let _ = write!(out, "<imdn xmlns=\"{NS_IMDN}\">\r\n");
        let mut leaf = |name: &str, value: &str| {
            let _ = write!(out, "  <{name}>");
            escape_into(&mut out, value);
            let _ = write!(out, "</{name}>\r\n");
        };
        leaf("message-id", &self.message_id);
        leaf("datetime", &self.datetime);
        if let Some(v) = &self.recipient_uri {
            leaf("recipient-uri", v);
        }
        if let Some(v) = &self.original_recipient_uri {
            leaf("original-recipient-uri", v);
        }
        if let Some(v) = &self.subject {
            leaf("subject", v);
        }
        let (kind, status) = self.notification.element();
        let _ = write!(
            out,
            "  <{kind}>\r\n    <status>\r\n      <{status}/>\r\n    </status>\r\n  </{kind}>\r\n"
        );
        out.push_str("</imdn>\r\n");
        out
    }

    /// Reads a document.
    pub fn parse(xml: &[u8]) -> Result<Imdn, ImdnError> {
        if xml.len() > MAX_DOCUMENT {
            return Err(ImdnError::TooLarge);
        }
        let text = std::str::from_utf8(xml).map_err(|e| ImdnError::Xml(e.to_string()))?;
        let opts = roxmltree::ParsingOptions {
            allow_dtd: false,
            nodes_limit: MAX_NODES,
            ..roxmltree::ParsingOptions::default()
        };
        let doc = roxmltree::Document::parse_with_options(text, opts)
            .map_err(|e| ImdnError::Xml(e.to_string()))?;
        let root = doc.root_element();
        if !is_imdn(root, "imdn") {
            return Err(ImdnError::NotImdn);
        }
        let text_of = |name: &str| {
            root.children()
                .find(|n| is_imdn(*n, name))
                .map(|n| n.text().unwrap_or("").trim().to_owned())
        };
        let mut notification = None;
        for kind in [
            "delivery-notification",
            "display-notification",
            "processing-notification",
        ] {
            if let Some(n) = root.children().find(|n| is_imdn(*n, kind)) {
                let status = n
                    .children()
                    .find(|c| is_imdn(*c, "status"))
                    .and_then(|s| s.children().find(|c| c.is_element()))
                    .map(|c| c.tag_name().name())
                    .ok_or(ImdnError::Missing("a notification status"))?;
                notification = Some(Notification::from_element(kind, status).ok_or(
                    ImdnError::UnknownStatus {
                        kind: kind.to_owned(),
                    },
                )?);
                break;
            }
        }
        Ok(Imdn {
            message_id: text_of("message-id").ok_or(ImdnError::Missing("message-id"))?,
            datetime: text_of("datetime").ok_or(ImdnError::Missing("datetime"))?,
            recipient_uri: text_of("recipient-uri"),
            original_recipient_uri: text_of("original-recipient-uri"),
            subject: text_of("subject"),
            notification: notification.ok_or(ImdnError::Missing("a notification"))?,
        })
    }
}

/// An element named `name` in the IMDN namespace (or in none: senders that forget `xmlns`).
fn is_imdn(n: roxmltree::Node<'_, '_>, name: &str) -> bool {
    n.is_element()
        && n.tag_name().name() == name
        && n.tag_name().namespace().is_none_or(|ns| ns == NS_IMDN)
}

/// The `message/cpim` body that carries `imdn` from `from` (the recipient, or the server
/// on its behalf) to `to` (the original sender), RFC 5438 §7.1.1.2: the notification gets a
/// Message-ID of its own (`notification_id`) and its own `DateTime`, and asks for no
/// notification in turn (§7.1.1.2 forbids requesting an IMDN for an IMDN).
pub fn notification_cpim(
    from: &str,
    to: &str,
    notification_id: &str,
    datetime: &str,
    imdn: &Imdn,
) -> Vec<u8> {
    let xml = imdn.to_xml();
    let length = xml.len().to_string();
    cpim::write(
        &[
            ("From", from),
            ("To", to),
            ("NS", "imdn <urn:ietf:params:imdn>"),
            ("imdn.Message-ID", notification_id),
            ("DateTime", datetime),
        ],
        &[
            ("Content-Type", CONTENT_TYPE),
            ("Content-Disposition", "notification"),
            ("Content-Length", &length),
        ],
        xml.as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: Notification) -> Imdn {
        Imdn {
            message_id: "34jk324j".into(),
            datetime: "2008-04-04T12:16:49-05:00".into(),
            recipient_uri: Some("im:bob@example.com".into()),
            original_recipient_uri: Some("sip:friends@example.com".into()),
            subject: Some("a <b> & 'c'".into()),
            notification: n,
        }
    }

    #[test]
    fn every_notification_reads_back() {
        for n in [
            Notification::Delivery(DeliveryStatus::Delivered),
            Notification::Delivery(DeliveryStatus::Failed),
            Notification::Delivery(DeliveryStatus::Forbidden),
            Notification::Delivery(DeliveryStatus::Error),
            Notification::Display(DisplayStatus::Displayed),
            Notification::Display(DisplayStatus::Forbidden),
            Notification::Display(DisplayStatus::Error),
            Notification::Processing(ProcessingStatus::Processed),
            Notification::Processing(ProcessingStatus::Stored),
            Notification::Processing(ProcessingStatus::Forbidden),
            Notification::Processing(ProcessingStatus::Error),
        ] {
            let i = sample(n);
            assert_eq!(Imdn::parse(i.to_xml().as_bytes()), Ok(i));
        }
    }

    /// RFC 5438 §7.2.1.1's delivery example, as a client would send it.
    #[test]
    fn reads_the_rfc_example() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<imdn xmlns="urn:ietf:params:xml:ns:imdn">
  <message-id>34jk324j</message-id>
  <datetime>2008-04-04T12:16:49-05:00</datetime>
  <recipient-uri>im:bob@example.com</recipient-uri>
  <original-recipient-uri>im:bob@example.com</original-recipient-uri>
  <delivery-notification>
    <status>
      <delivered/>
    </status>
  </delivery-notification>
</imdn>"#;
        let i = Imdn::parse(xml).unwrap();
        assert_eq!(i.message_id, "34jk324j");
        assert_eq!(i.recipient_uri.as_deref(), Some("im:bob@example.com"));
        assert_eq!(
            i.notification,
            Notification::Delivery(DeliveryStatus::Delivered)
        );
        assert_eq!(i.subject, None);
    }

    #[test]
    fn refuses_what_is_not_an_imdn() {
        assert_eq!(
            Imdn::parse(b"<other xmlns='urn:ietf:params:xml:ns:imdn'/>"),
            Err(ImdnError::NotImdn)
        );
        assert_eq!(
            Imdn::parse(b"<imdn xmlns='urn:x'/>"),
            Err(ImdnError::NotImdn)
        );
        assert_eq!(
            Imdn::parse(b"<imdn><datetime>d</datetime><delivery-notification><status><delivered/></status></delivery-notification></imdn>"),
            Err(ImdnError::Missing("message-id"))
        );
        assert!(matches!(
            Imdn::parse(b"<imdn><message-id>m</message-id><datetime>d</datetime><delivery-notification><status><displayed/></status></delivery-notification></imdn>"),
            Err(ImdnError::UnknownStatus { .. })
        ));
        assert!(matches!(
            Imdn::parse(b"<!DOCTYPE imdn [<!ENTITY a 'b'>]><imdn/>"),
            Err(ImdnError::Xml(_))
        ));
        assert_eq!(
            Imdn::parse(&vec![b' '; MAX_DOCUMENT + 1]),
            Err(ImdnError::TooLarge)
        );
    }

    #[test]
    fn the_cpim_wrapper_reads_back_through_the_cpim_reader() {
        let i = sample(Notification::Delivery(DeliveryStatus::Failed));
        let body = notification_cpim(
            "<sip:bob@example.com>",
            "<sip:alice@example.com>",
            "n-1",
            "2008-04-04T12:16:50-05:00",
            &i,
        );
        let m = cpim::Cpim::parse(&body, cpim::Limits::default()).unwrap();
        assert_eq!(m.imdn_message_id(), Some("n-1"));
        assert_eq!(m.dispositions(), cpim::Dispositions::default());
        assert_eq!(m.content_type(), Some(CONTENT_TYPE));
        assert_eq!(Imdn::parse(m.content), Ok(i));
    }
}

//! Building the typed [`Facts`] view of a request: the one place where SIP, multipart,
//! resource lists and SDP are combined into what generated conditions read.

use crate::machine::{BodyFacts, BodyPart, Facts, ListFacts, Uri};
use crate::proto::body::{multipart, resource_lists};
use crate::proto::sdp;
use crate::proto::sip::{Message, Scheme, Uri as SipUri};
use bytes::Bytes;
use std::net::IpAddr;

/// Bounds for body parsing.
#[derive(Clone, Copy, Debug, Default)]
pub struct BodyLimits {
    /// Multipart limits.
    pub multipart: multipart::Limits,
    /// Resource-list limits.
    pub lists: resource_lists::Limits,
}

/// A SIP URI of a name-addr header as the contract's view.
pub(crate) fn uri_view(s: &str) -> Option<Uri> {
    SipUri::parse(s.trim()).ok().map(|u| u.to_view())
}

/// Builds the facts of `msg`, received from `source`. `trusted` lists the hosts whose
/// P-Asserted-Identity is believed (design.md glossary: originator identity). A body that
/// cannot be read is a fact too (`body.malformed`, `body.error`), as a recipient list that
/// cannot be read is (`list.*`): what such a request is answered is the spec's rule.
pub fn build(msg: &Message, source: IpAddr, trusted: &[IpAddr], limits: &BodyLimits) -> Facts {
    let mut f = Facts {
        method: msg.method().cloned(),
        request_uri: msg.request_uri().map(|u| u.to_view()).unwrap_or_default(),
        from: msg.from().map(|n| n.uri().to_view()).unwrap_or_default(),
        to: msg.to().map(|n| n.uri().to_view()).unwrap_or_default(),
        require: msg.require().iter().map(|s| s.to_string()).collect(),
        supported: msg
            .supported()
            .map(|v| v.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default(),
        headers: msg.facts_headers(),
        status: msg.status().map(u16::from),
        ..Facts::default()
    };
    f.asserted_identity = msg.p_asserted_identity().ok().and_then(|ids| {
        ids.iter()
            .map(|n| n.uri())
            .find(|u| matches!(u.scheme(), Scheme::Sip | Scheme::Sips))
            .map(|u| u.to_view())
    });
    f.originator = match &f.asserted_identity {
        Some(pai) if trusted.contains(&source) => pai.clone(),
        _ => f.from.clone(),
    };

    if let Err(error) = read_body(&mut f, msg, limits) {
        f.body = BodyFacts {
            malformed: true,
            error,
        };
    }
    f
}

/// Reads the body's parts into `f`; `Err(why)` when it cannot be parsed.
fn read_body(f: &mut Facts, msg: &Message, limits: &BodyLimits) -> Result<(), String> {
    let body = msg.body();
    if body.is_empty() {
        return Ok(());
    }
    let Some(ct) = msg.content_type() else {
        f.parts.push(BodyPart {
            content_type: "application/octet-stream".into(),
            disposition: disposition_of(msg),
            len: body.len(),
        });
        return Ok(());
    };
    let essence = ct.essence();
    if essence.starts_with("multipart/") {
        let boundary = ct
            .param("boundary")
            .ok_or_else(|| "malformed multipart body: no boundary parameter".to_string())?;
        let mp = multipart::parse(&body, &boundary, &limits.multipart)
            .map_err(|e| format!("malformed multipart body: {e}"))?;
        for part in &mp.parts {
            let view = part.to_body_part();
            read_part(f, &view, &part.body, limits)?;
            f.parts.push(view);
        }
    } else {
        let view = BodyPart {
            content_type: essence,
            disposition: disposition_of(msg),
            len: body.len(),
        };
        read_part(f, &view, &body, limits)?;
        f.parts.push(view);
    }
    Ok(())
}

fn disposition_of(msg: &Message) -> String {
    match msg.content_disposition() {
        Some(Ok(d)) => d.ty().to_ascii_lowercase(),
        _ => String::new(),
    }
}

fn read_part(
    f: &mut Facts,
    view: &BodyPart,
    content: &Bytes,
    limits: &BodyLimits,
) -> Result<(), String> {
    match view.content_type.as_str() {
        "application/sdp" if f.sdp.is_none() => {
            f.sdp = Some(sdp::facts(content).map_err(|e| format!("malformed SDP: {e}"))?);
        }
        "application/resource-lists+xml" if view.disposition == "recipient-list" => {
            let read = resource_lists::parse(content, &limits.lists)
                .and_then(|lists| Ok((lists.list_entries(uri_view)?, lists.unresolved.len())));
            match read {
                // As the list names them: which entries are counted and addressed
                // (duplicates, the originator's own entry) is the spec's choice (`distinct`,
                // `without`), and so is what a list with references it cannot resolve
                // gets (`list.unresolved`).
                Ok((entries, unresolved)) => {
                    f.recipients = entries;
                    f.list.unresolved = unresolved;
                }
                // What a list that cannot be read is answered (and whether a malformed one
                // and one over a limit get the same status) is the spec's rule: the facts
                // say which it is and why, and `recipients` stays empty.
                Err(e) => {
                    f.list = ListFacts {
                        malformed: !e.is_limit(),
                        too_large: e.is_limit(),
                        error: e.to_string(),
                        unresolved: 0,
                    };
                }
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts_of(ctype: &str, body: &str) -> Facts {
        let text = format!(
            "INVITE sip:conference-factory@example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKf1\r\nMax-Forwards: 70\r\n\
             From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:conference-factory@example.com>\r\n\
             Call-ID: f1@alice\r\nCSeq: 1 INVITE\r\nContent-Type: {ctype}\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let msg = Message::parse(Bytes::from(text)).expect("a valid request");
        build(
            &msg,
            "192.0.2.1".parse().expect("an address"),
            &[],
            &BodyLimits::default(),
        )
    }

    #[test]
    fn a_body_that_cannot_be_parsed_is_a_fact() {
        let f = facts_of("multipart/mixed", "--b1\r\n\r\nx\r\n--b1--\r\n");
        assert!(f.body.malformed);
        assert_eq!(
            f.body.error,
            "malformed multipart body: no boundary parameter"
        );
        assert!(f.parts.is_empty());
        let f = facts_of("application/sdp", "not sdp\r\n");
        assert!(f.body.malformed);
        assert!(
            f.body.error.starts_with("malformed SDP: "),
            "{}",
            f.body.error
        );
        assert!(f.sdp.is_none());
        let f = facts_of("text/plain", "hello");
        assert_eq!(f.body, BodyFacts::default());
    }

    #[test]
    fn references_in_a_list_are_counted_not_dropped() {
        let list = "<?xml version=\"1.0\"?><resource-lists \
                    xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list>\
                    <entry uri=\"sip:bob@example.com\"/>\
                    <entry-ref ref=\"resource-lists/users/alice/index/~~/list%5b@name=%22x%22%5d\"/>\
                    <external anchor=\"http://xcap.example.com/lists/y\"/>\
                    </list></resource-lists>";
        let body = format!(
            "--b1\r\nContent-Type: application/resource-lists+xml\r\n\
             Content-Disposition: recipient-list\r\n\r\n{list}\r\n--b1--\r\n"
        );
        let f = facts_of("multipart/mixed;boundary=b1", &body);
        assert!(!f.body.malformed, "{}", f.body.error);
        assert_eq!(f.recipients.len(), 1);
        assert_eq!(f.list.unresolved, 2);
        assert!(!f.list.malformed);
    }
}

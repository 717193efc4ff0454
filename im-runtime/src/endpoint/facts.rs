//! Building the typed [`Facts`] view of a request: the one place where SIP, multipart,
//! resource lists and SDP are combined into what generated conditions read.

use crate::machine::Method;
use crate::machine::{BodyFacts, BodyPart, Facts, Headers, ListFacts, Uri};
use crate::proto::body::{multipart, resource_lists};
use crate::proto::sdp;
use crate::proto::sip::{HeaderName, Message, Scheme, Uri as SipUri};
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

/// What a page-mode MESSAGE carries to its recipients: the Content-Type to send it with
/// and its bytes (a slice of the request's body, no copy).
pub(crate) type Payload = (String, Bytes);

/// Builds the facts of `msg`, received from `source`. `trusted` lists the hosts whose
/// P-Asserted-Identity is believed (design.md glossary: originator identity). A body that
/// cannot be read is a fact too (`body.malformed`, `body.error`), as a recipient list that
/// cannot be read is (`list.*`): what such a request is answered is the spec's rule.
pub fn build(msg: &Message, source: IpAddr, trusted: &[IpAddr], limits: &BodyLimits) -> Facts {
    read(msg, source, trusted, limits).0
}

/// [`build`], and for a MESSAGE its page-mode [`Payload`] as [`payload`] finds it, taken
/// from the same split of the body: a list MESSAGE's multipart body is split once, not
/// again for its IMDN request and its copies.
pub(crate) fn read(
    msg: &Message,
    source: IpAddr,
    trusted: &[IpAddr],
    limits: &BodyLimits,
) -> (Facts, Option<Payload>) {
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
        headers: headers_of(msg),
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

    let message = msg.method() == Some(&Method::Message);
    let mut split = None;
    if let Err(error) = read_body(&mut f, msg, limits, message.then_some(&mut split)) {
        f.body = BodyFacts {
            malformed: true,
            error,
        }
        .into();
    }
    let payload = message.then(|| split.unwrap_or_else(|| whole_payload(msg)));
    (f, payload)
}

/// `msg`'s header lines as [`Facts::headers`] keeps them: each under its full name in lower
/// case, in one buffer sized in a first pass (no `String` per name or value).
fn headers_of(msg: &Message) -> Headers {
    let lines = || {
        msg.headers()
            .map(|h| (h.name.canonical().unwrap_or(h.name_str), h.value))
    };
    let (len, count) = lines().fold((0, 0), |(len, count), (n, v)| {
        (len + n.len() + v.len(), count + 1)
    });
    Headers::build(len, count, true, lines())
}

/// Drops the spare capacity of `f`'s vectors, for facts a session keeps for its whole life:
/// they were collected from iterators of unknown length (a list of 3 recipients sits in
/// room for 4 at 160 bytes each), which a request handled once and dropped does not mind.
pub(crate) fn shrink(f: &mut Facts) {
    f.require.shrink_to_fit();
    f.supported.shrink_to_fit();
    f.parts.shrink_to_fit();
    f.recipients.shrink_to_fit();
    if let Some(sdp) = f.sdp.as_mut() {
        sdp.media.shrink_to_fit();
    }
}

/// The payload of a page-mode request (RFC 5365 §7): the first part of its multipart body
/// that is neither a recipient list nor a recipient-list history, with that part's own
/// Content-Type; else (not multipart, unreadable, or nothing but lists) the whole body with
/// the request's Content-Type.
pub(crate) fn payload(msg: &Message, limits: &BodyLimits) -> Payload {
    let body = msg.body();
    let split = msg
        .content_type()
        .filter(|c| c.ty().eq_ignore_ascii_case("multipart"))
        .and_then(|c| c.param("boundary").map(|b| b.to_string()))
        .and_then(|boundary| multipart::parse(&body, &boundary, &limits.multipart).ok())
        .and_then(|mp| payload_part(&mp));
    split.unwrap_or_else(|| whole_payload(msg))
}

fn payload_part(mp: &multipart::Multipart) -> Option<Payload> {
    let p = mp.parts.iter().find(|p| {
        let d = p
            .disposition
            .as_ref()
            .map(|d| d.kind.as_str())
            .unwrap_or("");
        d != "recipient-list" && d != "recipient-list-history"
    })?;
    let ct = p.header("Content-Type").unwrap_or("text/plain").to_string();
    Some((ct, p.body.clone()))
}

fn whole_payload(msg: &Message) -> Payload {
    let ct = msg
        .header(HeaderName::ContentType)
        .unwrap_or("text/plain")
        .to_string();
    (ct, msg.body())
}

/// Reads the body's parts into `f`; `Err(why)` when it cannot be parsed. With `payload`,
/// a multipart body's page-mode payload goes there too ([`payload_part`]).
fn read_body(
    f: &mut Facts,
    msg: &Message,
    limits: &BodyLimits,
    payload: Option<&mut Option<Payload>>,
) -> Result<(), String> {
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
        if let Some(out) = payload {
            *out = payload_part(&mp);
        }
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
                    // Unset (no allocation) when 0, as `Rare` keeps a default.
                    f.list = ListFacts {
                        unresolved,
                        ..ListFacts::default()
                    }
                    .into();
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
                    }
                    .into();
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
        assert!(
            !f.body.is_set() && !f.list.is_set(),
            "nothing allocated for them"
        );
    }

    #[test]
    fn header_facts_are_the_lines_lower_cased_under_full_names() {
        let text = "INVITE sip:conference-factory@example.com SIP/2.0\r\n\
             v: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKf1\r\nMax-Forwards: 70\r\n\
             f: <sip:alice@example.com>;tag=a1\r\nTo: <sip:conference-factory@example.com>\r\n\
             Call-ID: f1@alice\r\nCSeq: 1 INVITE\r\nX-Odd-Name: Some Value\r\n\
             Subject: two\r\n  lines\r\nVIA: SIP/2.0/TCP 192.0.2.2;branch=z9hG4bKf2\r\n\
             Content-Length: 0\r\n\r\n";
        let msg = Message::parse(Bytes::from(text)).expect("a valid request");
        let f = build(
            &msg,
            "192.0.2.1".parse().expect("an address"),
            &[],
            &BodyLimits::default(),
        );
        let expect = msg.facts_headers();
        let got: Vec<(String, String)> = f
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, expect);
        assert_eq!(got[0].0, "via");
        assert_eq!(f.header("from"), Some("<sip:alice@example.com>;tag=a1"));
        assert_eq!(f.header("x-odd-name"), Some("Some Value"));
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

    #[test]
    fn kept_facts_hold_no_spare_capacity() {
        let entries: String = (0..3)
            .map(|k| format!("<entry uri=\"sip:u{k}@example.com\"/>"))
            .collect();
        let list = format!(
            "<?xml version=\"1.0\"?><resource-lists \
             xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list>{entries}</list></resource-lists>"
        );
        let sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
                   m=message 7394 TCP/MSRP *\r\na=accept-types:text/plain\r\n\
                   a=path:msrp://192.0.2.1:7394/s1;tcp\r\n";
        let body = format!(
            "--b1\r\nContent-Type: application/sdp\r\n\r\n{sdp}\r\n\
             --b1\r\nContent-Type: application/resource-lists+xml\r\n\
             Content-Disposition: recipient-list\r\n\r\n{list}\r\n--b1--\r\n"
        );
        let mut f = facts_of("multipart/mixed;boundary=b1", &body);
        assert!(!f.body.malformed, "{}", f.body.error);
        shrink(&mut f);
        assert_eq!(f.recipients.len(), 3);
        assert_eq!(f.recipients.capacity(), 3);
        assert_eq!(f.parts.capacity(), f.parts.len());
        let sdp = f.sdp.as_ref().expect("an SDP part");
        assert_eq!(sdp.media.capacity(), 1);
        assert_eq!(sdp.media[0].attributes().count(), 2);
    }
}

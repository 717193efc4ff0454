//! Building the typed [`Facts`] view of a request: the one place where SIP, multipart,
//! resource lists and SDP are combined into what generated conditions read.

use crate::machine::{BodyPart, Facts, ListFacts, Uri};
use crate::proto::body::{multipart, resource_lists};
use crate::proto::sdp;
use crate::proto::sip::{Message, Scheme, Uri as SipUri};
use bytes::Bytes;
use std::net::IpAddr;

/// Why a request's facts could not be built; each maps to a 400 with this text as Warning.
/// A recipient list that cannot be read is not one of them: it reaches the spec as
/// `list.malformed` / `list.too_large` (see [`ListFacts`](crate::machine::ListFacts)).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FactsError {
    /// The multipart body is malformed.
    #[error("malformed multipart body: {0}")]
    Multipart(String),
    /// The SDP body is malformed.
    #[error("malformed SDP: {0}")]
    Sdp(String),
}

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
/// P-Asserted-Identity is believed (design.md glossary: originator identity).
pub fn build(
    msg: &Message,
    source: IpAddr,
    trusted: &[IpAddr],
    limits: &BodyLimits,
) -> Result<Facts, FactsError> {
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

    let body = msg.body();
    if body.is_empty() {
        return Ok(f);
    }
    let Some(ct) = msg.content_type() else {
        f.parts.push(BodyPart {
            content_type: "application/octet-stream".into(),
            disposition: disposition_of(msg),
            len: body.len(),
        });
        return Ok(f);
    };
    let essence = ct.essence();
    if essence.starts_with("multipart/") {
        let boundary = ct
            .param("boundary")
            .ok_or_else(|| FactsError::Multipart("no boundary parameter".into()))?;
        let mp = multipart::parse(&body, &boundary, &limits.multipart)
            .map_err(|e| FactsError::Multipart(e.to_string()))?;
        for part in &mp.parts {
            let view = part.to_body_part();
            read_part(&mut f, &view, &part.body, limits)?;
            f.parts.push(view);
        }
    } else {
        let view = BodyPart {
            content_type: essence,
            disposition: disposition_of(msg),
            len: body.len(),
        };
        read_part(&mut f, &view, &body, limits)?;
        f.parts.push(view);
    }
    Ok(f)
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
) -> Result<(), FactsError> {
    match view.content_type.as_str() {
        "application/sdp" if f.sdp.is_none() => {
            f.sdp = Some(sdp::facts(content).map_err(|e| FactsError::Sdp(e.to_string()))?);
        }
        "application/resource-lists+xml" if view.disposition == "recipient-list" => {
            let read = resource_lists::parse(content, &limits.lists)
                .and_then(|lists| lists.list_entries(uri_view));
            match read {
                // As the list names them: which entries are counted and addressed
                // (duplicates, the originator's own entry) is the spec's choice (`distinct`,
                // `without`).
                Ok(entries) => f.recipients = entries,
                // What a list that cannot be read is answered (and whether a malformed one
                // and one over a limit get the same status) is the spec's rule: the facts
                // say which it is and why, and `recipients` stays empty.
                Err(e) => {
                    f.list = ListFacts {
                        malformed: !e.is_limit(),
                        too_large: e.is_limit(),
                        error: e.to_string(),
                    };
                }
            }
        }
        _ => {}
    }
    Ok(())
}

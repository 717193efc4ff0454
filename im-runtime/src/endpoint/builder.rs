//! Glue between the SIP parser and the transaction layer: keys from parsed messages, and the
//! [`MessageBuilder`] the transaction table uses to write 100 Trying, ACKs for non-2xx,
//! CANCEL and the answers to CANCEL.

use crate::proto::sip::build::RequestBuilder;
use crate::proto::sip::{HeaderName, Message, StatusCode};
use crate::proto::transaction::{
    MAGIC_COOKIE, MessageBuilder, Rfc2543Parts, TopVia, TsxKey, TsxMessage,
};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

/// The transaction view of a parsed message, or `None` when it lacks what a key needs.
pub(crate) fn tsx_message(m: &Message) -> Option<TsxMessage> {
    let cseq = m.cseq()?;
    let via = m.top_via()?;
    let raw_via = m.header(HeaderName::Via).unwrap_or("");
    let sent_by = match via.port() {
        Some(p) => format!("{}:{p}", via.host()),
        None => via.host().to_string(),
    };
    let method = if m.is_request() {
        m.method()?.clone()
    } else {
        cseq.method.clone()
    };
    // The RFC 2543 parts are read only for a branch without the magic cookie; the From tag
    // costs a full name-addr parse, so a compliant message (every one we see in practice)
    // does not pay for it.
    let branch = via.branch();
    let rfc3261 = branch.is_some_and(|b| b.starts_with(MAGIC_COOKIE));
    let from = if rfc3261 { None } else { m.from() };
    let legacy = if rfc3261 {
        Rfc2543Parts::default()
    } else {
        Rfc2543Parts {
            request_uri: m.request_uri_str().unwrap_or(""),
            from_tag: from.as_ref().and_then(|f| f.tag()).unwrap_or(""),
            call_id: m.call_id().unwrap_or(""),
            cseq: cseq.seq,
        }
    };
    let key = TsxKey::new(
        &method,
        TopVia {
            sent_by: &sent_by,
            branch,
            raw: raw_via,
        },
        legacy,
    );
    let bytes = m.as_bytes().clone();
    Some(match m.status() {
        Some(s) => TsxMessage::response(key, cseq.method, u16::from(s), bytes),
        None => TsxMessage::request(key, method, bytes),
    })
}

/// Keeps the parsed request (and last response) of each transaction, so the endpoint and
/// the builder can read headers without parsing again.
#[derive(Debug)]
pub(crate) struct SipBuilder {
    requests: HashMap<TsxKey, Message>,
    responses: HashMap<TsxKey, Message>,
    _advertised: SocketAddr,
}

impl SipBuilder {
    pub(crate) fn new(advertised: SocketAddr) -> Self {
        SipBuilder {
            requests: HashMap::new(),
            responses: HashMap::new(),
            _advertised: advertised,
        }
    }

    pub(crate) fn remember(&mut self, key: &TsxKey, m: &Message) {
        self.requests
            .entry(key.clone())
            .or_insert_with(|| m.clone());
    }

    pub(crate) fn remember_response(&mut self, key: &TsxKey, m: &Message) {
        self.responses.insert(key.clone(), m.clone());
    }

    pub(crate) fn forget(&mut self, key: &TsxKey) {
        self.requests.remove(key);
        self.responses.remove(key);
    }

    pub(crate) fn request(&self, key: &TsxKey) -> Option<&Message> {
        self.requests.get(key)
    }

    pub(crate) fn response(&self, key: &TsxKey) -> Option<&Message> {
        self.responses.get(key)
    }
}

impl MessageBuilder for SipBuilder {
    fn response(&mut self, request: &TsxMessage, status: u16) -> Option<bytes::Bytes> {
        let req = match self.requests.get(&request.key) {
            Some(r) if r.method() == Some(&request.method) => r.clone(),
            // The CANCEL itself (its key differs from the INVITE's only by method).
            _ => Message::parse(request.bytes.clone()).ok()?,
        };
        let b = crate::proto::sip::build::ResponseBuilder::new(&req, StatusCode::new(status)?);
        let b = if status > 100 {
            // A tag derived from the transaction, so a retransmitted answer carries the same.
            let mut h = std::collections::hash_map::DefaultHasher::new();
            request.key.hash(&mut h);
            b.to_tag(&format!("{:016x}", h.finish()))
        } else {
            b
        };
        Some(b.write())
    }

    fn ack(&mut self, invite: &TsxMessage, response: &TsxMessage) -> Option<bytes::Bytes> {
        let inv = self.requests.get(&invite.key)?.clone();
        let resp = Message::parse(response.bytes.clone()).ok()?;
        RequestBuilder::ack_for_failure(&inv, &resp)
            .build()
            .ok()
            .map(Message::into_bytes)
    }

    fn cancel(&mut self, invite: &TsxMessage) -> Option<bytes::Bytes> {
        let inv = self.requests.get(&invite.key)?.clone();
        let m = RequestBuilder::cancel_for(&inv).build().ok()?;
        if let Some(t) = super::builder::tsx_message(&m) {
            self.requests.insert(t.key, m.clone());
        }
        Some(m.into_bytes())
    }
}

//! Glue between the SIP parser and the transaction layer: keys from parsed messages, and the
//! [`MessageBuilder`] the transaction table uses to write 100 Trying, ACKs for non-2xx,
//! CANCEL and the answers to CANCEL.

use crate::proto::sip::build::RequestBuilder;
use crate::proto::sip::{HeaderName, Message, StatusCode};
use crate::proto::transaction::{
    MAGIC_COOKIE, MessageBuilder, Rfc2543Parts, TsxKey, TsxMap, TsxMessage,
};
use std::net::SocketAddr;

/// The transaction view of a parsed message, or `None` when it lacks what a key needs.
pub(crate) fn tsx_message(m: &Message) -> Option<TsxMessage> {
    let cseq = m.cseq()?;
    let via = m.top_via()?;
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
    // The whole top Via line, which only the RFC 2543 key compares (reading it again costs
    // a UTF-8 check of the line).
    let raw_via = if rfc3261 {
        ""
    } else {
        m.header(HeaderName::Via).unwrap_or("")
    };
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
    let key = TsxKey::from_via(&method, branch, via.host(), via.port(), raw_via, legacy);
    let bytes = m.as_bytes().clone();
    Some(match m.status() {
        Some(s) => TsxMessage::response(key, cseq.method, u16::from(s), bytes),
        None => TsxMessage::request(key, method, bytes),
    })
}

/// The parsed request or response being handled, by transaction, so that the endpoint and
/// the builder read its headers without parsing it again. An entry lives only while the
/// input that brought its message is handled (the endpoint forgets it after draining the
/// transaction layer, or takes it when the event reaches the TU): the transactions keep
/// their own bytes for as long as they need them, and the builder parses those in the rare
/// cases it needs one later (an ACK for a non-2xx, a CANCEL, an answer written by
/// [`Transactions::reply`](crate::proto::transaction::Transactions::reply)).
#[derive(Debug)]
pub(crate) struct SipBuilder {
    requests: TsxMap<Message>,
    responses: TsxMap<Message>,
    _advertised: SocketAddr,
}

impl SipBuilder {
    pub(crate) fn new(advertised: SocketAddr) -> Self {
        SipBuilder {
            requests: TsxMap::default(),
            responses: TsxMap::default(),
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

    /// Whether nothing is cached (true between inputs; the endpoint's debug check).
    #[cfg(debug_assertions)]
    pub(crate) fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.responses.is_empty()
    }

    /// The request of `key`, for the TU: the entry is gone after.
    pub(crate) fn take_request(&mut self, key: &TsxKey) -> Option<Message> {
        self.requests.remove(key)
    }

    /// The response of `key`, for the TU: the entry is gone after.
    pub(crate) fn take_response(&mut self, key: &TsxKey) -> Option<Message> {
        self.responses.remove(key)
    }

    /// The parsed form of `m`: the remembered one when it is there, else parsed from the
    /// bytes the transaction kept.
    fn parsed<'a>(
        &'a self,
        m: &TsxMessage,
        scratch: &'a mut Option<Message>,
    ) -> Option<&'a Message> {
        match self.requests.get(&m.key) {
            Some(r) if r.method() == Some(&m.method) => Some(r),
            // Not remembered, or the CANCEL itself (its key differs from the INVITE's only
            // by method).
            _ => Some(scratch.insert(Message::parse(m.bytes.clone()).ok()?)),
        }
    }
}

impl MessageBuilder for SipBuilder {
    fn response(&mut self, request: &TsxMessage, status: u16) -> Option<bytes::Bytes> {
        let mut scratch = None;
        let req = self.parsed(request, &mut scratch)?;
        let b = crate::proto::sip::build::ResponseBuilder::new(req, StatusCode::new(status)?);
        let b = if status > 100 {
            // A tag derived from the transaction, so a retransmitted answer carries the same.
            b.to_tag(&format!("{:016x}", request.key.stable_hash()))
        } else {
            b
        };
        Some(b.write())
    }

    fn ack(&mut self, invite: &TsxMessage, response: &TsxMessage) -> Option<bytes::Bytes> {
        let mut scratch = None;
        let inv = self.parsed(invite, &mut scratch)?;
        let resp = Message::parse(response.bytes.clone()).ok()?;
        RequestBuilder::ack_for_failure(inv, &resp)
            .build()
            .ok()
            .map(Message::into_bytes)
    }

    fn cancel(&mut self, invite: &TsxMessage) -> Option<bytes::Bytes> {
        let mut scratch = None;
        let inv = self.parsed(invite, &mut scratch)?;
        let m = RequestBuilder::cancel_for(inv).build().ok()?;
        Some(m.into_bytes())
    }
}

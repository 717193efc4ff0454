//! Transaction keys: which transaction a message belongs to (RFC 3261 §17.1.3, §17.2.3).

use crate::machine::Method;

/// The prefix of every RFC 3261 branch (§8.1.1.7). A branch without it comes from an
/// RFC 2543 element and cannot be trusted to be unique, so the key falls back to the
/// dialog-ish fields of the request.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// The top Via of a message, reduced to what transaction matching reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TopVia<'a> {
    /// `sent-by`: host with optional port (`192.0.2.1:5060`, `pc33.example.com`).
    pub sent_by: &'a str,
    /// The `branch` parameter, when present.
    pub branch: Option<&'a str>,
    /// The whole header value, as the RFC 2543 fallback compares it.
    pub raw: &'a str,
}

/// The fields the RFC 2543 fallback key is built from (§17.2.3, last paragraphs). Only read
/// when the top Via branch lacks [`MAGIC_COOKIE`]. Responses carry no Request-URI; an empty
/// one is fine there, because a response without the cookie can never match a client
/// transaction of ours (we always send the cookie).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rfc2543Parts<'a> {
    /// The Request-URI as it appeared.
    pub request_uri: &'a str,
    /// The From tag (empty when absent).
    pub from_tag: &'a str,
    /// The Call-ID.
    pub call_id: &'a str,
    /// The CSeq sequence number (the method is taken from the key's method).
    pub cseq: u32,
}

/// Identifies one transaction.
///
/// Requests and responses of a transaction map to the same key:
///
/// * with an RFC 3261 branch (it starts with `z9hG4bK`): the branch, the top Via sent-by
///   (host compared case-insensitively) and the method;
/// * otherwise (RFC 2543 peers): Request-URI, From tag, Call-ID, CSeq number, the top Via
///   and the method.
///
/// The method maps as §17.2.3 asks: an ACK belongs to the INVITE transaction it
/// acknowledges, so an ACK's key carries `INVITE`. A CANCEL is a transaction of its own
/// (its key carries `CANCEL`); [`TsxKey::cancelled_invite`] gives the key of the INVITE it
/// cancels (§9.2: same branch, different method).
///
/// Client and server transactions are kept apart by the table, so the same key may name a
/// client and a server transaction at once (a request looped back to ourselves).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TsxKey {
    id: KeyId,
    method: Method,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum KeyId {
    Branch {
        branch: Box<str>,
        sent_by: Box<str>,
    },
    Rfc2543 {
        request_uri: Box<str>,
        from_tag: Box<str>,
        call_id: Box<str>,
        cseq: u32,
        top_via: Box<str>,
    },
}

impl TsxKey {
    /// The key of a request with `method`, or of a response whose CSeq method is `method`.
    ///
    /// `legacy` is read only when the branch lacks the magic cookie.
    pub fn new(method: &Method, via: TopVia<'_>, legacy: Rfc2543Parts<'_>) -> TsxKey {
        let method = match method {
            Method::Ack => Method::Invite,
            other => other.clone(),
        };
        let id = match via.branch {
            Some(branch) if branch.starts_with(MAGIC_COOKIE) => KeyId::Branch {
                branch: branch.into(),
                sent_by: via.sent_by.trim().to_ascii_lowercase().into(),
            },
            _ => KeyId::Rfc2543 {
                request_uri: legacy.request_uri.trim().into(),
                from_tag: legacy.from_tag.into(),
                call_id: legacy.call_id.trim().into(),
                cseq: legacy.cseq,
                top_via: via.raw.trim().into(),
            },
        };
        TsxKey { id, method }
    }

    /// Shorthand for an RFC 3261 key from a branch and sent-by; a branch without the cookie
    /// gives an RFC 2543 key with empty dialog fields (useful only in tests).
    pub fn from_branch(method: &Method, branch: &str, sent_by: &str) -> TsxKey {
        TsxKey::new(
            method,
            TopVia {
                sent_by,
                branch: Some(branch),
                raw: "",
            },
            Rfc2543Parts::default(),
        )
    }

    /// The method of the transaction (`INVITE` for an ACK).
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The branch, when the key is an RFC 3261 one.
    pub fn branch(&self) -> Option<&str> {
        match &self.id {
            KeyId::Branch { branch, .. } => Some(branch),
            KeyId::Rfc2543 { .. } => None,
        }
    }

    /// Whether the key came from an RFC 3261 branch (not the RFC 2543 fallback).
    pub fn is_rfc3261(&self) -> bool {
        matches!(self.id, KeyId::Branch { .. })
    }

    /// For a CANCEL's key, the key of the INVITE transaction it cancels; `None` for other
    /// methods.
    pub fn cancelled_invite(&self) -> Option<TsxKey> {
        (self.method == Method::Cancel).then(|| self.with_method(Method::Invite))
    }

    /// The same identity with another method: the CANCEL for an INVITE reuses its branch.
    pub(crate) fn with_method(&self, method: Method) -> TsxKey {
        TsxKey {
            id: self.id.clone(),
            method,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn via(branch: &str) -> TopVia<'_> {
        TopVia {
            sent_by: "PC33.example.com:5060",
            branch: Some(branch),
            raw: "SIP/2.0/UDP pc33.example.com:5060;branch=1234",
        }
    }

    fn legacy(cseq: u32) -> Rfc2543Parts<'static> {
        Rfc2543Parts {
            request_uri: "sip:bob@example.com",
            from_tag: "ft",
            call_id: "cid@pc33",
            cseq,
        }
    }

    #[test]
    fn ack_maps_to_invite_and_cancel_stays_apart() {
        let invite = TsxKey::new(&Method::Invite, via("z9hG4bKabc"), legacy(1));
        let ack = TsxKey::new(&Method::Ack, via("z9hG4bKabc"), legacy(1));
        let cancel = TsxKey::new(&Method::Cancel, via("z9hG4bKabc"), legacy(1));
        assert_eq!(invite, ack);
        assert_ne!(invite, cancel);
        assert_eq!(cancel.cancelled_invite(), Some(invite.clone()));
        assert_eq!(invite.cancelled_invite(), None);
        assert!(invite.is_rfc3261());
        assert_eq!(invite.branch(), Some("z9hG4bKabc"));
    }

    #[test]
    fn sent_by_host_is_case_insensitive_branch_is_not() {
        let a = TsxKey::from_branch(&Method::Bye, "z9hG4bKx", "PC33.example.com");
        let b = TsxKey::from_branch(&Method::Bye, "z9hG4bKx", "pc33.EXAMPLE.com");
        let c = TsxKey::from_branch(&Method::Bye, "z9hG4bKX", "pc33.example.com");
        let d = TsxKey::from_branch(&Method::Bye, "z9hG4bKx", "pc34.example.com");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn rfc2543_fallback_uses_dialog_fields() {
        let a = TsxKey::new(&Method::Invite, via("1234"), legacy(1));
        let ack = TsxKey::new(&Method::Ack, via("1234"), legacy(1));
        let other_cseq = TsxKey::new(&Method::Invite, via("1234"), legacy(2));
        let no_branch = TsxKey::new(
            &Method::Invite,
            TopVia {
                branch: None,
                ..via("")
            },
            legacy(1),
        );
        assert!(!a.is_rfc3261());
        assert_eq!(a.branch(), None);
        assert_eq!(a, ack);
        assert_ne!(a, other_cseq);
        // Same raw Via, no branch parameter at all: still the fallback, same fields.
        assert_eq!(a, no_branch);
    }
}

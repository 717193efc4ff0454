//! What the core answers before any application logic: request validation (RFC 3261 §8.2,
//! §16.3 for forwarded requests) and the sanity checks that make a UA drop a response.

use bytes::Bytes;

use super::build::ResponseBuilder;
use super::header::HeaderName;
use super::message::Message;
use super::status::StatusCode;
use super::uri::Scheme;
use crate::machine::Method;

/// What the server supports; decides 420, 415 and 406.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Option tags we support (Require with anything else gets 420).
    pub supported: Vec<String>,
    /// Media types (`type/subtype`, lower case) accepted in request bodies (else 415).
    pub accepted_types: Vec<String>,
    /// Methods whose success response carries an SDP answer (Accept must allow
    /// `application/sdp`, else 406).
    pub sdp_answer_methods: Vec<Method>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            supported: Vec::new(),
            accepted_types: [
                "application/sdp",
                "multipart/mixed",
                "text/plain",
                "message/cpim",
                "application/resource-lists+xml",
                "application/im-iscomposing+xml",
                "message/imdn+xml",
            ]
            .map(String::from)
            .to_vec(),
            sdp_answer_methods: vec![Method::Invite],
        }
    }
}

/// Where the request goes after validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routing {
    /// We are the UAS for it (conference factory, a group URI, a session …).
    Local,
    /// We would forward it (page-mode exploder, invitee legs): Max-Forwards and
    /// Proxy-Require apply (RFC 3261 §16.3).
    Forward,
}

/// A rejection: the status and what to put in the response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The status code.
    pub status: StatusCode,
    /// For 420: the unknown option tags (goes into `Unsupported`).
    pub unsupported: Vec<String>,
    /// Why, for a `Warning: 399` header.
    pub warning: String,
}

/// The outcome of [`validate_request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The request may go on to the transaction layer and the application. (An OPTIONS
    /// with Max-Forwards 0 that would be forwarded is accepted too: answer it here,
    /// RFC 3261 §16.3 step 3 / RFC 4475 §3.3.11.)
    Accept,
    /// Answer with this status.
    Reject(Rejection),
}

fn reject(status: StatusCode, warning: impl Into<String>) -> Verdict {
    Verdict::Reject(Rejection {
        status,
        unsupported: Vec::new(),
        warning: warning.into(),
    })
}

/// Headers that may appear once only (several lines, or several values, get 400).
const SINGLE: [HeaderName; 7] = [
    HeaderName::From,
    HeaderName::To,
    HeaderName::CallId,
    HeaderName::CSeq,
    HeaderName::MaxForwards,
    HeaderName::ContentType,
    HeaderName::Expires,
];

/// The response the core gives to a parsed request, before the application sees it.
/// Checks, in the order RFC 3261 §8.2 and §16.3 apply them: 505 (version), 400 (missing
/// Via/From/To/Call-ID/CSeq, single-value headers repeated, CSeq method mismatch, body
/// without Content-Type, unparsable Accept), 416 (Request-URI scheme), 483 (Max-Forwards 0
/// on a request to forward, except OPTIONS), 420 (Require, and Proxy-Require when
/// forwarding), 415 (Content-Type), 406 (Accept excludes the SDP we would answer with).
///
/// First come the checks [`Message::parse`] leaves to first use ([`Message::check_deferred`]:
/// the Request-URI, Max-Forwards, Contact, Content-Type, Route, Record-Route, Require,
/// Proxy-Require), each failure a 400 as when the parse rejected the message; the
/// Request-URI and Content-Type are checked while they are read for 416 and 415.
pub fn validate_request(msg: &Message, policy: &Policy, routing: Routing) -> Verdict {
    let Some(method) = msg.method() else {
        return reject(StatusCode::BAD_REQUEST, "not a request");
    };
    let request_uri = match msg.check_request_uri() {
        Ok(u) => u,
        Err(e) => {
            return reject(
                StatusCode::BAD_REQUEST,
                format!("malformed Request-URI: {e}"),
            );
        }
    };
    if let Err(e) = msg.check_deferred_headers(true) {
        return reject(StatusCode::BAD_REQUEST, format!("malformed header: {e}"));
    }
    let content_type = match msg.content_type_checked() {
        Some(Err(e)) => return reject(StatusCode::BAD_REQUEST, format!("malformed header: {e}")),
        Some(Ok(ct)) => Some(ct),
        None => None,
    };
    if !msg.version().eq_ignore_ascii_case("SIP/2.0") {
        return reject(
            StatusCode::VERSION_NOT_SUPPORTED,
            "only SIP/2.0 is supported",
        );
    }
    let present = msg.name_presence();
    for (name, what) in [
        (HeaderName::Via, "Via"),
        (HeaderName::From, "From"),
        (HeaderName::To, "To"),
        (HeaderName::CallId, "Call-ID"),
        (HeaderName::CSeq, "CSeq"),
    ] {
        if !present.has(name) {
            return reject(StatusCode::BAD_REQUEST, format!("missing {what}"));
        }
    }
    for name in SINGLE {
        if present.repeated(name) {
            let n = name.canonical().unwrap_or("header");
            return reject(
                StatusCode::BAD_REQUEST,
                format!("several {n} header fields"),
            );
        }
    }
    let Some(cseq) = msg.cseq() else {
        return reject(StatusCode::BAD_REQUEST, "malformed CSeq");
    };
    if &cseq.method != method {
        return reject(
            StatusCode::BAD_REQUEST,
            "CSeq method does not match the Request-Line",
        );
    }
    if !msg.body_bytes().is_empty() && content_type.is_none() {
        return reject(StatusCode::BAD_REQUEST, "body without Content-Type");
    }
    let accept = match msg.accept() {
        Some(Err(e)) => return reject(StatusCode::BAD_REQUEST, format!("malformed Accept: {e}")),
        Some(Ok(a)) => Some(a),
        None => None,
    };

    match request_uri.map(|u| u.scheme()) {
        Some(Scheme::Sip | Scheme::Sips | Scheme::Tel) => {}
        _ => {
            return reject(
                StatusCode::UNSUPPORTED_URI_SCHEME,
                "Request-URI scheme not supported",
            );
        }
    }
    if routing == Routing::Forward && msg.max_forwards() == Some(0) && *method != Method::Options {
        return reject(StatusCode::TOO_MANY_HOPS, "Max-Forwards is 0");
    }
    // RFC 3261 §8.2.2.3: a CANCEL or ACK is never rejected for its Require.
    if *method != Method::Ack && *method != Method::Cancel {
        let mut unknown: Vec<String> = msg
            .require()
            .into_iter()
            .filter(|t| !policy.supported.iter().any(|s| s == t))
            .map(String::from)
            .collect();
        if routing == Routing::Forward {
            unknown.extend(
                msg.proxy_require()
                    .into_iter()
                    .filter(|t| !policy.supported.iter().any(|s| s == t))
                    .map(String::from),
            );
        }
        if !unknown.is_empty() {
            return Verdict::Reject(Rejection {
                status: StatusCode::BAD_EXTENSION,
                warning: format!("unsupported option tags: {}", unknown.join(", ")),
                unsupported: unknown,
            });
        }
    }
    if let Some(ct) = content_type {
        let essence = ct.essence();
        if !policy
            .accepted_types
            .iter()
            .any(|t| t.eq_ignore_ascii_case(&essence))
        {
            return reject(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("{essence} not accepted"),
            );
        }
    }
    if policy.sdp_answer_methods.contains(method)
        && let Some(a) = accept
        && !a.iter().any(|m| m.matches("application", "sdp"))
    {
        return reject(
            StatusCode::NOT_ACCEPTABLE,
            "Accept excludes application/sdp",
        );
    }
    Verdict::Accept
}

/// Why a response was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// A mandatory header is missing or a single-value header is repeated.
    Malformed(&'static str),
    /// More than one Via: a UA must discard it (RFC 3261 §8.1.3.3).
    SeveralVia,
    /// Not SIP/2.0.
    Version,
}

/// Sanity checks a UA applies to a parsed response before matching it to a transaction;
/// a response that passes still has to match one, else it is dropped too. A response that
/// fails [`Message::check_deferred`] is dropped, as when the parse rejected it.
pub fn check_response(msg: &Message) -> Result<(), DropReason> {
    if msg.is_request() {
        return Err(DropReason::Malformed("not a response"));
    }
    if msg.check_deferred_headers(false).is_err() {
        return Err(DropReason::Malformed("malformed header"));
    }
    if !msg.version().eq_ignore_ascii_case("SIP/2.0") {
        return Err(DropReason::Version);
    }
    let present = msg.name_presence();
    for (name, what) in [
        (HeaderName::Via, "missing Via"),
        (HeaderName::From, "missing From"),
        (HeaderName::To, "missing To"),
        (HeaderName::CallId, "missing Call-ID"),
        (HeaderName::CSeq, "missing CSeq"),
    ] {
        if !present.has(name) {
            return Err(DropReason::Malformed(what));
        }
    }
    if SINGLE.iter().any(|&n| present.repeated(n)) {
        return Err(DropReason::Malformed("repeated single-value header"));
    }
    // One Via line without a comma holds at most one value: nothing to parse (the usual
    // response; parsing it cost ~2 k instructions per response).
    let mut lines = msg.header_lines(HeaderName::Via);
    // (A byte search: `str::contains` with a char pattern cost ~190 instructions here.)
    let single = lines
        .next()
        .is_some_and(|v| memchr::memchr(b',', v.as_bytes()).is_none())
        && lines.next().is_none();
    if !single && msg.vias().len() > 1 {
        return Err(DropReason::SeveralVia);
    }
    Ok(())
}

/// What to do with one received datagram, all checks done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Triage {
    /// A valid request for the transaction layer.
    Request(Message),
    /// A well-formed response: match it to a client transaction, drop it if none matches.
    Response(Message),
    /// Send this response (the request was rejected, or failed to parse but could be
    /// salvaged).
    Respond(Message),
    /// Discard silently (malformed response, unanswerable request, ACK).
    Drop(String),
}

/// Parses and validates one datagram: the whole "what the core does" in one call. `agent`
/// is our host for Warning headers.
pub fn triage(buf: Bytes, policy: &Policy, routing: Routing, agent: &str) -> Triage {
    // An ACK is never answered (RFC 3261 §17.2.1), so a broken one is dropped.
    let is_ack = buf.starts_with(b"ACK ");
    match Message::parse(buf) {
        Err(f) => match f.salvage {
            Some(s) if !is_ack => {
                match ResponseBuilder::from_salvage(&s, StatusCode::BAD_REQUEST, agent).build() {
                    Ok(r) => Triage::Respond(r),
                    Err(e) => Triage::Drop(format!(
                        "{}; and the 400 could not be built: {}",
                        f.error, e.error
                    )),
                }
            }
            _ => Triage::Drop(f.error.to_string()),
        },
        Ok(m) if m.is_request() => match validate_request(&m, policy, routing) {
            Verdict::Accept => Triage::Request(m),
            Verdict::Reject(_) if m.method() == Some(&Method::Ack) => {
                Triage::Drop("invalid ACK".into())
            }
            Verdict::Reject(r) => {
                let mut b = ResponseBuilder::new(&m, r.status).header(
                    "Warning",
                    &format!("399 {agent} \"{}\"", r.warning.replace(['"', '\\'], "'")),
                );
                if !r.unsupported.is_empty() {
                    b = b.header("Unsupported", &r.unsupported.join(", "));
                }
                if r.status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
                    b = b.header("Accept", &policy.accepted_types.join(", "));
                }
                match b.build() {
                    Ok(resp) => Triage::Respond(resp),
                    Err(e) => Triage::Drop(format!(
                        "rejected ({}), response not buildable: {}",
                        r.status, e.error
                    )),
                }
            }
        },
        Ok(m) => match check_response(&m) {
            Ok(()) => Triage::Response(m),
            Err(d) => Triage::Drop(format!("{d:?}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A malformed Content-Type line after a good one is a 400 before any other verdict (a
    /// 505 here), as when the parse rejected it (found by the `sip_message` fuzz target).
    #[test]
    fn second_content_type_line_is_checked_first() {
        let text = "MESSAGE sip:a@example.org SIP/4.0\r\n\
            Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:b@h>;tag=1\r\nTo: <sip:a@h>\r\n\
            Call-ID: c\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\n\
            Content-Type: multipart/mixed;4:44\r\nContent-Length: 0\r\n\r\n";
        let m = Message::parse(Bytes::from(text)).expect("parses");
        assert!(m.check_deferred().is_err());
        match validate_request(&m, &Policy::default(), Routing::Local) {
            Verdict::Reject(r) => assert_eq!(r.status, StatusCode::BAD_REQUEST, "{r:?}"),
            Verdict::Accept => panic!("accepted"),
        }
    }

    /// The shortcut for one comma-free Via line gives what counting every parsed Via value
    /// gives, and responses with several values are still dropped.
    #[test]
    fn several_via_shortcut_agrees_with_counting() {
        let cases: [(&[&str], bool); 5] = [
            (
                &["SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKa;rport=5060"],
                false,
            ),
            (
                &["SIP/2.0/UDP a;branch=z9hG4bKa , SIP/2.0/UDP b;branch=z9hG4bKb"],
                true,
            ),
            (
                &[
                    "SIP/2.0/UDP a;branch=z9hG4bKa",
                    "SIP/2.0/UDP b;branch=z9hG4bKb",
                ],
                true,
            ),
            (&["SIP/2.0/UDP a;branch=z9hG4bKa;x=\"p,q\""], false),
            (&["SIP/2.0/TCP [2001:db8::1]:5061;branch=z9hG4bKc"], false),
        ];
        for (vias, several) in cases {
            let mut text = String::from("SIP/2.0 200 OK\r\n");
            for v in vias {
                text.push_str("Via: ");
                text.push_str(v);
                text.push_str("\r\n");
            }
            text.push_str(
                "From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\n\
                 CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
            );
            let m = Message::parse(Bytes::from(text)).expect("parses");
            assert_eq!(m.vias().len() > 1, several, "{vias:?}");
            let dropped = matches!(check_response(&m), Err(DropReason::SeveralVia));
            assert_eq!(dropped, several, "{vias:?}");
        }
    }
}

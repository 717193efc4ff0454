//! The SIP messages of the simulated peers: alice's INVITE and ACK, an invitee's response.

use super::{ALICE, ALICE_MSRP, invitee_sip};
use crate::common::{crlf, response_from};
use bytes::Bytes;
use im_runtime::proto::sip::{HeaderName, Message};
use std::net::SocketAddr;

/// A response to `req` from a user agent whose Contact is `contact`, with an SDP body
/// unless `sdp` is empty.
pub(crate) fn response_to(
    req: &Message,
    status: u16,
    to_tag: &str,
    contact: SocketAddr,
    sdp: &str,
) -> Bytes {
    let contact = format!("sip:ua@{contact}");
    let body = (!sdp.is_empty()).then_some(sdp);
    Bytes::from(response_from(req, status, to_tag, &contact, body))
}

/// Alice's INVITE to the conference factory naming every invitee and herself (whom the
/// server leaves out).
pub(crate) fn alice_invite(n: usize) -> Bytes {
    let sdp = crlf(&format!(
        "v=0\no=alice 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=message 7000 TCP/MSRP *\na=path:msrp://{ALICE_MSRP}/alicesess;tcp\na=accept-types:message/cpim text/plain\na=setup:active\na=sendonly\n"
    ));
    let mut entries: String = (0..n)
        .map(|k| format!("<entry uri=\"sip:u{k}@{}\"/>", invitee_sip(k)))
        .collect();
    entries.push_str("<entry uri=\"sip:alice@example.com\"/>");
    let list = format!(
        "<?xml version=\"1.0\"?>\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list>{entries}</list></resource-lists>\n"
    );
    let body = crlf(&format!(
        "--b1\nContent-Type: application/sdp\n\n{sdp}--b1\nContent-Type: application/resource-lists+xml\nContent-Disposition: recipient-list\n\n{list}--b1--\n"
    ));
    Bytes::from(
        crlf(&format!(
            "INVITE sip:conference-factory@example.com SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKsim1;rport\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: <sip:conference-factory@example.com>\nCall-ID: sim-1@alice\nCSeq: 1 INVITE\nContact: <sip:alice@{ALICE}>\nContent-Type: multipart/mixed;boundary=b1\nContent-Length: {}\n\n",
            body.len()
        )) + &body,
    )
}

/// Alice's ACK for a 2xx.
pub(crate) fn alice_ack(ok: &Message, n: u32) -> Bytes {
    Bytes::from(crlf(&format!(
        "ACK sip:conference-factory@example.com SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKsimack{n}\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: {}\nCall-ID: sim-1@alice\nCSeq: 1 ACK\nContent-Length: 0\n\n",
        ok.header(HeaderName::To).unwrap_or("")
    )))
}

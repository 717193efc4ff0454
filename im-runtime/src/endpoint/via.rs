//! `received` and `rport` on the top Via of a request as it arrives (RFC 3261 §18.2.1,
//! RFC 3581 §4). The server transport stamps the request itself, so every response built
//! from it later (100 Trying, error answers, the machines' answers, 487 after CANCEL) copies
//! the stamped Via without each builder having to know.

use crate::proto::sip::{HeaderName, Message, Transport, Via, split_values};
use bytes::{BufMut, BytesMut};
use std::net::{IpAddr, SocketAddr};

/// The top Via value `value` (the first of a possibly comma-separated line) rewritten for a
/// request received from `source`, or `None` when it stays as it is: `received` is added
/// when the sent-by host is not the source address or `rport` was asked for, and a
/// valueless `rport` gets the source port. Other parameters keep their order.
pub(crate) fn stamped(value: &str, source: SocketAddr) -> Option<String> {
    let via = Via::parse_list(value).ok()?.into_iter().next()?;
    let rport_asked = matches!(via.rport(), Some(None));
    let host = via.host().trim_start_matches('[').trim_end_matches(']');
    let differs = host.parse::<IpAddr>().map_or(true, |ip| ip != source.ip());
    if !rport_asked && !differs {
        return None;
    }
    let mut s = format!(
        "{}/{}/{} {}",
        via.protocol(),
        via.version(),
        via.transport(),
        via.host()
    );
    if let Some(p) = via.port() {
        s.push_str(&format!(":{p}"));
    }
    for (name, v) in via.params().iter() {
        if name.eq_ignore_ascii_case("received") {
            // Ours replaces whatever the sender wrote.
            continue;
        }
        s.push(';');
        s.push_str(name);
        match v {
            None if name.eq_ignore_ascii_case("rport") => {
                s.push_str(&format!("={}", source.port()));
            }
            None => {}
            Some(v) => {
                s.push('=');
                s.push_str(v);
            }
        }
    }
    // RFC 3261 writes an IPv6 `received` without brackets.
    s.push_str(&format!(";received={}", source.ip()));
    Some(s)
}

/// `msg` with its top Via stamped for `source` (see [`stamped`]); the message itself when
/// nothing changes or the rewrite would not parse.
pub(crate) fn stamp_request(msg: Message, source: SocketAddr, transport: Transport) -> Message {
    let Some(h) = msg.headers().find(|h| h.name == HeaderName::Via) else {
        return msg;
    };
    let Some(first) = split_values(h.value).next() else {
        return msg;
    };
    let Some(new) = stamped(first, source) else {
        return msg;
    };
    // `first` borrows from `h.value`, which sits at `h.offset` in the message.
    let rel = (first.as_ptr() as usize).wrapping_sub(h.value.as_ptr() as usize);
    let start = h.offset + rel;
    let end = start + first.len();
    let bytes = msg.as_bytes();
    let (Some(head), Some(tail)) = (bytes.get(..start), bytes.get(end..)) else {
        return msg;
    };
    let mut out = BytesMut::with_capacity(bytes.len() + 40);
    out.put_slice(head);
    out.put_slice(new.as_bytes());
    out.put_slice(tail);
    Message::parse_as(out.freeze(), transport).unwrap_or(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn stamps_only_when_needed() {
        assert_eq!(
            stamped(
                "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx",
                sa("192.0.2.1:5060")
            ),
            None
        );
        assert_eq!(
            stamped(
                "SIP/2.0/UDP 192.0.2.1:5060;rport;branch=z9hG4bKx",
                sa("192.0.2.1:4000")
            )
            .as_deref(),
            Some("SIP/2.0/UDP 192.0.2.1:5060;rport=4000;branch=z9hG4bKx;received=192.0.2.1")
        );
        assert_eq!(
            stamped(
                "SIP/2.0/TCP host.example;branch=z9hG4bKx;received=1.2.3.4",
                sa("192.0.2.1:4000")
            )
            .as_deref(),
            Some("SIP/2.0/TCP host.example;branch=z9hG4bKx;received=192.0.2.1")
        );
        assert_eq!(
            stamped(
                "SIP/2.0/UDP [2001:db8::1];rport;branch=z9hG4bKx",
                sa("[2001:db8::1]:7")
            )
            .as_deref(),
            Some("SIP/2.0/UDP [2001:db8::1];rport=7;branch=z9hG4bKx;received=2001:db8::1")
        );
    }

    #[test]
    fn rewrites_the_first_value_of_a_multi_value_line_only() {
        let text = "OPTIONS sip:x@example.com SIP/2.0\r\nv: SIP/2.0/UDP a.example;rport;branch=z9hG4bK1 , SIP/2.0/UDP b.example;branch=z9hG4bK2\r\nMax-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:x@example.com>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        let m = Message::parse(bytes::Bytes::from(text)).unwrap();
        let m = stamp_request(m, sa("192.0.2.9:1234"), Transport::Datagram);
        let vias = m.vias();
        assert_eq!(vias.len(), 2);
        assert_eq!(vias[0].received(), Some("192.0.2.9"));
        assert_eq!(vias[0].rport(), Some(Some(1234)));
        assert_eq!(vias[1].received(), None);
        assert_eq!(m.call_id(), Some("c"));
    }
}

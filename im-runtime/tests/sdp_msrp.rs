//! SDP parsing with sdp-types on MSRP offers (the evidence behind the crate decision), the
//! typed MSRP layer, the SdpFacts conversion, round-trips and "never panics".

use im_runtime::proto::sdp::{
    self,
    msrp::{ConnectionMode, Direction, MsrpAttributes, Setup, intersect_types, is_msrp},
};
use proptest::prelude::*;

/// RFC 4975 §8.7-style offer with FQDNs in o= and c=.
const FQDN_OFFER: &str = "v=0\r\n\
o=alice 2890844526 2890844527 IN IP4 alice.example.com\r\n\
s=-\r\n\
c=IN IP4 alice.example.com\r\n\
t=0 0\r\n\
m=message 7394 TCP/MSRP *\r\n\
a=accept-types:text/plain message/cpim\r\n\
a=path:msrp://alice.example.com:7394/2s93i93idj;tcp\r\n";

const IPV4_OFFER: &str = "v=0\r\n\
o=- 1 1 IN IP4 192.0.2.1\r\n\
s=-\r\n\
c=IN IP4 192.0.2.1\r\n\
t=0 0\r\n\
m=message 7394 TCP/MSRP *\r\n\
a=path:msrp://192.0.2.1:7394/abc;tcp\r\n\
a=connection:new\r\n\
a=setup:active\r\n\
a=accept-types:message/cpim\r\n\
a=sendonly\r\n";

const TLS_TWO_HOP: &str = "v=0\r\n\
o=- 2 3 IN IP4 client.example.net\r\n\
s=-\r\n\
c=IN IP4 client.example.net\r\n\
t=0 0\r\n\
m=message 2855 TCP/TLS/MSRP *\r\n\
a=path:msrps://relay.example.net:2855/r1;tcp msrps://client.example.net:2855/c1;tcp\r\n\
a=setup:active\r\n\
a=accept-types:message/cpim application/im-iscomposing+xml\r\n\
a=accept-wrapped-types:text/plain message/imdn+xml\r\n\
a=max-size:131072\r\n\
a=msrp-cema\r\n\
a=sendrecv\r\n";

#[test]
fn sdp_types_handles_msrp_offers_byte_identically() {
    for text in [FQDN_OFFER, IPV4_OFFER, TLS_TWO_HOP] {
        let s = sdp::parse(text.as_bytes()).unwrap();
        assert_eq!(s.medias.len(), 1);
        assert_eq!(s.medias[0].media, "message");
        assert!(is_msrp(&s.medias[0].media, &s.medias[0].proto));
        assert_eq!(s.medias[0].fmt, "*");
        assert_eq!(sdp::write(&s), text, "round-trip must be byte-identical");
    }
    let s = sdp::parse(FQDN_OFFER.as_bytes()).unwrap();
    assert_eq!(s.origin.unicast_address, "alice.example.com");
    assert_eq!(
        s.connection.as_ref().unwrap().connection_address,
        "alice.example.com"
    );
    assert_eq!(
        s.medias[0].get_first_attribute_value("path"),
        Some(Some("msrp://alice.example.com:7394/2s93i93idj;tcp"))
    );
}

#[test]
fn sdp_types_known_leniencies() {
    // Missing o=/s= get placeholders; LF-only line ends parse and come back as CRLF.
    let s = sdp::parse(b"v=0\nm=message 1 TCP/MSRP *\na=sendonly\n").unwrap();
    assert_eq!(s.medias[0].port, 1);
    assert!(sdp::write(&s).contains("m=message 1 TCP/MSRP *\r\na=sendonly\r\n"));
}

#[test]
fn typed_msrp_attributes() {
    let s = sdp::parse(TLS_TWO_HOP.as_bytes()).unwrap();
    let a = MsrpAttributes::from_session(&s, &s.medias[0]);
    assert_eq!(
        a.path,
        [
            "msrps://relay.example.net:2855/r1;tcp",
            "msrps://client.example.net:2855/c1;tcp"
        ]
    );
    assert_eq!(
        a.accept_types.as_deref(),
        Some(
            &[
                "message/cpim".to_owned(),
                "application/im-iscomposing+xml".to_owned()
            ][..]
        )
    );
    assert_eq!(a.accept_wrapped_types.as_ref().unwrap().len(), 2);
    assert_eq!(a.max_size, Some(131072));
    assert_eq!(a.setup, Some(Setup::Active));
    assert_eq!(a.connection, None);
    assert_eq!(a.direction, Direction::SendRecv);
    assert!(a.cema);

    let s = sdp::parse(IPV4_OFFER.as_bytes()).unwrap();
    let a = MsrpAttributes::from_session(&s, &s.medias[0]);
    assert_eq!(a.connection, Some(ConnectionMode::New));
    assert_eq!(a.direction, Direction::SendOnly);
    assert!(!a.cema);
    assert_eq!(a.accept_wrapped_types, None);
}

#[test]
fn session_level_direction_and_defaults() {
    let text = "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\na=recvonly\r\nm=message 9 TCP/MSRP *\r\na=setup:bogus\r\na=max-size:lots\r\n";
    let s = sdp::parse(text.as_bytes()).unwrap();
    let a = MsrpAttributes::from_session(&s, &s.medias[0]);
    assert_eq!(a.direction, Direction::RecvOnly);
    assert_eq!(a.setup, None);
    assert_eq!(a.max_size, None);
    // The contract view keeps no session attributes but inherits the session-level
    // direction into a media section without its own (RFC 4566 §6).
    let f = sdp::facts(text.as_bytes()).unwrap();
    assert_eq!(
        MsrpAttributes::from_media(&f.media[0]).direction,
        Direction::RecvOnly
    );
}

#[test]
fn setup_and_direction_rules() {
    assert_eq!(Setup::answer_to(Some(Setup::Active)), Setup::Passive);
    assert_eq!(Setup::answer_to(Some(Setup::ActPass)), Setup::Active);
    assert_eq!(Setup::answer_to(Some(Setup::Passive)), Setup::Active);
    assert_eq!(Setup::answer_to(Some(Setup::HoldConn)), Setup::HoldConn);
    assert_eq!(Setup::answer_to(None), Setup::Passive);
    assert_eq!(Setup::parse(" ActPass "), Some(Setup::ActPass));
    assert_eq!(Direction::SendOnly.mirror(), Direction::RecvOnly);
    assert_eq!(Direction::RecvOnly.mirror(), Direction::SendOnly);
    assert_eq!(Direction::SendRecv.mirror(), Direction::SendRecv);
    assert_eq!(Direction::Inactive.mirror(), Direction::Inactive);
}

fn v(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn accept_types_intersection() {
    assert_eq!(
        intersect_types(&v("text/plain message/CPIM"), &v("message/cpim")),
        v("message/cpim")
    );
    assert_eq!(
        intersect_types(&v("*"), &v("message/cpim text/plain")),
        v("message/cpim text/plain")
    );
    assert_eq!(
        intersect_types(&v("message/cpim text/plain"), &v("*")),
        v("message/cpim text/plain")
    );
    assert_eq!(intersect_types(&v("*"), &v("*")), v("*"));
    assert_eq!(
        intersect_types(&v("text/*"), &v("message/cpim text/plain text/html")),
        v("text/plain text/html")
    );
    assert_eq!(
        intersect_types(&v("text/html"), &v("text/*")),
        v("text/html")
    );
    assert!(intersect_types(&v("image/png"), &v("message/cpim text/plain")).is_empty());
    assert!(intersect_types(&[], &v("*")).is_empty());
}

#[test]
fn facts_view() {
    let f = sdp::facts(IPV4_OFFER.as_bytes()).unwrap();
    assert_eq!(f.connection.as_deref(), Some("192.0.2.1"));
    let m = &f.media[0];
    assert_eq!(
        (m.media(), m.port(), m.proto()),
        ("message", 7394, "TCP/MSRP")
    );
    assert!(m.formats().eq(["*"]));
    assert_eq!(m.attr("setup"), Some("active"));
    assert!(m.has_attr("sendonly"));
    assert_eq!(m.attr("sendonly"), Some(""));
    assert_eq!(m.attr_tokens("accept-types"), ["message/cpim"]);
    assert_eq!(f.raw, IPV4_OFFER);
}

#[test]
fn errors() {
    assert!(matches!(
        sdp::parse(b"x=1\r\n"),
        Err(sdp::SdpError::Malformed(_))
    ));
    assert!(matches!(
        sdp::parse(b"v=0\r\nm=message notaport TCP/MSRP *\r\n"),
        Err(sdp::SdpError::Malformed(_))
    ));
    assert_eq!(
        sdp::parse(b"v=0\r\ns=\xff\r\n"),
        Err(sdp::SdpError::NotUtf8)
    );
    assert_eq!(
        sdp::parse_with_limit(IPV4_OFFER.as_bytes(), 10),
        Err(sdp::SdpError::TooLarge { limit: 10 })
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn never_panics_on_arbitrary_input(data in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(s) = sdp::parse(&data) {
            let _ = MsrpAttributes::from_session(&s, s.medias.first().unwrap_or(&sdp_types::Media::new(
                sdp_types::MediaType::Message, 0, sdp_types::TransportProto::Other("x".into()), "*")));
        }
    }

    #[test]
    fn never_panics_on_line_soup(lines in prop::collection::vec(
        ("[vosctmab]", "[ -~]{0,30}"), 0..12)) {
        let mut text = String::from("v=0\r\n");
        for (k, v) in &lines { text.push_str(&format!("{k}={v}\r\n")); }
        if let Ok(f) = sdp::facts(text.as_bytes()) {
            for m in &f.media { let _ = MsrpAttributes::from_media(m); }
        }
    }

    /// parse → write → parse gives the same session, and write is then a fixed point.
    #[test]
    fn round_trip(
        port in 0u16..,
        tls in any::<bool>(),
        attrs in prop::collection::vec(("[a-z][a-z-]{0,10}", prop::option::of("[!-~][ -~]{0,20}")), 0..8),
    ) {
        let mut text = format!(
            "v=0\r\no=- 5 6 IN IP4 host.example\r\ns=-\r\nc=IN IP4 host.example\r\nt=0 0\r\nm=message {port} {} *\r\n",
            if tls { "TCP/TLS/MSRP" } else { "TCP/MSRP" }
        );
        for (n, v) in &attrs {
            match v {
                Some(v) => text.push_str(&format!("a={n}:{}\r\n", v.trim_end())),
                None => text.push_str(&format!("a={n}\r\n")),
            }
        }
        let s1 = sdp::parse(text.as_bytes()).unwrap();
        let w1 = sdp::write(&s1);
        let s2 = sdp::parse(w1.as_bytes()).unwrap();
        prop_assert_eq!(&s1, &s2);
        prop_assert_eq!(sdp::write(&s2), w1);
    }
}

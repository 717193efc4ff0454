//! The SDP answer builder (design.md rules a–d) and the server's own offer: exact lines.

use std::borrow::Cow;

use im_runtime::machine::{Config, SdpAnswerItem};
use im_runtime::proto::sdp::{
    self,
    answer::{self, AnswerError, LocalMedia, OfferOptions},
    msrp::{Direction, MsrpAttributes, Setup},
};

fn local() -> LocalMedia {
    LocalMedia {
        address: "198.51.100.7".into(),
        msrp_port: 2855,
        path: "msrp://198.51.100.7:2855/s3ss10n;tcp".into(),
        session_id: 42,
        session_version: 1,
    }
}

/// What a `sdp { … }` block listing every rule a–c emits.
fn items(tb_granted: bool) -> Vec<SdpAnswerItem> {
    let mut v = vec![
        SdpAnswerItem::MediaFromOffer,
        SdpAnswerItem::OwnPath,
        SdpAnswerItem::AcceptTypesIntersection,
        SdpAnswerItem::AcceptWrappedTypesIntersection,
        SdpAnswerItem::OwnMaxSize,
        SdpAnswerItem::MirrorDirection,
        SdpAnswerItem::ComplementSetup,
        SdpAnswerItem::Echo(Cow::Borrowed("msrp-cema")),
    ];
    if tb_granted {
        v.push(SdpAnswerItem::Fixed(Cow::Borrowed("tb-granted"), None));
    }
    v
}

fn offer(setup: Option<&str>, accept: &str, extra: &str) -> String {
    let mut s = String::from(
        "v=0\r\no=- 1 1 IN IP4 alice.example.com\r\ns=-\r\nc=IN IP4 alice.example.com\r\nt=0 0\r\n\
m=message 7394 TCP/MSRP *\r\na=path:msrp://alice.example.com:7394/abc;tcp\r\na=connection:new\r\n",
    );
    if let Some(setup) = setup {
        s.push_str(&format!("a=setup:{setup}\r\n"));
    }
    s.push_str(&format!("a=accept-types:{accept}\r\n"));
    s.push_str(extra);
    s.push_str("a=sendonly\r\n");
    s
}

fn answer_for(offer_text: &str, items: &[SdpAnswerItem]) -> Result<answer::Answer, AnswerError> {
    let facts = sdp::facts(offer_text.as_bytes()).unwrap();
    answer::build_answer(&facts, items, &local(), &Config::default())
}

const HEAD: &str = "v=0\r\n\
o=- 42 1 IN IP4 198.51.100.7\r\n\
s=-\r\n\
c=IN IP4 198.51.100.7\r\n\
t=0 0\r\n\
m=message 2855 TCP/MSRP *\r\n\
a=path:msrp://198.51.100.7:2855/s3ss10n;tcp\r\n";

fn expected(accept: &str, setup: &str, tail: &str) -> String {
    format!(
        "{HEAD}a=accept-types:{accept}\r\na=max-size:1048576\r\na=setup:{setup}\r\na=connection:new\r\na=recvonly\r\n{tail}"
    )
}

#[test]
fn setup_active_gives_passive() {
    let a = answer_for(&offer(Some("active"), "message/cpim", ""), &items(false)).unwrap();
    assert_eq!(a.sdp, expected("message/cpim", "passive", ""));
    assert_eq!(a.role, Setup::Passive);
    assert_eq!(a.offer.path, ["msrp://alice.example.com:7394/abc;tcp"]);
}

#[test]
fn setup_actpass_gives_active() {
    let a = answer_for(&offer(Some("actpass"), "message/cpim", ""), &items(false)).unwrap();
    assert_eq!(a.sdp, expected("message/cpim", "active", ""));
    assert_eq!(a.role, Setup::Active);
}

#[test]
fn setup_passive_gives_active() {
    let a = answer_for(&offer(Some("passive"), "message/cpim", ""), &items(false)).unwrap();
    assert_eq!(a.sdp, expected("message/cpim", "active", ""));
    assert_eq!(a.role, Setup::Active);
}

#[test]
fn setup_absent_gives_passive_because_the_offerer_connects() {
    let a = answer_for(&offer(None, "message/cpim", ""), &items(false)).unwrap();
    assert_eq!(a.sdp, expected("message/cpim", "passive", ""));
    assert_eq!(a.role, Setup::Passive);
}

#[test]
fn overlapping_accept_types_keep_the_offer_order() {
    let a = answer_for(
        &offer(Some("active"), "text/plain image/png message/CPIM", ""),
        &items(false),
    )
    .unwrap();
    assert_eq!(a.sdp, expected("text/plain message/cpim", "passive", ""));
}

#[test]
fn star_offer_gets_the_server_list() {
    let a = answer_for(&offer(Some("active"), "*", ""), &items(false)).unwrap();
    assert_eq!(a.sdp, expected("message/cpim text/plain", "passive", ""));
}

#[test]
fn disjoint_accept_types_are_a_typed_error() {
    assert_eq!(
        answer_for(
            &offer(Some("active"), "image/png video/mp4", ""),
            &items(false)
        ),
        Err(AnswerError::NoCommonAcceptTypes {
            offered: vec!["image/png".into(), "video/mp4".into()]
        })
    );
    let no_accept = offer(Some("active"), "x/y", "").replace("a=accept-types:x/y\r\n", "");
    assert_eq!(
        answer_for(&no_accept, &items(false)),
        Err(AnswerError::MissingAcceptTypes)
    );
}

#[test]
fn with_tb_granted_wrapped_types_and_cema_echo() {
    let extra = "a=accept-wrapped-types:message/imdn+xml image/jpeg\r\na=msrp-cema\r\n";
    let a = answer_for(&offer(Some("active"), "message/cpim", extra), &items(true)).unwrap();
    assert_eq!(
        a.sdp,
        format!(
            "{HEAD}a=accept-types:message/cpim\r\na=accept-wrapped-types:message/imdn+xml\r\n\
a=max-size:1048576\r\na=setup:passive\r\na=connection:new\r\na=recvonly\r\na=msrp-cema\r\na=tb-granted\r\n"
        )
    );
    // Without tb-granted in the items, no tb-granted line; cema still echoed.
    let a = answer_for(&offer(Some("active"), "message/cpim", extra), &items(false)).unwrap();
    assert!(!a.sdp.contains("tb-granted"));
    assert!(a.sdp.ends_with("a=recvonly\r\na=msrp-cema\r\n"));
    // Disjoint wrapped types: the attribute is left out, not an error.
    let a = answer_for(
        &offer(
            Some("active"),
            "message/cpim",
            "a=accept-wrapped-types:image/png\r\n",
        ),
        &items(false),
    )
    .unwrap();
    assert!(!a.sdp.contains("accept-wrapped-types"));
}

#[test]
fn fixed_with_value_and_only_listed_items_in_fixed_order() {
    let items = vec![
        SdpAnswerItem::Fixed(Cow::Borrowed("x-note"), Some(Cow::Borrowed("a b"))),
        SdpAnswerItem::MirrorDirection,
        SdpAnswerItem::MediaFromOffer,
        SdpAnswerItem::OwnPath,
    ];
    let a = answer_for(&offer(Some("active"), "message/cpim", ""), &items).unwrap();
    assert_eq!(a.sdp, format!("{HEAD}a=recvonly\r\na=x-note:a b\r\n"));
    // Without ComplementSetup the offerer connects (RFC 4975 §5.4).
    assert_eq!(a.role, Setup::Passive);
}

#[test]
fn direction_is_mirrored_including_session_level() {
    let cases = [
        ("a=sendonly\r\n", "a=recvonly\r\n"),
        ("a=recvonly\r\n", "a=sendonly\r\n"),
        ("a=sendrecv\r\n", "a=sendrecv\r\n"),
        ("a=inactive\r\n", "a=inactive\r\n"),
        ("", "a=sendrecv\r\n"),
    ];
    for (offered, answered) in cases {
        let text = format!(
            "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\n{offered}m=message 9 TCP/MSRP *\r\na=accept-types:*\r\n"
        );
        let a = answer_for(
            &text,
            &[
                SdpAnswerItem::MediaFromOffer,
                SdpAnswerItem::MirrorDirection,
            ],
        )
        .unwrap();
        assert!(
            a.sdp
                .ends_with(&format!("m=message 2855 TCP/MSRP *\r\n{answered}")),
            "{offered:?}"
        );
    }
}

#[test]
fn tls_proto_ipv6_address_and_other_m_lines_refused_in_place() {
    let text = "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\n\
m=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
m=message 9 TCP/TLS/MSRP *\r\na=accept-types:text/plain\r\na=setup:actpass\r\n";
    let mut l = local();
    l.address = "2001:db8::7".into();
    // A TLS offer is answered from the server's TLS side (RFC 4975 §14).
    l.path = "msrps://[2001:db8::7]:2855/s3ss10n;tcp".into();
    let facts = sdp::facts(text.as_bytes()).unwrap();
    let items = [
        SdpAnswerItem::MediaFromOffer,
        SdpAnswerItem::AcceptTypesIntersection,
        SdpAnswerItem::ComplementSetup,
    ];
    let a = answer::build_answer(&facts, &items, &l, &Config::default()).unwrap();
    assert_eq!(
        a.sdp,
        "v=0\r\no=- 42 1 IN IP6 2001:db8::7\r\ns=-\r\nc=IN IP6 2001:db8::7\r\nt=0 0\r\n\
m=audio 0 RTP/AVP 0\r\n\
m=message 2855 TCP/TLS/MSRP *\r\na=accept-types:text/plain\r\na=setup:active\r\na=connection:new\r\n"
    );
}

/// RFC 4975 §8.1/§14: `TCP/TLS/MSRP` goes with `msrps:` paths. A TLS offer answered from
/// the TLS side gets `TCP/TLS/MSRP` and the `msrps:` path; one the server can only answer in
/// clear is refused (→ 488), and so is a plain offer answered with an `msrps:` path.
#[test]
fn tls_offer_gets_tls_answer_or_refusal() {
    let tls_offer = offer(Some("active"), "text/plain", "")
        .replace("TCP/MSRP", "TCP/TLS/MSRP")
        .replace("msrp://alice", "msrps://alice");
    let mut l = local();
    l.msrp_port = 2856;
    l.path = "msrps://198.51.100.7:2856/s3ss10n;tcp".into();
    let facts = sdp::facts(tls_offer.as_bytes()).unwrap();
    let a = answer::build_answer(&facts, &items(false), &l, &Config::default()).unwrap();
    assert!(a.tls);
    assert!(
        a.sdp.contains(
            "m=message 2856 TCP/TLS/MSRP *\r\na=path:msrps://198.51.100.7:2856/s3ss10n;tcp\r\n"
        ),
        "{}",
        a.sdp
    );
    assert_eq!(a.offer.path, ["msrps://alice.example.com:7394/abc;tcp"]);
    assert_eq!(
        answer::build_answer(&facts, &items(false), &local(), &Config::default()),
        Err(AnswerError::TlsMismatch {
            offered: "TCP/TLS/MSRP".into()
        })
    );
    let plain = sdp::facts(offer(Some("active"), "text/plain", "").as_bytes()).unwrap();
    assert!(matches!(
        answer::build_answer(&plain, &items(false), &l, &Config::default()),
        Err(AnswerError::TlsMismatch { .. })
    ));
    let a = answer_for(&offer(Some("active"), "text/plain", ""), &items(false)).unwrap();
    assert!(!a.tls);
    assert!(answer::is_tls_proto("tcp/tls/msrp"));
    assert!(!answer::is_tls_proto("TCP/MSRP"));
}

#[test]
fn structural_errors() {
    let audio = "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 49170 RTP/AVP 0\r\n";
    assert_eq!(
        answer_for(audio, &items(false)),
        Err(AnswerError::NoMsrpMedia)
    );
    assert_eq!(
        answer_for(&offer(None, "message/cpim", ""), &[SdpAnswerItem::OwnPath]),
        Err(AnswerError::MissingMediaItem)
    );
    let bad = im_runtime::machine::SdpFacts {
        raw: "garbage".into(),
        ..Default::default()
    };
    assert!(matches!(
        answer::build_answer(&bad, &items(false), &local(), &Config::default()),
        Err(AnswerError::Sdp(_))
    ));
}

#[test]
fn answer_parses_back_as_an_msrp_answer() {
    let a = answer_for(&offer(Some("actpass"), "*", ""), &items(true)).unwrap();
    let s = sdp::parse(a.sdp.as_bytes()).unwrap();
    assert_eq!(sdp::write(&s), a.sdp);
    let attrs = MsrpAttributes::from_session(&s, &s.medias[0]);
    assert_eq!(attrs.path, [local().path]);
    assert_eq!(attrs.setup, Some(Setup::Active));
    assert_eq!(attrs.direction, Direction::RecvOnly);
    assert_eq!(attrs.max_size, Some(1 << 20));
}

#[test]
fn server_offer_for_invitees() {
    let text = answer::build_offer(&local(), &Config::default(), &OfferOptions::default());
    assert_eq!(
        text,
        format!(
            "{HEAD}a=accept-types:message/cpim text/plain\r\na=accept-wrapped-types:text/plain message/imdn+xml\r\n\
a=max-size:1048576\r\na=setup:actpass\r\na=connection:new\r\na=sendonly\r\n"
        )
    );
    let opts = OfferOptions {
        setup: Setup::Passive,
        tls: true,
        cema: true,
        ..OfferOptions::default()
    };
    let cfg = Config {
        accept_wrapped_types: vec![],
        max_size: None,
        ..Config::default()
    };
    let text = answer::build_offer(&local(), &cfg, &opts);
    assert!(text.contains("m=message 2855 TCP/TLS/MSRP *\r\n"));
    assert!(text.ends_with("a=accept-types:message/cpim text/plain\r\na=setup:passive\r\na=connection:new\r\na=sendonly\r\na=msrp-cema\r\n"));
    // An invitee answering our actpass offer with the builder gets the complementary role.
    let ours = sdp::facts(
        answer::build_offer(&local(), &Config::default(), &OfferOptions::default()).as_bytes(),
    )
    .unwrap();
    let theirs = answer::build_answer(&ours, &items(false), &local(), &Config::default()).unwrap();
    assert_eq!(theirs.role, Setup::Active);
    assert!(theirs.sdp.contains("a=recvonly\r\n"));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The builder never panics, and whenever it answers, the answer parses again.
        #[test]
        fn never_panics_and_answers_parse(
            lines in prop::collection::vec(
                prop_oneof![
                    Just("m=message 9 TCP/MSRP *".to_owned()),
                    Just("m=message 9 TCP/TLS/MSRP *".to_owned()),
                    Just("m=audio 9 RTP/AVP 0".to_owned()),
                    "a=(setup|accept-types|accept-wrapped-types|max-size|path|connection|msrp-cema|sendonly|recvonly|inactive)(:[ -~]{0,20})?",
                    "[a-z]=[ -~]{0,20}",
                ],
                0..10,
            ),
        ) {
            let mut text = String::from("v=0\r\n");
            for l in &lines { text.push_str(l); text.push_str("\r\n"); }
            let Ok(facts) = sdp::facts(text.as_bytes()) else { return Ok(()) };
            if let Ok(a) = answer::build_answer(&facts, &items(true), &local(), &Config::default()) {
                prop_assert!(sdp::parse(a.sdp.as_bytes()).is_ok());
            }
        }
    }
}

/// Every input of the `sdp` fuzz target's kept corpus: the direct answer writer gives what
/// the `sdp-types` model gives (answer or error), for the fuzz target's two item sets.
#[test]
fn direct_answer_equals_the_model_over_the_fuzz_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/sdp");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        panic!("no corpus at {}", dir.display());
    };
    let items = [
        SdpAnswerItem::MediaFromOffer,
        SdpAnswerItem::OwnPath,
        SdpAnswerItem::AcceptTypesIntersection,
        SdpAnswerItem::AcceptWrappedTypesIntersection,
        SdpAnswerItem::OwnMaxSize,
        SdpAnswerItem::MirrorDirection,
        SdpAnswerItem::ComplementSetup,
        SdpAnswerItem::Echo(Cow::Borrowed("msrp-cema")),
        SdpAnswerItem::Fixed(Cow::Borrowed("tb-granted"), None),
    ];
    let replacing = [
        SdpAnswerItem::Fixed(Cow::Borrowed("connection"), Some(Cow::Borrowed("existing"))),
        SdpAnswerItem::MediaFromOffer,
        SdpAnswerItem::ComplementSetup,
        SdpAnswerItem::Echo(Cow::Borrowed("sendonly")),
        SdpAnswerItem::MirrorDirection,
    ];
    let local = answer::LocalMedia {
        address: "192.0.2.1".into(),
        msrp_port: 2855,
        path: "msrp://192.0.2.1:2855/s;tcp".into(),
        session_id: 1,
        session_version: 1,
    };
    let (mut inputs, mut answered) = (0, 0);
    for e in entries.flatten() {
        let data = std::fs::read(e.path()).expect("corpus file");
        let Ok(session) = sdp::parse(&data) else {
            continue;
        };
        let facts = sdp::facts(&data).expect("parsed SDP has facts");
        inputs += 1;
        for set in [&items[..], &replacing[..]] {
            let direct = answer::build_answer(&facts, set, &local, &Config::default());
            let model = answer::build_answer_to_session(&session, set, &local, &Config::default());
            assert_eq!(direct, model, "{}", e.path().display());
            answered += usize::from(direct.is_ok());
        }
    }
    assert!(
        inputs > 100 && answered > 10,
        "{inputs} inputs, {answered} answers"
    );
    eprintln!("{inputs} parsed corpus inputs, {answered} answers compared");
}

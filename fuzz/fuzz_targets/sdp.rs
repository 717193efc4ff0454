//! SDP: no panic; the facts built directly equal the general parser's; parse → write →
//! parse is stable; the MSRP answer builder never panics, what it builds parses, and its
//! direct writer gives what the `sdp-types` model gives (answer or error).
#![no_main]

use std::borrow::Cow;

use im_runtime::machine::{Config, SdpAnswerItem};
use im_runtime::proto::sdp::{self, answer, msrp::MsrpAttributes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The facts built without the general model are the general parser's, for exactly the
    // bodies it accepts.
    let general = sdp::parse(data)
        .ok()
        .map(|s| sdp::facts_from_session(&s, String::from_utf8_lossy(data).into_owned()));
    assert_eq!(sdp::facts_direct(data), general);
    // An answer's MSRP attributes read during the walk are those of the facts' section.
    let via_facts = sdp::facts(data).ok().and_then(|f| {
        f.media
            .iter()
            .find(|m| sdp::msrp::is_msrp(m.media(), m.proto()) && m.port() != 0)
            .map(MsrpAttributes::from_media)
    });
    assert_eq!(sdp::answer_msrp(data), via_facts);
    let Ok(s1) = sdp::parse(data) else { return };
    let w1 = sdp::write(&s1);
    let s2 = sdp::parse(w1.as_bytes()).expect("written SDP must parse");
    assert_eq!(sdp::write(&s2), w1);
    for m in &s1.medias {
        let _ = MsrpAttributes::from_session(&s1, m);
    }
    let Ok(facts) = sdp::facts(data) else { return };
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
    let local = answer::LocalMedia {
        address: "192.0.2.1".into(),
        msrp_port: 2855,
        path: "msrp://192.0.2.1:2855/s;tcp".into(),
        session_id: 1,
        session_version: 1,
    };
    // The second item set replaces a written attribute and echoes the direction.
    let replacing = [
        SdpAnswerItem::Fixed(Cow::Borrowed("connection"), Some(Cow::Borrowed("existing"))),
        SdpAnswerItem::MediaFromOffer,
        SdpAnswerItem::ComplementSetup,
        SdpAnswerItem::Echo(Cow::Borrowed("sendonly")),
        SdpAnswerItem::MirrorDirection,
    ];
    for items in [&items[..], &replacing[..]] {
        let built = answer::build_answer(&facts, items, &local, &Config::default());
        let model = answer::build_answer_to_session(&s1, items, &local, &Config::default());
        assert_eq!(built, model);
        if let Ok(a) = built {
            sdp::parse(a.sdp.as_bytes()).expect("answer must parse");
        }
    }
});

//! The registrar's side of SIP outbound (RFC 5626) and Path (RFC 3327), in virtual time
//! (`endpoint/stateless/registrar.rs`, `endpoint/route_leg.rs`; end to end through
//! Kamailio in `examples/im-server/tests/e2e_kamailio.rs`):
//! 1. an outbound registration the registrar applies is answered with `Require: outbound`
//!    (RFC 5626 §6); a plain one is not;
//! 2. an outbound registration through a first hop without outbound (more than one Via, no
//!    `ob` in the edge proxy's Path) gets 439 (§6, §11.6); with `ob` it is applied;
//! 3. a Path is stored with the binding, returned in the 200 to a UA that says
//!    `Supported: path` only (RFC 3327 §5.3), and is the route set of the invitee INVITE
//!    and the page-mode copy to that contact: sent to the first Path hop with the Path as
//!    Route headers;
//! 4. an invitee whose outbound flow has closed fails its leg with 430 Flow Failed
//!    (§5.3, §11.5), not as unroutable;
//! 5. OPTIONS lists `path` and `outbound` in Supported for a registrar.

mod common;

use common::harness::{ALICE, Sim, udp_to};
use common::*;
use im_runtime::endpoint::LegOutcome;
use im_runtime::proto::sip::{HeaderName, Message};
use im_runtime::transport::{ConnId, Input, Output};

/// The edge proxy the phones register through.
const PROXY: &str = "127.0.0.9:5070";
const INSTANCE: &str = "+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\"";

/// An endpoint with the stand-in machines (serving page-mode MESSAGE with `page_mode`) and
/// a registrar; every INVITE over UDP, whatever its size.
fn endpoint(page_mode: bool) -> Sim<RegApp> {
    let knobs = Knobs {
        page_mode,
        ..Knobs::default()
    };
    Sim::registrar(knobs, Locations::default(), |cfg| cfg.max_udp_request = 0)
}

/// A REGISTER of bob: `vias` top first, `extra` header lines, Contact `contact` (a whole
/// header value).
fn register(call_id: &str, vias: &[String], extra: &str, contact: &str) -> String {
    register_request("bob", call_id, vias, extra, contact)
}

/// Two Vias: the proxy's on top of bob's.
fn proxied_vias(call_id: &str) -> Vec<String> {
    vec![
        format!("SIP/2.0/UDP {PROXY};branch=z9hG4bKpx{call_id}"),
        format!("SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKbob{call_id};rport"),
    ]
}

fn only_answer(msgs: Vec<Message>) -> Message {
    assert_eq!(msgs.len(), 1, "one answer: {msgs:?}");
    msgs.into_iter().next().unwrap()
}

/// Bob's outbound registration over the `n`th connection the server accepts, from `src`:
/// the connection and the answer.
fn outbound_over_tcp(sim: &mut Sim<RegApp>, n: u64, src: &str, call_id: &str) -> (ConnId, Message) {
    sim.register_over_tcp(
        n,
        src,
        "bob",
        call_id,
        "Supported: outbound, path\n",
        &format!("<sip:bob@127.0.0.3:5099;transport=tcp>;reg-id=1;{INSTANCE}"),
    )
}

/// RFC 5626 §6: the registrar applied the outbound registration (over the UA's own
/// connection): `Require: outbound` in the 200. A plain registration gets none.
#[test]
fn an_applied_outbound_registration_is_answered_with_require_outbound() {
    let mut sim = endpoint(false);
    let (_, ok) = outbound_over_tcp(&mut sim, 7, "127.0.0.3:40123", "o1");
    assert_eq!(status_of(&ok), 200);
    assert_eq!(ok.header_str("Require"), Some("outbound"), "{ok:?}");

    let (_, ok) = sim.register_over_tcp(
        8,
        "127.0.0.4:40124",
        "bob",
        "o2",
        "",
        "<sip:bob@127.0.0.4:5098;transport=tcp>",
    );
    assert_eq!(status_of(&ok), 200);
    assert_eq!(ok.header_str("Require"), None, "{ok:?}");
}

/// RFC 5626 §6, §11.6: outbound asked through a proxy that did not say it supports it
/// (no Path, or a Path without `ob`): 439. The edge proxy's Path with `ob`: applied.
#[test]
fn outbound_through_a_first_hop_without_outbound_is_refused_with_439() {
    let mut sim = endpoint(false);
    let contact = format!("<sip:bob@10.0.0.5:5060>;reg-id=1;{INSTANCE}");
    for (call, path) in [("p1", ""), ("p2", "Path: <sip:127.0.0.9:5070;lr>\n")] {
        let extra = format!("Supported: outbound, path\n{path}");
        let out = sim.udp(
            PROXY,
            &register(call, &proxied_vias(call), &extra, &contact),
        );
        let r = only_answer(udp_to(&out, PROXY));
        assert_eq!(status_of(&r), 439, "{call}: {r:?}");
        assert_eq!(r.reason(), Some("First Hop Lacks Outbound Support"));
    }
    let out = sim.udp(
        PROXY,
        &register(
            "p3",
            &proxied_vias("p3"),
            "Supported: outbound, path\nPath: <sip:127.0.0.9:5070;lr;ob>\n",
            &contact,
        ),
    );
    let ok = only_answer(udp_to(&out, PROXY));
    assert_eq!(status_of(&ok), 200, "{ok:?}");
    assert_eq!(ok.header_str("Require"), Some("outbound"));
    assert_eq!(ok.header_str("Path"), Some("<sip:127.0.0.9:5070;lr;ob>"));
    // A plain contact through the same proxy, no `ob`: no outbound asked, no 439.
    let out = sim.udp(
        PROXY,
        &register(
            "p4",
            &proxied_vias("p4"),
            "Path: <sip:127.0.0.9:5070;lr>\n",
            "<sip:bob@10.0.0.5:5060>",
        ),
    );
    assert_eq!(status_of(&only_answer(udp_to(&out, PROXY))), 200);
}

/// RFC 3327 §5.3: the Path goes back in the 200 when the UA said `Supported: path`, not
/// otherwise, and is kept with the binding either way: bob's INVITE goes to the first Path
/// hop with the Path as its Route headers, not to his (unreachable) Contact.
#[test]
fn a_path_is_returned_and_is_the_route_set_to_its_contact() {
    let mut sim = endpoint(false);
    let path = "<sip:127.0.0.9:5070;lr;received=sip:10.0.0.5:5060>, <sip:127.0.0.10:5080;lr>";
    let out = sim.udp(
        PROXY,
        &register(
            "q1",
            &proxied_vias("q1"),
            &format!("Supported: path\nPath: {path}\n"),
            "<sip:bob@10.0.0.5:5060>",
        ),
    );
    let ok = only_answer(udp_to(&out, PROXY));
    assert_eq!(status_of(&ok), 200);
    assert_eq!(ok.header_str("Path"), Some(path), "{ok:?}");
    // Without `Supported: path`: stored, not returned.
    let out = sim.udp(
        PROXY,
        &register(
            "q2",
            &proxied_vias("q2"),
            &format!("Path: {path}\n"),
            "<sip:bob@10.0.0.5:5060>",
        ),
    );
    let ok = only_answer(udp_to(&out, PROXY));
    assert_eq!(status_of(&ok), 200);
    assert_eq!(ok.header_str("Path"), None, "{ok:?}");

    let (out, _) = sim.session("q3", &["sip:bob@example.com"]);
    assert!(
        udp_to(&out, "10.0.0.5:5060").is_empty(),
        "not to the Contact"
    );
    let inv = only_answer(udp_to(&out, PROXY));
    assert_eq!(inv.request_uri_str(), Some("sip:bob@example.com"));
    assert_eq!(
        inv.header_lines(HeaderName::Route).collect::<Vec<_>>(),
        [
            "<sip:127.0.0.9:5070;lr;received=sip:10.0.0.5:5060>",
            "<sip:127.0.0.10:5080;lr>"
        ],
        "{inv:?}"
    );
}

/// The page-mode copy to a contact registered with a Path follows it too.
#[test]
fn a_page_mode_copy_follows_the_path() {
    let mut sim = endpoint(true);
    let out = sim.udp(
        PROXY,
        &register(
            "m1",
            &proxied_vias("m1"),
            "Supported: path\nPath: <sip:127.0.0.9:5070;lr>\n",
            "<sip:bob@10.0.0.5:5060>",
        ),
    );
    assert_eq!(status_of(&only_answer(udp_to(&out, PROXY))), 200);
    let out = sim.udp(
        ALICE,
        &list_message("m2", "z9hG4bKm2", "hello", &["sip:bob@example.com"]),
    );
    let copy = only_answer(udp_to(&out, PROXY));
    assert_eq!(
        copy.method().map(|m| m.as_str()),
        Some("MESSAGE"),
        "{copy:?}"
    );
    assert_eq!(
        copy.header(HeaderName::Route),
        Some("<sip:127.0.0.9:5070;lr>")
    );
}

/// RFC 5626 §5.3, §11.5: bob's outbound flow has closed and he registered no other: his leg
/// fails with 430 (a response of 300 or more to its machine: `rejected`), not `no route`.
#[test]
fn an_invitee_whose_outbound_flow_closed_fails_with_430() {
    let mut sim = endpoint(false);
    let (conn, ok) = outbound_over_tcp(&mut sim, 7, "127.0.0.3:40123", "f1");
    assert_eq!(status_of(&ok), 200);
    sim.input(Input::StreamClosed { conn });
    let (out, _) = sim.session("f2", &["sip:bob@example.com"]);
    assert!(
        !out.iter().any(|o| matches!(o, Output::Connect { .. })),
        "not dialled: {out:?}"
    );
    let live = sim.ep.live_stats().snapshot();
    assert_eq!(live.legs(LegOutcome::NoRoute), 0);
    assert_eq!(live.legs(LegOutcome::Rejected), 1);
}

/// A registrar advertises what it does with Path and outbound registrations.
#[test]
fn options_lists_path_and_outbound() {
    let mut sim = endpoint(false);
    let out = sim.udp(ALICE, &options("UDP", ALICE, "s1", "z9hG4bKs1"));
    let ok = only_answer(udp_to(&out, ALICE));
    let tags: Vec<&str> = ok
        .header_str("Supported")
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .collect();
    assert!(
        tags.contains(&"path") && tags.contains(&"outbound"),
        "{tags:?}"
    );
}

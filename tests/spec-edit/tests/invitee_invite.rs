//! The invitee INVITE on the wire, and the answers to the invitee's requests in its leg's
//! dialog, come from the spec: the sans-IO endpoint runs the machines of `specs/` as written
//! and of the copy `edits.toml` changed (Referred-By dropped, `setup active` instead of
//! `actpass` in 7.9.1.4's `invite each … { … }`; the invitee's BYE answered 202 and a
//! SUBSCRIBE in its dialog 403), and what it sends the invitee changes accordingly, with no
//! Rust edit.

use im_runtime::endpoint::{Endpoint, EndpointConfig};
use im_runtime::machine::Method;
use im_runtime::proto::sip::Message;
use im_runtime::transport::{Core, Input, Output};
use std::net::SocketAddr;
use std::time::Instant;

mod common;

use common::{App, INVITEE, edited_app, original_app};

const ALICE: &str = "127.0.0.1:5070";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

/// bob's list entry, with a display name that needs escaping in a quoted-string.
const BOB: &str =
    "<entry uri=\"sip:bob@example.com\"><display-name>Bob \"B\"</display-name></entry>";

/// A pager-mode INVITE to the conference factory with a list naming bob.
fn invite() -> String {
    invite_with(BOB)
}

/// The same with `entries` as the list's entries.
fn invite_with(entries: &str) -> String {
    let sdp = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=message 7000 TCP/MSRP *\r\na=path:msrp://127.0.0.1:7000/alicesess;tcp\r\n\
               a=accept-types:message/cpim text/plain\r\na=setup:active\r\na=sendonly\r\n";
    let list = format!(
        "<?xml version=\"1.0\"?>\r\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list>{entries}</list></resource-lists>\r\n"
    );
    let body = format!(
        "--b1\r\nContent-Type: application/sdp\r\n\r\n{sdp}--b1\r\nContent-Type: application/resource-lists+xml\r\nContent-Disposition: recipient-list\r\n\r\n{list}--b1--\r\n"
    );
    format!(
        "INVITE sip:conference-factory@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKwire;rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:conference-factory@example.com>\r\nCall-ID: wire@alice\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{ALICE}>\r\nContent-Type: multipart/mixed;boundary=b1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The INVITE the endpoint sends the invitee when `app` runs the session.
fn invitee_invite(app: App) -> Message {
    session(app).2
}

/// The endpoint running `app` after the session's INVITE, the instant it was given, and the
/// INVITE it sent the invitee.
fn session(app: App) -> (Endpoint<App>, Instant, Message) {
    let (ep, now, mut invites) = sessions(app, &invite());
    assert_eq!(invites.len(), 1, "one INVITE to the invitee");
    (ep, now, invites.remove(0))
}

/// The endpoint running `app` after the session's INVITE `text`, the instant it was given,
/// and the INVITEs it sent the invitees.
#[allow(clippy::disallowed_methods)]
fn sessions(app: App, text: &str) -> (Endpoint<App>, Instant, Vec<Message>) {
    let cfg = EndpointConfig::new(addr("127.0.0.1:5060"), addr("127.0.0.1:2855"));
    let mut ep = Endpoint::new(cfg, app);
    // The one clock read of this test: the endpoint only needs some instant.
    let now = Instant::now();
    let invites = from_invitee(&mut ep, now, ALICE, text)
        .into_iter()
        .filter(Message::is_request)
        .collect::<Vec<_>>();
    (ep, now, invites)
}

/// Hands `text` from `peer` to the endpoint; what it then sends the invitee.
fn from_invitee(ep: &mut Endpoint<App>, now: Instant, peer: &str, text: &str) -> Vec<Message> {
    exchange(ep, now, peer, text)
        .into_iter()
        .filter(|(to, _)| *to == addr(INVITEE))
        .map(|(_, m)| m)
        .collect()
}

/// Hands `text` from `peer` to the endpoint; what it then sends, and to whom.
fn exchange(
    ep: &mut Endpoint<App>,
    now: Instant,
    peer: &str,
    text: &str,
) -> Vec<(SocketAddr, Message)> {
    ep.handle_input(
        now,
        Input::Datagram {
            local: addr("127.0.0.1:5060"),
            from: addr(peer),
            data: text.to_string().into_bytes().into(),
        },
    );
    let mut out = Vec::new();
    while let Some(o) = ep.poll_output() {
        if let Output::Datagram { to, data, .. } = o
            && let Ok(m) = Message::parse(data)
        {
            out.push((to, m));
        }
    }
    out
}

/// A response to `req` from the invitee, with its To tag.
fn invitee_answer(req: &Message, status: u16, reason: &str) -> String {
    let h = |n: &str| req.header_str(n).unwrap_or_default().to_string();
    format!(
        "SIP/2.0 {status} {reason}\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=b1\r\nCall-ID: {}\r\n\
         CSeq: {}\r\nContact: <sip:bob@{INVITEE}>\r\nContent-Length: 0\r\n\r\n",
        h("Via"),
        h("From"),
        h("To"),
        h("Call-ID"),
        h("CSeq"),
    )
}

/// 7.9.1.4 as written, at the endpoint: the originator hangs up while bob rings, the session
/// (6.1.3.3.2 `originator_bye`: `cancel legs`) CANCELs bob's leg, whose machine hears `leg
/// cancelled` (`session_cancelled`); bob's 200 crosses the CANCEL and is ACKed by the runtime
/// (RFC 3261 §13.2.2.4) and BYE'd by the leg's rule `answered_after_cancel`. (The edited copy
/// without that rule keeps the dialog: `cases/edited.toml`; the runtime's own part is
/// `im-runtime/tests/endpoint_paths/legs.rs`.)
/// `app` runs alice's session: its 200 is ACKed and bob's INVITE rings (180). The endpoint,
/// the instant, the 200 alice got and the INVITE bob got.
#[allow(clippy::disallowed_methods)]
fn ringing_session(app: App) -> (Endpoint<App>, Instant, Message, Message) {
    let cfg = EndpointConfig::new(addr("127.0.0.1:5060"), addr("127.0.0.1:2855"));
    let mut ep = Endpoint::new(cfg, app);
    // The one clock read of this test: the endpoint only needs some instant.
    let now = Instant::now();
    let out = exchange(&mut ep, now, ALICE, &invite());
    let ok = out
        .iter()
        .find(|(to, m)| *to == addr(ALICE) && m.status().map(u16::from) == Some(200))
        .map(|(_, m)| m.clone())
        .expect("200 OK to alice");
    let inv = out
        .iter()
        .find(|(to, m)| *to == addr(INVITEE) && m.is_request())
        .map(|(_, m)| m.clone())
        .expect("INVITE to bob");
    from_invitee(&mut ep, now, INVITEE, &invitee_answer(&inv, 180, "Ringing"));
    exchange(
        &mut ep,
        now,
        ALICE,
        &alice_in_dialog(&ok, "ACK", 1, "z9hG4bKack1"),
    );
    (ep, now, ok, inv)
}

/// Alice's `method` in the dialog the 200 `ok` made.
fn alice_in_dialog(ok: &Message, method: &str, cseq: u32, branch: &str) -> String {
    let h = |n: &str| ok.header_str(n).unwrap_or_default().to_string();
    let target = h("Contact")
        .trim_start_matches('<')
        .split(['>', ';'])
        .next()
        .unwrap_or_default()
        .to_string();
    format!(
        "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch={branch};rport\r\n\
         Max-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\n\
         CSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
        h("From"),
        h("To"),
        h("Call-ID"),
    )
}

/// 7.9.1.4 as written, at the endpoint: the originator hangs up while bob rings, the session
/// (6.1.3.3.2 `originator_bye`: `cancel legs`) CANCELs bob's leg, whose machine hears `leg
/// cancelled` (`session_cancelled`); bob's 200 crosses the CANCEL and is ACKed by the runtime
/// (RFC 3261 §13.2.2.4) and BYE'd by the leg's rule `answered_after_cancel`. (The edited copy
/// without that rule keeps the dialog: `cases/edited.toml`; the runtime's own part is
/// `im-runtime/tests/endpoint_paths/legs.rs`.)
// covers: 7.9.1.4/session_cancelled
#[test]
fn a_2xx_crossing_the_sessions_cancel_is_byed_by_the_leg_rule() {
    let (mut ep, now, ok, inv) = ringing_session(original_app(false));
    let to_bob = from_invitee(
        &mut ep,
        now,
        ALICE,
        &alice_in_dialog(&ok, "BYE", 2, "z9hG4bKbye1"),
    );
    let cancel = to_bob
        .iter()
        .find(|m| m.method() == Some(&Method::Cancel))
        .expect("the session's `cancel legs` CANCELs bob's INVITE");
    from_invitee(&mut ep, now, INVITEE, &invitee_answer(cancel, 200, "OK"));
    let to_bob = from_invitee(&mut ep, now, INVITEE, &invitee_answer(&inv, 200, "OK"));
    let methods: Vec<_> = to_bob.iter().filter_map(|m| m.method().cloned()).collect();
    assert!(methods.contains(&Method::Ack), "{to_bob:?}");
    assert!(methods.contains(&Method::Bye), "{to_bob:?}");
}

/// The server shuts down while bob rings and alice's dialog is up: the requests it then
/// sends alice and bob.
fn at_shutdown(app: App) -> (Vec<Method>, Vec<Method>) {
    let (mut ep, now, _, _) = ringing_session(app);
    ep.handle_input(now, Input::Shutdown);
    let (mut to_alice, mut to_bob) = (Vec::new(), Vec::new());
    while let Some(o) = ep.poll_output() {
        if let Output::Datagram { to, data, .. } = o
            && let Ok(m) = Message::parse(data)
            && let Some(method) = m.method().cloned()
        {
            if to == addr(ALICE) {
                to_alice.push(method);
            } else if to == addr(INVITEE) {
                to_bob.push(method);
            }
        }
    }
    (to_alice, to_bob)
}

/// What a shutdown does to a session is 6.1.3.3.2's rule `server_shutdown`: BYE alice,
/// CANCEL bob's ringing INVITE. The edited rule leaves alice's dialog up.
// covers: 6.1.3.3.2/server_shutdown
#[test]
fn a_shutdown_ends_the_session_as_the_spec_says() {
    assert_eq!(
        at_shutdown(original_app(false)),
        (vec![Method::Bye], vec![Method::Cancel])
    );
    assert_eq!(
        at_shutdown(edited_app(false)),
        (vec![], vec![Method::Cancel])
    );
}

/// The invitee answers `inv` 200 (no SDP: the leg's dialog is all these tests need), then
/// sends `method` in that dialog; the status the endpoint answers it with.
fn in_leg_dialog(app: App, method: &str) -> (u16, Message) {
    let (mut ep, now, inv) = session(app);
    let h = |n: &str| inv.header_str(n).unwrap_or_default().to_string();
    let ok = format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=b1\r\nCall-ID: {}\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:bob@{INVITEE}>\r\nContent-Length: 0\r\n\r\n",
        h("Via"),
        h("From"),
        h("To"),
        h("Call-ID"),
    );
    from_invitee(&mut ep, now, INVITEE, &ok);
    let contact = h("Contact");
    let target = contact
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or_default();
    let req = format!(
        "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {INVITEE};branch=z9hG4bKin1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:bob@example.com>;tag=b1\r\nTo: {}\r\n\
         Call-ID: {}\r\nCSeq: 2 {method}\r\nEvent: conference\r\nContent-Length: 0\r\n\r\n",
        h("From"),
        h("Call-ID"),
    );
    let answers: Vec<Message> = from_invitee(&mut ep, now, INVITEE, &req)
        .into_iter()
        .filter(|m| m.cseq().is_some_and(|c| c.method.as_str() == method) && !m.is_request())
        .collect();
    assert_eq!(answers.len(), 1, "one answer to the {method}: {answers:?}");
    let m = answers.into_iter().next().unwrap_or_else(|| unreachable!());
    (m.status().map(u16::from).unwrap_or(0), m)
}

fn offer(m: &Message) -> String {
    String::from_utf8_lossy(m.body_bytes()).into_owned()
}

#[test]
fn the_invitee_invite_follows_the_spec_as_written() {
    let m = invitee_invite(original_app(false));
    assert_eq!(m.header_str("Referred-By"), Some("<sip:alice@example.com>"));
    let contact = m.header_str("Contact").unwrap_or_default();
    assert!(
        contact.ends_with(";isfocus;+g.oma.sip-im;+g.oma.sip-im.large-message"),
        "{contact}"
    );
    let body = offer(&m);
    assert!(body.contains("a=setup:actpass\r\n"), "{body}");
    assert!(body.contains("recipient-list-history"), "{body}");
    // From the session's focus (with the runtime's tag), 70 hops: 7.9.1.4's header items.
    let focus = contact
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or("");
    let from = m.header_str("From").unwrap_or_default();
    assert!(from.starts_with(&format!("<{focus}>;tag=")), "{from}");
    assert_eq!(m.header_str("Max-Forwards"), Some("70"));
    // To the invitee's URI alone (7.9.1.4 `header To`), the offer sendonly.
    assert_eq!(m.header_str("To"), Some("<sip:bob@example.com>"));
    assert!(body.contains("a=sendonly\r\n"), "{body}");
}

#[test]
fn the_edited_spec_changes_the_invitee_invite() {
    let m = invitee_invite(edited_app(false));
    assert_eq!(m.header_str("Referred-By"), None);
    let body = offer(&m);
    assert!(body.contains("a=setup:active\r\n"), "{body}");
    assert!(!body.contains("actpass"), "{body}");
    // Without `contact focus` the Contact is the focus URI alone (RFC 3261 §8.1.1.8), no
    // isfocus, no feature tags.
    let contact = m.header_str("Contact").unwrap_or_default();
    assert!(!contact.contains("isfocus"), "{contact}");
    assert!(!contact.contains("+g.oma"), "{contact}");
    // Without `history`, the offer alone (no multipart, no recipient-list-history part).
    assert!(!body.contains("recipient-list-history"), "{body}");
    assert!(
        m.header_str("Content-Type")
            .is_some_and(|t| t.starts_with("application/sdp")),
        "{m:?}"
    );
    // `direction sendrecv` instead of sendonly.
    assert!(body.contains("a=sendrecv\r\n"), "{body}");
    assert!(!body.contains("a=sendonly"), "{body}");
    // The edited To: the list entry's display name, escaped as a quoted-string (RFC 3261
    // §25.1), before the URI.
    assert_eq!(
        m.header_str("To"),
        Some("\"Bob \\\"B\\\"\" <sip:bob@example.com>")
    );
    // The edited From (a display name; the tag is still the runtime's) and hop count.
    let focus = contact
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or("");
    let from = m.header_str("From").unwrap_or_default();
    assert!(
        from.starts_with(&format!("\"Team\" <{focus}>;tag=")),
        "{from}"
    );
    assert_eq!(m.header_str("Max-Forwards"), Some("16"));
}

// covers: 7.9.1.4/invitee_left
#[test]
fn the_invitees_bye_is_answered_by_the_leg_rule() {
    assert_eq!(in_leg_dialog(original_app(false), "BYE").0, 200);
    let (status, m) = in_leg_dialog(edited_app(false), "BYE");
    assert_eq!(status, 202, "{m:?}");
}

// covers: 7.9.1.4/invitee_subscribes
#[test]
fn a_subscribe_in_the_leg_dialog_is_answered_by_the_leg_rule() {
    let (status, m) = in_leg_dialog(original_app(false), "SUBSCRIBE");
    assert_eq!(status, 405, "{m:?}");
    assert_eq!(m.header_str("Allow"), Some("ACK, BYE, CANCEL"));
    let (status, m) = in_leg_dialog(edited_app(false), "SUBSCRIBE");
    assert_eq!(status, 403, "{m:?}");
    assert!(
        m.header_str("Warning")
            .is_some_and(|w| w.contains("subscribe to the focus URI")),
        "{m:?}"
    );
}

// covers: 7.9.1.4/setup
#[test]
fn an_entry_named_twice_is_invited_once_only_with_distinct() {
    let twice = invite_with(&format!("{BOB}<entry uri=\"sip:bob@example.com\"/>"));
    let (_, _, invites) = sessions(original_app(false), &twice);
    assert_eq!(invites.len(), 1, "{invites:?}");
    // The edited `invite each recipient_list` (no `distinct`): one INVITE per entry.
    let (_, _, invites) = sessions(edited_app(false), &twice);
    assert_eq!(invites.len(), 2, "{invites:?}");
    assert!(
        invites.iter().all(|m| m
            .header_str("To")
            .is_some_and(|t| t.ends_with("<sip:bob@example.com>"))),
        "{invites:?}"
    );
}

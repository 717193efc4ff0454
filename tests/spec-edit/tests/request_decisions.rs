//! Request-level decisions that were the runtime's and are now rules of `specs/` (issue 12):
//! the sans-IO endpoint runs the machines of `specs/` as written and of the copy
//! `edits.toml` changed, and answers the originator's requests as each spec says, with no
//! Rust edit: a body that cannot be parsed (5.2.1.1 `body_malformed`), a SUBSCRIBE in the
//! originator's INVITE dialog (6.1.3.3.2 `subscribe_in_dialog`), the originator's BYE
//! once the session's procedure is over (6.1.3.3.2 `bye_after_close`), a subscription past
//! a configured limit (ext-dr.9 `too_many_subscriptions`) and, with Digest on, a SUBSCRIBE
//! to the focus whose authenticated user is not its From user (ext-dr.10
//! `subscriber_impersonates`).

use im_runtime::endpoint::{Endpoint, EndpointConfig};
use im_runtime::proto::digest::{Algorithm, Verifier, ha1, response};
use im_runtime::proto::sip::Message;
use im_runtime::transport::{Core, Input, Output};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

mod common;
mod replies;

use common::{App, PASSWORD, edited_app, original_app};
use replies::{final_to, status};

const ALICE: &str = "127.0.0.1:5070";
const SERVER: &str = "127.0.0.1:5060";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

const SDP: &str = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                   m=message 7000 TCP/MSRP *\r\na=path:msrp://127.0.0.1:7000/alicesess;tcp\r\n\
                   a=accept-types:message/cpim text/plain\r\na=setup:active\r\na=sendonly\r\n";

/// A pager-mode INVITE to the conference factory whose body is `body` of type `ctype`.
fn invite(ctype: &str, body: &str) -> String {
    format!(
        "INVITE sip:conference-factory@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKreq1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:conference-factory@example.com>\r\nCall-ID: req@alice\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{ALICE}>\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The INVITE of a session that is accepted: the SDP offer and a list naming bob.
fn good_invite() -> String {
    let list = "<?xml version=\"1.0\"?>\r\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list><entry uri=\"sip:bob@example.com\"/></list></resource-lists>\r\n";
    let body = format!(
        "--b1\r\nContent-Type: application/sdp\r\n\r\n{SDP}--b1\r\nContent-Type: application/resource-lists+xml\r\nContent-Disposition: recipient-list\r\n\r\n{list}--b1--\r\n"
    );
    invite("multipart/mixed;boundary=b1", &body)
}

/// Hands `text` from alice to the endpoint at `now`; what it then sends alice.
fn from_alice(ep: &mut Endpoint<App>, now: Instant, text: &str) -> Vec<Message> {
    send(ep, now, ALICE, text);
    sent_to(ep, ALICE)
}

/// Hands `text` from `peer` to the endpoint at `now`.
fn send(ep: &mut Endpoint<App>, now: Instant, peer: &str, text: &str) {
    ep.handle_input(
        now,
        Input::Datagram {
            local: addr(SERVER),
            from: addr(peer),
            data: text.to_string().into_bytes().into(),
        },
    );
}

/// What the endpoint has sent `peer` since it was last asked (what it sent others is
/// dropped).
fn sent_to(ep: &mut Endpoint<App>, peer: &str) -> Vec<Message> {
    let mut out = Vec::new();
    while let Some(o) = ep.poll_output() {
        if let Output::Datagram { to, data, .. } = o
            && to == addr(peer)
            && let Ok(m) = Message::parse(data)
        {
            out.push(m);
        }
    }
    out
}

/// The endpoint running `app` with the INVITE `text` given; the instant and the answer.
#[allow(clippy::disallowed_methods)]
fn answer(app: App, text: &str) -> (Endpoint<App>, Instant, Message) {
    let mut ep = Endpoint::new(
        EndpointConfig::new(addr(SERVER), addr("127.0.0.1:2855")),
        app,
    );
    // The one clock read of this test: the endpoint only needs some instant.
    let now = Instant::now();
    let out = from_alice(&mut ep, now, text);
    let ok = final_to(&out, "INVITE");
    (ep, now, ok)
}

/// An in-dialog request of `method` from alice in the dialog the 200 `ok` made.
fn in_dialog(ok: &Message, method: &str, cseq: u32) -> String {
    let to = ok.header_str("To").unwrap_or_default();
    let target = ok
        .header_str("Contact")
        .unwrap_or_default()
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or_default();
    format!(
        "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKreq{cseq}{method};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: {to}\r\nCall-ID: req@alice\r\nCSeq: {cseq} {method}\r\nEvent: conference\r\nContent-Length: 0\r\n\r\n"
    )
}

// covers: 5.2.1.1/body_malformed
#[test]
fn a_body_that_cannot_be_parsed_is_answered_by_the_spec() {
    // A multipart body without its boundary: the spec's 400, saying why.
    let broken = invite("multipart/mixed", "--b1\r\n\r\nv=0\r\n--b1--\r\n");
    let (_, _, m) = answer(original_app(false), &broken);
    assert_eq!(status(&m), 400, "{m:?}");
    let w = m.header_str("Warning").unwrap_or_default();
    assert!(
        w.contains("the body cannot be read: malformed multipart body"),
        "{w}"
    );
    // An SDP body that is not SDP: the same rule.
    let (_, _, m) = answer(
        original_app(false),
        &invite("application/sdp", "nonsense\r\n"),
    );
    assert_eq!(status(&m), 400, "{m:?}");
    assert!(
        m.header_str("Warning")
            .is_some_and(|w| w.contains("the body cannot be read: malformed SDP")),
        "{m:?}"
    );
    // Without the rule the other rules decide: no list can be read from the broken body, so
    // the factory refuses an INVITE without one.
    let (_, _, m) = answer(edited_app(false), &broken);
    assert_eq!(status(&m), 403, "{m:?}");
    assert!(
        m.header_str("Warning")
            .is_some_and(|w| w.contains("no recipient list")),
        "{m:?}"
    );
}

/// The status and answer of a SUBSCRIBE alice sends in her INVITE dialog.
fn subscribe_in_invite_dialog(app: App) -> Message {
    let (mut ep, now, ok) = answer(app, &good_invite());
    assert_eq!(status(&ok), 200, "{ok:?}");
    let out = from_alice(&mut ep, now, &in_dialog(&ok, "SUBSCRIBE", 2));
    final_to(&out, "SUBSCRIBE")
}

// covers: 6.1.3.3.2/subscribe_in_dialog
#[test]
fn a_subscribe_in_the_originators_dialog_is_answered_by_the_spec() {
    for conference in [false, true] {
        let m = subscribe_in_invite_dialog(original_app(conference));
        assert_eq!(status(&m), 405, "{m:?}");
        assert_eq!(m.header_str("Allow"), Some("ACK, BYE, CANCEL"));
        assert!(
            m.header_str("Warning")
                .is_some_and(|w| w.contains("outside the INVITE dialog")),
            "{m:?}"
        );
        let m = subscribe_in_invite_dialog(edited_app(conference));
        assert_eq!(status(&m), 403, "{m:?}");
        assert!(
            m.header_str("Warning")
                .is_some_and(|w| w.contains("no subscription in this dialog")),
            "{m:?}"
        );
    }
}

/// Alice's message never comes: 32 s after the 200 the session's procedure is over
/// (6.1.3.3.2 `no_message`: `bye`, `closed`). Her ACK has not come either (T1 is 1 s here,
/// so the 200 is still retransmitted: RFC 3261 §13.3.1.4 gives up only after 64·T1), and a
/// BYE waits for a confirmed dialog, so the dialog is still up when she hangs up (a caller
/// may send BYE before its ACK, RFC 3261 §15). The answer to her BYE.
fn bye_after_close(app: App) -> Message {
    let mut cfg = EndpointConfig::new(addr(SERVER), addr("127.0.0.1:2855"));
    cfg.timers.t1 = Duration::from_secs(1);
    let mut ep = Endpoint::new(cfg, app);
    #[allow(clippy::disallowed_methods)]
    // The one clock read of this test: the endpoint only needs some instant.
    let now = Instant::now();
    let ok = final_to(&from_alice(&mut ep, now, &good_invite()), "INVITE");
    assert_eq!(status(&ok), 200, "{ok:?}");
    let later = now + Duration::from_secs(33);
    ep.handle_input(later, Input::Timeout);
    sent_to(&mut ep, ALICE);
    let out = from_alice(&mut ep, later, &in_dialog(&ok, "BYE", 2));
    final_to(&out, "BYE")
}

// covers: 6.1.3.3.2/bye_after_close
#[test]
fn the_originators_bye_after_the_session_closed_is_answered_by_the_spec() {
    let m = bye_after_close(original_app(false));
    assert_eq!(status(&m), 200, "{m:?}");
    // Without the rule nothing answers it: the runtime's 500 marks the spec gap.
    let m = bye_after_close(edited_app(false));
    assert_eq!(status(&m), 500, "{m:?}");
}

/// A SUBSCRIBE to the session's focus URI outside its dialog (RFC 4575 §3) while the
/// endpoint allows no subscription per session: the answer.
fn subscribe_past_the_limit(app: App) -> Message {
    let mut cfg = EndpointConfig::new(addr(SERVER), addr("127.0.0.1:2855"));
    cfg.max_subscriptions_per_session = 0;
    let mut ep = Endpoint::new(cfg, app);
    #[allow(clippy::disallowed_methods)]
    // The one clock read of this test: the endpoint only needs some instant.
    let now = Instant::now();
    let ok = final_to(&from_alice(&mut ep, now, &good_invite()), "INVITE");
    assert_eq!(status(&ok), 200, "{ok:?}");
    let focus = focus_of(&ok);
    let sub = format!(
        "SUBSCRIBE {focus} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKsublimit;rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=s1\r\nTo: <{focus}>\r\nCall-ID: sub@alice\r\nCSeq: 1 SUBSCRIBE\r\nEvent: conference\r\nAccept: application/conference-info+xml\r\nExpires: 600\r\nContact: <sip:alice@{ALICE}>\r\nContent-Length: 0\r\n\r\n"
    );
    final_to(&from_alice(&mut ep, now, &sub), "SUBSCRIBE")
}

// covers: ext-dr.9/too_many_subscriptions
#[test]
fn a_subscription_past_a_limit_is_refused_as_the_spec_says_and_never_granted() {
    let m = subscribe_past_the_limit(original_app(true));
    assert_eq!(status(&m), 403, "{m:?}");
    assert!(
        m.header_str("Warning")
            .is_some_and(|w| w.contains("at most 0 per session")),
        "{m:?}"
    );
    // Without the rule ext-dr.4 grants it, but the configured limit is a ceiling no spec
    // lifts: the runtime refuses it, 503 with Retry-After, and logs the spec gap.
    let m = subscribe_past_the_limit(edited_app(true));
    assert_eq!(status(&m), 503, "{m:?}");
    assert!(m.header_str("Retry-After").is_some(), "{m:?}");
}

/// The focus URI the 200 `ok` names in Contact.
fn focus_of(ok: &Message) -> String {
    ok.header_str("Contact")
        .unwrap_or_default()
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The value of parameter `name` of a Digest challenge (quoted or a token).
fn param(challenge: &str, name: &str) -> String {
    let at = challenge
        .find(&format!("{name}="))
        .map_or(challenge.len(), |i| i + name.len() + 1);
    let rest = challenge.get(at..).unwrap_or_default();
    match rest.strip_prefix('"') {
        Some(q) => q.split('"').next().unwrap_or_default().to_owned(),
        None => rest.split([',', ' ']).next().unwrap_or_default().to_owned(),
    }
}

const SUBSCRIBER: &str = "127.0.0.9:5072";

/// The endpoint with alice's session up, Digest on (alice's host trusted, so her INVITE is
/// not challenged, the subscriber's host not), and the session's focus URI.
fn digest_session(app: App) -> (Endpoint<App>, Instant, String) {
    let mut cfg = EndpointConfig::new(addr(SERVER), addr("127.0.0.1:2855"));
    #[allow(clippy::disallowed_methods)]
    // The one clock read of this test: the endpoint only needs some instant.
    let now = Instant::now();
    cfg.auth = Some(Verifier::new("example.com", [7; 32], now));
    cfg.trusted_hosts = vec![addr(ALICE).ip()];
    let mut ep = Endpoint::new(cfg, app);
    let ok = final_to(&from_alice(&mut ep, now, &good_invite()), "INVITE");
    assert_eq!(status(&ok), 200, "{ok:?}");
    let focus = focus_of(&ok);
    (ep, now, focus)
}

/// The subscriber at `SUBSCRIBER` sends a SUBSCRIBE (From alice) to `focus` with CSeq `cseq`
/// and `to_tag` (a refresh when given), answers the 401 as Digest user `user`, and returns
/// everything the endpoint sent it for the authenticated one (its answer and any NOTIFY).
fn subscribe_as(
    ep: &mut Endpoint<App>,
    now: Instant,
    focus: &str,
    cseq: u32,
    to_tag: Option<&str>,
    user: &str,
) -> Vec<Message> {
    let to = match to_tag {
        Some(t) => format!("<{focus}>;tag={t}"),
        None => format!("<{focus}>"),
    };
    let subscribe = |cseq: u32, auth: &str| {
        format!(
            "SUBSCRIBE {focus} SIP/2.0\r\nVia: SIP/2.0/UDP {SUBSCRIBER};branch=z9hG4bKsubauth{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=s1\r\nTo: {to}\r\nCall-ID: subauth@alice\r\nCSeq: {cseq} SUBSCRIBE\r\n{auth}Event: conference\r\nAccept: application/conference-info+xml\r\nExpires: 600\r\nContact: <sip:alice@{SUBSCRIBER}>\r\nContent-Length: 0\r\n\r\n"
        )
    };
    send(ep, now, SUBSCRIBER, &subscribe(cseq, ""));
    let challenge = final_to(&sent_to(ep, SUBSCRIBER), "SUBSCRIBE");
    assert_eq!(status(&challenge), 401, "{challenge:?}");
    let www = challenge
        .header_str("WWW-Authenticate")
        .unwrap_or_default()
        .to_string();
    let alg = Algorithm::from_token(&param(&www, "algorithm")).unwrap_or(Algorithm::Md5);
    let nonce = param(&www, "nonce");
    let h = ha1(alg, user, "example.com", PASSWORD);
    let r = response(
        alg,
        &h,
        &nonce,
        "00000001",
        "cn",
        "auth",
        "SUBSCRIBE",
        focus,
    );
    let auth = format!(
        "Authorization: Digest username=\"{user}\", realm=\"example.com\", nonce=\"{nonce}\", uri=\"{focus}\", response=\"{r}\", algorithm={}, cnonce=\"cn\", qop=auth, nc=00000001\r\n",
        alg.as_str()
    );
    send(ep, now, SUBSCRIBER, &subscribe(cseq + 1, &auth));
    sent_to(ep, SUBSCRIBER)
}

/// Alice's subscription as Digest user `user`: the answer to the authenticated SUBSCRIBE.
fn subscribe_as_alice(app: App, user: &str) -> Message {
    let (mut ep, now, focus) = digest_session(app);
    final_to(
        &subscribe_as(&mut ep, now, &focus, 1, None, user),
        "SUBSCRIBE",
    )
}

/// Alice subscribes as herself; then a refresh of her subscription carries Digest user
/// `user`'s credentials: what the endpoint sent for it, and the answer to a refresh by alice
/// after it (200 while her subscription lives, 481 once it ended).
fn refresh_as(app: App, user: &str) -> (Vec<Message>, Message) {
    let (mut ep, now, focus) = digest_session(app);
    let ok = final_to(
        &subscribe_as(&mut ep, now, &focus, 1, None, "alice"),
        "SUBSCRIBE",
    );
    assert_eq!(status(&ok), 200, "{ok:?}");
    let tag = ok
        .to()
        .and_then(|t| t.tag())
        .unwrap_or_default()
        .to_string();
    let refreshed = subscribe_as(&mut ep, now, &focus, 3, Some(&tag), user);
    let again = final_to(
        &subscribe_as(&mut ep, now, &focus, 5, Some(&tag), "alice"),
        "SUBSCRIBE",
    );
    (refreshed, again)
}

// covers: ext-dr.12/subscriber_impersonates
#[test]
fn whom_a_digest_user_may_subscribe_as_is_the_specs_rule() {
    // Alice herself: granted (ext-dr.4).
    let m = subscribe_as_alice(original_app(true), "alice");
    assert_eq!(status(&m), 200, "{m:?}");
    // Mallory writing alice into From: the spec's 403, saying why.
    let m = subscribe_as_alice(original_app(true), "mallory");
    assert_eq!(status(&m), 403, "{m:?}");
    assert!(
        m.header_str("Warning")
            .is_some_and(|w| w.contains("the authenticated user is not the user")),
        "{m:?}"
    );
    // The edited rule lets admin subscribe in anyone's name; mallory is still refused.
    let m = subscribe_as_alice(edited_app(true), "admin");
    assert_eq!(status(&m), 200, "{m:?}");
    let m = subscribe_as_alice(edited_app(true), "mallory");
    assert_eq!(status(&m), 403, "{m:?}");
}

/// A refresh carries its own credentials, and whom they may speak for is ext-dr.12's rule,
/// as for the SUBSCRIBE that created it (ext-dr.13); another user's refresh refused ends
/// nothing (the runtime keeps alice's subscription: no `terminated` NOTIFY, her own refresh
/// still renews it).
// covers: ext-dr.12/subscriber_impersonates
#[test]
fn whom_a_refresh_may_speak_for_is_the_specs_rule() {
    let (sent, again) = refresh_as(original_app(true), "admin");
    let m = final_to(&sent, "SUBSCRIBE");
    assert_eq!(status(&m), 403, "{m:?}");
    assert!(
        m.header_str("Warning")
            .is_some_and(|w| w.contains("the authenticated user is not the user")),
        "{m:?}"
    );
    assert!(
        !sent.iter().any(|n| n
            .header_str("Subscription-State")
            .is_some_and(|s| s.starts_with("terminated"))),
        "alice's subscription ended: {sent:?}"
    );
    assert_eq!(status(&again), 200, "{again:?}");
    // The edited ext-dr.12 lets admin speak for alice, so the refresh reaches the rule after
    // it: in the edited copy, ext-dr.13's `refresh_refused` (every refresh refused, saying so).
    let (sent, _) = refresh_as(edited_app(true), "admin");
    let m = final_to(&sent, "SUBSCRIBE");
    assert_eq!(status(&m), 403, "{m:?}");
    assert!(
        m.header_str("Warning")
            .is_some_and(|w| w.contains("subscriptions are not renewed")),
        "{m:?}"
    );
}

//! A SUBSCRIBE in a conference subscription's own dialog (a refresh, an unsubscribe) is
//! decided by the spec's rules (ext-dr.13; RFC 6665 §4.2.1.2: "the same as for the initial
//! creation"), not answered 200 by the runtime: the sans-IO endpoint runs the machines of
//! `specs/` as written (the originator's refresh is renewed, an unsubscribe ends it with
//! `reason=timeout`) and of the copy `edits.toml` changed (refreshes refused 403, after
//! which the subscription ends with `reason=rejected`; a refresh no rule decides gets the
//! runtime's 403 and ends the same way).

use im_runtime::endpoint::EndpointConfig;
use im_runtime::proto::sip::Message;

mod common;
#[path = "common/gap.rs"]
mod gap;
mod replies;

use common::{App, edited_app, original_app};
use gap::{MSRP, SERVER, addr, to};
use replies::{final_to, status};

const ALICE: &str = "127.0.0.1:5070";
/// Where alice's subscription comes from (and its NOTIFYs go).
const SUBSCRIBER: &str = "127.0.0.1:5072";

/// Alice's pager-mode INVITE to the conference factory, naming bob.
fn invite() -> String {
    let sdp = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=message 7000 TCP/MSRP *\r\na=path:msrp://127.0.0.1:7000/alicesess;tcp\r\n\
               a=accept-types:message/cpim text/plain\r\na=setup:active\r\na=sendonly\r\n";
    let list = "<?xml version=\"1.0\"?>\r\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list><entry uri=\"sip:bob@example.com\"/></list></resource-lists>\r\n";
    let body = format!(
        "--b1\r\nContent-Type: application/sdp\r\n\r\n{sdp}--b1\r\nContent-Type: application/resource-lists+xml\r\nContent-Disposition: recipient-list\r\n\r\n{list}--b1--\r\n"
    );
    format!(
        "INVITE sip:conference-factory@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKref1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:conference-factory@example.com>\r\nCall-ID: ref@alice\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{ALICE}>\r\nContent-Type: multipart/mixed;boundary=b1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The endpoint with alice's session open, and its focus URI.
struct Run {
    run: gap::Run<App>,
    focus: String,
}

impl Run {
    fn new(app: App) -> Run {
        let cfg = EndpointConfig::new(addr(SERVER), addr(MSRP));
        let mut run = Run {
            run: gap::Run::start(cfg, app),
            focus: String::new(),
        };
        let ok = final_to(&run.send(ALICE, &invite()), "INVITE");
        assert_eq!(status(&ok), 200, "{ok:?}");
        run.focus = ok
            .header_str("Contact")
            .unwrap_or_default()
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap_or_default()
            .to_string();
        run
    }

    /// Hands `text` from `peer` to the endpoint; what it then sends `peer` (what it sent
    /// others is dropped).
    fn send(&mut self, peer: &str, text: &str) -> Vec<Message> {
        to(&self.run.send(peer, text), peer)
    }

    /// Alice's SUBSCRIBE to the focus in dialog `call` (`to_tag`: ours, once it exists),
    /// asking for `expires` seconds: the final answer and the NOTIFYs that followed it
    /// (each answered 200).
    fn subscribe(
        &mut self,
        call: &str,
        to_tag: Option<&str>,
        cseq: u32,
        expires: u32,
    ) -> (Message, Vec<Message>) {
        let focus = &self.focus;
        let tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        let text = format!(
            "SUBSCRIBE {focus} SIP/2.0\r\nVia: SIP/2.0/UDP {SUBSCRIBER};branch=z9hG4bK{call}{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=s{call}\r\nTo: <{focus}>{tag}\r\nCall-ID: {call}@alice\r\nCSeq: {cseq} SUBSCRIBE\r\nEvent: conference\r\nAccept: application/conference-info+xml\r\nExpires: {expires}\r\nContact: <sip:alice@{SUBSCRIBER}>\r\nContent-Length: 0\r\n\r\n"
        );
        let out = self.send(SUBSCRIBER, &text);
        let answer = final_to(&out, "SUBSCRIBE");
        let notifies: Vec<Message> = out.into_iter().filter(Message::is_request).collect();
        for n in &notifies {
            self.send(SUBSCRIBER, &ok_for(n));
        }
        (answer, notifies)
    }
}

/// The subscriber's 200 for NOTIFY `n`.
fn ok_for(n: &Message) -> String {
    let h = |name: &str| n.header_str(name).unwrap_or_default().to_string();
    format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        h("Via"),
        h("From"),
        h("To"),
        h("Call-ID"),
        h("CSeq")
    )
}

/// `Subscription-State` of the one NOTIFY in `n`.
fn state(n: &[Message]) -> String {
    assert_eq!(n.len(), 1, "one NOTIFY: {n:?}");
    n[0].header_str("Subscription-State")
        .unwrap_or_default()
        .to_string()
}

fn to_tag(m: &Message) -> String {
    m.to().and_then(|t| t.tag()).expect("a To tag").to_string()
}

// covers: ext-dr.13/unsubscribes
// covers: ext-dr.4/originator_subscribes
#[test]
fn the_spec_as_written_renews_a_refresh_and_ends_on_an_unsubscribe() {
    let mut run = Run::new(original_app(true));
    let (ok, n) = run.subscribe("r1", None, 1, 600);
    assert_eq!(status(&ok), 200, "{ok:?}");
    assert_eq!(state(&n), "active;expires=600");
    let tag = to_tag(&ok);

    // The refresh is decided by ext-dr.4 again: renewed for what it asked, the full state
    // again with the next version.
    let (ok, n) = run.subscribe("r1", Some(&tag), 2, 300);
    assert_eq!(status(&ok), 200, "{ok:?}");
    assert_eq!(ok.header_str("Expires"), Some("300"), "{ok:?}");
    assert_eq!(state(&n), "active;expires=300");
    let body = String::from_utf8_lossy(n[0].body_bytes()).into_owned();
    assert!(body.contains("version=\"2\""), "{body}");

    // The unsubscribe (ext-dr.13 `unsubscribes`): 200 with Expires 0, a last NOTIFY.
    let (ok, n) = run.subscribe("r1", Some(&tag), 3, 0);
    assert_eq!(status(&ok), 200, "{ok:?}");
    assert_eq!(ok.header_str("Expires"), Some("0"), "{ok:?}");
    assert_eq!(state(&n), "terminated;reason=timeout");

    // It is gone: a later refresh in its dialog gets 481 (RFC 6665 §4.1.2.2).
    let (m, n) = run.subscribe("r1", Some(&tag), 4, 300);
    assert_eq!(status(&m), 481, "{m:?}");
    assert!(n.is_empty(), "{n:?}");
}

#[test]
fn the_edited_spec_refuses_refreshes_and_the_subscription_ends() {
    let mut run = Run::new(edited_app(true));
    let (ok, n) = run.subscribe("e1", None, 1, 600);
    assert_eq!(status(&ok), 200, "{ok:?}");
    assert_eq!(state(&n), "active;expires=600");
    let tag = to_tag(&ok);

    // The edited rule refuses the refresh: its 403, and the subscription ends at once with
    // a last NOTIFY saying it was rejected (RFC 6665 §4.2.2).
    let (m, n) = run.subscribe("e1", Some(&tag), 2, 300);
    assert_eq!(status(&m), 403, "{m:?}");
    assert!(
        m.header_str("Warning")
            .is_some_and(|w| w.contains("subscriptions are not renewed")),
        "{m:?}"
    );
    assert_eq!(state(&n), "terminated;reason=rejected");
    let (m, _) = run.subscribe("e1", Some(&tag), 3, 300);
    assert_eq!(status(&m), 481, "{m:?}");

    // A refresh no rule decides (the edit's `refresh_undecided`, a spec gap): the runtime
    // grants nothing no rule grants, 403 saying so, and ends the subscription the same way.
    let (ok, _) = run.subscribe("e2", None, 1, 600);
    assert_eq!(status(&ok), 200, "{ok:?}");
    let (m, n) = run.subscribe("e2", Some(&to_tag(&ok)), 2, 3600);
    assert_eq!(status(&m), 403, "{m:?}");
    assert!(
        m.header_str("Warning")
            .is_some_and(|w| w.contains("no rule of the spec renews")),
        "{m:?}"
    );
    assert_eq!(state(&n), "terminated;reason=rejected");

    // An unsubscribe is still accepted (ext-dr.13 kept by the edit).
    let (ok, _) = run.subscribe("e3", None, 1, 600);
    let (m, n) = run.subscribe("e3", Some(&to_tag(&ok)), 2, 0);
    assert_eq!(status(&m), 200, "{m:?}");
    assert_eq!(state(&n), "terminated;reason=timeout");
}

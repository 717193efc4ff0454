//! The invitee INVITE on the wire comes from the spec: the sans-IO endpoint runs the machines
//! of `specs/` as written and of the copy `edits.toml` changed (Referred-By dropped, `setup
//! active` instead of `actpass` in 7.9.1.4's `invite each … { … }`), and the INVITE it sends
//! the invitee changes accordingly, with no Rust edit.

use im_runtime::endpoint::{Application, DynMachine, Endpoint, EndpointConfig};
use im_runtime::machine::{GroupDirectory, InviteeRouter, Method, NoGroups, Route, Uri};
use im_runtime::proto::sip::Message;
use im_runtime::transport::{Core, Input, Output};
use imspec_spec_edit::{edited, original};
use std::net::SocketAddr;
use std::time::Instant;

/// Where every invitee is reached.
const INVITEE: &str = "127.0.0.2:5060";
const ALICE: &str = "127.0.0.1:5070";

struct ToInvitee;
impl InviteeRouter for ToInvitee {
    fn route(&self, _: &Uri) -> Option<Route> {
        INVITEE.parse().ok().map(Route::Direct)
    }
}

/// An application made of one spec's generated functions.
struct App {
    initial: fn(&Method) -> Option<Box<dyn DynMachine>>,
    by_clause: fn(&str) -> Option<Box<dyn DynMachine>>,
    invitee_leg: fn() -> Option<Box<dyn DynMachine>>,
    methods: fn() -> Vec<Method>,
}

impl Application for App {
    fn initial(&self, m: &Method) -> Option<Box<dyn DynMachine>> {
        (self.initial)(m)
    }
    fn by_clause(&self, c: &str) -> Option<Box<dyn DynMachine>> {
        (self.by_clause)(c)
    }
    fn invitee_leg(&self) -> Option<Box<dyn DynMachine>> {
        (self.invitee_leg)()
    }
    fn methods(&self) -> Vec<Method> {
        (self.methods)()
    }
    fn directory(&self) -> &dyn GroupDirectory {
        &NoGroups
    }
    fn router(&self) -> &dyn InviteeRouter {
        &ToInvitee
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

/// A pager-mode INVITE to the conference factory with a list naming bob.
fn invite() -> String {
    let sdp = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=message 7000 TCP/MSRP *\r\na=path:msrp://127.0.0.1:7000/alicesess;tcp\r\n\
               a=accept-types:message/cpim text/plain\r\na=setup:active\r\na=sendonly\r\n";
    let list = "<?xml version=\"1.0\"?>\r\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list><entry uri=\"sip:bob@example.com\"/></list></resource-lists>\r\n";
    let body = format!(
        "--b1\r\nContent-Type: application/sdp\r\n\r\n{sdp}--b1\r\nContent-Type: application/resource-lists+xml\r\nContent-Disposition: recipient-list\r\n\r\n{list}--b1--\r\n"
    );
    format!(
        "INVITE sip:conference-factory@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKwire;rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:conference-factory@example.com>\r\nCall-ID: wire@alice\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{ALICE}>\r\nContent-Type: multipart/mixed;boundary=b1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The INVITE the endpoint sends the invitee when `app` runs the session.
#[allow(clippy::disallowed_methods)]
fn invitee_invite(app: App) -> Message {
    let cfg = EndpointConfig::new(addr("127.0.0.1:5060"), addr("127.0.0.1:2855"));
    let mut ep = Endpoint::new(cfg, app);
    // The one clock read of this test: the endpoint only needs some instant.
    ep.handle_input(
        Instant::now(),
        Input::Datagram {
            local: addr("127.0.0.1:5060"),
            from: addr(ALICE),
            data: invite().into_bytes().into(),
        },
    );
    let mut invites = Vec::new();
    while let Some(o) = ep.poll_output() {
        if let Output::Datagram { to, data, .. } = o
            && to == addr(INVITEE)
            && let Ok(m) = Message::parse(data)
            && m.is_request()
        {
            invites.push(m);
        }
    }
    assert_eq!(invites.len(), 1, "one INVITE to the invitee");
    invites.remove(0)
}

fn offer(m: &Message) -> String {
    String::from_utf8_lossy(m.body_bytes()).into_owned()
}

#[test]
fn the_invitee_invite_follows_the_spec_as_written() {
    let m = invitee_invite(App {
        initial: original::initial,
        by_clause: original::by_clause,
        invitee_leg: original::invitee_leg,
        methods: original::methods,
    });
    assert_eq!(m.header_str("Referred-By"), Some("<sip:alice@example.com>"));
    let contact = m.header_str("Contact").unwrap_or_default();
    assert!(
        contact.ends_with(";isfocus;+g.oma.sip-im;+g.oma.sip-im.large-message"),
        "{contact}"
    );
    let body = offer(&m);
    assert!(body.contains("a=setup:actpass\r\n"), "{body}");
    assert!(body.contains("recipient-list-history"), "{body}");
}

#[test]
fn the_edited_spec_changes_the_invitee_invite() {
    let m = invitee_invite(App {
        initial: edited::initial,
        by_clause: edited::by_clause,
        invitee_leg: edited::invitee_leg,
        methods: edited::methods,
    });
    assert_eq!(m.header_str("Referred-By"), None);
    let body = offer(&m);
    assert!(body.contains("a=setup:active\r\n"), "{body}");
    assert!(!body.contains("actpass"), "{body}");
    // What the edit kept stays.
    let contact = m.header_str("Contact").unwrap_or_default();
    assert!(contact.contains(";isfocus;+g.oma.sip-im"), "{contact}");
}

//! The endpoint in virtual time, with hand-written machines standing in for generated ones:
//! a recipient-list INVITE is answered 200 with an MSRP answer, each invitee is invited,
//! the originator's message is relayed over MSRP to each accepted invitee, the outcome is
//! reported, every leg ends with BYE and the session count returns to 0. Also: errors
//! answered before any machine, retransmissions absorbed, CANCEL, OPTIONS.

mod common;

use bytes::Bytes;
use common::harness::{
    self, ALICE, ALICE_MSRP, BOB, CAROL, ack, alice_bye, alice_connects, alice_sends, closed,
    connect_of, sent_on, udp_to,
};
use common::{
    INVITEES, Knobs, act, addr, alice_sdp, crlf, invite_with_body, invitee_sdp, list_body,
    ok_with_answer, oma_invitation, response_to, simple_request, status_of,
};
use im_runtime::endpoint::{Application, DynMachine};
use im_runtime::machine::{
    Action, ActionKind, Env, Event, Facts, GroupDirectory, HeaderValue, Invitation, InviteeRouter,
    Machine, Method, NoGroups, OfferItem, Recipients, Reply, Route, Selection, Uri,
};
use im_runtime::proto::msrp;
use im_runtime::proto::sip::Message;
use im_runtime::transport::{ConnId, Input, Output};
use std::time::{Duration, Instant};

/// Stands in for the generated 5.2.1.1 dispatcher.
struct Dispatcher {
    done: bool,
    /// The fan-out's selection, as a spec's `invite each` words would give it.
    sel: Selection,
    /// What the INVITEs carry, as a spec's `invite each … { … }` would give it; `None`: what
    /// the specs write ([`oma_invitation`]).
    inv: Option<Invitation>,
}

/// A response with no headers or body of the machine's own.
fn respond(status: u16, reason: &'static str, warning: Option<&'static str>) -> Action {
    act(ActionKind::Respond(Reply {
        status,
        reason: reason.into(),
        headers: vec![],
        warning: warning.map(Into::into),
        sdp_answer: vec![],
    }))
}

impl Machine for Dispatcher {
    const PROCEDURE: &'static str = "dispatcher";
    const CLAUSE: &'static str = "5.2.1.1";
    fn handle(&mut self, _: Instant, ev: &Event, f: &Facts, _: &Env<'_>) -> Vec<Action> {
        match ev {
            Event::InitialRequest(Method::Invite) if !f.recipients.is_empty() => vec![
                ok_with_answer(),
                act(ActionKind::InviteEach(
                    Recipients::RecipientList,
                    self.sel,
                    self.inv
                        .clone()
                        .unwrap_or_else(|| oma_invitation(&f.originator)),
                )),
            ],
            Event::InitialRequest(_) => vec![respond(404, "Not Found", Some("no such group"))],
            // The answer to the originator's BYE is the machine's (a spec's `respond`).
            Event::InDialogRequest(Method::Bye) => vec![respond(202, "Accepted", None)],
            // Another in-dialog request (a spec's `on request other`): INFO is answered by
            // the machine; nothing answers OPTIONS here.
            Event::InDialogRequest(Method::Info) => {
                vec![respond(488, "Not Acceptable Here", None)]
            }
            Event::LegsSettled => {
                self.done = true;
                // The status of a failure REPORT is the machine's choice, sent as given.
                let outcome = if f.legs.failed > 0 {
                    im_runtime::machine::ReportOutcome::Failure {
                        status: 480,
                        reason: "Temporarily Unavailable".into(),
                    }
                } else {
                    im_runtime::machine::ReportOutcome::Success
                };
                vec![act(ActionKind::Report(outcome)), act(ActionKind::Bye)]
            }
            _ => vec![],
        }
    }
    fn state_name(&self) -> &'static str {
        "active"
    }
    fn is_final(&self) -> bool {
        self.done
    }
}

struct Direct;
impl InviteeRouter for Direct {
    fn route(&self, u: &Uri) -> Option<Route> {
        // The originator's own address, for a selection that invites it too.
        if u.host() == "example.com" {
            return ALICE.parse().ok().map(Route::Direct);
        }
        let port = u.port().unwrap_or(5060);
        format!("{}:{port}", u.host())
            .parse()
            .ok()
            .map(Route::Direct)
    }
}

struct App {
    sel: Selection,
    inv: Option<Invitation>,
}
impl Application for App {
    fn initial(&self, m: &Method) -> Option<Box<dyn DynMachine>> {
        (m == &Method::Invite).then(|| {
            Box::new(Dispatcher {
                done: false,
                sel: self.sel,
                inv: self.inv.clone(),
            }) as Box<dyn DynMachine>
        })
    }
    fn by_clause(&self, _: &str) -> Option<Box<dyn DynMachine>> {
        None
    }
    fn invitee_leg(&self) -> Option<Box<dyn DynMachine>> {
        // The common stand-in leg, as the specs' 7.9.1.4 without its knobs.
        common::App(Knobs::default()).invitee_leg()
    }
    fn methods(&self) -> Vec<Method> {
        vec![Method::Invite]
    }
    fn directory(&self) -> &dyn GroupDirectory {
        &NoGroups
    }
    fn router(&self) -> &dyn InviteeRouter {
        &Direct
    }
}

/// The endpoint serving this file's [`App`].
type Sim = harness::Sim<App>;

impl Sim {
    fn new() -> Sim {
        Sim::with(INVITEES)
    }
    fn with(sel: Selection) -> Sim {
        Sim::inviting(sel, None)
    }
    fn inviting(sel: Selection, inv: Option<Invitation>) -> Sim {
        Sim::serving(App { sel, inv }, |_| {})
    }
    /// A datagram from `from` with `text`'s line ends made CRLF.
    fn datagram(&mut self, from: &str, text: &str) -> Vec<Output> {
        self.udp(from, &crlf(text))
    }
}

/// Bob accepts `inv` with `setup:passive` at 127.0.0.2:7002: the 2xx is ACKed and the
/// server connects to him; returns that connection and where it goes.
fn bob_accepts(sim: &mut Sim, inv: &Message) -> (ConnId, std::net::SocketAddr) {
    let sdp = invitee_sdp("127.0.0.2:7002", "bobsess");
    let out = sim.udp(BOB, &response_to(inv, 200, "b1", Some(&sdp)));
    let acks = udp_to(&out, BOB);
    assert!(acks.iter().any(|m| m.method() == Some(&Method::Ack)));
    connect_of(&out).expect("server connects to bob's MSRP path")
}

/// A request from alice outside any dialog, branch `z9hG4bK{n}`; `extra` lines verbatim.
fn stray(method: &str, n: &str, extra: &str) -> String {
    let branch = format!("z9hG4bK{n}");
    simple_request(
        method,
        "UDP",
        ALICE,
        n,
        &branch,
        "<sip:x@example.com>",
        1,
        extra,
    )
}

/// Alice's INVITE with the recipient list, answered 200 at once; returns the 200 and all that
/// was sent.
fn answered(sim: &mut Sim, branch: &str) -> (Message, Vec<Output>) {
    let out = sim.datagram(ALICE, &invite(branch, true));
    let ok = udp_to(&out, ALICE).pop().unwrap();
    assert_eq!(status_of(&ok), 200);
    (ok, out)
}

/// The responses among `out` to alice, by status.
fn statuses_to_alice(out: &[Output]) -> Vec<u16> {
    udp_to(out, ALICE).iter().map(status_of).collect()
}

/// Alice's INVITE to the conference factory: her SDP offer and, with `body_list`, a recipient
/// list naming bob (to), carol (bcc), herself and bob again.
fn invite(branch: &str, body_list: bool) -> String {
    let sdp = alice_sdp(ALICE_MSRP);
    let list = "<?xml version=\"1.0\"?>\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\" xmlns:cp=\"urn:ietf:params:xml:ns:copyControl\"><list><entry uri=\"sip:bob@127.0.0.2\" cp:copyControl=\"to\"/><entry uri=\"sip:carol@127.0.0.3\" cp:copyControl=\"bcc\"/><entry uri=\"sip:alice@example.com\"/><entry uri=\"sip:bob@127.0.0.2\"/></list></resource-lists>\n";
    let (ct, body) = if body_list {
        ("multipart/mixed;boundary=b1", list_body(&sdp, list))
    } else {
        ("application/sdp", sdp)
    };
    invite_with_body("UDP", ALICE, "call-1@alice", branch, ct, &body)
}

/// The recipient-set rules are the machine's (the spec's `invite each recipient_list without
/// originator distinct`), and the runtime only applies them: the list names bob twice and the
/// originator once; each selection invites exactly what it says.
#[test]
fn who_is_invited_is_the_machines_selection() {
    let cases = [
        (INVITEES, 0, 1),
        (Selection::default(), 1, 2),
        (
            Selection {
                without_originator: true,
                distinct: false,
            },
            0,
            2,
        ),
        (
            Selection {
                without_originator: false,
                distinct: true,
            },
            1,
            1,
        ),
    ];
    for (sel, to_alice, to_bob) in cases {
        let mut sim = Sim::with(sel);
        let out = sim.datagram(ALICE, &invite("z9hG4bKsel", true));
        let requests = |to| {
            udp_to(&out, to)
                .iter()
                .filter(|m| m.status().is_none())
                .count()
        };
        assert_eq!(
            requests(ALICE),
            to_alice,
            "{sel:?}: INVITEs to the originator"
        );
        assert_eq!(requests(BOB), to_bob, "{sel:?}: INVITEs to bob");
        assert_eq!(requests(CAROL), 1, "{sel:?}: INVITEs to carol");
    }
}

/// The invitee INVITE carries what the machine's invitation says and, besides what RFC 3261
/// §8.1.1 makes mandatory and the offer's own lines, nothing else: no Referred-By, Allow,
/// `isfocus`, history part or direction unless asked for.
#[test]
fn the_invitee_invite_carries_the_machines_invitation_only() {
    let plain = Invitation {
        headers: vec![("Subject".into(), HeaderValue::Text("hello".into()))],
        history: false,
        offer: vec![OfferItem::Fixed("setup".into(), Some("active".into()))],
    };
    let mut sim = Sim::inviting(INVITEES, Some(plain));
    let out = sim.datagram(ALICE, &invite("z9hG4bKplain", true));
    let bob = udp_to(&out, BOB);
    assert_eq!(bob.len(), 1);
    let inv = &bob[0];
    assert_eq!(inv.header_str("Subject"), Some("hello"));
    for absent in ["Referred-By", "Allow"] {
        assert_eq!(inv.header_str(absent), None, "{absent}");
    }
    let contact = inv.header_str("Contact").unwrap();
    assert!(
        contact.starts_with("<sip:conf-") && !contact.contains("isfocus"),
        "{contact}"
    );
    assert_eq!(inv.header_str("Max-Forwards"), Some("70"));
    assert_eq!(inv.header_str("Content-Type"), Some("application/sdp"));
    let body = String::from_utf8_lossy(inv.body_bytes()).to_string();
    assert!(body.ends_with("a=setup:active\r\n"), "{body}");
    assert!(
        body.contains("a=path:msrp://") && body.contains("a=accept-types:"),
        "{body}"
    );
    for absent in [
        "sendonly",
        "connection",
        "max-size",
        "recipient-list-history",
    ] {
        assert!(!body.contains(absent), "{absent} in {body}");
    }

    // The invitation the specs write: feature tags, Referred-By = the originator, history.
    let mut sim = Sim::new();
    let out = sim.datagram(ALICE, &invite("z9hG4bKoma", true));
    let inv = &udp_to(&out, BOB)[0];
    assert_eq!(
        inv.header_str("Contact")
            .map(|c| c.ends_with(">;isfocus;+g.oma.sip-im;+g.oma.sip-im.large-message")),
        Some(true)
    );
    assert_eq!(
        inv.header_str("Referred-By"),
        Some("<sip:alice@example.com>")
    );
    let body = String::from_utf8_lossy(inv.body_bytes()).to_string();
    assert!(
        body.contains("a=setup:actpass\r\na=connection:new\r\na=sendonly\r\n"),
        "{body}"
    );
}

#[test]
fn group_message_is_relayed_to_each_accepted_invitee() {
    let mut sim = Sim::new();
    let out = sim.datagram(ALICE, &invite("z9hG4bKinv1", true));
    let to_alice = udp_to(&out, ALICE);
    assert_eq!(
        to_alice.iter().map(status_of).collect::<Vec<_>>(),
        vec![100, 200]
    );
    let ok = &to_alice[1];
    let answer = String::from_utf8_lossy(ok.body_bytes()).to_string();
    assert!(answer.contains("a=path:msrp://127.0.0.1:2855/"), "{answer}");
    assert!(answer.contains("a=setup:passive"), "{answer}");
    assert!(answer.contains("a=recvonly"), "{answer}");
    assert!(ok.header_str("Contact").unwrap().contains("isfocus"));
    // The sender and the duplicate are gone: bob and carol are invited, once each.
    let inv_bob = udp_to(&out, BOB);
    let inv_carol = udp_to(&out, CAROL);
    assert_eq!(inv_bob.len(), 1);
    assert_eq!(inv_carol.len(), 1);
    let bob_body = String::from_utf8_lossy(inv_bob[0].body_bytes()).to_string();
    assert!(bob_body.contains("recipient-list-history"));
    assert!(bob_body.contains("sip:bob@127.0.0.2"));
    assert!(
        !bob_body.contains("carol"),
        "bcc recipient leaked: {bob_body}"
    );
    assert_eq!(sim.ep.live_sessions(), 1);

    // A retransmitted INVITE is answered from the transaction; nobody is invited twice.
    let again = sim.datagram(ALICE, &invite("z9hG4bKinv1", true));
    assert!(udp_to(&again, BOB).is_empty());
    assert_eq!(sim.ep.stats().invites_sent, 2);

    ack(&mut sim, ok);

    // Alice connects (she offered setup:active) and sends the message.
    let alice_conn = alice_sends(&mut sim, ok, "hello");

    // Bob answers with setup:passive: the server connects and delivers.
    sim.udp(BOB, &response_to(&inv_bob[0], 180, "b1", None));
    let (bob_conn, to) = bob_accepts(&mut sim, &inv_bob[0]);
    assert_eq!(to, addr("127.0.0.2:7002"));
    // Carol declines.
    sim.datagram(CAROL, &response_to(&inv_carol[0], 486, "c1", None));

    let out = sim.msrp_open(bob_conn, "127.0.0.1:40000", to);
    let chunk = sent_on(&out, bob_conn).expect("the message goes to bob");
    let frame = msrp::decode_one(&chunk).unwrap();
    assert_eq!(frame.data(), b"hello");
    assert_eq!(frame.to_path[0].session_id.as_deref(), Some("bobsess"));
    let ok = msrp::response_to(&frame, msrp::StatusCode(200), None).unwrap();
    let out = sim.input(Input::StreamData {
        conn: bob_conn,
        data: Bytes::from(msrp::encode_to_vec(&ok).unwrap()),
    });
    // Carol failed, Bob got it: legs settled → report to alice and BYE to everybody.
    let report = String::from_utf8_lossy(&sent_on(&out, alice_conn).unwrap()).to_string();
    assert!(report.contains("REPORT"), "{report}");
    // Carol failed: the machine's failure status, not a runtime default.
    assert!(
        report.contains("Status: 000 480 Temporarily Unavailable\r\n"),
        "{report}"
    );
    let byes: Vec<Message> = udp_to(&sim.sent, BOB)
        .into_iter()
        .chain(udp_to(&sim.sent, ALICE))
        .filter(|m| m.method() == Some(&Method::Bye))
        .collect();
    assert_eq!(byes.len(), 2, "BYE to bob and to alice");
    for bye in &byes {
        let dest = if bye.request_uri_str().unwrap().contains("invitee") {
            BOB
        } else {
            ALICE
        };
        sim.udp(dest, &response_to(bye, 200, "", None));
    }
    sim.advance(Duration::from_secs(40));
    assert_eq!(sim.ep.live_sessions(), 0);
    assert_eq!(sim.ep.stats().delivered, 1);
}

#[test]
fn requests_are_answered_before_any_machine_when_they_must_be() {
    let mut sim = Sim::new();
    // Unknown method → 501.
    let out = sim.datagram(ALICE, &stray("FOO", "f1", ""));
    assert_eq!(statuses_to_alice(&out), vec![501]);
    // Require with an unknown option tag → 420 with Unsupported.
    let out = sim.datagram(ALICE, &stray("OPTIONS", "f2", "Require: nosuchext\n"));
    let r = udp_to(&out, ALICE);
    assert_eq!(status_of(&r[0]), 420);
    assert!(
        r[0].header_str("Unsupported")
            .unwrap()
            .contains("nosuchext")
    );
    // OPTIONS → 200 with Allow.
    let out = sim.datagram(ALICE, &stray("OPTIONS", "f3", ""));
    let r = udp_to(&out, ALICE);
    assert_eq!(status_of(&r[0]), 200);
    assert!(r[0].header_str("Allow").unwrap().contains("INVITE"));
    // Garbage with enough headers → 400 with a Warning.
    let out = sim.datagram(
        ALICE,
        &stray("INVITE", "f4", "").replace("Content-Length: 0", "Content-Length: -5"),
    );
    let r = udp_to(&out, ALICE);
    assert_eq!(status_of(&r[0]), 400);
    assert!(r[0].header_str("Warning").is_some());
    // No recipient list → the dispatcher answers 404; no session is left behind.
    let out = sim.datagram(ALICE, &invite("z9hG4bKnolist", false));
    assert_eq!(statuses_to_alice(&out), vec![100, 404]);
    sim.advance(Duration::from_secs(40));
    assert_eq!(sim.ep.live_sessions(), 0);
}

#[test]
fn cancel_before_the_answer_ends_the_session() {
    let mut sim = Sim::new();
    // An INVITE whose answer the dispatcher gives at once would not be cancellable, so
    // cancel the invitee side: the originator cancels its INVITE after 200 → 481/200
    // semantics are in the transaction tests; here CANCEL of an answered INVITE is 200 and
    // changes nothing, and a stray CANCEL gets 481.
    let out = sim.datagram(ALICE, &stray("CANCEL", "none", ""));
    assert_eq!(statuses_to_alice(&out), vec![481]);
}

#[test]
fn the_originators_bye_is_answered_by_the_machine() {
    let mut sim = Sim::new();
    let (ok, _) = answered(&mut sim, "z9hG4bKinv9");
    ack(&mut sim, &ok);
    let out = sim.udp(ALICE, &alice_bye(&ok));
    let answers = statuses_to_alice(&out);
    assert_eq!(
        answers,
        vec![202],
        "the machine's status, not a runtime 200"
    );
}

#[test]
fn other_in_dialog_requests_are_answered_by_the_machine() {
    let mut sim = Sim::new();
    let (ok, _) = answered(&mut sim, "z9hG4bKinv8");
    let to = ok.header_str("To").unwrap().to_string();
    let req = |method: &str, branch: &str, cseq: u32| {
        simple_request(method, "UDP", ALICE, "call-1@alice", branch, &to, cseq, "")
    };
    sim.udp(ALICE, &req("ACK", "z9hG4bKack8", 1));
    let answer = |sim: &mut Sim, text: String| statuses_to_alice(&sim.udp(ALICE, &text));
    // The machine's answer, not a runtime 405.
    assert_eq!(answer(&mut sim, req("INFO", "z9hG4bKinfo8", 2)), vec![488]);
    // No rule answers OPTIONS: the transaction still gets a final response (500, logged).
    assert_eq!(
        answer(&mut sim, req("OPTIONS", "z9hG4bKopt8", 3)),
        vec![500]
    );
    assert_eq!(answer(&mut sim, req("BYE", "z9hG4bKbye8", 4)), vec![202]);
    // The dialog is over: 481 (RFC 3261 §12.2.2), whatever the machine would say.
    assert_eq!(answer(&mut sim, req("INFO", "z9hG4bKinfo9", 5)), vec![481]);
}

/// An invitee the server connects to (it answered `setup:passive`) waits for the originator's
/// message as long as the session does: the connect's unbound-connection deadline ends when
/// the connection is up. The SEND that then carries the copy is timed on its own
/// (`msrp_idle`, RFC 4975 §7.1.1's transaction timeout): no answer in time closes the leg.
#[test]
fn a_connected_leg_waits_for_a_late_message_and_its_send_is_timed() {
    let mut sim = Sim::new();
    let (ok, out) = answered(&mut sim, "z9hG4bKinv1");
    let inv_bob = udp_to(&out, BOB);
    ack(&mut sim, &ok);
    let (alice_conn, our_path) = alice_connects(&mut sim, &ok);
    // Alice binds with an empty SEND (RFC 4975 §5.4) and keeps her message for later.
    let bind = format!(
        "MSRP t0 SEND\r\nTo-Path: {our_path}\r\nFrom-Path: msrp://{ALICE_MSRP}/alicesess;tcp\r\nMessage-ID: m0\r\nByte-Range: 1-0/0\r\n-------t0$\r\n"
    );
    let out = sim.input(Input::StreamData {
        conn: alice_conn,
        data: Bytes::from(bind),
    });
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::StreamSend { conn, data }
            if *conn == alice_conn && data.starts_with(b"MSRP t0 200"))),
        "alice's empty SEND binds her: {out:?}"
    );

    let (bob_conn, to) = bob_accepts(&mut sim, &inv_bob[0]);
    sim.msrp_open(bob_conn, "127.0.0.1:40000", to);

    // Longer than msrp_idle (30 s) before the message: bob's connection stays.
    let out = sim.advance(Duration::from_secs(35));
    assert!(
        !closed(&out, bob_conn),
        "bob's connection was closed while waiting for the message: {out:?}"
    );
    let send = format!(
        "MSRP t1 SEND\r\nTo-Path: {our_path}\r\nFrom-Path: msrp://{ALICE_MSRP}/alicesess;tcp\r\nMessage-ID: m1\r\nByte-Range: 1-5/5\r\nContent-Type: text/plain\r\n\r\nhello\r\n-------t1$\r\n"
    );
    let out = sim.input(Input::StreamData {
        conn: alice_conn,
        data: Bytes::from(send),
    });
    let chunk =
        sent_on(&out, bob_conn).unwrap_or_else(|| panic!("the late message goes to bob: {out:?}"));
    assert_eq!(msrp::decode_one(&chunk).unwrap().data(), b"hello");

    // Bob never answers the SEND: at msrp_idle after it his MSRP side is given up.
    let out = sim.advance(Duration::from_secs(29));
    assert!(!closed(&out, bob_conn));
    let out = sim.advance(Duration::from_secs(2));
    assert!(
        closed(&out, bob_conn),
        "an unanswered SEND must be timed: {out:?}"
    );
}

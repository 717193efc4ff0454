//! The endpoint in virtual time, with hand-written machines standing in for generated ones:
//! a recipient-list INVITE is answered 200 with an MSRP answer, each invitee is invited,
//! the originator's message is relayed over MSRP to each accepted invitee, the outcome is
//! reported, every leg ends with BYE and the session count returns to 0. Also: errors
//! answered before any machine, retransmissions absorbed, CANCEL, OPTIONS.

use bytes::Bytes;
use im_runtime::endpoint::{Application, DynMachine, Endpoint, EndpointConfig};
use im_runtime::machine::{
    Action, ActionKind, Env, Event, Facts, GroupDirectory, HeaderValue, Invitation, InviteeRouter,
    Machine, Method, NoGroups, OfferItem, Origin, Recipients, Reply, Route, SdpAnswerItem,
    Selection, Uri,
};
use im_runtime::proto::msrp;
use im_runtime::proto::sip::Message;
use im_runtime::transport::{ConnId, Core, Input, Output, StreamKind};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The fan-out selection the specs write (`without originator distinct`).
const INVITEES: Selection = Selection {
    without_originator: true,
    distinct: true,
};

const O: Origin = Origin {
    procedure: "test",
    clause: "0",
    rule: "r",
};

fn act(kind: ActionKind) -> Action {
    Action { origin: O, kind }
}

/// Stands in for the generated 5.2.1.1 dispatcher.
struct Dispatcher {
    done: bool,
    /// The fan-out's selection, as a spec's `invite each` words would give it.
    sel: Selection,
    /// What the INVITEs carry, as a spec's `invite each … { … }` would give it; `None`: what
    /// the specs write ([`oma_invitation`]).
    inv: Option<Invitation>,
}

/// What `specs/7.9.1.4_adhoc_group.imspec` writes for the invitee INVITE.
fn oma_invitation(originator: &Uri) -> Invitation {
    Invitation {
        headers: vec![
            (
                "Contact".into(),
                HeaderValue::FocusContactWith(";+g.oma.sip-im;+g.oma.sip-im.large-message".into()),
            ),
            (
                "Referred-By".into(),
                HeaderValue::Text(format!("<{}>", originator.raw).into()),
            ),
            (
                "Allow".into(),
                HeaderValue::Text("INVITE, ACK, BYE, CANCEL, OPTIONS".into()),
            ),
        ],
        history: true,
        offer: vec![
            OfferItem::OwnAcceptWrappedTypes,
            OfferItem::OwnMaxSize,
            OfferItem::Fixed("setup".into(), Some("actpass".into())),
            OfferItem::Fixed("connection".into(), Some("new".into())),
            OfferItem::Fixed("sendonly".into(), None),
        ],
    }
}

impl Machine for Dispatcher {
    const PROCEDURE: &'static str = "dispatcher";
    const CLAUSE: &'static str = "5.2.1.1";
    fn handle(&mut self, _: Instant, ev: &Event, f: &Facts, _: &Env<'_>) -> Vec<Action> {
        match ev {
            Event::InitialRequest(Method::Invite) if !f.recipients.is_empty() => vec![
                act(ActionKind::Respond(Reply {
                    status: 200,
                    reason: "OK".into(),
                    headers: vec![(
                        "Contact".into(),
                        im_runtime::machine::HeaderValue::FocusContact,
                    )],
                    warning: None,
                    sdp_answer: vec![
                        SdpAnswerItem::OwnPath,
                        SdpAnswerItem::MediaFromOffer,
                        SdpAnswerItem::AcceptTypesIntersection,
                        SdpAnswerItem::MirrorDirection,
                        SdpAnswerItem::ComplementSetup,
                        SdpAnswerItem::Else(488, "Not Acceptable Here".into()),
                    ],
                })),
                act(ActionKind::InviteEach(
                    Recipients::RecipientList,
                    self.sel,
                    self.inv
                        .clone()
                        .unwrap_or_else(|| oma_invitation(&f.originator)),
                )),
            ],
            Event::InitialRequest(_) => vec![act(ActionKind::Respond(Reply {
                status: 404,
                reason: "Not Found".into(),
                headers: vec![],
                warning: Some("no such group".into()),
                sdp_answer: vec![],
            }))],
            // The answer to the originator's BYE is the machine's (a spec's `respond`).
            Event::InDialogRequest(Method::Bye) => vec![act(ActionKind::Respond(Reply {
                status: 202,
                reason: "Accepted".into(),
                headers: vec![],
                warning: None,
                sdp_answer: vec![],
            }))],
            // Another in-dialog request (a spec's `on request other`): INFO is answered by
            // the machine; nothing answers OPTIONS here.
            Event::InDialogRequest(Method::Info) => vec![act(ActionKind::Respond(Reply {
                status: 488,
                reason: "Not Acceptable Here".into(),
                headers: vec![],
                warning: None,
                sdp_answer: vec![],
            }))],
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

#[derive(Default)]
struct LegMachine {
    state: &'static str,
}

impl Machine for LegMachine {
    const PROCEDURE: &'static str = "invitee_leg";
    const CLAUSE: &'static str = "7.9.1.4";
    fn handle(&mut self, _: Instant, ev: &Event, _: &Facts, _: &Env<'_>) -> Vec<Action> {
        match ev {
            Event::Response(s) if (200..300).contains(s) => {
                self.state = "connected";
                vec![act(ActionKind::Deliver)]
            }
            Event::Response(s) if *s >= 300 => {
                self.state = "failed";
                vec![]
            }
            // The copy's outcome is the machine's to record (7.9.1.4 `copy_delivered`).
            Event::Msrp(im_runtime::machine::MsrpEvent::Delivered) => {
                self.state = "delivered";
                vec![
                    act(ActionKind::Outcome(
                        im_runtime::machine::DeliveryOutcome::Delivered,
                    )),
                    act(ActionKind::Bye),
                ]
            }
            _ => vec![],
        }
    }
    fn state_name(&self) -> &'static str {
        self.state
    }
    fn is_final(&self) -> bool {
        self.state == "failed" || self.state == "delivered"
    }
}

struct Direct;
impl InviteeRouter for Direct {
    fn route(&self, u: &Uri) -> Option<Route> {
        // The originator's own address, for a selection that invites it too.
        if u.host == "example.com" {
            return ALICE.parse().ok().map(Route::Direct);
        }
        let port = u.port.unwrap_or(5060);
        format!("{}:{port}", u.host).parse().ok().map(Route::Direct)
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
        Some(Box::new(LegMachine { state: "inviting" }))
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

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const ALICE: &str = "127.0.0.1:5070";
const BOB: &str = "127.0.0.2:5060";
const CAROL: &str = "127.0.0.3:5060";

struct Sim {
    ep: Endpoint<App>,
    now: Instant,
    sent: Vec<Output>,
}

#[allow(clippy::disallowed_methods)]
fn base() -> Instant {
    // The one clock read of these tests: every later instant is derived from it.
    Instant::now()
}

impl Sim {
    fn new() -> Sim {
        Sim::with(INVITEES)
    }
    fn with(sel: Selection) -> Sim {
        Sim::inviting(sel, None)
    }
    fn inviting(sel: Selection, inv: Option<Invitation>) -> Sim {
        let cfg = EndpointConfig::new(addr("127.0.0.1:5060"), addr("127.0.0.1:2855"));
        Sim {
            ep: Endpoint::new(cfg, App { sel, inv }),
            now: base(),
            sent: Vec::new(),
        }
    }
    fn input(&mut self, i: Input) -> Vec<Output> {
        self.ep.handle_input(self.now, i);
        let mut out = Vec::new();
        while let Some(o) = self.ep.poll_output() {
            out.push(o);
        }
        self.sent.extend(out.clone());
        out
    }
    fn datagram(&mut self, from: &str, text: &str) -> Vec<Output> {
        self.input(Input::Datagram {
            local: addr("127.0.0.1:5060"),
            from: addr(from),
            data: Bytes::from(text.replace('\n', "\r\n")),
        })
    }
    fn advance(&mut self, d: Duration) -> Vec<Output> {
        let until = self.now + d;
        let mut out = Vec::new();
        while let Some(t) = self.ep.poll_timeout() {
            if t > until {
                break;
            }
            self.now = self.now.max(t);
            out.extend(self.input(Input::Timeout));
        }
        self.now = until;
        out
    }
}

fn sip_to(out: &[Output], to: &str) -> Vec<Message> {
    out.iter()
        .filter_map(|o| match o {
            Output::Datagram { to: t, data, .. } if *t == addr(to) => {
                Message::parse(data.clone()).ok()
            }
            _ => None,
        })
        .collect()
}

fn status_of(m: &Message) -> u16 {
    m.status().map(u16::from).unwrap_or(0)
}

fn invite(branch: &str, body_list: bool) -> String {
    let sdp = "v=0\no=alice 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=message 7000 TCP/MSRP *\na=path:msrp://127.0.0.1:7000/alicesess;tcp\na=accept-types:message/cpim text/plain\na=setup:active\na=sendonly\n";
    let list = "<?xml version=\"1.0\"?>\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\" xmlns:cp=\"urn:ietf:params:xml:ns:copyControl\"><list><entry uri=\"sip:bob@127.0.0.2\" cp:copyControl=\"to\"/><entry uri=\"sip:carol@127.0.0.3\" cp:copyControl=\"bcc\"/><entry uri=\"sip:alice@example.com\"/><entry uri=\"sip:bob@127.0.0.2\"/></list></resource-lists>\n";
    let (ct, body) = if body_list {
        (
            "multipart/mixed;boundary=b1".to_string(),
            format!(
                "--b1\nContent-Type: application/sdp\n\n{sdp}--b1\nContent-Type: application/resource-lists+xml\nContent-Disposition: recipient-list\n\n{list}--b1--\n"
            ),
        )
    } else {
        ("application/sdp".to_string(), sdp.to_string())
    };
    let body = body.replace('\n', "\r\n");
    format!(
        "INVITE sip:conference-factory@example.com SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch={branch};rport\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: <sip:conference-factory@example.com>\nCall-ID: call-1@alice\nCSeq: 1 INVITE\nContact: <sip:alice@{ALICE}>\nContent-Type: {ct}\nContent-Length: {}\n\n",
        body.len()
    ) + &body.replace("\r\n", "\n")
}

fn response_to(req: &Message, status: u16, to_tag: &str, body: Option<&str>) -> String {
    let via = req.header(im_runtime::proto::sip::HeaderName::Via).unwrap();
    let from = req
        .header(im_runtime::proto::sip::HeaderName::From)
        .unwrap();
    let to = req.header(im_runtime::proto::sip::HeaderName::To).unwrap();
    let cid = req.call_id().unwrap();
    let cseq = req
        .header(im_runtime::proto::sip::HeaderName::CSeq)
        .unwrap();
    let (ct, b) = match body {
        Some(b) => (
            "Content-Type: application/sdp\n".to_string(),
            b.replace('\n', "\r\n"),
        ),
        None => (String::new(), String::new()),
    };
    format!(
        "SIP/2.0 {status} X\nVia: {via}\nFrom: {from}\nTo: {to};tag={to_tag}\nCall-ID: {cid}\nCSeq: {cseq}\nContact: <sip:invitee@{BOB}>\n{ct}Content-Length: {}\n\n",
        b.len()
    ) + &b.replace("\r\n", "\n")
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
            sip_to(&out, to)
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
    let bob = sip_to(&out, BOB);
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
    let inv = &sip_to(&out, BOB)[0];
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
    let to_alice = sip_to(&out, ALICE);
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
    let inv_bob = sip_to(&out, BOB);
    let inv_carol = sip_to(&out, CAROL);
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
    assert!(sip_to(&again, BOB).is_empty());
    assert_eq!(sim.ep.stats().invites_sent, 2);

    // ACK from alice.
    let ack = format!(
        "ACK sip:conf@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKack1\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: {}\nCall-ID: call-1@alice\nCSeq: 1 ACK\nContent-Length: 0\n\n",
        ok.header_str("To").unwrap()
    );
    sim.datagram(ALICE, &ack);

    // Alice connects (she offered setup:active) and sends the message.
    let alice_conn = ConnId(ConnId::ACCEPTED | 1);
    sim.input(Input::StreamOpened {
        conn: alice_conn,
        kind: StreamKind::Msrp,
        local: addr("127.0.0.1:2855"),
        peer: addr("127.0.0.1:7000"),
    });
    let our_path = answer
        .lines()
        .find_map(|l| l.strip_prefix("a=path:"))
        .unwrap()
        .trim()
        .to_string();
    let send = format!(
        "MSRP t1 SEND\r\nTo-Path: {our_path}\r\nFrom-Path: msrp://127.0.0.1:7000/alicesess;tcp\r\nMessage-ID: m1\r\nByte-Range: 1-5/5\r\nSuccess-Report: yes\r\nContent-Type: text/plain\r\n\r\nhello\r\n-------t1$\r\n"
    );
    let out = sim.input(Input::StreamData {
        conn: alice_conn,
        data: Bytes::from(send),
    });
    let resp = out.iter().find_map(|o| match o {
        Output::StreamSend { conn, data } if *conn == alice_conn => {
            Some(String::from_utf8_lossy(data).to_string())
        }
        _ => None,
    });
    assert!(resp.unwrap().starts_with("MSRP t1 200"));

    // Bob answers with setup:passive: the server connects and delivers.
    let bob_sdp = "v=0\no=bob 1 1 IN IP4 127.0.0.2\ns=-\nc=IN IP4 127.0.0.2\nt=0 0\nm=message 7002 TCP/MSRP *\na=path:msrp://127.0.0.2:7002/bobsess;tcp\na=accept-types:text/plain\na=setup:passive\na=recvonly\n";
    sim.datagram(BOB, &response_to(&inv_bob[0], 180, "b1", None));
    let out = sim.datagram(BOB, &response_to(&inv_bob[0], 200, "b1", Some(bob_sdp)));
    let acks = sip_to(&out, BOB);
    assert!(acks.iter().any(|m| m.method() == Some(&Method::Ack)));
    let connect = out.iter().find_map(|o| match o {
        Output::Connect { conn, to, .. } => Some((*conn, *to)),
        _ => None,
    });
    let (bob_conn, to) = connect.expect("server connects to bob's MSRP path");
    assert_eq!(to, addr("127.0.0.2:7002"));
    // Carol declines.
    sim.datagram(CAROL, &response_to(&inv_carol[0], 486, "c1", None));

    let out = sim.input(Input::StreamOpened {
        conn: bob_conn,
        kind: StreamKind::Msrp,
        local: addr("127.0.0.1:40000"),
        peer: to,
    });
    let chunk = out
        .iter()
        .find_map(|o| match o {
            Output::StreamSend { conn, data } if *conn == bob_conn => Some(data.clone()),
            _ => None,
        })
        .expect("the message goes to bob");
    let frame = msrp::decode_one(&chunk).unwrap();
    assert_eq!(frame.data(), b"hello");
    assert_eq!(frame.to_path[0].session_id.as_deref(), Some("bobsess"));
    let ok = msrp::response_to(&frame, msrp::StatusCode(200), None).unwrap();
    let out = sim.input(Input::StreamData {
        conn: bob_conn,
        data: Bytes::from(msrp::encode_to_vec(&ok).unwrap()),
    });
    // Carol failed, Bob got it: legs settled → report to alice and BYE to everybody.
    let report = out.iter().find_map(|o| match o {
        Output::StreamSend { conn, data } if *conn == alice_conn => {
            Some(String::from_utf8_lossy(data).to_string())
        }
        _ => None,
    });
    let report = report.unwrap();
    assert!(report.contains("REPORT"), "{report}");
    // Carol failed: the machine's failure status, not a runtime default.
    assert!(
        report.contains("Status: 000 480 Temporarily Unavailable\r\n"),
        "{report}"
    );
    let byes: Vec<Message> = sip_to(&sim.sent, BOB)
        .into_iter()
        .chain(sip_to(&sim.sent, ALICE))
        .filter(|m| m.method() == Some(&Method::Bye))
        .collect();
    assert_eq!(byes.len(), 2, "BYE to bob and to alice");
    for bye in &byes {
        let dest = if bye.request_uri_str().unwrap().contains("invitee") {
            BOB
        } else {
            ALICE
        };
        sim.datagram(
            dest,
            &response_to(bye, 200, "x", None).replace(";tag=x", ""),
        );
    }
    sim.advance(Duration::from_secs(40));
    assert_eq!(sim.ep.live_sessions(), 0);
    assert_eq!(sim.ep.stats().delivered, 1);
}

#[test]
fn requests_are_answered_before_any_machine_when_they_must_be() {
    let mut sim = Sim::new();
    // Unknown method → 501.
    let out = sim.datagram(ALICE, &format!("FOO sip:x@example.com SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKf1\nMax-Forwards: 70\nFrom: <sip:a@example.com>;tag=1\nTo: <sip:x@example.com>\nCall-ID: f1\nCSeq: 1 FOO\nContent-Length: 0\n\n"));
    assert_eq!(
        sip_to(&out, ALICE)
            .iter()
            .map(status_of)
            .collect::<Vec<_>>(),
        vec![501]
    );
    // Require with an unknown option tag → 420 with Unsupported.
    let out = sim.datagram(ALICE, &format!("OPTIONS sip:x@example.com SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKf2\nMax-Forwards: 70\nFrom: <sip:a@example.com>;tag=1\nTo: <sip:x@example.com>\nCall-ID: f2\nCSeq: 1 OPTIONS\nRequire: nosuchext\nContent-Length: 0\n\n"));
    let r = sip_to(&out, ALICE);
    assert_eq!(status_of(&r[0]), 420);
    assert!(
        r[0].header_str("Unsupported")
            .unwrap()
            .contains("nosuchext")
    );
    // OPTIONS → 200 with Allow.
    let out = sim.datagram(ALICE, &format!("OPTIONS sip:x@example.com SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKf3\nMax-Forwards: 70\nFrom: <sip:a@example.com>;tag=1\nTo: <sip:x@example.com>\nCall-ID: f3\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n"));
    let r = sip_to(&out, ALICE);
    assert_eq!(status_of(&r[0]), 200);
    assert!(r[0].header_str("Allow").unwrap().contains("INVITE"));
    // Garbage with enough headers → 400 with a Warning.
    let out = sim.datagram(ALICE, &format!("INVITE sip:x@example.com SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKf4\nMax-Forwards: 70\nFrom: <sip:a@example.com>;tag=1\nTo: <sip:x@example.com>\nCall-ID: f4\nCSeq: 1 INVITE\nContent-Length: -5\n\n"));
    let r = sip_to(&out, ALICE);
    assert_eq!(status_of(&r[0]), 400);
    assert!(r[0].header_str("Warning").is_some());
    // No recipient list → the dispatcher answers 404; no session is left behind.
    let out = sim.datagram(ALICE, &invite("z9hG4bKnolist", false));
    assert_eq!(
        sip_to(&out, ALICE)
            .iter()
            .map(status_of)
            .collect::<Vec<_>>(),
        vec![100, 404]
    );
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
    let out = sim.datagram(ALICE, &format!("CANCEL sip:x@example.com SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKnone\nMax-Forwards: 70\nFrom: <sip:a@example.com>;tag=1\nTo: <sip:x@example.com>\nCall-ID: c9\nCSeq: 1 CANCEL\nContent-Length: 0\n\n"));
    assert_eq!(
        sip_to(&out, ALICE)
            .iter()
            .map(status_of)
            .collect::<Vec<_>>(),
        vec![481]
    );
}

#[test]
fn the_originators_bye_is_answered_by_the_machine() {
    let mut sim = Sim::new();
    let out = sim.datagram(ALICE, &invite("z9hG4bKinv9", true));
    let ok = sip_to(&out, ALICE).pop().unwrap();
    assert_eq!(status_of(&ok), 200);
    let to = ok.header_str("To").unwrap().to_string();
    let ack = format!(
        "ACK sip:conf@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKack9\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: {to}\nCall-ID: call-1@alice\nCSeq: 1 ACK\nContent-Length: 0\n\n"
    );
    sim.datagram(ALICE, &ack);
    let bye = format!(
        "BYE sip:conf@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKbye9\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: {to}\nCall-ID: call-1@alice\nCSeq: 2 BYE\nContent-Length: 0\n\n"
    );
    let out = sim.datagram(ALICE, &bye);
    let answers: Vec<u16> = sip_to(&out, ALICE).iter().map(status_of).collect();
    assert_eq!(
        answers,
        vec![202],
        "the machine's status, not a runtime 200"
    );
}

#[test]
fn other_in_dialog_requests_are_answered_by_the_machine() {
    let mut sim = Sim::new();
    let out = sim.datagram(ALICE, &invite("z9hG4bKinv8", true));
    let ok = sip_to(&out, ALICE).pop().unwrap();
    assert_eq!(status_of(&ok), 200);
    let to = ok.header_str("To").unwrap().to_string();
    let req = |method: &str, branch: &str, cseq: u32| {
        format!(
            "{method} sip:conf@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch={branch}\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: {to}\nCall-ID: call-1@alice\nCSeq: {cseq} {method}\nContent-Length: 0\n\n"
        )
    };
    sim.datagram(ALICE, &req("ACK", "z9hG4bKack8", 1));
    let answer = |sim: &mut Sim, text: String| -> Vec<u16> {
        sip_to(&sim.datagram(ALICE, &text), ALICE)
            .iter()
            .map(status_of)
            .collect()
    };
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
    let out = sim.datagram(ALICE, &invite("z9hG4bKinv1", true));
    let ok = sip_to(&out, ALICE).pop().unwrap();
    assert_eq!(status_of(&ok), 200);
    let answer = String::from_utf8_lossy(ok.body_bytes()).to_string();
    let inv_bob = sip_to(&out, BOB);
    let ack = format!(
        "ACK sip:conf@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKack1\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: {}\nCall-ID: call-1@alice\nCSeq: 1 ACK\nContent-Length: 0\n\n",
        ok.header_str("To").unwrap()
    );
    sim.datagram(ALICE, &ack);
    let alice_conn = ConnId(ConnId::ACCEPTED | 1);
    sim.input(Input::StreamOpened {
        conn: alice_conn,
        kind: StreamKind::Msrp,
        local: addr("127.0.0.1:2855"),
        peer: addr("127.0.0.1:7000"),
    });
    let our_path = answer
        .lines()
        .find_map(|l| l.strip_prefix("a=path:"))
        .unwrap()
        .trim()
        .to_string();
    // Alice binds with an empty SEND (RFC 4975 §5.4) and keeps her message for later.
    let bind = format!(
        "MSRP t0 SEND\r\nTo-Path: {our_path}\r\nFrom-Path: msrp://127.0.0.1:7000/alicesess;tcp\r\nMessage-ID: m0\r\nByte-Range: 1-0/0\r\n-------t0$\r\n"
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

    let bob_sdp = "v=0\no=bob 1 1 IN IP4 127.0.0.2\ns=-\nc=IN IP4 127.0.0.2\nt=0 0\nm=message 7002 TCP/MSRP *\na=path:msrp://127.0.0.2:7002/bobsess;tcp\na=accept-types:text/plain\na=setup:passive\na=recvonly\n";
    let out = sim.datagram(BOB, &response_to(&inv_bob[0], 200, "b1", Some(bob_sdp)));
    let (bob_conn, to) = out
        .iter()
        .find_map(|o| match o {
            Output::Connect { conn, to, .. } => Some((*conn, *to)),
            _ => None,
        })
        .expect("server connects to bob's MSRP path");
    sim.input(Input::StreamOpened {
        conn: bob_conn,
        kind: StreamKind::Msrp,
        local: addr("127.0.0.1:40000"),
        peer: to,
    });

    // Longer than msrp_idle (30 s) before the message: bob's connection stays.
    let out = sim.advance(Duration::from_secs(35));
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Close { conn } if *conn == bob_conn)),
        "bob's connection was closed while waiting for the message: {out:?}"
    );
    let send = format!(
        "MSRP t1 SEND\r\nTo-Path: {our_path}\r\nFrom-Path: msrp://127.0.0.1:7000/alicesess;tcp\r\nMessage-ID: m1\r\nByte-Range: 1-5/5\r\nContent-Type: text/plain\r\n\r\nhello\r\n-------t1$\r\n"
    );
    let out = sim.input(Input::StreamData {
        conn: alice_conn,
        data: Bytes::from(send),
    });
    let chunk = out
        .iter()
        .find_map(|o| match o {
            Output::StreamSend { conn, data } if *conn == bob_conn => Some(data.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the late message goes to bob: {out:?}"));
    assert_eq!(msrp::decode_one(&chunk).unwrap().data(), b"hello");

    // Bob never answers the SEND: at msrp_idle after it his MSRP side is given up.
    let out = sim.advance(Duration::from_secs(29));
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Close { conn } if *conn == bob_conn))
    );
    let out = sim.advance(Duration::from_secs(2));
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Close { conn } if *conn == bob_conn)),
        "an unanswered SEND must be timed: {out:?}"
    );
}

//! Stand-in machines and message builders shared by the endpoint tests (virtual time and
//! real sockets). The machines are hand-written in the shape the generator emits; knobs pick
//! the behaviour a test needs (answer late, cancel on ringing, cancel on a spec timer …).
#![allow(dead_code)]

pub(crate) mod harness;
pub(crate) mod io;

use im_runtime::endpoint::{
    Application, ContactBinding, DynMachine, RegisterChange, RegisterError,
};
use im_runtime::machine::{
    Action, ActionKind, DeliveryOutcome, Env, Event, Facts, GroupDirectory, HeaderValue,
    InviteeRouter, LegEvent, Machine, Method, MsrpEvent, NoGroups, Origin, Recipients, Reply,
    Route, SdpAnswerItem, Timer, Uri,
};
use im_runtime::proto::sip::{HeaderName, Message};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The fan-out selection the specs write (`without originator distinct`).
pub(crate) const INVITEES: im_runtime::machine::Selection = im_runtime::machine::Selection {
    without_originator: true,
    distinct: true,
};

const O: Origin = Origin {
    procedure: "standin",
    clause: "0",
    rule: "r",
};

/// `kind`, as a stand-in machine's rule emits it.
pub(crate) fn act(kind: ActionKind) -> Action {
    Action { origin: O, kind }
}

/// What `specs/7.9.1.4_adhoc_group.imspec` writes for the invitee INVITE (`invite each … {
/// … }`), so the stand-in's INVITEs look like the real server's.
pub(crate) fn oma_invitation(originator: &Uri) -> im_runtime::machine::Invitation {
    use im_runtime::machine::{Invitation, OfferItem};
    Invitation {
        headers: vec![
            (
                "Contact".into(),
                HeaderValue::FocusContactWith(";+g.oma.sip-im;+g.oma.sip-im.large-message".into()),
            ),
            (
                "Referred-By".into(),
                HeaderValue::Text(format!("<{}>", originator.raw()).into()),
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

/// What the stand-in machines do.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Knobs {
    /// The dispatcher answers only when its spec timer 1 fires (after [`ANSWER_DELAY`]),
    /// so the originator can CANCEL first.
    pub(crate) answer_late: bool,
    /// A leg CANCELs its INVITE on 180.
    pub(crate) cancel_on_ringing: bool,
    /// A leg starts spec timer 2 ([`LEG_TIMEOUT`]) on its first provisional response and
    /// CANCELs when it fires.
    pub(crate) leg_timer_cancel: bool,
    /// The originator's BYE is answered without `cancel legs`/`bye legs`, as a spec that
    /// leaves the legs up would.
    pub(crate) keep_legs_on_bye: bool,
    /// A leg whose 2xx crossed its own CANCEL keeps the dialog (a spec without
    /// 7.9.1.4 `answered_after_cancel`); by default it BYEs it, as that rule does.
    pub(crate) keep_crossed_2xx: bool,
    /// The dispatcher sends 180 before its 200 (both from the machine).
    pub(crate) ring_first: bool,
    /// The dispatcher answers nothing to a request whose recipient list could not be read
    /// (`list.*`), as a spec with no rule for it would.
    pub(crate) silent_on_bad_list: bool,
    /// MESSAGE is served too, by [`Exploder`] (RFC 5365 page mode).
    pub(crate) page_mode: bool,
}

/// How long the late dispatcher waits before answering.
pub(crate) const ANSWER_DELAY: Duration = Duration::from_secs(5);
/// The leg's own give-up timer.
pub(crate) const LEG_TIMEOUT: Duration = Duration::from_secs(10);

/// 200 to an invitee's BYE, as the spec's leg rules answer it.
fn bye_ok() -> Action {
    act(ActionKind::Respond(Reply {
        status: 200,
        reason: "OK".into(),
        headers: vec![],
        warning: None,
        sdp_answer: vec![],
    }))
}

/// The dispatcher's 200 with an SDP answer built from the offer (488 when none can be).
pub(crate) fn ok_with_answer() -> Action {
    act(ActionKind::Respond(Reply {
        status: 200,
        reason: "OK".into(),
        headers: vec![("Contact".into(), HeaderValue::FocusContact)],
        warning: None,
        sdp_answer: vec![
            SdpAnswerItem::OwnPath,
            SdpAnswerItem::MediaFromOffer,
            SdpAnswerItem::AcceptTypesIntersection,
            SdpAnswerItem::MirrorDirection,
            SdpAnswerItem::ComplementSetup,
            SdpAnswerItem::Else(488, "Not Acceptable Here".into()),
        ],
    }))
}

/// Stands in for the generated 5.2.1.1 dispatcher.
pub(crate) struct Dispatcher {
    knobs: Knobs,
    done: bool,
    /// The originator's MSRP message has come (6.1.3.3.2 holds it for the legs).
    held: bool,
}

impl Dispatcher {
    fn end_all(&mut self) -> Vec<Action> {
        self.done = true;
        vec![
            act(ActionKind::Bye),
            act(ActionKind::CancelLegs),
            act(ActionKind::ByeLegs),
        ]
    }
}

impl Machine for Dispatcher {
    const PROCEDURE: &'static str = "dispatcher";
    const CLAUSE: &'static str = "5.2.1.1";
    fn handle(&mut self, _: Instant, ev: &Event, f: &Facts, _: &Env<'_>) -> Vec<Action> {
        match ev {
            // Stands in for 5.2.1.1 `sender_impersonates`: a Digest user speaks only for
            // itself (the runtime reports who authenticated, the spec decides).
            Event::InitialRequest(_)
                if !f.authenticated_user.is_empty() && f.authenticated_user != f.from.user() =>
            {
                vec![act(ActionKind::Respond(Reply {
                    status: 403,
                    reason: "Forbidden".into(),
                    headers: vec![],
                    warning: None,
                    sdp_answer: vec![],
                }))]
            }
            Event::InitialRequest(_)
                if self.knobs.silent_on_bad_list && !f.list.error.is_empty() =>
            {
                Vec::new()
            }
            Event::InitialRequest(Method::Invite) if !f.recipients.is_empty() => {
                if self.knobs.answer_late {
                    vec![act(ActionKind::StartTimer(Timer::Spec(1), ANSWER_DELAY))]
                } else {
                    let mut out = Vec::new();
                    if self.knobs.ring_first {
                        out.push(act(ActionKind::Respond(Reply {
                            status: 180,
                            reason: "Ringing".into(),
                            headers: vec![],
                            warning: None,
                            sdp_answer: vec![],
                        })));
                    }
                    out.push(ok_with_answer());
                    out.push(act(ActionKind::InviteEach(
                        Recipients::RecipientList,
                        INVITEES,
                        oma_invitation(&f.originator),
                    )));
                    out
                }
            }
            Event::Timer(Timer::Spec(1)) => vec![
                ok_with_answer(),
                act(ActionKind::InviteEach(
                    Recipients::RecipientList,
                    INVITEES,
                    oma_invitation(&f.originator),
                )),
            ],
            Event::InitialRequest(_) => {
                self.done = true;
                vec![act(ActionKind::Respond(Reply {
                    status: 404,
                    reason: "Not Found".into(),
                    headers: vec![],
                    warning: Some("no such group".into()),
                    sdp_answer: vec![],
                }))]
            }
            // As the spec's `originator_bye` (6.1.3.3.2): the machine answers the
            // originator's BYE and ends the legs.
            Event::InDialogRequest(Method::Bye) => {
                let mut out = vec![act(ActionKind::Respond(Reply {
                    status: 200,
                    reason: "OK".into(),
                    headers: vec![],
                    warning: None,
                    sdp_answer: vec![],
                }))];
                if !self.knobs.keep_legs_on_bye {
                    out.push(act(ActionKind::CancelLegs));
                    out.push(act(ActionKind::ByeLegs));
                }
                out
            }
            // The originator CANCELled the pending INVITE: the machine answers it 487 (RFC
            // 3261 §9.2) and ends the legs.
            Event::InDialogRequest(Method::Cancel) => {
                self.done = true;
                vec![
                    act(ActionKind::Respond(Reply {
                        status: 487,
                        reason: "Request Terminated".into(),
                        headers: vec![],
                        warning: None,
                        sdp_answer: vec![],
                    })),
                    act(ActionKind::CancelLegs),
                ]
            }
            Event::Msrp(MsrpEvent::MessageReceived) => {
                self.held = true;
                vec![]
            }
            // As 6.1.3.3.2 `closed_before_message` and `no_ack`: the originator's side is
            // over with nothing to deliver, so the machine ends it and the legs.
            Event::Msrp(MsrpEvent::Closed) if !self.held => self.end_all(),
            Event::Timer(Timer::H) => self.end_all(),
            // 6.1.3.3.2 `lifetime_over`: the session's lifetime ends it, the legs with it.
            Event::Timer(Timer::Lifetime) => self.end_all(),
            Event::LegsSettled => {
                self.done = true;
                vec![
                    act(ActionKind::Report(
                        im_runtime::machine::ReportOutcome::Success,
                    )),
                    act(ActionKind::Bye),
                    act(ActionKind::ByeLegs),
                ]
            }
            _ => vec![],
        }
    }
    fn state_name(&self) -> &'static str {
        if self.done { "done" } else { "active" }
    }
    fn is_final(&self) -> bool {
        self.done
    }
}

/// Stands in for the generated invitee-leg machine of 7.9.1.4.
pub(crate) struct LegMachine {
    knobs: Knobs,
    state: &'static str,
    timer_started: bool,
}

impl Machine for LegMachine {
    const PROCEDURE: &'static str = "invitee_leg";
    const CLAUSE: &'static str = "7.9.1.4";
    fn handle(&mut self, _: Instant, ev: &Event, _: &Facts, _: &Env<'_>) -> Vec<Action> {
        match ev {
            Event::Response(s) if (100..200).contains(s) => {
                let mut out = Vec::new();
                if *s == 180 && self.knobs.cancel_on_ringing {
                    self.state = "cancelling";
                    out.push(act(ActionKind::Cancel));
                }
                if self.knobs.leg_timer_cancel && !self.timer_started {
                    self.timer_started = true;
                    out.push(act(ActionKind::StartTimer(Timer::Spec(2), LEG_TIMEOUT)));
                }
                out
            }
            Event::Timer(Timer::Spec(2)) => {
                self.state = "cancelling";
                vec![act(ActionKind::Cancel)]
            }
            // The session's `cancel legs` sent this leg's CANCEL (7.9.1.4
            // `session_cancelled`): wait as after its own.
            Event::Leg(LegEvent::Cancelled) => {
                self.state = "cancelling";
                vec![]
            }
            // In `failed`: a 2xx to an INVITE that ended without its CANCEL (its flow had
            // closed), as 7.9.1.4 `answered_after_cancel` names both states.
            Event::Response(s)
                if (200..300).contains(s)
                    && (self.state == "cancelling" || self.state == "failed") =>
            {
                if self.knobs.keep_crossed_2xx {
                    self.state = "connected";
                    vec![]
                } else {
                    self.state = "failed";
                    vec![act(ActionKind::Bye)]
                }
            }
            Event::Response(s) if (200..300).contains(s) => {
                self.state = "connected";
                vec![
                    act(ActionKind::StopTimer(Timer::Spec(2))),
                    act(ActionKind::Deliver {
                        success_report: false,
                    }),
                ]
            }
            Event::Response(_) | Event::Timer(Timer::B) => {
                self.state = "failed";
                vec![]
            }
            // The copy's outcome is the machine's to record (7.9.1.4 `copy_delivered`,
            // `copy_refused`, `connection_lost`).
            Event::Msrp(
                m @ (MsrpEvent::Delivered | MsrpEvent::DeliveryFailed(_) | MsrpEvent::Closed),
            ) => {
                self.state = "ended";
                let outcome = match m {
                    MsrpEvent::Delivered => DeliveryOutcome::Delivered,
                    MsrpEvent::Closed => DeliveryOutcome::Failed(Some(408)),
                    _ => DeliveryOutcome::Failed(None),
                };
                vec![act(ActionKind::Outcome(outcome)), act(ActionKind::Bye)]
            }
            // The invitee hung up before its copy was confirmed (7.9.1.4 `invitee_left`): the
            // leg machine answers its BYE.
            Event::InDialogRequest(Method::Bye) if self.state == "connected" => {
                self.state = "ended";
                vec![
                    bye_ok(),
                    act(ActionKind::Outcome(DeliveryOutcome::Failed(Some(481)))),
                ]
            }
            // A BYE once the copy has its outcome (7.9.1.4 `invitee_bye`).
            Event::InDialogRequest(Method::Bye) => vec![bye_ok()],
            _ => vec![],
        }
    }
    fn state_name(&self) -> &'static str {
        self.state
    }
    fn is_final(&self) -> bool {
        self.state == "failed" || self.state == "ended"
    }
}

/// Stands in for `specs/rfc5365_message_exploder.imspec` `explode_list`: 202, then
/// `forward each recipient_list without originator distinct { header Referred-By …
/// history }`; 404 without a list.
pub(crate) struct Exploder {
    done: bool,
}

impl Machine for Exploder {
    const PROCEDURE: &'static str = "exploder";
    const CLAUSE: &'static str = "7.2";
    fn handle(&mut self, _: Instant, ev: &Event, f: &Facts, _: &Env<'_>) -> Vec<Action> {
        let Event::InitialRequest(Method::Message) = ev else {
            return Vec::new();
        };
        self.done = true;
        if f.recipients.is_empty() {
            return vec![act(ActionKind::Respond(Reply {
                status: 404,
                reason: "Not Found".into(),
                headers: vec![],
                warning: None,
                sdp_answer: vec![],
            }))];
        }
        vec![
            act(ActionKind::Respond(Reply {
                status: 202,
                reason: "Accepted".into(),
                headers: vec![],
                warning: None,
                sdp_answer: vec![],
            })),
            act(ActionKind::ForwardEach(
                Recipients::RecipientList,
                INVITEES,
                im_runtime::machine::Invitation {
                    headers: vec![(
                        "Referred-By".into(),
                        HeaderValue::Text(format!("<{}>", f.originator.raw()).into()),
                    )],
                    history: true,
                    offer: vec![],
                },
            )),
        ]
    }
    fn state_name(&self) -> &'static str {
        if self.done { "done" } else { "idle" }
    }
    fn is_final(&self) -> bool {
        self.done
    }
}

/// Routes a URI to its host:port (IP literals only).
pub(crate) struct Direct;
impl InviteeRouter for Direct {
    fn route(&self, u: &Uri) -> Option<Route> {
        let port = u.port().unwrap_or(5060);
        let host = u.host().trim_start_matches('[').trim_end_matches(']');
        let ip: std::net::IpAddr = host.parse().ok()?;
        Some(Route::Direct(SocketAddr::new(ip, port)))
    }
}

/// The application: INVITE goes to the dispatcher, legs to [`LegMachine`].
pub(crate) struct App(pub Knobs);
impl Application for App {
    fn initial(&self, m: &Method) -> Option<Box<dyn DynMachine>> {
        if self.0.page_mode && m == &Method::Message {
            return Some(Box::new(Exploder { done: false }));
        }
        (m == &Method::Invite).then(|| {
            Box::new(Dispatcher {
                knobs: self.0,
                done: false,
                held: false,
            }) as Box<dyn DynMachine>
        })
    }
    fn by_clause(&self, _: &str) -> Option<Box<dyn DynMachine>> {
        None
    }
    fn invitee_leg(&self) -> Option<Box<dyn DynMachine>> {
        Some(Box::new(LegMachine {
            knobs: self.0,
            state: "inviting",
            timer_started: false,
        }))
    }
    fn methods(&self) -> Vec<Method> {
        if self.0.page_mode {
            vec![Method::Invite, Method::Message]
        } else {
            vec![Method::Invite]
        }
    }
    fn directory(&self) -> &dyn GroupDirectory {
        &NoGroups
    }
    fn router(&self) -> &dyn InviteeRouter {
        &Direct
    }
}

/// Routes IP-literal URIs to their address, others to their registered contact. Clones
/// share the table (workers of one server).
#[derive(Clone, Default)]
pub(crate) struct Locations(pub Arc<Mutex<HashMap<String, SocketAddr>>>);

impl InviteeRouter for Locations {
    fn route(&self, u: &Uri) -> Option<Route> {
        if let Some(Route::Direct(a)) = Direct.route(u) {
            return Some(Route::Direct(a));
        }
        let key = format!("{}@{}", u.user(), u.host());
        self.0.lock().unwrap().get(&key).copied().map(Route::Direct)
    }
}

/// The stand-in application with a registrar (bindings in [`Locations`]).
pub(crate) struct RegApp {
    pub inner: App,
    pub locations: Locations,
}

/// Inside `impl Application for X`: the machines, methods and directory of the [`App`] in
/// field `$f` (with `router`, its router too), for an application that adds to the
/// stand-in (a registrar, users …).
macro_rules! machines_of_app {
    ($f:tt, router) => {
        machines_of_app!($f);
        fn router(&self) -> &dyn ::im_runtime::machine::InviteeRouter {
            self.$f.router()
        }
    };
    ($f:tt) => {
        fn initial(
            &self,
            m: &::im_runtime::machine::Method,
        ) -> Option<Box<dyn ::im_runtime::endpoint::DynMachine>> {
            self.$f.initial(m)
        }
        fn by_clause(&self, c: &str) -> Option<Box<dyn ::im_runtime::endpoint::DynMachine>> {
            self.$f.by_clause(c)
        }
        fn invitee_leg(&self) -> Option<Box<dyn ::im_runtime::endpoint::DynMachine>> {
            self.$f.invitee_leg()
        }
        fn methods(&self) -> Vec<::im_runtime::machine::Method> {
            self.$f.methods()
        }
        fn directory(&self) -> &dyn ::im_runtime::machine::GroupDirectory {
            self.$f.directory()
        }
    };
}
// Not every test binary that includes this module has an application of its own.
#[allow(unused_imports)]
pub(crate) use machines_of_app;

impl Application for RegApp {
    machines_of_app!(inner);
    fn router(&self) -> &dyn InviteeRouter {
        &self.locations
    }
    fn offers_registrar(&self) -> bool {
        true
    }
    fn register(
        &mut self,
        _: Instant,
        aor: &Uri,
        change: &RegisterChange,
    ) -> Result<Vec<ContactBinding>, RegisterError> {
        let key = format!("{}@{}", aor.user(), aor.host());
        let mut t = self.locations.0.lock().unwrap();
        let RegisterChange::Update(bs) = change else {
            t.remove(&key);
            return Ok(Vec::new());
        };
        for b in bs {
            if b.expires == 0 {
                t.remove(&key);
            } else {
                t.insert(key.clone(), b.addr);
            }
        }
        Ok(bs.iter().filter(|b| b.expires > 0).cloned().collect())
    }
}

/// Parses an address.
pub(crate) fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// The status code of a response (0 for a request).
pub(crate) fn status_of(m: &Message) -> u16 {
    m.status().map(u16::from).unwrap_or(0)
}

/// Text with `\n` line ends as SIP with CRLF.
pub(crate) fn crlf(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// Alice's SDP offer: pager-mode MSRP, she connects (`setup:active`).
pub(crate) fn alice_sdp(msrp: &str) -> String {
    let ip = addr(msrp).ip();
    let ver = if ip.is_ipv4() { "IP4" } else { "IP6" };
    format!(
        "v=0\no=alice 1 1 IN {ver} {ip}\ns=-\nc=IN {ver} {ip}\nt=0 0\nm=message {} TCP/MSRP *\na=path:msrp://{msrp}/alicesess;tcp\na=accept-types:message/cpim text/plain\na=setup:active\na=sendonly\n",
        addr(msrp).port()
    )
}

/// A recipient-list INVITE from alice at `via_addr` over `transport` to the conference
/// factory, with `recipients` in its list.
pub(crate) fn invite(
    transport: &str,
    via_addr: &str,
    call_id: &str,
    branch: &str,
    recipients: &[&str],
) -> String {
    let sdp = alice_sdp("127.0.0.1:7000");
    let entries: String = recipients
        .iter()
        .map(|r| format!("<entry uri=\"{r}\"/>"))
        .collect();
    let list = format!(
        "<?xml version=\"1.0\"?>\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list>{entries}</list></resource-lists>\n"
    );
    invite_with_body(
        transport,
        via_addr,
        call_id,
        branch,
        "multipart/mixed;boundary=b1",
        &list_body(&sdp, &list),
    )
}

/// A multipart body of alice's SDP offer `sdp` and the recipient list `list`.
pub(crate) fn list_body(sdp: &str, list: &str) -> String {
    format!(
        "--b1\nContent-Type: application/sdp\n\n{sdp}--b1\nContent-Type: application/resource-lists+xml\nContent-Disposition: recipient-list\n\n{list}--b1--\n"
    )
}

/// An INVITE from alice at `via_addr` over `transport` to the conference factory carrying
/// `body` as `content_type`.
pub(crate) fn invite_with_body(
    transport: &str,
    via_addr: &str,
    call_id: &str,
    branch: &str,
    content_type: &str,
    body: &str,
) -> String {
    let body = crlf(body);
    crlf(&format!(
        "INVITE sip:conference-factory@example.com SIP/2.0\nVia: SIP/2.0/{transport} {via_addr};branch={branch};rport\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: <sip:conference-factory@example.com>\nCall-ID: {call_id}\nCSeq: 1 INVITE\nContact: <sip:alice@{via_addr}>\nContent-Type: {content_type}\nContent-Length: {}\n\n",
        body.len()
    )) + &body
}

/// A MESSAGE from alice to the conference factory carrying `text` and a recipient list of
/// `recipients` (RFC 5365), as the load harness's SIPp scenario sends it.
pub(crate) fn list_message(call_id: &str, branch: &str, text: &str, recipients: &[&str]) -> String {
    let entries: String = recipients
        .iter()
        .map(|r| format!("    <entry uri=\"{r}\" cp:copyControl=\"to\"/>\n"))
        .collect();
    let body = crlf(&format!(
        "--imspec-page\nContent-Type: text/plain;charset=UTF-8\n\n{text}\n--imspec-page\nContent-Type: application/resource-lists+xml\nContent-Disposition: recipient-list\n\n<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"\n    xmlns:cp=\"urn:ietf:params:xml:ns:copycontrol\">\n  <list>\n{entries}  </list>\n</resource-lists>\n--imspec-page--\n"
    ));
    crlf(&format!(
        "MESSAGE sip:conference-factory@example.com SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\nFrom: <sip:alice@example.com>;tag=a1\nTo: <sip:conference-factory@example.com>\nCall-ID: {call_id}\nCSeq: 1 MESSAGE\nMax-Forwards: 70\nRequire: recipient-list-message\nContent-Type: multipart/mixed;boundary=\"imspec-page\"\nContent-Length: {}\n\n",
        body.len()
    )) + &body
}

/// A request without body from alice (OPTIONS, BYE …); `extra` lines are added verbatim.
#[allow(clippy::too_many_arguments)]
pub(crate) fn simple_request(
    method: &str,
    transport: &str,
    via_addr: &str,
    call_id: &str,
    branch: &str,
    to: &str,
    cseq: u32,
    extra: &str,
) -> String {
    crlf(&format!(
        "{method} sip:conference-factory@example.com SIP/2.0\nVia: SIP/2.0/{transport} {via_addr};branch={branch}\nMax-Forwards: 70\nFrom: <sip:alice@example.com>;tag=a1\nTo: {to}\nCall-ID: {call_id}\nCSeq: {cseq} {method}\n{extra}Content-Length: 0\n\n"
    ))
}

/// A REGISTER of `user` (`sip:<user>@example.com`) with `vias` (whole header values, top
/// first), `extra` header lines (LF-ended) and Contact `contact` (the whole header value),
/// for 600 s.
pub(crate) fn register_request(
    user: &str,
    call_id: &str,
    vias: &[String],
    extra: &str,
    contact: &str,
) -> String {
    let vias: String = vias.iter().map(|v| format!("Via: {v}\n")).collect();
    crlf(&format!(
        "REGISTER sip:example.com SIP/2.0\n{vias}Max-Forwards: 70\nFrom: <sip:{user}@example.com>;tag=r1\nTo: <sip:{user}@example.com>\nCall-ID: {call_id}\nCSeq: 1 REGISTER\n{extra}Contact: {contact}\nExpires: 600\nContent-Length: 0\n\n"
    ))
}

/// An OPTIONS from alice at `via_addr` over `transport` to the conference factory.
pub(crate) fn options(transport: &str, via_addr: &str, call_id: &str, branch: &str) -> String {
    let to = "<sip:conference-factory@example.com>";
    simple_request("OPTIONS", transport, via_addr, call_id, branch, to, 1, "")
}

/// The ACK alice sends for a 2xx (or any final response) `resp` to her INVITE.
pub(crate) fn ack_for(resp: &Message, transport: &str, via_addr: &str, branch: &str) -> String {
    simple_request(
        "ACK",
        transport,
        via_addr,
        resp.call_id().unwrap_or(""),
        branch,
        resp.header(HeaderName::To).unwrap_or(""),
        1,
        "",
    )
}

/// An invitee's response to `req` (one of the server's requests).
pub(crate) fn response_to(req: &Message, status: u16, to_tag: &str, body: Option<&str>) -> String {
    response_from(req, status, to_tag, "sip:invitee@127.0.0.2:5060", body)
}

/// A response to `req` (one of the server's requests) from a user agent whose Contact is
/// `contact` (a URI), with `to_tag` added to the To unless it has one, and an SDP `body`.
pub(crate) fn response_from(
    req: &Message,
    status: u16,
    to_tag: &str,
    contact: &str,
    body: Option<&str>,
) -> String {
    let h = |n| req.header(n).unwrap_or("");
    let to = h(HeaderName::To);
    let to = if to_tag.is_empty() || to.contains("tag=") {
        to.to_string()
    } else {
        format!("{to};tag={to_tag}")
    };
    let (ct, b) = match body {
        Some(b) => ("Content-Type: application/sdp\n".to_string(), crlf(b)),
        None => (String::new(), String::new()),
    };
    crlf(&format!(
        "SIP/2.0 {status} X\nVia: {}\nFrom: {}\nTo: {to}\nCall-ID: {}\nCSeq: {}\nContact: <{contact}>\n{ct}Content-Length: {}\n\n",
        h(HeaderName::Via),
        h(HeaderName::From),
        h(HeaderName::CallId),
        h(HeaderName::CSeq),
        b.len()
    )) + &b
}

/// An invitee's SDP answer: it listens (`setup:passive`) at `msrp`.
pub(crate) fn invitee_sdp(msrp: &str, sess: &str) -> String {
    let ip = addr(msrp).ip();
    let ver = if ip.is_ipv4() { "IP4" } else { "IP6" };
    format!(
        "v=0\no=bob 1 1 IN {ver} {ip}\ns=-\nc=IN {ver} {ip}\nt=0 0\nm=message {} TCP/MSRP *\na=path:msrp://{msrp}/{sess};tcp\na=accept-types:text/plain\na=setup:passive\na=recvonly\n",
        addr(msrp).port()
    )
}

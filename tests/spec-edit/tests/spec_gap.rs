//! Spec gaps in the log: when no rule decides what a transaction or a session still needs,
//! the runtime does it and logs one error line `spec gap: …` that names the trigger as a
//! spec writes it and the procedures that heard it (`clause/procedure@state`), so an operator
//! goes from the line to where the rule is missing. The sans-IO endpoint runs the machines of
//! `specs/` as written (no such line) and of copies with one rule taken out (`gaps.toml`):
//! no `respond` to the originator's BYE, no `shutdown` handler, no `copy unroutable` handler,
//! no rule deciding a new conference-state subscription, an unsubscribe rule that decides
//! nothing, an invitee's refusal that records no `outcome` for its copy.
//! A rule that decided and whose action failed (the application refusing a `store copy`) is
//! no gap: the log says which rule it was, and the rules decide again.

use im_runtime::endpoint::{Application, DynMachine, Endpoint, EndpointConfig, OfflineCopy};
use im_runtime::machine::{GroupDirectory, GroupPolicy, InviteeRouter, Method, Route, Uri};
use im_runtime::proto::sip::Message;
use im_runtime::transport::{ConnId, Core, Input, Output, StreamKind};
use imspec_spec_edit::{
    declined_without_outcome, exploder, gap_no_copy_unroutable, gap_no_originator_bye,
    gap_no_shutdown, no_subscription_decision, original, refused_after_inviting,
    refused_after_inviting_legs_left_up, store_always_when_unroutable, store_when_unroutable,
    unsubscribe_undecided,
};
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing_subscriber::fmt::MakeWriter;

const ALICE: &str = "127.0.0.1:5070";
const SERVER: &str = "127.0.0.1:5060";
/// Where every invitee of a group session is reached (it never answers here).
const INVITEE: &str = "127.0.0.2:5060";
const GROUP: &str = "sip:friends@example.com";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

fn uri(s: &str) -> Uri {
    im_runtime::proto::sip::Uri::parse(s)
        .expect("a URI")
        .to_view()
}

/// The log lines written while `f` runs on this thread (INFO and above, no colours).
fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log buffer").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }
    let buf = Buf::default();
    let sub = tracing_subscriber::fmt()
        .with_writer(buf.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let r = tracing::subscriber::with_default(sub, f);
    let text = String::from_utf8_lossy(&buf.0.lock().expect("log buffer")).into_owned();
    (r, text)
}

/// The `spec gap` lines of `log`.
fn gaps(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("spec gap")).collect()
}

/// One spec's generated functions, a group of alice and bob (for the exploder), invitees
/// reached at [`INVITEE`] unless `unroutable`, and copies kept in memory unless the store
/// refuses.
struct App {
    initial: fn(&Method) -> Option<Box<dyn DynMachine>>,
    by_clause: fn(&str) -> Option<Box<dyn DynMachine>>,
    invitee_leg: fn() -> Option<Box<dyn DynMachine>>,
    methods: fn() -> Vec<Method>,
    unroutable: bool,
    refuse_store: bool,
    /// Serves SUBSCRIBE to the sessions' focus URIs (conference state).
    conference: bool,
    kept: RefCell<Vec<OfflineCopy>>,
    stores: Cell<usize>,
}

macro_rules! app {
    ($spec:ident) => {
        App {
            initial: $spec::initial,
            by_clause: $spec::by_clause,
            invitee_leg: $spec::invitee_leg,
            methods: $spec::methods,
            unroutable: false,
            refuse_store: false,
            conference: false,
            kept: RefCell::default(),
            stores: Cell::new(0),
        }
    };
}

impl GroupDirectory for App {
    fn owns(&self, group: &Uri) -> bool {
        group.same_identity(&uri(GROUP))
    }
    fn members(&self, group: &Uri) -> Option<Vec<Uri>> {
        self.owns(group)
            .then(|| vec![uri("sip:alice@example.com"), uri("sip:bob@example.com")])
    }
    fn policy(&self, group: &Uri, user: &Uri) -> Option<GroupPolicy> {
        let is_member = self.members(group)?.iter().any(|m| m.same_identity(user));
        Some(GroupPolicy {
            is_member,
            may_initiate: is_member,
            max_participants: None,
            invites_members: true,
            may_join: is_member,
            allows_anonymity: false,
        })
    }
}

impl InviteeRouter for App {
    fn route(&self, _: &Uri) -> Option<Route> {
        (!self.unroutable)
            .then(|| INVITEE.parse().ok().map(Route::Direct))
            .flatten()
    }
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
        self
    }
    fn router(&self) -> &dyn InviteeRouter {
        self
    }
    fn offers_conference_state(&self) -> bool {
        self.conference
    }
    fn offline_storable(&self, _recipient: &Uri) -> bool {
        true
    }
    fn offline_store(&self, _now: Instant, copy: OfflineCopy) -> Result<(), String> {
        self.stores.set(self.stores.get() + 1);
        if self.refuse_store {
            return Err("the store is full".into());
        }
        self.kept.borrow_mut().push(copy);
        Ok(())
    }
}

fn send(ep: &mut Endpoint<App>, now: Instant, text: &str) -> Vec<Message> {
    ep.handle_input(
        now,
        Input::Datagram {
            local: addr(SERVER),
            from: addr(ALICE),
            data: text.to_string().into_bytes().into(),
        },
    );
    let mut out = Vec::new();
    while let Some(o) = ep.poll_output() {
        if let Output::Datagram { to, data, .. } = o
            && to == addr(ALICE)
            && let Ok(m) = Message::parse(data)
        {
            out.push(m);
        }
    }
    out
}

/// The status of the one final response to a `method` among `msgs`.
fn final_status(msgs: &[Message], method: &str) -> u16 {
    let finals: Vec<u16> = msgs
        .iter()
        .filter(|m| !m.is_request() && m.cseq().is_some_and(|c| c.method.as_str() == method))
        .filter_map(|m| m.status().map(u16::from))
        .filter(|s| *s >= 200)
        .collect();
    assert_eq!(
        finals.len(),
        1,
        "one final answer to the {method}: {msgs:?}"
    );
    finals[0]
}

const SDP: &str = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                   m=message 7000 TCP/MSRP *\r\na=path:msrp://127.0.0.1:7000/alicesess;tcp\r\n\
                   a=accept-types:message/cpim text/plain\r\na=setup:active\r\na=sendonly\r\n";

/// A pager-mode INVITE to the conference factory listing bob.
fn invite() -> String {
    let list = "<?xml version=\"1.0\"?>\r\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list><entry uri=\"sip:bob@example.com\"/></list></resource-lists>\r\n";
    let body = format!(
        "--b1\r\nContent-Type: application/sdp\r\n\r\n{SDP}--b1\r\nContent-Type: application/resource-lists+xml\r\nContent-Disposition: recipient-list\r\n\r\n{list}--b1--\r\n"
    );
    format!(
        "INVITE sip:conference-factory@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKgap1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:conference-factory@example.com>\r\nCall-ID: gap@alice\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{ALICE}>\r\nContent-Type: multipart/mixed;boundary=b1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The endpoint with alice's group session answered 200; its instant and the 200.
#[allow(clippy::disallowed_methods)] // the one instant the endpoint needs
fn session(app: App) -> (Endpoint<App>, Instant, Message) {
    let mut ep = Endpoint::new(
        EndpointConfig::new(addr(SERVER), addr("127.0.0.1:2855")),
        app,
    );
    let now = Instant::now();
    let out = send(&mut ep, now, &invite());
    let ok = out
        .into_iter()
        .find(|m| m.status().map(u16::from) == Some(200))
        .expect("the session is answered 200");
    (ep, now, ok)
}

/// Alice's BYE in the dialog the 200 `ok` made; the status it gets.
fn originator_bye(app: App) -> u16 {
    let (mut ep, now, ok) = session(app);
    let to = ok.header_str("To").unwrap_or_default().to_string();
    let target = ok
        .header_str("Contact")
        .unwrap_or_default()
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or_default()
        .to_string();
    let bye = format!(
        "BYE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKgapbye;rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: {to}\r\nCall-ID: gap@alice\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let out = send(&mut ep, now, &bye);
    final_status(&out, "BYE")
}

#[test]
fn the_originators_bye_without_a_respond_is_logged_as_a_spec_gap() {
    let (status, log) = logged(|| originator_bye(app!(original)));
    assert_eq!(status, 200);
    assert!(gaps(&log).is_empty(), "{log}");

    let (status, log) = logged(|| originator_bye(app!(gap_no_originator_bye)));
    assert_eq!(
        status, 500,
        "the transaction still needs its final response"
    );
    let lines = gaps(&log);
    assert_eq!(lines.len(), 1, "{log}");
    let line = lines[0];
    assert!(
        line.contains("spec gap: no spec rule answered the originator's BYE; 500 sent"),
        "{line}"
    );
    assert!(line.contains("trigger=\"request BYE\""), "{line}");
    assert!(line.contains("6.1.3.3.2/pager_mode_session@"), "{line}");
    assert!(line.contains("call_id=gap@alice"), "{line}");
}

/// Alice's session, then the server shuts down: the log.
fn shutdown(app: App) -> String {
    logged(|| {
        let (mut ep, now, _) = session(app);
        ep.handle_input(now, Input::Shutdown);
        while ep.poll_output().is_some() {}
    })
    .1
}

#[test]
fn a_shutdown_no_rule_handles_is_logged_as_a_spec_gap() {
    let log = shutdown(app!(original));
    assert!(gaps(&log).is_empty(), "{log}");
    assert!(
        log.contains("6.1.3.3.2/server_shutdown"),
        "the rule acted: {log}"
    );

    let log = shutdown(app!(gap_no_shutdown));
    let lines = gaps(&log);
    assert_eq!(lines.len(), 1, "{log}");
    let line = lines[0];
    assert!(
        line.contains("spec gap: no spec rule ended the session"),
        "{line}"
    );
    assert!(
        line.contains("the runtime CANCELs and BYEs what is left"),
        "{line}"
    );
    assert!(line.contains("trigger=\"shutdown\""), "{line}");
    assert!(line.contains("6.1.3.3.2/pager_mode_session@"), "{line}");
}

/// Alice messages the group; bob has no route (`app.unroutable`). The log, and how many
/// times the spec's `store copy` reached the application.
#[allow(clippy::disallowed_methods)] // the one instant the endpoint needs
fn message_to_unroutable_bob(mut app: App) -> (String, usize) {
    app.unroutable = true;
    logged(|| {
        let mut ep = Endpoint::new(
            EndpointConfig::new(addr(SERVER), addr("127.0.0.1:2855")),
            app,
        );
        let body = "hello\r\n";
        let message = format!(
            "MESSAGE {GROUP} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKgapm;rport\r\nMax-Forwards: 40\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <{GROUP}>\r\nCall-ID: gapm@alice\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let out = send(&mut ep, Instant::now(), &message);
        assert_eq!(final_status(&out, "MESSAGE"), 202);
        ep.app().stores.get()
    })
    .swap()
}

trait Swap<A, B> {
    fn swap(self) -> (B, A);
}
impl<A, B> Swap<A, B> for (A, B) {
    fn swap(self) -> (B, A) {
        (self.1, self.0)
    }
}

#[test]
fn a_copy_no_rule_fails_is_logged_as_a_spec_gap() {
    let (log, _) = message_to_unroutable_bob(app!(exploder));
    assert!(gaps(&log).is_empty(), "{log}");

    let (log, _) = message_to_unroutable_bob(app!(gap_no_copy_unroutable));
    let lines = gaps(&log);
    assert_eq!(lines.len(), 1, "{log}");
    let line = lines[0];
    assert!(
        line.contains("spec gap: no spec rule said what a copy that was not sent fails with"),
        "{line}"
    );
    assert!(line.contains("trigger=\"copy unroutable\""), "{line}");
    assert!(line.contains("ext-dr/delivery_reports@"), "{line}");
}

#[test]
fn a_store_the_application_refuses_is_no_spec_gap() {
    // `store_when_unroutable` keeps a copy with no route (`store copy`, ext-dr.10) and fails
    // one that cannot be kept with 503. The application refuses to keep it: the rules decide
    // again with the copy not storable.
    let mut app = app!(store_when_unroutable);
    app.refuse_store = true;
    let (log, stores) = message_to_unroutable_bob(app);
    assert!(gaps(&log).is_empty(), "{log}");
    assert_eq!(stores, 1, "{log}");
    assert!(
        log.contains("recipient sip:bob@example.com: Failed(503)"),
        "{log}"
    );

    // Kept when the application can.
    let (log, stores) = message_to_unroutable_bob(app!(store_when_unroutable));
    assert!(gaps(&log).is_empty(), "{log}");
    assert_eq!(stores, 1);
    assert!(!log.contains("Failed("), "{log}");
}

#[test]
fn a_rule_that_stores_whatever_the_application_says_is_named_when_the_store_fails() {
    let mut app = app!(store_always_when_unroutable);
    app.refuse_store = true;
    let (log, stores) = message_to_unroutable_bob(app);
    assert!(gaps(&log).is_empty(), "{log}");
    assert_eq!(stores, 2, "tried again with the copy not storable: {log}");
    let warned: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("could not keep the copy the rule stored"))
        .collect();
    assert_eq!(warned.len(), 1, "{log}");
    assert!(
        warned[0].contains("rule=ext-dr.10/keep_unroutable"),
        "{}",
        warned[0]
    );
    // bob is a user of this domain with no registration: the runtime's 480.
    assert!(
        log.contains("recipient sip:bob@example.com: Failed(480)"),
        "{log}"
    );
}

/// Everything the endpoint sends, with its target.
fn drain(ep: &mut Endpoint<App>) -> Vec<(SocketAddr, Message)> {
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

/// Alice's INVITE is refused 486 after bob was invited; bob rings; alice never ACKs the 486.
/// The requests the endpoint sends bob once Timer H of the INVITE server transaction has
/// fired (64·T1), and the log.
#[allow(clippy::disallowed_methods)] // the one instant the endpoint needs
fn unacked_refusal(app: App) -> (Vec<Method>, String) {
    logged(|| {
        let mut cfg = EndpointConfig::new(addr(SERVER), addr("127.0.0.1:2855"));
        // No ring timeout of the leg's own before Timer H (both are 32 s by default).
        cfg.spec.invite_timeout = Duration::from_secs(600);
        let mut ep = Endpoint::new(cfg, app);
        let now = Instant::now();
        ep.handle_input(
            now,
            Input::Datagram {
                local: addr(SERVER),
                from: addr(ALICE),
                data: invite().into_bytes().into(),
            },
        );
        let out = drain(&mut ep);
        let refused: Vec<u16> = out
            .iter()
            .filter(|(a, m)| *a == addr(ALICE) && !m.is_request())
            .filter_map(|(_, m)| m.status().map(u16::from))
            .collect();
        assert!(refused.contains(&486), "{out:?}");
        let to_bob = out
            .iter()
            .find(|(a, m)| *a == addr(INVITEE) && m.method() == Some(&Method::Invite))
            .map(|(_, m)| m.clone())
            .expect("bob is invited before the refusal");
        let h = |n: &str| to_bob.header_str(n).unwrap_or_default().to_string();
        let ringing = format!(
            "SIP/2.0 180 Ringing\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=bob1\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:bob@{INVITEE}>\r\nContent-Length: 0\r\n\r\n",
            h("Via"),
            h("From"),
            h("To"),
            h("Call-ID"),
            h("CSeq")
        );
        ep.handle_input(
            now,
            Input::Datagram {
                local: addr(SERVER),
                from: addr(INVITEE),
                data: ringing.into_bytes().into(),
            },
        );
        drain(&mut ep);
        let mut sent = Vec::new();
        let end = now + Duration::from_secs(40);
        while let Some(t) = ep.poll_timeout().filter(|t| *t <= end) {
            ep.handle_input(t, Input::Timeout);
            sent.extend(
                drain(&mut ep)
                    .into_iter()
                    .filter(|(a, m)| *a == addr(INVITEE) && m.is_request())
                    .filter_map(|(_, m)| m.method().cloned()),
            );
        }
        sent
    })
}

#[test]
fn an_unacked_refusal_ends_the_legs_as_the_timer_h_rule_says() {
    // 6.1.3.3.2 `no_ack` CANCELs the legs.
    let (sent, log) = unacked_refusal(app!(refused_after_inviting));
    assert!(sent.contains(&Method::Cancel), "{sent:?}\n{log}");
    assert!(log.contains("6.1.3.3.2/no_ack"), "{log}");
    assert!(gaps(&log).is_empty(), "{log}");
    // The edited `no_ack` leaves them up: the runtime does not CANCEL them on its own.
    let (sent, log) = unacked_refusal(app!(refused_after_inviting_legs_left_up));
    assert!(log.contains("6.1.3.3.2/no_ack"), "{log}");
    assert!(!sent.contains(&Method::Cancel), "{sent:?}\n{log}");
    assert!(gaps(&log).is_empty(), "{log}");
}

/// The focus URI of the session the 200 `ok` answered (its Contact).
fn focus(ok: &Message) -> String {
    ok.header_str("Contact")
        .unwrap_or_default()
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Alice's SUBSCRIBE to `focus` in dialog `call` (`to_tag`: ours, once it exists) for
/// `expires` seconds: its final answer, and the NOTIFYs sent with it (each answered 200).
fn subscribe(
    ep: &mut Endpoint<App>,
    now: Instant,
    focus: &str,
    to_tag: Option<&str>,
    cseq: u32,
    expires: u32,
) -> (Message, Vec<Message>) {
    let tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let text = format!(
        "SUBSCRIBE {focus} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKgapsub{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=sub1\r\nTo: <{focus}>{tag}\r\nCall-ID: gapsub@alice\r\nCSeq: {cseq} SUBSCRIBE\r\nEvent: conference\r\nAccept: application/conference-info+xml\r\nExpires: {expires}\r\nContact: <sip:alice@{ALICE}>\r\nContent-Length: 0\r\n\r\n"
    );
    let out = send(ep, now, &text);
    let status = final_status(&out, "SUBSCRIBE");
    let answer = out
        .iter()
        .find(|m| !m.is_request() && m.status().map(u16::from) == Some(status))
        .cloned()
        .expect("the final answer");
    let notifies: Vec<Message> = out.into_iter().filter(Message::is_request).collect();
    for n in &notifies {
        let h = |name: &str| n.header_str(name).unwrap_or_default().to_string();
        let ok = format!(
            "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
            h("Via"),
            h("From"),
            h("To"),
            h("Call-ID"),
            h("CSeq")
        );
        send(ep, now, &ok);
    }
    (answer, notifies)
}

/// Alice's session, then her SUBSCRIBE to its focus: the answer's status and Warning, and
/// the log.
fn new_subscription(mut app: App) -> ((u16, String), String) {
    app.conference = true;
    logged(|| {
        let (mut ep, now, ok) = session(app);
        let (answer, _) = subscribe(&mut ep, now, &focus(&ok), None, 1, 600);
        (
            answer.status().map(u16::from).unwrap_or(0),
            answer.header_str("Warning").unwrap_or_default().to_string(),
        )
    })
}

#[test]
fn a_subscription_no_rule_decides_is_refused_and_logged_as_a_spec_gap() {
    let ((status, _), log) = new_subscription(app!(original));
    assert_eq!(status, 200, "ext-dr.4 grants the originator's: {log}");
    assert!(gaps(&log).is_empty(), "{log}");

    let ((status, warning), log) = new_subscription(app!(no_subscription_decision));
    assert_eq!(status, 403, "nothing granted that no rule grants: {log}");
    assert!(
        warning.contains("no rule of the spec accepts this subscription"),
        "{warning}"
    );
    let lines = gaps(&log);
    assert_eq!(lines.len(), 1, "{log}");
    let line = lines[0];
    assert!(
        line.contains("spec gap: no spec rule decided a new subscription; 403 sent"),
        "{line}"
    );
    assert!(line.contains("trigger=\"request SUBSCRIBE\""), "{line}");
    assert!(line.contains("ext-dr/delivery_reports@"), "{line}");
}

/// Alice's session, her subscription granted, then her unsubscribe (Expires: 0) in its
/// dialog: the unsubscribe's status, the last NOTIFY's Subscription-State, and the log of
/// the unsubscribe alone.
fn unsubscribe(mut app: App) -> (u16, String, String) {
    app.conference = true;
    let (mut ep, now, ok) = session(app);
    let focus = focus(&ok);
    let (granted, n) = subscribe(&mut ep, now, &focus, None, 1, 600);
    assert_eq!(granted.status().map(u16::from), Some(200), "{granted:?}");
    assert_eq!(n.len(), 1, "the full state: {n:?}");
    let tag = granted
        .to()
        .and_then(|t| t.tag())
        .expect("a To tag")
        .to_string();
    let ((status, state), log) = logged(|| {
        let (answer, n) = subscribe(&mut ep, now, &focus, Some(&tag), 2, 0);
        assert_eq!(n.len(), 1, "one last NOTIFY: {n:?}");
        (
            answer.status().map(u16::from).unwrap_or(0),
            n[0].header_str("Subscription-State")
                .unwrap_or_default()
                .to_string(),
        )
    });
    (status, state, log)
}

#[test]
fn an_unsubscribe_no_rule_decides_ends_the_subscription_and_is_logged_as_a_spec_gap() {
    let (status, state, log) = unsubscribe(app!(original));
    assert_eq!(status, 200, "{log}");
    assert_eq!(state, "terminated;reason=timeout");
    assert!(gaps(&log).is_empty(), "{log}");
    assert!(
        log.contains("ext-dr.13/unsubscribes"),
        "the rule acted: {log}"
    );

    // `unsubscribes` decides nothing: the subscriber may always end its own subscription
    // (RFC 6665 §4.2.1.2), so it ends as asked, and the missing decision is logged.
    let (status, state, log) = unsubscribe(app!(unsubscribe_undecided));
    assert_eq!(status, 200, "{log}");
    assert_eq!(state, "terminated;reason=timeout");
    let lines = gaps(&log);
    assert_eq!(lines.len(), 1, "{log}");
    let line = lines[0];
    assert!(
        line.contains(
            "spec gap: no spec rule decided an unsubscribe; 200 sent, subscription ended"
        ),
        "{line}"
    );
    assert!(line.contains("trigger=\"request SUBSCRIBE\""), "{line}");
    assert!(line.contains("ext-dr/delivery_reports@"), "{line}");
}

/// Alice's session; her ACK, and her message over MSRP (held for the legs); then bob, who
/// was invited, refuses with 486. The log.
#[allow(clippy::disallowed_methods)] // the one instant the endpoint needs
fn declined_after_the_message(app: App) -> String {
    logged(|| {
        let mut ep = Endpoint::new(
            EndpointConfig::new(addr(SERVER), addr("127.0.0.1:2855")),
            app,
        );
        let now = Instant::now();
        ep.handle_input(
            now,
            Input::Datagram {
                local: addr(SERVER),
                from: addr(ALICE),
                data: invite().into_bytes().into(),
            },
        );
        let out = drain(&mut ep);
        let ok = out
            .iter()
            .find(|(a, m)| *a == addr(ALICE) && m.status().map(u16::from) == Some(200))
            .map(|(_, m)| m.clone())
            .expect("the session is answered 200");
        let to_bob = out
            .iter()
            .find(|(a, m)| *a == addr(INVITEE) && m.method() == Some(&Method::Invite))
            .map(|(_, m)| m.clone())
            .expect("bob is invited");
        let ack = format!(
            "ACK {} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKgapack;rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: {}\r\nCall-ID: gap@alice\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
            focus(&ok),
            ok.header_str("To").unwrap_or_default()
        );
        send(&mut ep, now, &ack);

        // Alice connects to the MSRP path of the answer and sends her message.
        let answer = String::from_utf8_lossy(ok.body_bytes()).into_owned();
        let our_path = answer
            .lines()
            .find_map(|l| l.strip_prefix("a=path:"))
            .expect("the answer has a path")
            .trim()
            .to_owned();
        let conn = ConnId(ConnId::ACCEPTED | 1);
        ep.handle_input(
            now,
            Input::StreamOpened {
                conn,
                kind: StreamKind::Msrp,
                local: addr("127.0.0.1:2855"),
                peer: addr("127.0.0.1:7000"),
            },
        );
        let text = "hello";
        let send_msrp = format!(
            "MSRP t1 SEND\r\nTo-Path: {our_path}\r\nFrom-Path: msrp://127.0.0.1:7000/alicesess;tcp\r\nMessage-ID: m1\r\nByte-Range: 1-{n}/{n}\r\nContent-Type: text/plain\r\n\r\n{text}\r\n-------t1$\r\n",
            n = text.len()
        );
        ep.handle_input(
            now,
            Input::StreamData {
                conn,
                data: send_msrp.into_bytes().into(),
            },
        );
        drain(&mut ep);

        let h = |n: &str| to_bob.header_str(n).unwrap_or_default().to_string();
        let busy = format!(
            "SIP/2.0 486 Busy Here\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=bob1\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
            h("Via"),
            h("From"),
            h("To"),
            h("Call-ID"),
            h("CSeq")
        );
        ep.handle_input(
            now,
            Input::Datagram {
                local: addr(SERVER),
                from: addr(INVITEE),
                data: busy.into_bytes().into(),
            },
        );
        drain(&mut ep);
    })
    .1
}

#[test]
fn a_failed_leg_with_no_outcome_is_logged_as_a_spec_gap() {
    // 7.9.1.4 `declined` records the copy's outcome: no gap.
    let log = declined_after_the_message(app!(original));
    assert!(log.contains("7.9.1.4/declined"), "the rule acted: {log}");
    assert!(
        log.contains("recipient sip:bob@example.com: not reached (486)"),
        "{log}"
    );
    assert!(gaps(&log).is_empty(), "{log}");

    // The edited `declined` fails the leg and records nothing: the copy still fails with
    // bob's 486, and the missing `outcome` is logged against bob's leg machine.
    let log = declined_after_the_message(app!(declined_without_outcome));
    let lines = gaps(&log);
    assert_eq!(lines.len(), 1, "{log}");
    let line = lines[0];
    assert!(
        line.contains(
            "spec gap: no spec rule recorded the outcome of a failed leg; its copy fails with 486"
        ),
        "{line}"
    );
    assert!(line.contains("trigger=\"response 486\""), "{line}");
    assert!(line.contains("7.9.1.4/invitee_leg@failed"), "{line}");
}

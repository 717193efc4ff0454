//! The cost of one request through the whole sans-IO endpoint: `Endpoint::handle_input` with
//! the datagram, then draining every `Output`. Measured:
//!
//! * `group_invite/{hand,generated}/N`: a pager-mode INVITE to the conference factory whose
//!   recipient list names N invitees (plus the sender, who is dropped). One request runs
//!   parse → facts → machines → 100 Trying + 200 OK with the SDP answer → N invitee INVITEs.
//!   `hand` runs the stand-in machines of `tests/endpoint_sim.rs` (the baseline: the least a
//!   machine can do), `generated` the machines that `im_macros::imspec!` generates from
//!   `specs/page_mode_group_invite.imspec` (what `im-server` runs).
//! * `options`: OPTIONS answered 200 with Allow, the cheapest request (no machine runs).
//! * `options_live_tsx/K`: the same OPTIONS on an endpoint already holding K server
//!   transactions (each OPTIONS leaves one for Timer J, 32 s over UDP, so a server taking
//!   R requests/s holds about 32·R), and the step includes `poll_timeout`, which the tokio
//!   driver calls after every input. This shows how the per-request cost grows with load.
//!
//! * `group_session_live/K`: a whole group session with 3 invitees (INVITE in, 100 and 200
//!   out, ACK, the 3 invitee INVITEs answered 200 and ACKed, the server's MSRP connection to
//!   each invitee, the originator's MSRP connection and its SEND, the message relayed to the
//!   3 invitees and their 200s, the spec's REPORT, BYE on all 4 legs and their 200s) on an
//!   endpoint already holding K other live group sessions (each set up as far as its invitees'
//!   MSRP connections, before timing). Only the endpoint's time is summed (`handle_input`
//!   plus draining outputs), not the simulated peers'. Flat across K means no input pays
//!   for the live state.
//! * `options_live_sessions/K`: OPTIONS (and `poll_timeout`) with K live group sessions.
//!
//! Each iteration gets a fresh endpoint (built outside the timed part, and dropped outside it
//! too), so no session, transaction or timer is left over from the one before. Before timing,
//! every case is run once and its outputs are checked, so the bench cannot measure a request
//! that was rejected.
//!
//! Run: `cargo bench -p im-runtime --bench endpoint`

// The bench builds its expected outputs with `expect`: a wrong output is a broken bench.
#![allow(clippy::expect_used)]

use bytes::Bytes;
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use im_runtime::endpoint::{Application, DynMachine, Endpoint, EndpointConfig};
use im_runtime::machine::{
    Action, ActionKind, Env, Event, Facts, GroupDirectory, HeaderValue, InviteeRouter, Machine,
    Method, NoGroups, Origin, Recipients, Reply, Route, SdpAnswerItem, Uri,
};
use im_runtime::proto::sip::Message;
use im_runtime::transport::{Core, Input, Output};
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

/// The fan-out selection the specs write (`without originator distinct`).
const INVITEES: im_runtime::machine::Selection = im_runtime::machine::Selection {
    without_originator: true,
    distinct: true,
};

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/group.rs"]
mod group;

/// The machines `im-server` runs, generated from the spec at build time.
#[allow(unreachable_pub)]
mod generated {
    im_macros::imspec!("specs/page_mode_group_invite.imspec");
}

// ---- the hand-written baseline (the stand-ins of tests/endpoint_sim.rs) ----------------------

const O: Origin = Origin {
    procedure: "bench",
    clause: "0",
    rule: "r",
};

fn act(kind: ActionKind) -> Action {
    Action { origin: O, kind }
}

/// Stands in for the generated 5.2.1.1 dispatcher: 200 with the answer, then invite each.
/// It checks nothing the spec checks (list size, offer shape, accept-types): it is the floor.
#[derive(Default)]
struct Dispatcher {
    done: bool,
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
                })),
                act(ActionKind::InviteEach(
                    Recipients::RecipientList,
                    INVITEES,
                    common::oma_invitation(&f.originator),
                )),
            ],
            Event::InitialRequest(_) => vec![act(ActionKind::Respond(Reply {
                status: 404,
                reason: "Not Found".into(),
                headers: vec![],
                warning: None,
                sdp_answer: vec![],
            }))],
            Event::LegsSettled => {
                self.done = true;
                vec![
                    act(ActionKind::Report(
                        im_runtime::machine::ReportOutcome::Success,
                    )),
                    act(ActionKind::Bye),
                ]
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

/// Stands in for the generated invitee leg.
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
                vec![act(ActionKind::Deliver {
                    success_report: false,
                })]
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

/// Invitees are IP literals: route straight to them.
struct Direct;
impl InviteeRouter for Direct {
    fn route(&self, u: &Uri) -> Option<Route> {
        let port = u.port().unwrap_or(5060);
        format!("{}:{port}", u.host())
            .parse()
            .ok()
            .map(Route::Direct)
    }
}

/// Which machines the endpoint runs.
#[derive(Clone, Copy, Debug)]
enum Machines {
    Hand,
    Generated,
}

impl Machines {
    fn name(self) -> &'static str {
        match self {
            Machines::Hand => "hand",
            Machines::Generated => "generated",
        }
    }
}

struct App(Machines);

impl Application for App {
    fn initial(&self, m: &Method) -> Option<Box<dyn DynMachine>> {
        match self.0 {
            Machines::Hand => (m == &Method::Invite)
                .then(|| Box::new(Dispatcher::default()) as Box<dyn DynMachine>),
            Machines::Generated => generated::initial(m),
        }
    }
    fn by_clause(&self, clause: &str) -> Option<Box<dyn DynMachine>> {
        match self.0 {
            Machines::Hand => None,
            Machines::Generated => generated::by_clause(clause),
        }
    }
    fn invitee_leg(&self) -> Option<Box<dyn DynMachine>> {
        match self.0 {
            Machines::Hand => Some(Box::new(LegMachine { state: "inviting" })),
            Machines::Generated => generated::invitee_leg(),
        }
    }
    fn methods(&self) -> Vec<Method> {
        match self.0 {
            Machines::Hand => vec![Method::Invite],
            Machines::Generated => generated::methods(),
        }
    }
    fn directory(&self) -> &dyn GroupDirectory {
        &NoGroups
    }
    fn router(&self) -> &dyn InviteeRouter {
        &Direct
    }
}

// ---- requests ---------------------------------------------------------------------------------

const LOCAL: &str = "127.0.0.1:5060";
const ALICE: &str = "127.0.0.1:5070";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("a literal socket address")
}

/// A pager-mode INVITE to the conference factory with a recipient list naming `n` invitees
/// (`sip:uK@127.0.0.2:(6000+K)`) and the sender herself (whom the server drops).
fn group_invite(n: usize) -> Bytes {
    let sdp = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=message 7000 TCP/MSRP *\r\na=path:msrp://127.0.0.1:7000/alicesess;tcp\r\na=accept-types:message/cpim text/plain\r\na=setup:active\r\na=sendonly\r\n";
    let mut list = String::from(
        "<?xml version=\"1.0\"?>\r\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\" xmlns:cp=\"urn:ietf:params:xml:ns:copyControl\"><list>",
    );
    for k in 0..n {
        list.push_str(&format!(
            "<entry uri=\"sip:u{k}@127.0.0.2:{}\" cp:copyControl=\"to\"/>",
            6000 + k
        ));
    }
    list.push_str("<entry uri=\"sip:alice@example.com\"/></list></resource-lists>\r\n");
    let body = format!(
        "--b1\r\nContent-Type: application/sdp\r\n\r\n{sdp}--b1\r\nContent-Type: application/resource-lists+xml\r\nContent-Disposition: recipient-list\r\n\r\n{list}--b1--\r\n"
    );
    Bytes::from(format!(
        "INVITE sip:conference-factory@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKbench1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:conference-factory@example.com>\r\nCall-ID: bench-1@alice\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{ALICE}>\r\nContent-Type: multipart/mixed;boundary=b1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

fn options() -> Bytes {
    options_n(1)
}

/// OPTIONS number `k`: its own branch and Call-ID, so each one is a new transaction.
fn options_n(k: usize) -> Bytes {
    Bytes::from(format!(
        "OPTIONS sip:conference-factory@example.com SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bKopt{k};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=o1\r\nTo: <sip:conference-factory@example.com>\r\nCall-ID: bench-opt-{k}@alice\r\nCSeq: 1 OPTIONS\r\nAccept: application/sdp\r\nContent-Length: 0\r\n\r\n"
    ))
}

// ---- the measured step ------------------------------------------------------------------------

fn endpoint(machines: Machines) -> Endpoint<App> {
    let mut cfg = EndpointConfig::new(addr(LOCAL), addr("127.0.0.1:2855"));
    // Invitees are named by IP address: allow recipients outside config.domain, so the
    // generated machines take the accepting path they always measured.
    cfg.spec.allow_external_recipients = true;
    Endpoint::new(cfg, App(machines))
}

#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    // A bench takes one reading of the clock for the endpoint's `now`; the core never does.
    Instant::now()
}

/// One request in, every output out: what the transport layer does per datagram.
fn handle(ep: &mut Endpoint<App>, now: Instant, data: Bytes, out: &mut Vec<Output>) {
    ep.handle_input(
        now,
        Input::Datagram {
            local: addr(LOCAL),
            from: addr(ALICE),
            data,
        },
    );
    while let Some(o) = ep.poll_output() {
        out.push(o);
    }
}

/// Runs the request once and checks that it did what the bench claims to measure.
fn check_group_invite(machines: Machines, n: usize) {
    let mut ep = endpoint(machines);
    let mut out = Vec::new();
    handle(&mut ep, now(), group_invite(n), &mut out);
    let msgs: Vec<(SocketAddr, Message)> = out
        .iter()
        .filter_map(|o| match o {
            Output::Datagram { to, data, .. } => {
                Message::parse(data.clone()).ok().map(|m| (*to, m))
            }
            _ => None,
        })
        .collect();
    let statuses: Vec<u16> = msgs
        .iter()
        .filter(|(to, _)| *to == addr(ALICE))
        .filter_map(|(_, m)| m.status().map(u16::from))
        .collect();
    assert_eq!(
        statuses,
        vec![100, 200],
        "{}/{n}: the originator gets 100 and 200",
        machines.name()
    );
    let ok = msgs
        .iter()
        .find(|(_, m)| m.status().map(u16::from) == Some(200))
        .map(|(_, m)| String::from_utf8_lossy(m.body_bytes()).into_owned())
        .expect("a 200");
    assert!(
        ok.contains("a=path:msrp://127.0.0.1:2855/"),
        "{}/{n}: the 200 carries the SDP answer: {ok}",
        machines.name()
    );
    let invites = msgs
        .iter()
        .filter(|(_, m)| m.method() == Some(&Method::Invite))
        .count();
    assert_eq!(
        invites,
        n,
        "{}/{n}: one INVITE per invitee",
        machines.name()
    );
}

fn check_options() {
    let mut ep = endpoint(Machines::Generated);
    let mut out = Vec::new();
    handle(&mut ep, now(), options(), &mut out);
    let statuses: Vec<u16> = out
        .iter()
        .filter_map(|o| match o {
            Output::Datagram { data, .. } => Message::parse(data.clone()).ok(),
            _ => None,
        })
        .filter_map(|m| m.status().map(u16::from))
        .collect();
    assert_eq!(statuses, vec![200], "OPTIONS gets one 200");
}

fn bench_group_invite(c: &mut Criterion) {
    let mut g = c.benchmark_group("group_invite");
    for machines in [Machines::Hand, Machines::Generated] {
        for n in [1usize, 3, 50] {
            check_group_invite(machines, n);
            let req = group_invite(n);
            g.bench_with_input(BenchmarkId::new(machines.name(), n), &n, |b, _| {
                let t0 = now();
                b.iter_batched_ref(
                    || (endpoint(machines), Vec::with_capacity(n + 4)),
                    |(ep, out)| {
                        handle(ep, t0, req.clone(), out);
                        black_box(out.len())
                    },
                    BatchSize::SmallInput,
                );
            });
        }
    }
    g.finish();
}

fn bench_options(c: &mut Criterion) {
    check_options();
    let req = options();
    c.bench_function("options", |b| {
        let t0 = now();
        b.iter_batched_ref(
            || (endpoint(Machines::Generated), Vec::with_capacity(2)),
            |(ep, out)| {
                handle(ep, t0, req.clone(), out);
                black_box(out.len())
            },
            BatchSize::SmallInput,
        );
    });
}

fn bench_options_live_tsx(c: &mut Criterion) {
    // Requests timed on one endpoint before it is rebuilt, so the table grows by at most
    // this much over K during a measurement.
    const CHUNK: usize = 200;
    let mut g = c.benchmark_group("options_live_tsx");
    g.sample_size(20);
    for k in [0usize, 1_000, 10_000] {
        g.bench_with_input(BenchmarkId::from_parameter(k), &k, |b, &k| {
            let t0 = now();
            let mut next = 0usize;
            b.iter_custom(|iters| {
                let mut total = std::time::Duration::ZERO;
                let mut left = usize::try_from(iters).unwrap_or(usize::MAX);
                while left > 0 {
                    let mut ep = endpoint(Machines::Generated);
                    let mut out = Vec::new();
                    for i in 0..k {
                        handle(&mut ep, t0, options_n(1_000_000 + i), &mut out);
                        out.clear();
                    }
                    assert!(k == 0 || ep.poll_timeout().is_some(), "Timer J is pending");
                    let reqs: Vec<Bytes> = (0..left.min(CHUNK))
                        .map(|_| {
                            next += 1;
                            options_n(next)
                        })
                        .collect();
                    left -= reqs.len();
                    let start = now();
                    for r in reqs {
                        handle(&mut ep, t0, r, &mut out);
                        black_box(ep.poll_timeout());
                        out.clear();
                    }
                    total += start.elapsed();
                }
                total
            });
        });
    }
    g.finish();
}

/// Live group sessions the `*_live_sessions` benches hold (`IM_BENCH_LIVE=0,1000` narrows it).
fn live_counts() -> Vec<usize> {
    match std::env::var("IM_BENCH_LIVE") {
        Ok(v) => v.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => vec![0, 1_000, 10_000],
    }
}

/// An endpoint holding `k` live group sessions of 3 invitees, built outside any timing.
fn live_driver(k: usize) -> group::Driver {
    let mut d = group::Driver::new(|c| c.max_sessions = 1_000_000);
    for i in 0..k {
        let _ = group::open(&mut d, 1_000_000 + i, 3);
    }
    assert_eq!(d.ep.live_sessions(), k, "every set-up session is live");
    d
}

fn bench_group_session_live(c: &mut Criterion) {
    // Sessions timed on one endpoint before it is rebuilt.
    const CHUNK: usize = 200;
    let mut g = c.benchmark_group("group_session_live");
    g.sample_size(10);
    for k in live_counts() {
        g.bench_with_input(BenchmarkId::from_parameter(k), &k, |b, &k| {
            let mut next = 0usize;
            b.iter_custom(|iters| {
                let mut total = std::time::Duration::ZERO;
                let mut left = usize::try_from(iters).unwrap_or(usize::MAX);
                while left > 0 {
                    let mut d = live_driver(k);
                    let n = left.min(CHUNK);
                    left -= n;
                    d.spent = std::time::Duration::ZERO;
                    for _ in 0..n {
                        next += 1;
                        let live = group::open(&mut d, next, 3);
                        group::finish(&mut d, live, b"hello");
                    }
                    total += d.spent;
                }
                total
            });
        });
    }
    g.finish();
}

fn bench_options_live_sessions(c: &mut Criterion) {
    const CHUNK: usize = 200;
    let mut g = c.benchmark_group("options_live_sessions");
    g.sample_size(10);
    for k in live_counts() {
        g.bench_with_input(BenchmarkId::from_parameter(k), &k, |b, &k| {
            let mut next = 0usize;
            b.iter_custom(|iters| {
                let mut total = std::time::Duration::ZERO;
                let mut left = usize::try_from(iters).unwrap_or(usize::MAX);
                while left > 0 {
                    let mut d = live_driver(k);
                    let n = left.min(CHUNK);
                    left -= n;
                    d.spent = std::time::Duration::ZERO;
                    for _ in 0..n {
                        next += 1;
                        let out = d.udp(addr(group::ALICE), group::options(next));
                        black_box(out);
                        let t = now();
                        black_box(d.ep.poll_timeout());
                        d.spent += t.elapsed();
                    }
                    total += d.spent;
                }
                total
            });
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_group_invite,
    bench_options,
    bench_options_live_tsx,
    bench_group_session_live,
    bench_options_live_sessions
);
criterion_main!(benches);

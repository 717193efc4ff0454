//! What the leg and session machines hear where the runtime used to decide for them (issue
//! 12): an unroutable invitee reaches its leg machine as `leg unroutable`, with
//! `copy.recipient_offline` for a user of this domain (the spec, 7.9.1.4, then chooses 480,
//! RFC 3261 §16.5, or 503, §8.1.3.1), and the copy's status is then what that machine
//! records; a fan-out that starts no leg settles at once. The machines here only record what
//! they hear and, for the legs, record the outcome a spec would write (`outcome failed`), so
//! the tests see the runtime carry it out.

mod common;

use common::{addr, invite};
use im_runtime::endpoint::{Application, DynMachine, Endpoint, EndpointConfig};
use im_runtime::machine::{
    Action, ActionKind, DeliveryOutcome, Env, Event, Facts, GroupDirectory, Invitation,
    InviteeRouter, LegEvent, Machine, Method, NoGroups, Origin, Recipients, Reply, Route,
    Selection, Timer, Uri,
};
use im_runtime::proto::sip::Message;
use im_runtime::transport::{Core, Input, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const O: Origin = Origin {
    procedure: "recorder",
    clause: "0",
    rule: "r",
};

type Heard = Arc<Mutex<Vec<(&'static str, Event)>>>;

/// The session: answers 200, invites the list without the originator, records the rest.
struct Session(Heard, bool);
impl Machine for Session {
    const PROCEDURE: &'static str = "session";
    const CLAUSE: &'static str = "0";
    fn handle(&mut self, _: Instant, ev: &Event, _: &Facts, _: &Env<'_>) -> Vec<Action> {
        self.0.lock().expect("lock").push(("session", ev.clone()));
        match ev {
            Event::InitialRequest(_) => vec![
                Action {
                    origin: O,
                    kind: ActionKind::Respond(Reply {
                        status: 200,
                        reason: "OK".into(),
                        headers: vec![],
                        warning: None,
                        sdp_answer: vec![],
                    }),
                },
                Action {
                    origin: O,
                    kind: ActionKind::InviteEach(
                        Recipients::RecipientList,
                        Selection {
                            without_originator: true,
                            distinct: true,
                        },
                        Invitation::default(),
                    ),
                },
            ],
            Event::LegsSettled => {
                self.1 = true;
                vec![]
            }
            _ => vec![],
        }
    }
    fn state_name(&self) -> &'static str {
        if self.1 { "settled" } else { "waiting" }
    }
    // Never final: it hears every event of the session, the lifetime's too.
    fn is_final(&self) -> bool {
        false
    }
}

/// A leg: any final failure records `outcome failed` (the event's status) and ends; no route
/// records 480 or 503 by `copy.recipient_offline`, as 7.9.1.4 does.
struct Leg(Heard, bool);
impl Machine for Leg {
    const PROCEDURE: &'static str = "leg";
    const CLAUSE: &'static str = "0";
    fn handle(&mut self, _: Instant, ev: &Event, f: &Facts, _: &Env<'_>) -> Vec<Action> {
        let who = match ev {
            Event::Leg(LegEvent::Unroutable) if f.copy.recipient_offline => "leg (offline)",
            _ => "leg",
        };
        self.0.lock().expect("lock").push((who, ev.clone()));
        let status = match ev {
            Event::Response(s) if *s >= 300 => None,
            Event::Leg(LegEvent::Unroutable) => {
                Some(if f.copy.recipient_offline { 480 } else { 503 })
            }
            _ => return vec![],
        };
        self.1 = true;
        vec![Action {
            origin: O,
            kind: ActionKind::Outcome(DeliveryOutcome::Failed(status)),
        }]
    }
    fn state_name(&self) -> &'static str {
        if self.1 { "failed" } else { "inviting" }
    }
    fn is_final(&self) -> bool {
        self.1
    }
}

/// No invitee has a route.
struct Nowhere;
impl InviteeRouter for Nowhere {
    fn route(&self, _: &Uri) -> Option<Route> {
        None
    }
}

struct App(Heard);
impl Application for App {
    fn initial(&self, m: &Method) -> Option<Box<dyn DynMachine>> {
        (m == &Method::Invite)
            .then(|| Box::new(Session(self.0.clone(), false)) as Box<dyn DynMachine>)
    }
    fn by_clause(&self, _: &str) -> Option<Box<dyn DynMachine>> {
        None
    }
    fn invitee_leg(&self) -> Option<Box<dyn DynMachine>> {
        Some(Box::new(Leg(self.0.clone(), false)))
    }
    fn methods(&self) -> Vec<Method> {
        vec![Method::Invite]
    }
    fn directory(&self) -> &dyn GroupDirectory {
        &NoGroups
    }
    fn router(&self) -> &dyn InviteeRouter {
        &Nowhere
    }
}

/// Runs alice's INVITE with `list` and returns what the machines heard after the initial
/// request.
fn heard(list: &[&str]) -> Vec<(&'static str, Event)> {
    let log: Heard = Arc::default();
    let cfg = EndpointConfig::new(addr("127.0.0.1:5060"), addr("127.0.0.1:2855"));
    let mut ep = Endpoint::new(cfg, App(log.clone()));
    start(&mut ep, now(), list);
    let v = log.lock().expect("lock").clone();
    v.into_iter()
        .filter(|(_, e)| !matches!(e, Event::InitialRequest(_)))
        .collect()
}

#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    // The one clock read of these tests: the endpoint only needs some instant.
    Instant::now()
}

/// Feeds alice's INVITE with `list` at `at` and drains the output.
fn start(ep: &mut Endpoint<App>, at: Instant, list: &[&str]) {
    ep.handle_input(
        at,
        Input::Datagram {
            local: addr("127.0.0.1:5060"),
            from: addr("127.0.0.1:5070"),
            data: invite("UDP", "127.0.0.1:5070", "c1", "z9hG4bKc1", list)
                .into_bytes()
                .into(),
        },
    );
    while ep.poll_output().is_some() {}
}

/// BYE requests the endpoint sends at `at`.
fn byes_at(ep: &mut Endpoint<App>, at: Instant) -> usize {
    ep.handle_input(at, Input::Timeout);
    let mut n = 0;
    while let Some(o) = ep.poll_output() {
        if let Output::Datagram { data, .. } = o
            && let Ok(m) = Message::parse(data)
            && m.method() == Some(&Method::Bye)
        {
            n += 1;
        }
    }
    n
}

#[test]
fn an_unroutable_invitee_is_heard_as_leg_unroutable_with_whether_it_is_offline() {
    let h = heard(&["sip:bob@example.com", "sip:carol@elsewhere.example.org"]);
    let legs: Vec<&(&str, Event)> = h.iter().filter(|(w, _)| w.starts_with("leg")).collect();
    // bob is a user of this domain with no registration, carol is elsewhere; no response
    // is made up for either (the status is the machine's).
    let unroutable = Event::Leg(LegEvent::Unroutable);
    assert_eq!(
        legs,
        [&("leg (offline)", unroutable.clone()), &("leg", unroutable)],
        "{h:?}"
    );
    // Both legs' machines ended: the session hears `legs settled` once.
    let settled = h
        .iter()
        .filter(|(w, e)| *w == "session" && *e == Event::LegsSettled)
        .count();
    assert_eq!(settled, 1, "{h:?}");
}

#[test]
fn a_fan_out_that_starts_no_leg_settles_at_once() {
    // The list names only the originator, whom the selection drops: no leg at all.
    let h = heard(&["sip:alice@example.com"]);
    assert!(h.iter().all(|(w, _)| *w == "session"), "{h:?}");
    assert_eq!(h, [("session", Event::LegsSettled)], "{h:?}");
}

#[test]
fn the_lifetime_is_the_machines_first_and_the_runtime_ends_the_session_64_t1_later() {
    let log: Heard = Arc::default();
    let mut cfg = EndpointConfig::new(addr("127.0.0.1:5060"), addr("127.0.0.1:2855"));
    cfg.session_lifetime = Duration::from_secs(20);
    let mut ep = Endpoint::new(cfg, App(log.clone()));
    let t0 = now();
    start(&mut ep, t0, &["sip:alice@example.com"]);
    // At the lifetime the machines hear it; these ones end nothing, so nothing is sent.
    assert_eq!(byes_at(&mut ep, t0 + Duration::from_secs(21)), 0);
    assert!(
        log.lock()
            .expect("lock")
            .iter()
            .any(|(w, e)| *w == "session" && *e == Event::Timer(Timer::Lifetime)),
        "{log:?}"
    );
    assert_eq!(ep.live_sessions(), 1);
    // 64·T1 (32 s) later the runtime ends the session: the originator gets its BYE.
    assert_eq!(byes_at(&mut ep, t0 + Duration::from_secs(51)), 0);
    assert_eq!(byes_at(&mut ep, t0 + Duration::from_secs(53)), 1);
}

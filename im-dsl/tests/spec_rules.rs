//! The spec rules no other test checks directly, driven through the machines the proc macro
//! generates from `specs/` (the same code the server runs): rules that only fire on a timer,
//! a lost MSRP connection, a missing ACK, the originator's BYE or the 487 after a CANCEL,
//! group policy refusals of the MESSAGE exploder, and the 404 of 7.9.1.5 when it is called for
//! a URI it does not own. Each test cites the rules it
//! exercises for `imspec trace --check`.

use im_runtime::machine::{
    Action, ActionKind, BodyPart, Config, Env, Event, Facts, GroupDirectory, GroupPolicy,
    InviteeRouter, ListEntry, Machine, Method, MsrpEvent, Reply, Route, Timer, Uri, UriParts,
};
use std::time::Instant;

mod invite {
    im_macros::imspec!("specs/page_mode_group_invite.imspec");
}
mod exploder {
    im_macros::imspec!("specs/rfc5365_message_exploder.imspec");
}

/// Any instant: these machines take the time as an argument and ignore it.
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

fn uri(s: &str) -> Uri {
    let (scheme, rest) = s.split_once(':').unwrap_or(("sip", s));
    let (user, host) = rest.split_once('@').unwrap_or(("", rest));
    Uri::new(UriParts {
        scheme,
        user,
        host,
        port: None,
        raw: s,
        ..UriParts::default()
    })
}

const ALICE: &str = "sip:alice@example.com";
const GROUP: &str = "sip:friends@example.com";

/// Owns `friends`; members, permission and size limit chosen by the test.
struct Dir {
    members: Vec<&'static str>,
    may_initiate: bool,
    max: Option<usize>,
}

impl Default for Dir {
    fn default() -> Self {
        Dir {
            members: vec![ALICE, "sip:bob@example.com", "sip:carol@example.com"],
            may_initiate: true,
            max: None,
        }
    }
}

impl GroupDirectory for Dir {
    fn owns(&self, g: &Uri) -> bool {
        g.same_identity(&uri(GROUP))
    }
    fn members(&self, g: &Uri) -> Option<Vec<Uri>> {
        self.owns(g)
            .then(|| self.members.iter().map(|m| uri(m)).collect())
    }
    fn policy(&self, g: &Uri, u: &Uri) -> Option<GroupPolicy> {
        self.owns(g).then(|| GroupPolicy {
            is_member: self.members.iter().any(|m| uri(m).same_identity(u)),
            may_initiate: self.may_initiate,
            max_participants: self.max,
            ..GroupPolicy::default()
        })
    }
}

struct Router;
impl InviteeRouter for Router {
    fn route(&self, _: &Uri) -> Option<Route> {
        None
    }
}

fn run<M: Machine>(m: &mut M, event: &Event, facts: &Facts, dir: &Dir) -> Vec<Action> {
    let cfg = Config {
        max_recipients: 3,
        ..Config::default()
    };
    let env = Env {
        config: &cfg,
        directory: dir,
        router: &Router,
    };
    m.handle(now(), event, facts, &env)
}

fn reply(actions: &[Action]) -> (&Reply, &'static str, &'static str) {
    let found: Vec<_> = actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::Respond(r) => Some((r, a.origin.clause, a.origin.rule)),
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 1, "one response: {actions:#?}");
    found[0]
}

fn text_part() -> BodyPart {
    BodyPart {
        content_type: "text/plain".into(),
        disposition: "render".into(),
        len: 5,
    }
}

fn list_part() -> BodyPart {
    BodyPart {
        content_type: "application/resource-lists+xml".into(),
        disposition: "recipient-list".into(),
        len: 300,
    }
}

/// A MESSAGE from Alice to `to` with the given body parts and recipient-list entries.
fn message(to: &str, parts: Vec<BodyPart>, list: &[&str]) -> Facts {
    Facts {
        method: Some(Method::Message),
        request_uri: uri(to),
        from: uri(ALICE),
        to: uri(to),
        originator: uri(ALICE),
        parts,
        recipients: list
            .iter()
            .map(|u| ListEntry {
                uri: uri(u),
                ..ListEntry::default()
            })
            .collect(),
        ..Facts::default()
    }
}

fn explode(facts: &Facts, dir: &Dir) -> (u16, String, &'static str) {
    let mut m = exploder::message_exploder::Machine::new();
    let actions = run(&mut m, &Event::InitialRequest(Method::Message), facts, dir);
    let (r, _, rule) = reply(&actions);
    (
        r.status,
        r.warning.as_deref().unwrap_or("").to_owned(),
        rule,
    )
}

// covers: 7.1/list_names_no_one
#[test]
fn exploder_list_naming_only_the_sender_gets_403() {
    let f = message(GROUP, vec![text_part(), list_part()], &[ALICE]);
    let (status, warning, rule) = explode(&f, &Dir::default());
    assert_eq!((status, rule), (403, "list_names_no_one"));
    assert!(warning.contains("no one but the sender"), "{warning}");
}

// covers: 7.1/may_not_send
#[test]
fn exploder_member_who_may_not_send_gets_403() {
    let dir = Dir {
        may_initiate: false,
        ..Dir::default()
    };
    let (status, warning, rule) = explode(&message(GROUP, vec![text_part()], &[]), &dir);
    assert_eq!((status, rule), (403, "may_not_send"));
    assert!(warning.contains("may not send"), "{warning}");
}

// covers: 7.1/over_group_limit
#[test]
fn exploder_group_over_its_own_limit_gets_403_naming_it() {
    let dir = Dir {
        max: Some(2),
        ..Dir::default()
    };
    let (status, warning, rule) = explode(&message(GROUP, vec![text_part()], &[]), &dir);
    assert_eq!((status, rule), (403, "over_group_limit"));
    assert_eq!(warning, "the IM group allows at most 2 participants");
}

// covers: 7.1/no_other_member
#[test]
fn exploder_group_of_the_sender_alone_gets_403() {
    let dir = Dir {
        members: vec![ALICE],
        ..Dir::default()
    };
    let (status, warning, rule) = explode(&message(GROUP, vec![text_part()], &[]), &dir);
    assert_eq!((status, rule), (403, "no_other_member"));
    assert!(warning.contains("no member but the sender"), "{warning}");
}

// covers: 7/group_without_payload
#[test]
fn exploder_group_message_without_a_body_gets_400() {
    let (status, warning, rule) = explode(&message(GROUP, vec![], &[]), &Dir::default());
    assert_eq!((status, rule), (400, "group_without_payload"));
    assert!(warning.contains("carries no message"), "{warning}");
}

// covers: 7.9.1.5/unknown_group
#[test]
fn predefined_group_called_for_a_uri_it_does_not_own_answers_404() {
    // 5.2.1.1 only calls 7.9.1.5 for an owned group; the rule guards any other caller.
    let mut m = invite::predefined_group_setup::Machine::new();
    let mut f = message("sip:nosuch@example.com", vec![], &[]);
    f.method = Some(Method::Invite);
    let actions = run(
        &mut m,
        &Event::InitialRequest(Method::Invite),
        &f,
        &Dir::default(),
    );
    let (r, clause, rule) = reply(&actions);
    assert_eq!((r.status, clause, rule), (404, "7.9.1.5", "unknown_group"));
    assert_eq!(r.warning.as_deref(), Some("no such IM group"));
}

/// The originator leg after its 200 OK (state `awaiting_message_and_legs`).
fn answered_session() -> invite::pager_mode_session::Machine {
    let mut m = invite::pager_mode_session::Machine::new();
    let mut f = message(GROUP, vec![], &[]);
    f.method = Some(Method::Invite);
    run(
        &mut m,
        &Event::InitialRequest(Method::Invite),
        &f,
        &Dir::default(),
    );
    assert_eq!(m.state_name(), "awaiting_message_and_legs");
    m
}

fn kinds(actions: &[Action]) -> Vec<&ActionKind> {
    actions.iter().map(|a| &a.kind).collect()
}

// covers: 6.1.3.3.2/no_message
#[test]
fn pager_session_without_a_message_in_time_ends_with_bye() {
    use invite::pager_mode_session::TIMER_MESSAGE_WAIT;
    let mut m = answered_session();
    let a = run(
        &mut m,
        &Event::Timer(TIMER_MESSAGE_WAIT),
        &Facts::default(),
        &Dir::default(),
    );
    assert_eq!(
        kinds(&a),
        [
            &ActionKind::Bye,
            &ActionKind::CancelLegs,
            &ActionKind::ByeLegs
        ]
    );
    assert_eq!(a[0].origin.rule, "no_message");
    assert_eq!(m.state_name(), "closed");
    assert!(m.is_final());
}

// covers: 6.1.3.3.2/closed_before_message
#[test]
fn pager_session_whose_msrp_connection_closes_first_ends_with_bye() {
    let mut m = answered_session();
    let a = run(
        &mut m,
        &Event::Msrp(MsrpEvent::Closed),
        &Facts::default(),
        &Dir::default(),
    );
    assert!(kinds(&a).contains(&&ActionKind::Bye), "{a:#?}");
    assert!(a.iter().all(|a| a.origin.rule == "closed_before_message"));
    assert_eq!(m.state_name(), "closed");
}

// covers: 6.1.3.3.2/no_ack
#[test]
fn pager_session_without_ack_ends_with_bye_on_timer_h() {
    let mut m = answered_session();
    let a = run(
        &mut m,
        &Event::Timer(Timer::H),
        &Facts::default(),
        &Dir::default(),
    );
    assert!(kinds(&a).contains(&&ActionKind::Bye), "{a:#?}");
    assert!(a.iter().all(|a| a.origin.rule == "no_ack"));
    assert_eq!(m.state_name(), "closed");
}

// covers: 6.1.3.3.2/originator_bye
#[test]
fn pager_session_ends_when_the_originator_says_bye() {
    // The endpoint answers the BYE's transaction itself; the rule's `respond 200` is what the
    // spec says the answer is, and the session closes.
    let mut m = answered_session();
    let a = run(
        &mut m,
        &Event::InDialogRequest(Method::Bye),
        &Facts::default(),
        &Dir::default(),
    );
    assert!(
        a.iter().all(|a| a.origin.rule == "originator_bye"),
        "{a:#?}"
    );
    let (r, clause, _) = reply(&a);
    assert_eq!((r.status, clause), (200, "6.1.3.3.2"));
    assert_eq!(m.state_name(), "closed");
    assert!(m.is_final());
}

// covers: 7.9.1.4/cancelled
#[test]
fn invitee_leg_cancelled_for_ringing_too_long_fails_on_the_487() {
    use invite::invitee_leg::{Machine as Leg, TIMER_INVITE_TIMEOUT};
    let dir = Dir::default();
    let response = |status| Facts {
        status: Some(status),
        ..Facts::default()
    };
    let mut leg = Leg::new();
    run(&mut leg, &Event::Response(180), &response(180), &dir);
    let a = run(
        &mut leg,
        &Event::Timer(TIMER_INVITE_TIMEOUT),
        &Facts::default(),
        &dir,
    );
    assert_eq!(kinds(&a), [&ActionKind::Cancel]);
    assert_eq!(leg.state_name(), "cancelling");
    let a = run(&mut leg, &Event::Response(487), &response(487), &dir);
    // The copy failed with the 487's status (the runtime fills in the event's).
    assert_eq!(
        kinds(&a),
        [&ActionKind::Outcome(
            im_runtime::machine::DeliveryOutcome::Failed(None)
        )],
        "{a:#?}"
    );
    assert_eq!(leg.state_name(), "failed");
    assert!(leg.is_final());
}

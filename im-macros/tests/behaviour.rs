//! Drives the machines generated from `specs/page_mode_group_invite.imspec` (and its imports)
//! with events and facts — no sockets — and checks the actions against the clauses. Each test
//! names the clause it covers.
//!
//! `session` mimics what the endpoint does with `call`: it runs the callee (from
//! `by_clause`) on the same event and facts and splices the callee's actions in place.

use im_runtime::endpoint::DynMachine;
use im_runtime::machine::{
    Action, ActionKind, BodyPart, Config, Env, Event, Facts, GroupDirectory, GroupPolicy,
    InviteeRouter, ListEntry, Method, Recipients, Reply, Route, SdpAnswerItem, SdpFacts, SdpMedia,
    Timer, Uri, UriParts,
};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

mod spec {
    im_macros::imspec!("specs/page_mode_group_invite.imspec");
}

/// Any instant will do: the machines take the time as an argument and these ones ignore it.
#[allow(clippy::disallowed_methods)]
fn epoch() -> Instant {
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
const FACTORY: &str = "sip:conference-factory@example.com";

/// A directory owning `friends`, whose members and rules the test chooses.
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Offer {
    Pager,
}

fn media(offer: Offer) -> Option<SdpFacts> {
    let msrp = |types: &str, dir: &str| {
        SdpMedia::new(
            "message",
            7394,
            "TCP/MSRP",
            "*",
            &[
                ("accept-types", Some(types)),
                ("path", Some("msrp://alice.example.com:7394/abc;tcp")),
                (dir, None),
            ],
        )
    };
    let m = match offer {
        Offer::Pager => msrp("message/cpim text/plain", "sendonly"),
    };
    Some(SdpFacts {
        connection: Some("192.0.2.1".into()),
        media: vec![m],
        raw: String::new(),
    })
}

/// An initial INVITE from Alice to `to`, with a recipient list of `list` (when `Some`) and
/// `offer`.
fn invite(to: &str, list: Option<&[&str]>, offer: Offer) -> Facts {
    let mut parts = Vec::new();
    let sdp = media(offer);
    if sdp.is_some() {
        parts.push(BodyPart {
            content_type: "application/sdp".into(),
            disposition: "session".into(),
            len: 200,
        });
    }
    let mut recipients = Vec::new();
    if let Some(list) = list {
        parts.push(BodyPart {
            content_type: "application/resource-lists+xml".into(),
            disposition: "recipient-list".into(),
            len: 300,
        });
        recipients = list
            .iter()
            .map(|u| ListEntry {
                uri: uri(u),
                ..ListEntry::default()
            })
            .collect();
    }
    Facts {
        method: Some(Method::Invite),
        request_uri: uri(to),
        from: uri(ALICE),
        to: uri(to),
        originator: uri(ALICE),
        parts,
        recipients,
        sdp,
        ..Facts::default()
    }
}

fn config() -> Config {
    Config {
        max_recipients: 3,
        ..Config::default()
    }
}

/// Runs the entry machine on an initial INVITE as the endpoint would, following `call`s.
/// Returns every action (calls included, in order) and the machines the session ended with.
fn session(facts: &Facts, dir: &Dir, cfg: &Config) -> (Vec<Action>, Vec<Box<dyn DynMachine>>) {
    let env = Env {
        config: cfg,
        directory: dir,
        router: &Router,
    };
    let now = epoch();
    let event = Event::InitialRequest(Method::Invite);
    let mut entry = spec::initial(&Method::Invite).expect("the spec takes INVITE");
    let mut pending: VecDeque<Action> = entry.handle(now, &event, facts, &env).into();
    let mut machines = vec![entry];
    let mut out = Vec::new();
    while let Some(a) = pending.pop_front() {
        if let ActionKind::Call(clause) = &a.kind {
            let mut callee = spec::by_clause(clause).expect("a procedure for every call");
            for (i, x) in callee
                .handle(now, &event, facts, &env)
                .into_iter()
                .enumerate()
            {
                pending.insert(i, x);
            }
            machines.push(callee);
        }
        out.push(a);
    }
    (out, machines)
}

fn replies(actions: &[Action]) -> Vec<&Reply> {
    actions
        .iter()
        .filter_map(|a| match &a.kind {
            ActionKind::Respond(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn calls(actions: &[Action]) -> Vec<&'static str> {
    actions
        .iter()
        .filter_map(|a| match a.kind {
            ActionKind::Call(c) => Some(c),
            _ => None,
        })
        .collect()
}

const BOB_CAROL: &[&str] = &["sip:bob@example.com", "sip:carol@example.com"];

// covers: 5.2.1.1/adhoc
// covers: 7.9.1.4/setup
// covers: 5.2.1.1/answer
// covers: 7.9.1.1/accept_with_answer
#[test]
fn clause_7_9_1_4_resource_list_invite_sets_up_an_adhoc_group() {
    let (actions, machines) = session(
        &invite(FACTORY, Some(BOB_CAROL), Offer::Pager),
        &Dir::default(),
        &config(),
    );
    // 5.2.1.1 hands over to 7.9.1.4, which answers through 6.1.3.3.2 → 7.9.1.1; 6.1.3.3.2
    // also starts the delivery-reports extension (ext-dr).
    assert_eq!(
        calls(&actions),
        ["7.9.1.4", "6.1.3.3.2", "7.9.1.1", "ext-dr"]
    );
    assert_eq!(actions[0].origin.procedure, "page_mode_group_invite");
    assert_eq!(actions[0].origin.rule, "adhoc");
    let ok = replies(&actions);
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].status, 200);
    let invite_each = actions
        .iter()
        .find(|a| {
            matches!(
                a.kind,
                ActionKind::InviteEach(Recipients::RecipientList, ..)
            )
        })
        .expect("7.9.1.4 invites each recipient");
    assert_eq!(invite_each.origin.clause, "7.9.1.4");
    assert_eq!(invite_each.origin.rule, "setup");
    // The 200 comes before the invitations (RFC 5366 §5: answer at once).
    let pos = |f: &dyn Fn(&Action) -> bool| actions.iter().position(f);
    assert!(
        pos(&|a| matches!(a.kind, ActionKind::Respond(_)))
            < pos(&|a| matches!(a.kind, ActionKind::InviteEach(..)))
    );
    // 6.1.3.3.2 waits for the message.
    let names: Vec<&str> = machines.iter().map(|m| m.state_name()).collect();
    assert!(names.contains(&"awaiting_message_and_legs"), "{names:?}");
    // The ad-hoc machine names its legs' machine.
    let adhoc = machines
        .iter()
        .find(|m| m.procedure() == "adhoc_group_setup")
        .expect("adhoc machine");
    let leg = adhoc.invitee_leg().expect("a leg procedure");
    assert_eq!(leg.procedure(), "invitee_leg");
    assert_eq!(leg.state_name(), "inviting");
}

// covers: 7.9.1.1/accept_with_answer
#[test]
fn clause_7_9_1_1_answer_carries_sdp_items_a_to_d() {
    let (actions, _) = session(
        &invite(FACTORY, Some(BOB_CAROL), Offer::Pager),
        &Dir::default(),
        &Config {
            tb_granted: true,
            ..config()
        },
    );
    let ok = replies(&actions)[0];
    let answer_origin = actions
        .iter()
        .find(|a| matches!(a.kind, ActionKind::Respond(_)))
        .map(|a| a.origin)
        .expect("a response");
    assert_eq!(answer_origin.clause, "7.9.1.1");
    assert!(ok.sdp_answer.contains(&SdpAnswerItem::OwnPath)); // (a)
    assert!(ok.sdp_answer.contains(&SdpAnswerItem::MediaFromOffer)); // (b)
    assert!(
        ok.sdp_answer
            .contains(&SdpAnswerItem::AcceptTypesIntersection)
    ); // (c)
    assert!(ok.sdp_answer.contains(&SdpAnswerItem::MirrorDirection)); // (c)
    assert!(ok.sdp_answer.contains(&SdpAnswerItem::ComplementSetup)); // (c)
    assert!(
        ok.sdp_answer
            .contains(&SdpAnswerItem::Fixed("tb-granted".into(), None)) // (d) when configured
    );
    assert!(
        ok.headers
            .iter()
            .any(|(n, v)| n == "Contact" && matches!(v, im_runtime::machine::HeaderValue::FocusContactWith(p) if p.contains("+g.oma.sip-im")))
    );
    // (d) is optional: without the configuration there is no tb-granted.
    let (actions, _) = session(
        &invite(FACTORY, Some(BOB_CAROL), Offer::Pager),
        &Dir::default(),
        &config(),
    );
    let ok = replies(&actions)[0];
    assert!(
        !ok.sdp_answer
            .iter()
            .any(|i| matches!(i, SdpAnswerItem::Fixed(n, _) if n == "tb-granted"))
    );
    assert!(ok.sdp_answer.contains(&SdpAnswerItem::OwnPath));
}

// covers: 5.2.1.1/predefined
// covers: 7.9.1.5/setup
#[test]
fn clause_7_9_1_5_owned_group_uri_sets_up_a_predefined_group() {
    let (actions, _) = session(
        &invite(GROUP, None, Offer::Pager),
        &Dir::default(),
        &config(),
    );
    assert_eq!(
        calls(&actions),
        ["7.9.1.5", "6.1.3.3.2", "7.9.1.1", "ext-dr"]
    );
    assert_eq!(replies(&actions)[0].status, 200);
    let inv = actions
        .iter()
        .find(|a| matches!(a.kind, ActionKind::InviteEach(Recipients::GroupMembers, ..)))
        .expect("7.9.1.5 invites the members");
    assert_eq!(inv.origin.clause, "7.9.1.5");
}

// The status of every request class of the 5.2.1.1 table and of 7.9.1.5's policy is owned by
// the specs: specs/cases/*.toml, run by spec_cases.rs.

fn leg_env_run(leg: &mut spec::invitee_leg::Machine, event: Event) -> Vec<Action> {
    let cfg = config();
    let dir = Dir::default();
    let env = Env {
        config: &cfg,
        directory: &dir,
        router: &Router,
    };
    let facts = Facts {
        status: match event {
            Event::Response(s) => Some(s),
            _ => None,
        },
        ..Facts::default()
    };
    im_runtime::machine::Machine::handle(leg, epoch(), &event, &facts, &env)
}

// covers: 7.9.1.4/provisional
// covers: 7.9.1.4/answered
#[test]
fn clause_7_9_1_4_invitee_leg_rings_then_connects() {
    use spec::invitee_leg::{Machine, State, TIMER_INVITE_TIMEOUT};
    let mut leg = Machine::new();
    assert_eq!(leg.state(), State::Inviting);
    // 100 Trying is hop-by-hop: still inviting.
    assert!(leg_env_run(&mut leg, Event::Response(100)).is_empty());
    assert_eq!(leg.state(), State::Inviting);
    let a = leg_env_run(&mut leg, Event::Response(180));
    assert_eq!(leg.state(), State::Ringing);
    assert_eq!(
        a.iter().map(|a| &a.kind).collect::<Vec<_>>(),
        [&ActionKind::StartTimer(
            TIMER_INVITE_TIMEOUT,
            Duration::from_secs(32)
        )]
    );
    assert_eq!(a[0].origin.clause, "7.9.1.4");
    assert_eq!(a[0].origin.rule, "provisional");
    let a = leg_env_run(&mut leg, Event::Response(200));
    assert_eq!(leg.state(), State::Connected);
    // The message is not held yet (`message.success_report` false): a plain `deliver`.
    assert!(a.iter().any(|a| a.kind
        == ActionKind::Deliver {
            success_report: false
        }));
    // Connected is not final: the leg waits for its copy's outcome.
    assert!(!im_runtime::machine::Machine::is_final(&leg));
    // A late final response changes nothing.
    assert!(leg_env_run(&mut leg, Event::Response(486)).is_empty());
    assert_eq!(leg.state(), State::Connected);
    // The copy confirmed over MSRP: the leg records it and is final.
    let a = leg_env_run(
        &mut leg,
        Event::Msrp(im_runtime::machine::MsrpEvent::Delivered),
    );
    assert_eq!(
        a.iter().map(|a| &a.kind).collect::<Vec<_>>(),
        [&ActionKind::Outcome(
            im_runtime::machine::DeliveryOutcome::Delivered
        )]
    );
    assert_eq!(leg.state(), State::Delivered);
    assert!(im_runtime::machine::Machine::is_final(&leg));
}

// covers: 7.9.1.4/declined
// covers: 7.9.1.4/no_final_response
#[test]
fn clause_7_9_1_4_invitee_leg_fails_on_486_and_on_timer_b() {
    use spec::invitee_leg::{Machine, State};
    let mut leg = Machine::new();
    leg_env_run(&mut leg, Event::Response(486));
    assert_eq!(leg.state(), State::Failed);

    let mut leg = Machine::new();
    leg_env_run(&mut leg, Event::Response(180));
    leg_env_run(&mut leg, Event::Response(486));
    assert_eq!(leg.state(), State::Failed);

    let mut leg = Machine::new();
    leg_env_run(&mut leg, Event::Timer(Timer::B));
    assert_eq!(leg.state(), State::Failed);

    let mut leg = Machine::new();
    leg_env_run(&mut leg, Event::Response(183));
    leg_env_run(&mut leg, Event::Timer(Timer::B));
    assert_eq!(leg.state(), State::Failed);
    assert_eq!(im_runtime::machine::Machine::state_name(&leg), "failed");
}

// covers: 7.9.1.4/ring_too_long
// covers: 7.9.1.4/answered_after_cancel
#[test]
fn clause_7_9_1_4_ringing_too_long_cancels() {
    use spec::invitee_leg::{Machine, State, TIMER_INVITE_TIMEOUT};
    let mut leg = Machine::new();
    leg_env_run(&mut leg, Event::Response(180));
    let a = leg_env_run(&mut leg, Event::Timer(TIMER_INVITE_TIMEOUT));
    assert_eq!(leg.state(), State::Cancelling);
    assert!(a.iter().any(|a| a.kind == ActionKind::Cancel));
    // A 2xx that crossed the CANCEL is ended with BYE.
    let a = leg_env_run(&mut leg, Event::Response(200));
    assert!(a.iter().any(|a| a.kind == ActionKind::Bye));
    assert_eq!(leg.state(), State::Failed);
}

/// Runs the originator leg (6.1.3.3.2) through `events`, the `legs.*` counts being `legs` (as
/// the endpoint fills them in from `legs settled` on); returns the `report` actions and the
/// final state.
fn pager_session_reports(
    events: &[Event],
    legs: im_runtime::machine::LegCounts,
) -> (Vec<bool>, spec::pager_mode_session::State) {
    let (cfg, dir) = (config(), Dir::default());
    let env = Env {
        config: &cfg,
        directory: &dir,
        router: &Router,
    };
    let mut m = spec::pager_mode_session::Machine::new();
    let mut facts = invite(FACTORY, Some(BOB_CAROL), Offer::Pager);
    im_runtime::machine::Machine::handle(
        &mut m,
        epoch(),
        &Event::InitialRequest(Method::Invite),
        &facts,
        &env,
    );
    facts.legs = legs;
    let mut reports = Vec::new();
    for e in events {
        for a in im_runtime::machine::Machine::handle(&mut m, epoch(), e, &facts, &env) {
            if let ActionKind::Report(outcome) = a.kind {
                assert_eq!(a.origin.clause, "6.1.3.3.2");
                reports.push(outcome == im_runtime::machine::ReportOutcome::Success);
            }
        }
    }
    (reports, m.state())
}

// covers: 5.2.1.1/answer
// covers: 6.1.3.3.2/hold
// covers: 6.1.3.3.2/finish
// covers: 6.1.3.3.2/finish_with_failure
// covers: 5.2.1.1/legs_first
// covers: 6.1.3.3.2/hold_and_finish
// covers: 6.1.3.3.2/hold_and_fail
#[test]
fn clause_6_1_3_3_2_reports_success_only_when_every_copy_was_delivered() {
    use im_runtime::machine::{LegCounts, MsrpEvent};
    use spec::pager_mode_session::State;
    let counts = |total, delivered, failed| LegCounts {
        total,
        connected: delivered,
        delivered,
        failed,
    };
    let message_then_legs = [Event::Msrp(MsrpEvent::MessageReceived), Event::LegsSettled];
    assert_eq!(
        pager_session_reports(&message_then_legs, counts(2, 2, 0)),
        (vec![true], State::Closed)
    );
    // One invitee declined: the group did not get the message.
    assert_eq!(
        pager_session_reports(&message_then_legs, counts(2, 1, 1)),
        (vec![false], State::Closed)
    );
    assert_eq!(
        pager_session_reports(&message_then_legs, counts(2, 0, 2)),
        (vec![false], State::Closed)
    );
    // No leg at all is not "everyone got it".
    assert_eq!(
        pager_session_reports(&message_then_legs, counts(0, 0, 0)),
        (vec![false], State::Closed)
    );
    // Legs settled before the message: the outcome is reported when it comes.
    let legs_then_message = [Event::LegsSettled, Event::Msrp(MsrpEvent::MessageReceived)];
    assert_eq!(
        pager_session_reports(&legs_then_message, counts(2, 0, 2)),
        (vec![false], State::Closed)
    );
    assert_eq!(
        pager_session_reports(&legs_then_message, counts(1, 1, 0)),
        (vec![true], State::Closed)
    );
}

#[test]
fn spec_table_names_every_rule_with_its_location() {
    assert!(spec::SPEC.iter().any(|r| {
        r.procedure == "page_mode_group_invite"
            && r.rule == "adhoc"
            && r.clause == "5.2.1.1"
            && r.location
                .starts_with("specs/page_mode_group_invite.imspec:")
    }));
    assert!(
        spec::SPEC
            .iter()
            .any(|r| r.procedure == "invitee_leg" && r.rule == "declined")
    );
    assert_eq!(spec::methods(), [Method::Invite]);
    assert!(spec::by_clause("9.9.9").is_none());
    assert!(spec::initial(&Method::Message).is_none());
}

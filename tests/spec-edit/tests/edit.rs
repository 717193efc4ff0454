//! A spec edit changes behaviour with no Rust edit: the machines generated from the seed spec
//! and from a copy with one status code and one condition changed (see `build.rs`) answer the
//! same requests differently.

use im_runtime::machine::{
    Action, ActionKind, BodyPart, Config, Env, Event, Facts, InviteeRouter, ListEntry, Method,
    NoGroups, Route, SdpAttribute, SdpFacts, SdpMedia, Uri,
};
use std::time::Instant;

type Factory = fn(&str) -> Option<Box<dyn im_runtime::endpoint::DynMachine>>;

struct NoRoute;
impl InviteeRouter for NoRoute {
    fn route(&self, _: &Uri) -> Option<Route> {
        None
    }
}

fn uri(user: &str, host: &str) -> Uri {
    Uri {
        scheme: "sip".into(),
        user: user.into(),
        host: host.into(),
        raw: format!("sip:{user}@{host}"),
        ..Uri::default()
    }
}

fn invite(to: Uri, recipients: usize) -> Facts {
    let mut parts = vec![BodyPart {
        content_type: "application/sdp".into(),
        disposition: "session".into(),
        len: 100,
    }];
    if recipients > 0 {
        parts.push(BodyPart {
            content_type: "application/resource-lists+xml".into(),
            disposition: "recipient-list".into(),
            len: 100,
        });
    }
    let attr = |n: &str, v: Option<&str>| SdpAttribute {
        name: n.into(),
        value: v.map(Into::into),
    };
    Facts {
        method: Some(Method::Invite),
        request_uri: to,
        originator: uri("alice", "example.com"),
        parts,
        recipients: (0..recipients)
            .map(|i| ListEntry {
                uri: uri(&format!("user{i}"), "example.com"),
                ..ListEntry::default()
            })
            .collect(),
        sdp: Some(SdpFacts {
            media: vec![SdpMedia {
                media: "message".into(),
                port: 7394,
                proto: "TCP/MSRP".into(),
                formats: vec!["*".into()],
                attributes: vec![
                    attr("accept-types", Some("text/plain")),
                    attr("sendonly", None),
                ],
            }],
            ..SdpFacts::default()
        }),
        ..Facts::default()
    }
}

/// The status the spec's machines answer `facts` with, following `call`s.
#[allow(clippy::disallowed_methods)] // any instant will do: the machines ignore it
fn status(
    initial: fn(&Method) -> Option<Box<dyn im_runtime::endpoint::DynMachine>>,
    by_clause: Factory,
    facts: &Facts,
) -> Option<u16> {
    let config = Config::default();
    let env = Env {
        config: &config,
        directory: &NoGroups,
        router: &NoRoute,
    };
    let event = Event::InitialRequest(Method::Invite);
    let now = Instant::now();
    let mut pending: Vec<Action> = initial(&Method::Invite)?.handle(now, &event, facts, &env);
    pending.reverse();
    while let Some(a) = pending.pop() {
        match a.kind {
            ActionKind::Respond(r) => return Some(r.status),
            ActionKind::Call(c) => {
                let mut more = by_clause(c)?.handle(now, &event, facts, &env);
                more.reverse();
                pending.extend(more);
            }
            _ => {}
        }
    }
    None
}

#[test]
fn an_edited_status_code_changes_the_answer() {
    let facts = invite(uri("nobody", "elsewhere.org"), 0);
    let before = status(
        imspec_spec_edit::original::initial,
        imspec_spec_edit::original::by_clause,
        &facts,
    );
    let after = status(
        imspec_spec_edit::edited::initial,
        imspec_spec_edit::edited::by_clause,
        &facts,
    );
    assert_eq!((before, after), (Some(404), Some(410)));
}

#[test]
fn an_edited_condition_changes_the_answer() {
    let factory = Config::default().conference_factory;
    let facts = invite(factory, 2);
    let before = status(
        imspec_spec_edit::original::initial,
        imspec_spec_edit::original::by_clause,
        &facts,
    );
    let after = status(
        imspec_spec_edit::edited::initial,
        imspec_spec_edit::edited::by_clause,
        &facts,
    );
    assert_eq!((before, after), (Some(200), Some(403)));
}

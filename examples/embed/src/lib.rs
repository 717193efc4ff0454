//! # imspec-embed-example
//!
//! The smallest useful downstream application of imspec: it compiles its **own** spec
//! (`specs/echo_bot.imspec`) with [`im_macros::imspec!`], supplies its **own** group
//! directory ([`Groups`]) and router ([`IpRouter`]), and ties them together as an
//! [`Application`] that [`im_runtime::endpoint::Endpoint`] runs (see `src/main.rs` for the
//! tokio driver around it, and the README for the steps).
//!
//! Every SIP status this application sends comes from the spec; the Rust code here only
//! says which machine handles what and where the data comes from.

use im_runtime::endpoint::{Application, DynMachine};
use im_runtime::machine::{GroupDirectory, GroupPolicy, InviteeRouter, Method, Route, Uri};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// The machines generated from `specs/echo_bot.imspec` (path relative to this crate).
pub mod bot {
    im_macros::imspec!("specs/echo_bot.imspec");
}

/// Parses a SIP URI into the view conditions read; `None` when it is not one.
pub fn parse_uri(s: &str) -> Option<Uri> {
    im_runtime::proto::sip::Uri::parse(s.trim())
        .ok()
        .map(|u| u.to_view())
}

/// This application's group directory: groups given on the command line, every member may
/// write, no size limit. (A real application would read an XDMS or a database here.)
#[derive(Clone, Debug, Default)]
pub struct Groups {
    groups: BTreeMap<String, (Uri, Vec<Uri>)>,
}

/// Why a `--group` value was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupError(pub String);

impl std::fmt::Display for GroupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GroupError {}

impl Groups {
    /// Adds a group from `GROUP_URI=MEMBER_URI,MEMBER_URI,…`.
    pub fn add_spec(&mut self, spec: &str) -> Result<(), GroupError> {
        let (group, members) = spec
            .split_once('=')
            .ok_or_else(|| GroupError(format!("expected GROUP=MEMBER,MEMBER…, got {spec:?}")))?;
        let group =
            parse_uri(group).ok_or_else(|| GroupError(format!("not a SIP URI: {group:?}")))?;
        let members = members
            .split(',')
            .filter(|m| !m.trim().is_empty())
            .map(|m| parse_uri(m).ok_or_else(|| GroupError(format!("not a SIP URI: {m:?}"))))
            .collect::<Result<Vec<_>, _>>()?;
        self.add(group, members);
        Ok(())
    }

    /// Adds (or replaces) `group` with `members`.
    pub fn add(&mut self, group: Uri, members: Vec<Uri>) {
        self.groups.insert(key(&group), (group, members));
    }

    fn find(&self, group: &Uri) -> Option<&(Uri, Vec<Uri>)> {
        self.groups.get(&key(group))
    }
}

/// Groups are keyed by identity (scheme, user, host, port), as `Uri::same_identity` compares.
fn key(u: &Uri) -> String {
    format!(
        "{}:{}@{}:{}",
        u.scheme().to_ascii_lowercase(),
        u.user(),
        u.host().to_ascii_lowercase(),
        u.port().map_or(0, u32::from)
    )
}

impl GroupDirectory for Groups {
    fn owns(&self, group: &Uri) -> bool {
        self.find(group).is_some()
    }

    fn members(&self, group: &Uri) -> Option<Vec<Uri>> {
        self.find(group).map(|(_, m)| m.clone())
    }

    fn policy(&self, group: &Uri, user: &Uri) -> Option<GroupPolicy> {
        self.find(group).map(|(_, members)| {
            let is_member = members.iter().any(|m| m.same_identity(user));
            GroupPolicy {
                is_member,
                may_initiate: is_member,
                max_participants: None,
                ..GroupPolicy::default()
            }
        })
    }
}

/// Routes a recipient whose host is an IP literal straight there (port 5060 by default);
/// anything else is unreachable (no DNS, no proxy in this example).
#[derive(Clone, Copy, Debug, Default)]
pub struct IpRouter;

impl InviteeRouter for IpRouter {
    fn route(&self, invitee: &Uri) -> Option<Route> {
        let host = invitee.host().trim_start_matches('[').trim_end_matches(']');
        let ip: IpAddr = host.parse().ok()?;
        Some(Route::Direct(SocketAddr::new(
            ip,
            invitee.port().unwrap_or(5060),
        )))
    }
}

/// The application the endpoint runs: the generated machines plus [`Groups`] and
/// [`IpRouter`].
#[derive(Debug, Default)]
pub struct BotApp {
    /// The group directory the spec's `directory.*` facts read.
    pub groups: Groups,
    /// Where `forward each` sends copies.
    pub router: IpRouter,
}

impl Application for BotApp {
    fn initial(&self, method: &Method) -> Option<Box<dyn DynMachine>> {
        bot::initial(method)
    }

    fn by_clause(&self, clause: &str) -> Option<Box<dyn DynMachine>> {
        bot::by_clause(clause)
    }

    fn invitee_leg(&self) -> Option<Box<dyn DynMachine>> {
        bot::invitee_leg()
    }

    fn methods(&self) -> Vec<Method> {
        bot::methods()
    }

    fn directory(&self) -> &dyn GroupDirectory {
        &self.groups
    }

    fn router(&self) -> &dyn InviteeRouter {
        &self.router
    }
}

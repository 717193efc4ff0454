//! What the spec-edit endpoint tests share: an application made of one spec's generated
//! functions, the spec as written or the copy `edits.toml` changed, reaching every invitee at
//! one address, knowing the Digest users [`USERS`] (password [`PASSWORD`]) for the tests that
//! turn authentication on.

use im_runtime::endpoint::{Application, DynMachine};
use im_runtime::machine::{GroupDirectory, InviteeRouter, Method, NoGroups, Route, Uri};
use im_runtime::proto::digest::StoredHa1;
use imspec_spec_edit::{edited, original};

/// The users Digest authentication knows (none is asked for while authentication is off).
pub(crate) const USERS: [&str; 3] = ["alice", "mallory", "admin"];
/// Every user's password.
pub(crate) const PASSWORD: &str = "pw";

/// Where every invitee is reached.
pub(crate) const INVITEE: &str = "127.0.0.2:5060";

/// Routes every invitee to [`INVITEE`].
pub(crate) struct ToInvitee;

impl InviteeRouter for ToInvitee {
    fn route(&self, _: &Uri) -> Option<Route> {
        INVITEE.parse().ok().map(Route::Direct)
    }
}

/// An application made of one spec's generated functions.
pub(crate) struct App {
    initial: fn(&Method) -> Option<Box<dyn DynMachine>>,
    by_clause: fn(&str) -> Option<Box<dyn DynMachine>>,
    invitee_leg: fn() -> Option<Box<dyn DynMachine>>,
    methods: fn() -> Vec<Method>,
    /// `Application::offers_conference_state`.
    conference: bool,
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
        &NoGroups
    }
    fn router(&self) -> &dyn InviteeRouter {
        &ToInvitee
    }
    fn offers_conference_state(&self) -> bool {
        self.conference
    }
    fn credentials(&self, username: &str, realm: &str) -> Option<StoredHa1> {
        USERS
            .contains(&username)
            .then(|| StoredHa1::from_password(username, realm, PASSWORD))
    }
}

/// `specs/` as written; `conference`: whether conference state is offered.
pub(crate) fn original_app(conference: bool) -> App {
    App {
        initial: original::initial,
        by_clause: original::by_clause,
        invitee_leg: original::invitee_leg,
        methods: original::methods,
        conference,
    }
}

/// The copy of `specs/` that `edits.toml` changed.
pub(crate) fn edited_app(conference: bool) -> App {
    App {
        initial: edited::initial,
        by_clause: edited::by_clause,
        invitee_leg: edited::invitee_leg,
        methods: edited::methods,
        conference,
    }
}

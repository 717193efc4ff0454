//! What an application plugs into the endpoint: the generated machines (through a
//! dyn-compatible view of [`Machine`]), the group directory, the invitee router and the
//! location table.

use crate::machine::{
    Action, Env, Event, Facts, GroupDirectory, InviteeRouter, Machine, Method, Uri,
};
use crate::proto::digest::StoredHa1;
use std::net::SocketAddr;
use std::time::Instant;

/// A dyn-compatible view of a generated [`Machine`] (whose associated constants keep it from
/// being a trait object itself). Every `Machine` is one.
pub trait DynMachine: Send {
    /// Procedure name.
    fn procedure(&self) -> &'static str;
    /// Clause id of the procedure.
    fn clause(&self) -> &'static str;
    /// See [`Machine::handle`].
    fn handle(&mut self, now: Instant, event: &Event, facts: &Facts, env: &Env<'_>) -> Vec<Action>;
    /// See [`Machine::state_name`].
    fn state_name(&self) -> &'static str;
    /// See [`Machine::is_final`].
    fn is_final(&self) -> bool;
    /// A fresh machine for one invitee leg started by this machine's `invite each`, when
    /// the spec assigns one (otherwise the application's [`Application::invitee_leg`]).
    fn invitee_leg(&self) -> Option<Box<dyn DynMachine>> {
        None
    }
}

impl<M: Machine + Send> DynMachine for M {
    fn procedure(&self) -> &'static str {
        M::PROCEDURE
    }
    fn clause(&self) -> &'static str {
        M::CLAUSE
    }
    fn handle(&mut self, now: Instant, event: &Event, facts: &Facts, env: &Env<'_>) -> Vec<Action> {
        Machine::handle(self, now, event, facts, env)
    }
    fn state_name(&self) -> &'static str {
        Machine::state_name(self)
    }
    fn is_final(&self) -> bool {
        Machine::is_final(self)
    }
}

/// The application: which machine handles what, and the application's data sources.
pub trait Application {
    /// A fresh machine for an initial request of `method`, or `None` when the spec has no
    /// procedure for it (the endpoint answers 405 with Allow).
    fn initial(&self, method: &Method) -> Option<Box<dyn DynMachine>>;
    /// A fresh machine for the procedure implementing `clause` (`call` actions).
    fn by_clause(&self, clause: &str) -> Option<Box<dyn DynMachine>>;
    /// A fresh invitee-leg machine for each INVITE sent by `invite each`.
    fn invitee_leg(&self) -> Option<Box<dyn DynMachine>>;
    /// Methods the spec handles as initial requests (for Allow headers).
    fn methods(&self) -> Vec<Method>;
    /// The group directory.
    fn directory(&self) -> &dyn GroupDirectory;
    /// The invitee router.
    fn router(&self) -> &dyn InviteeRouter;
    /// A REGISTER for `aor` (RFC 3261 §10.3 steps 6–8), already authenticated and checked
    /// by the endpoint: apply `change` and return every binding of `aor` now, with its
    /// remaining seconds (the 200 lists them). The default offers no registrar (405).
    fn register(
        &mut self,
        now: Instant,
        aor: &Uri,
        change: &RegisterChange,
    ) -> Result<Vec<ContactBinding>, RegisterError> {
        let _ = (now, aor, change);
        Err(RegisterError::NotOffered)
    }
    /// Whether [`Application::register`] is implemented (REGISTER is then listed in Allow).
    fn offers_registrar(&self) -> bool {
        false
    }
    /// Whether the application's spec decides conference-state subscriptions (it handles
    /// `request SUBSCRIBE`, as `specs/ext_delivery_reports.imspec` does): the endpoint then
    /// serves SUBSCRIBE to its sessions' focus URIs (RFC 4575 over RFC 6665, see
    /// `endpoint/conference.rs`) and lists it in Allow and Allow-Events. Otherwise SUBSCRIBE
    /// is a method not offered (405).
    fn offers_conference_state(&self) -> bool {
        false
    }
    /// The stored digest secrets (HA1 values, never a password) of `username` in `realm`,
    /// for the endpoint's Digest authentication. The default knows no one, so every
    /// challenged request stays unauthenticated.
    fn credentials(&self, username: &str, realm: &str) -> Option<StoredHa1> {
        let _ = (username, realm);
        None
    }
    /// Called with the current time before each initial request is handled, so the
    /// application can refresh time-dependent state (group store reloads, location expiry).
    fn on_request(&mut self, now: Instant) {
        let _ = now;
    }
    /// Offline storage (extension ext-dr.6, `copy.storable`): whether the application can
    /// keep one more page-mode copy for `recipient` now. The default keeps nothing.
    fn offline_storable(&self, recipient: &Uri) -> bool {
        let _ = recipient;
        false
    }
    /// `store copy`: keep `copy` until its recipient registers (or it expires). An error
    /// (no room after all, a store failure) makes the copy a failed one.
    fn offline_store(&self, now: Instant, copy: OfflineCopy) -> Result<(), String> {
        let _ = (now, copy);
        Err("no offline storage".into())
    }
    /// `aor` has just registered: hand over (and forget) every copy kept for it that has
    /// not expired; the endpoint sends them now.
    fn offline_take(&self, now: Instant, aor: &Uri) -> Vec<OfflineCopy> {
        let _ = (now, aor);
        Vec::new()
    }
    /// Called with every input: the kept copies that have expired since the last call,
    /// forgotten by the application (the machines hear each as `copy expired`). The
    /// application decides how often it looks (this is on the hot path).
    fn offline_expired(&self, now: Instant) -> Vec<OfflineCopy> {
        let _ = now;
        Vec::new()
    }
    /// When the next kept copy expires, so that an idle endpoint wakes for it
    /// ([`crate::transport::Core::poll_timeout`]); `None`: nothing to wake for.
    fn offline_next_expiry(&self) -> Option<Instant> {
        None
    }
}

/// A page-mode copy kept for a recipient with no registration (extension ext-dr.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfflineCopy {
    /// The recipient (the AOR the copy is for), as the group or list named it.
    pub recipient: String,
    /// Where the sender's request came from: where its notifications go when the sender
    /// has no registration itself.
    pub source: SocketAddr,
    /// The sender's request, as received: the copy and its delivery facts are made from it
    /// again when the copy is sent.
    pub request: bytes::Bytes,
}

/// One contact binding of an address-of-record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactBinding {
    /// The Contact URI as the client wrote it.
    pub uri: String,
    /// Where requests for it go (the URI's IP address, or the REGISTER's source when the URI
    /// names a host the sans-IO core does not resolve).
    pub addr: SocketAddr,
    /// Seconds the binding lasts (0 in a change: remove it).
    pub expires: u32,
}

/// What a REGISTER asks of the location service (RFC 3261 §10.3 step 6–7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterChange {
    /// `Contact: *` with `Expires: 0`: remove every binding of the address-of-record.
    RemoveAll,
    /// Add, refresh (expires > 0) or remove (expires 0) each binding; an empty list only
    /// asks for the current bindings.
    Update(Vec<ContactBinding>),
}

/// Why a REGISTER could not be applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterError {
    /// The application offers no registrar (405).
    NotOffered,
    /// The location service has no room for a new binding (503 with Retry-After).
    Full,
}

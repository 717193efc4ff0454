//! The application the endpoint runs: the machines generated from `specs/` (INVITE from the
//! 5.2.1.1 spec, MESSAGE from the RFC 5365 exploder spec), the group store and the router.
//! Nothing here decides a SIP status: every status comes from the specs.

use crate::groups::SharedGroups;
use crate::metrics::{MethodLabels, Metrics};
use crate::offline::OfflineBox;
use crate::router::Router;
use crate::store::BindingWriter;
use crate::users::SharedUsers;
use im_runtime::endpoint::{
    Application, ContactBinding, DynMachine, OfflineCopy, RegisterChange, RegisterError,
};
use im_runtime::machine::{GroupDirectory, InviteeRouter, Method, Uri};
use im_runtime::proto::digest::StoredHa1;
use std::sync::Arc;
use std::time::Instant;

/// Machines generated from `specs/page_mode_group_invite.imspec` and its imports.
pub mod invite_spec {
    im_macros::imspec!("specs/page_mode_group_invite.imspec");
}

/// Machines generated from `specs/rfc5365_message_exploder.imspec`.
pub mod message_spec {
    im_macros::imspec!("specs/rfc5365_message_exploder.imspec");
}

/// The IM server application. Each worker (shard) runs its own clone; clones share the
/// group store and the REGISTER location table.
#[derive(Clone)]
pub struct ServerApp {
    /// Pre-defined groups, reloaded off the event loops.
    pub groups: SharedGroups,
    /// Invitee routing (IP literal, outbound proxy, REGISTER location table).
    pub router: Router,
    /// Counters shared by every worker and exported on `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Where bindings are persisted, when there is a store.
    pub bindings: Option<BindingWriter>,
    /// The users Digest authentication knows (HA1 values), shared by every worker and
    /// refreshed from a shared store while the server runs.
    pub users: SharedUsers,
    /// Page-mode copies kept for members with no registration (ext-dr.6), when there is a
    /// store and `limits.offline_max_per_user` is not 0.
    pub offline: Option<Arc<OfflineBox>>,
}

impl Application for ServerApp {
    fn initial(&self, method: &Method) -> Option<Box<dyn DynMachine>> {
        self.metrics
            .initial_requests
            .get_or_create(&MethodLabels {
                method: method.as_str().to_owned(),
            })
            .inc();
        match method {
            Method::Message => message_spec::initial(method),
            _ => invite_spec::initial(method),
        }
    }

    fn by_clause(&self, clause: &str) -> Option<Box<dyn DynMachine>> {
        invite_spec::by_clause(clause).or_else(|| message_spec::by_clause(clause))
    }

    fn invitee_leg(&self) -> Option<Box<dyn DynMachine>> {
        invite_spec::invitee_leg()
    }

    fn methods(&self) -> Vec<Method> {
        let mut m = invite_spec::methods();
        for x in message_spec::methods() {
            if !m.contains(&x) {
                m.push(x);
            }
        }
        m
    }

    fn directory(&self) -> &dyn GroupDirectory {
        &self.groups
    }

    fn router(&self) -> &dyn InviteeRouter {
        &self.router
    }

    fn register(
        &mut self,
        now: Instant,
        aor: &Uri,
        change: &RegisterChange,
    ) -> Result<Vec<ContactBinding>, RegisterError> {
        self.router.set_now(now);
        let mut table = self
            .router
            .locations
            .write()
            .unwrap_or_else(|e| e.into_inner());
        match change {
            RegisterChange::RemoveAll => {
                for b in table.bindings_of(aor, now) {
                    if let Some(w) = &self.bindings {
                        w.record(aor.raw(), b.addr, 0);
                    }
                }
                table.unregister_all(aor);
            }
            RegisterChange::Update(list) => {
                if let Err(e) = table.update(aor, list, now) {
                    tracing::warn!(aor = %aor.raw(), "location table: {e}");
                    return Err(RegisterError::Full);
                }
                if let Some(w) = &self.bindings {
                    for c in list {
                        w.record(aor.raw(), c.addr, c.expires);
                    }
                }
            }
        }
        Ok(table.bindings_of(aor, now))
    }

    fn offers_registrar(&self) -> bool {
        true
    }

    fn offers_conference_state(&self) -> bool {
        // specs/ext_delivery_reports.imspec (ext-dr.4) decides who may subscribe.
        true
    }

    fn credentials(&self, username: &str, realm: &str) -> Option<StoredHa1> {
        self.users.lookup(username, realm)
    }

    fn on_request(&mut self, now: Instant) {
        // The groups folder is reloaded by `SharedGroups`' own thread, not here: this runs
        // on a worker's event loop.
        self.router.set_now(now);
    }

    fn offline_storable(&self, recipient: &Uri) -> bool {
        self.offline.as_ref().is_some_and(|o| o.storable(recipient))
    }

    fn offline_store(&self, now: Instant, copy: OfflineCopy) -> Result<(), String> {
        match &self.offline {
            Some(o) => o.keep(now, &copy),
            None => Err("no store to keep copies in".into()),
        }
    }

    fn offline_take(&self, now: Instant, aor: &Uri) -> Vec<OfflineCopy> {
        let _ = now;
        self.offline
            .as_ref()
            .map(|o| o.take(aor))
            .unwrap_or_default()
    }

    fn offline_expired(&self, now: Instant) -> Vec<OfflineCopy> {
        match &self.offline {
            Some(o) => o.expired(now),
            None => Vec::new(),
        }
    }

    fn offline_next_expiry(&self) -> Option<Instant> {
        self.offline.as_ref().and_then(|o| o.next_expiry())
    }
}

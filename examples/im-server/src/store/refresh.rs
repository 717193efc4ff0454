//! Keeps a server in step with the other servers sharing its [`Store`]: one background
//! thread polls the store every interval for binding changes (applied to the location
//! table) and for a new documents generation (then the groups are published again and the
//! users, `im-server user add`'s documents, read again).
//!
//! Why polling into the in-memory table rather than asking the store on a routing miss:
//! routing runs on a worker's event loop, inside [`im_runtime::machine::InviteeRouter`]'s
//! synchronous `route`, once per invitee leg. A query there would stall every session of
//! that worker for a database round trip per unregistered member (a group of 50 offline
//! members: 50 round trips). Polled, a look-up stays one hash look-up in memory whatever
//! the database does; the cost moves to this thread, one indexed query per interval that
//! returns only the rows changed since the last one. The price is that a binding made
//! through another server is seen here up to one interval later (1 s by default,
//! `store_refresh`), well inside the time a client takes between registering and being
//! invited.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::router::{LocationTable, Router};
use crate::store::{BindingRow, Store, unix_now};
use crate::users::SharedUsers;
use crate::xcap::Xcap;

/// Every this many polls the documents are re-read even if the generation did not move,
/// in case a server died between writing a document and bumping the generation.
const FULL_DOCUMENT_READ_EVERY: u32 = 30;

/// The store poller; see the module documentation.
pub struct Refresher;

impl Refresher {
    /// Starts the poller: every `interval`, binding changes go into `router`'s location
    /// table, and a changed documents generation re-publishes the groups through `xcap`
    /// and reloads `users` (when given). The thread ends when the router's table is
    /// dropped.
    pub fn start(
        store: Arc<dyn Store>,
        router: &Router,
        xcap: Arc<Xcap>,
        users: Option<SharedUsers>,
        interval: Duration,
    ) -> std::io::Result<()> {
        let table = Arc::downgrade(&router.locations);
        std::thread::Builder::new()
            .name("store-refresh".into())
            .spawn(move || {
                let mut cursor = 0;
                // Unknown at first, so the first poll re-reads: a document written between
                // the start-up reads and this thread's start is not missed.
                let mut generation = None;
                let mut polls = 0u32;
                loop {
                    std::thread::sleep(interval);
                    let Some(table) = table.upgrade() else {
                        return;
                    };
                    match store.binding_changes(cursor) {
                        Ok((rows, next)) => {
                            cursor = next;
                            let now = wall_instant();
                            let wall = unix_now();
                            let mut t = table.write().unwrap_or_else(|e| e.into_inner());
                            // Rows come oldest change first; a nanosecond apart, so that
                            // among an AOR's contacts the last one changed stays the newest.
                            for (i, row) in rows.iter().enumerate() {
                                let at = now + Duration::from_nanos(i as u64);
                                apply(&mut t, row, at, wall);
                            }
                        }
                        Err(e) => tracing::warn!("store refresh (bindings): {e}"),
                    }
                    polls = polls.wrapping_add(1);
                    match store.documents_generation() {
                        Ok(g)
                            if Some(g) != generation
                                || polls.is_multiple_of(FULL_DOCUMENT_READ_EVERY) =>
                        {
                            let groups = xcap.publish();
                            // A user document bumps the generation as a group does.
                            let users = users.as_ref().map(|u| u.reload(store.as_ref()));
                            match (groups, users.transpose()) {
                                (Ok(n), Ok(_)) => {
                                    if generation.is_some_and(|old| old != g) {
                                        tracing::debug!(
                                            groups = n,
                                            "store refresh: documents changed"
                                        );
                                    }
                                    generation = Some(g);
                                }
                                // The generation stays, so the next poll tries again.
                                (Err(e), _) => tracing::warn!("store refresh (groups): {e}"),
                                (_, Err(e)) => tracing::warn!("store refresh (users): {e}"),
                            }
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!("store refresh (generation): {e}"),
                    }
                }
            })?;
        Ok(())
    }
}

/// Puts one stored binding into `table` for what is left of its time at `wall` (a removal
/// or an expired binding removes it).
pub(crate) fn apply(table: &mut LocationTable, row: &BindingRow, now: Instant, wall: u64) {
    let Ok(uri) = crate::uri::parse_uri(&row.aor) else {
        return;
    };
    let left = row.expires_unix.saturating_sub(wall);
    if left == 0 {
        table.unregister(&uri, row.contact);
    } else if let Err(e) = table.register(&uri, row.contact, Duration::from_secs(left), now) {
        tracing::warn!(aor = %row.aor, "store refresh: {e}");
    }
}

/// The refresher runs outside the runtime's driver, so it reads the clock itself, as the
/// bindings restored at start-up do.
#[allow(clippy::disallowed_methods)]
fn wall_instant() -> Instant {
    Instant::now()
}

//! Which accepted SIP connections this endpoint still needs (issue 14, connection hygiene).
//!
//! The IO layer closes an accepted SIP connection that nothing uses once it has been silent
//! for its idle timeout ([`crate::io::IoLimits::conn_idle_timeout`]); only the endpoint knows
//! what uses one, so it says so with [`Output::ConnUse`] each time that changes. A
//! connection is in use while
//! * a session's originator is reached over it (its dialog, its transactions, its
//!   conference-state subscription: all live as long as the session), or
//! * a REGISTER that came over it holds bindings, until the longest of them expires (a
//!   client keeps its registration flow open, RFC 5626 §3.5, so that requests for it can
//!   come back over it); per address-of-record, so that a connection carrying several
//!   (a front proxy's) is held while any of them is.
//!
//! A request that belongs to no session (OPTIONS, a refused or challenged request, a
//! REGISTER's answer) is answered within the input that brought it, and its bytes restart
//! the IO layer's idle clock: it needs no entry here.
//!
//! The connections the endpoint opens itself (to invitees and recipients) are held by the
//! sessions that send over them, in `route_leg.rs` (`OutConns`).
//!
//! Counts and one deadline index, no scan: starting or ending a session costs O(1) hash
//! work, a registration O(log n), the next deadline O(log n).

use super::session::SessionId;
use super::{Application, Endpoint};
use crate::proto::transaction::Peer;
use crate::transport::{ConnId, Output};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Instant;

impl<A: Application> Endpoint<A> {
    /// The connection a stream peer is reached over (`None` for a datagram peer).
    pub(super) fn stream_of(&self, peer: Peer) -> Option<ConnId> {
        peer.reliable
            .then(|| self.sip_conn_by_peer.get(&peer.addr).copied())
            .flatten()
    }
}

#[derive(Debug, Default)]
struct Held {
    /// Sessions whose originator is reached over the connection.
    sessions: u32,
    /// Addresses-of-record whose registration made over it still holds it.
    registrations: u32,
}

impl Held {
    fn in_use(&self) -> bool {
        self.sessions > 0 || self.registrations > 0
    }
}

/// A registration hold: the connection and the address-of-record.
type RegKey = (ConnId, String);

/// The endpoint's uses of accepted SIP connections; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct ConnUse {
    by_session: HashMap<SessionId, ConnId>,
    held: HashMap<ConnId, Held>,
    /// Registration holds and when each ends.
    registered: HashMap<RegKey, Instant>,
    /// The same, by deadline. A closed connection's holds stay until they expire (no scan to
    /// find them); they change nothing then.
    expiries: BTreeSet<(Instant, RegKey)>,
}

impl ConnUse {
    /// Applies `f` to `conn`'s entry and reports the change of use, if any.
    fn update(&mut self, conn: ConnId, out: &mut VecDeque<Output>, f: impl FnOnce(&mut Held)) {
        let h = self.held.entry(conn).or_default();
        let was = h.in_use();
        f(h);
        let now = h.in_use();
        if !now {
            self.held.remove(&conn);
        }
        if was != now {
            out.push_back(Output::ConnUse { conn, in_use: now });
        }
    }

    /// Session `sid` began; its originator is reached over `conn` (when on a stream).
    pub(crate) fn session_started(
        &mut self,
        sid: SessionId,
        conn: Option<ConnId>,
        out: &mut VecDeque<Output>,
    ) {
        let Some(conn) = conn.filter(|c| c.is_accepted()) else {
            return;
        };
        self.by_session.insert(sid, conn);
        self.update(conn, out, |h| h.sessions += 1);
    }

    /// Session `sid` is gone.
    pub(crate) fn session_ended(&mut self, sid: SessionId, out: &mut VecDeque<Output>) {
        let Some(conn) = self.by_session.remove(&sid) else {
            return;
        };
        // The connection may have closed under the session: nothing to release then.
        if self.held.contains_key(&conn) {
            self.update(conn, out, |h| h.sessions = h.sessions.saturating_sub(1));
        }
    }

    /// A REGISTER over `conn` for `aor` left bindings until `until` (`None`: it removed
    /// them all).
    pub(crate) fn registered(
        &mut self,
        conn: Option<ConnId>,
        aor: &str,
        until: Option<Instant>,
        out: &mut VecDeque<Output>,
    ) {
        let Some(conn) = conn.filter(|c| c.is_accepted()) else {
            return;
        };
        let key = (conn, aor.to_owned());
        let had = match self.registered.remove(&key) {
            Some(t) => self.expiries.remove(&(t, key.clone())),
            None => false,
        };
        if let Some(t) = until {
            self.registered.insert(key.clone(), t);
            self.expiries.insert((t, key));
        }
        match (had, until.is_some()) {
            (false, true) => self.update(conn, out, |h| h.registrations += 1),
            (true, false) => self.update(conn, out, |h| {
                h.registrations = h.registrations.saturating_sub(1);
            }),
            _ => {}
        }
    }

    /// When the earliest registration hold ends.
    pub(crate) fn first(&self) -> Option<Instant> {
        self.expiries.first().map(|(t, _)| *t)
    }

    /// Ends the registration holds due at `now`.
    pub(crate) fn expire(&mut self, now: Instant, out: &mut VecDeque<Output>) {
        while self.expiries.first().is_some_and(|(t, _)| *t <= now) {
            let Some((_, key)) = self.expiries.pop_first() else {
                break;
            };
            self.registered.remove(&key);
            let conn = key.0;
            self.update(conn, out, |h| {
                h.registrations = h.registrations.saturating_sub(1);
            });
        }
    }

    /// `conn` closed: it holds nothing any more (its sessions release nothing when they end).
    pub(crate) fn closed(&mut self, conn: ConnId) {
        self.held.remove(&conn);
    }
}

//! The relay's sides, filed by session: one table entry per session, its sides side by side
//! in one `Vec` (slot 0 the originator's, slot `i + 1` leg `i`'s), where one entry and one
//! boxed side per side were four entries and four blocks for an idle group session of
//! three invitees (issue 11 item 4). Looking a side up stays O(1): a hash of the session id
//! and an index.

use super::{Side, SideKey};
use crate::endpoint::NetMap;
use crate::endpoint::session::SessionId;
use crate::shrink::ShrinkIdle;

/// Every side of every session, by [`SideKey`].
#[derive(Default)]
pub(super) struct Sides {
    by_session: NetMap<SessionId, Vec<Option<Side>>>,
}

/// Where side `key` sits in its session's `Vec`.
fn slot(key: &SideKey) -> usize {
    // The originator's `u32::MAX` wraps to 0; leg `i` goes to `i + 1`.
    key.leg.wrapping_add(1) as usize
}

impl Sides {
    pub(super) fn get(&self, key: &SideKey) -> Option<&Side> {
        self.by_session.get(&key.sid)?.get(slot(key))?.as_ref()
    }

    pub(super) fn get_mut(&mut self, key: &SideKey) -> Option<&mut Side> {
        self.by_session
            .get_mut(&key.sid)?
            .get_mut(slot(key))?
            .as_mut()
    }

    /// Files `side` under `key`, in place of the side there was.
    pub(super) fn insert(&mut self, key: SideKey, side: Side) {
        let v = self.by_session.entry(key.sid).or_default();
        let i = slot(&key);
        if v.len() <= i {
            v.resize_with(i + 1, || None);
        }
        if let Some(s) = v.get_mut(i) {
            *s = Some(side);
        }
    }

    /// Takes side `key` out; its session keeps its entry until [`Sides::forget`].
    pub(super) fn remove(&mut self, key: &SideKey) -> Option<Side> {
        self.by_session
            .get_mut(&key.sid)?
            .get_mut(slot(key))?
            .take()
    }

    /// Drops session `sid`'s entry (its sides are all closed: the session is gone).
    pub(super) fn forget(&mut self, sid: SessionId) {
        self.by_session.remove(&sid);
    }

    /// Sessions filed (for tests).
    #[cfg(test)]
    pub(super) fn sessions(&self) -> usize {
        self.by_session.len()
    }

    pub(super) fn capacity(&self) -> usize {
        self.by_session.capacity()
    }

    pub(super) fn shrink_idle(&mut self) {
        self.by_session.shrink_idle();
    }
}

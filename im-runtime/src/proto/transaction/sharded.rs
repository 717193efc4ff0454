//! A [`TsxMap`] split into [`SHARDS`] maps by the key's hash, so that no single insert
//! rehashes the whole table.
//!
//! A server at 1,200 group sessions/s holds ~250,000 lingering transactions (RFC 3261 and
//! 6026 keep each 32 s over UDP). A hash table that size grows by doubling, and rehashes in
//! place when removals have left too many tombstones: either moves every entry inside one
//! insert. At ~200 bytes an entry that is tens of milliseconds, past the loop's 50 ms
//! overload threshold, so admission shed new sessions for a moment at each step (the 10-minute
//! soak's 503 bursts, `docs/performance.md`). Split by hash, each part resizes on its own,
//! at a different insert, and moves a [`SHARDS`]th of the entries.

use super::{TsxKey, TsxMap};

/// How many parts. Each empty part costs a few dozen bytes and no allocation.
pub(crate) const SHARDS: usize = 64;

/// Slots at or under which a part that holds anything is not shrunk: the floor the whole
/// table had, divided among the parts.
const SMALL_PART: usize = 1024 / SHARDS;

/// A map keyed by [`TsxKey`] in [`SHARDS`] parts; the part is picked by bits of the key's
/// precomputed hash that the parts' own tables do not use for their slots.
#[derive(Debug)]
pub(crate) struct ShardedTsxMap<V> {
    /// Boxed: 64 empty tables are 2 KiB, which would otherwise sit inline in the endpoint.
    shards: Box<[TsxMap<V>; SHARDS]>,
    len: usize,
}

impl<V> Default for ShardedTsxMap<V> {
    fn default() -> Self {
        ShardedTsxMap {
            shards: Box::new(std::array::from_fn(|_| TsxMap::default())),
            len: 0,
        }
    }
}

/// The part for `key`: bits 51 to 56 of its hash. hashbrown takes a slot from the low bits
/// (masked by the table's size) and its control byte from the top seven (57–63), so these
/// bits stay independent of both unless a single part exceeds 2⁵¹ slots.
fn shard_of(key: &TsxKey) -> usize {
    // The mask keeps the value below SHARDS, so the cast cannot truncate.
    ((key.table_hash() >> 51) as usize) & (SHARDS - 1)
}

impl<V> ShardedTsxMap<V> {
    // Part 0 is `first`, part i > 0 is `rest[i - 1]`: `shard_of` is below SHARDS, so this
    // is indexing without a panic path (0 wraps to an index `rest.get` refuses).
    fn part(&self, key: &TsxKey) -> &TsxMap<V> {
        let [first, rest @ ..] = &*self.shards;
        rest.get(shard_of(key).wrapping_sub(1)).unwrap_or(first)
    }

    fn part_mut(&mut self, key: &TsxKey) -> &mut TsxMap<V> {
        let [first, rest @ ..] = &mut *self.shards;
        rest.get_mut(shard_of(key).wrapping_sub(1)).unwrap_or(first)
    }

    /// Entries over all parts.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether no part holds anything.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value for `key`.
    pub(crate) fn get(&self, key: &TsxKey) -> Option<&V> {
        self.part(key).get(key)
    }

    /// The value for `key`, mutably.
    pub(crate) fn get_mut(&mut self, key: &TsxKey) -> Option<&mut V> {
        self.part_mut(key).get_mut(key)
    }

    /// The stored key (not the equal one given) and its value.
    pub(crate) fn get_key_value(&self, key: &TsxKey) -> Option<(&TsxKey, &V)> {
        self.part(key).get_key_value(key)
    }

    /// Whether `key` is present.
    pub(crate) fn contains_key(&self, key: &TsxKey) -> bool {
        self.part(key).contains_key(key)
    }

    /// Inserts, returning the value `key` had.
    pub(crate) fn insert(&mut self, key: TsxKey, value: V) -> Option<V> {
        let old = self.part_mut(&key).insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes `key`, returning its value.
    pub(crate) fn remove(&mut self, key: &TsxKey) -> Option<V> {
        let old = self.part_mut(key).remove(key);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// Every entry, part by part (no defined order).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&TsxKey, &V)> {
        self.shards.iter().flat_map(|m| m.iter())
    }

    /// Slots over all parts.
    pub(crate) fn capacity(&self) -> usize {
        self.shards.iter().map(|m| m.capacity()).sum()
    }

    /// Each part's (entries, slots), for tests of the structure.
    #[cfg(test)]
    pub(crate) fn parts(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.shards.iter().map(|m| (m.len(), m.capacity()))
    }

    /// Gives back the memory of a peak that has lingered out, part by part (see
    /// [`shrink_idle`]): each part shrinks on its own, so this too moves at most one
    /// part's entries per part.
    pub(crate) fn shrink_idle(&mut self) {
        for m in self.shards.iter_mut() {
            shrink_idle(m, SMALL_PART);
        }
    }
}

impl<'a, V> IntoIterator for &'a ShardedTsxMap<V> {
    type Item = (&'a TsxKey, &'a V);
    type IntoIter = Box<dyn Iterator<Item = (&'a TsxKey, &'a V)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// A table sized for a peak of lingering transactions (every UDP INVITE and non-INVITE
/// lingers 32 s, so at 1,000 group sessions/s some 200,000 are live) keeps that capacity
/// when the peak is over: a hash map never shrinks by itself, and its array stays resident.
/// Once fewer than an eighth of the slots are used, the table shrinks to twice what it
/// holds; the gap between the two factors keeps a table at a steady load from rehashing
/// back and forth. Tables of at most `small` slots are left alone while they hold anything.
///
/// An empty table gives its array back altogether. The last shrink to the floor happens as
/// a peak lingers out, while the allocator's pages are full of the peak's dying
/// transactions, so the floor array lands on one of those pages and then keeps it from
/// being purged. With 16-byte entries (a key and a box or a session id: the transaction
/// table's two maps and the endpoint's server index) that array is 32 buckets plus control
/// bytes, 560 bytes, in jemalloc's 640-byte class: one per part, 64 parts per map, three
/// maps per worker, and they held ~3 MiB of otherwise empty pages after a peak
/// (docs/performance.md, "What kept jemalloc's 640-byte class"). Freed once empty, a part
/// allocates afresh with its next transaction: at a load that leaves parts empty, a small
/// allocation now and then.
fn shrink_idle<V>(map: &mut TsxMap<V>, small: usize) {
    let (len, cap) = (map.len(), map.capacity());
    if len == 0 && cap > 0 {
        map.shrink_to(0);
    } else if cap > small && len < cap / 8 {
        map.shrink_to((len * 2).max(small));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::Method;

    fn key(i: usize) -> TsxKey {
        TsxKey::from_branch(&Method::Options, &format!("z9hG4bK{i:x}"), "h.example")
    }

    /// Growing to 100,000 entries: every resize of a part moves at most about a
    /// [`SHARDS`]th of what the whole holds (twice that, plus a small constant, bounds the
    /// spread of a random split with room to spare), where one table's last doubling moves
    /// more than half of it. The parts stay balanced, so the split bits are independent of
    /// the slots' bits.
    #[test]
    fn no_resize_moves_more_than_a_part() {
        const N: usize = 100_000;
        let mut m = ShardedTsxMap::default();
        let mut caps: Vec<usize> = m.parts().map(|(_, c)| c).collect();
        let mut resizes = 0;
        let mut largest_move = 0;
        for i in 0..N {
            m.insert(key(i), i);
            for (part, (len, cap)) in m.parts().enumerate() {
                let Some(before) = caps.get_mut(part) else {
                    continue;
                };
                if cap != *before {
                    // The resize happened inside this insert and moved what the part held.
                    let moved = len - 1;
                    assert!(
                        moved <= 2 * m.len() / SHARDS + 16,
                        "insert {i}: a part moved {moved} of {} entries",
                        m.len()
                    );
                    largest_move = largest_move.max(moved);
                    resizes += 1;
                    *before = cap;
                }
            }
        }
        assert_eq!(m.len(), N);
        assert!(resizes >= SHARDS * 8, "{resizes} resizes");
        assert!(largest_move < N / 32, "{largest_move}");
        for (len, _) in m.parts() {
            assert!(
                len > N / SHARDS / 2 && len < N / SHARDS * 2,
                "part of {len}"
            );
        }

        let mut one = TsxMap::default();
        let mut cap = one.capacity();
        let mut one_largest = 0;
        for i in 0..N {
            one.insert(key(i), i);
            if one.capacity() != cap {
                one_largest = one_largest.max(one.len() - 1);
                cap = one.capacity();
            }
        }
        assert!(one_largest > N / 2, "one table: {one_largest}");
    }

    #[test]
    fn behaves_as_one_map() {
        let mut m = ShardedTsxMap::default();
        assert!(m.is_empty());
        for i in 0..1_000 {
            assert_eq!(m.insert(key(i), i), None);
        }
        assert_eq!(m.insert(key(7), 70), Some(7));
        assert_eq!(m.len(), 1_000);
        assert_eq!(m.get(&key(7)), Some(&70));
        if let Some(v) = m.get_mut(&key(8)) {
            *v = 80;
        }
        assert_eq!(m.get_key_value(&key(8)).map(|(_, v)| *v), Some(80));
        assert!(m.contains_key(&key(999)) && !m.contains_key(&key(1_000)));
        assert_eq!(m.iter().count(), 1_000);
        for i in 0..1_000 {
            assert!(m.remove(&key(i)).is_some());
        }
        assert_eq!(m.remove(&key(0)), None);
        assert!(m.is_empty());
    }

    /// After a peak, an idle table keeps no array at all: the arrays a part keeps at its
    /// floor were allocated amid the peak's dying transactions and pinned their pages
    /// (see `shrink_idle`). A part that still holds entries keeps a
    /// small table, and one that refills works as before.
    #[test]
    fn an_idle_table_keeps_no_array() {
        let mut m = ShardedTsxMap::default();
        for i in 0..10_000 {
            m.insert(key(i), i);
        }
        // The peak lingers out in steps, as the timers end the transactions.
        for step in 0..10 {
            for i in (step * 1_000)..((step + 1) * 1_000) {
                m.remove(&key(i));
            }
            m.shrink_idle();
        }
        assert!(m.is_empty());
        assert_eq!(m.capacity(), 0, "parts kept arrays while empty");
        assert!(m.parts().all(|(_, cap)| cap == 0));
        // A few entries: the parts holding them keep a small table, the others none.
        for i in 0..5 {
            m.insert(key(i), i);
        }
        m.shrink_idle();
        let kept = m.parts().filter(|(_, cap)| *cap > 0).count();
        assert!((1..=5).contains(&kept), "{kept} parts with an array");
        assert!(m.capacity() <= 5 * SMALL_PART, "{}", m.capacity());
        assert_eq!(m.get(&key(3)), Some(&3));
    }
}

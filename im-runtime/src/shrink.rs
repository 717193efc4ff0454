//! Giving back the capacity of a peak. A hash map, a `Vec` or a `VecDeque` keeps the largest
//! capacity it ever had: after a burst the endpoint's indexes (one entry per lingering
//! transaction, dialog or session) hold arrays sized for it, resident however few entries
//! are left (the 10-minute soak of 2026-12-06 ended 24.7 MiB over its start). The owners
//! call [`ShrinkIdle::shrink_idle`] on their idle paths (the endpoint on each timer tick,
//! the driver when its send queue drains).
//!
//! A table is shrunk once fewer than a quarter of its slots are used, to twice what it
//! holds: it grows again only after its entries at least double and shrinks again only
//! after they fall by a good part, so each resize is paid for by as many inserts or removals
//! as it moves (O(1) amortized), and a table at a steady load never resizes back and forth.
//! Small tables are left alone.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};

/// Capacity at or under which nothing is shrunk: not worth a rehash.
pub(crate) const SMALL: usize = 64;

/// Floor for buffers that fill and empty on every input (output queues): at or under it,
/// a burst's capacity is kept, so that a steady load does not allocate it again each time.
pub(crate) const TRANSIENT: usize = 4096;

/// See the module documentation.
pub(crate) trait ShrinkIdle {
    /// (entries, capacity).
    fn len_cap(&self) -> (usize, usize);
    /// Shrinks the capacity to at least `n`.
    fn shrink_cap(&mut self, n: usize);

    /// Shrinks to twice the length when under a quarter of the capacity is used and the
    /// capacity is over [`SMALL`]. O(1) when nothing is to be done.
    fn shrink_idle(&mut self) {
        self.shrink_idle_over(SMALL);
    }

    /// As [`ShrinkIdle::shrink_idle`], with `floor` in place of [`SMALL`].
    fn shrink_idle_over(&mut self, floor: usize) {
        let (len, cap) = self.len_cap();
        if cap > floor && len < cap / 4 {
            self.shrink_cap((len * 2).max(floor));
        }
    }
}

impl<K: Eq + Hash, V, S: BuildHasher> ShrinkIdle for HashMap<K, V, S> {
    fn len_cap(&self) -> (usize, usize) {
        (self.len(), self.capacity())
    }
    fn shrink_cap(&mut self, n: usize) {
        self.shrink_to(n);
    }
}

impl<T> ShrinkIdle for Vec<T> {
    fn len_cap(&self) -> (usize, usize) {
        (self.len(), self.capacity())
    }
    fn shrink_cap(&mut self, n: usize) {
        self.shrink_to(n);
    }
}

impl<T> ShrinkIdle for VecDeque<T> {
    fn len_cap(&self) -> (usize, usize) {
        (self.len(), self.capacity())
    }
    fn shrink_cap(&mut self, n: usize) {
        self.shrink_to(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peak_is_given_back_once_the_table_is_sparse() {
        let mut m: HashMap<u32, u64> = HashMap::new();
        m.extend((0..100_000).map(|i| (i, 0)));
        let peak = m.capacity();
        // Half gone: still in use, kept (`capacity` counts the slots free for inserts, so
        // the deleted entries' tombstones lower it a little without any resize).
        m.retain(|k, _| k % 2 == 0);
        m.shrink_idle();
        assert!(m.capacity() > peak * 3 / 4, "{} of {peak}", m.capacity());
        // Down to 1 %: shrunk to a small multiple of what is left, entries kept.
        m.retain(|k, _| k % 100 == 0);
        m.shrink_idle();
        assert!(m.capacity() >= 2 * m.len(), "{}", m.capacity());
        assert!(m.capacity() < peak / 8, "{} of {peak}", m.capacity());
        assert_eq!(m.len(), 1000);
        assert!(m.keys().all(|k| k % 100 == 0));
        // Idle and empty: down to the floor, not to nothing.
        m.clear();
        m.shrink_idle();
        assert!(m.capacity() >= SMALL && m.capacity() <= 2 * SMALL);
    }

    #[test]
    fn a_steady_table_does_not_resize_back_and_forth() {
        // A vector, whose capacity is exact (a hash map's `capacity` also moves with its
        // tombstones).
        let mut v: Vec<u32> = (0..10_000).collect();
        v.truncate(1000);
        v.shrink_idle();
        assert_eq!(v.capacity(), 2000);
        // Entries come and go between 1,000 and 2,000: never resized again.
        for round in 0..20 {
            v.extend(0..1000);
            v.shrink_idle();
            v.truncate(1000);
            v.shrink_idle();
            assert_eq!(v.capacity(), 2000, "round {round}");
        }
        // Down to 400: under a quarter, shrunk to twice that.
        v.truncate(400);
        v.shrink_idle();
        assert_eq!(v.capacity(), 800);
    }

    #[test]
    fn vectors_and_queues_shrink_the_same_way() {
        let mut v: Vec<u64> = (0..10_000).collect();
        v.truncate(10);
        v.shrink_idle();
        assert_eq!(v.capacity(), SMALL);
        let mut q: VecDeque<u64> = (0..10_000).collect();
        q.truncate(3000);
        q.shrink_idle();
        assert!(q.capacity() >= 10_000, "a third used: kept");
        q.clear();
        q.shrink_idle();
        assert!(q.capacity() < 10_000 && q.capacity() >= SMALL);
        let mut small: Vec<u8> = Vec::with_capacity(SMALL);
        small.shrink_idle();
        assert_eq!(small.capacity(), SMALL);
        // A transient buffer keeps up to its floor.
        let mut out: VecDeque<u64> = VecDeque::with_capacity(TRANSIENT);
        out.shrink_idle_over(TRANSIENT);
        assert!(out.capacity() >= TRANSIENT);
        out.extend(0..4 * TRANSIENT as u64);
        out.clear();
        out.shrink_idle_over(TRANSIENT);
        assert!((TRANSIENT..2 * TRANSIENT).contains(&out.capacity()));
    }
}

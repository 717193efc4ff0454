//! Every identifier the endpoint mints: tags, branches, tokens, and the two that peers send
//! back to us, the Call-IDs of the requests we originate (invitee INVITEs, exploded MESSAGEs)
//! and MSRP session ids. Those two are minted only by [`Ids::call_id`] and
//! [`Ids::msrp_session_id`], so that making them land on a given shard is a change here.

use crate::proto::msrp;
use crate::steer::Shard;
use std::net::IpAddr;

/// The endpoint's id generator.
#[derive(Debug)]
pub(crate) struct Ids {
    rng: u64,
    shard: Shard,
}

impl Ids {
    /// A generator seeded with `seed` (the IO layer passes real randomness) for the endpoint
    /// that is `shard`.
    pub(crate) fn new(seed: u64, shard: Shard) -> Ids {
        Ids {
            rng: seed | 1,
            shard,
        }
    }

    /// 64 random bits.
    pub(crate) fn rand(&mut self) -> u64 {
        // xorshift64*: enough for unguessable-in-practice ids given a random seed; ids need
        // uniqueness and unpredictability, not cryptographic strength.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `words` × 16 hex digits.
    pub(crate) fn token(&mut self, words: usize) -> String {
        let mut s = String::with_capacity(16 * words);
        for _ in 0..words {
            push_hex16(&mut s, self.rand());
        }
        s
    }

    /// Our tag of a dialog peers may send a SUBSCRIBE in (the originator's INVITE dialog, an
    /// invitee leg's, a conference subscription's): the IO layer steers a SUBSCRIBE by its
    /// To tag (`steer::conference_key`, as a subscriber picks its own Call-ID), so the tag is
    /// drawn until it steers to this shard, as [`Ids::call_id`] draws Call-IDs.
    pub(crate) fn dialog_tag(&mut self) -> String {
        let mut tag = self.token(1);
        for _ in 0..64 * self.shard.count.max(1) {
            if self.shard.owns(tag.as_bytes()) {
                break;
            }
            tag = self.token(1);
        }
        tag
    }

    /// `prefix` then one word of 16 hex digits (`prefix` + `token(1)`), in one allocation:
    /// a branch (`z9hG4bK…`) or a multipart boundary per request the server originates.
    pub(crate) fn prefixed_token(&mut self, prefix: &str) -> String {
        let mut s = String::with_capacity(prefix.len() + 16);
        s.push_str(prefix);
        push_hex16(&mut s, self.rand());
        s
    }

    /// `N` random bytes.
    pub(crate) fn random_bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            let r = self.rand().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        out
    }

    /// The Call-ID of a request the server originates (an invitee INVITE, an exploded
    /// MESSAGE): its responses and in-dialog requests come back with it.
    ///
    /// The IO layer steers what peers send by the hash of its Call-ID, so the id is drawn
    /// until it hashes to this shard (one draw when not sharded, `count` expected otherwise).
    /// The bound only matters for a shard index outside `0..count`, a misconfiguration that
    /// must not hang the loop.
    pub(crate) fn call_id(&mut self, host: IpAddr) -> String {
        let mut id = String::with_capacity(48);
        for _ in 0..64 * self.shard.count.max(1) {
            id.clear();
            // What `token(2)` gives, then `@host`: written in place, one per request the
            // server originates.
            for _ in 0..2 {
                push_hex16(&mut id, self.rand());
            }
            id.push('@');
            super::session::push_ip(&mut id, host);
            if self.shard.owns(id.as_bytes()) {
                break;
            }
        }
        id
    }

    /// A local MSRP session id (the last segment of our `a=path`): peers' MSRP requests name
    /// it in To-Path.
    pub(crate) fn msrp_session_id(&mut self) -> String {
        msrp::session_id_from_random(&self.random_bytes::<12>())
    }
}

/// The key the endpoint's dialog index files a dialog under: the 64 bits our tag's 16 hex
/// digits spell ([`Ids::dialog_tag`] makes every tag we put in a dialog). No two tags of
/// one generator share a key: xorshift64* passes through each non-zero state once per
/// period and its output multiplier is odd, so its draws never repeat. So the index keeps
/// neither the tag nor the Call-ID (the session holds both, and a lookup checks the
/// Call-ID there). `None` for any other text: not a tag of ours.
pub(crate) fn tag_key(tag: &str) -> Option<u64> {
    if tag.len() != 16 {
        return None;
    }
    tag.bytes().try_fold(0u64, |n, b| {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        Some((n << 4) | u64::from(d))
    })
}

/// A leg's index or the originator's side of a session (`None`), in 4 bytes where
/// `Option<usize>` takes 16: the dialog index and the session timers keep one per entry, for
/// every session's whole life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct LegSlot(u32);

impl LegSlot {
    /// The value that stands for the originator's side.
    const ORIGINATOR: u32 = u32::MAX;

    /// The originator's side.
    pub(crate) const ORIGINATOR_SIDE: LegSlot = LegSlot(LegSlot::ORIGINATOR);

    /// The slot of leg `leg` (`None`: the originator's side); `None` when the index does not
    /// fit in 32 bits (no session gets near: its recipients are capped far below).
    pub(crate) fn new(leg: Option<usize>) -> Option<LegSlot> {
        match leg {
            None => Some(LegSlot::ORIGINATOR_SIDE),
            Some(i) => u32::try_from(i)
                .ok()
                .filter(|&i| i != LegSlot::ORIGINATOR)
                .map(LegSlot),
        }
    }

    /// The leg's index, `None` for the originator's side.
    pub(crate) fn leg(self) -> Option<usize> {
        (self.0 != LegSlot::ORIGINATOR).then_some(self.0 as usize)
    }
}

/// Appends `n` as 16 lower-case hex digits, as `{:016x}` writes it.
fn push_hex16(out: &mut String, n: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..16).rev() {
        if let Some(&d) = DIGITS.get(((n >> (shift * 4)) & 0xf) as usize) {
            out.push(char::from(d));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leg_slots_round_trip_and_keep_the_originator_apart() {
        assert_eq!(
            std::mem::size_of::<(super::super::session::SessionId, LegSlot)>(),
            16
        );
        for leg in [
            None,
            Some(0),
            Some(1),
            Some(2),
            Some(999),
            Some(u32::MAX as usize - 1),
        ] {
            assert_eq!(LegSlot::new(leg).map(LegSlot::leg), Some(leg));
        }
        assert_ne!(LegSlot::new(None), LegSlot::new(Some(0)));
        // An index the originator's value would stand for, or beyond 32 bits, has no slot.
        assert_eq!(LegSlot::new(Some(u32::MAX as usize)), None);
        assert_eq!(LegSlot::new(Some(usize::MAX)), None);
    }

    #[test]
    fn minted_ids_differ_and_follow_the_seed() {
        let mut a = Ids::new(7, Shard::default());
        let mut b = Ids::new(7, Shard::default());
        let ip: IpAddr = [192, 0, 2, 1].into();
        let x = a.call_id(ip);
        assert_eq!(x, b.call_id(ip), "same seed, same ids");
        assert!(x.ends_with("@192.0.2.1"), "{x}");
        assert_ne!(a.call_id(ip), x);
        let s1 = a.msrp_session_id();
        let s2 = a.msrp_session_id();
        assert_ne!(s1, s2);
        assert!(!s1.is_empty() && s1.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn tokens_and_call_ids_are_written_as_format_would() {
        let mut a = Ids::new(99, Shard::default());
        let mut b = Ids::new(99, Shard::default());
        let ip: IpAddr = [10, 200, 0, 7].into();
        for _ in 0..100 {
            let expect: String = (0..3).map(|_| format!("{:016x}", b.rand())).collect();
            assert_eq!(a.token(3), expect);
            let expect = format!("{:016x}{:016x}@{ip}", b.rand(), b.rand());
            assert_eq!(a.call_id(ip), expect);
            let expect = format!("z9hG4bK{}", b.token(1));
            assert_eq!(a.prefixed_token("z9hG4bK"), expect);
        }
        let v6: IpAddr = "2001:db8::1".parse().unwrap_or(ip);
        let expect = format!("{:016x}{:016x}@{v6}", b.rand(), b.rand());
        assert_eq!(a.call_id(v6), expect);
    }

    #[test]
    fn a_tag_we_make_has_its_own_key_and_other_text_none() {
        let mut ids = Ids::new(5, Shard::default());
        let mut keys = std::collections::HashSet::new();
        for _ in 0..1_000 {
            let tag = ids.dialog_tag();
            let k = tag_key(&tag);
            assert_eq!(k.map(|k| format!("{k:016x}")), Some(tag.clone()), "{tag}");
            assert!(keys.insert(k), "no two tags share a key");
        }
        for other in [
            "",
            "0123",
            "0123456789ABCDEF",
            "0123456789abcdeg",
            "0123456789abcdef0",
        ] {
            assert_eq!(tag_key(other), None, "{other:?}");
        }
    }

    #[test]
    fn dialog_tags_steer_back_to_the_minting_shard() {
        for index in 0..3 {
            let mut ids = Ids::new(7, Shard { index, count: 3 });
            for _ in 0..50 {
                let tag = ids.dialog_tag();
                assert_eq!(crate::steer::steer(tag.as_bytes(), 3), index, "{tag}");
            }
        }
    }

    #[test]
    fn call_ids_steer_back_to_the_minting_shard() {
        let ip: IpAddr = [192, 0, 2, 1].into();
        for index in 0..3 {
            let shard = Shard { index, count: 3 };
            let mut ids = Ids::new(11, shard);
            for _ in 0..50 {
                let id = ids.call_id(ip);
                assert_eq!(crate::steer::steer(id.as_bytes(), 3), index, "{id}");
            }
        }
    }
}

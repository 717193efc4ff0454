//! Transaction keys: which transaction a message belongs to (RFC 3261 §17.1.3, §17.2.3).

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, OnceLock};

use crate::machine::Method;
use crate::proto::decimal::decimal_bytes;

/// The prefix of every RFC 3261 branch (§8.1.1.7). A branch without it comes from an
/// RFC 2543 element and cannot be trusted to be unique, so the key falls back to the
/// dialog-ish fields of the request.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// The top Via of a message, reduced to what transaction matching reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TopVia<'a> {
    /// `sent-by`: host with optional port (`192.0.2.1:5060`, `pc33.example.com`).
    pub sent_by: &'a str,
    /// The `branch` parameter, when present.
    pub branch: Option<&'a str>,
    /// The whole header value, as the RFC 2543 fallback compares it.
    pub raw: &'a str,
}

/// The fields the RFC 2543 fallback key is built from (§17.2.3, last paragraphs). Only read
/// when the top Via branch lacks [`MAGIC_COOKIE`]. Responses carry no Request-URI; an empty
/// one is fine there, because a response without the cookie can never match a client
/// transaction of ours (we always send the cookie).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rfc2543Parts<'a> {
    /// The Request-URI as it appeared.
    pub request_uri: &'a str,
    /// The From tag (empty when absent).
    pub from_tag: &'a str,
    /// The Call-ID.
    pub call_id: &'a str,
    /// The CSeq sequence number (the method is taken from the key's method).
    pub cseq: u32,
}

/// Identifies one transaction.
///
/// Requests and responses of a transaction map to the same key:
///
/// * with an RFC 3261 branch (it starts with `z9hG4bK`): the branch, the top Via sent-by
///   (host compared case-insensitively) and the method;
/// * otherwise (RFC 2543 peers): Request-URI, From tag, Call-ID, CSeq number, the top Via
///   and the method.
///
/// The method maps as §17.2.3 asks: an ACK belongs to the INVITE transaction it
/// acknowledges, so an ACK's key carries `INVITE`. A CANCEL is a transaction of its own
/// (its key carries `CANCEL`); [`TsxKey::cancelled_invite`] gives the key of the INVITE it
/// cancels (§9.2: same branch, different method).
///
/// Client and server transactions are kept apart by the table, so the same key may name a
/// client and a server transaction at once (a request looped back to ourselves).
///
/// A key is shared, not copied: cloning it (every map and index that names a transaction
/// holds one) costs a reference count, and its hash is computed once, when the key is made,
/// with a per-process random seed (the branch and Call-ID come from the network, so an
/// unkeyed hash would let a peer choose colliding keys). Maps keyed by `TsxKey` should use
/// [`TsxMap`], whose hasher passes that precomputed hash through.
#[derive(Clone)]
pub struct TsxKey(Arc<Inner>);

struct Inner {
    /// Keyed hash of `id` and `method`, computed once.
    hash: u64,
    id: KeyId,
    method: Method,
}

/// How many bytes of branch and sent-by a key keeps inside its own allocation. With the
/// other fields the key is then one 96-byte block, where it was an 80-byte key and its text
/// (32 or 48 bytes for up to 48) apart; our keys (a 23-byte branch and an IPv4 sent-by with
/// port, ~37 bytes) and SIPp's fit, so every message sent or received makes one allocation
/// for its key, not two. Longer ones (PJSIP's 41-byte branches) keep the text apart.
const SHORT: usize = 45;

#[derive(Clone)]
enum KeyId {
    /// The branch followed by the lower-cased sent-by, inside the key; `bytes` past `len`
    /// are zero.
    Short {
        split: u8,
        len: u8,
        bytes: [u8; SHORT],
    },
    /// The same, longer than [`SHORT`] bytes, in one allocation of its own.
    Branch { text: Box<str>, split: u32 },
    /// Boxed: only a peer without RFC 3261 branches makes one, and inline it would make
    /// every key (each live transaction has one) ~50 bytes larger.
    Rfc2543(Box<Rfc2543Id>),
}

impl KeyId {
    /// The branch identity's text and where the branch ends in it; `None` for an RFC 2543
    /// identity.
    fn text(&self) -> Option<(&[u8], u32)> {
        match self {
            KeyId::Short { split, len, bytes } => Some((
                bytes.get(..usize::from(*len)).unwrap_or_default(),
                u32::from(*split),
            )),
            KeyId::Branch { text, split } => Some((text.as_bytes(), *split)),
            KeyId::Rfc2543(_) => None,
        }
    }

    /// [`KeyId::text`] as a `str` (it is made from two `str`s and ASCII).
    fn text_str(&self) -> Option<(&str, u32)> {
        let (t, split) = self.text()?;
        Some((std::str::from_utf8(t).unwrap_or_default(), split))
    }
}

impl PartialEq for KeyId {
    fn eq(&self, other: &KeyId) -> bool {
        match (self, other) {
            (KeyId::Rfc2543(a), KeyId::Rfc2543(b)) => a == b,
            _ => self.text().is_some_and(|a| other.text() == Some(a)),
        }
    }
}

impl Eq for KeyId {}

impl Hash for KeyId {
    /// As `#[derive(Hash)]` hashed this enum when it had only the `Branch` and `Rfc2543`
    /// variants (the discriminant as an `isize`, then the fields): [`TsxKey::stable_hash`]
    /// gives the values it gave, so the To tags it makes are unchanged, whichever variant
    /// holds the text.
    fn hash<H: Hasher>(&self, state: &mut H) {
        match (self, self.text_str()) {
            (_, Some((text, split))) => {
                state.write_isize(0);
                text.hash(state);
                split.hash(state);
            }
            (KeyId::Rfc2543(r), None) => {
                state.write_isize(1);
                r.hash(state);
            }
            _ => {}
        }
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, self.text_str()) {
            (_, Some((text, split))) => f
                .debug_struct("Branch")
                .field("text", &text)
                .field("split", &split)
                .finish(),
            (KeyId::Rfc2543(r), None) => f.debug_tuple("Rfc2543").field(r).finish(),
            _ => Ok(()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Rfc2543Id {
    request_uri: Box<str>,
    from_tag: Box<str>,
    call_id: Box<str>,
    cseq: u32,
    top_via: Box<str>,
}

/// The process's seed for [`TsxKey`] hashes: random, chosen once.
fn seed() -> &'static foldhash::quality::RandomState {
    static SEED: OnceLock<foldhash::quality::RandomState> = OnceLock::new();
    SEED.get_or_init(foldhash::quality::RandomState::default)
}

impl TsxKey {
    fn from_parts(id: KeyId, method: Method) -> TsxKey {
        // The text hashed as bytes (no UTF-8 check, unlike `KeyId`'s `Hash`): this hash only
        // has to agree between keys of this process.
        let hash = match id.text() {
            Some(text) => seed().hash_one((text, &method)),
            None => seed().hash_one((&id, &method)),
        };
        TsxKey(Arc::new(Inner { hash, id, method }))
    }

    /// The key of a request with `method`, or of a response whose CSeq method is `method`.
    ///
    /// `legacy` is read only when the branch lacks the magic cookie.
    pub fn new(method: &Method, via: TopVia<'_>, legacy: Rfc2543Parts<'_>) -> TsxKey {
        let method = match method {
            Method::Ack => Method::Invite,
            other => other.clone(),
        };
        let id = match via.branch {
            Some(branch) if branch.starts_with(MAGIC_COOKIE) => {
                branch_id(branch, via.sent_by.trim(), None)
            }
            _ => rfc2543_id(via.raw, legacy),
        };
        TsxKey::from_parts(id, method)
    }

    /// [`TsxKey::new`] for a top Via given as the host and port a parsed Via holds, so that
    /// `host:port` is not formatted first.
    pub fn from_via(
        method: &Method,
        branch: Option<&str>,
        host: &str,
        port: Option<u16>,
        raw_via: &str,
        legacy: Rfc2543Parts<'_>,
    ) -> TsxKey {
        let method = match method {
            Method::Ack => Method::Invite,
            other => other.clone(),
        };
        let id = match branch {
            Some(branch) if branch.starts_with(MAGIC_COOKIE) => {
                branch_id(branch, host.trim(), port)
            }
            _ => rfc2543_id(raw_via, legacy),
        };
        TsxKey::from_parts(id, method)
    }

    /// Shorthand for an RFC 3261 key from a branch and sent-by; a branch without the cookie
    /// gives an RFC 2543 key with empty dialog fields (useful only in tests).
    pub fn from_branch(method: &Method, branch: &str, sent_by: &str) -> TsxKey {
        TsxKey::new(
            method,
            TopVia {
                sent_by,
                branch: Some(branch),
                raw: "",
            },
            Rfc2543Parts::default(),
        )
    }

    /// The keyed hash computed when the key was made (what [`TsxMap`] hashes with); the
    /// sharded tables pick a part by it.
    pub(crate) fn table_hash(&self) -> u64 {
        self.0.hash
    }

    /// The method of the transaction (`INVITE` for an ACK).
    pub fn method(&self) -> &Method {
        &self.0.method
    }

    /// The branch, when the key is an RFC 3261 one.
    pub fn branch(&self) -> Option<&str> {
        let (text, split) = self.0.id.text_str()?;
        text.get(..split as usize)
    }

    /// Whether the key came from an RFC 3261 branch (not the RFC 2543 fallback).
    pub fn is_rfc3261(&self) -> bool {
        !matches!(self.0.id, KeyId::Rfc2543(_))
    }

    /// For a CANCEL's key, the key of the INVITE transaction it cancels; `None` for other
    /// methods.
    pub fn cancelled_invite(&self) -> Option<TsxKey> {
        (self.0.method == Method::Cancel).then(|| self.with_method(Method::Invite))
    }

    /// The same identity with another method: the CANCEL for an INVITE reuses its branch.
    pub(crate) fn with_method(&self, method: Method) -> TsxKey {
        TsxKey::from_parts(self.0.id.clone(), method)
    }

    /// Whether both are the same allocation (not merely equal).
    #[cfg(test)]
    pub(crate) fn shares(&self, other: &TsxKey) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// A hash of the key's contents that is the same in every process and every run (the
    /// map hash is seeded per process): for values derived from a key that peers see, such
    /// as the To tag of an answer written by the transaction layer, which must be the same
    /// for a retransmission and reproducible in tests.
    pub fn stable_hash(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.0.id.hash(&mut h);
        self.0.method.hash(&mut h);
        h.finish()
    }
}

/// `:<port>` in decimal, in the first bytes of `out`; how many.
fn port_text(port: u16, out: &mut [u8; 6]) -> usize {
    let mut digits = [0u8; 20];
    let digits = decimal_bytes(&mut digits, u64::from(port));
    if let Some(c) = out.first_mut() {
        *c = b':';
    }
    if let Some(dst) = out.get_mut(1..=digits.len()) {
        dst.copy_from_slice(digits);
    }
    digits.len() + 1
}

/// An RFC 3261 identity: `branch`, then the sent-by `host` (lower-cased: hosts compare
/// case-insensitively) with its `port`: inside the key when it fits in [`SHORT`] bytes,
/// else in one exactly sized allocation.
fn branch_id(branch: &str, host: &str, port: Option<u16>) -> KeyId {
    let mut port_buf = [0u8; 6];
    let port_len = port.map_or(0, |p| port_text(p, &mut port_buf));
    let port_bytes = port_buf.get(..port_len).unwrap_or_default();
    let (b, h) = (branch.len(), host.len());
    let total = b + h + port_len;
    if total <= SHORT {
        let mut bytes = [0u8; SHORT];
        if let Some(dst) = bytes.get_mut(..b) {
            dst.copy_from_slice(branch.as_bytes());
        }
        if let Some(dst) = bytes.get_mut(b..b + h) {
            dst.copy_from_slice(host.as_bytes());
            dst.make_ascii_lowercase();
        }
        if let Some(dst) = bytes.get_mut(b + h..total) {
            dst.copy_from_slice(port_bytes);
        }
        // Both at most SHORT (45), so the casts cannot truncate.
        return KeyId::Short {
            split: b as u8,
            len: total as u8,
            bytes,
        };
    }
    let mut text = String::with_capacity(total);
    text.push_str(branch);
    text.push_str(host);
    // Lower-cased in place: mapping char by char cost ~10 instructions a byte.
    if let Some(h) = text.get_mut(b..) {
        h.make_ascii_lowercase();
    }
    // ASCII digits after a colon.
    text.push_str(std::str::from_utf8(port_bytes).unwrap_or_default());
    KeyId::Branch {
        // A branch longer than 4 GiB cannot come out of a message we accept.
        split: u32::try_from(b).unwrap_or(u32::MAX),
        text: text.into_boxed_str(),
    }
}

/// The RFC 2543 identity (§17.2.3, last paragraphs).
fn rfc2543_id(raw_via: &str, legacy: Rfc2543Parts<'_>) -> KeyId {
    KeyId::Rfc2543(Box::new(Rfc2543Id {
        request_uri: legacy.request_uri.trim().into(),
        from_tag: legacy.from_tag.into(),
        call_id: legacy.call_id.trim().into(),
        cseq: legacy.cseq,
        top_via: raw_via.trim().into(),
    }))
}

impl PartialEq for TsxKey {
    fn eq(&self, other: &TsxKey) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.hash == other.0.hash
                && self.0.method == other.0.method
                && self.0.id == other.0.id)
    }
}

impl Eq for TsxKey {}

impl Hash for TsxKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash);
    }
}

impl fmt::Debug for TsxKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsxKey")
            .field("id", &self.0.id)
            .field("method", &self.0.method)
            .finish()
    }
}

/// A map keyed by [`TsxKey`] that reuses the key's precomputed, seeded hash instead of
/// hashing the key again.
pub type TsxMap<V> = HashMap<TsxKey, V, BuildKeyHasher>;

/// The [`BuildHasher`] of [`TsxMap`].
#[derive(Clone, Copy, Debug, Default)]
pub struct BuildKeyHasher;

impl BuildHasher for BuildKeyHasher {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0)
    }
}

/// The [`Hasher`] of [`TsxMap`]: a [`TsxKey`] writes its precomputed hash as one `u64`,
/// which this takes as it is.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Only reached if something other than a `TsxKey` is hashed with it: fold the
        // bytes in so the result still depends on all of them.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn via(branch: &str) -> TopVia<'_> {
        TopVia {
            sent_by: "PC33.example.com:5060",
            branch: Some(branch),
            raw: "SIP/2.0/UDP pc33.example.com:5060;branch=1234",
        }
    }

    fn legacy(cseq: u32) -> Rfc2543Parts<'static> {
        Rfc2543Parts {
            request_uri: "sip:bob@example.com",
            from_tag: "ft",
            call_id: "cid@pc33",
            cseq,
        }
    }

    #[test]
    fn ack_maps_to_invite_and_cancel_stays_apart() {
        let invite = TsxKey::new(&Method::Invite, via("z9hG4bKabc"), legacy(1));
        let ack = TsxKey::new(&Method::Ack, via("z9hG4bKabc"), legacy(1));
        let cancel = TsxKey::new(&Method::Cancel, via("z9hG4bKabc"), legacy(1));
        assert_eq!(invite, ack);
        assert_ne!(invite, cancel);
        assert_eq!(cancel.cancelled_invite(), Some(invite.clone()));
        assert_eq!(invite.cancelled_invite(), None);
        assert!(invite.is_rfc3261());
        assert_eq!(invite.branch(), Some("z9hG4bKabc"));
    }

    #[test]
    fn sent_by_host_is_case_insensitive_branch_is_not() {
        let a = TsxKey::from_branch(&Method::Bye, "z9hG4bKx", "PC33.example.com");
        let b = TsxKey::from_branch(&Method::Bye, "z9hG4bKx", "pc33.EXAMPLE.com");
        let c = TsxKey::from_branch(&Method::Bye, "z9hG4bKX", "pc33.example.com");
        let d = TsxKey::from_branch(&Method::Bye, "z9hG4bKx", "pc34.example.com");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn rfc2543_fallback_uses_dialog_fields() {
        let a = TsxKey::new(&Method::Invite, via("1234"), legacy(1));
        let ack = TsxKey::new(&Method::Ack, via("1234"), legacy(1));
        let other_cseq = TsxKey::new(&Method::Invite, via("1234"), legacy(2));
        let no_branch = TsxKey::new(
            &Method::Invite,
            TopVia {
                branch: None,
                ..via("")
            },
            legacy(1),
        );
        assert!(!a.is_rfc3261());
        assert_eq!(a.branch(), None);
        assert_eq!(a, ack);
        assert_ne!(a, other_cseq);
        // Same raw Via, no branch parameter at all: still the fallback, same fields.
        assert_eq!(a, no_branch);
    }

    #[test]
    fn keys_built_apart_hash_alike_and_find_each_other_in_a_map() {
        let a = TsxKey::new(&Method::Invite, via("z9hG4bKabc"), legacy(1));
        let b = TsxKey::new(&Method::Ack, via("z9hG4bKabc"), legacy(1));
        let c = TsxKey::new(&Method::Invite, via("z9hG4bKabd"), legacy(1));
        let build = BuildKeyHasher;
        assert_eq!(build.hash_one(&a), build.hash_one(&b));
        assert_ne!(build.hash_one(&a), build.hash_one(&c));
        assert_eq!(a.stable_hash(), b.stable_hash());
        assert_ne!(a.stable_hash(), c.stable_hash());
        let mut m = TsxMap::default();
        m.insert(a.clone(), 1);
        m.insert(c, 2);
        assert_eq!(m.get(&b), Some(&1));
        // The CANCEL's INVITE key is built anew, not shared, and still matches.
        let cancel = a.with_method(Method::Cancel);
        assert_eq!(m.get(&cancel.cancelled_invite().unwrap()), Some(&1));
        assert_eq!(m.get(&cancel), None);
    }

    #[test]
    fn from_via_equals_new_with_host_and_port_formatted() {
        for (host, port) in [
            ("PC33.Example.com", Some(5060)),
            ("192.0.2.1", Some(9)),
            ("h", Some(65535)),
            ("[2001:DB8::1]", Some(10)),
            ("pc33.example.com", None),
        ] {
            let sent_by = match port {
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            };
            let a = TsxKey::from_branch(&Method::Invite, "z9hG4bKq", &sent_by);
            let b = TsxKey::from_via(
                &Method::Ack,
                Some("z9hG4bKq"),
                host,
                port,
                "",
                Rfc2543Parts::default(),
            );
            assert_eq!(a, b, "{sent_by}");
            assert_eq!(a.stable_hash(), b.stable_hash());
            assert_eq!(b.branch(), Some("z9hG4bKq"));
        }
        let old = TsxKey::new(&Method::Invite, via("1234"), legacy(1));
        let raw = via("1234").raw;
        let new = TsxKey::from_via(&Method::Invite, Some("1234"), "x", None, raw, legacy(1));
        assert_eq!(old, new);
        assert!(!new.is_rfc3261());
    }

    /// The identity as the key kept it before the text could sit inside the key: what
    /// `#[derive(Hash)]` made of it is what `stable_hash` (To tags on the wire) must keep.
    #[derive(Hash)]
    enum OldId {
        Branch { text: Box<str>, split: u32 },
        Rfc2543(Box<Rfc2543Id>),
    }

    fn old_stable_hash(id: &OldId, method: &Method) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut h);
        method.hash(&mut h);
        h.finish()
    }

    #[test]
    fn short_and_long_identities_match_hash_and_read_as_before() {
        // Branches around the inline limit, with and without a port, mixed-case hosts.
        for blen in [
            7,
            23,
            40,
            SHORT - 14,
            SHORT - 13,
            SHORT - 12,
            SHORT - 1,
            SHORT,
            90,
        ] {
            let branch = format!("z9hG4bK{}", "a".repeat(blen - 7));
            for (host, port) in [
                ("PC33.Example.com", Some(5060u16)),
                ("192.0.2.1", Some(0)),
                ("h", Some(65535)),
                ("Atlanta.COM", None),
            ] {
                let key = TsxKey::from_via(
                    &Method::Message,
                    Some(&branch),
                    host,
                    port,
                    "",
                    Rfc2543Parts::default(),
                );
                let sent_by = match port {
                    Some(p) => format!("{}:{p}", host.to_ascii_lowercase()),
                    None => host.to_ascii_lowercase(),
                };
                let text = format!("{branch}{sent_by}");
                let inline = text.len() <= SHORT;
                assert_eq!(
                    matches!(key.0.id, KeyId::Short { .. }),
                    inline,
                    "{text}: {} bytes",
                    text.len()
                );
                assert_eq!(key.branch(), Some(branch.as_str()));
                assert!(key.is_rfc3261());
                let old = OldId::Branch {
                    text: text.clone().into_boxed_str(),
                    split: branch.len() as u32,
                };
                assert_eq!(
                    key.stable_hash(),
                    old_stable_hash(&old, &Method::Message),
                    "{text}"
                );
                // Made again from the other form of the sent-by, and with another method.
                let again = TsxKey::from_branch(&Method::Message, &branch, &sent_by.to_uppercase());
                assert_eq!(key, again);
                assert_eq!(key.table_hash(), again.table_hash());
                assert_ne!(key, key.with_method(Method::Cancel));
                let other = TsxKey::from_branch(&Method::Message, &format!("{branch}b"), &sent_by);
                assert_ne!(key, other);
                assert!(format!("{key:?}").contains(&format!("{text:?}")));
            }
        }
        let legacy_key = TsxKey::new(&Method::Invite, via("1234"), legacy(7));
        let old = OldId::Rfc2543(Box::new(Rfc2543Id {
            request_uri: "sip:bob@example.com".into(),
            from_tag: "ft".into(),
            call_id: "cid@pc33".into(),
            cseq: 7,
            top_via: via("1234").raw.into(),
        }));
        assert_eq!(
            legacy_key.stable_hash(),
            old_stable_hash(&old, &Method::Invite)
        );
    }

    #[test]
    fn a_usual_key_is_one_block_of_the_old_two_blocks_size() {
        // The Arc's counts and `Inner`: 96 bytes, under the 80-byte key and its separate
        // text (32 or 48) together.
        assert!(std::mem::size_of::<Inner>() + 16 <= 96);
    }
}

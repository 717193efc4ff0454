//! The users the server authenticates (RFC 3261 §22 Digest): for each `user@realm`, the
//! HA1 values `H(user:realm:password)` with MD5 and SHA-256, never a password.
//!
//! They come from two places, merged (the store wins on a clash):
//! - the configuration's `[[users]]` (the embedded defaults ship the demo users below);
//! - documents in the [`Store`] under the reserved prefix [`PREFIX`]
//!   (`imspec.users/<user>@<realm>`), written by `im-server user add`. Keeping them as
//!   documents means every `Store` backend holds them with no change to the trait. XCAP
//!   never serves them: its paths map only to keys under its own AUID, and the group
//!   publisher skips this prefix.
//!
//! The store's users are read at start-up and, with a store shared by several servers
//! (PostgreSQL), again whenever the store poller ([`crate::store::Refresher`]) sees a
//! document written: a user added while the servers run can register within one
//! `store_refresh` interval, on every server. The workers read them through
//! [`SharedUsers`], one short read lock per look-up; the reload happens on the poller's
//! thread, never on an event loop. (The embedded redb store is locked by the running
//! server, so `im-server user add` on it needs the server stopped.)

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use im_runtime::proto::digest::StoredHa1;
use serde::Deserialize;

use crate::store::{Store, StoreError};

/// The reserved key prefix of user documents in the store.
pub const PREFIX: &str = "imspec.users/";

/// The demo users of the embedded defaults, realm `example.com`: `(user, MD5 HA1, SHA-256
/// HA1)`. Each password is the user name followed by `-demo` (`alice-demo`), as documented
/// beside the example configuration (`im-server.toml`): they are public, so any
/// configuration file that sets `users` (even to `[]`) replaces them.
pub const DEMO_USERS: &[(&str, &str, &str)] = &[
    (
        "alice",
        "232bbeaf68de83b84e46bd169ee69e0e",
        "7830fb9ecd194444073636cd1546406fd926d377e85b344ee21cd86bd68fb1e1",
    ),
    (
        "bob",
        "a35e60d40def9d5dd7e5076fd7e78a45",
        "1b005d45405195f9690efcc59d64db71c25019e92af41b1432b2f4e731420ffe",
    ),
    (
        "carol",
        "61b08177dab2e1cf8cf6ac8120060025",
        "0516866b4acdb6d56092f8ade40aa2e367025a9607dcc06e90c766dc1b7ec90b",
    ),
    (
        "dave",
        "2b418394d533f592d955ca25fd6cb7b9",
        "090a718e82729feac0844b45f9e6281c706051f6325404ce56c83038f51e132c",
    ),
    (
        "erin",
        "545dc55f95fb91e7f6693e3a5d4ecfc9",
        "70b8cc5c12e66ca752e4437f35b392e12c78424068e87e93457a521c00a61698",
    ),
    (
        "frank",
        "0c33d8b6ab0c3297c8304432f173ef59",
        "f27022f3af4860ae7f7593673603456fe8351f0545fbb6dc465e7bf6bc3e7096",
    ),
];

/// The realm of the demo users.
pub const DEMO_REALM: &str = "example.com";

/// One configured user (`[[users]]`): a name, its realm (the server's domain when absent)
/// and at least one HA1 value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserEntry {
    /// The user name (the user part of the address-of-record).
    pub user: String,
    /// The realm; `None`: the server's domain.
    pub realm: Option<String>,
    /// The HA1 values.
    pub ha1: StoredHa1,
}

/// The demo users as configuration entries.
pub fn demo_users() -> Vec<UserEntry> {
    DEMO_USERS
        .iter()
        .map(|(u, md5, sha)| UserEntry {
            user: (*u).to_owned(),
            realm: Some(DEMO_REALM.to_owned()),
            ha1: StoredHa1 {
                md5: Some((*md5).to_owned()),
                sha256: Some((*sha).to_owned()),
            },
        })
        .collect()
}

/// Whether `s` is a lower-case hex HA1 of the length `alg_hex_len` expects.
pub fn valid_ha1(s: &str, hex_len: usize) -> bool {
    s.len() == hex_len && s.bytes().all(|c| c.is_ascii_hexdigit())
}

/// The store key of `user` in `realm`.
pub fn key(user: &str, realm: &str) -> String {
    format!("{PREFIX}{user}@{realm}")
}

/// A user document: TOML with the two HA1 values.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    md5: Option<String>,
    sha256: Option<String>,
}

/// The document stored for `ha1`.
pub fn encode(ha1: &StoredHa1) -> Vec<u8> {
    let mut s = String::new();
    if let Some(v) = &ha1.md5 {
        s.push_str(&format!("md5 = \"{v}\"\n"));
    }
    if let Some(v) = &ha1.sha256 {
        s.push_str(&format!("sha256 = \"{v}\"\n"));
    }
    s.into_bytes()
}

/// Reads a user document.
pub fn decode(doc: &[u8]) -> Result<StoredHa1, String> {
    let text = std::str::from_utf8(doc).map_err(|e| e.to_string())?;
    let d: Doc = toml::from_str(text).map_err(|e| e.to_string())?;
    let ha1 = StoredHa1 {
        md5: d.md5.map(|s| s.to_ascii_lowercase()),
        sha256: d.sha256.map(|s| s.to_ascii_lowercase()),
    };
    if ha1.md5.as_deref().is_some_and(|s| !valid_ha1(s, 32))
        || ha1.sha256.as_deref().is_some_and(|s| !valid_ha1(s, 64))
        || (ha1.md5.is_none() && ha1.sha256.is_none())
    {
        return Err("needs md5 (32 hex digits) and/or sha256 (64 hex digits)".into());
    }
    Ok(ha1)
}

/// Every user the server knows, keyed by `(user, realm)`. Read-only once the server runs
/// (shared by the workers behind an `Arc`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Users {
    map: HashMap<(String, String), StoredHa1>,
}

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The HA1 values are secrets: list the names only.
        let mut names: Vec<String> = self.map.keys().map(|(u, r)| format!("{u}@{r}")).collect();
        names.sort();
        f.debug_struct("Users").field("names", &names).finish()
    }
}

impl Users {
    /// The configured users; an entry without a realm takes `domain`.
    pub fn from_config(entries: &[UserEntry], domain: &str) -> Users {
        let mut u = Users::default();
        for e in entries {
            let realm = e.realm.clone().unwrap_or_else(|| domain.to_owned());
            u.map.insert((e.user.clone(), realm), e.ha1.clone());
        }
        u
    }

    /// Adds every user document of `store` (replacing a configured user of the same name
    /// and realm); returns how many were read. A malformed document is logged and skipped.
    pub fn load_store(&mut self, store: &dyn Store) -> Result<usize, StoreError> {
        let mut n = 0;
        for (k, doc) in store.list_prefix(PREFIX)? {
            let Some(id) = k.strip_prefix(PREFIX) else {
                continue;
            };
            let Some((user, realm)) = id.rsplit_once('@') else {
                tracing::warn!(key = %k, "user document without user@realm; skipped");
                continue;
            };
            match decode(&doc) {
                Ok(ha1) => {
                    self.map.insert((user.to_owned(), realm.to_owned()), ha1);
                    n += 1;
                }
                Err(e) => tracing::warn!(key = %k, "malformed user document: {e}; skipped"),
            }
        }
        Ok(n)
    }

    /// The HA1 values of `user` in `realm`.
    pub fn lookup(&self, user: &str, realm: &str) -> Option<StoredHa1> {
        self.map.get(&(user.to_owned(), realm.to_owned())).cloned()
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// The users every worker and XCAP authenticate against: the configured ones plus the
/// store's, replaced whole by [`SharedUsers::reload`] (see the module documentation).
#[derive(Clone, Debug, Default)]
pub struct SharedUsers {
    configured: Arc<Users>,
    current: Arc<RwLock<Users>>,
}

impl SharedUsers {
    /// The `configured` users, until the first [`SharedUsers::reload`].
    pub fn new(configured: Users) -> SharedUsers {
        SharedUsers {
            current: Arc::new(RwLock::new(configured.clone())),
            configured: Arc::new(configured),
        }
    }

    /// Replaces the users with the configured ones plus every user document of `store`;
    /// returns how many documents were read. On a store error the users stay as they were.
    pub fn reload(&self, store: &dyn Store) -> Result<usize, StoreError> {
        // Built outside the lock: look-ups wait for the swap only, never for the store.
        let mut u = (*self.configured).clone();
        let n = u.load_store(store)?;
        let mut cur = self.current.write().unwrap_or_else(|e| e.into_inner());
        if *cur != u {
            *cur = u;
            tracing::debug!(users = cur.len(), "users reloaded from the store");
        }
        Ok(n)
    }

    /// The HA1 values of `user` in `realm`.
    pub fn lookup(&self, user: &str, realm: &str) -> Option<StoredHa1> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .lookup(user, realm)
    }

    /// How many users there are now.
    pub fn len(&self) -> usize {
        self.current.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether there is none now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Writes `user@realm` with the HA1 values of `password` to `store` (`im-server user add`).
pub fn add(store: &dyn Store, user: &str, realm: &str, password: &str) -> Result<(), StoreError> {
    let ha1 = StoredHa1::from_password(user, realm, password);
    store.put(&key(user, realm), &encode(&ha1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RedbStore;
    use im_runtime::proto::digest::{Algorithm, ha1};

    #[test]
    fn demo_users_match_their_documented_passwords() {
        for (u, md5, sha) in DEMO_USERS {
            let pw = format!("{u}-demo");
            assert_eq!(ha1(Algorithm::Md5, u, DEMO_REALM, &pw), *md5);
            assert_eq!(ha1(Algorithm::Sha256, u, DEMO_REALM, &pw), *sha);
        }
    }

    #[test]
    fn users_in_the_store_hold_no_password_and_win_over_config() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
        add(&store, "alice", "example.com", "s3cret pass").unwrap();
        store.put("imspec.users/broken", b"x").unwrap();
        store
            .put("imspec.users/bad@example.com", b"md5 = \"zz\"")
            .unwrap();
        store
            .put("org.openmobilealliance.groups/users/x/index", b"<x/>")
            .unwrap();
        let doc = store
            .get("imspec.users/alice@example.com")
            .unwrap()
            .unwrap();
        let text = String::from_utf8(doc).unwrap();
        assert!(!text.contains("s3cret"), "{text}");
        let mut users = Users::from_config(&demo_users(), "example.com");
        assert_eq!(users.len(), DEMO_USERS.len());
        assert_eq!(users.load_store(&store).unwrap(), 1);
        assert_eq!(
            users.lookup("alice", "example.com"),
            Some(StoredHa1::from_password(
                "alice",
                "example.com",
                "s3cret pass"
            ))
        );
        assert_eq!(users.lookup("alice", "other.org"), None);
        assert!(users.lookup("bob", "example.com").is_some());
        assert!(!format!("{users:?}").contains(DEMO_USERS[0].1));
    }

    #[test]
    fn documents_round_trip_and_are_checked() {
        let h = StoredHa1::from_password("u", "r", "p");
        assert_eq!(decode(&encode(&h)), Ok(h));
        assert!(decode(b"").is_err());
        assert!(decode(b"md5 = \"00\"").is_err());
        assert!(decode(b"password = \"x\"").is_err());
    }

    #[test]
    fn shared_users_follow_the_store_and_keep_the_configured_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("s.redb")).unwrap();
        let shared = SharedUsers::new(Users::from_config(&demo_users(), "example.com"));
        let reader = shared.clone();
        assert_eq!(reader.lookup("zoe", "example.com"), None);
        add(&store, "zoe", "example.com", "pw").unwrap();
        add(&store, "alice", "example.com", "new").unwrap();
        assert_eq!(
            reader.lookup("zoe", "example.com"),
            None,
            "not before a reload"
        );
        assert_eq!(shared.reload(&store).unwrap(), 2);
        assert_eq!(
            reader.lookup("zoe", "example.com"),
            Some(StoredHa1::from_password("zoe", "example.com", "pw"))
        );
        assert_eq!(
            reader.lookup("alice", "example.com"),
            Some(StoredHa1::from_password("alice", "example.com", "new"))
        );
        // A user removed from the store goes; a configured one comes back as configured.
        store.delete(&key("zoe", "example.com")).unwrap();
        store.delete(&key("alice", "example.com")).unwrap();
        assert_eq!(shared.reload(&store).unwrap(), 0);
        assert_eq!(reader.lookup("zoe", "example.com"), None);
        assert_eq!(
            reader.lookup("alice", "example.com"),
            Some(StoredHa1::from_password(
                "alice",
                "example.com",
                "alice-demo"
            ))
        );
        assert_eq!(reader.len(), DEMO_USERS.len());
    }
}

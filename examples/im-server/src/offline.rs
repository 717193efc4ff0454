//! Page-mode copies kept for group members with no registration (extension ext-dr.6 of
//! `specs/ext_delivery_reports.imspec`): the application side of
//! [`Application::offline_store`](im_runtime::endpoint::Application::offline_store) and its
//! siblings, over the server's [`Store`].
//!
//! The store is the record: a copy is written (committed) before `store copy` returns, and
//! read back and deleted when its recipient registers, so a restart loses nothing and, with
//! a store shared by several servers, the server the member registers with sends it (the
//! delete decides which one, if two try). Besides, each server keeps an index in memory
//! (recipient → keys and times) for what runs on a worker's event loop with every copy and
//! every input: the per-user count (`copy.storable`) and the expiry sweep. That index is
//! this server's view; with a shared store the per-user bound counts only the copies this
//! server kept (or found at start).
//!
//! Both bounds are configuration (`limits.offline_max_per_user`, `limits.offline_max_age`).
//! The age is wall-clock time (the copy outlives the process), stored with the copy.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use im_runtime::endpoint::OfflineCopy;
use im_runtime::machine::Uri;

use crate::store::{Store, StoreError};

/// How often the expiry sweep looks at the index at most (it runs on a worker's event loop,
/// with every input).
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The first line of every record, so that a later format can tell old records apart.
const RECORD_VERSION: &str = "imspec-offline-1";

/// The kept copies; shared by every worker.
pub struct OfflineBox {
    store: Arc<dyn Store>,
    max_per_user: usize,
    max_age: Duration,
    state: Mutex<State>,
    seq: AtomicU64,
}

#[derive(Default)]
struct State {
    /// Recipient key ([`aor_key`]) → (store key, unix seconds when kept), oldest first.
    index: HashMap<String, Vec<(String, u64)>>,
    last_sweep: Option<Instant>,
    /// The endpoint's clock against the wall clock at the last call that gave one, to
    /// turn a wall-clock expiry into the endpoint's `Instant`.
    clock: Option<(Instant, u64)>,
    /// [`OfflineBox::next_expiry`], kept up to date by every change (it is read with every
    /// input, so it must not scan the index).
    next_due: Option<Instant>,
}

impl State {
    fn refresh_next_due(&mut self, max_age: Duration) {
        self.next_due = (|| {
            let (at, wall) = self.clock?;
            let oldest = self
                .index
                .values()
                .filter_map(|v| v.first())
                .map(|(_, t)| *t)
                .min()?;
            let due_unix = oldest.saturating_add(max_age.as_secs().max(1));
            let due = at + Duration::from_secs(due_unix.saturating_sub(wall));
            Some(match self.last_sweep {
                Some(t) => due.max(t + SWEEP_EVERY),
                None => due,
            })
        })();
    }
}

impl std::fmt::Debug for OfflineBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OfflineBox")
            .field("max_per_user", &self.max_per_user)
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

/// The recipient part of store keys: one spelling per identity (RFC 3261 §19.1.4 for the
/// parts that matter: host case-insensitive, user exact; `sips:` and `sip:` name the same
/// user), so that the group's spelling and the REGISTER's meet.
pub fn aor_key(uri: &Uri) -> String {
    let port = uri.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!(
        "sip:{}@{}{port}",
        uri.user(),
        uri.host().to_ascii_lowercase()
    )
}

impl OfflineBox {
    /// Opens the kept copies of `store` (the index is read from it), with the bounds;
    /// `now` is the endpoint's clock at start, so that the copies that expired while the
    /// server was down are due at once ([`OfflineBox::next_expiry`]).
    pub fn open(
        store: Arc<dyn Store>,
        max_per_user: usize,
        max_age: Duration,
        now: Instant,
    ) -> Result<OfflineBox, StoreError> {
        let mut index: HashMap<String, Vec<(String, u64)>> = HashMap::new();
        for (key, record) in store.offline_list("")? {
            let Some((aor, _)) = key.split_once(' ') else {
                continue;
            };
            let Some(r) = Record::decode(&record) else {
                continue;
            };
            index
                .entry(aor.to_owned())
                .or_default()
                .push((key.clone(), r.kept_unix));
        }
        let mut state = State {
            index,
            last_sweep: None,
            clock: Some((now, crate::store::unix_now())),
            next_due: None,
        };
        state.refresh_next_due(max_age);
        Ok(OfflineBox {
            store,
            max_per_user,
            max_age,
            state: Mutex::new(state),
            seq: AtomicU64::new(0),
        })
    }

    /// Copies kept now (every recipient).
    pub fn len(&self) -> usize {
        self.state().index.values().map(Vec::len).sum()
    }

    /// Whether no copy is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether one more copy for `recipient` may be kept (`copy.storable`).
    pub fn storable(&self, recipient: &Uri) -> bool {
        let n = self
            .state()
            .index
            .get(&aor_key(recipient))
            .map_or(0, Vec::len);
        n < self.max_per_user
    }

    /// Keeps `copy` (committed before it returns), unless its recipient is at its bound.
    pub fn keep(&self, now_instant: Instant, copy: &OfflineCopy) -> Result<(), String> {
        let recipient = crate::uri::parse_uri(&copy.recipient).map_err(|e| e.to_string())?;
        let aor = aor_key(&recipient);
        let now = crate::store::unix_now();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let key = format!("{aor} {:020}-{:06}-{seq}", now, std::process::id());
        {
            // The place is taken before the write (so that two workers cannot both take
            // the last one) and given back if the write fails; the lock is not held
            // during the write, which other workers' inputs would wait for.
            let mut st = self.state();
            st.clock = Some((now_instant, now));
            let n = st.index.get(&aor).map_or(0, Vec::len);
            if n >= self.max_per_user {
                return Err(format!(
                    "{} already has {n} kept copies (at most {})",
                    copy.recipient, self.max_per_user
                ));
            }
            st.index
                .entry(aor.clone())
                .or_default()
                .push((key.clone(), now));
            st.refresh_next_due(self.max_age);
        }
        let record = Record {
            recipient: copy.recipient.clone(),
            source: copy.source,
            kept_unix: now,
        }
        .encode(&copy.request);
        if let Err(e) = self.store.offline_put(&key, &record) {
            let mut st = self.state();
            if let Some(v) = st.index.get_mut(&aor) {
                v.retain(|(k, _)| *k != key);
            }
            st.index.retain(|_, v| !v.is_empty());
            st.refresh_next_due(self.max_age);
            return Err(e.to_string());
        }
        Ok(())
    }

    /// Hands over (deleting them) the copies kept for `aor` that have not expired; the
    /// expired ones stay for [`OfflineBox::expired`].
    pub fn take(&self, aor: &Uri) -> Vec<OfflineCopy> {
        let aor = aor_key(aor);
        // Every REGISTER (refreshes too) comes here, on a worker's loop: with a store of
        // its own the index says whether there is anything to read. A shared store may
        // hold copies other servers kept, so it is always asked (one indexed query).
        if !self.store.is_shared() && !self.state().index.contains_key(&aor) {
            return Vec::new();
        }
        let now = crate::store::unix_now();
        let rows = match self.store.offline_list(&format!("{aor} ")) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(%aor, "cannot read the kept copies: {e}");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        let mut taken = Vec::new();
        for (key, bytes) in rows {
            let Some(r) = Record::decode(&bytes) else {
                let _ = self.store.offline_delete(&key);
                taken.push(key);
                continue;
            };
            if self.is_expired(r.kept_unix, now) {
                continue;
            }
            match self.store.offline_delete(&key) {
                // Another server sharing the store took it first.
                Ok(false) => {}
                Ok(true) => out.push(r.copy(&bytes)),
                Err(e) => {
                    tracing::warn!(%aor, "cannot forget a kept copy (not sent): {e}");
                    continue;
                }
            }
            taken.push(key);
        }
        let mut st = self.state();
        if let Some(v) = st.index.get_mut(&aor) {
            v.retain(|(k, _)| !taken.contains(k));
            if v.is_empty() {
                st.index.remove(&aor);
            }
        }
        st.refresh_next_due(self.max_age);
        out
    }

    /// The copies that have been kept longer than the bound, deleted; looked for only when
    /// the oldest is due, and at most once per [`SWEEP_EVERY`].
    pub fn expired(&self, now: Instant) -> Vec<OfflineCopy> {
        let due: Vec<(String, String)> = {
            let mut st = self.state();
            // Nothing is due before the next expiry (known once the clock is: the first
            // call sweeps, for the copies that expired while the server was down).
            let early = match (st.clock, st.next_due) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(_), Some(d)) => now < d,
            };
            if early
                || st
                    .last_sweep
                    .is_some_and(|t| now.saturating_duration_since(t) < SWEEP_EVERY)
            {
                return Vec::new();
            }
            let wall = crate::store::unix_now();
            st.last_sweep = Some(now);
            st.clock = Some((now, wall));
            let mut due = Vec::new();
            for (aor, v) in &mut st.index {
                v.retain(|(k, at)| {
                    let old = self.is_expired(*at, wall);
                    if old {
                        due.push((aor.clone(), k.clone()));
                    }
                    !old
                });
            }
            st.index.retain(|_, v| !v.is_empty());
            st.refresh_next_due(self.max_age);
            due
        };
        let mut out = Vec::new();
        for (aor, key) in due {
            let rows = self.store.offline_list(&key).unwrap_or_default();
            let Some((_, bytes)) = rows.into_iter().find(|(k, _)| *k == key) else {
                continue;
            };
            if let Ok(true) = self.store.offline_delete(&key)
                && let Some(r) = Record::decode(&bytes)
            {
                tracing::info!(recipient = %aor, "a kept copy expired");
                out.push(r.copy(&bytes));
            }
        }
        out
    }

    /// When the oldest kept copy expires, on the endpoint's clock; never sooner than the
    /// next sweep may run (a copy that could not be swept must not spin the event loop).
    pub fn next_expiry(&self) -> Option<Instant> {
        self.state().next_due
    }

    fn is_expired(&self, kept_unix: u64, now_unix: u64) -> bool {
        now_unix.saturating_sub(kept_unix) >= self.max_age.as_secs().max(1)
    }
}

/// One kept copy as stored: a few header lines, a blank line, the sender's request.
struct Record {
    recipient: String,
    source: SocketAddr,
    kept_unix: u64,
}

impl Record {
    fn encode(&self, request: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "{RECORD_VERSION}\n{}\n{}\n{}\n\n",
            self.recipient, self.source, self.kept_unix
        )
        .into_bytes();
        out.extend_from_slice(request);
        out
    }

    fn decode(bytes: &[u8]) -> Option<Record> {
        let head_end = bytes.windows(2).position(|w| w == b"\n\n")?;
        let head = std::str::from_utf8(&bytes[..head_end]).ok()?;
        let mut lines = head.lines();
        if lines.next()? != RECORD_VERSION {
            return None;
        }
        Some(Record {
            recipient: lines.next()?.to_owned(),
            source: lines.next()?.parse().ok()?,
            kept_unix: lines.next()?.parse().ok()?,
        })
    }

    /// The copy, its request being what follows the head in `bytes`.
    fn copy(&self, bytes: &[u8]) -> OfflineCopy {
        let start = bytes
            .windows(2)
            .position(|w| w == b"\n\n")
            .map_or(bytes.len(), |p| p + 2);
        OfflineCopy {
            recipient: self.recipient.clone(),
            source: self.source,
            request: bytes[start..].to_vec().into(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;
    use crate::store::RedbStore;

    fn copy(to: &str, n: u8) -> OfflineCopy {
        OfflineCopy {
            recipient: to.to_owned(),
            source: "127.0.0.1:5090".parse().unwrap(),
            request: vec![b'M', n, b'\n', b'\n', 0].into(),
        }
    }

    fn uri(s: &str) -> Uri {
        crate::uri::parse_uri(s).unwrap()
    }

    #[test]
    fn kept_copies_survive_reopening_and_are_taken_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        {
            let store: Arc<dyn Store> = Arc::new(RedbStore::open(&path).unwrap());
            let b = OfflineBox::open(store, 2, Duration::from_secs(3600), Instant::now()).unwrap();
            b.keep(Instant::now(), &copy("sip:bob@example.com", 1))
                .unwrap();
            b.keep(Instant::now(), &copy("sip:bob@EXAMPLE.com", 2))
                .unwrap();
            assert!(!b.storable(&uri("sip:bob@example.com")));
            assert!(
                b.keep(Instant::now(), &copy("sip:bob@example.com", 3))
                    .is_err()
            );
            assert!(b.storable(&uri("sip:carol@example.com")));
        }
        let store: Arc<dyn Store> = Arc::new(RedbStore::open(&path).unwrap());
        let b = OfflineBox::open(store, 2, Duration::from_secs(3600), Instant::now()).unwrap();
        assert_eq!(b.len(), 2);
        let got = b.take(&uri("sips:bob@Example.com"));
        assert_eq!(
            got,
            vec![
                copy("sip:bob@example.com", 1),
                copy("sip:bob@EXAMPLE.com", 2)
            ]
        );
        assert!(b.take(&uri("sip:bob@example.com")).is_empty());
        assert!(b.is_empty());
        assert!(b.storable(&uri("sip:bob@example.com")));
    }

    #[test]
    fn expired_copies_are_not_taken_but_swept_once() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(RedbStore::open(&dir.path().join("s.redb")).unwrap());
        // Written as kept two hours ago.
        let old = Record {
            recipient: "sip:bob@example.com".into(),
            source: "127.0.0.1:5090".parse().unwrap(),
            kept_unix: crate::store::unix_now() - 7200,
        }
        .encode(b"OLD");
        store
            .offline_put("sip:bob@example.com 00000000000000000001-1-0", &old)
            .unwrap();
        let opened = Instant::now();
        let b = OfflineBox::open(store, 10, Duration::from_secs(3600), opened).unwrap();
        // It expired while the server was down: due at once.
        assert!(b.next_expiry().is_some_and(|t| t <= opened));
        b.keep(Instant::now(), &copy("sip:bob@example.com", 7))
            .unwrap();
        let now = Instant::now();
        let gone = b.expired(now);
        assert_eq!(gone.len(), 1);
        assert_eq!(&gone[0].request[..], b"OLD");
        assert!(b.expired(now + Duration::from_secs(5)).is_empty());
        // The copy kept just now expires in an hour, on the clock `expired` was last given
        // (now + 5 s, the wall clock having hardly moved).
        let next = b.next_expiry().unwrap();
        assert!(next > now + Duration::from_secs(3590) && next <= now + Duration::from_secs(3606));
        assert_eq!(
            b.take(&uri("sip:bob@example.com")),
            vec![copy("sip:bob@example.com", 7)]
        );
    }
}

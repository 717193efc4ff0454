//! Where the server keeps what it manages at run time, behind one trait ([`Store`]), with
//! an embedded file-backed default ([`RedbStore`]) that needs no setup and survives
//! restarts.
//!
//! Today the store holds XCAP documents (the group documents created over XCAP), keyed by
//! their path below the XCAP root, e.g.
//! `org.openmobilealliance.groups/users/sip:alice@example.com/index`. A document is kept as
//! the exact octets the client PUT, so a GET returns them unchanged and the strong ETag
//! (a digest of those octets) stays the same across restarts.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable};

mod pg;
mod refresh;

pub use pg::PgStore;
pub use refresh::Refresher;

/// A store failure (I/O, a corrupt file, a lock held by another process).
#[derive(Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(pub String);

impl StoreError {
    fn from(e: impl std::fmt::Display) -> StoreError {
        StoreError(e.to_string())
    }
}

/// A document store. Implementations are shared between the XCAP server and the group
/// directory, so they take `&self` and are `Send + Sync`.
pub trait Store: Send + Sync + 'static {
    /// The document at `key`.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Creates or replaces the document at `key`, durably before returning.
    fn put(&self, key: &str, doc: &[u8]) -> Result<(), StoreError>;
    /// Removes the document at `key`; whether there was one.
    fn delete(&self, key: &str) -> Result<bool, StoreError>;
    /// Every document, in key order.
    fn list(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Records that `aor` is bound to `contact` until `expires_unix` (seconds since the
    /// Unix epoch); 0 removes the binding.
    fn put_binding(
        &self,
        aor: &str,
        contact: SocketAddr,
        expires_unix: u64,
    ) -> Result<(), StoreError>;
    /// Every binding recorded, expired or not: `(aor, contact, expires_unix)`.
    fn bindings(&self) -> Result<Vec<(String, SocketAddr, u64)>, StoreError>;
    /// Keeps a page-mode copy for a recipient with no registration (ext-dr.6) at `key`
    /// (the recipient, a space, then an id that sorts by time: see `crate::offline`),
    /// durably before returning.
    fn offline_put(&self, key: &str, record: &[u8]) -> Result<(), StoreError>;
    /// The kept copies whose key starts with `prefix` (all: `""`), in key order.
    fn offline_list(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Forgets the kept copy at `key`; whether it was there (so that of two servers
    /// sharing a store, only one sends it).
    fn offline_delete(&self, key: &str) -> Result<bool, StoreError>;

    /// The documents whose key starts with `prefix`, in key order (the groups without the
    /// users' documents, say).
    fn list_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut all = self.list()?;
        all.retain(|(k, _)| k.starts_with(prefix));
        Ok(all)
    }

    /// Creates or replaces (`doc`) or removes (`None`) the document at `key`, only if the
    /// document there now is `expected` (`None`: there is none); whether it did. Backends
    /// shared by several servers do the check and the write atomically, so two servers
    /// checking the same ETag cannot both write. The default reads then writes, which is
    /// enough for a store with one writing process that serializes its writers.
    fn put_if(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        doc: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        if self.get(key)?.as_deref() != expected {
            return Ok(false);
        }
        match doc {
            Some(d) => self.put(key, d)?,
            None => {
                self.delete(key)?;
            }
        }
        Ok(true)
    }

    /// Whether other servers write to this store too, so that a server must poll it for
    /// their changes ([`Store::binding_changes`], [`Store::documents_generation`]).
    fn is_shared(&self) -> bool {
        false
    }

    /// The bindings written (or removed: `expires_unix` 0) since the cursor `since` (0: all),
    /// oldest first, and the cursor to pass next time. A row may come again in later calls;
    /// applying them in order always leaves the latest state. Unshared stores return every
    /// binding.
    fn binding_changes(&self, since: u64) -> Result<(Vec<BindingRow>, u64), StoreError> {
        let _ = since;
        let rows = self
            .bindings()?
            .into_iter()
            .map(|(aor, contact, expires_unix)| BindingRow {
                aor,
                contact,
                expires_unix,
            })
            .collect();
        Ok((rows, 0))
    }

    /// A number that changes once any server sharing the store has written or deleted a
    /// document, so that a poll re-reads the documents only when needed. Unshared stores
    /// return 0 (their only writer is this server, which publishes its own writes).
    fn documents_generation(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}

/// One stored binding, as [`Store::binding_changes`] returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindingRow {
    /// The address-of-record, as registered.
    pub aor: String,
    /// Where it is bound.
    pub contact: SocketAddr,
    /// Seconds since the Unix epoch; 0 when the binding was removed.
    pub expires_unix: u64,
}

const DOCS: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("xcap_documents");
/// Bindings keyed by `"<contact> <aor>"` (a socket address has no space), valued by expiry.
const BINDINGS: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("bindings");
/// Kept page-mode copies, keyed by `"<recipient> <time-ordered id>"`.
const OFFLINE: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("offline_copies");

/// The embedded store: one redb file. Each write is one committed (fsynced) transaction.
pub struct RedbStore {
    db: redb::Database,
}

impl RedbStore {
    /// Opens (creating when missing) the store file at `path`.
    pub fn open(path: &Path) -> Result<RedbStore, StoreError> {
        let db = redb::Database::create(path).map_err(StoreError::from)?;
        // Create the table up front so that reads of a fresh file find it.
        let tx = db.begin_write().map_err(StoreError::from)?;
        tx.open_table(DOCS).map_err(StoreError::from)?;
        tx.open_table(BINDINGS).map_err(StoreError::from)?;
        tx.open_table(OFFLINE).map_err(StoreError::from)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(RedbStore { db })
    }
}

impl Store for RedbStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read().map_err(StoreError::from)?;
        let t = tx.open_table(DOCS).map_err(StoreError::from)?;
        Ok(t.get(key)
            .map_err(StoreError::from)?
            .map(|v| v.value().to_vec()))
    }

    fn put(&self, key: &str, doc: &[u8]) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(StoreError::from)?;
        {
            let mut t = tx.open_table(DOCS).map_err(StoreError::from)?;
            t.insert(key, doc).map_err(StoreError::from)?;
        }
        tx.commit().map_err(StoreError::from)
    }

    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let tx = self.db.begin_write().map_err(StoreError::from)?;
        let had = {
            let mut t = tx.open_table(DOCS).map_err(StoreError::from)?;
            t.remove(key).map_err(StoreError::from)?.is_some()
        };
        tx.commit().map_err(StoreError::from)?;
        Ok(had)
    }

    fn list(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let tx = self.db.begin_read().map_err(StoreError::from)?;
        let t = tx.open_table(DOCS).map_err(StoreError::from)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(StoreError::from)? {
            let (k, v) = row.map_err(StoreError::from)?;
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn put_if(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        doc: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let tx = self.db.begin_write().map_err(StoreError::from)?;
        {
            let mut t = tx.open_table(DOCS).map_err(StoreError::from)?;
            let now = t
                .get(key)
                .map_err(StoreError::from)?
                .map(|v| v.value().to_vec());
            if now.as_deref() != expected {
                return Ok(false);
            }
            match doc {
                Some(d) => {
                    t.insert(key, d).map_err(StoreError::from)?;
                }
                None => {
                    t.remove(key).map_err(StoreError::from)?;
                }
            }
        }
        tx.commit().map_err(StoreError::from)?;
        Ok(true)
    }

    fn put_binding(
        &self,
        aor: &str,
        contact: SocketAddr,
        expires_unix: u64,
    ) -> Result<(), StoreError> {
        let k = format!("{contact} {aor}");
        let tx = self.db.begin_write().map_err(StoreError::from)?;
        {
            let mut t = tx.open_table(BINDINGS).map_err(StoreError::from)?;
            if expires_unix == 0 {
                t.remove(k.as_str()).map_err(StoreError::from)?;
            } else {
                t.insert(k.as_str(), expires_unix)
                    .map_err(StoreError::from)?;
            }
        }
        tx.commit().map_err(StoreError::from)
    }

    fn offline_put(&self, key: &str, record: &[u8]) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(StoreError::from)?;
        {
            let mut t = tx.open_table(OFFLINE).map_err(StoreError::from)?;
            t.insert(key, record).map_err(StoreError::from)?;
        }
        tx.commit().map_err(StoreError::from)
    }

    fn offline_list(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let tx = self.db.begin_read().map_err(StoreError::from)?;
        let t = tx.open_table(OFFLINE).map_err(StoreError::from)?;
        let mut out = Vec::new();
        for row in t.range(prefix..).map_err(StoreError::from)? {
            let (k, v) = row.map_err(StoreError::from)?;
            let k = k.value();
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn offline_delete(&self, key: &str) -> Result<bool, StoreError> {
        let tx = self.db.begin_write().map_err(StoreError::from)?;
        let had = {
            let mut t = tx.open_table(OFFLINE).map_err(StoreError::from)?;
            t.remove(key).map_err(StoreError::from)?.is_some()
        };
        tx.commit().map_err(StoreError::from)?;
        Ok(had)
    }

    fn bindings(&self) -> Result<Vec<(String, SocketAddr, u64)>, StoreError> {
        let tx = self.db.begin_read().map_err(StoreError::from)?;
        let t = tx.open_table(BINDINGS).map_err(StoreError::from)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(StoreError::from)? {
            let (k, v) = row.map_err(StoreError::from)?;
            let k = k.value();
            // A row that does not split is skipped, not fatal: it only loses one binding.
            if let Some((c, aor)) = k.split_once(' ')
                && let Ok(c) = c.parse()
            {
                out.push((aor.to_owned(), c, v.value()));
            }
        }
        Ok(out)
    }
}

/// Writes REGISTER bindings to the store from a thread of its own, so that a worker's
/// event loop never waits for a commit. Sending never blocks; the writer stamps each
/// binding with the wall clock when it writes it (a few milliseconds late at most, which
/// only lengthens a restored binding by as much).
#[derive(Clone, Debug)]
pub struct BindingWriter {
    tx: std::sync::mpsc::Sender<(String, SocketAddr, u32)>,
}

impl BindingWriter {
    /// Starts the writer thread over `store`; it ends when every clone is dropped.
    pub fn start(store: Arc<dyn Store>) -> std::io::Result<BindingWriter> {
        let (tx, rx) = std::sync::mpsc::channel::<(String, SocketAddr, u32)>();
        std::thread::Builder::new()
            .name("bindings-writer".into())
            .spawn(move || {
                for (aor, contact, expires) in rx {
                    let at = if expires == 0 {
                        0
                    } else {
                        unix_now().saturating_add(u64::from(expires))
                    };
                    if let Err(e) = store.put_binding(&aor, contact, at) {
                        tracing::warn!(%aor, "cannot store the binding: {e}");
                    }
                }
            })?;
        Ok(BindingWriter { tx })
    }

    /// Queues `aor` → `contact` for `expires` seconds (0: removal).
    pub fn record(&self, aor: &str, contact: SocketAddr, expires: u32) {
        // The thread only ends with the process; a failed send loses one write.
        let _ = self.tx.send((aor.to_owned(), contact, expires));
    }
}

/// Seconds since the Unix epoch. Bindings must outlive the process, and `Instant` does not,
/// so the store keeps wall-clock expiries.
#[allow(clippy::disallowed_methods)]
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        {
            let s = RedbStore::open(&path).unwrap();
            s.put("a/b", b"one").unwrap();
            s.put("a/c", b"two").unwrap();
            assert!(s.delete("a/c").unwrap());
            assert!(!s.delete("a/c").unwrap());
        }
        let s = RedbStore::open(&path).unwrap();
        assert_eq!(s.get("a/b").unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(s.get("a/c").unwrap(), None);
        assert_eq!(s.list().unwrap(), vec![("a/b".to_owned(), b"one".to_vec())]);
        let c: SocketAddr = "127.0.0.1:5070".parse().unwrap();
        s.put_binding("sip:bob@example.com", c, 42).unwrap();
        s.put_binding("sip:carol@example.com", c, 43).unwrap();
        s.put_binding("sip:carol@example.com", c, 0).unwrap();
        drop(s);
        let s = RedbStore::open(&path).unwrap();
        assert_eq!(
            s.bindings().unwrap(),
            vec![("sip:bob@example.com".to_owned(), c, 42)]
        );
    }
}

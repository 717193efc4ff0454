//! Where the server keeps what it manages at run time, behind one trait ([`Store`]), with
//! an embedded file-backed default ([`RedbStore`]) that needs no setup and survives
//! restarts.
//!
//! Today the store holds XCAP documents (the group documents created over XCAP), keyed by
//! their path below the XCAP root, e.g.
//! `org.openmobilealliance.groups/users/sip:alice@example.com/index`. A document is kept as
//! the exact octets the client PUT, so a GET returns them unchanged and the strong ETag
//! (a digest of those octets) stays the same across restarts.

use std::path::Path;

use redb::{ReadableDatabase, ReadableTable};

/// A store failure (I/O, a corrupt file, a lock held by another process).
#[derive(Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(String);

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
}

const DOCS: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("xcap_documents");

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
    }
}

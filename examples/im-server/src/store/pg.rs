//! The PostgreSQL backend of [`Store`], for several servers sharing groups, users and
//! registrations.
//!
//! Why `tokio-postgres` behind a thread of its own rather than the blocking `postgres`
//! crate: the [`Store`] trait is synchronous, and it is called both from plain threads (the
//! bindings writer, the refresher) and from threads that drive a tokio runtime (the XCAP
//! handler, the SIP workers). The `postgres` crate blocks on a runtime of its own, which
//! panics when called from inside another runtime. Here the store owns one single-threaded
//! runtime on its own thread, holding the connection; each call sends its query there and
//! waits on a plain channel, at most [`PgStore::timeout`], so no caller ever waits longer
//! than that whatever the database does. (`sqlx` would do as well but brings a far larger
//! dependency tree and compile-time query machinery this handful of statements does not need.)
//!
//! One connection serves every call, one statement at a time in the order sent: the store's
//! traffic is XCAP writes, one binding write per REGISTER and one poll per refresh interval,
//! far below what one connection carries. A broken connection is dropped and the next call
//! connects again, so a database restart costs the calls made while it is down, not the
//! server.
//!
//! Only plain TCP (or a Unix socket) to the database: use it on a trusted network.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use super::{BindingRow, Store, StoreError};

/// The schema, created on start. Idempotent; run under an advisory lock because concurrent
/// `CREATE TABLE IF NOT EXISTS` from two servers starting together can still collide.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS imspec_documents (
    key TEXT PRIMARY KEY,
    doc BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS imspec_bindings (
    aor TEXT NOT NULL,
    contact TEXT NOT NULL,
    expires BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    PRIMARY KEY (aor, contact)
);
CREATE INDEX IF NOT EXISTS imspec_bindings_updated ON imspec_bindings (updated);
CREATE SEQUENCE IF NOT EXISTS imspec_documents_generation;
CREATE TABLE IF NOT EXISTS imspec_offline (
    key TEXT PRIMARY KEY,
    record BYTEA NOT NULL
);
";

/// The lock key taken while the schema is created (any constant, the same on every server).
const SCHEMA_LOCK: i64 = 0x696d_7370_6563;

/// The database clock in microseconds since the Unix epoch: binding changes are stamped and
/// polled by the database's clock, so the servers' clocks need not agree for polling.
const NOW_MICROS: &str = "(extract(epoch from clock_timestamp()) * 1000000)::bigint";

/// How far back each poll for binding changes reaches before the last change it saw. A
/// change is stamped when its statement runs but seen only once committed; this covers
/// any commit that lands within this long of its stamp (single-statement writes take
/// milliseconds).
const POLL_OVERLAP_MICROS: i64 = 10_000_000;

/// Removed and expired bindings are kept this long (so that every server polling sees a
/// removal) and then deleted.
const TOMBSTONE_SECS: i64 = 3600;

/// Every this many polls for binding changes, the old removed/expired rows are deleted
/// (about once a minute at the default refresh).
const COLLECT_EVERY: u32 = 60;

struct Shared {
    url: String,
    client: Mutex<Option<Arc<Client>>>,
}

impl Shared {
    async fn client(&self) -> Result<Arc<Client>, StoreError> {
        if let Some(c) = self
            .client
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            && !c.is_closed()
        {
            return Ok(c);
        }
        let (client, conn) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .map_err(StoreError::from)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::warn!("store: PostgreSQL connection: {e}");
            }
        });
        let client = Arc::new(client);
        *self.client.lock().unwrap_or_else(|e| e.into_inner()) = Some(client.clone());
        Ok(client)
    }
}

/// A [`Store`] in a PostgreSQL database, shared by every server configured with its URL.
pub struct PgStore {
    rt: tokio::runtime::Handle,
    shared: Arc<Shared>,
    timeout: Duration,
    polls: AtomicU32,
    // Dropping it ends the runtime thread (and the connection with it).
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`, or the key=value
    /// form) and creates the schema when missing. Every later call waits at most
    /// `timeout` for its answer.
    pub fn connect(url: &str, timeout: Duration) -> Result<PgStore, StoreError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(StoreError::from)?;
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("store-pg".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = stopped.await;
                });
            })
            .map_err(StoreError::from)?;
        let store = PgStore {
            rt: handle,
            shared: Arc::new(Shared {
                url: url.to_owned(),
                client: Mutex::new(None),
            }),
            timeout,
            polls: AtomicU32::new(0),
            _stop: stop,
        };
        store.run(|c| async move {
            c.batch_execute(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock({SCHEMA_LOCK}); {SCHEMA} COMMIT;"
            ))
            .await
        })?;
        Ok(store)
    }

    /// How long a call waits for the database at most.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs `f` with the connection on the store's thread and waits for its result.
    fn run<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Client>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + Send,
    {
        let shared = self.shared.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.rt.spawn(async move {
            let r = match shared.client().await {
                Ok(c) => {
                    let r = f(c.clone()).await;
                    if r.is_err() && c.is_closed() {
                        // Reconnect on the next call.
                        *shared.client.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    }
                    r.map_err(StoreError::from)
                }
                Err(e) => Err(e),
            };
            let _ = tx.send(r);
        });
        match rx.recv_timeout(self.timeout) {
            Ok(r) => r,
            Err(_) => Err(StoreError(format!(
                "PostgreSQL did not answer within {:?}",
                self.timeout
            ))),
        }
    }
}

impl Store for PgStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = key.to_owned();
        self.run(|c| async move {
            let row = c
                .query_opt("SELECT doc FROM imspec_documents WHERE key = $1", &[&key])
                .await?;
            Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
        })
    }

    fn put(&self, key: &str, doc: &[u8]) -> Result<(), StoreError> {
        let (key, doc) = (key.to_owned(), doc.to_vec());
        self.run(|c| async move {
            c.execute(
                "INSERT INTO imspec_documents (key, doc) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET doc = EXCLUDED.doc",
                &[&key, &doc],
            )
            .await?;
            // After the commit, so that a server seeing the new generation sees the document.
            c.execute("SELECT nextval('imspec_documents_generation')", &[])
                .await?;
            Ok(())
        })
    }

    fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.run(|c| async move {
            let n = c
                .execute("DELETE FROM imspec_documents WHERE key = $1", &[&key])
                .await?;
            c.execute("SELECT nextval('imspec_documents_generation')", &[])
                .await?;
            Ok(n > 0)
        })
    }

    fn list_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let prefix = prefix.to_owned();
        self.run(move |c| async move {
            let rows = c
                .query(
                    "SELECT key, doc FROM imspec_documents WHERE starts_with(key, $1) \
                     ORDER BY key COLLATE \"C\"",
                    &[&prefix],
                )
                .await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn put_if(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        doc: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let key = key.to_owned();
        let expected = expected.map(<[u8]>::to_vec);
        let doc = doc.map(<[u8]>::to_vec);
        // Each case is one statement: the check and the write are atomic.
        self.run(move |c| async move {
            let n = match (&expected, &doc) {
                (None, Some(d)) => {
                    c.execute(
                        "INSERT INTO imspec_documents (key, doc) VALUES ($1, $2) \
                         ON CONFLICT (key) DO NOTHING",
                        &[&key, d],
                    )
                    .await?
                }
                (Some(old), Some(d)) => {
                    c.execute(
                        "UPDATE imspec_documents SET doc = $3 WHERE key = $1 AND doc = $2",
                        &[&key, old, d],
                    )
                    .await?
                }
                (Some(old), None) => {
                    c.execute(
                        "DELETE FROM imspec_documents WHERE key = $1 AND doc = $2",
                        &[&key, old],
                    )
                    .await?
                }
                (None, None) => {
                    let absent: bool = c
                        .query_one(
                            "SELECT NOT EXISTS (SELECT 1 FROM imspec_documents WHERE key = $1)",
                            &[&key],
                        )
                        .await?
                        .get(0);
                    return Ok(absent);
                }
            };
            if n > 0 {
                c.execute("SELECT nextval('imspec_documents_generation')", &[])
                    .await?;
            }
            Ok(n > 0)
        })
    }

    fn list(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.run(|c| async move {
            // COLLATE "C": byte order, the order the embedded store lists in.
            let rows = c
                .query(
                    "SELECT key, doc FROM imspec_documents ORDER BY key COLLATE \"C\"",
                    &[],
                )
                .await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn put_binding(
        &self,
        aor: &str,
        contact: SocketAddr,
        expires_unix: u64,
    ) -> Result<(), StoreError> {
        let (aor, contact) = (aor.to_owned(), contact.to_string());
        let expires = i64::try_from(expires_unix).unwrap_or(i64::MAX);
        // A removal stays as a row expiring at 0 until it is old, so that the other
        // servers' polls see it.
        self.run(move |c| async move {
            c.execute(
                &format!(
                    "INSERT INTO imspec_bindings (aor, contact, expires, updated) \
                     VALUES ($1, $2, $3, {NOW_MICROS}) \
                     ON CONFLICT (aor, contact) DO UPDATE \
                     SET expires = EXCLUDED.expires, updated = EXCLUDED.updated"
                ),
                &[&aor, &contact, &expires],
            )
            .await?;
            Ok(())
        })
    }

    fn bindings(&self) -> Result<Vec<(String, SocketAddr, u64)>, StoreError> {
        let rows = self.run(|c| async move {
            let rows = c
                .query(
                    "SELECT aor, contact, expires FROM imspec_bindings WHERE expires > 0 \
                     ORDER BY aor, contact",
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1), r.get(2)))
                .collect::<Vec<(String, String, i64)>>())
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(aor, c, e)| Some((aor, c.parse().ok()?, u64::try_from(e).ok()?)))
            .collect())
    }

    fn offline_put(&self, key: &str, record: &[u8]) -> Result<(), StoreError> {
        let (key, record) = (key.to_owned(), record.to_vec());
        self.run(|c| async move {
            c.execute(
                "INSERT INTO imspec_offline (key, record) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET record = EXCLUDED.record",
                &[&key, &record],
            )
            .await?;
            Ok(())
        })
    }

    fn offline_list(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let prefix = prefix.to_owned();
        self.run(move |c| async move {
            let rows = c
                .query(
                    "SELECT key, record FROM imspec_offline WHERE starts_with(key, $1) \
                     ORDER BY key COLLATE \"C\"",
                    &[&prefix],
                )
                .await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn offline_delete(&self, key: &str) -> Result<bool, StoreError> {
        let key = key.to_owned();
        self.run(|c| async move {
            let n = c
                .execute("DELETE FROM imspec_offline WHERE key = $1", &[&key])
                .await?;
            Ok(n > 0)
        })
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn binding_changes(&self, since: u64) -> Result<(Vec<BindingRow>, u64), StoreError> {
        let since = i64::try_from(since).unwrap_or(i64::MAX);
        let collect = self
            .polls
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(COLLECT_EVERY);
        let (rows, cursor) = self.run(move |c| async move {
            if collect {
                c.execute(
                    "DELETE FROM imspec_bindings \
                     WHERE expires < extract(epoch from now())::bigint - $1",
                    &[&TOMBSTONE_SECS],
                )
                .await?;
            }
            let rows = c
                .query(
                    "SELECT aor, contact, expires, updated FROM imspec_bindings \
                     WHERE updated > $1 ORDER BY updated",
                    &[&since.saturating_sub(POLL_OVERLAP_MICROS)],
                )
                .await?;
            let cursor = rows
                .iter()
                .map(|r| r.get::<_, i64>(3))
                .max()
                .unwrap_or(since)
                .max(since);
            Ok((
                rows.iter()
                    .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1), r.get(2)))
                    .collect::<Vec<(String, String, i64)>>(),
                cursor,
            ))
        })?;
        let rows = rows
            .into_iter()
            .filter_map(|(aor, c, e)| {
                Some(BindingRow {
                    aor,
                    contact: c.parse().ok()?,
                    expires_unix: u64::try_from(e).unwrap_or(0),
                })
            })
            .collect();
        Ok((rows, u64::try_from(cursor).unwrap_or(0)))
    }

    fn documents_generation(&self) -> Result<u64, StoreError> {
        self.run(|c| async move {
            // A sequence's last_value is read outside transactions: every server sees each
            // `nextval` at once. A fresh sequence's last_value is already its first value
            // (is_called false): without is_called the first write would not change it.
            let row = c
                .query_one(
                    "SELECT CASE WHEN is_called THEN last_value ELSE 0 END \
                     FROM imspec_documents_generation",
                    &[],
                )
                .await?;
            Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
        })
    }
}

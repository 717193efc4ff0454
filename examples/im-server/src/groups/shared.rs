//! The groups every worker reads: the folder's store behind a lock, reloaded by one
//! background thread, and the managed (XCAP) groups layered over it.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use im_runtime::machine::{GroupDirectory, GroupPolicy, Uri};

use super::key::{Index, Key, lookup};
use super::{Group, GroupStore, Problem, log_problem, parse_document};

/// The least time between two looks at the folder by [`SharedGroups`]' reloader, so that a
/// `groups_poll` of 0 does not spin a core.
const MIN_RELOAD_INTERVAL: Duration = Duration::from_millis(100);

/// A group store shared by every worker of the server. Workers read the current snapshot
/// (a read lock held for one look-up); one background thread looks at the folder every
/// poll interval and publishes a new snapshot when a file was added, changed or removed.
/// So no worker ever does file I/O, and a group edited on disk is seen by all of them.
#[derive(Clone, Debug)]
pub struct SharedGroups {
    current: Arc<RwLock<Arc<GroupStore>>>,
    managed: Arc<RwLock<Arc<ManagedGroups>>>,
}

/// Groups defined by documents in the [`crate::store::Store`] (created over XCAP). They are
/// looked up before the folder's, so a managed document may redefine a folder group.
#[derive(Debug, Default)]
pub struct ManagedGroups {
    index: Index<(String, Group)>,
}

impl ManagedGroups {
    /// Parses every document (`(key, octets)`); a document that does not parse is reported
    /// and skipped, and a group URI defined by two documents keeps the first (key order).
    pub fn from_documents(docs: &[(String, Vec<u8>)]) -> (ManagedGroups, Vec<Problem>) {
        let mut m = ManagedGroups::default();
        let mut problems = Vec::new();
        for (k, bytes) in docs {
            let file = PathBuf::from(k);
            let parsed = std::str::from_utf8(bytes)
                .map_err(|e| format!("not UTF-8: {e}"))
                .and_then(|t| parse_document(t, &file));
            match parsed {
                Ok((groups, partial)) => {
                    problems.extend(partial);
                    for g in groups {
                        let id = Key::of(&g.uri);
                        if let Some((first, _)) = m.index.get(&id) {
                            problems.push(Problem {
                                file: file.clone(),
                                reason: format!(
                                    "group {} is already defined in {first}; this definition is ignored",
                                    g.uri.raw()
                                ),
                                skipped: false,
                            });
                            continue;
                        }
                        m.index.insert(id, (k.clone(), g));
                    }
                }
                Err(reason) => problems.push(Problem {
                    file,
                    reason,
                    skipped: true,
                }),
            }
        }
        for p in &problems {
            log_problem(p);
        }
        (m, problems)
    }

    /// The group with identity `uri`.
    pub fn group(&self, uri: &Uri) -> Option<&Group> {
        self.index.get(lookup(uri)).map(|(_, g)| g)
    }

    /// The key of the document defining the group `uri`.
    pub fn defined_by(&self, uri: &Uri) -> Option<&str> {
        self.index.get(lookup(uri)).map(|(k, _)| k.as_str())
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there is no managed group.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

impl SharedGroups {
    /// Shares `store` as loaded, with no reload thread: for embedders and harnesses (the
    /// fuzz target builds one per input) whose groups never change on disk.
    pub fn fixed(store: GroupStore) -> SharedGroups {
        SharedGroups {
            current: Arc::new(RwLock::new(Arc::new(store))),
            managed: Arc::new(RwLock::new(Arc::new(ManagedGroups::default()))),
        }
    }

    /// Shares `store` (already loaded) and starts the thread that reloads it every
    /// `store`'s poll interval (at least 100 ms). The thread ends once every clone of the
    /// returned value is dropped.
    pub fn start(store: GroupStore) -> SharedGroups {
        let poll = store.poll.max(MIN_RELOAD_INTERVAL);
        let shared = SharedGroups {
            current: Arc::new(RwLock::new(Arc::new(store.clone()))),
            managed: Arc::new(RwLock::new(Arc::new(ManagedGroups::default()))),
        };
        let weak = Arc::downgrade(&shared.current);
        let mut store = store;
        let spawned = std::thread::Builder::new()
            .name("groups-reload".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(poll);
                    let Some(cell) = weak.upgrade() else {
                        return;
                    };
                    // `reload` logs each problem itself.
                    if store.reload().changed {
                        let next = Arc::new(store.clone());
                        *cell.write().unwrap_or_else(|e| e.into_inner()) = next;
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the groups reload thread ({e}); groups stay as loaded");
        }
        shared
    }

    /// The store as last loaded.
    pub fn snapshot(&self) -> Arc<GroupStore> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl SharedGroups {
    /// The managed (store) groups as last published.
    pub fn managed(&self) -> Arc<ManagedGroups> {
        self.managed
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Publishes a new set of managed groups; sessions started from now on see it, and a
    /// session in progress keeps the member list it was started with.
    pub fn set_managed(&self, groups: ManagedGroups) {
        *self.managed.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(groups);
    }

    /// The group `uri`: a managed one first, else the folder's.
    pub fn with_group<T>(&self, uri: &Uri, f: impl FnOnce(&Group) -> T) -> Option<T> {
        let managed = self.managed();
        if let Some(g) = managed.group(uri) {
            return Some(f(g));
        }
        self.snapshot().group(uri).map(f)
    }
}

impl GroupDirectory for SharedGroups {
    fn owns(&self, group: &Uri) -> bool {
        self.with_group(group, |_| ()).is_some()
    }

    fn members(&self, group: &Uri) -> Option<Vec<Uri>> {
        self.with_group(group, |g| g.members.iter().map(|m| m.uri.clone()).collect())
    }

    fn policy(&self, group: &Uri, user: &Uri) -> Option<GroupPolicy> {
        self.with_group(group, |g| g.policy(user))
    }
}

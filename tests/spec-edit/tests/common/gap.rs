//! What the spec-edit tests of a group share: one spec's generated functions ([`spec!`],
//! the spec as written or a copy `gaps.toml`/`edits.toml` changed), an application with a
//! group of alice and bob ([`GroupApp`], built by [`Group`]), the sans-IO endpoint it runs
//! in with the datagrams in and out ([`Run`]), and the runtime's log captured while a test
//! runs with the assertions on its `spec gap` lines ([`logged`], [`Log`]). The group
//! application and its endpoint are im-runtime's (`endpoint_offline.rs` runs them on the
//! specs as written).

// Each test file uses a different part.
#![allow(dead_code)]

#[path = "../../../../im-runtime/tests/common/group.rs"]
mod group;

pub(crate) use group::*;
use std::sync::{Arc, Mutex};
use tracing_subscriber::fmt::MakeWriter;

/// The [`Spec`] of one module of `imspec_spec_edit` (`spec!(original)`).
// Not every test that includes this module runs a group spec (`subscription_refresh.rs`
// only uses its `Run`).
#[allow(unused_macros)]
macro_rules! spec {
    ($spec:ident) => {
        $crate::gap::Spec {
            initial: $spec::initial,
            by_clause: $spec::by_clause,
            invitee_leg: $spec::invitee_leg,
            methods: $spec::methods,
        }
    };
}
#[allow(unused_imports)]
pub(crate) use spec;

/// The log lines written while `f` runs on this thread (INFO and above, no colours).
pub(crate) fn logged<T>(f: impl FnOnce() -> T) -> (T, Log) {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("log buffer").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }
    let buf = Buf::default();
    let sub = tracing_subscriber::fmt()
        .with_writer(buf.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let r = tracing::subscriber::with_default(sub, f);
    let text = String::from_utf8_lossy(&buf.0.lock().expect("log buffer")).into_owned();
    (r, Log(text))
}

/// A captured log.
#[derive(Clone, Debug)]
pub(crate) struct Log(pub(crate) String);

impl std::fmt::Display for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Log {
    /// Whether some line contains `needle`.
    pub(crate) fn contains(&self, needle: &str) -> bool {
        self.0.contains(needle)
    }

    /// The lines containing `needle`.
    pub(crate) fn lines_with(&self, needle: &str) -> Vec<&str> {
        self.0.lines().filter(|l| l.contains(needle)).collect()
    }

    /// The `spec gap` lines.
    pub(crate) fn gaps(&self) -> Vec<&str> {
        self.lines_with("spec gap")
    }

    /// Asserts that no line is a spec gap.
    #[track_caller]
    pub(crate) fn assert_no_gap(&self) {
        assert!(self.gaps().is_empty(), "{}", self.0);
    }

    /// Asserts one `spec gap` line, `spec gap: {message}` with `trigger="{trigger}"`,
    /// naming `machine` (`clause/procedure@state`, or a prefix of it) and every one of
    /// `also`; returns it.
    #[track_caller]
    pub(crate) fn assert_one_gap(
        &self,
        message: &str,
        trigger: &str,
        machine: &str,
        also: &[&str],
    ) -> &str {
        let lines = self.gaps();
        assert_eq!(lines.len(), 1, "{}", self.0);
        let line = lines[0];
        let want = [
            format!("spec gap: {message}"),
            format!("trigger=\"{trigger}\""),
            machine.to_owned(),
        ];
        for w in want.iter().map(String::as_str).chain(also.iter().copied()) {
            assert!(line.contains(w), "no {w:?} in {line}");
        }
        line
    }
}

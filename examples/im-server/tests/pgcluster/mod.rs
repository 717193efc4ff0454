//! A throwaway PostgreSQL cluster for tests: `initdb` into a temporary directory, `pg_ctl`
//! on a free loopback port with its socket in that directory, stopped (and the directory
//! removed) on drop. Uses the Debian `postgresql` package's binaries
//! (`/usr/lib/postgresql/<version>/bin`); `scripts/test-all` installs it. A missing
//! PostgreSQL fails the test: it never silently skips.
//!
//! PostgreSQL refuses to run as root, and CI runs as root: then every command runs as the
//! `postgres` user (created by the package) through `runuser`, and the directory is handed
//! to that user.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;

// store_backends.rs has this module without `common`; where both are in, the two copies
// claim from the same lock files, so they still never hand out one port twice.
#[allow(clippy::duplicate_mod)]
#[path = "../common/ports.rs"]
mod ports;

/// A running cluster; the database `postgres` is reachable as the trusted user `imspec`.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<&'static str>,
    port: u16,
}

fn pg_bin() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): \
             apt-get install -y postgresql (scripts/test-all does)"
        ),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A port claimed from the other tests (`common/ports.rs`: outside the kernel's ephemeral
/// range, locked for this test process).
fn free_port() -> u16 {
    ports::claim()
}

impl Cluster {
    /// Creates and starts a cluster.
    pub fn start() -> Cluster {
        let bin = pg_bin();
        let run_as = is_root().then_some("postgres");
        let dir = tempfile::Builder::new()
            .prefix("imspec-pg")
            .tempdir()
            .unwrap();
        if let Some(user) = run_as {
            let st = Command::new("chown")
                .arg(user)
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(st.success(), "chown {user} {}", dir.path().display());
        }
        let mut c = Cluster {
            dir,
            bin,
            run_as,
            port: 0,
        };
        let data = c.data();
        c.pg(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "imspec",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        // A process outside the tests may still take the port before PostgreSQL binds it.
        for attempt in 0.. {
            c.port = free_port();
            if c.try_start() {
                break;
            }
            assert!(attempt < 3, "PostgreSQL did not start:\n{}", c.log());
        }
        c
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    fn pg(&self, tool: &str, args: &[&str]) {
        let out = self.command(tool).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn try_start(&self) -> bool {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        self.command("pg_ctl")
            .args(["-D", self.data().to_str().unwrap(), "-l"])
            .arg(self.dir.path().join("log"))
            .args(["-w", "-t", "30", "-o", &opts, "start"])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    /// The URL of the `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://imspec@127.0.0.1:{}/postgres", self.port)
    }

    /// The port the cluster listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server cleanly and starts it again on the same port and data.
    pub fn restart(&self) {
        self.stop();
        assert!(
            self.try_start(),
            "PostgreSQL did not restart:\n{}",
            self.log()
        );
    }

    fn stop(&self) {
        let _ = self
            .command("pg_ctl")
            .args([
                "-D",
                self.data().to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "stop",
            ])
            .stdout(std::process::Stdio::null())
            .status();
    }

    /// The directory holding the cluster (data, log, socket).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

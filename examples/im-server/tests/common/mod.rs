//! End-to-end harness: the real `im-server` binary against SIPp.
//!
//! * [`sipp`] finds SIPp and **fails** (panics) with the install command when it is missing:
//!   an e2e test that cannot run must not pass.
//! * [`free_sip_port`] / [`free_tcp_port`] pick free ports (bind port 0, release), so tests
//!   run in parallel and never touch the defaults.
//! * [`Server::start`] runs the binary with flags, waits until it listens and kills it when
//!   dropped (also when the test panics).
//! * [`Sipp`] runs a scenario from `tests/sipp/` with `-m`, a receive timeout, a global
//!   timeout and error/message traces in a temp folder, and returns the exit status and logs.
//!   [`Sipp::spawn`] runs one in the background (invitee UAS scenarios).

// Real sockets and real processes: this harness measures wall-clock time on purpose.
#![allow(clippy::disallowed_methods)]
// Each test file uses a different part of the harness.
#![allow(dead_code)]

use std::ffi::OsString;
use std::fmt;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The Debian/Ubuntu command that installs SIPp.
pub(crate) const INSTALL_SIPP: &str = "apt-get install -y sip-tester";

/// The folder of SIPp scenarios.
pub(crate) fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp")
}

/// Looks for an executable `sipp` in `$SIPP` or in the folders of `path_var`.
pub(crate) fn locate_sipp(
    sipp_env: Option<OsString>,
    path_var: Option<OsString>,
) -> Result<PathBuf, String> {
    if let Some(p) = sipp_env {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "$SIPP is set to {} but no such file exists",
                p.display()
            ))
        };
    }
    if let Some(paths) = path_var {
        for dir in std::env::split_paths(&paths) {
            let cand = dir.join("sipp");
            if cand.is_file() {
                return Ok(cand);
            }
        }
    }
    Err(format!(
        "sipp not found on PATH: the end-to-end tests need SIPp. Install it with \
         `{INSTALL_SIPP}` (or set SIPP=/path/to/sipp)"
    ))
}

/// The SIPp executable; panics with the install command when it is missing.
pub(crate) fn sipp() -> PathBuf {
    match locate_sipp(std::env::var_os("SIPP"), std::env::var_os("PATH")) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// A port free for both UDP and TCP on 127.0.0.1 (SIP listens on both with one port).
pub(crate) fn free_sip_port() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind UDP port 0");
        let port = udp.local_addr().expect("local addr").port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP after 100 tries");
}

/// A free TCP port on 127.0.0.1.
pub(crate) fn free_tcp_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind TCP port 0");
    l.local_addr().expect("local addr").port()
}

/// A free UDP port on 127.0.0.1 (for a SIPp instance).
pub(crate) fn free_udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind UDP port 0");
    s.local_addr().expect("local addr").port()
}

fn read(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Waits for `child` up to `limit`; kills it when the time is up.
fn wait_with_deadline(child: &mut Child, limit: Duration) -> (Option<ExitStatus>, bool) {
    let end = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return (Some(s), false),
            Ok(None) if Instant::now() >= end => {
                let _ = child.kill();
                return (child.wait().ok(), true);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => return (None, false),
        }
    }
}

/// A running `im-server`; killed on drop.
pub(crate) struct Server {
    child: Child,
    /// SIP address (UDP and TCP).
    pub(crate) sip: SocketAddr,
    /// MSRP address.
    pub(crate) msrp: SocketAddr,
    /// Folder holding the server's stdout/stderr logs.
    pub(crate) dir: tempfile::TempDir,
}

impl Server {
    /// Starts the binary on free ports with `extra` flags (`--groups DIR` …) and waits up to
    /// 10 s until it accepts TCP on the SIP and MSRP ports. Panics with the server's log if
    /// it exits or does not listen in time.
    pub(crate) fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let sip: SocketAddr = ([127, 0, 0, 1], free_sip_port()).into();
        let msrp: SocketAddr = ([127, 0, 0, 1], free_tcp_port()).into();
        let out = std::fs::File::create(dir.path().join("server.out")).expect("log file");
        let err = std::fs::File::create(dir.path().join("server.err")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_im-server"))
            .arg("--sip")
            .arg(sip.to_string())
            .arg("--msrp")
            .arg(msrp.to_string())
            .arg("--log")
            .arg("debug")
            .args(extra)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn im-server");
        let mut server = Server {
            child,
            sip,
            msrp,
            dir,
        };
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "im-server exited before listening ({status}):\n{}",
                    server.log()
                );
            }
            let up =
                |a: SocketAddr| TcpStream::connect_timeout(&a, Duration::from_millis(100)).is_ok();
            if up(sip) && up(msrp) {
                return server;
            }
            if Instant::now() >= end {
                panic!(
                    "im-server did not listen on {sip} and {msrp} within 10 s:\n{}",
                    server.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server's stdout and stderr so far.
    pub(crate) fn log(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            read(&self.dir.path().join("server.out")),
            read(&self.dir.path().join("server.err"))
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One SIPp run to prepare.
#[derive(Clone, Debug)]
pub(crate) struct Sipp {
    scenario: String,
    remote: Option<SocketAddr>,
    local_port: u16,
    transport: &'static str,
    calls: u32,
    recv_timeout: Duration,
    global_timeout: Duration,
    keys: Vec<(String, String)>,
}

/// What a SIPp run left behind.
pub(crate) struct SippRun {
    /// Exit status (`None` when it could not be collected).
    pub(crate) status: Option<ExitStatus>,
    /// Whether the harness had to kill it.
    pub(crate) killed: bool,
    /// SIPp's stdout (the final statistics screen).
    pub(crate) stdout: String,
    /// SIPp's stderr.
    pub(crate) stderr: String,
    /// The `-trace_err` log (unexpected messages, timeouts).
    pub(crate) errors: String,
    /// The `-trace_msg` log (every message sent and received).
    pub(crate) messages: String,
    /// The folder with the logs, kept while this value lives.
    pub(crate) dir: tempfile::TempDir,
}

impl SippRun {
    /// Exit code (`None` when killed by a signal).
    pub(crate) fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    /// Whether every call succeeded (SIPp exit code 0).
    pub(crate) fn success(&self) -> bool {
        self.code() == Some(0)
    }

    /// Distinct Call-IDs of the INVITE requests this SIPp received.
    pub(crate) fn received_invites(&self) -> usize {
        let mut ids = std::collections::BTreeSet::new();
        for block in self.messages.split("message received") {
            let mut lines = block
                .lines()
                .skip_while(|l| l.trim().is_empty() || l.contains("bytes"));
            if lines.next().is_some_and(|l| l.starts_with("INVITE "))
                && let Some(id) = block
                    .lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("call-id:"))
            {
                ids.insert(id.trim().to_owned());
            }
        }
        ids.len()
    }
}

impl fmt::Debug for SippRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sipp exit {:?} (killed: {})\n--- stderr ---\n{}\n--- errors ---\n{}\n--- messages ---\n{}",
            self.code(),
            self.killed,
            self.stderr,
            self.errors,
            self.messages
        )
    }
}

impl Sipp {
    /// A run of `tests/sipp/<scenario>.xml`, one call, UDP, 5 s receive timeout and a 20 s
    /// global timeout, from a free local port.
    pub(crate) fn new(scenario: &str) -> Sipp {
        Sipp {
            scenario: scenario.to_owned(),
            remote: None,
            local_port: free_udp_port(),
            transport: "u1",
            calls: 1,
            recv_timeout: Duration::from_secs(5),
            global_timeout: Duration::from_secs(20),
            keys: Vec::new(),
        }
    }

    /// The address to send to (UAC scenarios).
    pub(crate) fn to(mut self, remote: SocketAddr) -> Sipp {
        self.remote = Some(remote);
        self
    }

    /// The local SIP port (UAS scenarios listen there).
    pub(crate) fn port(mut self, port: u16) -> Sipp {
        self.local_port = port;
        self
    }

    /// Use TCP instead of UDP.
    pub(crate) fn tcp(mut self) -> Sipp {
        self.transport = "t1";
        self
    }

    /// Number of calls (`-m`).
    pub(crate) fn calls(mut self, n: u32) -> Sipp {
        self.calls = n;
        self
    }

    /// Per-message receive timeout and global timeout.
    pub(crate) fn timeouts(mut self, recv: Duration, global: Duration) -> Sipp {
        self.recv_timeout = recv;
        self.global_timeout = global;
        self
    }

    /// A scenario keyword (`-key name value`, used as `[name]`).
    pub(crate) fn key(mut self, name: &str, value: &str) -> Sipp {
        self.keys.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The local SIP URI host:port of this instance.
    pub(crate) fn local(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.local_port).into()
    }

    /// Starts SIPp in the background.
    pub(crate) fn spawn(&self) -> SippProc {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = scenario_dir().join(format!("{}.xml", self.scenario));
        assert!(file.is_file(), "no scenario {}", file.display());
        let mut cmd = Command::new(sipp());
        if let Some(r) = self.remote {
            cmd.arg(r.to_string());
        }
        cmd.arg("-sf")
            .arg(&file)
            .args(["-i", "127.0.0.1", "-p"])
            .arg(self.local_port.to_string())
            .args(["-t", self.transport, "-m"])
            .arg(self.calls.to_string())
            .arg("-recv_timeout")
            .arg(self.recv_timeout.as_millis().to_string())
            // SIPp ignores a bare -timeout when not on a terminal; -timeout_error makes it
            // exit (255) when the global timeout hits.
            .arg("-timeout")
            .arg(format!("{}", self.global_timeout.as_secs().max(1)))
            .arg("-timeout_error")
            .args(["-nostdin", "-trace_err", "-error_file"])
            .arg(dir.path().join("errors.log"))
            .args(["-trace_msg", "-message_file"])
            .arg(dir.path().join("messages.log"));
        for (k, v) in &self.keys {
            cmd.args(["-key", k, v]);
        }
        let out = std::fs::File::create(dir.path().join("stdout.log")).expect("log file");
        let err = std::fs::File::create(dir.path().join("stderr.log")).expect("log file");
        let child = cmd
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn sipp");
        SippProc {
            child: Some(child),
            dir: Some(dir),
            limit: self.global_timeout + Duration::from_secs(5),
        }
    }

    /// Runs SIPp to the end (or its global timeout plus 5 s, then kills it).
    pub(crate) fn run(&self) -> SippRun {
        self.spawn().wait()
    }
}

/// A SIPp instance running in the background; killed on drop.
pub(crate) struct SippProc {
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
    limit: Duration,
}

impl SippProc {
    /// Waits for the end (killing it after its global timeout plus a margin) and collects
    /// the logs.
    pub(crate) fn wait(mut self) -> SippRun {
        let mut child = self.child.take().expect("child present until wait");
        let dir = self.dir.take().expect("dir present until wait");
        let (status, killed) = wait_with_deadline(&mut child, self.limit);
        let p = dir.path();
        SippRun {
            status,
            killed,
            stdout: read(&p.join("stdout.log")),
            stderr: read(&p.join("stderr.log")),
            errors: read(&p.join("errors.log")),
            messages: read(&p.join("messages.log")),
            dir,
        }
    }
}

impl Drop for SippProc {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Writes a one-group OMA list-service document into a new temp folder: group `group` with
/// `members`, every member may initiate.
pub(crate) fn group_folder(group: &str, members: &[String]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let entries: String = members
        .iter()
        .map(|m| format!("      <rl:entry uri=\"{m}\"/>\n"))
        .collect();
    let doc = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<group xmlns="urn:oma:xml:poc:list-service"
       xmlns:rl="urn:ietf:params:xml:ns:resource-lists"
       xmlns:cp="urn:ietf:params:xml:ns:common-policy">
  <list-service uri="{group}">
    <list>
{entries}    </list>
    <cp:ruleset>
      <cp:rule id="members">
        <cp:conditions><is-list-member/></cp:conditions>
        <cp:actions><allow-initiate-conference>true</allow-initiate-conference></cp:actions>
      </cp:rule>
    </cp:ruleset>
  </list-service>
</group>
"#
    );
    std::fs::write(dir.path().join("e2e.xml"), doc).expect("write group");
    dir
}

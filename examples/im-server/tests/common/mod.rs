//! End-to-end harness: the real `im-server` binary against SIPp.
//!
//! * [`sipp`] finds SIPp and **fails** (panics) with the install command when it is missing:
//!   an e2e test that cannot run must not pass.
//! * [`free_sip_port`] / [`free_tcp_port`] / [`free_udp_port`] pick ports for the processes
//!   a test starts, claimed for the whole test process (`ports.rs`), so tests run in
//!   parallel, never take each other's ports and never touch the defaults.
//! * [`Server::start`] runs the binary with flags, waits until it listens and kills it when
//!   dropped (also when the test panics).
//! * [`Sipp`] runs a scenario from `tests/sipp/` with `-m`, a receive timeout, a global
//!   timeout and error/message traces in a temp folder, and returns the exit status and logs.
//!   [`Sipp::spawn`] runs one in the background (invitee UAS scenarios); a scenario's `<log>`
//!   actions go to a log file that [`SippProc::wait_for_log`] reads while it runs.
//! * [`MsrpPeer`] runs `tests/peers/msrp_peer.py` (a stdlib Python MSRP peer written from
//!   RFC 4975, independent of the Rust code) and parses the JSON events it prints; a missing
//!   `python3` **fails** with the install command.
//! * [`SipLog`] splits a SIPp message log into the messages it received.
//! * [`kamailio::Kamailio`] runs a config of `scripts/kamailio/` in front of the server.

// Real sockets and real processes: this harness measures wall-clock time on purpose.
#![allow(clippy::disallowed_methods)]
// Each test file uses a different part of the harness.
#![allow(dead_code)]

pub(crate) mod kamailio;
pub(crate) mod pki;

use std::ffi::OsString;
use std::fmt;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub(crate) mod ports;

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

/// A port free for both UDP and TCP on 127.0.0.1 (SIP listens on both with one port),
/// claimed for this test process ([`ports::claim`]).
pub(crate) fn free_sip_port() -> u16 {
    ports::claim()
}

/// A claimed port ([`free_sip_port`]) bound for both UDP and TCP, with the two sockets
/// holding it.
pub(crate) fn reserve_sip_port() -> (u16, UdpSocket, TcpListener) {
    let port = ports::claim();
    let udp = UdpSocket::bind(("127.0.0.1", port)).expect("bind the claimed UDP port");
    let tcp = TcpListener::bind(("127.0.0.1", port)).expect("bind the claimed TCP port");
    (port, udp, tcp)
}

/// A free TCP port on 127.0.0.1, claimed for this test process ([`ports::claim`]).
pub(crate) fn free_tcp_port() -> u16 {
    ports::claim()
}

/// A free UDP port on 127.0.0.1, claimed for this test process ([`ports::claim`]).
pub(crate) fn free_udp_port() -> u16 {
    ports::claim()
}

fn read(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Polls `f` every 50 ms until it holds (`true`) or `limit` has passed (`false`).
pub(crate) fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
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
    ///
    /// Authentication is off (`--no-auth`): these tests exercise the procedures, and their
    /// SIPp scenarios send no credentials; and recipients outside the domain are allowed
    /// (`--allow-external-recipients`), as their invitees are SIPp instances named by IP
    /// address. The authentication and authorisation tests use [`Server::start_auth`].
    pub(crate) fn start(extra: &[&str]) -> Server {
        let mut args = vec!["--no-auth", "--allow-external-recipients"];
        args.extend_from_slice(extra);
        Self::start_attempt(&args, 0)
    }

    /// [`Server::start`] with Digest authentication on (the embedded demo users, or the
    /// users `extra` configures).
    pub(crate) fn start_auth(extra: &[&str]) -> Server {
        Self::start_attempt(extra, 0)
    }

    fn start_attempt(extra: &[&str], attempt: u32) -> Server {
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
            // Plain log lines, so tests can match `field=value`.
            .env("NO_COLOR", "1")
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
                // A process outside the tests (which claim their ports, `ports.rs`) can
                // take a port between the claim and the server's bind: pick new ones.
                if attempt < 3 && server.log().contains("cannot bind") {
                    return Self::start_attempt(extra, attempt + 1);
                }
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

    /// Sends SIGTERM (a graceful shutdown: main.rs logs `im-server stopped live_sessions=N`
    /// on the way out) and waits up to 10 s for the exit. Returns the exit status, killing
    /// the server when it does not stop in time.
    pub(crate) fn terminate(&mut self) -> Option<ExitStatus> {
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        assert!(
            sent.is_ok_and(|s| s.success()),
            "could not send SIGTERM to im-server"
        );
        wait_with_deadline(&mut self.child, Duration::from_secs(10)).0
    }

    /// Waits up to `limit` until the server's log contains `needle`.
    pub(crate) fn wait_for_log(&self, needle: &str, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every MSRP address the server listens on (one per worker), from its `im-server
    /// bound` log line: `msrp=[127.0.0.1:P, 127.0.0.1:Q]`.
    pub(crate) fn msrp_listen(&self) -> Vec<SocketAddr> {
        let log = self.log();
        let Some(line) = log.lines().find(|l| l.contains("im-server bound")) else {
            return vec![self.msrp];
        };
        line.split("msrp=[")
            .nth(1)
            .and_then(|r| r.split(']').next())
            .map(|list| {
                list.split(',')
                    .filter_map(|a| a.trim().parse().ok())
                    .collect()
            })
            .unwrap_or_else(|| vec![self.msrp])
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
    /// Whether the test chose `local_port` ([`Sipp::port`]); a port the harness picked may
    /// be taken by another test between the pick and SIPp's bind, and is then re-picked.
    port_fixed: bool,
    transport: &'static str,
    calls: u32,
    recv_timeout: Duration,
    global_timeout: Duration,
    keys: Vec<(String, String)>,
    call_ids: Option<String>,
    auth: Option<(String, String)>,
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
    /// The `-trace_logs` log (what the scenario's `<log>` actions wrote).
    pub(crate) logs: String,
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
            local_port: free_sip_port(),
            port_fixed: false,
            transport: "u1",
            calls: 1,
            recv_timeout: Duration::from_secs(5),
            global_timeout: Duration::from_secs(20),
            keys: Vec::new(),
            call_ids: None,
            auth: None,
        }
    }

    /// The Call-ID pattern (`-cid_str`: `%u` is the call number, `%p` the pid, `%s` the
    /// IP), so a test can choose which server worker a call is steered to.
    pub(crate) fn call_ids(mut self, pattern: &str) -> Sipp {
        self.call_ids = Some(pattern.to_owned());
        self
    }

    /// The address to send to (UAC scenarios).
    pub(crate) fn to(mut self, remote: SocketAddr) -> Sipp {
        self.remote = Some(remote);
        self
    }

    /// The local SIP port (UAS scenarios listen there).
    pub(crate) fn port(mut self, port: u16) -> Sipp {
        self.local_port = port;
        self.port_fixed = true;
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

    /// Digest credentials for the scenario's `[authentication]` (`-au user -ap password`).
    pub(crate) fn auth(mut self, user: &str, password: &str) -> Sipp {
        self.auth = Some((user.to_owned(), password.to_owned()));
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
            .arg(dir.path().join("messages.log"))
            .args(["-trace_logs", "-log_file"])
            .arg(dir.path().join("logs.log"));
        for (k, v) in &self.keys {
            cmd.args(["-key", k, v]);
        }
        if let Some(c) = &self.call_ids {
            cmd.args(["-cid_str", c]);
        }
        if let Some((u, p)) = &self.auth {
            cmd.args(["-au", u, "-ap", p]);
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
    ///
    /// The harness's ports are claimed from the other tests (`ports.rs`), but a process
    /// outside them may still bind one before SIPp does; SIPp then exits at once with errno
    /// 98 having sent nothing, and the run is repeated on a fresh port (only when the
    /// harness picked it).
    pub(crate) fn run(&self) -> SippRun {
        let mut attempt = self.spawn().wait();
        let mut again = self.clone();
        for _ in 0..3 {
            if self.port_fixed || !attempt.stderr.contains("errno = 98") {
                break;
            }
            again.local_port = free_sip_port();
            attempt = again.spawn().wait();
        }
        attempt
    }
}

/// One pager-mode group session (SIPp `invite_pager`, its Call-IDs `call_ids` when given)
/// from `from` to `group` at `to`, while bob answers as SIPp `uas_answer` on `bob_port`
/// (one call, 15 s receive and 25 s global timeouts): the originator's run and bob's.
pub(crate) fn session_to_bob(
    to: SocketAddr,
    group: &str,
    from: &str,
    bob_port: u16,
    call_ids: Option<&str>,
) -> (SippRun, SippRun) {
    let bob = Sipp::new("uas_answer")
        .port(bob_port)
        .timeouts(Duration::from_secs(15), Duration::from_secs(25))
        .spawn();
    // bob's SIPp listens before the INVITE comes.
    std::thread::sleep(Duration::from_millis(200));
    let mut alice = Sipp::new("invite_pager")
        .to(to)
        .key("target", group)
        .key("from", from);
    if let Some(c) = call_ids {
        alice = alice.call_ids(c);
    }
    (alice.run(), bob.wait())
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
            logs: read(&p.join("logs.log")),
            dir,
        }
    }

    /// Waits up to `limit` for a line of the scenario's `<log>` output starting with
    /// `prefix` and returns the rest of it (trimmed). `None` when SIPp ended or time ran out.
    pub(crate) fn wait_for_log(&mut self, prefix: &str, limit: Duration) -> Option<String> {
        let file = self.dir.as_ref()?.path().join("logs.log");
        let end = Instant::now() + limit;
        loop {
            // A line counts once its newline is there: SIPp may flush mid-line.
            let text = read(&file);
            for line in text.split_inclusive('\n') {
                if let Some(rest) = line.strip_prefix(prefix)
                    && line.ends_with('\n')
                {
                    return Some(rest.trim().to_owned());
                }
            }
            let running = self
                .child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(None)));
            if !running || Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
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

/// The Debian/Ubuntu command that installs Python 3 (for the MSRP peer).
pub(crate) const INSTALL_PYTHON: &str = "apt-get install -y python3";

/// `tests/peers/msrp_peer.py` at the workspace root.
pub(crate) fn msrp_peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/msrp_peer.py")
}

/// `python3`; panics with the install command when it cannot run.
pub(crate) fn python3() -> PathBuf {
    let probe = Command::new("python3").arg("--version").output();
    match probe {
        Ok(o) if o.status.success() => PathBuf::from("python3"),
        _ => panic!(
            "python3 not found on PATH: the MSRP end-to-end tests run the Python MSRP peer \
             tests/peers/msrp_peer.py. Install it with `{INSTALL_PYTHON}`"
        ),
    }
}

/// One run of the Python MSRP peer; killed on drop. Its stdout (JSON lines) goes to a file.
pub(crate) struct MsrpPeer {
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
    /// A temp folder for the peer's files (`--out-dir`, input data, path files).
    pub(crate) dir: tempfile::TempDir,
    limit: Duration,
}

impl MsrpPeer {
    /// Starts `msrp_peer.py <args>`; `limit` bounds [`MsrpPeer::wait`] (the peer's own
    /// `--timeout` should be shorter). `{dir}` in an argument is replaced by [`MsrpPeer::dir`].
    pub(crate) fn spawn(dir: tempfile::TempDir, args: &[&str], limit: Duration) -> MsrpPeer {
        Self::spawn_script(&msrp_peer_script(), dir, args, limit)
    }

    /// As [`MsrpPeer::spawn`] for another script of `tests/peers/` (`sip_tls_client.py`)
    /// that prints JSON events the same way.
    pub(crate) fn spawn_script(
        script: &Path,
        dir: tempfile::TempDir,
        args: &[&str],
        limit: Duration,
    ) -> MsrpPeer {
        let out = dir.path().join("peer.out");
        let err = dir.path().join("peer.err");
        let d = dir.path().to_str().expect("utf-8 temp path").to_owned();
        let args: Vec<String> = args.iter().map(|a| a.replace("{dir}", &d)).collect();
        let child = Command::new(python3())
            .arg(script)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("peer log"))
            .stderr(std::fs::File::create(&err).expect("peer log"))
            .spawn()
            .expect("spawn a Python peer");
        MsrpPeer {
            child: Some(child),
            out,
            err,
            dir,
            limit,
        }
    }

    /// The events printed so far.
    pub(crate) fn events(&self) -> Vec<serde_json::Value> {
        read(&self.out)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits up to `limit` for an event named `name`.
    pub(crate) fn wait_for_event(&self, name: &str, limit: Duration) -> Option<serde_json::Value> {
        let end = Instant::now() + limit;
        loop {
            if let Some(e) = self.events().into_iter().find(|e| e["event"] == name) {
                return Some(e);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the exit (killing it after the limit) and returns the exit code.
    pub(crate) fn wait(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        wait_with_deadline(&mut child, self.limit)
            .0
            .and_then(|s| s.code())
    }
}

impl fmt::Debug for MsrpPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "msrp_peer.py\n--- events ---\n{}\n--- stderr ---\n{}",
            read(&self.out),
            read(&self.err)
        )
    }
}

impl Drop for MsrpPeer {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One SIP message out of a SIPp `-trace_msg` log.
#[derive(Clone, Debug)]
pub(crate) struct SipLogMessage {
    /// Whether SIPp received it (else it sent it).
    pub(crate) received: bool,
    /// The start line.
    pub(crate) start: String,
    /// The whole message text.
    pub(crate) text: String,
}

impl SipLogMessage {
    /// The value of the first header `name` (case-insensitive, no compact forms).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        let want = format!("{}:", name.to_ascii_lowercase());
        self.text
            .lines()
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .find(|l| l.to_ascii_lowercase().starts_with(&want))
            .map(|l| l[want.len()..].trim())
    }

    /// The body (after the first empty line).
    pub(crate) fn body(&self) -> &str {
        let t = self.text.as_str();
        t.find("\r\n\r\n")
            .map(|i| &t[i + 4..])
            .or_else(|| t.find("\n\n").map(|i| &t[i + 2..]))
            .unwrap_or("")
    }
}

/// The messages of a SIPp `-trace_msg` log, in order. SIPp writes a line of dashes with the
/// time, then `UDP message sent (N bytes):` or `UDP message received [N] bytes :`, then the
/// message.
pub(crate) fn sip_log(messages: &str) -> Vec<SipLogMessage> {
    let mut out: Vec<SipLogMessage> = Vec::new();
    let mut cur: Option<(bool, Vec<&str>)> = None;
    let flush = |cur: &mut Option<(bool, Vec<&str>)>, out: &mut Vec<SipLogMessage>| {
        if let Some((received, lines)) = cur.take() {
            let lines: Vec<&str> = lines
                .into_iter()
                .skip_while(|l| l.trim().is_empty())
                .collect();
            if let Some(start) = lines.first() {
                out.push(SipLogMessage {
                    received,
                    start: start.trim().to_owned(),
                    text: lines.join("\n"),
                });
            }
        }
    };
    for line in messages.split('\n') {
        let head = line.split(' ').nth(1) == Some("message");
        if line.starts_with("-----") {
            flush(&mut cur, &mut out);
        } else if head && line.contains("message received") {
            flush(&mut cur, &mut out);
            cur = Some((true, Vec::new()));
        } else if head && line.contains("message sent") {
            flush(&mut cur, &mut out);
            cur = Some((false, Vec::new()));
        } else if let Some((_, lines)) = &mut cur {
            lines.push(line.trim_end_matches('\r'));
        }
    }
    flush(&mut cur, &mut out);
    out
}

/// An MSRP receiver (`msrp_peer.py serve`) on a free loopback port that takes `count` copies
/// and gives up after `secs` seconds; `extra` arguments follow (e.g. `--tls-cert`). Returns
/// it with the port it listens on.
pub(crate) fn msrp_receiver(count: usize, secs: u64, extra: &[&str]) -> (MsrpPeer, u16) {
    let count = count.to_string();
    let timeout = secs.to_string();
    let mut args = vec![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--out-dir",
        "{dir}",
        "--count",
        &count,
        "--timeout",
        &timeout,
    ];
    args.extend_from_slice(extra);
    let receiver = MsrpPeer::spawn(
        tempfile::tempdir().unwrap(),
        &args,
        Duration::from_secs(secs + 5),
    );
    let listening = receiver
        .wait_for_event("listening", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("receiver did not listen: {receiver:?}"));
    let port = listening["port"].as_u64().unwrap();
    (receiver, u16::try_from(port).unwrap())
}

/// The copies an MSRP receiver got, by session id (the invitee's user part), in order.
pub(crate) type Copies = std::collections::BTreeMap<String, Vec<Vec<u8>>>;

/// The invitees' side of a group session: one SIPp UAS (`uas_msrp`) answering for every
/// invitee `sip:<user>@<host>`, and one MSRP receiver for all of them.
pub(crate) struct Invitees {
    /// The SIPp UAS, running.
    pub(crate) uas: SippProc,
    /// The MSRP receiver, running.
    pub(crate) receiver: MsrpPeer,
    /// The SIPp UAS address (host:port of every invitee URI).
    pub(crate) host: String,
}

impl Invitees {
    /// `calls` invitee calls expected; `messages` copies the receiver waits for; `secs` how
    /// long the receiver waits (SIPp's limits follow it).
    pub(crate) fn start(calls: u32, messages: usize, secs: u64) -> Invitees {
        Self::start_with(calls, messages, secs, &[])
    }

    /// As [`Invitees::start`], the MSRP receiver (`msrp_peer.py serve`) given `extra`
    /// arguments too.
    pub(crate) fn start_with(calls: u32, messages: usize, secs: u64, extra: &[&str]) -> Invitees {
        let (receiver, port) = msrp_receiver(messages, secs, extra);
        let sipp = Sipp::new("uas_msrp")
            .calls(calls)
            .key("msrp_port", &port.to_string())
            .timeouts(
                Duration::from_secs(secs.saturating_sub(5)),
                Duration::from_secs(secs + 5),
            );
        let host = sipp.local().to_string();
        Invitees {
            uas: sipp.spawn(),
            receiver,
            host,
        }
    }

    /// The URI of invitee `user`.
    pub(crate) fn uri(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.host)
    }

    /// Waits for the UAS and the receiver; returns the UAS run and the copies received per
    /// session id (= invitee user part).
    pub(crate) fn finish(mut self) -> (SippRun, Copies, MsrpPeer) {
        let run = self.uas.wait();
        let _ = self.receiver.wait();
        let mut copies = Copies::new();
        for e in self.receiver.events() {
            if e["event"] == "message" {
                let file = e["file"].as_str().unwrap();
                copies
                    .entry(e["session"].as_str().unwrap().to_owned())
                    .or_default()
                    .push(std::fs::read(file).unwrap());
            }
        }
        (run, copies, self.receiver)
    }
}

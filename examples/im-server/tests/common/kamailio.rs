//! Kamailio in front of the server, for the tests that put a real SIP proxy on the path
//! (`e2e_kamailio.rs`: the dispatcher over several instances; `e2e_kamailio_path.rs`: an
//! edge proxy adding Path). One start-up for both: a config of `scripts/kamailio/` with the
//! test's `-A` defines (and any file they name, written into Kamailio's own temp folder),
//! a claimed loopback port, the process in the foreground logging to a file, up once an
//! OPTIONS through it is answered, and stopped by its pid when dropped.
//!
//! A missing `kamailio` **fails** (panics) with the install command: a test that cannot
//! run must not pass.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_udp_port;

/// The Debian/Ubuntu command that installs Kamailio.
pub(crate) const INSTALL_KAMAILIO: &str = "apt-get install -y kamailio";

/// How long Kamailio (and the server behind it, which answers the probe) may take to come up.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// How long a SIGTERMed Kamailio may take to exit (its children exit with it) before it is
/// killed.
const STOP_WITHIN: Duration = Duration::from_secs(5);

/// Kamailio in the foreground, logging to a file; stopped with SIGTERM when dropped.
pub(crate) struct Kamailio {
    child: Child,
    /// Where it listens for SIP (UDP, loopback).
    pub(crate) sip: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Kamailio {
    /// Runs `scripts/kamailio/<cfg>` on a free loopback UDP port. `defines` gets Kamailio's
    /// temp folder (to write the files a define names there) and returns the `-A` defines
    /// (`NAME="value"`). Waits until an OPTIONS sent through it is answered 200 (by whatever
    /// the config relays to); panics with its log when that does not happen in time.
    pub(crate) fn start(cfg: &str, defines: impl FnOnce(&Path) -> Vec<String>) -> Kamailio {
        let dir = tempfile::tempdir().expect("temp dir");
        let defines = defines(dir.path());
        let cfg = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../scripts/kamailio")
            .join(cfg);
        let sip: SocketAddr = ([127, 0, 0, 1], free_udp_port()).into();
        let log = dir.path().join("kamailio.log");
        let exe = which("kamailio").unwrap_or_else(|| {
            panic!("kamailio not found: {INSTALL_KAMAILIO} (scripts/test-all does)")
        });
        let mut cmd = Command::new(exe);
        cmd.arg("-f")
            .arg(&cfg)
            .args(["-DD", "-E", "-m", "32", "-M", "4", "-l"])
            .arg(format!("udp:{sip}"));
        for d in &defines {
            cmd.arg("-A").arg(d);
        }
        let child = cmd
            .arg("-Y")
            .arg(dir.path())
            .arg("-w")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("kamailio.out")).expect("log file"))
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn kamailio");
        let k = Kamailio {
            child,
            sip,
            log,
            _dir: dir,
        };
        k.wait_ready();
        k
    }

    /// Up when an OPTIONS through it is answered 200.
    fn wait_ready(&self) {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind a probe socket");
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .expect("a read timeout");
        let end = Instant::now() + READY_WITHIN;
        for i in 0.. {
            let opts = request(
                &sock,
                "sip:probe@example.com",
                "OPTIONS",
                &format!("ping-{i}"),
                "",
            );
            sock.send_to(opts.as_bytes(), self.sip)
                .expect("send the probe");
            let mut buf = [0u8; 4096];
            if let Ok((n, _)) = sock.recv_from(&mut buf)
                && buf[..n].starts_with(b"SIP/2.0 200")
            {
                return;
            }
            assert!(
                Instant::now() < end,
                "Kamailio did not start:\n{}",
                self.log()
            );
        }
    }

    /// Its log (stderr) so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Where Kamailio sent the initial request with Call-ID `call_id` last (after any
    /// failover): the port of the last `… {call_id} -> sip:host:port` line its config's
    /// `xlog` wrote (`$rm $ci -> $du`, as both configs of `scripts/kamailio/` log).
    pub(crate) fn destination(&self, call_id: &str) -> Option<u16> {
        let log = self.log();
        let mut last = None;
        for l in log.lines() {
            if let Some(rest) = l.split(&format!(" {call_id} -> sip:")).nth(1) {
                last = rest.split(':').nth(1)?.trim().parse().ok();
            }
        }
        last
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let end = Instant::now() + STOP_WITHIN;
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name` on `PATH` or in the sbin folders, where Debian installs Kamailio (not on a
/// user's `PATH`).
fn which(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// A request of user `aor` (From and To) from `sock` to the server's domain
/// (`sip:example.com`), its branch made from `call_id`; `extra` header lines (each ending
/// CRLF) go before Max-Forwards.
fn request(sock: &UdpSocket, aor: &str, method: &str, call_id: &str, extra: &str) -> String {
    let me = sock.local_addr().expect("a bound socket");
    format!(
        "{method} sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK{call_id};rport\r\n\
         From: <{aor}>;tag=k1\r\n\
         To: <{aor}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 {method}\r\n\
         {extra}\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// `aor` registers `contact` (a URI) for 600 s at `to` (Kamailio, or a server) from a new
/// loopback socket on `from_port` (0: any), `extra` header lines (each ending CRLF) first;
/// the answer (within 5 s, else a panic).
pub(crate) fn register(
    to: SocketAddr,
    aor: &str,
    from_port: u16,
    contact: &str,
    call_id: &str,
    extra: &str,
) -> String {
    let sock = UdpSocket::bind(("127.0.0.1", from_port)).expect("bind the UA's socket");
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("a read timeout");
    let extra = format!("{extra}Contact: <{contact}>\r\nExpires: 600\r\n");
    let reg = request(&sock, aor, "REGISTER", call_id, &extra);
    exchange(&sock, to, &reg)
}

/// Sends `text` from `sock` to `to` and returns the first answer (within the socket's read
/// timeout); panics when none comes.
fn exchange(sock: &UdpSocket, to: SocketAddr, text: &str) -> String {
    sock.send_to(text.as_bytes(), to).expect("send");
    let mut buf = [0u8; 4096];
    let (n, _) = sock
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("an answer from {to}: {e}"));
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

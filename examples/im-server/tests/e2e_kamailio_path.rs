//! Path (RFC 3327) end to end: Kamailio with `scripts/kamailio/edge_path.cfg` (its `path`
//! module, `add_path_received()`) as the edge proxy bob registers through, im-server as the
//! registrar, all on loopback.
//!
//! - bob's REGISTER (with `Supported: path`) reaches the server with Kamailio's Path; the
//!   200 bob gets back carries that Path (RFC 3327 §5.3);
//! - alice starts a group session with bob (SIPp, pager mode, straight to the server): the
//!   server sends bob's INVITE to Kamailio with the Path as its Route, and bob receives it
//!   from Kamailio (Kamailio's Via on top, its Record-Route), not from the server.

#![allow(clippy::disallowed_methods)]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, Sipp, free_udp_port, group_folder, sip_log};

const GROUP: &str = "sip:kamailio-path@example.com";
const ALICE: &str = "sip:alice@example.com";
const BOB: &str = "sip:bob@example.com";

/// Kamailio in the foreground, logging to a file; stopped with SIGTERM when dropped.
struct Kamailio {
    child: Child,
    sip: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Kamailio {
    fn start(server: SocketAddr) -> Kamailio {
        let dir = tempfile::tempdir().unwrap();
        let cfg =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kamailio/edge_path.cfg");
        let sip: SocketAddr = ([127, 0, 0, 1], free_udp_port()).into();
        let log = dir.path().join("kamailio.log");
        let exe = which("kamailio").unwrap_or_else(|| {
            panic!("kamailio not found: apt-get install -y kamailio (scripts/test-all does)")
        });
        let child = Command::new(exe)
            .arg("-f")
            .arg(&cfg)
            .args(["-DD", "-E", "-m", "32", "-M", "4", "-l"])
            .arg(format!("udp:{sip}"))
            .arg("-A")
            .arg(format!("IMSERVER=\"sip:{server}\""))
            .arg("-Y")
            .arg(dir.path())
            .arg("-w")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.path().join("kamailio.out")).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let k = Kamailio {
            child,
            sip,
            log,
            _dir: dir,
        };
        // Up when an OPTIONS through it is answered (by the server).
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let end = Instant::now() + Duration::from_secs(10);
        for i in 0.. {
            let opts = request(&sock, "OPTIONS", &format!("ping-{i}"), "");
            sock.send_to(opts.as_bytes(), sip).unwrap();
            let mut buf = [0u8; 4096];
            if let Ok((n, _)) = sock.recv_from(&mut buf)
                && buf[..n].starts_with(b"SIP/2.0 200")
            {
                break;
            }
            assert!(Instant::now() < end, "Kamailio did not start:\n{}", k.log());
        }
        k
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let end = Instant::now() + Duration::from_secs(5);
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

fn which(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// A request of bob's from `sock` to the server's domain.
fn request(sock: &UdpSocket, method: &str, call_id: &str, extra: &str) -> String {
    let me = sock.local_addr().unwrap();
    format!(
        "{method} sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bK{call_id};rport\r\n\
         From: <{BOB}>;tag=k1\r\n\
         To: <{BOB}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 {method}\r\n\
         {extra}\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

#[test]
fn a_phone_registered_through_kamailio_with_path_is_invited_through_it() {
    let groups = group_folder(GROUP, &[ALICE.to_owned(), BOB.to_owned()]);
    let server = Server::start(&["--groups", groups.path().to_str().unwrap()]);
    let kam = Kamailio::start(server.sip);

    // bob registers through Kamailio from the port SIPp will answer on.
    let bob_port = free_udp_port();
    {
        let sock = UdpSocket::bind(("127.0.0.1", bob_port)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let reg = request(
            &sock,
            "REGISTER",
            "register-bob-path",
            &format!(
                "Supported: path\r\nContact: <sip:bob@127.0.0.1:{bob_port}>\r\nExpires: 600\r\n"
            ),
        );
        sock.send_to(reg.as_bytes(), kam.sip).unwrap();
        let mut buf = [0u8; 4096];
        let (n, _) = sock.recv_from(&mut buf).expect("an answer to REGISTER");
        let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(
            answer.starts_with("SIP/2.0 200"),
            "{answer}\n{}\n{}",
            kam.log(),
            server.log()
        );
        // RFC 3327 §5.3: the registrar returns the Path Kamailio added, to a UA that
        // supports Path.
        let path = answer
            .lines()
            .find_map(|l| l.strip_prefix("Path: "))
            .unwrap_or_else(|| panic!("a Path in the 200: {answer}"));
        assert!(
            path.starts_with(&format!("<sip:{};", kam.sip)) && path.contains("received="),
            "{path}"
        );
    }

    let bob = Sipp::new("uas_answer")
        .port(bob_port)
        .timeouts(Duration::from_secs(15), Duration::from_secs(25))
        .spawn();
    std::thread::sleep(Duration::from_millis(200));
    let run = Sipp::new("invite_pager")
        .to(server.sip)
        .key("target", GROUP)
        .key("from", ALICE)
        .run();
    assert!(run.success(), "{run:?}\n{}\n{}", kam.log(), server.log());
    let b = bob.wait();
    assert!(b.success(), "bob: {b:?}\n{}\n{}", kam.log(), server.log());
    // bob's INVITE came from Kamailio: its Via on top (the server's under it) and its
    // Record-Route, and the server's Route to it consumed.
    let log = sip_log(&b.messages);
    let invite = log
        .iter()
        .find(|m| m.received && m.start.starts_with("INVITE "))
        .unwrap_or_else(|| panic!("bob received an INVITE: {}", b.messages));
    let vias: Vec<&str> = invite
        .text
        .lines()
        .filter_map(|l| l.strip_prefix("Via: "))
        .collect();
    assert_eq!(vias.len(), 2, "{}", invite.text);
    assert!(
        vias[0].starts_with(&format!("SIP/2.0/UDP {};", kam.sip)),
        "{}",
        invite.text
    );
    assert!(
        vias[1].starts_with(&format!("SIP/2.0/UDP {};", server.sip)),
        "{}",
        invite.text
    );
    assert_eq!(
        invite
            .header("Record-Route")
            .map(|r| r.starts_with(&format!("<sip:{};lr", kam.sip))),
        Some(true),
        "{}",
        invite.text
    );
    assert!(invite.header("Route").is_none(), "{}", invite.text);
}

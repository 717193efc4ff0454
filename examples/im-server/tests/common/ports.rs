//! Ports for the processes a test starts (the server, SIPp, the Python peers), which bind
//! them only after the test has written them into arguments and group documents.
//!
//! Binding port 0 and releasing the socket does not keep a port: the kernel hands the same
//! ephemeral port to another test's port-0 bind or outgoing connection before the child
//! binds it ("Address already in use" was seen in `e2e_imdn`). So the ports handed out here
//! come from *below* the kernel's ephemeral range (`ip_local_port_range`), which the
//! kernel never picks on its own, and each one is claimed by an exclusive lock on a file
//! named after it in a folder every test process shares. The lock lives as long as the test
//! process (the file is kept open in [`HELD`]) and the kernel drops it when the process
//! ends, however it ends, so a port is never handed out twice while a test that took it may
//! still use it and no stale claim survives a crash.

use std::fs::{File, OpenOptions};
use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::Mutex;

/// The lock files of the ports this process claimed: open until the process ends.
static HELD: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// The lowest port handed out: above the well-known and most registered service ports.
pub(crate) const LOWEST: u16 = 10_000;

/// The first port the kernel may pick for port-0 binds and outgoing connections
/// (Linux's default when `/proc` cannot be read).
pub(crate) fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// The folder of the lock files, shared by every test process of this user.
pub(crate) fn lock_dir() -> PathBuf {
    std::env::temp_dir().join("imspec-test-ports")
}

/// Whether `port` on 127.0.0.1 is free for both UDP and TCP right now (a process outside
/// the tests, say a Kamailio or a PostgreSQL, may hold it; a SIP port needs both).
fn free_now(port: u16) -> bool {
    UdpSocket::bind(("127.0.0.1", port)).is_ok() && TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// A port on 127.0.0.1, free for UDP and TCP, that no other test process (of this tree or
/// another checkout using this harness) is handed while this process lives. Panics when
/// the range is exhausted or the lock folder cannot be made.
#[allow(clippy::disallowed_methods)] // the clock only seeds where the search starts
pub(crate) fn claim() -> u16 {
    let top = ephemeral_start();
    assert!(
        top > LOWEST + 1_000,
        "the ephemeral port range starts at {top}: no room below it for test ports"
    );
    let dir = lock_dir();
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let span = u32::from(top - LOWEST);
    // Processes start at different places, so they seldom try the same files.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let start = (std::process::id().wrapping_mul(7_919) ^ nanos) % span;
    for i in 0..span {
        let port = LOWEST + ((start + i) % span) as u16;
        let Ok(file) = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(port.to_string()))
        else {
            continue;
        };
        // Taken by another process, or by this one (a lock is per open file).
        if file.try_lock().is_err() || !free_now(port) {
            continue;
        }
        HELD.lock().unwrap_or_else(|e| e.into_inner()).push(file);
        return port;
    }
    panic!(
        "no free test port left in {LOWEST}..{top} (lock files in {})",
        dir.display()
    );
}

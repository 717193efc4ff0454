//! Kernel receive timestamps on the UDP sockets (`SO_TIMESTAMPNS`, Linux).
//!
//! The overload measure ([`super::IoLimits::overload_delay`]) is how long an input waited
//! before the core saw it. Stamping a datagram when the reader takes it out of the socket
//! sees only the wait in the loop's queue: when the whole machine is saturated the reader
//! itself is late, and the backlog sits in the kernel's socket buffer where that stamp
//! cannot see it (the 2026-12-06 overload run: p99 556 ms with the queue measure mostly
//! quiet). The kernel stamps each datagram as it arrives, so the loop can date the input
//! from that moment instead. Where the option is missing the loop dates it when read.

#[cfg(target_os = "linux")]
use std::net::SocketAddr;
#[cfg(target_os = "linux")]
use std::time::Duration;
use tokio::net::UdpSocket;

/// Longest wait taken from a kernel stamp: a stamp older than this is a wall-clock step, not
/// a queue (a socket buffer of a few MB drains in well under a second).
#[cfg(target_os = "linux")]
const MAX_WAIT: Duration = Duration::from_secs(10);

/// Turns kernel receive timestamps on for `s`; false when the platform or the socket does
/// not have them. The stamps are read with each datagram ([`super::batch::RxBatch`]).
#[cfg(target_os = "linux")]
pub(super) fn enable(s: &UdpSocket) -> bool {
    use nix::sys::socket::{setsockopt, sockopt::ReceiveTimestampns};
    setsockopt(s, ReceiveTimestampns, &true).is_ok()
}

/// Turns kernel receive timestamps on for `s`; false when the platform or the socket does
/// not have them.
#[cfg(not(target_os = "linux"))]
pub(super) fn enable(_s: &UdpSocket) -> bool {
    false
}

/// The IP address in a received datagram's source, if it is one.
#[cfg(target_os = "linux")]
pub(super) fn socket_addr(a: &nix::sys::socket::SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4(std::net::SocketAddrV4::from(*v4)));
    }
    a.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(std::net::SocketAddrV6::from(*v6)))
}

/// How long ago the wall-clock instant `sec.nsec` was, clamped to `0..=MAX_WAIT` (the
/// kernel stamps with the wall clock, which can step).
#[cfg(target_os = "linux")]
pub(super) fn since(sec: i64, nsec: i64) -> Duration {
    let (Ok(sec), Ok(nsec)) = (u64::try_from(sec), u32::try_from(nsec)) else {
        return Duration::ZERO;
    };
    // The tokio layer is where the clock is read (clippy.toml); the kernel's stamp is wall
    // clock, so the wall clock is what it is compared with.
    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    let Ok(now) = now else {
        return Duration::ZERO;
    };
    now.checked_sub(Duration::new(sec, nsec))
        .unwrap_or(Duration::ZERO)
        .min(MAX_WAIT)
}

//! Kernel receive timestamps on the UDP sockets (`SO_TIMESTAMPNS`, Linux).
//!
//! The overload measure ([`super::IoLimits::overload_delay`]) is how long an input waited
//! before the core saw it. Stamping a datagram when the reader takes it out of the socket
//! sees only the wait in the loop's queue: when the whole machine is saturated the reader
//! itself is late, and the backlog sits in the kernel's socket buffer where that stamp
//! cannot see it (the 2026-12-06 overload run: p99 556 ms with the queue measure mostly
//! quiet). The kernel stamps each datagram as it arrives, so the loop can date the input
//! from that moment instead. Where the option is missing the loop falls back to
//! `recv_from` and its own stamp.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

/// Longest wait taken from a kernel stamp: a stamp older than this is a wall-clock step, not
/// a queue (a socket buffer of a few MB drains in well under a second).
const MAX_WAIT: Duration = Duration::from_secs(10);

/// A socket's receive state with kernel timestamps turned on.
pub(super) struct Stamped {
    /// Room for one `SCM_TIMESTAMPNS` control message.
    #[cfg(target_os = "linux")]
    cmsg: Vec<u8>,
}

/// Turns kernel receive timestamps on for `s`; `None` when the platform or the socket does
/// not have them.
#[cfg(target_os = "linux")]
pub(super) fn enable(s: &UdpSocket) -> Option<Stamped> {
    use nix::sys::socket::{setsockopt, sockopt::ReceiveTimestampns};
    setsockopt(s, ReceiveTimestampns, &true).ok()?;
    Some(Stamped {
        cmsg: nix::cmsg_space!(nix::sys::time::TimeSpec),
    })
}

/// Turns kernel receive timestamps on for `s`; `None` when the platform or the socket does
/// not have them.
#[cfg(not(target_os = "linux"))]
pub(super) fn enable(_s: &UdpSocket) -> Option<Stamped> {
    None
}

impl Stamped {
    /// Receives one datagram into `buf` without waiting: its length, its source, and how
    /// long it waited in the socket buffer. `WouldBlock` when there is none.
    #[cfg(not(target_os = "linux"))]
    pub(super) fn try_recv(
        &mut self,
        s: &UdpSocket,
        buf: &mut [u8],
    ) -> io::Result<(usize, SocketAddr, Duration)> {
        let (len, from) = s.try_recv_from(buf)?;
        Ok((len, from, Duration::ZERO))
    }

    /// Receives one datagram into `buf` without waiting: its length, its source, and how
    /// long it waited in the socket buffer. `WouldBlock` when there is none; call it inside
    /// the socket's `try_io` so that tokio then clears the socket's readiness.
    #[cfg(target_os = "linux")]
    pub(super) fn try_recv(
        &mut self,
        s: &UdpSocket,
        buf: &mut [u8],
    ) -> io::Result<(usize, SocketAddr, Duration)> {
        use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg};
        use std::os::fd::AsRawFd;
        let mut iov = [io::IoSliceMut::new(buf)];
        let msg = recvmsg::<SockaddrStorage>(
            s.as_raw_fd(),
            &mut iov,
            Some(&mut self.cmsg),
            MsgFlags::empty(),
        )
        .map_err(io::Error::from)?;
        let from = msg
            .address
            .as_ref()
            .and_then(socket_addr)
            .ok_or_else(|| io::Error::other("datagram without an IP source address"))?;
        let mut waited = Duration::ZERO;
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmTimestampns(ts) = c {
                    waited = since(ts.tv_sec(), ts.tv_nsec());
                }
            }
        }
        Ok((msg.bytes, from, waited))
    }
}

#[cfg(target_os = "linux")]
fn socket_addr(a: &nix::sys::socket::SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4(std::net::SocketAddrV4::from(*v4)));
    }
    a.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(std::net::SocketAddrV6::from(*v6)))
}

/// How long ago the wall-clock instant `sec.nsec` was, clamped to `0..=MAX_WAIT` (the
/// kernel stamps with the wall clock, which can step).
#[cfg(target_os = "linux")]
fn since(sec: i64, nsec: i64) -> Duration {
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

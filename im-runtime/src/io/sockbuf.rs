//! The receive buffer of the SIP UDP sockets ([`super::IoLimits::udp_recv_buffer`]).
//!
//! A datagram that finds the socket's buffer full is dropped by the kernel, and nothing
//! in user space ever sees it: not the overload measure, which dates each datagram from
//! its kernel arrival stamp and sheds new sessions with 503 once inputs wait too long
//! (`pressure.rs`), nor the core. The sender retransmits after T1 (500 ms), then 1 s,
//! so a drop costs the call half a second or more. Linux's default buffer (`rmem_default`,
//! 208 KiB on most systems) holds ~160 datagrams of 600 bytes, under 10 ms at a carrier's
//! rate: the loop's shortest stall (a scheduling gap, a CPU quota's period, a page fault)
//! overflows it. A larger buffer turns such a burst into a wait the overload
//! measure sees and answers.

use std::os::fd::AsFd;

/// What the kernel gave a socket asked for a receive buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct RecvBuffer {
    /// Bytes asked for.
    pub(super) asked: usize,
    /// Bytes of payload the kernel grants (half of what `SO_RCVBUF` reads back: Linux
    /// doubles the value set, to account for its own bookkeeping).
    pub(super) granted: usize,
}

/// Asks for a receive buffer of `bytes` on `s` (0: the system's default, left alone).
/// Linux caps `SO_RCVBUF` at `net.core.rmem_max`; a process allowed to
/// (`CAP_NET_ADMIN`) then sets it past the cap with `SO_RCVBUFFORCE`. `None` when the
/// platform has no such option or the kernel refused both.
#[cfg(target_os = "linux")]
pub(super) fn set_recv_buffer(s: &impl AsFd, bytes: usize) -> Option<RecvBuffer> {
    use nix::sys::socket::{getsockopt, setsockopt, sockopt};
    if bytes == 0 {
        return None;
    }
    let granted = |s: &dyn AsFd| getsockopt(&s.as_fd(), sockopt::RcvBuf).ok().map(|b| b / 2);
    setsockopt(s, sockopt::RcvBuf, &bytes).ok()?;
    let mut got = granted(s)?;
    if got < bytes && setsockopt(s, sockopt::RcvBufForce, &bytes).is_ok() {
        got = granted(s)?;
    }
    Some(RecvBuffer {
        asked: bytes,
        granted: got,
    })
}

/// Asks for a receive buffer of `bytes` on `s`: not done off Linux (the option's meaning
/// and caps differ), where the system's default stays.
#[cfg(not(target_os = "linux"))]
pub(super) fn set_recv_buffer(_s: &impl AsFd, _bytes: usize) -> Option<RecvBuffer> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn rmem_max() -> usize {
        std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn a_udp_socket_gets_the_buffer_asked_for_or_the_systems_cap() {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let default =
            nix::sys::socket::getsockopt(&s, nix::sys::socket::sockopt::RcvBuf).unwrap() / 2;
        let asked = 4 * 1024 * 1024;
        let got = set_recv_buffer(&s, asked).expect("Linux has SO_RCVBUF");
        assert_eq!(got.asked, asked);
        // Root (CI) forces past the cap; otherwise the cap is what a user gets.
        let root = std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
        let expected = if root { asked } else { asked.min(rmem_max()) };
        assert!(
            got.granted >= expected.max(default),
            "{got:?}: expected at least {expected} (default {default})"
        );
        assert_eq!(set_recv_buffer(&s, 0), None, "0 leaves the buffer alone");
    }
}

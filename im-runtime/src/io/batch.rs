//! Batched UDP system calls: many datagrams read with one `recvmmsg`, and every datagram a
//! loop turn wrote sent with one `sendmmsg` per socket (Linux; elsewhere one datagram per
//! call).
//!
//! Why batching pays here: at 400 group sessions/s the server spent ~0.3 ms of kernel time
//! per session (about half its CPU), and a session is ~21 datagrams at the server.
//! `strace -c` of that run (docs/performance.md, "Kernel cost per group session") counted
//! per session ~10 `recvmsg` (1.3 of them finding the socket empty) and ~12 `sendto`: half
//! of all its system calls. A datagram's own kernel work stays (on loopback the sender also
//! runs the receiver's path), but the call's entry, exit and socket lookup need not be paid
//! per datagram: the INVITEs to a group's members, their ACKs and BYEs leave in one loop
//! turn, and datagrams that arrive while a loop is busy are read together. A short batch
//! also ends the read without the extra call that finds the socket empty (see
//! [`RxBatch::recv`]).

use super::kstamp;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::UdpSocket;

/// Datagrams one receive call may read. Each slot holds a datagram of the largest size
/// ([`super::IoLimits::max_datagram`]); pages of a slot are only made resident by the
/// datagrams written into them, so 16 slots of 64 KiB cost a few pages each, not 1 MiB.
#[cfg(target_os = "linux")]
pub(super) const RX_SLOTS: usize = 16;
#[cfg(not(target_os = "linux"))]
pub(super) const RX_SLOTS: usize = 1;

/// Most datagrams one send call carries (the kernel takes up to 1,024).
pub(super) const TX_MAX: usize = 64;

/// Counters of the UDP system calls and the datagrams they carried, so that the batching
/// can be checked (tests) and seen (logs).
#[derive(Debug, Default)]
pub struct UdpCounters {
    recv_calls: AtomicU64,
    recv_empty: AtomicU64,
    received: AtomicU64,
    send_calls: AtomicU64,
    sent: AtomicU64,
}

impl UdpCounters {
    /// Receive system calls that returned at least one datagram.
    pub fn recv_calls(&self) -> u64 {
        self.recv_calls.load(Ordering::Relaxed)
    }
    /// Receive system calls that found the socket empty.
    pub fn recv_empty(&self) -> u64 {
        self.recv_empty.load(Ordering::Relaxed)
    }
    /// Datagrams read.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
    /// Send system calls that the kernel took at least one datagram from.
    pub fn send_calls(&self) -> u64 {
        self.send_calls.load(Ordering::Relaxed)
    }
    /// Datagrams sent.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// One receive call that read `n` datagrams.
    pub(super) fn read(&self, n: usize) {
        if n == 0 {
            self.recv_empty.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.recv_calls.fetch_add(1, Ordering::Relaxed);
        self.received.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// One send call that the kernel took `n` datagrams from.
    pub(super) fn wrote(&self, n: usize) {
        self.send_calls.fetch_add(1, Ordering::Relaxed);
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// One datagram a receive call read.
pub(super) struct Got {
    /// Its slot in the buffer.
    slot: usize,
    len: usize,
    pub(super) from: SocketAddr,
    /// How long it waited in the socket buffer (kernel stamp), zero when unknown.
    pub(super) waited: Duration,
}

/// The receive buffers of one loop.
pub(super) struct RxBatch {
    buf: Vec<u8>,
    slot: usize,
    got: Vec<Got>,
}

impl RxBatch {
    /// Slots of `slot` bytes each; none when the loop reads no socket.
    pub(super) fn new(slot: usize, reads: bool) -> Self {
        let slot = slot.max(1);
        RxBatch {
            buf: if reads {
                vec![0u8; slot * RX_SLOTS]
            } else {
                Vec::new()
            },
            slot,
            got: Vec::with_capacity(RX_SLOTS),
        }
    }

    /// Forgets what the last [`RxBatch::recv`] read.
    pub(super) fn clear(&mut self) {
        self.got.clear();
    }

    /// What the last [`RxBatch::recv`] read, in arrival order.
    pub(super) fn got(&self) -> &[Got] {
        &self.got
    }

    /// The bytes of a datagram the last [`RxBatch::recv`] read.
    pub(super) fn data(&self, g: &Got) -> &[u8] {
        let at = g.slot * self.slot;
        &self.buf[at..at + g.len.min(self.slot)]
    }

    /// Reads what `s` holds, up to [`RX_SLOTS`] datagrams, with one system call, adding
    /// them to [`RxBatch::got`] (cleared first by the caller); `stamped`: the socket has kernel receive stamps on.
    ///
    /// Returns `WouldBlock` when the socket is empty, and also when it read fewer datagrams
    /// than it had room for, with those datagrams in [`RxBatch::got`]: a short batch means
    /// the kernel found the queue empty, so, called inside the socket's `try_io`, the
    /// readiness is cleared now instead of by one more call that reads nothing. That holds
    /// for our sockets because an unconnected UDP socket without `IP_RECVERR` has no queued
    /// errors (ICMP errors are not reported on it), the one other thing that ends a batch
    /// early. tokio clears the readiness only if no readiness event came in since it was
    /// polled, so a datagram that arrives meanwhile still wakes the loop.
    pub(super) fn recv(&mut self, s: &UdpSocket, stamped: bool) -> io::Result<usize> {
        let n = self.recv_os(s, stamped)?;
        if n < RX_SLOTS {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    #[cfg(target_os = "linux")]
    fn recv_os(&mut self, s: &UdpSocket, stamped: bool) -> io::Result<usize> {
        use nix::sys::socket::{
            ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg,
        };
        use std::os::fd::AsRawFd;
        let RxBatch { buf, slot, got } = self;
        let cmsg = stamped.then(|| nix::cmsg_space!(nix::sys::time::TimeSpec));
        // Fresh headers each call: the kernel shortens each header's name and control
        // lengths to what it wrote, so reused ones would truncate a longer address next
        // time. They hold raw pointers (not `Send`), so they cannot live across an await.
        let mut hdrs = MultiHeaders::<SockaddrStorage>::preallocate(RX_SLOTS, cmsg);
        let mut iovs: Vec<[io::IoSliceMut<'_>; 1]> = buf
            .chunks_mut(*slot)
            .map(|c| [io::IoSliceMut::new(c)])
            .collect();
        let res = recvmmsg(
            s.as_raw_fd(),
            &mut hdrs,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(io::Error::from)?;
        let mut n = 0;
        for (i, m) in res.enumerate() {
            n += 1;
            // A source that is not an IP address cannot be answered: skipped.
            let Some(from) = m.address.as_ref().and_then(kstamp::socket_addr) else {
                continue;
            };
            let mut waited = Duration::ZERO;
            if let Ok(cmsgs) = m.cmsgs() {
                for c in cmsgs {
                    if let ControlMessageOwned::ScmTimestampns(ts) = c {
                        waited = kstamp::since(ts.tv_sec(), ts.tv_nsec());
                    }
                }
            }
            got.push(Got {
                slot: i,
                len: m.bytes,
                from,
                waited,
            });
        }
        Ok(n)
    }

    #[cfg(not(target_os = "linux"))]
    fn recv_os(&mut self, s: &UdpSocket, _stamped: bool) -> io::Result<usize> {
        let (len, from) = s.try_recv_from(&mut self.buf[..self.slot])?;
        self.got.push(Got {
            slot: 0,
            len,
            from,
            waited: Duration::ZERO,
        });
        Ok(1)
    }
}

/// Sends `batch` (destination, bytes) from `s` with one system call, without waiting: how
/// many datagrams, from the first, the kernel took (at least one), else the error of the
/// first (`WouldBlock`: the socket buffer is full).
#[cfg(target_os = "linux")]
pub(super) fn send(s: &UdpSocket, batch: &[(SocketAddr, &[u8])]) -> io::Result<usize> {
    use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg};
    use std::os::fd::AsRawFd;
    let addrs: Vec<Option<SockaddrStorage>> = batch
        .iter()
        .map(|(to, _)| Some(SockaddrStorage::from(*to)))
        .collect();
    let iovs: Vec<[io::IoSlice<'_>; 1]> =
        batch.iter().map(|(_, d)| [io::IoSlice::new(d)]).collect();
    s.try_io(tokio::io::Interest::WRITABLE, || {
        let mut hdrs = MultiHeaders::<SockaddrStorage>::preallocate(batch.len(), None);
        let none: [ControlMessage<'_>; 0] = [];
        let sent = sendmmsg(
            s.as_raw_fd(),
            &mut hdrs,
            &iovs,
            &addrs,
            none,
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(io::Error::from)?;
        // nix reports the count only as one item per datagram sent.
        Ok(sent.count())
    })
}

/// Sends the first datagram of `batch` from `s` without waiting (one per call off Linux).
#[cfg(not(target_os = "linux"))]
pub(super) fn send(s: &UdpSocket, batch: &[(SocketAddr, &[u8])]) -> io::Result<usize> {
    let Some((to, d)) = batch.first() else {
        return Ok(0);
    };
    s.try_send_to(d, *to).map(|_| 1)
}

//! SIP over UDP in the driver loop itself: no reader task, and no `.await` on a send.
//!
//! A datagram used to cost a task hop before the core saw it (a reader task per socket took
//! it off the socket and sent it over a channel to the loop, with several workers often on
//! another thread), and a hop across threads is a thread wake-up. Now each socket is read by
//! one loop ([`UdpIn`]): when it is readable, the loop drains it with non-blocking reads,
//! feeds its core what is its own and forwards over a channel only what steering gives
//! another shard. Sends go straight out with a non-blocking send ([`UdpOut`]); only when the
//! socket buffer is full do they queue, in order, until the socket is writable again.

use super::kstamp::{self, Stamped};
use super::{UdpSockets, now};
use bytes::Bytes;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// Most datagrams read from one socket before the loop looks at its other inputs again: a
/// flooded socket must not starve timers, streams or the other sockets.
const BATCH: usize = 64;

/// Most datagrams queued for sending while sockets are full; past it new ones are dropped
/// (UDP is best effort, and the transaction layer retransmits).
const MAX_QUEUED: usize = 1 << 16;

/// One socket a loop reads.
struct Reader {
    sock: Arc<UdpSocket>,
    local: SocketAddr,
    /// Kernel arrival stamps, where the platform has them.
    stamped: Option<Stamped>,
}

/// The UDP sockets one loop reads.
pub(super) struct UdpIn {
    readers: Vec<Reader>,
    buf: Vec<u8>,
    /// Where the next readiness check starts, so that a busy socket cannot hide the others.
    next: usize,
}

impl UdpIn {
    /// Reads the sockets of `udp` whose index `which` accepts.
    pub(super) fn new(udp: &UdpSockets, which: impl Fn(usize) -> bool, max: usize) -> Self {
        let readers: Vec<Reader> = udp
            .iter()
            .enumerate()
            .filter(|(i, _)| which(*i))
            .map(|(_, (s, a))| Reader {
                sock: s.clone(),
                local: *a,
                // Dated from the kernel's arrival stamp where there is one, so the overload
                // measure and the INVITE latency include the wait in the socket buffer.
                stamped: kstamp::enable(s),
            })
            .collect();
        let buf = if readers.is_empty() {
            Vec::new()
        } else {
            vec![0u8; max]
        };
        UdpIn {
            readers,
            buf,
            next: 0,
        }
    }

    /// Waits until one of the sockets may have a datagram and says which; never completes
    /// when this loop reads none.
    pub(super) async fn readable(&mut self) -> usize {
        let n = self.readers.len();
        let start = self.next;
        let i = std::future::poll_fn(|cx| {
            // Every socket is polled so that each registers this task for its readiness.
            let mut ready = None;
            for k in 0..n {
                let i = (start + k) % n;
                if self.readers[i].sock.poll_recv_ready(cx).is_ready() && ready.is_none() {
                    ready = Some(i);
                }
            }
            ready.map_or(Poll::Pending, Poll::Ready)
        })
        .await;
        self.next = (i + 1) % n;
        i
    }

    /// Reads socket `i` until it has nothing more (or [`BATCH`] datagrams), giving each
    /// datagram to `each` as (local address, source, bytes, arrival, when it was read).
    pub(super) fn drain(
        &mut self,
        i: usize,
        mut each: impl FnMut(SocketAddr, SocketAddr, Bytes, Instant, Instant),
    ) {
        let Some(r) = self.readers.get_mut(i) else {
            return;
        };
        for _ in 0..BATCH {
            let buf = &mut self.buf;
            let got = match r.stamped.as_mut() {
                Some(st) => r
                    .sock
                    .try_io(tokio::io::Interest::READABLE, || st.try_recv(&r.sock, buf)),
                None => r
                    .sock
                    .try_recv_from(buf)
                    .map(|(len, from)| (len, from, Duration::ZERO)),
            };
            match got {
                Ok((len, from, waited)) => {
                    let data = Bytes::copy_from_slice(&buf[..len.min(buf.len())]);
                    let t = now();
                    each(r.local, from, data, t.checked_sub(waited).unwrap_or(t), t);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // ICMP errors surface as recv errors on some platforms; keep reading.
                Err(_) => {}
            }
        }
    }
}

/// How a datagram is sent without waiting: the socket's own non-blocking send, or in a
/// unit test one that reports a full buffer on demand.
type TrySend = fn(&UdpSocket, &[u8], SocketAddr) -> io::Result<usize>;

/// The sending side of every UDP socket, for one loop.
pub(super) struct UdpOut {
    udp: UdpSockets,
    /// Datagrams waiting for their socket to be writable: (socket index, to, bytes).
    queue: VecDeque<(usize, SocketAddr, Bytes)>,
    try_send: TrySend,
}

impl UdpOut {
    pub(super) fn new(udp: UdpSockets) -> Self {
        UdpOut {
            udp,
            queue: VecDeque::new(),
            try_send: |s, d, to| s.try_send_to(d, to),
        }
    }

    /// Sends `data` to `to` from `local` (else from a socket of `to`'s family, else the
    /// first), now when the socket takes it, else after what is already queued.
    pub(super) fn send(&mut self, local: Option<SocketAddr>, to: SocketAddr, data: Bytes) {
        let udp = &self.udp;
        let Some(i) = local
            .and_then(|l| udp.iter().position(|(_, a)| *a == l))
            .or_else(|| udp.iter().position(|(_, a)| a.is_ipv4() == to.is_ipv4()))
            .or((!udp.is_empty()).then_some(0))
        else {
            return;
        };
        // Behind a queue the datagram waits its turn: datagrams of one transaction leave in
        // the order the core wrote them.
        if self.queue.is_empty() {
            match (self.try_send)(&udp[i].0, &data, to) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // Sent, or lost: UDP is best effort, and the transaction layer's
                // retransmissions already cover a failed send.
                _ => return,
            }
        }
        if self.queue.len() < MAX_QUEUED {
            self.queue.push_back((i, to, data));
        }
    }

    /// Completes when the socket of the first queued datagram may take it; never when
    /// nothing is queued.
    pub(super) async fn writable(&self) {
        match self.queue.front() {
            Some((i, ..)) => {
                let _ = self.udp[*i].0.writable().await;
            }
            None => std::future::pending().await,
        }
    }

    /// Sends queued datagrams until a socket is full again.
    pub(super) fn flush(&mut self) {
        while let Some((i, to, data)) = self.queue.front() {
            match (self.try_send)(&self.udp[*i].0, data, *to) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                _ => {
                    self.queue.pop_front();
                }
            }
        }
    }

    /// Datagrams waiting for a writable socket.
    #[cfg(test)]
    fn queued(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Sends that report a full socket buffer before really sending.
    static FULL_FOR: AtomicUsize = AtomicUsize::new(0);

    fn sometimes_full(s: &UdpSocket, d: &[u8], to: SocketAddr) -> io::Result<usize> {
        if FULL_FOR
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        s.try_send_to(d, to)
    }

    #[tokio::test]
    async fn a_full_socket_queues_in_order_until_writable() {
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = peer.local_addr().unwrap();
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = s.local_addr().unwrap();
        let udp: UdpSockets = Arc::from(vec![(Arc::new(s), local)]);
        let mut out = UdpOut::new(udp);
        out.try_send = sometimes_full;
        FULL_FOR.store(2, Ordering::SeqCst);
        for m in ["one", "two", "three"] {
            out.send(Some(local), to, Bytes::from(m));
        }
        // The first send found the socket full; the others queued behind it untried.
        assert_eq!(out.queued(), 3);
        assert_eq!(FULL_FOR.load(Ordering::SeqCst), 1);
        let mut buf = [0u8; 64];
        assert!(peer.try_recv_from(&mut buf).is_err(), "nothing sent yet");
        // Still full once: the queue stays.
        out.writable().await;
        out.flush();
        assert_eq!(out.queued(), 3);
        out.writable().await;
        out.flush();
        assert_eq!(out.queued(), 0);
        for m in ["one", "two", "three"] {
            let (n, from) = tokio::time::timeout(Duration::from_secs(5), peer.recv_from(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert_eq!((&buf[..n], from), (m.as_bytes(), local));
        }
        // With the queue empty, a send goes out at once.
        out.send(None, to, Bytes::from("four"));
        assert_eq!(out.queued(), 0);
        let (n, _) = peer.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"four");
    }
}

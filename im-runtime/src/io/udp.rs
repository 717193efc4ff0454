//! SIP over UDP in the driver loop itself: no reader task, and no `.await` on a send.
//!
//! A datagram used to cost a task hop before the core saw it (a reader task per socket took
//! it off the socket and sent it over a channel to the loop, with several workers often on
//! another thread), and a hop across threads is a thread wake-up. Now each socket is read by
//! one loop ([`UdpIn`]): when it is readable, the loop drains it with non-blocking reads,
//! many datagrams per system call (module `batch`), feeds its core what is its own and
//! forwards over a channel only what steering gives another shard. What the core writes in
//! a loop turn goes out at the turn's end, each socket's run with one non-blocking send call
//! ([`UdpOut`]); only when the socket buffer is full does it wait, in order, until the
//! socket is writable again.

use super::batch::{self, RxBatch, UdpCounters};
use super::{LoopCtx, UdpSockets, kstamp, now};
use crate::shrink::{ShrinkIdle, TRANSIENT};
use bytes::Bytes;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;
use tokio::net::UdpSocket;

/// Most datagrams read from one socket before the loop looks at its other inputs again: a
/// flooded socket must not starve timers, streams or the other sockets.
const BATCH: usize = 64;

/// Most datagrams queued for sending while sockets are full; past it new ones are dropped
/// (UDP is best effort, and the transaction layer retransmits).
const MAX_QUEUED: usize = 1 << 16;

/// The UDP reading and sending of loop `cx`: socket `j` is read by loop `j % loops`.
pub(super) fn open(cx: &LoopCtx) -> (UdpIn, UdpOut) {
    let n = cx.shards.len();
    let counters = &cx.budget.stats.udp;
    let which = |j: usize| j % n == cx.index;
    let udp_in = UdpIn::new(&cx.udp, which, cx.limits.max_datagram, counters.clone());
    (udp_in, UdpOut::new(cx.udp.clone(), counters.clone()))
}

/// One socket a loop reads.
struct Reader {
    sock: Arc<UdpSocket>,
    local: SocketAddr,
    /// Whether the kernel stamps arrivals (where the platform has it).
    stamped: bool,
}

/// The UDP sockets one loop reads.
pub(super) struct UdpIn {
    readers: Vec<Reader>,
    rx: RxBatch,
    counters: Arc<UdpCounters>,
    /// Where the next readiness check starts, so that a busy socket cannot hide the others.
    next: usize,
}

impl UdpIn {
    /// Reads the sockets of `udp` whose index `which` accepts.
    fn new(
        udp: &UdpSockets,
        which: impl Fn(usize) -> bool,
        max: usize,
        counters: Arc<UdpCounters>,
    ) -> Self {
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
        let rx = RxBatch::new(max, !readers.is_empty());
        UdpIn {
            readers,
            rx,
            counters,
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
    /// Datagrams come in batches of up to [`batch::RX_SLOTS`] per system call.
    pub(super) fn drain(
        &mut self,
        i: usize,
        mut each: impl FnMut(SocketAddr, SocketAddr, Bytes, Instant, Instant),
    ) {
        let Some(r) = self.readers.get(i) else {
            return;
        };
        let rx = &mut self.rx;
        let counters = &self.counters;
        for _ in 0..BATCH.div_ceil(batch::RX_SLOTS) {
            rx.clear();
            // A short batch comes back as `WouldBlock` with its datagrams: see `RxBatch::recv`.
            let got = r.sock.try_io(tokio::io::Interest::READABLE, || {
                let res = rx.recv(&r.sock, r.stamped);
                counters.read(rx.got().len());
                res
            });
            for g in rx.got() {
                // Read the clock per datagram: one that waits in this batch while the core
                // handles the ones before it is waiting too (the overload measure).
                let t = now();
                let data = Bytes::copy_from_slice(rx.data(g));
                each(
                    r.local,
                    g.from,
                    data,
                    t.checked_sub(g.waited).unwrap_or(t),
                    t,
                );
            }
            match got {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // ICMP errors surface as recv errors on some platforms; keep reading.
                Err(_) => {}
            }
        }
    }
}

/// How a batch of datagrams is sent without waiting ([`batch::send`]), or in a unit test
/// one that reports a full buffer on demand.
type SendBatch = fn(&UdpSocket, &[(SocketAddr, &[u8])]) -> io::Result<usize>;

/// The sending side of every UDP socket, for one loop. Datagrams the core writes are
/// queued and go out when the loop turn's outputs are all in ([`UdpOut::flush`]), each
/// socket's run of them with one system call.
pub(super) struct UdpOut {
    udp: UdpSockets,
    /// Datagrams not sent yet, in the order written: (socket index, to, bytes).
    queue: VecDeque<(usize, SocketAddr, Bytes)>,
    send_batch: SendBatch,
    counters: Arc<UdpCounters>,
}

impl UdpOut {
    pub(super) fn new(udp: UdpSockets, counters: Arc<UdpCounters>) -> Self {
        UdpOut {
            udp,
            queue: VecDeque::new(),
            send_batch: batch::send,
            counters,
        }
    }

    /// Queues `data` to `to` from `local` (else from a socket of `to`'s family, else the
    /// first), to go out at the next [`UdpOut::flush`], after what is already queued.
    pub(super) fn send(&mut self, local: Option<SocketAddr>, to: SocketAddr, data: Bytes) {
        let udp = &self.udp;
        let Some(i) = local
            .and_then(|l| udp.iter().position(|(_, a)| *a == l))
            .or_else(|| udp.iter().position(|(_, a)| a.is_ipv4() == to.is_ipv4()))
            .or((!udp.is_empty()).then_some(0))
        else {
            return;
        };
        // Past the cap the datagram is dropped: UDP is best effort, and the transaction
        // layer retransmits.
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

    /// Sends queued datagrams, in order, until none is left or a socket is full (then
    /// [`UdpOut::writable`] says when to go on). Consecutive datagrams of one socket go in
    /// one system call; the datagrams of one transaction leave in the order written.
    pub(super) fn flush(&mut self) {
        while let Some(&(i, ..)) = self.queue.front() {
            let res = {
                let run: Vec<(SocketAddr, &[u8])> = self
                    .queue
                    .iter()
                    .take_while(|(j, ..)| *j == i)
                    .take(batch::TX_MAX)
                    .map(|(_, to, d)| (*to, &d[..]))
                    .collect();
                (self.send_batch)(&self.udp[i].0, &run)
            };
            match res {
                Ok(k) => {
                    let k = k.clamp(1, self.queue.len());
                    self.counters.wrote(k);
                    self.queue.drain(..k);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // The first datagram cannot be sent (unreachable, too long): it is lost, as
                // with any UDP send, and the transaction layer's retransmissions cover it.
                Err(_) => {
                    self.queue.pop_front();
                }
            }
        }
        // All sent: a backlog's capacity (a full socket buffer under a burst) goes back.
        self.queue.shrink_idle_over(TRANSIENT);
    }

    /// Datagrams waiting to be sent.
    #[cfg(test)]
    fn queued(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Sends that report a full socket buffer before really sending.
    static FULL_FOR: AtomicUsize = AtomicUsize::new(0);

    fn sometimes_full(s: &UdpSocket, b: &[(SocketAddr, &[u8])]) -> io::Result<usize> {
        if FULL_FOR
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        batch::send(s, b)
    }

    /// A kernel that takes one datagram per call, and refuses any datagram reading "bad".
    fn one_at_a_time(s: &UdpSocket, b: &[(SocketAddr, &[u8])]) -> io::Result<usize> {
        if b[0].1 == b"bad" {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        batch::send(s, &b[..1])
    }

    async fn pair() -> (UdpSocket, SocketAddr, UdpOut, SocketAddr) {
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = peer.local_addr().unwrap();
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = s.local_addr().unwrap();
        let udp: UdpSockets = Arc::from(vec![(Arc::new(s), local)]);
        (peer, to, UdpOut::new(udp, Arc::default()), local)
    }

    /// Flushes until everything is sent: a fresh socket is not known writable until the
    /// reactor has polled it once, so the first send may find it "full".
    async fn flush_all(out: &mut UdpOut) {
        while out.queued() > 0 {
            out.writable().await;
            out.flush();
        }
    }

    async fn recv(peer: &UdpSocket) -> (Vec<u8>, SocketAddr) {
        let mut buf = [0u8; 64];
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), peer.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        (buf[..n].to_vec(), from)
    }

    #[tokio::test]
    async fn a_full_socket_queues_in_order_until_writable() {
        let (peer, to, mut out, local) = pair().await;
        out.send_batch = sometimes_full;
        FULL_FOR.store(2, Ordering::SeqCst);
        for m in ["one", "two", "three"] {
            out.send(Some(local), to, Bytes::from(m));
        }
        out.flush();
        // The batch found the socket full: all three stay queued.
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
            assert_eq!(recv(&peer).await, (m.as_bytes().to_vec(), local));
        }
        // The three went in one system call.
        assert_eq!((out.counters.send_calls(), out.counters.sent()), (1, 3));
        // With the queue empty, a flush sends at once.
        out.send(None, to, Bytes::from("four"));
        out.flush();
        assert_eq!(out.queued(), 0);
        assert_eq!(recv(&peer).await.0, b"four");
    }

    #[tokio::test]
    async fn a_partial_batch_goes_on_and_a_refused_datagram_is_dropped_alone() {
        let (peer, to, mut out, _) = pair().await;
        out.send_batch = one_at_a_time;
        for m in ["one", "bad", "two", "three"] {
            out.send(None, to, Bytes::from(m));
        }
        flush_all(&mut out).await;
        for m in ["one", "two", "three"] {
            assert_eq!(recv(&peer).await.0, m.as_bytes());
        }
        assert_eq!((out.counters.send_calls(), out.counters.sent()), (3, 3));
    }

    #[tokio::test]
    async fn runs_of_each_socket_go_out_in_order_from_it() {
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = peer.local_addr().unwrap();
        let mut udp = Vec::new();
        for _ in 0..2 {
            let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let a = s.local_addr().unwrap();
            udp.push((Arc::new(s), a));
        }
        let (a, b) = (udp[0].1, udp[1].1);
        let mut out = UdpOut::new(Arc::from(udp), Arc::default());
        let sent = [(a, "1"), (a, "2"), (b, "3"), (a, "4"), (b, "5"), (b, "6")];
        for (from, m) in sent {
            out.send(Some(from), to, Bytes::from(m));
        }
        flush_all(&mut out).await;
        for (from, m) in sent {
            assert_eq!(recv(&peer).await, (m.as_bytes().to_vec(), from));
        }
        // One call per run: [1 2] [3] [4] [5 6].
        assert_eq!((out.counters.send_calls(), out.counters.sent()), (4, 6));
    }
}

//! The tokio layer: sockets, connections and the clock, driving any [`Core`].
//!
//! This is the only place in the crate that reads the clock or spawns tasks. Each UDP socket
//! and each TCP connection has a small reader task that forwards what it reads over a
//! channel to a driver loop; the loop owns a core, feeds it, carries out its outputs and
//! sleeps until the core's next deadline. Writers are per-connection tasks fed by channels, so
//! a slow peer never blocks the loop.
//!
//! [`Driver::run`] drives one core. [`Driver::run_sharded`] drives N independent cores (one
//! per worker thread) behind the same sockets: the readers steer each SIP message to the
//! core that owns its call ([`crate::steer`]), SIP over TCP is framed in the reader so that
//! one connection can carry calls of several shards, and each MSRP listener belongs to one
//! shard (the shard names its own port in `a=path`). Sessions never cross shards, so the
//! cores share nothing but the sockets and whatever the application shares itself.

use crate::proto::sip;
use crate::steer::steer_sip;
use crate::transport::{ConnId, Core, Input, Output, StreamKind};
use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

/// Addresses to bind. Port 0 picks a free port; [`Driver::local`] says which.
#[derive(Clone, Debug, Default)]
pub struct Bind {
    /// SIP over UDP.
    pub sip_udp: Vec<SocketAddr>,
    /// SIP over TCP.
    pub sip_tcp: Vec<SocketAddr>,
    /// MSRP over TCP.
    pub msrp_tcp: Vec<SocketAddr>,
}

/// Explicit limits of the IO layer.
#[derive(Clone, Debug)]
pub struct IoLimits {
    /// Largest datagram read; longer ones are truncated by the OS and then rejected by the
    /// core's parser.
    pub max_datagram: usize,
    /// Most TCP connections open at once (accepted and outgoing); new ones over it are
    /// closed at once.
    pub max_connections: usize,
    /// How long an outgoing connect may take.
    pub connect_timeout: Duration,
    /// How long to keep running after shutdown while the core ends its sessions.
    pub shutdown_grace: Duration,
    /// Largest SIP message framed on a TCP connection when the readers frame
    /// ([`Driver::run_sharded`] with more than one core); a longer one closes the connection,
    /// as the core itself does when it frames.
    pub max_sip_message: usize,
}

impl Default for IoLimits {
    fn default() -> Self {
        IoLimits {
            max_datagram: 65_535,
            max_connections: 1024,
            connect_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(5),
            max_sip_message: 64 * 1024,
        }
    }
}

/// What the bound sockets ended up as.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Local {
    /// SIP over UDP.
    pub sip_udp: Vec<SocketAddr>,
    /// SIP over TCP.
    pub sip_tcp: Vec<SocketAddr>,
    /// MSRP over TCP.
    pub msrp_tcp: Vec<SocketAddr>,
}

type EvTx = mpsc::UnboundedSender<Ev>;

/// Where a reader's events go: one channel per shard.
type Shards = Arc<[EvTx]>;

/// The bound UDP sockets with their addresses (read once at bind, not per datagram sent).
type UdpSockets = Arc<[(Arc<UdpSocket>, SocketAddr)]>;

enum Ev {
    Datagram(SocketAddr, SocketAddr, Bytes),
    Opened(
        ConnId,
        StreamKind,
        SocketAddr,
        SocketAddr,
        mpsc::UnboundedSender<WriterMsg>,
    ),
    Data(ConnId, Bytes),
    Closed(ConnId),
    ConnectFailed(ConnId),
}

enum WriterMsg {
    Data(Bytes),
    Close,
}

/// Connection ids a core allocates carry its shard in these bits on the IO side, so that
/// the outcome of a shard's [`Output::Connect`] comes back to that shard and two shards'
/// ids never collide in a writer map. Cores count their ids up from 1, far below this.
const SHARD_SHIFT: u32 = 48;
const SHARD_MASK: u64 = 0x7fff << SHARD_SHIFT;

/// What one driver loop needs besides its core and its channel.
struct LoopCtx {
    udp: UdpSockets,
    limits: IoLimits,
    open: Arc<AtomicUsize>,
    /// Where this loop's own outgoing connections report.
    own: EvTx,
    /// This loop's shard bits for core-allocated connection ids (0 for shard 0).
    tag: u64,
}

impl LoopCtx {
    /// The IO-side id of a connection id the core used.
    fn global(&self, c: ConnId) -> ConnId {
        if c.is_accepted() {
            c
        } else {
            ConnId(c.0 | self.tag)
        }
    }

    /// The core's id of an IO-side connection id.
    fn local(&self, c: ConnId) -> ConnId {
        if c.is_accepted() {
            c
        } else {
            ConnId(c.0 & !SHARD_MASK)
        }
    }
}

/// Bound sockets, ready to run a core.
#[derive(Debug)]
pub struct Driver {
    udp: Vec<Arc<UdpSocket>>,
    sip_tcp: Vec<TcpListener>,
    msrp_tcp: Vec<TcpListener>,
    local: Local,
    limits: IoLimits,
}

impl Driver {
    /// Binds every address in `bind`.
    pub async fn bind(bind: &Bind, limits: IoLimits) -> io::Result<Driver> {
        let mut local = Local::default();
        let mut udp = Vec::new();
        for a in &bind.sip_udp {
            let s = UdpSocket::bind(a).await?;
            local.sip_udp.push(s.local_addr()?);
            udp.push(Arc::new(s));
        }
        let mut sip_tcp = Vec::new();
        for a in &bind.sip_tcp {
            let l = TcpListener::bind(a).await?;
            local.sip_tcp.push(l.local_addr()?);
            sip_tcp.push(l);
        }
        let mut msrp_tcp = Vec::new();
        for a in &bind.msrp_tcp {
            let l = TcpListener::bind(a).await?;
            local.msrp_tcp.push(l.local_addr()?);
            msrp_tcp.push(l);
        }
        Ok(Driver {
            udp,
            sip_tcp,
            msrp_tcp,
            local,
            limits,
        })
    }

    /// The addresses actually bound.
    pub fn local(&self) -> &Local {
        &self.local
    }

    /// Runs `core` until `shutdown` completes and the core is idle (or the grace period
    /// ends). Returns the core so callers can inspect its final state.
    pub async fn run<C: Core>(mut self, core: C, shutdown: impl Future<Output = ()>) -> C {
        let (tx, rx) = mpsc::unbounded_channel::<Ev>();
        let shards: Shards = Arc::from(vec![tx.clone()]);
        let (udp, open) = self.spawn_readers(&shards);
        let cx = LoopCtx {
            udp,
            limits: self.limits.clone(),
            open,
            own: tx,
            tag: 0,
        };
        drive(core, rx, cx, shutdown).await
    }

    /// Runs `cores` side by side, each on its own task of the (multi-thread) runtime, until
    /// `shutdown` completes and every core is idle (or the grace period ends). Returns the
    /// cores in the order given.
    ///
    /// Core `i` must only mint Call-IDs that [`crate::steer::steer`] maps to `i` (the
    /// endpoint does when its `shard` is set): SIP datagrams and framed SIP stream messages
    /// go to the core their Call-ID steers to, and SIP TCP connections are announced to every
    /// core so that any of them can answer on one. MSRP listener `j` belongs to core
    /// `j % cores.len()`, so bind one MSRP address per core and advertise each core's own.
    /// A core that stops (its channel closed) stops the others; a core that panics
    /// re-raises the panic here.
    ///
    /// With one core this is [`Driver::run`] on a spawned task.
    pub async fn run_sharded<C: Core + Send + 'static>(
        mut self,
        cores: Vec<C>,
        shutdown: impl Future<Output = ()>,
    ) -> Vec<C> {
        let n = cores.len();
        let mut txs = Vec::with_capacity(n);
        let mut rxs = Vec::with_capacity(n);
        for _ in 0..n {
            let (tx, rx) = mpsc::unbounded_channel::<Ev>();
            txs.push(tx);
            rxs.push(rx);
        }
        let shards: Shards = Arc::from(txs);
        let (udp, open) = self.spawn_readers(&shards);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut set = JoinSet::new();
        for (i, (core, rx)) in cores.into_iter().zip(rxs).enumerate() {
            let cx = LoopCtx {
                udp: udp.clone(),
                limits: self.limits.clone(),
                open: open.clone(),
                own: shards[i].clone(),
                tag: (i as u64) << SHARD_SHIFT,
            };
            let mut stop = stop_rx.clone();
            set.spawn(async move {
                let stopped = async move {
                    let _ = stop.wait_for(|s| *s).await;
                };
                (i, drive(core, rx, cx, stopped).await)
            });
        }
        let mut out: Vec<Option<C>> = (0..n).map(|_| None).collect();
        let mut shutdown = std::pin::pin!(shutdown);
        let mut signalled = false;
        loop {
            tokio::select! {
                () = &mut shutdown, if !signalled => {
                    signalled = true;
                    let _ = stop_tx.send(true);
                }
                done = set.join_next() => match done {
                    None => break,
                    Some(Ok((i, core))) => {
                        out[i] = Some(core);
                        if !signalled {
                            signalled = true;
                            let _ = stop_tx.send(true);
                        }
                    }
                    Some(Err(e)) => match e.try_into_panic() {
                        Ok(p) => std::panic::resume_unwind(p),
                        // Cancelled only when the runtime shuts down under us.
                        Err(_) => break,
                    },
                },
            }
        }
        out.into_iter().flatten().collect()
    }

    /// Spawns the UDP readers and the accept loops, feeding `shards`. With more than one
    /// shard, SIP is steered by Call-ID (and framed in the readers on TCP).
    fn spawn_readers(&mut self, shards: &Shards) -> (UdpSockets, Arc<AtomicUsize>) {
        let open = Arc::new(AtomicUsize::new(0));
        let next_accepted = Arc::new(AtomicU64::new(0));
        let max_datagram = self.limits.max_datagram;
        let n = shards.len();
        let udp: Vec<(Arc<UdpSocket>, SocketAddr)> = self
            .udp
            .iter()
            .zip(&self.local.sip_udp)
            .map(|(s, a)| (s.clone(), *a))
            .collect();
        for (s, local) in &udp {
            let (s, local) = (s.clone(), *local);
            let shards = shards.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; max_datagram];
                loop {
                    match s.recv_from(&mut buf).await {
                        Ok((len, from)) => {
                            let data = Bytes::copy_from_slice(&buf[..len]);
                            let k = steer_sip(&data, n);
                            if shards[k].send(Ev::Datagram(local, from, data)).is_err() {
                                return;
                            }
                        }
                        // ICMP errors surface as recv errors on some platforms; keep reading.
                        Err(_) => continue,
                    }
                }
            });
        }
        let listeners = std::mem::take(&mut self.sip_tcp)
            .into_iter()
            .map(|l| (l, StreamKind::Sip, None))
            .chain(
                std::mem::take(&mut self.msrp_tcp)
                    .into_iter()
                    .enumerate()
                    .map(|(j, l)| (l, StreamKind::Msrp, Some(j % n))),
            );
        for (l, kind, shard) in listeners {
            let route = match shard {
                // SIP connections carry calls of every shard: every shard learns of them and
                // each framed message goes where its Call-ID steers.
                None if n > 1 => Route::Steered(shards.clone()),
                None => Route::One(shards[0].clone()),
                Some(k) => Route::One(shards[k].clone()),
            };
            let open = open.clone();
            let next = next_accepted.clone();
            let max = self.limits.max_connections;
            let max_sip = self.limits.max_sip_message;
            tokio::spawn(async move {
                loop {
                    let Ok((stream, peer)) = l.accept().await else {
                        // Out of descriptors or a transient error: back off instead of
                        // spinning on the same failure.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    if open.load(Ordering::Relaxed) >= max {
                        // Over the connection limit: refuse by closing at once.
                        drop(stream);
                        continue;
                    }
                    let id = ConnId(ConnId::ACCEPTED | next.fetch_add(1, Ordering::Relaxed));
                    spawn_conn(stream, id, kind, peer, route.clone(), open.clone(), max_sip);
                }
            });
        }
        (Arc::from(udp), open)
    }
}

/// One driver loop: feeds `core` what arrives on `rx`, carries out its outputs, sleeps until
/// its next deadline; after `shutdown`, returns once the core is idle or the grace is over.
async fn drive<C: Core>(
    mut core: C,
    mut rx: mpsc::UnboundedReceiver<Ev>,
    cx: LoopCtx,
    shutdown: impl Future<Output = ()>,
) -> C {
    let mut writers: HashMap<ConnId, mpsc::UnboundedSender<WriterMsg>> = HashMap::new();
    let mut shutdown_deadline: Option<Instant> = None;
    let mut shutdown = std::pin::pin!(shutdown);
    let mut shutdown_seen = false;
    loop {
        // Carry out everything the core wants before waiting again.
        while let Some(out) = core.poll_output() {
            match out {
                Output::Datagram { local, to, data } => {
                    let sock = local
                        .and_then(|l| cx.udp.iter().find(|(_, a)| *a == l))
                        .or_else(|| cx.udp.iter().find(|(_, a)| a.is_ipv4() == to.is_ipv4()))
                        .or_else(|| cx.udp.first());
                    if let Some((s, _)) = sock {
                        // UDP is best effort: a failed send is a lost datagram, which the
                        // transaction layer's retransmissions already cover.
                        let _ = s.send_to(&data, to).await;
                    }
                }
                Output::StreamSend { conn, data } => {
                    if let Some(w) = writers.get(&cx.global(conn)) {
                        let _ = w.send(WriterMsg::Data(data));
                    }
                }
                Output::Connect { conn, kind, to } => {
                    let conn = cx.global(conn);
                    let tx = cx.own.clone();
                    let open = cx.open.clone();
                    let timeout = cx.limits.connect_timeout;
                    let max = cx.limits.max_connections;
                    let max_sip = cx.limits.max_sip_message;
                    tokio::spawn(async move {
                        if open.load(Ordering::Relaxed) >= max {
                            let _ = tx.send(Ev::ConnectFailed(conn));
                            return;
                        }
                        match tokio::time::timeout(timeout, TcpStream::connect(to)).await {
                            Ok(Ok(stream)) => {
                                spawn_conn(stream, conn, kind, to, Route::One(tx), open, max_sip)
                            }
                            _ => {
                                let _ = tx.send(Ev::ConnectFailed(conn));
                            }
                        }
                    });
                }
                Output::Close { conn } => {
                    if let Some(w) = writers.remove(&cx.global(conn)) {
                        let _ = w.send(WriterMsg::Close);
                    }
                }
            }
        }
        if shutdown_seen {
            let over = shutdown_deadline.is_some_and(|d| now() >= d);
            if core.is_idle() || over {
                for (_, w) in writers.drain() {
                    let _ = w.send(WriterMsg::Close);
                }
                return core;
            }
        }
        let deadline = match (core.poll_timeout(), shutdown_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            ev = rx.recv() => {
                let Some(ev) = ev else { return core };
                let input = match ev {
                    Ev::Datagram(local, from, data) => Input::Datagram { local, from, data },
                    Ev::Opened(conn, kind, local, peer, w) => {
                        writers.insert(conn, w);
                        Input::StreamOpened { conn: cx.local(conn), kind, local, peer }
                    }
                    Ev::Data(conn, data) => Input::StreamData { conn: cx.local(conn), data },
                    Ev::Closed(conn) => {
                        writers.remove(&conn);
                        Input::StreamClosed { conn: cx.local(conn) }
                    }
                    Ev::ConnectFailed(conn) => Input::ConnectFailed { conn: cx.local(conn) },
                };
                core.handle_input(now(), input);
            }
            () = sleep => {
                core.handle_input(now(), Input::Timeout);
            }
            () = &mut shutdown, if !shutdown_seen => {
                shutdown_seen = true;
                shutdown_deadline = Some(now() + cx.limits.shutdown_grace);
                core.handle_input(now(), Input::Shutdown);
            }
        }
    }
}

/// The one clock read of the crate (style practice 2): the core gets time only from here.
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

/// Where a connection's events go.
#[derive(Clone)]
enum Route {
    /// Everything to one loop, bytes as read.
    One(EvTx),
    /// SIP over TCP shared by every loop: open and close go to all of them, and the reader
    /// frames the byte stream so that each message goes to the loop its Call-ID steers to.
    Steered(Shards),
}

fn spawn_conn(
    stream: TcpStream,
    id: ConnId,
    kind: StreamKind,
    peer: SocketAddr,
    route: Route,
    open: Arc<AtomicUsize>,
    max_sip_message: usize,
) {
    let all: Vec<EvTx> = match &route {
        Route::One(tx) => vec![tx.clone()],
        Route::Steered(shards) => shards.to_vec(),
    };
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(_) => {
            for tx in &all {
                let _ = tx.send(Ev::ConnectFailed(id));
            }
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    open.fetch_add(1, Ordering::Relaxed);
    let (mut rd, mut wr) = stream.into_split();
    let (wtx, mut wrx) = mpsc::unbounded_channel::<WriterMsg>();
    // Every loop that may write on the connection gets the writer before any of its bytes.
    for tx in &all {
        let _ = tx.send(Ev::Opened(id, kind, local, peer, wtx.clone()));
    }
    tokio::spawn(async move {
        while let Some(m) = wrx.recv().await {
            match m {
                WriterMsg::Data(d) => {
                    if wr.write_all(&d).await.is_err() {
                        break;
                    }
                }
                WriterMsg::Close => break,
            }
        }
        let _ = wr.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut framed = BytesMut::new();
        'read: loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => match &route {
                    Route::One(tx) => {
                        if tx
                            .send(Ev::Data(id, Bytes::copy_from_slice(&buf[..n])))
                            .is_err()
                        {
                            break;
                        }
                    }
                    Route::Steered(shards) => {
                        framed.extend_from_slice(&buf[..n]);
                        loop {
                            match sip::frame(&framed, max_sip_message) {
                                Ok(sip::Frame::Message { skip, len }) => {
                                    let _ = framed.split_to(skip);
                                    let msg = framed.split_to(len).freeze();
                                    let k = steer_sip(&msg, shards.len());
                                    if shards[k].send(Ev::Data(id, msg)).is_err() {
                                        break 'read;
                                    }
                                }
                                Ok(sip::Frame::KeepAlive { skip }) => {
                                    let _ = framed.split_to(skip);
                                }
                                Ok(sip::Frame::NeedMore) => break,
                                Err(_) => {
                                    // Unframeable stream (bad or oversized Content-Length):
                                    // it cannot be resynchronised. The rest goes to the shard
                                    // its Call-ID steers to, whose core frames it the same
                                    // way, answers 413 when the body is too large (RFC 3261
                                    // §21.4.11) and closes the connection; then stop reading.
                                    let rest = framed.split().freeze();
                                    let k = steer_sip(&rest, shards.len());
                                    let _ = shards[k].send(Ev::Data(id, rest));
                                    break 'read;
                                }
                            }
                        }
                    }
                },
            }
        }
        open.fetch_sub(1, Ordering::Relaxed);
        for tx in &all {
            let _ = tx.send(Ev::Closed(id));
        }
    });
}

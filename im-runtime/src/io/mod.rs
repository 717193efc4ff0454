//! The tokio layer: sockets, connections and the clock, driving any [`Core`].
//!
//! This is the only place in the crate that reads the clock or spawns tasks. A driver loop
//! owns a core, feeds it, carries out its outputs and sleeps until the core's next deadline.
//! The loop reads its UDP sockets and sends on them itself (module `udp`): a datagram costs
//! no task hop. Each TCP connection has a small reader task that forwards what it reads over
//! a channel to the loop, and a writer task fed by a channel, so a slow peer never blocks it.
//!
//! [`Driver::run`] drives one core. [`Driver::run_sharded`] drives N independent cores (one
//! per worker thread) behind the same sockets: UDP socket `j` is read by loop `j % N`, which
//! forwards to another loop only the datagrams that steering gives it, and the TCP readers
//! steer each SIP message to the core that owns its call ([`crate::steer`]), framing SIP
//! over TCP in the reader so that
//! one connection can carry calls of several shards, and each MSRP listener belongs to one
//! shard (the shard names its own port in `a=path`). Sessions never cross shards, so the
//! cores share nothing but the sockets and whatever the application shares itself.
//!
//! TLS ([`Driver::bind_tls`], module `tls`) is one more pair of listeners: their
//! connections are handshaken here (under [`IoLimits::handshake_timeout`], inside the same
//! budgets and per-source limit as plain ones) and then served exactly like TCP ones, with
//! the stream kind telling the core that they are secure.

mod batch;
mod hygiene;
mod kstamp;
mod latency;
mod pressure;
mod sockbuf;
mod stats;
mod tls;
mod udp;

pub use batch::UdpCounters;
pub use latency::InviteLatency;
pub use stats::IoStats;
use stats::bump;
pub use tls::{TlsError, TlsSetup};

use crate::proto::sip;
use crate::steer::steer_sip;
use crate::transport::{ConnId, Core, Input, Output, StreamKind};
use bytes::{Bytes, BytesMut};
use pressure::Pressure;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
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
    /// Most SIP-over-TCP connections open at once (accepted and outgoing); an accepted one
    /// over it is closed at once, an outgoing one fails. A budget of its own so that a flood
    /// of one protocol cannot starve the other.
    pub max_sip_connections: usize,
    /// Most MSRP connections open at once (accepted and outgoing), as
    /// [`IoLimits::max_sip_connections`] for MSRP.
    pub max_msrp_connections: usize,
    /// Most accepted connections (SIP and MSRP together) from one source IP address; the
    /// connection over it is closed at once, never an existing one. Outgoing connections do
    /// not count.
    pub max_connections_per_source: usize,
    /// How long an accepted connection may take, from a head's first byte, to send the
    /// complete head (SIP: the blank line after the headers; MSRP: the blank line or the
    /// end-line). Over it the connection is closed: a peer that sends half a request line
    /// and waits holds a descriptor and a budget slot for nothing. Every message head of a
    /// SIP connection is timed; an MSRP connection's first one only.
    pub head_timeout: Duration,
    /// How long an accepted connection may stay open without sending a byte of its first
    /// message (CRLF keep-alives do not count).
    pub idle_timeout: Duration,
    /// How long a SIP connection that no core uses ([`Output::ConnUse`]: no session reached
    /// over it, no registration made over it) may stay silent between messages before it is
    /// closed; zero turns the rule off. Any byte read (a CRLF keep-alive too) restarts the
    /// clock, and so does the last core letting go of it. It applies to accepted
    /// connections and to those a core opened ([`Output::Connect`], RFC 3261 §18: the
    /// client may close its connection), whose slot in
    /// [`IoLimits::max_sip_connections`] it gives back.
    pub conn_idle_timeout: Duration,
    /// How long an outgoing connect may take (TLS handshake included).
    pub connect_timeout: Duration,
    /// How long an accepted TLS connection may take to complete its handshake; over it the
    /// connection is closed. The idle and head timeouts start after the handshake.
    pub handshake_timeout: Duration,
    /// How long to keep running after shutdown while the core ends its sessions.
    pub shutdown_grace: Duration,
    /// Largest SIP message framed on a TCP connection when the readers frame
    /// ([`Driver::run_sharded`] with more than one core); a longer one closes the connection,
    /// as the core itself does when it frames.
    pub max_sip_message: usize,
    /// How long an input may wait in a driver loop's queue before the loop tells its core
    /// it is overloaded ([`crate::transport::Input::Pressure`]), when every input for
    /// [`IoLimits::overload_interval`] waited that long; zero turns this off. The queue is
    /// unbounded, so under more load than the cores can carry this is what keeps the
    /// sessions already accepted answered in time: new ones are refused with 503 while the
    /// backlog drains.
    pub overload_delay: Duration,
    /// How long every input must wait more than [`IoLimits::overload_delay`] before the
    /// loop counts as overloaded; one input that waits less ends it (CoDel's rule, RFC 8289
    /// §3.2: the minimum wait over an interval, not one sample). A lone spike (the first
    /// inputs after an idle pause meeting page faults, one stall of the loop) is not
    /// overload. Zero acts on a single late input.
    pub overload_interval: Duration,
    /// Receive buffer asked for each SIP UDP socket, in bytes; 0 leaves the system's
    /// default. A datagram that finds the buffer full is dropped unseen (the sender tries
    /// again 500 ms later), so the buffer must hold the datagrams that arrive while the loop
    /// is held up, for the overload measure to see them wait and shed: 4 MiB holds ~6,000
    /// datagrams of 600 bytes (the kernel charges ~1.3 KiB for each against twice the size
    /// asked; the usual default of 208 KiB held 166 in `tests/io_udp.rs`), ~0.3 s at 21,000
    /// datagrams/s. Linux caps it at `net.core.rmem_max` unless the process may force it
    /// (`CAP_NET_ADMIN`); what was granted is logged when it is less.
    pub udp_recv_buffer: usize,
}

impl Default for IoLimits {
    fn default() -> Self {
        IoLimits {
            max_datagram: 65_535,
            max_sip_connections: 1024,
            max_msrp_connections: 1024,
            max_connections_per_source: 64,
            head_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            conn_idle_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(5),
            handshake_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(5),
            max_sip_message: 64 * 1024,
            // A group session's setup crosses the queue at least twice (the originator's
            // INVITE, then the members' answers), so at saturation its accepted calls wait
            // about twice this and more: 50 ms put the p99 of the accepted ones at 150–230
            // ms at twice the rate held with two workers, 20 ms at 72 ms
            // (docs/performance.md, "The overload limit").
            overload_delay: Duration::from_millis(20),
            overload_interval: Duration::from_millis(100),
            udp_recv_buffer: 4 * 1024 * 1024,
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
    /// SIP over TLS ([`Driver::bind_tls`]).
    pub sip_tls: Vec<SocketAddr>,
    /// MSRP over TLS ([`Driver::bind_tls`]).
    pub msrp_tls: Vec<SocketAddr>,
    /// The receive buffer each SIP UDP socket got, in bytes of payload, in the order of
    /// `sip_udp` ([`IoLimits::udp_recv_buffer`]; 0 where it was left to the system).
    pub sip_udp_recv_buffer: Vec<usize>,
}

type EvTx = mpsc::UnboundedSender<Ev>;

/// Where a reader's events go: one channel per shard.
type Shards = Arc<[EvTx]>;

/// The bound UDP sockets with their addresses (read once at bind, not per datagram sent).
type UdpSockets = Arc<[(Arc<UdpSocket>, SocketAddr)]>;

enum Ev {
    /// A datagram another loop read that steers to this one. The `Instant` is its arrival
    /// (the kernel's stamp where there is one): the driver loop measures how long inputs
    /// wait ([`IoLimits::overload_delay`]).
    Datagram(SocketAddr, SocketAddr, Bytes, Instant),
    /// The last field: who uses an accepted SIP connection, when the conn-idle rule applies.
    Opened(
        ConnId,
        StreamKind,
        SocketAddr,
        SocketAddr,
        mpsc::UnboundedSender<WriterMsg>,
        Option<Arc<hygiene::Users>>,
    ),
    Data(ConnId, Bytes, Instant),
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
    budget: Arc<Budget>,
    /// Where this loop's own outgoing connections report.
    own: EvTx,
    /// This loop's shard bits for core-allocated connection ids (0 for shard 0).
    tag: u64,
    /// TLS for outgoing connections of a TLS kind; `None`: they fail.
    tls: Option<tokio_rustls::TlsConnector>,
    /// Every loop's channel, for datagrams this loop reads that steer to another shard.
    shards: Shards,
    /// This loop's shard.
    index: usize,
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
    sip_tls: Vec<TcpListener>,
    msrp_tls: Vec<TcpListener>,
    tls: Option<TlsSetup>,
    local: Local,
    limits: IoLimits,
    budget: Arc<Budget>,
}

impl Driver {
    /// Binds every address in `bind`.
    pub async fn bind(bind: &Bind, limits: IoLimits) -> io::Result<Driver> {
        let mut local = Local::default();
        let mut udp = Vec::new();
        for a in &bind.sip_udp {
            let s = UdpSocket::bind(a).await?;
            let got = sockbuf::set_recv_buffer(&s, limits.udp_recv_buffer);
            if let Some(b) = got.filter(|b| b.granted < b.asked) {
                tracing::warn!(
                    socket = %a,
                    asked = b.asked,
                    granted = b.granted,
                    "UDP receive buffer smaller than asked (raise net.core.rmem_max, or let \
                     the server force it with CAP_NET_ADMIN): bursts will be dropped unseen"
                );
            }
            local.sip_udp_recv_buffer.push(got.map_or(0, |b| b.granted));
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
            sip_tls: Vec::new(),
            msrp_tls: Vec::new(),
            tls: None,
            local,
            budget: Arc::new(Budget::new(&limits)),
            limits,
        })
    }

    /// Binds TLS listeners for SIP and MSRP (MSRP listener `j` belongs to core `j`, as for
    /// TCP) and keeps `tls` for them and for outgoing connections of a TLS kind. Listeners
    /// need `tls` to have a certificate ([`TlsSetup::can_accept`]).
    pub async fn bind_tls(
        &mut self,
        sip: &[SocketAddr],
        msrp: &[SocketAddr],
        tls: TlsSetup,
    ) -> io::Result<()> {
        let listens = !sip.is_empty() || !msrp.is_empty();
        if listens && !tls.can_accept() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "TLS listeners need a certificate and key",
            ));
        }
        for a in sip {
            let l = TcpListener::bind(a).await?;
            self.local.sip_tls.push(l.local_addr()?);
            self.sip_tls.push(l);
        }
        for a in msrp {
            let l = TcpListener::bind(a).await?;
            self.local.msrp_tls.push(l.local_addr()?);
            self.msrp_tls.push(l);
        }
        self.tls = Some(tls);
        Ok(())
    }

    /// The addresses actually bound.
    pub fn local(&self) -> &Local {
        &self.local
    }

    /// Live counters of the connection limits and timeouts, readable while the driver runs.
    pub fn stats(&self) -> Arc<IoStats> {
        self.budget.stats.clone()
    }

    /// Runs `core` until `shutdown` completes and the core is idle (or the grace period
    /// ends). Returns the core so callers can inspect its final state.
    pub async fn run<C: Core>(mut self, core: C, shutdown: impl Future<Output = ()>) -> C {
        let (tx, rx) = mpsc::unbounded_channel::<Ev>();
        let shards: Shards = Arc::from(vec![tx.clone()]);
        let udp = self.spawn_readers(&shards);
        let cx = LoopCtx {
            udp,
            limits: self.limits.clone(),
            budget: self.budget.clone(),
            own: tx,
            tag: 0,
            tls: self.tls.as_ref().map(|t| t.connector.clone()),
            shards,
            index: 0,
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
        let udp = self.spawn_readers(&shards);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut set = JoinSet::new();
        for (i, (core, rx)) in cores.into_iter().zip(rxs).enumerate() {
            let cx = LoopCtx {
                udp: udp.clone(),
                limits: self.limits.clone(),
                budget: self.budget.clone(),
                own: shards[i].clone(),
                tag: (i as u64) << SHARD_SHIFT,
                tls: self.tls.as_ref().map(|t| t.connector.clone()),
                shards: shards.clone(),
                index: i,
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

    /// Spawns the accept loops, feeding `shards`, and gives the UDP sockets to the loops
    /// (which read them themselves). With more than one shard, SIP over TCP is framed in the
    /// readers and steered by Call-ID.
    fn spawn_readers(&mut self, shards: &Shards) -> UdpSockets {
        let next_accepted = Arc::new(AtomicU64::new(0));
        let n = shards.len();
        let udp: Vec<(Arc<UdpSocket>, SocketAddr)> = self
            .udp
            .iter()
            .zip(&self.local.sip_udp)
            .map(|(s, a)| (s.clone(), *a))
            .collect();
        let listeners = std::mem::take(&mut self.sip_tcp)
            .into_iter()
            .map(|l| (l, StreamKind::Sip, None))
            .chain(
                std::mem::take(&mut self.msrp_tcp)
                    .into_iter()
                    .enumerate()
                    .map(|(j, l)| (l, StreamKind::Msrp, Some(j % n))),
            )
            .chain(
                std::mem::take(&mut self.sip_tls)
                    .into_iter()
                    .map(|l| (l, StreamKind::SipTls, None)),
            )
            .chain(
                std::mem::take(&mut self.msrp_tls)
                    .into_iter()
                    .enumerate()
                    .map(|(j, l)| (l, StreamKind::MsrpTls, Some(j % n))),
            );
        let acceptor = self.tls.as_ref().and_then(|t| t.acceptor.clone());
        let handshake_timeout = self.limits.handshake_timeout;
        for (l, kind, shard) in listeners {
            let route = match shard {
                // SIP connections carry calls of every shard: every shard learns of them and
                // each framed message goes where its Call-ID steers.
                None if n > 1 => Route::Steered(shards.clone()),
                None => Route::One(shards[0].clone()),
                Some(k) => Route::One(shards[k].clone()),
            };
            let budget = self.budget.clone();
            let next = next_accepted.clone();
            let max_sip = self.limits.max_sip_message;
            let watch = Some(hygiene::Timeouts::of(&self.limits));
            let acceptor = acceptor.clone().filter(|_| kind.is_tls());
            tokio::spawn(async move {
                loop {
                    let Ok((stream, peer)) = l.accept().await else {
                        // Out of descriptors or a transient error: back off instead of
                        // spinning on the same failure.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    // Over a limit: refuse the newcomer by closing it at once, so that the
                    // connections already serving someone are kept.
                    let Some(permit) = budget.admit(kind, Some(peer)) else {
                        drop(stream);
                        continue;
                    };
                    let id = ConnId(ConnId::ACCEPTED | next.fetch_add(1, Ordering::Relaxed));
                    let conn = Conn {
                        id,
                        kind,
                        peer,
                        route: route.clone(),
                        permit,
                        max_sip_message: max_sip,
                        watch,
                        evict: Arc::new(tokio::sync::Notify::new()),
                    };
                    match &acceptor {
                        None => spawn_tcp(stream, conn),
                        Some(a) => {
                            tokio::spawn(accept_tls(a.clone(), stream, conn, handshake_timeout));
                        }
                    }
                }
            });
        }
        Arc::from(udp)
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
    // Accepted SIP connections under the conn-idle rule, and whether this core uses each.
    let mut users: HashMap<ConnId, (Arc<hygiene::Users>, bool)> = HashMap::new();
    let mut shutdown_deadline: Option<Instant> = None;
    let mut shutdown = std::pin::pin!(shutdown);
    let mut shutdown_seen = false;
    let mut pressure = Pressure::new(cx.limits.overload_delay, cx.limits.overload_interval);
    let n = cx.shards.len();
    let (mut udp_in, mut udp_out) = udp::open(&cx);
    let mut invites = latency::Tracker::new();
    loop {
        // Carry out everything the core wants before waiting again.
        while let Some(out) = core.poll_output() {
            match out {
                Output::Datagram { local, to, data } => {
                    invites.sent(&data, &cx.budget.stats.invite_latency, now);
                    udp_out.send(local, to, data);
                }
                Output::StreamSend { conn, data } => {
                    if let Some(w) = writers.get(&cx.global(conn)) {
                        let _ = w.send(WriterMsg::Data(data));
                    }
                }
                Output::Connect { conn, kind, to } => {
                    let conn = cx.global(conn);
                    let tx = cx.own.clone();
                    let budget = cx.budget.clone();
                    let timeout = cx.limits.connect_timeout;
                    let max_sip = cx.limits.max_sip_message;
                    let tls = cx.tls.clone();
                    let watch = hygiene::Timeouts::outgoing(kind, &cx.limits);
                    tokio::spawn(async move {
                        let Some(permit) = budget.admit(kind, None) else {
                            let _ = tx.send(Ev::ConnectFailed(conn));
                            return;
                        };
                        let c = Conn {
                            id: conn,
                            kind,
                            peer: to,
                            route: Route::One(tx.clone()),
                            permit,
                            max_sip_message: max_sip,
                            // We spoke first: the peer owes us no head; only the
                            // conn-idle rule applies (SIP).
                            watch,
                            evict: Arc::new(tokio::sync::Notify::new()),
                        };
                        let connected = tokio::time::timeout(timeout, async {
                            let stream = TcpStream::connect(to).await?;
                            if !kind.is_tls() {
                                return Ok(Either::Tcp(stream));
                            }
                            let Some(tls) = tls else {
                                return Err(io::Error::other("TLS is not configured"));
                            };
                            let local = stream.local_addr()?;
                            let _ = stream.set_nodelay(true);
                            // The core routes to addresses: the peer's certificate must name
                            // the IP address connected to (RFC 5922 §7.2 allows IP SANs).
                            let name = rustls::pki_types::ServerName::IpAddress(to.ip().into());
                            let s = tls.connect(name, stream).await?;
                            Ok(Either::Tls(Box::new(s), local))
                        })
                        .await;
                        match connected {
                            Ok(Ok(Either::Tcp(stream))) => spawn_tcp(stream, c),
                            Ok(Ok(Either::Tls(s, local))) => {
                                let (rd, wr) = tokio::io::split(*s);
                                spawn_conn(rd, wr, local, c);
                            }
                            Ok(Err(e)) => {
                                tracing::info!(%to, ?kind, "connect failed: {e}");
                                let _ = tx.send(Ev::ConnectFailed(conn));
                            }
                            Err(_) => {
                                let _ = tx.send(Ev::ConnectFailed(conn));
                            }
                        }
                    });
                }
                Output::Close { conn } => {
                    users.remove(&cx.global(conn));
                    if let Some(w) = writers.remove(&cx.global(conn)) {
                        let _ = w.send(WriterMsg::Close);
                    }
                }
                Output::ConnUse { conn, in_use } => {
                    if let Some((u, ours)) = users.get_mut(&cx.global(conn))
                        && *ours != in_use
                    {
                        *ours = in_use;
                        u.set(in_use);
                    }
                }
            }
        }
        udp_out.flush();
        if shutdown_seen {
            let over = shutdown_deadline.is_some_and(|d| now() >= d);
            if core.is_idle() || over {
                udp_out.flush();
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
        // The INVITE timing records of an idle loop: nothing else drops them.
        let tidy_at = invites.tidy_at();
        let tidy = async {
            match tidy_at {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            i = udp_in.readable() => {
                // Everything the socket holds goes in before the outputs are carried out.
                udp_in.drain(i, |local, from, data, at, t| {
                    let k = steer_sip(&data, n);
                    if k != cx.index {
                        let _ = cx.shards[k].send(Ev::Datagram(local, from, data, at));
                        return;
                    }
                    pressure.observe(&mut core, t, t.saturating_duration_since(at));
                    invites.received(&data, at);
                    core.handle_input(t, Input::Datagram { local, from, data });
                });
            }
            () = udp_out.writable() => udp_out.flush(),
            ev = rx.recv() => {
                let Some(ev) = ev else { return core };
                let t = now();
                if let Ev::Datagram(.., at) | Ev::Data(.., at) = &ev {
                    pressure.observe(&mut core, t, t.saturating_duration_since(*at));
                }
                let input = match ev {
                    Ev::Datagram(local, from, data, at) => {
                        invites.received(&data, at);
                        Input::Datagram { local, from, data }
                    }
                    Ev::Opened(conn, kind, local, peer, w, u) => {
                        writers.insert(conn, w);
                        if let Some(u) = u {
                            users.insert(conn, (u, false));
                        }
                        Input::StreamOpened { conn: cx.local(conn), kind, local, peer }
                    }
                    Ev::Data(conn, data, _) => Input::StreamData { conn: cx.local(conn), data },
                    Ev::Closed(conn) => {
                        writers.remove(&conn);
                        users.remove(&conn);
                        Input::StreamClosed { conn: cx.local(conn) }
                    }
                    Ev::ConnectFailed(conn) => Input::ConnectFailed { conn: cx.local(conn) },
                };
                core.handle_input(t, input);
            }
            () = sleep => {
                core.handle_input(now(), Input::Timeout);
            }
            () = tidy => invites.tidy(now()),
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

/// The connection budgets shared by every accept loop and outgoing connect.
#[derive(Debug)]
struct Budget {
    max_sip: usize,
    max_msrp: usize,
    per_source: usize,
    sip: AtomicUsize,
    msrp: AtomicUsize,
    sources: Mutex<HashMap<IpAddr, usize>>,
    /// Accepted connections still waiting for their first head, per kind (SIP, MSRP), oldest
    /// first: when a budget is full, the oldest of them makes room for a newcomer.
    waiting: Mutex<[WaitList; 2]>,
    stats: Arc<IoStats>,
}

impl Budget {
    fn new(l: &IoLimits) -> Self {
        Budget {
            max_sip: l.max_sip_connections,
            max_msrp: l.max_msrp_connections,
            per_source: l.max_connections_per_source,
            sip: AtomicUsize::new(0),
            msrp: AtomicUsize::new(0),
            sources: Mutex::new(HashMap::new()),
            waiting: Mutex::new(Default::default()),
            stats: Arc::new(IoStats::default()),
        }
    }

    /// A protocol's budget is shared by its TCP and TLS connections.
    fn count(&self, kind: StreamKind) -> (&AtomicUsize, usize) {
        match kind.protocol() {
            StreamKind::Msrp => (&self.msrp, self.max_msrp),
            _ => (&self.sip, self.max_sip),
        }
    }

    /// A slot for a new connection of `kind`, from `source` when it was accepted; `None`
    /// (counted and logged) when a budget is full.
    fn admit(self: &Arc<Self>, kind: StreamKind, source: Option<SocketAddr>) -> Option<Permit> {
        let ip = source.map(|a| a.ip());
        if let Some(ip) = ip {
            let mut m = self.sources.lock().unwrap_or_else(|e| e.into_inner());
            let c = m.entry(ip).or_insert(0);
            if *c >= self.per_source {
                drop(m);
                if let Some(k) = bump(&self.stats.refused_per_source) {
                    tracing::warn!(%ip, max = self.per_source, refused = k,
                        "too many connections from one source: refusing");
                }
                return None;
            }
            *c += 1;
        }
        // From here on the permit gives the source slot back when dropped.
        let permit = Permit {
            budget: self.clone(),
            kind,
            ip,
            counted: false,
        };
        let (n, max) = self.count(kind);
        if n.fetch_add(1, Ordering::Relaxed) >= max {
            // An accepted newcomer takes the place of the oldest connection that has not sent
            // a complete head yet (no one's good connection). The count is over by one until
            // that connection's reader ends, a moment later.
            let evict = if source.is_some() {
                self.pop_waiting(kind)
            } else {
                None
            };
            let Some(evict) = evict else {
                n.fetch_sub(1, Ordering::Relaxed);
                if source.is_some()
                    && let Some(k) = bump(&self.stats.refused_budget)
                {
                    tracing::warn!(?kind, max, refused = k, "connection budget full: refusing");
                }
                return None;
            };
            evict.notify_one();
            if let Some(k) = bump(&self.stats.evicted) {
                tracing::warn!(
                    ?kind,
                    max,
                    evicted = k,
                    "connection budget full: closing the oldest connection without a head"
                );
            }
        }
        if source.is_some() {
            self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        }
        let mut permit = permit;
        permit.counted = true;
        Some(permit)
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, [WaitList; 2]> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn slot(kind: StreamKind) -> usize {
        match kind.protocol() {
            StreamKind::Msrp => 1,
            _ => 0,
        }
    }

    /// Registers an accepted connection as waiting for its first head; `evict` is notified
    /// when a newcomer needs its slot.
    fn wait(&self, kind: StreamKind, seq: u64, evict: Arc<tokio::sync::Notify>) {
        self.waiting()[Self::slot(kind)].insert(seq, evict);
    }

    /// The connection has its head, or is gone.
    fn done_waiting(&self, kind: StreamKind, seq: u64) {
        self.waiting()[Self::slot(kind)].remove(&seq);
    }

    fn pop_waiting(&self, kind: StreamKind) -> Option<Arc<tokio::sync::Notify>> {
        self.waiting()[Self::slot(kind)].pop_first().map(|(_, n)| n)
    }
}

type WaitList = std::collections::BTreeMap<u64, Arc<tokio::sync::Notify>>;

/// A connection's slot in the budgets, given back when the connection ends.
struct Permit {
    budget: Arc<Budget>,
    kind: StreamKind,
    ip: Option<IpAddr>,
    /// Whether the kind's budget counts this connection (not yet while admitting).
    counted: bool,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.counted {
            self.budget
                .count(self.kind)
                .0
                .fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(ip) = self.ip {
            let mut m = self
                .budget
                .sources
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(c) = m.get_mut(&ip) {
                *c -= 1;
                if *c == 0 {
                    m.remove(&ip);
                }
            }
        }
    }
}

/// Watches an accepted connection until the head of its first message is complete.
struct HeadWatch {
    kind: StreamKind,
    /// The first message's bytes so far, leading CRLF keep-alives dropped.
    buf: Vec<u8>,
    /// Past this many bytes without a head, stop watching: the core's own size limits then
    /// deal with the message (a SIP head this long is answered 513/413 or closed).
    cap: usize,
}

impl HeadWatch {
    /// Takes `data`; true once the first head is complete (or too long to watch).
    fn complete(&mut self, data: &[u8]) -> bool {
        let data = if self.buf.is_empty() {
            let lead = data
                .iter()
                .take_while(|b| **b == b'\r' || **b == b'\n')
                .count();
            &data[lead..]
        } else {
            data
        };
        self.buf.extend_from_slice(data);
        let end = |pat: &[u8]| memchr::memmem::find(&self.buf, pat).is_some();
        let done = match self.kind.protocol() {
            // A frame with a body has a blank line; one without goes straight to its end-line.
            StreamKind::Msrp => end(b"\r\n\r\n") || end(b"\r\n-------"),
            _ => end(b"\r\n\r\n"),
        };
        done || self.buf.len() > self.cap
    }

    fn started(&self) -> bool {
        !self.buf.is_empty()
    }
}

/// One TCP connection to serve.
struct Conn {
    id: ConnId,
    kind: StreamKind,
    peer: SocketAddr,
    route: Route,
    permit: Permit,
    max_sip_message: usize,
    /// For accepted connections: the idle, head and conn-idle timeouts.
    watch: Option<hygiene::Timeouts>,
    /// Notified when a newcomer needs this connection's budget slot (accepted connections
    /// still without a first head, or still in their TLS handshake).
    evict: Arc<tokio::sync::Notify>,
}

/// An outgoing connection once connected.
enum Either {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>, SocketAddr),
}

fn conn_failed(route: &Route, id: ConnId) {
    match route {
        Route::One(tx) => {
            let _ = tx.send(Ev::ConnectFailed(id));
        }
        Route::Steered(shards) => {
            for tx in shards.iter() {
                let _ = tx.send(Ev::ConnectFailed(id));
            }
        }
    }
}

fn spawn_tcp(stream: TcpStream, conn: Conn) {
    let Ok(local) = stream.local_addr() else {
        conn_failed(&conn.route, conn.id);
        return;
    };
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    spawn_conn(rd, wr, local, conn);
}

/// Handshakes an accepted TLS connection, then serves it like a TCP one. The handshake is
/// bounded by `timeout` and, like a connection waiting for its first head, gives its budget
/// slot up to a newcomer when the budget is full: a peer that opens TLS connections and never
/// finishes the handshake holds nothing for long.
async fn accept_tls(
    acceptor: tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    conn: Conn,
    timeout: Duration,
) {
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let budget = conn.permit.budget.clone();
    budget.wait(conn.kind, conn.id.0, conn.evict.clone());
    let done = tokio::select! {
        r = tokio::time::timeout(timeout, acceptor.accept(stream)) => match r {
            Ok(Ok(s)) => Some(s),
            Ok(Err(e)) => {
                if let Some(k) = bump(&budget.stats.closed_handshake) {
                    tracing::info!(peer = %conn.peer, closed = k, "TLS handshake failed: {e}");
                }
                None
            }
            Err(_) => {
                if let Some(k) = bump(&budget.stats.closed_handshake) {
                    tracing::info!(peer = %conn.peer, closed = k, "TLS handshake timeout: closing");
                }
                None
            }
        },
        () = conn.evict.notified() => None,
    };
    let Some(s) = done else {
        budget.done_waiting(conn.kind, conn.id.0);
        return;
    };
    let (rd, wr) = tokio::io::split(s);
    spawn_conn(rd, wr, local, conn);
}

fn spawn_conn<R, W>(mut rd: R, mut wr: W, local: SocketAddr, conn: Conn)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let Conn {
        id,
        kind,
        peer,
        route,
        permit,
        max_sip_message,
        watch,
        evict,
    } = conn;
    let all: Vec<EvTx> = match &route {
        Route::One(tx) => vec![tx.clone()],
        Route::Steered(shards) => shards.to_vec(),
    };
    let (wtx, mut wrx) = mpsc::unbounded_channel::<WriterMsg>();
    let users = watch
        .filter(|t| kind.protocol() == StreamKind::Sip && !t.conn_idle.is_zero())
        .map(|_| Arc::new(hygiene::Users::default()));
    // Every loop that may write on the connection gets the writer before any of its bytes.
    for tx in &all {
        let _ = tx.send(Ev::Opened(
            id,
            kind,
            local,
            peer,
            wtx.clone(),
            users.clone(),
        ));
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
        let stats = permit.budget.stats.clone();
        // Our own connections are never evicted for a newcomer.
        if watch.is_some() && id.is_accepted() {
            permit.budget.wait(kind, id.0, evict.clone());
        }
        let mut buf = vec![0u8; 16 * 1024];
        let mut framed = BytesMut::new();
        let cap = max_sip_message.max(64 * 1024);
        let mut head = watch.map(|t| {
            if id.is_accepted() {
                hygiene::Watch::new(kind, t, users, cap)
            } else {
                hygiene::Watch::outgoing(t, users, cap)
            }
        });
        'read: loop {
            let read = match &mut head {
                Some(w) => tokio::select! {
                    r = rd.read(&mut buf) => r,
                    () = evict.notified() => {
                        let _ = wtx.send(WriterMsg::Close);
                        break 'read;
                    }
                    () = w.expired() => {
                        if !w.fired(&stats, peer) {
                            continue 'read;
                        }
                        // The writer closes too, so the peer sees the close now.
                        let _ = wtx.send(WriterMsg::Close);
                        break 'read;
                    }
                },
                None => rd.read(&mut buf).await,
            };
            let n = match read {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some(w) = &mut head {
                if w.read(&buf[..n]) {
                    permit.budget.done_waiting(kind, id.0);
                }
                if w.finished() {
                    head = None;
                }
            }
            match &route {
                Route::One(tx) => {
                    if tx
                        .send(Ev::Data(id, Bytes::copy_from_slice(&buf[..n]), now()))
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
                                if shards[k].send(Ev::Data(id, msg, now())).is_err() {
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
                                let _ = shards[k].send(Ev::Data(id, rest, now()));
                                break 'read;
                            }
                        }
                    }
                }
            }
        }
        permit.budget.done_waiting(kind, id.0);
        drop(permit);
        drop(wtx);
        for tx in &all {
            let _ = tx.send(Ev::Closed(id));
        }
    });
}

//! The tokio layer: sockets, connections and the clock, driving any [`Core`].
//!
//! This is the only place in the crate that reads the clock or spawns tasks. Each UDP socket
//! and each TCP connection has a small reader task that forwards what it reads over one
//! channel to the driver loop; the loop owns the core, feeds it, carries out its outputs and
//! sleeps until the core's next deadline. Writers are per-connection tasks fed by channels, so
//! a slow peer never blocks the loop.

use crate::transport::{ConnId, Core, Input, Output, StreamKind};
use bytes::Bytes;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

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
}

impl Default for IoLimits {
    fn default() -> Self {
        IoLimits {
            max_datagram: 65_535,
            max_connections: 1024,
            connect_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(5),
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
    pub async fn run<C: Core>(self, mut core: C, shutdown: impl Future<Output = ()>) -> C {
        let (tx, mut rx) = mpsc::unbounded_channel::<Ev>();
        let open = Arc::new(AtomicUsize::new(0));
        let next_accepted = Arc::new(AtomicU64::new(0));
        let max_datagram = self.limits.max_datagram;
        for s in &self.udp {
            let s = s.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let local = match s.local_addr() {
                    Ok(a) => a,
                    Err(_) => return,
                };
                let mut buf = vec![0u8; max_datagram];
                loop {
                    match s.recv_from(&mut buf).await {
                        Ok((n, from)) => {
                            let data = Bytes::copy_from_slice(&buf[..n]);
                            if tx.send(Ev::Datagram(local, from, data)).is_err() {
                                return;
                            }
                        }
                        // ICMP errors surface as recv errors on some platforms; keep reading.
                        Err(_) => continue,
                    }
                }
            });
        }
        for (listeners, kind) in [
            (self.sip_tcp, StreamKind::Sip),
            (self.msrp_tcp, StreamKind::Msrp),
        ] {
            for l in listeners {
                let tx = tx.clone();
                let open = open.clone();
                let next = next_accepted.clone();
                let max = self.limits.max_connections;
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
                        spawn_conn(stream, id, kind, peer, tx.clone(), open.clone());
                    }
                });
            }
        }

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
                            .and_then(|l| self.udp.iter().find(|s| s.local_addr().ok() == Some(l)))
                            .or_else(|| {
                                self.udp.iter().find(|s| {
                                    s.local_addr()
                                        .map(|a| a.is_ipv4() == to.is_ipv4())
                                        .unwrap_or(false)
                                })
                            })
                            .or_else(|| self.udp.first());
                        if let Some(s) = sock {
                            // UDP is best effort: a failed send is a lost datagram, which
                            // the transaction layer's retransmissions already cover.
                            let _ = s.send_to(&data, to).await;
                        }
                    }
                    Output::StreamSend { conn, data } => {
                        if let Some(w) = writers.get(&conn) {
                            let _ = w.send(WriterMsg::Data(data));
                        }
                    }
                    Output::Connect { conn, kind, to } => {
                        let tx = tx.clone();
                        let open = open.clone();
                        let timeout = self.limits.connect_timeout;
                        let max = self.limits.max_connections;
                        tokio::spawn(async move {
                            if open.load(Ordering::Relaxed) >= max {
                                let _ = tx.send(Ev::ConnectFailed(conn));
                                return;
                            }
                            match tokio::time::timeout(timeout, TcpStream::connect(to)).await {
                                Ok(Ok(stream)) => spawn_conn(stream, conn, kind, to, tx, open),
                                _ => {
                                    let _ = tx.send(Ev::ConnectFailed(conn));
                                }
                            }
                        });
                    }
                    Output::Close { conn } => {
                        if let Some(w) = writers.remove(&conn) {
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
                            Input::StreamOpened { conn, kind, local, peer }
                        }
                        Ev::Data(conn, data) => Input::StreamData { conn, data },
                        Ev::Closed(conn) => {
                            writers.remove(&conn);
                            Input::StreamClosed { conn }
                        }
                        Ev::ConnectFailed(conn) => Input::ConnectFailed { conn },
                    };
                    core.handle_input(now(), input);
                }
                () = sleep => {
                    core.handle_input(now(), Input::Timeout);
                }
                () = &mut shutdown, if !shutdown_seen => {
                    shutdown_seen = true;
                    shutdown_deadline = Some(now() + self.limits.shutdown_grace);
                    core.handle_input(now(), Input::Shutdown);
                }
            }
        }
    }
}

/// The one clock read of the crate (style practice 2): the core gets time only from here.
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

fn spawn_conn(
    stream: TcpStream,
    id: ConnId,
    kind: StreamKind,
    peer: SocketAddr,
    tx: mpsc::UnboundedSender<Ev>,
    open: Arc<AtomicUsize>,
) {
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(_) => {
            let _ = tx.send(Ev::ConnectFailed(id));
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    open.fetch_add(1, Ordering::Relaxed);
    let (mut rd, mut wr) = stream.into_split();
    let (wtx, mut wrx) = mpsc::unbounded_channel::<WriterMsg>();
    let _ = tx.send(Ev::Opened(id, kind, local, peer, wtx));
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
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send(Ev::Data(id, Bytes::copy_from_slice(&buf[..n])))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        open.fetch_sub(1, Ordering::Relaxed);
        let _ = tx.send(Ev::Closed(id));
    });
}

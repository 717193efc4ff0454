//! How a request to an invitee or recipient travels: which transport, over which
//! connection, and what happens when that connection cannot be opened.
//!
//! In this order (RFC 3263 §4.1, RFC 3261 §18.1.1):
//! 1. the target URI's own choice: `sips:` or `transport=tls` → TLS, `transport=tcp` → TCP;
//! 2. a contact registered over a connection (TCP or TLS) that is still open gets the request
//!    over that connection, so a client behind NAT or with no listening port is reached (the
//!    idea of RFC 5626 without its headers, as Kamailio's connection alias does); the flow is
//!    only used when it is at least as secure as the URI asks. Once it has closed, the
//!    contact is reached as its URI says (`transport=tcp` → a new TCP connection, else UDP),
//!    unless it registered an outbound flow (RFC 5626 §6: `reg-id` and `+sip.instance` on
//!    its Contact, sent straight from the UA): then it is not reached at all until it
//!    registers a new flow (§5.3), and neither are requests in its dialogs;
//! 3. otherwise UDP, unless an invitee INVITE or a page-mode copy is larger than
//!    [`EndpointConfig::max_udp_request`] octets (§18.1.1 says 1300; im-server's default): it
//!    then goes over TCP, and when that connect fails it is sent again over UDP with a new
//!    branch (§18.1.1's fallback), so a UDP-only invitee is still reached. That destination
//!    then gets its large requests straight over UDP for [`TCP_REFUSED_FOR`].
//!
//! A request in a dialog whose connection has closed (our BYE after the invitee or the
//! originator dropped its connection) goes over a new connection to the dialog's remote
//! target, a CANCEL over a new one to where its INVITE went ([`Ctx::redial`], RFC 3261
//! §12.2.1.1, §18.1.1). A peer that asked to be reached over its flow only (`ob`, RFC 5626)
//! is lost with that flow, and an INVITE sent over a registration flow that has closed can
//! never be answered: their transactions end at once ([`Ctx::fail_now`]) instead of
//! waiting 64*T1. The connections we open are closed once no leg or session uses them
//! ([`OutConns`]).
//!
//! The registered flows are a [`PeerTransports`] table that the workers of one server share
//! (an accepted SIP connection is open in every worker, under the same id), so the worker
//! that runs a session uses a connection that another worker's REGISTER came over.

use super::super::*;
use super::*;

#[path = "late_answers.rs"]
mod late_answers;
#[path = "out_conns.rs"]
mod out_conns;
pub(crate) use late_answers::LateInvites;
pub(crate) use out_conns::OutConns;
use out_conns::SizedCopy;

/// The transport of a request to an invitee.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LegTransport {
    /// Datagrams to the destination.
    Udp,
    /// A TCP connection.
    Tcp,
    /// A TLS connection.
    Tls,
}

impl LegTransport {
    /// What a URI asks for (rule 1); `None`: nothing, the `sip:` default (UDP).
    pub(crate) fn asked_by(uri: &Uri) -> Option<LegTransport> {
        if uri.scheme().eq_ignore_ascii_case("sips") {
            return Some(LegTransport::Tls);
        }
        let t = uri
            .params()
            .find(|(n, _)| n.eq_ignore_ascii_case("transport"))
            .and_then(|(_, v)| v)?;
        if t.eq_ignore_ascii_case("tls") {
            Some(LegTransport::Tls)
        } else if t.eq_ignore_ascii_case("tcp") {
            Some(LegTransport::Tcp)
        } else {
            None
        }
    }

    /// The stream kind of a connection for this transport.
    fn stream_kind(self) -> StreamKind {
        StreamKind::Sip.secured(self == LegTransport::Tls)
    }
}

/// Where a leg's request goes and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LegRoute {
    /// Where the transaction layer sends it (a stream peer: the connection to it).
    pub(crate) peer: Peer,
    /// What its Via says.
    pub(crate) transport: LegTransport,
    /// A connection to `peer` must be asked for first (no registration flow carries it).
    pub(crate) connect: bool,
    /// TCP was chosen only for the request's size: a failed connect retries over UDP.
    pub(crate) for_size: bool,
}

/// A contact registered over a connection, or whose URI asks for a transport.
#[derive(Clone, Copy, Debug)]
struct Flow {
    /// The connection the REGISTER came over, its remote address and whether it is TLS.
    conn: Option<(ConnId, SocketAddr, bool)>,
    /// What the Contact URI asks for.
    uri: Option<LegTransport>,
    /// Registered as an outbound flow (RFC 5626 §6: `reg-id` and `+sip.instance`): the
    /// contact is reached over `conn` only, and not at all once it has closed (§5.3).
    outbound: bool,
    until: Instant,
}

/// Registered contacts that are reached other than by plain UDP, by contact address (what
/// the router returns). Plain UDP registrations leave nothing here.
#[derive(Debug, Default)]
struct Flows {
    by_contact: HashMap<SocketAddr, Flow>,
    /// Size after the last purge of expired entries; the next purge waits until it doubles,
    /// so purging costs O(1) amortised and the map stays within twice the live flows.
    purged_len: usize,
    /// Destinations whose TCP connect for a large INVITE failed, until when their large
    /// INVITEs go straight over UDP: a UDP-only invitee costs one failed connect per
    /// [`TCP_REFUSED_FOR`], not one per session. Bounded as `by_contact` is.
    refused_tcp: HashMap<SocketAddr, Instant>,
    refused_purged_len: usize,
}

/// How long a destination that refused TCP gets its large INVITEs over UDP directly.
pub(crate) const TCP_REFUSED_FOR: Duration = Duration::from_secs(300);

/// What the endpoint knows of how peers are reached (`endpoint/route_leg.rs`): contacts
/// registered over a connection (reached over it) or whose Contact URI asks for a
/// transport, and destinations that refused a TCP connect lately. Clones share one table:
/// give every worker endpoint of a server a clone of the same one
/// ([`EndpointConfig::peer_transports`]), since a REGISTER is handled by one worker and the
/// sessions that reach its contact by any.
#[derive(Clone, Debug, Default)]
pub struct PeerTransports(std::sync::Arc<std::sync::Mutex<Flows>>);

impl PeerTransports {
    fn lock(&self) -> std::sync::MutexGuard<'_, Flows> {
        // A panic elsewhere while holding it leaves a table that is still consistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Flows {
    fn note(&mut self, now: Instant, contact: SocketAddr, flow: Option<Flow>) {
        match flow {
            Some(f) => {
                self.by_contact.insert(contact, f);
            }
            None => {
                self.by_contact.remove(&contact);
            }
        }
        if self.by_contact.len() > 2 * self.purged_len + 64 {
            self.by_contact.retain(|_, f| f.until > now);
            self.purged_len = self.by_contact.len();
        }
    }

    fn refused(&mut self, now: Instant, addr: SocketAddr) {
        self.refused_tcp.insert(addr, now + TCP_REFUSED_FOR);
        if self.refused_tcp.len() > 2 * self.refused_purged_len + 64 {
            self.refused_tcp.retain(|_, until| *until > now);
            self.refused_purged_len = self.refused_tcp.len();
        }
    }

    fn refuses_tcp(&self, now: Instant, addr: SocketAddr) -> bool {
        self.refused_tcp
            .get(&addr)
            .is_some_and(|until| *until > now)
    }

    fn get(&self, now: Instant, contact: SocketAddr) -> Option<Flow> {
        self.by_contact
            .get(&contact)
            .filter(|f| f.until > now)
            .copied()
    }

    /// How many contacts are known (tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_contact.len()
    }
}

impl<A: Application> Ctx<'_, A> {
    /// Rules 1 and 2 for `uri`: its route and how to reach it; `None` when it cannot be
    /// reached (no route, or TLS asked of a server without TLS).
    pub(crate) fn route_leg(&self, uri: &Uri) -> Option<(LegRoute, Route)> {
        // TLS asked of a server without it: unroutable.
        self.leg_tls(uri)?;
        let asked = LegTransport::asked_by(uri);
        let tls_ok = self.cfg.sip_tls_advertised.is_some();
        let route = self.app.router().route(uri)?;
        let plain = |addr: SocketAddr, t: LegTransport| LegRoute {
            peer: Peer {
                addr,
                reliable: t != LegTransport::Udp,
            },
            transport: t,
            connect: t != LegTransport::Udp,
            for_size: false,
        };
        let r = match route {
            Route::OutboundProxy(p) => plain(p, asked.unwrap_or(LegTransport::Udp)),
            Route::Direct(a) => match self.cfg.peer_transports.lock().get(self.now, a) {
                Some(f) => {
                    let open = f.conn.filter(|(c, peer, tls)| {
                        self.sip_conn_by_peer.get(peer) == Some(c)
                            && (*tls || asked != Some(LegTransport::Tls))
                            && (!*tls || tls_ok)
                    });
                    match open {
                        Some((_, peer, tls)) => LegRoute {
                            peer: Peer {
                                addr: peer,
                                reliable: true,
                            },
                            transport: if tls {
                                LegTransport::Tls
                            } else {
                                LegTransport::Tcp
                            },
                            connect: false,
                            for_size: false,
                        },
                        None if f.outbound && f.conn.is_some() => {
                            // RFC 5626 §5.3: an outbound flow that has failed is not replaced
                            // by a connection of ours; the contact is unreachable until it
                            // registers a new flow.
                            tracing_log(
                                "leg",
                                &format!(
                                    "outbound flow of {} closed (RFC 5626 §5.3): not dialled",
                                    uri.raw()
                                ),
                            );
                            return None;
                        }
                        None => {
                            let t = asked.or(f.uri).unwrap_or(LegTransport::Udp);
                            if t == LegTransport::Tls && !tls_ok {
                                return None;
                            }
                            plain(a, t)
                        }
                    }
                }
                None => plain(a, asked.unwrap_or(LegTransport::Udp)),
            },
        };
        Some((r, route))
    }

    /// Rule 3: a request of `len` octets that would go over UDP goes over TCP when larger
    /// than the configured limit, unless its destination refused TCP lately. Returns
    /// whether it changed `r`.
    pub(crate) fn upgrade_for_size(&self, r: &mut LegRoute, len: usize) -> bool {
        let limit = self.cfg.max_udp_request;
        if r.transport != LegTransport::Udp
            || limit == 0
            || len <= limit
            || self
                .cfg
                .peer_transports
                .lock()
                .refuses_tcp(self.now, r.peer.addr)
        {
            return false;
        }
        *r = LegRoute {
            peer: Peer {
                addr: r.peer.addr,
                reliable: true,
            },
            transport: LegTransport::Tcp,
            connect: true,
            for_size: true,
        };
        true
    }

    /// Rule 3 for page-mode copy `m` (Via branch `branch`) routed by `r`, as for an invitee
    /// INVITE: over the limit, and its destination not known to refuse TCP, it goes over
    /// TCP (`r` changed, the copy's Via saying TCP). Returns the copy to send and whether
    /// TCP was chosen for its size alone.
    pub(crate) fn size_copy(&self, r: &mut LegRoute, m: Message, branch: &str) -> (Message, bool) {
        let before = *r;
        if !self.upgrade_for_size(r, m.as_bytes().len()) {
            return (m, false);
        }
        let (via, _) = self.via_contact(LegTransport::Tcp, "", branch);
        match rewrite(&m, &via, None) {
            Some(t) => (t, true),
            None => {
                *r = before;
                (m, false)
            }
        }
    }

    /// Copy `m` of session `sid` went on transaction `key` over TCP for its size alone to
    /// `to`: kept while the connect is under way, to be sent over UDP if it fails.
    pub(crate) fn sized_copy_sent(
        &mut self,
        to: SocketAddr,
        sid: SessionId,
        key: TsxKey,
        m: Message,
        hold: bool,
    ) {
        if self.sip_tls.connecting(to) {
            self.sip_tls
                .out
                .sized_copies
                .entry(to)
                .or_default()
                .push(SizedCopy {
                    sid,
                    key,
                    msg: m,
                    hold,
                });
        }
    }

    /// Asks for the connection `r` needs, unless one is open or being opened; what the
    /// transaction layer sends meanwhile waits for it. `holder` (a leg of a session, or the
    /// session itself for a page-mode copy) holds that connection until it ends
    /// ([`OutConns`]).
    pub(crate) fn open_leg(&mut self, r: &LegRoute, holder: (SessionId, Option<usize>)) {
        if r.connect {
            self.sip_tls.connect(
                self.sip_conn_by_peer,
                self.out,
                r.peer.addr,
                r.transport.stream_kind(),
            );
            self.sip_tls.out.hold(
                holder,
                r.peer.addr,
                r.transport.stream_kind(),
                self.sip_conn_by_peer,
                self.out,
            );
        }
    }

    /// Leg `leg` of session `sid` ended (failed, or its dialog BYE'd): it no longer holds
    /// the connections it reached its invitee over.
    pub(crate) fn leg_ended(&mut self, sid: SessionId, leg: usize) {
        self.sip_tls
            .out
            .leg_ended(sid, leg, self.sip_conn_by_peer, self.out);
    }

    /// Before an in-dialog request on dialog `d` of `holder` (our BYE to an invitee, leg
    /// `Some(i)`, or to the originator, `None`): when the dialog runs over a connection
    /// that has closed, a new one is opened to the remote target (the first Route of its
    /// route set, else its Contact; RFC 3261 §12.2.1.1, §18.1.1), over TLS when the dialog
    /// is secured, else TCP, and the dialog's requests go there from now on. The request
    /// waits for the connect; if it fails, the request's transaction ends with a transport
    /// error as any other.
    ///
    /// Returns whether the request can travel. It cannot when the peer asked to be reached
    /// only over its flow (RFC 5626 §4.3, §5.3: `ob` in its Contact, no route set to a
    /// proxy that would hold the flow) and that flow has closed, or when the remote target
    /// cannot be routed: the caller ends the request's transaction at once rather than
    /// after Timer F.
    pub(crate) fn redial(&mut self, d: &mut Dialog, holder: (SessionId, Option<usize>)) -> bool {
        if !d.peer.reliable
            || self.sip_conn_by_peer.contains_key(&d.peer.addr)
            || self.sip_tls.connecting(d.peer.addr)
        {
            return true;
        }
        let target = match d.route_set.first() {
            Some(r) => crate::proto::sip::parse_name_addrs(r)
                .ok()
                .and_then(|v| v.into_iter().next())
                .map(|na| na.uri().as_str().to_string()),
            None => Some(d.remote_target.clone()),
        };
        let target = target.unwrap_or_default();
        let Ok(uri) = crate::proto::sip::Uri::parse(&target) else {
            tracing_log(
                "sip",
                &format!(
                    "connection to {} closed and its dialog's target is not a URI: request not sent",
                    d.peer.addr
                ),
            );
            return false;
        };
        if d.route_set.is_empty() && flow_only(&uri) {
            tracing_log(
                "sip",
                &format!(
                    "flow to {} closed and {} asks to be reached over it only (ob, RFC 5626 §5.3): request not sent; the peer is lost",
                    d.peer.addr, d.remote_target
                ),
            );
            return false;
        }
        let to = match self.app.router().route(&uri.to_view()) {
            Some(Route::Direct(a) | Route::OutboundProxy(a)) => a,
            None => {
                tracing_log(
                    "sip",
                    &format!(
                        "connection to {} closed and no route to {}: request not sent",
                        d.peer.addr, d.remote_target
                    ),
                );
                return false;
            }
        };
        // The target registered an outbound flow (RFC 5626 §5.3): its requests go over
        // the flow it registered last while that is open, and are not sent once it has
        // closed, whatever its Contact URI says (the `ob` of the check above, read from
        // the binding).
        let outbound = self
            .cfg
            .peer_transports
            .lock()
            .get(self.now, to)
            .filter(|f| f.outbound && d.route_set.is_empty());
        if let Some(f) = outbound {
            if let Some((_, peer, _)) = f
                .conn
                .filter(|(c, peer, _)| self.sip_conn_by_peer.get(peer) == Some(c))
            {
                d.peer = Peer {
                    addr: peer,
                    reliable: true,
                };
                return true;
            }
            tracing_log(
                "sip",
                &format!(
                    "outbound flow of {} closed (RFC 5626 §5.3): request not sent; the peer is lost",
                    d.remote_target
                ),
            );
            return false;
        }
        let kind = if d.tls.is_some() {
            StreamKind::SipTls
        } else {
            StreamKind::Sip
        };
        tracing_log(
            "sip",
            &format!(
                "connection to {} closed: new connection to {to} for the dialog",
                d.peer.addr
            ),
        );
        d.peer = Peer {
            addr: to,
            reliable: true,
        };
        self.sip_tls
            .connect(self.sip_conn_by_peer, self.out, to, kind);
        self.sip_tls
            .out
            .hold(holder, to, kind, self.sip_conn_by_peer, self.out);
        true
    }

    /// Before a CANCEL of session `sid` to `peer` (§9.1: where its INVITE went): when that
    /// INVITE went over a connection of ours that has closed, a new one is opened to the
    /// same destination. Returns whether the CANCEL can travel: not when the INVITE went
    /// over a connection the invitee opened (its registration flow) that has closed, since
    /// its source port listens for nothing and no answer to the INVITE can come back but
    /// over that flow (RFC 5626 §5.3): the caller ends the INVITE then.
    pub(crate) fn redial_peer(&mut self, peer: Peer, sid: SessionId) -> bool {
        if !peer.reliable
            || self.sip_conn_by_peer.contains_key(&peer.addr)
            || self.sip_tls.connecting(peer.addr)
        {
            return true;
        }
        let Some(kind) = self.sip_tls.out.held_kind(sid, peer.addr) else {
            return false;
        };
        self.sip_tls
            .connect(self.sip_conn_by_peer, self.out, peer.addr, kind);
        true
    }

    /// Ends client transaction `key` at once with a transport error (RFC 3261 §8.1.3.1,
    /// §17.1.4): its request cannot reach the peer, so its session hears the timeout now
    /// (Timer B or F) rather than after 64*T1. The endpoint carries the event out once the
    /// current input is handled.
    pub(crate) fn fail_now(&mut self, key: &TsxKey) {
        let _ = self.tsx.handle_transport_error(Role::Client, key);
    }

    /// Via and Contact of a request sent over `t`. Over TCP: `SIP/2.0/TCP` from our SIP
    /// address (the TCP listener shares it with UDP) and a Contact there with
    /// `transport=tcp`, so that the invitee's requests in the dialog come back over TCP.
    pub(crate) fn via_contact(
        &self,
        t: LegTransport,
        focus: &str,
        branch: &str,
    ) -> (String, String) {
        match t {
            LegTransport::Tcp => (
                format!(
                    "SIP/2.0/TCP {};branch={branch};rport",
                    self.cfg.sip_advertised
                ),
                tcp_contact(focus, self.cfg.sip_advertised),
            ),
            t => self.leg_via_contact(t == LegTransport::Tls, focus, branch),
        }
    }
}

/// Whether `uri` (a peer's Contact) asks that requests reach it only over the flow it
/// opened: the `ob` parameter (RFC 5626 §4.3, §5.4). A contact registered as an outbound
/// flow says so by its binding instead ([`Ctx::redial`] reads it from [`PeerTransports`]).
fn flow_only(uri: &crate::proto::sip::Uri<'_>) -> bool {
    uri.param("ob").is_some()
}

/// The TCP Contact of focus `focus`: its user part at our SIP address.
fn tcp_contact(focus: &str, sip: SocketAddr) -> String {
    let user = focus
        .split_once(':')
        .and_then(|(_, r)| r.split_once('@'))
        .map_or("conf", |(u, _)| u);
    format!("<sip:{user}@{sip};transport=tcp>")
}

impl<A: Application> Endpoint<A> {
    /// A REGISTER from `peer` was applied: remember which of its contacts are reached over
    /// its connection (rule 2) or ask for a transport in their URI.
    /// `outbound[i]`: binding `i` registers an outbound flow (RFC 5626 §6; the registrar's
    /// `outbound_flow`), which only a REGISTER over a connection can.
    pub(in crate::endpoint) fn note_flows(
        &mut self,
        now: Instant,
        peer: Peer,
        change: &RegisterChange,
        outbound: &[bool],
    ) {
        let RegisterChange::Update(bindings) = change else {
            // `Contact: *`: the router no longer returns these contacts; their entries
            // expire unused.
            return;
        };
        let conn = self.stream_of(peer).map(|c| {
            let tls = self.sip_tls.peer_tls(&self.sip_conn_by_peer, peer);
            (c, peer.addr, tls)
        });
        for (i, b) in bindings.iter().enumerate() {
            let uri = crate::proto::sip::Uri::parse(&b.uri)
                .ok()
                .and_then(|u| LegTransport::asked_by(&u.to_view()));
            let flow = (b.expires > 0 && (conn.is_some() || uri.is_some())).then(|| Flow {
                conn,
                uri,
                outbound: conn.is_some() && outbound.get(i).copied().unwrap_or(false),
                until: now + Duration::from_secs(u64::from(b.expires)),
            });
            self.cfg.peer_transports.lock().note(now, b.addr, flow);
        }
    }

    /// Our connect to `addr` failed: the INVITEs that went over TCP for their size alone
    /// are sent again over UDP (RFC 3261 §18.1.1). Returns the keys of the transactions
    /// they leave, to be ended by the caller (their end fails no leg). A scan of the
    /// sessions, on this rare failure only.
    pub(in crate::endpoint) fn retry_over_udp(
        &mut self,
        now: Instant,
        addr: SocketAddr,
    ) -> Vec<TsxKey> {
        let ids: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.retries_over_udp(addr))
            .map(|(id, _)| *id)
            .collect();
        let copies = self
            .sip_tls
            .out
            .sized_copies
            .remove(&addr)
            .unwrap_or_default();
        if !ids.is_empty() || !copies.is_empty() {
            self.cfg.peer_transports.lock().refused(now, addr);
        }
        let mut keys = Vec::new();
        for c in copies {
            keys.push(c.key.clone());
            let mut s = self.sessions.remove(&c.sid);
            let mut cx = self.ctx(now);
            let branch = format!("{}{}", tsx::MAGIC_COOKIE, cx.ids.token(1));
            let (via, _) = cx.via_contact(LegTransport::Udp, "", &branch);
            if let Some(m) = rewrite(&c.msg, &via, None) {
                tracing_log(
                    "page-mode",
                    &format!("no TCP connection to {addr}: MESSAGE sent again over UDP"),
                );
                let peer = Peer {
                    addr,
                    reliable: false,
                };
                // A session already gone (no report waits for this copy) holds nothing.
                let hold = c.hold && s.is_some();
                if let Some((key, holds, _)) = cx.send_request_holding(&m, peer, c.sid, None, hold)
                    && let Some(s) = s.as_mut()
                {
                    s.track(holds);
                    s.copy_rekeyed(&c.key, key);
                }
            }
            if let Some(s) = s {
                self.sessions.insert(c.sid, s);
                self.dirty.push(c.sid);
            }
        }
        for id in ids {
            let Some(mut s) = self.sessions.remove(&id) else {
                continue;
            };
            let mut cx = self.ctx(now);
            keys.extend(s.retry_over_udp(&mut cx, addr));
            self.sessions.insert(id, s);
            self.dirty.push(id);
        }
        keys
    }
}

impl Session {
    fn retries_over_udp(&self, addr: SocketAddr) -> bool {
        self.legs.iter().any(|l| l.udp_retry_to(addr))
    }

    /// Sends again over UDP the INVITEs of legs that went to `addr` over TCP for their size.
    fn retry_over_udp<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        addr: SocketAddr,
    ) -> Vec<TsxKey> {
        let mut old = Vec::new();
        for i in 0..self.legs.len() {
            let Some(l) = self.legs.get_mut(i) else {
                continue;
            };
            if !l.udp_retry_to(addr) {
                continue;
            }
            l.udp_retry = false;
            let Some(inv) = l.invite.as_deref() else {
                continue;
            };
            let branch = format!("{}{}", tsx::MAGIC_COOKIE, cx.ids.token(1));
            let Some(m) = over_udp(cx, inv, &self.focus, &branch) else {
                continue;
            };
            let peer = Peer {
                addr,
                reliable: false,
            };
            tracing_log(
                "leg",
                &format!("no TCP connection to {addr}: INVITE sent again over UDP"),
            );
            if let Some((key, holds, _)) = cx.send_request(&m, peer, self.id, Some(i)) {
                self.track(holds);
                if let Some(l) = self.legs.get_mut(i) {
                    old.extend(l.invite_key.replace(key));
                    l.peer = Some(peer);
                    l.invite = Some(Box::new(m));
                }
            }
        }
        old
    }
}

impl Leg {
    /// Whether the leg's INVITE waits for a TCP connect to `addr` chosen for its size (and
    /// was not CANCELled meanwhile: that leg just fails).
    fn udp_retry_to(&self, addr: SocketAddr) -> bool {
        self.udp_retry
            && !self.cancelled
            && self.status == LegStatus::Pending
            && self.peer.is_some_and(|p| p.addr == addr && p.reliable)
    }
}

/// `inv` (built by `invite_each` for TCP) as it is sent over UDP: its Via and Contact
/// changed, nothing else.
fn over_udp<A: Application>(
    cx: &Ctx<'_, A>,
    inv: &Message,
    focus: &str,
    branch: &str,
) -> Option<Message> {
    let (udp_via, udp_contact) = cx.via_contact(LegTransport::Udp, focus, branch);
    let tcp_contact = tcp_contact(focus, cx.cfg.sip_advertised);
    rewrite(inv, &udp_via, Some((&tcp_contact, &udp_contact)))
}

/// `m` with its top Via's value `via` and, when given, Contact `from` replaced by `to`.
fn rewrite(m: &Message, udp_via: &str, contact: Option<(&str, &str)>) -> Option<Message> {
    let text = std::str::from_utf8(m.as_bytes()).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut out = String::with_capacity(text.len() + 16);
    let mut via_done = false;
    for line in head.split("\r\n") {
        match line.split_once(':') {
            Some((name, _)) if !via_done && name.eq_ignore_ascii_case("via") => {
                via_done = true;
                out.push_str("Via: ");
                out.push_str(udp_via);
            }
            Some((name, _)) if name.eq_ignore_ascii_case("contact") => match contact {
                Some((from, to)) => out.push_str(&line.replacen(from, to, 1)),
                None => out.push_str(line),
            },
            _ => out.push_str(line),
        }
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(body);
    Message::parse(Bytes::from(out)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        crate::proto::sip::Uri::parse(s).unwrap().to_view()
    }

    #[test]
    fn the_uri_asks_for_its_transport() {
        assert_eq!(LegTransport::asked_by(&uri("sip:a@192.0.2.1")), None);
        assert_eq!(
            LegTransport::asked_by(&uri("sip:a@192.0.2.1;transport=TCP")),
            Some(LegTransport::Tcp)
        );
        assert_eq!(
            LegTransport::asked_by(&uri("sip:a@192.0.2.1;transport=tls")),
            Some(LegTransport::Tls)
        );
        assert_eq!(
            LegTransport::asked_by(&uri("sips:a@192.0.2.1")),
            Some(LegTransport::Tls)
        );
        assert_eq!(
            LegTransport::asked_by(&uri("sip:a@192.0.2.1;transport=udp")),
            None
        );
    }

    #[test]
    fn flows_expire_and_stay_bounded() {
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let mut f = Flows::default();
        let flow = |until| Flow {
            conn: None,
            uri: Some(LegTransport::Tcp),
            outbound: false,
            until,
        };
        let a: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        f.note(t0, a, Some(flow(t0 + Duration::from_secs(60))));
        assert!(f.get(t0, a).is_some());
        assert!(f.get(t0 + Duration::from_secs(61), a).is_none());
        f.note(t0, a, None);
        assert!(f.get(t0, a).is_none());
        // Many short registrations: the expired ones are purged as the map grows.
        for i in 0..1000u16 {
            let later = t0 + Duration::from_secs(u64::from(i));
            let c = SocketAddr::new(a.ip(), 10_000 + i);
            f.note(later, c, Some(flow(later + Duration::from_secs(1))));
        }
        assert!(f.len() < 200, "{}", f.len());
    }

    #[test]
    fn the_tcp_contact_names_the_focus_user() {
        let sip: SocketAddr = "192.0.2.9:5060".parse().unwrap();
        assert_eq!(
            tcp_contact("sip:conf-x@192.0.2.9:5060", sip),
            "<sip:conf-x@192.0.2.9:5060;transport=tcp>"
        );
        assert_eq!(
            tcp_contact("sip:conf-y@192.0.2.9:5061;transport=tls", sip),
            "<sip:conf-y@192.0.2.9:5060;transport=tcp>"
        );
    }
}

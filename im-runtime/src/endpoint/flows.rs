//! The table of registered flows ([`PeerTransports`]): which contacts are reached over
//! the connection their REGISTER came over or by the transport their URI asks for, and
//! which destinations refused a TCP connect lately (rules 2 and 3 of `route_leg.rs`).

use super::super::super::*;
use super::*;

/// A contact registered over a connection, or whose URI asks for a transport, or through
/// proxies that asked to stay on the path to it (RFC 3327 `Path`).
#[derive(Clone, Debug)]
pub(super) struct Flow {
    /// The connection the REGISTER came over, its remote address and whether it is TLS.
    pub(super) conn: Option<(ConnId, SocketAddr, bool)>,
    /// What the Contact URI asks for.
    pub(super) uri: Option<LegTransport>,
    /// Registered as an outbound flow (RFC 5626 §6: `reg-id` and `+sip.instance`): the
    /// contact is reached over `conn` only, and not at all once it has closed (§5.3).
    pub(super) outbound: bool,
    /// The REGISTER's Path (RFC 3327 §5.3): the route set of requests to the contact.
    pub(super) path: Option<RegisteredPath>,
    pub(super) until: Instant,
}

/// The Path a contact registered with (RFC 3327 §5.3), as requests to it use it (§5.3: the
/// registrar's proxy pre-loads it as Route headers): the values in order, and where the
/// first one is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(in crate::endpoint) struct RegisteredPath {
    /// The Path values as received, top first: the Route headers of requests to the contact.
    pub(in crate::endpoint) routes: std::sync::Arc<[String]>,
    /// Where the first value points (its IP address and port; the REGISTER's source when it
    /// names a host the sans-IO core does not resolve), and the transport its URI asks for.
    pub(in crate::endpoint) hop: SocketAddr,
    pub(in crate::endpoint) transport: Option<LegTransport>,
}

/// Registered contacts that are reached other than by plain UDP, by contact address (what
/// the router returns). Plain UDP registrations leave nothing here.
#[derive(Debug, Default)]
pub(super) struct Flows {
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
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Flows> {
        // A panic elsewhere while holding it leaves a table that is still consistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Flows {
    pub(super) fn note(&mut self, now: Instant, contact: SocketAddr, flow: Option<Flow>) {
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

    pub(super) fn refused(&mut self, now: Instant, addr: SocketAddr) {
        self.refused_tcp.insert(addr, now + TCP_REFUSED_FOR);
        if self.refused_tcp.len() > 2 * self.refused_purged_len + 64 {
            self.refused_tcp.retain(|_, until| *until > now);
            self.refused_purged_len = self.refused_tcp.len();
        }
    }

    pub(super) fn refuses_tcp(&self, now: Instant, addr: SocketAddr) -> bool {
        self.refused_tcp
            .get(&addr)
            .is_some_and(|until| *until > now)
    }

    pub(super) fn get(&self, now: Instant, contact: SocketAddr) -> Option<Flow> {
        self.by_contact
            .get(&contact)
            .filter(|f| f.until > now)
            .cloned()
    }

    /// How many contacts are known (tests).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.by_contact.len()
    }
}

impl<A: Application> Endpoint<A> {
    /// A REGISTER from `peer` was applied: remember which of its contacts are reached over
    /// its connection (rule 2) or ask for a transport in their URI.
    /// `outbound[i]`: binding `i` registers an outbound flow (RFC 5626 §6; the registrar's
    /// `outbound_flow`), which only a REGISTER over a connection can. `path`: the REGISTER's
    /// Path (RFC 3327), kept with each of its bindings.
    pub(in crate::endpoint) fn note_flows(
        &mut self,
        now: Instant,
        peer: Peer,
        change: &RegisterChange,
        outbound: &[bool],
        path: Option<&RegisteredPath>,
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
            let flow =
                (b.expires > 0 && (conn.is_some() || uri.is_some() || path.is_some())).then(|| {
                    Flow {
                        conn,
                        uri,
                        // Through an edge proxy (Path), the flow is the proxy's to keep (RFC 5626
                        // §5.3: it answers 430 when it fails), not ours: requests go by the Path.
                        outbound: conn.is_some()
                            && path.is_none()
                            && outbound.get(i).copied().unwrap_or(false),
                        path: path.cloned(),
                        until: now + Duration::from_secs(u64::from(b.expires)),
                    }
                });
            self.cfg.peer_transports.lock().note(now, b.addr, flow);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows_expire_and_stay_bounded() {
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let mut f = Flows::default();
        let flow = |until| Flow {
            conn: None,
            uri: Some(LegTransport::Tcp),
            outbound: false,
            path: None,
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
}

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
#[path = "flows.rs"]
mod flows;
#[path = "redial.rs"]
mod redial;
#[path = "udp_fallback.rs"]
mod udp_fallback;
use flows::Flow;
pub use flows::PeerTransports;
pub(in crate::endpoint) use flows::RegisteredPath;
#[allow(unused_imports)] // the module docs link to it
use flows::TCP_REFUSED_FOR;
use udp_fallback::rewrite;

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

impl<A: Application> Ctx<'_, A> {
    /// Rules 1 and 2 for `uri`: its route and how to reach it; `None` when it cannot be
    /// reached (no route, or TLS asked of a server without TLS).
    ///
    /// The third value is the route set to pre-load as Route headers: the Path the contact
    /// registered with (RFC 3327 §5.3), whose first hop the request then goes to.
    #[allow(clippy::type_complexity)]
    pub(crate) fn route_leg(
        &self,
        uri: &Uri,
    ) -> Option<(LegRoute, Route, Option<std::sync::Arc<[String]>>)> {
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
                Some(Flow {
                    path: Some(p),
                    conn,
                    ..
                }) => {
                    // Registered through proxies (RFC 3327 §5.3): to the first Path hop,
                    // over the connection the REGISTER came over when that is the hop's
                    // and still open, else as the hop's URI asks.
                    let open = conn.filter(|(c, peer, tls)| {
                        *peer == p.hop
                            && self.sip_conn_by_peer.get(peer) == Some(c)
                            && (!*tls || tls_ok)
                    });
                    let r = match open {
                        Some((_, peer, tls)) => over_open(peer, tls),
                        None => {
                            let t = p.transport.unwrap_or(LegTransport::Udp);
                            if t == LegTransport::Tls && !tls_ok {
                                return None;
                            }
                            plain(p.hop, t)
                        }
                    };
                    return Some((r, route, Some(p.routes)));
                }
                Some(f) => {
                    let open = f.conn.filter(|(c, peer, tls)| {
                        self.sip_conn_by_peer.get(peer) == Some(c)
                            && (*tls || asked != Some(LegTransport::Tls))
                            && (!*tls || tls_ok)
                    });
                    match open {
                        Some((_, peer, tls)) => over_open(peer, tls),
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
        Some((r, route, None))
    }

    /// Whether `uri` cannot be reached because the outbound flow it registered has closed
    /// and it has registered no other (RFC 5626 §5.3): a request for it fails with 430 Flow
    /// Failed, as an edge proxy would answer (§11.5), rather than as unroutable.
    pub(crate) fn flow_failed(&self, uri: &Uri) -> bool {
        let Some(Route::Direct(a)) = self.app.router().route(uri) else {
            return false;
        };
        self.cfg
            .peer_transports
            .lock()
            .get(self.now, a)
            .is_some_and(|f| {
                f.outbound
                    && f.conn
                        .is_some_and(|(c, peer, _)| self.sip_conn_by_peer.get(&peer) != Some(&c))
            })
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
        let via = self.via(LegTransport::Tcp, branch);
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
                self.via(t, branch),
                tcp_contact(focus, self.cfg.sip_advertised),
            ),
            t => self.leg_via_contact(t == LegTransport::Tls, focus, branch),
        }
    }

    /// The Via of [`Self::via_contact`] alone, for a request that carries no Contact (a
    /// page-mode copy, one sent again over another transport): the Contact is not written.
    pub(crate) fn via(&self, t: LegTransport, branch: &str) -> String {
        match t {
            LegTransport::Tcp => format!(
                "SIP/2.0/TCP {};branch={branch};rport",
                self.cfg.sip_advertised
            ),
            t => self.leg_via(t == LegTransport::Tls, branch),
        }
    }
}

/// The TCP Contact of focus `focus`: its user part at our SIP address.
fn tcp_contact(focus: &str, sip: SocketAddr) -> String {
    let user = focus
        .split_once(':')
        .and_then(|(_, r)| r.split_once('@'))
        .map_or("conf", |(u, _)| u);
    format!("<sip:{user}@{sip};transport=tcp>")
}

/// The route over a stream connection that is already open to `peer` (TLS when `tls`).
fn over_open(peer: SocketAddr, tls: bool) -> LegRoute {
    LegRoute {
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
    }
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

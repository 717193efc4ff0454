//! Where TLS reaches the endpoint: a request that came over a TLS connection gets a focus
//! (Contact) that leads back over TLS and a dialog whose requests say `TLS` in Via
//! (RFC 3261 §26.2, RFC 5630); a `TCP/TLS/MSRP` offer is answered from the MSRP-over-TLS
//! address with an `msrps:` path (RFC 4975 §14). The IO layer does the TLS itself.
//!
//! The TLS state ([`SipTls`]: which SIP connections are TLS, our connects under way) is an
//! endpoint field lent to sessions in their [`Ctx`], so a session decides a leg's transport
//! and opens its connection without seeing any endpoint map.

use super::*;
use crate::Uri;
use crate::machine::SdpFacts;
use session::{msrp_path, own_msrp_path, push_addr};

/// SIP-over-TLS connection state shared by the endpoint (which sees connections open,
/// close and fail) and sessions (which ask for connects to their invitees).
#[derive(Default)]
pub(crate) struct SipTls {
    /// Open SIP connections that are TLS: what arrives on them was secured.
    conns: HashSet<ConnId>,
    /// Our connects asked for and not yet open, by peer: their id and the bytes the
    /// transaction layer sent before the handshake was done.
    pending: HashMap<SocketAddr, (ConnId, Vec<Bytes>)>,
    next: u64,
    /// Which sessions use the connections we open (`route_leg.rs`).
    pub(crate) out: session::route_leg::OutConns,
}

/// Ids of our outgoing SIP connections: above the MSRP relay's (which count from 1) and below
/// the IO layer's shard bits.
const SIP_CONN_BASE: u64 = 1 << 40;

impl SipTls {
    /// Whether `peer` reached us over a TLS connection that is still open.
    pub(crate) fn peer_tls(&self, by_peer: &HashMap<SocketAddr, ConnId>, peer: Peer) -> bool {
        peer.reliable
            && by_peer
                .get(&peer.addr)
                .is_some_and(|c| self.conns.contains(c))
    }

    /// SIP connection `conn` opened (accepted or ours); `tls` when it is TLS.
    pub(crate) fn opened(&mut self, conn: ConnId, tls: bool) {
        if tls {
            self.conns.insert(conn);
        }
    }

    /// SIP connection `conn` is gone.
    pub(crate) fn closed(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
    }

    /// Whether our connect to `to` is under way.
    pub(crate) fn connecting(&self, to: SocketAddr) -> bool {
        self.pending.contains_key(&to)
    }

    /// Keeps `data` for `to` while its connection is being opened; gives it back otherwise.
    pub(crate) fn queue(&mut self, to: SocketAddr, data: Bytes) -> Option<Bytes> {
        match self.pending.get_mut(&to) {
            Some((_, q)) => {
                q.push(data);
                None
            }
            None => Some(data),
        }
    }

    /// Opens a `kind` connection (TLS or TCP) to `to` for SIP unless one is open or being
    /// opened.
    pub(crate) fn connect(
        &mut self,
        by_peer: &HashMap<SocketAddr, ConnId>,
        out: &mut VecDeque<Output>,
        to: SocketAddr,
        kind: StreamKind,
    ) {
        if by_peer.contains_key(&to) || self.pending.contains_key(&to) {
            return;
        }
        self.next += 1;
        let conn = ConnId(SIP_CONN_BASE | self.next);
        self.pending.insert(to, (conn, Vec::new()));
        out.push_back(Output::Connect { conn, kind, to });
    }
}

/// The sent-by of `SIP/2.0/TLS` for a dialog with `peer`, when it is over TLS.
fn dialog_tls(
    cfg: &EndpointConfig,
    tls: &SipTls,
    by_peer: &HashMap<SocketAddr, ConnId>,
    peer: Peer,
) -> Option<SocketAddr> {
    cfg.sip_tls_advertised
        .filter(|_| tls.peer_tls(by_peer, peer))
}

impl<A: Application> Endpoint<A> {
    /// The focus URI (`user@` our address) of a session whose request `msg` came from
    /// `peer`. Over TLS it names our TLS address: `sips:` when the Request-URI was `sips:`
    /// (RFC 5630 §4.1: a `sips:` request gets a `sips:` Contact), else `sip:` with
    /// `transport=tls`, which clients that reached us over TLS with a `sip:` URI understand
    /// (RFC 3261 deprecates the value, but a bare `sip:` would send them to our UDP port).
    pub(super) fn focus_uri(&self, user: &str, peer: Peer, msg: &Message) -> String {
        let sips = msg
            .request_uri_str()
            .and_then(|u| u.get(..5))
            .is_some_and(|s| s.eq_ignore_ascii_case("sips:"));
        match dialog_tls(&self.cfg, &self.sip_tls, &self.sip_conn_by_peer, peer) {
            Some(a) if sips => format!("sips:{user}@{a}"),
            Some(a) => format!("sip:{user}@{a};transport=tls"),
            None => {
                // Once per session; written piece by piece.
                let mut s = String::with_capacity(user.len() + 26);
                s.push_str("sip:");
                s.push_str(user);
                s.push('@');
                push_addr(&mut s, self.cfg.sip_advertised);
                s
            }
        }
    }

    /// Our connection `conn` is open: send what waited for it.
    pub(super) fn sip_conn_opened(&mut self, conn: ConnId, peer: SocketAddr) {
        if let Some((c, q)) = self.sip_tls.pending.remove(&peer) {
            debug_assert_eq!(c, conn);
            for data in q {
                self.out.push_back(Output::StreamSend { conn, data });
            }
        }
        self.sip_tls.out.opened(conn, peer, &mut self.out);
    }

    /// Whether `conn` was one of our SIP connects, now failed (refused, timed out, or the
    /// peer's certificate not trusted): what waited is dropped, and the INVITEs of the legs
    /// towards that peer end with a transport error (RFC 3261 §17.1.4), which fails those
    /// legs at once as Timer B would; an INVITE that went over TCP for its size alone goes
    /// again over UDP instead (`route_leg.rs`), and so does a page-mode copy; another copy
    /// to it ends by Timer F. The
    /// scan over the sessions runs only on this rare failure.
    pub(super) fn sip_connect_failed(&mut self, now: Instant, conn: ConnId) -> bool {
        let peer = self
            .sip_tls
            .pending
            .iter()
            .find(|(_, (c, _))| *c == conn)
            .map(|(p, _)| *p);
        let Some(p) = peer else {
            return false;
        };
        self.sip_tls.pending.remove(&p);
        tracing_log("sip", &format!("SIP connection to {p} failed"));
        let mut keys = self.retry_over_udp(now, p);
        keys.extend(self.sessions.values().flat_map(|s| s.pending_invites_to(p)));
        for k in keys {
            let _ = self.tsx.handle_transport_error(Role::Client, &k);
        }
        self.drain_tsx(now);
        true
    }
}

impl<A: Application> Ctx<'_, A> {
    /// The sent-by of `SIP/2.0/TLS` for a dialog with `peer`, when it is over TLS.
    pub(crate) fn dialog_tls(&self, peer: Peer) -> Option<SocketAddr> {
        dialog_tls(self.cfg, self.sip_tls, self.sip_conn_by_peer, peer)
    }

    /// The MSRP address and own path to answer `offer` with: the TLS ones when its MSRP
    /// media is `TCP/TLS/MSRP` and TLS is configured. Otherwise the plain ones; with a TLS
    /// offer the answer builder then refuses (488), since a TLS offer cannot be answered
    /// in clear.
    pub(crate) fn msrp_own(&self, offer: &SdpFacts, sid: &str) -> (SocketAddr, String) {
        let tls = offer
            .media
            .iter()
            .find(|m| crate::proto::sdp::msrp::is_msrp(m.media(), m.proto()))
            .is_some_and(|m| answer::is_tls_proto(m.proto()));
        match self.cfg.msrp_tls_advertised {
            Some(a) if tls => (a, msrp_path("msrps://", a, sid)),
            _ => (
                self.cfg.msrp_advertised,
                own_msrp_path(self.cfg.msrp_advertised, sid),
            ),
        }
    }

    /// Whether the INVITE to invitee `uri` goes over TLS: a `sips:` URI (RFC 5630: TLS on
    /// every hop) or one with `transport=tls`. `None`: it wants TLS and this server has none.
    pub(crate) fn leg_tls(&self, uri: &Uri) -> Option<bool> {
        let wants = uri.scheme().eq_ignore_ascii_case("sips")
            || uri
                .params()
                .any(|(n, v)| n == "transport" && v.is_some_and(|v| v.eq_ignore_ascii_case("tls")));
        match (wants, self.cfg.sip_tls_advertised) {
            (true, None) => None,
            (w, _) => Some(w),
        }
    }

    /// The MSRP address, own path and offer options for an invitee leg: an INVITE that goes
    /// over TLS offers MSRP over TLS (`TCP/TLS/MSRP`, an `msrps:` path on the TLS port). The
    /// path's session id is what admits a connection to the session, so it is only kept
    /// secret when the SIP leg that carries it is secured; a leg over UDP gets plain MSRP.
    pub(crate) fn leg_media(&self, tls: bool, sid: &str) -> (SocketAddr, String, OfferOptions) {
        match self.cfg.msrp_tls_advertised {
            Some(a) if tls => (
                a,
                msrp_path("msrps://", a, sid),
                OfferOptions {
                    tls: true,
                    ..OfferOptions::default()
                },
            ),
            _ => (
                self.cfg.msrp_advertised,
                own_msrp_path(self.cfg.msrp_advertised, sid),
                OfferOptions::default(),
            ),
        }
    }

    /// Via and Contact of a request to an invitee or recipient: over TLS, `SIP/2.0/TLS` from
    /// our TLS address and a `sips:` Contact there (RFC 5630 §3.1.3: a `sips:` request carries
    /// a `sips:` Contact); else `SIP/2.0/UDP` and the session's focus. The Contact is the bare
    /// `<uri>`: `isfocus` and feature tags are the spec's (`contact focus`).
    pub(crate) fn leg_via_contact(&self, tls: bool, focus: &str, branch: &str) -> (String, String) {
        let via = self.leg_via(tls, branch);
        let contact = match self.cfg.sip_tls_advertised {
            Some(a) if tls => {
                let user = focus
                    .split_once(':')
                    .and_then(|(_, r)| r.split_once('@'))
                    .map_or("conf", |(u, _)| u);
                format!("<sips:{user}@{a}>")
            }
            _ => {
                let mut contact = String::with_capacity(focus.len() + 2);
                contact.push('<');
                contact.push_str(focus);
                contact.push('>');
                contact
            }
        };
        (via, contact)
    }

    /// The Via of [`Self::leg_via_contact`] alone, for a request without a Contact (a
    /// page-mode copy, a copy sent again over another transport): none is written.
    pub(crate) fn leg_via(&self, tls: bool, branch: &str) -> String {
        match self.cfg.sip_tls_advertised {
            Some(a) if tls => format!("SIP/2.0/TLS {a};branch={branch};rport"),
            _ => {
                // Written piece by piece: one per invitee INVITE and per page-mode copy.
                let mut via = String::with_capacity(48 + branch.len());
                via.push_str("SIP/2.0/UDP ");
                push_addr(&mut via, self.cfg.sip_advertised);
                via.push_str(";branch=");
                via.push_str(branch);
                via.push_str(";rport");
                via
            }
        }
    }

    /// Opens a TLS connection to `to` for SIP unless one is open or being opened; what the
    /// transaction layer sends to `to` meanwhile waits for it (see [`transmit`]).
    pub(crate) fn connect_sip_tls(&mut self, to: SocketAddr) {
        self.sip_tls
            .connect(self.sip_conn_by_peer, self.out, to, StreamKind::SipTls);
    }
}

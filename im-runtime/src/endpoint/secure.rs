//! Where TLS reaches the endpoint: a request that came over a TLS connection gets a focus
//! (Contact) that leads back over TLS and a dialog whose requests say `TLS` in Via
//! (RFC 3261 §26.2, RFC 5630); a `TCP/TLS/MSRP` offer is answered from the MSRP-over-TLS
//! address with an `msrps:` path (RFC 4975 §14). The IO layer does the TLS itself.

use super::*;
use crate::machine::SdpFacts;

impl<A: Application> Endpoint<A> {
    /// Whether `peer` reached us over a TLS connection that is still open.
    pub(super) fn peer_tls(&self, peer: Peer) -> bool {
        peer.reliable
            && self
                .sip_conn_by_peer
                .get(&peer.addr)
                .and_then(|c| self.sip_conns.get(c))
                .is_some_and(|c| c.tls)
    }

    /// The sent-by of `SIP/2.0/TLS` for a dialog with `peer`, when it is over TLS.
    pub(super) fn dialog_tls(&self, peer: Peer) -> Option<SocketAddr> {
        self.cfg.sip_tls_advertised.filter(|_| self.peer_tls(peer))
    }

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
        match self.dialog_tls(peer) {
            Some(a) if sips => format!("sips:{user}@{a}"),
            Some(a) => format!("sip:{user}@{a};transport=tls"),
            None => format!("sip:{user}@{}", self.cfg.sip_advertised),
        }
    }

    /// The MSRP address and own path to answer `offer` with: the TLS ones when its MSRP
    /// media is `TCP/TLS/MSRP` and TLS is configured. Otherwise the plain ones; with a TLS
    /// offer the answer builder then refuses (488), since a TLS offer cannot be answered
    /// in clear.
    pub(super) fn msrp_own(&self, offer: &SdpFacts, sid: &str) -> (SocketAddr, String) {
        let tls = offer
            .media
            .iter()
            .find(|m| crate::proto::sdp::msrp::is_msrp(&m.media, &m.proto))
            .is_some_and(|m| answer::is_tls_proto(&m.proto));
        match self.cfg.msrp_tls_advertised {
            Some(a) if tls => (a, format!("msrps://{a}/{sid};tcp")),
            _ => (
                self.cfg.msrp_advertised,
                own_msrp_path(self.cfg.msrp_advertised, sid),
            ),
        }
    }
}

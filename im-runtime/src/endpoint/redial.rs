//! Requests in a dialog, and CANCELs, whose connection has closed: dialled again or
//! ended at once (RFC 3261 §12.2.1.1, §18.1.1; RFC 5626 §5.3).

use super::*;

impl<A: Application> Ctx<'_, A> {
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
        let target = match d.route_set().next() {
            Some(r) => crate::proto::sip::parse_name_addrs(r)
                .ok()
                .and_then(|v| v.into_iter().next())
                .map(|na| na.uri().as_str().to_string()),
            None => Some(d.remote_target().to_string()),
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
        if d.route_set_is_empty() && flow_only(&uri) {
            tracing_log(
                "sip",
                &format!(
                    "flow to {} closed and {} asks to be reached over it only (ob, RFC 5626 §5.3): request not sent; the peer is lost",
                    d.peer.addr,
                    d.remote_target()
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
                        d.peer.addr,
                        d.remote_target()
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
            .filter(|f| f.outbound && d.route_set_is_empty());
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
                    d.remote_target()
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
}

/// Whether `uri` (a peer's Contact) asks that requests reach it only over the flow it
/// opened: the `ob` parameter (RFC 5626 §4.3, §5.4). A contact registered as an outbound
/// flow says so by its binding instead ([`Ctx::redial`] reads it from [`PeerTransports`]).
pub(super) fn flow_only(uri: &crate::proto::sip::Uri<'_>) -> bool {
    uri.param("ob").is_some()
}

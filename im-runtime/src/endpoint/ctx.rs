//! What a session borrows from the endpoint while it handles one event ([`Ctx`]): the
//! clock, the configuration and application, the transaction table, the output queue, id
//! minting, the MSRP relay (which demultiplexes MSRP connections to sessions) and the
//! index updates a session may ask for (a new dialog key, a client transaction). A session
//! reaches the endpoint only through it, so it never sees another session nor an endpoint
//! map; the endpoint, for its part, only calls session methods.

use super::*;

/// The endpoint's state a session may use during one event. Built by
/// [`Endpoint::split`](super::Endpoint) next to the `&mut Session` it serves.
pub(crate) struct Ctx<'a, A: Application> {
    /// The time of the input being handled.
    pub(crate) now: Instant,
    pub(crate) cfg: &'a EndpointConfig,
    pub(crate) app: &'a A,
    pub(crate) tsx: &'a mut Transactions<SipBuilder>,
    pub(crate) out: &'a mut VecDeque<Output>,
    pub(crate) ids: &'a mut Ids,
    pub(crate) msrp: &'a mut msrp_relay::MsrpRelay,
    pub(crate) stats: &'a mut Stats,
    pub(crate) idle_conns: &'a mut IdleConns,
    pub(crate) sip_conn_by_peer: &'a HashMap<SocketAddr, ConnId>,
    /// Which SIP connections are TLS and our TLS connects under way (`endpoint/secure.rs`).
    pub(crate) sip_tls: &'a mut secure::SipTls,
    pub(crate) by_dialog: &'a mut NetMap<u64, (SessionId, LegSlot)>,
    pub(crate) by_client_tsx: &'a mut ShardedTsxMap<ClientTsx>,
    pub(crate) client_in_flight: &'a mut usize,
    /// Sessions whose held client transaction left flight because a new one reused its key
    /// (never expected: branches are random): the endpoint tells them after the event.
    pub(crate) released: &'a mut Vec<SessionId>,
    /// The counters `/metrics` reads while the driver runs.
    pub(crate) live: &'a mut live::Live,
    /// Conference-state subscriptions by dialog and by subscriber (`conference.rs`).
    pub(crate) conf: &'a mut session::ConferenceRegistry,
}

impl<A: Application> Ctx<'_, A> {
    /// The machines' environment: the spec's configuration and the application's sources.
    pub(crate) fn env(&self) -> Env<'_> {
        Env {
            config: &self.cfg.spec,
            directory: self.app.directory(),
            router: self.app.router(),
        }
    }

    /// Our host as the agent of Warning headers.
    pub(crate) fn agent(&self) -> String {
        super::session::ip_string(self.cfg.sip_advertised.ip())
    }

    /// Queues SIP bytes for `peer`: a datagram, or on the peer's TCP or TLS connection (kept
    /// until it opens when it is our TLS connect under way). When that connection is gone
    /// the bytes are dropped: RFC 3261 §18.2.2 would open a new one to the Via sent-by;
    /// clients we serve keep theirs open.
    pub(crate) fn transmit(&mut self, peer: Peer, data: Bytes) {
        transmit(self.out, self.sip_conn_by_peer, self.sip_tls, peer, data);
    }

    /// Sends what the transaction layer has to send.
    pub(crate) fn flush(&mut self) {
        while let Some(t) = self.tsx.poll_transmit() {
            transmit(
                self.out,
                self.sip_conn_by_peer,
                self.sip_tls,
                t.peer,
                t.bytes,
            );
        }
    }

    /// Answers server transaction `key` (request `msg`) with `status` and `extra` headers.
    pub(crate) fn reply_simple(
        &mut self,
        key: &TsxKey,
        msg: &Message,
        status: u16,
        extra: &[(&str, String)],
    ) {
        let Some(code) = StatusCode::new(status) else {
            return;
        };
        let mut b = sip::build::ResponseBuilder::new(msg, code);
        if status > 100 {
            b = b.to_tag(&self.ids.token(1));
        }
        for (n, v) in extra {
            b = b.header(n, v);
        }
        let _ = self.tsx.respond(self.now, key, status, b.write());
        self.live.response(status, None);
        self.flush();
    }

    /// Files the dialog with our tag `local_tag` under session `sid` and `leg`.
    pub(crate) fn index_dialog(&mut self, local_tag: &str, sid: SessionId, leg: Option<usize>) {
        if let (Some(k), Some(slot)) = (crate::endpoint::ids::tag_key(local_tag), LegSlot::new(leg))
        {
            self.by_dialog.insert(k, (sid, slot));
        }
    }

    /// Sends request `m` in a new client transaction of session `sid` (leg `leg`), and
    /// files the transaction so its answers come back to the session. Returns whether the
    /// transaction holds the session until its final answer (an INVITE: a 2xx that crosses
    /// our CANCEL still needs its ACK and BYE; a BYE or MESSAGE answer changes nothing for
    /// the session, which may end while the transaction layer finishes it).
    pub(crate) fn send_request(
        &mut self,
        m: &Message,
        peer: Peer,
        sid: SessionId,
        leg: Option<usize>,
    ) -> Option<(TsxKey, bool, bool)> {
        self.send_request_holding(m, peer, sid, leg, false)
    }

    /// [`Ctx::send_request`], also holding the session for a non-INVITE when `hold`: a
    /// page-mode copy whose outcome a delivery report needs (`endpoint/imdn.rs`).
    pub(crate) fn send_request_holding(
        &mut self,
        m: &Message,
        peer: Peer,
        sid: SessionId,
        leg: Option<usize>,
        hold: bool,
    ) -> Option<(TsxKey, bool, bool)> {
        let tm = tsx_message(m)?;
        let key = tm.key.clone();
        let holds = hold || key.method() == &Method::Invite;
        *self.client_in_flight += 1;
        let old = self.by_client_tsx.insert(
            key.clone(),
            ClientTsx {
                sid,
                leg,
                in_flight: true,
                holds,
            },
        );
        if let Some(old) = old
            && old.in_flight
        {
            *self.client_in_flight = self.client_in_flight.saturating_sub(1);
            if old.holds {
                self.released.push(old.sid);
            }
        }
        let sent = self.tsx.send_request(self.now, tm, peer).is_ok();
        self.flush();
        Some((key, holds, sent))
    }
}

/// See [`Ctx::transmit`]; also the endpoint's own path for stateless answers.
pub(crate) fn transmit(
    out: &mut VecDeque<Output>,
    sip_conn_by_peer: &HashMap<SocketAddr, ConnId>,
    sip_tls: &mut secure::SipTls,
    peer: Peer,
    data: Bytes,
) {
    if peer.reliable {
        if let Some(&conn) = sip_conn_by_peer.get(&peer.addr) {
            out.push_back(Output::StreamSend { conn, data });
            return;
        }
        let Some(_) = sip_tls.queue(peer.addr, data) else {
            return;
        };
        tracing_log(
            "sip",
            &format!("no connection to {} for a response", peer.addr),
        );
        return;
    }
    out.push_back(Output::Datagram {
        local: None,
        to: peer.addr,
        data,
    });
}

//! SIP in and out: stream framing (with 413 for a body over the limit), parsing, Via
//! stamping, validation and the error answers it implies, the transaction layer's
//! transmits and events, and which session (or admission) each event goes to.

use super::*;

impl<A: Application> Endpoint<A> {
    pub(super) fn agent(&self) -> String {
        // Once per SIP message received: without the formatting machinery.
        session::ip_string(self.cfg.sip_advertised.ip())
    }

    pub(super) fn handle_sip_bytes(
        &mut self,
        now: Instant,
        peer: Peer,
        conn: Option<ConnId>,
        data: Bytes,
    ) {
        let routing = Routing::Local;
        let transport = if conn.is_some() {
            Transport::Stream
        } else {
            Transport::Datagram
        };
        // An ACK is never answered (RFC 3261 §17.2.1), so a broken one is dropped.
        let is_ack = data.starts_with(b"ACK ");
        let triage = match Message::parse_as(data, transport) {
            Ok(m) if m.is_request() => {
                // Stamp received/rport first, so every answer built from it carries them.
                let m = via::stamp_request(m, peer.addr, transport);
                validated(m, &self.cfg.policy, routing, self.cfg.sip_advertised.ip())
            }
            Ok(m) => validated(m, &self.cfg.policy, routing, self.cfg.sip_advertised.ip()),
            Err(f) if is_ack => Triage::Drop(f.error.to_string()),
            Err(f) => salvage_response(&f, &self.agent(), peer.addr),
        };
        match triage {
            Triage::Request(msg) => self.handle_request(now, peer, msg),
            Triage::Response(msg) => self.handle_response(now, msg),
            Triage::Respond(resp) => {
                self.stats.rejected += 1;
                tracing_log(
                    "sip",
                    &format!(
                        "rejected request from {} with {}",
                        peer.addr,
                        resp.status().map(u16::from).unwrap_or(0)
                    ),
                );
                self.send_sip(peer, resp.into_bytes());
            }
            Triage::Drop(why) => tracing_log("sip", &format!("dropped from {}: {why}", peer.addr)),
        }
    }

    pub(super) fn send_sip(&mut self, peer: Peer, data: Bytes) {
        ctx::transmit(
            &mut self.out,
            &self.sip_conn_by_peer,
            &mut self.sip_tls,
            peer,
            data,
        );
    }

    pub(super) fn handle_request(&mut self, now: Instant, peer: Peer, msg: Message) {
        let Some(tm) = tsx_message(&msg) else {
            return;
        };
        if tm.method == Method::Ack {
            // The ACK for a non-2xx final answer belongs to its INVITE server transaction
            // (§17.2.1), which absorbs it and stops retransmitting; the ACK for a 2xx is
            // end-to-end (§13.3.1.4): match it to the dialog directly.
            let non_2xx = self
                .tsx
                .state(Role::Server, &tm.key)
                .is_some_and(|st| st != tsx::TsxState::Accepted);
            if non_2xx {
                let _ = self.tsx.handle_request(now, tm, peer);
                self.drain_tsx(now);
            } else {
                self.in_dialog_request(now, peer, msg);
            }
            return;
        }
        let key = tm.key.clone();
        self.tsx.builder_mut().remember(&key, &msg);
        if self.tsx.handle_request(now, tm, peer).is_ok() {
            self.drain_tsx(now);
        }
        // A retransmission, a CANCEL or a refused request: the cache keeps nothing past
        // the input that brought it.
        self.tsx.builder_mut().forget(&key);
    }

    pub(super) fn handle_response(&mut self, now: Instant, msg: Message) {
        let Some(tm) = tsx_message(&msg) else {
            return;
        };
        let key = tm.key.clone();
        // A 2xx to an INVITE whose transaction is gone is the TU's (RFC 3261 §13.2.2.4,
        // RFC 6026): one to an INVITE ended without its CANCEL is ACKed and decided on.
        if key.method() == &Method::Invite
            && msg
                .status()
                .is_some_and(|s| (200..300).contains(&u16::from(s)))
            && self.tsx.state(Role::Client, &key).is_none()
            && self.late_answer(now, &key, &msg)
        {
            self.drain_tsx(now);
            return;
        }
        self.tsx.builder_mut().remember_response(&key, &msg);
        let _ = self.tsx.handle_response(now, tm);
        self.drain_tsx(now);
        // An absorbed retransmission was not taken.
        self.tsx.builder_mut().forget(&key);
    }

    /// Carries out what the transaction layer produced.
    pub(super) fn drain_tsx(&mut self, now: Instant) {
        loop {
            while let Some(t) = self.tsx.poll_transmit() {
                self.send_sip(t.peer, t.bytes);
            }
            let Some(ev) = self.tsx.poll_event() else {
                break;
            };
            match ev {
                tsx::Event::Request { message, peer } => {
                    let Some(msg) = self.tsx.builder_mut().take_request(&message.key) else {
                        continue;
                    };
                    let has_to_tag = msg.to().is_some_and(|t| t.tag().is_some());
                    if has_to_tag {
                        self.in_dialog_request(now, peer, msg);
                    } else {
                        self.initial_request(now, peer, msg, message.key);
                    }
                }
                tsx::Event::Ack { message, peer } => {
                    // The ACK's own bytes: its key is the INVITE's, so the remembered
                    // request under that key is the INVITE, not this ACK.
                    if let Ok(msg) = Message::parse(message.bytes.clone()) {
                        self.in_dialog_request(now, peer, msg);
                    }
                }
                tsx::Event::Response { message } => {
                    let resp = self.tsx.builder_mut().take_response(&message.key);
                    if let Some(resp) = resp {
                        self.client_response(now, &message.key, resp);
                    }
                    self.client_settled(&message.key);
                }
                tsx::Event::Cancelled { invite } => self.cancelled(now, &invite),
                tsx::Event::Timeout { key, role, .. }
                | tsx::Event::TransportError { key, role } => {
                    if role == Role::Client {
                        self.client_timeout(now, &key);
                        self.client_settled(&key);
                    } else if let Some(sid) = self.by_server_tsx.get(&key).copied() {
                        // Timer H: the originator never ACKed our final response.
                        self.no_ack(now, sid);
                    }
                }
                tsx::Event::Terminated { key, role } => {
                    self.tsx.builder_mut().forget(&key);
                    match role {
                        Role::Server => {
                            self.by_server_tsx.remove(&key);
                        }
                        Role::Client => {
                            if let Some(e) = self.by_client_tsx.remove(&key) {
                                if e.in_flight {
                                    self.client_done(e.sid, e.holds);
                                }
                                if let (Some(i), Some(s)) = (e.leg, self.sessions.get_mut(&e.sid)) {
                                    s.client_tsx_ended(i, &key);
                                }
                            }
                        }
                    }
                }
            }
        }
        self.reap(now);
    }

    /// A request on a stream declares a body bigger than `max_message_size`: when its
    /// header section fits, answer `413 Request Entity Too Large` (RFC 3261 §21.4.11) on the
    /// connection, which the caller then closes. A header section too big to read, an ACK
    /// or a response get nothing.
    pub(super) fn too_large_on_stream(&mut self, conn: ConnId, peer: SocketAddr, buf: &[u8]) {
        let start = buf
            .iter()
            .take_while(|&&c| c == b'\r' || c == b'\n')
            .count();
        let buf = buf.get(start..).unwrap_or_default();
        let Some(end) = memchr::memmem::find(buf, b"\r\n\r\n") else {
            return;
        };
        if end > self.cfg.max_message_size {
            return;
        }
        // The header section alone, its Content-Length set to 0, parses as the request.
        let mut head = String::new();
        for line in String::from_utf8_lossy(&buf[..end]).split("\r\n") {
            let name = line.split(':').next().unwrap_or("").trim();
            if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
                head.push_str("Content-Length: 0");
            } else {
                head.push_str(line);
            }
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let Ok(m) = Message::parse_as(Bytes::from(head), Transport::Stream) else {
            return;
        };
        if !m.is_request() || m.method() == Some(&Method::Ack) {
            return;
        }
        let m = via::stamp_request(m, peer, Transport::Stream);
        if let Some(r) =
            StatusCode::new(413).and_then(|c| sip::build::ResponseBuilder::new(&m, c).build().ok())
        {
            self.stats.rejected += 1;
            self.out.push_back(Output::StreamSend {
                conn,
                data: r.into_bytes(),
            });
        }
    }

    /// Forgets SIP connection `conn` (and its peer's entry, when it still names `conn`).
    pub(super) fn drop_sip_conn(&mut self, conn: ConnId) {
        self.sip_tls.closed(conn);
        self.conn_use.closed(conn);
        if let Some(c) = self.sip_conns.remove(&conn)
            && self.sip_conn_by_peer.get(&c.peer) == Some(&conn)
        {
            self.sip_conn_by_peer.remove(&c.peer);
        }
    }

    pub(super) fn input(&mut self, now: Instant, input: Input) {
        match input {
            Input::Datagram { from, data, .. } => {
                if data.len() > self.cfg.max_message_size {
                    // RFC 3261 §21.5.14: too large for us. Only a request gets an answer
                    // (never an ACK or a response).
                    let resp = Message::parse(data.clone())
                        .ok()
                        .filter(|m| m.is_request() && m.method() != Some(&Method::Ack))
                        .map(|m| via::stamp_request(m, from, Transport::Datagram))
                        .and_then(|m| {
                            StatusCode::new(513)
                                .and_then(|c| sip::build::ResponseBuilder::new(&m, c).build().ok())
                        });
                    if let Some(r) = resp {
                        self.stats.rejected += 1;
                        self.send_sip(
                            Peer {
                                addr: from,
                                reliable: false,
                            },
                            r.into_bytes(),
                        );
                    }
                    return;
                }
                self.handle_sip_bytes(
                    now,
                    Peer {
                        addr: from,
                        reliable: false,
                    },
                    None,
                    data,
                );
            }
            Input::StreamOpened {
                conn, kind, peer, ..
            } => match kind {
                StreamKind::Sip | StreamKind::SipTls => {
                    self.sip_conns.insert(
                        conn,
                        SipConn {
                            peer,
                            buf: BytesMut::new(),
                        },
                    );
                    self.sip_tls.opened(conn, kind.is_tls());
                    self.sip_conn_by_peer.insert(peer, conn);
                    self.sip_conn_opened(conn, peer);
                }
                StreamKind::Msrp | StreamKind::MsrpTls => {
                    let mut events = Vec::new();
                    let rand = self.random_bytes::<10>();
                    self.msrp
                        .opened(conn, kind.is_tls(), &mut events, rand, &mut self.out);
                    if conn.is_accepted() {
                        self.idle_conns.set(conn, now + self.cfg.msrp_idle);
                    }
                    for ev in events {
                        if let msrp_relay::RelayEvent::LegBound(sid, _)
                        | msrp_relay::RelayEvent::OriginatorBound(sid) = ev
                        {
                            // Our connect is up: the unbound-connection deadline is over (a
                            // leg now waits for the message as long as its session does), and
                            // the machines hear `msrp connected` as for a side that connected
                            // to us.
                            self.idle_conns.remove(conn);
                            self.dispatch(now, sid, SessionEvent::Msrp(ev));
                        }
                    }
                }
            },
            Input::StreamData { conn, data } => {
                if let Some(c) = self.sip_conns.get_mut(&conn) {
                    c.buf.extend_from_slice(&data);
                    let peer = c.peer;
                    while let Some(c) = self.sip_conns.get_mut(&conn) {
                        match sip::frame(&c.buf, self.cfg.max_message_size) {
                            Ok(sip::Frame::Message { skip, len }) => {
                                let _ = c.buf.split_to(skip);
                                let msg = c.buf.split_to(len).freeze();
                                self.handle_sip_bytes(
                                    now,
                                    Peer {
                                        addr: peer,
                                        reliable: true,
                                    },
                                    Some(conn),
                                    msg,
                                );
                            }
                            Ok(sip::Frame::KeepAlive { skip }) => {
                                let _ = c.buf.split_to(skip);
                            }
                            Ok(sip::Frame::NeedMore) => break,
                            Err(e) => {
                                // Unframeable stream (bad or oversized Content-Length): the
                                // stream cannot be resynchronised, so it is closed; a
                                // request whose body is too big is told so first.
                                if matches!(e.kind, sip::ErrorKind::TooLarge { .. }) {
                                    let head = c.buf.clone().freeze();
                                    self.too_large_on_stream(conn, peer, &head);
                                }
                                self.out.push_back(Output::Close { conn });
                                self.drop_sip_conn(conn);
                                break;
                            }
                        }
                    }
                } else {
                    self.handle_msrp_input(now, conn, data);
                }
            }
            Input::StreamClosed { conn } | Input::ConnectFailed { conn } => {
                if self.sip_connect_failed(now, conn) {
                    // Our connect to an invitee: no connection state to drop yet.
                } else if self.sip_conns.contains_key(&conn) {
                    self.drop_sip_conn(conn);
                } else {
                    self.handle_msrp_closed(now, conn);
                }
            }
            Input::Timeout => {
                self.conn_use.expire(now, &mut self.out);
                self.sip_tls.out.late.expire(now);
                self.tsx.handle_timeout(now);
                self.drain_tsx(now);
                self.fire_due(now);
                self.shrink_idle();
            }
            Input::Pressure {
                overloaded,
                queue_delay,
            } => {
                if overloaded {
                    tracing::warn!(
                        queue_delay_ms = queue_delay.as_millis() as u64,
                        "overloaded: inputs wait too long; new sessions get 503 until the backlog drains"
                    );
                } else {
                    tracing::info!("load back to normal: new sessions are admitted again");
                }
                self.overloaded = overloaded;
            }
            Input::Shutdown => {
                self.shutting_down = true;
                let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
                for id in ids {
                    self.end_session(now, id, "server shutting down");
                }
            }
        }
    }
}

impl<A: Application> Endpoint<A> {
    /// Gives back the capacity the indexes took at a peak once it is over (`crate::shrink`;
    /// the transaction table does the same for its own maps on its ticks). On every timer
    /// tick, which is also the last thing that happens as a peak's transactions linger out:
    /// each check is O(1), a shrink O(entries left) and rare.
    fn shrink_idle(&mut self) {
        use crate::shrink::{ShrinkIdle, TRANSIENT};
        self.by_server_tsx.shrink_idle();
        self.by_client_tsx.shrink_idle();
        self.by_dialog.shrink_idle();
        self.sip_conns.shrink_idle();
        self.sip_conn_by_peer.shrink_idle();
        // Emptied on every input: only a burst's capacity goes.
        self.out.shrink_idle_over(TRANSIENT);
        self.dirty.shrink_idle_over(TRANSIENT);
        self.released.shrink_idle_over(TRANSIENT);
        self.session_timers.shrink_idle();
        self.idle_conns.shrink_idle();
        self.live.shrink_idle();
        self.msrp.shrink_idle();
    }

    /// Live SIP transactions (both sides), and the entries that file them under their
    /// sessions (`by_server_tsx`, `by_client_tsx`). For tests and diagnostics (the memory
    /// bench checks an idle session holds none once 64·T1 has passed).
    #[doc(hidden)]
    pub fn transactions(&self) -> (usize, usize) {
        (
            self.tsx.len(),
            self.by_server_tsx.len() + self.by_client_tsx.len(),
        )
    }

    /// Slots (capacity, not entries) of the indexes that grow with live sessions and
    /// lingering transactions: what a peak leaves resident until they shrink. For tests
    /// and diagnostics.
    #[doc(hidden)]
    pub fn index_slots(&self) -> usize {
        self.by_server_tsx.capacity()
            + self.by_client_tsx.capacity()
            + self.by_dialog.capacity()
            + self.session_timers.slots()
            + self.live.slots()
            + self.msrp.slots()
    }
}

/// `agent` is our advertised address, formatted only for the Warning of a rejection (once
/// per message received it cost 0.6 k instructions).
pub(super) fn validated(
    m: Message,
    policy: &Policy,
    routing: Routing,
    agent: std::net::IpAddr,
) -> Triage {
    if !m.is_request() {
        return match validate::check_response(&m) {
            Ok(()) => Triage::Response(m),
            Err(e) => Triage::Drop(format!("{e:?}")),
        };
    }
    match validate::validate_request(&m, policy, routing) {
        validate::Verdict::Accept => Triage::Request(m),
        validate::Verdict::Reject(r) => {
            if m.method() == Some(&Method::Ack) {
                return Triage::Drop("invalid ACK".into());
            }
            let mut b = sip::build::ResponseBuilder::new(&m, r.status);
            if !r.unsupported.is_empty() {
                b = b.header("Unsupported", &r.unsupported.join(", "));
            }
            if r.status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
                // RFC 3261 §21.4.13: say what is accepted.
                b = b.header("Accept", &policy.accepted_types.join(", "));
            }
            b = b.header("Warning", &warning(&session::ip_string(agent), &r.warning));
            match b.build() {
                Ok(resp) => Triage::Respond(resp),
                Err(_) => Triage::Drop("unanswerable".into()),
            }
        }
    }
}

pub(super) fn salvage_response(f: &sip::ParseFailure, agent: &str, source: SocketAddr) -> Triage {
    match &f.salvage {
        Some(s) => match StatusCode::new(400).and_then(|c| {
            let mut s = (**s).clone();
            let restamped = s.via.first().and_then(|top| {
                // Only the first value of the first line is the top Via.
                let first = sip::split_values(top).next()?;
                let stamped = via::stamped(first, source)?;
                let end = (first.as_ptr() as usize - top.as_ptr() as usize) + first.len();
                Some(format!("{stamped}{}", top.get(end..).unwrap_or("")))
            });
            if let (Some(v), Some(top)) = (restamped, s.via.first_mut()) {
                *top = v;
            }
            sip::build::ResponseBuilder::from_salvage(&s, c, agent)
                .build()
                .ok()
        }) {
            Some(r) => Triage::Respond(r),
            None => Triage::Drop(f.error.to_string()),
        },
        None => Triage::Drop(f.error.to_string()),
    }
}

/// A `Warning` value: code 399 (miscellaneous), our host as agent, quoted text.
pub(super) fn warning(agent: &str, text: &str) -> String {
    coded_warning(399, agent, text)
}

/// A `Warning` value with the given code (RFC 3261 §20.43), our host as agent, quoted text.
pub(super) fn coded_warning(code: u16, agent: &str, text: &str) -> String {
    let t: String = text
        .chars()
        .map(|c| {
            if c == '"' || c == '\\' || c.is_control() {
                '\''
            } else {
                c
            }
        })
        .collect();
    format!("{code} {agent} \"{t}\"")
}

//! The server's MSRP side: one MSRP session with the originator (it receives the message)
//! and one with each invitee (it delivers a copy), matched by the session id in To-Path
//! (RFC 4975 §5.4; an unknown session gets 481), several sessions per connection allowed,
//! connection roles following the negotiated `a=setup`.

use super::session::SessionId;
use super::{EndpointConfig, NetMap};
use crate::proto::msrp::{
    self, Decoder, FailureReport, Frame, FrameKind, MsrpUri, Reassembler, ReassemblyLimits,
    ReassemblyOutcome, StatusCode, TransactionId,
};
use crate::proto::sdp::answer::Answer;
use crate::proto::sdp::msrp::{MsrpAttributes, Setup};
use crate::shrink::ShrinkIdle;
use crate::transport::{ConnId, Output};
use bytes::Bytes;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

mod conn_sides;
mod delivery;
mod sides;

use conn_sides::ConnSides;
use delivery::Delivery;

/// Which side of which session: the originator's or leg `i`'s. 16 bytes where a
/// `(SessionId, Option<usize>)` is 24, in three tables and every connection's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct SideKey {
    sid: SessionId,
    /// The leg's index, or [`SideKey::ORIGINATOR`].
    leg: u32,
}

impl SideKey {
    const ORIGINATOR: u32 = u32::MAX;

    fn originator(sid: SessionId) -> SideKey {
        SideKey {
            sid,
            leg: SideKey::ORIGINATOR,
        }
    }

    /// Leg `i`'s side; `None` for an index no side can have (four billion legs, far past
    /// any recipient limit): such a leg gets no MSRP side rather than another's.
    fn leg(sid: SessionId, i: usize) -> Option<SideKey> {
        let leg = u32::try_from(i)
            .ok()
            .filter(|&l| l != SideKey::ORIGINATOR)?;
        Some(SideKey { sid, leg })
    }

    /// The leg's index; `None` for the originator's side.
    fn leg_index(self) -> Option<usize> {
        (self.leg != SideKey::ORIGINATOR).then_some(self.leg as usize)
    }

    /// What the endpoint hears when the side is bound.
    fn bound_event(self) -> RelayEvent {
        match self.leg_index() {
            None => RelayEvent::OriginatorBound(self.sid),
            Some(i) => RelayEvent::LegBound(self.sid, i),
        }
    }
}

/// What happened on the MSRP side, for the endpoint to act on.
#[derive(Debug)]
pub(crate) enum RelayEvent {
    /// The originator's session is bound to a connection.
    OriginatorBound(SessionId),
    /// Leg `.1`'s session is bound to a connection.
    LegBound(SessionId, usize),
    /// The originator's message is complete.
    MessageComplete(SessionId, msrp::Message),
    /// The outcome of a delivery to a leg: ok, and the MSRP status code.
    Delivered(SessionId, usize, bool, u16),
    /// A side's connection closed.
    Closed(SessionId, Option<usize>),
}

/// Kept compact (issue 11 item 4: an idle group session holds one per leg plus one): our
/// URI is rebuilt from the session id when a frame needs it, the peer's path is kept as
/// its text and parsed when a frame is built (a few times per session), and only a side
/// that receives chunks has receive state ([`Inbound`]).
struct Side {
    /// Our session id: the side's key in `by_local`, removed with the side. Shared with
    /// that key and with the session or leg that made it (one allocation, not three).
    local_sid: Arc<str>,
    /// Our URI is `msrps:` (answered over TLS and we have a TLS address).
    secure: bool,
    /// The peer's path (`a=path` or the From-Path of its first request), its URIs
    /// separated by one space; empty when unknown.
    remote_path: Box<str>,
    /// We open the connection (to the last URI of `remote_path`).
    active: bool,
    conn: Option<ConnId>,
    bound: bool,
    /// Made at the first chunk the side receives (only the originator sends any): one
    /// pointer in every side where three fields were 24 bytes (issue 11 item 4).
    inbound: Option<Box<Inbound>>,
    /// The last delivery to this side, from its first chunk sent on. Boxed: an idle side
    /// has none (two ids are ~50 bytes of every side otherwise).
    delivery: Option<Box<Delivery>>,
    done: bool,
}

/// Kept inline in the relay's `conns` table: 40 bytes, where a decoder inline is ~130 (a
/// group session holds one connection per invitee, idle until its copy goes).
/// What a side that receives chunks keeps: only the originator's side has one.
struct Inbound {
    reassembler: Reassembler,
    /// The originator's first SEND with a body: reports are built from it.
    first_send: Option<Frame>,
    /// Bytes of the completed message.
    received: u64,
}

struct MConn {
    /// Made at the first bytes the connection brings (issue 11 item 4: per-connection
    /// buffers start small and grow on demand): an invitee's connection reads nothing
    /// until the session has a message to deliver.
    decoder: Option<Box<Decoder>>,
    sides: ConnSides,
    /// Over TLS: only such a connection may bind a side whose own URI is `msrps:`.
    tls: bool,
}

pub(crate) struct MsrpRelay {
    own: SocketAddr,
    own_tls: Option<SocketAddr>,
    limits: msrp::DecoderLimits,
    reassembly: ReassemblyLimits,
    chunk_size: usize,
    /// Not boxed: with its decoder made on demand `MConn` is 40 bytes, and a box would
    /// cost a block per connection besides its slot.
    conns: NetMap<ConnId, MConn>,
    /// Our session id's key ([`sid_key`]) → its side: 8 bytes a key and no shared
    /// pointer, where the `Arc<str>` was 16 (the table has a slot per side, ~2 per side
    /// at its load); a lookup checks the whole id against the side's.
    by_local: NetMap<u64, SideKey>,
    /// By session: one entry per session, not per side (`msrp_relay/sides.rs`).
    sides: sides::Sides,
    next_conn: u64,
    tid_counter: u64,
}

/// The key `by_local` files our MSRP session id under: the 64 bits its first 16 hex digits
/// spell. `Ids::msrp_session_id` writes 12 random bytes as 24 hex digits, the first 8
/// bytes being one draw of the endpoint's xorshift64* generator, whose draws never repeat
/// (as `ids::tag_key` explains): no two of our ids share a key. `None` for any other text,
/// which is no id of ours.
fn sid_key(sid: &str) -> Option<u64> {
    if sid.len() < 16 {
        return None;
    }
    sid.bytes().take(16).try_fold(0u64, |n, b| {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        Some((n << 4) | u64::from(d))
    })
}

fn uri_target(u: &MsrpUri) -> Option<SocketAddr> {
    let host = u.host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = host.parse().ok()?;
    Some(SocketAddr::new(ip, u.effective_port()))
}

/// The URIs of `path` that parse, as `Side::remote_path` keeps them.
fn path_text(path: &[String]) -> Box<str> {
    let ok: Vec<&str> = path
        .iter()
        .map(String::as_str)
        .filter(|p| p.parse::<MsrpUri>().is_ok())
        .collect();
    ok.join(" ").into_boxed_str()
}

impl Side {
    fn remote_path(&self) -> Vec<MsrpUri> {
        self.remote_path
            .split(' ')
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

fn local_uri_of(
    own: SocketAddr,
    own_tls: Option<SocketAddr>,
    sid: &str,
    tls: bool,
) -> Option<MsrpUri> {
    match own_tls {
        Some(a) if tls => MsrpUri::for_listener(msrp::Scheme::Msrps, a, sid),
        _ => MsrpUri::for_listener(msrp::Scheme::Msrp, own, sid),
    }
}

impl MsrpRelay {
    pub(crate) fn new(cfg: &EndpointConfig) -> Self {
        MsrpRelay {
            own: cfg.msrp_advertised,
            own_tls: cfg.msrp_tls_advertised,
            limits: cfg.msrp_limits,
            reassembly: ReassemblyLimits {
                max_message_bytes: cfg.spec.max_size.unwrap_or(16 * 1024 * 1024),
                ..ReassemblyLimits::default()
            },
            chunk_size: cfg.msrp_chunk_size,
            conns: NetMap::default(),
            by_local: NetMap::default(),
            sides: sides::Sides::default(),
            next_conn: 1,
            tid_counter: 0,
        }
    }

    /// Gives back the capacity of a peak of sessions and connections.
    pub(crate) fn shrink_idle(&mut self) {
        self.conns.shrink_idle();
        self.by_local.shrink_idle();
        self.sides.shrink_idle();
    }

    /// Slots of its tables.
    pub(crate) fn slots(&self) -> usize {
        self.conns.capacity() + self.by_local.capacity() + self.sides.capacity()
    }

    /// Our URI for `side`, as `new_side` checked it parses.
    fn local_of(&self, side: &Side) -> Option<MsrpUri> {
        local_uri_of(self.own, self.own_tls, &side.local_sid, side.secure)
    }

    fn tid(&mut self, rand: [u8; 10]) -> TransactionId {
        self.tid_counter += 1;
        let mut r = rand;
        for (i, b) in self.tid_counter.to_le_bytes().iter().enumerate() {
            r[i] ^= b;
        }
        TransactionId::from_random(&r)
    }

    fn new_side(&self, local_sid: &Arc<str>, tls: bool) -> Option<Side> {
        let secure = tls && self.own_tls.is_some();
        local_uri_of(self.own, self.own_tls, local_sid, secure)?;
        Some(Side {
            local_sid: Arc::clone(local_sid),
            secure,
            remote_path: Box::default(),
            active: false,
            conn: None,
            bound: false,
            inbound: None,
            delivery: None,
            done: false,
        })
    }

    pub(crate) fn register_originator(&mut self, sid: SessionId, local_sid: &Arc<str>, a: &Answer) {
        let Some(mut side) = self.new_side(local_sid, a.tls) else {
            return;
        };
        side.remote_path = path_text(&a.offer.path);
        side.active = a.role == Setup::Active;
        let key = SideKey::originator(sid);
        self.file(local_sid, key, side);
    }

    pub(crate) fn register_leg(
        &mut self,
        sid: SessionId,
        i: usize,
        local_sid: &Arc<str>,
        tls: bool,
    ) {
        if let Some(key) = SideKey::leg(sid, i)
            && let Some(side) = self.new_side(local_sid, tls)
        {
            self.file(local_sid, key, side);
        }
    }

    /// Files `side` under `key` and its session id. Every id comes from
    /// `Ids::msrp_session_id`, so it has a key; one without would be a side no peer
    /// reaches.
    fn file(&mut self, local_sid: &str, key: SideKey, side: Side) {
        let k = sid_key(local_sid);
        debug_assert!(k.is_some(), "not an id of ours: {local_sid}");
        if let Some(k) = k {
            self.by_local.insert(k, key);
        }
        self.sides.insert(key, side);
    }

    /// The side our session id `sid` names, when it is one of ours.
    fn by_local(&self, sid: &str) -> Option<SideKey> {
        let key = *self.by_local.get(&sid_key(sid)?)?;
        self.sides
            .get(&key)
            .is_some_and(|s| *s.local_sid == *sid)
            .then_some(key)
    }

    fn connect(&mut self, key: SideKey, out: &mut Vec<Output>) -> Option<ConnId> {
        let side = self.sides.get_mut(&key)?;
        if !side.active || side.conn.is_some() {
            return None;
        }
        let to = side
            .remote_path
            .rsplit(' ')
            .next()
            .and_then(|u| u.parse().ok())
            .and_then(|u| uri_target(&u))?;
        let tls = side.secure;
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        side.conn = Some(conn);
        self.conns.insert(
            conn,
            MConn {
                decoder: None,
                sides: ConnSides::One(key),
                tls,
            },
        );
        out.push(Output::Connect {
            conn,
            kind: crate::transport::StreamKind::Msrp.secured(tls),
            to,
        });
        Some(conn)
    }

    pub(crate) fn connect_originator(
        &mut self,
        sid: SessionId,
        out: &mut std::collections::VecDeque<Output>,
    ) -> Option<ConnId> {
        let mut v = Vec::new();
        let c = self.connect(SideKey::originator(sid), &mut v);
        out.extend(v);
        c
    }

    /// The invitee's SDP answer arrived: learn its path and who connects.
    pub(crate) fn leg_answered(
        &mut self,
        sid: SessionId,
        i: usize,
        attrs: &MsrpAttributes,
        out: &mut std::collections::VecDeque<Output>,
    ) -> Option<ConnId> {
        let key = SideKey::leg(sid, i)?;
        let side = self.sides.get_mut(&key)?;
        side.remote_path = path_text(&attrs.path);
        // We offered actpass: the answerer's `active` means it connects; `passive` (or no
        // setup, RFC 4975 §5.4: the offerer connects) means we do.
        side.active = !matches!(attrs.setup, Some(Setup::Active));
        let mut v = Vec::new();
        let c = self.connect(key, &mut v);
        out.extend(v);
        c
    }

    /// Whether the originator's MSRP session is bound to a connection.
    pub(crate) fn originator_bound(&self, sid: SessionId) -> bool {
        self.sides
            .get(&SideKey::originator(sid))
            .is_some_and(|s| s.bound)
    }

    pub(crate) fn leg_ready(&self, sid: SessionId, i: usize) -> bool {
        SideKey::leg(sid, i)
            .and_then(|k| self.sides.get(&k))
            .is_some_and(|s| s.conn.is_some() && s.bound && !s.remote_path.is_empty())
    }

    pub(crate) fn opened(
        &mut self,
        conn: ConnId,
        tls: bool,
        events: &mut Vec<RelayEvent>,
        rand: [u8; 10],
        out: &mut std::collections::VecDeque<Output>,
    ) {
        let keys = match self.conns.get(&conn) {
            Some(c) => c.sides.clone(),
            None => {
                // Accepted: unbound until its first SEND names a session.
                self.conns.insert(
                    conn,
                    MConn {
                        decoder: None,
                        sides: ConnSides::default(),
                        tls,
                    },
                );
                return;
            }
        };
        for &key in keys.iter() {
            let tid = self.tid(rand);
            let (own, own_tls) = (self.own, self.own_tls);
            let Some(side) = self.sides.get_mut(&key) else {
                continue;
            };
            side.bound = true;
            // The active side binds the session with an empty SEND (RFC 4975 §5.4).
            if key.leg_index().is_none()
                && let Some(local) = local_uri_of(own, own_tls, &side.local_sid, side.secure)
                && let Ok(b) = msrp::encode_to_vec(&{
                    let mut f =
                        Frame::request(tid, msrp::Method::Send, side.remote_path(), vec![local]);
                    f.failure_report = Some(FailureReport::No);
                    f
                })
            {
                out.push_back(Output::StreamSend {
                    conn,
                    data: Bytes::from(b),
                });
            }
            events.push(key.bound_event());
        }
    }

    fn send(&self, conn: ConnId, f: &Frame, out: &mut std::collections::VecDeque<Output>) {
        if let Ok(b) = msrp::encode_to_vec(f) {
            out.push_back(Output::StreamSend {
                conn,
                data: Bytes::from(b),
            });
        }
    }

    pub(crate) fn handle_bytes(
        &mut self,
        conn: ConnId,
        data: &[u8],
        events: &mut Vec<RelayEvent>,
        rand: [u8; 10],
        out: &mut std::collections::VecDeque<Output>,
    ) {
        let mut frames = Vec::new();
        let mut fatal = false;
        {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            let limits = self.limits;
            let decoder = c
                .decoder
                .get_or_insert_with(|| Box::new(Decoder::new(limits)));
            decoder.handle_bytes(data);
            while let Some(r) = decoder.poll_frame() {
                match r {
                    Ok(f) => frames.push(f),
                    Err(e) => {
                        if let Some(resp) = e.response() {
                            frames.push(resp);
                        }
                        fatal = true;
                        break;
                    }
                }
            }
        }
        for f in frames {
            self.frame(conn, f, events, rand, out);
        }
        if fatal {
            out.push_back(Output::Close { conn });
            self.closed(conn, events);
        }
    }

    fn frame(
        &mut self,
        conn: ConnId,
        f: Frame,
        events: &mut Vec<RelayEvent>,
        rand: [u8; 10],
        out: &mut std::collections::VecDeque<Output>,
    ) {
        match &f.kind {
            // A response to one of our delivery chunks.
            FrameKind::Response { code, .. } => self.on_response(conn, &f, code.0, events),
            FrameKind::Request(method) => {
                let key = f
                    .to_path
                    .last()
                    .and_then(|u| u.session_id.as_deref())
                    .and_then(|s| self.by_local(s))
                    // A session answered over TLS is never reached in clear (RFC 4975 §14).
                    .filter(|k| {
                        self.sides.get(k).is_none_or(|s| !s.secure)
                            || self.conns.get(&conn).is_some_and(|c| c.tls)
                    });
                let Some(key) = key else {
                    // RFC 4975 §7.3.1: no such session.
                    if let Some(r) = msrp::response_to(&f, StatusCode(481), None) {
                        self.send(conn, &r, out);
                    }
                    return;
                };
                // Bind the connection to the session on its first request.
                if let Some(side) = self.sides.get_mut(&key)
                    && (side.conn.is_none() || !side.bound)
                {
                    side.conn = Some(conn);
                    side.bound = true;
                    if side.remote_path.is_empty() {
                        let p: Vec<String> = f.from_path.iter().map(|u| u.to_string()).collect();
                        side.remote_path = p.join(" ").into_boxed_str();
                    }
                    if let Some(c) = self.conns.get_mut(&conn)
                        && !c.sides.contains(&key)
                    {
                        c.sides.push(key);
                    }
                    events.push(key.bound_event());
                }
                match method {
                    msrp::Method::Send => self.on_send(conn, key, f, events, out),
                    msrp::Method::Report => self.on_report(key, &f, events),
                    msrp::Method::Other(_) => {
                        if let Some(r) = msrp::response_to(&f, StatusCode(501), None) {
                            self.send(conn, &r, out);
                        }
                    }
                }
            }
        }
        let _ = rand;
    }

    fn on_send(
        &mut self,
        conn: ConnId,
        key: SideKey,
        f: Frame,
        events: &mut Vec<RelayEvent>,
        out: &mut std::collections::VecDeque<Output>,
    ) {
        let Some(side) = self.sides.get_mut(&key) else {
            return;
        };
        // An empty SEND binds the session (RFC 4975 §5.4) or keeps it alive; it may carry a
        // Message-ID with `Byte-Range: 1-0/0` (every SEND has one, §7.1.1) and is still not
        // the page-mode message.
        let empty_bind = f.body.is_none()
            && (f.message_id.is_none() || f.byte_range.is_none_or(|r| r.total == Some(0)));
        let mut code = StatusCode(200);
        let mut complete = None;
        if key.leg_index().is_none() && !empty_bind {
            let reassembly = self.reassembly;
            let inbound = side.inbound.get_or_insert_with(|| {
                Box::new(Inbound {
                    reassembler: Reassembler::new(reassembly),
                    first_send: None,
                    received: 0,
                })
            });
            if inbound.first_send.is_none() && f.body.is_some() {
                inbound.first_send = Some(f.clone());
            }
            match inbound.reassembler.handle_chunk(&f) {
                Ok(ReassemblyOutcome::Complete(m)) => {
                    inbound.received = m.data.len() as u64;
                    complete = Some(m);
                }
                Ok(ReassemblyOutcome::Incomplete { .. }) => {}
                Ok(ReassemblyOutcome::Aborted(_)) => {}
                Err(e) => code = e.status_code(),
            }
        }
        // Transaction responses as Failure-Report asks (RFC 4975 §7.1.2).
        let answer = match f.effective_failure_report() {
            FailureReport::Yes => true,
            FailureReport::Partial => code.0 != 200,
            FailureReport::No => false,
        };
        if (answer || empty_bind)
            && let Some(r) = msrp::response_to(&f, code, None)
        {
            self.send(conn, &r, out);
        }
        if let Some(m) = complete {
            events.push(RelayEvent::MessageComplete(key.sid, m));
        }
    }

    fn close_key(&mut self, key: SideKey, out: &mut std::collections::VecDeque<Output>) {
        if let Some(side) = self.sides.remove(&key) {
            if let Some(k) = sid_key(&side.local_sid)
                && self.by_local.get(&k) == Some(&key)
            {
                self.by_local.remove(&k);
            }
            if let Some(conn) = side.conn {
                let empty = match self.conns.get_mut(&conn) {
                    Some(c) => {
                        c.sides.retain(|k| *k != key);
                        c.sides.is_empty()
                    }
                    None => false,
                };
                if empty {
                    self.conns.remove(&conn);
                    out.push_back(Output::Close { conn });
                }
            }
        }
    }

    pub(crate) fn close_originator(
        &mut self,
        sid: SessionId,
        out: &mut std::collections::VecDeque<Output>,
    ) {
        self.close_key(SideKey::originator(sid), out);
    }

    pub(crate) fn close_leg(
        &mut self,
        sid: SessionId,
        i: usize,
        out: &mut std::collections::VecDeque<Output>,
    ) {
        if let Some(key) = SideKey::leg(sid, i) {
            self.close_key(key, out);
        }
    }

    /// Closes every side of session `sid`, which has `legs` legs: O(legs), no scan.
    pub(crate) fn close_session(
        &mut self,
        sid: SessionId,
        legs: usize,
        out: &mut std::collections::VecDeque<Output>,
    ) {
        self.close_key(SideKey::originator(sid), out);
        for i in 0..legs {
            if let Some(key) = SideKey::leg(sid, i) {
                self.close_key(key, out);
            }
        }
        self.sides.forget(sid);
    }

    pub(crate) fn closed(&mut self, conn: ConnId, events: &mut Vec<RelayEvent>) {
        if let Some(c) = self.conns.remove(&conn) {
            for &key in c.sides.iter() {
                if let Some(side) = self.sides.get_mut(&key) {
                    side.conn = None;
                    side.bound = false;
                    events.push(RelayEvent::Closed(key.sid, key.leg_index()));
                }
            }
        }
    }

    /// A connection's idle timer fired: close it when it never carried a bound session or
    /// its delivery never completed.
    pub(crate) fn idle_timeout(
        &mut self,
        conn: ConnId,
        out: &mut std::collections::VecDeque<Output>,
    ) -> Option<(SessionId, Option<usize>)> {
        let c = self.conns.get(&conn)?;
        if c.sides.is_empty() {
            self.conns.remove(&conn);
            out.push_back(Output::Close { conn });
            return None;
        }
        let stuck = c
            .sides
            .iter()
            .find(|k| {
                self.sides.get(k).is_some_and(|s| {
                    !s.bound
                        || (k.leg_index().is_some()
                            && !s.done
                            && !s.delivery.as_ref().is_some_and(|d| d.awaits_report_only()))
                })
            })
            .copied();
        if let Some(k) = stuck {
            self.close_key(k, out);
            return Some((k.sid, k.leg_index()));
        }
        None
    }
}

#[cfg(test)]
mod tests;

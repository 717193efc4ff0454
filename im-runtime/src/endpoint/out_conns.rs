//! The SIP connections this endpoint opened, and which sessions use them (split from
//! `route_leg.rs`, which decides how a request travels; this file only counts holders).

use super::super::super::*;
use super::super::*;
use super::LateInvites;

/// Which legs and sessions use the SIP connections this endpoint opened (RFC 3261 §18: the
/// client side may close a connection it opened). A holder is a leg of a session, or the
/// session itself for what belongs to no leg (its page-mode copies, a request in the
/// originator's dialog). A leg holds a destination from the moment its INVITE or an
/// in-dialog request is sent there over a connection of ours until the leg ends (failed,
/// or BYE'd either way: [`OutConns::leg_ended`]); the session's own hold lasts until the
/// session ends. The endpoint says when a destination gains its first holder or loses its
/// last with [`Output::ConnUse`], and the IO layer closes such a connection once nothing
/// holds it and it has been silent for `conn_idle_timeout`
/// ([`crate::io::IoLimits::conn_idle_timeout`]), giving its slot in `max_sip_connections`
/// back. A transaction whose holder has ended (a leg's BYE or the ACK of its failure, a
/// copy's answer still due after its session ended) lives at most 64*T1 = 32 s, well
/// inside that idle time, and every byte it reads restarts the clock. Held by destination
/// address, not by connection: a destination whose connection closed and is opened again
/// (an in-dialog request, rule B) is held by the same entry.
#[derive(Debug, Default)]
pub(crate) struct OutConns {
    /// How many holders hold each destination, and the kind of connection it was opened
    /// with (what a new one is opened with).
    held: HashMap<SocketAddr, (u32, StreamKind)>,
    /// The destinations each session's holders hold: by leg (`None`: the session itself).
    /// A session has few: a linear search of its own list.
    by_session: HashMap<SessionId, Vec<(Option<usize>, SocketAddr)>>,
    /// Page-mode copies sent over TCP for their size alone, by destination, while its
    /// connect is under way: sent again over UDP if it fails (rule 3).
    pub(super) sized_copies: HashMap<SocketAddr, Vec<SizedCopy>>,
    /// INVITEs that ended without their CANCEL (their flow closed) and may still be
    /// answered 2xx over a new connection (`late_answers.rs`).
    pub(crate) late: LateInvites,
}

/// A page-mode copy waiting for the TCP connect its size asked for.
#[derive(Debug)]
pub(super) struct SizedCopy {
    pub(super) sid: SessionId,
    pub(super) key: TsxKey,
    pub(super) msg: Message,
    /// Its transaction holds the session (a delivery report needs its outcome).
    pub(super) hold: bool,
}

impl OutConns {
    /// Leg `leg` of session `sid` (`None`: the session itself) reaches `to` over a
    /// connection of ours (open, or being opened).
    pub(super) fn hold(
        &mut self,
        (sid, leg): (SessionId, Option<usize>),
        to: SocketAddr,
        kind: StreamKind,
        by_peer: &HashMap<SocketAddr, ConnId>,
        out: &mut VecDeque<Output>,
    ) {
        let mine = self.by_session.entry(sid).or_default();
        if mine.contains(&(leg, to)) {
            return;
        }
        mine.push((leg, to));
        let (n, k) = self.held.entry(to).or_insert((0, kind));
        *n += 1;
        *k = kind;
        if *n == 1
            && let Some(&conn) = by_peer.get(&to).filter(|c| !c.is_accepted())
        {
            out.push_back(Output::ConnUse { conn, in_use: true });
        }
    }

    /// The kind of our connection to `to` when a holder of session `sid` holds it (it
    /// reached `to` over a connection of ours).
    pub(super) fn held_kind(&self, sid: SessionId, to: SocketAddr) -> Option<StreamKind> {
        self.by_session
            .get(&sid)
            .filter(|v| v.iter().any(|(_, a)| *a == to))
            .and_then(|_| self.held.get(&to))
            .map(|(_, k)| *k)
    }

    /// Our connection `conn` to `to` opened: in use at once when a session holds `to`; the
    /// copies that waited for it went over it.
    pub(crate) fn opened(&mut self, conn: ConnId, to: SocketAddr, out: &mut VecDeque<Output>) {
        self.sized_copies.remove(&to);
        if !conn.is_accepted() && self.held.contains_key(&to) {
            out.push_back(Output::ConnUse { conn, in_use: true });
        }
    }

    /// Leg `leg` of session `sid` ended (failed, or its dialog BYE'd): what it held is let
    /// go of, so that a connection no other holder uses falls under the idle rule now, not
    /// when the session ends.
    pub(crate) fn leg_ended(
        &mut self,
        sid: SessionId,
        leg: usize,
        by_peer: &HashMap<SocketAddr, ConnId>,
        out: &mut VecDeque<Output>,
    ) {
        let Some(mine) = self.by_session.get_mut(&sid) else {
            return;
        };
        let mut gone = Vec::new();
        mine.retain(|&(l, to)| {
            let keep = l != Some(leg);
            if !keep {
                gone.push(to);
            }
            keep
        });
        if mine.is_empty() {
            self.by_session.remove(&sid);
        }
        for to in gone {
            self.let_go(to, by_peer, out);
        }
    }

    /// Session `sid` ended: what it and its legs held is let go of.
    pub(crate) fn session_ended(
        &mut self,
        sid: SessionId,
        by_peer: &HashMap<SocketAddr, ConnId>,
        out: &mut VecDeque<Output>,
    ) {
        let Some(held) = self.by_session.remove(&sid) else {
            return;
        };
        for (_, to) in held {
            self.let_go(to, by_peer, out);
        }
    }

    /// One holder of `to` let go of it: the last one leaves the connection unused.
    fn let_go(
        &mut self,
        to: SocketAddr,
        by_peer: &HashMap<SocketAddr, ConnId>,
        out: &mut VecDeque<Output>,
    ) {
        let Some((n, _)) = self.held.get_mut(&to) else {
            return;
        };
        *n -= 1;
        if *n > 0 {
            return;
        }
        self.held.remove(&to);
        if let Some(&conn) = by_peer.get(&to).filter(|c| !c.is_accepted()) {
            out.push_back(Output::ConnUse {
                conn,
                in_use: false,
            });
        }
    }

    /// How many destinations are held (tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An id as `SipTls` gives our connections.
    const SIP_TEST_CONN: u64 = (1 << 40) | 1;

    #[test]
    fn a_destination_is_in_use_while_any_session_holds_it() {
        let to: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let conn = ConnId(SIP_TEST_CONN);
        let mut by_peer = HashMap::new();
        let mut out = VecDeque::new();
        let mut o = OutConns::default();
        let uses = |out: &mut VecDeque<Output>| -> Vec<bool> {
            out.drain(..)
                .filter_map(|x| match x {
                    Output::ConnUse { in_use, .. } => Some(in_use),
                    _ => None,
                })
                .collect()
        };
        // Held while the connect is under way: in use once it opens.
        o.hold(
            (SessionId(1), Some(0)),
            to,
            StreamKind::Sip,
            &by_peer,
            &mut out,
        );
        o.hold(
            (SessionId(1), Some(0)),
            to,
            StreamKind::Sip,
            &by_peer,
            &mut out,
        );
        assert!(uses(&mut out).is_empty());
        by_peer.insert(to, conn);
        o.opened(conn, to, &mut out);
        assert_eq!(uses(&mut out), [true]);
        o.hold(
            (SessionId(2), None),
            to,
            StreamKind::Sip,
            &by_peer,
            &mut out,
        );
        assert!(uses(&mut out).is_empty());
        o.session_ended(SessionId(1), &by_peer, &mut out);
        assert!(uses(&mut out).is_empty(), "session 2 still holds it");
        o.session_ended(SessionId(2), &by_peer, &mut out);
        assert_eq!(uses(&mut out), [false]);
        assert_eq!(o.len(), 0);
        // An accepted connection to the same address is not ours to report.
        by_peer.insert(to, ConnId(ConnId::ACCEPTED | 1));
        o.hold(
            (SessionId(3), Some(1)),
            to,
            StreamKind::Sip,
            &by_peer,
            &mut out,
        );
        o.session_ended(SessionId(3), &by_peer, &mut out);
        assert!(uses(&mut out).is_empty());
    }

    #[test]
    fn a_leg_lets_go_when_it_ends_while_its_session_lives() {
        let to: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let other: SocketAddr = "192.0.2.2:5060".parse().unwrap();
        let conn = ConnId(SIP_TEST_CONN);
        let by_peer = HashMap::from([(to, conn)]);
        let mut out = VecDeque::new();
        let mut o = OutConns::default();
        let s = SessionId(7);
        o.hold((s, Some(0)), to, StreamKind::Sip, &by_peer, &mut out);
        o.hold((s, Some(1)), to, StreamKind::Sip, &by_peer, &mut out);
        o.hold((s, Some(1)), other, StreamKind::Sip, &by_peer, &mut out);
        out.clear();
        o.leg_ended(s, 0, &by_peer, &mut out);
        assert!(out.is_empty(), "leg 1 still uses the connection");
        assert_eq!(o.held_kind(s, to), Some(StreamKind::Sip));
        o.leg_ended(s, 1, &by_peer, &mut out);
        assert!(matches!(
            out.pop_front(),
            Some(Output::ConnUse { conn: c, in_use: false }) if c == conn
        ));
        assert_eq!(o.len(), 0);
        assert_eq!(o.held_kind(s, to), None);
        // A leg that ended holds nothing when the session ends; twice changes nothing.
        o.leg_ended(s, 1, &by_peer, &mut out);
        o.session_ended(s, &by_peer, &mut out);
        assert!(out.is_empty());
    }
}

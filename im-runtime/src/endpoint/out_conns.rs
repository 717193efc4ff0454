//! The SIP connections this endpoint opened, and which sessions use them (split from
//! `route_leg.rs`, which decides how a request travels; this file only counts holders).

use super::super::super::*;
use super::super::*;

/// Which sessions use the SIP connections this endpoint opened (RFC 3261 §18: the client
/// side may close a connection it opened). A session holds a destination from the moment a
/// leg, a page-mode copy or an in-dialog request of it is sent there over a connection of
/// ours until the session ends; the endpoint says so with [`Output::ConnUse`], and the IO
/// layer closes such a connection once nothing holds it and it has been silent for
/// `conn_idle_timeout` ([`crate::io::IoLimits::conn_idle_timeout`]), giving its slot in
/// `max_sip_connections` back. A transaction outside any session (a BYE or a copy's answer
/// still due after its session ended) lives at most 64*T1 = 32 s, well inside that idle
/// time, and every byte it reads restarts the clock. Held by destination address, not by
/// connection: a destination whose connection closed and is opened again (an in-dialog
/// request, rule B) is held by the same entry.
#[derive(Debug, Default)]
pub(crate) struct OutConns {
    /// How many sessions hold each destination, and the kind of connection it was opened
    /// with (what a new one is opened with).
    held: HashMap<SocketAddr, (u32, StreamKind)>,
    /// The destinations each session holds.
    by_session: HashMap<SessionId, Vec<SocketAddr>>,
    /// Page-mode copies sent over TCP for their size alone, by destination, while its
    /// connect is under way: sent again over UDP if it fails (rule 3).
    pub(super) sized_copies: HashMap<SocketAddr, Vec<SizedCopy>>,
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
    /// Session `sid` reaches `to` over a connection of ours (open, or being opened).
    pub(super) fn hold(
        &mut self,
        sid: SessionId,
        to: SocketAddr,
        kind: StreamKind,
        by_peer: &HashMap<SocketAddr, ConnId>,
        out: &mut VecDeque<Output>,
    ) {
        let mine = self.by_session.entry(sid).or_default();
        if mine.contains(&to) {
            return;
        }
        mine.push(to);
        let (n, k) = self.held.entry(to).or_insert((0, kind));
        *n += 1;
        *k = kind;
        if *n == 1
            && let Some(&conn) = by_peer.get(&to).filter(|c| !c.is_accepted())
        {
            out.push_back(Output::ConnUse { conn, in_use: true });
        }
    }

    /// The kind of our connection to `to` when session `sid` holds it (it reached `to`
    /// over a connection of ours).
    pub(super) fn held_kind(&self, sid: SessionId, to: SocketAddr) -> Option<StreamKind> {
        self.by_session
            .get(&sid)
            .filter(|v| v.contains(&to))
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

    /// Session `sid` ended: what it held is let go of.
    pub(crate) fn session_ended(
        &mut self,
        sid: SessionId,
        by_peer: &HashMap<SocketAddr, ConnId>,
        out: &mut VecDeque<Output>,
    ) {
        let Some(addrs) = self.by_session.remove(&sid) else {
            return;
        };
        for to in addrs {
            let Some((n, _)) = self.held.get_mut(&to) else {
                continue;
            };
            *n -= 1;
            if *n > 0 {
                continue;
            }
            self.held.remove(&to);
            if let Some(&conn) = by_peer.get(&to).filter(|c| !c.is_accepted()) {
                out.push_back(Output::ConnUse {
                    conn,
                    in_use: false,
                });
            }
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
        o.hold(SessionId(1), to, StreamKind::Sip, &by_peer, &mut out);
        o.hold(SessionId(1), to, StreamKind::Sip, &by_peer, &mut out);
        assert!(uses(&mut out).is_empty());
        by_peer.insert(to, conn);
        o.opened(conn, to, &mut out);
        assert_eq!(uses(&mut out), [true]);
        o.hold(SessionId(2), to, StreamKind::Sip, &by_peer, &mut out);
        assert!(uses(&mut out).is_empty());
        o.session_ended(SessionId(1), &by_peer, &mut out);
        assert!(uses(&mut out).is_empty(), "session 2 still holds it");
        o.session_ended(SessionId(2), &by_peer, &mut out);
        assert_eq!(uses(&mut out), [false]);
        assert_eq!(o.len(), 0);
        // An accepted connection to the same address is not ours to report.
        by_peer.insert(to, ConnId(ConnId::ACCEPTED | 1));
        o.hold(SessionId(3), to, StreamKind::Sip, &by_peer, &mut out);
        o.session_ended(SessionId(3), &by_peer, &mut out);
        assert!(uses(&mut out).is_empty());
    }
}

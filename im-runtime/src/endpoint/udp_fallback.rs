//! Rule 3's fallback (RFC 3261 §18.1.1): a request that went over TCP for its size alone
//! is sent again over UDP, with a new branch, when the TCP connect fails.

use super::super::super::*;
use super::super::*;
use super::*;

impl<A: Application> Endpoint<A> {
    /// Our connect to `addr` failed: the INVITEs that went over TCP for their size alone
    /// are sent again over UDP (RFC 3261 §18.1.1). Returns the keys of the transactions
    /// they leave, to be ended by the caller (their end fails no leg). A scan of the
    /// sessions, on this rare failure only.
    pub(in crate::endpoint) fn retry_over_udp(
        &mut self,
        now: Instant,
        addr: SocketAddr,
    ) -> Vec<TsxKey> {
        let ids: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.retries_over_udp(addr))
            .map(|(id, _)| *id)
            .collect();
        let copies = self
            .sip_tls
            .out
            .sized_copies
            .remove(&addr)
            .unwrap_or_default();
        if !ids.is_empty() || !copies.is_empty() {
            self.cfg.peer_transports.lock().refused(now, addr);
        }
        let mut keys = Vec::new();
        for c in copies {
            keys.push(c.key.clone());
            let mut s = self.sessions.remove(&c.sid);
            let mut cx = self.ctx(now);
            let branch = format!("{}{}", tsx::MAGIC_COOKIE, cx.ids.token(1));
            let via = cx.via(LegTransport::Udp, &branch);
            if let Some(m) = rewrite(&c.msg, &via, None) {
                tracing_log(
                    "page-mode",
                    &format!("no TCP connection to {addr}: MESSAGE sent again over UDP"),
                );
                let peer = Peer {
                    addr,
                    reliable: false,
                };
                // A session already gone (no report waits for this copy) holds nothing.
                let hold = c.hold && s.is_some();
                if let Some((key, holds, _)) = cx.send_request_holding(&m, peer, c.sid, None, hold)
                    && let Some(s) = s.as_mut()
                {
                    s.track(holds);
                    s.copy_rekeyed(&c.key, key);
                }
            }
            if let Some(s) = s {
                self.sessions.insert(c.sid, s);
                self.dirty.push(c.sid);
            }
        }
        for id in ids {
            let Some(mut s) = self.sessions.remove(&id) else {
                continue;
            };
            let mut cx = self.ctx(now);
            keys.extend(s.retry_over_udp(&mut cx, addr));
            self.sessions.insert(id, s);
            self.dirty.push(id);
        }
        keys
    }
}

impl Session {
    fn retries_over_udp(&self, addr: SocketAddr) -> bool {
        self.legs.iter().any(|l| l.udp_retry_to(addr))
    }

    /// Sends again over UDP the INVITEs of legs that went to `addr` over TCP for their size.
    fn retry_over_udp<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        addr: SocketAddr,
    ) -> Vec<TsxKey> {
        let mut old = Vec::new();
        for i in 0..self.legs.len() {
            let Some(l) = self.legs.get_mut(i) else {
                continue;
            };
            if !l.udp_retry_to(addr) {
                continue;
            }
            l.udp_retry = false;
            let Some(inv) = l.invite.as_deref() else {
                continue;
            };
            let branch = format!("{}{}", tsx::MAGIC_COOKIE, cx.ids.token(1));
            let Some(m) = over_udp(cx, inv, self.facts.focus.raw(), &branch) else {
                continue;
            };
            let peer = Peer {
                addr,
                reliable: false,
            };
            tracing_log(
                "leg",
                &format!("no TCP connection to {addr}: INVITE sent again over UDP"),
            );
            if let Some((key, holds, _)) = cx.send_request(&m, peer, self.id, Some(i)) {
                self.track(holds);
                if let Some(l) = self.legs.get_mut(i) {
                    old.extend(l.invite_key.replace(key));
                    l.peer = Some(peer);
                    l.invite = Some(Box::new(m));
                }
            }
        }
        old
    }
}

impl Leg {
    /// Whether the leg's INVITE waits for a TCP connect to `addr` chosen for its size (and
    /// was not CANCELled meanwhile: that leg just fails).
    fn udp_retry_to(&self, addr: SocketAddr) -> bool {
        self.udp_retry
            && !self.cancelled
            && self.status == LegStatus::Pending
            && self.peer.is_some_and(|p| p.addr == addr && p.reliable)
    }
}

/// `inv` (built by `invite_each` for TCP) as it is sent over UDP: its Via and Contact
/// changed, nothing else.
fn over_udp<A: Application>(
    cx: &Ctx<'_, A>,
    inv: &Message,
    focus: &str,
    branch: &str,
) -> Option<Message> {
    let (udp_via, udp_contact) = cx.via_contact(LegTransport::Udp, focus, branch);
    let tcp_contact = tcp_contact(focus, cx.cfg.sip_advertised);
    rewrite(inv, &udp_via, Some((&tcp_contact, &udp_contact)))
}

/// `m` with its top Via's value `via` and, when given, Contact `from` replaced by `to`.
pub(super) fn rewrite(
    m: &Message,
    udp_via: &str,
    contact: Option<(&str, &str)>,
) -> Option<Message> {
    let text = std::str::from_utf8(m.as_bytes()).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut out = String::with_capacity(text.len() + 16);
    let mut via_done = false;
    for line in head.split("\r\n") {
        match line.split_once(':') {
            Some((name, _)) if !via_done && name.eq_ignore_ascii_case("via") => {
                via_done = true;
                out.push_str("Via: ");
                out.push_str(udp_via);
            }
            Some((name, _)) if name.eq_ignore_ascii_case("contact") => match contact {
                Some((from, to)) => out.push_str(&line.replacen(from, to, 1)),
                None => out.push_str(line),
            },
            _ => out.push_str(line),
        }
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(body);
    Message::parse(Bytes::from(out)).ok()
}

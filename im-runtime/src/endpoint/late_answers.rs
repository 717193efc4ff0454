//! 2xx answers to INVITEs we gave up without a CANCEL.
//!
//! When a leg's INVITE went over the invitee's registration flow and that flow has closed,
//! its CANCEL is not sent and the INVITE's client transaction ends at once
//! ([`Ctx::fail_now`], `legs.rs`): the leg's machine hears Timer B and the leg settles.
//! The invitee may still answer 200 over a new connection (RFC 3261 §18.2.2). A 2xx is the
//! TU's to handle, not the transaction's (RFC 3261 §13.2.2.4, §17.1.1.2; RFC 6026 §7.2),
//! so such a 2xx, which finds no transaction, is not dropped: a UAC that gets a 2xx for an
//! INVITE it no longer wants ACKs it and then decides what becomes of the dialog.
//!
//! That decision is the leg machine's, as for a 2xx that crossed a CANCEL that was sent:
//! the leg's machine is moved here once it has heard Timer B and hears the 2xx (7.9.1.4
//! `answered_after_cancel`, in `cancelling, failed`: BYE). Its `bye` is carried out on the
//! dialog the 2xx made; its other actions are not (the leg has settled, its outcome is
//! recorded, its session may be over), and are logged as such.
//!
//! The record ([`LateInvites`]) is indexed by the INVITE's transaction key, so a response
//! looks it up in O(1); each entry lives for the 2xx window, 64*T1 (the INVITE client
//! transaction's Accepted state, RFC 6026 §7.2), and at most [`MAX_LATE_INVITES`] are kept.
//! The earliest expiry is one of the endpoint's deadlines (`poll_timeout`), and the timer
//! input drops what is due ([`LateInvites::expire`], O(entries dropped): they expire in the
//! order they were added), so an idle server holds none 64*T1 after the last; an entry
//! added or looked up drops what is due too, so none is used past its window between ticks.

use super::super::super::*;
use super::super::machines::log_action;
use super::super::*;
use crate::proto::transaction::TsxMap;

/// The most INVITEs kept waiting for a late 2xx: each costs a few hundred bytes; past this
/// the oldest is forgotten (its 2xx is then dropped, as before this record existed).
pub(crate) const MAX_LATE_INVITES: usize = 1024;

/// INVITEs ended without a CANCEL that may still be answered 2xx, by transaction key.
#[derive(Default)]
pub(crate) struct LateInvites {
    by_key: TsxMap<LateInvite>,
    /// Keys in the order they were added, which is the order they expire in (all windows
    /// are 64*T1 long).
    order: VecDeque<(Instant, TsxKey)>,
}

impl std::fmt::Debug for LateInvites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LateInvites")
            .field("len", &self.by_key.len())
            .finish()
    }
}

/// What the dialog a late 2xx makes needs from its INVITE (RFC 3261 §12.1.2), and who
/// decides its fate.
pub(crate) struct LateInvite {
    sid: SessionId,
    leg: usize,
    call_id: String,
    local_tag: String,
    /// From and To of the INVITE (without tags), its Request-URI and CSeq number.
    local_uri: String,
    remote_uri: String,
    request_uri: String,
    cseq: u32,
    /// Where the INVITE went (the closed flow).
    peer: Peer,
    /// It went over TLS: so do the ACK and BYE (the flow is gone, so its kind is read
    /// from the INVITE's Via).
    tls: bool,
    /// The leg's machine once it has heard Timer B; taken by the first 2xx.
    machine: Option<Box<dyn DynMachine>>,
    /// The dialog the first 2xx made: its retransmissions are ACKed on it.
    dialog: Option<Dialog>,
}

impl LateInvites {
    /// INVITE `invite` (key `key`) of leg `leg` of session `sid`, sent to `peer`, ends
    /// now without a CANCEL: a 2xx to it until `until` is handled here.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn expect(
        &mut self,
        now: Instant,
        until: Instant,
        key: TsxKey,
        (sid, leg): (SessionId, usize),
        (call_id, local_tag): (&str, &str),
        invite: &Message,
        peer: Peer,
    ) {
        self.expire(now);
        while self.by_key.len() >= MAX_LATE_INVITES {
            let Some((_, old)) = self.order.pop_front() else {
                break;
            };
            self.by_key.remove(&old);
        }
        let entry = LateInvite {
            sid,
            leg,
            call_id: call_id.to_string(),
            local_tag: local_tag.to_string(),
            local_uri: super::super::addr_of(invite.from(), invite.header(HeaderName::From))
                .to_string(),
            remote_uri: super::super::addr_of(invite.to(), invite.header(HeaderName::To))
                .to_string(),
            request_uri: invite.request_uri_str().unwrap_or_default().to_string(),
            cseq: invite.cseq().map_or(1, |c| c.seq),
            peer,
            tls: invite.header(HeaderName::Via).is_some_and(|v| {
                v.get(..11)
                    .is_some_and(|t| t.eq_ignore_ascii_case("SIP/2.0/TLS"))
            }),
            machine: None,
            dialog: None,
        };
        if self.by_key.insert(key.clone(), entry).is_none() {
            self.order.push_back((until, key));
        }
    }

    /// Whether INVITE `key` waits here for a late 2xx (its leg's machine comes next).
    pub(crate) fn waits_for(&self, key: &TsxKey) -> bool {
        self.by_key.get(key).is_some_and(|e| e.machine.is_none())
    }

    /// The leg's machine, after it heard Timer B, decides what a late 2xx to `key` means.
    pub(crate) fn decided_by(&mut self, key: &TsxKey, machine: Box<dyn DynMachine>) {
        if let Some(e) = self.by_key.get_mut(key) {
            e.machine = Some(machine);
        }
    }

    /// Drops the entries whose window is over at `now`.
    pub(crate) fn expire(&mut self, now: Instant) {
        while let Some((until, _)) = self.order.front()
            && *until <= now
        {
            if let Some((_, key)) = self.order.pop_front() {
                self.by_key.remove(&key);
            }
        }
    }

    /// When the earliest entry's window ends: the endpoint's timer for this record.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.order.front().map(|(until, _)| *until)
    }

    /// How many INVITEs wait for a late 2xx.
    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }
}

/// The dialog 2xx `resp` makes for `e`'s INVITE (UAC side, RFC 3261 §12.1.2), as
/// [`Dialog::client_side`] makes it from the INVITE itself.
fn dialog(e: &LateInvite, resp: &Message) -> Dialog {
    let inv = super::super::UacInvite {
        call_id: &e.call_id,
        local_tag: &e.local_tag,
        local_uri: super::super::Piece::Raw(&e.local_uri),
        remote_uri: super::super::Piece::Raw(&e.remote_uri),
        request_uri: &e.request_uri,
        cseq: e.cseq,
    };
    Dialog::uac(&inv, resp, e.peer)
}

impl<A: Application> Endpoint<A> {
    /// `resp`, a 2xx to INVITE `key` that matched no client transaction: when that INVITE
    /// ended without its CANCEL ([`LateInvites`]), it is ACKed over a new connection to
    /// its Contact (the flow it went over is closed; RFC 3261 §13.2.2.4, §18.1.1) and the
    /// leg's machine decides what becomes of the dialog (7.9.1.4 `answered_after_cancel`:
    /// BYE). Returns whether it was such a 2xx; any other is the caller's (a stray
    /// response, dropped).
    pub(crate) fn late_answer(&mut self, now: Instant, key: &TsxKey, resp: &Message) -> bool {
        let late = &mut self.sip_tls.out.late;
        late.expire(now);
        let Some(e) = late.by_key.get_mut(key) else {
            return false;
        };
        let status = resp.status().map(u16::from).unwrap_or(0);
        let first = e.dialog.is_none();
        let mut d = match e.dialog.take() {
            Some(d) => d,
            None => dialog(e, resp),
        };
        let machine = e.machine.take();
        let (sid, leg, tls) = (e.sid, e.leg, e.tls);
        // The session's facts when it is still up (a rule may read them), else none: the
        // leg's status is the 2xx either way, as for a leg machine in its session.
        let mut facts = self
            .sessions
            .get(&sid)
            .map(|s| s.facts.clone())
            .unwrap_or_default();
        facts.status = Some(status);
        let mut cx = self.ctx(now);
        if first {
            d.tls = cx.cfg.sip_tls_advertised.filter(|_| tls);
            tracing_log(
                "leg",
                &format!(
                    "{status} to INVITE {} after its CANCEL was not sent (flow closed): ACK over a new connection",
                    d.call_id()
                ),
            );
        }
        // RFC 3261 §13.2.2.4: every 2xx is ACKed, its retransmissions too.
        let reachable = cx.redial(&mut d, (sid, Some(leg)));
        let (ack, peer) = d.ack(cx.cfg.sip_advertised);
        if reachable {
            cx.transmit(peer, ack);
        }
        let actions = match machine {
            Some(mut m) if first => {
                let env = cx.env();
                m.handle(now, &Event::Response(status), &facts, &env)
            }
            _ => Vec::new(),
        };
        for a in actions {
            if matches!(a.kind, ActionKind::Bye) && !d.ended {
                log_action(d.call_id(), &a, "late 2xx");
                d.ended = true;
                if let Some((bye, p)) = d.request(Method::Bye, cx.cfg.sip_advertised)
                    && let Some((bkey, _, _)) = cx.send_request(&bye, p, sid, Some(leg))
                    && !reachable
                {
                    cx.fail_now(&bkey);
                }
            } else {
                log_action(
                    d.call_id(),
                    &a,
                    "not carried out: the leg settled when its INVITE ended",
                );
            }
        }
        // The connection to the invitee is held only while this 2xx is handled; the BYE's
        // transaction is short and its answer restarts the idle clock (as `bye_leg`).
        cx.leg_ended(sid, leg);
        if let Some(e) = self.sip_tls.out.late.by_key.get_mut(key) {
            e.dialog = Some(d);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite_on(branch: &str) -> Message {
        let raw = format!(
            "INVITE sip:bob@192.0.2.9:5060;transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\nFrom: <sip:conf@192.0.2.1>;tag=ours\r\nTo: <sip:bob@example.com>\r\nCall-ID: late-call\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        Message::parse(Bytes::from(raw)).unwrap()
    }

    fn invite() -> Message {
        invite_on("late1")
    }

    fn key(m: &Message) -> TsxKey {
        builder::tsx_message(m).unwrap().key
    }

    #[test]
    fn entries_expire_after_their_window_and_are_bounded() {
        let inv = invite();
        let k = key(&inv);
        #[allow(clippy::disallowed_methods)]
        let t0 = Instant::now();
        let peer = Peer {
            addr: "192.0.2.9:40000".parse().unwrap(),
            reliable: true,
        };
        let mut l = LateInvites::default();
        let w = Duration::from_secs(32);
        l.expect(
            t0,
            t0 + w,
            k.clone(),
            (SessionId(1), 0),
            ("late-call", "ours"),
            &inv,
            peer,
        );
        assert!(l.waits_for(&k));
        let e = l.by_key.get(&k).unwrap();
        assert_eq!(e.local_uri, "<sip:conf@192.0.2.1>");
        assert_eq!(e.remote_uri, "<sip:bob@example.com>");
        assert_eq!(e.request_uri, "sip:bob@192.0.2.9:5060;transport=tcp");
        l.expire(t0 + w - Duration::from_millis(1));
        assert_eq!(l.len(), 1);
        l.expire(t0 + w);
        assert_eq!(l.len(), 0);
        assert!(!l.waits_for(&k));

        // Past the bound the oldest is forgotten, not the newest.
        let keys: Vec<TsxKey> = (0..=MAX_LATE_INVITES)
            .map(|i| {
                let inv = invite_on(&format!("b{i}"));
                let k = key(&inv);
                l.expect(
                    t0,
                    t0 + w,
                    k.clone(),
                    (SessionId(1), i),
                    ("late-call", "ours"),
                    &inv,
                    peer,
                );
                k
            })
            .collect();
        assert_eq!(l.len(), MAX_LATE_INVITES);
        assert!(!l.waits_for(&keys[0]));
        assert!(l.waits_for(&keys[1]));
        assert!(l.waits_for(&keys[MAX_LATE_INVITES]));
    }
}

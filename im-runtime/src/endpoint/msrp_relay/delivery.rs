//! The relay's deliveries: sending the held message to a leg in chunks, learning the copy's
//! fate (the transaction response to its last chunk, or, for a copy that asked for one, the
//! invitee's success REPORT, RFC 4975 §7.1.2), and reporting to the originator. Each copy's
//! outcome is heard once: `Side::done` is set with the first.

use super::{MsrpRelay, RelayEvent, SideKey};
use crate::endpoint::session::SessionId;
use crate::machine::ReportOutcome;
use crate::proto::msrp::{
    self, ContinuationFlag, FailureReport, Frame, MessageId, StatusCode, SuccessReport,
    TransactionId,
};
use crate::transport::{ConnId, Output};
use std::collections::VecDeque;

/// A delivery in flight to a leg's side.
pub(super) struct Delivery {
    /// Transaction id of the last chunk while its response is awaited: that response
    /// is the outcome (or, with `success_report`, a failure only).
    pub(super) tid: Option<TransactionId>,
    /// The message's id: a REPORT about it is the outcome too.
    pub(super) mid: MessageId,
    /// The copy's SEND asked `Success-Report: yes`: only the success REPORT covering every
    /// byte says it was delivered, the 200 to the last chunk being hop by hop through an
    /// invitee's own relays (RFC 4976).
    pub(super) success_report: bool,
    /// The message's length in bytes.
    len: u64,
    /// Bytes `1..=confirmed` are covered by the success REPORTs heard so far (a receiver may
    /// report chunk by chunk, RFC 4975 §7.1.2).
    confirmed: u64,
}

impl Delivery {
    /// The 200 to the last chunk came and only the success REPORT is awaited: the
    /// connection works, so the relay's idle rule leaves the side alone (the report wait
    /// of the session, [`MsrpRelay::report_wait_over`], bounds it).
    pub(super) fn awaits_report_only(&self) -> bool {
        self.success_report && self.tid.is_none()
    }
}

impl MsrpRelay {
    /// Sends the held message to leg `i` in chunks, asking for a success REPORT when
    /// `success_report` (the spec's `deliver { success-report yes }`); the connection it
    /// went on, if it did.
    #[allow(clippy::too_many_arguments)] // the ids' randomness comes from the endpoint
    pub(crate) fn deliver(
        &mut self,
        sid: SessionId,
        i: usize,
        m: &msrp::Message,
        success_report: bool,
        tid_rand: [u8; 10],
        mid_rand: [u8; 10],
        out: &mut VecDeque<Output>,
    ) -> Option<ConnId> {
        let key = SideKey::leg(sid, i)?;
        let side = self.sides.get(&key)?;
        let conn = side.conn?;
        let local = self.local_of(side)?;
        let mut template = Frame::request(
            TransactionId::from_random(&tid_rand),
            msrp::Method::Send,
            side.remote_path(),
            vec![local],
        );
        let mid = MessageId::from_random(&mid_rand);
        template.message_id = Some(mid.clone());
        // How the relay learns the copy's fate, which the leg machine hears as `msrp
        // delivered` / `msrp failed`: a transaction response to every chunk (RFC 4975
        // §7.1.2, `Failure-Report: yes`), the last chunk's 200 meaning delivered. `no` would
        // leave the relay no answer at all and `partial` none on success, so this is the one
        // value under which those events exist (docs/decisions.md). Whether a success REPORT
        // is asked for is the spec's (`deliver { success-report yes }`).
        template.success_report = Some(if success_report {
            SuccessReport::Yes
        } else {
            SuccessReport::No
        });
        template.failure_report = Some(FailureReport::Yes);
        // Never defaulted in practice: the held message is a reassembled one of at least one
        // byte (an empty SEND only binds, `on_send`), so one of its chunks had a body, and
        // the decoder refuses a body without Content-Type (RFC 4975 §7.1.1). The default only
        // keeps the type total.
        let ct = m
            .content_type
            .clone()
            .unwrap_or_else(|| "text/plain".into());
        let mut chunker = msrp::Chunker::new(template, ct, m.data.clone(), self.chunk_size);
        let mut last = None;
        loop {
            let tid = self.tid(tid_rand);
            let Some(chunk) = chunker.next_chunk(tid.clone()) else {
                break;
            };
            if chunk.flag == ContinuationFlag::End {
                last = Some(tid);
            }
            self.send(conn, &chunk, out);
        }
        if let Some(side) = self.sides.get_mut(&key) {
            side.delivery = Some(Box::new(Delivery {
                tid: last,
                mid,
                success_report,
                len: m.data.len() as u64,
                confirmed: 0,
            }));
        }
        Some(conn)
    }

    /// A transaction response on `conn`: the outcome of the delivery whose last chunk it
    /// answers, unless that copy awaits its success REPORT and the response is a 200.
    pub(super) fn on_response(
        &mut self,
        conn: ConnId,
        f: &Frame,
        code: u16,
        events: &mut Vec<RelayEvent>,
    ) {
        // Only the sessions on this connection can have sent the chunk (usually one). By
        // position rather than over a copy of the list: a response is the commonest frame,
        // and the list is not changed in the loop.
        let n = self.conns.get(&conn).map_or(0, |c| c.sides.len());
        for j in 0..n {
            let Some(key) = self.conns.get(&conn).and_then(|c| c.sides.get(j).copied()) else {
                break;
            };
            let (sid, Some(i)) = (key.sid, key.leg_index()) else {
                continue;
            };
            if let Some(side) = self.sides.get_mut(&key)
                && side.conn == Some(conn)
                && let Some(d) = side.delivery.as_mut()
                && d.tid.as_ref() == Some(&f.transaction_id)
            {
                // The id stays: a REPORT about the message may still come.
                d.tid = None;
                if side.done || (code == 200 && d.success_report) {
                    break;
                }
                side.done = true;
                events.push(RelayEvent::Delivered(sid, i, code == 200, code));
                break;
            }
        }
    }

    /// A REPORT from leg side `key` (RFC 4975 §7.1.2), matched to its delivery by
    /// Message-ID: a failure REPORT fails the copy; success REPORTs deliver it once they
    /// cover every byte (Byte-Range, which a REPORT must carry). Heard once: nothing after
    /// the copy's outcome.
    pub(super) fn on_report(&mut self, key: SideKey, f: &Frame, events: &mut Vec<RelayEvent>) {
        let (sid, Some(i)) = (key.sid, key.leg_index()) else {
            return;
        };
        let Some(side) = self.sides.get_mut(&key) else {
            return;
        };
        if side.done {
            return;
        }
        let Some(d) = side.delivery.as_mut() else {
            return;
        };
        if f.message_id.as_ref() != Some(&d.mid) {
            return;
        }
        let code = f.status.as_ref().map_or(0, |s| s.code.0);
        if code == 200 {
            // Only a contiguous prefix is counted: a REPORT out of order is not the outcome.
            match f.byte_range {
                Some(r) if r.start <= d.confirmed.saturating_add(1) => {
                    d.confirmed = d.confirmed.max(r.end.unwrap_or(0));
                }
                _ => {}
            }
            if d.confirmed < d.len {
                return;
            }
        }
        d.tid = None;
        side.done = true;
        events.push(RelayEvent::Delivered(sid, i, code == 200, code));
    }

    /// The session's wait for leg `i`'s success REPORT is over: whether its copy was still
    /// unsettled (it is now: nothing more about it is heard).
    pub(crate) fn report_wait_over(&mut self, sid: SessionId, i: usize) -> bool {
        match SideKey::leg(sid, i).and_then(|k| self.sides.get_mut(&k)) {
            Some(side) if !side.done => {
                side.done = true;
                if let Some(d) = side.delivery.as_mut() {
                    d.tid = None;
                }
                true
            }
            _ => false,
        }
    }

    /// A success or failure REPORT to the originator, when its SEND asked for one.
    pub(crate) fn report_to_originator(
        &mut self,
        sid: SessionId,
        outcome: &ReportOutcome,
        rand: [u8; 10],
        out: &mut VecDeque<Output>,
    ) {
        let tid = self.tid(rand);
        let Some(side) = self.sides.get(&SideKey::originator(sid)) else {
            return;
        };
        let Some(inbound) = side.inbound.as_deref() else {
            return;
        };
        let (Some(conn), Some(send), received) =
            (side.conn, inbound.first_send.as_ref(), inbound.received)
        else {
            return;
        };
        let report = match outcome {
            ReportOutcome::Success => (send.effective_success_report() == SuccessReport::Yes)
                .then(|| msrp::success_report(send, tid, received))
                .flatten(),
            ReportOutcome::Failure { status, reason } => (send.effective_failure_report()
                != FailureReport::No)
                .then(|| {
                    let len = received;
                    let range = msrp::ByteRange {
                        start: 1,
                        end: Some(len),
                        total: Some(len),
                    };
                    // The status and comment are the spec's (`report failure 408 "…"`).
                    let status = msrp::Status {
                        namespace: 0,
                        code: StatusCode(*status),
                        comment: (!reason.is_empty()).then(|| reason.to_string()),
                    };
                    msrp::report_for(send, tid, range, status)
                })
                .flatten(),
        };
        if let Some(r) = report {
            self.send(conn, &r, out);
        }
    }

    /// Whether the originator's message asked for a success REPORT (`Success-Report: yes`
    /// on its first SEND with a body): `message.success_report` for the rules.
    pub(crate) fn originator_wants_success_report(&self, sid: SessionId) -> bool {
        self.sides
            .get(&SideKey::originator(sid))
            .and_then(|s| s.inbound.as_ref()?.first_send.as_ref())
            .is_some_and(|f| f.effective_success_report() == SuccessReport::Yes)
    }
}

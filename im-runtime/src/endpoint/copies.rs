//! The copies a session sends of a message (one per recipient) and their outcomes: each
//! copy's final answer, timeout or failure to be sent at all becomes [`Event::Copy`] (or
//! `timer F`) for the machines, whose rules (`specs/ext_delivery_reports.imspec`, the
//! offline store's) decide what it means. The notifications they send about a copy are
//! `imdn.rs`'s.

use super::super::*;
use super::imdn::{ImdnRequest, read_request};
use super::*;
use crate::machine::{CopyOutcome, MessageFacts};

/// One recipient's copy: who, and the client transaction that carries it.
#[derive(Clone, Debug)]
pub(super) struct CopyEntry {
    pub(super) uri: Uri,
    key: Option<TsxKey>,
    pub(super) done: bool,
}

/// The copies a session sent and the IMDN request they answer.
#[derive(Clone, Debug, Default)]
pub(crate) struct Copies {
    pub(super) request: Option<ImdnRequest>,
    pub(super) entries: Vec<CopyEntry>,
    /// The copy whose [`Event::Copy`] the machines are handling (`send imdn` is about it).
    pub(super) current: Option<usize>,
    /// `store copy` failed for the current copy (the rule whose it was): its event runs
    /// again, not storable.
    pub(super) store_refused: Option<crate::machine::Origin>,
    /// Notifications `collect imdn` kept (each a whole `message/cpim` IMDN), sent together
    /// once every copy has its outcome.
    pub(super) collected: Vec<Bytes>,
    /// The fan-out is still adding copies: the copies seen so far are not all there are,
    /// so the collected notifications wait.
    pub(super) fanning_out: bool,
    /// What the machines decided about the copy that was not sent (`copy unroutable`,
    /// `copy expired`) whose event they are handling.
    pub(super) unsent: Unsent,
    /// The page-mode payload of the session's MESSAGE ([`facts::payload`]), found when its
    /// facts were read: its IMDN request and every copy use it, so its multipart body is
    /// split once.
    pub(super) payload: Option<facts::Payload>,
}

/// The machines' decision about a copy that was not sent ([`Copies::unsent`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Unsent {
    /// No such event is being handled.
    #[default]
    Idle,
    /// The machines are hearing it; nothing decided yet.
    Asking,
    /// `outcome failed STATUS`: the copy fails with that status.
    Failed(u16),
    /// `store copy` kept it (the application took it).
    Kept,
}

impl Copies {
    /// The recipient of the copy whose [`Event::Copy`] the machines are handling.
    pub(super) fn current_recipient(&self) -> Option<&Uri> {
        self.entries.get(self.current?).map(|c| &c.uri)
    }
}

impl Session {
    /// Pager mode: the legs have settled, so each invitee's copy has its outcome. The
    /// message is the originator's MSRP message (held); its IMDN request is read now, as it
    /// did not exist when the session started. Notifications go as SIP MESSAGE: the
    /// originator's pager-mode offer is sendonly, and under RFC 4975 the SDP direction
    /// (RFC 4566 §6) covers MSRP SEND, so the server may not SEND it anything over MSRP.
    pub(super) fn legs_copies_settled<A: Application>(&mut self, cx: &mut Ctx<'_, A>) {
        let Some(held) = &self.held else {
            return;
        };
        let ct = held.content_type.clone().unwrap_or_default();
        let (facts, req) = read_request(&ct, &held.data);
        // The MSRP fact stays: it was read from the message's first SEND.
        self.facts.message = MessageFacts {
            success_report: self.facts.message.success_report,
            ..facts
        };
        self.copies.request = req;
        self.copies.fanning_out = true;
        for i in 0..self.legs.len() {
            let l = &self.legs[i];
            let (outcome, status) = match (l.delivery, l.status) {
                (Some(200), _) => (CopyOutcome::Delivered, 200),
                (Some(code), _) => (CopyOutcome::Failed(code), code),
                // A leg that failed (refused, timed out, unroutable) and whose machine
                // recorded no outcome: a spec gap, since the specs record one in every rule
                // that fails a leg (7.9.1.4). The copy fails with the SIP status the leg
                // ended with, if any (an unroutable invitee has none: 0).
                (None, LegStatus::Failed) => {
                    let s = l.status_code.unwrap_or(0);
                    // The event the missing `outcome` belonged to, as the spec writes it.
                    let trigger = match l.status_code {
                        Some(c) => format!("response {c}"),
                        None if l.invite_key.is_some() => "timer B".to_owned(),
                        None => "leg unroutable".to_owned(),
                    };
                    self.spec_gap(
                        Some(i),
                        &trigger,
                        format_args!(
                            "no spec rule recorded the outcome of a failed leg; its copy fails with {s}"
                        ),
                    );
                    (CopyOutcome::Failed(s), s)
                }
                // Connected or ended with no copy sent (the originator left first, or a 2xx
                // crossed the CANCEL): no copy went, which is no missing rule.
                (None, _) => (CopyOutcome::Failed(0), 0),
            };
            self.copies.entries.push(CopyEntry {
                uri: l.uri.clone(),
                key: None,
                done: false,
            });
            let e = self.copies.entries.len() - 1;
            self.copy_outcome(cx, e, outcome, status);
        }
        self.copies.fanning_out = false;
        self.flush_collected(cx);
    }

    /// A copy for `uri` went out on client transaction `key`.
    pub(super) fn copy_sent(&mut self, uri: Uri, key: TsxKey) {
        if self.copies.entries.capacity() == 0 {
            // Room for one copy per listed recipient at once (the originator and repeats
            // are left out, so it is at most that), instead of growing 4, 8, 16. A group's
            // members are not in the facts: that vector grows as before.
            self.copies
                .entries
                .reserve_exact(self.facts.recipients.len());
        }
        self.copies.entries.push(CopyEntry {
            uri,
            key: Some(key),
            done: false,
        });
    }

    /// The copy sent on `old` goes on as transaction `new` (sent again over UDP when its
    /// TCP connect failed, `route_leg.rs`): the answer to `new` is its outcome.
    pub(super) fn copy_rekeyed(&mut self, old: &TsxKey, new: TsxKey) {
        if let Some(c) = self
            .copies
            .entries
            .iter_mut()
            .find(|c| c.key.as_ref() == Some(old))
        {
            c.key = Some(new);
        }
    }

    /// A copy for `uri` could not be sent (no route): the machines hear `copy unroutable`
    /// and say what it fails with (ext-dr.10), then it fails as any copy does, unless its
    /// recipient is an offline user the spec keeps it for (`copy.*`, `offline.rs`).
    pub(super) fn copy_unroutable<A: Application>(&mut self, cx: &mut Ctx<'_, A>, uri: Uri) {
        let copy = self.offline_facts(cx, &uri);
        self.copy_not_sent(cx, uri, CopyOutcome::Unroutable, copy);
    }

    /// A copy that was never sent (`why`: no route, or a kept copy that expired): the
    /// machines hear `why` with `copy` as its facts and decide its fate: the status it fails
    /// with (`outcome failed N`), after which it is a failed copy like any other, or `store
    /// copy`. With no decision (a spec gap, logged) it fails with the runtime's status.
    pub(super) fn copy_not_sent<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        uri: Uri,
        why: CopyOutcome,
        copy: crate::machine::CopyFacts,
    ) {
        let fallback = offline::unsent_fallback(cx, &uri, why);
        self.copies.entries.push(CopyEntry {
            uri,
            key: None,
            done: false,
        });
        let i = self.copies.entries.len() - 1;
        self.facts.copy = copy;
        self.copies.unsent = Unsent::Asking;
        self.copies.current = Some(i);
        self.run_machines(cx, &Event::Copy(why));
        // A rule stored it and the application could not keep it: the rules decide again
        // with the copy not storable, as for a failed copy (`copy_outcome`).
        let mut refused = self.copies.store_refused.take();
        if refused.is_some() && self.copies.unsent == Unsent::Asking {
            self.facts.copy.storable = false;
            self.run_machines(cx, &Event::Copy(why));
            refused = self.copies.store_refused.take().or(refused);
        }
        self.copies.current = None;
        let status = match std::mem::take(&mut self.copies.unsent) {
            Unsent::Failed(s) => s,
            Unsent::Kept => {
                if let Some(c) = self.copies.entries.get_mut(i) {
                    c.done = true;
                }
                self.facts.copy = crate::machine::CopyFacts::default();
                self.flush_collected(cx);
                return;
            }
            // A rule decided (`store copy`) and the store failed: no gap in the spec; the
            // copy fails as one that had no rule would.
            Unsent::Idle | Unsent::Asking if let Some(o) = refused => {
                tracing::warn!(
                    call_id = %self.call_id,
                    session = self.id.0,
                    rule = %format_args!("{}/{}", o.clause, o.rule),
                    status = fallback,
                    "the application could not keep the copy the rule stored; it fails with the runtime's status"
                );
                fallback
            }
            Unsent::Idle | Unsent::Asking => {
                let trigger = match why {
                    CopyOutcome::Expired => "copy expired",
                    _ => "copy unroutable",
                };
                self.spec_gap(
                    None,
                    trigger,
                    format_args!(
                        "no spec rule said what a copy that was not sent fails with; the runtime's status {fallback} is used"
                    ),
                );
                fallback
            }
        };
        // A kept copy that expired is not kept again by the rules of `copy failed`.
        if why == CopyOutcome::Expired {
            self.facts.copy.storable = false;
        }
        self.copy_outcome(cx, i, CopyOutcome::Failed(status), status);
        self.facts.copy = crate::machine::CopyFacts::default();
    }

    /// The final answer (`Some(status)`) or timeout (`None`) of a client transaction the
    /// session started outside any leg. Returns `false` when it did not carry a copy.
    pub(super) fn copy_answered<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        key: &TsxKey,
        status: Option<u16>,
    ) -> bool {
        let Some(i) = self
            .copies
            .entries
            .iter()
            .position(|c| c.key.as_ref() == Some(key))
        else {
            return false;
        };
        match status {
            Some(s) if s < 200 => {}
            Some(s) if s < 300 => self.copy_outcome(cx, i, CopyOutcome::Delivered, s),
            Some(s) => self.copy_outcome(cx, i, CopyOutcome::Failed(s), s),
            None => self.copy_outcome(cx, i, CopyOutcome::Failed(0), 0),
        }
        true
    }

    /// A page-mode copy's MESSAGE got no final answer (Timer F, or a transport error): the
    /// copy is over, and the machines hear `timer F` about it (the copy current, no status)
    /// and decide what it is (ext-dr.8: failed). Returns whether `key` was a copy's.
    pub(super) fn copy_timed_out<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        key: &TsxKey,
    ) -> bool {
        let Some(i) = self
            .copies
            .entries
            .iter()
            .position(|c| c.key.as_ref() == Some(key))
        else {
            return false;
        };
        let Some(c) = self.copies.entries.get_mut(i) else {
            return false;
        };
        if c.done {
            return true;
        }
        c.done = true;
        tracing_log(
            "copy",
            &format!(
                "session {} recipient {}: no final response (timer F)",
                self.call_id,
                c.uri.raw()
            ),
        );
        let saved = self.facts.status.take();
        self.copies.current = Some(i);
        self.run_machines(cx, &Event::Timer(Timer::F));
        self.copies.current = None;
        self.facts.status = saved;
        self.flush_collected(cx);
        true
    }

    fn copy_outcome<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        i: usize,
        outcome: CopyOutcome,
        status: u16,
    ) {
        let Some(c) = self.copies.entries.get_mut(i) else {
            return;
        };
        if c.done {
            return;
        }
        c.done = true;
        tracing_log_args(
            "copy",
            format_args!(
                "session {} recipient {}: {outcome:?}",
                self.call_id,
                c.uri.raw()
            ),
        );
        let saved = self.facts.status.replace(status);
        self.copies.current = Some(i);
        self.run_machines(cx, &Event::Copy(outcome));
        if self.copies.store_refused.take().is_some() {
            // The application could not keep it after all: the same outcome, not storable,
            // so the spec decides what a failed copy gets.
            self.facts.copy.storable = false;
            self.run_machines(cx, &Event::Copy(outcome));
        }
        self.copies.current = None;
        self.facts.status = saved;
        self.flush_collected(cx);
    }
}

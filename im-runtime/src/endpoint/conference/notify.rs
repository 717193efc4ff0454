//! NOTIFYs: the state document sent to subscribers, its answers, and the expiry of
//! subscriptions.

use super::super::super::*;
use super::super::*;
use super::*;
use crate::proto::body::conference_info::{
    CONTENT_TYPE, Cause, ConferenceInfo, Delivery, Method as Disconnect, Participant, Status,
};

/// The reason phrase of an MSRP status (RFC 4975 §10).
fn msrp_reason(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        403 => "Forbidden",
        408 => "Request Timeout",
        413 => "Stop Sending Message",
        415 => "Unsupported Media Type",
        423 => "Interval Out-of-Bounds",
        481 => "Session Does Not Exist",
        501 => "Unknown Method",
        506 => "Session Already Bound",
        _ => "",
    }
}

impl Session {
    /// `notify subscribers`: the current state to every subscriber.
    pub(in crate::endpoint::session) fn notify_subscribers<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
    ) {
        if self.conference.subs.is_empty() {
            return;
        }
        let mut subs = std::mem::take(&mut self.conference.subs);
        for s in &mut subs {
            self.notify_one(cx, s, None);
        }
        self.conference.subs = subs;
    }

    /// After an input: when what subscribers see changed since they were last told, the
    /// machines hear `legs changed` (only while there are subscribers: no one else reads it).
    pub(in crate::endpoint::session) fn conference_after_input<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
    ) {
        if self.conference.subs.is_empty() {
            return;
        }
        let now = self.participants();
        if now == self.conference.seen {
            return;
        }
        self.conference.seen = now;
        self.run_machines(cx, &Event::LegsChanged);
    }

    /// Subscriptions whose time is up get their last NOTIFY (`reason=timeout`).
    pub(in crate::endpoint::session) fn subscriptions_due<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
    ) {
        if self.conference.subs.is_empty() {
            self.arm_subscription_timer();
            return;
        }
        let (due, keep): (Vec<Subscription>, Vec<Subscription>) =
            std::mem::take(&mut self.conference.subs)
                .into_iter()
                .partition(|s| s.expires_at <= cx.now);
        self.conference.subs = keep;
        for mut s in due {
            cx.conf.removed(&s.key(), &s.who);
            self.notify_one(cx, &mut s, Some("timeout"));
        }
        self.arm_subscription_timer();
    }

    /// The session is over: every subscription gets its last NOTIFY
    /// (`terminated;reason=noresource`, RFC 6665 §4.2.2) with the final state.
    pub(in crate::endpoint::session) fn end_subscriptions<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
    ) {
        let subs = if self.conference.subs.is_empty() {
            Vec::new()
        } else {
            std::mem::take(&mut self.conference.subs)
        };
        for mut s in subs {
            cx.conf.removed(&s.key(), &s.who);
            self.notify_one(cx, &mut s, Some("noresource"));
        }
        self.timers
            .stop(|k| matches!(k, SessionTimer::Subscriptions));
    }

    /// A NOTIFY was answered (`Some(status)`) or timed out (`None`). Returns whether it was
    /// one of ours. An error answer ends the subscription without another NOTIFY.
    pub(in crate::endpoint::session) fn notify_answered<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        key: &TsxKey,
        status: Option<u16>,
    ) -> bool {
        let Some(i) = self.conference.awaiting(key) else {
            return key.method() == &Method::Notify;
        };
        if matches!(status, Some(s) if s < 200) {
            return true;
        }
        self.conference.subs[i].in_flight.retain(|k| k != key);
        if matches!(status, Some(s) if s < 300) {
            return true;
        }
        let s = self.conference.subs.remove(i);
        cx.conf.removed(&s.key(), &s.who);
        tracing_log(
            "conference",
            &format!(
                "session {} subscription of {} ended: NOTIFY got {}",
                self.call_id,
                s.dialog.remote_uri(),
                status.map_or("no answer".to_string(), |c| c.to_string())
            ),
        );
        self.arm_subscription_timer();
        true
    }

    pub(super) fn arm_subscription_timer(&mut self) {
        match self.conference.subs.iter().map(|s| s.expires_at).min() {
            Some(at) => self.timers.set(SessionTimer::Subscriptions, at),
            None => self
                .timers
                .stop(|k| matches!(k, SessionTimer::Subscriptions)),
        }
    }

    /// Sends `sub` a NOTIFY with the full state; `terminated` ends it with that reason.
    pub(super) fn notify_one<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        sub: &mut Subscription,
        terminated: Option<&str>,
    ) {
        sub.version += 1;
        let participants = self.participants();
        let body = ConferenceInfo {
            entity: self.facts.focus.raw(),
            version: sub.version,
            active: terminated != Some("noresource"),
            participants: &participants,
        }
        .write();
        let state = match terminated {
            Some(reason) => format!("terminated;reason={reason}"),
            None => {
                let left = sub.expires_at.saturating_duration_since(cx.now).as_secs();
                format!("active;expires={left}")
            }
        };
        let d = &mut sub.dialog;
        // The subscriber's connection may have closed since its SUBSCRIBE: a new one to the
        // dialog's remote target (RFC 3261 §12.2.1.1, §18.1.1), as for our BYE, unless it
        // asked to be reached over its flow only (`ob`, RFC 5626 §5.3). A NOTIFY that
        // cannot travel fails at once, and its failure ends the subscription
        // (`notify_answered`, RFC 6665 §4.2.2) instead of waiting out Timer F.
        let reachable = cx.redial(d, (self.id, None));
        d.local_cseq = d.local_cseq.max(d.invite_cseq) + 1;
        let cseq = d.local_cseq;
        let m = d
            .builder(Method::Notify, cseq, cx.cfg.sip_advertised)
            .contact(&format!("<{}>", self.facts.focus.raw()))
            .header("Event", PACKAGE)
            .header("Subscription-State", &state)
            .body(CONTENT_TYPE, Bytes::from(body))
            .build_in_dialog();
        let Ok(m) = m else {
            return;
        };
        tracing_log(
            "conference",
            &format!(
                "session {} NOTIFY version {} ({state}) to {}",
                self.call_id,
                sub.version,
                d.remote_uri()
            ),
        );
        let peer = d.peer;
        if let Some((key, holds, _)) = cx.send_request(&m, peer, self.id, None) {
            self.track(holds);
            if !reachable {
                cx.fail_now(&key);
            }
            if terminated.is_none() {
                sub.in_flight.push(key);
            }
        }
    }

    /// Every invitee as a subscriber sees it.
    pub(super) fn participants(&self) -> Vec<Participant> {
        self.legs
            .iter()
            .map(|l| {
                let delivery = match (l.delivery, l.status) {
                    (Some(200), _) => Delivery::Delivered,
                    (Some(_), _) | (None, LegStatus::Failed | LegStatus::Ended) => Delivery::Failed,
                    (None, _) => Delivery::Pending,
                };
                let (status, disconnection) = match l.status {
                    LegStatus::Pending => (Status::Pending, None),
                    LegStatus::Connected => (Status::Connected, None),
                    LegStatus::Failed => {
                        // The invitee's own final response; when none came (no route: the
                        // server sent nothing), the status the leg's machine failed it with
                        // (7.9.1.4 `leg unroutable`: 480 or 503, as a proxy would answer,
                        // RFC 3261 §16.5), so the subscriber sees why.
                        let code = l
                            .status_code
                            .or(l.delivery.filter(|c| (300..700).contains(c)));
                        let method = if matches!(code, Some(486 | 600)) {
                            Disconnect::Busy
                        } else {
                            Disconnect::Failed
                        };
                        let cause = code.and_then(StatusCode::new).map(|c| Cause {
                            protocol: "SIP",
                            code: u16::from(c),
                            text: c.default_reason().to_string(),
                        });
                        (Status::Disconnected, Some((method, cause)))
                    }
                    LegStatus::Ended => match l.delivery {
                        Some(code) if code != 200 => (
                            Status::Disconnected,
                            Some((
                                Disconnect::Failed,
                                Some(Cause {
                                    protocol: "MSRP",
                                    code,
                                    text: msrp_reason(code).to_string(),
                                }),
                            )),
                        ),
                        _ => (Status::Disconnected, Some((Disconnect::Departed, None))),
                    },
                };
                Participant {
                    entity: l.uri.raw().to_string(),
                    status,
                    disconnection,
                    delivery,
                }
            })
            .collect()
    }
}

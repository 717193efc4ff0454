//! Per-recipient delivery reports (an extension beyond OMA IM 5.2.1.1; the rules are in
//! `specs/ext_delivery_reports.imspec`): the session keeps one entry per recipient copy it
//! sent, turns each copy's final answer into [`Event::Copy`] for the machines, and carries
//! out `send imdn …` by sending the message's sender an RFC 5438 notification as a SIP
//! MESSAGE. What to send, and when, is the spec's; this file only does it.

use super::super::*;
use super::*;
use crate::machine::{ImdnStatus, MessageFacts};
use crate::proto::body::cpim::{Cpim, Limits as CpimLimits};
use crate::proto::body::imdn::{DeliveryStatus, Imdn, Notification, notification_cpim};

/// The IMDN request of the message a session fans out, read once when the session starts.
#[derive(Clone, Debug, Default)]
pub(crate) struct ImdnRequest {
    /// `imdn.Message-ID` of the sender's message.
    message_id: String,
    /// Its `DateTime`.
    datetime: String,
    /// Its CPIM `From` (the notification's CPIM `To`), when given.
    cpim_from: Option<String>,
}

/// Reads the IMDN request from a page-mode payload: a `message/cpim` body asking for
/// delivery notifications with an `imdn.Message-ID` (RFC 5438 §6.3 makes the id and
/// `DateTime` mandatory for a message asking for an IMDN; without them nothing can name the
/// message, so no notification is asked for).
pub(crate) fn read_request(
    content_type: &str,
    payload: &[u8],
) -> (MessageFacts, Option<ImdnRequest>) {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != "message/cpim" {
        return (MessageFacts::default(), None);
    }
    let Ok(cpim) = Cpim::parse(payload, CpimLimits::default()) else {
        return (MessageFacts::default(), None);
    };
    let d = cpim.dispositions();
    let is_notification = cpim.content_type().is_some_and(|t| {
        t.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case(crate::proto::body::imdn::CONTENT_TYPE)
    });
    let (Some(id), Some(dt)) = (cpim.imdn_message_id(), cpim.header("DateTime")) else {
        let facts = MessageFacts {
            is_notification,
            ..MessageFacts::default()
        };
        return (facts, None);
    };
    let facts = MessageFacts {
        wants_positive_delivery: d.positive_delivery,
        wants_negative_delivery: d.negative_delivery,
        is_notification,
        // An MSRP fact: a page-mode copy is a MESSAGE, which has no success REPORT.
        success_report: false,
    };
    let req = ImdnRequest {
        message_id: id.to_string(),
        datetime: dt.to_string(),
        cpim_from: cpim.header("From").map(str::to_string),
    };
    (facts, Some(req))
}

impl Session {
    /// Keeps the page-mode payload the request's facts were read with (`facts::read`).
    pub(crate) fn keep_payload(&mut self, payload: Option<facts::Payload>) {
        self.copies.payload = payload;
    }

    /// The page-mode payload of the session's request: the one kept from its facts, else
    /// (a session made without it) found now and kept.
    pub(super) fn payload<A: Application>(&mut self, cx: &Ctx<'_, A>) -> facts::Payload {
        if let Some(p) = &self.copies.payload {
            return p.clone();
        }
        // A page-mode MESSAGE's session keeps its request (only an ACKed INVITE gives it
        // up), so `None` is an INVITE session's: no payload.
        let p = self
            .request
            .message()
            .map(|r| facts::payload(r, &cx.cfg.body_limits))
            .unwrap_or_default();
        self.copies.payload = Some(p.clone());
        p
    }

    /// Reads the IMDN request of the session's page-mode message into `message.*`.
    pub(super) fn read_imdn_request<A: Application>(&mut self, cx: &Ctx<'_, A>) {
        if self.request.method() != Some(&Method::Message) {
            return;
        }
        let (ct, payload) = self.payload(cx);
        let (facts, req) = read_request(&ct, &payload);
        self.facts.message = facts;
        self.copies.request = req;
    }

    /// `forward imdn`: the request is an IMDN a recipient sent to this list service; it goes
    /// on, unchanged, to the original sender its CPIM `To` names (RFC 5438: the list
    /// service as IMDN forwarder), never to the other members. No route: logged, dropped.
    pub(super) fn forward_imdn<A: Application>(&mut self, cx: &mut Ctx<'_, A>) {
        let (ct, payload) = self.payload(cx);
        let to = Cpim::parse(&payload, CpimLimits::default())
            .ok()
            .and_then(|c| c.header("To"))
            .and_then(|t| sip::parse_name_addrs(t).ok())
            .and_then(|v| v.into_iter().next())
            .map(|na| na.uri().to_view());
        let Some(to) = to else {
            tracing_log("imdn", "forward imdn: no CPIM To to forward to");
            return;
        };
        // Only to a member of the group: otherwise any member could have the server relay
        // an IMDN-shaped message to any address.
        let members = cx
            .app
            .directory()
            .members(&self.facts.request_uri)
            .unwrap_or_default();
        if !members.iter().any(|m| m.same_identity(&to)) {
            tracing_log(
                "imdn",
                &format!(
                    "forward imdn: {} is not a member of the group; dropped",
                    to.raw()
                ),
            );
            return;
        }
        let (dest, proxy) = match cx.app.router().route(&to) {
            Some(Route::Direct(a)) => (a, None),
            Some(Route::OutboundProxy(a)) => (a, Some(a)),
            None => {
                tracing_log("imdn", &format!("forward imdn: no route to {}", to.raw()));
                return;
            }
        };
        let call_id = cx.ids.call_id(cx.cfg.sip_advertised.ip());
        let branch = format!("{}{}", tsx::MAGIC_COOKIE, cx.ids.token(1));
        // Not `dialog_tag`: a MESSAGE makes no dialog and nothing is filed under this tag;
        // its responses come back by the steered Call-ID and the branch.
        let tag = cx.ids.token(1);
        let mut b = sip::build::RequestBuilder::new(Method::Message, to.raw())
            .via_raw(&format!(
                "SIP/2.0/UDP {};branch={branch};rport",
                cx.cfg.sip_advertised
            ))
            .from(&format!("<{}>", self.facts.request_uri.raw()), &tag)
            .to(&format!("<{}>", to.raw()), None)
            .call_id(&call_id)
            .cseq(1)
            .max_forwards(70)
            .header("Content-Disposition", "notification")
            .body(&ct, payload);
        if let Some(p) = proxy {
            b = b.route(&format!("<sip:{p};lr>"));
        }
        let Ok(m) = b.build() else {
            return;
        };
        tracing_log(
            "imdn",
            &format!(
                "session {} forwards an IMDN to {} via {dest}",
                self.call_id,
                to.raw()
            ),
        );
        let peer = Peer {
            addr: dest,
            reliable: false,
        };
        if let Some((_, holds, _)) = cx.send_request(&m, peer, self.id, None) {
            self.track(holds);
        }
    }

    /// `send imdn …`: one notification about the current copy to the message's sender.
    ///
    /// Where it goes: the sender's AOR as the router resolves it (its registered contact,
    /// an IP-literal URI, or the outbound proxy), else back to the source address of the
    /// sender's request. A notification is a new request, not a response, so the AOR's
    /// contact is the right target (RFC 3428 §4); a sender that never registered can still
    /// be reached where its request came from, since a UA sends from the port it listens on
    /// (RFC 3581 relies on the same), which is better than no notification.
    pub(super) fn send_imdn<A: Application>(&mut self, cx: &mut Ctx<'_, A>, status: ImdnStatus) {
        let Some((recipient, body)) = self.imdn_body(cx, status) else {
            return;
        };
        tracing_log(
            "imdn",
            &format!("session {} {status:?} for {recipient}", self.call_id),
        );
        self.send_to_sender(cx, "message/cpim", Bytes::from(body));
    }

    /// `collect imdn …`: the notification `send imdn` would send, kept for the aggregate.
    pub(super) fn collect_imdn<A: Application>(&mut self, cx: &mut Ctx<'_, A>, status: ImdnStatus) {
        let Some((recipient, body)) = self.imdn_body(cx, status) else {
            return;
        };
        tracing_log(
            "imdn",
            &format!(
                "session {} {status:?} for {recipient} kept for the aggregate",
                self.call_id
            ),
        );
        self.copies.collected.push(Bytes::from(body));
    }

    /// Sends the collected notifications as one message once every copy has its outcome
    /// (RFC 5438 aggregation: one message to the sender instead of one per recipient).
    /// Called after each copy outcome and when the fan-out ends.
    pub(super) fn flush_collected<A: Application>(&mut self, cx: &mut Ctx<'_, A>) {
        if self.copies.collected.is_empty()
            || self.copies.fanning_out
            || self.copies.entries.iter().any(|c| !c.done)
        {
            return;
        }
        let parts = std::mem::take(&mut self.copies.collected);
        let Some((ct, body)) = aggregate_body(&format!("imspec-{}", cx.ids.token(1)), &parts)
        else {
            // A boundary that collides with a part (a random token: not expected): each
            // notification alone rather than none.
            for p in parts {
                self.send_to_sender(cx, "message/cpim", p);
            }
            return;
        };
        tracing_log(
            "imdn",
            &format!(
                "session {} sends {} notifications aggregated",
                self.call_id,
                parts.len()
            ),
        );
        self.send_to_sender(cx, &ct, body);
    }

    /// The `message/cpim` IMDN about the current copy, and its recipient.
    fn imdn_body<A: Application>(
        &self,
        cx: &mut Ctx<'_, A>,
        status: ImdnStatus,
    ) -> Option<(String, Vec<u8>)> {
        let (Some(i), Some(req)) = (self.copies.current, self.copies.request.as_ref()) else {
            tracing_log(
                "imdn",
                "an imdn action outside a copy event, or no IMDN asked: ignored",
            );
            return None;
        };
        let copy = self.copies.entries.get(i)?;
        let recipient = copy.uri.raw().to_string();
        let sender = &self.facts.originator.raw();
        let imdn = Imdn {
            message_id: req.message_id.clone(),
            datetime: req.datetime.clone(),
            recipient_uri: Some(recipient.clone()),
            original_recipient_uri: Some(recipient.clone()),
            subject: None,
            notification: Notification::Delivery(match status {
                ImdnStatus::Delivered => DeliveryStatus::Delivered,
                ImdnStatus::Failed => DeliveryStatus::Failed,
            }),
        };
        let notification_id = cx.ids.token(1);
        // The sans-IO core has no wall clock (only `Instant`s): the notification's own
        // DateTime repeats the message's, which is when the delivery was attempted to
        // within the fan-out time.
        let to = req
            .cpim_from
            .clone()
            .unwrap_or_else(|| format!("<{sender}>"));
        let body = notification_cpim(
            &format!("<{recipient}>"),
            &to,
            &notification_id,
            &req.datetime,
            &imdn,
        );
        Some((recipient, body))
    }

    /// One SIP MESSAGE to the message's sender carrying `body` as a notification.
    fn send_to_sender<A: Application>(&mut self, cx: &mut Ctx<'_, A>, ct: &str, body: Bytes) {
        let sender = self.facts.originator.raw();
        let route = cx.app.router().route(&self.facts.originator);
        let (dest, proxy) = match route {
            Some(Route::Direct(a)) => (a, None),
            Some(Route::OutboundProxy(a)) => (a, Some(a)),
            None => (self.peer.addr, None),
        };
        let call_id = cx.ids.call_id(cx.cfg.sip_advertised.ip());
        let branch = format!("{}{}", tsx::MAGIC_COOKIE, cx.ids.token(1));
        // Not `dialog_tag`: a MESSAGE makes no dialog and nothing is filed under this tag;
        // its responses come back by the steered Call-ID and the branch.
        let tag = cx.ids.token(1);
        let mut b = sip::build::RequestBuilder::new(Method::Message, sender)
            .via_raw(&format!(
                "SIP/2.0/UDP {};branch={branch};rport",
                cx.cfg.sip_advertised
            ))
            .from(&format!("<{}>", self.facts.request_uri.raw()), &tag)
            .to(&format!("<{sender}>"), None)
            .call_id(&call_id)
            .cseq(1)
            .max_forwards(70)
            .header("Content-Disposition", "notification")
            .body(ct, body);
        if let Some(p) = proxy {
            b = b.route(&format!("<sip:{p};lr>"));
        }
        let Ok(m) = b.build() else {
            return;
        };
        let peer = Peer {
            addr: dest,
            reliable: false,
        };
        tracing_log(
            "imdn",
            &format!(
                "session {} notification to {sender} via {dest}",
                self.call_id
            ),
        );
        if let Some((_, holds, _)) = cx.send_request(&m, peer, self.id, None) {
            self.track(holds);
        }
    }
}

/// The aggregated notification body: `multipart/mixed` (RFC 2046 §5.1.3, no order among
/// the parts), one `message/cpim` part per collected IMDN, each exactly what `send imdn`
/// sends alone, so a client reads each part as it reads a single notification.
fn aggregate_body(boundary: &str, parts: &[Bytes]) -> Option<(String, Bytes)> {
    use crate::proto::body::mime::MediaType;
    use crate::proto::body::multipart::{self, OutPart};
    let cpim = MediaType::new("message", "cpim");
    let out: Vec<OutPart> = parts
        .iter()
        .map(|b| OutPart::new(&cpim, b.clone()))
        .collect();
    let b = multipart::write(boundary, &out).ok()?;
    Some((multipart::content_type(boundary).to_string(), b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The aggregate read back without this crate's multipart or IMDN readers: split at
    /// the boundary by hand, each part's XML read with roxmltree.
    #[test]
    fn the_aggregate_is_one_multipart_with_one_cpim_imdn_per_recipient() {
        let one = |rcpt: &str, status: DeliveryStatus| {
            let imdn = Imdn {
                message_id: "m-1".into(),
                datetime: "2026-12-06T04:00:00Z".into(),
                recipient_uri: Some(rcpt.into()),
                original_recipient_uri: Some(rcpt.into()),
                subject: None,
                notification: Notification::Delivery(status),
            };
            let to = "<sip:alice@example.com>";
            let id = format!("n-{rcpt}");
            Bytes::from(notification_cpim(
                &format!("<{rcpt}>"),
                to,
                &id,
                "2026-12-06T04:00:00Z",
                &imdn,
            ))
        };
        let parts = [
            one("sip:bob@example.com", DeliveryStatus::Delivered),
            one("sip:carol@example.com", DeliveryStatus::Failed),
        ];
        let (ct, body) = aggregate_body("b0und4ry", &parts).expect("aggregate");
        assert!(ct.starts_with("multipart/mixed"), "{ct}");
        assert!(ct.contains("b0und4ry"), "{ct}");
        let text = std::str::from_utf8(&body).expect("utf-8");
        let (_, rest) = text.split_once("--b0und4ry\r\n").expect("first boundary");
        let (inner, _) = rest
            .split_once("\r\n--b0und4ry--")
            .expect("closing boundary");
        let mut got = Vec::new();
        for part in inner.split("\r\n--b0und4ry\r\n") {
            let (head, cpim) = part.split_once("\r\n\r\n").expect("part headers");
            assert!(
                head.to_ascii_lowercase()
                    .contains("content-type: message/cpim"),
                "{head}"
            );
            let xml_at = cpim.find("<?xml").expect("xml in the part");
            let doc = roxmltree::Document::parse(&cpim[xml_at..]).expect("imdn xml");
            let text_of = |name: &str| {
                doc.descendants()
                    .find(|n| n.tag_name().name() == name)
                    .and_then(|n| n.text())
                    .unwrap_or("")
                    .to_string()
            };
            let status = doc
                .descendants()
                .find(|n| n.tag_name().name() == "status")
                .and_then(|n| n.first_element_child())
                .map(|n| n.tag_name().name().to_string())
                .unwrap_or_default();
            assert_eq!(text_of("message-id"), "m-1");
            got.push((text_of("recipient-uri"), status));
        }
        assert_eq!(
            got,
            vec![
                ("sip:bob@example.com".to_string(), "delivered".to_string()),
                ("sip:carol@example.com".to_string(), "failed".to_string()),
            ]
        );
    }

    fn cpim(disposition: Option<&str>, with_date: bool) -> Vec<u8> {
        let mut head = String::from(
            "From: <sip:alice@example.com>\r\nTo: <sip:g@example.com>\r\n\
             NS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: 34jk324j\r\n",
        );
        if with_date {
            head.push_str("DateTime: 2008-04-04T12:16:49-05:00\r\n");
        }
        if let Some(d) = disposition {
            head.push_str(&format!("imdn.Disposition-Notification: {d}\r\n"));
        }
        format!("{head}\r\nContent-Type: text/plain\r\n\r\nhi\r\n").into_bytes()
    }

    #[test]
    fn a_cpim_message_asking_for_both_is_read() {
        let body = cpim(Some("positive-delivery, negative-delivery"), true);
        let (f, req) = read_request("message/cpim", &body);
        assert!(f.wants_positive_delivery && f.wants_negative_delivery);
        let req = req.expect("an IMDN request");
        assert_eq!(req.message_id, "34jk324j");
        assert_eq!(req.datetime, "2008-04-04T12:16:49-05:00");
        assert_eq!(req.cpim_from.as_deref(), Some("<sip:alice@example.com>"));
    }

    #[test]
    fn only_what_is_asked_for_is_wanted() {
        let (f, _) = read_request("Message/CPIM; x=1", &cpim(Some("negative-delivery"), true));
        assert!(!f.wants_positive_delivery && f.wants_negative_delivery);
        let (f, req) = read_request("message/cpim", &cpim(None, true));
        assert_eq!(f, MessageFacts::default());
        assert!(req.is_some(), "a message with an id can still be named");
    }

    #[test]
    fn no_request_without_cpim_date_or_a_readable_body() {
        let asks = Some("positive-delivery");
        assert_eq!(
            read_request("text/plain", &cpim(asks, true)).0,
            MessageFacts::default()
        );
        // RFC 5438 §6.3: DateTime is mandatory in a message asking for an IMDN.
        let (f, req) = read_request("message/cpim", &cpim(asks, false));
        assert_eq!(f, MessageFacts::default());
        assert!(req.is_none());
        let (f, req) = read_request("message/cpim", b"not cpim at all");
        assert_eq!(f, MessageFacts::default());
        assert!(req.is_none());
    }
}

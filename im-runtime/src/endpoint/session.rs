//! Per-session state: the originator's leg, its dialog, the machines running for it and one
//! leg per invitee.

use super::app::DynMachine;
use super::timers::SessionTimers;
use crate::machine::{Facts, Method, SdpFacts, Uri};
use crate::proto::msrp;
use crate::proto::sdp::answer::Answer;
use crate::proto::sip::build::RequestBuilder;
use crate::proto::sip::{HeaderName, Message, split_values};
use crate::proto::transaction::{MAGIC_COOKIE, Peer, TsxKey};
use bytes::Bytes;
use std::net::SocketAddr;

/// Identifies a session inside one endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SessionId(pub(crate) u64);

/// Where an invitee leg stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LegStatus {
    /// INVITE sent, no final response.
    Pending,
    /// 2xx received.
    Connected,
    /// Declined, timed out or unroutable.
    Failed,
    /// BYE sent or received after connecting.
    Ended,
}

/// A dialog (RFC 3261 §12) as the endpoint keeps it.
#[derive(Clone, Debug)]
pub(crate) struct Dialog {
    pub(crate) call_id: String,
    pub(crate) local_tag: String,
    pub(crate) remote_tag: String,
    /// Our URI and the remote URI as they appear in From/To of our requests.
    pub(crate) local_uri: String,
    pub(crate) remote_uri: String,
    pub(crate) remote_target: String,
    pub(crate) route_set: Vec<String>,
    pub(crate) local_cseq: u32,
    pub(crate) invite_cseq: u32,
    pub(crate) peer: Peer,
    pub(crate) confirmed: bool,
    pub(crate) ended: bool,
    /// The peer ended the dialog with its BYE (a later BYE gets 481).
    pub(crate) remote_bye: bool,
    /// Over TLS: our TLS address, the sent-by of `SIP/2.0/TLS` in our requests' Via.
    pub(crate) tls: Option<SocketAddr>,
    counter: u64,
}

fn contact_uri(m: &Message) -> Option<String> {
    let c = m.header(HeaderName::Contact)?;
    let na = crate::proto::sip::parse_name_addrs(c)
        .ok()?
        .into_iter()
        .next()?;
    Some(na.uri().as_str().to_string())
}

fn addr_of(v: &str) -> String {
    // Keep the name-addr without its tag parameter.
    match crate::proto::sip::NameAddr::parse(v) {
        Ok(na) => format!("<{}>", na.uri().as_str()),
        Err(_) => v.to_string(),
    }
}

impl Dialog {
    /// The dialog created by our 2xx to `request` (UAS side, §12.1.1).
    pub(crate) fn server_side(request: &Message, local_tag: &str, peer: Peer) -> Dialog {
        Dialog {
            call_id: request.call_id().unwrap_or("").to_string(),
            local_tag: local_tag.to_string(),
            remote_tag: request
                .from()
                .and_then(|f| f.tag().map(str::to_string))
                .unwrap_or_default(),
            local_uri: request
                .header(HeaderName::To)
                .map(addr_of)
                .unwrap_or_default(),
            remote_uri: request
                .header(HeaderName::From)
                .map(addr_of)
                .unwrap_or_default(),
            remote_target: contact_uri(request).unwrap_or_else(|| {
                request
                    .from()
                    .map(|f| f.uri().as_str().to_string())
                    .unwrap_or_default()
            }),
            route_set: request
                .header_lines(HeaderName::RecordRoute)
                .flat_map(split_values)
                .map(str::to_string)
                .collect(),
            local_cseq: 0,
            invite_cseq: request.cseq().map_or(1, |c| c.seq),
            peer,
            confirmed: false,
            ended: false,
            remote_bye: false,
            tls: None,
            counter: 0,
        }
    }

    /// The dialog created by a 2xx to our INVITE (UAC side, §12.1.2).
    pub(crate) fn client_side(
        invite: &Message,
        resp: &Message,
        peer: Option<Peer>,
    ) -> Option<Dialog> {
        let mut rr: Vec<String> = resp
            .header_lines(HeaderName::RecordRoute)
            .flat_map(split_values)
            .map(str::to_string)
            .collect();
        rr.reverse();
        let peer = peer?;
        Some(Dialog {
            call_id: invite.call_id().unwrap_or("").to_string(),
            local_tag: invite
                .from()
                .and_then(|f| f.tag().map(str::to_string))
                .unwrap_or_default(),
            remote_tag: resp
                .to()
                .and_then(|t| t.tag().map(str::to_string))
                .unwrap_or_default(),
            local_uri: invite
                .header(HeaderName::From)
                .map(addr_of)
                .unwrap_or_default(),
            remote_uri: invite
                .header(HeaderName::To)
                .map(addr_of)
                .unwrap_or_default(),
            remote_target: contact_uri(resp)
                .or_else(|| invite.request_uri_str().map(str::to_string))
                .unwrap_or_default(),
            route_set: rr,
            local_cseq: invite.cseq().map_or(1, |c| c.seq),
            invite_cseq: invite.cseq().map_or(1, |c| c.seq),
            peer,
            confirmed: true,
            ended: false,
            remote_bye: false,
            tls: None,
            counter: 0,
        })
    }

    fn builder(&mut self, method: Method, cseq: u32, via_host: SocketAddr) -> RequestBuilder {
        self.counter += 1;
        let branch = format!(
            "{MAGIC_COOKIE}{:x}{:x}{}",
            self.counter,
            cseq,
            self.local_tag.get(..8).unwrap_or("")
        );
        let mut b = RequestBuilder::new(method, &self.remote_target)
            .via_raw(&match self.tls {
                Some(tls) => format!("SIP/2.0/TLS {tls};branch={branch};rport"),
                None => format!(
                    "SIP/2.0/{} {via_host};branch={branch};rport",
                    if self.peer.reliable { "TCP" } else { "UDP" }
                ),
            })
            .from(&self.local_uri, &self.local_tag)
            .to(&self.remote_uri, Some(&self.remote_tag))
            .call_id(&self.call_id)
            .cseq(cseq)
            .max_forwards(70);
        for r in &self.route_set {
            b = b.route(r);
        }
        b
    }

    /// A new in-dialog request (BYE …) with the next CSeq, and where to send it.
    pub(crate) fn request(
        &mut self,
        method: Method,
        via_host: SocketAddr,
    ) -> Option<(Message, Peer)> {
        self.local_cseq = self.local_cseq.max(self.invite_cseq) + 1;
        let cseq = self.local_cseq;
        let m = self.builder(method, cseq, via_host).build().ok()?;
        Some((m, self.peer))
    }

    /// The ACK for a 2xx to our INVITE (§13.2.2.4: same CSeq number as the INVITE).
    pub(crate) fn ack(&mut self, via_host: SocketAddr) -> Option<(Message, Peer)> {
        let cseq = self.invite_cseq;
        let m = self.builder(Method::Ack, cseq, via_host).build().ok()?;
        Some((m, self.peer))
    }
}

/// One invitee.
pub(crate) struct Leg {
    pub(crate) uri: Uri,
    /// Call-ID and our tag of the leg's dialog: its key in the endpoint's dialog index.
    pub(crate) call_id: String,
    pub(crate) local_tag: String,
    pub(crate) machine: Option<Box<dyn DynMachine>>,
    /// The last final status of the leg's INVITE (`status` in the leg machine's facts).
    pub(crate) status_code: Option<u16>,
    pub(crate) status: LegStatus,
    pub(crate) invite: Option<Message>,
    pub(crate) invite_key: Option<TsxKey>,
    pub(crate) peer: Option<Peer>,
    pub(crate) dialog: Option<Dialog>,
    pub(crate) answer_sdp: Option<SdpFacts>,
    pub(crate) msrp_session: String,
    pub(crate) want_delivery: bool,
    pub(crate) delivery_started: bool,
    /// MSRP outcome: 200 delivered, else the failure code.
    pub(crate) delivery: Option<u16>,
    pub(crate) cancelled: bool,
}

impl Leg {
    pub(crate) fn new(
        uri: Uri,
        call_id: String,
        local_tag: String,
        machine: Box<dyn DynMachine>,
        msrp_session: String,
    ) -> Leg {
        Leg {
            uri,
            call_id,
            local_tag,
            machine: Some(machine),
            status_code: None,
            status: LegStatus::Pending,
            invite: None,
            invite_key: None,
            peer: None,
            dialog: None,
            answer_sdp: None,
            msrp_session,
            want_delivery: false,
            delivery_started: false,
            delivery: None,
            cancelled: false,
        }
    }
}

/// One originator request and everything it started.
pub(crate) struct Session {
    pub(crate) call_id: String,
    pub(crate) local_tag: String,
    pub(crate) focus: String,
    pub(crate) request: Message,
    pub(crate) facts: Facts,
    pub(crate) machines: Vec<Box<dyn DynMachine>>,
    pub(crate) server_tsx: TsxKey,
    pub(crate) peer: Peer,
    pub(crate) answered: Option<u16>,
    pub(crate) ok_bytes: Option<Bytes>,
    /// When the 2xx to the originator's INVITE was first sent (its ACK is due by 64·T1).
    pub(crate) ok_at: Option<std::time::Instant>,
    pub(crate) acked: bool,
    pub(crate) dialog: Option<Dialog>,
    pub(crate) legs: Vec<Leg>,
    pub(crate) msrp_session: String,
    pub(crate) msrp_answer: Option<Answer>,
    pub(crate) held: Option<msrp::Message>,
    pub(crate) settled_sent: bool,
    pub(crate) originator_gone: bool,
    pub(crate) ending: bool,
    /// The session's own timers.
    pub(crate) timers: SessionTimers,
    /// The deadline the endpoint's timer index holds for this session.
    pub(crate) filed: Option<std::time::Instant>,
    /// Client transactions that hold the session (INVITEs to invitees) with no final answer
    /// yet: what `is_drained` reads instead of scanning the transaction index.
    pub(crate) pending_client: u32,
}

impl Session {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: SessionId,
        call_id: String,
        local_tag: String,
        focus: String,
        request: Message,
        facts: Facts,
        machine: Box<dyn DynMachine>,
        server_tsx: TsxKey,
        peer: Peer,
        msrp_session: String,
    ) -> Session {
        let _ = id;
        Session {
            call_id,
            local_tag,
            focus,
            request,
            facts,
            machines: vec![machine],
            server_tsx,
            peer,
            answered: None,
            ok_bytes: None,
            ok_at: None,
            acked: false,
            dialog: None,
            legs: Vec::new(),
            msrp_session,
            msrp_answer: None,
            held: None,
            settled_sent: false,
            originator_gone: false,
            ending: false,
            timers: SessionTimers::default(),
            filed: None,
            pending_client: 0,
        }
    }

    /// Nothing left to wait for: the originator's side is over, every leg is over, the
    /// machines have answered and no INVITE to an invitee awaits its final answer. The
    /// session's calls are over, so it no longer counts against `max_sessions`; client
    /// transactions that linger (BYE answers, Completed or Accepted INVITEs absorbing
    /// retransmissions) belong to the transaction layer, not to the session. O(legs).
    pub(crate) fn is_drained(&self) -> bool {
        let originator_done = self.originator_gone
            || self.dialog.as_ref().is_some_and(|d| d.ended)
            || matches!(self.answered, Some(x) if x >= 300 || x == 0)
            || (self.answered.is_some_and(|x| (200..300).contains(&x))
                && self.request.method() != Some(&Method::Invite));
        let legs_done = self.legs.iter().all(|l| match l.status {
            LegStatus::Failed | LegStatus::Ended => true,
            LegStatus::Connected | LegStatus::Pending => false,
        });
        let machines_done = self.answered.is_some();
        originator_done && legs_done && machines_done && self.pending_client == 0
    }

    /// The `legs.*` facts.
    pub(crate) fn leg_counts(&self) -> crate::machine::LegCounts {
        let mut c = crate::machine::LegCounts {
            total: self.legs.len(),
            ..Default::default()
        };
        for l in &self.legs {
            if l.dialog.is_some() {
                c.connected += 1;
            }
            match l.delivery {
                Some(200) => c.delivered += 1,
                Some(_) => c.failed += 1,
                None if l.status == LegStatus::Failed => c.failed += 1,
                None => {}
            }
        }
        c
    }

    /// One log line per recipient: how its leg ended.
    pub(crate) fn outcomes(&self) -> Vec<String> {
        self.legs
            .iter()
            .map(|l| {
                let what = match (l.status, l.delivery) {
                    (_, Some(200)) => "delivered".to_string(),
                    (_, Some(code)) => format!("delivery failed ({code})"),
                    (LegStatus::Failed, None) => format!(
                        "not reached ({})",
                        l.status_code
                            .map_or("no answer".to_string(), |s| s.to_string())
                    ),
                    (s, None) => format!("{s:?}").to_lowercase(),
                };
                format!("session {} recipient {}: {what}", self.call_id, l.uri.raw)
            })
            .collect()
    }
}

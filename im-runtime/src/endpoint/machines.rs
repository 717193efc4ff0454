//! Running a session's generated machines (with `call`) and its legs' machines, and
//! executing their actions; the answer to the originator with its SDP answer.

use super::super::ingress::coded_warning;
use super::super::*;
use super::*;

impl Session {
    /// Runs every live machine of the session on `event`, then executes their actions.
    pub(super) fn run_machines<A: Application>(&mut self, cx: &mut Ctx<'_, A>, event: &Event) {
        self.run_machines_at(cx, event, None);
    }

    /// Runs the session's machines (only machine `only` when given) on `event`.
    pub(super) fn run_machines_at<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        event: &Event,
        only: Option<usize>,
    ) {
        self.run_machines_counted(cx, event, only);
    }

    /// [`run_machines_at`](Session::run_machines_at), returning how many actions the
    /// machines produced (`call`s included): 0 when no rule acted.
    pub(super) fn run_machines_counted<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        event: &Event,
        only: Option<usize>,
    ) -> usize {
        // Each action is kept with the index of the machine that produced it, so that
        // `invite each` can ask that machine for its invitee-leg procedure.
        let now = cx.now;
        let mut pending: VecDeque<(usize, Action)> = VecDeque::new();
        {
            let env = cx.env();
            for (i, m) in self.machines.iter_mut().enumerate() {
                if only.is_some_and(|o| o != i) {
                    continue;
                }
                if m.is_final() && !matches!(event, Event::InitialRequest(_)) && !answers(event) {
                    continue;
                }
                pending.extend(
                    m.handle(now, event, &self.facts, &env)
                        .into_iter()
                        .map(|a| (i, a)),
                );
            }
        }
        let mut calls = 0;
        let mut acted = 0;
        while let Some((from, a)) = pending.pop_front() {
            if let ActionKind::Call(clause) = &a.kind {
                acted += 1;
                // `call`: run the callee on the same event and facts (bounded, so a spec
                // that calls itself cannot loop forever).
                calls += 1;
                if calls > 16 {
                    continue;
                }
                let Some(mut callee) = cx.app.by_clause(clause) else {
                    log_action(&self.call_id, &a, "no procedure for this clause");
                    continue;
                };
                log_action(&self.call_id, &a, "");
                let actions = callee.handle(now, event, &self.facts, &cx.env());
                self.machines.push(callee);
                let idx = self.machines.len() - 1;
                for (i, x) in actions.into_iter().enumerate() {
                    pending.insert(i, (idx, x));
                }
                continue;
            }
            acted += 1;
            self.execute(cx, None, Some(from), a);
        }
        acted
    }

    pub(super) fn run_leg_machine<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        leg: usize,
        event: &Event,
    ) {
        let actions = {
            let env = cx.env();
            // A leg's machine sees the session's facts with the leg's own status: no copy
            // of the facts per leg (that was O(legs²) for a list) nor per run.
            let Session { facts, legs, .. } = self;
            let Some(l) = legs.get_mut(leg) else {
                return;
            };
            let Some(m) = l.machine.as_mut() else {
                return;
            };
            if m.is_final() && !answers(event) {
                return;
            }
            let session_status = std::mem::replace(&mut facts.status, l.status_code);
            let actions = m.handle(cx.now, event, facts, &env);
            facts.status = session_status;
            actions
        };
        for mut a in actions {
            // `outcome failed` without a status takes the one the event carries.
            if let ActionKind::Outcome(crate::machine::DeliveryOutcome::Failed(s @ None)) =
                &mut a.kind
            {
                *s = Some(match event {
                    Event::Msrp(crate::machine::MsrpEvent::DeliveryFailed(c)) => *c,
                    Event::Response(c) => *c,
                    _ => 0,
                });
            }
            self.execute(cx, Some(leg), None, a);
        }
    }

    pub(super) fn execute<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        leg: Option<usize>,
        from: Option<usize>,
        a: Action,
    ) {
        log_action(&self.call_id, &a, "");
        let origin = a.origin;
        let now = cx.now;
        match a.kind {
            ActionKind::Respond(reply) => self.respond(cx, origin, reply),
            ActionKind::InviteEach(r, s, inv) => self.invite_each(cx, r, s, &inv, from),
            ActionKind::ForwardEach(r, s, inv) => self.forward_each(cx, r, s, &inv),
            ActionKind::Cancel => match leg {
                Some(i) => {
                    if let Some(l) = self.legs.get_mut(i) {
                        l.cancelled_by_own_machine = true;
                    }
                    self.cancel_leg(cx, i);
                }
                None => self.cancel_legs(cx),
            },
            ActionKind::Bye => match leg {
                Some(i) => self.bye_leg(cx, i),
                None => self.bye_originator(cx),
            },
            // `cancel_leg` skips a leg that is not pending, `bye_leg` one without a live
            // dialog, so each reaches exactly the legs its name says.
            ActionKind::CancelLegs => self.cancel_legs(cx),
            ActionKind::ByeLegs => {
                for i in 0..self.legs.len() {
                    self.bye_leg(cx, i);
                }
            }
            ActionKind::StartTimer(t, after) => {
                let id = spec_timer_id(t);
                let mi = from.unwrap_or(0);
                if let Some(t) = SessionTimer::spec(leg, mi, id) {
                    self.timers.set(t, now + after);
                }
            }
            ActionKind::StopTimer(t) => {
                let id = spec_timer_id(t);
                let mi = from.unwrap_or(0);
                if let Some(t) = SessionTimer::spec(leg, mi, id) {
                    self.timers.stop(|k| *k == t);
                }
            }
            ActionKind::Deliver { success_report } => {
                // Until the copy goes, a later `deliver` replaces the options of this one
                // (a leg answered before the message came asks again once it is held, when
                // `message.success_report` is known). A leg's `deliver` starts its own copy
                // only: another leg sends when its own machine has said how.
                let want = |l: &mut Leg| {
                    l.want_delivery = true;
                    if !l.delivery_started {
                        l.want_success_report = success_report;
                    }
                };
                match leg {
                    Some(i) => {
                        if let Some(l) = self.legs.get_mut(i) {
                            want(l);
                        }
                        self.try_delivery(cx, i);
                    }
                    None => {
                        self.legs.iter_mut().for_each(want);
                        self.try_deliveries(cx);
                    }
                }
            }
            ActionKind::Outcome(o) => match leg.and_then(|i| self.legs.get_mut(i)) {
                Some(l) => {
                    l.delivery = Some(match o {
                        crate::machine::DeliveryOutcome::Delivered => 200,
                        crate::machine::DeliveryOutcome::Failed(s) => s.unwrap_or(0),
                    });
                }
                // A copy that was not sent (`copy unroutable` / `copy expired`): the status
                // it fails with; the first rule's counts.
                None if self.copies.unsent == super::copies::Unsent::Asking
                    && matches!(o, crate::machine::DeliveryOutcome::Failed(Some(_))) =>
                {
                    if let crate::machine::DeliveryOutcome::Failed(Some(s)) = o {
                        self.copies.unsent = super::copies::Unsent::Failed(s);
                    }
                }
                // The checker allows `outcome` only in an invitee-leg procedure and in the
                // handlers of a copy that was not sent (with a status).
                None => log_action(
                    &self.call_id,
                    &Action {
                        origin,
                        kind: ActionKind::Outcome(o),
                    },
                    "not an invitee leg; ignored",
                ),
            },
            ActionKind::Report(outcome) => self.report(cx, &outcome),
            ActionKind::SendImdn(status) => self.send_imdn(cx, status),
            ActionKind::CollectImdn(status) => self.collect_imdn(cx, status),
            ActionKind::ForwardImdn => self.forward_imdn(cx),
            ActionKind::AcceptSubscription => self.accept_subscription(cx, origin),
            ActionKind::NotifySubscribers => self.notify_subscribers(cx),
            ActionKind::StoreCopy => self.store_copy(cx, origin),
            ActionKind::Log(_) | ActionKind::Call(_) => {}
        }
    }

    pub(super) fn respond<A: Application>(
        &mut self,
        cx: &mut Ctx<'_, A>,
        origin: Origin,
        reply: Reply,
    ) {
        if let Some((key, msg)) = self.answering.take().map(|b| *b) {
            respond_in_dialog(cx, &key, &msg, origin, &reply);
            return;
        }
        if self.answered.is_some() {
            log_action(
                &self.call_id,
                &Action {
                    origin,
                    kind: ActionKind::Respond(reply),
                },
                "already answered; ignored",
            );
            return;
        }
        // Unanswered, so not ACKed: the request is still kept (`OriginatorRequest`).
        let Some(request) = self.request.message() else {
            return;
        };
        let now = cx.now;
        let mut status = reply.status;
        let mut reason = reply.reason.to_string();
        let mut warning_text = reply.warning.as_ref().map(|w| (w.code, w.to_string()));
        let mut body: Option<(String, Bytes)> = None;
        let mut role = None;
        // Whether the spec's headers go out: not on the `else` response that replaces an
        // answer the offer could not support (they were written for the answer).
        let mut answer_headers = true;
        if !reply.sdp_answer.is_empty() {
            // The spec's `else STATUS "reason"`: what is sent when no answer can be built.
            let refuse = reply.sdp_answer.iter().find_map(|i| match i {
                crate::machine::SdpAnswerItem::Else(s, r) => Some((*s, r.to_string())),
                _ => None,
            });
            let mut cannot = |why: String| {
                answer_headers = false;
                match &refuse {
                    Some((s, r)) => {
                        status = *s;
                        reason = r.clone();
                    }
                    None => {
                        // Only a hand-written machine lacks `else` (the checker requires it
                        // in a spec): a server bug, not a decision.
                        tracing::error!(
                            rule = %format_args!("{}/{}", origin.clause, origin.rule),
                            "SDP answer impossible and the reply has no `else`; 500 sent"
                        );
                        status = 500;
                        reason = "Server Internal Error".into();
                    }
                }
                // Why no answer could be built: the spec's Warning code if it gave one.
                let code = reply
                    .warning
                    .as_ref()
                    .map_or(crate::machine::Warning::MISCELLANEOUS, |w| w.code);
                warning_text = Some((code, why));
            };
            match &self.facts.sdp {
                Some(offer) => {
                    let (own, path) = cx.msrp_own(offer, &self.msrp_session);
                    let local = LocalMedia {
                        address: ip_string(own.ip()),
                        msrp_port: own.port(),
                        path,
                        session_id: cx.ids.rand() >> 12,
                        session_version: 1,
                    };
                    match answer::build_answer(offer, &reply.sdp_answer, &local, &cx.cfg.spec) {
                        Ok(mut a) => {
                            // The answer's text goes out; the rest is read for the MSRP side.
                            let sdp = std::mem::take(&mut a.sdp);
                            body = Some(("application/sdp".into(), Bytes::from(sdp)));
                            role = Some(a);
                        }
                        // The offer cannot support the answer the spec asked for (e.g.
                        // no common accept-types): the spec's `else`, saying why.
                        Err(e) => cannot(e.to_string()),
                    }
                }
                None => cannot("an SDP offer is required".into()),
            }
        }
        let Some(code) = StatusCode::new(status) else {
            return;
        };
        let mut b = sip::build::ResponseBuilder::new(request, code).reason(&reason);
        if status > 100 {
            b = b.to_tag(&self.local_tag);
        }
        for (name, value) in reply.headers.iter().filter(|_| answer_headers) {
            let v = match value {
                crate::machine::HeaderValue::Text(t) => t.to_string(),
                crate::machine::HeaderValue::FocusContact => {
                    focus_contact(self.facts.focus.raw(), "")
                }
                crate::machine::HeaderValue::FocusContactWith(p) => {
                    focus_contact(self.facts.focus.raw(), p)
                }
                // A response has no invitee: the checker allows `{invitee.…}` only in a
                // fan-out's headers (E0016).
                crate::machine::HeaderValue::PerInvitee(_) => continue,
            };
            b = b.header(name, &v);
        }
        if let Some((code, w)) = &warning_text {
            b = b.header("Warning", &coded_warning(*code, &cx.agent(), w));
        }
        if request.method() == Some(&Method::Invite) && (101..300).contains(&status) {
            // RFC 3261 §12.1.1: the dialog's route set goes back to the originator, so its
            // in-dialog requests take the proxies that record-routed (Kamailio in front of
            // several instances).
            for rr in request.header_lines(HeaderName::RecordRoute) {
                b = b.header("Record-Route", rr);
            }
        }
        if let Some((ct, data)) = body {
            b = b.body(&ct, data);
        }
        let bytes = b.write();
        let _ = cx.tsx.respond(now, &self.server_tsx, status, bytes.clone());
        cx.live.response(status, Some(&origin));
        if (200..300).contains(&status) && self.request.method() == Some(&Method::Invite) {
            cx.live.invite_answered(now, self.id);
        }
        cx.flush();
        // A provisional response leaves the final one to come: only a final status uses up
        // the request's one answer.
        if status >= 200 {
            self.answered = Some(status);
            // The offer's text is re-read only to build an answer, and none is built after
            // the final one: the idle session need not keep it.
            if let Some(sdp) = self.facts.sdp.as_mut() {
                sdp.raw = String::new();
            }
        }
        if (200..300).contains(&status) {
            let mut d = Dialog::server_side(request, &self.local_tag, self.peer);
            d.tls = cx.dialog_tls(self.peer);
            self.dialog = Some(d);
            self.unacked_ok = Some(Box::new((bytes, now)));
            // The answer is read once to set up the originator's MSRP side, not kept.
            if let Some(a) = role.filter(|_| self.request.method() == Some(&Method::Invite)) {
                cx.msrp.register_originator(self.id, &self.msrp_session, &a);
                self.msrp_originator = true;
            }
        } else if status >= 300 {
            self.originator_gone = true;
        }
        if (200..300).contains(&status) && self.request.method() == Some(&Method::Invite) {
            // Over UDP the 2xx is retransmitted from T1 on; over TCP it is not, but the ACK
            // is still due within 64·T1 either way (§13.3.1.4).
            let first = if self.peer.reliable {
                cx.cfg.timers.t1 * 64
            } else {
                cx.cfg.timers.t1
            };
            self.timers.set(SessionTimer::OkRetransmit(1), now + first);
        }
        self.check_settled(cx);
    }
}

/// `<focus>;isfocus<params>`: the Contact of our answer to the originator (RFC 4579),
/// written without `format!` (~2.3 k instructions per session).
fn focus_contact(focus: &str, params: &str) -> String {
    let mut s = String::with_capacity(focus.len() + params.len() + 10);
    for piece in ["<", focus, ">;isfocus", params] {
        s.push_str(piece);
    }
    s
}

/// A spec `respond` to the in-dialog request being handled: status, reason, headers and
/// Warning as the rule says; no SDP (an in-dialog answer carries no offer/answer here).
fn respond_in_dialog<A: Application>(
    cx: &mut Ctx<'_, A>,
    key: &TsxKey,
    msg: &Message,
    origin: Origin,
    reply: &Reply,
) {
    let Some(code) = StatusCode::new(reply.status) else {
        return;
    };
    let mut b = sip::build::ResponseBuilder::new(msg, code).reason(&reply.reason);
    if msg.to().and_then(|t| t.tag()).is_none() {
        // A request outside any dialog (a SUBSCRIBE to the focus): a final answer carries
        // a To tag (RFC 3261 §8.2.6.2).
        b = b.to_tag(&cx.ids.token(1));
    }
    for (name, value) in &reply.headers {
        if let crate::machine::HeaderValue::Text(t) = value {
            b = b.header(name, t);
        }
    }
    if let Some(w) = &reply.warning {
        b = b.header("Warning", &coded_warning(w.code, &cx.agent(), w));
    }
    let _ = cx.tsx.respond(cx.now, key, reply.status, b.write());
    cx.live.response(reply.status, Some(&origin));
    cx.flush();
}

/// An in-dialog request that needs the spec's answer (not ACK, nor CANCEL, which the
/// INVITE's transaction answers): a machine hears it even in a final state, as its dialog
/// may still be up: a BYE after the session's procedure ended (6.1.3.3.2
/// `bye_after_close`), an invitee hanging up after its copy was delivered (7.9.1.4
/// `invitee_bye`), a SUBSCRIBE reusing either dialog.
fn answers(event: &Event) -> bool {
    matches!(event, Event::InDialogRequest(m) if !matches!(m, Method::Ack | Method::Cancel))
}

/// `ip` as its `Display` writes it; an IPv4 one without the formatting machinery.
pub(crate) fn ip_string(ip: std::net::IpAddr) -> String {
    let mut s = String::with_capacity(15);
    push_ip(&mut s, ip);
    s
}

/// Appends `ip` as its `Display` writes it; an IPv4 one without the formatting machinery.
pub(crate) fn push_ip(out: &mut String, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let mut buf = Ascii::<15>::new();
            buf.v4(v4);
            out.push_str(buf.as_str());
        }
        std::net::IpAddr::V6(_) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{ip}");
        }
    }
}

/// A few ASCII bytes written on the stack and appended to a `String` at once: an address
/// digit by digit through `String::push` and a `from_utf8` per octet cost ~520 instructions
/// (our address goes into every request we build and, as Warning agent, was formatted for
/// every message received), in one buffer ~100.
struct Ascii<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Ascii<N> {
    fn new() -> Self {
        Ascii {
            buf: [0; N],
            len: 0,
        }
    }

    fn byte(&mut self, b: u8) {
        if let Some(d) = self.buf.get_mut(self.len) {
            *d = b;
            self.len += 1;
        }
    }

    /// `n` in decimal, without leading zeros.
    fn decimal(&mut self, n: u16) {
        let mut started = false;
        for div in [10_000, 1_000, 100, 10] {
            let d = n / div % 10;
            if started || d != 0 {
                self.byte(b'0' + d as u8);
                started = true;
            }
        }
        self.byte(b'0' + (n % 10) as u8);
    }

    /// The dotted quad, as `Ipv4Addr`'s `Display` writes it.
    fn v4(&mut self, ip: std::net::Ipv4Addr) {
        for (i, o) in ip.octets().into_iter().enumerate() {
            if i > 0 {
                self.byte(b'.');
            }
            self.decimal(u16::from(o));
        }
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits, dots and colons were written.
        std::str::from_utf8(self.buf.get(..self.len).unwrap_or_default()).unwrap_or_default()
    }
}

pub(crate) fn own_msrp_path(addr: SocketAddr, sid: &str) -> String {
    msrp_path("msrp://", addr, sid)
}

/// `<scheme>://<addr>/<sid>;tcp`, written piece by piece (a few per session).
pub(crate) fn msrp_path(scheme: &str, addr: SocketAddr, sid: &str) -> String {
    let mut s = String::with_capacity(scheme.len() + 22 + sid.len() + 5);
    s.push_str(scheme);
    push_addr(&mut s, addr);
    s.push('/');
    s.push_str(sid);
    s.push_str(";tcp");
    s
}

/// Appends `addr` as its `Display` writes it; an IPv4 one without the formatting machinery,
/// which costs several times the copying (our addresses go into every request we build).
pub(crate) fn push_addr(out: &mut String, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(v4) => {
            let mut buf = Ascii::<21>::new();
            buf.v4(*v4.ip());
            buf.byte(b':');
            buf.decimal(v4.port());
            out.push_str(buf.as_str());
        }
        SocketAddr::V6(_) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{addr}");
        }
    }
}

/// Appends `n` in lower-case hex without leading zeros, as `{:x}` writes it.
pub(crate) fn push_hex(out: &mut String, n: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        if let (Some(d), Some(&c)) = (buf.get_mut(i), DIGITS.get((n & 0xf) as usize)) {
            *d = c;
        }
        n >>= 4;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(buf.get(i..).unwrap_or_default()).unwrap_or_default());
}

pub(super) fn spec_timer_id(t: Timer) -> u16 {
    match t {
        Timer::Spec(n) => n,
        Timer::B => u16::MAX,
        Timer::F => u16::MAX - 1,
        Timer::H => u16::MAX - 2,
        Timer::Lifetime => u16::MAX - 3,
    }
}

pub(super) fn log_action(call_id: &str, a: &Action, note: &str) {
    // `rule=CLAUSE/NAME`: what an operator looks up in specs/ (`imspec trace` names rules so).
    tracing::info!(
        call_id,
        procedure = a.origin.procedure,
        rule = %format_args!("{}/{}", a.origin.clause, a.origin.rule),
        action = ?a.kind,
        note,
        "spec action"
    );
}

pub(crate) fn tracing_log(what: &str, text: &str) {
    tracing::info!(what, "{text}");
}

/// [`tracing_log`] with the text still to be formatted: formatted only when a subscriber
/// takes the event, so a line logged for every session costs nothing when none does.
pub(crate) fn tracing_log_args(what: &str, text: std::fmt::Arguments<'_>) {
    tracing::info!(what, "{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stack-buffer writers give what `Display` gives: every octet width, zero octets,
    /// the extreme ports, and IPv6 (written by `Display` itself).
    #[test]
    fn the_focus_contact_is_written_as_format_wrote_it() {
        for (focus, params) in [
            ("sip:conf-1@192.0.2.1", ""),
            ("sip:conf-1@192.0.2.1", ";+g.oma.sip-im"),
            ("", ""),
            ("sips:x@[2001:db8::1]:5061;transport=tls", ";a=b;c"),
        ] {
            assert_eq!(
                focus_contact(focus, params),
                format!("<{focus}>;isfocus{params}")
            );
        }
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        let ips: Vec<std::net::IpAddr> = [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.100.9",
            "127.0.0.1",
            "192.168.1.20",
            "1.22.203.4",
            "::1",
            "2001:db8::5",
        ]
        .iter()
        .map(|s| s.parse().expect("address"))
        .collect();
        for ip in ips {
            let mut s = String::from("x");
            push_ip(&mut s, ip);
            assert_eq!(s, format!("x{ip}"));
            assert_eq!(ip_string(ip), ip.to_string());
            for port in [0, 1, 9, 10, 99, 100, 5060, 10000, 65535] {
                let addr = SocketAddr::new(ip, port);
                let mut s = String::from("y");
                push_addr(&mut s, addr);
                assert_eq!(s, format!("y{addr}"));
            }
        }
    }
}

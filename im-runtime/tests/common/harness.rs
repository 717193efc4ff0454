//! The endpoint in virtual time: one [`Sim`] drives an `Endpoint` with a stand-in
//! application, feeds it datagrams, stream data and timeouts at a clock it moves itself, and
//! keeps everything the endpoint sent. The helpers read those outputs (SIP per peer or
//! connection, MSRP connects and sends) and play alice's side of a session, so the
//! virtual-time endpoint tests (`endpoint_paths/`, `endpoint_sim.rs`, `endpoint_tls.rs`,
//! `endpoint_conn_use.rs`, `endpoint_auth.rs`, `endpoint_lists.rs`, `endpoint_tcp_legs.rs`,
//! `endpoint_outbound_path.rs`) share one set-up instead of a copy each.

use super::{
    App, Knobs, Locations, RegApp, ack_for, addr, invite, options, register_request,
    simple_request, status_of,
};
use bytes::Bytes;
use im_runtime::endpoint::{Application, Endpoint, EndpointConfig};
use im_runtime::machine::Method;
use im_runtime::proto::sip::{HeaderName, Message, Transport};
use im_runtime::transport::{ConnId, Core, Input, Output, StreamKind};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Alice, the originator, sends from here (UDP and her TCP connections).
pub(crate) const ALICE: &str = "127.0.0.1:5070";
/// Bob's SIP address; the stand-in routers send `sip:bob@127.0.0.2` here.
pub(crate) const BOB: &str = "127.0.0.2:5060";
/// Carol's SIP address; the stand-in routers send `sip:carol@127.0.0.3` here.
pub(crate) const CAROL: &str = "127.0.0.3:5060";
/// Bob as a recipient-list entry.
pub(crate) const BOB_URI: &str = "sip:bob@127.0.0.2";
/// Carol as a recipient-list entry.
pub(crate) const CAROL_URI: &str = "sip:carol@127.0.0.3";
/// The endpoint's SIP address.
pub(crate) const SIP_LOCAL: &str = "127.0.0.1:5060";
/// The endpoint's MSRP address.
pub(crate) const MSRP_LOCAL: &str = "127.0.0.1:2855";
/// Where alice's MSRP client connects from (her SDP offer's path, [`super::alice_sdp`]).
pub(crate) const ALICE_MSRP: &str = "127.0.0.1:7000";

/// An endpoint serving `A`, its virtual clock and every output it has sent.
pub(crate) struct Sim<A: Application = App> {
    pub(crate) ep: Endpoint<A>,
    pub(crate) now: Instant,
    pub(crate) sent: Vec<Output>,
}

#[allow(clippy::disallowed_methods)]
fn base() -> Instant {
    // The one clock read of these tests: every later instant is derived from it.
    Instant::now()
}

impl Sim<App> {
    /// The stand-in machines of [`App`] with the default configuration.
    pub(crate) fn new(knobs: Knobs) -> Self {
        Self::with(knobs, |_| {})
    }
    /// The stand-in machines of [`App`] with the knobs `f` turns; the default configuration.
    pub(crate) fn tuned(f: impl FnOnce(&mut Knobs)) -> Self {
        let mut knobs = Knobs::default();
        f(&mut knobs);
        Self::new(knobs)
    }
    /// The stand-in machines of [`App`]; `f` changes the configuration first.
    pub(crate) fn with(knobs: Knobs, f: impl FnOnce(&mut EndpointConfig)) -> Self {
        Self::serving(App(knobs), f)
    }
}

impl Sim<RegApp> {
    /// The stand-in machines of [`App`] with `knobs` and a registrar keeping its bindings in
    /// `locations` (clones share them, as the workers of one server do); `f` changes the
    /// configuration first.
    pub(crate) fn registrar(
        knobs: Knobs,
        locations: Locations,
        f: impl FnOnce(&mut EndpointConfig),
    ) -> Self {
        Self::serving(
            RegApp {
                inner: App(knobs),
                locations,
            },
            f,
        )
    }
}

impl<A: Application> Sim<A> {
    /// An endpoint at [`SIP_LOCAL`] / [`MSRP_LOCAL`] serving `app`; `f` changes the
    /// configuration first.
    pub(crate) fn serving(app: A, f: impl FnOnce(&mut EndpointConfig)) -> Sim<A> {
        let mut cfg = EndpointConfig::new(addr(SIP_LOCAL), addr(MSRP_LOCAL));
        f(&mut cfg);
        Sim::at(base(), cfg, app)
    }
    /// An endpoint configured by `cfg` serving `app`, its clock at `now` (for a test whose
    /// configuration needs the start instant itself).
    pub(crate) fn at(now: Instant, cfg: EndpointConfig, app: A) -> Sim<A> {
        Sim {
            ep: Endpoint::new(cfg, app),
            now,
            sent: Vec::new(),
        }
    }
    /// Feeds one input at the current instant; returns what it made the endpoint send.
    pub(crate) fn input(&mut self, i: Input) -> Vec<Output> {
        self.ep.handle_input(self.now, i);
        let mut out = Vec::new();
        while let Some(o) = self.ep.poll_output() {
            out.push(o);
        }
        self.sent.extend(out.clone());
        out
    }
    /// A datagram from `from` with `text` as it is (no line-end conversion).
    pub(crate) fn udp(&mut self, from: &str, text: &str) -> Vec<Output> {
        self.input(Input::Datagram {
            local: addr(SIP_LOCAL),
            from: addr(from),
            data: Bytes::from(text.to_string()),
        })
    }
    /// Connection `conn` of `kind` between `local` and `peer` is up.
    pub(crate) fn open(
        &mut self,
        conn: ConnId,
        kind: StreamKind,
        local: &str,
        peer: &str,
    ) -> Vec<Output> {
        self.input(Input::StreamOpened {
            conn,
            kind,
            local: addr(local),
            peer: addr(peer),
        })
    }
    /// SIP connection `conn` with `peer` is up: one the server accepted, or one it asked
    /// for (`Output::Connect`).
    pub(crate) fn sip_open(&mut self, conn: ConnId, peer: &str) -> Vec<Output> {
        self.open(conn, StreamKind::Sip, SIP_LOCAL, peer)
    }
    /// The `n`th SIP connection the server accepts, from `peer`.
    pub(crate) fn tcp_accept(&mut self, n: u64, peer: &str) -> ConnId {
        let conn = ConnId(ConnId::ACCEPTED | n);
        self.sip_open(conn, peer);
        conn
    }
    /// `user` registers over the `n`th SIP connection the server accepts, from `src`:
    /// Contact `contact` (the whole header value), `extra` header lines (LF-ended). The
    /// connection, and the one message the server sent on it (the answer).
    pub(crate) fn register_over_tcp(
        &mut self,
        n: u64,
        src: &str,
        user: &str,
        call_id: &str,
        extra: &str,
        contact: &str,
    ) -> (ConnId, Message) {
        let conn = self.tcp_accept(n, src);
        let via = format!("SIP/2.0/TCP {src};branch=z9hG4bKreg{call_id}");
        let out = self.tcp(
            conn,
            &register_request(user, call_id, &[via], extra, contact),
        );
        let mut answers = tcp_on(&out, conn);
        assert_eq!(answers.len(), 1, "one answer to the REGISTER: {out:?}");
        (conn, answers.remove(0))
    }
    /// Bytes `text` arrive on connection `conn`.
    pub(crate) fn tcp(&mut self, conn: ConnId, text: &str) -> Vec<Output> {
        self.input(Input::StreamData {
            conn,
            data: Bytes::from(text.to_string()),
        })
    }
    /// An MSRP connection `conn` (accepted or the endpoint's own connect) is up.
    pub(crate) fn msrp_open(&mut self, conn: ConnId, local: &str, peer: SocketAddr) -> Vec<Output> {
        self.input(Input::StreamOpened {
            conn,
            kind: StreamKind::Msrp,
            local: addr(local),
            peer,
        })
    }
    /// Runs every timer due within `d`, collecting what was sent.
    pub(crate) fn advance(&mut self, d: Duration) -> Vec<Output> {
        let until = self.now + d;
        let mut out = Vec::new();
        while let Some(t) = self.ep.poll_timeout() {
            if t > until {
                break;
            }
            self.now = self.now.max(t);
            out.extend(self.input(Input::Timeout));
        }
        self.now = until;
        out
    }
    /// Alice's INVITE to `recipients` over UDP (call `call_id`), answered 200 and ACKed:
    /// what the INVITE and the ACK made the endpoint send, and the 200.
    pub(crate) fn session(&mut self, call_id: &str, recipients: &[&str]) -> (Vec<Output>, Message) {
        let branch = format!("z9hG4bK{call_id}");
        let mut out = self.udp(ALICE, &invite("UDP", ALICE, call_id, &branch, recipients));
        let ok = udp_to(&out, ALICE)
            .into_iter()
            .find(|m| status_of(m) == 200)
            .unwrap_or_else(|| panic!("a 200 to alice: {out:?}"));
        let ack_branch = format!("z9hG4bKack{call_id}");
        out.extend(self.udp(ALICE, &ack_for(&ok, "UDP", ALICE, &ack_branch)));
        (out, ok)
    }
    /// Sends an OPTIONS over UDP and checks it is served: the server still works.
    pub(crate) fn still_serving(&mut self, what: &str) {
        let tag: String = what
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let (call_id, branch) = (format!("alive-{tag}"), format!("z9hG4bKalive{tag}"));
        let out = self.udp(ALICE, &options("UDP", ALICE, &call_id, &branch));
        let r = udp_to(&out, ALICE);
        assert_eq!(
            r.iter().map(status_of).collect::<Vec<_>>(),
            vec![200],
            "OPTIONS after {what}"
        );
    }
}

/// The SIP messages sent over UDP to `to`; anything unparsable fails the test.
pub(crate) fn udp_to(out: &[Output], to: &str) -> Vec<Message> {
    out.iter()
        .filter_map(|o| match o {
            Output::Datagram { to: t, data, .. } if *t == addr(to) => {
                Some(Message::parse(data.clone()).unwrap_or_else(|e| {
                    panic!("unparsable {e:?}: {}", String::from_utf8_lossy(data))
                }))
            }
            _ => None,
        })
        .collect()
}

/// The SIP messages sent on connection `conn`.
pub(crate) fn tcp_on(out: &[Output], conn: ConnId) -> Vec<Message> {
    out.iter()
        .filter_map(|o| match o {
            Output::StreamSend { conn: c, data } if *c == conn => Some(
                Message::parse_as(data.clone(), Transport::Stream)
                    .expect("the server sends parsable SIP"),
            ),
            _ => None,
        })
        .collect()
}

/// The requests of method `m`, each once (retransmissions left out).
pub(crate) fn requests(msgs: &[Message], m: Method) -> Vec<Message> {
    let mut seen = std::collections::HashSet::new();
    msgs.iter()
        .filter(|x| x.method() == Some(&m))
        .filter(|x| seen.insert(x.top_via().and_then(|v| v.branch()).map(str::to_string)))
        .cloned()
        .collect()
}

/// The status codes of the responses among `msgs`, in order.
pub(crate) fn statuses(msgs: &[Message]) -> Vec<u16> {
    msgs.iter().map(status_of).filter(|s| *s != 0).collect()
}

/// The first connection the endpoint opened (to an invitee's MSRP path) and where to.
pub(crate) fn connect_of(out: &[Output]) -> Option<(ConnId, SocketAddr)> {
    out.iter().find_map(|o| match o {
        Output::Connect { conn, to, .. } => Some((*conn, *to)),
        _ => None,
    })
}

/// The first bytes sent on connection `conn`.
pub(crate) fn sent_on(out: &[Output], conn: ConnId) -> Option<Bytes> {
    out.iter().find_map(|o| match o {
        Output::StreamSend { conn: c, data } if *c == conn => Some(data.clone()),
        _ => None,
    })
}

/// The connections the endpoint said it holds (`true`) or let go of (`false`), in order
/// (`Output::ConnUse`).
pub(crate) fn conn_uses(out: &[Output]) -> Vec<(ConnId, bool)> {
    out.iter()
        .filter_map(|o| match o {
            Output::ConnUse { conn, in_use } => Some((*conn, *in_use)),
            _ => None,
        })
        .collect()
}

/// Whether connection `conn` was closed.
pub(crate) fn closed(out: &[Output], conn: ConnId) -> bool {
    out.iter()
        .any(|o| matches!(o, Output::Close { conn: c } if *c == conn))
}

/// The ACK alice sends over UDP for the 2xx `ok`; nothing answers it.
pub(crate) fn ack<A: Application>(sim: &mut Sim<A>, ok: &Message) {
    let out = sim.udp(ALICE, &ack_for(ok, "UDP", ALICE, "z9hG4bKack"));
    assert!(udp_to(&out, ALICE).is_empty(), "an ACK is never answered");
}

/// Alice's BYE in the dialog of `ok`.
pub(crate) fn alice_bye(ok: &Message) -> String {
    simple_request(
        "BYE",
        "UDP",
        ALICE,
        ok.call_id().unwrap(),
        "z9hG4bKbye",
        ok.header(HeaderName::To).unwrap(),
        2,
        "",
    )
}

/// Alice connects from [`ALICE_MSRP`] to the server's MSRP path in `ok`'s SDP answer;
/// returns her connection and that path.
pub(crate) fn alice_connects<A: Application>(sim: &mut Sim<A>, ok: &Message) -> (ConnId, String) {
    let alice_conn = ConnId(ConnId::ACCEPTED | 1);
    sim.msrp_open(alice_conn, MSRP_LOCAL, addr(ALICE_MSRP));
    (alice_conn, path_of(&body_of(ok)))
}

/// A message's body as text.
pub(crate) fn body_of(m: &Message) -> String {
    String::from_utf8_lossy(m.body_bytes()).to_string()
}

/// The MSRP path an SDP offers or answers.
pub(crate) fn path_of(sdp: &str) -> String {
    sdp.lines()
        .find_map(|l| l.strip_prefix("a=path:"))
        .expect("the SDP has a path")
        .trim()
        .to_owned()
}

/// Alice connects to the server's MSRP path from `ok` and sends `text` in one chunk, asking
/// for a success report; the SEND must be accepted.
pub(crate) fn alice_sends<A: Application>(sim: &mut Sim<A>, ok: &Message, text: &str) -> ConnId {
    let (alice_conn, our_path) = alice_connects(sim, ok);
    let out = sim.input(Input::StreamData {
        conn: alice_conn,
        data: Bytes::from(format!(
            "MSRP t1 SEND\r\nTo-Path: {our_path}\r\nFrom-Path: msrp://{ALICE_MSRP}/alicesess;tcp\r\nMessage-ID: m1\r\nByte-Range: 1-{n}/{n}\r\nSuccess-Report: yes\r\nContent-Type: text/plain\r\n\r\n{text}\r\n-------t1$\r\n",
            n = text.len()
        )),
    });
    let resp = sent_on(&out, alice_conn).map(|d| String::from_utf8_lossy(&d).to_string());
    assert!(
        resp.unwrap().starts_with("MSRP t1 200"),
        "the SEND is accepted"
    );
    alice_conn
}

//! Structure-aware endpoint target: the real server application (the machines generated from
//! `specs/`, the shipped groups) in an `Endpoint`, driven only through the public `Core`
//! trait by a sequence of steps decoded from the fuzz bytes: SIP datagrams and TCP bytes
//! (well-formed requests from templates, responses to what the endpoint sent, raw bytes), MSRP
//! connections and frames (SENDs to the paths the endpoint announced, raw bytes), closed and
//! failed connections, and jumps of the virtual clock.
//!
//! Checks: nothing panics; after `Shutdown` and every timer the endpoint reached, it is idle
//! (no session left) within a bounded number of timer steps.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bytes::Bytes;
use im_runtime::endpoint::{Endpoint, EndpointConfig};
use im_runtime::proto::sip::{HeaderName, Message};
use im_runtime::transport::{ConnId, Core, Input, Output, StreamKind};
use im_server::app::ServerApp;
use im_server::config::DEFAULT_GROUPS_DIR;
use im_server::groups::{GroupStore, SharedGroups};
use im_server::metrics::Metrics;
use im_server::router::{LocationTable, Router};
use libfuzzer_sys::fuzz_target;

const SIP: &str = "127.0.0.1:5060";
const MSRP: &str = "127.0.0.1:2855";
/// Peers the steps pick from: the originator and invitees on loopback addresses.
const PEERS: [&str; 4] = [
    "127.0.0.1:5070",
    "127.0.0.2:5060",
    "127.0.0.3:5060",
    "127.0.0.4:5060",
];

#[derive(Arbitrary, Debug)]
enum Template {
    OptionsToServer,
    InviteGroup,
    InviteFactoryWithList,
    MessageToGroup,
    Register,
    Bye,
    Cancel,
    Ack,
    /// A SUBSCRIBE (RFC 4575 `conference`) to a focus URI a 200 named, else to a guess.
    Subscribe,
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// A request built from a template, over UDP from a peer.
    Request {
        template: Template,
        peer: u8,
        call: u8,
        cseq: u8,
        /// A byte to overwrite at a position, so parsers see near-valid input too.
        flip: Option<(u16, u8)>,
    },
    /// A response to the `nth` request the endpoint sent (to an invitee).
    Respond {
        nth: u8,
        status: u16,
        with_sdp: bool,
    },
    /// Raw bytes as one datagram.
    RawDatagram { peer: u8, data: Vec<u8> },
    /// A SIP TCP connection opened by a peer, and bytes on it.
    SipStream { conn: u8, data: Vec<u8> },
    /// The endpoint's or a peer's MSRP connection opens.
    MsrpOpen { conn: u8, peer: u8 },
    /// An MSRP SEND to the `nth` path the endpoint announced, on a connection.
    MsrpSend {
        conn: u8,
        nth: u8,
        body: Vec<u8>,
        last: bool,
    },
    /// Raw bytes on a stream.
    RawStream { conn: u8, data: Vec<u8> },
    /// A stream closes.
    Close { conn: u8 },
    /// A connection the endpoint asked for fails.
    ConnectFailed { nth: u8 },
    /// The clock jumps by up to ~65 s, firing every timer on the way.
    Advance { ms: u16 },
    /// The IO layer reports pressure on or off (new sessions shed while on).
    Pressure { on: bool },
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("literal address")
}

fn peer(i: u8) -> SocketAddr {
    addr(PEERS[usize::from(i) % PEERS.len()])
}

fn conn_id(c: u8) -> ConnId {
    ConnId(ConnId::ACCEPTED | u64::from(c % 8))
}

struct Harness {
    ep: Endpoint<ServerApp>,
    now: Instant,
    sent_requests: Vec<(SocketAddr, Message)>,
    paths: Vec<String>,
    connects: Vec<ConnId>,
    /// Focus URIs from the Contact of the 2xx the endpoint sent (SUBSCRIBE targets).
    focuses: Vec<String>,
}

const SDP: &str = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=message 7000 TCP/MSRP *\r\na=path:msrp://127.0.0.1:7000/alicesess;tcp\r\n\
a=accept-types:message/cpim text/plain\r\na=setup:actpass\r\na=sendonly\r\n";

fn request(t: &Template, from: SocketAddr, call: u8, cseq: u8, focus: Option<&str>) -> String {
    let (method, target, body, ct) = match t {
        Template::OptionsToServer => ("OPTIONS", "sip:example.com".to_owned(), String::new(), ""),
        Template::InviteGroup => (
            "INVITE",
            "sip:friends@example.com".to_owned(),
            SDP.to_owned(),
            "application/sdp",
        ),
        Template::InviteFactoryWithList => {
            let list = "<?xml version=\"1.0\"?>\r\n<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\"><list><entry uri=\"sip:bob@127.0.0.2\"/><entry uri=\"sip:carol@127.0.0.3\"/></list></resource-lists>\r\n";
            (
                "INVITE",
                "sip:conference-factory@example.com".to_owned(),
                format!(
                    "--b1\r\nContent-Type: application/sdp\r\n\r\n{SDP}--b1\r\nContent-Type: application/resource-lists+xml\r\nContent-Disposition: recipient-list\r\n\r\n{list}--b1--\r\n"
                ),
                "multipart/mixed;boundary=b1",
            )
        }
        Template::MessageToGroup => (
            "MESSAGE",
            "sip:friends@example.com".to_owned(),
            "hello".to_owned(),
            "text/plain",
        ),
        Template::Register => ("REGISTER", "sip:example.com".to_owned(), String::new(), ""),
        Template::Bye => ("BYE", format!("sip:conf@{SIP}"), String::new(), ""),
        Template::Cancel => (
            "CANCEL",
            "sip:friends@example.com".to_owned(),
            String::new(),
            "",
        ),
        Template::Ack => ("ACK", format!("sip:conf@{SIP}"), String::new(), ""),
        Template::Subscribe => (
            "SUBSCRIBE",
            focus.map_or_else(|| format!("sip:conf-1-x@{SIP}"), str::to_owned),
            String::new(),
            "",
        ),
    };
    let cseq_method = method;
    let branch = if matches!(t, Template::Cancel) {
        format!("z9hG4bK{call}-1")
    } else {
        format!("z9hG4bK{call}-{cseq}")
    };
    let ctl = if ct.is_empty() {
        String::new()
    } else {
        format!("Content-Type: {ct}\r\n")
    };
    format!(
        "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch={branch};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a{call}\r\nTo: <{target}>\r\n\
         Call-ID: call-{call}@fuzz\r\nCSeq: {cseq} {cseq_method}\r\nContact: <sip:alice@{from}>\r\n\
         Expires: 60\r\nEvent: conference\r\nAccept: application/conference-info+xml\r\n\
         {ctl}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn response(req: &Message, status: u16, sdp: bool) -> Option<String> {
    let h = |n| req.header(n).map(|v| v.to_string());
    let via = h(HeaderName::Via)?;
    let from = h(HeaderName::From)?;
    let to = h(HeaderName::To)?;
    let cseq = h(HeaderName::CSeq)?;
    let cid = req.call_id()?.to_string();
    let body = if sdp {
        "v=0\r\no=bob 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n\
m=message 7002 TCP/MSRP *\r\na=path:msrp://127.0.0.2:7002/bobsess;tcp\r\n\
a=accept-types:message/cpim text/plain\r\na=setup:active\r\na=recvonly\r\n"
    } else {
        ""
    };
    let ct = if sdp {
        "Content-Type: application/sdp\r\n"
    } else {
        ""
    };
    Some(format!(
        "SIP/2.0 {status} X\r\nVia: {via}\r\nFrom: {from}\r\nTo: {to};tag=b1\r\nCall-ID: {cid}\r\n\
         CSeq: {cseq}\r\nContact: <sip:bob@127.0.0.2:5060>\r\n{ct}Content-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

impl Harness {
    fn new(now: Instant) -> Harness {
        let (groups, _) = GroupStore::open(DEFAULT_GROUPS_DIR, Duration::from_secs(3600), now);
        let app = ServerApp {
            groups: SharedGroups::fixed(groups),
            router: Router::new(None, LocationTable::new(64)),
            metrics: Metrics::new(None),
            bindings: None,
            users: Default::default(),
            offline: None,
        };
        let mut cfg = EndpointConfig::new(addr(SIP), addr(MSRP));
        cfg.seed = 7;
        Harness {
            ep: Endpoint::new(cfg, app),
            now,
            sent_requests: Vec::new(),
            paths: Vec::new(),
            connects: Vec::new(),
            focuses: Vec::new(),
        }
    }

    fn input(&mut self, i: Input) {
        self.ep.handle_input(self.now, i);
        while let Some(o) = self.ep.poll_output() {
            match o {
                Output::Datagram { to, data, .. } => {
                    if let Ok(m) = Message::parse(data.clone()) {
                        let body = String::from_utf8_lossy(m.body_bytes()).into_owned();
                        for l in body.lines() {
                            if let Some(p) = l.strip_prefix("a=path:") {
                                if self.paths.len() < 64 {
                                    self.paths.push(p.trim().to_owned());
                                }
                            }
                        }
                        if let Some(c) = m.header_str("Contact")
                            && c.contains("isfocus")
                            && self.focuses.len() < 16
                            && let (Some(a), Some(b)) = (c.find('<'), c.find('>'))
                            && a < b
                        {
                            self.focuses.push(c[a + 1..b].to_owned());
                        }
                        if m.status().is_none() && self.sent_requests.len() < 64 {
                            self.sent_requests.push((to, m));
                        }
                    }
                }
                Output::Connect { conn, .. } => {
                    if self.connects.len() < 64 {
                        self.connects.push(conn);
                    }
                }
                _ => {}
            }
        }
    }

    fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        let mut steps = 0u32;
        while let Some(t) = self.ep.poll_timeout() {
            if t > until {
                break;
            }
            steps += 1;
            assert!(steps < 100_000, "timers keep firing within one jump");
            self.now = self.now.max(t);
            self.input(Input::Timeout);
        }
        self.now = until;
    }

    fn step(&mut self, s: Step) {
        match s {
            Step::Request {
                template,
                peer: p,
                call,
                cseq,
                flip,
            } => {
                let from = peer(p);
                let focus = self
                    .focuses
                    .get(usize::from(call) % self.focuses.len().max(1))
                    .cloned();
                let mut bytes =
                    request(&template, from, call % 4, cseq, focus.as_deref()).into_bytes();
                if let Some((pos, b)) = flip
                    && let Some(slot) = bytes.get_mut(usize::from(pos))
                {
                    *slot = b;
                }
                self.input(Input::Datagram {
                    local: addr(SIP),
                    from,
                    data: Bytes::from(bytes),
                });
            }
            Step::Respond {
                nth,
                status,
                with_sdp,
            } => {
                let Some((to, req)) = self
                    .sent_requests
                    .get(usize::from(nth) % self.sent_requests.len().max(1))
                    .cloned()
                else {
                    return;
                };
                if let Some(text) = response(&req, 100 + status % 600, with_sdp) {
                    self.input(Input::Datagram {
                        local: addr(SIP),
                        from: to,
                        data: Bytes::from(text),
                    });
                }
            }
            Step::RawDatagram { peer: p, data } => self.input(Input::Datagram {
                local: addr(SIP),
                from: peer(p),
                data: Bytes::from(data),
            }),
            Step::SipStream { conn, data } => {
                let conn = ConnId(ConnId::ACCEPTED | (16 + u64::from(conn % 4)));
                self.input(Input::StreamOpened {
                    conn,
                    kind: StreamKind::Sip,
                    local: addr(SIP),
                    peer: peer(0),
                });
                self.input(Input::StreamData {
                    conn,
                    data: Bytes::from(data),
                });
            }
            Step::MsrpOpen { conn, peer: p } => {
                // Either an accepted connection or one the endpoint asked for.
                let id = if conn % 2 == 0 {
                    conn_id(conn)
                } else {
                    match self
                        .connects
                        .get(usize::from(conn) % self.connects.len().max(1))
                    {
                        Some(c) => *c,
                        None => conn_id(conn),
                    }
                };
                self.input(Input::StreamOpened {
                    conn: id,
                    kind: StreamKind::Msrp,
                    local: addr(MSRP),
                    peer: peer(p),
                });
            }
            Step::MsrpSend {
                conn,
                nth,
                body,
                last,
            } => {
                let Some(path) = self
                    .paths
                    .get(usize::from(nth) % self.paths.len().max(1))
                    .cloned()
                else {
                    return;
                };
                let body = body.get(..body.len().min(256)).unwrap_or_default();
                let flag = if last { '$' } else { '+' };
                let mut frame = format!(
                    "MSRP t{nth} SEND\r\nTo-Path: {path}\r\nFrom-Path: msrp://127.0.0.1:7000/alicesess;tcp\r\n\
                     Message-ID: m1\r\nByte-Range: 1-{}/{}\r\nSuccess-Report: yes\r\nContent-Type: text/plain\r\n\r\n",
                    body.len(),
                    body.len()
                )
                .into_bytes();
                frame.extend_from_slice(body);
                frame.extend_from_slice(format!("\r\n-------t{nth}{flag}\r\n").as_bytes());
                self.input(Input::StreamData {
                    conn: conn_id(conn),
                    data: Bytes::from(frame),
                });
            }
            Step::RawStream { conn, data } => self.input(Input::StreamData {
                conn: conn_id(conn),
                data: Bytes::from(data),
            }),
            Step::Close { conn } => self.input(Input::StreamClosed {
                conn: conn_id(conn),
            }),
            Step::ConnectFailed { nth } => {
                if let Some(c) = self
                    .connects
                    .get(usize::from(nth) % self.connects.len().max(1))
                {
                    let c = *c;
                    self.input(Input::ConnectFailed { conn: c });
                }
            }
            Step::Advance { ms } => self.advance(Duration::from_millis(u64::from(ms))),
            Step::Pressure { on } => self.input(Input::Pressure {
                overloaded: on,
                queue_delay: Duration::from_millis(if on { 80 } else { 1 }),
            }),
        }
    }
}

#[allow(clippy::disallowed_methods)] // the one base instant of the virtual clock
fn base() -> Instant {
    Instant::now()
}

fuzz_target!(|steps: Vec<Step>| {
    let mut h = Harness::new(base());
    for s in steps.into_iter().take(64) {
        h.step(s);
    }
    h.input(Input::Shutdown);
    // Every peer is silent from now on: every session must end by its own timers.
    let mut n = 0u32;
    while let Some(t) = h.ep.poll_timeout() {
        n += 1;
        assert!(n < 200_000, "timers never run out after shutdown");
        h.now = h.now.max(t);
        h.input(Input::Timeout);
    }
    // Once held forever by an invitee that answered only 1xx (RFC 3261 §9.1, fixed in the
    // INVITE client transaction; tests/sim_session_shutdown.rs).
    assert!(
        h.ep.is_idle(),
        "after shutdown and the last timer the endpoint still holds {} sessions",
        h.ep.live_sessions()
    );
});

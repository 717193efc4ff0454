//! Invitees reached over TCP, against the real `im-server` binary
//! (`im-runtime/src/endpoint/route_leg.rs`):
//! * a group member whose URI says `transport=tcp` is a SIPp UAS in TCP mode (`-t t1`, it
//!   listens on TCP only): its INVITE, 200, ACK and the server's BYE all go over TCP, every
//!   request of the server saying `SIP/2.0/TCP`, and it gets the message over MSRP;
//! * a member that REGISTERed over a TCP connection (a stdlib-Python UA whose Contact port
//!   listens for nothing) gets its INVITE on the very socket it registered from, while a
//!   UDP-only member's INVITE, over `[limits] max_udp_request`, goes over TCP, is refused,
//!   and is sent again over UDP;
//! * an invitee that closes its connection once it has answered still gets the session's
//!   BYE, on a new connection the server opens to its Contact.

mod common;

use common::{Invitees, MsrpPeer, Server, Sipp, group_folder, msrp_receiver, sip_log};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const GROUP: &str = "sip:e2e@example.com";

/// Alice's pager-mode session to the group (SIPp over UDP, `a=setup:active`): the Python
/// sender connects to the server's path and sends `data`. Returns the UAC run and the
/// sender's exit code.
fn originate(server: &Server, alice: &str, data: &[u8]) -> (common::SippRun, Option<i32>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data.bin"), data).unwrap();
    let msrp_port = common::free_tcp_port();
    let from_path = format!("msrp://127.0.0.1:{msrp_port}/o1x;tcp");
    let mut uac = Sipp::new("pager_msrp")
        .to(server.sip)
        .key("target", GROUP)
        .key("from", alice)
        .key("accept", "message/cpim text/plain")
        .key("msrp_port", &msrp_port.to_string())
        .key("setup", "a=setup:active")
        .key("answer_setup", "a=setup:passive")
        .timeouts(Duration::from_secs(20), Duration::from_secs(30))
        .spawn();
    let path = uac
        .wait_for_log("server-path ", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no 200 with a path:\n{}", server.log()));
    let authority = path
        .strip_prefix("msrp://")
        .and_then(|r| r.split('/').next())
        .unwrap()
        .to_owned();
    let mut sender = MsrpPeer::spawn(
        dir,
        &[
            "send",
            "--from-path",
            &from_path,
            "--file",
            "{dir}/data.bin",
            "--chunk-size",
            "0",
            "--content-type",
            "text/plain",
            "--success-report",
            "yes",
            "--timeout",
            "20",
            "--connect",
            &authority,
            "--to-path",
            &path,
        ],
        Duration::from_secs(25),
    );
    let code = sender.wait();
    (uac.wait(), code)
}

/// The whole invitee dialog over TCP with a SIPp UAS that listens on TCP only.
#[test]
fn transport_tcp_member_gets_its_whole_dialog_over_tcp() {
    let (receiver, port) = msrp_receiver(1, 25, &[]);
    let sipp = Sipp::new("uas_msrp")
        .tcp()
        .calls(1)
        .key("msrp_port", &port.to_string())
        .timeouts(Duration::from_secs(20), Duration::from_secs(30));
    let host = sipp.local().to_string();
    let inv = Invitees {
        uas: sipp.spawn(),
        receiver,
        host: host.clone(),
    };
    let member = format!("sip:inv0@{host};transport=tcp");
    let alice = format!("sip:alice@{host}");
    let groups = group_folder(GROUP, &[member.clone(), alice.clone()]);
    let server = Server::start(&["--groups", groups.path().to_str().unwrap()]);
    let data = b"hello over TCP".to_vec();
    let (uac, code) = originate(&server, &alice, &data);
    let (uas, copies, receiver) = inv.finish();
    let ctx = || {
        format!(
            "uac: {uac:?}\nuas: {uas:?}\nreceiver: {receiver:?}\n{}",
            server.log()
        )
    };
    assert!(uac.success(), "originator:\n{}", ctx());
    assert_eq!(code, Some(0), "sender:\n{}", ctx());
    assert!(uas.success(), "invitee SIPp (TCP) failed:\n{}", ctx());
    assert_eq!(copies.get("inv0").map(Vec::len), Some(1), "{}", ctx());
    assert!(copies["inv0"][0] == data);
    // What the UAS received: INVITE, ACK and BYE, each with the server's TCP Via.
    let got: Vec<_> = sip_log(&uas.messages)
        .into_iter()
        .filter(|m| m.received)
        .collect();
    for method in ["INVITE", "ACK", "BYE"] {
        let m = got
            .iter()
            .find(|m| m.start.starts_with(&format!("{method} ")))
            .unwrap_or_else(|| panic!("no {method}:\n{}", ctx()));
        let via = m.header("Via").unwrap_or("");
        assert!(
            via.starts_with(&format!("SIP/2.0/TCP {}", server.sip)),
            "{method} Via {via}"
        );
    }
    let invite = got.iter().find(|m| m.start.starts_with("INVITE ")).unwrap();
    let contact = invite.header("Contact").unwrap_or("");
    assert!(contact.contains(";transport=tcp>"), "{contact}");
}

/// A stdlib-Python UA: REGISTERs over one TCP connection a contact whose port listens for
/// nothing, prints `registered`, then waits on that socket for an INVITE, declines it 486,
/// reads the ACK and prints what came as JSON.
const TCP_UA: &str = r#"
import json, socket, sys
server, contact_port = sys.argv[1], int(sys.argv[2])
host, port = server.rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=20)
local = "%s:%d" % s.getsockname()
def send(t):
    s.sendall(t.replace("\n", "\r\n").encode())
buf = b""
def read_msg():
    global buf
    while True:
        i = buf.find(b"\r\n\r\n")
        if i >= 0:
            head = buf[:i].decode()
            n = 0
            for l in head.split("\r\n")[1:]:
                k, _, v = l.partition(":")
                if k.strip().lower() in ("content-length", "l"):
                    n = int(v)
            if len(buf) >= i + 4 + n:
                m, buf = buf[:i + 4 + n].decode(), buf[i + 4 + n:]
                return m
        d = s.recv(65536)
        if not d:
            return None
        buf += d
send("REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/TCP %s;branch=z9hG4bKreg1\nMax-Forwards: 70\nFrom: <sip:bob@example.com>;tag=r1\nTo: <sip:bob@example.com>\nCall-ID: reg-bob-1\nCSeq: 1 REGISTER\nContact: <sip:bob@127.0.0.1:%d;transport=tcp>\nExpires: 600\nContent-Length: 0\n\n" % (local, contact_port))
reg = read_msg()
print(json.dumps({"event": "registered", "status": reg.split("\r\n")[0]}), flush=True)
while True:
    m = read_msg()
    if m is None or not m.startswith("SIP/2.0"):
        break
if m is None:
    print(json.dumps({"event": "closed"}), flush=True)
    sys.exit(1)
lines = m.split("\r\n")
hdr = {}
for l in lines[1:]:
    if not l:
        break
    k, _, v = l.partition(":")
    hdr.setdefault(k.strip().lower(), v.strip())
print(json.dumps({"event": "request", "start": lines[0], "via": hdr.get("via", ""), "contact": hdr.get("contact", "")}), flush=True)
send("SIP/2.0 486 Busy Here\nVia: %s\nFrom: %s\nTo: %s;tag=busy1\nCall-ID: %s\nCSeq: %s\nContent-Length: 0\n\n" % (hdr["via"], hdr["from"], hdr["to"], hdr["call-id"], hdr["cseq"]))
ack = read_msg()
print(json.dumps({"event": "ack", "start": (ack or "").split("\r\n")[0]}), flush=True)
"#;

struct TcpUa {
    child: Child,
    lines: std::sync::mpsc::Receiver<serde_json::Value>,
}

impl TcpUa {
    fn start(server: &Server) -> TcpUa {
        let contact_port = common::free_tcp_port();
        let mut child = Command::new(common::python3())
            .args(["-c", TCP_UA])
            .arg(server.sip.to_string())
            .arg(contact_port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn python3");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&l) {
                    let _ = tx.send(v);
                }
            }
        });
        TcpUa { child, lines }
    }

    fn next(&self, secs: u64) -> serde_json::Value {
        self.lines
            .recv_timeout(Duration::from_secs(secs))
            .unwrap_or(serde_json::Value::Null)
    }
}

impl Drop for TcpUa {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A member registered over TCP gets the invitee INVITE on its registration socket, since
/// its Contact's port accepts nothing (with the default workers, one per core: the table of
/// registration connections is shared, whichever worker runs the session).
#[test]
fn member_registered_over_tcp_is_invited_on_that_connection() {
    let inv = Invitees::start(1, 1, 25);
    let inv_host = inv.host.clone();
    let alice = format!("sip:alice@{}", inv.host);
    let members = vec![
        "sip:bob@example.com".to_owned(),
        inv.uri("inv0"),
        alice.clone(),
    ];
    let groups = group_folder(GROUP, &members);
    // Below this group's INVITE size (about 1.1 KB), so that the size rule applies to inv0.
    let conf_dir = tempfile::tempdir().unwrap();
    let config = conf_dir.path().join("im-server.toml");
    std::fs::write(&config, "[limits]\nmax_udp_request = 600\n").unwrap();
    let server = Server::start(&[
        "--groups",
        groups.path().to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    let ua = TcpUa::start(&server);
    let reg = ua.next(10);
    assert_eq!(reg["event"], "registered", "{reg}\n{}", server.log());
    assert!(
        reg["status"]
            .as_str()
            .unwrap_or("")
            .starts_with("SIP/2.0 200"),
        "{reg}"
    );
    let data = b"to a registered TCP member".to_vec();
    let (uac, code) = originate(&server, &alice, &data);
    let request = ua.next(10);
    let ack = ua.next(10);
    let (uas, copies, receiver) = inv.finish();
    let ctx = || {
        format!(
            "uac: {uac:?}\nuas: {uas:?}\nreceiver: {receiver:?}\n{}",
            server.log()
        )
    };
    assert_eq!(request["event"], "request", "{request}\n{}", ctx());
    assert!(
        request["start"]
            .as_str()
            .unwrap_or("")
            .starts_with("INVITE sip:bob@example.com "),
        "{request}"
    );
    assert!(
        request["via"]
            .as_str()
            .unwrap_or("")
            .starts_with(&format!("SIP/2.0/TCP {}", server.sip)),
        "{request}"
    );
    assert!(
        ack["start"].as_str().unwrap_or("").starts_with("ACK "),
        "the 486 was ACKed on the same connection: {ack}"
    );
    assert!(uac.success(), "{}", ctx());
    assert_eq!(code, Some(0), "{}", ctx());
    assert!(uas.success(), "{}", ctx());
    assert!(
        copies
            .get("inv0")
            .is_some_and(|c| c.len() == 1 && c[0] == data)
    );
    assert!(
        server
            .log()
            .contains("recipient sip:bob@example.com: not reached (486)"),
        "{}",
        ctx()
    );
    // inv0 listens on UDP only: its INVITE, over `[limits] max_udp_request`, went over TCP
    // first and, refused, over UDP (RFC 3261 §18.1.1).
    assert!(
        server.log().contains(&format!(
            "no TCP connection to {}: INVITE sent again over UDP",
            inv_host
        )),
        "{}",
        ctx()
    );
}

/// A stdlib-Python invitee listening on TCP only: takes the server's connection, answers the
/// INVITE 200 (Contact = its listening address, `transport=tcp`; its MSRP side is the
/// test's receiver), reads the ACK and closes that connection; then accepts the next one
/// and prints the request that comes on it, answered 200.
const TCP_INVITEE: &str = r#"
import json, socket, sys
port, msrp_port = int(sys.argv[1]), int(sys.argv[2])
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", port))
l.listen(4)
l.settimeout(25)
print(json.dumps({"event": "listening"}), flush=True)
class Conn:
    def __init__(self, s):
        self.s, self.buf = s, b""
        s.settimeout(20)
    def send(self, t):
        self.s.sendall(t.replace("\n", "\r\n").encode())
    def read(self):
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                head = self.buf[:i].decode()
                n = 0
                for x in head.split("\r\n")[1:]:
                    k, _, v = x.partition(":")
                    if k.strip().lower() in ("content-length", "l"):
                        n = int(v)
                if len(self.buf) >= i + 4 + n:
                    m, self.buf = self.buf[:i + 4 + n].decode(), self.buf[i + 4 + n:]
                    return m
            d = self.s.recv(65536)
            if not d:
                return None
            self.buf += d
def headers(m):
    h = {}
    for x in m.split("\r\n")[1:]:
        if not x:
            break
        k, _, v = x.partition(":")
        h.setdefault(k.strip().lower(), v.strip())
    return h
c = Conn(l.accept()[0])
inv = c.read()
h = headers(inv)
sdp = "v=0\no=py 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=message %d TCP/MSRP *\na=accept-types:message/cpim text/plain\na=path:msrp://127.0.0.1:%d/inv0;tcp\na=setup:passive\na=recvonly\n" % (msrp_port, msrp_port)
c.send("SIP/2.0 200 OK\nVia: %s\nFrom: %s\nTo: %s;tag=py1\nCall-ID: %s\nCSeq: %s\nContact: <sip:inv0@127.0.0.1:%d;transport=tcp>\nContent-Type: application/sdp\nContent-Length: %d\n\n" % (h["via"], h["from"], h["to"], h["call-id"], h["cseq"], port, len(sdp.replace("\n", "\r\n"))) + sdp)
ack = c.read()
c.s.close()
print(json.dumps({"event": "answered", "invite": inv.split("\r\n")[0], "ack": (ack or "").split("\r\n")[0]}), flush=True)
c = Conn(l.accept()[0])
m = c.read()
h = headers(m)
print(json.dumps({"event": "request", "start": m.split("\r\n")[0], "via": h.get("via", "")}), flush=True)
c.send("SIP/2.0 200 OK\nVia: %s\nFrom: %s\nTo: %s\nCall-ID: %s\nCSeq: %s\nContent-Length: 0\n\n" % (h["via"], h["from"], h["to"], h["call-id"], h["cseq"]))
c.read()
"#;

/// RFC 3261 §12.2.1.1 / §18.1.1: the invitee closes its connection once it has answered;
/// the session's BYE (after the message is delivered) still reaches it, on a new connection
/// to its Contact.
#[test]
fn bye_reaches_an_invitee_whose_connection_closed() {
    let (receiver, msrp_port) = msrp_receiver(1, 25, &[]);
    let port = common::free_tcp_port();
    let mut child = Command::new(common::python3())
        .args(["-c", TCP_INVITEE])
        .arg(port.to_string())
        .arg(msrp_port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn python3");
    let out = child.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel::<serde_json::Value>();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&l) {
                let _ = tx.send(v);
            }
        }
    });
    let ua = TcpUa { child, lines };
    assert_eq!(ua.next(10)["event"], "listening");
    let member = format!("sip:inv0@127.0.0.1:{port};transport=tcp");
    let alice = "sip:alice@127.0.0.1".to_owned();
    let groups = group_folder(GROUP, &[member, alice.clone()]);
    let server = Server::start(&["--groups", groups.path().to_str().unwrap()]);
    let data = b"then the connection went away".to_vec();
    let (uac, code) = originate(&server, &alice, &data);
    let answered = ua.next(15);
    let request = ua.next(15);
    let mut receiver = receiver;
    let _ = receiver.wait();
    let ctx = || {
        format!(
            "uac: {uac:?}\nanswered: {answered}\nrequest: {request}\nreceiver: {receiver:?}\n{}",
            server.log()
        )
    };
    assert_eq!(answered["event"], "answered", "{}", ctx());
    assert!(
        answered["ack"].as_str().unwrap_or("").starts_with("ACK "),
        "{}",
        ctx()
    );
    assert!(uac.success(), "{}", ctx());
    assert_eq!(code, Some(0), "{}", ctx());
    assert!(
        receiver.events().iter().any(|e| e["event"] == "message"),
        "the copy was delivered: {}",
        ctx()
    );
    assert_eq!(request["event"], "request", "{}", ctx());
    assert!(
        request["start"]
            .as_str()
            .unwrap_or("")
            .starts_with(&format!("BYE sip:inv0@127.0.0.1:{port};transport=tcp ")),
        "{}",
        ctx()
    );
    assert!(
        request["via"]
            .as_str()
            .unwrap_or("")
            .starts_with(&format!("SIP/2.0/TCP {}", server.sip)),
        "{}",
        ctx()
    );
}

/// Page-mode copies follow the size rule too (RFC 3261 §18.1.1, `[limits]
/// max_udp_request`): with the limit below a copy's size, a member whose SIPp listens on TCP
/// only gets its copy over TCP, and a UDP-only member's copy, refused over TCP, comes again
/// over UDP.
#[test]
fn large_page_mode_copies_go_over_tcp_and_fall_back_to_udp() {
    let on_tcp = Sipp::new("uas_message")
        .tcp()
        .timeouts(Duration::from_secs(10), Duration::from_secs(15));
    let on_udp =
        Sipp::new("uas_message").timeouts(Duration::from_secs(10), Duration::from_secs(15));
    let tcp_host = on_tcp.local().to_string();
    let udp_host = on_udp.local().to_string();
    let (tcp_uas, udp_uas) = (on_tcp.spawn(), on_udp.spawn());
    // Give the UASes a moment to bind before anyone sends to them.
    std::thread::sleep(Duration::from_millis(300));
    let alice = "sip:alice@127.0.0.1".to_owned();
    let members = vec![
        format!("sip:carol@{tcp_host}"),
        format!("sip:bob@{udp_host}"),
        alice.clone(),
    ];
    let groups = group_folder(GROUP, &members);
    // Every copy (about 400 octets) is over this limit.
    let conf_dir = tempfile::tempdir().unwrap();
    let config = conf_dir.path().join("im-server.toml");
    std::fs::write(&config, "[limits]\nmax_udp_request = 200\n").unwrap();
    let server = Server::start(&[
        "--groups",
        groups.path().to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    let sender = Sipp::new("message_text")
        .to(server.sip)
        .key("target", GROUP)
        .key("from", &alice)
        .run();
    let (tcp_run, udp_run) = (tcp_uas.wait(), udp_uas.wait());
    let ctx = || {
        format!(
            "sender: {sender:?}\ntcp: {tcp_run:?}\nudp: {udp_run:?}\n{}",
            server.log()
        )
    };
    assert!(sender.success(), "{}", ctx());
    for (run, transport) in [(&tcp_run, "TCP"), (&udp_run, "UDP")] {
        assert!(run.success(), "the {transport} member:\n{}", ctx());
        let copies: Vec<_> = sip_log(&run.messages)
            .into_iter()
            .filter(|m| m.received && m.start.starts_with("MESSAGE "))
            .collect();
        assert_eq!(copies.len(), 1, "one copy over {transport}:\n{}", ctx());
        let via = copies[0].header("Via").unwrap_or("");
        assert!(
            via.starts_with(&format!("SIP/2.0/{transport} {}", server.sip)),
            "Via {via}:\n{}",
            ctx()
        );
    }
    assert!(
        server.log().contains(&format!(
            "no TCP connection to {udp_host}: MESSAGE sent again over UDP"
        )),
        "{}",
        ctx()
    );
}

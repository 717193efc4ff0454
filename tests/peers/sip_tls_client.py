#!/usr/bin/env python3
"""A small SIP-over-TLS originator (RFC 3261 section 26.2, RFC 5630) for end-to-end tests.
Standard library only; independent of the Rust code.

  invite  connect to --server HOST:PORT over TLS (verifying its certificate against --ca and
          the host connected to), send an INVITE to --target from --from whose SDP offers
          MSRP over TLS (m=message PORT TCP/TLS/MSRP *, a=path --msrp-path, a=setup:active),
          read the answer, ACK it, then wait for the server's BYE and answer it 200.
  probe   connect over TLS and close (a handshake check); with --send TEXT it first sends
          TEXT (escapes like \\r\\n decoded) and waits up to --wait-close seconds for the
          server to close: {"event": "closed", "after": SECONDS} or {"event": "open"}.
  uas     an invitee over TLS: listen on --listen HOST:PORT with --cert/--key, accept one
          connection, answer its INVITE 200 with an SDP answer of MSRP over TLS (a=path
          msrps://--msrp HOST:PORT/<user>;tcp, a=setup:passive: the server connects), then
          answer the server's BYE (or, with --stop-after MESSAGE, answer one page-mode
          MESSAGE 200 and stop).

Events are JSON lines on stdout: {"event": "tls", ...} after the handshake, {"event":
"response", "status": N, "contact": ..., "body": ...} per response, {"event": "answer",
"path": ..., "mline": ...} for the 200's SDP, {"event": "request", "method": ..., "via": ...}
per request received, {"event": "done"} at the end. A failed handshake prints {"event":
"error", "reason": "tls: ..."} and exits 5; a timeout exits 2; anything else unexpected 3.
"""

import argparse
import json
import re
import secrets
import socket
import ssl
import sys
import time


def emit(**event):
    sys.stdout.write(json.dumps(event, sort_keys=True) + "\n")
    sys.stdout.flush()


class Unexpected(Exception):
    pass


class Conn:
    def __init__(self, sock, deadline):
        self.sock = sock
        self.deadline = deadline
        self.buf = b""

    def send(self, text):
        self.sock.sendall(text.encode())

    def message(self):
        """The next SIP message as (start line, headers [(name, value)], body)."""
        while True:
            while self.buf.startswith(b"\r\n"):
                self.buf = self.buf[2:]
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head = self.buf[:end].decode("utf-8")
                lines = head.split("\r\n")
                headers = []
                for line in lines[1:]:
                    if line[:1] in (" ", "\t") and headers:
                        n, v = headers[-1]
                        headers[-1] = (n, v + " " + line.strip())
                        continue
                    name, _, value = line.partition(":")
                    headers.append((name.strip(), value.strip()))
                length = int(header(headers, "content-length", "l") or "0")
                if len(self.buf) >= end + 4 + length:
                    body = self.buf[end + 4:end + 4 + length]
                    self.buf = self.buf[end + 4 + length:]
                    return lines[0], headers, body.decode("utf-8")
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError()
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if not data:
                raise Unexpected("connection closed")
            self.buf += data


def header(headers, *names):
    for n, v in headers:
        if n.lower() in names:
            return v
    return None


def connect(args):
    host, _, port = args.server.rpartition(":")
    sock = socket.create_connection((host, int(port)), timeout=args.timeout)
    ctx = ssl.create_default_context(cafile=args.ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    tls = ctx.wrap_socket(sock, server_hostname=host)
    emit(event="tls", version=tls.version(), cipher=tls.cipher()[0])
    return tls


def cmd_probe(args):
    tls = connect(args)
    if args.send is not None:
        started = time.monotonic()
        tls.sendall(args.send.encode().decode("unicode_escape").encode())
        tls.settimeout(args.wait_close)
        try:
            while tls.recv(4096):
                pass
            emit(event="closed", after=round(time.monotonic() - started, 3))
        except (socket.timeout, TimeoutError):
            emit(event="open")
        except (ssl.SSLError, OSError):
            emit(event="closed", after=round(time.monotonic() - started, 3))
    tls.close()
    emit(event="done")
    return 0


def cmd_invite(args):
    deadline = time.monotonic() + args.timeout
    tls = connect(args)
    conn = Conn(tls, deadline)
    local_ip, local_port = tls.getsockname()[:2]
    me = "%s:%d" % (local_ip, local_port)
    tag = secrets.token_hex(4)
    call_id = secrets.token_hex(8) + "@" + local_ip
    msrp_port = re.search(r"://[^/]*:(\d+)/", args.msrp_path).group(1)
    sdp = "\r\n".join([
        "v=0",
        "o=alice 1 1 IN IP4 %s" % local_ip,
        "s=-",
        "c=IN IP4 %s" % local_ip,
        "t=0 0",
        "m=message %s TCP/TLS/MSRP *" % msrp_port,
        "a=accept-types:%s" % args.accept,
        "a=path:%s" % args.msrp_path,
        "a=setup:active",
        "a=sendonly",
        "",
    ])
    contact = "<%s:alice@%s%s>" % (
        "sips" if args.target.startswith("sips:") else "sip",
        me,
        "" if args.target.startswith("sips:") else ";transport=tls",
    )
    invite = "\r\n".join([
        "INVITE %s SIP/2.0" % args.target,
        "Via: SIP/2.0/TLS %s;branch=z9hG4bK%s;rport" % (me, secrets.token_hex(6)),
        "Max-Forwards: 70",
        "From: <%s>;tag=%s" % (args.from_uri, tag),
        "To: <%s>" % args.target,
        "Call-ID: %s" % call_id,
        "CSeq: 1 INVITE",
        "Contact: %s;+g.oma.sip-im.large-message" % contact,
        "Accept-Contact: *;+g.oma.sip-im.large-message",
        "Content-Type: application/sdp",
        "Content-Length: %d" % len(sdp.encode()),
        "",
        sdp,
    ])
    conn.send(invite)
    while True:
        start, headers, body = conn.message()
        if not start.startswith("SIP/2.0 "):
            raise Unexpected("request before the final response: %s" % start)
        status = int(start.split(" ")[1])
        emit(event="response", status=status, contact=header(headers, "contact", "m"),
             via=header(headers, "via", "v"), body=body)
        if status >= 200:
            break
    if status >= 300:
        return 3
    path = re.search(r"a=path:(\S+)", body)
    mline = re.search(r"m=message [^\r\n]*", body)
    emit(event="answer", path=path.group(1) if path else None,
         mline=mline.group(0) if mline else None)
    to = header(headers, "to", "t")
    target = re.search(r"<([^>]+)>", header(headers, "contact", "m")).group(1)
    ack = "\r\n".join([
        "ACK %s SIP/2.0" % target,
        "Via: SIP/2.0/TLS %s;branch=z9hG4bK%s;rport" % (me, secrets.token_hex(6)),
        "Max-Forwards: 70",
        "From: <%s>;tag=%s" % (args.from_uri, tag),
        "To: %s" % to,
        "Call-ID: %s" % call_id,
        "CSeq: 1 ACK",
        "Content-Length: 0",
        "",
        "",
    ])
    conn.send(ack)
    # The server ends a pager-mode session itself once the message is delivered.
    while True:
        start, headers, body = conn.message()
        if start.startswith("SIP/2.0 "):
            continue
        method = start.split(" ")[0]
        emit(event="request", method=method, uri=start.split(" ")[1],
             via=header(headers, "via", "v"))
        vias = [v for n, v in headers if n.lower() in ("via", "v")]
        reply = ["SIP/2.0 200 OK"] + ["Via: %s" % v for v in vias] + [
            "From: %s" % header(headers, "from", "f"),
            "To: %s" % header(headers, "to", "t"),
            "Call-ID: %s" % header(headers, "call-id", "i"),
            "CSeq: %s" % header(headers, "cseq"),
            "Content-Length: 0",
            "",
            "",
        ]
        conn.send("\r\n".join(reply))
        if method == "BYE":
            break
    time.sleep(0.2)
    tls.close()
    emit(event="done")
    return 0


def cmd_uas(args):
    deadline = time.monotonic() + args.timeout
    host, _, port = args.listen.rpartition(":")
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, int(port)))
    srv.listen(4)
    emit(event="listening", port=srv.getsockname()[1])
    srv.settimeout(args.timeout)
    sock, _ = srv.accept()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    tls = ctx.wrap_socket(sock, server_side=True)
    emit(event="tls", version=tls.version(), cipher=tls.cipher()[0])
    conn = Conn(tls, deadline)
    me = "%s:%d" % tls.getsockname()[:2]
    tag = secrets.token_hex(4)
    while True:
        start, headers, body = conn.message()
        if start.startswith("SIP/2.0 "):
            continue
        method, uri = start.split(" ")[:2]
        path = re.search(r"a=path:(\S+)", body)
        mline = re.search(r"m=message [^\r\n]*", body)
        emit(event="request", method=method, uri=uri, via=header(headers, "via", "v"),
             contact=header(headers, "contact", "m"), body=body,
             path=path.group(1) if path else None, mline=mline.group(0) if mline else None)
        vias = [v for n, v in headers if n.lower() in ("via", "v")]
        to = header(headers, "to", "t")
        extra, sdp = [], ""
        if method == "INVITE":
            to = to + ";tag=" + tag
            user = re.match(r"sips?:([^@]+)@", uri).group(1)
            mhost, _, mport = args.msrp.rpartition(":")
            sdp = "\r\n".join([
                "v=0",
                "o=bob 1 1 IN IP4 %s" % mhost,
                "s=-",
                "c=IN IP4 %s" % mhost,
                "t=0 0",
                "m=message %s TCP/TLS/MSRP *" % mport,
                "a=accept-types:message/cpim text/plain",
                "a=path:msrps://%s/%s;tcp" % (args.msrp, user),
                "a=setup:passive",
                "a=recvonly",
                "",
            ])
            extra = ["Contact: <sips:%s@%s>" % (user, me), "Content-Type: application/sdp"]
        if method != "ACK":
            reply = ["SIP/2.0 200 OK"] + ["Via: %s" % v for v in vias] + [
                "From: %s" % header(headers, "from", "f"),
                "To: %s" % to,
                "Call-ID: %s" % header(headers, "call-id", "i"),
                "CSeq: %s" % header(headers, "cseq"),
            ] + extra + ["Content-Length: %d" % len(sdp.encode()), "", sdp]
            conn.send("\r\n".join(reply))
        if method == args.stop_after:
            break
    time.sleep(0.2)
    tls.close()
    emit(event="done")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("invite", "probe"):
        s = sub.add_parser(name)
        s.add_argument("--server", required=True, metavar="HOST:PORT")
        s.add_argument("--ca", required=True, metavar="FILE")
        s.add_argument("--timeout", type=float, default=10.0)
    s = sub.choices["probe"]
    s.add_argument("--send", metavar="TEXT")
    s.add_argument("--wait-close", type=float, default=5.0, metavar="SECONDS")
    s = sub.add_parser("uas")
    s.add_argument("--listen", required=True, metavar="HOST:PORT")
    s.add_argument("--cert", required=True, metavar="FILE")
    s.add_argument("--key", required=True, metavar="FILE")
    s.add_argument("--msrp", required=True, metavar="HOST:PORT",
                   help="where the MSRP-over-TLS receiver listens")
    s.add_argument("--stop-after", default="BYE", metavar="METHOD")
    s.add_argument("--timeout", type=float, default=10.0)
    s = sub.choices["invite"]
    s.add_argument("--target", required=True)
    s.add_argument("--from", dest="from_uri", required=True)
    s.add_argument("--msrp-path", required=True)
    s.add_argument("--accept", default="message/cpim text/plain")
    args = ap.parse_args()
    try:
        rc = {"invite": cmd_invite, "probe": cmd_probe, "uas": cmd_uas}[args.cmd](args)
    except TimeoutError:
        emit(event="timeout")
        rc = 2
    except ssl.SSLError as e:
        emit(event="error", reason="tls: %s" % e)
        rc = 5
    except (Unexpected, OSError, ValueError, AttributeError) as e:
        emit(event="error", reason=str(e))
        rc = 3
    sys.exit(rc)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A small MSRP (RFC 4975) test peer. Standard library only; independent of the Rust code.

Subcommands (events are printed as JSON lines, one object per line):

  send   connect to --connect HOST:PORT (or --listen HOST:PORT and accept one connection),
         send one message (chunked with --chunk-size), then wait for the transaction responses
         and success/failure REPORTs it asked for. When listening (the passive side, RFC 4975
         section 5.4) it first waits for the active side's binding SEND; --to-path-file FILE
         reads the To-Path from FILE once it appears (the path may be learnt after the peer
         has to listen, e.g. from a SIP answer).
  recv   listen (or connect), answer SENDs (200 unless Failure-Report forbids it, or the code
         given by --respond), reassemble chunks by Message-ID and Byte-Range, send a success
         REPORT when asked, write the message bytes to --out (a path or '-' for stdout).
  serve  listen on --listen HOST:PORT and accept any number of connections (one thread each),
         answer SENDs, reassemble each message per session (the session id of the first
         To-Path URI) and Message-ID, and report every complete message as
         {"event": "message", "session": ..., "length": ..., "sha256": ...}; --out-dir DIR also
         writes its bytes to DIR/<session>.<n>.bin. Exits after --count messages (0: run
         until --timeout, which is then not an error). A message whose SEND asked
         Success-Report: yes gets a success REPORT covering all of it (RFC 4975 section
         7.1.2), reported as {"event": "reported", "session": ..., "at": <unix time>};
         --no-success-report never sends one (a receiver that never confirms), reported as
         {"event": "report_withheld", ...}.
  parse  read a byte stream from stdin and print each frame it contains (body in base64).

TLS (RFC 4975 section 14, msrps: URIs): --tls-ca FILE makes a connecting peer speak TLS and
verify the server's certificate against FILE and the host it connects to (an IP address
must be in the certificate's subjectAltName); --tls-cert FILE --tls-key FILE make a listening
peer (send/recv --listen, serve) accept TLS with that certificate. The handshake is reported
as {"event": "tls", "version": ..., "cipher": ...}; a failed one prints {"event": "error",
"reason": "tls: ..."} and exits with status 5.

Everything has a timeout (--timeout, default 10 s) so the peer never hangs; a timeout
prints {"event": "timeout"} and exits with status 2. Protocol errors exit with status 3.
"""

import argparse
import base64
import hashlib
import json
import os
import secrets
import socket
import ssl
import sys
import threading
import time

FLAGS = b"$+#"


class ProtocolError(Exception):
    pass


def emit(out, **event):
    out.write(json.dumps(event, sort_keys=True) + "\n")
    out.flush()


def new_id():
    # 80 bits of randomness; RFC 4975 section 7.1 wants at least 64 for transaction ids.
    return secrets.token_hex(10)


class Frame:
    def __init__(self, tid, method=None, code=None, comment=None):
        self.tid = tid
        self.method = method
        self.code = code
        self.comment = comment
        self.headers = []  # (name, value) in order
        self.content_type = None
        self.body = None
        self.flag = "$"

    def header(self, name):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def to_json(self):
        d = {"tid": self.tid, "flag": self.flag, "headers": self.headers}
        if self.method is not None:
            d["method"] = self.method
        else:
            d["code"] = self.code
            d["comment"] = self.comment
        if self.body is not None:
            d["content_type"] = self.content_type
            d["body_b64"] = base64.b64encode(self.body).decode()
        return d


def build(tid, first_line_rest, headers, content_type=None, body=None, flag="$"):
    """Serialise a frame following RFC 4975 section 7.1: To-Path first, From-Path second,
    Content-Type last, an empty line before the body, CRLF before the end-line."""
    out = ("MSRP %s %s\r\n" % (tid, first_line_rest)).encode()
    for name, value in headers:
        out += ("%s: %s\r\n" % (name, value)).encode()
    if body is not None:
        end_line = b"\r\n-------" + tid.encode()
        if any(end_line + bytes([f]) + b"\r\n" in body + b"\r\n" for f in FLAGS):
            raise ProtocolError("body contains the end-line")
        out += ("Content-Type: %s\r\n\r\n" % content_type).encode() + body + b"\r\n"
    out += ("-------%s%s\r\n" % (tid, flag)).encode()
    return out


class Parser:
    """Incremental parser: feed() bytes, then frames() yields complete frames."""

    def __init__(self):
        self.buf = b""

    def feed(self, data):
        self.buf += data

    def frames(self):
        while True:
            f = self._one()
            if f is None:
                return
            yield f

    def _one(self):
        buf = self.buf
        while buf.startswith(b"\r\n"):
            buf = buf[2:]
        self.buf = buf
        eol = buf.find(b"\r\n")
        if eol < 0:
            if len(buf) >= 5 and not buf.startswith(b"MSRP "):
                raise ProtocolError("not an MSRP start line")
            return None
        parts = buf[:eol].decode("utf-8", "strict").split(" ", 3)
        if len(parts) < 3 or parts[0] != "MSRP":
            raise ProtocolError("bad start line %r" % buf[:eol])
        tid = parts[1]
        word = parts[2]
        if len(word) == 3 and word.isdigit():
            frame = Frame(tid, code=int(word), comment=parts[3] if len(parts) > 3 else None)
        elif word.isalpha() and word.isupper() and len(parts) == 3:
            frame = Frame(tid, method=word)
        else:
            raise ProtocolError("bad start line %r" % buf[:eol])
        end_marker = ("-------" + tid).encode()
        pos = eol + 2
        while True:
            nl = buf.find(b"\r\n", pos)
            if nl < 0:
                return None
            line = buf[pos:nl]
            if line == b"":
                body_start = nl + 2
                break
            if line.startswith(b"-------"):
                if line[:-1] != end_marker or line[-1:] not in (b"$", b"+", b"#"):
                    raise ProtocolError("bad end-line %r" % line)
                frame.flag = line[-1:].decode()
                self.buf = buf[nl + 2:]
                self._typed(frame)
                return frame
            name, sep, value = line.decode("utf-8", "strict").partition(":")
            if not sep:
                raise ProtocolError("bad header line %r" % line)
            name, value = name.strip(), value.strip()
            if name.lower() == "content-type":
                frame.content_type = value
            else:
                frame.headers.append((name, value))
            pos = nl + 2
        # The body ends at the first CRLF + end-line + flag + CRLF.
        needle = b"\r\n" + end_marker
        search = body_start
        while True:
            hit = buf.find(needle, search)
            if hit < 0:
                return None
            after = hit + len(needle)
            if len(buf) < after + 3:
                return None
            if buf[after:after + 1] in (b"$", b"+", b"#") and buf[after + 1:after + 3] == b"\r\n":
                frame.body = buf[body_start:hit]
                frame.flag = buf[after:after + 1].decode()
                self.buf = buf[after + 3:]
                if frame.content_type is None:
                    raise ProtocolError("body without Content-Type")
                self._typed(frame)
                return frame
            search = hit + 1

    @staticmethod
    def _typed(frame):
        names = [n.lower() for n, _ in frame.headers]
        if names[:2] != ["to-path", "from-path"]:
            raise ProtocolError("To-Path and From-Path must be the first two headers")


def parse_range(value):
    rng, _, total = value.partition("/")
    start, _, end = rng.partition("-")
    return int(start), (None if end == "*" else int(end)), (None if total == "*" else int(total))


class Connection:
    def __init__(self, sock, timeout, out):
        self.sock = sock
        self.deadline = time.monotonic() + timeout
        self.parser = Parser()
        self.out = out
        self.closed = False

    def send(self, data):
        self.sock.sendall(data)

    def next_frame(self):
        """The next frame, or None when the peer closed. Raises TimeoutError."""
        while True:
            for f in self.parser.frames():
                return f
            if self.closed:
                return None
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError()
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError()
            if not data:
                self.closed = True
                if self.parser.buf.strip(b"\r\n"):
                    raise ProtocolError("connection closed inside a frame")
            self.parser.feed(data)


def client_tls(args, sock, host, out):
    """Wraps a connected socket in TLS when --tls-ca is given (verifying the peer)."""
    if not getattr(args, "tls_ca", None):
        return sock
    ctx = ssl.create_default_context(cafile=args.tls_ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    tls = ctx.wrap_socket(sock, server_hostname=host)
    emit(out, event="tls", version=tls.version(), cipher=tls.cipher()[0])
    return tls


def server_tls(args):
    """An SSL context for accepting when --tls-cert/--tls-key are given, else None."""
    if not getattr(args, "tls_cert", None):
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.tls_cert, args.tls_key)
    return ctx


def accept_tls(ctx, sock, emit_event):
    if ctx is None:
        return sock
    tls = ctx.wrap_socket(sock, server_side=True)
    emit_event(event="tls", version=tls.version(), cipher=tls.cipher()[0])
    return tls


def open_connection(args, out):
    if args.connect:
        host, _, port = args.connect.rpartition(":")
        sock = socket.create_connection((host, int(port)), timeout=args.timeout)
        emit(out, event="connected", peer="%s:%s" % sock.getpeername()[:2])
        return client_tls(args, sock, host, out)
    host, _, port = args.listen.rpartition(":")
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, int(port)))
    srv.listen(1)
    emit(out, event="listening", port=srv.getsockname()[1])
    srv.settimeout(args.timeout)
    try:
        sock, peer = srv.accept()
    except socket.timeout:
        raise TimeoutError()
    finally:
        srv.close()
    emit(out, event="accepted", peer="%s:%s" % peer[:2])
    return accept_tls(server_tls(args), sock, lambda **e: emit(out, **e))


def frame_event(f):
    e = {"tid": f.tid, "flag": f.flag}
    for key, name in (("message_id", "Message-ID"), ("byte_range", "Byte-Range"),
                      ("status", "Status"), ("to_path", "To-Path"), ("from_path", "From-Path")):
        v = f.header(name)
        if v is not None:
            e[key] = v
    return e


def cmd_send(args, out):
    if args.file:
        with open(args.file, "rb") as fh:
            data = fh.read()
    else:
        data = (args.data or "").encode()
    sock = open_connection(args, out)
    conn = Connection(sock, args.timeout, out)
    if args.listen:
        # RFC 4975 section 5.4: the passive side learns which session the connection carries
        # from the active side's first SEND; it does not send before that.
        while True:
            f = conn.next_frame()
            if f is None:
                emit(out, event="closed")
                return 1
            if f.method is None:
                emit(out, event="response", code=f.code, comment=f.comment, **frame_event(f))
                continue
            emit(out, event="bound", method=f.method, **frame_event(f))
            answer_request(conn, f)
            break
    to_path = args.to_path
    if args.to_path_file:
        to_path = wait_for_file(args.to_path_file, conn.deadline).split()
    if not to_path:
        raise ProtocolError("no To-Path: give --to-path or --to-path-file")
    mid = args.message_id or new_id()
    size = max(1, args.chunk_size or len(data) or 1)
    total = len(data)
    pending = set()
    offset = 0
    while True:
        end = min(offset + size, total)
        tid = new_id()
        headers = [("To-Path", " ".join(to_path)), ("From-Path", " ".join(args.from_path)),
                   ("Message-ID", mid), ("Byte-Range", "%d-%d/%d" % (offset + 1, end, total))]
        if args.success_report:
            headers.append(("Success-Report", args.success_report))
        if args.failure_report:
            headers.append(("Failure-Report", args.failure_report))
        last = end == total
        conn.send(build(tid, "SEND", headers, args.content_type, data[offset:end],
                        "$" if last else "+"))
        emit(out, event="sent", tid=tid, message_id=mid, byte_range="%d-%d/%d" % (offset + 1, end, total))
        # Failure-Report: yes (default) -> every chunk gets a response; no/partial -> no 200.
        if (args.failure_report or "yes") == "yes":
            pending.add(tid)
        offset = end
        if last:
            break
    # Success-Report: yes -> wait for 200 REPORTs covering every byte.
    report_done = args.success_report != "yes"
    reported = 0
    try:
        while pending or not report_done:
            f = conn.next_frame()
            if f is None:
                emit(out, event="closed")
                return 1
            if f.method is None:
                emit(out, event="response", code=f.code, comment=f.comment, **frame_event(f))
                pending.discard(f.tid)
                if f.code != 200:
                    # The message is refused: no REPORT will cover it.
                    report_done = True
            elif f.method == "REPORT":
                # `at` (unix time) lets a test order it against other peers' events.
                emit(out, event="report", at=time.time(), **frame_event(f))
                status = (f.header("Status") or "").split(" ")
                if len(status) >= 2 and status[1] == "200":
                    _, e, _ = parse_range(f.header("Byte-Range") or "1-0/0")
                    reported = max(reported, e or 0)
                    report_done = report_done or reported >= total
                else:
                    # A failure REPORT ends the wait: the message will not be delivered.
                    report_done = True
                    pending.clear()
            else:
                emit(out, event="request", method=f.method, **frame_event(f))
                answer_request(conn, f)
    except TimeoutError:
        emit(out, event="timeout", pending=sorted(pending), reported=reported)
        return 2
    emit(out, event="done")
    sock.close()
    return 0


def cmd_recv(args, out):
    events = out
    msg_out = None
    if args.out == "-":
        msg_out = sys.stdout.buffer
        events = sys.stderr
    sock = open_connection(args, events)
    conn = Connection(sock, args.timeout, events)
    messages = {}
    done = 0
    try:
        while done < args.count:
            f = conn.next_frame()
            if f is None:
                emit(events, event="closed")
                return 1
            ev = frame_event(f)
            if f.method is None:
                emit(events, event="response", code=f.code, comment=f.comment, **ev)
                continue
            if f.method != "SEND":
                emit(events, event="request", method=f.method, **ev)
                if f.method != "REPORT":
                    respond(conn, f, 501, "Unknown Method")
                continue
            body = f.body or b""
            emit(events, event="chunk", content_type=f.content_type, length=len(body), **ev)
            code = args.respond
            failure = (f.header("Failure-Report") or "yes").lower()
            if failure == "yes" or (failure == "partial" and code != 200):
                respond(conn, f, code, "OK" if code == 200 else "Refused")
            if code != 200:
                continue
            mid = f.header("Message-ID")
            rng = f.header("Byte-Range")
            start, end, total = parse_range(rng) if rng else (1, len(body), len(body))
            m = messages.setdefault(mid, {"data": bytearray(), "have": set(), "total": None,
                                           "type": f.content_type, "success": None})
            if len(m["data"]) < start - 1 + len(body):
                m["data"].extend(b"\0" * (start - 1 + len(body) - len(m["data"])))
            m["data"][start - 1:start - 1 + len(body)] = body
            m["have"].update(range(start - 1, start - 1 + len(body)))
            if total is not None:
                m["total"] = total
            elif f.flag == "$":
                m["total"] = start - 1 + len(body)
            m["success"] = (f.header("Success-Report") or "no").lower()
            if f.flag == "#":
                emit(events, event="aborted", message_id=mid, received=len(m["have"]))
                del messages[mid]
                done += 1
                continue
            if m["total"] is not None and len(m["have"]) == m["total"]:
                data = bytes(m["data"][:m["total"]])
                del messages[mid]
                done += 1
                if m["success"] == "yes":
                    rep_headers = [("To-Path", f.header("From-Path")),
                                   ("From-Path", f.header("To-Path").split()[-1]),
                                   ("Message-ID", mid),
                                   ("Byte-Range", "1-%d/%d" % (len(data), len(data))),
                                   ("Status", "000 200 OK")]
                    conn.send(build(new_id(), "REPORT", rep_headers))
                ev_msg = {"message_id": mid, "content_type": m["type"], "length": len(data)}
                if msg_out is not None:
                    msg_out.write(data)
                    msg_out.flush()
                elif args.out:
                    with open(args.out, "ab") as fh:
                        fh.write(data)
                    ev_msg["file"] = args.out
                else:
                    ev_msg["data_b64"] = base64.b64encode(data).decode()
                emit(events, event="message", **ev_msg)
    except TimeoutError:
        emit(events, event="timeout", done=done)
        return 2
    # Let the last response / REPORT reach the sender before closing.
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(1.0)
        while sock.recv(65536):
            pass
    except OSError:
        pass
    sock.close()
    emit(events, event="done")
    return 0


def wait_for_file(path, deadline):
    """The stripped content of `path` once it exists and is not empty."""
    while True:
        try:
            with open(path) as fh:
                text = fh.read().strip()
            if text:
                return text
        except FileNotFoundError:
            pass
        if time.monotonic() >= deadline:
            raise TimeoutError()
        time.sleep(0.02)


def answer_request(conn, f):
    """A request that is not part of what this peer is doing: SEND (e.g. an empty binding
    SEND) gets 200 unless Failure-Report forbids a response (RFC 4975 section 7.1.2), REPORT
    never gets one (section 7.1.2), anything else 501."""
    if f.method == "SEND":
        if (f.header("Failure-Report") or "yes").lower() == "yes":
            respond(conn, f, 200, "OK")
    elif f.method != "REPORT":
        respond(conn, f, 501, "Unknown Method")


class Server:
    """State shared by the connection threads of `serve`."""

    def __init__(self, args, out):
        self.args = args
        self.out = out
        self.lock = threading.Lock()
        self.done = 0
        self.finished = threading.Event()
        self.per_session = {}

    def emit(self, **event):
        with self.lock:
            emit(self.out, **event)

    def message(self, session, mid, ctype, data):
        with self.lock:
            n = self.per_session.get(session, 0) + 1
            self.per_session[session] = n
            ev = {"session": session, "message_id": mid, "content_type": ctype,
                  "length": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            if self.args.out_dir:
                name = os.path.join(self.args.out_dir, "%s.%d.bin" % (safe_name(session), n))
                with open(name, "wb") as fh:
                    fh.write(data)
                ev["file"] = name
            emit(self.out, event="message", **ev)
            self.done += 1
            if self.args.count and self.done >= self.args.count:
                self.finished.set()


def safe_name(session):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in session) or "_"


def session_of(path_value):
    """The session id of the first URI of a path header (msrp://host:port/SESSION;tcp)."""
    first = (path_value or "").split()[0] if path_value else ""
    rest = first.split("://", 1)[-1]
    _, _, tail = rest.partition("/")
    return tail.split(";", 1)[0]


def serve_connection(server, sock, peer):
    args = server.args
    server.emit(event="accepted", peer="%s:%s" % peer[:2])
    conn = Connection(sock, args.timeout, server.out)
    messages = {}
    try:
        while not server.finished.is_set():
            try:
                f = conn.next_frame()
            except TimeoutError:
                return
            if f is None:
                server.emit(event="closed", peer="%s:%s" % peer[:2])
                return
            ev = frame_event(f)
            if f.method is None:
                server.emit(event="response", code=f.code, comment=f.comment, **ev)
                continue
            if f.method != "SEND":
                server.emit(event="request", method=f.method, **ev)
                answer_request(conn, f)
                continue
            session = session_of(f.header("To-Path"))
            body = f.body
            server.emit(event="chunk", session=session, length=len(body or b""), **ev)
            failure = (f.header("Failure-Report") or "yes").lower()
            code = args.respond if body is not None else 200
            if failure == "yes" or (failure == "partial" and code != 200):
                respond(conn, f, code, "OK" if code == 200 else "Refused")
            if code != 200 or body is None:
                continue
            mid = f.header("Message-ID")
            rng = f.header("Byte-Range")
            start, _, total = parse_range(rng) if rng else (1, len(body), len(body))
            key = (session, mid)
            m = messages.setdefault(key, {"data": bytearray(), "have": set(), "total": None,
                                          "type": f.content_type})
            if len(m["data"]) < start - 1 + len(body):
                m["data"].extend(b"\0" * (start - 1 + len(body) - len(m["data"])))
            m["data"][start - 1:start - 1 + len(body)] = body
            m["have"].update(range(start - 1, start - 1 + len(body)))
            if total is not None:
                m["total"] = total
            elif f.flag == "$":
                m["total"] = start - 1 + len(body)
            if f.flag == "#":
                server.emit(event="aborted", session=session, message_id=mid,
                            received=len(m["have"]))
                del messages[key]
                continue
            if f.flag == "$" and m["total"] is not None and len(m["have"]) != m["total"]:
                server.emit(event="incomplete", session=session, message_id=mid,
                            received=len(m["have"]), total=m["total"])
            if m["total"] is not None and len(m["have"]) == m["total"]:
                data = bytes(m["data"][:m["total"]])
                del messages[key]
                if (f.header("Success-Report") or "no").lower() != "yes":
                    pass
                elif args.no_success_report:
                    server.emit(event="report_withheld", session=session, message_id=mid)
                else:
                    rep_headers = [("To-Path", f.header("From-Path")),
                                   ("From-Path", f.header("To-Path").split()[-1]),
                                   ("Message-ID", mid),
                                   ("Byte-Range", "1-%d/%d" % (len(data), len(data))),
                                   ("Status", "000 200 OK")]
                    # `at` before the send: the REPORT cannot reach anyone earlier.
                    server.emit(event="reported", session=session, message_id=mid,
                                at=time.time())
                    conn.send(build(new_id(), "REPORT", rep_headers))
                server.message(session, mid, m["type"], data)
    except (ProtocolError, UnicodeDecodeError, ValueError) as e:
        server.emit(event="error", peer="%s:%s" % peer[:2], reason=str(e))
    except OSError as e:
        server.emit(event="error", peer="%s:%s" % peer[:2], reason="io: %s" % e)
    finally:
        sock.close()


def cmd_serve(args, out):
    host, _, port = args.listen.rpartition(":")
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, int(port)))
    srv.listen(128)
    tls = server_tls(args)
    server = Server(args, out)
    emit(out, event="listening", port=srv.getsockname()[1])
    deadline = time.monotonic() + args.timeout
    srv.settimeout(0.1)
    while not server.finished.is_set():
        if time.monotonic() >= deadline:
            srv.close()
            server.emit(event="timeout", done=server.done)
            return 2 if args.count else 0
        try:
            sock, peer = srv.accept()
        except socket.timeout:
            continue
        if tls is not None:
            try:
                sock.settimeout(args.timeout)
                sock = accept_tls(tls, sock, server.emit)
            except (ssl.SSLError, OSError) as e:
                server.emit(event="tls_failed", reason=str(e))
                continue
        sock.settimeout(None)
        threading.Thread(target=serve_connection, args=(server, sock, peer), daemon=True).start()
    srv.close()
    # Let the last responses and REPORTs go out before the process ends.
    time.sleep(0.2)
    server.emit(event="done", done=server.done)
    return 0


def respond(conn, req, code, comment):
    """RFC 4975 section 7.2: To-Path is the previous hop (first URI of the request's
    From-Path), From-Path is this hop (first URI of its To-Path)."""
    headers = [("To-Path", req.header("From-Path").split()[0]),
               ("From-Path", req.header("To-Path").split()[0])]
    conn.send(build(req.tid, "%03d %s" % (code, comment), headers))


def cmd_parse(args, out):
    p = Parser()
    p.feed(sys.stdin.buffer.read())
    for f in p.frames():
        emit(out, event="frame", **f.to_json())
    if p.buf.strip(b"\r\n"):
        emit(out, event="trailing", length=len(p.buf))
        return 3
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("send", "recv"):
        s = sub.add_parser(name)
        g = s.add_mutually_exclusive_group(required=True)
        g.add_argument("--connect", metavar="HOST:PORT")
        g.add_argument("--listen", metavar="HOST:PORT", help="passive: accept one connection")
        s.add_argument("--timeout", type=float, default=10.0)
        s.add_argument("--tls-ca", metavar="FILE", help="connect over TLS, trusting FILE")
    for name in ("send", "recv", "serve"):
        s = sub.choices.get(name) or sub.add_parser(name)
        s.add_argument("--tls-cert", metavar="FILE", help="accept TLS with this chain")
        s.add_argument("--tls-key", metavar="FILE")
    s = sub.choices["send"]
    tp = s.add_mutually_exclusive_group(required=True)
    tp.add_argument("--to-path", nargs="+")
    tp.add_argument("--to-path-file", metavar="FILE",
                    help="read the To-Path from FILE once it exists (waits up to --timeout)")
    s.add_argument("--from-path", nargs="+", required=True)
    s.add_argument("--message-id")
    s.add_argument("--content-type", default="text/plain")
    s.add_argument("--data")
    s.add_argument("--file")
    s.add_argument("--chunk-size", type=int, default=0)
    s.add_argument("--success-report", choices=["yes", "no"])
    s.add_argument("--failure-report", choices=["yes", "no", "partial"])
    r = sub.choices["recv"]
    r.add_argument("--out", help="file to append message bytes to, '-' for stdout")
    r.add_argument("--respond", type=int, default=200, help="status code for SENDs")
    r.add_argument("--count", type=int, default=1, help="messages to receive before exiting")
    v = sub.choices["serve"]
    v.add_argument("--listen", metavar="HOST:PORT", required=True)
    v.add_argument("--timeout", type=float, default=10.0)
    v.add_argument("--out-dir", help="write each message to DIR/<session>.<n>.bin")
    v.add_argument("--respond", type=int, default=200, help="status code for SENDs with a body")
    v.add_argument("--count", type=int, default=0, help="messages to receive before exiting")
    v.add_argument("--no-success-report", action="store_true",
                   help="never send the success REPORT a SEND asks for")
    sub.add_parser("parse")
    args = ap.parse_args()
    out = sys.stdout
    try:
        rc = {"send": cmd_send, "recv": cmd_recv, "serve": cmd_serve, "parse": cmd_parse}[args.cmd](args, out)
    except TimeoutError:
        emit(sys.stdout, event="timeout")
        rc = 2
    except ssl.SSLError as e:
        emit(sys.stdout, event="error", reason="tls: %s" % e)
        rc = 5
    except (ProtocolError, UnicodeDecodeError, ValueError) as e:
        emit(sys.stdout, event="error", reason=str(e))
        rc = 3
    except OSError as e:
        emit(sys.stdout, event="error", reason="io: %s" % e)
        rc = 4
    sys.exit(rc)


if __name__ == "__main__":
    main()

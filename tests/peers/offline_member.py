#!/usr/bin/env python3
"""A group member that comes online: REGISTERs its address-of-record, then takes the
page-mode copies the server kept for it. Standard library only; independent of the Rust
code (its own SIP and CPIM handling, written from RFC 3261 and RFC 3862).

  * binds --listen HOST:PORT, sends REGISTER for --aor with Contact <sip:USER@HOST:PORT>
    to --server (retransmitted until a final response) and prints "registered";
  * answers every MESSAGE with 200 and prints one "copy" event per Call-ID: the From, the
    Content-Type, and for message/cpim the CPIM imdn.Message-ID and the text;
  * exits 0 --grace seconds after --expect copies (so that a surplus copy would be seen),
    or 2 at --timeout.

Events are JSON lines on stdout.
"""

import argparse
import json
import secrets
import socket
import sys
import time


def emit(**event):
    sys.stdout.write(json.dumps(event, sort_keys=True) + "\n")
    sys.stdout.flush()


def addr(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def split_sip(data):
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers.setdefault(name.strip().lower(), []).append(value.strip())
    for short, full in {"v": "via", "f": "from", "t": "to", "i": "call-id",
                        "c": "content-type", "l": "content-length"}.items():
        if short in headers:
            headers.setdefault(full, []).extend(headers.pop(short))
    if headers.get("content-length"):
        body = body[: int(headers["content-length"][0])]
    return lines[0], headers, body


def ok_for(headers):
    out = ["SIP/2.0 200 OK"]
    out += ["Via: " + v for v in headers.get("via", [])]
    to = headers["to"][0]
    if ";tag=" not in to:
        to += ";tag=m1"
    out += ["From: " + headers["from"][0], "To: " + to,
            "Call-ID: " + headers["call-id"][0], "CSeq: " + headers["cseq"][0],
            "Content-Length: 0"]
    return ("\r\n".join(out) + "\r\n\r\n").encode()


def cpim_fields(body):
    """RFC 3862: message headers, blank line, MIME headers, blank line, content."""
    text = body.replace(b"\r\n", b"\n").decode("utf-8", "replace")
    msg_head, _, rest = text.partition("\n\n")
    _, _, content = rest.partition("\n\n")
    fields = {}
    for line in msg_head.split("\n"):
        if ":" in line:
            k, v = line.split(":", 1)
            fields[k.strip()] = v.strip()
    return fields.get("imdn.Message-ID"), content.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", required=True, type=addr)
    ap.add_argument("--listen", required=True, type=addr)
    ap.add_argument("--aor", required=True, help="sip:user@domain")
    ap.add_argument("--expect", type=int, required=True, help="copies to wait for")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--grace", type=float, default=1.0)
    a = ap.parse_args()

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(a.listen)
    here = "%s:%d" % sock.getsockname()
    user = a.aor.split(":", 1)[-1].split("@", 1)[0]
    domain = a.aor.split("@", 1)[-1]
    call_id = secrets.token_hex(8) + "@" + a.listen[0]
    register = (
        "REGISTER sip:%s SIP/2.0\r\n"
        "Via: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <%s>;tag=%s\r\nTo: <%s>\r\nCall-ID: %s\r\nCSeq: 1 REGISTER\r\n"
        "Contact: <sip:%s@%s>\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n"
        % (domain, here, secrets.token_hex(6), a.aor, secrets.token_hex(4), a.aor, call_id,
           user, here)
    ).encode()

    deadline = time.monotonic() + a.timeout
    registered = None
    next_send = 0.0
    copies = set()
    done_at = time.monotonic() + a.grace if a.expect == 0 else None
    sock.settimeout(0.05)
    while True:
        now = time.monotonic()
        if registered is not None and done_at is not None and now >= done_at:
            emit(event="done", copies=len(copies))
            return 0
        if now >= deadline:
            emit(event="timeout", registered=registered, copies=len(copies))
            return 2
        if registered is None and now >= next_send:
            sock.sendto(register, a.server)  # RFC 3261 Timer E, simplified
            next_send = now + 0.5
        try:
            data, src = sock.recvfrom(65535)
        except socket.timeout:
            continue
        start, headers, body = split_sip(data)
        if start.startswith("SIP/2.0 "):
            code = int(start.split(" ")[1])
            if headers.get("call-id", [""])[0] == call_id and code >= 200 and registered is None:
                registered = code
                emit(event="registered", status=code, contact=here)
                if a.expect == 0:
                    done_at = time.monotonic() + a.grace
            continue
        if start.split(" ", 1)[0] != "MESSAGE":
            continue
        sock.sendto(ok_for(headers), src)
        cid = headers.get("call-id", [""])[0]
        if cid in copies:
            continue
        copies.add(cid)
        ctype = headers.get("content-type", [""])[0]
        mid, text = (None, body.decode("utf-8", "replace"))
        if ctype.lower().startswith("message/cpim"):
            mid, text = cpim_fields(body)
        emit(event="copy", request_uri=start.split(" ")[1], from_=headers.get("from", [""])[0],
             content_type=ctype, imdn_message_id=mid, text=text)
        if len(copies) >= a.expect and done_at is None:
            done_at = time.monotonic() + a.grace


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A small SIP SUBSCRIBE client for the conference event package (RFC 6665, RFC 4575).
Standard library only; independent of the Rust code (its own SIP and conference-info
handling, written from the RFCs). UDP on loopback.

It binds --listen HOST:PORT, sends one SUBSCRIBE (Event: --event, default `conference`;
Accept: application/conference-info+xml unless --accept says otherwise; Expires: --expires)
to --focus via --server, retransmitting it as RFC 3261 timer E does until a final response
comes, then answers every NOTIFY with 200 and prints it. With --unsubscribe-after N it
sends an in-dialog SUBSCRIBE with Expires: 0 once N NOTIFYs arrived (RFC 6665 4.1.2.3).

Events (JSON lines on stdout):
  {"event": "response", "status": ..., "expires": ..., "allow_events": ..., "warning": ...}
  {"event": "notify", "cseq": ..., "subscription_state": ..., "event_header": ...,
   "content_type": ..., "version": ..., "state": ..., "entity": ..., "active": ...,
   "users": [{"entity", "status", "disconnection_method", "reason", "delivery"}]}
   (the document read with xml.etree; a retransmitted NOTIFY is answered again, printed once)
  {"event": "done"} after a NOTIFY whose Subscription-State is terminated, or after a final
   non-2xx response to the first SUBSCRIBE (exit 0); {"event": "timeout"} (exit 2).
"""

import argparse
import json
import secrets
import socket
import sys
import time
import xml.etree.ElementTree as ET

CI_NS = "urn:ietf:params:xml:ns:conference-info"
DR_NS = "urn:imspec:params:xml:ns:conference-delivery"


def emit(**event):
    sys.stdout.write(json.dumps(event, sort_keys=True) + "\n")
    sys.stdout.flush()


def addr(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "c": "content-type",
           "l": "content-length", "m": "contact", "o": "event", "u": "allow-events"}


def split_sip(data):
    """(start line, {lower-case header name: [values]}, body) of one SIP datagram."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" not in line:
            continue
        name, value = line.split(":", 1)
        name = name.strip().lower()
        headers.setdefault(COMPACT.get(name, name), []).append(value.strip())
    length = headers.get("content-length")
    if length:
        body = body[: int(length[0])]
    return lines[0], headers, body


def first(headers, name):
    v = headers.get(name)
    return v[0] if v else None


def tag_of(value):
    for p in value.split(";")[1:]:
        k, _, v = p.partition("=")
        if k.strip().lower() == "tag":
            return v.strip()
    return None


def ok_for(headers):
    """A 200 echoing Via, From, To (with a tag of ours if none), Call-ID, CSeq (RFC 3261
    8.2.6)."""
    out = ["SIP/2.0 200 OK"]
    for v in headers.get("via", []):
        out.append("Via: " + v)
    out.append("From: " + headers["from"][0])
    to = headers["to"][0]
    if tag_of(to) is None:
        to += ";tag=" + secrets.token_hex(4)
    out.append("To: " + to)
    out.append("Call-ID: " + headers["call-id"][0])
    out.append("CSeq: " + headers["cseq"][0])
    out.append("Content-Length: 0")
    return ("\r\n".join(out) + "\r\n\r\n").encode()


def read_document(body):
    """The conference-info document as a dict (RFC 4575 section 5)."""
    root = ET.fromstring(body)
    if root.tag != "{%s}conference-info" % CI_NS:
        raise ValueError("root is %s" % root.tag)
    doc = {
        "version": int(root.get("version")),
        "state": root.get("state"),
        "entity": root.get("entity"),
        "active": root.findtext("{%s}conference-state/{%s}active" % (CI_NS, CI_NS)),
        "users": [],
    }
    for user in root.findall("{%s}users/{%s}user" % (CI_NS, CI_NS)):
        ep = user.find("{%s}endpoint" % CI_NS)
        row = {"entity": user.get("entity")}
        if ep is not None:
            row["status"] = ep.findtext("{%s}status" % CI_NS)
            row["disconnection_method"] = ep.findtext("{%s}disconnection-method" % CI_NS)
            row["reason"] = ep.findtext(
                "{%s}disconnection-info/{%s}reason" % (CI_NS, CI_NS))
            row["delivery"] = ep.findtext("{%s}delivery" % DR_NS)
        doc["users"].append(row)
    return doc


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True, metavar="HOST:PORT")
    ap.add_argument("--listen", required=True, metavar="HOST:PORT")
    ap.add_argument("--focus", required=True, help="the conference URI to subscribe to")
    ap.add_argument("--from-uri", required=True)
    ap.add_argument("--event", default="conference")
    ap.add_argument("--accept", default="application/conference-info+xml")
    ap.add_argument("--expires", type=int, default=600)
    ap.add_argument("--unsubscribe-after", type=int, default=0, metavar="N")
    ap.add_argument("--timeout", type=float, default=20.0)
    args = ap.parse_args()

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(addr(args.listen))
    server = addr(args.server)
    host, port = sock.getsockname()
    call_id = secrets.token_hex(8) + "@" + host
    from_tag = secrets.token_hex(4)
    contact = "<sip:subscriber@%s:%d>" % (host, port)

    def subscribe(cseq, to_tag, expires):
        branch = "z9hG4bK" + secrets.token_hex(6)
        to = "<%s>" % args.focus + (";tag=" + to_tag if to_tag else "")
        lines = [
            "SUBSCRIBE %s SIP/2.0" % args.focus,
            "Via: SIP/2.0/UDP %s:%d;branch=%s;rport" % (host, port, branch),
            "From: <%s>;tag=%s" % (args.from_uri, from_tag),
            "To: " + to,
            "Call-ID: " + call_id,
            "CSeq: %d SUBSCRIBE" % cseq,
            "Contact: " + contact,
            "Max-Forwards: 70",
            "Event: " + args.event,
            "Expires: %d" % expires,
        ]
        if args.accept:
            lines.append("Accept: " + args.accept)
        lines.append("Content-Length: 0")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    deadline = time.monotonic() + args.timeout
    request = subscribe(1, None, args.expires)
    pending = {1: request}  # CSeq -> bytes, retransmitted until a final response
    sock.sendto(request, server)
    interval, next_send = 0.5, time.monotonic() + 0.5
    to_tag = None
    seen_notify = set()
    notifies = 0
    unsubscribed = False
    while True:
        now = time.monotonic()
        if now >= deadline:
            emit(event="timeout")
            return 2
        if pending and now >= next_send:
            for r in pending.values():
                sock.sendto(r, server)
            interval = min(interval * 2, 4.0)
            next_send = now + interval
        sock.settimeout(max(0.01, min(deadline, next_send if pending else deadline) - now))
        try:
            data, src = sock.recvfrom(65535)
        except socket.timeout:
            continue
        start, headers, body = split_sip(data)
        if start.startswith("SIP/2.0 "):
            status = int(start.split()[1])
            cseq = int((first(headers, "cseq") or "0").split()[0])
            if status < 200 or cseq not in pending:
                continue
            del pending[cseq]
            if cseq == 1:
                to_tag = tag_of(first(headers, "to") or "")
            emit(event="response", cseq=cseq, status=status, to_tag=to_tag,
                 expires=first(headers, "expires"), contact=first(headers, "contact"),
                 allow_events=first(headers, "allow-events"),
                 accept=first(headers, "accept"), warning=first(headers, "warning"))
            if cseq == 1 and status >= 300:
                emit(event="done")
                return 0
            continue
        method = start.split(" ", 1)[0]
        if method != "NOTIFY":
            continue
        sock.sendto(ok_for(headers), src)
        cseq = int((first(headers, "cseq") or "0").split()[0])
        if cseq in seen_notify:
            continue
        seen_notify.add(cseq)
        notifies += 1
        state = first(headers, "subscription-state") or ""
        event = {"event": "notify", "cseq": cseq, "subscription_state": state,
                 "event_header": first(headers, "event"),
                 "content_type": first(headers, "content-type"),
                 "from_tag": tag_of(first(headers, "to") or ""),
                 "dialog_tag": tag_of(first(headers, "from") or ""), "src": "%s:%d" % src}
        try:
            event.update(read_document(body))
        except Exception as e:  # a broken document is reported, not fatal
            event["error"] = str(e)
        emit(**event)
        if state.split(";")[0].strip().lower() == "terminated":
            emit(event="done")
            return 0
        if args.unsubscribe_after and notifies >= args.unsubscribe_after and not unsubscribed:
            unsubscribed = True
            tag = to_tag or tag_of(first(headers, "from") or "")
            request = subscribe(2, tag, 0)
            pending[2] = request
            sock.sendto(request, server)
            interval, next_send = 0.5, time.monotonic() + 0.5


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A small SIP page-mode peer for delivery reports (RFC 5438 IMDN in RFC 3862 CPIM).
Standard library only; independent of the Rust code (its own SIP, CPIM and IMDN handling,
written from the RFCs).

One process plays the sender and any number of recipients, all over UDP on loopback
(with --collect it only plays the sender's SIP side, collecting the IMDNs of a pager-mode
MSRP session whose message another peer sent):

  * each --recipient HOST:PORT=STATUS binds HOST:PORT and answers every MESSAGE with STATUS
    (a 2xx accepts the copy, anything else declines it), printing one "copy" event per
    Call-ID with the copy's CPIM imdn.Message-ID;
  * the sender binds --listen HOST:PORT, sends one MESSAGE to --to (via --server) whose
    body is message/cpim asking for positive and negative delivery notifications
    (imdn.Disposition-Notification, RFC 5438 section 6.2), prints the final "response", then
    answers every MESSAGE it receives with 200 and prints each IMDN it carries as an "imdn"
    event (the CPIM headers read with email.parser, the IMDN document with xml.etree).

It exits 0 after --expect IMDNs and a short grace period (so that a surplus IMDN would be
seen), or 2 on --timeout. Events are JSON lines on stdout.
"""

import argparse
import email.parser
import json
import secrets
import selectors
import socket
import sys
import time
import xml.etree.ElementTree as ET

IMDN_NS = "urn:ietf:params:xml:ns:imdn"


def emit(**event):
    sys.stdout.write(json.dumps(event, sort_keys=True) + "\n")
    sys.stdout.flush()


def addr(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def split_sip(data):
    """(start line, {lower-case header name: [values]}, body) of one SIP datagram."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" not in line:
            continue
        name, value = line.split(":", 1)
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    compact = {"v": "via", "f": "from", "t": "to", "i": "call-id", "c": "content-type",
               "l": "content-length"}
    for short, full in compact.items():
        if short in headers:
            headers.setdefault(full, []).extend(headers.pop(short))
    length = headers.get("content-length")
    if length:
        body = body[: int(length[0])]
    return lines[0], headers, body


def response_to(start, headers, status, reason, to_tag):
    """A response echoing Via, From, To (with our tag), Call-ID and CSeq (RFC 3261 8.2.6)."""
    out = ["SIP/2.0 %d %s" % (status, reason)]
    for v in headers.get("via", []):
        out.append("Via: " + v)
    out.append("From: " + headers["from"][0])
    to = headers["to"][0]
    if ";tag=" not in to:
        to += ";tag=" + to_tag
    out.append("To: " + to)
    out.append("Call-ID: " + headers["call-id"][0])
    out.append("CSeq: " + headers["cseq"][0])
    out.append("Content-Length: 0")
    return ("\r\n".join(out) + "\r\n\r\n").encode()


def parse_cpim(body):
    """RFC 3862: message headers, blank line, MIME headers, blank line, content."""
    text = body.replace(b"\r\n", b"\n")
    msg_head, _, entity = text.partition(b"\n\n")
    msg_headers = email.parser.BytesHeaderParser().parsebytes(msg_head + b"\n\n")
    # The content is taken as octets: email would read a message/imdn+xml entity as an
    # encapsulated message (it treats every message/* type so).
    mime_head, _, content = entity.partition(b"\n\n")
    mime = email.parser.BytesHeaderParser().parsebytes(mime_head + b"\n\n")
    return msg_headers, mime, content


def imdn_of(body):
    cpim, mime, content = parse_cpim(body)
    root = ET.fromstring(content)
    ns = {"i": IMDN_NS}

    def text(path):
        el = root.find(path, ns)
        return None if el is None else (el.text or "").strip()

    status = None
    for kind in ("delivery-notification", "display-notification", "processing-notification"):
        el = root.find("i:%s/i:status" % kind, ns)
        if el is not None and len(el):
            status = el[0].tag.split("}", 1)[-1]
            break
    return {
        "cpim_from": cpim.get("From"),
        "cpim_to": cpim.get("To"),
        "cpim_message_id": cpim.get("imdn.Message-ID"),
        "content_type": mime.get_content_type(),
        "content_disposition": mime.get("Content-Disposition"),
        "root": root.tag,
        "message_id": text("i:message-id"),
        "datetime": text("i:datetime"),
        "recipient_uri": text("i:recipient-uri"),
        "original_recipient_uri": text("i:original-recipient-uri"),
        "status": status,
    }


def aggregate_of(content_type, body):
    """A multipart body (RFC 2046), read with the email package: each part's content type
    and, for a message/cpim part, the IMDN it carries."""
    whole = email.parser.BytesParser().parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    if not whole.is_multipart():
        raise ValueError("not a multipart body")
    parts = []
    for part in whole.get_payload():
        entry = {"part_content_type": part.get_content_type()}
        if part.get_content_type() == "message/cpim":
            # email reads every message/* part as an encapsulated message: its headers are
            # the CPIM message headers, its payload the MIME headers and the content.
            inner = part.get_payload(0)
            raw = b"".join(b"%s: %s\r\n" % (k.encode(), str(v).encode())
                           for k, v in inner.items())
            payload = inner.get_payload(decode=False)
            if isinstance(payload, list):
                payload = payload[0].as_string()
            entry.update(imdn_of(raw + b"\r\n" + payload.encode()))
        parts.append(entry)
    return parts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", type=addr)
    ap.add_argument("--listen", required=True, type=addr)
    ap.add_argument("--from-uri")
    ap.add_argument("--to", help="Request-URI (the group)")
    ap.add_argument("--collect", action="store_true",
                    help="send nothing: only collect the IMDNs that arrive at --listen (the "
                         "originator of an MSRP session sends its message itself)")
    ap.add_argument("--recipient", action="append", default=[],
                    help="HOST:PORT=STATUS: a recipient answering every MESSAGE with STATUS")
    ap.add_argument("--expect", type=int, required=True, help="IMDNs to wait for")
    ap.add_argument("--message-id", default="m-" + secrets.token_hex(6))
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--grace", type=float, default=0.5)
    ap.add_argument("--register", metavar="HOST:PORT", type=addr,
                    help="first REGISTER --from-uri with this contact (also bound and "
                         "answered), so that notifications should go there, not back to "
                         "--listen")
    ap.add_argument("--send-imdn", metavar="URI",
                    help="send, instead of a message, this peer's own IMDN (delivered) about "
                         "--message-id, addressed in CPIM To to URI (the original sender)")
    ap.add_argument("--plain", action="store_true",
                    help="send text/plain (no IMDN request); with --expect 0 the peer then "
                         "waits --grace after the final response for anything unasked")
    a = ap.parse_args()
    if not a.collect and not (a.server and a.from_uri and a.to):
        ap.error("--server, --from-uri and --to are needed unless --collect")

    sel = selectors.DefaultSelector()
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.bind(a.listen)
    sel.register(sender, selectors.EVENT_READ, ("sender", None))
    if a.register:
        contact = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        contact.bind(a.register)
        sel.register(contact, selectors.EVENT_READ, ("sender", None))
    for r in a.recipient:
        where, status = r.rsplit("=", 1)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(addr(where))
        sel.register(s, selectors.EVENT_READ, ("recipient", int(status)))

    here = "%s:%d" % sender.getsockname()
    datetime = "2026-12-06T04:00:00Z"
    cpim = (
        "From: <%s>\r\nTo: <%s>\r\nNS: imdn <urn:ietf:params:imdn>\r\n"
        "imdn.Message-ID: %s\r\nDateTime: %s\r\n"
        "imdn.Disposition-Notification: positive-delivery, negative-delivery\r\n\r\n"
        "Content-Type: text/plain;charset=utf-8\r\n\r\nhello, group\r\n"
        % (a.from_uri, a.to, a.message_id, datetime)
    ).encode()
    if a.send_imdn:
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\r\n'
            '<imdn xmlns="urn:ietf:params:xml:ns:imdn">\r\n'
            "<message-id>%s</message-id>\r\n<datetime>%s</datetime>\r\n"
            "<recipient-uri>%s</recipient-uri>\r\n"
            "<delivery-notification><status><delivered/></status></delivery-notification>\r\n"
            "</imdn>\r\n" % (a.message_id, datetime, a.from_uri)
        ).encode()
        cpim = (
            "From: <%s>\r\nTo: <%s>\r\nNS: imdn <urn:ietf:params:imdn>\r\n"
            "imdn.Message-ID: n-%s\r\nDateTime: %s\r\n\r\n"
            "Content-Type: message/imdn+xml\r\nContent-Disposition: notification\r\n"
            "Content-Length: %d\r\n\r\n" % (a.from_uri, a.send_imdn, secrets.token_hex(6),
                                            datetime, len(xml))
        ).encode() + xml
    ctype = "message/cpim"
    if a.plain:
        cpim, ctype = b"hello, group\r\n", "text/plain"
    call_id = secrets.token_hex(8) + "@" + a.listen[0]
    request = (
        "MESSAGE %s SIP/2.0\r\n"
        "Via: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <%s>;tag=%s\r\nTo: <%s>\r\nCall-ID: %s\r\nCSeq: 1 MESSAGE\r\n"
        "Content-Type: %s\r\nContent-Length: %d\r\n\r\n"
        % (a.to, here, secrets.token_hex(6), a.from_uri, secrets.token_hex(4), a.to,
           call_id, ctype, len(cpim))
    ).encode() + cpim
    if a.collect:
        final = 0  # nothing sent, nothing to retransmit
        emit(event="listening", port=sender.getsockname()[1])
    else:
        final = None
        emit(event="sent", message_id=a.message_id, datetime=datetime)

    deadline = time.monotonic() + a.timeout
    next_retransmit = time.monotonic() + 0.5
    copies = set()
    imdns = set()
    done_at = None
    if a.register:
        reg_call = secrets.token_hex(8) + "@" + a.listen[0]
        register = (
            "REGISTER sip:%s SIP/2.0\r\n"
            "Via: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n"
            "Max-Forwards: 70\r\n"
            "From: <%s>;tag=%s\r\nTo: <%s>\r\nCall-ID: %s\r\nCSeq: 1 REGISTER\r\n"
            "Contact: <sip:%s@%s:%d>\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n"
            % (a.from_uri.split("@", 1)[-1], here, secrets.token_hex(6), a.from_uri,
               secrets.token_hex(4), a.from_uri, reg_call,
               a.from_uri.split(":", 1)[-1].split("@", 1)[0], a.register[0], a.register[1])
        ).encode()
        registered = None
        for _ in range(20):
            sender.sendto(register, a.server)
            sender.settimeout(0.25)
            try:
                data, _src = sender.recvfrom(65535)
            except socket.timeout:
                continue
            start, headers, _ = split_sip(data)
            if headers.get("call-id", [""])[0] == reg_call and start.startswith("SIP/2.0 2"):
                registered = int(start.split(" ")[1])
                break
        sender.settimeout(None)
        sender.setblocking(False)
        emit(event="registered", status=registered,
             contact="%s:%d" % a.register)
        if registered is None:
            return 3
    if not a.collect:
        sender.sendto(request, a.server)
    while True:
        now = time.monotonic()
        if done_at is not None and now >= done_at:
            emit(event="done", imdns=len(imdns), copies=len(copies))
            return 0
        if now >= deadline:
            emit(event="timeout", imdns=len(imdns), copies=len(copies))
            return 2
        if final is None and now >= next_retransmit:
            sender.sendto(request, a.server)  # RFC 3261 Timer E, simplified
            next_retransmit = now + 0.5
        for key, _ in sel.select(timeout=0.05):
            sock = key.fileobj
            role, status = key.data
            data, src = sock.recvfrom(65535)
            try:
                start, headers, body = split_sip(data)
            except Exception as e:  # noqa: BLE001 - report anything unreadable
                emit(event="unreadable", error=str(e))
                continue
            if start.startswith("SIP/2.0 "):
                code = int(start.split(" ")[1])
                if role == "sender" and headers.get("call-id", [""])[0] == call_id:
                    if code >= 200 and final is None:
                        final = code
                        emit(event="response", status=code)
                        if a.expect == 0:
                            done_at = time.monotonic() + a.grace
                continue
            method = start.split(" ", 1)[0]
            if method != "MESSAGE":
                continue
            cid = headers.get("call-id", [""])[0]
            if role == "recipient":
                reason = "OK" if 200 <= status < 300 else "Busy Here"
                sock.sendto(response_to(start, headers, status, reason, "r1"), src)
                if cid not in copies:
                    copies.add(cid)
                    ctype = headers.get("content-type", [""])[0]
                    mid = None
                    inner = None
                    if ctype.lower().startswith("message/cpim"):
                        cpim_h, mime, _ = parse_cpim(body)
                        mid = cpim_h.get("imdn.Message-ID")
                        inner = mime.get_content_type()
                    emit(event="copy", at="%s:%d" % sock.getsockname(), answered=status,
                         from_=headers.get("from", [""])[0], imdn_message_id=mid,
                         cpim_content_type=inner)
                continue
            sock.sendto(response_to(start, headers, 200, "OK", "s1"), src)
            if cid in imdns:
                continue
            imdns.add(cid)
            ev = {
                "sip_content_type": headers.get("content-type", [""])[0],
                "sip_content_disposition": headers.get("content-disposition", [""])[0],
                "request_uri": start.split(" ")[1],
            }
            ev["at"] = "%s:%d" % sock.getsockname()
            if ev["sip_content_type"].lower().startswith("multipart/"):
                # RFC 5438 aggregation by the list server: several IMDNs in one message.
                try:
                    ev["parts"] = aggregate_of(ev["sip_content_type"], body)
                except Exception as e:  # noqa: BLE001
                    ev["error"] = str(e)
                emit(event="imdn_aggregate", **ev)
            else:
                try:
                    ev.update(imdn_of(body))
                except Exception as e:  # noqa: BLE001
                    ev["error"] = str(e)
                emit(event="imdn", **ev)
            if len(imdns) >= a.expect and done_at is None:
                done_at = time.monotonic() + a.grace


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A real SIP user agent (PJSIP 2.15 through pjsua2, `pip install pjsua2-python`) for the
end-to-end tests: it registers with Digest credentials and sends or receives page-mode
MESSAGEs, printing one JSON event per line on stdout.

    pjsip_peer.py receive --server 127.0.0.1:5060 --user bob --password bob-demo \
        --count 1 --timeout 20
        registers as sip:bob@<domain>, prints {"event": "registered", "code": 200} (or the
        failure code), then {"event": "message", "from": ..., "body": ...} for each MESSAGE
        until --count arrived or --timeout passed.
    pjsip_peer.py send --server ... --user alice --password alice-demo \
        --to sip:friends@example.com --text hello
        sends one MESSAGE through the server (its outbound proxy), answering its challenge,
        and prints {"event": "sent", "code": <final status>}.

Exit status: 0 when the run did what was asked (registered; every expected message came;
the MESSAGE got a 2xx), 1 otherwise, so a wrong password shows as exit 1 with the codes
in the events.
"""

import argparse
import json
import os
import sys
import time

import pjsua2 as pj


def emit(**event):
    print(json.dumps(event), flush=True)


class Account(pj.Account):
    def __init__(self):
        super().__init__()
        self.reg_code = None
        self.messages = []

    def onRegState(self, prm):
        # The first final answer after the challenge round trip is the one that counts.
        if prm.code >= 200 and self.reg_code is None:
            self.reg_code = prm.code

    def onInstantMessage(self, prm):
        self.messages.append({"from": prm.fromUri, "body": prm.msgBody})
        emit(event="message", **{"from": prm.fromUri}, body=prm.msgBody)


class Buddy(pj.Buddy):
    def __init__(self):
        super().__init__()
        self.status = None

    def onBuddyEvSubscriptionState(self):
        pass


class Sender(Account):
    def __init__(self):
        super().__init__()
        self.sent_code = None

    def onInstantMessageStatus(self, prm):
        self.sent_code = prm.code


def pump(ep, until, timeout):
    end = time.time() + timeout
    while time.time() < end and not until():
        ep.libHandleEvents(20)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["receive", "send"])
    ap.add_argument("--server", required=True, help="host:port of im-server")
    ap.add_argument("--domain", default="example.com")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--to", help="send: the Request-URI of the MESSAGE")
    ap.add_argument("--text", default="hello from pjsip")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=20.0)
    a = ap.parse_args()

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.logConfig.level = 3
    cfg.logConfig.consoleLevel = 3
    # PJSIP's own log goes to stderr: stdout carries only the JSON events.
    ep.libInit(cfg)
    tcfg = pj.TransportConfig()
    tcfg.port = 0
    tcfg.boundAddress = "127.0.0.1"
    ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
    ep.audDevManager().setNullDev()
    ep.libStart()

    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:{a.user}@{a.domain}"
    acfg.regConfig.registrarUri = f"sip:{a.server}"
    acfg.regConfig.timeoutSec = 300
    # A sender does not register: the MESSAGE alone is challenged. (PJSIP holds requests
    # of an account whose registration failed, so registering first would hide the answer.)
    acfg.regConfig.registerOnAdd = a.mode == "receive"
    acfg.sipConfig.proxies.append(f"sip:{a.server};lr")
    acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", a.user, 0, a.password))
    acc = Sender() if a.mode == "send" else Account()
    acc.create(acfg)

    ok = True
    if a.mode == "receive":
        pump(ep, lambda: acc.reg_code is not None, min(a.timeout, 10.0))
        emit(event="registered", code=acc.reg_code)
        ok = acc.reg_code == 200

    if a.mode == "receive" and ok:
        pump(ep, lambda: len(acc.messages) >= a.count, a.timeout)
        ok = len(acc.messages) >= a.count
    elif a.mode == "send":
        buddy = Buddy()
        bcfg = pj.BuddyConfig()
        bcfg.uri = a.to
        bcfg.subscribe = False
        buddy.create(acc, bcfg)
        prm = pj.SendInstantMessageParam()
        prm.content = a.text
        prm.contentType = "text/plain"
        buddy.sendInstantMessage(prm)
        pump(ep, lambda: acc.sent_code is not None, a.timeout)
        emit(event="sent", code=acc.sent_code)
        ok = ok and acc.sent_code is not None and 200 <= acc.sent_code < 300

    # Exit without libDestroy: tearing PJSIP down with a request still pending can abort the
    # interpreter, and the events are already out.
    sys.stdout.flush()
    os._exit(0 if ok else 1)


if __name__ == "__main__":
    sys.exit(main())

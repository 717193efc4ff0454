//! REGISTER (RFC 3261 §10.3): authentication, the checks of steps 6–7 and the answer of
//! step 8. The bindings themselves live in the application ([`Application::register`]).

use super::super::*;
use crate::endpoint::app::{ContactBinding, RegisterChange, RegisterError};
use crate::proto::sip::NameAddr;

impl<A: Application> Endpoint<A> {
    pub(in crate::endpoint) fn registrar(
        &mut self,
        now: Instant,
        peer: Peer,
        msg: &Message,
        key: &TsxKey,
    ) {
        if !self.app.offers_registrar() {
            // No registrar here: nothing to authenticate for.
            let allow = self.allow_header();
            self.reply_simple(now, key, msg, 405, &[("Allow", allow)]);
            return;
        }
        let to_user = msg
            .to()
            .and_then(|t| t.uri().user().map(str::to_owned))
            .unwrap_or_default();
        let Some(vouched) = self.authenticate(now, peer, msg, key, Some(&to_user)) else {
            return;
        };
        // Step 3: the address-of-record must belong to the domain the user authenticated
        // in; a user of example.com cannot bind an address of another domain.
        let to_host = msg
            .to()
            .map(|t| t.uri().host().to_ascii_lowercase())
            .unwrap_or_default();
        if let super::auth::Vouched::Realm(realm, _) = &vouched
            && !to_host.eq_ignore_ascii_case(realm)
        {
            self.stats.rejected += 1;
            let w = warning(
                &self.agent(),
                "the address-of-record is not in the domain this server registers",
            );
            self.reply_simple(now, key, msg, 404, &[("Warning", w)]);
            return;
        }
        let (change, outbound) = match self.register_change(msg, peer.addr) {
            Ok(c) => c,
            Err((status, extra)) => {
                self.stats.rejected += 1;
                self.reply_simple(now, key, msg, status, &extra);
                return;
            }
        };
        let aor = msg.to().map(|t| t.uri().to_view()).unwrap_or_default();
        // This request's own bindings hold its connection until the longest one ends; a
        // query (no Contact) changes nothing.
        let held = match &change {
            RegisterChange::Update(b) if b.is_empty() => None,
            RegisterChange::Update(b) => Some(b.iter().map(|b| b.expires).max().filter(|&e| e > 0)),
            RegisterChange::RemoveAll => Some(None),
        };
        match self.app.register(now, &aor, &change) {
            Ok(bindings) => {
                if let Some(held) = held {
                    let conn = self.stream_of(peer);
                    let until = held.map(|e| now + Duration::from_secs(u64::from(e)));
                    let key = format!("{}:{}@{}", aor.scheme(), aor.user(), aor.host());
                    self.conn_use.registered(conn, &key, until, &mut self.out);
                }
                self.note_flows(now, peer, &change, &outbound);
                // Step 8: the 200 lists every current binding with its remaining time.
                let extra: Vec<(&str, String)> = bindings
                    .iter()
                    .map(|b| ("Contact", format!("<{}>;expires={}", b.uri, b.expires)))
                    .collect();
                self.reply_simple(now, key, msg, 200, &extra);
                if !bindings.is_empty() {
                    self.offline_registered(now, &aor);
                }
            }
            Err(RegisterError::NotOffered) => {
                let allow = self.allow_header();
                self.reply_simple(now, key, msg, 405, &[("Allow", allow)]);
            }
            Err(RegisterError::Full) => {
                // The location service is out of room: a server-side condition that may
                // clear, so 503 with Retry-After rather than a 200 that binds nothing.
                self.stats.rejected += 1;
                let after = self.cfg.retry_after_header();
                let w = warning(&self.agent(), "the location table is full");
                self.reply_simple(
                    now,
                    key,
                    msg,
                    503,
                    &[("Retry-After", after), ("Warning", w)],
                );
            }
        }
    }

    /// Steps 6 and 7: what the REGISTER asks for, or the error answer; with it, for each
    /// binding of an update, whether it registers an outbound flow ([`outbound_flow`]).
    #[allow(clippy::type_complexity)]
    fn register_change(
        &self,
        msg: &Message,
        source: SocketAddr,
    ) -> Result<(RegisterChange, Vec<bool>), (u16, Vec<(&'static str, String)>)> {
        let bad = |text: &str| (400, vec![("Warning", warning(&self.agent(), text))]);
        let values = msg.values(HeaderName::Contact);
        let header_expires = msg.expires();
        if values.iter().any(|v| v.trim() == "*") {
            // Step 6: `*` only alone and with Expires: 0.
            if values.len() != 1 || header_expires != Some(0) {
                return Err(bad("Contact: * needs Expires: 0 and no other Contact"));
            }
            return Ok((RegisterChange::RemoveAll, Vec::new()));
        }
        // RFC 5626 §6: an outbound registration from the UA itself (one Via: no proxy
        // between it and us) binds the connection it came over.
        let first_hop = msg.values(HeaderName::Via).len() == 1;
        let mut outbound = Vec::with_capacity(values.len());
        let mut out = Vec::with_capacity(values.len());
        for v in values {
            let Ok(na) = NameAddr::parse(v) else {
                return Err(bad("malformed Contact"));
            };
            let param = na.params().get("expires").flatten().map(|e| {
                e.parse::<u64>()
                    .map(|n| n.min(u64::from(u32::MAX)) as u32)
                    .ok()
            });
            let expires = match param {
                Some(None) => return Err(bad("malformed expires parameter")),
                Some(Some(e)) => e,
                None => header_expires.unwrap_or(self.cfg.default_register_expires),
            };
            if expires != 0 && expires < self.cfg.min_register_expires {
                // Step 7: too brief; say the shortest we take.
                return Err((
                    423,
                    vec![("Min-Expires", self.cfg.min_register_expires.to_string())],
                ));
            }
            let uri = na.uri();
            let host = uri.host().trim_start_matches('[').trim_end_matches(']');
            let addr = match host.parse::<IpAddr>() {
                Ok(ip) => SocketAddr::new(ip, uri.port().unwrap_or(5060)),
                // A host name we do not resolve (sans-IO): the source address reaches it.
                Err(_) => source,
            };
            out.push(ContactBinding {
                uri: uri.as_str().to_owned(),
                addr,
                expires: expires.min(self.cfg.max_register_expires),
            });
            outbound.push(first_hop && outbound_flow(&na));
        }
        Ok((RegisterChange::Update(out), outbound))
    }
}

/// Whether Contact `na` of a REGISTER asks for an outbound flow (RFC 5626 §4.2, §6): it
/// carries both `reg-id` and `+sip.instance`. The UA is then reached over the flow its
/// REGISTER came over, and only over it (§5.3: once that flow fails, requests for it are
/// not sent another way), whatever its Contact URI says.
pub(in crate::endpoint) fn outbound_flow(na: &NameAddr<'_>) -> bool {
    let p = na.params();
    p.get("reg-id").flatten().is_some() && p.get("+sip.instance").flatten().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outbound_contact_has_reg_id_and_instance() {
        let yes = |v: &str| outbound_flow(&NameAddr::parse(v).unwrap());
        assert!(yes(
            "<sip:bob@192.0.2.1;transport=tcp>;reg-id=1;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\""
        ));
        assert!(yes(
            "<sip:bob@192.0.2.1>;+SIP.INSTANCE=\"<urn:uuid:1>\";REG-ID=2;expires=600"
        ));
        assert!(!yes("<sip:bob@192.0.2.1>;reg-id=1"));
        assert!(!yes("<sip:bob@192.0.2.1>;+sip.instance=\"<urn:uuid:1>\""));
        assert!(!yes("<sip:bob@192.0.2.1;ob>"));
        // In the URI, not the header: not an outbound registration.
        assert!(!yes("<sip:bob@192.0.2.1;reg-id=1;+sip.instance=x>"));
    }
}

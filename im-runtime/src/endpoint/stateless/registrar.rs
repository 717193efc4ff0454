//! REGISTER (RFC 3261 §10.3): authentication, the checks of steps 6–7 and the answer of
//! step 8. The bindings themselves live in the application ([`Application::register`]).

use super::super::*;
use crate::endpoint::app::{ContactBinding, RegisterChange, RegisterError};
use crate::endpoint::session::route_leg::RegisteredPath;
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
        let Ask {
            change,
            outbound,
            path,
        } = match self.register_change(msg, peer.addr) {
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
                self.note_flows(now, peer, &change, &outbound, path.as_ref());
                // Step 8: the 200 lists every current binding with its remaining time.
                let mut extra: Vec<(&str, String)> = bindings
                    .iter()
                    .map(|b| ("Contact", format!("<{}>;expires={}", b.uri, b.expires)))
                    .collect();
                // RFC 5626 §6: a REGISTER whose outbound registration was applied (over
                // its own connection, or through an edge proxy that said `ob` in its
                // Path) is answered with `Require: outbound`, so the UA knows its flow is
                // kept and starts its keep-alives (§4.4).
                let conn = self.stream_of(peer).is_some();
                if outbound.iter().any(|&o| o) && (conn || path.is_some()) {
                    extra.push(("Require", "outbound".to_string()));
                }
                // RFC 3327 §5.3: the stored Path goes back in the 2xx, to a UA that said it
                // supports Path only.
                if let Some(p) = &path
                    && has_option(msg, "path")
                {
                    extra.push(("Path", p.routes.join(", ")));
                }
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
    /// binding of an update, whether it registers an outbound flow ([`outbound_flow`]), and
    /// its Path (RFC 3327).
    #[allow(clippy::type_complexity)]
    fn register_change(
        &self,
        msg: &Message,
        source: SocketAddr,
    ) -> Result<Ask, (u16, Vec<(&'static str, String)>)> {
        let bad = |text: &str| (400, vec![("Warning", warning(&self.agent(), text))]);
        let path = match registered_path(msg, source) {
            Ok(p) => p,
            Err(()) => return Err(bad("malformed Path")),
        };
        let values = msg.values(HeaderName::Contact);
        let header_expires = msg.expires();
        if values.iter().any(|v| v.trim() == "*") {
            // Step 6: `*` only alone and with Expires: 0.
            if values.len() != 1 || header_expires != Some(0) {
                return Err(bad("Contact: * needs Expires: 0 and no other Contact"));
            }
            return Ok(Ask {
                change: RegisterChange::RemoveAll,
                outbound: Vec::new(),
                path,
            });
        }
        // RFC 5626 §6: an outbound registration from the UA itself (one Via: no proxy
        // between it and us) binds the connection it came over; through proxies, the first
        // hop must support outbound, which it says by `ob` in the Path value it added (the
        // last one: each proxy adds its own on top, RFC 3327 §5.2).
        let first_hop = msg.values(HeaderName::Via).len() == 1;
        let edge_ob = msg_path_values(msg)
            .last()
            .and_then(|v| NameAddr::parse(v).ok())
            .is_some_and(|na| na.uri().param("ob").is_some());
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
            let asks_outbound = outbound_flow(&na);
            if asks_outbound && expires > 0 && !first_hop && !edge_ob {
                // RFC 5626 §6: the UA asked for outbound through a first hop that does
                // not support it (more than one Via, no `ob` in the edge proxy's Path):
                // 439, so the UA registers without outbound or through another proxy
                // (§11.6).
                return Err((
                    439,
                    vec![(
                        "Warning",
                        warning(
                            &self.agent(),
                            "outbound asked through a first hop without outbound (no ob in its Path)",
                        ),
                    )],
                ));
            }
            outbound.push(asks_outbound && (first_hop || edge_ob));
        }
        Ok(Ask {
            change: RegisterChange::Update(out),
            outbound,
            path,
        })
    }
}

/// What a REGISTER asks for ([`Endpoint::register_change`]).
struct Ask {
    change: RegisterChange,
    /// Per binding of an update: it registers an outbound flow (RFC 5626 §6).
    outbound: Vec<bool>,
    /// Its Path (RFC 3327), kept with its bindings.
    path: Option<RegisteredPath>,
}

/// The values of the Path header lines of `msg`, in order (top first).
fn msg_path_values(msg: &Message) -> Vec<&str> {
    msg.headers()
        .filter(|h| h.name_str.eq_ignore_ascii_case("path"))
        .flat_map(|h| crate::proto::sip::split_values(h.value))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

/// The Path of a REGISTER from `source` (RFC 3327 §5.3: kept with the bindings, the route
/// set of requests to them); `None` without one, `Err` when a value is not a name-addr.
fn registered_path(msg: &Message, source: SocketAddr) -> Result<Option<RegisteredPath>, ()> {
    let values = msg_path_values(msg);
    let mut routes = Vec::with_capacity(values.len());
    let mut first = None;
    for v in &values {
        let na = NameAddr::parse(v).map_err(|_| ())?;
        if first.is_none() {
            let uri = na.uri();
            let host = uri.host().trim_start_matches('[').trim_end_matches(']');
            let hop = match host.parse::<IpAddr>() {
                Ok(ip) => SocketAddr::new(ip, uri.port().unwrap_or(5060)),
                // A host name we do not resolve (sans-IO): the proxy it came from.
                Err(_) => source,
            };
            let transport = crate::proto::sip::Uri::parse(uri.as_str())
                .ok()
                .and_then(|u| {
                    super::super::session::route_leg::LegTransport::asked_by(&u.to_view())
                });
            first = Some((hop, transport));
        }
        routes.push((*v).to_string());
    }
    Ok(first.map(|(hop, transport)| RegisteredPath {
        routes: routes.into(),
        hop,
        transport,
    }))
}

/// Whether `msg` names option tag `tag` in Supported.
fn has_option(msg: &Message, tag: &str) -> bool {
    msg.supported()
        .is_ok_and(|v| v.iter().any(|t| t.eq_ignore_ascii_case(tag)))
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

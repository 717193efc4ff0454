//! Where invitee requests go (design.md "Routing invitees"), in this order:
//!
//! 1. a URI whose host is an IP literal (IPv4, or a bracketed IPv6 reference) goes straight
//!    there, to its port or the scheme's default (5060 for `sip:`, 5061 for `sips:`,
//!    RFC 3261 §19.1.2);
//! 2. otherwise through the configured outbound proxy (Kamailio, an S-CSCF …);
//! 3. otherwise to the newest live binding of the address-of-record in the server's own
//!    [`LocationTable`], fed by REGISTER;
//! 4. otherwise the invitee cannot be reached and its leg fails.
//!
//! Sans-IO: nothing here reads a clock. The table takes `now` on every call; the router
//! keeps the `now` of the input being handled, set by [`Router::set_now`] before the
//! machines run, because [`InviteeRouter::route`] has no time argument.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use im_runtime::endpoint::ContactBinding;
use im_runtime::machine::{InviteeRouter, Route, Uri};

/// The default port for a scheme (RFC 3261 §19.1.2).
fn default_port(u: &Uri) -> u16 {
    if u.scheme().eq_ignore_ascii_case("sips") {
        5061
    } else {
        5060
    }
}

/// The socket address of a URI whose host is an IP literal.
pub fn ip_literal(u: &Uri) -> Option<SocketAddr> {
    let ip = if let Some(inner) = u.host().strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        IpAddr::V6(inner.parse::<Ipv6Addr>().ok()?)
    } else {
        // `parse::<IpAddr>` would also take a bare IPv6 address, which a SIP URI host
        // cannot be (RFC 3261 §25: IPv6reference is bracketed).
        IpAddr::V4(u.host().parse().ok()?)
    };
    Some(SocketAddr::new(
        ip,
        u.port().unwrap_or_else(|| default_port(u)),
    ))
}

/// Key equal for URIs that [`Uri::same_identity`] calls equal.
type Aor = (String, String, String, Option<u16>);

fn aor_key(u: &Uri) -> Aor {
    (
        u.scheme().to_ascii_lowercase(),
        u.user().to_owned(),
        u.host().to_ascii_lowercase(),
        u.port(),
    )
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Binding {
    /// The Contact URI as registered (`sip:<contact>` for a binding restored from the store,
    /// which keeps only the address).
    uri: String,
    contact: SocketAddr,
    expires_at: Instant,
    registered_at: Instant,
}

/// The table is full: the registration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("location table full ({0} bindings)")]
pub struct TableFull(pub usize);

/// Address-of-record → contact bindings from REGISTER, with expiry.
#[derive(Clone, Debug)]
pub struct LocationTable {
    bindings: HashMap<Aor, Vec<Binding>>,
    count: usize,
    max_bindings: usize,
}

impl Default for LocationTable {
    fn default() -> Self {
        LocationTable::new(10_000)
    }
}

impl LocationTable {
    /// An empty table holding at most `max_bindings` bindings in all, so that a flood of
    /// REGISTERs cannot grow it without bound.
    pub fn new(max_bindings: usize) -> LocationTable {
        LocationTable {
            bindings: HashMap::new(),
            count: 0,
            max_bindings,
        }
    }

    /// Adds or refreshes the binding of `aor` to `contact` for `expires` from `now`;
    /// `expires` of zero removes it (RFC 3261 §10.2.2). Expired bindings are dropped first.
    pub fn register(
        &mut self,
        aor: &Uri,
        contact: SocketAddr,
        expires: Duration,
        now: Instant,
    ) -> Result<(), TableFull> {
        self.register_uri(aor, &format!("sip:{contact}"), contact, expires, now)
    }

    /// Applies every change of one REGISTER, or none of them when the new bindings do not
    /// fit (RFC 3261 §10.3 step 7: the REGISTER is processed atomically).
    pub fn update(
        &mut self,
        aor: &Uri,
        changes: &[ContactBinding],
        now: Instant,
    ) -> Result<(), TableFull> {
        self.purge(now);
        let k = aor_key(aor);
        let existing = self.bindings.get(&k);
        let mut added: Vec<SocketAddr> = Vec::new();
        for c in changes.iter().filter(|c| c.expires > 0) {
            let known = existing.is_some_and(|l| l.iter().any(|b| b.contact == c.addr));
            if !known && !added.contains(&c.addr) {
                added.push(c.addr);
            }
        }
        if self.count + added.len() > self.max_bindings {
            return Err(TableFull(self.max_bindings));
        }
        for c in changes {
            self.register_uri(
                aor,
                &c.uri,
                c.addr,
                Duration::from_secs(u64::from(c.expires)),
                now,
            )?;
        }
        Ok(())
    }

    /// The live bindings of `aor` at `now`, with their remaining seconds.
    pub fn bindings_of(&self, aor: &Uri, now: Instant) -> Vec<ContactBinding> {
        self.bindings
            .get(&aor_key(aor))
            .map(|list| {
                list.iter()
                    .filter(|b| b.expires_at > now)
                    .map(|b| ContactBinding {
                        uri: b.uri.clone(),
                        addr: b.contact,
                        expires: u32::try_from(
                            b.expires_at.saturating_duration_since(now).as_secs(),
                        )
                        .unwrap_or(u32::MAX),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// [`LocationTable::register`] keeping the Contact URI as written.
    pub fn register_uri(
        &mut self,
        aor: &Uri,
        uri: &str,
        contact: SocketAddr,
        expires: Duration,
        now: Instant,
    ) -> Result<(), TableFull> {
        self.purge(now);
        let k = aor_key(aor);
        if expires.is_zero() {
            self.unregister(aor, contact);
            return Ok(());
        }
        // An absurd Expires is capped at a year rather than overflowing the clock.
        let expires_at = now
            .checked_add(expires.min(Duration::from_secs(365 * 24 * 3600)))
            .unwrap_or(now);
        if let Some(b) = self
            .bindings
            .get_mut(&k)
            .and_then(|list| list.iter_mut().find(|b| b.contact == contact))
        {
            b.expires_at = expires_at;
            b.registered_at = now;
            uri.clone_into(&mut b.uri);
            return Ok(());
        }
        if self.count >= self.max_bindings {
            return Err(TableFull(self.max_bindings));
        }
        let list = self.bindings.entry(k).or_default();
        list.push(Binding {
            uri: uri.to_owned(),
            contact,
            expires_at,
            registered_at: now,
        });
        self.count += 1;
        Ok(())
    }

    /// Removes the binding of `aor` to `contact`.
    pub fn unregister(&mut self, aor: &Uri, contact: SocketAddr) {
        let k = aor_key(aor);
        if let Some(list) = self.bindings.get_mut(&k) {
            let before = list.len();
            list.retain(|b| b.contact != contact);
            self.count -= before - list.len();
            if list.is_empty() {
                self.bindings.remove(&k);
            }
        }
    }

    /// Removes every binding of `aor` (`Contact: *` with `Expires: 0`).
    pub fn unregister_all(&mut self, aor: &Uri) {
        if let Some(list) = self.bindings.remove(&aor_key(aor)) {
            self.count -= list.len();
        }
    }

    /// The contact of the newest binding of `aor` still live at `now`.
    pub fn lookup(&self, aor: &Uri, now: Instant) -> Option<SocketAddr> {
        self.bindings
            .get(&aor_key(aor))?
            .iter()
            .filter(|b| b.expires_at > now)
            .max_by_key(|b| b.registered_at)
            .map(|b| b.contact)
    }

    /// Drops every binding expired at `now`.
    pub fn purge(&mut self, now: Instant) {
        let mut dropped = 0;
        self.bindings.retain(|_, list| {
            let before = list.len();
            list.retain(|b| b.expires_at > now);
            dropped += before - list.len();
            !list.is_empty()
        });
        self.count -= dropped;
    }

    /// When the next binding expires, for the caller's timer.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.bindings.values().flatten().map(|b| b.expires_at).min()
    }

    /// Whether the table has no room for one more binding.
    pub fn is_full(&self) -> bool {
        self.count >= self.max_bindings
    }

    /// Number of bindings (live or not yet purged).
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the table has no binding.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// The [`InviteeRouter`] of the server. Clones share the location table (each worker of
/// the server has its own clone, so a REGISTER handled by one is routed by all) but keep
/// their own `now`.
#[derive(Clone, Debug)]
pub struct Router {
    /// The outbound proxy, when configured.
    pub outbound_proxy: Option<SocketAddr>,
    /// The REGISTER location table, shared by every clone. Routing only reads it.
    pub locations: Arc<RwLock<LocationTable>>,
    now: Option<Instant>,
}

impl Router {
    /// A router with an optional outbound proxy and an empty location table.
    pub fn new(outbound_proxy: Option<SocketAddr>, locations: LocationTable) -> Router {
        Router {
            outbound_proxy,
            locations: Arc::new(RwLock::new(locations)),
            now: None,
        }
    }

    /// Sets the time of the input being handled; location bindings are judged live or
    /// expired against it. Until it is first called no binding is used.
    pub fn set_now(&mut self, now: Instant) {
        self.now = Some(now);
    }
}

impl InviteeRouter for Router {
    fn route(&self, invitee: &Uri) -> Option<Route> {
        if let Some(addr) = ip_literal(invitee) {
            return Some(Route::Direct(addr));
        }
        if let Some(proxy) = self.outbound_proxy {
            return Some(Route::OutboundProxy(proxy));
        }
        let now = self.now?;
        self.locations
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .lookup(invitee, now)
            .map(Route::Direct)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uri::parse_uri;

    /// Tests need some instant to count from; virtual time then advances by adding to it.
    #[allow(clippy::disallowed_methods)]
    fn epoch() -> Instant {
        Instant::now()
    }

    fn u(s: &str) -> Uri {
        parse_uri(s).unwrap()
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ip_literals_go_direct() {
        let r = Router::new(Some(sa("192.0.2.1:5060")), LocationTable::default());
        assert_eq!(
            r.route(&u("sip:bob@198.51.100.7:5070")),
            Some(Route::Direct(sa("198.51.100.7:5070")))
        );
        assert_eq!(
            r.route(&u("sip:bob@198.51.100.7")),
            Some(Route::Direct(sa("198.51.100.7:5060")))
        );
        assert_eq!(
            r.route(&u("sip:[2001:db8::5]:5090")),
            Some(Route::Direct(sa("[2001:db8::5]:5090")))
        );
        assert_eq!(
            r.route(&u("sips:bob@[2001:DB8::5]")),
            Some(Route::Direct(sa("[2001:db8::5]:5061")))
        );
        // Looks numeric, is a host name: goes to the proxy.
        assert_eq!(
            r.route(&u("sip:bob@198.51.100.7.example.com")),
            Some(Route::OutboundProxy(sa("192.0.2.1:5060")))
        );
        assert_eq!(ip_literal(&u("sip:bob@999.1.1.1")), None);
    }

    #[test]
    fn host_names_use_proxy_then_locations() {
        let t0 = epoch();
        let mut table = LocationTable::default();
        table
            .register(
                &u("sip:bob@example.com"),
                sa("10.0.0.2:5062"),
                Duration::from_secs(60),
                t0,
            )
            .unwrap();
        let with_proxy = Router::new(Some(sa("192.0.2.1:5060")), table.clone());
        assert_eq!(
            with_proxy.route(&u("sip:bob@example.com")),
            Some(Route::OutboundProxy(sa("192.0.2.1:5060"))),
            "the proxy wins over the location table"
        );
        let mut r = Router::new(None, table);
        assert_eq!(r.route(&u("sip:bob@example.com")), None, "no time yet");
        r.set_now(t0 + Duration::from_secs(1));
        assert_eq!(
            r.route(&u("sip:bob@EXAMPLE.com;transport=tcp")),
            Some(Route::Direct(sa("10.0.0.2:5062")))
        );
        assert_eq!(r.route(&u("sip:carol@example.com")), None);
        assert_eq!(r.route(&u("tel:+15550100")), None);
        // A clone (another worker's router) sees a binding added through this one.
        let other = r.clone();
        r.locations
            .write()
            .unwrap()
            .register(
                &u("sip:carol@example.com"),
                sa("10.0.0.3:5060"),
                Duration::from_secs(60),
                t0,
            )
            .unwrap();
        assert_eq!(
            other.route(&u("sip:carol@example.com")),
            Some(Route::Direct(sa("10.0.0.3:5060")))
        );
        r.set_now(t0 + Duration::from_secs(60));
        assert_eq!(r.route(&u("sip:bob@example.com")), None, "expired");
    }

    #[test]
    fn location_table_expiry_refresh_and_removal() {
        let t0 = epoch();
        let s = Duration::from_secs;
        let bob = u("sip:bob@example.com");
        let mut t = LocationTable::new(2);
        t.register(&bob, sa("10.0.0.1:5060"), s(10), t0).unwrap();
        t.register(&bob, sa("10.0.0.2:5060"), s(100), t0 + s(1))
            .unwrap();
        assert_eq!(t.len(), 2);
        // Newest live binding wins.
        assert_eq!(t.lookup(&bob, t0 + s(2)), Some(sa("10.0.0.2:5060")));
        // Refreshing the first makes it the newest.
        t.register(&bob, sa("10.0.0.1:5060"), s(10), t0 + s(3))
            .unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.lookup(&bob, t0 + s(4)), Some(sa("10.0.0.1:5060")));
        // Once it expires the other one is used again.
        assert_eq!(t.lookup(&bob, t0 + s(13)), Some(sa("10.0.0.2:5060")));
        assert_eq!(t.next_expiry(), Some(t0 + s(13)));
        // Full table refuses a new binding but not a refresh.
        let carol = u("sip:carol@example.com");
        assert_eq!(
            t.register(&carol, sa("10.0.0.3:5060"), s(10), t0 + s(5)),
            Err(TableFull(2))
        );
        // After purge the expired binding frees room.
        t.register(&carol, sa("10.0.0.3:5060"), s(10), t0 + s(20))
            .unwrap();
        assert_eq!(t.len(), 2);
        // Expires 0 removes one binding; unregister_all removes the rest.
        t.register(&carol, sa("10.0.0.3:5060"), Duration::ZERO, t0 + s(21))
            .unwrap();
        assert_eq!(t.lookup(&carol, t0 + s(21)), None);
        assert_eq!(t.len(), 1);
        t.unregister_all(&bob);
        assert!(t.is_empty());
        assert_eq!(t.next_expiry(), None);
        // A huge Expires does not overflow.
        t.register(&bob, sa("10.0.0.1:5060"), Duration::MAX, t0)
            .unwrap();
        assert_eq!(t.lookup(&bob, t0 + s(86_400)), Some(sa("10.0.0.1:5060")));
    }
}

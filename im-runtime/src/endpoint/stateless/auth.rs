//! Digest authentication of requests at admission (RFC 3261 §22).
//!
//! Which status: the server is the UAS of every request it challenges. A REGISTER ends at
//! its registrar, and an INVITE or MESSAGE ends at its conference factory, list exploder or
//! group focus, which answers it and originates new requests of its own (it does not
//! forward the request as a proxy would). RFC 3261 §22.1 and §22.3 give such a UAS and a
//! registrar `401 Unauthorized` with WWW-Authenticate; 407 with Proxy-Authenticate is for
//! a proxy on the way to another UAS (§22.3, §26.3.2.1). So every challenge here is 401.
//! A client that answers a 401 with Proxy-Authorization anyway (some stacks keep the header
//! of their outbound proxy) is still understood: either header is read when its realm is
//! ours.

use super::super::*;
use crate::proto::digest::{Credentials, Verdict};

/// Who vouches for a request's originator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(in crate::endpoint) enum Vouched {
    /// Authentication is off: the operator vouches for every request.
    Off,
    /// A trusted host sent it (it authenticated the user and asserts the identity).
    Trusted,
    /// Digest authentication in this realm (the first field) as this user (the second).
    Realm(String, String),
}

impl<A: Application> Endpoint<A> {
    /// Authenticates `msg` when authentication is on and its source is not trusted. When
    /// `expected_user` is given (the REGISTER's To user: the registrar is no spec's, so no
    /// rule reads its authenticated user; the user a subscription was granted to, for its
    /// refresh or unsubscribe), the authenticated user must be it, else 403; for
    /// a request the machines decide on (`None`), whom it may speak for is the spec's rule
    /// on `request.authenticated_user` (INVITE, MESSAGE) or
    /// `subscription.authenticated_user` (a SUBSCRIBE to a focus). `Some(who vouches)` lets the request go
    /// on; `None` means it was answered (401 challenge or 403).
    pub(in crate::endpoint) fn authenticate(
        &mut self,
        now: Instant,
        peer: Peer,
        msg: &Message,
        key: &TsxKey,
        expected_user: Option<&str>,
    ) -> Option<Vouched> {
        let Some(verifier) = self.cfg.auth.clone() else {
            return Some(Vouched::Off);
        };
        if self.cfg.trusted_hosts.contains(&peer.addr.ip()) {
            return Some(Vouched::Trusted);
        }
        let method = msg
            .method()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default();
        let creds = msg
            .headers()
            .filter(|h| {
                h.name_str.eq_ignore_ascii_case("Authorization")
                    || h.name_str.eq_ignore_ascii_case("Proxy-Authorization")
            })
            .filter_map(|h| Credentials::parse(h.value).ok())
            .find(|c| c.realm == verifier.realm());
        let verdict = match &creds {
            None => Verdict::Challenge {
                stale: false,
                same_nonce: false,
                why: "no credentials for this realm",
            },
            Some(c) => verifier.verify(c, &method, now, |u, r| self.app.credentials(u, r)),
        };
        match verdict {
            Verdict::Authenticated {
                username,
                algorithm,
            } if expected_user.is_none_or(|u| u == username) => {
                tracing_log(
                    "auth",
                    &format!(
                        "{method} from {}: authenticated as {username:?} ({})",
                        peer.addr,
                        algorithm.as_str()
                    ),
                );
                Some(Vouched::Realm(verifier.realm().to_owned(), username))
            }
            Verdict::Authenticated { username, .. } => {
                self.stats.rejected += 1;
                tracing_log(
                    "auth",
                    &format!(
                        "{method} from {}: authenticated as {username:?} but speaks for {:?}",
                        peer.addr,
                        expected_user.unwrap_or_default()
                    ),
                );
                let w = warning(
                    &self.agent(),
                    "the authenticated user is not the user this request speaks for",
                );
                self.reply_simple(now, key, msg, 403, &[("Warning", w)]);
                None
            }
            Verdict::Challenge {
                stale,
                same_nonce,
                why,
            } => {
                self.stats.challenged += 1;
                tracing_log(
                    "auth",
                    &format!("{method} from {}: challenged ({why})", peer.addr),
                );
                let nonce = match creds {
                    Some(c) if same_nonce => c.nonce,
                    _ => verifier.nonce(now, self.random_bytes::<8>()),
                };
                let extra: Vec<(&str, String)> = verifier
                    .challenges(&nonce, stale)
                    .into_iter()
                    .map(|v| ("WWW-Authenticate", v))
                    .collect();
                self.reply_simple(now, key, msg, 401, &extra);
                None
            }
        }
    }
}

//! HTTP Digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760), sans-IO.
//!
//! What the server does with it:
//! - it challenges with two `WWW-Authenticate` values, SHA-256 first (RFC 8760 §2.4: the
//!   preferred algorithm first) and MD5 for clients that know nothing else, both with
//!   `qop="auth"`;
//! - it verifies a response against a stored HA1 (`H(username:realm:password)`), so the
//!   server never holds a password;
//! - its nonces need no table: each carries its issue time and a random part, authenticated
//!   by an HMAC-SHA-256 under a per-process secret, so any nonce the server did not mint is
//!   refused, and one older than the configured lifetime is refused with `stale=true`
//!   (RFC 7616 §3.3), which lets the client retry with the new nonce without asking for a
//!   password;
//! - replay protection: the highest `nc` seen for each nonce is kept, and a request whose
//!   `nc` is not higher is refused (RFC 7616 §3.3, §5.12). The table is bounded; entries go
//!   when their nonce expires, and when it is full the oldest entry goes first; a nonce
//!   issued no later than an evicted one and not in the table is then refused (the client
//!   gets a fresh challenge), so eviction never lets a replay through.
//!
//! Nothing here reads a clock: times are `Instant`s given by the caller, encoded in a nonce
//! as seconds since the verifier's epoch (a per-process value, like the secret).

use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A digest algorithm the server offers and accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5` (RFC 2617; kept for old clients, RFC 8760 §2.4).
    Md5,
    /// `SHA-256` (RFC 7616, RFC 8760).
    Sha256,
}

impl Algorithm {
    /// The token used in the `algorithm` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// The algorithm named by `token` (case-insensitive); the `-sess` variants and anything
    /// else are not offered, so they are `None`.
    pub fn from_token(token: &str) -> Option<Algorithm> {
        if token.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if token.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    /// Lower-case hex of the hash of `data`.
    pub fn hex(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 => hex(&Md5::digest(data)),
            Algorithm::Sha256 => hex(&Sha256::digest(data)),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `HA1 = H(username ":" realm ":" password)` in lower-case hex (RFC 7616 §3.4.2), the value
/// a user store keeps instead of the password.
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    alg.hex(format!("{username}:{realm}:{password}").as_bytes())
}

/// The stored secrets of one user in one realm: one HA1 per algorithm. A missing one
/// means that algorithm cannot be used for this user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredHa1 {
    /// `H(user:realm:password)` with MD5, lower-case hex.
    pub md5: Option<String>,
    /// `H(user:realm:password)` with SHA-256, lower-case hex.
    pub sha256: Option<String>,
}

impl StoredHa1 {
    /// Both HA1 values of a password (what `user add` stores).
    pub fn from_password(username: &str, realm: &str, password: &str) -> StoredHa1 {
        StoredHa1 {
            md5: Some(ha1(Algorithm::Md5, username, realm, password)),
            sha256: Some(ha1(Algorithm::Sha256, username, realm, password)),
        }
    }

    /// The HA1 for `alg`, when stored.
    pub fn get(&self, alg: Algorithm) -> Option<&str> {
        match alg {
            Algorithm::Md5 => self.md5.as_deref(),
            Algorithm::Sha256 => self.sha256.as_deref(),
        }
    }
}

/// The `response` value for `qop=auth` (RFC 7616 §3.4.1):
/// `H(HA1:nonce:nc:cnonce:qop:H(method:uri))`.
#[allow(clippy::too_many_arguments)]
pub fn response(
    alg: Algorithm,
    ha1: &str,
    nonce: &str,
    nc: &str,
    cnonce: &str,
    qop: &str,
    method: &str,
    uri: &str,
) -> String {
    let ha2 = alg.hex(format!("{method}:{uri}").as_bytes());
    alg.hex(format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}").as_bytes())
}

/// Why an `Authorization` value could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The scheme is not `Digest`.
    #[error("not a Digest credential")]
    Scheme,
    /// The parameter list is malformed.
    #[error("malformed credentials: {0}")]
    Syntax(&'static str),
    /// A parameter the server needs is missing.
    #[error("missing parameter {0}")]
    Missing(&'static str),
}

/// The parameters of one `Authorization` / `Proxy-Authorization` value (RFC 7616 §3.4).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    /// `username`.
    pub username: String,
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `uri` (the digest-uri).
    pub uri: String,
    /// `response`.
    pub response: String,
    /// `algorithm` as written (absent means MD5, RFC 7616 §3.4).
    pub algorithm: Option<String>,
    /// `cnonce`.
    pub cnonce: Option<String>,
    /// `qop`.
    pub qop: Option<String>,
    /// `nc` as written (8 hex digits).
    pub nc: Option<String>,
    /// `opaque`.
    pub opaque: Option<String>,
    /// `userhash=true` (RFC 7616 §3.4.4).
    pub userhash: bool,
}

impl Credentials {
    /// Parses a `Digest` credentials value.
    pub fn parse(value: &str) -> Result<Credentials, ParseError> {
        let value = value.trim();
        let (scheme, rest) = value
            .split_once(|c: char| c.is_ascii_whitespace())
            .ok_or(ParseError::Scheme)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(ParseError::Scheme);
        }
        let mut c = Credentials::default();
        let (mut username, mut realm, mut nonce, mut uri, mut response) =
            (None, None, None, None, None);
        for (name, val) in auth_params(rest)? {
            let slot = match name.to_ascii_lowercase().as_str() {
                "username" => &mut username,
                "realm" => &mut realm,
                "nonce" => &mut nonce,
                "uri" => &mut uri,
                "response" => &mut response,
                "algorithm" => &mut c.algorithm,
                "cnonce" => &mut c.cnonce,
                "qop" => &mut c.qop,
                "nc" => &mut c.nc,
                "opaque" => &mut c.opaque,
                "userhash" => {
                    c.userhash = val.eq_ignore_ascii_case("true");
                    continue;
                }
                // Unknown parameters are ignored (RFC 7616 §3.4).
                _ => continue,
            };
            if slot.is_some() {
                return Err(ParseError::Syntax("a parameter appears twice"));
            }
            *slot = Some(val);
        }
        c.username = username.ok_or(ParseError::Missing("username"))?;
        c.realm = realm.ok_or(ParseError::Missing("realm"))?;
        c.nonce = nonce.ok_or(ParseError::Missing("nonce"))?;
        c.uri = uri.ok_or(ParseError::Missing("uri"))?;
        c.response = response.ok_or(ParseError::Missing("response"))?;
        Ok(c)
    }
}

/// Splits `name=value, name="quoted"` pairs, unquoting quoted strings (with `\` escapes).
fn auth_params(s: &str) -> Result<Vec<(String, String)>, ParseError> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars
            .peek()
            .is_some_and(|c| c.is_ascii_whitespace() || *c == ',')
        {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_ascii_whitespace() {
                break;
            }
            if !(c.is_ascii_alphanumeric() || "-_.!%*+`'~".contains(c)) {
                return Err(ParseError::Syntax("bad parameter name"));
            }
            name.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        if name.is_empty() || chars.next() != Some('=') {
            return Err(ParseError::Syntax("expected name=value"));
        }
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(ParseError::Syntax("unterminated quoted string")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(ParseError::Syntax("unterminated quoted string")),
                    },
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' || c.is_ascii_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None | Some(',') => {}
            Some(_) => return Err(ParseError::Syntax("expected a comma between parameters")),
        }
        out.push((name, value));
    }
}

/// A `quoted-string` for a challenge parameter.
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// The verdict on a request's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The credentials are right: `username` in the verifier's realm.
    Authenticated {
        /// The authenticated user.
        username: String,
        /// The algorithm the client answered with.
        algorithm: Algorithm,
    },
    /// Challenge (again). `stale` is true when only the nonce was too old, so the client
    /// may retry with the new nonce without asking the user (RFC 7616 §3.3).
    Challenge {
        /// Whether to send `stale=true`.
        stale: bool,
        /// Challenge again with the nonce the client used (it is fresh and ours, but the
        /// answer was wrong): a client that sees the nonce it already answered knows its
        /// credentials are wrong and stops, where a fresh nonce would invite it to try the
        /// same password again (PJSIP 2.15 resends a MESSAGE thousands of times a second
        /// on fresh nonces).
        same_nonce: bool,
        /// Why, for the log (never sent: it would help a guesser).
        why: &'static str,
    },
}

/// State of a nonce presented by a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceState {
    /// Minted by this process and not expired; issued at the given offset from the epoch.
    Fresh,
    /// Minted by this process but older than the lifetime.
    Stale,
    /// Not minted by this process (forged, mangled, or from before a restart).
    Invalid,
}

/// Most nonces whose highest `nc` is remembered at once.
pub const DEFAULT_MAX_TRACKED_NONCES: usize = 100_000;
/// Default nonce lifetime.
pub const DEFAULT_NONCE_LIFETIME: Duration = Duration::from_secs(300);

/// Highest `nc` per nonce, with eviction by issue time.
#[derive(Default)]
struct Replay {
    /// nonce → (issue second, highest nc).
    seen: HashMap<String, (u64, u32)>,
    /// (issue second, nonce), for eviction in age order.
    by_age: BTreeMap<(u64, String), ()>,
    /// The newest issue second of an entry evicted for room while still live: an unknown
    /// nonce issued at or before it may be one of those, so it is refused.
    evicted_up_to: Option<u64>,
}

/// Mints and checks nonces and verifies digest responses for one realm. Clones share the
/// secret and the replay table, so every worker of a server accepts the others' nonces.
#[derive(Clone)]
pub struct Verifier {
    realm: String,
    secret: Arc<[u8; 32]>,
    epoch: Instant,
    lifetime: Duration,
    max_tracked: usize,
    algorithms: Vec<Algorithm>,
    replay: Arc<Mutex<Replay>>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        f.debug_struct("Verifier")
            .field("realm", &self.realm)
            .field("lifetime", &self.lifetime)
            .field("max_tracked", &self.max_tracked)
            .finish_non_exhaustive()
    }
}

type HmacSha256 = Hmac<Sha256>;

impl Verifier {
    /// A verifier for `realm` whose nonces are authenticated with `secret` (per process,
    /// random) and count their age from `epoch`.
    pub fn new(realm: &str, secret: [u8; 32], epoch: Instant) -> Verifier {
        Verifier {
            realm: realm.to_owned(),
            secret: Arc::new(secret),
            epoch,
            lifetime: DEFAULT_NONCE_LIFETIME,
            max_tracked: DEFAULT_MAX_TRACKED_NONCES,
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            replay: Arc::new(Mutex::new(Replay::default())),
        }
    }

    /// Sets how long a nonce is accepted.
    pub fn with_lifetime(mut self, lifetime: Duration) -> Verifier {
        self.lifetime = lifetime;
        self
    }

    /// Sets how many nonces' `nc` are tracked at most.
    pub fn with_max_tracked(mut self, n: usize) -> Verifier {
        self.max_tracked = n.max(1);
        self
    }

    /// Sets the algorithms offered, most preferred first (default SHA-256, MD5). Only these
    /// are accepted. Some clients read only the first challenge (SIPp 3.6 does, and knows
    /// only MD5), so a deployment with such clients lists MD5 first or alone.
    pub fn with_algorithms(mut self, algorithms: Vec<Algorithm>) -> Verifier {
        if !algorithms.is_empty() {
            self.algorithms = algorithms;
        }
        self
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The nonce lifetime.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs()
    }

    fn mac(&self, ts: u64, rand: &[u8; 8]) -> [u8; 16] {
        // HMAC takes a key of any length, so this cannot fail.
        let mut m = <HmacSha256 as Mac>::new_from_slice(self.secret.as_slice())
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        m.update(&ts.to_be_bytes());
        m.update(rand);
        let full = m.finalize().into_bytes();
        let mut out = [0u8; 16];
        for (o, b) in out.iter_mut().zip(full.iter()) {
            *o = *b;
        }
        out
    }

    /// A new nonce issued at `now`; `rand` makes nonces issued in the same second differ.
    pub fn nonce(&self, now: Instant, rand: [u8; 8]) -> String {
        let ts = self.second(now);
        let mut raw = Vec::with_capacity(32);
        raw.extend_from_slice(&ts.to_be_bytes());
        raw.extend_from_slice(&rand);
        raw.extend_from_slice(&self.mac(ts, &rand));
        hex(&raw)
    }

    /// Whether `nonce` was minted here, and whether it is still fresh at `now`.
    pub fn check_nonce(&self, nonce: &str, now: Instant) -> NonceState {
        match self.nonce_time(nonce) {
            None => NonceState::Invalid,
            Some(ts) if self.second(now).saturating_sub(ts) >= self.lifetime.as_secs() => {
                NonceState::Stale
            }
            Some(_) => NonceState::Fresh,
        }
    }

    /// The issue second of a nonce minted here.
    fn nonce_time(&self, nonce: &str) -> Option<u64> {
        if nonce.len() != 64 {
            return None;
        }
        let mut raw = [0u8; 32];
        for (i, pair) in nonce.as_bytes().chunks(2).enumerate() {
            let s = std::str::from_utf8(pair).ok()?;
            *raw.get_mut(i)? = u8::from_str_radix(s, 16).ok()?;
        }
        let (ts, rest) = raw.split_at(8);
        let (rand, mac) = rest.split_at(8);
        let ts = u64::from_be_bytes(ts.try_into().ok()?);
        let rand: [u8; 8] = rand.try_into().ok()?;
        let expected = self.mac(ts, &rand);
        constant_time_eq(&expected, mac).then_some(ts)
    }

    /// The challenge header values for a new nonce, one per algorithm in order of preference
    /// (RFC 8760 §2.4: SHA-256 first, then MD5, by default), each with `qop="auth"`, and
    /// `stale=true` when asked.
    pub fn challenges(&self, nonce: &str, stale: bool) -> Vec<String> {
        self.algorithms
            .iter()
            .copied()
            .map(|alg| {
                let mut v = format!(
                    "Digest realm={}, nonce={}, algorithm={}, qop=\"auth\"",
                    quote(&self.realm),
                    quote(nonce),
                    alg.as_str()
                );
                if stale {
                    v.push_str(", stale=true");
                }
                v
            })
            .collect()
    }

    /// Verifies `creds` for a request of `method` at `now`. `lookup` gives the stored HA1
    /// values of a user in this realm. A right answer also records its `nc`, so the same
    /// credentials are refused next time.
    pub fn verify(
        &self,
        creds: &Credentials,
        method: &str,
        now: Instant,
        lookup: impl FnOnce(&str, &str) -> Option<StoredHa1>,
    ) -> Verdict {
        let challenge = |why| Verdict::Challenge {
            stale: false,
            same_nonce: false,
            why,
        };
        // A wrong answer to a fresh nonce of ours: the same challenge again.
        let wrong = |why| Verdict::Challenge {
            stale: false,
            same_nonce: true,
            why,
        };
        if creds.realm != self.realm {
            return challenge("credentials for another realm");
        }
        if creds.userhash {
            return challenge("userhash is not offered");
        }
        let alg = match creds.algorithm.as_deref() {
            None => Algorithm::Md5,
            Some(a) => match Algorithm::from_token(a) {
                Some(a) => a,
                None => return challenge("algorithm not offered"),
            },
        };
        if !self.algorithms.contains(&alg) {
            return challenge("algorithm not offered");
        }
        // Only qop=auth is offered; a response without qop (RFC 2069) is not accepted,
        // since it has no nc and so no replay protection.
        if !creds
            .qop
            .as_deref()
            .is_some_and(|q| q.eq_ignore_ascii_case("auth"))
        {
            return challenge("qop must be auth");
        }
        let (Some(cnonce), Some(nc_text)) = (creds.cnonce.as_deref(), creds.nc.as_deref()) else {
            return challenge("cnonce and nc are required with qop");
        };
        let Some(nc) = (nc_text.len() == 8)
            .then(|| u32::from_str_radix(nc_text, 16).ok())
            .flatten()
        else {
            return challenge("malformed nc");
        };
        let Some(issued) = self.nonce_time(&creds.nonce) else {
            return challenge("unknown nonce");
        };
        let stale = self.second(now).saturating_sub(issued) >= self.lifetime.as_secs();
        // An unknown user is answered exactly like a wrong password, so a guesser learns
        // nothing about which names exist.
        let refuse = |why| if stale { challenge(why) } else { wrong(why) };
        let Some(stored) = lookup(&creds.username, &self.realm) else {
            return refuse("unknown user");
        };
        let Some(ha1) = stored.get(alg) else {
            return refuse("no HA1 stored for this algorithm");
        };
        let expected = response(
            alg,
            ha1,
            &creds.nonce,
            nc_text,
            cnonce,
            "auth",
            method,
            &creds.uri,
        );
        if !constant_time_eq(
            expected.as_bytes(),
            creds.response.to_ascii_lowercase().as_bytes(),
        ) {
            return refuse("wrong response");
        }
        // The password was right; now the nonce's age and the nc.
        if stale {
            return Verdict::Challenge {
                stale: true,
                same_nonce: false,
                why: "nonce expired",
            };
        }
        if !self.record_nc(&creds.nonce, issued, nc, now) {
            return challenge("nc replayed");
        }
        Verdict::Authenticated {
            username: creds.username.clone(),
            algorithm: alg,
        }
    }

    /// Records `nc` for `nonce`; `false` when it is not above the highest seen (a replay),
    /// or when the nonce's entry may have been evicted for room (it cannot be told from a
    /// replay then, so it is refused and the client gets a fresh nonce).
    fn record_nc(&self, nonce: &str, issued: u64, nc: u32, now: Instant) -> bool {
        let mut r = self.replay.lock().unwrap_or_else(|e| e.into_inner());
        // Expired nonces can never pass again (they are stale), so their entries go.
        let oldest_live = self
            .second(now)
            .saturating_sub(self.lifetime.as_secs().saturating_sub(1));
        while let Some((ts, n)) = r
            .by_age
            .first_key_value()
            .map(|((t, n), ())| (*t, n.clone()))
        {
            if ts >= oldest_live {
                break;
            }
            r.by_age.remove(&(ts, n.clone()));
            r.seen.remove(&n);
        }
        if let Some((_, highest)) = r.seen.get_mut(nonce) {
            if nc <= *highest {
                return false;
            }
            *highest = nc;
            return true;
        }
        if r.evicted_up_to.is_some_and(|w| issued <= w) {
            return false;
        }
        while r.seen.len() >= self.max_tracked {
            let Some((ts, n)) = r
                .by_age
                .first_key_value()
                .map(|((t, n), ())| (*t, n.clone()))
            else {
                break;
            };
            r.by_age.remove(&(ts, n.clone()));
            r.seen.remove(&n);
            r.evicted_up_to = Some(r.evicted_up_to.map_or(ts, |w| w.max(ts)));
        }
        r.seen.insert(nonce.to_owned(), (issued, nc));
        r.by_age.insert((issued, nonce.to_owned()), ());
        true
    }

    /// How many nonces are tracked now (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.replay.lock().map(|r| r.seen.len()).unwrap_or(0)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7616 §3.9.1: the example with username "Mufasa", password "Circle of Life".
    /// (The digest-uri there is an HTTP path; the computation is the same for SIP.)
    #[test]
    fn rfc7616_vectors() {
        let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let uri = "/dir/index.html";
        let user = "Mufasa";
        let realm = "http-auth@example.org";
        let pw = "Circle of Life";
        let h = ha1(Algorithm::Md5, user, realm, pw);
        assert_eq!(
            response(
                Algorithm::Md5,
                &h,
                nonce,
                "00000001",
                cnonce,
                "auth",
                "GET",
                uri
            ),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
        let h = ha1(Algorithm::Sha256, user, realm, pw);
        assert_eq!(
            response(
                Algorithm::Sha256,
                &h,
                nonce,
                "00000001",
                cnonce,
                "auth",
                "GET",
                uri
            ),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn parses_credentials() {
        let c = Credentials::parse(
            "Digest username=\"alice\", realm=\"example.com\",\r\n nonce=\"n\\\"1\", \
             uri=\"sip:conference-factory@example.com\", response=\"AB\", algorithm=SHA-256, \
             cnonce=\"c\", qop=auth, nc=00000001, opaque=\"o\", extra=1",
        )
        .unwrap();
        assert_eq!(c.username, "alice");
        assert_eq!(c.nonce, "n\"1");
        assert_eq!(c.algorithm.as_deref(), Some("SHA-256"));
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(c.nc.as_deref(), Some("00000001"));
        assert_eq!(c.opaque.as_deref(), Some("o"));
        assert_eq!(Credentials::parse("Basic abc"), Err(ParseError::Scheme));
        assert_eq!(
            Credentials::parse("Digest username=\"a\""),
            Err(ParseError::Missing("realm"))
        );
        assert!(Credentials::parse("Digest username=\"a").is_err());
        assert!(Credentials::parse("Digest username=a username=b").is_err());
        assert!(Credentials::parse("Digest username=a, username=b, realm=r").is_err());
        // Arbitrary bytes never panic.
        for s in [
            "Digest =",
            "Digest a=\"\\",
            "Digest ,,,",
            "Digest é=ü",
            "Digest a=b c",
        ] {
            let _ = Credentials::parse(s);
        }
    }

    fn epoch() -> Instant {
        #[allow(clippy::disallowed_methods)]
        Instant::now()
    }

    fn answer(v: &Verifier, nonce: &str, alg: Algorithm, pw: &str, nc: &str) -> Credentials {
        let uri = "sip:example.com";
        let h = ha1(alg, "alice", v.realm(), pw);
        Credentials {
            username: "alice".into(),
            realm: v.realm().into(),
            nonce: nonce.into(),
            uri: uri.into(),
            response: response(alg, &h, nonce, nc, "cn", "auth", "REGISTER", uri),
            algorithm: Some(alg.as_str().into()),
            cnonce: Some("cn".into()),
            qop: Some("auth".into()),
            nc: Some(nc.into()),
            opaque: None,
            userhash: false,
        }
    }

    #[test]
    fn verify_right_wrong_stale_replay() {
        let t0 = epoch();
        let v = Verifier::new("example.com", [7; 32], t0).with_lifetime(Duration::from_secs(300));
        let users = |u: &str, r: &str| (u == "alice").then(|| StoredHa1::from_password(u, r, "pw"));
        let n = v.nonce(t0, [1; 8]);
        assert_eq!(v.check_nonce(&n, t0), NonceState::Fresh);
        for alg in [Algorithm::Sha256, Algorithm::Md5] {
            let n = v.nonce(t0, [alg as u8; 8]);
            let ok = answer(&v, &n, alg, "pw", "00000001");
            assert_eq!(
                v.verify(&ok, "REGISTER", t0, users),
                Verdict::Authenticated {
                    username: "alice".into(),
                    algorithm: alg,
                }
            );
            // The same nc again is a replay.
            assert!(matches!(
                v.verify(&ok, "REGISTER", t0, users),
                Verdict::Challenge { stale: false, .. }
            ));
            // A higher nc on the same nonce passes.
            let next = answer(&v, &n, alg, "pw", "00000002");
            assert!(matches!(
                v.verify(&next, "REGISTER", t0, users),
                Verdict::Authenticated { .. }
            ));
            // The wrong password: the same nonce again, so the client knows it failed.
            let bad = answer(&v, &n, alg, "wrong", "00000003");
            assert!(matches!(
                v.verify(&bad, "REGISTER", t0, users),
                Verdict::Challenge {
                    stale: false,
                    same_nonce: true,
                    ..
                }
            ));
            // The method is covered by the response.
            let ok3 = answer(&v, &n, alg, "pw", "00000003");
            assert!(matches!(
                v.verify(&ok3, "INVITE", t0, users),
                Verdict::Challenge { stale: false, .. }
            ));
        }
        // Stale: right password, old nonce.
        let later = t0 + Duration::from_secs(300);
        assert_eq!(v.check_nonce(&n, later), NonceState::Stale);
        let old = answer(&v, &n, Algorithm::Sha256, "pw", "00000001");
        assert!(matches!(
            v.verify(&old, "REGISTER", later, users),
            Verdict::Challenge { stale: true, .. }
        ));
        // A forged nonce (another secret) and a mangled one.
        let other = Verifier::new("example.com", [8; 32], t0);
        let forged = other.nonce(t0, [1; 8]);
        assert_eq!(v.check_nonce(&forged, t0), NonceState::Invalid);
        let f = answer(&v, &forged, Algorithm::Sha256, "pw", "00000001");
        assert!(matches!(
            v.verify(&f, "REGISTER", t0, users),
            Verdict::Challenge { stale: false, .. }
        ));
        assert_eq!(v.check_nonce("zz", t0), NonceState::Invalid);
        assert_eq!(v.check_nonce(&"é".repeat(32), t0), NonceState::Invalid);
        // Unknown user, other realm, missing qop, unknown algorithm.
        let mut c = answer(&v, &n, Algorithm::Md5, "pw", "00000009");
        c.username = "mallory".into();
        assert!(matches!(
            v.verify(&c, "REGISTER", t0, users),
            Verdict::Challenge { .. }
        ));
        let mut c = answer(&v, &n, Algorithm::Md5, "pw", "00000009");
        c.realm = "other".into();
        assert!(matches!(
            v.verify(&c, "REGISTER", t0, users),
            Verdict::Challenge { .. }
        ));
        let mut c = answer(&v, &n, Algorithm::Md5, "pw", "00000009");
        c.qop = None;
        assert!(matches!(
            v.verify(&c, "REGISTER", t0, users),
            Verdict::Challenge { .. }
        ));
        let mut c = answer(&v, &n, Algorithm::Md5, "pw", "00000009");
        c.algorithm = Some("MD5-sess".into());
        assert!(matches!(
            v.verify(&c, "REGISTER", t0, users),
            Verdict::Challenge { .. }
        ));
        // An absent algorithm means MD5.
        let mut c = answer(&v, &n, Algorithm::Md5, "pw", "0000000a");
        c.algorithm = None;
        assert!(matches!(
            v.verify(&c, "REGISTER", t0, users),
            Verdict::Authenticated { .. }
        ));
    }

    #[test]
    fn replay_table_is_bounded_and_evicts_by_age() {
        let t0 = epoch();
        let v = Verifier::new("r", [1; 32], t0)
            .with_lifetime(Duration::from_secs(10))
            .with_max_tracked(3);
        let users = |u: &str, r: &str| Some(StoredHa1::from_password(u, r, "pw"));
        let mut nonces = Vec::new();
        for i in 0..5u8 {
            let at = t0 + Duration::from_secs(u64::from(i));
            let n = v.nonce(at, [i; 8]);
            let c = answer(&v, &n, Algorithm::Sha256, "pw", "00000001");
            assert!(matches!(
                v.verify(&c, "REGISTER", at, users),
                Verdict::Authenticated { .. }
            ));
            assert!(v.tracked() <= 3);
            nonces.push(n);
        }
        // The oldest entries were evicted for room: replaying one is still refused.
        let replay = answer(&v, &nonces[0], Algorithm::Sha256, "pw", "00000001");
        assert!(matches!(
            v.verify(&replay, "REGISTER", t0 + Duration::from_secs(4), users),
            Verdict::Challenge { .. }
        ));
        // The newest ones are still tracked.
        let again = answer(&v, &nonces[4], Algorithm::Sha256, "pw", "00000001");
        assert!(matches!(
            v.verify(&again, "REGISTER", t0 + Duration::from_secs(4), users),
            Verdict::Challenge { .. }
        ));
        // Once every nonce expired, the table empties on the next success.
        let late = t0 + Duration::from_secs(100);
        let n = v.nonce(late, [9; 8]);
        let c = answer(&v, &n, Algorithm::Sha256, "pw", "00000001");
        assert!(matches!(
            v.verify(&c, "REGISTER", late, users),
            Verdict::Authenticated { .. }
        ));
        assert_eq!(v.tracked(), 1);
    }

    #[test]
    fn challenges_offer_sha256_first() {
        let v = Verifier::new("example.com", [0; 32], epoch());
        let c = v.challenges("abc", true);
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[0],
            "Digest realm=\"example.com\", nonce=\"abc\", algorithm=SHA-256, qop=\"auth\", stale=true"
        );
        assert!(c[1].contains("algorithm=MD5"));
        let md5_only = v.clone().with_algorithms(vec![Algorithm::Md5]);
        assert_eq!(md5_only.challenges("abc", false).len(), 1);
        let t0 = epoch();
        let n = md5_only.nonce(t0, [3; 8]);
        let users = |u: &str, r: &str| Some(StoredHa1::from_password(u, r, "pw"));
        let c = answer(&md5_only, &n, Algorithm::Sha256, "pw", "00000001");
        assert!(matches!(
            md5_only.verify(&c, "REGISTER", t0, users),
            Verdict::Challenge { .. }
        ));
    }
}

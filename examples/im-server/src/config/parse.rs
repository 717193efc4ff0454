//! Parsers shared by the TOML file and the command-line flags, so both accept the same
//! spellings.

use super::*;

pub(super) fn toml_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Parses a socket address, defaulting the port when only an IP is given
/// (`127.0.0.1`, `127.0.0.1:5070`, `::1`, `[::1]:5070`).
pub(super) fn parse_addr(s: &str, default_port: u16) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, default_port));
    }
    Err(format!(
        "expected IP or IP:PORT (IPv6 as [addr]:port), e.g. 127.0.0.1:{default_port}; host \
         names are not resolved here"
    ))
}

/// Parses a SIP address (port 5060 when omitted).
pub fn parse_sip_addr(s: &str) -> Result<SocketAddr, String> {
    parse_addr(s, DEFAULT_SIP_PORT)
}

/// Parses a SIP-over-TLS listen address; a bare IP gets port 5061.
pub fn parse_sips_addr(s: &str) -> Result<SocketAddr, String> {
    parse_addr(s, DEFAULT_SIPS_PORT)
}

/// Parses an MSRP address (port 2855 when omitted).
pub fn parse_msrp_addr(s: &str) -> Result<SocketAddr, String> {
    parse_addr(s, DEFAULT_MSRP_PORT)
}

pub(super) fn parse_ip(s: &str) -> Result<IpAddr, String> {
    s.trim()
        .parse()
        .map_err(|_| "expected an IPv4 or IPv6 address".to_owned())
}

pub(super) fn parse_algorithm(s: &str) -> Result<Algorithm, String> {
    Algorithm::from_token(s).ok_or_else(|| "must be SHA-256 or MD5".to_owned())
}

pub(super) fn parse_domain(s: &str) -> Result<String, String> {
    match split_hostport(s.trim()) {
        Ok((host, None)) => Ok(host),
        Ok((_, Some(_))) => Err("a domain has no port".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

pub(super) fn parse_host(s: &str) -> Result<String, String> {
    let s = s.trim();
    // A bare IPv6 address becomes a bracketed reference, the form URIs and Via carry.
    if let Ok(std::net::IpAddr::V6(a)) = s.parse::<IpAddr>() {
        return Ok(format!("[{a}]"));
    }
    match split_hostport(s) {
        Ok((host, None)) => Ok(host),
        Ok((_, Some(_))) => Err("give the host only; advertised ports are the bound ones".into()),
        Err(e) => Err(e.to_string()),
    }
}

pub(super) fn parse_sip_uri(s: &str) -> Result<Uri, String> {
    let u = parse_uri(s).map_err(|e| e.to_string())?;
    if u.scheme() != "sip" && u.scheme() != "sips" {
        return Err("must be a sip: or sips: URI".to_owned());
    }
    if u.user().is_empty() {
        return Err("must have a user part (sip:name@domain)".to_owned());
    }
    Ok(u)
}

pub(super) fn parse_media_type(s: &str) -> Result<String, String> {
    let t = s.trim().to_ascii_lowercase();
    let ok_token = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"!#$&-^_.+*".contains(&c))
    };
    match t.split_once('/') {
        Some((a, b)) if ok_token(a) && ok_token(b) => Ok(t),
        _ if t == "*" => Ok(t),
        _ => Err("expected a media type like text/plain (or *)".to_owned()),
    }
}

pub(super) fn parse_log_filter(s: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(s)
        .map(|_| s.to_owned())
        .map_err(|e| format!("not a log filter: {e}"))
}

pub(super) fn parse_count(s: &str) -> Result<u64, String> {
    parse_size(s)
}

/// Parses a size: an integer with an optional unit `K`/`KiB` (1024) or `M`/`MiB` (1024²),
/// also `KB`/`MB` (taken as the binary units too; nobody means 1000 here).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = s.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| "expected a number, optionally with K/KiB/M/MiB".to_owned())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        other => return Err(format!("unknown unit {other:?} (use K, KiB, M or MiB)")),
    };
    n.checked_mul(mult).ok_or_else(|| "too large".to_owned())
}

/// Parses a duration: an integer with unit `ms`, `s`, `m` or `h` (`500ms`, `4s`, `2m`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = s.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| "expected a number with a unit: 500ms, 4s, 2m, 1h".to_owned())?;
    let d = match unit.trim() {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => n.checked_mul(60).map(Duration::from_secs),
        "h" => n.checked_mul(3600).map(Duration::from_secs),
        "" => return Err("a unit is required: ms, s, m or h".to_owned()),
        other => return Err(format!("unknown unit {other:?} (use ms, s, m or h)")),
    };
    d.ok_or_else(|| "too large".to_owned())
}

/// Formats a duration the way [`parse_duration`] reads it.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Parses an HTTP listen address (`IP:PORT`).
pub fn parse_http_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>()
        .map_err(|e| format!("not an IP:PORT address ({e})"))
}

/// Parses the PostgreSQL store URL (`postgres://` or `postgresql://`; the rest is checked
/// when the server connects).
pub fn parse_store_url(s: &str) -> Result<String, String> {
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        Ok(s.to_owned())
    } else {
        Err("expected a postgres:// or postgresql:// URL".to_owned())
    }
}

/// Parses an XCAP root path: empty or `/`-led, without a trailing `/`, query or `~~`.
pub fn parse_xcap_root(s: &str) -> Result<String, String> {
    let t = s.trim_end_matches('/');
    if !t.is_empty() && !t.starts_with('/') {
        return Err("must be a path starting with /".to_owned());
    }
    if t.contains(['?', '#', '~', ' ']) {
        return Err("must be a plain path (no ?, #, ~ or spaces)".to_owned());
    }
    Ok(t.to_owned())
}

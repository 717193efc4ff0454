//! [`Selection::apply`] against the plain rule it implements.

use super::*;

/// The rule as `Selection` documents it, comparing each item with every one kept.
fn pairwise(s: Selection, items: &[Uri], originator: &Uri) -> Vec<Uri> {
    let mut out: Vec<Uri> = Vec::new();
    for u in items {
        if s.without_originator && u.same_identity(originator) {
            continue;
        }
        if s.distinct && out.iter().any(|k| k.same_identity(u)) {
            continue;
        }
        out.push(u.clone());
    }
    out
}

fn uri(scheme: &str, user: &str, host: &str, port: Option<u16>, tag: &str) -> Uri {
    let raw = format!("{scheme}:{user}@{host};x={tag}");
    Uri::new(UriParts {
        scheme,
        user,
        host,
        port,
        params: &[("x", Some(tag))],
        raw: &raw,
    })
}

#[test]
fn distinct_lists_keep_what_the_pairwise_rule_keeps() {
    // Identities that differ only where `same_identity` ignores it (the case of host and
    // scheme, parameters) and ones that differ where it does not (the user's case, the port,
    // a host of the same length, so that their digests may meet).
    let users = ["alice", "Alice", "bob", "carol", "dave", "erin"];
    let hosts = [
        "example.com",
        "EXAMPLE.com",
        "examplf.com",
        "example.org",
        "h",
    ];
    let schemes = ["sip", "SIP", "sips", "tel"];
    let ports = [None, Some(5060), Some(5070)];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let mut hashed_runs = 0;
    for round in 0..3_000 {
        let len = next(40);
        let items: Vec<Uri> = (0..len)
            .map(|i| {
                uri(
                    schemes[next(schemes.len())],
                    users[next(users.len())],
                    hosts[next(hosts.len())],
                    ports[next(ports.len())],
                    &i.to_string(),
                )
            })
            .collect();
        let originator = uri("sip", users[next(users.len())], "example.com", None, "o");
        for s in [
            Selection {
                without_originator: false,
                distinct: true,
            },
            Selection {
                without_originator: true,
                distinct: true,
            },
            Selection {
                without_originator: true,
                distinct: false,
            },
        ] {
            let want = pairwise(s, &items, &originator);
            let got = s.apply(items.clone(), &originator, |u| u);
            // `Uri` equality ignores the raw text; the raw text tells which item was kept.
            let raws = |v: &[Uri]| v.iter().map(|u| u.raw().to_owned()).collect::<Vec<_>>();
            assert_eq!(raws(&got), raws(&want), "round {round}, {s:?}");
        }
        hashed_runs += usize::from(len > 6);
    }
    assert!(hashed_runs > 2_000, "the long lists were not tried");
}

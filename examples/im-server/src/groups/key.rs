//! The group indexes' key: a group URI's identity, looked up with the request's [`Uri`]
//! itself.
//!
//! The index was keyed by `(scheme, user, host, port)` with scheme and host lower-cased, so
//! every look-up built that tuple: three `String`s made and freed, and each group session
//! looks groups up ~9 times (the spec's `directory.…` reads and the members to invite,
//! each trying the managed groups, then the folder's). Here the key keeps the group's URI,
//! and a look-up borrows the asked URI as a `dyn Identity` that hashes and compares the same
//! four parts in place: no allocation (the usual `Borrow`-to-a-trait-object pattern of
//! `HashMap`, without `unsafe`).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use im_runtime::machine::Uri;

/// Groups by identity. Hashed with foldhash (seeded per map), not SipHash: SipHash was
/// ~760 instructions per look-up of a short URI here, several look-ups per session; the
/// keys come from the group documents, and a look-up never inserts, so a request cannot
/// grow a chain.
pub(crate) type Index<V> = HashMap<Key, V, foldhash::quality::RandomState>;

/// What [`Uri::same_identity`] compares, as a hashable view.
pub(crate) trait Identity {
    /// The URI whose identity this is.
    fn uri(&self) -> &Uri;
}

impl Identity for Uri {
    fn uri(&self) -> &Uri {
        self
    }
}

/// A group's identity in an index: equal for URIs that [`Uri::same_identity`] calls equal
/// (scheme and host ASCII case-insensitively, user and port exactly; parameters ignored).
#[derive(Clone, Debug)]
pub(crate) struct Key(Uri);

impl Key {
    /// The key of group URI `u`.
    pub(crate) fn of(u: &Uri) -> Key {
        Key(u.clone())
    }
}

/// How a look-up borrows `u`: `index.get(lookup(u))`.
pub(crate) fn lookup(u: &Uri) -> &dyn Identity {
    u
}

impl Identity for Key {
    fn uri(&self) -> &Uri {
        &self.0
    }
}

impl<'a> Borrow<dyn Identity + 'a> for Key {
    fn borrow(&self) -> &(dyn Identity + 'a) {
        self
    }
}

/// Feeds `s` ASCII-lower-cased to `h`, a stack chunk at a time: the same bytes as hashing
/// `s.to_ascii_lowercase()`, without making it.
fn write_lower<H: Hasher>(s: &str, h: &mut H) {
    let mut buf = [0u8; 32];
    for chunk in s.as_bytes().chunks(buf.len()) {
        let out = buf.get_mut(..chunk.len()).unwrap_or_default();
        for (o, b) in out.iter_mut().zip(chunk) {
            *o = b.to_ascii_lowercase();
        }
        h.write(out);
    }
    // The length ends the part, as `str`'s own `Hash` ends it with a marker byte, so that
    // ("ab", "c") and ("a", "bc") hash apart.
    h.write_usize(s.len());
}

fn hash_identity<H: Hasher>(u: &Uri, h: &mut H) {
    write_lower(u.scheme(), h);
    u.user().hash(h);
    write_lower(u.host(), h);
    u.port().hash(h);
}

impl Hash for dyn Identity + '_ {
    fn hash<H: Hasher>(&self, h: &mut H) {
        hash_identity(self.uri(), h);
    }
}

impl PartialEq for dyn Identity + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.uri().same_identity(other.uri())
    }
}

impl Eq for dyn Identity + '_ {}

// `Key`'s own `Hash` and `Eq` must agree with the borrowed form's (`Borrow`'s contract).
impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        hash_identity(&self.0, h);
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.0.same_identity(&other.0)
    }
}

impl Eq for Key {}

#[cfg(test)]
mod tests {
    use super::*;
    use im_runtime::machine::UriParts;

    /// A URI of exactly these parts: the parser lower-cases scheme and host, but a `Uri`
    /// made elsewhere may not, and `same_identity` does not rely on it.
    fn uri(scheme: &str, user: &str, host: &str, port: Option<u16>) -> Uri {
        Uri::new(UriParts {
            scheme,
            user,
            host,
            port,
            ..UriParts::default()
        })
    }

    /// The old key: what this one must agree with.
    fn tuple(u: &Uri) -> (String, String, String, Option<u16>) {
        (
            u.scheme().to_ascii_lowercase(),
            u.user().to_owned(),
            u.host().to_ascii_lowercase(),
            u.port(),
        )
    }

    #[test]
    fn looked_up_by_uri_as_the_lower_cased_tuple_was() {
        let long = "a.host.name.longer.than.thirty-two.bytes.example.com";
        let uris = [
            uri("sip", "team", "example.com", None),
            uri("SIP", "team", "EXAMPLE.com", None),
            uri("sip", "Team", "example.com", None),
            uri("sip", "team", "example.com", Some(5060)),
            uri("sip", "team", "example.com", Some(5061)),
            uri("sips", "team", "example.com", None),
            uri("sip", "team", "example.org", None),
            uri("sip", "", "example.com", None),
            uri("sip", "teame", "xample.com", None),
            uri("sip", "group", long, None),
            uri("sip", "group", &long.to_ascii_uppercase(), None),
            crate::uri::parse_uri("sip:team@example.com;transport=tcp").expect("a URI"),
        ];
        let mut by_key = HashMap::new();
        let mut by_tuple = std::collections::HashMap::new();
        for (i, u) in uris.iter().enumerate() {
            by_key.entry(Key::of(u)).or_insert(i);
            by_tuple.entry(tuple(u)).or_insert(i);
        }
        assert_eq!(by_key.len(), by_tuple.len());
        // The index's own map type, with its hasher.
        let mut index = Index::default();
        for (i, u) in uris.iter().enumerate() {
            index.entry(Key::of(u)).or_insert(i);
        }
        for u in &uris {
            let want = by_tuple.get(&tuple(u));
            assert_eq!(by_key.get(lookup(u)), want, "{u:?}");
            assert_eq!(index.get(lookup(u)), want, "{u:?}");
        }
        let nobody = uri("sip", "nobody", "example.com", None);
        assert_eq!(index.get(lookup(&nobody)), None);
    }
}

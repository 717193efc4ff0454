//! [`Rare`]: the parts of [`Facts`](super::Facts) most requests leave at their default.

use super::{BodyFacts, ListFacts, SubscriptionFacts, Uri};
use std::fmt;
use std::ops::{Deref, DerefMut};

/// A part of [`Facts`](super::Facts) that most requests leave at its default
/// ([`Facts::subscriber`](super::Facts::subscriber), `subscription`, `list`, `body`): no
/// allocation and one pointer inline until it is set, where the part itself was 32–56
/// bytes inline in every request's facts and in every session, which keeps its request's
/// facts for its whole life (issue 11 item 4). It reads as the part through `Deref` (so
/// `facts.list.malformed` reads as before; the default when unset), and writing through
/// `DerefMut` sets it. Make one from a value with `From` (`ListFacts { .. }.into()`): a
/// default value stays unset.
pub struct Rare<T>(Option<Box<T>>);

impl<T> Default for Rare<T> {
    fn default() -> Self {
        Rare(None)
    }
}

impl<T: Clone> Clone for Rare<T> {
    fn clone(&self) -> Self {
        Rare(self.0.clone())
    }
}

impl<T> Rare<T> {
    /// Whether it is set (a default part may be set, after a write through `DerefMut`).
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }
}

impl<T: Default + PartialEq> Rare<T> {
    /// Drops the allocation of a part written back to its default.
    pub(crate) fn tidy(&mut self) {
        if self.0.as_deref().is_some_and(|v| *v == T::default()) {
            self.0 = None;
        }
    }
}

macro_rules! rare {
    ($t:ty, $empty:expr) => {
        impl Deref for Rare<$t> {
            type Target = $t;
            fn deref(&self) -> &$t {
                static EMPTY: $t = $empty;
                self.0.as_deref().unwrap_or(&EMPTY)
            }
        }
        impl DerefMut for Rare<$t> {
            fn deref_mut(&mut self) -> &mut $t {
                self.0.get_or_insert_with(Box::default)
            }
        }
        impl From<$t> for Rare<$t> {
            fn from(v: $t) -> Self {
                if v == <$t>::default() {
                    Rare(None)
                } else {
                    Rare(Some(Box::new(v)))
                }
            }
        }
        impl PartialEq for Rare<$t> {
            fn eq(&self, other: &Self) -> bool {
                **self == **other
            }
        }
        impl Eq for Rare<$t> {}
        impl PartialEq<$t> for Rare<$t> {
            fn eq(&self, other: &$t) -> bool {
                **self == *other
            }
        }
        impl fmt::Debug for Rare<$t> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                (**self).fmt(f)
            }
        }
    };
}

rare!(Uri, Uri::EMPTY);
rare!(
    ListFacts,
    ListFacts {
        malformed: false,
        too_large: false,
        error: String::new(),
        unresolved: 0,
    }
);
rare!(
    BodyFacts,
    BodyFacts {
        malformed: false,
        error: String::new(),
    }
);
rare!(
    SubscriptionFacts,
    SubscriptionFacts {
        in_invite_dialog: false,
        over_limit: false,
        error: String::new(),
        authenticated_user: String::new(),
        refresh: false,
        expires: 0,
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_reads_as_the_default_and_a_default_stays_unset() {
        let mut l: Rare<ListFacts> = ListFacts::default().into();
        assert!(!l.is_set());
        assert_eq!(*l, ListFacts::default());
        assert_eq!(l.error, "");
        l.malformed = true;
        assert!(l.is_set() && l.malformed);
        assert_ne!(l, Rare::default());
        l.malformed = false;
        l.tidy();
        assert!(!l.is_set(), "a part written back to its default is dropped");
        assert_eq!(l, Rare::default());
        let u: Rare<Uri> = Uri::EMPTY.into();
        assert!(!u.is_set() && u.raw().is_empty());
        let b: Rare<BodyFacts> = BodyFacts {
            malformed: true,
            error: "x".into(),
        }
        .into();
        assert!(b.is_set() && b.malformed && b.error == "x");
        assert_eq!(format!("{b:?}"), format!("{:?}", *b));
    }
}

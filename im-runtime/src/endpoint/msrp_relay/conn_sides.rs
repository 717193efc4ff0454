//! The sides one MSRP connection carries.

use super::SideKey;

/// The sides one MSRP connection carries: nearly always one (the server's connection to an
/// invitee carries that leg's side alone), kept inline; a connection that several sessions
/// share spills into a vector. A `Vec` took a 16-byte block for the one key of every
/// connection, three per idle group session (issue 11 item 4). Reads as a slice.
#[derive(Clone, Debug)]
pub(super) enum ConnSides {
    /// Exactly one side.
    One(SideKey),
    /// None, or more than one.
    Many(Vec<SideKey>),
}

impl Default for ConnSides {
    fn default() -> ConnSides {
        ConnSides::Many(Vec::new())
    }
}

impl std::ops::Deref for ConnSides {
    type Target = [SideKey];

    fn deref(&self) -> &[SideKey] {
        match self {
            ConnSides::One(k) => std::slice::from_ref(k),
            ConnSides::Many(v) => v,
        }
    }
}

impl ConnSides {
    /// Adds `key` at the end.
    pub(super) fn push(&mut self, key: SideKey) {
        match self {
            ConnSides::Many(v) if v.is_empty() => *self = ConnSides::One(key),
            ConnSides::Many(v) => v.push(key),
            ConnSides::One(first) => *self = ConnSides::Many(vec![*first, key]),
        }
    }

    /// Keeps the sides `keep` selects, in order.
    pub(super) fn retain(&mut self, keep: impl Fn(&SideKey) -> bool) {
        match self {
            ConnSides::One(k) => {
                if !keep(k) {
                    *self = ConnSides::default();
                }
            }
            ConnSides::Many(v) => {
                v.retain(keep);
                if let [k] = v.as_slice() {
                    *self = ConnSides::One(*k);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::session::SessionId;

    #[test]
    fn one_side_is_inline_and_the_list_reads_as_pushed() {
        assert_eq!(
            std::mem::size_of::<ConnSides>(),
            24,
            "no larger than the Vec"
        );
        let k = |s: u64, l: usize| SideKey::leg(SessionId(s), l).expect("fits");
        let mut c = ConnSides::default();
        assert!(c.is_empty());
        c.push(k(1, 0));
        assert!(
            matches!(c, ConnSides::One(_)),
            "one side needs no allocation"
        );
        assert_eq!(&*c, [k(1, 0)]);
        c.push(k(2, 0));
        c.push(SideKey::originator(SessionId(3)));
        assert_eq!(&*c, [k(1, 0), k(2, 0), SideKey::originator(SessionId(3))]);
        assert!(c.contains(&k(2, 0)) && c.get(2).is_some() && c.len() == 3);
        c.retain(|x| *x != k(1, 0));
        assert_eq!(&*c, [k(2, 0), SideKey::originator(SessionId(3))]);
        c.retain(|x| *x == k(2, 0));
        assert!(matches!(c, ConnSides::One(_)));
        assert_eq!(&*c, [k(2, 0)]);
        c.retain(|_| false);
        assert!(c.is_empty());
        c.push(k(4, 1));
        assert_eq!(&*c, [k(4, 1)]);
    }
}

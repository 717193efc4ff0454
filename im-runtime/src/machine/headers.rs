//! [`Headers`]: a request's header lines as the facts keep them.

use std::fmt;

/// Every header of a request as (lower-case full name, value), in order; multi-value
/// headers appear once per line as received ([`Facts::headers`](super::Facts::headers)).
///
/// The names and values sit in one string with their end offsets beside it: two
/// allocations, where a `Vec<(String, String)>` took two per header (about twenty for a
/// usual INVITE), and a group session keeps its request's facts for its whole life (issue
/// 11 item 4). Build one with [`FromIterator`] from any `(name, value)` pairs (names are
/// kept as given: the runtime gives them lower-case) and read it with [`Headers::iter`] or
/// [`Headers::get`].
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Headers {
    /// Each name followed by its value.
    text: Box<str>,
    /// Where each name and each value ends in `text`: two per header.
    ends: Box<[u32]>,
}

impl Headers {
    /// The header lines, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let mut start = 0usize;
        let text = &*self.text;
        self.ends.chunks_exact(2).map(move |e| {
            let (n, v) = match *e {
                [n, v] => (n as usize, v as usize),
                _ => (start, start),
            };
            let name = text.get(start..n).unwrap_or("");
            let value = text.get(n..v).unwrap_or("");
            start = v;
            (name, value)
        })
    }

    /// The value of the first line named `name` (any case; full name), or `None`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// How many lines.
    pub fn len(&self) -> usize {
        self.ends.len() / 2
    }

    /// No lines at all.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Built from `lines`, whose names and values take `text_len` bytes in all, in as many
    /// lines as `count`: then neither buffer is allocated twice. `lower` lower-cases the
    /// names as they are copied (ASCII only, as SIP header names are).
    pub(crate) fn build<'a>(
        text_len: usize,
        count: usize,
        lower: bool,
        lines: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Headers {
        let mut text = String::with_capacity(text_len);
        let mut ends = Vec::with_capacity(count * 2);
        for (n, v) in lines {
            // A header block over 4 GiB cannot reach here (message limits); stop rather
            // than wrap if one ever did.
            let Some(after) = text
                .len()
                .checked_add(n.len() + v.len())
                .and_then(|l| u32::try_from(l).ok())
            else {
                break;
            };
            if lower {
                text.extend(n.chars().map(|c| c.to_ascii_lowercase()));
            } else {
                text.push_str(n);
            }
            ends.push(after - v.len() as u32);
            text.push_str(v);
            ends.push(after);
        }
        Headers {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }
}

impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(lines: I) -> Headers {
        let lines: Vec<(N, V)> = lines.into_iter().collect();
        let len = lines
            .iter()
            .map(|(n, v)| n.as_ref().len() + v.as_ref().len())
            .sum();
        Headers::build(
            len,
            lines.len(),
            false,
            lines.iter().map(|(n, v)| (n.as_ref(), v.as_ref())),
        )
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_back_in_order_and_are_found_in_any_case() {
        let pairs = [
            ("via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1"),
            ("x-empty", ""),
            ("via", "SIP/2.0/TCP 192.0.2.2;branch=z9hG4bK2"),
            ("subject", "caf\u{e9}\r\n folded"),
        ];
        let h: Headers = pairs.iter().copied().collect();
        assert_eq!(h.iter().collect::<Vec<_>>(), pairs);
        assert_eq!(h.len(), 4);
        assert_eq!(h.get("VIA"), Some("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1"));
        assert_eq!(h.get("X-Empty"), Some(""));
        assert_eq!(h.get("to"), None);
        assert_eq!(format!("{h:?}"), format!("{:?}", pairs));
        let owned: Headers = vec![("a".to_string(), "1".to_string())]
            .into_iter()
            .collect();
        assert_eq!(owned.iter().collect::<Vec<_>>(), [("a", "1")]);
        assert!(Headers::default().is_empty());
        assert_eq!(Headers::default().iter().count(), 0);
    }

    #[test]
    fn names_are_lowered_when_asked_and_buffers_are_exact() {
        let h = Headers::build(8, 2, true, [("Via", "v1"), ("X-A", "b")].into_iter());
        assert_eq!(h.iter().collect::<Vec<_>>(), [("via", "v1"), ("x-a", "b")]);
        assert_eq!(h.text.len(), 9);
        assert_eq!(h.ends.len(), 4);
    }
}

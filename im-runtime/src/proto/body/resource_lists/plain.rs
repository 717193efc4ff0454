//! The plain form of a recipient list read without building a tree: ASCII, elements and
//! attributes with simple names, namespace declarations, whitespace and text, nothing else.
//! That is what phones and this server's own tests send, and what roxmltree took most of a
//! list MESSAGE's reading time to build a tree for.
//!
//! [`read`] answers only for a document it is sure about: one that is well-formed within
//! that subset, within every [`Limits`] bound, and whose entries all read (a `uri`, valid
//! copyControl and anonymize values). For anything else (a comment, a CDATA section, a
//! processing instruction, a DTD, an entity or character reference, a non-ASCII byte, a
//! line end or tab inside an attribute value, a repeated attribute name, an error of any
//! kind) it answers `None` and [`super::parse`] reads the document with roxmltree as before,
//! so every refusal, and its message, stays roxmltree's and the walk's. What it returns is
//! what that walk returns for the same document (the `plain_reader_agrees_with_roxmltree`
//! test below and the `resource_lists` fuzz target compare the two).

use super::{Entry, Limits, NS_COPY_CONTROL, NS_RESOURCE_LISTS, ResourceLists, Unresolved};
use crate::machine::CopyControl;

/// What an open element is to the walk (`super::parse`'s stack walk, as states).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// `<resource-lists>`.
    Root,
    /// A `<list>` under the root or under a list: its element children are read.
    List,
    /// An `<entry>` of a list.
    Entry,
    /// The entry's first `<display-name>`: its text is the name.
    Name,
    /// An element inside that display-name: its text is part of the name.
    InName,
    /// Anything else: nothing under it is read.
    Skip,
}

/// An open element: its qualified name (for the end tag), its role, and how many
/// namespace declarations were in scope before it.
struct Open<'a> {
    qname: &'a str,
    role: Role,
    ns_mark: usize,
}

/// One attribute of a start tag: prefix (empty when none), local name, value.
type Attr<'a> = (&'a str, &'a str, &'a str);

/// What a declared namespace is to the walk, decided once where it is declared rather than
/// by comparing its URI (38 bytes, without regard to case) at every element and attribute
/// that uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ns {
    /// RFC 4826's, in any case.
    ResourceLists,
    /// RFC 5364's, in any case.
    CopyControl,
    /// Any other.
    Other,
}

impl Ns {
    fn of(uri: &str) -> Ns {
        if uri.eq_ignore_ascii_case(NS_RESOURCE_LISTS) {
            Ns::ResourceLists
        } else if uri.eq_ignore_ascii_case(NS_COPY_CONTROL) {
            Ns::CopyControl
        } else {
            Ns::Other
        }
    }
}

/// The list read from `text`, or `None` when the document is not one this reader is sure
/// about (then roxmltree reads it).
pub(super) fn read(text: &str, limits: &Limits) -> Option<ResourceLists> {
    let b = text.as_bytes();
    if b.len() > limits.max_bytes {
        return None;
    }
    // ASCII only; control characters (XML 1.0 allows tab, LF and CR alone) are refused
    // where text, values and the declaration are scanned, and cannot pass a name or a tag.
    if !text.is_ascii() {
        return None;
    }
    let mut i = declaration(b)?;
    // (prefix, what its namespace is); prefix "" is the default namespace.
    // Sized for the usual document (two declarations, four levels, two attributes an
    // element) so that none grows one step at a time.
    let mut ns: Vec<(&str, Ns)> = Vec::with_capacity(4);
    let mut stack: Vec<Open<'_>> = Vec::with_capacity(8);
    let mut attrs: Vec<Attr<'_>> = Vec::with_capacity(4);
    // About one entry per 48 bytes at most (`<entry uri="sip:a@b.c"/>` and its line end):
    // room for every entry of a plain list in one allocation; the list is dropped once its
    // entries are read, so the spare room does not last.
    let mut out = ResourceLists {
        entries: Vec::with_capacity((b.len() / 48).min(limits.max_entries).min(1024)),
        unresolved: Vec::new(),
    };
    let mut entry: Option<Entry> = None;
    let mut name = String::new();
    let mut name_seen = false;
    let mut root_done = false;
    // roxmltree's node count, from above: the document, each element, each run of text.
    let mut nodes = 1usize;
    loop {
        let lt = memchr::memchr(b'<', b.get(i..)?).map(|k| i + k);
        let run = text.get(i..lt.unwrap_or(b.len()))?;
        if !run.is_empty() {
            nodes += 1;
            // No references, CDATA ends or stray markup; text outside the root is blank.
            if run
                .bytes()
                .any(|c| matches!(c, b'&' | b'>' | b']') || control(c))
            {
                return None;
            }
            match stack.last().map(|o| o.role) {
                None if !run.bytes().all(|c| c.is_ascii_whitespace()) => return None,
                Some(Role::Name | Role::InName) => {
                    // roxmltree turns CRLF into LF in text.
                    if run.contains('\r') {
                        return None;
                    }
                    name.push_str(run);
                }
                _ => {}
            }
        }
        let Some(lt) = lt else { break };
        i = lt + 1;
        match b.get(i)? {
            b'/' => {
                let (tag, _, at) = read_qname(text, i + 1)?;
                i = skip_ws(b, at);
                if b.get(i) != Some(&b'>') {
                    return None;
                }
                i += 1;
                let open = stack.pop()?;
                if open.qname != tag {
                    return None;
                }
                close(&open, &mut entry, &name, &mut out)?;
                ns.truncate(open.ns_mark);
                root_done = stack.is_empty();
            }
            b'!' | b'?' => return None,
            _ => {
                if root_done {
                    return None;
                }
                let (tag, tag_colon, mut at) = read_qname(text, i)?;
                attrs.clear();
                let empty = loop {
                    let after = skip_ws(b, at);
                    match b.get(after)? {
                        b'>' => {
                            at = after;
                            break false;
                        }
                        b'/' if b.get(after + 1) == Some(&b'>') => {
                            at = after + 1;
                            break true;
                        }
                        // `<a/ >`, or an attribute not preceded by whitespace.
                        b'/' => return None,
                        _ if after == at => return None,
                        _ => {}
                    }
                    let (an, colon, a) = read_qname(text, after)?;
                    let a = skip_ws(b, a);
                    if b.get(a) != Some(&b'=') {
                        return None;
                    }
                    let a = skip_ws(b, a + 1);
                    let quote = *b.get(a)?;
                    if quote != b'"' && quote != b'\'' {
                        return None;
                    }
                    let len = memchr::memchr(quote, b.get(a + 1..)?)?;
                    let value = text.get(a + 1..a + 1 + len)?;
                    if value.bytes().any(|c| matches!(c, b'<' | b'&') || c < 0x20) {
                        return None;
                    }
                    let (prefix, local) = split_qname(an, colon);
                    // Names are compared by local part alone: a repeat is refused by
                    // roxmltree, or at least not worth reading here.
                    if attrs.iter().any(|(_, l, _)| *l == local) {
                        return None;
                    }
                    attrs.push((prefix, local, value));
                    at = a + 1 + len + 1;
                };
                i = at + 1;
                nodes += 1;
                if stack.len() + 1 > limits.max_depth || nodes >= limits.max_nodes as usize {
                    return None;
                }
                let ns_mark = ns.len();
                for &(prefix, local, value) in &attrs {
                    let declared = match (prefix, local) {
                        ("", "xmlns") => "",
                        ("xmlns", p) => p,
                        _ => continue,
                    };
                    // `xmlns=""` too: roxmltree gives its elements an empty namespace.
                    if declared == "xml"
                        || declared == "xmlns"
                        || value.is_empty()
                        || value == "http://www.w3.org/XML/1998/namespace"
                        || value == "http://www.w3.org/2000/xmlns/"
                    {
                        return None;
                    }
                    ns.push((declared, Ns::of(value)));
                }
                // Every prefix must be declared (`xml:lang` too is left to roxmltree).
                for &(prefix, _, _) in &attrs {
                    if !prefix.is_empty() && prefix != "xmlns" {
                        lookup(&ns, prefix)?;
                    }
                }
                let (prefix, local) = split_qname(tag, tag_colon);
                if prefix == "xml" || prefix == "xmlns" {
                    return None;
                }
                let element_ns = lookup(&ns, prefix)?;
                let is_rl =
                    |want: &str| local == want && element_ns.is_none_or(|n| n == Ns::ResourceLists);
                let parent = stack.last().map(|o| o.role);
                let role = match parent {
                    None if is_rl("resource-lists") => Role::Root,
                    // Not a resource list: the walk's error, roxmltree's to report.
                    None => return None,
                    Some(Role::Root) if is_rl("list") => Role::List,
                    Some(Role::List) if is_rl("list") => Role::List,
                    Some(Role::List) if is_rl("entry") => {
                        if out.entries.len() == limits.max_entries {
                            return None;
                        }
                        entry = Some(read_entry(&attrs, &ns)?);
                        name_seen = false;
                        Role::Entry
                    }
                    Some(Role::List) if is_rl("entry-ref") || is_rl("external") => {
                        let (attr, unresolved): (_, fn(String) -> Unresolved) =
                            if local == "entry-ref" {
                                ("ref", Unresolved::EntryRef)
                            } else {
                                ("anchor", Unresolved::External)
                            };
                        let v = plain_attr(&attrs, attr).unwrap_or_default();
                        out.unresolved.push(unresolved(v.to_owned()));
                        Role::Skip
                    }
                    Some(Role::Entry) if !name_seen && is_rl("display-name") => {
                        name_seen = true;
                        name.clear();
                        Role::Name
                    }
                    Some(Role::Name | Role::InName) => Role::InName,
                    Some(_) => Role::Skip,
                };
                let open = Open {
                    qname: tag,
                    role,
                    ns_mark,
                };
                if empty {
                    close(&open, &mut entry, &name, &mut out)?;
                    ns.truncate(ns_mark);
                    root_done = stack.is_empty();
                } else {
                    stack.push(open);
                }
            }
        }
    }
    (root_done && stack.is_empty() && nodes < limits.max_nodes as usize).then_some(out)
}

/// An element ends: an entry is complete; the entry's display name is complete.
fn close(
    open: &Open<'_>,
    entry: &mut Option<Entry>,
    name: &str,
    out: &mut ResourceLists,
) -> Option<()> {
    match open.role {
        Role::Entry => out.entries.push(entry.take()?),
        Role::Name => {
            let e = entry.as_mut()?;
            let trimmed = name.trim();
            if !trimmed.is_empty() {
                e.display_name = Some(trimmed.to_owned());
            }
        }
        _ => {}
    }
    Some(())
}

/// The namespace `prefix` is bound to (`None`: no namespace); `None` outside the option
/// when the prefix was never declared.
fn lookup(ns: &[(&str, Ns)], prefix: &str) -> Option<Option<Ns>> {
    match ns.iter().rev().find(|(p, _)| *p == prefix) {
        Some((_, kind)) => Some(Some(*kind)),
        None if prefix.is_empty() => Some(None),
        None => None,
    }
}

/// An attribute without a prefix, as roxmltree's `attribute(name)` finds it.
fn plain_attr<'a>(attrs: &[Attr<'a>], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(p, l, _)| p.is_empty() && *l == name)
        .map(|(_, _, v)| *v)
}

/// `super::read_entry` on a start tag's attributes; `None` where it fails.
fn read_entry(attrs: &[Attr<'_>], ns: &[(&str, Ns)]) -> Option<Entry> {
    // Values hold no control character (the tag reader refused them), so ASCII
    // whitespace is all `str::trim` would take, and `trim_ascii` does not decode chars.
    let uri = plain_attr(attrs, "uri")
        .map(str::trim_ascii)
        .filter(|u| !u.is_empty())?;
    // The first attribute of each copyControl name (local name without regard to case, in
    // the copyControl namespace), in one pass over the attributes. Every prefix was
    // looked up when the tag was read, so the lookups here find theirs.
    let (mut copy_control, mut anonymize, mut count) = (None, None, None);
    for &(prefix, l, v) in attrs {
        if prefix.is_empty() || prefix == "xmlns" {
            continue;
        }
        let slot = if l.eq_ignore_ascii_case("copyControl") {
            &mut copy_control
        } else if l.eq_ignore_ascii_case("anonymize") {
            &mut anonymize
        } else if l.eq_ignore_ascii_case("count") {
            &mut count
        } else {
            continue;
        };
        if slot.is_none() && lookup(ns, prefix)? == Some(Ns::CopyControl) {
            *slot = Some(v);
        }
    }
    let copy_control = match copy_control.map(str::trim_ascii) {
        None => CopyControl::To,
        Some(v) if v.eq_ignore_ascii_case("to") => CopyControl::To,
        Some(v) if v.eq_ignore_ascii_case("cc") => CopyControl::Cc,
        Some(v) if v.eq_ignore_ascii_case("bcc") => CopyControl::Bcc,
        Some(_) => return None,
    };
    let anonymize = match anonymize.map(str::trim_ascii) {
        None => false,
        Some("true" | "1") => true,
        Some("false" | "0") => false,
        Some(_) => return None,
    };
    let count = count.and_then(|v| v.trim_ascii().parse().ok());
    Some(Entry {
        uri: uri.to_owned(),
        display_name: None,
        copy_control,
        anonymize,
        count,
    })
}

/// After an optional XML declaration of the plain form: where the document goes on.
fn declaration(b: &[u8]) -> Option<usize> {
    if !b.starts_with(b"<?") {
        return Some(0);
    }
    let rest = b.strip_prefix(b"<?xml ")?;
    let end = memchr::memmem::find(rest, b"?>")?;
    if rest.get(..end)?.iter().any(|&c| control(c)) {
        return None;
    }
    // `version`, then optionally `encoding` and `standalone`, each `name="value"` with
    // simple values: what roxmltree takes, in its order.
    let fields = rest.get(..end)?.split(|c| c.is_ascii_whitespace());
    let mut want: &[&[u8]] = &[b"version", b"encoding", b"standalone"];
    let mut any = false;
    for f in fields.filter(|f| !f.is_empty()) {
        let eq = f.iter().position(|&c| c == b'=')?;
        let (name, value) = (f.get(..eq)?, f.get(eq + 1..)?);
        let at = want.iter().position(|w| *w == name)?;
        if !any && at != 0 {
            return None;
        }
        want = want.get(at + 1..)?;
        any = true;
        let inner = value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .or_else(|| value.strip_prefix(b"'").and_then(|v| v.strip_suffix(b"'")))?;
        if inner.is_empty()
            || !inner
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
        {
            return None;
        }
    }
    any.then_some(6 + end + 2)
}

/// A qualified name of the plain form at `at` (`name` or `prefix:name`, ASCII name
/// characters), where its colon is (if any) and where it ends.
fn read_qname(text: &str, at: usize) -> Option<(&str, Option<usize>, usize)> {
    let b = text.as_bytes();
    let mut end = name_part(b, at)?;
    let mut colon = None;
    if b.get(end) == Some(&b':') {
        colon = Some(end - at);
        end = name_part(b, end + 1)?;
    }
    Some((text.get(at..end)?, colon, end))
}

/// A qualified name [`read_qname`] read, as prefix (empty when none) and local name,
/// split at the colon it found rather than searched again.
fn split_qname(q: &str, colon: Option<usize>) -> (&str, &str) {
    match colon {
        Some(c) => (q.get(..c).unwrap_or(""), q.get(c + 1..).unwrap_or("")),
        None => ("", q),
    }
}

/// Name characters of the plain form: 1 for an ASCII letter or `_` (may start a name), 2
/// for a digit, `.` or `-` (may follow); one load a byte where the tests of
/// `is_ascii_alphanumeric` and a `matches!` cost several (names are most of a list's
/// markup).
static NAME: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0usize;
    while c < 256 {
        let b = c as u8;
        let v = if b.is_ascii_alphabetic() || b == b'_' {
            1
        } else if b.is_ascii_digit() || b == b'.' || b == b'-' {
            2
        } else {
            0
        };
        // Evaluated at compile time: an out-of-bounds index would fail the build.
        #[allow(clippy::indexing_slicing)]
        {
            t[c] = v;
        }
        c += 1;
    }
    t
};

/// The [`NAME`] class of `c`.
#[inline]
fn name_class(c: u8) -> u8 {
    NAME.get(usize::from(c)).copied().unwrap_or(0)
}

/// Where a name without colon (ASCII letter or `_`, then letters, digits, `.`, `-`, `_`)
/// that starts at `at` ends.
fn name_part(b: &[u8], at: usize) -> Option<usize> {
    if name_class(*b.get(at)?) != 1 {
        return None;
    }
    let mut i = at + 1;
    while b.get(i).is_some_and(|&c| name_class(c) != 0) {
        i += 1;
    }
    Some(i)
}

/// A control character XML 1.0 does not allow (all but tab, LF and CR).
fn control(c: u8) -> bool {
    c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r')
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b
        .get(i)
        .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::super::{Limits, parse, parse_tree};
    use super::read;

    const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n";
    const NS: &str = "xmlns=\"urn:ietf:params:xml:ns:resource-lists\" \
                      xmlns:cp=\"urn:ietf:params:xml:ns:copycontrol\"";

    fn doc(body: &str) -> String {
        format!("{HEAD}<resource-lists {NS}>\r\n<list>\r\n{body}</list>\r\n</resource-lists>\r\n")
    }

    /// `doc` is read the same by both readers, and by the plain one when `plain`.
    fn agrees(doc: &str, plain: bool, limits: &Limits) {
        let fast = parse(doc.as_bytes(), limits);
        let tree = parse_tree(doc.as_bytes(), limits);
        assert_eq!(fast, tree, "{doc}");
        assert_eq!(read(doc, limits).is_some(), plain, "{doc}");
    }

    #[test]
    fn plain_reader_agrees_with_roxmltree() {
        let lim = Limits::default();
        let read_plain = [
            doc(
                "  <entry uri=\"sip:u0@192.0.2.10:5060\" cp:copyControl=\"to\"/>\r\n\
                 <entry uri=\"sip:u1@192.0.2.11\" cp:copyControl=\"cc\"/>\r\n",
            ),
            // Display names (the first one only, its inner elements' text too, trimmed),
            // attributes' other quotes and spacing, anonymize, count, bcc.
            doc(
                "<entry uri='sip:b@example.com' cp:copyControl = 'BCC' cp:anonymize=\"1\" \
                 cp:count=\"3\"><display-name> Bob <x:i xmlns:x=\"urn:x\">B.</x:i> </display-name>\
                 <display-name>second</display-name></entry>\
                 <entry uri=\" sip:c@example.com \"><display-name>  </display-name></entry>\
                 <entry uri=\"sip:d@example.com\" ><ext xmlns=\"urn:other\">\
                 <display-name>not rl</display-name></ext><display-name>D</display-name></entry>",
            ),
            // Nested lists, references, entries out of any list or in an extension, a list's
            // own display-name.
            doc(
                "<display-name>L</display-name><list><entry uri=\"sip:n@example.com\"/>\
                 <list name=\"deep\"><entry uri=\"sip:m@example.com\"/></list></list>\
                 <entry-ref ref=\"resource-lists/users/a/index\"/><external anchor=\"http://x/y\"/>\
                 <entry-ref/><other><entry uri=\"sip:no@example.com\"/></other>",
            ),
            format!(
                "<resource-lists {NS}><entry uri=\"sip:root@example.com\"/><list>\
                 <entry uri=\"sip:a@example.com\"/></list></resource-lists>"
            ),
            // Prefixed elements, copyControl's namespace in capitals (rcsjta), no
            // declaration, no namespace at all, xmlns="" inside.
            "<rl:resource-lists xmlns:rl=\"urn:ietf:params:xml:ns:resource-lists\" \
             xmlns:c=\"urn:ietf:params:xml:ns:copyControl\"><rl:list><rl:entry \
             uri=\"sip:p@example.com\" c:COPYCONTROL=\"cc\"/></rl:list></rl:resource-lists>"
                .to_string(),
            "<resource-lists><list><entry uri=\"sip:q@example.com\" copyControl=\"bcc\"/>\
             </list></resource-lists>\n"
                .to_string(),
            // Elements of another namespace with resource-lists' names are not read.
            format!(
                "<resource-lists {NS}><list><o:entry xmlns:o=\"urn:o\" uri=\"sip:o@x\"/>\
                 <o:list xmlns:o=\"urn:o\"><entry uri=\"sip:o2@x\"/></o:list></list>\
                 </resource-lists >"
            ),
        ];
        for d in &read_plain {
            agrees(d, true, &lim);
        }
        let declined = [
            doc("<entry uri=\"sip:a@example.com\"/>\u{1}"),
            doc("<entry uri=\"sip:a@example.com\x0c\"/>"),
            format!(
                "<?xml version=\"1.0\"\x0cencoding=\"UTF-8\"?>{}",
                doc("").trim_start_matches(HEAD)
            ),
            format!("\x0c{}", doc("")),
            doc("<!-- c --><entry uri=\"sip:a@example.com\"/>"),
            doc(
                "<entry uri=\"sip:a@example.com\"><display-name><![CDATA[x]]></display-name></entry>",
            ),
            doc("<entry uri=\"sip:a&amp;b@example.com\"/>"),
            doc("<entry uri=\"sip:a@example.com\"><display-name>A &amp; B</display-name></entry>"),
            doc("<entry uri=\"sip:a@example.com\"><display-name>Zoë</display-name></entry>"),
            doc("<entry uri=\"sip:a@example.com\" xml:lang=\"en\"/>"),
            doc("<entry uri=\"sip:a@example.com\" q:x=\"1\"/>"),
            doc("<entry uri=\"sip:a@example.com\" uri=\"sip:b@example.com\"/>"),
            doc(
                "<entry uri=\"sip:a@example.com\"\tcp:copyControl=\"to\"/><entry uri=\"sip:\na@x\"/>",
            ),
            doc("<entry uri=\"sip:a@example.com\"></entri>"),
            doc("<entry uri=\"sip:a@example.com\"cp:copyControl=\"to\"/>"),
            doc("<entry uri=\"sip:a@example.com\"/ >"),
            doc("<entry uri=\"  \"/>"),
            doc("<entry/>"),
            doc("<entry uri=\"sip:a@example.com\" cp:copyControl=\"bc\"/>"),
            doc("<entry uri=\"sip:a@example.com\" cp:anonymize=\"yes\"/>"),
            doc("<entry uri=\"sip:a@example.com\"><display-name>a]]>b</display-name></entry>"),
            format!("{}<x/>", doc("")),
            format!("{} text", doc("")),
            format!("<!DOCTYPE r []>{}", doc("")),
            format!("<?pi x?>{}", doc("")),
            format!(" {}", doc("")),
            "<?xml version=\"1.0\"?><other/>".to_string(),
            "<?xml version=\"1.0\"?><resource-lists><list>".to_string(),
            "<?xml encoding=\"UTF-8\"?><resource-lists/>".to_string(),
            "<?xml version=\"1.0\" standalone=\"yes\" encoding=\"x\"?><resource-lists/>"
                .to_string(),
            "<resource-lists xmlns:p=\"\"/>".to_string(),
            "<resource-lists><list><entry xmlns=\"\" uri=\"sip:r@x\"/></list></resource-lists>"
                .to_string(),
            "<xmlns:resource-lists/>".to_string(),
            "<resource-lists xmlns:x=\"http://www.w3.org/2000/xmlns/\"/>".to_string(),
            "<resource-lists><list><1entry/></list></resource-lists>".to_string(),
            "<resource-lists><list><entry: uri=\"sip:a@x\"/></list></resource-lists>".to_string(),
            String::new(),
        ];
        for d in &declined {
            agrees(d, false, &lim);
        }
        // Limits: over any of them, roxmltree's walk says which.
        let ten: String = (0..10)
            .map(|k| format!("<entry uri=\"sip:u{k}@example.com\"/>\r\n"))
            .collect();
        let d = doc(&ten);
        agrees(&d, true, &lim);
        for small in [
            Limits {
                max_entries: 9,
                ..lim
            },
            Limits {
                max_nodes: 20,
                ..lim
            },
            Limits {
                max_depth: 2,
                ..lim
            },
            Limits {
                max_bytes: 100,
                ..lim
            },
        ] {
            agrees(&d, false, &small);
        }
        agrees(
            &d,
            true,
            &Limits {
                max_entries: 10,
                max_depth: 3,
                ..lim
            },
        );
    }
}

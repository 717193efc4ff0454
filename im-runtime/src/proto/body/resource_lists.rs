//! Resource lists (RFC 4826) with the copyControl extension (RFC 5364): a bounded reader
//! for inbound `recipient-list` parts and a writer for `recipient-list-history` parts.
//!
//! # Reading
//! [`parse`] reads the document with `roxmltree`, whose defaults refuse any DTD, so entity
//! expansion attacks (billion laughs) and external entities (XXE) are rejected before any
//! expansion, and it never does I/O. On top of that every dimension is bounded by
//! [`Limits`]: octets, element depth, node count (roxmltree's `nodes_limit`) and entries, each
//! with its own [`ListError`] variant.
//!
//! What is read:
//! * every `<entry uri=…>` of every `<list>`, nested lists flattened in document order, with
//!   its `<display-name>`;
//! * RFC 5364 attributes `copyControl` (`to`/`cc`/`bcc`, default `to`), `anonymize`
//!   (xs:boolean, default false) and `count`, matched by **namespace URI compared without
//!   regard to case** (rcsjta sends `urn:ietf:params:xml:ns:copyControl`, the RFC says
//!   `…:copycontrol`) and local name compared without regard to case, whatever the prefix;
//! * resource-lists elements are matched by local name in the RFC 4826 namespace (again
//!   case-insensitively) or in no namespace at all (senders that forget `xmlns`); elements
//!   of other namespaces are extensions and skipped.
//!
//! Decision on `<entry-ref>` and `<external>`: they point into the sender's XCAP documents,
//! which this server cannot dereference, and RFC 5366 §4 does not expect them in a
//! request-contained list. They are **not an error**: each is reported in
//! [`ResourceLists::unresolved`] and contributes no recipient, so the caller can log them
//! (or reject the request if its policy says so).
//!
//! A copyControl or anonymize value outside its schema type is an error rather than a
//! default: guessing `to` for a misspelt `bcc` would disclose a blind recipient.
//!
//! # Writing
//! [`write_history`] produces the RFC 5364 §7 `recipient-list-history` document sent to
//! invitees: `to` and `cc` recipients with their copyControl, **never `bcc`**; anonymized
//! recipients are replaced by one anonymous entry per copyControl value carrying `cp:count`.

use std::fmt::Write as _;

use crate::machine::{CopyControl, ListEntry, Uri};

/// The RFC 4826 namespace.
pub const NS_RESOURCE_LISTS: &str = "urn:ietf:params:xml:ns:resource-lists";
/// The RFC 5364 namespace as registered (lower case; matched case-insensitively on input).
pub const NS_COPY_CONTROL: &str = "urn:ietf:params:xml:ns:copycontrol";
/// The URI that stands for anonymized recipients in a history list (RFC 3323 form).
pub const ANONYMOUS_URI: &str = "sip:anonymous@anonymous.invalid";

/// Bounds applied while reading a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest document, in octets.
    pub max_bytes: usize,
    /// Deepest element nesting (the root element is depth 1).
    pub max_depth: usize,
    /// Most XML nodes (elements, text, comments …), passed to roxmltree as `nodes_limit`.
    pub max_nodes: u32,
    /// Most `<entry>` elements (before de-duplication).
    pub max_entries: usize,
}

impl Default for Limits {
    /// 64 KiB, depth 16, 8192 nodes, 1000 entries: generous for a list a phone sends, small
    /// enough that a hostile document costs little. Recipient policy limits are separate
    /// (`Config::max_recipients`).
    fn default() -> Self {
        Limits {
            max_bytes: 64 * 1024,
            max_depth: 16,
            max_nodes: 8192,
            max_entries: 1000,
        }
    }
}

/// Why a resource list was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListError {
    /// The document is larger than [`Limits::max_bytes`].
    #[error("document larger than {limit} octets")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// Elements nest deeper than [`Limits::max_depth`].
    #[error("elements nested deeper than {limit}")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// More nodes than [`Limits::max_nodes`].
    #[error("more than {limit} XML nodes")]
    TooManyNodes {
        /// The limit.
        limit: u32,
    },
    /// More entries than [`Limits::max_entries`].
    #[error("more than {limit} entries")]
    TooManyEntries {
        /// The limit.
        limit: usize,
    },
    /// The document has a DTD (refused: entity expansion and external entities).
    #[error("DTD not allowed")]
    DtdNotAllowed,
    /// The document is not UTF-8.
    #[error("document is not UTF-8")]
    NotUtf8,
    /// The document is not well-formed XML; roxmltree's message.
    #[error("malformed XML: {0}")]
    Xml(String),
    /// The root element is not `<resource-lists>`.
    #[error("root element is not resource-lists")]
    NotResourceLists,
    /// An `<entry>` has no `uri` attribute.
    #[error("entry without uri")]
    EntryWithoutUri,
    /// A copyControl value other than to, cc, bcc.
    #[error("invalid copyControl value {0:?}")]
    BadCopyControl(String),
    /// An anonymize value that is not an xs:boolean.
    #[error("invalid anonymize value {0:?}")]
    BadAnonymize(String),
    /// The URI parser given to [`ResourceLists::list_entries`] refused an entry's URI.
    #[error("unusable entry URI {0:?}")]
    BadUri(String),
}

impl ListError {
    /// The document broke one of the [`Limits`] (it may be a well-formed list, only bigger
    /// than this server takes), as opposed to not being a readable resource list at all.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            ListError::TooLarge { .. }
                | ListError::TooDeep { .. }
                | ListError::TooManyNodes { .. }
                | ListError::TooManyEntries { .. }
        )
    }
}

/// One `<entry>` as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The `uri` attribute, as written (entity references resolved).
    pub uri: String,
    /// `<display-name>` text, trimmed, when present and not empty.
    pub display_name: Option<String>,
    /// `cp:copyControl`, default `to`.
    pub copy_control: CopyControl,
    /// `cp:anonymize`, default false.
    pub anonymize: bool,
    /// `cp:count` when present and a number (only meaningful in history lists).
    pub count: Option<u32>,
}

/// An `<entry-ref>` or `<external>` element that was not followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unresolved {
    /// `<entry-ref ref=…>`.
    EntryRef(String),
    /// `<external anchor=…>`.
    External(String),
}

/// A read resource-lists document, flattened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceLists {
    /// Every entry of every list, nested lists flattened, in document order.
    pub entries: Vec<Entry>,
    /// References that were reported and ignored (see the module docs).
    pub unresolved: Vec<Unresolved>,
}

mod plain;

/// Reads a resource-lists document within `limits`. A document of the plain form (ASCII
/// elements, attributes, namespaces and text, nothing else: what clients send) is read
/// without building a tree (`plain.rs`); any other, and every document that is refused,
/// is read by [`parse_tree`], whose result is the same for a plain one.
pub fn parse(xml: &[u8], limits: &Limits) -> Result<ResourceLists, ListError> {
    if let Ok(text) = std::str::from_utf8(xml)
        && let Some(read) = plain::read(text, limits)
    {
        return Ok(read);
    }
    parse_tree(xml, limits)
}

/// [`parse`] with roxmltree for every document: the reference the plain reader is
/// compared with (unit tests, the `resource_lists` fuzz target).
pub fn parse_tree(xml: &[u8], limits: &Limits) -> Result<ResourceLists, ListError> {
    if xml.len() > limits.max_bytes {
        return Err(ListError::TooLarge {
            limit: limits.max_bytes,
        });
    }
    let text = std::str::from_utf8(xml).map_err(|_| ListError::NotUtf8)?;
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: limits.max_nodes,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, opts).map_err(|e| match e {
        roxmltree::Error::DtdDetected => ListError::DtdNotAllowed,
        roxmltree::Error::NodesLimitReached => ListError::TooManyNodes {
            limit: limits.max_nodes,
        },
        other => ListError::Xml(other.to_string()),
    })?;
    let root = doc.root_element();
    if !is_rl(root, "resource-lists") {
        return Err(ListError::NotResourceLists);
    }

    check_depth(root, limits.max_depth)?;

    let mut out = ResourceLists::default();
    // Explicit stack instead of recursion; children are pushed in reverse so entries come
    // out in document order with nested lists flattened in place.
    let mut stack: Vec<_> = root
        .children()
        .rev()
        .filter(|c| is_rl(*c, "list"))
        .collect();
    while let Some(node) = stack.pop() {
        if is_rl(node, "list") {
            stack.extend(node.children().rev().filter(|c| c.is_element()));
        } else if is_rl(node, "entry") {
            if out.entries.len() == limits.max_entries {
                return Err(ListError::TooManyEntries {
                    limit: limits.max_entries,
                });
            }
            out.entries.push(read_entry(node)?);
        } else if is_rl(node, "entry-ref") {
            let r = node.attribute("ref").unwrap_or_default();
            out.unresolved.push(Unresolved::EntryRef(r.to_owned()));
        } else if is_rl(node, "external") {
            let a = node.attribute("anchor").unwrap_or_default();
            out.unresolved.push(Unresolved::External(a.to_owned()));
        }
        // Anything else (`display-name` of a list, extension elements) carries no recipient.
    }
    Ok(out)
}

/// Fails when any element lies deeper than `max` (the root element is depth 1).
fn check_depth(root: roxmltree::Node<'_, '_>, max: usize) -> Result<(), ListError> {
    let mut stack = vec![(root, 1usize)];
    while let Some((n, d)) = stack.pop() {
        if d > max {
            return Err(ListError::TooDeep { limit: max });
        }
        stack.extend(n.children().filter(|c| c.is_element()).map(|c| (c, d + 1)));
    }
    Ok(())
}

fn is_rl(node: roxmltree::Node<'_, '_>, local: &str) -> bool {
    node.is_element()
        && node.tag_name().name() == local
        && node
            .tag_name()
            .namespace()
            .is_none_or(|ns| ns.eq_ignore_ascii_case(NS_RESOURCE_LISTS))
}

fn cp_attr<'a>(node: roxmltree::Node<'a, '_>, local: &str) -> Option<&'a str> {
    node.attributes()
        .find(|a| {
            a.name().eq_ignore_ascii_case(local)
                && a.namespace()
                    .is_some_and(|ns| ns.eq_ignore_ascii_case(NS_COPY_CONTROL))
        })
        .map(|a| a.value())
}

fn read_entry(node: roxmltree::Node<'_, '_>) -> Result<Entry, ListError> {
    let uri = node
        .attribute("uri")
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .ok_or(ListError::EntryWithoutUri)?;
    let display_name = node
        .children()
        .find(|c| is_rl(*c, "display-name"))
        .map(|d| {
            d.descendants()
                .filter(|t| t.is_text())
                .filter_map(|t| t.text())
                .collect::<String>()
        })
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let copy_control = match cp_attr(node, "copyControl").map(str::trim) {
        None => CopyControl::To,
        Some(v) if v.eq_ignore_ascii_case("to") => CopyControl::To,
        Some(v) if v.eq_ignore_ascii_case("cc") => CopyControl::Cc,
        Some(v) if v.eq_ignore_ascii_case("bcc") => CopyControl::Bcc,
        Some(v) => return Err(ListError::BadCopyControl(v.to_owned())),
    };
    let anonymize = match cp_attr(node, "anonymize").map(str::trim) {
        None => false,
        Some("true" | "1") => true,
        Some("false" | "0") => false,
        Some(v) => return Err(ListError::BadAnonymize(v.to_owned())),
    };
    let count = cp_attr(node, "count").and_then(|v| v.trim().parse().ok());
    Ok(Entry {
        uri: uri.to_owned(),
        display_name,
        copy_control,
        anonymize,
        count,
    })
}

impl ResourceLists {
    /// The entries as the contract's [`ListEntry`] values, URIs parsed by `parse_uri` (the
    /// SIP layer's URI parser; this module does not parse URIs itself). A URI it refuses
    /// is a [`ListError::BadUri`].
    pub fn list_entries(
        &self,
        mut parse_uri: impl FnMut(&str) -> Option<Uri>,
    ) -> Result<Vec<ListEntry>, ListError> {
        // A loop rather than `collect::<Result<Vec<_>, _>>()`, whose vector does not know
        // the count and grows step by step.
        let mut out = Vec::with_capacity(self.entries.len());
        for e in &self.entries {
            let uri = parse_uri(&e.uri).ok_or_else(|| ListError::BadUri(e.uri.clone()))?;
            out.push(ListEntry {
                uri,
                display_name: e.display_name.clone(),
                copy_control: e.copy_control,
                anonymize: e.anonymize,
            });
        }
        Ok(out)
    }
}

/// Removes the originator and repeated recipients, keeping order. URIs are compared with
/// [`Uri::same_identity`] (RFC 3261 §19.1.4 on scheme, user, host, port). When a recipient
/// appears more than once, its first occurrence is kept with its own attributes: the
/// sender's first mention is taken as the intended one, and order stays stable.
pub fn dedup(entries: Vec<ListEntry>, originator: &Uri) -> Vec<ListEntry> {
    crate::machine::Selection {
        without_originator: true,
        distinct: true,
    }
    .apply(entries, originator, |e| &e.uri)
}

/// Writes the RFC 5364 §7 `recipient-list-history` document for `recipients` (usually the
/// de-duplicated list, originator included or not as the caller decides):
/// * `bcc` recipients are left out entirely;
/// * `to`/`cc` recipients without `anonymize` appear with their URI (`Uri::raw`),
///   `cp:copyControl` and `<display-name>`;
/// * anonymized `to`/`cc` recipients are replaced by one [`ANONYMOUS_URI`] entry per
///   copyControl value with `cp:count` saying how many it stands for.
///
/// Text is XML-escaped; characters XML 1.0 cannot carry become U+FFFD. The entries are
/// borrowed one by one (a slice, or references to the entries a selection kept).
pub fn write_history<'a>(recipients: impl IntoIterator<Item = &'a ListEntry>) -> String {
    let recipients = recipients.into_iter();
    let mut s = String::with_capacity(200 + 80 * recipients.size_hint().0);
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n");
    s.push_str("<resource-lists xmlns=\"");
    s.push_str(NS_RESOURCE_LISTS);
    s.push_str("\" xmlns:cp=\"");
    s.push_str(NS_COPY_CONTROL);
    s.push_str("\">\r\n<list>\r\n");
    let mut anonymous = [(CopyControl::To, 0u32), (CopyControl::Cc, 0u32)];
    for r in recipients {
        let cc = match r.copy_control {
            CopyControl::Bcc => continue,
            cc => cc,
        };
        if r.anonymize {
            if let Some(slot) = anonymous.iter_mut().find(|(c, _)| *c == cc) {
                slot.1 += 1;
            }
            continue;
        }
        s.push_str("<entry uri=\"");
        escape_into(&mut s, r.uri.raw());
        let _ = write!(s, "\" cp:copyControl=\"{}\"", copy_control_str(cc));
        match &r.display_name {
            Some(name) => {
                s.push_str("><display-name>");
                escape_into(&mut s, name);
                s.push_str("</display-name></entry>\r\n");
            }
            None => s.push_str("/>\r\n"),
        }
    }
    for (cc, n) in anonymous {
        if n > 0 {
            let _ = write!(
                s,
                "<entry uri=\"{ANONYMOUS_URI}\" cp:copyControl=\"{}\" cp:count=\"{n}\"/>\r\n",
                copy_control_str(cc)
            );
        }
    }
    s.push_str("</list>\r\n</resource-lists>\r\n");
    s
}

fn copy_control_str(cc: CopyControl) -> &'static str {
    match cc {
        CopyControl::To => "to",
        CopyControl::Cc => "cc",
        CopyControl::Bcc => "bcc",
    }
}

/// Escapes text for use in XML content or a double-quoted attribute.
pub fn escape_into(out: &mut String, text: &str) {
    // Most text (a SIP URI, a display name) needs nothing: copied whole. 0xEF leads the
    // UTF-8 of U+FFFE and U+FFFF, so text holding it takes the character walk.
    if text
        .bytes()
        .all(|b| b >= 0x20 && !matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'' | 0xEF))
    {
        out.push_str(text);
        return;
    }
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Attribute-value normalisation would turn these into spaces; keep them.
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

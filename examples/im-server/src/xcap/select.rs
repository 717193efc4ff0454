//! XCAP node selectors (RFC 4825 §6.3): parsing a selector's steps, finding the node they
//! select in a document, and the small XML text edits the handlers make there.

/// One node-selector step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    Element { name: String, preds: Vec<Pred> },
    Attribute(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Pred {
    Position(usize),
    Attr(String, String),
}

pub(super) fn pct_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub(super) fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// Splits on `/` outside double or single quotes.
pub(super) fn split_steps(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut quote = None;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '/') => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

pub(super) fn parse_step(s: &str) -> Option<Step> {
    if let Some(a) = s.strip_prefix('@') {
        return (!a.is_empty()).then(|| Step::Attribute(local(a).to_owned()));
    }
    let (name, mut rest) = match s.find('[') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    if name.is_empty() {
        return None;
    }
    let mut preds = Vec::new();
    while let Some(r) = rest.strip_prefix('[') {
        let end = r.find(']')?;
        let inner = r[..end].trim();
        rest = &r[end + 1..];
        if let Some(a) = inner.strip_prefix('@') {
            let (attr, value) = a.split_once('=')?;
            let value = value.trim();
            let unq = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))?;
            preds.push(Pred::Attr(local(attr.trim()).to_owned(), unq.to_owned()));
        } else {
            let n: usize = inner.parse().ok()?;
            if n == 0 {
                return None;
            }
            preds.push(Pred::Position(n));
        }
    }
    if !rest.is_empty() {
        return None;
    }
    Some(Step::Element {
        name: local(name).to_owned(),
        preds,
    })
}

pub(super) fn step_matches(n: roxmltree::Node<'_, '_>, name: &str) -> bool {
    n.is_element() && (name == "*" || n.tag_name().name() == name)
}

/// The one element `steps` select, if exactly one.
pub(super) fn select<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
    steps: &[Step],
) -> Option<roxmltree::Node<'a, 'i>> {
    let mut cur: Option<roxmltree::Node<'a, 'i>> = None;
    for (i, step) in steps.iter().enumerate() {
        let Step::Element { name, preds } = step else {
            return None;
        };
        let mut candidates: Vec<roxmltree::Node<'a, 'i>> = if i == 0 {
            vec![doc.root_element()]
        } else {
            cur?.children().collect()
        };
        candidates.retain(|n| step_matches(*n, name));
        for p in preds {
            candidates = match p {
                Pred::Position(k) => candidates.get(k - 1).copied().into_iter().collect(),
                Pred::Attr(a, v) => candidates
                    .into_iter()
                    .filter(|n| n.attribute(a.as_str()) == Some(v.as_str()))
                    .collect(),
            };
        }
        if candidates.len() != 1 {
            return None;
        }
        cur = candidates.pop();
    }
    cur
}

/// Whether the element `el` (a PUT body) is one the step `last` would select: same local
/// name, and the attribute a predicate names has that value.
pub(super) fn element_matches(el: &str, last: &Step) -> bool {
    element_matches_opt(el, last).is_some()
}

pub(super) fn element_matches_opt(el: &str, last: &Step) -> Option<()> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        ..roxmltree::ParsingOptions::default()
    };
    // The body may use prefixes declared in the document, not in itself; wrap it with
    // the usage's namespaces so it parses on its own.
    let wrapped = format!(
        "<w xmlns=\"{}\" xmlns:rl=\"{}\" xmlns:cp=\"{}\">{el}</w>",
        crate::groups::NS_LIST_SERVICE,
        crate::groups::NS_RESOURCE_LISTS,
        crate::groups::NS_COMMON_POLICY
    );
    let doc = roxmltree::Document::parse_with_options(&wrapped, opts).ok()?;
    let mut kids = doc
        .root_element()
        .children()
        .filter(|n| !n.is_text() || !n.text().unwrap_or("").trim().is_empty());
    let only = kids.next()?;
    if kids.next().is_some() || !only.is_element() {
        return None;
    }
    let Step::Element { name, preds } = last else {
        return None;
    };
    if !step_matches(only, name) {
        return None;
    }
    for p in preds {
        if let Pred::Attr(a, v) = p
            && only.attribute(a.as_str()) != Some(v.as_str())
        {
            return None;
        }
    }
    Some(())
}

/// `text` with `el` inserted as the last child of `parent`.
pub(super) fn insert_last_child(
    text: &str,
    parent: roxmltree::Node<'_, '_>,
    el: &str,
) -> Option<String> {
    let r = parent.range();
    let src = &text[r.clone()];
    if let Some(head) = src.strip_suffix("/>") {
        // `<list/>` becomes `<list>EL</list>`, keeping the written tag (and its prefix).
        let open = &src[1..];
        let qname_end = open.find(|c: char| c.is_whitespace() || c == '/' || c == '>')?;
        let qname = &open[..qname_end];
        let head = head.trim_end();
        return Some(format!(
            "{}{head}>{el}</{qname}>{}",
            &text[..r.start],
            &text[r.end..]
        ));
    }
    let close = src.rfind("</")?;
    let at = r.start + close;
    Some(format!("{}{el}{}", &text[..at], &text[at..]))
}

pub(super) fn parse_xml(text: &str) -> Option<roxmltree::Document<'_>> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        ..roxmltree::ParsingOptions::default()
    };
    roxmltree::Document::parse_with_options(text, opts).ok()
}

/// Whether `name` is an attribute name this server can write (an XML name without a
/// prefix).
pub(super) fn valid_attribute_name(name: &str) -> bool {
    !name.contains(':') && parse_xml(&format!("<a {name}=\"\"/>")).is_some()
}

/// `value`, an attribute PUT body, quoted for the document, and what it means once parsed;
/// `None` when it is not an XML attribute value (RFC 4825 §8.2.3: `<`, a stray `&`, an
/// undefined entity, or both kinds of quote).
pub(super) fn att_value(name: &str, value: &str) -> Option<(String, String)> {
    let q = if value.contains('"') { '\'' } else { '"' };
    let quoted = format!("{q}{value}{q}");
    let doc = format!("<a {name}={quoted}/>");
    let decoded = parse_xml(&doc)?.root_element().attribute(name)?.to_owned();
    Some((quoted, decoded))
}

pub(super) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

//! The embedded pre-defined group store: a folder of OMA list-service group documents
//! (digest §1.7), one or more groups per `*.xml` file, implementing
//! [`GroupDirectory`].
//!
//! # Document format
//! ```xml
//! <group xmlns="urn:oma:xml:poc:list-service"
//!        xmlns:rl="urn:ietf:params:xml:ns:resource-lists"
//!        xmlns:cp="urn:ietf:params:xml:ns:common-policy">
//!   <list-service uri="sip:friends@example.com">
//!     <display-name>Friends</display-name>
//!     <list><rl:entry uri="sip:alice@example.com"/></list>
//!     <invite-members>true</invite-members>
//!     <max-participant-count>10</max-participant-count>
//!     <cp:ruleset>
//!       <cp:rule id="members">
//!         <cp:conditions><is-list-member/></cp:conditions>
//!         <cp:actions><allow-initiate-conference>true</allow-initiate-conference></cp:actions>
//!       </cp:rule>
//!     </cp:ruleset>
//!   </list-service>
//! </group>
//! ```
//! Elements are matched by namespace URI and local name, never by prefix. `<entry>` is taken
//! in the RFC 4826 namespace (or the list-service one, which some writers use); nested
//! `<list>`s are flattened; `<entry-ref>`/`<external>` cannot be followed from a folder and
//! are reported and skipped. Rules follow IETF common policy (RFC 4745): a rule applies when
//! all its conditions hold (no conditions: always); a condition this store does not know
//! makes its rule not apply; boolean permissions of the applying rules combine by "any rule
//! grants it"; no applying rule grants nothing. Conditions understood: `is-list-member`
//! (OMA) and `identity` with `one`/`many`/`except` (RFC 4745 §7.1). Actions understood:
//! `allow-initiate-conference`, `join-handling` (`true`/`allow` or `false`/`block`),
//! `allow-anonymity`; other actions are ignored.
//!
//! # Reloading
//! The store is sans-IO friendly: the [`GroupDirectory`] methods only read the current
//! snapshot and never touch the file system. [`GroupStore::reload_if_changed`] takes the
//! caller's `now`, and at most once per poll interval lists the folder and compares each
//! file's modification time and length with what was loaded; only new or changed files are
//! parsed again, removed files drop their groups. The endpoint calls it where it already has
//! a `now` (each initial request, or its own timer), so no watcher thread or extra
//! dependency is needed; the cost between checks is one comparison of two instants.
//!
//! Bad documents (not XML, a DTD, wrong root, missing or bad `uri`, bad values, a group URI
//! already defined by another file) are logged with the file and the reason and skipped;
//! the other files still load. Nothing here panics on file contents.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use im_runtime::machine::{GroupDirectory, GroupPolicy, Uri};

use crate::uri::parse_uri;
use key::{Index, Key};

mod key;
mod shared;
pub use shared::{ManagedGroups, SharedGroups};

/// OMA PoC list-service namespace.
pub const NS_LIST_SERVICE: &str = "urn:oma:xml:poc:list-service";
/// RFC 4826 resource-lists namespace.
pub const NS_RESOURCE_LISTS: &str = "urn:ietf:params:xml:ns:resource-lists";
/// RFC 4745 common-policy namespace.
pub const NS_COMMON_POLICY: &str = "urn:ietf:params:xml:ns:common-policy";
/// OMA XDM common-policy extensions namespace (some writers put OMA conditions there).
pub const NS_OMA_COMMON_POLICY: &str = "urn:oma:xml:xdm:common-policy";

/// Largest group document read, in octets: a group document is a list of URIs, and a
/// stray large file in the folder should cost nothing.
pub const MAX_DOCUMENT_BYTES: u64 = 1 << 20;
/// Most XML nodes in one document (roxmltree `nodes_limit`).
const MAX_NODES: u32 = 200_000;

/// One member of a group's `<list>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The entry's URI.
    pub uri: Uri,
    /// The entry's `<display-name>`, when present.
    pub display_name: Option<String>,
}

/// An RFC 4745 `<identity>` condition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdentityCondition {
    /// `<one id>` identities.
    pub one: Vec<Uri>,
    /// `<many>` elements: domain (`None` = any domain) and the `<except>` entries.
    pub many: Vec<Many>,
}

/// An RFC 4745 `<many>` element.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Many {
    /// The `domain` attribute (lower case); `None` matches every identity.
    pub domain: Option<String>,
    /// `<except id>` identities.
    pub except_ids: Vec<Uri>,
    /// `<except domain>` domains (lower case).
    pub except_domains: Vec<String>,
}

impl IdentityCondition {
    fn matches(&self, user: &Uri) -> bool {
        if self.one.iter().any(|u| u.same_identity(user)) {
            return true;
        }
        self.many.iter().any(|m| {
            let in_domain = m
                .domain
                .as_deref()
                .is_none_or(|d| d.eq_ignore_ascii_case(user.host()));
            in_domain
                && !m.except_ids.iter().any(|u| u.same_identity(user))
                && !m
                    .except_domains
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(user.host()))
        })
    }
}

/// One `cp:rule`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    /// The rule's `id` attribute.
    pub id: String,
    /// `<is-list-member/>` is among the conditions.
    pub is_list_member: bool,
    /// The `<identity>` condition, when present.
    pub identity: Option<IdentityCondition>,
    /// Names of conditions this store does not understand; any makes the rule not apply.
    pub unknown_conditions: Vec<String>,
    /// `<allow-initiate-conference>`.
    pub allow_initiate: Option<bool>,
    /// `<join-handling>` (allow = true).
    pub join: Option<bool>,
    /// `<allow-anonymity>`.
    pub allow_anonymity: Option<bool>,
}

/// One pre-defined group (an OMA `<list-service>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// The group identity (`list-service@uri`).
    pub uri: Uri,
    /// `<display-name>`.
    pub display_name: Option<String>,
    /// The flattened, de-duplicated `<list>` entries in document order.
    pub members: Vec<Member>,
    /// `<invite-members>` as written; see [`Group::invite_members`].
    pub invite_members_flag: Option<bool>,
    /// `<max-participant-count>`.
    pub max_participants: Option<usize>,
    /// The `cp:ruleset` rules in order.
    pub rules: Vec<Rule>,
    /// The document the group came from.
    pub file: PathBuf,
}

impl Group {
    /// Whether `user` is in the group's list.
    pub fn is_member(&self, user: &Uri) -> bool {
        self.members.iter().any(|m| m.uri.same_identity(user))
    }

    fn applying_rules<'a>(&'a self, user: &'a Uri) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules_applying(user, self.is_member(user))
    }

    /// [`Group::applying_rules`] with the membership already known (`member`).
    fn rules_applying<'a>(
        &'a self,
        user: &'a Uri,
        member: bool,
    ) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules.iter().filter(move |r| {
            r.unknown_conditions.is_empty()
                && (!r.is_list_member || member)
                && r.identity.as_ref().is_none_or(|i| i.matches(user))
        })
    }

    /// Whether the ruleset lets `user` start a session of this group
    /// (`allow-initiate-conference` granted by an applying rule).
    pub fn may_initiate(&self, user: &Uri) -> bool {
        self.applying_rules(user)
            .any(|r| r.allow_initiate == Some(true))
    }

    /// Whether the ruleset lets `user` join a running session (`join-handling`).
    pub fn may_join(&self, user: &Uri) -> bool {
        self.applying_rules(user).any(|r| r.join == Some(true))
    }

    /// Whether the ruleset lets `user` take part anonymously (`allow-anonymity`).
    pub fn allows_anonymity(&self, user: &Uri) -> bool {
        self.applying_rules(user)
            .any(|r| r.allow_anonymity == Some(true))
    }

    /// Whether the server invites the members when the session starts. Absent
    /// `<invite-members>` counts as `true`: this server has no chat rooms members could join
    /// on their own, so a pre-defined group session always invites.
    pub fn invite_members(&self) -> bool {
        self.invite_members_flag.unwrap_or(true)
    }

    /// The [`GroupPolicy`] view for `user`.
    ///
    /// The membership and the applying rules are worked out once for the whole view (each
    /// of the three permissions alone walks the member list again): the spec reads a
    /// policy several times per group session.
    pub fn policy(&self, user: &Uri) -> GroupPolicy {
        let is_member = self.is_member(user);
        let (mut may_initiate, mut may_join, mut allows_anonymity) = (false, false, false);
        for r in self.rules_applying(user, is_member) {
            may_initiate |= r.allow_initiate == Some(true);
            may_join |= r.join == Some(true);
            allows_anonymity |= r.allow_anonymity == Some(true);
        }
        GroupPolicy {
            is_member,
            may_initiate,
            max_participants: self.max_participants,
            invites_members: self.invite_members(),
            may_join,
            allows_anonymity,
        }
    }
}

/// A document that could not be (fully) used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// What is wrong.
    pub reason: String,
    /// `true` when the whole file was skipped, `false` for a part skipped (an `entry-ref`).
    pub skipped: bool,
}

/// What a reload did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Whether the folder was looked at (the poll interval had passed).
    pub checked: bool,
    /// Whether any file was added, changed or removed since the last check.
    pub changed: bool,
    /// Groups available after the reload.
    pub groups: usize,
    /// Problems found in files parsed during this reload.
    pub problems: Vec<Problem>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

#[derive(Clone, Debug)]
struct Loaded {
    stamp: Stamp,
    /// Shared with the index, which a look-up reads without going through `files` (a
    /// `PathBuf` key compares by path components).
    groups: Vec<Arc<Group>>,
}

/// The folder-backed group store.
#[derive(Clone, Debug)]
pub struct GroupStore {
    dir: PathBuf,
    poll: Duration,
    next_check: Option<Instant>,
    files: BTreeMap<PathBuf, Loaded>,
    /// Each group by its identity, with the file that defines it.
    index: Index<(PathBuf, Arc<Group>)>,
}

impl GroupStore {
    /// A store over `dir`, empty until the first [`GroupStore::reload_if_changed`] (or use
    /// [`GroupStore::open`]). `poll` is the least time between two looks at the folder.
    pub fn new(dir: impl Into<PathBuf>, poll: Duration) -> GroupStore {
        GroupStore {
            dir: dir.into(),
            poll,
            next_check: None,
            files: BTreeMap::new(),
            index: Index::default(),
        }
    }

    /// A store over `dir`, loaded now.
    pub fn open(
        dir: impl Into<PathBuf>,
        poll: Duration,
        now: Instant,
    ) -> (GroupStore, ReloadReport) {
        let mut s = GroupStore::new(dir, poll);
        let r = s.reload_if_changed(now);
        (s, r)
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Looks at the folder when the poll interval has passed since the last look (always on
    /// the first call), parses new and changed files and forgets removed ones. Problems are
    /// logged (file and reason) and returned.
    pub fn reload_if_changed(&mut self, now: Instant) -> ReloadReport {
        if self.next_check.is_some_and(|t| now < t) {
            return ReloadReport {
                groups: self.index.len(),
                ..ReloadReport::default()
            };
        }
        self.next_check = now.checked_add(self.poll);
        self.reload()
    }

    /// Looks at the folder now, whatever the poll interval says.
    pub fn reload(&mut self) -> ReloadReport {
        let mut report = ReloadReport {
            checked: true,
            ..ReloadReport::default()
        };
        let listing = match list_xml(&self.dir) {
            Ok(l) => l,
            Err(e) => {
                // A missing folder is not fatal: the groups vanish until it comes back.
                let p = Problem {
                    file: self.dir.clone(),
                    reason: format!("cannot read the groups folder: {e}"),
                    skipped: true,
                };
                log_problem(&p);
                report.problems.push(p);
                report.changed = !self.files.is_empty();
                self.files.clear();
                self.index.clear();
                return report;
            }
        };
        let before = self.files.len();
        self.files.retain(|path, _| listing.contains_key(path));
        report.changed = self.files.len() != before;
        for (path, stamp) in listing {
            if self.files.get(&path).is_some_and(|l| l.stamp == stamp) {
                continue;
            }
            report.changed = true;
            let groups = match load_file(&path, &stamp) {
                Ok((groups, partial)) => {
                    for p in partial {
                        log_problem(&p);
                        report.problems.push(p);
                    }
                    groups
                }
                Err(reason) => {
                    let p = Problem {
                        file: path.clone(),
                        reason,
                        skipped: true,
                    };
                    log_problem(&p);
                    report.problems.push(p);
                    Vec::new()
                }
            };
            let groups = groups.into_iter().map(Arc::new).collect();
            self.files.insert(path, Loaded { stamp, groups });
        }
        if report.changed {
            report.problems.extend(self.rebuild_index());
        }
        report.groups = self.index.len();
        if report.changed {
            tracing::info!(dir = %self.dir.display(), groups = report.groups, "groups loaded");
        }
        report
    }

    /// Rebuilds the URI index; the first file (in name order) defining a group wins.
    fn rebuild_index(&mut self) -> Vec<Problem> {
        let mut problems = Vec::new();
        self.index.clear();
        for (path, loaded) in &self.files {
            for g in &loaded.groups {
                let k = Key::of(&g.uri);
                if let Some((first, _)) = self.index.get(&k) {
                    let p = Problem {
                        file: path.clone(),
                        reason: format!(
                            "group {} is already defined in {}; this definition is ignored",
                            g.uri.raw(),
                            first.display()
                        ),
                        skipped: false,
                    };
                    log_problem(&p);
                    problems.push(p);
                    continue;
                }
                self.index.insert(k, (path.clone(), Arc::clone(g)));
            }
        }
        problems
    }

    /// The group with identity `uri`.
    pub fn group(&self, uri: &Uri) -> Option<&Group> {
        self.index.get(key::lookup(uri)).map(|(_, g)| &**g)
    }

    /// Every group (in no particular order).
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.index.values().map(|(_, g)| &**g)
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the store has no group.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

impl GroupDirectory for GroupStore {
    fn owns(&self, group: &Uri) -> bool {
        self.group(group).is_some()
    }

    fn members(&self, group: &Uri) -> Option<Vec<Uri>> {
        self.group(group)
            .map(|g| g.members.iter().map(|m| m.uri.clone()).collect())
    }

    fn policy(&self, group: &Uri, user: &Uri) -> Option<GroupPolicy> {
        self.group(group).map(|g| g.policy(user))
    }
}

fn log_problem(p: &Problem) {
    if p.skipped {
        tracing::warn!(file = %p.file.display(), reason = %p.reason, "group document skipped");
    } else {
        tracing::warn!(file = %p.file.display(), reason = %p.reason, "part of a group document skipped");
    }
}

fn list_xml(dir: &Path) -> std::io::Result<BTreeMap<PathBuf, Stamp>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let is_xml = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("xml"));
        // Editors' temporary and hidden files are not documents.
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if !is_xml || hidden {
            continue;
        }
        // Follows symlinks, so a linked document counts with its target's stamp.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        out.insert(
            path,
            Stamp {
                modified: meta.modified().ok(),
                len: meta.len(),
            },
        );
    }
    Ok(out)
}

fn load_file(path: &Path, stamp: &Stamp) -> Result<(Vec<Group>, Vec<Problem>), String> {
    if stamp.len > MAX_DOCUMENT_BYTES {
        return Err(format!(
            "file is {} octets, more than the {MAX_DOCUMENT_BYTES} a group document may have",
            stamp.len
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    parse_document(text, path)
}

/// Parses one group document. `file` is recorded in each group and in problems.
pub fn parse_document(text: &str, file: &Path) -> Result<(Vec<Group>, Vec<Problem>), String> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, opts)
        .map_err(|e| format!("cannot parse XML: {e}"))?;
    let root = doc.root_element();
    if !is(root, NS_LIST_SERVICE, "group") {
        return Err(format!(
            "root element is {} not <group> in {NS_LIST_SERVICE}",
            describe(root)
        ));
    }
    let mut groups = Vec::new();
    let mut problems = Vec::new();
    for ls in root
        .children()
        .filter(|n| is(*n, NS_LIST_SERVICE, "list-service"))
    {
        groups.push(parse_list_service(ls, file, &mut problems)?);
    }
    if groups.is_empty() {
        return Err("no <list-service> element".to_owned());
    }
    for (i, g) in groups.iter().enumerate() {
        if groups[..i].iter().any(|h| h.uri.same_identity(&g.uri)) {
            return Err(format!("group {} is defined twice", g.uri.raw()));
        }
    }
    Ok((groups, problems))
}

fn is(n: roxmltree::Node<'_, '_>, ns: &str, name: &str) -> bool {
    n.is_element() && n.tag_name().name() == name && n.tag_name().namespace() == Some(ns)
}

fn describe(n: roxmltree::Node<'_, '_>) -> String {
    match n.tag_name().namespace() {
        Some(ns) => format!("<{}> in {ns}", n.tag_name().name()),
        None => format!("<{}> in no namespace", n.tag_name().name()),
    }
}

fn text_of(n: roxmltree::Node<'_, '_>) -> String {
    n.children()
        .filter_map(|c| c.text())
        .collect::<String>()
        .trim()
        .to_owned()
}

fn parse_bool(n: roxmltree::Node<'_, '_>) -> Result<bool, String> {
    match text_of(n).as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(format!(
            "<{}> must be true or false, not {other:?}",
            n.tag_name().name()
        )),
    }
}

fn parse_sip_uri_attr(n: roxmltree::Node<'_, '_>, attr: &str) -> Result<Uri, String> {
    let what = n.tag_name().name();
    let raw = n
        .attribute(attr)
        .ok_or_else(|| format!("<{what}> without {attr} attribute"))?;
    let u = parse_uri(raw).map_err(|e| format!("<{what} {attr}={raw:?}>: {e}"))?;
    Ok(u)
}

fn parse_list_service(
    ls: roxmltree::Node<'_, '_>,
    file: &Path,
    problems: &mut Vec<Problem>,
) -> Result<Group, String> {
    let uri = parse_sip_uri_attr(ls, "uri")?;
    if uri.scheme() != "sip" && uri.scheme() != "sips" {
        return Err(format!(
            "group uri {:?} is not a sip: or sips: URI",
            uri.raw()
        ));
    }
    let mut g = Group {
        uri,
        display_name: None,
        members: Vec::new(),
        invite_members_flag: None,
        max_participants: None,
        rules: Vec::new(),
        file: file.to_owned(),
    };
    let ctx = |e: String| format!("group {}: {e}", ls.attribute("uri").unwrap_or(""));
    for c in ls.children().filter(|c| c.is_element()) {
        let in_ls = c.tag_name().namespace() == Some(NS_LIST_SERVICE);
        match (in_ls, c.tag_name().name()) {
            (true, "display-name") => g.display_name = Some(text_of(c)),
            (_, "list") if in_ls || c.tag_name().namespace() == Some(NS_RESOURCE_LISTS) => {
                collect_entries(c, file, &mut g.members, problems, 0).map_err(ctx)?;
            }
            (true, "invite-members") => {
                g.invite_members_flag = Some(parse_bool(c).map_err(ctx)?);
            }
            (true, "max-participant-count") => {
                let t = text_of(c);
                match t.parse::<usize>() {
                    Ok(n) if n > 0 => g.max_participants = Some(n),
                    _ => {
                        return Err(ctx(format!(
                            "<max-participant-count> must be a positive integer, not {t:?}"
                        )));
                    }
                }
            }
            _ if is(c, NS_COMMON_POLICY, "ruleset") => {
                for r in c.children().filter(|r| is(*r, NS_COMMON_POLICY, "rule")) {
                    g.rules.push(parse_rule(r).map_err(ctx)?);
                }
            }
            // Other elements (oxe:supported-services …) are extensions this server does
            // not use; the schema allows them.
            _ => {}
        }
    }
    Ok(g)
}

fn collect_entries(
    list: roxmltree::Node<'_, '_>,
    file: &Path,
    out: &mut Vec<Member>,
    problems: &mut Vec<Problem>,
    depth: usize,
) -> Result<(), String> {
    if depth > 16 {
        return Err("<list> nested more than 16 deep".to_owned());
    }
    for c in list.children().filter(|c| c.is_element()) {
        let ns = c.tag_name().namespace();
        if ns != Some(NS_RESOURCE_LISTS) && ns != Some(NS_LIST_SERVICE) {
            continue;
        }
        match c.tag_name().name() {
            "entry" => {
                let uri = parse_sip_uri_attr(c, "uri")?;
                if out.iter().any(|m| m.uri.same_identity(&uri)) {
                    continue;
                }
                let display_name = c
                    .children()
                    .find(|d| d.is_element() && d.tag_name().name() == "display-name")
                    .map(text_of);
                out.push(Member { uri, display_name });
            }
            "list" => collect_entries(c, file, out, problems, depth + 1)?,
            name @ ("entry-ref" | "external") => problems.push(Problem {
                file: file.to_owned(),
                reason: format!("<{name}> cannot be followed from a folder store; skipped"),
                skipped: false,
            }),
            _ => {}
        }
    }
    Ok(())
}

fn is_condition_ns(n: roxmltree::Node<'_, '_>) -> bool {
    matches!(
        n.tag_name().namespace(),
        Some(NS_LIST_SERVICE | NS_COMMON_POLICY | NS_OMA_COMMON_POLICY)
    )
}

fn parse_rule(r: roxmltree::Node<'_, '_>) -> Result<Rule, String> {
    let mut rule = Rule {
        id: r.attribute("id").unwrap_or("").to_owned(),
        ..Rule::default()
    };
    for part in r.children().filter(|c| c.is_element()) {
        if is(part, NS_COMMON_POLICY, "conditions") {
            for c in part.children().filter(|c| c.is_element()) {
                match (is_condition_ns(c), c.tag_name().name()) {
                    (true, "is-list-member") => rule.is_list_member = true,
                    (true, "identity") => rule.identity = Some(parse_identity(c)?),
                    _ => rule.unknown_conditions.push(describe(c)),
                }
            }
        } else if is(part, NS_COMMON_POLICY, "actions") {
            for a in part.children().filter(|c| c.is_element()) {
                if !is_condition_ns(a) {
                    continue;
                }
                let err = |e: String| format!("rule {:?}: {e}", rule.id);
                match a.tag_name().name() {
                    "allow-initiate-conference" => {
                        rule.allow_initiate = Some(parse_bool(a).map_err(err)?);
                    }
                    "allow-anonymity" => {
                        rule.allow_anonymity = Some(parse_bool(a).map_err(err)?);
                    }
                    // Older drafts spell join-handling allow/block, later ones boolean.
                    "join-handling" => {
                        rule.join = Some(match text_of(a).as_str() {
                            "true" | "1" | "allow" => true,
                            "false" | "0" | "block" => false,
                            other => {
                                return Err(err(format!(
                                    "<join-handling> must be true/allow or false/block, not \
                                     {other:?}"
                                )));
                            }
                        });
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(rule)
}

fn parse_identity(n: roxmltree::Node<'_, '_>) -> Result<IdentityCondition, String> {
    let mut id = IdentityCondition::default();
    for c in n.children().filter(|c| c.is_element()) {
        if !is_condition_ns(c) {
            continue;
        }
        match c.tag_name().name() {
            "one" => id.one.push(parse_sip_uri_attr(c, "id")?),
            "many" => {
                let mut m = Many {
                    domain: c.attribute("domain").map(|d| d.trim().to_ascii_lowercase()),
                    ..Many::default()
                };
                for e in c
                    .children()
                    .filter(|e| is_condition_ns(*e) && e.tag_name().name() == "except")
                {
                    if e.attribute("id").is_some() {
                        m.except_ids.push(parse_sip_uri_attr(e, "id")?);
                    } else if let Some(d) = e.attribute("domain") {
                        m.except_domains.push(d.trim().to_ascii_lowercase());
                    }
                }
                id.many.push(m);
            }
            _ => {}
        }
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tests need some instant to count from; virtual time then advances by adding to it.
    #[allow(clippy::disallowed_methods)]
    fn epoch() -> Instant {
        Instant::now()
    }

    fn u(s: &str) -> Uri {
        parse_uri(s).unwrap()
    }

    fn doc(body: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<group xmlns="urn:oma:xml:poc:list-service"
       xmlns:rl="urn:ietf:params:xml:ns:resource-lists"
       xmlns:cp="urn:ietf:params:xml:ns:common-policy">{body}</group>"#
        )
    }

    fn parse(text: &str) -> Result<Vec<Group>, String> {
        parse_document(text, Path::new("t.xml")).map(|(g, _)| g)
    }

    fn shipped() -> GroupStore {
        let (s, r) = GroupStore::open(
            crate::config::DEFAULT_GROUPS_DIR,
            Duration::from_secs(2),
            epoch(),
        );
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        s
    }

    #[test]
    fn shipped_groups_load() {
        let s = shipped();
        assert_eq!(s.len(), 3);
        let friends = u("sip:friends@example.com");
        assert!(s.owns(&friends));
        assert!(s.owns(&u("sip:friends@EXAMPLE.COM;transport=tcp")));
        assert!(!s.owns(&u("sip:enemies@example.com")));
        assert!(!s.owns(&u("sip:friends@example.com:5070")));
        let m = s.members(&friends).unwrap();
        let names: Vec<&str> = m.iter().map(|u| u.user()).collect();
        assert_eq!(names, ["alice", "bob", "carol"]);
        assert_eq!(s.members(&u("sip:nobody@example.com")), None);
        assert_eq!(s.policy(&u("sip:nobody@example.com"), &m[0]), None);
    }

    #[test]
    fn shipped_policies() {
        let s = shipped();
        let alice = u("sip:alice@example.com");
        let mallory = u("sip:mallory@example.org");
        // friends: members may initiate, anyone in example.com too.
        let friends = u("sip:friends@example.com");
        let p = s.policy(&friends, &alice).unwrap();
        assert!(p.is_member && p.may_initiate);
        let p = s.policy(&friends, &mallory).unwrap();
        assert!(!p.is_member && !p.may_initiate);
        let dave = u("sip:dave@example.com");
        let p = s.policy(&friends, &dave).unwrap();
        assert!(
            !p.is_member && p.may_initiate,
            "identity many domain=example.com"
        );
        // members-only: only members may initiate.
        let mo = u("sip:team@example.com");
        assert!(
            s.policy(&mo, &u("sip:erin@example.com"))
                .unwrap()
                .may_initiate
        );
        assert!(!s.policy(&mo, &dave).unwrap().may_initiate);
        // small: three participants at most.
        let small = u("sip:trio@example.com");
        assert_eq!(s.policy(&small, &alice).unwrap().max_participants, Some(3));
        assert_eq!(s.policy(&friends, &alice).unwrap().max_participants, None);
    }

    #[test]
    fn namespaces_not_prefixes() {
        // Same document with other prefixes and default namespaces moved around.
        let text = r#"<l:group xmlns:l="urn:oma:xml:poc:list-service"
               xmlns:x="urn:ietf:params:xml:ns:resource-lists"
               xmlns:pol="urn:ietf:params:xml:ns:common-policy">
          <l:list-service uri="sip:g@example.com">
            <l:list><x:entry uri="sip:a@example.com"/><entry uri="sip:nons@example.com"/></l:list>
            <pol:ruleset><pol:rule id="r"><pol:conditions><l:is-list-member/></pol:conditions>
              <pol:actions><l:allow-initiate-conference>true</l:allow-initiate-conference></pol:actions>
            </pol:rule></pol:ruleset>
          </l:list-service></l:group>"#;
        let g = &parse(text).unwrap()[0];
        // The entry in no namespace is not an RFC 4826 entry.
        assert_eq!(g.members.len(), 1);
        assert!(g.may_initiate(&u("sip:a@example.com")));
        // A <group> with the right name in the wrong namespace is not a group document.
        let wrong = r#"<group xmlns="urn:example:other"><list-service uri="sip:g@x"/></group>"#;
        assert!(parse(wrong).unwrap_err().contains("root element"));
        // A ruleset in the wrong namespace grants nothing.
        let fake = doc(r#"<list-service uri="sip:g@example.com">
            <list><rl:entry uri="sip:a@example.com"/></list>
            <ruleset><rule><actions><allow-initiate-conference>true</allow-initiate-conference>
            </actions></rule></ruleset></list-service>"#);
        assert!(!parse(&fake).unwrap()[0].may_initiate(&u("sip:a@example.com")));
    }

    #[test]
    fn rule_semantics() {
        let text = doc(r#"<list-service uri="sip:g@example.com">
          <list><rl:entry uri="sip:a@example.com"><rl:display-name>A</rl:display-name></rl:entry>
                <rl:list><rl:entry uri="sip:b@example.com"/><rl:entry uri="sip:A@example.com"/>
                  <rl:entry uri="sip:%61@example.com"/></rl:list>
                <rl:entry-ref ref="x"/></list>
          <invite-members>false</invite-members>
          <cp:ruleset>
            <cp:rule id="members-join">
              <cp:conditions><is-list-member/></cp:conditions>
              <cp:actions><join-handling>allow</join-handling></cp:actions>
            </cp:rule>
            <cp:rule id="one">
              <cp:conditions><cp:identity><cp:one id="sip:b@example.com"/></cp:identity></cp:conditions>
              <cp:actions><allow-initiate-conference>true</allow-initiate-conference>
                <allow-anonymity>true</allow-anonymity></cp:actions>
            </cp:rule>
            <cp:rule id="unknown-cond">
              <cp:conditions><cp:sphere value="work"/></cp:conditions>
              <cp:actions><allow-initiate-conference>true</allow-initiate-conference></cp:actions>
            </cp:rule>
            <cp:rule id="deny-does-not-revoke">
              <cp:conditions/>
              <cp:actions><allow-initiate-conference>false</allow-initiate-conference></cp:actions>
            </cp:rule>
            <cp:rule id="many-except">
              <cp:conditions><cp:identity><cp:many domain="example.net">
                <cp:except id="sip:x@example.net"/></cp:many></cp:identity></cp:conditions>
              <cp:actions><allow-initiate-conference>true</allow-initiate-conference></cp:actions>
            </cp:rule>
          </cp:ruleset></list-service>"#);
        let (gs, problems) = parse_document(&text, Path::new("t.xml")).unwrap();
        assert_eq!(problems.len(), 1, "entry-ref reported");
        assert!(!problems[0].skipped);
        let g = &gs[0];
        // Nested list flattened, de-duplicated by identity (user is case-sensitive).
        let users: Vec<&str> = g.members.iter().map(|m| m.uri.user()).collect();
        assert_eq!(users, ["a", "b", "A"]);
        assert_eq!(g.members[0].display_name.as_deref(), Some("A"));
        assert!(!g.invite_members());
        let a = u("sip:a@example.com");
        let b = u("sip:b@example.com");
        assert!(g.may_join(&a) && !g.may_initiate(&a) && !g.allows_anonymity(&a));
        assert!(g.may_initiate(&b) && g.allows_anonymity(&b));
        // The rule with an unknown condition never applies.
        assert!(!g.may_initiate(&u("sip:z@example.com")));
        assert!(g.may_initiate(&u("sip:y@EXAMPLE.NET")));
        assert!(!g.may_initiate(&u("sip:x@example.net")));
        assert!(!g.may_join(&u("sip:y@example.net")));
        // What the specs read (directory.invites_members / may_join / allows_anonymity).
        let pa = g.policy(&a);
        assert!(!pa.invites_members && pa.may_join && !pa.allows_anonymity);
        let pb = g.policy(&b);
        assert!(pb.may_initiate && pb.allows_anonymity && pb.may_join);
        // The policy, worked out in one pass, says what each question alone says.
        for user in [
            "sip:a@example.com",
            "sip:A@example.com",
            "sip:b@example.com",
            "sip:z@example.com",
            "sip:y@EXAMPLE.NET",
            "sip:x@example.net",
        ] {
            let x = u(user);
            let p = g.policy(&x);
            let alone = (
                g.is_member(&x),
                g.may_initiate(&x),
                g.may_join(&x),
                g.allows_anonymity(&x),
            );
            assert_eq!(
                (p.is_member, p.may_initiate, p.may_join, p.allows_anonymity),
                alone,
                "{user}"
            );
        }
    }

    #[test]
    fn bad_documents_are_errors_not_panics() {
        for (text, why) in [
            ("", "cannot parse XML"),
            ("<group", "cannot parse XML"),
            (
                r#"<!DOCTYPE g [<!ENTITY x "y">]><group xmlns="urn:oma:xml:poc:list-service"/>"#,
                "DTD",
            ),
            (&doc(""), "no <list-service>"),
            (&doc("<list-service/>"), "without uri"),
            (&doc(r#"<list-service uri="alice"/>"#), "no scheme"),
            (&doc(r#"<list-service uri="tel:+123"/>"#), "not a sip"),
            (
                &doc(r#"<list-service uri="sip:g@x"><list><rl:entry/></list></list-service>"#),
                "without uri",
            ),
            (
                &doc(
                    r#"<list-service uri="sip:g@x"><max-participant-count>0</max-participant-count></list-service>"#,
                ),
                "max-participant-count",
            ),
            (
                &doc(
                    r#"<list-service uri="sip:g@x"><max-participant-count>many</max-participant-count></list-service>"#,
                ),
                "max-participant-count",
            ),
            (
                &doc(
                    r#"<list-service uri="sip:g@x"><invite-members>yes</invite-members></list-service>"#,
                ),
                "true or false",
            ),
            (
                &doc(
                    r#"<list-service uri="sip:g@x"><cp:ruleset><cp:rule id="r"><cp:actions><join-handling>maybe</join-handling></cp:actions></cp:rule></cp:ruleset></list-service>"#,
                ),
                "join-handling",
            ),
            (
                &doc(r#"<list-service uri="sip:g@x"/><list-service uri="sip:g@X"/>"#),
                "defined twice",
            ),
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.contains(why), "{text}: {err}");
        }
        // Deeply nested lists are refused, not recursed into without end.
        let deep = format!(
            "{}{}{}",
            "<rl:list>".repeat(40),
            r#"<rl:entry uri="sip:a@b"/>"#,
            "</rl:list>".repeat(40)
        );
        let text = doc(&format!(
            r#"<list-service uri="sip:g@x"><list>{deep}</list></list-service>"#
        ));
        assert!(parse(&text).unwrap_err().contains("nested"));
    }

    fn write(dir: &Path, name: &str, text: &str, mtime_secs: u64) {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        // Set the time explicitly: two writes within one file-system tick must still look
        // different to the poller.
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(mtime_secs))
            .unwrap();
    }

    fn group_doc(uri: &str, members: &[&str]) -> String {
        let entries: String = members
            .iter()
            .map(|m| format!(r#"<rl:entry uri="{m}"/>"#))
            .collect();
        doc(&format!(
            r#"<list-service uri="{uri}"><list>{entries}</list></list-service>"#
        ))
    }

    #[test]
    fn reload_on_change_add_remove_and_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(
            d,
            "a.xml",
            &group_doc("sip:a@example.com", &["sip:x@example.com"]),
            1000,
        );
        write(d, "notes.txt", "not a group", 1000);
        let t0 = epoch();
        let poll = Duration::from_secs(2);
        let (mut s, r) = GroupStore::open(d, poll, t0);
        assert!(r.checked && r.changed && r.problems.is_empty());
        assert_eq!(s.len(), 1);
        let a = u("sip:a@example.com");

        // Changed file, bad file and duplicate group: nothing happens before the interval.
        write(
            d,
            "a.xml",
            &group_doc(
                "sip:a@example.com",
                &["sip:x@example.com", "sip:y@example.com"],
            ),
            2000,
        );
        write(d, "b.xml", "<group", 2000);
        write(
            d,
            "c.xml",
            &group_doc("sip:a@example.com", &["sip:z@example.com"]),
            2000,
        );
        let r = s.reload_if_changed(t0 + Duration::from_secs(1));
        assert!(!r.checked);
        assert_eq!(s.members(&a).unwrap().len(), 1);

        let r = s.reload_if_changed(t0 + poll);
        assert!(r.checked && r.changed);
        assert_eq!(s.members(&a).unwrap().len(), 2, "a.xml reloaded");
        assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
        assert!(
            r.problems
                .iter()
                .any(|p| p.file.ends_with("b.xml") && p.skipped)
        );
        assert!(
            r.problems
                .iter()
                .any(|p| p.file.ends_with("c.xml") && p.reason.contains("already defined"))
        );
        assert_eq!(
            s.group(&a).unwrap().file,
            d.join("a.xml"),
            "first file wins"
        );

        // Nothing changed: checked, not changed, no re-parse.
        let r = s.reload_if_changed(t0 + poll * 2);
        assert!(r.checked && !r.changed && r.problems.is_empty());

        // Same mtime but a different length still counts as a change.
        write(d, "a.xml", &group_doc("sip:a@example.com", &[]), 2000);
        let r = s.reload_if_changed(t0 + poll * 3);
        assert!(r.changed);
        assert_eq!(s.members(&a).unwrap().len(), 0);

        // Removing a.xml lets c.xml's definition take over.
        std::fs::remove_file(d.join("a.xml")).unwrap();
        let r = s.reload_if_changed(t0 + poll * 4);
        assert!(r.changed);
        assert_eq!(s.group(&a).unwrap().file, d.join("c.xml"));
        assert_eq!(s.members(&a).unwrap()[0].user(), "z");

        // Fixing the bad file adds its group.
        write(d, "b.xml", &group_doc("sip:b@example.com", &[]), 3000);
        s.reload_if_changed(t0 + poll * 5);
        assert!(s.owns(&u("sip:b@example.com")));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn missing_folder_is_reported_and_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("groups");
        let t0 = epoch();
        let (mut s, r) = GroupStore::open(&gone, Duration::ZERO, t0);
        assert_eq!(r.problems.len(), 1);
        assert!(s.is_empty());
        std::fs::create_dir(&gone).unwrap();
        write(&gone, "g.xml", &group_doc("sip:g@example.com", &[]), 5);
        let r = s.reload_if_changed(t0);
        assert!(r.changed && s.owns(&u("sip:g@example.com")));
    }
}

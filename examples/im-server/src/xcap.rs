//! Group management over XCAP (RFC 4825) for the OMA XDM group application usage
//! (`org.openmobilealliance.groups`, documents of type `application/vnd.oma.poc.groups+xml`,
//! the list-service documents [`crate::groups`] reads).
//!
//! # Resources
//! Below the XCAP root (`xcap_root`, default `/xcap`):
//! - `org.openmobilealliance.groups/users/<XUI>/<document>`: a whole document (GET, PUT,
//!   DELETE). The XUI (usually the owner's SIP URI) and the document name are one
//!   percent-encoded path segment each; no sub-folders.
//! - `…/<document>/~~/<node selector>`: one element (GET, PUT, DELETE) or, with a final
//!   `@name` step, one attribute (GET, PUT, DELETE; a PUT body is the attribute's value as
//!   written in XML, `application/xcap-att+xml`). Steps are `name`, `*`, `name[n]`,
//!   `name[@attr="value"]` (RFC 4825 §6.3). Names are matched by local name: the prefixes
//!   of the selector and its `?xmlns(...)` query are not resolved, which is unambiguous for
//!   this usage since no two of its elements share a local name.
//!
//! # Semantics
//! - Strong ETags, a digest of the stored octets, on every successful response.
//!   `If-Match` (strong comparison) and `If-None-Match` are honoured: a failed condition is
//!   412 (304 for a GET with a matching `If-None-Match`).
//! - A PUT (or an element or attribute PUT/DELETE) whose resulting document does not parse
//!   as a group document is 409 with an `application/xcap-error+xml` body
//!   (`<not-well-formed/>` or `<schema-validation-error/>`: deleting an entry's required
//!   `uri`, say); a group URI already defined by another document is 409
//!   `<uniqueness-failure>`; an element or attribute PUT after which a GET of the same URI
//!   would not return the body is 409 `<cannot-insert/>`; an attribute body that is not an
//!   XML attribute value is 409 `<not-xml-att-value/>`. Nothing is stored then.
//! - A successful write is in the [`Store`] before the response, and published to
//!   [`SharedGroups`] at once: the next session uses it; a session in progress keeps the
//!   members it started with (the endpoint copies them when the session starts).
//!
//! - HTTP Digest authentication with the SIP users when authentication is on
//!   ([`XcapAuth`]); a user reaches only its own XUI's documents.
//!
//! Not done: namespace selectors (`namespace::*`), the `global` tree and `xcap-caps`.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use im_runtime::proto::digest::{Credentials, Verdict, Verifier};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri as HttpUri, header};
use axum::response::{IntoResponse, Response};

use crate::groups::{ManagedGroups, SharedGroups, parse_document};
use crate::metrics::{Metrics, XcapLabels};
use crate::store::Store;
use crate::users::SharedUsers;

mod select;
use select::*;

/// The application usage served.
pub const AUID: &str = "org.openmobilealliance.groups";
/// MIME type of a group document.
pub const MIME_GROUPS: &str = "application/vnd.oma.poc.groups+xml";
/// MIME type of an XCAP element (RFC 4825 §15.2.1).
pub const MIME_ELEMENT: &str = "application/xcap-el+xml";
/// MIME type of an XCAP attribute (RFC 4825 §15.2.2).
pub const MIME_ATTRIBUTE: &str = "application/xcap-att+xml";
/// MIME type of an XCAP error body (RFC 4825 §15.2.4).
pub const MIME_ERROR: &str = "application/xcap-error+xml";
/// Namespace of XCAP error bodies.
pub const NS_XCAP_ERROR: &str = "urn:ietf:params:xml:ns:xcap-error";

/// Largest request body accepted, in octets.
pub const MAX_BODY: usize = 1 << 20;

/// The XCAP server state: the store, the groups it publishes to, and a lock that makes each
/// write's check-then-store atomic.
pub struct Xcap {
    root: String,
    store: Arc<dyn Store>,
    groups: SharedGroups,
    write: Mutex<()>,
    metrics: Option<Arc<Metrics>>,
    auth: Option<XcapAuth>,
}

/// HTTP Digest authentication for XCAP (RFC 4825 §7 requires it; RFC 7616), with the same
/// users and HA1 values as SIP. An authenticated user reaches only the documents of its own
/// XUI (`users/sip:<user>@<realm>/…`): OMA XDM lets a user manage its own groups, and the
/// store has no other owner to consult.
pub struct XcapAuth {
    verifier: Verifier,
    users: SharedUsers,
    /// Makes each nonce's random part unique (the HMAC, not this, makes it unforgeable).
    counter: AtomicU64,
}

impl XcapAuth {
    /// Authentication with `verifier` (realm, algorithms, nonce lifetime) over `users`.
    pub fn new(verifier: Verifier, users: SharedUsers) -> XcapAuth {
        XcapAuth {
            verifier,
            users,
            counter: AtomicU64::new(0),
        }
    }

    /// `Ok(user)` for a request whose credentials are right, else the 401 to send.
    // The HTTP handler is the IO edge here: it reads the clock for the nonce's age.
    #[allow(clippy::disallowed_methods)]
    fn check(&self, method: &Method, headers: &HeaderMap) -> Result<String, Response> {
        let now = Instant::now();
        let verdict = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Credentials::parse(v).ok())
            .map(|c| {
                self.verifier
                    .verify(&c, method.as_str(), now, |u, r| self.users.lookup(u, r))
            });
        let (stale, same) = match verdict {
            Some(Verdict::Authenticated { username, .. }) => return Ok(username),
            Some(Verdict::Challenge {
                stale, same_nonce, ..
            }) => (stale, same_nonce),
            None => (false, false),
        };
        // A wrong answer to our fresh nonce is challenged with that nonce again (see
        // `Verdict::Challenge`), so a client stops instead of retrying the same password.
        let nonce = match (same, headers.get(header::AUTHORIZATION)) {
            (true, Some(v)) => v
                .to_str()
                .ok()
                .and_then(|v| Credentials::parse(v).ok())
                .map(|c| c.nonce),
            _ => None,
        }
        .unwrap_or_else(|| {
            let n = self.counter.fetch_add(1, Ordering::Relaxed);
            self.verifier.nonce(now, n.to_be_bytes())
        });
        let mut r = (StatusCode::UNAUTHORIZED, "").into_response();
        for c in self.verifier.challenges(&nonce, stale) {
            if let Ok(v) = HeaderValue::from_str(&c) {
                r.headers_mut().append(header::WWW_AUTHENTICATE, v);
            }
        }
        Err(r)
    }

    /// Whether `user` owns the document at `path` (its XUI is `sip:user@realm`).
    fn owns(&self, xui: &str, user: &str) -> bool {
        let Some(rest) = xui
            .get(..4)
            .filter(|s| s.eq_ignore_ascii_case("sip:"))
            .and_then(|_| xui.get(4..))
        else {
            return false;
        };
        rest.split_once('@')
            .is_some_and(|(u, host)| u == user && host.eq_ignore_ascii_case(self.verifier.realm()))
    }
}

/// A response before it becomes HTTP.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: StatusCode,
    /// `Content-Type`, when there is a body.
    pub content_type: Option<&'static str>,
    /// The document's ETag after the request.
    pub etag: Option<String>,
    /// Body octets.
    pub body: Vec<u8>,
}

/// The XCAP error detail when another server sharing the store changed the document
/// between this request's checks and its write (RFC 4825 §11.2 allows a phrase).
const CHANGED_MEANWHILE: &str =
    "<constraint-failure phrase=\"the document was changed meanwhile; retry\"/>";

impl Reply {
    fn status(status: StatusCode) -> Reply {
        Reply {
            status,
            content_type: None,
            etag: None,
            body: Vec::new(),
        }
    }

    fn error(status: StatusCode, detail: &str) -> Reply {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xcap-error xmlns=\"{NS_XCAP_ERROR}\">{detail}</xcap-error>\n"
        );
        Reply {
            status,
            content_type: Some(MIME_ERROR),
            etag: None,
            body: body.into_bytes(),
        }
    }

    fn conflict(detail: &str) -> Reply {
        Reply::error(StatusCode::CONFLICT, detail)
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut r = (self.status, self.body).into_response();
        let h = r.headers_mut();
        h.remove(header::CONTENT_TYPE);
        if let Some(ct) = self.content_type {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        if let Some(e) = self.etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
            h.insert(header::ETAG, e);
        }
        r
    }
}

/// The strong ETag of a document: a 64-bit FNV-1a digest of its octets, so it is the same
/// after a restart.
pub fn etag(doc: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in doc {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

/// A parsed request target.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    key: String,
    /// The document owner's XUI, decoded.
    xui: String,
    selector: Option<Vec<Step>>,
}

impl Xcap {
    /// An XCAP server over `store`, publishing to `groups`. `root` is the XCAP root path
    /// (see [`crate::config::parse_xcap_root`]).
    pub fn new(root: &str, store: Arc<dyn Store>, groups: SharedGroups) -> Xcap {
        Xcap {
            root: root.trim_end_matches('/').to_owned(),
            store,
            groups,
            write: Mutex::new(()),
            metrics: None,
            auth: None,
        }
    }

    /// Requires HTTP Digest credentials of `auth`'s users on every XCAP request.
    pub fn with_auth(mut self, auth: XcapAuth) -> Xcap {
        self.auth = Some(auth);
        self
    }

    /// Counts requests in `metrics` and serves `/metrics` and `/health` beside XCAP.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Xcap {
        self.metrics = Some(metrics);
        self
    }

    /// Reads every group document in the store and publishes their groups; returns how
    /// many groups there are. Called at start-up and after each write. (Other documents,
    /// such as users' credentials, share the store under other prefixes.)
    pub fn publish(&self) -> Result<usize, crate::store::StoreError> {
        let docs = self.store.list_prefix(&format!("{AUID}/"))?;
        let (m, _problems) = ManagedGroups::from_documents(&docs);
        let n = m.len();
        self.groups.set_managed(m);
        Ok(n)
    }

    fn target(&self, path: &str) -> Option<Target> {
        let rest = path.strip_prefix(&self.root)?.strip_prefix('/')?;
        let (doc, sel) = match rest.split_once("/~~/") {
            Some((d, s)) => (d, Some(s)),
            None => (rest, None),
        };
        let segs: Vec<&str> = doc.split('/').collect();
        let [auid, "users", xui, name] = segs.as_slice() else {
            return None;
        };
        if *auid != AUID {
            return None;
        }
        let xui = pct_decode(xui)?;
        let name = pct_decode(name)?;
        if xui.is_empty() || name.is_empty() || xui.contains('/') || name.contains('/') {
            return None;
        }
        let selector = match sel {
            None => None,
            Some(s) => {
                let s = pct_decode(s)?;
                let steps: Option<Vec<Step>> =
                    split_steps(&s).into_iter().map(parse_step).collect();
                let steps = steps?;
                // Only the last step may select an attribute.
                let n = steps.len();
                if n == 0
                    || steps[..n - 1]
                        .iter()
                        .any(|s| matches!(s, Step::Attribute(_)))
                {
                    return None;
                }
                Some(steps)
            }
        };
        Some(Target {
            key: format!("{AUID}/users/{xui}/{name}"),
            xui,
            selector,
        })
    }

    /// Handles one request. Synchronous: the store is embedded and each call is short.
    pub fn handle(&self, method: &Method, path: &str, headers: &HeaderMap, body: &[u8]) -> Reply {
        let Some(target) = self.target(path) else {
            return Reply::status(StatusCode::NOT_FOUND);
        };
        if body.len() > MAX_BODY {
            return Reply::status(StatusCode::PAYLOAD_TOO_LARGE);
        }
        let writing = *method == Method::PUT || *method == Method::DELETE;
        if !writing && *method != Method::GET {
            return Reply::status(StatusCode::METHOD_NOT_ALLOWED);
        }
        // Writers hold the lock from reading the current document to publishing the new
        // one, so an If-Match checked here is still true when the write lands.
        let _guard = writing.then(|| self.write.lock().unwrap_or_else(|e| e.into_inner()));
        let current = match self.store.get(&target.key) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("xcap: {e}");
                return Reply::status(StatusCode::INTERNAL_SERVER_ERROR);
            }
        };
        let tag = current.as_deref().map(etag);
        if let Some(status) = preconditions(headers, tag.as_deref(), *method == Method::GET) {
            return Reply {
                etag: tag,
                ..Reply::status(status)
            };
        }
        match (&target.selector, method) {
            (None, &Method::GET) => match current {
                Some(doc) => Reply {
                    status: StatusCode::OK,
                    content_type: Some(MIME_GROUPS),
                    etag: tag,
                    body: doc,
                },
                None => Reply::status(StatusCode::NOT_FOUND),
            },
            (None, &Method::PUT) => {
                if let Some(ct) = headers.get(header::CONTENT_TYPE) {
                    let ct = ct.to_str().unwrap_or("").split(';').next().unwrap_or("");
                    let ct = ct.trim().to_ascii_lowercase();
                    if ![MIME_GROUPS, "application/xml", "text/xml"].contains(&ct.as_str()) {
                        return Reply::status(StatusCode::UNSUPPORTED_MEDIA_TYPE);
                    }
                }
                self.write_doc(&target.key, body.to_vec(), current.as_deref())
            }
            (None, &Method::DELETE) => {
                if current.is_none() {
                    return Reply::status(StatusCode::NOT_FOUND);
                }
                match self.store.put_if(&target.key, current.as_deref(), None) {
                    Ok(true) => {
                        self.republish();
                        Reply::status(StatusCode::OK)
                    }
                    Ok(false) => Reply::conflict(CHANGED_MEANWHILE),
                    Err(e) => {
                        tracing::warn!("xcap: {e}");
                        Reply::status(StatusCode::INTERNAL_SERVER_ERROR)
                    }
                }
            }
            (Some(steps), m) => {
                let Some(doc) = current else {
                    return Reply::status(StatusCode::NOT_FOUND);
                };
                let Ok(text) = String::from_utf8(doc) else {
                    return Reply::status(StatusCode::INTERNAL_SERVER_ERROR);
                };
                if let Some(Step::Attribute(attr)) = steps.last() {
                    let ct = headers
                        .get(header::CONTENT_TYPE)
                        .map(|v| v.to_str().unwrap_or(""));
                    let parents = &steps[..steps.len() - 1];
                    return self.attribute(&target.key, &text, parents, attr, m, ct, body, tag);
                }
                self.node(&target.key, &text, steps, m, body, tag)
            }
            (None, _) => Reply::status(StatusCode::METHOD_NOT_ALLOWED),
        }
    }

    /// Validates `doc`, stores it in place of `expected` (the document the request was
    /// checked against; `None`: there was none) and publishes. 201 when created, else 200;
    /// 409 when another server changed the document meanwhile.
    fn write_doc(&self, key: &str, doc: Vec<u8>, expected: Option<&[u8]>) -> Reply {
        let created = expected.is_none();
        let Ok(text) = std::str::from_utf8(&doc) else {
            return Reply::conflict("<not-utf-8/>");
        };
        let groups = match parse_document(text, std::path::Path::new(key)) {
            Ok((g, _)) => g,
            Err(reason) => {
                let detail = if reason.starts_with("cannot parse XML") {
                    "<not-well-formed/>".to_owned()
                } else {
                    format!(
                        "<schema-validation-error phrase=\"{}\"/>",
                        xml_escape(&reason)
                    )
                };
                return Reply::conflict(&detail);
            }
        };
        let managed = self.groups.managed();
        for g in &groups {
            if managed.defined_by(&g.uri).is_some_and(|k| k != key) {
                return Reply::conflict(&format!(
                    "<uniqueness-failure><exists field=\"group/list-service/@uri\"><alt-value>{}</alt-value></exists></uniqueness-failure>",
                    xml_escape(g.uri.raw())
                ));
            }
        }
        match self.store.put_if(key, expected, Some(&doc)) {
            Ok(true) => {}
            Ok(false) => return Reply::conflict(CHANGED_MEANWHILE),
            Err(e) => {
                tracing::warn!("xcap: {e}");
                return Reply::status(StatusCode::INTERNAL_SERVER_ERROR);
            }
        }
        self.republish();
        Reply {
            etag: Some(etag(&doc)),
            ..Reply::status(if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            })
        }
    }

    fn republish(&self) {
        if let Err(e) = self.publish() {
            tracing::warn!("xcap: cannot publish the groups: {e}");
        }
    }

    /// An attribute request (the selector's last step is `@attr`, `parents` select its
    /// element) on the document `text`: GET (RFC 4825 §8.3), PUT (§8.2: create or replace,
    /// the body being the attribute value as written in XML, `application/xcap-att+xml`),
    /// DELETE (§8.4). The attribute is matched by local name and created without a prefix:
    /// every attribute of this usage (`uri`, `name`, `id`) is unqualified.
    #[allow(clippy::too_many_arguments)]
    fn attribute(
        &self,
        key: &str,
        text: &str,
        parents: &[Step],
        attr: &str,
        method: &Method,
        content_type: Option<&str>,
        body: &[u8],
        tag: Option<String>,
    ) -> Reply {
        let Some(doc) = parse_xml(text) else {
            return Reply::status(StatusCode::INTERNAL_SERVER_ERROR);
        };
        // Namespace declarations are not attributes in XCAP's model (§6.4 reaches them
        // with a namespace selector, which this server does not offer).
        if attr == "xmlns" || !valid_attribute_name(attr) {
            return Reply::status(StatusCode::NOT_FOUND);
        }
        let parent = select(&doc, parents);
        let existing = parent.and_then(|n| n.attributes().find(|a| a.name() == attr));
        match *method {
            Method::GET => match existing {
                Some(a) => Reply {
                    status: StatusCode::OK,
                    content_type: Some(MIME_ATTRIBUTE),
                    etag: tag,
                    // The value as written in the document (its escaped form), §8.3.
                    body: text[a.range_value()].as_bytes().to_vec(),
                },
                None => Reply::status(StatusCode::NOT_FOUND),
            },
            Method::DELETE => {
                let Some(a) = existing else {
                    return Reply::status(StatusCode::NOT_FOUND);
                };
                let r = a.range();
                // The white space before the attribute goes with it.
                let start = text[..r.start].trim_end().len();
                let new = format!("{}{}", &text[..start], &text[r.end..]);
                // A later GET of the URI is 404 whatever the selector (the attribute is
                // gone from the one element that had it); the group parser is the schema
                // check (a required `uri` cannot go).
                self.write_doc(key, new.into_bytes(), Some(text.as_bytes()))
            }
            Method::PUT => {
                if let Some(ct) = content_type {
                    let ct = ct.split(';').next().unwrap_or("").trim();
                    if !ct.eq_ignore_ascii_case(MIME_ATTRIBUTE) {
                        return Reply::status(StatusCode::UNSUPPORTED_MEDIA_TYPE);
                    }
                }
                let Ok(value) = std::str::from_utf8(body) else {
                    return Reply::conflict("<not-utf-8/>");
                };
                let Some((quoted, decoded)) = att_value(attr, value) else {
                    return Reply::conflict("<not-xml-att-value/>");
                };
                let Some(el) = parent else {
                    return Reply::conflict("<no-parent/>");
                };
                let created = existing.is_none();
                let new = match existing {
                    Some(a) => {
                        let r = a.range();
                        let qname = &text[a.range_qname()];
                        format!("{}{qname}={quoted}{}", &text[..r.start], &text[r.end..])
                    }
                    None => {
                        // Right after the element's name: the one place in a start tag
                        // found without parsing the attributes' values.
                        let r = el.range();
                        let open = &text[r.start + 1..];
                        let Some(end) =
                            open.find(|c: char| c.is_whitespace() || c == '/' || c == '>')
                        else {
                            return Reply::status(StatusCode::INTERNAL_SERVER_ERROR);
                        };
                        let at = r.start + 1 + end;
                        format!("{} {attr}={quoted}{}", &text[..at], &text[at..])
                    }
                };
                // §8.2.5: a GET of the request URI must now return what was PUT; it does
                // not when the value breaks the selector leading to it (changing the `uri`
                // an `entry[@uri="…"]` step names, say).
                let same = parse_xml(&new).is_some_and(|d| {
                    select(&d, parents).and_then(|n| n.attribute(attr)) == Some(decoded.as_str())
                });
                if !same {
                    return Reply::conflict("<cannot-insert/>");
                }
                let mut r = self.write_doc(key, new.into_bytes(), Some(text.as_bytes()));
                if created && r.status == StatusCode::OK {
                    r.status = StatusCode::CREATED;
                }
                r
            }
            _ => Reply::status(StatusCode::METHOD_NOT_ALLOWED),
        }
    }

    /// An element or attribute request on the document `text`.
    fn node(
        &self,
        key: &str,
        text: &str,
        steps: &[Step],
        method: &Method,
        body: &[u8],
        tag: Option<String>,
    ) -> Reply {
        let opts = roxmltree::ParsingOptions {
            allow_dtd: false,
            ..roxmltree::ParsingOptions::default()
        };
        let Ok(doc) = roxmltree::Document::parse_with_options(text, opts) else {
            return Reply::status(StatusCode::INTERNAL_SERVER_ERROR);
        };
        let (last, parents) = steps.split_last().expect("a selector has a step");
        let found = select(&doc, steps);
        match (method, found) {
            (&Method::GET, Some(n)) => Reply {
                status: StatusCode::OK,
                content_type: Some(MIME_ELEMENT),
                etag: tag,
                body: text[n.range()].as_bytes().to_vec(),
            },
            (&Method::DELETE, Some(n)) => {
                if n == doc.root_element() {
                    return Reply::conflict("<cannot-delete/>");
                }
                let r = n.range();
                let new = format!("{}{}", &text[..r.start], &text[r.end..]);
                self.write_doc(key, new.into_bytes(), Some(text.as_bytes()))
            }
            (&Method::PUT, found) => {
                let Ok(el) = std::str::from_utf8(body) else {
                    return Reply::conflict("<not-utf-8/>");
                };
                let el = el.trim();
                if !element_matches(el, last) {
                    return Reply::conflict("<cannot-insert/>");
                }
                let new = match found {
                    Some(n) => {
                        let r = n.range();
                        format!("{}{el}{}", &text[..r.start], &text[r.end..])
                    }
                    None => {
                        // A position predicate names an existing element; it cannot create.
                        if let Step::Element { preds, .. } = last
                            && preds.iter().any(|p| matches!(p, Pred::Position(_)))
                        {
                            return Reply::status(StatusCode::NOT_FOUND);
                        }
                        let Some(parent) = select(&doc, parents) else {
                            return Reply::conflict("<no-parent/>");
                        };
                        match insert_last_child(text, parent, el) {
                            Some(t) => t,
                            None => return Reply::status(StatusCode::INTERNAL_SERVER_ERROR),
                        }
                    }
                };
                let created = found.is_none();
                let mut r = self.write_doc(key, new.into_bytes(), Some(text.as_bytes()));
                if created && r.status == StatusCode::OK {
                    r.status = StatusCode::CREATED;
                }
                r
            }
            _ => Reply::status(StatusCode::NOT_FOUND),
        }
    }

    /// An axum router serving this XCAP server (every path; unknown ones are 404).
    pub fn router(self: Arc<Self>) -> axum::Router {
        let mut r = axum::Router::new();
        if let Some(m) = self.metrics.clone() {
            let text = "text/plain; version=0.0.4; charset=utf-8";
            r = r
                .route(
                    "/metrics",
                    axum::routing::get(move || {
                        let m = m.clone();
                        async move { ([(header::CONTENT_TYPE, text)], m.encode()) }
                    }),
                )
                .route("/health", axum::routing::get(|| async { "ok\n" }));
        }
        r.fallback(handler)
            .with_state(self)
            .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
    }
}

async fn handler(
    State(x): State<Arc<Xcap>>,
    method: Method,
    uri: HttpUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(auth) = &x.auth {
        match auth.check(&method, &headers) {
            Err(challenge) => {
                x.count(&method, StatusCode::UNAUTHORIZED);
                tracing::debug!(%method, path = uri.path(), status = 401, "xcap");
                return challenge;
            }
            Ok(user) => {
                // Someone else's documents: 403 (the path names a document that exists or
                // not; telling which would leak another user's groups).
                let xui = x.target(uri.path()).map(|t| t.xui);
                if xui.is_some_and(|xui| !auth.owns(&xui, &user)) {
                    x.count(&method, StatusCode::FORBIDDEN);
                    tracing::debug!(%method, path = uri.path(), status = 403, %user, "xcap");
                    return StatusCode::FORBIDDEN.into_response();
                }
            }
        }
    }
    let reply = x.handle(&method, uri.path(), &headers, &body);
    x.count(&method, reply.status);
    tracing::debug!(%method, path = uri.path(), status = reply.status.as_u16(), "xcap");
    reply.into_response()
}

impl Xcap {
    fn count(&self, method: &Method, status: StatusCode) {
        if let Some(m) = &self.metrics {
            m.xcap_requests
                .get_or_create(&XcapLabels {
                    method: method.as_str().to_owned(),
                    status: status.as_str().to_owned(),
                })
                .inc();
        }
    }
}

/// Serves `xcap` on `listener` from a thread of its own with its own single-threaded
/// runtime, so HTTP clients never delay the SIP workers.
pub fn spawn(listener: TcpListener, xcap: Arc<Xcap>) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("xcap".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("xcap: cannot start a runtime: {e}");
                    return;
                }
            };
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!("xcap: {e}");
                        return;
                    }
                };
                if let Err(e) = axum::serve(listener, xcap.router()).await {
                    tracing::error!("xcap server stopped: {e}");
                }
            });
        })?;
    Ok(())
}

/// The status a failed `If-Match` / `If-None-Match` calls for, if any (RFC 9110 §13.1).
fn preconditions(headers: &HeaderMap, current: Option<&str>, get: bool) -> Option<StatusCode> {
    let list = |name: header::HeaderName| -> Option<Vec<String>> {
        let vals: Vec<String> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        (!vals.is_empty()).then_some(vals)
    };
    if let Some(tags) = list(header::IF_MATCH) {
        // Strong comparison: a weak tag never matches.
        let ok = match current {
            None => false,
            Some(c) => tags.iter().any(|t| t == "*" || t == c),
        };
        if !ok {
            return Some(StatusCode::PRECONDITION_FAILED);
        }
    }
    if let Some(tags) = list(header::IF_NONE_MATCH) {
        let matched = match current {
            None => false,
            Some(c) => tags
                .iter()
                .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == c),
        };
        if matched {
            return Some(if get {
                StatusCode::NOT_MODIFIED
            } else {
                StatusCode::PRECONDITION_FAILED
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xcap() -> (tempfile::TempDir, Xcap) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::RedbStore::open(&dir.path().join("s.redb")).unwrap();
        let folder =
            crate::groups::GroupStore::new(dir.path(), std::time::Duration::from_secs(3600));
        let groups = SharedGroups::start(folder);
        (dir, Xcap::new("/xcap", Arc::new(store), groups))
    }

    #[test]
    fn targets_outside_the_usage_are_not_found() {
        let (_d, x) = xcap();
        let t = x
            .target("/xcap/org.openmobilealliance.groups/users/sip%3Aa%40b/index")
            .unwrap();
        assert_eq!(t.key, "org.openmobilealliance.groups/users/sip:a@b/index");
        assert_eq!(t.selector, None);
        for bad in [
            "/other/org.openmobilealliance.groups/users/x/index",
            "/xcap/resource-lists/users/x/index",
            "/xcap/org.openmobilealliance.groups/global/index",
            "/xcap/org.openmobilealliance.groups/users/x/a/b",
            "/xcap/org.openmobilealliance.groups/users/a%2Fb/index",
            "/xcap/org.openmobilealliance.groups/users/x/index/~~/a/@b/c",
            "/xcap/org.openmobilealliance.groups/users/x/index/~~/a[0]",
        ] {
            assert_eq!(x.target(bad), None, "{bad}");
        }
    }

    #[test]
    fn user_documents_are_never_served_nor_published() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(crate::store::RedbStore::open(&dir.path().join("s.redb")).unwrap());
        crate::users::add(store.as_ref(), "alice", "example.com", "pw").unwrap();
        let folder =
            crate::groups::GroupStore::new(dir.path(), std::time::Duration::from_secs(3600));
        let x = Xcap::new("/xcap", store, SharedGroups::start(folder));
        for path in [
            "/xcap/imspec.users/alice@example.com",
            "/xcap/imspec.users/users/alice@example.com/index",
            "/xcap/org.openmobilealliance.groups/../imspec.users/alice@example.com",
            "/xcap/org.openmobilealliance.groups/users/..%2Fimspec.users/alice@example.com",
        ] {
            assert_eq!(x.target(path), None, "{path}");
            let r = x.handle(&Method::GET, path, &HeaderMap::new(), b"");
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        }
        // The user document is not taken for a (broken) group document either.
        assert_eq!(x.publish().unwrap(), 0);
    }

    #[test]
    fn selector_steps_keep_slashes_inside_quotes() {
        let steps: Vec<Step> = split_steps(r#"g/rl:entry[@uri="a/b"][2]/@uri"#)
            .into_iter()
            .map(|s| parse_step(s).unwrap())
            .collect();
        assert_eq!(
            steps,
            vec![
                Step::Element {
                    name: "g".into(),
                    preds: vec![]
                },
                Step::Element {
                    name: "entry".into(),
                    preds: vec![Pred::Attr("uri".into(), "a/b".into()), Pred::Position(2)]
                },
                Step::Attribute("uri".into()),
            ]
        );
    }

    #[test]
    fn preconditions_follow_rfc_9110() {
        let h = |name: header::HeaderName, v: &str| {
            let mut m = HeaderMap::new();
            m.insert(name, HeaderValue::from_str(v).unwrap());
            m
        };
        let cur = Some("\"a\"");
        assert_eq!(
            preconditions(&h(header::IF_MATCH, "\"a\""), cur, false),
            None
        );
        assert_eq!(
            preconditions(&h(header::IF_MATCH, "\"b\", \"a\""), cur, false),
            None
        );
        // Strong comparison: a weak tag does not match.
        assert_eq!(
            preconditions(&h(header::IF_MATCH, "W/\"a\""), cur, false),
            Some(StatusCode::PRECONDITION_FAILED)
        );
        assert_eq!(
            preconditions(&h(header::IF_MATCH, "*"), None, false),
            Some(StatusCode::PRECONDITION_FAILED)
        );
        assert_eq!(
            preconditions(&h(header::IF_NONE_MATCH, "*"), None, false),
            None
        );
        assert_eq!(
            preconditions(&h(header::IF_NONE_MATCH, "W/\"a\""), cur, true),
            Some(StatusCode::NOT_MODIFIED)
        );
    }

    #[test]
    fn entry_put_into_an_empty_list_opens_it() {
        let (_d, x) = xcap();
        let path = "/xcap/org.openmobilealliance.groups/users/u/index";
        let doc = r#"<g:group xmlns:g="urn:oma:xml:poc:list-service"><g:list-service uri="sip:g@x"><g:list/></g:list-service></g:group>"#;
        let put =
            |p: &str, body: &str| x.handle(&Method::PUT, p, &HeaderMap::new(), body.as_bytes());
        assert_eq!(put(path, doc).status, StatusCode::CREATED);
        let entry = format!("{path}/~~/group/list-service/list/entry[@uri=\"sip:m@x\"]");
        let r = put(
            &entry,
            r#"<g:entry xmlns:g="urn:oma:xml:poc:list-service" uri="sip:m@x"/>"#,
        );
        assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
        let got = x.handle(&Method::GET, path, &HeaderMap::new(), b"");
        assert_eq!(
            String::from_utf8(got.body).unwrap(),
            doc.replace(
                "<g:list/>",
                r#"<g:list><g:entry xmlns:g="urn:oma:xml:poc:list-service" uri="sip:m@x"/></g:list>"#
            )
        );
        let uri: im_runtime::machine::Uri = crate::uri::parse_uri("sip:g@x").unwrap();
        assert_eq!(
            im_runtime::machine::GroupDirectory::members(&x.groups, &uri)
                .unwrap()
                .len(),
            1
        );
    }

    /// RFC 4825 §8.2/§8.4 for attributes: create, replace, read, delete, and the 409s.
    #[test]
    fn attribute_put_and_delete() {
        let (_d, x) = xcap();
        let path = "/xcap/org.openmobilealliance.groups/users/u/index";
        let doc = r#"<g:group xmlns:g="urn:oma:xml:poc:list-service"><g:list-service uri="sip:g@x"><g:list><g:entry uri="sip:a@x"/><g:entry  uri='sip:b@x' /></g:list></g:list-service></g:group>"#;
        let att = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
            h
        };
        let req =
            |m: Method, p: &str, h: &HeaderMap, body: &str| x.handle(&m, p, h, body.as_bytes());
        let none = HeaderMap::new();
        let ct = att(MIME_ATTRIBUTE);
        assert_eq!(
            req(Method::PUT, path, &none, doc).status,
            StatusCode::CREATED
        );
        let get = |p: &str| String::from_utf8(req(Method::GET, p, &none, "").body).unwrap();
        let members = || {
            let uri = crate::uri::parse_uri("sip:g@x").unwrap();
            im_runtime::machine::GroupDirectory::members(&x.groups, &uri)
                .unwrap()
                .iter()
                .map(|m| m.raw().to_owned())
                .collect::<Vec<_>>()
        };
        let second = format!("{path}/~~/group/list-service/list/entry[2]/@uri");

        // Replace: the quoting and spacing around other attributes stay as written.
        let before = req(Method::GET, path, &none, "").etag.unwrap();
        let r = req(Method::PUT, &second, &ct, "sip:c@x");
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        assert_ne!(r.etag.as_deref(), Some(before.as_str()));
        assert_eq!(get(path), doc.replace("uri='sip:b@x'", "uri=\"sip:c@x\""));
        assert_eq!(get(&second), "sip:c@x");
        assert_eq!(members(), ["sip:a@x", "sip:c@x"]);
        // The stale ETag of the document fails as for elements.
        let mut stale = att(MIME_ATTRIBUTE);
        stale.insert(header::IF_MATCH, HeaderValue::from_str(&before).unwrap());
        let r = req(Method::PUT, &second, &stale, "sip:d@x");
        assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);

        // Create an optional attribute (the list's name), then delete it.
        let name = format!("{path}/~~/group/list-service/list/@name");
        assert_eq!(
            req(Method::GET, &name, &none, "").status,
            StatusCode::NOT_FOUND
        );
        let r = req(Method::PUT, &name, &ct, "Tom &amp; Jerry's");
        assert_eq!(r.status, StatusCode::CREATED, "{r:?}");
        assert!(
            get(path).contains(r#"<g:list name="Tom &amp; Jerry's">"#),
            "{}",
            get(path)
        );
        assert_eq!(get(&name), "Tom &amp; Jerry's");
        let r = req(Method::DELETE, &name, &none, "");
        assert_eq!(r.status, StatusCode::OK, "{r:?}");
        assert_eq!(get(path), doc.replace("uri='sip:b@x'", "uri=\"sip:c@x\""));
        assert_eq!(
            req(Method::DELETE, &name, &none, "").status,
            StatusCode::NOT_FOUND
        );

        // What the RFC refuses, storing nothing.
        let kept = get(path);
        let conflict = |r: Reply, detail: &str| {
            assert_eq!(r.status, StatusCode::CONFLICT, "{r:?}");
            let body = String::from_utf8(r.body).unwrap();
            assert!(body.contains(detail), "{detail}: {body}");
        };
        // Not an attribute value.
        conflict(req(Method::PUT, &name, &ct, "a<b"), "<not-xml-att-value/>");
        conflict(
            req(Method::PUT, &name, &ct, "a & b"),
            "<not-xml-att-value/>",
        );
        conflict(req(Method::PUT, &name, &ct, "\"'"), "<not-xml-att-value/>");
        // Not a SIP URI: the document no longer validates.
        conflict(
            req(Method::PUT, &second, &ct, "nonsense"),
            "schema-validation-error",
        );
        // A required attribute cannot go.
        conflict(
            req(Method::DELETE, &second, &none, ""),
            "schema-validation-error",
        );
        // The selector names the value being changed: a GET would not find it again.
        let by_uri = format!("{path}/~~/group/list-service/list/entry[@uri=\"sip:a@x\"]/@uri");
        assert_eq!(get(&by_uri), "sip:a@x");
        conflict(
            req(Method::PUT, &by_uri, &ct, "sip:z@x"),
            "<cannot-insert/>",
        );
        // Same value: fine (idempotent).
        assert_eq!(
            req(Method::PUT, &by_uri, &ct, "sip:a@x").status,
            StatusCode::OK
        );
        // No such element.
        let orphan = format!("{path}/~~/group/list-service/list/entry[3]/@uri");
        conflict(req(Method::PUT, &orphan, &ct, "sip:e@x"), "<no-parent/>");
        // The attribute media type only; namespace declarations are not attributes.
        let r = req(Method::PUT, &name, &att(MIME_ELEMENT), "n");
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let xmlns = format!("{path}/~~/group/@xmlns");
        assert_eq!(
            req(Method::PUT, &xmlns, &ct, "urn:x").status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(get(path), kept);
        assert_eq!(members(), ["sip:a@x", "sip:c@x"]);
    }
}

//! `imspec lsp`: a language server over stdio (JSON-RPC with `Content-Length` framing).
//!
//! * diagnostics on open and on every change: the checks the build runs ([`check_str`]),
//!   with the same codes and spans, as the editor types;
//! * formatting: [`crate::fmt::format_source`], the `imspec fmt` layout;
//! * hover and go-to-definition on condition names, `call CLAUSE` (the procedure it runs),
//!   `import "…"` paths, `goto` states and facts (hover shows a fact's type and where its
//!   value comes from);
//! * document symbols: procedures with their clause ids, their states and rules, and the
//!   conditions.
//!
//! Imports are read from disk (an unsaved imported buffer is not seen until it is saved).

use crate::ast::{self, ActionKind, BlockItem, ExprKind, Item, Span};
use crate::check::types::{FACTS, type_name};
use crate::diag::Diagnostic as SpecDiagnostic;
use crate::load::{check_str, load_str};
use crate::source::Sources;
use lsp_server::{Connection, Message, Notification, Request, Response};
use lsp_types::{
    Diagnostic, DiagnosticRelatedInformation, DiagnosticSeverity, DocumentSymbol,
    DocumentSymbolResponse, GotoDefinitionResponse, Hover, HoverContents, Location, MarkupContent,
    MarkupKind, NumberOrString, OneOf, Position, PublishDiagnosticsParams, Range,
    ServerCapabilities, SymbolKind, TextDocumentSyncCapability, TextDocumentSyncKind, TextEdit,
    Uri,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Runs the server on stdin/stdout until the client says `exit`.
pub fn run_stdio() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (conn, io) = Connection::stdio();
    let caps = ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        hover_provider: Some(lsp_types::HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        document_symbol_provider: Some(OneOf::Left(true)),
        ..ServerCapabilities::default()
    };
    conn.initialize(serde_json::to_value(caps)?)?;
    let mut server = Server::default();
    for msg in &conn.receiver {
        match msg {
            Message::Request(req) => {
                if conn.handle_shutdown(&req)? {
                    break;
                }
                let resp = server.request(req);
                conn.sender.send(Message::Response(resp))?;
            }
            Message::Notification(n) => {
                for out in server.notification(n) {
                    conn.sender.send(Message::Notification(out))?;
                }
            }
            Message::Response(_) => {}
        }
    }
    drop(conn);
    io.join()?;
    Ok(())
}

/// Open documents, by URI.
#[derive(Default)]
struct Server {
    docs: HashMap<String, String>,
}

impl Server {
    fn notification(&mut self, n: Notification) -> Vec<Notification> {
        let uri = match n.method.as_str() {
            "textDocument/didOpen" => {
                let Ok(p) =
                    serde_json::from_value::<lsp_types::DidOpenTextDocumentParams>(n.params)
                else {
                    return Vec::new();
                };
                let uri = p.text_document.uri.as_str().to_string();
                self.docs.insert(uri.clone(), p.text_document.text);
                uri
            }
            "textDocument/didChange" => {
                let Ok(p) =
                    serde_json::from_value::<lsp_types::DidChangeTextDocumentParams>(n.params)
                else {
                    return Vec::new();
                };
                let uri = p.text_document.uri.as_str().to_string();
                // Full sync: the last change holds the whole text.
                if let Some(c) = p.content_changes.into_iter().last() {
                    self.docs.insert(uri.clone(), c.text);
                }
                uri
            }
            "textDocument/didClose" => {
                if let Ok(p) =
                    serde_json::from_value::<lsp_types::DidCloseTextDocumentParams>(n.params)
                {
                    self.docs.remove(p.text_document.uri.as_str());
                }
                return Vec::new();
            }
            _ => return Vec::new(),
        };
        let Some(text) = self.docs.get(&uri) else {
            return Vec::new();
        };
        publish(&uri, text)
    }

    fn request(&mut self, req: Request) -> Response {
        let id = req.id.clone();
        let result = match req.method.as_str() {
            "textDocument/hover" => self.with_position(&req, |a, off| {
                serde_json::to_value(a.hover(off)).unwrap_or_default()
            }),
            "textDocument/definition" => self.with_position(&req, |a, off| {
                serde_json::to_value(a.definition(off)).unwrap_or_default()
            }),
            "textDocument/formatting" => self.formatting(&req),
            "textDocument/documentSymbol" => self.symbols(&req),
            _ => {
                return Response::new_err(
                    id,
                    lsp_server::ErrorCode::MethodNotFound as i32,
                    format!("unsupported request {}", req.method),
                );
            }
        };
        Response::new_ok(id, result)
    }

    fn with_position(
        &self,
        req: &Request,
        f: impl Fn(&Analysis, usize) -> serde_json::Value,
    ) -> serde_json::Value {
        let Ok(p) =
            serde_json::from_value::<lsp_types::TextDocumentPositionParams>(req.params.clone())
        else {
            return serde_json::Value::Null;
        };
        let uri = p.text_document.uri.as_str();
        let Some(text) = self.docs.get(uri) else {
            return serde_json::Value::Null;
        };
        let a = Analysis::new(uri, text);
        let off = offset(text, p.position);
        f(&a, off)
    }

    fn formatting(&self, req: &Request) -> serde_json::Value {
        let Ok(p) =
            serde_json::from_value::<lsp_types::DocumentFormattingParams>(req.params.clone())
        else {
            return serde_json::Value::Null;
        };
        let Some(text) = self.docs.get(p.text_document.uri.as_str()) else {
            return serde_json::Value::Null;
        };
        match crate::fmt::format_source(text) {
            // A file that does not parse is left alone; its diagnostic says why.
            Err(_) => serde_json::Value::Null,
            Ok(new) if &new == text => serde_json::json!([]),
            Ok(new) => {
                let edit = TextEdit {
                    range: Range::new(Position::new(0, 0), position(text, text.len())),
                    new_text: new,
                };
                serde_json::to_value(vec![edit]).unwrap_or_default()
            }
        }
    }

    fn symbols(&self, req: &Request) -> serde_json::Value {
        let Ok(p) = serde_json::from_value::<lsp_types::DocumentSymbolParams>(req.params.clone())
        else {
            return serde_json::Value::Null;
        };
        let uri = p.text_document.uri.as_str();
        let Some(text) = self.docs.get(uri) else {
            return serde_json::Value::Null;
        };
        let a = Analysis::new(uri, text);
        serde_json::to_value(DocumentSymbolResponse::Nested(a.symbols())).unwrap_or_default()
    }
}

/// `file:///a/b%20c` → `/a/b c`.
fn uri_path(uri: &str) -> PathBuf {
    let rest = uri.strip_prefix("file://").unwrap_or(uri);
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&rest[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    PathBuf::from(String::from_utf8_lossy(&out).into_owned())
}

/// `/a/b c` → `file:///a/b%20c`.
fn path_uri(path: &Path) -> Option<Uri> {
    let mut s = String::from("file://");
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    Uri::from_str(&s).ok()
}

/// LSP position (UTF-16 columns) of a byte offset.
fn position(text: &str, off: usize) -> Position {
    let off = off.min(text.len());
    let before = &text[..off];
    let line = before.matches('\n').count();
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let col: usize = text[start..off].chars().map(char::len_utf16).sum();
    Position::new(line as u32, col as u32)
}

/// Byte offset of an LSP position (clamped to the line).
fn offset(text: &str, p: Position) -> usize {
    let mut start = 0;
    for _ in 0..p.line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let mut col = 0u32;
    for (i, c) in text[start..].char_indices() {
        if col >= p.character || c == '\n' {
            return start + i;
        }
        col += c.len_utf16() as u32;
    }
    text.len()
}

fn range(text: &str, span: Span) -> Range {
    Range::new(position(text, span.start), position(text, span.end))
}

fn lsp_diagnostic(sources: &Sources, d: &SpecDiagnostic) -> Option<Diagnostic> {
    let file = sources.get(d.span.file)?;
    let mut message = d.message.clone();
    if !d.label.is_empty() {
        message.push_str(&format!("\n{}", d.label));
    }
    if let Some(h) = &d.help {
        message.push_str(&format!("\nhelp: {h}"));
    }
    let related: Vec<DiagnosticRelatedInformation> = d
        .notes
        .iter()
        .filter_map(|n| {
            let f = sources.get(n.span.file)?;
            let uri = path_uri(f.path.as_deref().unwrap_or(Path::new(&f.display)))?;
            Some(DiagnosticRelatedInformation {
                location: Location::new(uri, range(&f.text, n.span)),
                message: n.label.clone(),
            })
        })
        .collect();
    Some(Diagnostic {
        range: range(&file.text, d.span),
        severity: Some(DiagnosticSeverity::ERROR),
        code: Some(NumberOrString::String(d.code.as_str().to_string())),
        source: Some("imspec".into()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        ..Diagnostic::default()
    })
}

/// The diagnostics of `text` (the document at `uri`), grouped per file: the document's own
/// list, always sent (empty clears the editor's), and one per imported file with errors.
fn publish(uri: &str, text: &str) -> Vec<Notification> {
    let display = uri_path(uri).to_string_lossy().into_owned();
    let mut per_file: HashMap<String, Vec<Diagnostic>> = HashMap::new();
    per_file.insert(uri.to_string(), Vec::new());
    if let Err((sources, diags)) = check_str(&display, text) {
        for d in &diags {
            let Some(file) = sources.get(d.span.file) else {
                continue;
            };
            let target = match &file.path {
                None => uri.to_string(),
                Some(p) => match path_uri(p) {
                    Some(u) => u.as_str().to_string(),
                    None => continue,
                },
            };
            if let Some(x) = lsp_diagnostic(&sources, d) {
                per_file.entry(target).or_default().push(x);
            }
        }
    }
    per_file
        .into_iter()
        .filter_map(|(u, diagnostics)| {
            let params = PublishDiagnosticsParams {
                uri: Uri::from_str(&u).ok()?,
                diagnostics,
                version: None,
            };
            Some(Notification::new(
                "textDocument/publishDiagnostics".into(),
                params,
            ))
        })
        .collect()
}

/// What a span of the document refers to.
enum Target {
    Condition(String),
    Fact(String),
    Call(String),
    Import(String),
    State(String),
}

/// One document parsed with its imports, and what each name in it refers to.
struct Analysis {
    sources: Sources,
    files: Vec<ast::File>,
    root: usize,
    refs: Vec<(Span, Target)>,
}

impl Analysis {
    fn new(uri: &str, text: &str) -> Self {
        let display = uri_path(uri).to_string_lossy().into_owned();
        let (sources, files, _) = load_str(&display, text);
        let root = 0;
        let mut refs = Vec::new();
        if let Some(f) = files.iter().find(|f| f.file == root) {
            for item in &f.items {
                match item {
                    Item::Import(lit) => refs.push((lit.span, Target::Import(lit.value.clone()))),
                    Item::Condition(c) => expr_refs(&c.expr, &mut refs),
                    Item::Procedure(p) => {
                        for h in &p.handlers {
                            block_refs(&h.block.items, &mut refs);
                            for s in &h.in_states {
                                refs.push((s.span, Target::State(s.name.clone())));
                            }
                        }
                    }
                }
            }
        }
        Analysis {
            sources,
            files,
            root,
            refs,
        }
    }

    fn at(&self, off: usize) -> Option<&(Span, Target)> {
        self.refs
            .iter()
            .filter(|(s, _)| s.start <= off && off <= s.end)
            .min_by_key(|(s, _)| s.end - s.start)
    }

    fn conditions(&self) -> impl Iterator<Item = &ast::ConditionDef> {
        self.files.iter().flat_map(|f| {
            f.items.iter().filter_map(|i| match i {
                Item::Condition(c) => Some(c),
                _ => None,
            })
        })
    }

    fn procedures(&self) -> impl Iterator<Item = &ast::Procedure> {
        self.files.iter().flat_map(|f| {
            f.items.iter().filter_map(|i| match i {
                Item::Procedure(p) => Some(p),
                _ => None,
            })
        })
    }

    /// The procedure a `call CLAUSE` runs: as [`crate::model::Spec::procedure_by_clause`],
    /// the one of that clause taking `on initial`, else the first.
    fn callee(&self, clause: &str) -> Option<&ast::Procedure> {
        let of: Vec<&ast::Procedure> = self
            .procedures()
            .filter(|p| p.clause.as_ref().is_some_and(|c| c.id == clause))
            .collect();
        of.iter()
            .find(|p| {
                p.handlers
                    .iter()
                    .any(|h| matches!(h.trigger.kind, ast::TriggerKind::Initial(_)))
            })
            .or(of.first())
            .copied()
    }

    fn location(&self, span: Span) -> Option<Location> {
        let f = self.sources.get(span.file)?;
        let path = f.path.clone().unwrap_or_else(|| PathBuf::from(&f.display));
        Some(Location::new(path_uri(&path)?, range(&f.text, span)))
    }

    fn where_(&self, span: Span) -> String {
        let Some(f) = self.sources.get(span.file) else {
            return String::new();
        };
        let (l, c) = f.line_col(span.start);
        format!("{}:{l}:{c}", f.display)
    }

    fn import_path(&self, rel: &str) -> Option<PathBuf> {
        let root = self.sources.get(self.root)?;
        let base = PathBuf::from(&root.display);
        Some(base.parent().unwrap_or(Path::new(".")).join(rel))
    }

    fn definition(&self, off: usize) -> Option<GotoDefinitionResponse> {
        let (_, t) = self.at(off)?;
        let loc = match t {
            Target::Condition(n) => {
                self.location(self.conditions().find(|c| c.name.name == *n)?.name.span)?
            }
            Target::Call(clause) => self.location(self.callee(clause)?.name.span)?,
            Target::Import(rel) => {
                let p = self.import_path(rel)?;
                let p = p.canonicalize().unwrap_or(p);
                Location::new(path_uri(&p)?, Range::default())
            }
            Target::State(n) => {
                let decl = self
                    .procedures()
                    .flat_map(|p| p.states.iter().flat_map(|b| b.states.iter()))
                    .filter(|s| s.name.span.file == self.root)
                    .find(|s| s.name.name == *n)?;
                self.location(decl.name.span)?
            }
            Target::Fact(_) => return None,
        };
        Some(GotoDefinitionResponse::Scalar(loc))
    }

    fn hover(&self, off: usize) -> Option<Hover> {
        let (span, t) = self.at(off)?;
        let text = match t {
            Target::Condition(n) => {
                let c = self.conditions().find(|c| c.name.name == *n)?;
                let src = &self.sources.get(c.span.file)?.text;
                format!(
                    "```imspec\n{}\n```\ncondition{}, defined at {}",
                    src.get(c.span.start..c.span.end).unwrap_or(""),
                    c.clause
                        .as_ref()
                        .map(|c| format!(" of clause {}", c.id))
                        .unwrap_or_default(),
                    self.where_(c.name.span)
                )
            }
            Target::Fact(path) => {
                let (_, _, ty) = FACTS.iter().find(|f| f.0 == path)?;
                format!(
                    "```imspec\n{path} : {}\n```\nfact: {}",
                    type_name(*ty),
                    fact_origin(path)
                )
            }
            Target::Call(clause) => {
                let p = self.callee(clause)?;
                let states: Vec<&str> = p
                    .states
                    .iter()
                    .flat_map(|b| b.states.iter().map(|s| s.name.name.as_str()))
                    .collect();
                format!(
                    "```imspec\nprocedure {} [{clause}]{}\n```\n{}defined at {}",
                    p.name.name,
                    p.title
                        .as_ref()
                        .map(|t| format!(" \"{}\"", t.value))
                        .unwrap_or_default(),
                    if states.is_empty() {
                        String::new()
                    } else {
                        format!("states: {}\n\n", states.join(", "))
                    },
                    self.where_(p.name.span)
                )
            }
            Target::Import(rel) => {
                let p = self.import_path(rel)?;
                let idx = self.sources.find(&p.canonicalize().unwrap_or(p.clone()));
                let mut names = Vec::new();
                if let Some(f) = idx.and_then(|i| self.files.iter().find(|f| f.file == i)) {
                    for item in &f.items {
                        match item {
                            Item::Procedure(p) => names.push(format!(
                                "procedure {} [{}]",
                                p.name.name,
                                p.clause.as_ref().map(|c| c.id.as_str()).unwrap_or("?")
                            )),
                            Item::Condition(c) => names.push(format!("condition {}", c.name.name)),
                            Item::Import(_) => {}
                        }
                    }
                }
                format!("import `{}`\n\n{}", p.display(), names.join("\n\n"))
            }
            Target::State(n) => format!("state `{n}`"),
        };
        let root_text = &self.sources.get(self.root)?.text;
        Some(Hover {
            contents: HoverContents::Markup(MarkupContent {
                kind: MarkupKind::Markdown,
                value: text,
            }),
            range: Some(range(root_text, *span)),
        })
    }

    #[allow(deprecated)] // DocumentSymbol::deprecated must be written out
    fn symbols(&self) -> Vec<DocumentSymbol> {
        let Some(root_text) = self.sources.get(self.root).map(|f| f.text.as_str()) else {
            return Vec::new();
        };
        let sym = |name: String, detail: Option<String>, kind, span: Span, sel: Span, children| {
            DocumentSymbol {
                name,
                detail,
                kind,
                tags: None,
                deprecated: None,
                range: range(root_text, span),
                selection_range: range(root_text, sel),
                children,
            }
        };
        let mut out = Vec::new();
        let Some(f) = self.files.iter().find(|f| f.file == self.root) else {
            return out;
        };
        for item in &f.items {
            match item {
                Item::Import(_) => {}
                Item::Condition(c) => out.push(sym(
                    c.name.name.clone(),
                    c.clause.as_ref().map(|c| format!("[{}]", c.id)),
                    SymbolKind::BOOLEAN,
                    c.span,
                    c.name.span,
                    None,
                )),
                Item::Procedure(p) => {
                    let mut children = Vec::new();
                    for s in p.states.iter().flat_map(|b| b.states.iter()) {
                        children.push(sym(
                            s.name.name.clone(),
                            Some(
                                if s.is_final {
                                    "final"
                                } else if s.initial {
                                    "initial"
                                } else {
                                    "state"
                                }
                                .into(),
                            ),
                            SymbolKind::ENUM_MEMBER,
                            s.span,
                            s.name.span,
                            None,
                        ));
                    }
                    let mut rules = Vec::new();
                    for h in &p.handlers {
                        collect_rules(&h.block.items, &mut rules);
                    }
                    for r in rules {
                        children.push(sym(
                            format!(
                                "{} [{}]",
                                r.name.name,
                                r.clause.as_ref().map(|c| c.id.as_str()).unwrap_or("?")
                            ),
                            r.clause.as_ref().map(|c| c.id.clone()),
                            SymbolKind::FUNCTION,
                            r.span,
                            r.name.span,
                            None,
                        ));
                    }
                    let clause = p.clause.as_ref().map(|c| c.id.as_str()).unwrap_or("?");
                    out.push(sym(
                        format!("{} [{clause}]", p.name.name),
                        p.title.as_ref().map(|t| t.value.clone()),
                        SymbolKind::CLASS,
                        p.span,
                        p.name.span,
                        Some(children),
                    ));
                }
            }
        }
        out
    }
}

fn collect_rules<'a>(items: &'a [BlockItem], out: &mut Vec<&'a ast::Rule>) {
    for i in items {
        match i {
            BlockItem::Rule(r) | BlockItem::Otherwise(r) => out.push(r),
            BlockItem::First(f) => collect_rules(&f.items, out),
        }
    }
}

/// Where a fact's value comes from at run time.
fn fact_origin(path: &str) -> &'static str {
    match path.split('.').next().unwrap_or("") {
        "request" => {
            "the request being handled (start line and headers; `originator` is the \
                      P-Asserted-Identity from a trusted host, else From) — \
                      `im_runtime::machine::Facts`"
        }
        "body" => {
            "the request body's MIME parts (type, Content-Disposition, length) — \
                   `Facts::parts`"
        }
        "recipients" => {
            "the RFC 5366 recipient list of the body, flattened and de-duplicated \
                         — `Facts::recipients`"
        }
        "sdp" => "the SDP offer in the request body — `Facts::sdp`",
        "response" => "the response being handled (0 for other events) — `Facts::status`",
        "config" => {
            "the server's configuration (`im-server` flags / config file) — \
                     `im_runtime::machine::Config`"
        }
        "legs" => "the session's invitee legs, counted by the endpoint — `Facts::legs`",
        "message" => {
            "the IMDN request of the message (RFC 5438 `imdn.Disposition-Notification`) — \
                     `Facts::message`"
        }
        "copy" => "the recipient copy a `copy …` handler is about — `Facts::copy`",
        _ => "a built-in fact",
    }
}

fn block_refs(items: &[BlockItem], out: &mut Vec<(Span, Target)>) {
    for i in items {
        match i {
            BlockItem::Rule(r) | BlockItem::Otherwise(r) => {
                if let Some(w) = &r.when {
                    expr_refs(w, out);
                }
                for a in &r.actions {
                    match &a.kind {
                        ActionKind::Call(c) => out.push((c.span, Target::Call(c.id.clone()))),
                        ActionKind::Goto(s) => out.push((s.span, Target::State(s.name.clone()))),
                        ActionKind::StartTimer(_, e) => expr_refs(e, out),
                        _ => {}
                    }
                }
            }
            BlockItem::First(f) => block_refs(&f.items, out),
        }
    }
}

fn expr_refs(e: &ast::Expr, out: &mut Vec<(Span, Target)>) {
    match &e.kind {
        ExprKind::Lit(_) => {}
        ExprKind::Ref { path, args } => {
            if let (Some(first), Some(last)) = (path.first(), path.last()) {
                let joined: Vec<&str> = path.iter().map(|i| i.name.as_str()).collect();
                let joined = joined.join(".");
                let span = Span {
                    file: first.span.file,
                    start: first.span.start,
                    end: last.span.end,
                };
                if path.len() == 1 && args.is_none() && FACTS.iter().all(|f| f.0 != joined) {
                    out.push((first.span, Target::Condition(joined)));
                } else if FACTS.iter().any(|f| f.0 == joined) {
                    out.push((span, Target::Fact(joined)));
                } else if path.len() > 2 {
                    // A field of a fact (`request.uri.host`): hover the fact part.
                    let head: Vec<&str> = path.iter().take(2).map(|i| i.name.as_str()).collect();
                    let head = head.join(".");
                    if FACTS.iter().any(|f| f.0 == head) {
                        out.push((
                            Span {
                                file: first.span.file,
                                start: first.span.start,
                                end: path[1].span.end,
                            },
                            Target::Fact(head),
                        ));
                    }
                }
            }
            for a in args.iter().flatten() {
                expr_refs(a, out);
            }
        }
        ExprKind::Not(x) | ExprKind::Paren(x) => expr_refs(x, out),
        ExprKind::And(xs) | ExprKind::Or(xs) => xs.iter().for_each(|x| expr_refs(x, out)),
        ExprKind::Cmp(_, a, b) => {
            expr_refs(a, out);
            expr_refs(b, out);
        }
        ExprKind::Quant { list, body, .. } => {
            expr_refs(list, out);
            expr_refs(body, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_utf16_units() {
        let t = "ab\n«x» y\n";
        assert_eq!(position(t, 0), Position::new(0, 0));
        let y = t.find('y').expect("y");
        assert_eq!(position(t, y), Position::new(1, 4));
        assert_eq!(offset(t, Position::new(1, 4)), y);
        assert_eq!(offset(t, Position::new(9, 0)), t.len());
    }

    #[test]
    fn uris_round_trip_paths_with_spaces() {
        let p = Path::new("/tmp/a b/x.imspec");
        let u = path_uri(p).expect("uri");
        assert_eq!(u.as_str(), "file:///tmp/a%20b/x.imspec");
        assert_eq!(uri_path(u.as_str()), p);
    }
}

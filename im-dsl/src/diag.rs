//! Diagnostics: a stable code, a span in the `.imspec`, a label and a help line, rendered the
//! way rustc renders its own (annotate-snippets), or as JSON for editors and CI.

use crate::ast::Span;
use crate::source::Sources;
use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use serde::Serialize;

/// Stable diagnostic codes. The number never changes meaning; tests assert on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// E0001: the text does not match the grammar.
    Syntax,
    /// E0002: a name (condition, state, timer, fact, variable) is not defined.
    Undefined,
    /// E0003: a name is defined twice (procedure, condition, state, rule, timer).
    Duplicate,
    /// E0004: `call` names a clause no procedure implements.
    UnknownProcedure,
    /// E0005: operands or arguments of incompatible types (a URI compared with a number).
    TypeMismatch,
    /// E0006: a rule after `otherwise` (or a second `otherwise`).
    AfterOtherwise,
    /// E0007: an ordered rule that can never fire because an earlier one covers it.
    Shadowed,
    /// E0008: two unordered rules that can fire on the same input.
    Overlap,
    /// E0009: `goto` (or `in`) names a state the procedure does not declare.
    UnknownState,
    /// E0010: a state no transition reaches.
    Unreachable,
    /// E0011: `respond` without a status code.
    NoStatus,
    /// E0012: a rule (or condition used as a rule) without a clause reference.
    NoClause,
    /// E0013: files import each other in a cycle.
    ImportCycle,
    /// E0014: an imported file cannot be read.
    MissingImport,
    /// E0015: named conditions refer to each other in a cycle.
    ConditionCycle,
    /// E0016: a built-in is called with the wrong number of arguments, or a value is out of
    /// range (status code, status pattern).
    BadArgument,
    /// E0017: the states block is malformed (no or several `initial` states).
    BadStates,
    /// E0018: `call` names a clause that several procedures taking an initial request
    /// implement, so the target is ambiguous.
    AmbiguousCall,
    /// E0019: an `invite each` block sets a header (or offer line) the runtime writes on
    /// every INVITE (RFC 3261 §8.1.1: Via, From, To, Call-ID, CSeq, Max-Forwards, Contact).
    ReservedHeader,
    /// E0020: `history` (the recipient-list-history part, RFC 5364) on an `invite each` that
    /// addresses no recipient list.
    HistoryWithoutList,
    /// E0021: a `respond 2xx` to an initial INVITE without a Contact (`contact focus`): the
    /// 2xx establishes a dialog, which RFC 3261 §12.1.1 gives the responder's Contact.
    DialogWithoutContact,
}

impl Code {
    /// The code as printed (`E0007`).
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Syntax => "E0001",
            Code::Undefined => "E0002",
            Code::Duplicate => "E0003",
            Code::UnknownProcedure => "E0004",
            Code::TypeMismatch => "E0005",
            Code::AfterOtherwise => "E0006",
            Code::Shadowed => "E0007",
            Code::Overlap => "E0008",
            Code::UnknownState => "E0009",
            Code::Unreachable => "E0010",
            Code::NoStatus => "E0011",
            Code::NoClause => "E0012",
            Code::ImportCycle => "E0013",
            Code::MissingImport => "E0014",
            Code::ConditionCycle => "E0015",
            Code::BadArgument => "E0016",
            Code::BadStates => "E0017",
            Code::AmbiguousCall => "E0018",
            Code::ReservedHeader => "E0019",
            Code::HistoryWithoutList => "E0020",
            Code::DialogWithoutContact => "E0021",
        }
    }
}

/// A secondary label pointing at related source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// Where.
    pub span: Span,
    /// What it says.
    pub label: String,
}

/// One diagnostic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Stable code.
    pub code: Code,
    /// The headline.
    pub message: String,
    /// The primary location.
    pub span: Span,
    /// The label under the primary location.
    pub label: String,
    /// Related locations.
    pub notes: Vec<Note>,
    /// How to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with a code, message, span and label.
    pub fn new(
        code: Code,
        message: impl Into<String>,
        span: Span,
        label: impl Into<String>,
    ) -> Self {
        Diagnostic {
            code,
            message: message.into(),
            span,
            label: label.into(),
            notes: Vec::new(),
            help: None,
        }
    }

    /// Adds a help line.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a secondary label.
    pub fn note(mut self, span: Span, label: impl Into<String>) -> Self {
        self.notes.push(Note {
            span,
            label: label.into(),
        });
        self
    }

    /// `path:line:col` of the primary span.
    pub fn location(&self, sources: &Sources) -> String {
        match sources.get(self.span.file) {
            Some(f) => {
                let (l, c) = f.line_col(self.span.start);
                format!("{}:{}:{}", f.display, l, c)
            }
            None => "<unknown>".to_string(),
        }
    }

    /// 1-based (line, column) of the primary span.
    pub fn line_col(&self, sources: &Sources) -> (usize, usize) {
        sources
            .get(self.span.file)
            .map(|f| f.line_col(self.span.start))
            .unwrap_or((0, 0))
    }

    /// Renders like rustc (`error[E0007]: … --> path:line:col`), without colour.
    pub fn render(&self, sources: &Sources) -> String {
        self.render_with(sources, &Renderer::plain())
    }

    /// Renders with ANSI colours.
    pub fn render_styled(&self, sources: &Sources) -> String {
        self.render_with(sources, &Renderer::styled())
    }

    fn render_with(&self, sources: &Sources, renderer: &Renderer) -> String {
        let Some(file) = sources.get(self.span.file) else {
            return format!("error[{}]: {}", self.code.as_str(), self.message);
        };
        let clamp = |s: Span| {
            let start = s.start.min(file.text.len());
            start..s.end.clamp(start, file.text.len())
        };
        let mut snippet = Snippet::source(file.text.as_str())
            .path(file.display.as_str())
            .annotation(
                AnnotationKind::Primary
                    .span(clamp(self.span))
                    .label(self.label.as_str()),
            );
        let mut other_files = Vec::new();
        for n in &self.notes {
            if n.span.file == self.span.file {
                snippet = snippet.annotation(
                    AnnotationKind::Context
                        .span(clamp(n.span))
                        .label(n.label.as_str()),
                );
            } else {
                other_files.push(n);
            }
        }
        let mut group = Level::ERROR
            .primary_title(self.message.as_str())
            .id(self.code.as_str())
            .element(snippet);
        for n in other_files {
            if let Some(f) = sources.get(n.span.file) {
                let start = n.span.start.min(f.text.len());
                let end = n.span.end.clamp(start, f.text.len());
                group = group.element(
                    Snippet::source(f.text.as_str())
                        .path(f.display.as_str())
                        .annotation(
                            AnnotationKind::Context
                                .span(start..end)
                                .label(n.label.as_str()),
                        ),
                );
            }
        }
        let mut report: Vec<Group<'_>> = vec![group];
        if let Some(h) = &self.help {
            report.push(Group::with_title(Level::HELP.secondary_title(h.as_str())));
        }
        renderer.render(&report)
    }

    /// The JSON form used by `imspec check --format json`.
    pub fn to_json(&self, sources: &Sources) -> JsonDiagnostic {
        let (line, column) = self.line_col(sources);
        JsonDiagnostic {
            code: self.code.as_str(),
            severity: "error",
            message: self.message.clone(),
            file: sources
                .get(self.span.file)
                .map(|f| f.display.clone())
                .unwrap_or_default(),
            line,
            column,
            start: self.span.start,
            end: self.span.end,
            label: self.label.clone(),
            help: self.help.clone(),
            rendered: self.render(sources),
        }
    }
}

/// A diagnostic as JSON.
#[derive(Clone, Debug, Serialize)]
pub struct JsonDiagnostic {
    /// `E0007`.
    pub code: &'static str,
    /// Always `error` for now.
    pub severity: &'static str,
    /// Headline.
    pub message: String,
    /// Path relative to the workspace root.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Byte offset of the start.
    pub start: usize,
    /// Byte offset of the end.
    pub end: usize,
    /// Label at the span.
    pub label: String,
    /// Help line.
    pub help: Option<String>,
    /// The plain-text rendering.
    pub rendered: String,
}

/// A sink every pass writes into. It must be [`finish`](Diagnostics::finish)ed: dropping an
/// unfinished sink that holds errors is a bug in the pass that forgot to report them, caught
/// in debug builds (style practice 7).
#[derive(Debug, Default)]
#[must_use = "diagnostics must be finished"]
pub struct Diagnostics {
    list: Vec<Diagnostic>,
    finished: bool,
}

impl Diagnostics {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a diagnostic.
    pub fn push(&mut self, d: Diagnostic) {
        self.list.push(d);
    }

    /// Whether any error was recorded.
    pub fn has_errors(&self) -> bool {
        !self.list.is_empty()
    }

    /// Ends collection: `Ok(value)` when clean, else every diagnostic sorted by position.
    pub fn finish<T>(mut self, value: T) -> Result<T, Vec<Diagnostic>> {
        self.finished = true;
        let mut list = std::mem::take(&mut self.list);
        if list.is_empty() {
            Ok(value)
        } else {
            list.sort_by_key(|d| (d.span.file, d.span.start, d.code));
            list.dedup();
            Err(list)
        }
    }

    /// Ends collection, returning whatever was recorded.
    pub fn into_vec(mut self) -> Vec<Diagnostic> {
        self.finished = true;
        std::mem::take(&mut self.list)
    }
}

impl Drop for Diagnostics {
    fn drop(&mut self) {
        debug_assert!(
            self.finished || self.list.is_empty() || std::thread::panicking(),
            "Diagnostics dropped with {} unreported errors",
            self.list.len()
        );
    }
}

//! Reading a spec: the root file and, recursively, every file it imports.
//!
//! `import "x.imspec"` is resolved relative to the importing file. Each file is read once
//! (a diamond of imports is fine); a cycle is an error (E0013) at the import that closes it,
//! and an import that cannot be read is an error (E0014) at its path literal. Files that do
//! not parse report E0001 and are left out of the returned ASTs.
//!
//! [`check_path`] is the one entry point the CLI, the proc macro and build scripts use:
//! load → check → [`model::Spec`].

use crate::ast::{self, Item, Span};
use crate::diag::{Code, Diagnostic};
use crate::model;
use crate::parse::parse_file;
use crate::source::{SourceFile, Sources, display_path};
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

/// What loading produced: every file read (imports included), the ASTs of those that
/// parsed, and the diagnostics of reading and parsing.
pub type Loaded = (Sources, Vec<ast::File>, Vec<Diagnostic>);

/// Reads `path` and everything it imports.
///
/// A root that cannot be read yields a single E0014 diagnostic on an empty source named
/// after the path (callers that want an I/O error instead check the path first).
pub fn load(path: &Path) -> Loaded {
    let mut read = |p: &Path| std::fs::read_to_string(p);
    let mut l = Loader::new(&mut read, true);
    let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    match std::fs::read_to_string(path) {
        Ok(text) => {
            l.visit(key, display_path(path), Some(path.to_path_buf()), text);
        }
        Err(e) => {
            let idx = l.sources.add(SourceFile::new(display_path(path), None, ""));
            l.diags.push(
                Diagnostic::new(
                    Code::MissingImport,
                    format!("cannot read `{}`: {e}", display_path(path)),
                    Span {
                        file: idx,
                        start: 0,
                        end: 0,
                    },
                    "this file",
                )
                .help("check the path and its permissions"),
            );
        }
    }
    l.finish()
}

/// Loads a spec whose root is given as text (tests, proptests, editors). `display` names it
/// in diagnostics; imports are read from disk relative to `display`'s directory.
pub fn load_str(display: &str, text: &str) -> Loaded {
    let mut read = |p: &Path| std::fs::read_to_string(p);
    let mut l = Loader::new(&mut read, true);
    let key = std::env::current_dir()
        .map(|d| d.join(display))
        .unwrap_or_else(|_| PathBuf::from(display));
    l.visit(normalize(&key), display.to_string(), None, text.to_string());
    l.finish()
}

/// Loads a spec held entirely in memory: `files` maps names (relative paths such as
/// `"a.imspec"` or `"dir/b.imspec"`) to texts, and `root` names the root. Imports resolve
/// among `files` only.
pub fn load_files(root: &str, files: &[(&str, &str)]) -> Loaded {
    let table: HashMap<PathBuf, String> = files
        .iter()
        .map(|(n, t)| (normalize(Path::new(n)), t.to_string()))
        .collect();
    let mut read = |p: &Path| {
        table.get(p).cloned().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such in-memory file")
        })
    };
    let root_key = normalize(Path::new(root));
    let mut l = Loader::new(&mut read, false);
    match (l.read)(&root_key) {
        Ok(text) => {
            l.visit(root_key.clone(), path_str(&root_key), None, text);
        }
        Err(_) => {
            let idx = l.sources.add(SourceFile::new(root, None, ""));
            l.diags.push(Diagnostic::new(
                Code::MissingImport,
                format!("no in-memory file named `{root}`"),
                Span {
                    file: idx,
                    start: 0,
                    end: 0,
                },
                "this file",
            ));
        }
    }
    l.finish()
}

/// Loads and checks the spec at `path`: the model when every check passes, else every
/// diagnostic (reading, parsing and checking), sorted by position.
#[allow(clippy::result_large_err)]
pub fn check_path(path: &Path) -> Result<(Sources, model::Spec), (Sources, Vec<Diagnostic>)> {
    finish_check(load(path))
}

/// [`check_path`] for a root given as text (see [`load_str`]).
#[allow(clippy::result_large_err)]
pub fn check_str(
    display: &str,
    text: &str,
) -> Result<(Sources, model::Spec), (Sources, Vec<Diagnostic>)> {
    finish_check(load_str(display, text))
}

/// [`check_path`] for an in-memory set of files (see [`load_files`]).
#[allow(clippy::result_large_err)]
pub fn check_files(
    root: &str,
    files: &[(&str, &str)],
) -> Result<(Sources, model::Spec), (Sources, Vec<Diagnostic>)> {
    finish_check(load_files(root, files))
}

#[allow(clippy::result_large_err)]
fn finish_check(
    (sources, files, mut diags): Loaded,
) -> Result<(Sources, model::Spec), (Sources, Vec<Diagnostic>)> {
    // A file that did not parse or could not be read would make every name it defines
    // "undefined" elsewhere; checking on would bury the real error under that cascade.
    if !diags.is_empty() {
        diags.sort_by_key(|d| (d.span.file, d.span.start, d.code));
        return Err((sources, diags));
    }
    match crate::check::check(&sources, &files) {
        Ok(spec) => Ok((sources, spec)),
        Err(d) => Err((sources, d)),
    }
}

type Reader<'r> = &'r mut dyn FnMut(&Path) -> std::io::Result<String>;

struct Loader<'r> {
    sources: Sources,
    files: Vec<ast::File>,
    diags: Vec<Diagnostic>,
    /// Identity of each source (canonical or normalised path), by source index.
    keys: Vec<PathBuf>,
    /// Files being visited, outermost first, with the import each is currently following.
    stack: Vec<(usize, Option<Span>)>,
    read: Reader<'r>,
    on_disk: bool,
}

impl<'r> Loader<'r> {
    fn new(read: Reader<'r>, on_disk: bool) -> Self {
        Loader {
            sources: Sources::default(),
            files: Vec::new(),
            diags: Vec::new(),
            keys: Vec::new(),
            stack: Vec::new(),
            read,
            on_disk,
        }
    }

    fn finish(self) -> Loaded {
        (self.sources, self.files, self.diags)
    }

    fn visit(&mut self, key: PathBuf, display: String, abs: Option<PathBuf>, text: String) {
        let idx = self.sources.add(SourceFile::new(display, abs, text));
        self.keys.push(key.clone());
        let text = self
            .sources
            .get(idx)
            .map(|f| f.text.clone())
            .unwrap_or_default();
        let ast = match parse_file(idx, &text) {
            Ok(ast) => ast,
            Err(d) => {
                self.diags.push(d);
                return;
            }
        };
        let imports: Vec<ast::StrLit> = ast
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Import(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        self.files.push(ast);
        self.stack.push((idx, None));
        let dir = key.parent().map(Path::to_path_buf).unwrap_or_default();
        for imp in imports {
            if let Some(top) = self.stack.last_mut() {
                top.1 = Some(imp.span);
            }
            self.import(&dir, &imp);
        }
        self.stack.pop();
    }

    fn import(&mut self, dir: &Path, imp: &ast::StrLit) {
        let joined = dir.join(&imp.value);
        let lexical = normalize(&joined);
        let key = if self.on_disk {
            joined.canonicalize().unwrap_or_else(|_| lexical.clone())
        } else {
            lexical.clone()
        };
        if let Some(pos) = self
            .stack
            .iter()
            .position(|(i, _)| self.keys.get(*i) == Some(&key))
        {
            let mut chain: Vec<String> = self.stack[pos..]
                .iter()
                .map(|(i, _)| self.name(*i))
                .collect();
            chain.push(self.name(self.stack[pos].0));
            let mut d = Diagnostic::new(
                Code::ImportCycle,
                format!("import cycle: {}", chain.join(" → ")),
                imp.span,
                "this import closes the cycle",
            )
            .help("move the shared definitions into a file that both import, and drop one of these imports");
            for (_, span) in &self.stack[pos..self.stack.len() - 1] {
                if let Some(s) = span {
                    d = d.note(*s, "imported here");
                }
            }
            self.diags.push(d);
            return;
        }
        if self.keys.contains(&key) {
            return;
        }
        let display = if self.on_disk {
            display_path(&joined)
        } else {
            path_str(&lexical)
        };
        match (self.read)(&key) {
            Ok(text) => {
                let abs = self.on_disk.then(|| key.clone());
                self.visit(key, display, abs, text);
            }
            Err(e) => self.diags.push(
                Diagnostic::new(
                    Code::MissingImport,
                    format!("cannot read imported file `{display}`: {e}"),
                    imp.span,
                    "imported here",
                )
                .help("import paths are relative to the importing file"),
            ),
        }
    }

    fn name(&self, idx: usize) -> String {
        self.sources
            .get(idx)
            .map(|f| f.display.clone())
            .unwrap_or_default()
    }
}

/// Removes `.` and resolves `..` lexically (in-memory paths have no file system to ask).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().replace('\\', "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(l: &Loaded) -> Vec<Code> {
        l.2.iter().map(|d| d.code).collect()
    }

    #[test]
    fn diamond_reads_each_file_once() {
        let l = load_files(
            "a.imspec",
            &[
                ("a.imspec", "import \"b.imspec\"\nimport \"c.imspec\""),
                ("b.imspec", "import \"d.imspec\""),
                ("c.imspec", "import \"./d.imspec\""),
                ("d.imspec", "condition x [1] = true"),
            ],
        );
        assert!(l.2.is_empty(), "{:?}", l.2);
        assert_eq!(l.0.files.len(), 4);
        assert_eq!(l.1.len(), 4);
    }

    #[test]
    fn cycle_is_reported_at_the_closing_import() {
        let a = "import \"b.imspec\"";
        let b = "\nimport \"a.imspec\"";
        let l = load_files("a.imspec", &[("a.imspec", a), ("b.imspec", b)]);
        assert_eq!(codes(&l), vec![Code::ImportCycle]);
        let d = &l.2[0];
        assert_eq!(d.span.file, 1);
        assert_eq!(d.line_col(&l.0), (2, 8));
        assert!(
            d.message.contains("a.imspec → b.imspec → a.imspec"),
            "{}",
            d.message
        );
        assert_eq!(d.notes.len(), 1);
    }

    #[test]
    fn self_import_is_a_cycle() {
        let l = load_files("a.imspec", &[("a.imspec", "import \"a.imspec\"")]);
        assert_eq!(codes(&l), vec![Code::ImportCycle]);
    }

    #[test]
    fn missing_import_points_at_the_literal() {
        let l = load_files(
            "dir/a.imspec",
            &[("dir/a.imspec", "import \"../x.imspec\"")],
        );
        assert_eq!(codes(&l), vec![Code::MissingImport]);
        assert!(l.2[0].message.contains("`x.imspec`"), "{}", l.2[0].message);
        assert_eq!(l.2[0].span.start, 7);
    }

    #[test]
    fn parse_errors_are_collected_per_file() {
        let l = load_files(
            "a.imspec",
            &[
                ("a.imspec", "import \"b.imspec\"\nimport \"c.imspec\""),
                ("b.imspec", "procedure {"),
                ("c.imspec", "condition = "),
            ],
        );
        assert_eq!(codes(&l), vec![Code::Syntax, Code::Syntax]);
        assert_eq!(l.1.len(), 1);
    }

    #[test]
    fn unreadable_root_is_one_diagnostic() {
        let l = load(Path::new("/nonexistent/dir/x.imspec"));
        assert_eq!(codes(&l), vec![Code::MissingImport]);
        assert!(l.2[0].render(&l.0).contains("cannot read"));
    }
}

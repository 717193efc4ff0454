//! Source files of a spec: the text of each file read (imports included), with the path as
//! shown in diagnostics (relative to the workspace root, so output is the same in any checkout).

use std::path::{Path, PathBuf};

/// One source file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// The path shown to users (relative to the workspace root when possible).
    pub display: String,
    /// The absolute path it was read from (`None` for in-memory sources).
    pub path: Option<PathBuf>,
    /// The text.
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// A source file from text.
    pub fn new(display: impl Into<String>, path: Option<PathBuf>, text: impl Into<String>) -> Self {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile {
            display: display.into(),
            path,
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let col = self
            .text
            .get(start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(offset - start);
        (line + 1, col + 1)
    }
}

/// All files of one spec, indexed by [`crate::ast::Span::file`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sources {
    /// The files, in the order they were read.
    pub files: Vec<SourceFile>,
}

impl Sources {
    /// Adds a file and returns its index.
    pub fn add(&mut self, file: SourceFile) -> usize {
        self.files.push(file);
        self.files.len() - 1
    }

    /// The file with index `i`.
    pub fn get(&self, i: usize) -> Option<&SourceFile> {
        self.files.get(i)
    }

    /// Index of the file read from `path`, if any.
    pub fn find(&self, path: &Path) -> Option<usize> {
        self.files
            .iter()
            .position(|f| f.path.as_deref() == Some(path))
    }
}

/// The path to show for `path`: relative to the workspace root (the nearest ancestor of the
/// current directory, or of `path`, that holds a `Cargo.toml` with `[workspace]`), else as given.
pub fn display_path(path: &Path) -> String {
    let abs = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if let Some(root) = workspace_root(&abs)
        && let Ok(rel) = abs.strip_prefix(&root)
    {
        return rel.to_string_lossy().replace('\\', "/");
    }
    path.to_string_lossy().replace('\\', "/")
}

/// The nearest ancestor of `start` whose `Cargo.toml` declares a `[workspace]`.
pub fn workspace_root(start: &Path) -> Option<PathBuf> {
    let mut dir = if start.is_dir() {
        Some(start)
    } else {
        start.parent()
    };
    while let Some(d) = dir {
        let manifest = d.join("Cargo.toml");
        if let Ok(text) = std::fs::read_to_string(&manifest)
            && text.lines().any(|l| l.trim() == "[workspace]")
        {
            return Some(d.to_path_buf());
        }
        dir = d.parent();
    }
    None
}

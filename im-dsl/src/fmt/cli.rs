//! The `imspec fmt` command.

use super::format_source;

/// What `imspec fmt` found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FmtSummary {
    /// Files looked at.
    pub files: usize,
    /// Files that were (or, with `--check`, would be) rewritten.
    pub changed: usize,
    /// Files with a syntax error.
    pub errors: usize,
    /// Paths that could not be read or written.
    pub io_errors: usize,
}

impl FmtSummary {
    /// The process exit status: 0 when every file was clean (or was rewritten), 1 when a
    /// check found a file to change or a file has a syntax error, 2 when a path could not be
    /// read or written (as `imspec check` does).
    pub fn exit_code(&self, check: bool) -> u8 {
        if self.io_errors > 0 {
            2
        } else {
            u8::from(self.errors > 0 || (check && self.changed > 0))
        }
    }
}

/// Lines of diff shown per file by `--check` before it is cut short.
const DIFF_LINES: usize = 24;

/// `imspec fmt PATH…`: formats every `.imspec` file named or found (recursively) under a named
/// directory. Without `check` changed files are rewritten in place; with it they are listed
/// on `out` with a short diff and left alone. Errors (unreadable files, syntax errors rendered
/// as diagnostics) go to `err`.
pub fn run(
    paths: &[std::path::PathBuf],
    check: bool,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> FmtSummary {
    use crate::source::{SourceFile, Sources, display_path};
    let mut summary = FmtSummary::default();
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            if let Err(e) = collect_specs(p, &mut files) {
                let _ = writeln!(err, "error: cannot read {}: {e}", p.display());
                summary.io_errors += 1;
            }
        } else {
            files.push(p.clone());
        }
    }
    for path in files {
        summary.files += 1;
        let shown = display_path(&path);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                let _ = writeln!(err, "error: cannot read {shown}: {e}");
                summary.io_errors += 1;
                continue;
            }
        };
        let formatted = match format_source(&text) {
            Ok(f) => f,
            Err(d) => {
                let mut sources = Sources::default();
                sources.add(SourceFile::new(shown.clone(), Some(path.clone()), text));
                let _ = writeln!(err, "{}", d.render(&sources));
                summary.errors += 1;
                continue;
            }
        };
        if formatted == text {
            continue;
        }
        summary.changed += 1;
        if check {
            let _ = writeln!(out, "{shown} is not formatted:");
            let _ = write!(out, "{}", short_diff(&shown, &text, &formatted));
        } else if let Err(e) = std::fs::write(&path, formatted) {
            let _ = writeln!(err, "error: cannot write {shown}: {e}");
            summary.io_errors += 1;
        }
    }
    summary
}

fn collect_specs(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect_specs(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "imspec") {
            out.push(p);
        }
    }
    Ok(())
}

/// A unified diff of `old` → `new`, cut after [`DIFF_LINES`] lines.
fn short_diff(name: &str, old: &str, new: &str) -> String {
    let diff = similar::TextDiff::from_lines(old, new);
    let full = diff
        .unified_diff()
        .context_radius(1)
        .header(name, &format!("{name} (formatted)"))
        .to_string();
    let lines: Vec<&str> = full.lines().collect();
    let mut s = lines
        .iter()
        .take(DIFF_LINES)
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    if lines.len() > DIFF_LINES {
        s.push_str(&format!(
            "… ({} more diff lines)\n",
            lines.len() - DIFF_LINES
        ));
    }
    s
}

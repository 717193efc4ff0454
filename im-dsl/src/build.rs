//! Code generation from a build script, like `prost-build`: the alternative to the `imspec!`
//! macro when the generated code should be a file (to read it, or to keep IDEs happy).
//!
//! [`compile`] checks every `*.imspec` file of a directory (or one file) as a root, writes the
//! generated Rust to `OUT_DIR/<file stem>.rs` with an `@generated` header, and prints
//! `cargo:rerun-if-changed` for every file it read (imports included) and for the directory,
//! so editing a spec, or adding one, reruns the build script.
//!
//! # Example
//!
//! `build.rs` of a crate depending on `im-runtime` (and on `im-dsl` as a build dependency):
//!
//! ```no_run
//! // build.rs: `fn main` around this.
//! if let Err(e) = im_dsl::build::compile("../specs") {
//!     // Spec errors are rendered like rustc's, with the .imspec path, line and snippet.
//!     eprintln!("{e}");
//!     std::process::exit(1);
//! }
//! ```
//!
//! and in the crate, one module per spec:
//!
//! ```ignore
//! mod group {
//!     include!(concat!(env!("OUT_DIR"), "/page_mode_group_invite.rs"));
//! }
//! ```
//!
//! Relative paths are resolved like the macro's: against `CARGO_MANIFEST_DIR` (the build
//! script's crate), then the workspace root.

use crate::codegen;
use crate::load::check_path;
use std::path::{Path, PathBuf};

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// `OUT_DIR` is not set (not running from a build script): use [`compile_to`].
    #[error("OUT_DIR is not set: im_dsl::build::compile runs from a build script")]
    NoOutDir,
    /// The spec path does not exist.
    #[error("cannot find `{0}`")]
    NotFound(PathBuf),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A spec has errors; the text is every diagnostic rendered like rustc's.
    #[error("{0}")]
    Spec(String),
}

/// What [`compile_to`] produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// The files written, one per spec root.
    pub written: Vec<PathBuf>,
    /// Every file read (roots and imports), for `rerun-if-changed`.
    pub read: Vec<PathBuf>,
}

/// Compiles `path` (a directory of `*.imspec` files, or one file) into `OUT_DIR`, printing
/// `cargo:rerun-if-changed` lines (see the module docs).
pub fn compile(path: impl AsRef<Path>) -> Result<Output, BuildError> {
    let out_dir = std::env::var_os("OUT_DIR").ok_or(BuildError::NoOutDir)?;
    let path = resolve(path.as_ref())?;
    println!("cargo:rerun-if-changed={}", path.display());
    let result = compile_to(&path, Path::new(&out_dir));
    let read = match &result {
        Ok(out) => out.read.clone(),
        Err(_) => spec_files(&path).unwrap_or_default(),
    };
    for f in read {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    result
}

fn resolve(path: &Path) -> Result<PathBuf, BuildError> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let mut tried = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from) {
        tried.push(dir.join(path));
        if let Some(root) = crate::source::workspace_root(&dir) {
            tried.push(root.join(path));
        }
    }
    tried.push(path.to_path_buf());
    tried
        .into_iter()
        .find(|p| p.exists())
        .ok_or_else(|| BuildError::NotFound(path.to_path_buf()))
}

fn spec_files(path: &Path) -> Result<Vec<PathBuf>, BuildError> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let io = |source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "imspec"))
        .collect();
    files.sort();
    Ok(files)
}

/// Compiles `path` (a directory of `*.imspec` files, or one file) into `out_dir`, without
/// printing anything. Every spec is checked; if any has errors, nothing is written and the
/// error carries all their diagnostics.
pub fn compile_to(path: &Path, out_dir: &Path) -> Result<Output, BuildError> {
    if !path.exists() {
        return Err(BuildError::NotFound(path.to_path_buf()));
    }
    let mut out = Output::default();
    let mut errors = String::new();
    let mut generated = Vec::new();
    for file in spec_files(path)? {
        match check_path(&file) {
            Ok((sources, spec)) => {
                for f in &sources.files {
                    if let Some(p) = &f.path
                        && !out.read.contains(p)
                    {
                        out.read.push(p.clone());
                    }
                }
                let stem = file
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let display = sources
                    .files
                    .first()
                    .map(|f| f.display.clone())
                    .unwrap_or_else(|| stem.clone());
                generated.push((
                    out_dir.join(format!("{stem}.rs")),
                    render(&display, &codegen::generate(&spec)),
                ));
            }
            Err((sources, diags)) => {
                for f in &sources.files {
                    if let Some(p) = &f.path
                        && !out.read.contains(p)
                    {
                        out.read.push(p.clone());
                    }
                }
                for d in diags {
                    errors.push_str(&d.render(&sources));
                    errors.push('\n');
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(BuildError::Spec(errors));
    }
    for (path, text) in generated {
        std::fs::write(&path, text).map_err(|source| BuildError::Io {
            path: path.clone(),
            source,
        })?;
        out.written.push(path);
    }
    Ok(out)
}

/// The file text: the `@generated` header, then the items formatted by prettyplease.
fn render(display: &str, tokens: &proc_macro2::TokenStream) -> String {
    let body = match syn::parse2::<syn::File>(tokens.clone()) {
        Ok(file) => prettyplease::unparse(&file),
        Err(_) => tokens.to_string(),
    };
    format!(
        "// @generated by im-dsl from {display}; do not edit: edit the .imspec and rebuild.\n\n{body}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    #[test]
    fn compiles_every_spec_of_a_directory() {
        let out = tempfile::tempdir().expect("temp dir");
        let specs = workspace().join("specs");
        let result = compile_to(&specs, out.path()).expect("specs check");
        let n = spec_files(&specs).expect("list").len();
        assert_eq!(result.written.len(), n);
        assert!(result.read.len() >= n);
        let text =
            std::fs::read_to_string(out.path().join("page_mode_group_invite.rs")).expect("written");
        assert!(text.starts_with(
            "// @generated by im-dsl from specs/page_mode_group_invite.imspec; do not edit"
        ));
        assert!(text.contains("pub mod page_mode_group_invite {"));
        assert!(syn::parse_file(&text).is_ok());
        // Imports are read (and so tracked) too.
        assert!(
            result
                .read
                .iter()
                .any(|p| p.ends_with("7.9.1.1_general.imspec"))
        );
    }

    #[test]
    fn a_spec_error_writes_nothing_and_renders_the_diagnostic() {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            dir.path().join("bad.imspec"),
            "procedure p [1.1] {\n  on initial INVITE { rule r [1.1] => goto nowhere }\n}\n",
        )
        .expect("write");
        let err = compile_to(dir.path(), out.path()).expect_err("spec error");
        let BuildError::Spec(text) = err else {
            panic!("expected a spec error, got {err:?}")
        };
        assert!(text.contains("error[E0009]"), "{text}");
        assert!(text.contains("bad.imspec:2:"), "{text}");
        assert_eq!(std::fs::read_dir(out.path()).expect("dir").count(), 0);
    }

    #[test]
    fn missing_path_is_reported() {
        let out = tempfile::tempdir().expect("temp dir");
        let err = compile_to(Path::new("/no/such/specs"), out.path()).expect_err("missing");
        assert!(matches!(err, BuildError::NotFound(_)));
        assert!(matches!(compile("x"), Err(BuildError::NoOutDir)));
    }
}

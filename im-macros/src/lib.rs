//! `imspec!("specs/….imspec")`: compiles a spec file into Rust state machines at build time.
//!
//! This crate is a thin shim over [`im_dsl`]'s generator: it resolves the path, checks the
//! spec with [`im_dsl::load::check_path`], calls [`im_dsl::codegen::generate`] and turns spec
//! errors into `compile_error!`s.
//!
//! # Paths
//!
//! The path is resolved against `CARGO_MANIFEST_DIR` (the crate invoking the macro) first,
//! then against the workspace root (the nearest ancestor whose `Cargo.toml` has a
//! `[workspace]`), so a crate anywhere in the workspace can name `"specs/x.imspec"`, and
//! last against the directory of the source file invoking the macro (handy for tests keeping
//! a spec beside them). An absolute path is used as is.
//!
//! # Rebuilds
//!
//! Every file read — the root and each import — is emitted as
//! `const _: &str = include_str!("<absolute path>");`, which makes it a dependency of the
//! crate: editing any of them rebuilds. This holds when the spec has errors too.
//!
//! # Errors
//!
//! Each diagnostic becomes one `compile_error!` spanned on the path literal (a span cannot
//! point into the `.imspec`), whose message quotes the spec path relative to the workspace,
//! the line and column, and the rendered snippet. Beside them the macro emits a stub with the
//! public names the expansion would have had — `SPEC`, `AnyMachine`, `initial`, `by_clause`,
//! `invitee_leg`, `methods`, and a module with `Machine` and `State` for every
//! `procedure NAME` found in the sources (lexically, so it works on text that does not
//! parse) — so that user code naming them does not pile up follow-on errors. The macro
//! never panics: a panic inside the checker becomes a `compile_error!` too.
//!
//! # Example
//!
//! ```ignore
//! mod group {
//!     im_macros::imspec!("specs/page_mode_group_invite.imspec");
//! }
//! let mut m = group::page_mode_group_invite::Machine::new();
//! ```

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use std::path::{Path, PathBuf};

/// Compiles the `.imspec` file at the given path into state machines (see the crate docs).
#[proc_macro]
pub fn imspec(input: TokenStream) -> TokenStream {
    match syn::parse::<syn::LitStr>(input) {
        Ok(lit) => {
            let caller = proc_macro::Span::call_site().local_file();
            expand(&lit.value(), lit.span(), caller.as_deref()).into()
        }
        Err(e) => {
            let mut out = e.to_compile_error();
            out.extend(im_dsl::codegen::generate_stub(&[]));
            out.into()
        }
    }
}

fn error(span: Span, msg: &str) -> TokenStream2 {
    syn::Error::new(span, msg).to_compile_error()
}

/// Candidate locations of `rel`, in the order tried.
fn candidates(rel: &str, caller: Option<&Path>) -> Vec<PathBuf> {
    let rel = Path::new(rel);
    if rel.is_absolute() {
        return vec![rel.to_path_buf()];
    }
    let mut out = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
        let dir = PathBuf::from(dir);
        out.push(dir.join(rel));
        if let Some(root) = im_dsl::source::workspace_root(&dir)
            && root != dir
        {
            out.push(root.join(rel));
        }
    } else if let Ok(cwd) = std::env::current_dir() {
        out.push(cwd.join(rel));
    }
    if let Some(dir) = caller.and_then(Path::parent) {
        let dir = if dir.is_absolute() {
            dir.to_path_buf()
        } else {
            std::env::current_dir().unwrap_or_default().join(dir)
        };
        out.push(dir.join(rel));
    }
    out
}

fn expand(rel: &str, span: Span, caller: Option<&Path>) -> TokenStream2 {
    let tried = candidates(rel, caller);
    let Some(path) = tried.iter().find(|p| p.is_file()) else {
        let mut out = error(
            span,
            &format!(
                "cannot find spec `{rel}` in the crate directory (CARGO_MANIFEST_DIR), the \
                 workspace root or the directory of the invoking file"
            ),
        );
        out.extend(im_dsl::codegen::generate_stub(&[]));
        return out;
    };
    let path = path.canonicalize().unwrap_or_else(|_| path.clone());
    let checked = std::panic::catch_unwind(|| im_dsl::load::check_path(&path));
    match checked {
        Ok(Ok((_, spec))) => im_dsl::codegen::generate(&spec),
        Ok(Err((sources, diags))) => {
            let mut out = TokenStream2::new();
            for f in &sources.files {
                if let Some(inc) = f.path.as_deref().and_then(im_dsl::codegen::include) {
                    out.extend(inc);
                }
            }
            if let Some(inc) = im_dsl::codegen::include(&path) {
                out.extend(inc);
            }
            for d in &diags {
                let msg = format!(
                    "{}: {}\n\n{}",
                    d.location(&sources),
                    d.message,
                    d.render(&sources)
                );
                out.extend(error(span, &msg));
            }
            if diags.is_empty() {
                out.extend(error(span, "the spec failed to check, with no diagnostic"));
            }
            let names =
                im_dsl::codegen::procedure_names(sources.files.iter().map(|f| f.text.as_str()));
            out.extend(im_dsl::codegen::generate_stub(&names));
            out
        }
        Err(_) => {
            let mut out = im_dsl::codegen::include(&path).unwrap_or_default();
            out.extend(error(
                span,
                &format!("internal error: the checker panicked on `{rel}`; please report it"),
            ));
            out.extend(im_dsl::codegen::generate_stub(&[]));
            out
        }
    }
}

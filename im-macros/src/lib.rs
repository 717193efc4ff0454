//! `imspec!("specs/….imspec")`: compiles a spec file into Rust state machines at build time.
//!
//! This crate is a thin shim over [`im_dsl`]'s generator: it resolves the path against
//! `CARGO_MANIFEST_DIR`, calls the generator and turns spec errors into `compile_error!`.

//! Compiles `specs/page_mode_group_invite.imspec` twice with `im_dsl::build`: as written, and
//! from a copy of `specs/` with one status code and one condition changed. Nothing in the
//! crate's Rust changes between the two; only the `.imspec` text does.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// (file, text to find, replacement): one status code and one condition.
const EDITS: &[(&str, &str, &str)] = &[
    (
        "page_mode_group_invite.imspec",
        "respond 404 \"Not Found\"",
        "respond 410 \"Gone\"",
    ),
    (
        "7.9.1.4_adhoc_group.imspec",
        "count(recipients) > config.max_recipients",
        "count(recipients) > 1",
    ),
];

fn run() -> Result<(), String> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let specs = manifest.join("../../specs");
    let root = "page_mode_group_invite.imspec";

    let dir = |name: &str| -> Result<PathBuf, String> {
        let d = out.join(name);
        std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        Ok(d)
    };
    let original = im_dsl::build::compile_to(&specs.join(root), &dir("original")?)
        .map_err(|e| e.to_string())?;
    for f in &original.read {
        println!("cargo:rerun-if-changed={}", f.display());
    }

    // Every spec and codegen fixture as well, so clippy lints all generated code as it comes
    // out of a build script (proc-macro output is partly exempt from clippy).
    for (src, name) in [
        (specs.clone(), "all"),
        (manifest.join("../../im-dsl/tests/fixtures"), "fixtures"),
    ] {
        let done = im_dsl::build::compile_to(&src, &dir(name)?).map_err(|e| e.to_string())?;
        for f in &done.read {
            println!("cargo:rerun-if-changed={}", f.display());
        }
    }

    let copy = dir("edited-src")?;
    for entry in std::fs::read_dir(&specs).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|e| e == "imspec") {
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let mut text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
            for (file, from, to) in EDITS {
                if *file == name {
                    if !text.contains(from) {
                        return Err(format!("{name} no longer contains `{from}`: update EDITS"));
                    }
                    text = text.replacen(from, to, 1);
                }
            }
            write(&copy.join(&name), &text)?;
        }
    }
    im_dsl::build::compile_to(&copy.join(root), &dir("edited")?).map_err(|e| e.to_string())?;
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

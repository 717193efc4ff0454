//! Compiles `specs/page_mode_group_invite.imspec` twice with `im_dsl::build`: as written, and
//! from a copy of `specs/` with the edits of `edits.toml` applied (the change request). What
//! the edited spec must do is in `cases/*.toml`; nothing in the crate's Rust names a status.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// One edit of `edits.toml`: replace the first `find` in `file` with `replace`.
struct Edit {
    file: String,
    find: String,
    replace: String,
}

fn edits(path: &Path) -> Result<Vec<Edit>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let field = |e: &toml::Value, k: &str| -> Result<String, String> {
        e.get(k)
            .and_then(toml::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("{}: an edit lacks the string `{k}`", path.display()))
    };
    table
        .get("edit")
        .and_then(toml::Value::as_array)
        .ok_or_else(|| format!("{}: no [[edit]]", path.display()))?
        .iter()
        .map(|e| {
            Ok(Edit {
                file: field(e, "file")?,
                find: field(e, "find")?,
                replace: field(e, "replace")?,
            })
        })
        .collect()
}

fn run() -> Result<(), String> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let specs = manifest.join("../../specs");
    let root = "page_mode_group_invite.imspec";
    let edits_file = manifest.join("edits.toml");
    println!("cargo:rerun-if-changed={}", edits_file.display());
    let edits = edits(&edits_file)?;
    if let Some(e) = edits.iter().find(|e| !specs.join(&e.file).is_file()) {
        return Err(format!("edits.toml: no spec `{}` in specs/", e.file));
    }

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
            for e in edits.iter().filter(|e| e.file == name) {
                if !text.contains(&e.find) {
                    return Err(format!(
                        "{name} no longer contains `{}`: update edits.toml",
                        e.find
                    ));
                }
                text = text.replacen(&e.find, &e.replace, 1);
            }
            write(&copy.join(&name), &text)?;
        }
    }
    im_dsl::build::compile_to(&copy.join(root), &dir("edited")?).map_err(|e| e.to_string())?;
    // The RFC 5365 exploder, edited too (its `forward each` items, read again for a kept
    // copy: tests/offline_copy.rs).
    im_dsl::build::compile_to(
        &copy.join("rfc5365_message_exploder.imspec"),
        &dir("edited")?,
    )
    .map_err(|e| e.to_string())?;
    gaps(&manifest, &specs, &out)?;
    Ok(())
}

/// The specs of `gaps.toml`: each a copy of `specs/` with one rule taken out, compiled to
/// `OUT_DIR/gap-<name>/` (tests/spec_gap.rs).
fn gaps(manifest: &Path, specs: &Path, out: &Path) -> Result<(), String> {
    let path = manifest.join("gaps.toml");
    println!("cargo:rerun-if-changed={}", path.display());
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let gaps = table
        .get("gap")
        .and_then(toml::Value::as_array)
        .ok_or_else(|| format!("{}: no [[gap]]", path.display()))?;
    for g in gaps {
        let field = |k: &str| -> Result<&str, String> {
            g.get(k)
                .and_then(toml::Value::as_str)
                .ok_or_else(|| format!("gaps.toml: a gap lacks the string `{k}`"))
        };
        let (name, root) = (field("name")?, field("root")?);
        // One edit (`file`, `find`, `replace`), or several as `[[gap.edit]]`.
        let mut edits = Vec::new();
        if g.get("file").is_some() {
            edits.push((field("file")?, field("find")?, field("replace")?));
        }
        for e in g
            .get("edit")
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
        {
            let f = |k: &str| -> Result<&str, String> {
                e.get(k)
                    .and_then(toml::Value::as_str)
                    .ok_or_else(|| format!("gaps.toml: an edit of `{name}` lacks `{k}`"))
            };
            edits.push((f("file")?, f("find")?, f("replace")?));
        }
        let src = out.join(format!("gap-{name}-src"));
        let dst = out.join(format!("gap-{name}"));
        for d in [&src, &dst] {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        for entry in std::fs::read_dir(specs).map_err(|e| e.to_string())? {
            let p = entry.map_err(|e| e.to_string())?.path();
            if p.extension().is_none_or(|e| e != "imspec") {
                continue;
            }
            let fname = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let mut t = std::fs::read_to_string(&p).map_err(|e| e.to_string())?;
            for (file, find, replace) in edits.iter().filter(|e| e.0 == fname) {
                if !t.contains(find) {
                    return Err(format!(
                        "{file} no longer contains the `find` of gap `{name}`: update gaps.toml"
                    ));
                }
                t = t.replacen(find, replace, 1);
            }
            write(&src.join(&fname), &t)?;
        }
        im_dsl::build::compile_to(&src.join(root), &dst).map_err(|e| e.to_string())?;
    }
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

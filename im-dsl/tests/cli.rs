//! The `imspec check` command: exit codes and the JSON shape.

use std::path::PathBuf;
use std::process::Command;

fn imspec(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_imspec"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .expect("runs")
}

fn tmp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("imspec-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn clean_specs_exit_zero() {
    let out = imspec(&["check", "../specs"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn errors_exit_one_with_rustc_style_output() {
    let p = tmp(
        "bad.imspec",
        "procedure p [1] {\n  on initial INVITE { rule r [1] when nope => respond 200 }\n}\n",
    );
    let out = imspec(&["check", p.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error[E0002]"), "{err}");
    assert!(err.contains("bad.imspec:2:39"), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "no colour when not a terminal: {err}"
    );
}

#[test]
fn json_is_one_array_of_diagnostics() {
    let p = tmp(
        "bad2.imspec",
        "procedure p [1] {\n  on initial INVITE { rule r when request.uri == 3 => respond }\n}\n",
    );
    let out = imspec(&["check", "--format", "json", p.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let arr = v.as_array().expect("array");
    let codes: Vec<&str> = arr
        .iter()
        .map(|d| d["code"].as_str().expect("code"))
        .collect();
    assert_eq!(codes, ["E0012", "E0005", "E0011"]);
    for d in arr {
        for k in ["message", "file", "label", "rendered", "severity"] {
            assert!(d[k].is_string(), "{k} in {d}");
        }
        for k in ["line", "column", "start", "end"] {
            assert!(d[k].is_u64(), "{k} in {d}");
        }
        assert!(d["file"].as_str().expect("file").ends_with("bad2.imspec"));
    }
    assert_eq!(arr[1]["line"], 2);
}

#[test]
fn json_of_a_clean_run_is_an_empty_array() {
    let out = imspec(&["check", "--format", "json", "../specs"]);
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v, serde_json::json!([]));
}

#[test]
fn missing_file_and_usage_errors_exit_two() {
    assert_eq!(
        imspec(&["check", "no/such/file.imspec"]).status.code(),
        Some(2)
    );
    assert_eq!(imspec(&["check"]).status.code(), Some(2));
    assert_eq!(
        imspec(&["check", "--format", "xml", "x"]).status.code(),
        Some(2)
    );
    assert_eq!(imspec(&["frobnicate"]).status.code(), Some(2));
}

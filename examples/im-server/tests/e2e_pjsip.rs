//! End-to-end with a real SIP client: PJSIP 2.15 (`pjsua2-python` from PyPI) driven by
//! `tests/peers/pjsip_peer.py`, against the real binary with authentication on (the embedded
//! demo users; the default challenges, SHA-256 first). Issue 14: a client with the wrong
//! password is refused; one with the right password gets its group MESSAGE through to a
//! member who registered with PJSIP too.
//!
//! The Python with pjsua2 is `$IMSPEC_PJSIP_PYTHON` (scripts/test-all makes a venv under
//! target/ and sets it), else `target/peers-venv/bin/python`, else `python3`; when none can
//! import pjsua2 the test fails with the install command: a test that cannot run must not
//! pass.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Server, group_folder};

const GROUP: &str = "sip:pjsip-group@example.com";

fn pjsip_python() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("IMSPEC_PJSIP_PYTHON") {
        candidates.push(p.into());
    }
    candidates.push(workspace.join("target/peers-venv/bin/python"));
    candidates.push("python3".into());
    for c in &candidates {
        let ok = Command::new(c)
            .args(["-c", "import pjsua2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return c.clone();
        }
    }
    panic!(
        "no Python with pjsua2 (tried {candidates:?}): run scripts/test-all, or \
         `python3 -m venv target/peers-venv && target/peers-venv/bin/pip install \
         'pjsua2-python>=2.15,<2.16'`"
    );
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/pjsip_peer.py")
}

/// The JSON events a peer printed (PJSIP's own log lines are skipped).
fn events(out: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| l.starts_with("{\"event\""))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn peer(server: &Server, args: &[&str]) -> Command {
    let mut c = Command::new(pjsip_python());
    c.arg(script())
        .args(args)
        .args(["--server", &server.sip.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn code(events: &[serde_json::Value], name: &str) -> Option<i64> {
    events
        .iter()
        .find(|e| e["event"] == name)
        .and_then(|e| e["code"].as_i64())
}

#[test]
fn pjsip_wrong_password_is_refused_right_password_reaches_the_group() {
    let members = [
        "sip:alice@example.com".to_owned(),
        "sip:bob@example.com".to_owned(),
    ];
    let groups = group_folder(GROUP, &members);
    let server = Server::start_auth(&["--groups", groups.path().to_str().unwrap()]);

    // Bob registers with PJSIP and waits for one MESSAGE.
    let bob = peer(
        &server,
        &[
            "receive",
            "--user",
            "bob",
            "--password",
            "bob-demo",
            "--count",
            "1",
            "--timeout",
            "20",
        ],
    )
    .spawn()
    .expect("start the PJSIP receiver");
    assert!(
        server.wait_for_log("REGISTER from", Duration::from_secs(10))
            && server.wait_for_log("authenticated as \"bob\"", Duration::from_secs(10)),
        "bob did not register:\n{}",
        server.log()
    );

    // Alice with a wrong password: her REGISTER is refused, and so is her MESSAGE.
    let wrong_register = peer(
        &server,
        &[
            "receive",
            "--user",
            "alice",
            "--password",
            "not-alice",
            "--timeout",
            "5",
        ],
    )
    .output()
    .expect("run the PJSIP receiver");
    let ev = events(&wrong_register.stdout);
    assert!(!wrong_register.status.success(), "{ev:?}");
    assert_eq!(code(&ev, "registered"), Some(401), "{ev:?}");
    let wrong = peer(
        &server,
        &[
            "send",
            "--user",
            "alice",
            "--password",
            "not-alice",
            "--to",
            GROUP,
            "--text",
            "from an impostor",
            "--timeout",
            "10",
        ],
    )
    .output()
    .expect("run the PJSIP sender");
    let ev = events(&wrong.stdout);
    assert!(!wrong.status.success(), "{ev:?}");
    assert_eq!(code(&ev, "sent"), Some(401), "{ev:?}\n{}", server.log());
    // A wrong answer is challenged again with the same nonce, so PJSIP gives up at once
    // (with a fresh nonce each time it resent the MESSAGE thousands of times a second).
    let tries = server
        .log()
        .lines()
        .filter(|l| l.contains("MESSAGE from") && l.contains("challenged"))
        .count();
    assert!(tries <= 3, "{tries} challenges for one MESSAGE");

    // Alice with her password: 202, and bob gets the text.
    let right = peer(
        &server,
        &[
            "send",
            "--user",
            "alice",
            "--password",
            "alice-demo",
            "--to",
            GROUP,
            "--text",
            "hello group from pjsip",
        ],
    )
    .output()
    .expect("run the PJSIP sender");
    let ev = events(&right.stdout);
    assert!(
        right.status.success(),
        "{ev:?}\n{}\n{}",
        String::from_utf8_lossy(&right.stderr),
        server.log()
    );
    assert_eq!(code(&ev, "sent"), Some(202), "{ev:?}");

    let bob = bob.wait_with_output().expect("the PJSIP receiver");
    let ev = events(&bob.stdout);
    assert!(bob.status.success(), "{ev:?}\n{}", server.log());
    let messages: Vec<&serde_json::Value> = ev.iter().filter(|e| e["event"] == "message").collect();
    // Exactly one: the impostor's text never reached bob.
    assert_eq!(messages.len(), 1, "{ev:?}");
    assert_eq!(messages[0]["body"], "hello group from pjsip", "{ev:?}");
    assert!(
        messages[0]["from"]
            .as_str()
            .is_some_and(|f| f.contains("sip:alice@example.com")),
        "{ev:?}"
    );
    // PJSIP answered the SHA-256 challenge (the first one offered), not MD5.
    assert!(
        server
            .log()
            .contains("authenticated as \"alice\" (SHA-256)"),
        "{}",
        server.log()
    );
}

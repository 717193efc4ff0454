//! `imspec lsp` spoken to over stdio with real LSP JSON-RPC (`Content-Length` framing), as an
//! editor would: initialize, open a spec with a typo, get the diagnostic the build would give
//! (same code, same span), fix it, hover, go to definition, format, list symbols, shut down.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

struct Client {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: i64,
}

impl Client {
    fn start() -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_imspec"))
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn imspec lsp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Client {
            child,
            stdin,
            stdout,
            next_id: 1,
        }
    }

    fn send(&mut self, msg: &Value) {
        let body = msg.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("write");
        self.stdin.flush().expect("flush");
    }

    fn read(&mut self) -> Value {
        let mut len = None;
        loop {
            let mut line = String::new();
            let n = self.stdout.read_line(&mut line).expect("read header");
            assert!(n > 0, "server closed stdout");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(v) = line.strip_prefix("Content-Length: ") {
                len = Some(v.parse::<usize>().expect("length"));
            }
        }
        let mut buf = vec![0; len.expect("Content-Length header")];
        self.stdout.read_exact(&mut buf).expect("body");
        serde_json::from_slice(&buf).expect("json body")
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request and returns its result, skipping notifications in between.
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let m = self.read();
            if m["id"] == json!(id) {
                assert!(m.get("error").is_none(), "{m}");
                return m["result"].clone();
            }
        }
    }

    /// The next publishDiagnostics for `uri`.
    fn diagnostics(&mut self, uri: &str) -> Vec<Value> {
        loop {
            let m = self.read();
            if m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri {
                return m["params"]["diagnostics"]
                    .as_array()
                    .expect("array")
                    .clone();
            }
        }
    }
}

fn uri_of(p: &Path) -> String {
    format!("file://{}", p.display())
}

/// Line and UTF-16 column of the first `needle` (ASCII text) after `after`.
fn pos(text: &str, after: &str, needle: &str) -> (usize, usize) {
    let from = text.find(after).expect("anchor");
    let off = from + text[from..].find(needle).expect("needle");
    let line = text[..off].matches('\n').count();
    let col = off - text[..off].rfind('\n').map_or(0, |i| i + 1);
    (line, col)
}

fn at(line: usize, col: usize) -> Value {
    json!({"line": line, "character": col})
}

#[test]
fn an_editor_session_over_stdio() {
    let specs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs");
    let tmp = tempfile::tempdir().expect("tmp");
    for e in std::fs::read_dir(&specs).expect("specs") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            continue; // specs/cases/
        }
        std::fs::copy(&p, tmp.path().join(p.file_name().expect("name"))).expect("copy");
    }
    let dir = tmp.path().canonicalize().expect("canonical");
    let file = dir.join("page_mode_group_invite.imspec");
    let uri = uri_of(&file);
    let good = std::fs::read_to_string(&file).expect("read");
    let typo = good.replacen("when has_recipient_list", "when has_recipent_list", 1);

    let mut c = Client::start();
    let init = c.request(
        "initialize",
        json!({"processId": null, "rootUri": uri_of(&dir), "capabilities": {}}),
    );
    let caps = &init["capabilities"];
    assert_eq!(caps["hoverProvider"], json!(true), "{init}");
    assert_eq!(caps["definitionProvider"], json!(true), "{init}");
    assert_eq!(caps["documentFormattingProvider"], json!(true), "{init}");
    c.notify("initialized", json!({}));

    // The typo: E0002 on exactly the misspelt name, as `imspec check` reports it.
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "imspec", "version": 1, "text": typo}}),
    );
    let d = c.diagnostics(&uri);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0]["code"], "E0002", "{d:#?}");
    assert_eq!(d[0]["source"], "imspec");
    let (l, col) = pos(&typo, "rule adhoc", "has_recipent_list");
    assert_eq!(d[0]["range"]["start"], at(l, col), "{d:#?}");
    assert_eq!(
        d[0]["range"]["end"],
        at(l, col + "has_recipent_list".len()),
        "{d:#?}"
    );
    assert!(
        d[0]["message"]
            .as_str()
            .expect("message")
            .contains("has_recipent_list")
    );
    // The build's check of the same text says the same: code, line, column, byte span.
    let typo_file = dir.join("typo.imspec");
    std::fs::write(&typo_file, &typo).expect("write");
    let check = Command::new(env!("CARGO_BIN_EXE_imspec"))
        .args(["check", "--format", "json"])
        .arg(&typo_file)
        .output()
        .expect("check");
    let built: Value = serde_json::from_slice(&check.stdout).expect("json");
    assert_eq!(built.as_array().expect("array").len(), 1, "{built}");
    assert_eq!(built[0]["code"], d[0]["code"]);
    assert_eq!(built[0]["line"], json!(l + 1));
    assert_eq!(built[0]["column"], json!(col + 1));
    assert_eq!(
        built[0]["end"].as_u64().expect("end") - built[0]["start"].as_u64().expect("start"),
        "has_recipent_list".len() as u64
    );

    // Fixed while typing: the diagnostics are cleared.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": good}]}),
    );
    assert_eq!(c.diagnostics(&uri), Vec::<Value>::new());

    let doc = json!({"uri": uri});
    // Hover on a condition defined in an imported file.
    let (l, col) = pos(&good, "rule predefined", "owned_group");
    let h = c.request(
        "textDocument/hover",
        json!({"textDocument": doc, "position": at(l, col + 2)}),
    );
    let v = h["contents"]["value"].as_str().expect("hover text");
    assert!(v.contains("directory.owns(request.uri)"), "{v}");
    assert!(v.contains("7.9.1.5_predefined_group.imspec"), "{v}");
    // Hover on a fact: its type and where it comes from.
    let (l, col) = pos(
        &good,
        "rule factory_without_list",
        "config.conference_factory",
    );
    let h = c.request(
        "textDocument/hover",
        json!({"textDocument": doc, "position": at(l, col + 8)}),
    );
    let v = h["contents"]["value"].as_str().expect("hover text");
    assert!(v.contains("config.conference_factory : Uri"), "{v}");
    assert!(v.contains("configuration"), "{v}");
    // Hover on a call: the procedure it runs.
    let (l, col) = pos(&good, "rule adhoc", "7.9.1.4");
    let h = c.request(
        "textDocument/hover",
        json!({"textDocument": doc, "position": at(l, col)}),
    );
    let v = h["contents"]["value"].as_str().expect("hover text");
    assert!(v.contains("procedure adhoc_group_setup [7.9.1.4]"), "{v}");

    // Go to definition: the call, the condition, the import.
    let adhoc = std::fs::read_to_string(dir.join("7.9.1.4_adhoc_group.imspec")).expect("read");
    let r = c.request(
        "textDocument/definition",
        json!({"textDocument": doc, "position": at(l, col + 1)}),
    );
    assert_eq!(
        r["uri"],
        uri_of(&dir.join("7.9.1.4_adhoc_group.imspec")),
        "{r}"
    );
    let (dl, dc) = pos(&adhoc, "procedure adhoc_group_setup", "adhoc_group_setup");
    assert_eq!(r["range"]["start"], at(dl, dc), "{r}");
    let (l, col) = pos(&good, "rule predefined", "owned_group");
    let r = c.request(
        "textDocument/definition",
        json!({"textDocument": doc, "position": at(l, col)}),
    );
    assert_eq!(
        r["uri"],
        uri_of(&dir.join("7.9.1.5_predefined_group.imspec")),
        "{r}"
    );
    let (l, col) = pos(&good, "import \"7.9.1.5", "7.9.1.5");
    let r = c.request(
        "textDocument/definition",
        json!({"textDocument": doc, "position": at(l, col)}),
    );
    assert_eq!(
        r["uri"],
        uri_of(&dir.join("7.9.1.5_predefined_group.imspec")),
        "{r}"
    );

    // Outline: procedures named with their clause ids.
    let s = c.request("textDocument/documentSymbol", json!({"textDocument": doc}));
    let names: Vec<&str> = s
        .as_array()
        .expect("symbols")
        .iter()
        .map(|x| x["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["page_mode_group_invite [5.2.1.1]"], "{s}");
    let rules: Vec<&str> = s[0]["children"]
        .as_array()
        .expect("children")
        .iter()
        .map(|x| x["name"].as_str().unwrap_or(""))
        .collect();
    assert!(
        rules.contains(&"not_for_this_server [5.2.1.1]"),
        "{rules:?}"
    );

    // Formatting: a clean file needs no edit; a badly laid out one gets `imspec fmt`'s text.
    let r = c.request(
        "textDocument/formatting",
        json!({"textDocument": doc, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    assert_eq!(r, json!([]), "{r}");
    let messy = good.replace("  on initial INVITE {", "on initial    INVITE {");
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 3}, "contentChanges": [{"text": messy}]}),
    );
    assert_eq!(c.diagnostics(&uri), Vec::<Value>::new());
    let r = c.request(
        "textDocument/formatting",
        json!({"textDocument": doc, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    let edits = r.as_array().expect("edits");
    assert_eq!(edits.len(), 1, "{r}");
    assert_eq!(
        edits[0]["newText"], good,
        "formatting gives the canonical text back"
    );

    // Shut down cleanly.
    let r = c.request("shutdown", Value::Null);
    assert_eq!(r, Value::Null);
    c.notify("exit", Value::Null);
    let status = c.child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
}

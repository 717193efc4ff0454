//! Traceability: clause → rules → tests → log field (`imspec trace`).
//!
//! Rules come from the checked specs (every root under the given paths, with its imports).
//! Tests cite the rules they exercise with a line comment right above (or inside) the test:
//!
//! ```text
//! // covers: 7.9.1.4/too_many_recipients
//! // covers: 5.2.1.1/adhoc_group_setup::no_offer, 7.9.1.4/setup
//! ```
//!
//! A citation is `CLAUSE/RULE`, the rule's own clause and name as the endpoint logs them
//! (`clause=… rule=…`). When two procedures have a rule of the same clause and name (the
//! 488s that 7.9.1.4 and 7.9.1.5 share), the citation must say which:
//! `CLAUSE/PROCEDURE::RULE`.
//!
//! Citations are read from the workspace's test code: every `.rs` file under a directory
//! named `tests`, and the part of any other `.rs` file from its first `#[cfg(test)]` on.
//! `target/`, `.git/` and hidden directories are skipped.
//!
//! Conformance case files count too: every `.toml` file in a directory named `cases`
//! (`specs/cases/*.toml`) whose `[[case]]` tables carry `covers = ["CLAUSE/RULE", …]`; the
//! citing "test" is `FILE::CASE NAME`, run by `im-macros/tests/spec_cases.rs`.

use crate::load::check_path;
use crate::model::{Alternative, Procedure, Rule, Spec};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One rule of the specs, with the tests citing it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RuleRow {
    /// The rule's clause id (the log line's `clause=`).
    pub clause: String,
    /// Procedure name (the log line's `procedure=`).
    pub procedure: String,
    /// The procedure's own clause id.
    pub procedure_clause: String,
    /// Rule name (the log line's `rule=`).
    pub rule: String,
    /// `file:line` of the rule.
    pub location: String,
    /// Tests citing it, as `path::function` (`path:line` when no function follows).
    pub tests: Vec<String>,
    /// The fields of the endpoint's `spec action` log line that name this rule.
    pub log: String,
}

/// A `// covers:` citation found in test code.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Citation {
    /// As written (`7.9.1.4/setup`).
    pub text: String,
    /// `path:line` of the comment, relative to the scanned root.
    pub at: String,
    /// The test function that follows the comment, when there is one.
    pub test: Option<String>,
}

/// The whole matrix plus what `--check` complains about.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Trace {
    /// Every rule, sorted by clause, procedure and location.
    pub rules: Vec<RuleRow>,
    /// Problems: uncited rules, clauses without rules, dangling or ambiguous citations.
    pub problems: Vec<String>,
}

/// Errors that stop the trace before any matrix exists.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// A spec did not check; the message is the rendered diagnostics.
    #[error("{0}")]
    Spec(String),
    /// A path could not be read.
    #[error("cannot read `{0}`: {1}")]
    Io(String, std::io::Error),
}

/// Every `*.imspec` at or under `paths`, sorted, each once.
pub fn spec_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, TraceError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut |f| {
                if f.extension().is_some_and(|e| e == "imspec") {
                    out.push(f.to_path_buf());
                }
            })
            .map_err(|e| TraceError::Io(p.display().to_string(), e))?;
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(TraceError::Io(
                p.display().to_string(),
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
            ));
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Checks every root and returns the checked specs (a file imported by several roots is in
/// several of them; callers deduplicate by location).
pub fn load_specs(roots: &[PathBuf]) -> Result<Vec<Spec>, TraceError> {
    let mut specs = Vec::new();
    for r in roots {
        match check_path(r) {
            Ok((_, spec)) => specs.push(spec),
            Err((sources, diags)) => {
                let text: Vec<String> = diags.iter().map(|d| d.render(&sources)).collect();
                return Err(TraceError::Spec(text.join("\n")));
            }
        }
    }
    Ok(specs)
}

/// Every rule of a procedure, in source order.
pub fn procedure_rules(proc: &Procedure) -> Vec<&Rule> {
    let mut out = Vec::new();
    for h in &proc.handlers {
        for alt in &h.alternatives {
            match alt {
                Alternative::Rule(r) => out.push(r),
                Alternative::First { rules, otherwise } => {
                    out.extend(rules.iter());
                    out.extend(otherwise.iter());
                }
            }
        }
        out.extend(h.otherwise.iter());
    }
    out
}

/// Builds the matrix for the specs at `spec_paths`, reading citations from the test code
/// under `root`.
pub fn trace(spec_paths: &[PathBuf], root: &Path) -> Result<Trace, TraceError> {
    let specs = load_specs(&spec_files(spec_paths)?)?;
    let citations =
        scan_citations(root).map_err(|e| TraceError::Io(root.display().to_string(), e))?;
    Ok(build(&specs, &citations))
}

/// The matrix of already checked specs and already scanned citations.
pub fn build(specs: &[Spec], citations: &[Citation]) -> Trace {
    // Rules, once each (a file imported by several roots appears in several specs).
    let mut rows: BTreeMap<(String, String, String), RuleRow> = BTreeMap::new();
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for spec in specs {
        for p in &spec.procedures {
            headers
                .entry(p.clause.clone())
                .or_insert_with(|| format!("{}:{} (procedure {})", p.loc.file, p.loc.line, p.name));
            for r in procedure_rules(p) {
                let location = format!("{}:{}", r.loc.file, r.loc.line);
                rows.entry((r.clause.clone(), p.name.clone(), location.clone()))
                    .or_insert_with(|| RuleRow {
                        clause: r.clause.clone(),
                        procedure: p.name.clone(),
                        procedure_clause: p.clause.clone(),
                        rule: r.name.clone(),
                        location,
                        tests: Vec::new(),
                        log: format!("procedure={} rule={}/{}", p.name, r.clause, r.name),
                    });
            }
        }
    }
    let mut rules: Vec<RuleRow> = rows.into_values().collect();
    let mut problems = Vec::new();

    for c in citations {
        let Some((clause, name)) = c.text.split_once('/') else {
            problems.push(format!(
                "{}: citation `{}` is not CLAUSE/RULE (e.g. `7.9.1.4/too_many_recipients`)",
                c.at, c.text
            ));
            continue;
        };
        let (procedure, rule) = match name.split_once("::") {
            Some((p, r)) => (Some(p), r),
            None => (None, name),
        };
        let hits: Vec<usize> = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.clause == clause && r.rule == rule && procedure.is_none_or(|p| p == r.procedure)
            })
            .map(|(i, _)| i)
            .collect();
        match hits.as_slice() {
            [] => {
                let near: Vec<String> = rules
                    .iter()
                    .filter(|r| r.rule == rule || r.clause == clause)
                    .map(|r| format!("{}/{}", r.clause, r.rule))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .take(6)
                    .collect();
                let hint = if near.is_empty() {
                    String::new()
                } else {
                    format!(" (rules of that clause or name: {})", near.join(", "))
                };
                problems.push(format!(
                    "{}: `covers: {}` names no rule of the specs{hint}",
                    c.at, c.text
                ));
            }
            [i] => {
                let who = c.test.clone().unwrap_or_else(|| c.at.clone());
                if !rules[*i].tests.contains(&who) {
                    rules[*i].tests.push(who);
                }
            }
            many => {
                let which: Vec<String> = many
                    .iter()
                    .map(|&i| format!("{clause}/{}::{rule}", rules[i].procedure))
                    .collect();
                problems.push(format!(
                    "{}: `covers: {}` is ambiguous; write one of {}",
                    c.at,
                    c.text,
                    which.join(", ")
                ));
            }
        }
    }

    for r in &rules {
        if r.tests.is_empty() {
            let key = if rules
                .iter()
                .filter(|o| o.clause == r.clause && o.rule == r.rule)
                .count()
                > 1
            {
                format!("{}/{}::{}", r.clause, r.procedure, r.rule)
            } else {
                format!("{}/{}", r.clause, r.rule)
            };
            problems.push(format!(
                "{}: rule {} (procedure {}) has no test: add `// covers: {key}` above a test \
                 that exercises it",
                r.location, r.rule, r.procedure
            ));
        }
    }
    for (clause, at) in &headers {
        if !rules.iter().any(|r| &r.clause == clause) {
            problems.push(format!(
                "{at}: clause {clause} is in a procedure header but no rule implements it"
            ));
        }
    }
    for r in &mut rules {
        r.tests.sort();
    }
    Trace { rules, problems }
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() {
            if name == "target" || name.starts_with('.') {
                continue;
            }
            walk(&p, f)?;
        } else {
            f(&p);
        }
    }
    Ok(())
}

/// Every `// covers:` citation in the test code under `root` (see the module docs for which
/// files count).
pub fn scan_citations(root: &Path) -> std::io::Result<Vec<Citation>> {
    let mut files = Vec::new();
    walk(root, &mut |p| {
        let in_cases = p
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|n| n == "cases");
        if p.extension().is_some_and(|e| e == "rs")
            || (in_cases && p.extension().is_some_and(|e| e == "toml"))
        {
            files.push(p.to_path_buf());
        }
    })?;
    let mut out = Vec::new();
    for f in files {
        let rel = f.strip_prefix(root).unwrap_or(&f);
        let rel_s = rel.to_string_lossy().replace('\\', "/");
        if f.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&f)?;
            out.extend(
                citations_in_cases(&rel_s, &text)
                    .map_err(|e| std::io::Error::other(format!("{rel_s}: {e}")))?,
            );
            continue;
        }
        let in_tests_dir = rel.components().any(|c| c.as_os_str() == "tests");
        let text = std::fs::read_to_string(&f)?;
        out.extend(citations_in(&rel_s, &text, in_tests_dir));
    }
    Ok(out)
}

/// The citations of one file. Outside a `tests` directory only the part from the first
/// `#[cfg(test)]` on counts.
pub fn citations_in(path: &str, text: &str, whole_file: bool) -> Vec<Citation> {
    let lines: Vec<&str> = text.lines().collect();
    let start = if whole_file {
        0
    } else {
        match lines
            .iter()
            .position(|l| l.trim_start().starts_with("#[cfg(test)]"))
        {
            Some(i) => i,
            None => return Vec::new(),
        }
    };
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate().skip(start) {
        let Some(rest) = line.trim_start().strip_prefix("//") else {
            continue;
        };
        let Some(list) = rest.trim_start().strip_prefix("covers:") else {
            continue;
        };
        let test = test_fn_after(&lines, i).or_else(|| test_fn_before(&lines, i));
        for item in list.split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            out.push(Citation {
                text: item.to_string(),
                at: format!("{path}:{}", i + 1),
                test: test.as_ref().map(|t| format!("{path}::{t}")),
            });
        }
    }
    out
}

/// The `covers` of every `[[case]]` of a case file. The line given is the case's `covers`
/// key (the n-th `covers` line for the n-th case that has one).
pub fn citations_in_cases(path: &str, text: &str) -> Result<Vec<Citation>, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let cases = match table.get("case") {
        None => return Ok(Vec::new()),
        Some(toml::Value::Array(a)) => a,
        Some(_) => return Err("`case` is not an array of tables".into()),
    };
    let covers_lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.trim_start();
            l.strip_prefix("covers")
                .is_some_and(|r| r.trim_start().starts_with('='))
        })
        .map(|(i, _)| i + 1)
        .collect();
    let mut out = Vec::new();
    let mut nth = 0;
    for case in cases {
        let name = case
            .get("name")
            .and_then(toml::Value::as_str)
            .unwrap_or("?");
        let Some(covers) = case.get("covers") else {
            continue;
        };
        let items = covers
            .as_array()
            .ok_or_else(|| format!("case `{name}`: `covers` is not an array"))?;
        let line = covers_lines.get(nth).copied().unwrap_or(0);
        nth += 1;
        for item in items {
            let item = item
                .as_str()
                .ok_or_else(|| format!("case `{name}`: `covers` holds a non-string"))?;
            out.push(Citation {
                text: item.trim().to_string(),
                at: format!("{path}:{line}"),
                test: Some(format!("{path}::{name}")),
            });
        }
    }
    Ok(out)
}

fn fn_name(line: &str) -> Option<String> {
    let t = line.trim_start();
    let t = t.strip_prefix("pub ").unwrap_or(t);
    let t = t.strip_prefix("async ").unwrap_or(t);
    let rest = t.strip_prefix("fn ")?;
    let name: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// The function a citation above it belongs to: the next `fn` line, skipping comments and
/// attributes only.
fn test_fn_after(lines: &[&str], i: usize) -> Option<String> {
    for l in &lines[i + 1..] {
        let t = l.trim_start();
        if t.starts_with("//") || t.starts_with("#[") || t.is_empty() {
            continue;
        }
        return fn_name(l);
    }
    None
}

/// The function a citation inside its body belongs to: the nearest `fn` line above.
fn test_fn_before(lines: &[&str], i: usize) -> Option<String> {
    lines[..i].iter().rev().find_map(|l| fn_name(l))
}

/// The matrix as a plain-text table, one line per rule, grouped by clause.
pub fn render_table(t: &Trace) -> String {
    let mut out = String::new();
    let mut last = None;
    for r in &t.rules {
        if last != Some(&r.clause) {
            out.push_str(&format!("clause {}\n", r.clause));
            last = Some(&r.clause);
        }
        out.push_str(&format!(
            "  {}::{}  ({})\n    log: {}\n",
            r.procedure, r.rule, r.location, r.log
        ));
        if r.tests.is_empty() {
            out.push_str("    tests: NONE\n");
        }
        for test in &r.tests {
            out.push_str(&format!("    test: {test}\n"));
        }
    }
    out
}

/// The matrix as a Markdown table.
pub fn render_markdown(t: &Trace) -> String {
    let mut out =
        String::from("| Clause | Rule | Location | Tests | Log field |\n|---|---|---|---|---|\n");
    for r in &t.rules {
        let tests = if r.tests.is_empty() {
            "**none**".to_string()
        } else {
            r.tests
                .iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join("<br>")
        };
        out.push_str(&format!(
            "| {} | `{}::{}` | {} | {} | `{}` |\n",
            r.clause, r.procedure, r.rule, r.location, tests, r.log
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn citations_attach_to_the_next_function_and_split_on_commas() {
        let src = concat!(
            "#[test]\n",
            "// cov",
            "ers: 1.2/a, 1.2/p::b\n",
            "fn one() {\n",
            "    // cov",
            "ers: 3/c\n",
            "}\n"
        );
        let c = citations_in("t.rs", src, true);
        let got: Vec<(&str, Option<&str>)> = c
            .iter()
            .map(|c| (c.text.as_str(), c.test.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("1.2/a", Some("t.rs::one")),
                ("1.2/p::b", Some("t.rs::one")),
                ("3/c", Some("t.rs::one"))
            ]
        );
    }

    #[test]
    fn case_files_cite_with_their_case_names() {
        let src = concat!(
            "[[case]]\nname = \"a\"\ncovers = [\"7.9.1.4/setup\", \"5.2.1.1/adhoc\"]\n",
            "expect.status = 200\n\n[[case]]\nname = \"b\"\nexpect.status = 1\n\n",
            "[[case]]\nname = \"c\"\n  covers = [\"7.9.1.5/setup\"]\nexpect = {}\n",
        );
        let c = citations_in_cases("specs/cases/x.toml", src).expect("parses");
        let got: Vec<(&str, &str, Option<&str>)> = c
            .iter()
            .map(|c| (c.text.as_str(), c.at.as_str(), c.test.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "7.9.1.4/setup",
                    "specs/cases/x.toml:3",
                    Some("specs/cases/x.toml::a")
                ),
                (
                    "5.2.1.1/adhoc",
                    "specs/cases/x.toml:3",
                    Some("specs/cases/x.toml::a")
                ),
                (
                    "7.9.1.5/setup",
                    "specs/cases/x.toml:12",
                    Some("specs/cases/x.toml::c")
                ),
            ]
        );
        assert!(citations_in_cases("x.toml", "[[case]]\ncovers = 3\n").is_err());
        assert!(citations_in_cases("x.toml", "not toml [").is_err());
    }

    #[test]
    fn outside_tests_dirs_only_cfg_test_code_counts() {
        let src = concat!(
            "// cov",
            "ers: 1/a\n#[cfg(test)]\nmod t {\n// cov",
            "ers: 1/b\nfn x() {}\n}\n"
        );
        let c = citations_in("src/x.rs", src, false);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].text, "1/b");
        assert_eq!(c[0].at, "src/x.rs:4");
    }
}

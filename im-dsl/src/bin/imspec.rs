//! The `imspec` command-line tool.
//!
//! `imspec check FILE|DIR…` checks specs: each file (and every `*.imspec` under each
//! directory, recursively) is checked as a root together with its imports. Exit status: 0
//! when clean, 1 when a spec has errors, 2 on usage or I/O errors.
//!
//! `imspec fmt [--check] FILE|DIR…` rewrites specs in the canonical layout.
//!
//! `imspec graph FILE [--format dot|mermaid|svg]` draws the state machines of a spec.
//!
//! `imspec diff OLD NEW` prints the behaviour that changed between two versions of the specs.
//!
//! `imspec lsp` runs the language server on stdin/stdout.
//!
//! `imspec trace [--check] [--format table|json|markdown] FILE|DIR…` prints the clause →
//! rule → test → log field matrix.

use clap::{Args, Parser, Subcommand, ValueEnum};
use im_dsl::diag::JsonDiagnostic;
use im_dsl::load::check_path;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "imspec", version, about = "Tools for .imspec specifications")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check spec files: names, types, overlap, reachability and the rest.
    Check(CheckArgs),
    /// Rewrite .imspec files in the canonical layout (comments are kept).
    Fmt {
        /// Files, or directories searched recursively for `*.imspec`.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Change nothing: list the files that would change, with a short diff, and exit 1
        /// if there are any.
        #[arg(long)]
        check: bool,
    },
    /// Draw each procedure's state machine (states; transitions labelled with trigger,
    /// condition, actions, rule and clause).
    Graph {
        /// The spec file (its imports are drawn too).
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
    /// Behavioural diff: for each procedure, state, event and class of request, what OLD and
    /// NEW do, printing only what changed. Exit 0 when nothing changed, 1 when something did.
    Diff {
        /// The old version: a spec file or a directory of specs.
        old: PathBuf,
        /// The new version: a spec file or a directory of specs.
        new: PathBuf,
        /// Print every row, unchanged ones too (`imspec diff --all specs specs` lists what
        /// the specs answer to every class of request).
        #[arg(long)]
        all: bool,
    },
    /// Language server over stdio (diagnostics, formatting, hover, go-to-definition,
    /// document symbols), for editors.
    Lsp,
    /// Traceability matrix: clause -> rules -> tests citing them (`// covers: CLAUSE/RULE`)
    /// -> the endpoint's log fields.
    Trace {
        /// Spec files, or directories searched recursively for `*.imspec`.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Fail (exit 1) when a rule has no citing test, a procedure's clause has no rule, or
        /// a citation names no rule (or several).
        #[arg(long)]
        check: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = TraceFormat::Table)]
        format: TraceFormat,
        /// Where to look for tests (default: the workspace holding the first path).
        #[arg(long)]
        root: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TraceFormat {
    /// One block per clause.
    Table,
    /// The matrix and the problems as JSON.
    Json,
    /// A Markdown table.
    Markdown,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum GraphFormat {
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
    /// Mermaid `stateDiagram-v2`.
    Mermaid,
    /// SVG, laid out without Graphviz (open it in a browser).
    Svg,
}

#[derive(Args)]
struct CheckArgs {
    /// Spec files, or directories searched recursively for `*.imspec`.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// rustc-style diagnostics on stderr (coloured on a terminal).
    Human,
    /// One JSON array of diagnostics on stdout.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => check(&args),
        Command::Fmt { paths, check } => {
            let summary = im_dsl::fmt::run(
                &paths,
                check,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            );
            ExitCode::from(summary.exit_code(check))
        }
        Command::Graph { file, format } => graph(&file, format),
        Command::Lsp => match im_dsl::lsp::run_stdio() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: language server: {e}");
                ExitCode::from(2)
            }
        },
        Command::Diff { old, new, all } => diff(&old, &new, all),
        Command::Trace {
            paths,
            check,
            format,
            root,
        } => trace(&paths, check, format, root),
    }
}

/// `imspec diff`: changed rows on stdout; exit 0 (no change), 1 (changes), 2 (errors).
fn diff(old: &Path, new: &Path, all: bool) -> ExitCode {
    let load = |p: &Path| {
        im_dsl::trace::spec_files(&[p.to_path_buf()]).and_then(|f| im_dsl::trace::load_specs(&f))
    };
    let (o, n) = match (load(old), load(new)) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let rows = im_dsl::diff::diff(
        &im_dsl::diff::Version::new(&o),
        &im_dsl::diff::Version::new(&n),
        all,
    );
    let text = im_dsl::diff::render(&rows);
    if std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes()).is_err() {
        return ExitCode::from(2);
    }
    let changed = rows.iter().filter(|r| r.old != r.new).count();
    if changed == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("{changed} behaviour row{} changed", plural(changed));
        ExitCode::from(1)
    }
}

/// `imspec trace`: the matrix on stdout; with `--check`, problems on stderr and exit 1.
fn trace(paths: &[PathBuf], check: bool, format: TraceFormat, root: Option<PathBuf>) -> ExitCode {
    let root = root.unwrap_or_else(|| {
        let first = paths[0].canonicalize().unwrap_or_else(|_| paths[0].clone());
        im_dsl::source::workspace_root(&first)
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("."))
    });
    let t = match im_dsl::trace::trace(paths, &root) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(match e {
                im_dsl::trace::TraceError::Spec(_) => 1,
                im_dsl::trace::TraceError::Io(..) => 2,
            });
        }
    };
    let text = match format {
        TraceFormat::Table => im_dsl::trace::render_table(&t),
        TraceFormat::Markdown => im_dsl::trace::render_markdown(&t),
        TraceFormat::Json => match serde_json::to_string_pretty(&t) {
            Ok(s) => s + "\n",
            Err(e) => {
                eprintln!("error: cannot serialise the matrix: {e}");
                return ExitCode::from(2);
            }
        },
    };
    if std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes()).is_err() {
        return ExitCode::from(2);
    }
    if check {
        for p in &t.problems {
            eprintln!("error: {p}");
        }
        if !t.problems.is_empty() {
            eprintln!(
                "error: trace check failed: {} problem{} ({} rules)",
                t.problems.len(),
                plural(t.problems.len()),
                t.rules.len()
            );
            return ExitCode::from(1);
        }
        eprintln!("trace check: {} rules, each cited by a test", t.rules.len());
    }
    ExitCode::SUCCESS
}

/// `imspec graph`: exit 0 with the drawing on stdout, 1 when the spec has errors.
fn graph(file: &Path, format: GraphFormat) -> ExitCode {
    if !file.is_file() {
        eprintln!("error: cannot read `{}`", file.display());
        return ExitCode::from(2);
    }
    match check_path(file) {
        Ok((_, spec)) => {
            let format = match format {
                GraphFormat::Dot => im_dsl::graph::Format::Dot,
                GraphFormat::Mermaid => im_dsl::graph::Format::Mermaid,
                GraphFormat::Svg => im_dsl::graph::Format::Svg,
            };
            let text = im_dsl::graph::render(&spec, format);
            // A closed pipe (`imspec graph … | head`) is not an error worth a panic.
            match std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::from(2),
            }
        }
        Err((sources, diags)) => {
            for d in &diags {
                eprintln!("{}", d.render(&sources));
            }
            ExitCode::from(1)
        }
    }
}

fn check(args: &CheckArgs) -> ExitCode {
    let mut io_error = false;
    let mut roots = Vec::new();
    for p in &args.paths {
        if p.is_dir() {
            let before = roots.len();
            if let Err(e) = collect(p, &mut roots) {
                eprintln!("error: cannot read directory `{}`: {e}", p.display());
                io_error = true;
            } else if roots.len() == before {
                eprintln!("warning: no `.imspec` files under `{}`", p.display());
            }
        } else if let Err(e) = std::fs::File::open(p) {
            eprintln!("error: cannot read `{}`: {e}", p.display());
            io_error = true;
        } else {
            roots.push(p.clone());
        }
    }

    let colour = args.format == Format::Human
        && std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none();
    let mut seen = std::collections::HashSet::new();
    let mut json: Vec<JsonDiagnostic> = Vec::new();
    let mut errors = 0usize;
    let mut failed_files = 0usize;
    for root in &roots {
        let Err((sources, diags)) = check_path(root) else {
            continue;
        };
        failed_files += 1;
        for d in diags {
            // A file imported by several roots is checked several times; say each thing once.
            let file = sources
                .get(d.span.file)
                .map(|f| f.display.clone())
                .unwrap_or_default();
            if !seen.insert((file, d.span.start, d.span.end, d.code, d.message.clone())) {
                continue;
            }
            errors += 1;
            match args.format {
                Format::Json => json.push(d.to_json(&sources)),
                Format::Human => {
                    let text = if colour {
                        d.render_styled(&sources)
                    } else {
                        d.render(&sources)
                    };
                    eprintln!("{text}\n");
                }
            }
        }
    }
    match args.format {
        Format::Json => match serde_json::to_string_pretty(&json) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: cannot serialise diagnostics: {e}");
                return ExitCode::from(2);
            }
        },
        Format::Human => {
            if errors > 0 {
                eprintln!(
                    "error: {errors} error{} in {failed_files} of {} spec{}",
                    plural(errors),
                    roots.len(),
                    plural(roots.len())
                );
            } else if !io_error {
                eprintln!(
                    "checked {} spec{}: no errors",
                    roots.len(),
                    plural(roots.len())
                );
            }
        }
    }
    if io_error {
        ExitCode::from(2)
    } else if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Every `*.imspec` under `dir`, sorted so output is stable.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "imspec") {
            out.push(p);
        }
    }
    Ok(())
}

//! The `imspec` command-line tool.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Tools for `.imspec` procedure specifications.
#[derive(Parser)]
#[command(name = "imspec", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Fmt { paths, check } => {
            let summary = im_dsl::fmt::run(
                &paths,
                check,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            );
            ExitCode::from(summary.exit_code(check))
        }
    }
}

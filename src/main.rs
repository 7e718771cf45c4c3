//! The `lshub` binary: parses the command line and hands over to the library.
#![deny(clippy::unwrap_used)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = lshub::cli::Cli::parse();
    lshub::telemetry::init(cli.log_format);
    match lshub::commands::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

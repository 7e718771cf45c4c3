//! The `lshub` binary: parses the command line and hands over to the library.
#![deny(clippy::unwrap_used)]

use std::process::ExitCode;

use clap::Parser;

/// jemalloc instead of glibc's malloc, which kept what a large request (an import) freed in
/// its thread's arena for good: after a few imports on different blocking threads every later
/// request ran at ~170 MiB resident where ~40 MiB served it (bench/RESULTS.md, issue 12).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// How long memory freed and left unused stays resident before jemalloc gives it back.
const FREED_MEMORY_KEPT_MS: isize = 1000;

/// Has jemalloc give freed memory back to the system within [`FREED_MEMORY_KEPT_MS`], from a
/// background thread (its default keeps it ten seconds, and returns it only when the arena is
/// next used, so an idle thread's arena never shrank). Freed pages are unmapped at once rather
/// than left to the kernel (`muzzy`), so the resident set shows it. Best effort: an allocator
/// that refuses a setting only keeps more memory.
fn give_freed_memory_back() {
    use tikv_jemalloc_ctl::{arenas, background_thread, Access, AsName};
    let _ = "arenas.dirty_decay_ms\0".name().write(FREED_MEMORY_KEPT_MS);
    let _ = "arenas.muzzy_decay_ms\0".name().write(0_isize);
    // The arenas made before this (the defaults above apply to later ones).
    for arena in 0..arenas::narenas::read().unwrap_or(0) {
        let dirty = format!("arena.{arena}.dirty_decay_ms\0");
        let _ = dirty.as_str().name().write(FREED_MEMORY_KEPT_MS);
        let muzzy = format!("arena.{arena}.muzzy_decay_ms\0");
        let _ = muzzy.as_str().name().write(0_isize);
    }
    let _ = background_thread::write(true);
}

fn main() -> ExitCode {
    give_freed_memory_back();
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

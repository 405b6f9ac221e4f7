//! The `negsweep` command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = negsweep::cli::Args::parse();
    let threads = negsweep::cli::thread_plan(&args);
    // Read before the variable is overwritten below.
    let ignored = negsweep::cli::ignored_thread_settings();
    // An ingest takes every core of the process (before they are split between points), or
    // what `bench --threads` asks for.
    negsweep::data::set_ingest_threads(match args.command {
        negsweep::cli::Command::Bench {
            threads: Some(t), ..
        } => t,
        _ => threads.cores,
    });
    // SAFETY: no other thread exists yet. candle sizes its matmul parallelism from this
    // variable; each concurrent point gets its share of the cores.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.threads_per_job.to_string()) };
    // candle's element-wise ops have a pool of their own, one process-wide, whose threads spin
    // between ops (25,000 spins, then park): on a small step that thread held a core the step's
    // GEMMs needed (38% of a two-thread embedding-bag step's cycles). Those ops run on the
    // calling thread instead; the step's own ops and GEMMs still use the point's threads. The
    // user's setting, where given, stands.
    let candle_threads = std::env::var("CANDLE_NUM_THREADS").unwrap_or_default();
    if candle_threads.trim().is_empty() {
        // SAFETY: as above, still one thread.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
    // Only training reuses its buffers step after step; other commands (collect over 100,000
    // result files) would keep every freed buffer resident for nothing.
    if matches!(
        args.command,
        negsweep::cli::Command::Run { .. } | negsweep::cli::Command::Bench { collect: None, .. }
    ) {
        keep_freed_memory();
    }
    quiet_broken_pipe();
    let progress = negsweep::cli::init_logging(&args);
    for warning in ignored.iter().chain(&threads.oversubscribed()) {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(negsweep::cli::exit::INTERNAL);
        }
    };
    let code = runtime.block_on(negsweep::cli::run(args, threads, progress));
    // An interrupted point may still be evaluating on a blocking thread: exit now, without
    // waiting for work whose result nobody will write.
    runtime.shutdown_background();
    ExitCode::from(code)
}

/// Training allocates and frees the same large buffers every step (im2col patches, activations,
/// gradients). glibc would map each one fresh and the kernel would fault and zero every page;
/// serving them from a heap that is never trimmed reuses the pages instead.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: mallopt only changes allocator thresholds; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

/// `negsweep plan FILE | head` should end quietly when `head` stops reading, as other Unix
/// tools do, not panic on the failed write.
#[cfg(unix)]
fn quiet_broken_pipe() {
    // SAFETY: restores the default disposition of one signal; no other thread exists yet.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn quiet_broken_pipe() {}

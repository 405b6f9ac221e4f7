//! The `negsweep` command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = negsweep::cli::Args::parse();
    let threads = negsweep::cli::thread_plan(&args);
    // SAFETY: no other thread exists yet. candle sizes its matmul parallelism from this
    // variable; each concurrent point gets its share of the cores.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.threads_per_job.to_string()) };
    let progress = negsweep::cli::init_logging(&args);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(negsweep::exit::INTERNAL);
        }
    };
    let code = runtime.block_on(negsweep::cli::run(args, threads, progress));
    ExitCode::from(code)
}

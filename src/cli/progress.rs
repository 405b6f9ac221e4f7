//! Progress bar over sweep points, and a log writer that does not tear it.

use std::io::{self, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::exec::Progress;

/// An indicatif bar, hidden when quiet or when stderr is not a terminal.
#[derive(Debug, Clone)]
pub struct BarProgress {
    bar: ProgressBar,
}

impl BarProgress {
    /// A bar drawn on stderr unless `quiet`.
    pub fn new(quiet: bool) -> Self {
        let bar = ProgressBar::with_draw_target(
            Some(0),
            if quiet {
                ProgressDrawTarget::hidden()
            } else {
                ProgressDrawTarget::stderr()
            },
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} points, ETA {eta} {wide_msg}",
            )
            .expect("the progress template is valid"),
        );
        Self { bar }
    }

    /// A `tracing` writer that suspends the bar while a line is written.
    pub fn writer(&self) -> impl for<'a> tracing_subscriber::fmt::MakeWriter<'a> + 'static {
        let bar = self.bar.clone();
        move || SuspendingWriter { bar: bar.clone() }
    }
}

/// Writes to stderr with the bar suspended.
#[derive(Debug)]
pub(crate) struct SuspendingWriter {
    bar: ProgressBar,
}

impl Write for SuspendingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bar.suspend(|| io::stderr().write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl Progress for BarProgress {
    fn start(&self, total: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_position(0);
        self.bar.reset_eta();
    }

    fn point(&self, label: &str, ok: bool) {
        self.bar.set_message(if ok {
            label.to_owned()
        } else {
            format!("FAILED {label}")
        });
        self.bar.inc(1);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

//! Integration tests: one binary (see the style guide), one module per area.

mod adaptive;
mod awkward;
mod awkward_images;
mod cli;
mod cluster;
mod damage;
mod deploy;
mod e2e;
mod images;
mod overrides;
mod pipelines;
mod report;
mod results;
mod shards;
mod stages;
mod text;

use std::path::Path;
use std::process::{Command, Output};

/// The `negsweep` binary under test.
pub fn negsweep() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_negsweep"));
    cmd.env_remove("RUST_LOG");
    cmd
}

/// A small text pipeline writing to `output`; `extra` is appended (more sections or keys).
pub fn tiny(output: &str, sweep: &str) -> String {
    format!(
        r#"
[pipeline]
name = "tiny"
output = "{output}"

[[datasets]]
kind = "synthetic-text"
name = "tiny-text"
concepts = 8
examples-per-concept = 12
vocab = 64
length = 8
difficulty = 0.3

[train]
dim = 8
hidden = 16
batch-size = 16
epochs = 2
lr = 0.01

[sweep]
{sweep}
"#
    )
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// stdout and stderr of a finished command, for messages.
pub fn shown(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Ids of the points a `negsweep run` trained, from its log (`point done point=<id> ...`), in
/// order; one entry per training.
pub fn trained_points(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains("point done"))
        .filter_map(|l| {
            l.split("point=")
                .nth(1)?
                .split_whitespace()
                .next()
                .map(str::to_owned)
        })
        .collect()
}

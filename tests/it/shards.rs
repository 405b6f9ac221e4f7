//! Sharded, concurrent and widened runs of the real binary on `file://`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Child;

use crate::e2e::{f64s, parts, read_ipc, strs};
use crate::{negsweep, shown, tiny, write};

/// Each point's metrics as exact bit patterns, by point id.
pub(crate) fn metrics(out: &Path) -> BTreeMap<String, Vec<u64>> {
    metrics_of(&read_ipc(&out.join("results.arrow")))
}

/// The same for a batch of result rows.
pub(crate) fn metrics_of(b: &arrow::array::RecordBatch) -> BTreeMap<String, Vec<u64>> {
    let ids = strs(b, "point_id");
    let cols = [
        "mean_acc",
        "knn_acc",
        "test_loss",
        "train_loss",
        "collision_rate",
    ];
    let values: Vec<&[f64]> = cols.iter().map(|c| f64s(b, c)).collect();
    ids.into_iter()
        .enumerate()
        .map(|(i, id)| (id, values.iter().map(|v| v[i].to_bits()).collect()))
        .collect()
}

fn wait_ok(child: Child, what: &str) {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{what}: {}", shown(&out));
}

const SWEEP: &str = "k = [1, 2, 4]\nn = [4, 8]\nseed = [0, 1]";

#[test]
fn shards_then_collect_equal_a_single_run() {
    let dir = tempfile::tempdir().unwrap();
    let (single, sharded) = (dir.path().join("single"), dir.path().join("sharded"));
    let one = write(
        dir.path(),
        "one.toml",
        &tiny(single.to_str().unwrap(), SWEEP),
    );
    let many = write(
        dir.path(),
        "many.toml",
        &tiny(sharded.to_str().unwrap(), SWEEP),
    );
    let run = negsweep()
        .args(["run", "-q", "--jobs", "1"])
        .arg(&one)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", shown(&run));

    // Three shards at once: two by flag, one by a Slurm array environment. They share the
    // dataset and pools, built once under a lock.
    let spawn = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = negsweep();
        cmd.args(["run", "-q", "--jobs", "1"]).args(args).arg(&many);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let shards = [
        spawn(&["--shard", "0/3"], &[]),
        spawn(&["--shard", "1/3"], &[]),
        spawn(
            &[],
            &[
                ("SLURM_ARRAY_TASK_ID", "2"),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
            ],
        ),
    ];
    for (i, s) in shards.into_iter().enumerate() {
        wait_ok(s, &format!("shard {i}"));
    }
    assert_eq!(parts(&sharded).len(), 12);
    assert!(
        !sharded.join("results.arrow").exists(),
        "shards leave the report to collect"
    );
    let status = negsweep()
        .args(["status", "--shards", "3"])
        .arg(&many)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", shown(&status));
    let text = String::from_utf8_lossy(&status.stdout);
    for s in ["0/3", "1/3", "2/3"] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(s))
            .unwrap();
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[1..], ["4", "4", "0", "0"], "{text}");
    }
    assert!(text.contains("12 of 12 points done"), "{text}");
    for _ in 0..2 {
        // Idempotent.
        let collect = negsweep()
            .args(["collect", "-q"])
            .arg(&many)
            .output()
            .unwrap();
        assert!(collect.status.success(), "{}", shown(&collect));
        // The answer per group, and its tables, from the collected shards.
        let text = String::from_utf8_lossy(&collect.stdout);
        assert!(
            text.contains("best k per group") && text.contains(" N=4: k* = "),
            "{text}"
        );
        for t in ["k", "groups", "scaling"] {
            let f = sharded.join(format!("analysis/metric=mean_acc/{t}.parquet"));
            assert!(f.exists(), "{f:?}");
        }
    }
    // Collected shards analyse as one process's output does.
    let analyse = |out: &Path| {
        let a = negsweep().arg("analyze").arg(out).output().unwrap();
        assert!(a.status.success(), "{}", shown(&a));
        String::from_utf8_lossy(&a.stdout)
            .lines()
            .filter(|l| !l.starts_with("tables: "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(analyse(&single), analyse(&sharded));
    let (a, b) = (metrics(&single), metrics(&sharded));
    assert_eq!(a.len(), 12);
    assert_eq!(
        a, b,
        "sharded rows equal the single-process rows bit for bit"
    );
}

#[test]
fn two_processes_on_one_output_write_each_result_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = write(dir.path(), "p.toml", &tiny(out.to_str().unwrap(), SWEEP));
    let spawn = || {
        negsweep()
            .args(["run", "-q", "--jobs", "1"])
            .arg(&file)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    wait_ok(a, "first");
    wait_ok(b, "second");
    let files = parts(&out);
    assert_eq!(files.len(), 12, "{files:?}");
    let collect = negsweep()
        .args(["collect", "-q"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(collect.status.success(), "{}", shown(&collect));
    let m = metrics(&out);
    assert_eq!(m.len(), 12, "every point once");
    // No build lock is left behind.
    let locks = crate::e2e::files_named(&out, "_building.json");
    assert!(locks.is_empty(), "{locks:?}");
}

#[test]
fn a_widened_sweep_computes_only_the_new_points() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = write(
        dir.path(),
        "p.toml",
        &tiny(out.to_str().unwrap(), "k = [1, 4]\nn = [4]\nseed = [0, 1]"),
    );
    let first = negsweep().args(["run", "-q"]).arg(&file).output().unwrap();
    assert!(first.status.success(), "{}", shown(&first));
    let before: BTreeMap<_, _> = parts(&out)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p, (bytes, mtime))
        })
        .collect();
    assert_eq!(before.len(), 4);
    let wider = negsweep()
        .args(["run", "--set", "sweep.k=[1, 4, 16]"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(wider.status.success(), "{}", shown(&wider));
    let stdout = String::from_utf8_lossy(&wider.stdout);
    assert!(
        stdout.contains("computed 2 points, skipped 4 already done, 0 failed"),
        "{stdout}"
    );
    for (p, (bytes, mtime)) in &before {
        assert_eq!(
            &std::fs::read(p).unwrap(),
            bytes,
            "{} rewritten",
            p.display()
        );
        assert_eq!(&std::fs::metadata(p).unwrap().modified().unwrap(), mtime);
    }
    assert_eq!(parts(&out).len(), 6);
    assert_eq!(read_ipc(&out.join("results.arrow")).num_rows(), 6);
}

#[test]
fn collect_is_safe_while_a_run_still_writes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = write(
        dir.path(),
        "p.toml",
        // Long enough epochs that several collects overlap the run.
        &tiny(
            out.to_str().unwrap(),
            "k = [1, 2, 4, 8]\nn = [4, 8]\nseed = [0, 1, 2]",
        )
        .replace("epochs = 2", "epochs = 60"),
    );
    let run = negsweep()
        .args(["run", "-q", "--jobs", "1", "--shard", "0/1"])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut collected = Vec::new();
    let mut run = Some(run);
    while let Some(mut child) = run.take() {
        let c = negsweep()
            .args(["collect", "-q"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(c.status.success(), "collect during a run: {}", shown(&c));
        if out.join("results.arrow").exists() {
            collected.push(read_ipc(&out.join("results.arrow")).num_rows());
        }
        if child.try_wait().unwrap().is_none() {
            run = Some(child);
        } else {
            wait_ok(child, "run");
        }
    }
    // Collects ran while points were still being written, each reading whole files only.
    assert!(
        collected.iter().any(|&rows| rows < 24),
        "no collect overlapped the run: {collected:?}"
    );
    assert!(collected.windows(2).all(|w| w[0] <= w[1]), "{collected:?}");
    eprintln!("rows seen by successive collects: {collected:?}");
    let last = negsweep()
        .args(["collect", "-q"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(last.status.success(), "{}", shown(&last));
    assert_eq!(metrics(&out).len(), 24);
}

#[test]
fn concurrent_runs_share_the_points_and_take_over_a_killed_workers() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let text = crate::tiny(
        out.to_str().unwrap(),
        "k = [1, 2, 4, 8]\nn = [4, 8]\nseed = [0, 1]",
    )
    .replace("epochs = 2", "epochs = 40");
    let file = crate::write(dir.path(), "p.toml", &text);
    let spawn = || {
        crate::negsweep()
            .args(["run", "--jobs", "1"])
            .arg(&file)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut workers = vec![spawn(), spawn(), spawn()];
    // Kill the second worker while it holds a point's claim.
    let victim = workers[1].id();
    let started = std::time::Instant::now();
    let holds_claim = || {
        std::fs::read_dir(out.join("claims"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|d| std::fs::read(d.path().join("_building.json")).ok())
            .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .any(|h| h["pid"] == victim)
    };
    while !holds_claim() && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    workers[1].kill().unwrap();
    let mut logs = Vec::new();
    for w in &mut workers {
        let mut err = String::new();
        w.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        let status = w.wait().unwrap();
        logs.push((status, err));
    }
    assert!(logs[0].0.success() && logs[2].0.success(), "{logs:?}");
    assert!(
        started.elapsed().as_secs() < 60,
        "the killed worker's point is taken over at once, not after the stale wait"
    );
    // Every point trained exactly once across the three processes.
    let mut trained: Vec<String> = logs
        .iter()
        .flat_map(|(_, err)| crate::trained_points(err))
        .collect();
    trained.sort();
    let total = trained.len();
    trained.dedup();
    assert_eq!(total, trained.len(), "a point trained twice: {logs:?}");
    assert_eq!(trained.len(), 16, "{logs:?}");
    let status = crate::negsweep().arg("status").arg(&file).output().unwrap();
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("16 of 16 points done"),
        "{}",
        crate::shown(&status)
    );
    eprintln!(
        "trainings per point: 1 ({} points, 3 workers, one killed mid-point)",
        trained.len()
    );
}

#[test]
fn results_are_bit_identical_across_thread_counts() {
    let dir = tempfile::tempdir().unwrap();
    let quickstart = concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/quickstart.toml");
    // The embedding bag, and the GRU (its recurrence op, per-word input gates and gate math).
    for (encoder, epochs) in [("embedding-bag", 5), ("gru", 1)] {
        let run = |threads: &str| {
            let out = dir.path().join(format!("{encoder}-t{threads}"));
            let o = negsweep()
                .args(["run", "-q", "--jobs", "1"])
                .args(["--set", &format!("pipeline.output=\"{}\"", out.display())])
                .args(["--set", "sweep.seed=[0]", "--set", "sweep.n=[16]"])
                .args(["--set", "sweep.k=[1, 16, 128]"])
                .args(["--set", &format!("train.encoder=\"{encoder}\"")])
                .args(["--set", &format!("train.epochs={epochs}")])
                .arg(quickstart)
                .env("RAYON_NUM_THREADS", threads)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", shown(&o));
            metrics(&out)
        };
        let (one, two) = (run("1"), run("2"));
        assert_eq!(one.len(), 3);
        assert_eq!(
            one, two,
            "{encoder}: the same bits on one thread and on two"
        );
    }
}

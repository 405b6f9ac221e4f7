//! Damaged outputs and diverged training: a result file that does not read back is moved aside
//! and its point computed again; a damaged manifest is rebuilt; a point whose loss explodes fails
//! and stays out of the results. Nothing blocks the next run or `collect`.

use std::path::{Path, PathBuf};

use crate::{negsweep, shown, tiny, write};

fn parts(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Point id and accuracies of every row of `results.arrow` (times left out: they differ).
fn metrics(out: &Path) -> Vec<(String, u64, u64)> {
    use arrow::array::{Float64Array, StringArray};
    let file = std::fs::File::open(out.join("results.arrow")).unwrap();
    let mut rows = Vec::new();
    for batch in arrow::ipc::reader::FileReader::try_new(file, None).unwrap() {
        let b = batch.unwrap();
        let col = |n: &str| b.column_by_name(n).unwrap().clone();
        let (id, mean, knn) = (col("point_id"), col("mean_acc"), col("knn_acc"));
        let id = id.as_any().downcast_ref::<StringArray>().unwrap();
        let mean = mean.as_any().downcast_ref::<Float64Array>().unwrap();
        let knn = knn.as_any().downcast_ref::<Float64Array>().unwrap();
        for i in 0..b.num_rows() {
            rows.push((
                id.value(i).to_owned(),
                mean.value(i).to_bits(),
                knn.value(i).to_bits(),
            ));
        }
    }
    rows.sort();
    assert_eq!(rows.len(), 3);
    rows
}

fn cli(file: &Path, args: &[&str]) -> std::process::Output {
    negsweep().args(args).arg(file).output().unwrap()
}

#[test]
fn damaged_results_are_set_aside_counted_pending_and_computed_again() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = write(
        dir.path(),
        "p.toml",
        &tiny(out.to_str().unwrap(), "k = [1, 2, 4]\nn = [4]\nseed = [0]"),
    );
    let first = cli(&file, &["run", "-q"]);
    assert!(first.status.success(), "{}", shown(&first));
    let results = parts(&out.join("results"));
    assert_eq!(results.len(), 3);
    let rows_before = metrics(&out);

    // One result emptied: status no longer counts it, and says where it went.
    std::fs::write(&results[0], b"").unwrap();
    let status = cli(&file, &["status"]);
    assert!(status.status.success(), "{}", shown(&status));
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("2 of 3 points done"), "{text}");
    assert!(
        text.contains("1 damaged result files are kept for inspection"),
        "{text}"
    );
    let rel = results[0].strip_prefix(&out).unwrap();
    assert!(
        out.join("damaged").join(rel).is_file(),
        "the bytes are kept"
    );
    let again = cli(&file, &["run", "-q"]);
    assert!(again.status.success(), "{}", shown(&again));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("computed 1 point,"),
        "{}",
        shown(&again)
    );
    assert_eq!(parts(&out.join("results")).len(), 3);

    // Another overwritten with garbage of a plausible size: `collect` sets it aside instead of
    // failing, and the next run computes it.
    std::fs::write(&results[1], vec![7u8; 4096]).unwrap();
    let collect = cli(&file, &["collect", "-q"]);
    assert!(collect.status.success(), "{}", shown(&collect));
    assert_eq!(parts(&out.join("results")).len(), 2);
    let status = cli(&file, &["status"]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("2 of 3 points done"),
        "{}",
        shown(&status)
    );
    let third = cli(&file, &["run", "-q"]);
    assert!(third.status.success(), "{}", shown(&third));
    assert!(
        String::from_utf8_lossy(&third.stdout).contains("computed 1 point,"),
        "{}",
        shown(&third)
    );
    assert_eq!(
        metrics(&out),
        rows_before,
        "recomputed points equal the originals"
    );

    // Cut to half its size: `run` finds it as it reads the results back and computes its point
    // in the same run, so no row is missing when it exits.
    let results = parts(&out.join("results"));
    let bytes = std::fs::read(&results[2]).unwrap();
    std::fs::write(&results[2], &bytes[..bytes.len() / 2]).unwrap();
    let fourth = cli(&file, &["run", "-q"]);
    assert!(fourth.status.success(), "{}", shown(&fourth));
    assert!(
        String::from_utf8_lossy(&fourth.stdout).contains("computed 1 point,"),
        "{}",
        shown(&fourth)
    );
    assert_eq!(
        metrics(&out),
        rows_before,
        "every row is back when the run exits"
    );
}

#[test]
fn a_damaged_manifest_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = write(
        dir.path(),
        "p.toml",
        &tiny(out.to_str().unwrap(), "k = [1]\nn = [4]\nseed = [0]"),
    );
    assert!(cli(&file, &["run", "-q"]).status.success());
    let datasets = std::fs::read_dir(out.join("datasets"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(datasets.join("_manifest.json"), b"{ not json").unwrap();
    // A new point needs the dataset again.
    let wider = write(
        dir.path(),
        "q.toml",
        &tiny(out.to_str().unwrap(), "k = [1, 2]\nn = [4]\nseed = [0]"),
    );
    let run = cli(&wider, &["run", "-q"]);
    assert!(run.status.success(), "{}", shown(&run));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(datasets.join("_manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["stage"], "ingest");
}

#[test]
fn exploding_training_fails_its_point_and_never_enters_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = write(
        dir.path(),
        "p.toml",
        &tiny(
            out.to_str().unwrap(),
            "k = [1, 4]\nn = [4]\nseed = [0]\nlr = [0.01, 1e6]",
        ),
    );
    let run = cli(&file, &["run", "-q"]);
    assert_eq!(run.status.code(), Some(1), "{}", shown(&run));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("2 of 4 sweep points failed"), "{err}");
    assert!(
        err.contains("training diverged at step 1: the loss exploded"),
        "{err}"
    );
    assert_eq!(
        parts(&out.join("results")).len(),
        2,
        "only the lr = 0.01 points"
    );

    let bad = write(
        dir.path(),
        "t.toml",
        &tiny(out.to_str().unwrap(), "k = [1]\nn = [4]\nseed = [0]").replace(
            "[train]\n",
            "[train]\nloss = \"infonce\"\ntemperature = 1e-30\n",
        ),
    );
    let v = cli(&bad, &["validate"]);
    assert_eq!(v.status.code(), Some(2), "{}", shown(&v));
    assert!(
        String::from_utf8_lossy(&v.stderr)
            .contains("temperature must be in [0.01, 100], got 1e-30"),
        "{}",
        shown(&v)
    );
}

/// Starts `run` on a pipeline whose ingest takes a moment.
fn spawn_run(file: &Path) -> std::process::Child {
    negsweep()
        .args(["run", "-q"])
        .arg(file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Returns once the dataset's build lock exists under `dir/out`.
fn wait_for_lock(dir: &Path) {
    let started = std::time::Instant::now();
    while !std::fs::read_dir(dir.join("out/datasets"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|d| d.path().join("_building.json").exists())
    {
        assert!(
            started.elapsed().as_secs() < 60,
            "the ingest never took its lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn interrupts_release_locks_and_a_killed_holder_is_not_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let text = tiny(out.to_str().unwrap(), "k = [1]\nn = [4]\nseed = [0]")
        .replace("examples-per-concept = 12", "examples-per-concept = 8000")
        .replace("concepts = 8", "concepts = 64");
    let file = write(dir.path(), "p.toml", &text);
    // Any build lock under the output (the dataset's, or a pool's).
    let lock = || {
        let mut stack = vec![out.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                } else if e.file_name() == "_building.json" {
                    return true;
                }
            }
        }
        false
    };
    // Ctrl-C: the conventional 130, and the lock given up on the way out.
    let child = spawn_run(&file);
    wait_for_lock(dir.path());
    // SAFETY: sends a signal to a child process of this test.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", shown(&o));
    assert!(!lock(), "no lock left behind: {}", shown(&o));
    // The signal may land after the ingest finished; start over so the next run ingests again.
    std::fs::remove_dir_all(&out).unwrap();
    // SIGKILL leaves its lock: the next run on this host sees its holder is gone and takes it at
    // once, instead of waiting two minutes for it to go stale.
    let child = spawn_run(&file);
    wait_for_lock(dir.path());
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait_with_output().unwrap();
    assert!(lock(), "a killed process cannot release its lock");
    let started = std::time::Instant::now();
    let o = negsweep().args(["run"]).arg(&file).output().unwrap();
    assert!(o.status.success(), "{}", shown(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("breaking the build lock of a process of this host that is gone"),
        "{err}"
    );
    assert!(!err.contains("waiting"), "{err}");
    assert!(
        started.elapsed().as_secs() < 100,
        "not the 2-minute stale wait"
    );
    assert!(!lock());
}

#[test]
fn an_interrupt_while_points_train_releases_their_claims_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let text = tiny(out.to_str().unwrap(), "k = [1, 2]\nn = [4]\nseed = [0]")
        .replace("epochs = 2", "epochs = 20000");
    let file = write(dir.path(), "p.toml", &text);
    let child = spawn_run(&file);
    let started = std::time::Instant::now();
    while std::fs::read_dir(out.join("claims"))
        .into_iter()
        .flatten()
        .flatten()
        .all(|d| !d.path().join("_building.json").exists())
    {
        assert!(started.elapsed().as_secs() < 60, "no point was claimed");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let signalled = std::time::Instant::now();
    // SAFETY: sends a signal to a child process of this test.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(143), "{}", shown(&o));
    assert!(
        signalled.elapsed().as_secs() < 10,
        "stops where it is, not after the point's work"
    );
    let left: Vec<_> = std::fs::read_dir(out.join("claims"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|d| d.path().join("_building.json").exists())
        .collect();
    assert!(left.is_empty(), "claims released: {left:?}");
}

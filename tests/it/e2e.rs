//! The real binary on `file://`: a whole run read back column by column, resume after a real
//! kill, and a failing point retried alone.

use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow::array::{Array, Float64Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow::ipc::reader::FileReader;

use crate::{negsweep, shown, tiny, write};

/// Every file under `dir`, recursively, whose name satisfies `keep`.
fn files(dir: &Path, keep: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut acc = Vec::new();
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            acc.extend(files(&p, keep));
        } else if p.file_name().and_then(|n| n.to_str()).is_some_and(keep) {
            acc.push(p);
        }
    }
    acc
}

/// Every file under `dir` named `name`.
pub(crate) fn files_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    files(dir, &|n| n == name)
}

/// Result part files (temporary files of an interrupted write end otherwise and are skipped).
pub(crate) fn parts(out: &Path) -> Vec<PathBuf> {
    files(&out.join("results"), &|n| n.ends_with(".parquet"))
}

pub(crate) fn read_ipc(path: &Path) -> RecordBatch {
    let reader = FileReader::try_new(File::open(path).unwrap(), None).unwrap();
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    arrow::compute::concat_batches(&schema, &batches).unwrap()
}

pub(crate) fn f64s<'a>(b: &'a RecordBatch, name: &str) -> &'a [f64] {
    b.column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap()
        .values()
}

fn u32s<'a>(b: &'a RecordBatch, name: &str) -> &'a [u32] {
    b.column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref::<UInt32Array>()
        .unwrap()
        .values()
}

pub(crate) fn strs(b: &RecordBatch, name: &str) -> Vec<String> {
    let a = b
        .column_by_name(name)
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    (0..a.len()).map(|i| a.value(i).to_owned()).collect()
}

#[test]
fn file_pipeline_end_to_end_read_back_column_by_column() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = write(
        dir.path(),
        "p.toml",
        &tiny(out.to_str().unwrap(), "k = [1, 4]\nn = [4, 8]"),
    );
    let run = negsweep()
        .args(["run", "--jobs", "2"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", shown(&run));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains("computed 4 points, skipped 0 already done, 0 failed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("best k") && stdout.contains("k=4"),
        "{stdout}"
    );

    let b = read_ipc(&out.join("results.arrow"));
    assert_eq!(b.num_rows(), 4);
    assert_eq!(
        b.schema().fields(),
        negsweep::stages::tables::results(true).fields()
    );
    assert!(strs(&b, "dataset").iter().all(|d| d == "tiny-text"));
    let nk: BTreeSet<(u32, u32)> = u32s(&b, "n")
        .iter()
        .copied()
        .zip(u32s(&b, "k").iter().copied())
        .collect();
    assert_eq!(nk, BTreeSet::from([(4, 1), (4, 4), (8, 1), (8, 4)]));
    let ids = strs(&b, "point_id");
    assert!(
        ids.iter()
            .all(|i| i.len() == 16 && i.chars().all(|c| c.is_ascii_hexdigit()))
    );
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 4);
    let seeds = b
        .column_by_name("seed")
        .unwrap()
        .as_any()
        .downcast_ref::<UInt64Array>()
        .unwrap();
    assert!(seeds.values().iter().all(|&s| s == 0));
    assert!(strs(&b, "loss").iter().all(|l| l == "nce"));
    assert!(strs(&b, "encoder").iter().all(|e| e == "embedding-bag"));
    assert_eq!(f64s(&b, "temperature"), &[1.0; 4]);
    assert_eq!(f64s(&b, "lr"), &[0.01; 4]);
    assert_eq!(u32s(&b, "dim"), &[8; 4]);
    assert_eq!(u32s(&b, "hidden"), &[16; 4]);
    assert_eq!(u32s(&b, "batch_size"), &[16; 4]);
    assert_eq!(u32s(&b, "epochs"), &[2; 4]);
    for i in 0..4 {
        let n = u32s(&b, "n")[i];
        let k = u32s(&b, "k")[i];
        for m in [
            "mean_acc",
            "knn_acc",
            "collision_rate",
            "coverage_rate",
            "covered_fraction",
            "tau_k",
        ] {
            let v = f64s(&b, m)[i];
            assert!((0.0..=1.0).contains(&v), "{m} = {v}");
        }
        assert!(f64s(&b, "test_loss")[i].is_finite() && f64s(&b, "test_loss")[i] > 0.0);
        assert!(f64s(&b, "train_loss")[i].is_finite());
        // 12 examples per concept: round(0.25 * 12) = 3 test, 9 train.
        let (n_train, n_test) = (u32s(&b, "n_train")[i], u32s(&b, "n_test")[i]);
        assert_eq!((n_train, n_test), (9 * n, 3 * n));
        assert_eq!(u32s(&b, "steps")[i], (2 * n_train).div_ceil(16));
        // Uniform rho (9 train per concept): tau_k = 1 - (1 - 1/N)^k.
        let tau = 1.0 - (1.0 - 1.0 / f64::from(n)).powi(k as i32);
        assert!((f64s(&b, "tau_k")[i] - tau).abs() < 1e-12);
        assert!((f64s(&b, "expected_collisions")[i] - f64::from(k) / f64::from(n)).abs() < 1e-12);
        if k == 1 {
            // One negative covers all other concepts only when there is one other concept.
            assert_eq!(f64s(&b, "coverage_rate")[i], 0.0);
        }
        assert!(
            f64s(&b, "train_seconds")[i] > 0.0
                && f64s(&b, "total_seconds")[i] >= f64s(&b, "train_seconds")[i]
        );
    }
    // Easy data: the mean classifier beats chance on average.
    let mean_acc: f64 = f64s(&b, "mean_acc").iter().sum::<f64>() / 4.0;
    assert!(mean_acc > 0.3, "mean accuracy {mean_acc}");
    assert!(strs(&b, "config_hash").iter().all(|h| h.len() == 16));
    assert!(strs(&b, "data_hash").iter().all(|h| h.len() == 64));
    assert!(
        strs(&b, "version")
            .iter()
            .all(|v| v == env!("CARGO_PKG_VERSION"))
    );
    assert!(
        strs(&b, "finished_at")
            .iter()
            .all(|t| t.parse::<u64>().is_ok())
    );

    // Polars reads the parts with hive partitioning and agrees with the IPC file.
    use polars::prelude::*;
    // Partition types are given, not inferred: inference needs polars date features that
    // negsweep does not build (Python polars infers them).
    let hive_schema = Schema::from_iter([
        Field::new("dataset".into(), DataType::String),
        Field::new("n".into(), DataType::Int64),
        Field::new("k".into(), DataType::Int64),
    ]);
    let args = ScanArgsParquet {
        hive_options: HiveOptions {
            enabled: Some(true),
            schema: Some(Arc::new(hive_schema)),
            ..HiveOptions::new_enabled()
        },
        ..Default::default()
    };
    let glob = format!("{}/results/**/*.parquet", out.display());
    let df = LazyFrame::scan_parquet(PlRefPath::new(glob.as_str()), args)
        .unwrap()
        .collect()
        .unwrap();
    assert_eq!(df.height(), 4);
    for c in ["dataset", "n", "k", "mean_acc", "point_id"] {
        assert!(
            df.column(c).is_ok(),
            "polars sees no `{c}` in {:?}",
            df.get_column_names()
        );
    }
    let mut pk: Vec<(i64, i64)> = df
        .column("n")
        .unwrap()
        .cast(&DataType::Int64)
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .zip(
            df.column("k")
                .unwrap()
                .cast(&DataType::Int64)
                .unwrap()
                .i64()
                .unwrap()
                .into_no_null_iter(),
        )
        .collect();
    pk.sort_unstable();
    assert_eq!(pk, vec![(4, 1), (4, 4), (8, 1), (8, 4)]);

    let again = negsweep().arg("run").arg(&file).output().unwrap();
    assert!(again.status.success(), "{}", shown(&again));
    assert!(
        String::from_utf8_lossy(&again.stdout)
            .contains("nothing to compute: all 4 points are already done"),
        "{}",
        shown(&again)
    );
    let plan = negsweep().arg("plan").arg(&file).output().unwrap();
    assert!(
        String::from_utf8_lossy(&plan.stdout).contains("4 points: 4 done, 0 failed, 0 pending"),
        "{}",
        shown(&plan)
    );
}

#[test]
fn killed_run_resumes_with_only_the_missing_points() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let text = tiny(
        out.to_str().unwrap(),
        "k = [1, 2, 4, 8]\nn = [4, 8]\nseed = [0, 1, 2]",
    )
    .replace("epochs = 2", "epochs = 60");
    let file = write(dir.path(), "p.toml", &text);
    let mut child = negsweep()
        .args(["run", "--quiet", "--jobs", "1"])
        .arg(&file)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while parts(&out).len() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no results appeared"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = parts(&out).len();
    assert!((3..24).contains(&before), "killed with {before} of 24 done");

    let rerun = negsweep()
        .args(["run", "--quiet"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(rerun.status.success(), "{}", shown(&rerun));
    let stdout = String::from_utf8_lossy(&rerun.stdout);
    let want = format!(
        "computed {} points, skipped {before} already done, 0 failed",
        24 - before
    );
    assert!(stdout.contains(&want), "want {want:?} in {stdout}");
    let after = parts(&out);
    assert_eq!(after.len(), 24);
    let names: HashSet<_> = after
        .iter()
        .map(|p| p.file_name().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 24, "no duplicate point");
    assert_eq!(read_ipc(&out.join("results.arrow")).num_rows(), 24);
}

#[test]
fn failing_point_does_not_stop_the_others_and_is_retried_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // An absurd learning rate overflows the weights: that point's loss becomes non-finite.
    let file = write(
        dir.path(),
        "p.toml",
        &tiny(out.to_str().unwrap(), "k = [2]\nn = [4]\nlr = [0.01, 1e30]"),
    );
    let first = negsweep()
        .args(["run", "--quiet"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(first.status.code(), Some(1), "{}", shown(&first));
    assert!(
        String::from_utf8_lossy(&first.stderr).contains("diverged"),
        "{}",
        shown(&first)
    );
    assert_eq!(parts(&out).len(), 1);
    assert_eq!(std::fs::read_dir(out.join("failures")).unwrap().count(), 1);

    let second = negsweep()
        .args(["run", "--quiet"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1), "{}", shown(&second));
    assert!(
        String::from_utf8_lossy(&second.stdout)
            .contains("computed 0 points, skipped 1 already done, 1 failed"),
        "{}",
        shown(&second)
    );

    let fixed = negsweep()
        .args(["run", "--quiet", "--set", "sweep.lr=[0.01]"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(fixed.status.success(), "{}", shown(&fixed));
    assert!(
        String::from_utf8_lossy(&fixed.stdout).contains("nothing to compute"),
        "{}",
        shown(&fixed)
    );
}

#[test]
fn damaged_cached_pool_is_redrawn_and_results_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = write(
        dir.path(),
        "p.toml",
        &tiny(out.to_str().unwrap(), "k = [1, 4]\nn = [4]"),
    );
    let first = negsweep()
        .args(["run", "--quiet"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", shown(&first));
    let before = read_ipc(&out.join("results.arrow"));
    std::fs::write(
        &files(&out.join("pools"), &|n| n == "pool.parquet")[0],
        b"not parquet",
    )
    .unwrap();
    // Widening the sweep needs the pool again: it is drawn anew, identically.
    let wider = negsweep()
        .args(["run", "--quiet", "--set", "sweep.k=[1,2,4]"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(wider.status.success(), "{}", shown(&wider));
    assert!(
        String::from_utf8_lossy(&wider.stdout).contains("computed 1 point, skipped 2 already done"),
        "{}",
        shown(&wider)
    );
    let after = read_ipc(&out.join("results.arrow"));
    assert_eq!(after.num_rows(), 3);
    // The two earlier rows are untouched.
    let ids = |b: &RecordBatch| strs(b, "point_id").into_iter().collect::<HashSet<_>>();
    assert!(ids(&before).is_subset(&ids(&after)));
}

/// Each axis's value, read from the point through the axes table, is the value its result row
/// holds under the axis's column (every value differs from every other, so a swap shows).
#[test]
fn every_axis_lands_in_its_result_column() {
    use negsweep::plan::axes::{AXES, AxisValue};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let sweep = r#"k = [2, 3]
n = [5]
seed = [7]
prior-skew = [0.25]
label-noise = [0.05]
loss = ["hcl"]
temperature = [0.3]
tau-plus = [0.15]
beta = [0.35]
lr = [0.004]
dim = [12]
hidden = [20]
batch-size = [10]
epochs = [1]
positive = ["same-concept"]
strategy = ["collision-free"]
false-negatives = ["eliminate"]"#;
    let file = write(dir.path(), "p.toml", &tiny(out.to_str().unwrap(), sweep));
    let run = negsweep().args(["run", "-q"]).arg(&file).output().unwrap();
    assert!(run.status.success(), "{}", shown(&run));
    let spec = negsweep::spec::PipelineSpec::load(&file, &[]).unwrap();
    let plan = negsweep::plan::resolve(&spec, "p.toml").unwrap();
    assert_eq!(plan.swept.len(), AXES.len());
    let b = read_ipc(&out.join("results.arrow"));
    let ids = strs(&b, "point_id");
    assert_eq!(ids.len(), plan.points.len());
    for p in &plan.points {
        let row = ids.iter().position(|id| *id == p.id).unwrap();
        for a in AXES {
            let written = match (a.get)(p) {
                AxisValue::U32(_) => AxisValue::U32(u32s(&b, a.column)[row]),
                AxisValue::F64(_) => AxisValue::F64(f64s(&b, a.column)[row]),
                AxisValue::Text(_) => {
                    let text = strs(&b, a.column)[row].clone();
                    assert_eq!(text, (a.get)(p).to_string(), "column `{}`", a.column);
                    continue;
                }
                AxisValue::U64(_) => AxisValue::U64(
                    b.column_by_name(a.column)
                        .unwrap()
                        .as_any()
                        .downcast_ref::<UInt64Array>()
                        .unwrap()
                        .value(row),
                ),
            };
            assert_eq!(written, (a.get)(p), "column `{}`", a.column);
        }
    }
}

/// `train.precision = "bf16"` through a run: recorded in its column, new point ids, and
/// values moved by the rounding (the embedding bag's projection is a bf16 product), while a
/// run without the setting records `f32`.
#[test]
fn bf16_precision_is_trained_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let run = |precision: Option<&str>| {
        let out = dir.path().join(precision.unwrap_or("default"));
        let file = write(
            dir.path(),
            "p.toml",
            &tiny(out.to_str().unwrap(), "k = [2]\nn = [4]\nseed = [0]"),
        );
        let mut cmd = negsweep();
        cmd.args(["run", "-q"]).arg(&file);
        if let Some(p) = precision {
            cmd.args(["--set", &format!("train.precision=\"{p}\"")]);
        }
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}", shown(&o));
        read_ipc(&out.join("results.arrow"))
    };
    let (f32s, bf16s) = (run(None), run(Some("bf16")));
    assert_eq!(strs(&f32s, "precision"), ["f32"]);
    assert_eq!(strs(&bf16s, "precision"), ["bf16"]);
    assert_ne!(strs(&f32s, "point_id"), strs(&bf16s, "point_id"));
    let (a, b) = (f64s(&f32s, "train_loss")[0], f64s(&bf16s, "train_loss")[0]);
    assert!(
        a != b && (a - b).abs() < 0.1 * a.abs(),
        "train loss {a} (f32), {b} (bf16)"
    );
}

/// Queue negatives and false-negative handling through a run: the queue's staleness, the
/// detector's columns and the collision-free loss gap land in every row with their meaning.
#[test]
fn queue_points_and_detectors_fill_their_columns() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let sweep = r#"k = [4, 32]
n = [4]
seed = [0]
loss = ["infonce"]
strategy = ["uniform", "queue"]
false-negatives = ["keep", "attract"]"#;
    let file = write(dir.path(), "p.toml", &tiny(out.to_str().unwrap(), sweep));
    let run = negsweep()
        .args(["run", "-q", "--set", "negatives.detector=\"similarity\""])
        .arg(&file)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", shown(&run));
    let b = read_ipc(&out.join("results.arrow"));
    assert_eq!(b.num_rows(), 8);
    let (strategy, handling, detector) = (
        strs(&b, "strategy"),
        strs(&b, "false_negatives"),
        strs(&b, "detector"),
    );
    let (k, steps) = (u32s(&b, "k"), u32s(&b, "steps"));
    let staleness = f64s(&b, "queue_staleness");
    let (precision, recall) = (f64s(&b, "detector_precision"), f64s(&b, "detector_recall"));
    let gap = f64s(&b, "collision_loss_gap");
    for r in 0..b.num_rows() {
        // 4 concepts x 9 training examples x 2 epochs in steps of 16 anchors.
        assert_eq!(steps[r], 5);
        if strategy[r] == "queue" && k[r] == 4 {
            // The first step reads the k seed keys (age 0), every later one the last batch's.
            assert!((staleness[r] - 0.8).abs() < 1e-12, "{}", staleness[r]);
        } else if strategy[r] == "queue" {
            assert!(staleness[r] > 0.8, "{}", staleness[r]);
        } else {
            assert!(staleness[r].is_nan());
        }
        if handling[r] == "attract" {
            assert_eq!(detector[r], "similarity");
            assert!((0.0..=1.0).contains(&recall[r]), "{}", recall[r]);
            assert!(precision[r].is_nan() || (0.0..=1.0).contains(&precision[r]));
        } else {
            assert_eq!(detector[r], "none");
            assert!(precision[r].is_nan() && recall[r].is_nan());
        }
        // Removing colliding negatives only lowers InfoNCE; at N = 4 and k = 32 some collide.
        assert!(gap[r] >= 0.0, "{}", gap[r]);
        if k[r] == 32 {
            assert!(gap[r] > 0.0);
        }
    }
}

/// An adaptive sweep trains part of the grid, records its decisions, leaves dropped k values
/// out of the answer, and a rerun after losing a result recomputes exactly that point.
#[test]
fn adaptive_rounds_resume_from_the_results_and_leave_dropped_k_out_of_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // The quickstart's data at N = 64, where k = 1 is far below k = 32 and 64 (0.79 against
    // 0.87); six seeds are the budget.
    let text = format!(
        r#"[pipeline]
name = "adaptive"
output = "{}"

[[datasets]]
kind = "synthetic-text"
name = "synthetic-text"
concepts = 64
examples-per-concept = 48
vocab = 512
length = 24
difficulty = 0.6

[train]
dim = 64
hidden = 128
lr = 0.002
batch-size = 64
epochs = 5

[eval]
probe-epochs = 0

[sweep]
k = [1, 32, 64]
n = [64]
seed = [0, 1, 2, 3, 4, 5]

[sweep.adaptive]
initial-seeds = 3
drop-level = 0.05
settle = "stable"
stable-rounds = 2
"#,
        out.to_str().unwrap()
    );
    let file = write(dir.path(), "p.toml", &text);
    let run = || negsweep().args(["run", "-q"]).arg(&file).output().unwrap();
    // `status --shards 2`: each shard's (points, pending) in the current round.
    let shard_rows = || {
        let status = negsweep()
            .arg("status")
            .arg(&file)
            .args(["--shards", "2"])
            .output()
            .unwrap();
        assert!(status.status.success(), "{}", shown(&status));
        let text = String::from_utf8_lossy(&status.stdout).to_string();
        let rows: Vec<(usize, usize)> = text
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|w| w.len() == 5 && w[0].contains('/'))
            .map(|w| (w[1].parse().unwrap(), w[4].parse().unwrap()))
            .collect();
        assert_eq!(rows.len(), 2, "{text}");
        (rows, text)
    };
    // Before any result the round is the first (every k at the initial seeds), which is what
    // shards split: 9 points, not the grid's 18.
    assert_eq!(shard_rows().0, [(5, 5), (4, 4)]);
    let first = run();
    assert!(first.status.success(), "{}", shown(&first));
    let printed = String::from_utf8_lossy(&first.stdout).to_string();
    assert!(printed.contains("adaptive rounds"), "{printed}");
    // Settled: no round left for any shard; the whole grid's count stays.
    let (settled, status) = shard_rows();
    assert_eq!(settled, [(0, 0), (0, 0)]);
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        page.contains("<h2>Adaptive rounds</h2>"),
        "the report lists the decisions"
    );
    let rows = read_ipc(&out.join("results.arrow"));
    assert!(
        status.contains(&format!("{} of 18 points done", rows.num_rows())),
        "{status}"
    );
    assert!(
        rows.num_rows() >= 9 && rows.num_rows() < 18,
        "{}",
        rows.num_rows()
    );
    let decisions = {
        let f = File::open(out.join("adaptive.parquet")).unwrap();
        let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .build()
            .unwrap();
        arrow::compute::concat_batches(
            &negsweep::stages::tables::adaptive_decisions(),
            &r.map(Result::unwrap).collect::<Vec<_>>(),
        )
        .unwrap()
    };
    let actions = strs(&decisions, "action");
    assert_eq!(
        actions.last().map(String::as_str),
        Some("settle"),
        "{actions:?}"
    );
    // Each k's seeds: the dropped ones stopped at the seeds of their drop.
    let (ks, seeds) = (u32s(&rows, "k"), rows.column_by_name("seed").unwrap());
    let per_k = |k: u32| (0..rows.num_rows()).filter(|&r| ks[r] == k).count();
    let dropped: Vec<u32> = (0..decisions.num_rows())
        .filter(|&r| actions[r] == "drop")
        .map(|r| u32s(&decisions, "k")[r])
        .collect();
    assert!(dropped.contains(&1), "k = 1 is dropped: {actions:?}");
    assert!(per_k(1) < per_k(64), "{} vs {}", per_k(1), per_k(64));
    assert_eq!(seeds.len(), rows.num_rows());

    // The answer leaves the dropped k out and uses the kept k values' every seed.
    let analyze = negsweep().args(["analyze"]).arg(&out).output().unwrap();
    assert!(analyze.status.success(), "{}", shown(&analyze));
    let table = String::from_utf8_lossy(&analyze.stdout).to_string();
    let first_column: Vec<&str> = table
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(!first_column.contains(&"1"), "{table}");
    assert!(table.contains(&format!("{} seeds", per_k(64))), "{table}");

    // A lost result: the rerun replays the same rounds and computes that point only.
    let part = files(&out.join("results"), &|n| n.ends_with(".parquet"))[0].clone();
    std::fs::remove_file(&part).unwrap();
    let again = run();
    assert!(again.status.success(), "{}", shown(&again));
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("computed 1 point,"),
        "{}",
        shown(&again)
    );
    let after = read_ipc(&out.join("results.arrow"));
    assert_eq!(after.num_rows(), rows.num_rows());

    // The same pipeline as a full grid: the rounds' decisions no longer apply.
    let full = text
        .replace("[sweep.adaptive]", "")
        .replace("initial-seeds = 3\n", "");
    let full = full
        .replace("drop-level = 0.05\n", "")
        .replace("settle = \"stable\"\nstable-rounds = 2\n", "");
    std::fs::write(&file, full).unwrap();
    let grid = run();
    assert!(grid.status.success(), "{}", shown(&grid));
    assert!(!out.join("adaptive.parquet").exists());
    assert_eq!(read_ipc(&out.join("results.arrow")).num_rows(), 18);

    // Rounds again over that full grid: the dropped k leaves with every seed it has, so the
    // kept k values are compared on all six (not on the seeds past the drop every k shares).
    std::fs::write(&file, &text).unwrap();
    let again = run();
    assert!(again.status.success(), "{}", shown(&again));
    let analyze = negsweep().args(["analyze"]).arg(&out).output().unwrap();
    assert!(analyze.status.success(), "{}", shown(&analyze));
    let (table, warned) = (
        String::from_utf8_lossy(&analyze.stdout).to_string(),
        String::from_utf8_lossy(&analyze.stderr).to_string(),
    );
    assert!(table.contains("6 seeds"), "{table}");
    assert!(!warned.contains("lack a result"), "{warned}");
    let first_column: Vec<&str> = table
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(!first_column.contains(&"1"), "{table}");
}

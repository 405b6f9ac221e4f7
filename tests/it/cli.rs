//! Config errors through the real binary: message and exit code.

use crate::{negsweep, shown, tiny, write};

fn fails_with(text: &str, set: &[&str], needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.toml", text);
    let mut cmd = negsweep();
    cmd.arg("validate").arg(&file);
    for s in set {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("p.toml"), "error must name the file: {err}");
    for n in needles {
        assert!(err.contains(n), "missing {n:?} in: {err}");
    }
}

#[test]
fn unknown_key_names_line_and_accepted_keys() {
    let text = tiny("memory:///x", "k = [1]").replace("epochs = 2", "epochs = 2\nepoch = 3");
    fails_with(
        &text,
        &[],
        &[
            "line 20",
            "unknown field `epoch`",
            "`epochs`",
            "`batch-size`",
        ],
    );
}

#[test]
fn wrong_type_names_line() {
    fails_with(
        &tiny("memory:///x", "k = 4"),
        &[],
        &["line 23", "invalid type"],
    );
}

#[test]
fn bad_url_names_key() {
    fails_with(
        &tiny("ftp://host/x", "k = [1]"),
        &[],
        &["`pipeline.output`", "unsupported scheme `ftp://`"],
    );
}

#[test]
fn k_above_k_max_is_impossible() {
    let text = tiny("memory:///x", "k = [1, 64]") + "\n[negatives]\nk-max = 16\n";
    fails_with(
        &text,
        &[],
        &["`sweep.k`", "k = 64 exceeds negatives.k-max = 16"],
    );
}

#[test]
fn n_above_concepts_is_impossible() {
    fails_with(
        &tiny("memory:///x", "n = [4, 9]"),
        &[],
        &["`sweep.n`", "N = 9 exceeds the 8 concepts"],
    );
}

#[test]
fn repeated_sweep_values_are_rejected() {
    fails_with(
        &tiny("memory:///x", "k = [1, 4, 1]"),
        &[],
        &["`sweep.k`", "lists 1 twice"],
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = tiny("memory:///x", "n = [99]\nlr = [-1.0]");
    fails_with(&text, &[], &["N = 99", "lr must be positive"]);
}

#[test]
fn overrides_are_checked_like_the_file() {
    fails_with(
        &tiny("memory:///x", "k = [1]"),
        &["train.bogus=1"],
        &[
            "`train.bogus` (from --set train.bogus=1)",
            "unknown field `bogus`",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.toml", &tiny("memory:///x", "k = [1]"));
    let out = negsweep()
        .arg("validate")
        .arg(&file)
        .args(["--set", "sweep.k=[1,2,3]", "--set", "sweep.seed=[0,1]"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", shown(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("6 sweep points"),
        "{}",
        shown(&out)
    );
    let out = negsweep()
        .arg("validate")
        .arg(&file)
        .args(["--set", "sweep.k"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
}

#[test]
fn missing_pipeline_file_is_a_config_error() {
    let out = negsweep()
        .args(["validate", "/nonexistent/p.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", shown(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/p.toml"));
}

#[test]
fn theory_prints_the_table_and_k_star() {
    let out = negsweep()
        .args(["theory", "--concepts", "16", "--k", "1,4,16,64,256"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", crate::shown(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let starred: Vec<&str> = stdout.lines().filter(|l| l.ends_with("<- k*")).collect();
    assert_eq!(starred.len(), 1, "{stdout}");
    assert!(starred[0].trim_start().starts_with("16 "), "{stdout}");
    assert!(stdout.contains("Recommended k:"), "{stdout}");
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.trim_start().starts_with("256"))
            .count(),
        1
    );
    let bad = negsweep()
        .args(["theory", "--concepts", "1"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn theory_reads_measured_counts_and_rejects_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "counts.csv",
        "cat,100\ndog,50\nbird,10\nfish,10\n",
    );
    let out = negsweep()
        .args(["theory", "--rho"])
        .arg(&file)
        .args(["--k", "1,2,4,8,16,32"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", shown(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("N = 4 concepts, 170 examples"), "{stdout}");
    // Skewed classes: the effective N is well below 4.
    assert!(
        stdout.contains("effective N (1 / sum rho^2) = 2.3"),
        "{stdout}"
    );
    let bad = write(dir.path(), "bad.txt", "3\nmany\n");
    let out = negsweep()
        .args(["theory", "--rho"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", shown(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.txt") && err.contains("line 2"), "{err}");
}

#[test]
fn advise_reads_an_ingested_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let file = write(
        dir.path(),
        "p.toml",
        &tiny(out_dir.to_str().unwrap(), "k = [1]\nn = [4]\nseed = [0]"),
    );
    let run = negsweep().arg("run").arg(&file).arg("-q").output().unwrap();
    assert!(run.status.success(), "{}", shown(&run));
    let ds = std::fs::read_dir(out_dir.join("datasets"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let out = negsweep().arg("advise").arg(&ds).output().unwrap();
    assert!(out.status.success(), "{}", shown(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The tiny dataset: 8 concepts of 12 examples.
    assert!(stdout.contains("N = 8 concepts, 96 examples"), "{stdout}");
    assert!(
        stdout.contains("Recommended k:") && stdout.contains("<- k*"),
        "{stdout}"
    );
    let missing = negsweep()
        .arg("advise")
        .arg(dir.path().join("nothing"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(3), "{}", shown(&missing));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no ingested examples"));
}

#[test]
fn impossible_strategy_settings_are_config_errors() {
    fails_with(
        &tiny("memory:///x", "k = [4, 16]\nstrategy = [\"in-batch\"]"),
        &[],
        &["sweep.k", "k = 16 in-batch negatives", "batch-size = 16"],
    );
    fails_with(
        &tiny(
            "memory:///x",
            "k = [8]\nstrategy = [\"hard\"]\n\n[negatives.hard]\nmin-rank = 5\nmax-rank = 10",
        ),
        &[],
        &["k = 8 exceeds the 6 ranks", "min-rank = 5"],
    );
    fails_with(
        &tiny(
            "memory:///x",
            "k = [2]\nstrategy = [\"hard\"]\n\n[negatives.hard]\nmin-score = 0.5\nmax-score = 0.2",
        ),
        &[],
        &["negatives.hard", "min-score <= max-score"],
    );
    fails_with(
        &tiny("memory:///x", "k = [8]\nloss = [\"debiased\"]")
            .replace("lr = 0.01", "lr = 0.01\ntau-plus = 1.5"),
        &[],
        &["train.tau-plus", "[0, 1)"],
    );
}

#[test]
fn settings_that_cannot_fit_are_refused_at_once_with_the_estimate() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = write(
        dir.path(),
        "p.toml",
        &tiny(out.to_str().unwrap(), "k = [1]"),
    );
    for set in [
        "sweep.k=[1000000000]",
        "train.dim=1000000000",
        "train.epochs=1000000000",
        "datasets.0.examples-per-concept=1000000000",
        "datasets.0.vocab=1000000000",
        "datasets.0.length=1000000000",
    ] {
        for cmd in ["validate", "plan", "run"] {
            let started = std::time::Instant::now();
            let o = negsweep()
                .args([cmd, "--set", set, "--max-memory", "16G"])
                .arg(&file)
                .output()
                .unwrap();
            assert_eq!(o.status.code(), Some(2), "{cmd} {set}: {}", shown(&o));
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                err.contains("needs about") && err.contains("more than the 16.0 GB available"),
                "{cmd} {set}: {err}"
            );
            assert!(
                started.elapsed().as_secs_f64() < 1.0,
                "{cmd} {set}: refused at once"
            );
            assert!(!out.exists(), "{cmd} {set}: nothing written, no lock left");
        }
    }
    // `plan` shows each point's estimate.
    let o = negsweep().arg("plan").arg(&file).output().unwrap();
    assert!(o.status.success(), "{}", shown(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.lines().next().unwrap().contains("memory"), "{text}");
    assert!(text.contains("peak memory per point: about"), "{text}");
    let tight = negsweep()
        .args(["validate", "--max-memory", "1K"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(tight.status.code(), Some(2), "{}", shown(&tight));
    let bad = negsweep()
        .args(["validate", "--max-memory", "lots"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", shown(&bad));
}

#[test]
fn run_ends_with_the_answer_and_analyze_prints_every_k_with_its_intervals() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = write(
        dir.path(),
        "p.toml",
        &tiny(
            out.to_str().unwrap(),
            "k = [1, 2, 4]\nn = [4, 8]\nseed = [0, 1, 2]",
        ),
    );
    let run = negsweep().args(["run"]).arg(&file).output().unwrap();
    assert!(run.status.success(), "{}", shown(&run));
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(
        text.contains("tiny-text N=4: k* = ") && text.contains("best set"),
        "{text}"
    );
    assert!(text.contains("over 3 seeds"), "{text}");
    for target in [file.clone(), out.clone(), out.join("results.arrow")] {
        let a = negsweep().arg("analyze").arg(&target).output().unwrap();
        assert!(a.status.success(), "{}", shown(&a));
        let table = String::from_utf8_lossy(&a.stdout);
        assert!(
            table.contains("(mean_acc, 3 seeds, 2000 bootstrap resamples)"),
            "{table}"
        );
        // One row per k, then the verdict.
        let rows = table
            .lines()
            .filter(|l| l.trim_start().starts_with(['1', '2', '4']) && l.contains('['))
            .count();
        assert_eq!(rows, 6, "3 k for each of the 2 N: {table}");
        assert!(table.contains("one-standard-error k = "), "{table}");
        assert!(
            table.contains("tiny-text: best k ")
                && table.contains(" at N 4, 8 (theory k* ")
                && table.contains("; slope of log2 best-k on log2 N = "),
            "{table}"
        );
    }
    // The tables, read back: each k's mean is the mean of its seeds' rows in results.arrow.
    let dir_of = out.join("analysis/metric=mean_acc");
    let read = |name: &str| {
        let f = std::fs::File::open(dir_of.join(name)).unwrap();
        let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<_> = r.map(Result::unwrap).collect();
        arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
    };
    let results = crate::e2e::read_ipc(&out.join("results.arrow"));
    let per_k = read("k.parquet");
    assert_eq!(per_k.num_rows(), 6, "2 N x 3 k");
    let u32s = |b: &arrow::array::RecordBatch, c: &str| -> Vec<u32> {
        let a = arrow::compute::cast(
            b.column_by_name(c).unwrap(),
            &arrow::datatypes::DataType::UInt32,
        )
        .unwrap();
        use arrow::array::AsArray;
        a.as_primitive::<arrow::datatypes::UInt32Type>()
            .values()
            .to_vec()
    };
    let (rn, rk, acc) = (
        u32s(&results, "n"),
        u32s(&results, "k"),
        crate::e2e::f64s(&results, "mean_acc"),
    );
    let (n, k, mean) = (
        u32s(&per_k, "n"),
        u32s(&per_k, "k"),
        crate::e2e::f64s(&per_k, "mean"),
    );
    for i in 0..per_k.num_rows() {
        let seeds: Vec<f64> = (0..results.num_rows())
            .filter(|&j| rn[j] == n[i] && rk[j] == k[i])
            .map(|j| acc[j])
            .collect();
        assert_eq!(seeds.len(), 3);
        let want = seeds.iter().sum::<f64>() / 3.0;
        assert!((mean[i] - want).abs() < 1e-12, "N={} k={}", n[i], k[i]);
    }
    let groups = read("groups.parquet");
    assert_eq!(groups.num_rows(), 2);
    for v in crate::e2e::strs(&groups, "verdict") {
        assert!(text.contains(&v), "the printed verdict {v} in {text}");
    }
    assert_eq!(
        read("scaling.parquet").num_rows(),
        1,
        "one family over N = 4, 8"
    );
    // The README's recipe for the tables, with Python Polars.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find("## How sure the answer is").unwrap()..];
    let start = section.find("```python\n").unwrap() + "```python\n".len();
    let recipe = section[start..start + section[start..].find("```").unwrap()]
        .replace("runs/quickstart", out.to_str().unwrap());
    let py = std::process::Command::new("python3")
        .arg("-c")
        .arg(format!(
            "{recipe}\nprint(best.height, best['best_k'].to_list() == {:?})",
            u32s(&groups, "best_k")
        ))
        .output()
        .expect("python3 is needed for the README recipe tests (.ci/test installs polars)");
    assert!(py.status.success(), "{}", shown(&py));
    assert!(
        String::from_utf8_lossy(&py.stdout)
            .trim_end()
            .ends_with("2 True"),
        "{}",
        shown(&py)
    );
    // Held-out seeds: k chosen on seeds 0, 1 and judged on 2; none left with 3 held out.
    let held = negsweep()
        .args(["analyze", "--holdout-seeds", "1"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(held.status.success(), "{}", shown(&held));
    let t = String::from_utf8_lossy(&held.stdout);
    assert!(
        t.contains("chosen on seeds 0, 1 (mean_acc ") && t.contains("on held-out seed 2: "),
        "{t}"
    );
    let hk = read("groups.parquet");
    assert_eq!(hk.column_by_name("holdout_k").unwrap().null_count(), 0);
    let none = negsweep()
        .args(["analyze", "--holdout-seeds", "3"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(2), "{}", shown(&none));
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("no group has more than 3 seeds"),
        "{}",
        shown(&none)
    );
    let bad = negsweep()
        .args(["analyze", "--metric", "nonsense"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", shown(&bad));
    let loss = negsweep()
        .args(["analyze", "--metric", "test_loss"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(loss.status.success(), "{}", shown(&loss));
}

#[test]
fn analyze_says_which_seeds_it_leaves_out_and_bounds_the_resamples() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = write(
        dir.path(),
        "p.toml",
        &tiny(out.to_str().unwrap(), "k = [1, 2]\nn = [4]\nseed = [0, 1]"),
    );
    let run = negsweep().args(["run", "-q"]).arg(&file).output().unwrap();
    assert!(run.status.success(), "{}", shown(&run));
    // Seed 1 of k = 2 goes missing: the group is analysed on seed 0 alone, and says so.
    let rows = crate::e2e::read_ipc(&out.join("results.arrow"));
    let ids = crate::e2e::strs(&rows, "point_id");
    let seeds = rows
        .column_by_name("seed")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::UInt64Array>()
        .unwrap()
        .clone();
    let ks = rows
        .column_by_name("k")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::UInt32Array>()
        .unwrap()
        .clone();
    let gone = (0..rows.num_rows())
        .find(|&i| seeds.value(i) == 1 && ks.value(i) == 2)
        .map(|i| ids[i].clone())
        .unwrap();
    let part = crate::e2e::parts(&out)
        .into_iter()
        .find(|p| p.to_string_lossy().contains(&gone))
        .unwrap();
    std::fs::remove_file(part).unwrap();
    let collect = negsweep().arg("collect").arg(&file).output().unwrap();
    assert!(collect.status.success(), "{}", shown(&collect));
    let err = String::from_utf8_lossy(&collect.stderr);
    assert!(
        err.contains("tiny-text N=4")
            && err.contains("seeds 1 lack a result at some k; analysed on seeds 0"),
        "{}",
        shown(&collect)
    );
    assert!(
        String::from_utf8_lossy(&collect.stdout).contains("over 1 seed: no interval"),
        "{}",
        shown(&collect)
    );
    for bad in ["0", "2000000", "many"] {
        let a = negsweep()
            .args(["analyze", "--resamples", bad])
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(a.status.code(), Some(2), "{bad}: {}", shown(&a));
    }
}

#[test]
fn adaptive_settings_out_of_range_are_each_named() {
    let text = tiny(
        "memory:///x",
        "k = [1, 4]\nseed = [0, 1, 2]\n\n[sweep.adaptive]\ninitial-seeds = 1\nseeds-per-round = 0\n\
         drop-level = 0.7\ndrop-margin = -0.01\nstable-rounds = 0\nsettle-power = 1",
    );
    fails_with(
        &text,
        &[],
        &[
            "sweep.adaptive.initial-seeds",
            "must be at least 2",
            "sweep.adaptive.seeds-per-round",
            "sweep.adaptive.drop-level",
            "must be in (0, 0.05] (the best set's level), got 0.7",
            "sweep.adaptive.drop-margin",
            "must be in [0, 1) (accuracy units), got -0.01",
            "sweep.adaptive.stable-rounds",
            "sweep.adaptive.settle-power",
            "must be in (0, 1), got 1",
        ],
    );
    // A margin no accuracy deficit can exceed, and a test or settle rule negsweep lacks.
    fails_with(
        &tiny(
            "memory:///x",
            "k = [1, 4]\nseed = [0, 1, 2]\n\n[sweep.adaptive]\ndrop-margin = 1.5",
        ),
        &[],
        &["sweep.adaptive.drop-margin", "got 1.5"],
    );
    fails_with(
        &tiny(
            "memory:///x",
            "k = [1, 4]\nseed = [0, 1, 2]\n\n[sweep.adaptive]\ndrop-test = \"welch\"",
        ),
        &[],
        &["drop-test", "welch"],
    );
    // And the budget: more initial seeds than the sweep lists.
    fails_with(
        &tiny(
            "memory:///x",
            "k = [1, 4]\nseed = [0, 1]\n\n[sweep.adaptive]\ninitial-seeds = 3",
        ),
        &[],
        &["sweep.adaptive.initial-seeds", "is 3, but"],
    );
}

#[test]
fn zero_jobs_or_threads_is_a_usage_error() {
    for args in [
        &["run", "pipelines/quickstart.toml", "--jobs", "0"][..],
        &["bench", "--threads", "0", "--no-overhead"][..],
    ] {
        let out = negsweep().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", shown(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("must be at least 1"), "{args:?}: {err}");
    }
}

/// The ingest threads follow the process's allotment (a Slurm task's CPUs on a shared node),
/// not the cores the machine has, and `bench --threads` where given.
#[test]
fn the_ingest_threads_follow_slurm_and_bench_threads() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.jsonl");
    let lines: String = (0..40)
        .map(|i| {
            format!(
                "{{\"text\": \"word{} other words\", \"label\": {}}}\n",
                i,
                i % 4
            )
        })
        .collect();
    std::fs::write(&file, lines).unwrap();
    let file = file.to_str().unwrap();
    let cases: [(&[&str], Option<&str>); 2] = [
        (&["bench", "--ingest", file, "-v"], Some("1")),
        (&["bench", "--ingest", file, "-v", "--threads", "1"], None),
    ];
    for (args, slurm) in cases {
        let mut cmd = negsweep();
        cmd.args(args).env_remove("RAYON_NUM_THREADS");
        match slurm {
            Some(n) => cmd.env("SLURM_CPUS_PER_TASK", n),
            None => cmd.env_remove("SLURM_CPUS_PER_TASK"),
        };
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", shown(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("threads=1") && err.contains("ingest threads started"),
            "{args:?} (SLURM_CPUS_PER_TASK {slurm:?}): {err}"
        );
    }
}

/// A thread-count variable that is not a positive whole number is ignored, and said so.
#[test]
fn a_malformed_thread_variable_is_warned_about() {
    for (var, value) in [("SLURM_CPUS_PER_TASK", "abc"), ("RAYON_NUM_THREADS", "0")] {
        let out = negsweep()
            .args(["validate", "pipelines/quickstart.toml"])
            .env(var, value)
            .output()
            .unwrap();
        assert!(out.status.success(), "{var}={value}: {}", shown(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{var}=\"{value}\" is not a positive whole number")),
            "{var}={value}: {err}"
        );
    }
}

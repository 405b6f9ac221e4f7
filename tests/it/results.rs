//! What the output holds as pipelines change: datasets reordered and renamed, N listed twice,
//! an edited pipeline run into the same output, part files from an older version; and the
//! README's Polars recipe (run with Python Polars) reading exactly the current plan's rows.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;

use arrow::array::{RecordBatch, UInt32Array};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::e2e::{parts, read_ipc, strs};
use crate::{negsweep, shown, tiny, write};

/// A pipeline over two synthetic text datasets, `first` and `second`, listed in that order.
fn two_datasets(out: &Path, first: (&str, u64), second: (&str, u64), epochs: u32) -> String {
    let dataset = |(name, seed): (&str, u64)| {
        format!(
            "[[datasets]]\nkind = \"synthetic-text\"\nname = \"{name}\"\nconcepts = 6\nexamples-per-concept = 12\nvocab = 64\nlength = 8\nseed = {seed}\n"
        )
    };
    format!(
        "[pipeline]\nname = \"two\"\noutput = \"{}\"\n\n{}\n{}\n[train]\ndim = 8\nhidden = 16\nbatch-size = 16\nepochs = {epochs}\n\n[sweep]\nk = [1, 2]\nn = [4]\n",
        out.display(),
        dataset(first),
        dataset(second)
    )
}

fn run(file: &Path, extra: &[&str]) -> std::process::Output {
    let out = negsweep()
        .arg("run")
        .args(extra)
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", shown(&out));
    out
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The point ids `plan` lists, in order.
fn plan_ids(file: &Path) -> Vec<String> {
    let out = negsweep().arg("plan").arg(file).output().unwrap();
    assert!(out.status.success(), "{}", shown(&out));
    stdout(&out)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.len() == 16 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_owned)
        .collect()
}

fn read_part(path: &Path) -> RecordBatch {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

/// Dataset partitions of the part files under `out`.
fn partitions(out: &Path) -> BTreeSet<String> {
    parts(out)
        .iter()
        .map(|p| {
            p.components()
                .filter_map(|c| c.as_os_str().to_str()?.strip_prefix("dataset="))
                .next()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[test]
fn ids_of_the_first_dataset_are_those_earlier_versions_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = write(
        dir.path(),
        "p.toml",
        &tiny(out.to_str().unwrap(), "k = [1, 2]\nn = [4]"),
    );
    // Printed by `negsweep plan` before datasets were identified by content alone: results
    // already on disk keep counting as done.
    assert_eq!(plan_ids(&file), ["8abdcdd54bd4996c", "10333f3224c42bb5"]);
}

#[test]
fn reordered_datasets_keep_every_id_and_compute_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = write(
        dir.path(),
        "p.toml",
        &two_datasets(&out, ("alpha", 1), ("beta", 2), 2),
    );
    let ids: BTreeSet<String> = plan_ids(&file).into_iter().collect();
    assert_eq!(ids.len(), 4);
    assert!(stdout(&run(&file, &["--quiet"])).contains("computed 4 points"));

    write(
        dir.path(),
        "p.toml",
        &two_datasets(&out, ("beta", 2), ("alpha", 1), 2),
    );
    let reordered: BTreeSet<String> = plan_ids(&file).into_iter().collect();
    assert_eq!(reordered, ids);
    let again = run(&file, &["--quiet"]);
    assert!(
        stdout(&again).contains("nothing to compute: all 4 points are already done"),
        "{}",
        shown(&again)
    );
    assert_eq!(parts(&out).len(), 4);
    let b = read_ipc(&out.join("results.arrow"));
    assert_eq!(b.num_rows(), 4);
    assert_eq!(
        strs(&b, "point_id").into_iter().collect::<BTreeSet<_>>(),
        ids
    );
}

#[test]
fn one_dataset_under_two_names_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = write(
        dir.path(),
        "p.toml",
        &two_datasets(&out, ("alpha", 1), ("beta", 1), 2),
    );
    let v = negsweep().arg("validate").arg(&file).output().unwrap();
    assert_eq!(v.status.code(), Some(2), "{}", shown(&v));
    let err = String::from_utf8_lossy(&v.stderr);
    assert!(
        err.contains("datasets[1]")
            && err.contains("`beta`")
            && err.contains("datasets[0] (`alpha`)"),
        "{}",
        shown(&v)
    );
}

#[test]
fn renamed_dataset_is_relabelled_without_recomputing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let old = tiny(out.to_str().unwrap(), "k = [1, 2]\nn = [4]");
    let file = write(dir.path(), "p.toml", &old);
    run(&file, &["--quiet"]);
    assert_eq!(partitions(&out), BTreeSet::from(["tiny-text".to_owned()]));

    write(
        dir.path(),
        "p.toml",
        &old.replace("name = \"tiny-text\"", "name = \"renamed\""),
    );
    let plan = negsweep().arg("plan").arg(&file).output().unwrap();
    assert!(
        stdout(&plan).contains("2 points: 2 done, 0 failed, 0 pending"),
        "{}",
        shown(&plan)
    );
    let again = run(&file, &["--quiet"]);
    let text = stdout(&again);
    assert!(
        text.contains("nothing to compute: all 2 points are already done")
            && text.contains("moved the results of 2 finished points"),
        "{}",
        shown(&again)
    );
    assert_eq!(parts(&out).len(), 2);
    assert_eq!(partitions(&out), BTreeSet::from(["renamed".to_owned()]));
    for part in parts(&out) {
        assert_eq!(strs(&read_part(&part), "dataset"), ["renamed"]);
    }
    assert_eq!(
        strs(&read_ipc(&out.join("results.arrow")), "dataset"),
        ["renamed", "renamed"]
    );

    // A move killed after writing the new file and before deleting the old one leaves two
    // copies: the next run keeps one.
    let kept = &parts(&out)[0];
    let stale = out.join(
        kept.strip_prefix(&out)
            .unwrap()
            .to_str()
            .unwrap()
            .replace("dataset=renamed", "dataset=tiny-text"),
    );
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::copy(kept, &stale).unwrap();
    let tidy = run(&file, &["--quiet"]);
    assert!(
        stdout(&tidy).contains("nothing to compute"),
        "{}",
        shown(&tidy)
    );
    assert_eq!(parts(&out).len(), 2);
    assert_eq!(partitions(&out), BTreeSet::from(["renamed".to_owned()]));
}

#[test]
fn n_listed_twice_once_resolved_trains_once_and_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // Six labels of eight texts each; N = 0 is every concept: 6, which the list names too.
    let lines: String = (0..48)
        .map(|i| {
            let label = i % 6;
            format!(
                "{}\n",
                serde_json::json!({"text": format!("topic{label} word{} word{}", i % 5, i % 7), "label": format!("c{label}")})
            )
        })
        .collect();
    let data = write(dir.path(), "d.jsonl", &lines);
    let text = format!(
        "[pipeline]\nname = \"dup\"\noutput = \"{}\"\n\n[[datasets]]\nkind = \"jsonl\"\nname = \"j\"\nurl = \"{}\"\nn = [6, 0]\n\n[train]\ndim = 8\nhidden = 8\nbatch-size = 8\nepochs = 1\n\n[sweep]\nk = [1, 2]\n",
        out.display(),
        data.display()
    );
    let file = write(dir.path(), "p.toml", &text);
    let first = run(&file, &["--quiet"]);
    let said = stdout(&first);
    assert!(
        said.contains("computed 2 points, skipped 0 already done, 0 failed")
            && said.contains("2 points are the same point as another"),
        "{}",
        shown(&first)
    );
    assert_eq!(parts(&out).len(), 2);
    let b = read_ipc(&out.join("results.arrow"));
    assert_eq!(b.num_rows(), 2);
    let summary = {
        use polars::prelude::*;
        let f = File::open(out.join("summary.parquet")).unwrap();
        ParquetReader::new(f).finish().unwrap()
    };
    let seeds: Vec<u32> = summary
        .column("seeds")
        .unwrap()
        .u32()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(seeds, [1, 1], "{summary}");

    let plan = negsweep().arg("plan").arg(&file).output().unwrap();
    assert!(
        stdout(&plan).contains("4 points: 4 done, 0 failed, 0 pending"),
        "{}",
        shown(&plan)
    );
    let again = run(&file, &["--quiet"]);
    assert!(
        stdout(&again).contains("nothing to compute: all 4 points are already done"),
        "{}",
        shown(&again)
    );
}

/// Runs the README's Polars recipe (its first `python` block, reading `out` in place of
/// `runs/quickstart`) with Python Polars and returns what it read: the rows and dataset names
/// of `df` (the current plan) and of `every` (every part file).
fn readme_recipe(out: &Path) -> serde_json::Value {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find("## Reading the results in Polars").unwrap()..];
    let start = section.find("```python\n").unwrap() + "```python\n".len();
    let recipe = &section[start..start + section[start..].find("```").unwrap()];
    let code = format!(
        "{}\nimport json\nprint(json.dumps({{'rows': df.height, 'datasets': sorted(set(df['dataset'].to_list())), 'every': every.height, 'every_datasets': sorted(set(every['dataset'].to_list())), 'epochs': sorted(set(df['epochs'].to_list())), 'columns': every.columns}}))",
        recipe.replace("runs/quickstart", out.to_str().unwrap())
    );
    let py = std::process::Command::new("python3")
        .arg("-c")
        .arg(&code)
        .output()
        .expect("python3 is needed for the README recipe tests (.ci/test installs polars)");
    assert!(
        py.status.success(),
        "the README recipe failed (Python Polars is needed: .ci/test installs it):\n{code}\n{}",
        shown(&py)
    );
    let last = String::from_utf8_lossy(&py.stdout)
        .lines()
        .last()
        .unwrap()
        .to_owned();
    serde_json::from_str(&last).unwrap()
}

#[test]
fn readme_recipe_keeps_dataset_names_that_look_like_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = write(
        dir.path(),
        "p.toml",
        &two_datasets(&out, ("007", 1), ("01001", 2), 2),
    );
    run(&file, &["--quiet"]);
    let read = readme_recipe(&out);
    assert_eq!(read["rows"], 4, "{read}");
    assert_eq!(
        read["datasets"],
        serde_json::json!(["007", "01001"]),
        "{read}"
    );
    assert_eq!(read["every"], 4, "{read}");
    assert_eq!(
        read["every_datasets"],
        serde_json::json!(["007", "01001"]),
        "{read}"
    );
}

/// Rewrites the part file at `path` as negsweep 0.1 wrote it before the partition columns were
/// stored and before `positive`, `strategy`, `tau_plus` and the theory coefficients existed.
fn downgrade(path: &Path) {
    let b = read_part(path);
    let dropped = [
        "dataset",
        "n",
        "k",
        "positive",
        "strategy",
        "tau_plus",
        "coverage_theory",
        "ash_coefficient",
        "arora_coefficient",
    ];
    let keep: Vec<usize> = (0..b.num_columns())
        .filter(|&i| !dropped.contains(&b.schema().field(i).name().as_str()))
        .collect();
    let old = b.project(&keep).unwrap();
    let mut w = ArrowWriter::try_new(File::create(path).unwrap(), old.schema(), None).unwrap();
    w.write(&old).unwrap();
    w.close().unwrap();
}

#[test]
fn readme_recipe_reads_the_current_plan_beside_old_points_and_old_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = write(
        dir.path(),
        "p.toml",
        &two_datasets(&out, ("alpha", 1), ("beta", 2), 2),
    );
    run(&file, &["--quiet"]);
    // Files of an older negsweep in the output.
    for part in &parts(&out)[..2] {
        downgrade(part);
    }
    // The pipeline is edited and run again into the same output.
    write(
        dir.path(),
        "p.toml",
        &two_datasets(&out, ("alpha", 1), ("beta", 2), 3),
    );
    let edited = run(&file, &["--quiet"]);
    assert!(
        stdout(&edited).contains("computed 4 points"),
        "{}",
        shown(&edited)
    );
    assert!(
        String::from_utf8_lossy(&edited.stderr).contains("warning: 4 result files under"),
        "{}",
        shown(&edited)
    );
    assert_eq!(parts(&out).len(), 8);
    let read = readme_recipe(&out);
    assert_eq!(read["rows"], 4, "{read}");
    assert_eq!(read["epochs"], serde_json::json!([3]), "{read}");
    assert_eq!(
        read["datasets"],
        serde_json::json!(["alpha", "beta"]),
        "{read}"
    );
    assert_eq!(read["every"], 8, "{read}");
    let columns: Vec<String> = serde_json::from_value(read["columns"].clone()).unwrap();
    let want: Vec<String> = negsweep::stages::tables::results(true)
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(columns, want);

    // An old file turning up after the run (an older version's shard): `collect` upgrades it.
    let current = parts(&out)
        .into_iter()
        .find(|p| {
            read_part(p)
                .column_by_name("epochs")
                .is_some_and(|c| c.as_any().downcast_ref::<UInt32Array>().unwrap().value(0) == 3)
        })
        .unwrap();
    downgrade(&current);
    let collect = negsweep().arg("collect").arg(&file).output().unwrap();
    assert!(collect.status.success(), "{}", shown(&collect));
    let upgraded = read_part(&current);
    assert_eq!(upgraded.schema().fields().len(), want.len());
    assert_eq!(strs(&upgraded, "positive"), ["same-concept"]);
    assert_eq!(strs(&upgraded, "strategy"), ["uniform"]);
    let read = readme_recipe(&out);
    assert_eq!(
        (read["rows"].clone(), read["every"].clone()),
        (4.into(), 8.into()),
        "{read}"
    );
}

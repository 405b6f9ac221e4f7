//! Adaptive sweeps through the binary: a best set that holds every k left after a round
//! dropped one in the middle, as `analyze` and the report print it.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Array, ListBuilder, RecordBatch, StringArray, StringBuilder, UInt32Array,
    UInt64Array,
};

use crate::{negsweep, shown};

/// A results table of one group (dataset `d`, N = 4) where k = 1, 2 and 8 are level on three
/// seeds and k = 4, far behind, was dropped after two; and the decisions table that drops it.
fn dropped_in_the_middle(dir: &std::path::Path) {
    let mut rows: Vec<(String, u32, u64, f64)> = Vec::new();
    for k in [1, 2, 8] {
        for s in 0..3 {
            rows.push((format!("k{k}s{s}"), k, s, 0.80 + 0.01 * s as f64));
        }
    }
    rows.extend([("k4s0".into(), 4, 0, 0.5), ("k4s1".into(), 4, 1, 0.5)]);
    let results = RecordBatch::try_from_iter([
        (
            "dataset",
            Arc::new(StringArray::from(vec!["d"; rows.len()])) as ArrayRef,
        ),
        ("n", Arc::new(UInt32Array::from(vec![4; rows.len()])) as _),
        (
            "point_id",
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r.0.as_str()),
            )) as _,
        ),
        (
            "k",
            Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.1))) as _,
        ),
        (
            "seed",
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.2))) as _,
        ),
        (
            "mean_acc",
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.3))) as _,
        ),
    ])
    .unwrap();
    let file = std::fs::File::create(dir.join("results.arrow")).unwrap();
    let mut w = arrow::ipc::writer::FileWriter::try_new(file, &results.schema()).unwrap();
    w.write(&results).unwrap();
    w.finish().unwrap();

    let mut points = ListBuilder::new(StringBuilder::new());
    points.values().append_value("k4s0");
    points.values().append_value("k4s1");
    points.append(true);
    let decisions = RecordBatch::try_new(
        negsweep::stages::tables::adaptive_decisions(),
        vec![
            Arc::new(StringArray::from(vec!["d"])),
            Arc::new(UInt32Array::from(vec![4])),
            Arc::new(StringArray::from(vec!["d N=4"])),
            Arc::new(UInt32Array::from(vec![1])),
            Arc::new(UInt32Array::from(vec![Some(4)])),
            Arc::new(StringArray::from(vec!["drop"])),
            Arc::new(UInt32Array::from(vec![2])),
            Arc::new(Float64Array::from(vec![Some(0.001)])),
            Arc::new(StringArray::from(vec!["far behind"])),
            Arc::new(points.finish()),
        ],
    )
    .unwrap();
    let file = std::fs::File::create(dir.join("adaptive.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, decisions.schema(), None).unwrap();
    w.write(&decisions).unwrap();
    w.close().unwrap();
}

#[test]
fn a_best_set_never_reads_as_a_range_over_a_dropped_k() {
    let dir = tempfile::tempdir().unwrap();
    dropped_in_the_middle(dir.path());
    let out = negsweep().arg("analyze").arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", shown(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    // k = 4 has no row in the analysis: `1..8` would put it in the best set.
    assert!(printed.contains("best set 1, 2, 8,"), "{printed}");
    assert!(!printed.contains("1..8"), "{printed}");
    assert!(printed.contains("drop k = 4"), "{printed}");

    let out = negsweep().arg("report").arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", shown(&out));
    let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(page.contains("best set 1, 2, 8,"), "the page's verdict");
    assert!(!page.contains("1..8"));
}

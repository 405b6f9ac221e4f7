//! The groups of a results table: which rows are one group, and the analysis of each.

use super::{GroupAnalysis, Scaling, analyse, scaling};

/// Columns that, with `dataset` and `n`, identify a group: every setting but k and the seed.
const SETTINGS: &[&str] = &[
    "loss",
    "temperature",
    "tau_plus",
    "lr",
    "encoder",
    "dim",
    "hidden",
    "batch_size",
    "epochs",
    "positive",
    "strategy",
];

/// Metrics `analyze` takes, and whether higher is better.
pub const METRICS: &[(&str, bool)] = &[
    ("mean_acc", true),
    ("knn_acc", true),
    ("probe_top1", true),
    ("test_loss", false),
];

/// One group's identity: dataset, N and every other setting that varies, as text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupKey {
    /// Dataset name.
    pub dataset: String,
    /// Concepts.
    pub n: u32,
    /// The other settings, `name=value`, in [`SETTINGS`] order.
    pub settings: Vec<String>,
}

/// Analyses every group of the result rows in `batches` (the `results.arrow` table) on
/// `metric`; groups whose seeds are incomplete for some k use the seeds every k has.
///
/// # Errors
/// An unknown metric, or a table without the columns of a results table.
pub fn analyse_results(
    batches: &[arrow::array::RecordBatch],
    metric: &str,
    resamples: usize,
    seed: u64,
) -> crate::Result<Vec<(GroupKey, GroupAnalysis)>> {
    let (higher, groups) = groups(batches, metric)?;
    Ok(groups
        .into_iter()
        .map(|(key, (ks, values))| {
            let g = analyse(&ks, &values, higher, resamples, seed, 0.05);
            (key, g)
        })
        .collect())
}

/// A group's k values and `values[k][seed]` over the seeds every k has.
type Cells = (Vec<u32>, Vec<Vec<f64>>);

/// One N of a family: N, its k values and `values[k][seed]`.
pub type PerN = (u32, Vec<u32>, Vec<Vec<f64>>);

/// The groups of the result rows, with whether higher `metric` is better.
fn groups(
    batches: &[arrow::array::RecordBatch],
    metric: &str,
) -> crate::Result<(bool, Vec<(GroupKey, Cells)>)> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Float64Type, UInt32Type, UInt64Type};
    use std::collections::BTreeMap;
    let Some(&(_, higher)) = METRICS.iter().find(|(m, _)| *m == metric) else {
        return Err(crate::Error::Usage(format!(
            "--metric {metric}: one of {}",
            METRICS
                .iter()
                .map(|(m, _)| *m)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    // (group, k) -> seed -> value
    let mut cells: BTreeMap<GroupKey, BTreeMap<u32, BTreeMap<u64, f64>>> = BTreeMap::new();
    for b in batches {
        let missing = |c: &str| crate::Error::data("results", format!("no `{c}` column"));
        let col = |c: &str| b.column_by_name(c).ok_or_else(|| missing(c));
        let text = |c: &str| -> crate::Result<arrow::array::ArrayRef> {
            Ok(arrow::compute::cast(col(c)?, &DataType::Utf8)?)
        };
        let dataset = text("dataset")?;
        let n = arrow::compute::cast(col("n")?, &DataType::UInt32)?;
        let k = arrow::compute::cast(col("k")?, &DataType::UInt32)?;
        let s = arrow::compute::cast(col("seed")?, &DataType::UInt64)?;
        let v = arrow::compute::cast(col(metric)?, &DataType::Float64)?;
        let settings: Vec<(&str, arrow::array::ArrayRef)> = SETTINGS
            .iter()
            .filter_map(|c| Some((*c, text(c).ok()?)))
            .collect();
        for i in 0..b.num_rows() {
            let value = v.as_primitive::<Float64Type>();
            if value.is_null(i) || !value.value(i).is_finite() {
                continue;
            }
            let key = GroupKey {
                dataset: dataset.as_string::<i32>().value(i).to_owned(),
                n: n.as_primitive::<UInt32Type>().value(i),
                settings: settings
                    .iter()
                    .map(|(c, a)| format!("{c}={}", a.as_string::<i32>().value(i)))
                    .collect(),
            };
            cells
                .entry(key)
                .or_default()
                .entry(k.as_primitive::<UInt32Type>().value(i))
                .or_default()
                .insert(s.as_primitive::<UInt64Type>().value(i), value.value(i));
        }
    }
    let mut out = Vec::new();
    for (key, by_k) in cells {
        // Paired: the seeds every k has.
        let mut common: Option<std::collections::BTreeSet<u64>> = None;
        for seeds in by_k.values() {
            let these: std::collections::BTreeSet<u64> = seeds.keys().copied().collect();
            common = Some(match common {
                None => these,
                Some(c) => c.intersection(&these).copied().collect(),
            });
        }
        let common: Vec<u64> = common.unwrap_or_default().into_iter().collect();
        if common.is_empty() {
            continue;
        }
        let ks: Vec<u32> = by_k.keys().copied().collect();
        let values: Vec<Vec<f64>> = by_k
            .values()
            .map(|seeds| common.iter().map(|s| seeds[s]).collect())
            .collect();
        out.push((key, (ks, values)));
    }
    Ok((higher, out))
}

/// The scaling of best k with N for every family of groups that spans two N or more (the same
/// dataset and settings); lower-is-better metrics are negated first.
///
/// # Errors
/// As [`analyse_results`].
pub fn scaling_of(
    batches: &[arrow::array::RecordBatch],
    metric: &str,
    resamples: usize,
    seed: u64,
) -> crate::Result<Vec<(String, Scaling)>> {
    let (higher, groups) = groups(batches, metric)?;
    let mut families: std::collections::BTreeMap<(String, Vec<String>), Vec<PerN>> =
        std::collections::BTreeMap::new();
    for (key, (ks, mut values)) in groups {
        if !higher {
            values.iter_mut().flatten().for_each(|v| *v = -*v);
        }
        families
            .entry((key.dataset, key.settings))
            .or_default()
            .push((key.n, ks, values));
    }
    Ok(families
        .into_iter()
        .filter_map(|((dataset, _), per_n)| Some((dataset, scaling(&per_n, resamples, seed)?)))
        .collect())
}

/// One line per group: the best k with its interval, the best set and the one-SE k.
pub fn verdicts(groups: &[(GroupKey, GroupAnalysis)]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for (key, g) in groups {
        let best = g
            .rows
            .iter()
            .find(|r| r.k == g.best_k)
            .expect("the best k has a row");
        let _ = writeln!(
            out,
            "{} N={}: {} (mean {:.4}, 95% CI [{:.4}, {:.4}] over {} seeds)",
            key.dataset,
            key.n,
            g.verdict(),
            best.mean,
            best.t_ci.0,
            best.t_ci.1,
            best.seeds
        );
    }
    out
}

/// The analysis as a compact table, one block per group, and its verdict.
pub fn render(groups: &[(GroupKey, GroupAnalysis)], metric: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for (key, g) in groups {
        let seeds = g.rows.first().map_or(0, |r| r.seeds);
        let _ = writeln!(
            out,
            "{} N={} {} ({metric}, {seeds} seeds, {} bootstrap resamples)",
            key.dataset,
            key.n,
            key.settings.join(" "),
            g.resamples
        );
        let _ = writeln!(
            out,
            "{:>6} {:>8} {:>19} {:>19} {:>9} {:>8} {:>7}  best set",
            "k", "mean", "95% CI (t)", "95% CI (bootstrap)", "vs best", "p (Holm)", "P(best)"
        );
        for r in &g.rows {
            let _ = writeln!(
                out,
                "{:>6} {:>8.4} {:>19} {:>19} {:>+9.4} {:>8.3} {:>7.3}  {}",
                r.k,
                r.mean,
                format!("[{:.4}, {:.4}]", r.t_ci.0, r.t_ci.1),
                format!("[{:.4}, {:.4}]", r.boot_ci.0, r.boot_ci.1),
                r.diff,
                r.p_holm,
                r.p_best,
                if r.in_best_set { "yes" } else { "" }
            );
        }
        let _ = writeln!(out, "{}\n", g.verdict());
    }
    out
}

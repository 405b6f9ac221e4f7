//! The groups of a results table: which rows are one group, and the analysis of each.

use super::{GroupAnalysis, Holdout, Scaling, analyse, scaling};

use crate::stages::tables::GROUP_SETTINGS as SETTINGS;

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
/// `metric`; groups whose seeds are incomplete for some k use the seeds every k has. `grid`
/// adds k values without rows to each group's grid (see [`grid_of`]).
///
/// # Errors
/// An unknown metric, or a table without the columns of a results table.
pub fn analyse_results(
    batches: &[arrow::array::RecordBatch],
    metric: &str,
    resamples: usize,
    seed: u64,
    grid: &Grid,
) -> crate::Result<Vec<(GroupKey, GroupAnalysis)>> {
    let (higher, groups) = groups(batches, metric, true)?;
    Ok(groups
        .into_iter()
        .map(|(key, cells)| {
            let mut g = analyse(&cells.ks, &cells.values, higher, resamples, seed, 0.05);
            g.theory_k = cells.theory_k(key.n);
            g.seed_ids = cells.seeds;
            if let Some(more) = grid.get(&key) {
                let mut all: std::collections::BTreeSet<u32> = more.clone();
                all.extend(cells.ks.iter().copied());
                g.grid = all.into_iter().collect();
            }
            (key, g)
        })
        .collect())
}

/// The k values of each group's grid, beyond the k values the analysis has rows for (see
/// [`GroupAnalysis::grid`]).
pub type Grid = std::collections::BTreeMap<GroupKey, std::collections::BTreeSet<u32>>;

/// Every k each group has a row at in `batches`, whatever its metric holds: taken before an
/// adaptive sweep's dropped k values are left out, it keeps them in their group's grid. A
/// group also takes every k of the `planned` groups (each the point ids and k values of one
/// group of a plan) one of whose points has a row, k values without any result included.
///
/// # Errors
/// A table without the columns of a results table.
pub fn grid_of(
    batches: &[arrow::array::RecordBatch],
    planned: &[(Vec<String>, Vec<u32>)],
) -> crate::Result<Grid> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, UInt32Type};
    let mut of_id: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (g, (ids, _)) in planned.iter().enumerate() {
        of_id.extend(ids.iter().map(|id| (id.as_str(), g)));
    }
    let mut grid = Grid::new();
    for b in batches {
        let keys = row_keys(b)?;
        let k = b
            .column_by_name("k")
            .ok_or_else(|| crate::Error::data("results", "no `k` column"))?;
        let k = arrow::compute::cast(k, &DataType::UInt32)?;
        let k = k.as_primitive::<UInt32Type>();
        let ids = b
            .column_by_name("point_id")
            .and_then(|c| c.as_string_opt::<i32>().cloned());
        for (i, key) in keys.into_iter().enumerate() {
            let ks = grid.entry(key).or_default();
            ks.insert(k.value(i));
            let plan_group = ids
                .as_ref()
                .filter(|ids| !ids.is_null(i))
                .and_then(|ids| of_id.get(ids.value(i)));
            if let Some(&g) = plan_group {
                ks.extend(planned[g].1.iter().copied());
            }
        }
    }
    Ok(grid)
}

/// Selection on held-out seeds, per group: k is chosen on every seed but the `holdout` largest,
/// and its metric is reported on those (the mean of the chosen k on the seeds that chose it is
/// biased in its favour). Groups with `holdout` seeds or fewer are left out.
///
/// # Errors
/// As [`analyse_results`].
pub fn holdouts(
    batches: &[arrow::array::RecordBatch],
    metric: &str,
    holdout: usize,
) -> crate::Result<Vec<(GroupKey, Holdout)>> {
    let (higher, groups) = groups(batches, metric, false)?;
    Ok(groups
        .into_iter()
        .filter_map(|(key, c)| {
            let h = super::holdout(&c.ks, &c.values, &c.seeds, higher, holdout)?;
            Some((key, h))
        })
        .collect())
}

/// One group's cells: its k values, the seeds every k has (ascending), `values[k][seed]` and
/// each k's mean theoretical collision probability `tau_k` over those seeds (NaN where the
/// table has none).
struct Cells {
    ks: Vec<u32>,
    seeds: Vec<u64>,
    values: Vec<Vec<f64>>,
    tau: Vec<f64>,
}

impl Cells {
    /// The swept k minimising Ash et al.'s coefficient (see [`crate::theory::predicted_best_k`]).
    fn theory_k(&self, n: u32) -> Option<u32> {
        if self.tau.iter().any(|t| !t.is_finite()) {
            return None;
        }
        crate::theory::predicted_best_k(n, self.ks.iter().copied().zip(self.tau.iter().copied()))
    }
}

/// One N of a family: N, its k values and `values[k][seed]`.
pub type PerN = (u32, Vec<u32>, Vec<Vec<f64>>);

/// The groups of the result rows, with whether higher `metric` is better; with `warn`, logs
/// the groups and seeds left out because some k lacks them.
fn groups(
    batches: &[arrow::array::RecordBatch],
    metric: &str,
    warn: bool,
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
    // (group, k) -> seed -> (value, tau_k)
    type BySeed = BTreeMap<u64, (f64, f64)>;
    let mut cells: BTreeMap<GroupKey, BTreeMap<u32, BySeed>> = BTreeMap::new();
    for b in batches {
        let missing = |c: &str| crate::Error::data("results", format!("no `{c}` column"));
        let col = |c: &str| b.column_by_name(c).ok_or_else(|| missing(c));
        let keys = row_keys(b)?;
        let k = arrow::compute::cast(col("k")?, &DataType::UInt32)?;
        let s = arrow::compute::cast(col("seed")?, &DataType::UInt64)?;
        let v = arrow::compute::cast(col(metric)?, &DataType::Float64)?;
        let tau = match b.column_by_name("tau_k") {
            Some(t) => Some(arrow::compute::cast(t, &DataType::Float64)?),
            None => None,
        };
        for (i, key) in keys.into_iter().enumerate() {
            let value = v.as_primitive::<Float64Type>();
            if value.is_null(i) || !value.value(i).is_finite() {
                continue;
            }
            cells
                .entry(key)
                .or_default()
                .entry(k.as_primitive::<UInt32Type>().value(i))
                .or_default()
                .insert(
                    s.as_primitive::<UInt64Type>().value(i),
                    (
                        value.value(i),
                        tau.as_ref()
                            .map(|t| t.as_primitive::<Float64Type>())
                            .filter(|t| !t.is_null(i))
                            .map_or(f64::NAN, |t| t.value(i)),
                    ),
                );
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
        let all: std::collections::BTreeSet<u64> =
            by_k.values().flat_map(|s| s.keys().copied()).collect();
        let list = |s: &mut dyn Iterator<Item = &u64>| {
            s.map(u64::to_string).collect::<Vec<_>>().join(", ")
        };
        // Paired comparisons need every k at a seed: say what that leaves out.
        if common.is_empty() {
            if !warn {
                continue;
            }
            tracing::warn!(
                "{} N={}{}: no seed has a result at every k; the group is left out of the analysis",
                key.dataset,
                key.n,
                key.settings
                    .iter()
                    .map(|s| format!(" {s}"))
                    .collect::<String>()
            );
            continue;
        }
        if warn && common.len() < all.len() {
            tracing::warn!(
                "{} N={}{}: seeds {} lack a result at some k; analysed on seeds {}",
                key.dataset,
                key.n,
                key.settings
                    .iter()
                    .map(|s| format!(" {s}"))
                    .collect::<String>(),
                list(&mut all.iter().filter(|s| !common.contains(s))),
                list(&mut common.iter())
            );
        }
        let ks: Vec<u32> = by_k.keys().copied().collect();
        let values: Vec<Vec<f64>> = by_k
            .values()
            .map(|seeds| common.iter().map(|s| seeds[s].0).collect())
            .collect();
        let tau: Vec<f64> = by_k
            .values()
            .map(|seeds| super::mean(&common.iter().map(|s| seeds[s].1).collect::<Vec<_>>()))
            .collect();
        out.push((
            key,
            Cells {
                ks,
                seeds: common,
                values,
                tau,
            },
        ));
    }
    Ok((higher, out))
}

/// The group of each row of `batch` (a batch of the results table): its dataset, N and every
/// other setting, in row order.
///
/// # Errors
/// A batch without the `dataset` or `n` column.
pub(crate) fn row_keys(batch: &arrow::array::RecordBatch) -> crate::Result<Vec<GroupKey>> {
    use arrow::array::AsArray;
    use arrow::datatypes::{DataType, UInt32Type};
    let col = |c: &str| {
        batch
            .column_by_name(c)
            .ok_or_else(|| crate::Error::data("results", format!("no `{c}` column")))
    };
    let text = |c: &str| -> crate::Result<arrow::array::ArrayRef> {
        Ok(arrow::compute::cast(col(c)?, &DataType::Utf8)?)
    };
    let dataset = text("dataset")?;
    let n = arrow::compute::cast(col("n")?, &DataType::UInt32)?;
    let settings: Vec<(&str, arrow::array::ArrayRef)> = SETTINGS
        .iter()
        .filter_map(|c| Some((*c, text(c).ok()?)))
        .collect();
    Ok((0..batch.num_rows())
        .map(|i| GroupKey {
            dataset: dataset.as_string::<i32>().value(i).to_owned(),
            n: n.as_primitive::<UInt32Type>().value(i),
            settings: settings
                .iter()
                .map(|(c, a)| format!("{c}={}", a.as_string::<i32>().value(i)))
                .collect(),
        })
        .collect())
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
    let (higher, groups) = groups(batches, metric, false)?;
    type Family = (Vec<PerN>, Vec<Option<u32>>);
    let mut families: std::collections::BTreeMap<(String, Vec<String>), Family> =
        std::collections::BTreeMap::new();
    for (key, mut c) in groups {
        if !higher {
            c.values.iter_mut().flatten().for_each(|v| *v = -*v);
        }
        let theory = c.theory_k(key.n);
        let family = families.entry((key.dataset, key.settings)).or_default();
        family.0.push((key.n, c.ks, c.values));
        family.1.push(theory);
    }
    Ok(families
        .into_iter()
        .filter_map(|((dataset, settings), (per_n, theory_k))| {
            let mut s = scaling(&per_n, resamples, seed)?;
            s.settings = settings;
            s.theory_slope = theory_k.iter().all(Option::is_some).then(|| {
                let x: Vec<f64> = s.ns.iter().map(|&n| f64::from(n).log2()).collect();
                let y: Vec<f64> = theory_k
                    .iter()
                    .flatten()
                    .map(|&k| f64::from(k).log2())
                    .collect();
                super::scaling::slope(&x, &y)
            });
            s.theory_k = theory_k;
            Some((dataset, s))
        })
        .collect())
}

/// Indices of the settings that differ between `keys` (the rest are the same everywhere and
/// not worth printing).
fn varying<'a>(keys: impl Iterator<Item = &'a [String]>) -> Vec<usize> {
    let all: Vec<&[String]> = keys.collect();
    let width = all.iter().map(|s| s.len()).max().unwrap_or(0);
    (0..width)
        .filter(|&i| all.iter().any(|s| s.get(i) != all[0].get(i)))
        .collect()
}

fn shown(settings: &[String], varying: &[usize]) -> String {
    varying
        .iter()
        .filter_map(|&i| settings.get(i))
        .map(|s| format!(" {s}"))
        .collect()
}

/// One line per group: the best k with its interval, the best set and the one-SE k.
pub fn verdicts(groups: &[(GroupKey, GroupAnalysis)]) -> String {
    use std::fmt::Write as _;
    let vary = varying(groups.iter().map(|(k, _)| k.settings.as_slice()));
    let mut out = String::new();
    for (key, g) in groups {
        let best = g
            .rows
            .iter()
            .find(|r| r.k == g.best_k)
            .expect("the best k has a row");
        let spread = if best.seeds < 2 {
            format!("mean {:.4} over 1 seed: no interval", best.mean)
        } else {
            format!(
                "mean {:.4}, 95% CI [{:.4}, {:.4}] over {} seeds",
                best.mean, best.t_ci.0, best.t_ci.1, best.seeds
            )
        };
        let _ = writeln!(
            out,
            "{} N={}{}: {} ({spread})",
            key.dataset,
            key.n,
            shown(&key.settings, &vary),
            g.verdict(),
        );
    }
    out
}

/// The analysis as a compact table, one block per group, and its verdict.
pub fn render(groups: &[(GroupKey, GroupAnalysis)], metric: &str) -> String {
    use std::fmt::Write as _;
    let vary = varying(groups.iter().map(|(k, _)| k.settings.as_slice()));
    let mut out = String::new();
    for (key, g) in groups {
        let seeds = g.rows.first().map_or(0, |r| r.seeds);
        let _ = writeln!(
            out,
            "{} N={}{} ({metric}, {}, {} bootstrap resamples)",
            key.dataset,
            key.n,
            shown(&key.settings, &vary),
            crate::count(seeds, "seed"),
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
                interval(r.t_ci),
                interval(r.boot_ci),
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

/// `[lo, hi]` to four places, or `n/a` where there is none (one seed: the report's word too).
fn interval((lo, hi): (f64, f64)) -> String {
    if lo.is_finite() && hi.is_finite() {
        format!("[{lo:.4}, {hi:.4}]")
    } else {
        "n/a".to_owned()
    }
}

/// One line per family of groups spanning two N or more: best k and the theory's k* per N,
/// and the slope of log2 best-k on log2 N with its interval.
pub fn render_scaling(families: &[(String, Scaling)]) -> String {
    use std::fmt::Write as _;
    let vary = varying(families.iter().map(|(_, s)| s.settings.as_slice()));
    let list = |xs: &mut dyn Iterator<Item = String>| xs.collect::<Vec<_>>().join(", ");
    let mut out = String::new();
    for (dataset, s) in families {
        let theory = if s.theory_k.iter().any(Option::is_some) {
            format!(
                " (theory k* {})",
                list(
                    &mut s
                        .theory_k
                        .iter()
                        .map(|k| k.map_or("?".into(), |k| k.to_string()))
                )
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{dataset}{}: best k {} at N {}{theory}; slope of log2 best-k on log2 N = {:.2}, 95% bootstrap CI [{:.2}, {:.2}]{}",
            shown(&s.settings, &vary),
            list(&mut s.best_k.iter().map(u32::to_string)),
            list(&mut s.ns.iter().map(u32::to_string)),
            s.slope,
            s.ci.0,
            s.ci.1,
            s.theory_slope
                .map(|t| format!(" (theory {t:.2})"))
                .unwrap_or_default()
        );
    }
    out
}

/// One line per group with a held-out selection.
pub fn render_holdouts(holdouts: &[(GroupKey, Holdout)], metric: &str) -> String {
    use std::fmt::Write as _;
    let vary = varying(holdouts.iter().map(|(k, _)| k.settings.as_slice()));
    let seeds = |s: &[u64]| s.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    let mut out = String::new();
    for (key, h) in holdouts {
        let ci = if h.held_out_ci.0.is_finite() {
            format!(", 95% CI [{:.4}, {:.4}]", h.held_out_ci.0, h.held_out_ci.1)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{} N={}{}: k = {} chosen on seeds {} ({metric} {:.4} there); on held-out seed{} {}: {:.4}{ci}",
            key.dataset,
            key.n,
            shown(&key.settings, &vary),
            h.k,
            seeds(&h.selection_seeds),
            h.selection_mean,
            if h.held_out_seeds.len() == 1 { "" } else { "s" },
            seeds(&h.held_out_seeds),
            h.held_out_mean,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::DataType;

    use super::METRICS;
    use crate::stages::columns::COLUMNS;

    /// A results table of one group: `(point_id, k, seed, mean_acc)` rows.
    fn results(rows: &[(&str, u32, u64, f64)]) -> arrow::array::RecordBatch {
        use arrow::array::{Float64Array, StringArray, UInt32Array, UInt64Array};
        arrow::array::RecordBatch::try_from_iter([
            (
                "dataset",
                std::sync::Arc::new(StringArray::from(vec!["d"; rows.len()])) as _,
            ),
            (
                "n",
                std::sync::Arc::new(UInt32Array::from(vec![4; rows.len()])) as _,
            ),
            (
                "point_id",
                std::sync::Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))) as _,
            ),
            (
                "k",
                std::sync::Arc::new(UInt32Array::from_iter_values(rows.iter().map(|r| r.1))) as _,
            ),
            (
                "seed",
                std::sync::Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.2))) as _,
            ),
            (
                "mean_acc",
                std::sync::Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.3))) as _,
            ),
        ])
        .unwrap()
    }

    #[test]
    fn the_grid_keeps_dropped_and_planned_k_values_out_of_best_set_ranges() {
        // k = 1, 2 and 8 level at every seed; k = 4 was dropped after two seeds.
        let mut rows = Vec::new();
        for (k, id) in [(1, "a"), (2, "b"), (8, "d")] {
            for s in 0..3 {
                rows.push((id, k, s, 0.8 + 0.01 * s as f64));
            }
        }
        let ids = ["c0", "c1"];
        rows.extend([(ids[0], 4, 0, 0.5), (ids[1], 4, 1, 0.5)]);
        let all = results(&rows);
        let dropped = ids.iter().map(|s| (*s).to_owned()).collect();
        let kept = crate::stages::decisions::without(&all, &dropped).unwrap();
        let verdict = |grid: super::super::Grid| {
            let options = super::super::Options {
                grid,
                ..Default::default()
            };
            let a = super::super::analyse_table(std::slice::from_ref(&kept), &options).unwrap();
            a.groups[0].1.verdict()
        };
        // Without the grid the dropped k is invisible: the set reads as a range over it.
        assert!(verdict(Default::default()).contains("best set 1..8,"));
        let grid = super::grid_of(std::slice::from_ref(&all), &[]).unwrap();
        assert_eq!(grid.values().next().unwrap(), &[1, 2, 4, 8].into());
        assert!(
            verdict(grid).contains("best set 1, 2, 8,"),
            "{}",
            verdict(super::grid_of(std::slice::from_ref(&all), &[]).unwrap())
        );
        // A planned k without any result (k = 16) joins the group one of whose ids has a row;
        // a plan group without rows adds nothing.
        let planned = vec![
            (vec!["a".to_owned(), "zz".to_owned()], vec![1, 2, 4, 8, 16]),
            (vec!["other".to_owned()], vec![3]),
        ];
        let grid = super::grid_of(std::slice::from_ref(&kept), &planned).unwrap();
        assert_eq!(grid.values().next().unwrap(), &[1, 2, 4, 8, 16].into());
        assert_eq!(grid.len(), 1);
    }

    #[test]
    fn metrics_are_float_result_columns() {
        for (m, _) in METRICS {
            let c = COLUMNS.iter().find(|c| c.name == *m);
            assert_eq!(
                c.map(|c| c.data_type()),
                Some(DataType::Float64),
                "analyze metric `{m}`"
            );
        }
    }
}

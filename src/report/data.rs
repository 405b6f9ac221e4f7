//! What the report draws, computed once from the rows of a results table: the analysis of every
//! group, the theory's k*, the measured and predicted collision and coverage rates, and the
//! families of groups (the same dataset and settings, N varying) the figures put in one panel.

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, UInt32Type};

use crate::Result;
use crate::analyze::{self, GroupAnalysis, GroupKey, Scaling};

/// Axis labels of the metrics `analyze` takes (every name in [`analyze::METRICS`] has one).
const LABELS: &[(&str, &str)] = &[
    ("mean_acc", "mean-classifier accuracy (fraction correct)"),
    ("knn_acc", "kNN accuracy (fraction correct)"),
    (
        "probe_top1",
        "linear-probe top-1 accuracy (fraction correct)",
    ),
    ("test_loss", "test contrastive loss (nats; lower is better)"),
];

/// The metric the report answers on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Metric {
    /// Column name (`mean_acc`).
    pub(crate) name: String,
    /// Whether higher values are better (false for losses).
    pub(crate) higher: bool,
    /// Axis label with its unit.
    pub(crate) label: String,
}

impl Metric {
    /// The metric named `name`.
    ///
    /// # Errors
    /// A name `analyze` does not take.
    pub(crate) fn named(name: &str) -> Result<Self> {
        let Some(&(_, higher)) = analyze::METRICS.iter().find(|(m, _)| *m == name) else {
            return Err(crate::Error::Usage(format!(
                "--metric {name}: one of {}",
                analyze::METRICS
                    .iter()
                    .map(|(m, _)| *m)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let label = LABELS
            .iter()
            .find(|(m, _)| *m == name)
            .map_or(name, |(_, l)| l);
        Ok(Self {
            name: name.to_owned(),
            higher,
            label: label.to_owned(),
        })
    }
}

/// Collision and coverage at one k of a group: means over its seeds (NaN where no seed has a
/// finite value).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rates {
    /// Negatives per anchor.
    pub(crate) k: u32,
    /// Measured fraction of anchors with a colliding negative.
    pub(crate) collision: f64,
    /// Measured fraction of anchors whose negatives cover every other concept.
    pub(crate) coverage: f64,
    /// The theory's collision probability tau_k.
    pub(crate) tau: f64,
    /// The theory's coverage probability.
    pub(crate) coverage_theory: f64,
}

/// One group: the points that differ only by k and seed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Group {
    /// Dataset, N and settings.
    pub(crate) key: GroupKey,
    /// The analysis of the metric; `None` where no point of the group has a finite value.
    pub(crate) analysis: Option<GroupAnalysis>,
    /// The theory's k* among the group's k (Ash et al.'s coefficient at the measured tau_k):
    /// the analysis's where there is one, else from the rows' tau_k.
    pub(crate) theory_k: Option<u32>,
    /// Collision and coverage per k, ascending.
    pub(crate) rates: Vec<Rates>,
}

/// A family of groups: the same dataset and settings, N varying.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Family {
    /// Dataset name.
    pub(crate) dataset: String,
    /// The other settings, `name=value`, as in [`GroupKey::settings`].
    pub(crate) settings: Vec<String>,
}

impl Family {
    fn of(key: &GroupKey) -> Self {
        Self {
            dataset: key.dataset.clone(),
            settings: key.settings.clone(),
        }
    }
}

/// A family of groups, drawn as one panel.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Panel {
    /// Dataset and settings.
    pub(crate) family: Family,
    /// The dataset and the settings that differ between panels (`digits, loss=infonce`).
    pub(crate) title: String,
    /// Indices into [`Report::groups`], ascending N.
    pub(crate) groups: Vec<usize>,
    /// How best k scales with N; `None` with fewer than two N.
    pub(crate) scaling: Option<Scaling>,
}

/// Everything the report draws.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    /// The metric.
    pub(crate) metric: Metric,
    /// Every group, in [`GroupKey`] order.
    pub(crate) groups: Vec<Group>,
    /// Every family.
    pub(crate) panels: Vec<Panel>,
    /// Every N of the table, ascending: a series' colour is its N's place here.
    pub(crate) ns: Vec<u32>,
    /// The analysed groups, as `analyze` gives them (for the table and the verdicts).
    pub(crate) analysed: Vec<(GroupKey, GroupAnalysis)>,
    /// Names of the settings that differ between groups.
    pub(crate) varying: BTreeSet<String>,
}

impl Report {
    /// The report of the result rows in `batches` on `metric`, with `resamples` bootstrap
    /// resamples seeded by `seed`; `grid` as [`analyze::Options::grid`].
    ///
    /// # Errors
    /// An unknown metric, or a table without the columns of a results table.
    pub(crate) fn of(
        batches: &[RecordBatch],
        metric: &str,
        resamples: usize,
        seed: u64,
        grid: &analyze::Grid,
    ) -> Result<Self> {
        let metric = Metric::named(metric)?;
        let options = analyze::Options {
            metric: metric.name.clone(),
            resamples,
            seed,
            holdout_seeds: 0,
            grid: grid.clone(),
        };
        let analysis = analyze::analyse_table(batches, &options)?;
        let analysed = analysis.groups;
        let rates = rates(batches)?;
        let mut by_key: BTreeMap<GroupKey, Option<GroupAnalysis>> =
            rates.keys().map(|k| (k.clone(), None)).collect();
        for (key, g) in &analysed {
            by_key.insert(key.clone(), Some(g.clone()));
        }
        let groups: Vec<Group> = by_key
            .into_iter()
            .map(|(key, analysis)| {
                let rates = rates.get(&key).cloned().unwrap_or_default();
                let theory_k = match &analysis {
                    Some(a) => a.theory_k,
                    None if rates.iter().all(|r| r.tau.is_finite()) => {
                        crate::theory::predicted_best_k(key.n, rates.iter().map(|r| (r.k, r.tau)))
                    }
                    None => None,
                };
                Group {
                    key,
                    analysis,
                    theory_k,
                    rates,
                }
            })
            .collect();
        let mut scalings: BTreeMap<Family, Scaling> = analysis
            .scaling
            .into_iter()
            .map(|(dataset, s)| {
                let family = Family {
                    dataset,
                    settings: s.settings.clone(),
                };
                (family, s)
            })
            .collect();
        let varying = varying_settings(groups.iter().map(|g| &g.key));
        let mut families: BTreeMap<Family, Vec<usize>> = BTreeMap::new();
        for (i, g) in groups.iter().enumerate() {
            families.entry(Family::of(&g.key)).or_default().push(i);
        }
        let panels = families
            .into_iter()
            .map(|(family, mut members)| {
                members.sort_by_key(|&i| groups[i].key.n);
                let shown: Vec<&str> = family
                    .settings
                    .iter()
                    .filter(|s| varying.contains(setting_name(s)))
                    .map(String::as_str)
                    .collect();
                let title = std::iter::once(family.dataset.as_str())
                    .chain(shown)
                    .collect::<Vec<_>>()
                    .join(", ");
                Panel {
                    scaling: scalings.remove(&family),
                    family,
                    title,
                    groups: members,
                }
            })
            .collect();
        let ns: BTreeSet<u32> = groups.iter().map(|g| g.key.n).collect();
        Ok(Self {
            metric,
            groups,
            panels,
            ns: ns.into_iter().collect(),
            analysed,
            varying,
        })
    }

    /// `dataset N=16 loss=nce`: the group's dataset, N and the settings that differ between
    /// groups.
    pub(crate) fn label(&self, key: &GroupKey) -> String {
        std::iter::once(format!("{} N={}", key.dataset, key.n))
            .chain(
                key.settings
                    .iter()
                    .filter(|s| self.varying.contains(setting_name(s)))
                    .cloned(),
            )
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The colour index of `n`.
    pub(crate) fn n_index(&self, n: u32) -> usize {
        self.ns.binary_search(&n).unwrap_or(0)
    }
}

/// `loss` of `loss=nce`.
fn setting_name(setting: &str) -> &str {
    setting.split_once('=').map_or(setting, |(name, _)| name)
}

/// The names of the settings that take more than one value among `keys`.
fn varying_settings<'a>(keys: impl Iterator<Item = &'a GroupKey>) -> BTreeSet<String> {
    let mut values: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for key in keys {
        for s in &key.settings {
            let (name, value) = s.split_once('=').unwrap_or((s, ""));
            values.entry(name).or_default().insert(value);
        }
    }
    values
        .into_iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(name, _)| name.to_owned())
        .collect()
}

/// Per group and k: the means over the rows of the collision and coverage columns (missing
/// columns, as in a table written before one existed, read as NaN).
fn rates(batches: &[RecordBatch]) -> Result<BTreeMap<GroupKey, Vec<Rates>>> {
    const COLUMNS: [&str; 4] = [
        "collision_rate",
        "coverage_rate",
        "tau_k",
        "coverage_theory",
    ];
    // (group, k) -> (sum, count) per column
    let mut sums: BTreeMap<GroupKey, BTreeMap<u32, [(f64, u32); 4]>> = BTreeMap::new();
    for b in batches {
        let keys = analyze::row_keys(b)?;
        let k = b
            .column_by_name("k")
            .ok_or_else(|| crate::Error::data("results", "no `k` column"))?;
        let k = arrow::compute::cast(k, &DataType::UInt32)?;
        let k = k.as_primitive::<UInt32Type>();
        let columns: Vec<Option<arrow::array::ArrayRef>> = COLUMNS
            .iter()
            .map(|c| {
                b.column_by_name(c)
                    .map(|a| arrow::compute::cast(a, &DataType::Float64))
                    .transpose()
            })
            .collect::<std::result::Result<_, _>>()?;
        for (i, key) in keys.into_iter().enumerate() {
            let cell = sums
                .entry(key)
                .or_default()
                .entry(k.value(i))
                .or_insert([(0.0, 0); 4]);
            for (slot, column) in cell.iter_mut().zip(&columns) {
                let Some(column) = column else { continue };
                let values = column.as_primitive::<Float64Type>();
                if values.is_valid(i) && values.value(i).is_finite() {
                    slot.0 += values.value(i);
                    slot.1 += 1;
                }
            }
        }
    }
    let mean = |(sum, count): (f64, u32)| {
        if count == 0 {
            f64::NAN
        } else {
            sum / f64::from(count)
        }
    };
    Ok(sums
        .into_iter()
        .map(|(key, by_k)| {
            let rows = by_k
                .into_iter()
                .map(|(k, s)| Rates {
                    k,
                    collision: mean(s[0]),
                    coverage: mean(s[1]),
                    tau: mean(s[2]),
                    coverage_theory: mean(s[3]),
                })
                .collect();
            (key, rows)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_has_an_axis_label() {
        for (name, higher) in analyze::METRICS {
            let m = Metric::named(name).unwrap();
            assert_ne!(m.label, *name, "{name} has a label with its unit");
            assert_eq!(m.higher, *higher);
        }
        assert!(Metric::named("nonsense").is_err());
    }

    #[test]
    fn only_settings_that_vary_name_a_panel() {
        let key = |loss: &str, lr: &str| GroupKey {
            dataset: "d".into(),
            n: 4,
            settings: vec![format!("loss={loss}"), format!("lr={lr}")],
        };
        let keys = [key("nce", "0.01"), key("infonce", "0.01")];
        let varying = varying_settings(keys.iter());
        assert_eq!(varying.into_iter().collect::<Vec<_>>(), ["loss"]);
        assert_eq!(setting_name("lr=0.01"), "lr");
    }
}

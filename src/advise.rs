//! The advisor: from a dataset's measured class frequencies, the collision-coverage trade-off
//! at each k and the range of k the theory recommends.

use std::fmt::Write as _;

use arrow::array::AsArray;
use arrow::datatypes::UInt32Type;

use crate::storage::{StorageSettings, Store, read_parquet_columns};
use crate::{Error, Result, theory};

/// The theory at one k.
#[derive(Debug, Clone, PartialEq)]
pub struct AdviceRow {
    /// Negatives per anchor.
    pub k: u32,
    /// Probability of at least one same-concept negative.
    pub tau_k: f64,
    /// Expected same-concept negatives.
    pub expected_collisions: f64,
    /// Expected fraction of the other concepts the negatives hit.
    pub covered_fraction: f64,
    /// Probability the negatives hit every other concept.
    pub coverage: f64,
    /// Ash et al.'s bound coefficient.
    pub ash: f64,
    /// Arora et al.'s coefficient.
    pub arora: f64,
}

/// The trade-off over a list of k, and the recommendation.
#[derive(Debug, Clone, PartialEq)]
pub struct Advice {
    /// Concepts with at least one example.
    pub n: u32,
    /// Examples.
    pub examples: u64,
    /// The inverse Simpson index `1 / sum rho^2`: N for balanced classes, less when skewed.
    pub effective_n: f64,
    /// Expected uniform draws until every concept has been seen.
    pub draws_to_cover: f64,
    /// One row per k, ascending.
    pub rows: Vec<AdviceRow>,
    /// The k with the smallest Ash et al. coefficient.
    pub best_k: u32,
    /// Smallest and largest k whose coefficient is within `TOLERANCE` of the best.
    pub range: (u32, u32),
}

/// How far above its minimum the bound coefficient may be inside the recommended range.
pub const TOLERANCE: f64 = 0.25;

/// The theory for concepts with these example counts (zeros ignored), at each of `ks`.
pub fn advise(counts: &[u64], ks: &[u32]) -> Result<Advice> {
    let counts: Vec<u64> = counts.iter().copied().filter(|&c| c > 0).collect();
    if counts.len() < 2 {
        return Err(Error::data(
            "class counts",
            format!(
                "the theory needs at least 2 concepts with examples, got {}",
                counts.len()
            ),
        ));
    }
    let total: u64 = counts.iter().sum();
    let rho: Vec<f64> = counts.iter().map(|&c| c as f64 / total as f64).collect();
    let n = counts.len() as u32;
    let balanced = counts.iter().all(|&c| c == counts[0]);
    let mut ks = ks.to_vec();
    ks.sort_unstable();
    ks.dedup();
    let rows: Vec<AdviceRow> = ks
        .iter()
        .map(|&k| {
            let tau_k = theory::collision_probability(&rho, k);
            let coverage = if balanced {
                theory::coverage_probability(n, k)
            } else {
                theory::coverage_probability_counts(&counts, k)
            };
            AdviceRow {
                k,
                tau_k,
                expected_collisions: theory::expected_collisions(&rho, k),
                covered_fraction: theory::expected_covered_fraction(&rho, k),
                coverage,
                ash: theory::ash_coefficient(n, k, tau_k),
                arora: theory::arora_coefficient(tau_k, coverage),
            }
        })
        .collect();
    let best = rows
        .iter()
        .min_by(|a, b| a.ash.total_cmp(&b.ash))
        .ok_or_else(|| Error::data("class counts", "no k to evaluate"))?;
    let limit = best.ash * (1.0 + TOLERANCE);
    let within: Vec<u32> = rows
        .iter()
        .filter(|r| r.ash <= limit)
        .map(|r| r.k)
        .collect();
    Ok(Advice {
        n,
        examples: total,
        effective_n: 1.0 / rho.iter().map(|r| r * r).sum::<f64>(),
        draws_to_cover: theory::expected_draws_to_cover_rho(&rho),
        best_k: best.k,
        range: (within[0], within[within.len() - 1]),
        rows,
    })
}

/// Powers of two from 1 to at least 16 N (at most 2^20).
pub fn default_ks(n: u32) -> Vec<u32> {
    let top = (16 * u64::from(n)).clamp(1024, 1 << 20);
    std::iter::successors(Some(1u32), |k| Some(k * 2))
        .take_while(|&k| u64::from(k) <= top)
        .collect()
}

impl Advice {
    /// The table and the recommendation with its reason, as printed by `negsweep advise`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let examples = if self.examples == u64::from(self.n) {
            "uniform".to_owned()
        } else {
            format!("{} examples", self.examples)
        };
        let _ = writeln!(
            out,
            "N = {} concepts, {examples}; effective N (1 / sum rho^2) = {:.1}; {:.0} draws see every concept on average\n",
            self.n, self.effective_n, self.draws_to_cover
        );
        let _ = writeln!(
            out,
            "{:>7} {:>8} {:>11} {:>8} {:>9} {:>10} {:>10}",
            "k", "tau_k", "E[collide]", "covered", "coverage", "Ash coef", "Arora coef"
        );
        let coef = |x: f64| {
            if x >= 1e6 {
                format!("{x:.2e}")
            } else {
                format!("{x:.2}")
            }
        };
        for r in &self.rows {
            let mark = if r.k == self.best_k {
                "  <- k*"
            } else if (self.range.0..=self.range.1).contains(&r.k) {
                "  <- in range"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "{:>7} {:>8.4} {:>11.3} {:>8.3} {:>9.4} {:>10} {:>10}{mark}",
                r.k,
                r.tau_k,
                r.expected_collisions,
                r.covered_fraction,
                r.coverage,
                coef(r.ash),
                coef(r.arora)
            );
        }
        let at = |k: u32| self.rows.iter().find(|r| r.k == k).expect("a listed k");
        let (lo, hi, best) = (at(self.range.0), at(self.range.1), at(self.best_k));
        let _ = writeln!(
            out,
            "\nRecommended k: {} to {} (best {}): Ash et al.'s bound coefficient is within {:.0}% of its minimum there.",
            lo.k,
            hi.k,
            best.k,
            TOLERANCE * 100.0
        );
        if let Some(below) = self.rows.iter().rev().find(|r| r.k < lo.k) {
            let _ = writeln!(
                out,
                "Fewer (coverage): at k = {} the negatives see {:.0}% of the other concepts per anchor, all of them with probability {:.3}.",
                below.k,
                below.covered_fraction * 100.0,
                below.coverage
            );
        }
        if let Some(above) = self.rows.iter().find(|r| r.k > hi.k) {
            let _ = writeln!(
                out,
                "More (collision): at k = {}, {:.0}% of anchors get a negative of their own concept ({:.1} on average), and the bound grows as 1 / (1 - tau_k).",
                above.k,
                above.tau_k * 100.0,
                above.expected_collisions
            );
        }
        out
    }
}

/// Example counts per concept of an ingested dataset: `location` is its folder (holding
/// `examples.parquet`) or the file, as a path or URL. Reads only the `label` column.
pub async fn label_counts(location: &str) -> Result<Vec<u64>> {
    let file = if location.trim_end_matches('/').ends_with(".parquet") {
        location.trim_end_matches('/').to_owned()
    } else {
        format!("{}/examples.parquet", location.trim_end_matches('/'))
    };
    // No pipeline here, so no `[storage]`: the defaults.
    let (store, rel) = Store::open_file(&file, &StorageSettings::default())?;
    if !store.exists(&rel).await? {
        return Err(Error::data(
            store.display(&rel),
            "no ingested examples here: give a dataset folder under `datasets/` of a run's output, or its examples.parquet",
        ));
    }
    let mut counts: Vec<u64> = Vec::new();
    for batch in read_parquet_columns(&store, &rel, &["label"]).await? {
        let col = batch.column(0);
        let labels = col.as_primitive_opt::<UInt32Type>().ok_or_else(|| {
            Error::data(
                store.display(&rel),
                "not an ingested dataset (its `label` column holds no concept indices): give \
                     a pipeline file (`negsweep advise PIPELINE.toml`) or a dataset's folder \
                     under a run's `datasets/`",
            )
        })?;
        for l in labels.iter().flatten() {
            let l = l as usize;
            if l >= counts.len() {
                counts.resize(l + 1, 0);
            }
            counts[l] += 1;
        }
    }
    Ok(counts)
}

/// Per-concept counts from text: numbers separated by whitespace, commas or new lines (a line
/// `name,count` keeps its last field; `#` starts a comment). Integers are counts; otherwise the
/// values are frequencies, turned into counts at a resolution of 1e-6.
pub fn parse_counts(text: &str, location: &str) -> Result<Vec<u64>> {
    let mut values = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|f| !f.is_empty())
            .collect();
        // `name,count` rows keep the count; plain rows may hold several numbers.
        let numeric: Vec<&str> = if fields.iter().all(|f| f.parse::<f64>().is_ok()) {
            fields
        } else {
            fields.last().copied().into_iter().collect()
        };
        for f in numeric {
            let v: f64 = f.parse().map_err(|_| {
                Error::data(location, format!("line {}: `{f}` is not a number", i + 1))
            })?;
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::data(
                    location,
                    format!("line {}: `{f}` is not a non-negative number", i + 1),
                ));
            }
            values.push(v);
        }
    }
    if values.iter().all(|v| v.fract() == 0.0) {
        return Ok(values.into_iter().map(|v| v as u64).collect());
    }
    let total: f64 = values.iter().sum();
    Ok(values
        .into_iter()
        .map(|v| (v / total * 1e6).round() as u64)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_advice_centres_on_the_theory_k_star() {
        let a = advise(&[30; 64], &default_ks(64)).unwrap();
        assert_eq!(a.n, 64);
        assert!((a.effective_n - 64.0).abs() < 1e-9);
        let ks: Vec<u32> = a.rows.iter().map(|r| r.k).collect();
        let rho = vec![1.0 / 64.0; 64];
        let want = theory::predicted_best_k(
            64,
            ks.iter()
                .map(|&k| (k, theory::collision_probability(&rho, k))),
        );
        assert_eq!(Some(a.best_k), want);
        assert!(a.range.0 <= a.best_k && a.best_k <= a.range.1);
        let text = a.render();
        assert!(
            text.contains("Recommended k") && text.contains("<- k*"),
            "{text}"
        );
    }

    #[test]
    fn skewed_counts_lower_effective_n_and_need_two_concepts() {
        let a = advise(&[1000, 10, 10, 10, 0], &[1, 4, 16]).unwrap();
        assert_eq!(a.n, 4);
        assert!(a.effective_n < 1.1, "{}", a.effective_n);
        assert!(advise(&[5, 0], &[1]).is_err());
    }

    #[test]
    fn counts_parse_from_lists_and_named_rows() {
        assert_eq!(
            parse_counts("3 4\n5,6\n# note\n", "f").unwrap(),
            vec![3, 4, 5, 6]
        );
        assert_eq!(parse_counts("cat,10\ndog,30\n", "f").unwrap(), vec![10, 30]);
        assert_eq!(
            parse_counts("0.25\n0.75\n", "f").unwrap(),
            vec![250_000, 750_000]
        );
        let err = parse_counts("1\n-2\n", "f.txt").unwrap_err().to_string();
        assert!(err.contains("f.txt") && err.contains("line 2"), "{err}");
    }
}

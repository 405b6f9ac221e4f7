//! The tests behind a round's decisions: whether a k is worse than the best (the pooled
//! two-way model's contrast, or each k's paired t-test) and whether the full budget's test
//! could still tell it apart from the best (predictive power).

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// The two-way (k + seed) fit of a round's values, `values[k][seed]` with every k at the same
/// seeds, oriented so that higher is better: each k's mean and the residual variance pooled
/// over all cells with its degrees of freedom, `(K - 1)(n - 1)` (the randomized complete
/// block design; Montgomery, "Design and Analysis of Experiments", section 4.1).
pub(super) struct Blocks {
    pub(super) means: Vec<f64>,
    /// Residual variance, the per-point noise once each seed's shared effect is removed.
    pub(super) sigma2: f64,
    pub(super) df: usize,
    pub(super) seeds: usize,
}

impl Blocks {
    pub(super) fn fit(values: &[Vec<f64>], higher_is_better: bool) -> Self {
        let sign = if higher_is_better { 1.0 } else { -1.0 };
        let (k, n) = (values.len(), values.first().map_or(0, Vec::len));
        let mean = |xs: &mut dyn Iterator<Item = f64>, len: usize| xs.sum::<f64>() / len as f64;
        let means: Vec<f64> = values
            .iter()
            .map(|v| sign * mean(&mut v.iter().copied(), n))
            .collect();
        let seed_means: Vec<f64> = (0..n)
            .map(|j| sign * mean(&mut values.iter().map(|v| v[j]), k))
            .collect();
        let grand = mean(&mut means.iter().copied(), k);
        let rss: f64 = values
            .iter()
            .zip(&means)
            .flat_map(|(v, m)| {
                v.iter()
                    .zip(&seed_means)
                    .map(move |(y, sm)| (sign * y - m - sm + grand).powi(2))
            })
            .sum();
        let df = (k.saturating_sub(1)) * (n.saturating_sub(1));
        Self {
            means,
            sigma2: if df > 0 { rss / df as f64 } else { f64::NAN },
            df,
            seeds: n,
        }
    }

    /// Standard deviation of one seed's difference between two k values: `sqrt(2 sigma^2)`.
    fn sd_diff(&self) -> f64 {
        (2.0 * self.sigma2).sqrt()
    }
}

impl Blocks {
    /// Holm-adjusted p-values, one per k (1 for `best`), of the pooled contrast test that the
    /// k is worse than `best`'s by more than `margin`: t = (deficit - margin) / sqrt(2 sigma^2
    /// / n) on the two-way model's `(K - 1)(n - 1)` degrees of freedom; one-sided, doubled as
    /// [`drop_p`]'s. No residual spread gives 1 (no evidence), too few seeds NaN.
    pub(super) fn drop_p(&self, best: usize, margin: f64) -> Vec<f64> {
        let t = StudentsT::new(0.0, 1.0, self.df as f64).ok();
        let se = (2.0 * self.sigma2 / self.seeds as f64).sqrt();
        let raw: Vec<f64> = (0..self.means.len())
            .filter(|&i| i != best)
            .map(|i| match &t {
                None => f64::NAN,
                Some(_) if self.sigma2 == 0.0 => 1.0,
                Some(t) => {
                    let stat = (self.means[best] - self.means[i] - margin) / se;
                    (2.0 * (1.0 - t.cdf(stat))).min(1.0)
                }
            })
            .collect();
        holm_beside(&raw, best)
    }

    /// Per k (0 for `best`): the predictive power that, once every k has all `budget` seeds,
    /// the two-sided 5% test of its difference from `best` rejects, given the seeds fitted so
    /// far (the current difference as the trend, its uncertainty from a flat prior;
    /// Spiegelhalter, Freedman and Blackburn 1986). With `d` the mean difference, `sd` one
    /// seed's difference's standard deviation (the two-way model's), `n` the seeds so far and
    /// `S` the budget: the final mean is normal around `d` with standard deviation
    /// `sd sqrt((S - n) / S^2 + ((S - n) / S)^2 / n)`, and rejects beyond `c sd / sqrt(S)`, `c`
    /// the t quantile on `S - 1` degrees of freedom (the final test is the analysis's paired
    /// one). No spread: 1 when the difference is not 0, else 0.
    pub(super) fn apart_power(&self, best: usize, budget: usize) -> Vec<f64> {
        let sd = self.sd_diff();
        let c = StudentsT::new(0.0, 1.0, budget.saturating_sub(1).max(1) as f64)
            .map_or(f64::NAN, |t| t.inverse_cdf(0.975));
        let normal = Normal::new(0.0, 1.0).expect("the standard normal");
        let (n, big) = (self.seeds as f64, budget as f64);
        let bound = c * sd / big.sqrt();
        (0..self.means.len())
            .map(|i| {
                let d = self.means[best] - self.means[i];
                if i == best {
                    0.0
                } else if sd == 0.0 || sd.is_nan() {
                    if d != 0.0 { 1.0 } else { 0.0 }
                } else if self.seeds >= budget {
                    if d.abs() > bound { 1.0 } else { 0.0 }
                } else {
                    let scale =
                        sd * ((big - n) / (big * big) + ((big - n) / big).powi(2) / n).sqrt();
                    normal.cdf((d - bound) / scale) + normal.cdf((-d - bound) / scale)
                }
            })
            .collect()
    }
}

/// Holm-adjusted p-values, one per row of `values` (1 for `best`), of the paired t-test that
/// the row's k is worse than `best`'s by more than `margin` (the per-seed deficit's mean above
/// `margin`; one-sided, doubled so that a margin of 0 gives the analysis's two-sided p).
/// Per-seed deficits that are all equal give 1: no spread, no evidence.
pub(super) fn drop_p(
    values: &[Vec<f64>],
    best: usize,
    higher_is_better: bool,
    margin: f64,
) -> Vec<f64> {
    let raw: Vec<f64> = (0..values.len())
        .filter(|&i| i != best)
        .map(|i| {
            let deficits: Vec<f64> = values[i]
                .iter()
                .zip(&values[best])
                .map(|(v, b)| if higher_is_better { b - v } else { v - b })
                .collect();
            crate::analyze::worse_by_p(&deficits, margin)
        })
        .collect();
    holm_beside(&raw, best)
}

/// `raw` (one p per k but `best`, in order) Holm-adjusted, with 1 put in `best`'s place.
fn holm_beside(raw: &[f64], best: usize) -> Vec<f64> {
    let mut adjusted = crate::analyze::holm(raw);
    adjusted.insert(best.min(adjusted.len()), 1.0);
    adjusted
}

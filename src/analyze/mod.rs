//! The answer with its uncertainty: per group of points that differ only by k and seed, each k's
//! mean over the seeds with its intervals, paired comparisons with the best k, the probability
//! that each k is the best, the one-standard-error k and the best set.
//!
//! Seeds are shared across k (the same split and pool rows), so comparisons are paired, seed by
//! seed. Methods:
//! - t-interval: mean +- t(0.975, s - 1) x sd / sqrt(s) over the s seeds;
//! - bootstrap: `resamples` resamples of the seeds with replacement (one resample of seed
//!   indices shared by every k, so the comparison stays paired), seeded; the percentile interval
//!   of each k's mean, and P(k is best) as the fraction of resamples in which k has the best mean
//!   (ties share the credit equally);
//! - paired comparison with the best k: the mean of the per-seed differences, its t-interval and
//!   the two-sided paired t-test; p-values are adjusted for the K - 1 comparisons by Holm's
//!   step-down method (Holm 1979), which controls the family-wise error rate;
//! - best set: the best k and every k whose Holm-adjusted p is at least `alpha`, i.e. that cannot
//!   be told apart from the best;
//! - one-standard-error k: the smallest k whose mean is within one standard error of the best
//!   mean (Hastie, Tibshirani and Friedman, Elements of Statistical Learning, section 7.10).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// The statistics of one k in one group.
#[derive(Debug, Clone, PartialEq)]
pub struct KStats {
    /// Negatives per anchor.
    pub k: u32,
    /// Seeds.
    pub seeds: usize,
    /// Mean of the metric over the seeds.
    pub mean: f64,
    /// Sample standard deviation (n - 1).
    pub sd: f64,
    /// Standard error of the mean.
    pub se: f64,
    /// 95% t-interval of the mean.
    pub t_ci: (f64, f64),
    /// 95% percentile bootstrap interval of the mean.
    pub boot_ci: (f64, f64),
    /// Mean of the per-seed differences from the best k (0 for the best).
    pub diff: f64,
    /// 95% t-interval of that difference.
    pub diff_ci: (f64, f64),
    /// Holm-adjusted two-sided p-value of the paired t-test against the best (1 for the best).
    pub p_holm: f64,
    /// Fraction of bootstrap resamples in which this k has the best mean.
    pub p_best: f64,
    /// Whether this k cannot be told apart from the best.
    pub in_best_set: bool,
}

/// The analysis of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupAnalysis {
    /// One row per k, ascending.
    pub rows: Vec<KStats>,
    /// The k of the best mean.
    pub best_k: u32,
    /// The smallest k within one standard error of the best mean.
    pub one_se_k: u32,
    /// Bootstrap resamples used.
    pub resamples: usize,
    /// The theory's k* among the group's k: the k minimising Ash et al.'s coefficient
    /// (Ash et al. 2021, Theorem 3) with the measured collision probability `tau_k`; `None`
    /// where unknown.
    pub theory_k: Option<u32>,
    /// The seeds analysed, ascending (positions 0.. when built from bare cells).
    pub seed_ids: Vec<u64>,
    /// Every k of the group's grid, ascending: the k values of `rows` and those the analysis
    /// has no row for (dropped by an adaptive round, or without a result yet). The best set is
    /// printed as a range only where it holds every one of them between its ends.
    pub grid: Vec<u32>,
}

/// Selection on held-out seeds: k chosen on the selection seeds, judged on the held-out ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Holdout {
    /// Seeds k was chosen on.
    pub selection_seeds: Vec<u64>,
    /// Held-out seeds.
    pub held_out_seeds: Vec<u64>,
    /// The k with the best mean on the selection seeds.
    pub k: u32,
    /// Its mean on the selection seeds (biased in its favour: it won there).
    pub selection_mean: f64,
    /// Its mean on the held-out seeds: the unbiased estimate of the chosen k's metric.
    pub held_out_mean: f64,
    /// 95% t-interval of the held-out mean (NaN with one held-out seed).
    pub held_out_ci: (f64, f64),
}

/// Chooses k on every seed but the last `holdout` (of `seeds`, ascending) and measures it on
/// those; `None` when fewer than one selection seed would remain or `holdout` is 0.
/// `values[i][s]` as in [`analyse`].
pub fn holdout(
    ks: &[u32],
    values: &[Vec<f64>],
    seeds: &[u64],
    higher_is_better: bool,
    holdout: usize,
) -> Option<Holdout> {
    let n = seeds.len();
    if holdout == 0 || holdout >= n {
        return None;
    }
    let cut = n - holdout;
    let sign = if higher_is_better { 1.0 } else { -1.0 };
    let selection: Vec<f64> = values.iter().map(|v| mean(&v[..cut])).collect();
    let best = best_index(&selection.iter().map(|m| sign * m).collect::<Vec<_>>())?;
    let held = &values[best][cut..];
    let (m, se) = (mean(held), sd(held) / (held.len() as f64).sqrt());
    let t = t975(held.len().saturating_sub(1));
    Some(Holdout {
        selection_seeds: seeds[..cut].to_vec(),
        held_out_seeds: seeds[cut..].to_vec(),
        k: ks[best],
        selection_mean: selection[best],
        held_out_mean: m,
        held_out_ci: (m - t * se, m + t * se),
    })
}

impl GroupAnalysis {
    /// `k* = 32, best set 16..64, ...`: see [`best_set_text`] for the best set.
    pub fn verdict(&self) -> String {
        let set: Vec<u32> = self
            .rows
            .iter()
            .filter(|r| r.in_best_set)
            .map(|r| r.k)
            .collect();
        let theory = self
            .theory_k
            .map(|k| format!(" (theory k* = {k})"))
            .unwrap_or_default();
        format!(
            "k* = {}, best set {}, one-standard-error k = {}{theory}",
            self.best_k,
            best_set_text(&set, &self.grid),
            self.one_se_k
        )
    }
}

/// A best set for people: `16..64` where `set` holds every k of `grid` from its smallest to
/// its largest, else every k listed (`16, 64`), so that a range never takes in a k of the grid
/// outside the set (such as one an adaptive round dropped, which has no row of its own). Both
/// ascending; a k of `set` missing from `grid` counts as part of it.
pub fn best_set_text(set: &[u32], grid: &[u32]) -> String {
    let (Some(&lo), Some(&hi)) = (set.first(), set.last()) else {
        return String::new();
    };
    if set.len() == 1 {
        return lo.to_string();
    }
    let whole = grid
        .iter()
        .filter(|&&k| k > lo && k < hi)
        .all(|k| set.contains(k));
    if whole {
        format!("{lo}..{hi}")
    } else {
        set.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Means this close (relative) are equal. Accuracies are multiples of 1 / test examples, so
/// true ties are common, and their float means can differ in the last bits by summation order.
const TIE: f64 = 1e-9;

fn tied(a: f64, b: f64) -> bool {
    (a - b).abs() <= TIE * a.abs().max(b.abs())
}

/// The index of the largest of `scores`; ties (within [`TIE`]) go to the smallest index.
pub(crate) fn best_index(scores: &[f64]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, &x) in scores.iter().enumerate() {
        match best {
            Some(b) if x <= scores[b] || tied(x, scores[b]) => {}
            _ => best = Some(i),
        }
    }
    best
}

pub(crate) fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

fn sd(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return f64::NAN;
    }
    let m = mean(xs);
    (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt()
}

/// The 97.5% quantile of Student's t with `df` degrees of freedom (NaN below 1).
fn t975(df: usize) -> f64 {
    StudentsT::new(0.0, 1.0, df as f64).map_or(f64::NAN, |t| t.inverse_cdf(0.975))
}

/// p-value, doubled to compare with [`paired_p`]'s two-sided one, of the one-sided paired
/// t-test that `deficits` (per seed, positive = worse) average more than `margin`: NaN below two
/// seeds, 1 when they are all equal (no spread, no evidence). With `margin = 0` and a positive
/// mean it is `paired_p` of the differences.
pub(crate) fn worse_by_p(deficits: &[f64], margin: f64) -> f64 {
    let (m, s) = (mean(deficits), sd(deficits));
    if deficits.len() < 2 {
        return f64::NAN;
    }
    if s == 0.0 {
        return 1.0;
    }
    let t = (m - margin) / (s / (deficits.len() as f64).sqrt());
    StudentsT::new(0.0, 1.0, (deficits.len() - 1) as f64)
        .map_or(f64::NAN, |d| (2.0 * (1.0 - d.cdf(t))).min(1.0))
}

/// Two-sided p-value of a paired t-test on `diffs` (1 when every difference is 0; 0 when they
/// are all equal and not 0).
fn paired_p(diffs: &[f64]) -> f64 {
    let (m, s) = (mean(diffs), sd(diffs));
    if diffs.len() < 2 {
        return f64::NAN;
    }
    if s == 0.0 {
        return if m == 0.0 { 1.0 } else { 0.0 };
    }
    let t = m / (s / (diffs.len() as f64).sqrt());
    StudentsT::new(0.0, 1.0, (diffs.len() - 1) as f64)
        .map_or(f64::NAN, |d| 2.0 * (1.0 - d.cdf(t.abs())))
}

/// Holm's step-down adjustment of `p` (NaN stays NaN).
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut adjusted = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        let a = ((m - rank) as f64 * p[i]).min(1.0);
        running = running.max(a);
        adjusted[i] = if p[i].is_nan() { f64::NAN } else { running };
    }
    adjusted
}

/// Analyses one group: `values[i][s]` is the metric of `ks[i]` at seed `s` (every k the same
/// seeds, in the same order). `higher_is_better` is false for losses.
///
/// # Panics
/// If `values` is empty or its rows differ in length (the caller keeps complete seeds only).
pub fn analyse(
    ks: &[u32],
    values: &[Vec<f64>],
    higher_is_better: bool,
    resamples: usize,
    seed: u64,
    alpha: f64,
) -> GroupAnalysis {
    let seeds = values[0].len();
    assert!(
        values.iter().all(|v| v.len() == seeds),
        "complete seeds only"
    );
    let sign = if higher_is_better { 1.0 } else { -1.0 };
    let means: Vec<f64> = values.iter().map(|v| mean(v)).collect();
    let signed: Vec<f64> = means.iter().map(|m| sign * m).collect();
    let best = best_index(&signed).expect("at least one k");
    // Bootstrap: one resample of seed indices for every k.
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut boot_means = vec![Vec::with_capacity(resamples); ks.len()];
    let mut wins = vec![0.0; ks.len()];
    let mut pick = vec![0usize; seeds];
    for _ in 0..resamples {
        pick.iter_mut()
            .for_each(|p| *p = rng.random_range(0..seeds));
        let m: Vec<f64> = values
            .iter()
            .map(|v| pick.iter().map(|&s| v[s]).sum::<f64>() / seeds as f64)
            .collect();
        let top = m.iter().map(|x| sign * x).fold(f64::NEG_INFINITY, f64::max);
        let winners: Vec<usize> = (0..ks.len()).filter(|&i| tied(sign * m[i], top)).collect();
        for &i in &winners {
            wins[i] += 1.0 / winners.len() as f64;
        }
        for (i, x) in m.into_iter().enumerate() {
            boot_means[i].push(x);
        }
    }
    let percentile = |xs: &mut Vec<f64>, q: f64| {
        xs.sort_by(f64::total_cmp);
        let pos = q * (xs.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        xs[lo] + (xs[hi] - xs[lo]) * (pos - lo as f64)
    };
    let t = t975(seeds.saturating_sub(1));
    let raw_p: Vec<f64> = (0..ks.len())
        .filter(|&i| i != best)
        .map(|i| {
            let d: Vec<f64> = (0..seeds).map(|s| values[i][s] - values[best][s]).collect();
            paired_p(&d)
        })
        .collect();
    let adjusted = holm(&raw_p);
    let mut others = adjusted.into_iter();
    let rows: Vec<KStats> = (0..ks.len())
        .map(|i| {
            let s = sd(&values[i]);
            let se = s / (seeds as f64).sqrt();
            let d: Vec<f64> = (0..seeds).map(|j| values[i][j] - values[best][j]).collect();
            let (dm, dse) = (mean(&d), sd(&d) / (seeds as f64).sqrt());
            let p_holm = if i == best {
                1.0
            } else {
                others.next().expect("one p per other k")
            };
            let mut b = std::mem::take(&mut boot_means[i]);
            let boot_ci = if resamples > 0 {
                (percentile(&mut b, 0.025), percentile(&mut b, 0.975))
            } else {
                (f64::NAN, f64::NAN)
            };
            KStats {
                k: ks[i],
                seeds,
                mean: means[i],
                sd: s,
                se,
                t_ci: (means[i] - t * se, means[i] + t * se),
                boot_ci,
                diff: dm,
                diff_ci: if i == best {
                    (0.0, 0.0)
                } else {
                    (dm - t * dse, dm + t * dse)
                },
                p_holm,
                p_best: if resamples > 0 {
                    wins[i] / resamples as f64
                } else {
                    f64::NAN
                },
                // A NaN p (one seed) cannot tell k apart from the best either.
                in_best_set: i == best || p_holm >= alpha || p_holm.is_nan(),
            }
        })
        .collect();
    let best_mean = means[best];
    let best_se = rows[best].se;
    let one_se_k = rows
        .iter()
        .filter(|r| sign * (best_mean - r.mean) <= best_se || r.k == ks[best])
        .map(|r| r.k)
        .min()
        .expect("the best k qualifies");
    GroupAnalysis {
        rows,
        best_k: ks[best],
        one_se_k,
        resamples,
        theory_k: None,
        seed_ids: (0..seeds as u64).collect(),
        grid: ks.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn t_intervals_match_hand_computed_values() {
        // Seeds 1, 2, 3: mean 2, sd 1, se 1/sqrt(3); t(0.975, 2) = 4.302652729911275.
        let g = analyse(
            &[1, 2],
            &[vec![1.0, 2.0, 3.0], vec![0.0, 0.0, 0.0]],
            true,
            0,
            0,
            0.05,
        );
        let r = &g.rows[0];
        assert!(close(r.mean, 2.0, 1e-12) && close(r.sd, 1.0, 1e-12));
        assert!(close(r.se, 1.0 / 3f64.sqrt(), 1e-12));
        let half = 4.302652729911275 / 3f64.sqrt();
        assert!(close(r.t_ci.0, 2.0 - half, 1e-9), "{:?}", r.t_ci);
        assert!(close(r.t_ci.1, 2.0 + half, 1e-9), "{:?}", r.t_ci);
    }

    #[test]
    fn paired_test_and_holm_match_hand_computed_values() {
        // Differences 1, 2, 3 from the best: mean 2, se 1/sqrt(3), t = 2 sqrt(3) = 3.4641 on 2
        // degrees of freedom: two-sided p = 0.07417990022744853 (1 - t-cdf, by hand:
        // p = 1 - t / sqrt(2 + t^2) for 2 df).
        let t = 2.0 * 3f64.sqrt();
        let want = 1.0 - t / (2.0 + t * t).sqrt();
        assert!(close(paired_p(&[1.0, 2.0, 3.0]), want, 1e-9));
        // Holm: p = (0.01, 0.04, 0.03) -> sorted 0.01 x 3, 0.03 x 2, 0.04 x 1, made monotone.
        let adj = holm(&[0.01, 0.04, 0.03]);
        assert!(close(adj[0], 0.03, 1e-12) && close(adj[2], 0.06, 1e-12));
        assert!(close(adj[1], 0.06, 1e-12), "{adj:?}");
    }

    #[test]
    fn a_clear_winner_is_best_in_every_resample_and_equal_ks_share() {
        let seeds = 6;
        let winner: Vec<Vec<f64>> = (0..4)
            .map(|i| {
                (0..seeds)
                    .map(|s| if i == 2 { 0.9 } else { 0.5 } + 0.001 * s as f64)
                    .collect()
            })
            .collect();
        let g = analyse(&[1, 4, 16, 64], &winner, true, 2000, 7, 0.05);
        assert_eq!(g.best_k, 16);
        assert_eq!(g.rows[2].p_best, 1.0);
        assert!(g.rows.iter().filter(|r| r.k != 16).all(|r| r.p_best == 0.0));
        assert_eq!(
            g.rows.iter().filter(|r| r.in_best_set).count(),
            1,
            "the others are told apart"
        );
        let equal = vec![vec![0.7; seeds]; 4];
        let g = analyse(&[1, 4, 16, 64], &equal, true, 2000, 7, 0.05);
        for r in &g.rows {
            assert!(close(r.p_best, 0.25, 1e-12), "{r:?}");
            assert!(r.in_best_set);
        }
        assert_eq!(g.one_se_k, 1, "the smallest k within one standard error");
    }

    #[test]
    fn the_one_standard_error_k_and_the_verdict() {
        // k = 8 is best (0.80); k = 4 is within one se of it (se 0.02), k = 2 is not.
        let v = vec![
            vec![0.70, 0.72, 0.74],
            vec![0.78, 0.80, 0.82],
            vec![0.78, 0.80, 0.82],
            vec![0.79, 0.81, 0.83],
        ];
        let g = analyse(&[2, 4, 8, 16], &v, true, 500, 1, 0.05);
        assert_eq!(g.best_k, 16);
        assert_eq!(g.one_se_k, 4);
        assert!(
            g.verdict().starts_with("k* = 16, best set "),
            "{}",
            g.verdict()
        );
        // Losses: lower is better.
        let g = analyse(
            &[2, 4],
            &[vec![1.0, 1.1], vec![2.0, 2.1]],
            false,
            100,
            1,
            0.05,
        );
        assert_eq!(g.best_k, 2);
    }

    #[test]
    fn a_best_set_is_a_range_only_where_it_holds_every_k_of_the_grid_inside() {
        assert_eq!(best_set_text(&[4, 8, 16], &[1, 4, 8, 16, 32]), "4..16");
        assert_eq!(best_set_text(&[4, 16], &[1, 4, 8, 16, 32]), "4, 16");
        assert_eq!(best_set_text(&[4, 16], &[4, 16]), "4..16");
        assert_eq!(best_set_text(&[8], &[1, 4, 8]), "8");
        // Equal means: every analysed k is in the best set. k = 8 of the grid has no row (an
        // adaptive round dropped it), so `1..32` would claim it.
        let equal = vec![vec![0.7, 0.71, 0.69]; 5];
        let mut g = analyse(&[1, 2, 4, 16, 32], &equal, true, 0, 0, 0.05);
        assert!(g.verdict().contains("best set 1..32,"), "{}", g.verdict());
        g.grid = vec![1, 2, 4, 8, 16, 32];
        assert!(
            g.verdict().contains("best set 1, 2, 4, 16, 32,"),
            "{}",
            g.verdict()
        );
    }

    #[test]
    fn means_equal_but_for_rounding_are_a_tie_won_by_the_smallest_k() {
        // 71/72 both ways: the float sums differ in the last bit.
        let a = [47.0 / 48.0, 1.0, 47.0 / 48.0];
        let b = [1.0, 1.0, 46.0 / 48.0];
        assert_ne!(mean(&a), mean(&b), "the premise: rounding differs");
        let g = analyse(&[1, 4], &[a.to_vec(), b.to_vec()], true, 3000, 5, 0.05);
        assert_eq!(g.best_k, 1);
        // Exact enumeration of the 27 resamples (in fractions) gives P(best) = 1/2 each.
        let total: f64 = g.rows.iter().map(|r| r.p_best).sum();
        assert!((total - 1.0).abs() < 1e-9);
        assert!((g.rows[0].p_best - 0.5).abs() < 0.04, "{:?}", g.rows);
    }

    #[test]
    fn held_out_seeds_judge_the_k_the_others_chose() {
        // Seeds 10, 11 choose k = 2 (means 0.9 vs 0.8); on seeds 12, 13 it scores 0.6 and 0.8:
        // mean 0.7, se 0.1, t(0.975, 1) = 12.706204736174698.
        let v = vec![vec![0.8, 0.8, 0.9, 0.9], vec![0.9, 0.9, 0.6, 0.8]];
        let h = holdout(&[1, 2], &v, &[10, 11, 12, 13], true, 2).unwrap();
        assert_eq!(h.k, 2);
        assert_eq!(h.selection_seeds, [10, 11]);
        assert_eq!(h.held_out_seeds, [12, 13]);
        assert!(close(h.selection_mean, 0.9, 1e-12));
        assert!(close(h.held_out_mean, 0.7, 1e-12));
        let half = 12.706204736174698 * 0.1;
        assert!(close(h.held_out_ci.0, 0.7 - half, 1e-9), "{h:?}");
        assert!(close(h.held_out_ci.1, 0.7 + half, 1e-9), "{h:?}");
        assert!(holdout(&[1, 2], &v, &[10, 11, 12, 13], true, 4).is_none());
        assert!(holdout(&[1, 2], &v, &[10, 11, 12, 13], true, 0).is_none());
        // Lower is better: k = 1 wins on the selection seeds.
        assert_eq!(
            holdout(&[1, 2], &v, &[10, 11, 12, 13], false, 2).unwrap().k,
            1
        );
    }

    #[test]
    fn bootstrap_intervals_are_seeded_and_cover_the_mean() {
        let v = vec![vec![0.1, 0.5, 0.3, 0.9, 0.4]];
        let a = analyse(&[1], &v, true, 1000, 3, 0.05);
        let b = analyse(&[1], &v, true, 1000, 3, 0.05);
        assert_eq!(a, b, "the same seed, the same intervals");
        let r = &a.rows[0];
        assert!(r.boot_ci.0 < r.mean && r.mean < r.boot_ci.1, "{r:?}");
        assert!(r.boot_ci.0 >= 0.1 && r.boot_ci.1 <= 0.9);
    }
}

mod results;
mod scaling;
mod tables;

pub(crate) use results::row_keys;
pub use results::{
    Grid, GroupKey, METRICS, PerN, analyse_results, grid_of, holdouts, render, render_holdouts,
    render_scaling, scaling_of, verdicts,
};
pub use scaling::{Scaling, scaling};
pub use tables::{Analysis, Options, TABLE_FILES, analyse_table, folder};

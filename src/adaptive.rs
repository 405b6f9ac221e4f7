//! Adaptive sweeps: rounds over each group's k values that stop spending seeds on k values
//! whose answer is settled.
//!
//! Round 1 trains every k of a group (dataset, N and every other setting) at
//! `initial-seeds` seeds. After each round the group's k values still in play are compared on
//! the seeds they all have (the analysis's paired t-tests against the best k, Holm-adjusted,
//! see [`crate::analyze`], shifted by `drop-margin`): a k shown to be worse than the round's
//! best by more than `drop-margin`, with adjusted p below `drop-level`, gets no more seeds. The group settles when its best
//! set (at the analysis's 5%) has stayed the same for `stable-rounds` rounds, when one k is
//! left, or when every seed of the sweep is spent; otherwise the k values in play get
//! `seeds-per-round` more seeds in the next round.
//!
//! The rounds are a pure function of the results: [`advance`] replays them from whatever has
//! been computed, so a run that was killed, or sharded over an array of jobs, continues the
//! same rounds deterministically.
//!
//! Error control: the true best k leaves only through a drop, a paired test rejecting at
//! `drop-level` (after Holm's adjustment) in its disfavour, or by falling outside the final
//! best set at 5%. Over `R` rounds the chance that the final best set misses the true best k
//! is at most `R drop-level + 0.05` (a union bound); [`AdaptiveConfig::promised_error`].

use serde::Serialize;

use crate::analyze::analyse;

pub use crate::point::{AdaptiveConfig, BEST_SET_LEVEL};

/// What a round decided for one k, or for the whole group (`k` = `None`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// Round (from 1) after which it was decided.
    pub round: u32,
    /// The k it concerns; `None` for the group.
    pub k: Option<u32>,
    /// What was decided.
    pub action: Action,
    /// Seeds each k in play had when it was decided.
    pub seeds: usize,
    /// Holm-adjusted paired p against the round's best k (`None` for group decisions).
    pub p: Option<f64>,
    /// Why, in words.
    pub reason: String,
}

/// A round's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// The k gets no more seeds: worse than the round's best with high confidence.
    Drop,
    /// The k values in play get more seeds: the best set is not yet stable.
    Extend,
    /// The group is done.
    Settle,
}

impl Action {
    /// Name in the decisions table.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Drop => "drop",
            Action::Extend => "extend",
            Action::Settle => "settle",
        }
    }
}

/// Where a group's rounds stand.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRounds {
    /// The current round (from 1): the last one decided, when settled.
    pub round: u32,
    /// Seeds each k in play has in the current round.
    pub seeds: usize,
    /// The k values still in play, ascending.
    pub active: Vec<u32>,
    /// (k, seed index) the current round still needs; empty when it is complete.
    pub needed: Vec<(u32, usize)>,
    /// Whether the group is done.
    pub settled: bool,
    /// Every decision so far, in order.
    pub decisions: Vec<Decision>,
}

/// Replays a group's rounds over what has been computed: `ks` ascending, `seeds` the sweep's
/// seed budget per k, `value(i, s)` the metric of `ks[i]` at the `s`-th seed when computed.
/// Returns the round that is not yet complete (with the points it needs) or, when the group
/// settled, its last round.
pub fn advance(
    ks: &[u32],
    seeds: usize,
    value: &dyn Fn(usize, usize) -> Option<f64>,
    higher_is_better: bool,
    cfg: &AdaptiveConfig,
) -> GroupRounds {
    let mut active: Vec<usize> = (0..ks.len()).collect();
    let mut s = cfg.initial_seeds.min(seeds).max(1);
    let mut decisions = Vec::new();
    let (mut previous, mut stable): (Option<Vec<u32>>, usize) = (None, 0);
    for round in 1u32.. {
        let needed: Vec<(u32, usize)> = active
            .iter()
            .flat_map(|&i| {
                (0..s)
                    .filter(move |&j| value(i, j).is_none())
                    .map(move |j| (ks[i], j))
            })
            .collect();
        let state = |needed, settled, decisions| GroupRounds {
            round,
            seeds: s,
            active: active.iter().map(|&i| ks[i]).collect(),
            needed,
            settled,
            decisions,
        };
        if !needed.is_empty() {
            return state(needed, false, decisions);
        }
        let group = |action, reason: String| Decision {
            round,
            k: None,
            action,
            seeds: s,
            p: None,
            reason,
        };
        if active.len() == 1 {
            let reason = format!("one k left, k = {}", ks[active[0]]);
            decisions.push(group(Action::Settle, reason));
            return state(Vec::new(), true, decisions);
        }
        let values: Vec<Vec<f64>> = active
            .iter()
            .map(|&i| (0..s).map(|j| value(i, j).expect("complete")).collect())
            .collect();
        let in_play: Vec<u32> = active.iter().map(|&i| ks[i]).collect();
        let a = analyse(&in_play, &values, higher_is_better, 0, 0, BEST_SET_LEVEL);
        let best_set: Vec<u32> = a
            .rows
            .iter()
            .filter(|r| r.in_best_set)
            .map(|r| r.k)
            .collect();
        // Per-seed differences that are all equal (a discrete metric on a small test split)
        // would give p = 0 from no evidence of spread: `worse_by_p` gives them 1.
        let best = a.rows.iter().position(|r| r.k == a.best_k).unwrap_or(0);
        let p = drop_p(&values, best, higher_is_better, cfg.drop_margin);
        let mut kept = Vec::new();
        for ((&i, r), &p) in active.iter().zip(&a.rows).zip(&p) {
            // Once every seed is spent a drop saves nothing and would only take the k's
            // points out of the final analysis. (One seed gives p = NaN, never below.)
            if s < seeds && p < cfg.drop_level {
                decisions.push(Decision {
                    round,
                    k: Some(r.k),
                    action: Action::Drop,
                    seeds: s,
                    p: Some(p),
                    reason: format!(
                        "{:+.4} against k = {}: worse by more than drop-margin {} at Holm p = \
                         {:.2e} < drop-level {}",
                        r.diff, a.best_k, cfg.drop_margin, p, cfg.drop_level
                    ),
                });
            } else {
                kept.push(i);
            }
        }
        active = kept;
        stable = if previous.as_ref() == Some(&best_set) {
            stable + 1
        } else {
            0
        };
        previous = Some(best_set.clone());
        let shown = best_set
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let settle = if stable >= cfg.stable_rounds {
            Some(format!(
                "best set {{{shown}}} unchanged for {stable} round(s)"
            ))
        } else if active.len() == 1 {
            Some(format!("one k left, k = {}", ks[active[0]]))
        } else if s >= seeds {
            Some(format!("every seed spent; best set {{{shown}}}"))
        } else {
            None
        };
        if let Some(reason) = settle {
            decisions.push(group(Action::Settle, reason));
            return GroupRounds {
                round,
                seeds: s,
                active: active.iter().map(|&i| ks[i]).collect(),
                needed: Vec::new(),
                settled: true,
                decisions,
            };
        }
        let next = (s + cfg.seeds_per_round.max(1)).min(seeds);
        decisions.push(group(
            Action::Extend,
            format!(
                "best set {{{shown}}} not yet stable: the {} k in play get {} more seed(s), {next} in all",
                active.len(),
                next - s
            ),
        ));
        s = next;
    }
    unreachable!("rounds end when seeds run out")
}

/// Holm-adjusted p-values, one per row of `values` (1 for `best`), of the paired t-test that
/// the row's k is worse than `best`'s by more than `margin` (the per-seed deficit's mean above
/// `margin`; one-sided, doubled so that a margin of 0 gives the analysis's two-sided p).
/// Per-seed deficits that are all equal give 1: no spread, no evidence.
fn drop_p(values: &[Vec<f64>], best: usize, higher_is_better: bool, margin: f64) -> Vec<f64> {
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
    let mut adjusted = crate::analyze::holm(&raw).into_iter();
    (0..values.len())
        .map(|i| {
            if i == best {
                1.0
            } else {
                adjusted.next().expect("one p per other k")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Normal};

    use super::*;
    use crate::spec::AdaptiveSpec;

    const CFG: AdaptiveConfig = AdaptiveConfig {
        initial_seeds: 3,
        seeds_per_round: 1,
        drop_level: 0.01,
        stable_rounds: 1,
        drop_margin: 0.0,
    };

    #[test]
    fn a_round_needs_its_missing_points_and_replays_the_same_decisions() {
        let ks = [1, 4, 16];
        // k = 16 clearly best, k = 1 clearly worst (by seed-dependent margins); only seeds
        // 0..3 computed for k = 1 and 16.
        let acc = |i: usize, s: usize| [0.5, 0.8, 0.9][i] + 0.001 * (s * (i + 1)) as f64;
        let partial = |i: usize, s: usize| (i != 1 && s < 3).then(|| acc(i, s));
        let r = advance(&ks, 10, &partial, true, &CFG);
        assert_eq!((r.round, r.seeds, r.settled), (1, 3, false));
        assert_eq!(r.needed, [(4, 0), (4, 1), (4, 2)]);
        // With every point the same decisions, whatever was computed beyond them.
        let full = |i: usize, s: usize| Some(acc(i, s));
        let a = advance(&ks, 10, &full, true, &CFG);
        let b = advance(&ks, 10, &|i, s| (s < 7).then(|| acc(i, s)), true, &CFG);
        assert_eq!(a, b);
        // Differences far beyond their spread: every other k leaves in round 1.
        assert!(a.settled);
        assert_eq!(a.active, [16]);
        let dropped: Vec<u32> = a
            .decisions
            .iter()
            .filter(|d| d.action == Action::Drop)
            .filter_map(|d| d.k)
            .collect();
        assert_eq!(dropped, [1, 4]);
    }

    /// Accuracy as a known function of k (best at k = 32, a smooth bowl on log2 k) plus a
    /// seed effect shared by every k and independent noise per point, as in real sweeps.
    fn surface(rng: &mut ChaCha8Rng, ks: &[u32], seeds: usize, noise: f64) -> Vec<Vec<f64>> {
        let shared = Normal::new(0.0, 0.02).unwrap();
        let own = Normal::new(0.0, noise).unwrap();
        let seed_effect: Vec<f64> = (0..seeds).map(|_| shared.sample(rng)).collect();
        ks.iter()
            .map(|&k| {
                let d = (k as f64).log2() - 5.0;
                let truth = 0.9 - 0.004 * d * d;
                (0..seeds)
                    .map(|s| truth + seed_effect[s] + own.sample(rng))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn equal_differences_on_every_seed_drop_nothing() {
        // A discrete metric: k = 1 is one test example behind on each of three seeds.
        let acc = |i: usize, s: usize| (s < 3).then(|| [0.95, 0.97][i] + 0.01 * s as f64);
        let r = advance(&[1, 4], 10, &acc, true, &CFG);
        assert!(r.decisions.iter().all(|d| d.action != Action::Drop));
        assert_eq!(r.active, [1, 4]);
        // Once every seed is spent nothing is dropped either, however clear the difference.
        let clear = |i: usize, s: usize| Some([0.5, 0.9][i] + 0.01 * ((s * (i + 2)) % 3) as f64);
        let r = advance(&[1, 4], 3, &clear, true, &CFG);
        assert!(r.decisions.iter().all(|d| d.action != Action::Drop));
        assert!(r.settled);
    }

    /// Over `sweeps` simulated sweeps with `cfg`: the share whose best set misses the true
    /// best k, and the share of the full grid's points trained.
    fn simulate(cfg: &AdaptiveConfig, sweeps: usize) -> (f64, f64) {
        let ks = [1, 2, 4, 8, 16, 32, 64, 128, 256];
        let seeds = 10;
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let (mut missed, mut computed) = (0usize, 0usize);
        for _ in 0..sweeps {
            let noise = rng.random_range(0.003..0.02);
            let v = surface(&mut rng, &ks, seeds, noise);
            let r = advance(&ks, seeds, &|i, s| Some(v[i][s]), true, cfg);
            assert!(r.settled);
            // The answer: the best set of the k values in play over their seeds.
            let idx: Vec<usize> = r
                .active
                .iter()
                .map(|k| ks.iter().position(|x| x == k).unwrap())
                .collect();
            let values: Vec<Vec<f64>> = idx.iter().map(|&i| v[i][..r.seeds].to_vec()).collect();
            let a = analyse(&r.active, &values, true, 0, 0, BEST_SET_LEVEL);
            let best_set: Vec<u32> = a
                .rows
                .iter()
                .filter(|x| x.in_best_set)
                .map(|x| x.k)
                .collect();
            missed += usize::from(!best_set.contains(&32));
            // Points trained: every k's seeds up to the round it left in.
            computed += ks
                .iter()
                .map(|k| {
                    r.decisions
                        .iter()
                        .find(|d| d.k == Some(*k))
                        .map_or(r.seeds, |d| d.seeds)
                })
                .sum::<usize>();
        }
        (
            missed as f64 / sweeps as f64,
            computed as f64 / (sweeps * ks.len() * seeds) as f64,
        )
    }

    #[test]
    fn over_many_simulated_sweeps_the_best_set_misses_the_true_best_k_within_the_promise() {
        // Without a margin and with the default one (the curve's neighbours of the best k are
        // 0.004 behind it, inside the margin, so they stay in play).
        for (margin, most) in [(0.0, 0.6), (AdaptiveSpec::DROP_MARGIN, 0.6)] {
            let cfg = AdaptiveConfig {
                drop_margin: margin,
                ..CFG
            };
            let (error, share) = simulate(&cfg, 2000);
            let promised = cfg.promised_error(10);
            assert!(
                error <= promised,
                "margin {margin}: error {error} above the promised {promised}"
            );
            // And it saves compute: a fraction of the full grid's points.
            assert!(
                share < most,
                "margin {margin}: computed {share} of the grid"
            );
            eprintln!(
                "drop-margin {margin}: error rate {error:.4} (promised {promised:.3}), \
                 points {share:.3} of the grid"
            );
        }
    }

    #[test]
    fn a_consistent_but_negligible_deficit_is_not_dropped_past_the_margin() {
        // k = 128 a quarter of a point behind k = 16 on each of three seeds, with a little
        // spread (as the WordNet sweep's N = 64 showed); k = 1 five points behind.
        let deficit = [[0.050, 0.046, 0.053], [0.0025, 0.0028, 0.0027], [0.0; 3]];
        // Three seeds computed of a budget of ten.
        let acc = |i: usize, s: usize| (s < 3).then(|| 0.27 - deficit[i][s] + 0.01 * s as f64);
        let ks = [1, 128, 16];
        let dropped = |margin: f64| {
            let cfg = AdaptiveConfig {
                drop_margin: margin,
                ..CFG
            };
            let r = advance(&ks, 10, &acc, true, &cfg);
            r.decisions
                .iter()
                .filter(|d| d.action == Action::Drop)
                .filter_map(|d| d.k)
                .collect::<Vec<u32>>()
        };
        assert_eq!(dropped(0.0), [1, 128]);
        assert_eq!(dropped(0.005), [1]);
    }
}

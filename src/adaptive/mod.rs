//! Adaptive sweeps: rounds over each group's k values that stop spending seeds on k values
//! whose answer is settled.
//!
//! Round 1 trains every k of a group (dataset, N and every other setting) at
//! `initial-seeds` seeds. After each round the group's k values still in play are compared on
//! the seeds they all have, each against the round's best k, Holm-adjusted (see
//! [`crate::analyze`]), shifted by `drop-margin`: a k shown to be worse than the best by more
//! than `drop-margin`, with adjusted p below `drop-level`, gets no more seeds. The test is the
//! two-way (k x seed) model's contrast with the residual variance pooled over the k values in
//! play ([`DropTest::Pooled`], the randomized complete block design: seeds are blocks, each
//! shared by every k), or each k's own paired t-test ([`DropTest::Paired`]).
//!
//! With [`Settle::Resolved`] a group settles when no k in play is still open: a k is open
//! while the predictive power (Spiegelhalter, Freedman and Blackburn 1986, "Monitoring
//! clinical trials: conditional or predictive power?") that the full budget's two-sided 5%
//! test tells it apart from the best is at least `settle-power`; the answer then is, with high
//! probability, the full grid's. With [`Settle::Stable`] it settles when the best set (at the
//! analysis's 5%) has stayed the same for `stable-rounds` rounds. Either way it settles when
//! one k is left or every seed of the sweep is spent; otherwise the k values in play get
//! `seeds-per-round` more seeds in the next round.
//!
//! The rounds are a pure function of the results: [`advance`] replays them from whatever has
//! been computed, so a run that was killed, or sharded over an array of jobs, continues the
//! same rounds deterministically.
//!
//! Error control: the true best k leaves only through a drop, a test rejecting at
//! `drop-level` (after Holm's adjustment) in its disfavour, or by falling outside the final
//! best set at 5%; the settle rules never remove a k. Over `R` rounds the chance that the
//! final best set misses the true best k is at most `R drop-level + 0.05` (a union bound);
//! [`AdaptiveConfig::promised_error`].

use serde::Serialize;

use crate::analyze::analyse;

mod drop;
#[cfg(test)]
mod tests;

use drop::{Blocks, drop_p};

pub use crate::point::{AdaptiveConfig, BEST_SET_LEVEL};
pub use crate::spec::{DropTest, Settle};

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
    /// Holm-adjusted p against the round's best k (`None` for group decisions).
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
    /// The k values in play get more seeds: the best set is not yet settled.
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
        let best = a.rows.iter().position(|r| r.k == a.best_k).unwrap_or(0);
        // One fit serves the pooled test and the predictive power.
        let fit = Blocks::fit(&values, higher_is_better);
        let p = match cfg.drop_test {
            DropTest::Pooled => fit.drop_p(best, cfg.drop_margin),
            DropTest::Paired => drop_p(&values, best, higher_is_better, cfg.drop_margin),
        };
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
        // The k values still open: those the full budget's test might yet tell apart from
        // the best (computed on the round's values, before the drops, like the tests).
        let open: Vec<(u32, f64)> = match cfg.settle {
            Settle::Resolved => {
                let power = fit.apart_power(best, seeds);
                active
                    .iter()
                    .zip(&a.rows)
                    .zip(&power)
                    .filter(|&((i, r), &pp)| {
                        r.k != a.best_k && kept.contains(i) && pp >= cfg.settle_power
                    })
                    .map(|((_, r), &pp)| (r.k, pp))
                    .collect()
            }
            Settle::Stable => Vec::new(),
        };
        // The answer as it stands: the analysis's best set of the k values left (the pooled
        // test can drop a k the paired best set of the round still held).
        let best_set: Vec<u32> = if kept.len() == active.len() {
            a.rows
                .iter()
                .filter(|r| r.in_best_set)
                .map(|r| r.k)
                .collect()
        } else {
            let left: Vec<usize> = (0..active.len())
                .filter(|&j| kept.contains(&active[j]))
                .collect();
            let ks_left: Vec<u32> = left.iter().map(|&j| in_play[j]).collect();
            let v: Vec<Vec<f64>> = left.iter().map(|&j| values[j].clone()).collect();
            analyse(&ks_left, &v, higher_is_better, 0, 0, BEST_SET_LEVEL)
                .rows
                .iter()
                .filter(|r| r.in_best_set)
                .map(|r| r.k)
                .collect()
        };
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
        let settle = if active.len() == 1 {
            Some(format!("one k left, k = {}", ks[active[0]]))
        } else if cfg.settle == Settle::Stable && stable >= cfg.stable_rounds {
            Some(format!(
                "best set {{{shown}}} unchanged for {stable} round(s)"
            ))
        } else if cfg.settle == Settle::Resolved && open.is_empty() {
            Some(format!(
                "best set {{{shown}}} resolved: no k could still be told apart from k = {} \
                 (predictive power below settle-power {})",
                a.best_k, cfg.settle_power
            ))
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
        let why = match cfg.settle {
            Settle::Stable => format!("best set {{{shown}}} not yet stable"),
            Settle::Resolved => format!(
                "best set {{{shown}}} not yet resolved: {} still open (neither dropped nor \
                 unlikely to be told apart from k = {} at the full budget: predictive power at \
                 least settle-power {})",
                open.iter()
                    .map(|(k, pp)| format!("k = {k} (predictive power {pp:.2})"))
                    .collect::<Vec<_>>()
                    .join(", "),
                a.best_k,
                cfg.settle_power
            ),
        };
        decisions.push(group(
            Action::Extend,
            format!(
                "{why}: the {} k in play get {} more seed(s), {next} in all",
                active.len(),
                next - s
            ),
        ));
        s = next;
    }
    unreachable!("rounds end when seeds run out")
}

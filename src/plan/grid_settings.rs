//! Settings that only part of the grid reads, checked against the grid (a value no point reads
//! is not checked, and several values no point reads are an error): the debiased and hcl
//! losses' tau-plus and beta, false-negative handling, the queue's momentum, and the adaptive
//! rounds' settings (a key the chosen settings never read is an error, or a warning where the
//! README's reference pipeline has it).

use super::{DetectorConfig, sweep};
use crate::spec::{
    Detector, FalseNegatives, Loss, NegativesSpec, PipelineSpec, Strategy, TrainSpec,
};

/// `train.tau-plus` (or each of `sweep.tau-plus`), `train.beta` (or each of `sweep.beta`), and
/// the temperatures the debiased and hcl losses need.
pub(super) fn tau_plus(
    spec: &PipelineSpec,
    grid: &sweep::Grid,
    bad: &mut dyn FnMut(&str, String),
) -> f64 {
    let tr = &spec.train;
    let tau_plus = tr.tau_plus.unwrap_or(TrainSpec::TAU_PLUS);
    let debiased = grid
        .loss
        .iter()
        .any(|l| matches!(l, Loss::Debiased | Loss::Hcl));
    // Several values for a loss that never reads them would silently collapse to one point.
    if grid.tau_plus.len() > 1 && !debiased {
        bad(
            "sweep.tau-plus",
            format!(
                "lists {} values, but only the debiased and hcl losses read tau-plus and no \
                 point uses them (add \"debiased\" or \"hcl\" to sweep.loss or train.loss)",
                grid.tau_plus.len()
            ),
        );
    }
    if grid.beta.len() > 1 && !grid.loss.contains(&Loss::Hcl) {
        bad(
            "sweep.beta",
            format!(
                "lists {} values, but only the hcl loss reads beta and no point uses it (add \
                 \"hcl\" to sweep.loss or train.loss)",
                grid.beta.len()
            ),
        );
    }
    if grid.loss.contains(&Loss::Hcl) {
        for &v in &grid.beta {
            if !(v >= 0.0 && v.is_finite()) {
                bad(&grid.key("beta"), format!("must be at least 0, got {v}"));
            }
        }
    }
    if debiased {
        for &v in &grid.tau_plus {
            if !(0.0..1.0).contains(&v) {
                bad(&grid.key("tau-plus"), format!("must be in [0, 1), got {v}"));
            }
        }
        // exp(-2 / t) must stay a normal f32.
        for &t in &grid.temperature {
            if t < 0.05 {
                bad(
                    &grid.key("temperature"),
                    format!(
                        "the debiased and hcl losses need a temperature of at least 0.05, got {t}"
                    ),
                );
            }
        }
    }
    tau_plus
}

/// `negatives.false-negatives` (or each of `sweep.false-negatives`) against the losses, and the
/// detector's settings.
pub(super) fn false_negatives(
    spec: &PipelineSpec,
    grid: &sweep::Grid,
    bad: &mut dyn FnMut(&str, String),
) -> DetectorConfig {
    let ng = &spec.negatives;
    let detector = ng.detector.unwrap_or(NegativesSpec::DETECTOR);
    let threshold = ng
        .detector_threshold
        .unwrap_or(NegativesSpec::DETECTOR_THRESHOLD);
    let detects = grid
        .false_negatives
        .iter()
        .any(|f| *f != FalseNegatives::Keep);
    if detects && detector == Detector::Similarity && !(-1.0..=1.0).contains(&threshold) {
        bad(
            "negatives.detector-threshold",
            format!("is a cosine similarity and must be in [-1, 1], got {threshold}"),
        );
    }
    if grid.false_negatives.contains(&FalseNegatives::Attract) {
        for &l in &grid.loss {
            if !matches!(l, Loss::Nce | Loss::Infonce) {
                bad(
                    &grid.key("false-negatives"),
                    format!(
                        "\"attract\" makes detected false negatives extra positives of a \
                         softmax loss (nce or infonce); the {} loss has no such form (use \
                         \"eliminate\", or drop \"{}\" from {})",
                        l.as_str(),
                        l.as_str(),
                        grid.key("loss")
                    ),
                );
            }
        }
    }
    DetectorConfig {
        detector,
        threshold: (detector == Detector::Similarity).then_some(threshold),
    }
}

/// `negatives.momentum` of `queue` points; NaN when no point uses the queue.
pub(super) fn momentum(
    spec: &PipelineSpec,
    grid: &sweep::Grid,
    bad: &mut dyn FnMut(&str, String),
) -> f64 {
    let m = spec.negatives.momentum.unwrap_or(NegativesSpec::MOMENTUM);
    if !grid.strategy.contains(&Strategy::Queue) {
        return f64::NAN;
    }
    if !(0.0..1.0).contains(&m) {
        bad(
            "negatives.momentum",
            format!("must be in [0, 1) (0 copies the encoder every step), got {m}"),
        );
    }
    if grid
        .positive
        .contains(&crate::spec::PositiveMode::Augmentation)
    {
        bad(
            &grid.key("strategy"),
            format!(
                "\"queue\" trains with same-concept positives (their keys fill the queue), and \
                 {} lists \"augmentation\"",
                grid.key("positive")
            ),
        );
    }
    m
}

/// `[sweep.adaptive]`, checked against the seeds it spends, and each key given against the
/// settings that decide whether it is read (see [`adaptive_keys`]).
pub(super) fn adaptive(
    spec: &PipelineSpec,
    grid: &sweep::Grid,
    bad: &mut dyn FnMut(&str, String),
    warn: &mut dyn FnMut(&str, String),
) -> Option<crate::point::AdaptiveConfig> {
    use crate::spec::AdaptiveSpec;
    let a = spec.sweep.adaptive.as_ref()?;
    let cfg = crate::point::AdaptiveConfig {
        initial_seeds: a.initial_seeds.unwrap_or(AdaptiveSpec::INITIAL_SEEDS) as usize,
        seeds_per_round: a.seeds_per_round.unwrap_or(AdaptiveSpec::SEEDS_PER_ROUND) as usize,
        drop_test: a.drop_test.unwrap_or(crate::spec::DropTest::Pooled),
        drop_level: a.drop_level.unwrap_or(AdaptiveSpec::DROP_LEVEL),
        drop_margin: a.drop_margin.unwrap_or(AdaptiveSpec::DROP_MARGIN),
        settle: a.settle.unwrap_or(crate::spec::Settle::Resolved),
        settle_power: a.settle_power.unwrap_or(AdaptiveSpec::SETTLE_POWER),
        stable_rounds: a.stable_rounds.unwrap_or(AdaptiveSpec::STABLE_ROUNDS) as usize,
    };
    let seeds = grid.seed.len();
    if cfg.initial_seeds < 2 {
        bad(
            "sweep.adaptive.initial-seeds",
            format!(
                "must be at least 2 (a comparison needs two seeds), got {}",
                cfg.initial_seeds
            ),
        );
    } else if cfg.initial_seeds > seeds {
        bad(
            "sweep.adaptive.initial-seeds",
            format!(
                "is {}, but {} lists {seeds} seed(s): the seeds are the budget per k",
                cfg.initial_seeds,
                grid.key("seed")
            ),
        );
    }
    if cfg.seeds_per_round < 1 {
        bad(
            "sweep.adaptive.seeds-per-round",
            format!("must be at least 1, got {}", cfg.seeds_per_round),
        );
    }
    // Above the best set's level a k could be dropped while still in the best set.
    if !(cfg.drop_level > 0.0 && cfg.drop_level <= crate::point::BEST_SET_LEVEL) {
        bad(
            "sweep.adaptive.drop-level",
            format!(
                "must be in (0, {}] (the best set's level), got {}",
                crate::point::BEST_SET_LEVEL,
                cfg.drop_level
            ),
        );
    }
    if cfg.stable_rounds < 1 {
        bad("sweep.adaptive.stable-rounds", "must be at least 1".into());
    }
    // An accuracy deficit is below 1, so a margin of 1 or more would never drop anything.
    if !(0.0..1.0).contains(&cfg.drop_margin) {
        bad(
            "sweep.adaptive.drop-margin",
            format!(
                "must be in [0, 1) (accuracy units), got {}",
                cfg.drop_margin
            ),
        );
    }
    // Under `settle = "stable"` a given settle-power is refused as unread (below) instead.
    if cfg.settle == crate::spec::Settle::Resolved
        && !(cfg.settle_power > 0.0 && cfg.settle_power < 1.0)
    {
        bad(
            "sweep.adaptive.settle-power",
            format!("must be in (0, 1), got {}", cfg.settle_power),
        );
    }
    adaptive_keys(a, &cfg, grid, bad, warn);
    Some(cfg)
}

/// The keys of `[sweep.adaptive]` that the chosen settings never read, which would otherwise
/// be accepted without effect. The README's pipeline reference lists every key at its default
/// beside `settle = "resolved"` and two seeds, so `stable-rounds` there and a budget that round
/// 1 spends whole only warn: rejecting them would break pipelines copied from it.
fn adaptive_keys(
    a: &crate::spec::AdaptiveSpec,
    cfg: &crate::point::AdaptiveConfig,
    grid: &sweep::Grid,
    bad: &mut dyn FnMut(&str, String),
    warn: &mut dyn FnMut(&str, String),
) {
    use crate::spec::Settle;
    let settle = match a.settle {
        None => "settle is \"resolved\" (the default)",
        Some(Settle::Resolved) => "settle = \"resolved\"",
        Some(Settle::Stable) => "settle = \"stable\"",
    };
    if a.settle_power.is_some() && cfg.settle == Settle::Stable {
        bad(
            "sweep.adaptive.settle-power",
            format!(
                "applies only with settle = \"resolved\" (the predictive power below which a k \
                 closes), and {settle}, which reads stable-rounds instead: remove settle-power, \
                 or set settle = \"resolved\""
            ),
        );
    }
    if a.stable_rounds.is_some() && cfg.settle == Settle::Resolved {
        warn(
            "sweep.adaptive.stable-rounds",
            format!(
                "applies only with settle = \"stable\", and {settle}, which reads \
                 settle-power instead: it has no effect; remove it, or set settle = \"stable\""
            ),
        );
    }
    // One k: each group settles after round 1 ("one k left"), short of the seed budget.
    if grid.k.len() == 1 && cfg.initial_seeds < grid.seed.len() {
        bad(
            "sweep.adaptive",
            format!(
                "compares each group's k values, and {} lists one k ({}): every group would \
                 stop after initial-seeds = {} of its {} seed(s); list more k values, or \
                 remove [sweep.adaptive] to train every seed",
                grid.key("k"),
                grid.k[0],
                cfg.initial_seeds,
                grid.seed.len()
            ),
        );
    }
    // Round 1 spends every seed: no round follows, nothing is dropped and the sweep is the
    // full grid (the README's reference pipeline does this with two seeds).
    if cfg.initial_seeds >= 2 && cfg.initial_seeds == grid.seed.len() {
        let unread: Vec<&str> = [
            ("seeds-per-round", a.seeds_per_round.is_some()),
            ("drop-test", a.drop_test.is_some()),
            ("drop-level", a.drop_level.is_some()),
            ("drop-margin", a.drop_margin.is_some()),
            ("settle", a.settle.is_some()),
            ("settle-power", a.settle_power.is_some()),
            ("stable-rounds", a.stable_rounds.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, given)| given.then_some(key))
        .collect();
        warn(
            if a.initial_seeds.is_some() {
                "sweep.adaptive.initial-seeds"
            } else {
                "sweep.adaptive"
            },
            format!(
                "round 1 trains every k at all {} seed(s) of {} (initial-seeds = {}), so no \
                 round follows and the sweep is the full grid{}; list more seeds, or lower \
                 initial-seeds",
                grid.seed.len(),
                grid.key("seed"),
                cfg.initial_seeds,
                if unread.is_empty() {
                    String::new()
                } else {
                    format!(
                        ": {} ha{} no effect",
                        unread.join(", "),
                        if unread.len() == 1 { "s" } else { "ve" }
                    )
                }
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::Diagnostic;
    use crate::spec::PipelineSpec;

    /// (key, message) of each problem.
    type Found = Vec<(String, String)>;

    /// Resolves a text pipeline with `sweep` as its `[sweep]` table (and what follows it):
    /// the errors, or the warnings.
    fn resolve(sweep: &str) -> Result<Found, Found> {
        let spec = PipelineSpec::parse(
            "t.toml",
            &format!(
                "[pipeline]\nname = \"t\"\noutput = \"memory://t\"\n\
                 [[datasets]]\nkind = \"synthetic-text\"\nname = \"s\"\nconcepts = 4\n\
                 [sweep]\nn = [2]\n{sweep}"
            ),
        )
        .unwrap();
        let pairs = |ds: &[Diagnostic]| -> Found {
            ds.iter()
                .map(|d| (d.key.clone(), d.message.clone()))
                .collect()
        };
        match crate::plan::resolve(&spec, "t.toml") {
            Ok(plan) => Ok(pairs(&plan.warnings)),
            Err(crate::Error::InvalidPipeline { diagnostics, .. }) => Err(pairs(&diagnostics)),
            Err(e) => panic!("{e}"),
        }
    }

    const THREE: &str = "k = [1, 4, 16]\nseed = [0, 1, 2]\n[sweep.adaptive]\n";

    #[test]
    fn settle_power_is_refused_where_settle_is_stable() {
        let err = resolve(&format!("{THREE}settle = \"stable\"\nsettle-power = 0.2")).unwrap_err();
        assert_eq!(err.len(), 1, "{err:?}");
        assert_eq!(err[0].0, "sweep.adaptive.settle-power");
        assert!(
            err[0]
                .1
                .starts_with("applies only with settle = \"resolved\"")
                && err[0].1.contains("and settle = \"stable\""),
            "{err:?}"
        );
        // Out of range too: the one problem is that nothing reads it.
        let err = resolve(&format!("{THREE}settle = \"stable\"\nsettle-power = 2.0")).unwrap_err();
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(err[0].1.starts_with("applies only"), "{err:?}");
        // Where settle reads it, it is checked, not refused.
        assert_eq!(resolve(&format!("{THREE}settle-power = 0.2")), Ok(vec![]));
        let err =
            resolve(&format!("{THREE}settle = \"resolved\"\nsettle-power = 2.0")).unwrap_err();
        assert_eq!(err[0].1, "must be in (0, 1), got 2");
    }

    #[test]
    fn stable_rounds_warns_where_settle_is_resolved() {
        let warned = resolve(&format!("{THREE}stable-rounds = 2")).unwrap();
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert_eq!(warned[0].0, "sweep.adaptive.stable-rounds");
        assert!(
            warned[0]
                .1
                .contains("and settle is \"resolved\" (the default)"),
            "{warned:?}"
        );
        let warned = resolve(&format!("{THREE}settle = \"resolved\"\nstable-rounds = 2")).unwrap();
        assert!(
            warned[0].1.contains("and settle = \"resolved\""),
            "{warned:?}"
        );
        assert_eq!(
            resolve(&format!("{THREE}settle = \"stable\"\nstable-rounds = 2")),
            Ok(vec![])
        );
    }

    #[test]
    fn one_k_is_refused_and_a_budget_spent_in_round_one_warns() {
        // One k: every group would settle after round 1, two of its three seeds.
        let err = resolve("k = [4]\nseed = [0, 1, 2]\n[sweep.adaptive]").unwrap_err();
        assert_eq!(err.len(), 1, "{err:?}");
        assert_eq!(err[0].0, "sweep.adaptive");
        assert!(
            err[0].1.contains("sweep.k lists one k (4)")
                && err[0].1.contains("initial-seeds = 2 of its 3 seed(s)"),
            "{err:?}"
        );
        // Without [sweep], negatives.k is the key that lists it.
        let err = resolve("seed = [0, 1, 2]\n[sweep.adaptive]").unwrap_err();
        assert!(err[0].1.contains("negatives.k lists one k"), "{err:?}");
        // Round 1 spends every seed: the keys of later rounds are named.
        let warned =
            resolve("k = [1, 4]\nseed = [0, 1]\n[sweep.adaptive]\ndrop-level = 0.02").unwrap();
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert_eq!(warned[0].0, "sweep.adaptive");
        assert!(
            warned[0].1.contains("all 2 seed(s) of sweep.seed")
                && warned[0].1.contains("drop-level has no effect"),
            "{warned:?}"
        );
        let warned =
            resolve("k = [1, 4]\nseed = [0, 1, 2]\n[sweep.adaptive]\ninitial-seeds = 3").unwrap();
        assert_eq!(warned[0].0, "sweep.adaptive.initial-seeds");
        assert!(!warned[0].1.contains("effect"), "{warned:?}");
    }

    /// The README's two adaptive tables, as it showed them before unread keys were checked:
    /// pipelines copied from them still resolve, with warnings.
    #[test]
    fn tables_the_readme_documented_still_resolve() {
        let keys = "initial-seeds = 2\nseeds-per-round = 1\ndrop-test = \"pooled\"\n\
                    drop-level = 0.01\ndrop-margin = 0.005\nsettle = \"resolved\"\n\
                    settle-power = 0.1\nstable-rounds = 1\n";
        let section = resolve(&format!(
            "k = [1, 4]\nseed = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]\n[sweep.adaptive]\n{keys}"
        ))
        .unwrap();
        let warned: Vec<&str> = section.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(warned, ["sweep.adaptive.stable-rounds"]);
        let reference = resolve(&format!(
            "k = [1, 4]\nseed = [0, 1]\n[sweep.adaptive]\n{keys}"
        ))
        .unwrap();
        let warned: Vec<&str> = reference.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            warned,
            [
                "sweep.adaptive.stable-rounds",
                "sweep.adaptive.initial-seeds"
            ]
        );
    }
}

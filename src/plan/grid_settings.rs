//! Settings that only part of the grid reads, checked against the grid (a value no point reads
//! is not checked, and several values no point reads are an error): the debiased and hcl
//! losses' tau-plus and beta, false-negative handling, the queue's momentum, and the adaptive
//! rounds' settings.

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

/// `[sweep.adaptive]`, checked against the seeds it spends.
pub(super) fn adaptive(
    spec: &PipelineSpec,
    grid: &sweep::Grid,
    bad: &mut dyn FnMut(&str, String),
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
    if !(cfg.settle_power > 0.0 && cfg.settle_power < 1.0) {
        bad(
            "sweep.adaptive.settle-power",
            format!("must be in (0, 1), got {}", cfg.settle_power),
        );
    }
    Some(cfg)
}

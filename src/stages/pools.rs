//! Concepts and negatives: choose N concepts (seeded), split each one train/test (stratified),
//! and draw, per training anchor and pass, a positive and `k_max` negatives from the training
//! marginal. Each row draws from its own random stream, so a larger `k_max` or more passes
//! extend a pool without changing the rows and prefixes already drawn.

use std::collections::HashMap;

use rand::Rng;
use rand::seq::SliceRandom;
use tracing::{info, warn};

use super::pool_files::{load, save, stats_table};
use super::{Manifest, layout, stream, tables};
use crate::data::Examples;
use crate::negatives::{Candidates, Pool};
use crate::plan::{DatasetPlan, Shared, SweepPoint};
use crate::storage::{Store, write_parquet};
use crate::{Error, Result};

/// A chosen concept.
#[derive(Debug, Clone, PartialEq)]
pub struct Concept {
    /// Concept index in the examples table.
    pub label: u32,
    /// Concept name.
    pub name: String,
    /// Training examples.
    pub n_train: u32,
    /// Test examples.
    pub n_test: u32,
}

/// Concepts, split and negative pool of one (dataset, N, seed).
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The N chosen concepts; position = class index.
    pub concepts: Vec<Concept>,
    /// Measured class frequencies in the training split.
    pub rho: Vec<f64>,
    /// Class of each example id (`u32::MAX` when its concept was not chosen).
    pub class_of: Vec<u32>,
    /// Training example ids.
    pub train_ids: Vec<u32>,
    /// Test example ids.
    pub test_ids: Vec<u32>,
    /// Anchor id per pool row.
    pub anchors: Vec<u32>,
    /// Positive id per pool row.
    pub positives: Vec<u32>,
    /// `k_max` negative ids per pool row, row-major.
    pub negatives: Vec<u32>,
    /// Negatives per row.
    pub k_max: usize,
    /// Passes stored.
    pub passes: usize,
}

/// N chosen concepts and their split.
#[derive(Debug, Clone)]
pub struct Chosen {
    /// The concepts; position = class index.
    pub concepts: Vec<Concept>,
    /// Class of each example id (`u32::MAX` when not chosen).
    pub class_of: Vec<u32>,
    /// Training example ids.
    pub train: Vec<u32>,
    /// Test example ids.
    pub test: Vec<u32>,
}

/// Example ids of each label.
fn by_label(ex: &Examples) -> Vec<Vec<u32>> {
    let mut by_label: Vec<Vec<u32>> = vec![Vec::new(); ex.concept_names.len()];
    for (id, &l) in ex.labels.iter().enumerate() {
        by_label[l as usize].push(id as u32);
    }
    by_label
}

/// Labels with at least `concepts.min-examples` examples: the concepts N = 0 stands for.
fn eligible(by_label: &[Vec<u32>], shared: &Shared) -> Vec<u32> {
    (0..by_label.len() as u32)
        .filter(|&l| by_label[l as usize].len() >= shared.min_examples as usize)
        .collect()
}

/// The N a point with `n` trains on: `n`, or for N = 0 every eligible concept.
pub fn resolve_n(ex: &Examples, n: u32, shared: &Shared) -> u32 {
    match n {
        0 => eligible(&by_label(ex), shared).len() as u32,
        n => n,
    }
}

/// Chooses N concepts and splits them. Errors name `location` when too few concepts qualify.
pub fn choose(ex: &Examples, n: u32, seed: u64, shared: &Shared, location: &str) -> Result<Chosen> {
    let by_label = by_label(ex);
    let eligible = eligible(&by_label, shared);
    let skipped = by_label.len() - eligible.len();
    if skipped > 0 {
        tracing::info!(
            skipped,
            min_examples = shared.min_examples,
            "concepts with too few examples skipped (concepts.min-examples)"
        );
    }
    // N = 0: every eligible concept.
    let n = if n == 0 { eligible.len() as u32 } else { n };
    if eligible.len() < n as usize || n < 2 {
        return Err(Error::data(
            location,
            format!(
                "N = {n} needs {} concepts with at least {} examples (concepts.min-examples), \
                 and {} of the {} concepts have that many",
                n.max(2),
                shared.min_examples,
                eligible.len(),
                by_label.len()
            ),
        ));
    }
    let mut order = eligible;
    order.shuffle(&mut stream(seed, "concepts", 0));
    order.truncate(n as usize);
    let mut class_of = vec![u32::MAX; ex.len()];
    let (mut train, mut test, mut concepts) = (Vec::new(), Vec::new(), Vec::new());
    for (class, &label) in order.iter().enumerate() {
        let mut ids = by_label[label as usize].clone();
        ids.shuffle(&mut stream(seed, "split", u64::from(label)));
        if shared.max_examples > 0 {
            ids.truncate(shared.max_examples as usize);
        }
        ids.truncate(skewed(ids.len(), class, shared.prior_skew));
        let count = ids.len();
        let n_test = ((shared.test_fraction * count as f64).round() as usize).clamp(1, count - 2);
        for &id in &ids {
            class_of[id as usize] = class as u32;
        }
        test.extend_from_slice(&ids[..n_test]);
        train.extend_from_slice(&ids[n_test..]);
        concepts.push(Concept {
            label,
            name: ex.concept_names[label as usize].clone(),
            n_train: (count - n_test) as u32,
            n_test: n_test as u32,
        });
    }
    if shared.label_noise > 0.0 {
        relabel(
            &train,
            &mut class_of,
            &mut concepts,
            seed,
            shared.label_noise,
        );
    }
    Ok(Chosen {
        concepts,
        class_of,
        train,
        test,
    })
}

/// Label noise: each training id, with probability `noise`, takes a class drawn uniformly from
/// the N (its own included), from the seed's own stream; the concepts' training counts follow.
/// A move that would leave its concept with fewer than two training examples (a positive needs
/// another example of the anchor's concept) is not made, so heavy noise on small concepts
/// relabels a little less than `noise`.
fn relabel(train: &[u32], class_of: &mut [u32], concepts: &mut [Concept], seed: u64, noise: f64) {
    let n = concepts.len() as u32;
    let mut rng = stream(seed, "label-noise", 0);
    for &id in train {
        if rng.random::<f64>() < noise {
            let to = rng.random_range(0..n);
            let from = class_of[id as usize];
            if to != from && concepts[from as usize].n_train > 2 {
                concepts[from as usize].n_train -= 1;
                concepts[to as usize].n_train += 1;
                class_of[id as usize] = to;
            }
        }
    }
}

/// Examples the `class`-th chosen concept (from 0) keeps of `count` under a Zipf prior skew `s`:
/// `ceil(count (class + 1)^-s)`, at least 3 (one test and two training examples), at most
/// `count`. Zipf's law over ranks, as in the class-imbalance experiments of Awasthi et al.
/// (ICML 2022, section 6).
fn skewed(count: usize, class: usize, s: f64) -> usize {
    if s == 0.0 {
        return count;
    }
    let share = (class as f64 + 1.0).powf(-s);
    ((count as f64 * share).ceil() as usize).clamp(3.min(count), count)
}

/// Training ids grouped by class, with each id's position in its group.
fn groups(train: &[u32], class_of: &[u32], n: usize) -> (Vec<Vec<u32>>, HashMap<u32, usize>) {
    let mut by_class = vec![Vec::new(); n];
    let mut pos = HashMap::with_capacity(train.len());
    for &id in train {
        let c = class_of[id as usize] as usize;
        pos.insert(id, by_class[c].len());
        by_class[c].push(id);
    }
    (by_class, pos)
}

/// Another member of `group` than the one at `skip` (the group has at least two members).
fn other(group: &[u32], skip: usize, rng: &mut impl Rng) -> u32 {
    let j = rng.random_range(0..group.len() - 1);
    group[if j >= skip { j + 1 } else { j }]
}

/// Draws `passes` passes of anchors over `train`, each with a positive and `k_max` negatives
/// from `train`, drawn as `pool` draws them.
pub fn draw(
    train: &[u32],
    class_of: &[u32],
    n: usize,
    seed: u64,
    k_max: usize,
    passes: usize,
    pool: &dyn Pool,
) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
    let (by_class, pos) = groups(train, class_of, n);
    // Training ids grouped by class, and where each class's run lies.
    let grouped: Vec<u32> = by_class.iter().flatten().copied().collect();
    let runs: Vec<std::ops::Range<usize>> = by_class
        .iter()
        .scan(0, |at, g| {
            let s = *at;
            *at += g.len();
            Some(s..*at)
        })
        .collect();
    let from = Candidates {
        train,
        grouped: &grouped,
        runs: &runs,
    };
    let rows = passes * train.len();
    let (mut anchors, mut positives, mut negatives) = (
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows * k_max),
    );
    for pass in 0..passes {
        let mut order = train.to_vec();
        order.shuffle(&mut stream(seed, "pass", pass as u64));
        for (j, &a) in order.iter().enumerate() {
            let row = (pass * train.len() + j) as u64;
            let mut rng = stream(seed, "row", row);
            let c = class_of[a as usize] as usize;
            anchors.push(a);
            positives.push(other(&by_class[c], pos[&a], &mut rng));
            pool.draw_row(&from, c, k_max, &mut rng, &mut negatives);
        }
    }
    (anchors, positives, negatives)
}

/// Measured collision and coverage of the first `k` negatives of a run of rows.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolStats {
    /// Anchors counted.
    pub anchors: usize,
    /// Fraction of anchors with at least one collision.
    pub collision_rate: f64,
    /// Mean colliding negatives per anchor.
    pub collisions_mean: f64,
    /// Anchors with 0, 1, 2, ... colliding negatives.
    pub collisions_hist: Vec<u32>,
    /// Mean number of distinct other concepts the negatives hit.
    pub covered_mean: f64,
    /// Mean fraction of the other N - 1 concepts covered.
    pub covered_fraction: f64,
    /// Fraction of anchors whose negatives cover every other concept.
    pub coverage_rate: f64,
}

/// Collision and coverage of the first `k` of each row's `stride` negatives, for anchors
/// `anchors`, over `n` concepts (`class_of` maps example ids to them).
pub fn pool_stats(
    anchors: &[u32],
    negatives: &[u32],
    stride: usize,
    k: usize,
    class_of: &[u32],
    n: usize,
) -> PoolStats {
    let mut seen = vec![usize::MAX; n];
    let mut hist = vec![0u32; k + 1];
    let (mut total, mut full, mut distinct_sum) = (0usize, 0usize, 0usize);
    for (r, &a) in anchors.iter().enumerate() {
        let c = class_of[a as usize] as usize;
        let (mut coll, mut distinct) = (0usize, 0usize);
        for &neg in &negatives[r * stride..r * stride + k] {
            let nc = class_of[neg as usize] as usize;
            if nc == c {
                coll += 1;
            } else if seen[nc] != r {
                seen[nc] = r;
                distinct += 1;
            }
        }
        hist[coll] += 1;
        total += coll;
        full += usize::from(distinct == n - 1);
        distinct_sum += distinct;
    }
    while hist.len() > 1 && hist.last() == Some(&0) {
        hist.pop();
    }
    let rows = anchors.len().max(1) as f64;
    PoolStats {
        anchors: anchors.len(),
        collision_rate: (anchors.len() - hist[0] as usize) as f64 / rows,
        collisions_mean: total as f64 / rows,
        collisions_hist: hist,
        covered_mean: distinct_sum as f64 / rows,
        covered_fraction: distinct_sum as f64 / rows / (n - 1).max(1) as f64,
        coverage_rate: full as f64 / rows,
    }
}

impl Prepared {
    /// Collision and coverage of the first `k` negatives over the first `rows` rows.
    pub fn stats(&self, k: usize, rows: usize) -> PoolStats {
        pool_stats(
            &self.anchors[..rows],
            &self.negatives,
            self.k_max,
            k,
            &self.class_of,
            self.concepts.len(),
        )
    }

    /// Training examples per chosen concept.
    pub fn train_counts(&self) -> Vec<u64> {
        self.concepts.iter().map(|c| u64::from(c.n_train)).collect()
    }

    /// Test triplets: each test example with a positive from its class's test examples and `k`
    /// negatives from the test marginal. Classes with a single test example give no anchor.
    pub fn test_triplets(&self, seed: u64, k: usize) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
        let (by_class, pos) = groups(&self.test_ids, &self.class_of, self.concepts.len());
        let (mut a, mut p, mut ng) = (Vec::new(), Vec::new(), Vec::new());
        for (i, &id) in self.test_ids.iter().enumerate() {
            let group = &by_class[self.class_of[id as usize] as usize];
            if group.len() < 2 {
                continue;
            }
            let mut rng = stream(seed, "test-row", i as u64);
            a.push(id);
            p.push(other(group, pos[&id], &mut rng));
            ng.extend((0..k).map(|_| self.test_ids[rng.random_range(0..self.test_ids.len())]));
        }
        (a, p, ng)
    }
}

/// Measured class frequencies of the training split.
pub(super) fn rho(concepts: &[Concept]) -> Vec<f64> {
    let total: f64 = concepts.iter().map(|c| f64::from(c.n_train)).sum();
    concepts
        .iter()
        .map(|c| f64::from(c.n_train) / total)
        .collect()
}

/// Prepares (or loads) the pool of `point` (its dataset, N, seed and strategy) with at least
/// `shared.k_max` negatives and `shared.max_epochs` passes.
pub async fn run(
    store: &Store,
    ds: &DatasetPlan,
    ex: &Examples,
    point: &SweepPoint,
    shared: &Shared,
) -> Result<Prepared> {
    // The data knobs are axes: the pool takes its point's.
    let shared = &Shared {
        prior_skew: point.prior_skew,
        label_noise: point.label_noise,
        ..shared.clone()
    };
    let dir = layout::pool_dir(ds, point.n, point.seed, &point.pool);
    let wide_enough = |m: Option<Manifest>| {
        m.filter(|m| m.k_max >= shared.k_max && m.passes >= shared.max_epochs)
    };
    let manifest = wide_enough(Manifest::read(store, &dir).await?);
    if manifest.is_some() {
        return build(store, ds, ex, point, shared, manifest).await;
    }
    // Not drawn yet (or too narrow): one process (of all shards) draws it, the others wait and
    // load what it wrote, so the manifest is read again under the lock.
    let lock = super::lock::BuildLock::acquire(store, &dir).await?;
    let built = match Manifest::read(store, &dir).await {
        Ok(m) => build(store, ds, ex, point, shared, wide_enough(m)).await,
        Err(e) => Err(e),
    };
    lock.release().await?;
    built
}

/// Loads the pool `manifest` describes (wide enough for `shared`), or draws it when there is
/// none or the stored copy is damaged.
async fn build(
    store: &Store,
    ds: &DatasetPlan,
    ex: &Examples,
    point: &SweepPoint,
    shared: &Shared,
    manifest: Option<Manifest>,
) -> Result<Prepared> {
    let (n, seed, key) = (point.n, point.seed, point.pool.as_str());
    let pool = crate::negatives::strategy(point.strategy).pool();
    let dir = layout::pool_dir(ds, n, seed, key);
    let (k_max, passes) = (shared.k_max as usize, shared.max_epochs as usize);
    if let Some(m) = manifest {
        match load(store, &dir, ex.len(), m.k_max as usize, m.passes as usize).await {
            Ok(prep) => {
                // Pools drawn before the statistics table existed get it now.
                let stats = format!("{dir}/stats.parquet");
                if !store.exists(&stats).await? {
                    write_parquet(store, &stats, tables::pool_stats(), &[stats_table(&prep)?])
                        .await?;
                }
                return Ok(prep);
            }
            // The pool is a deterministic cache: a damaged copy is drawn again, not fatal.
            Err(e @ Error::Data { .. }) => warn!(error = %e, "redrawing a damaged pool"),
            Err(e) => return Err(e),
        }
    }
    info!(dataset = %ds.name, n, seed, k_max, passes, "drawing negative pool");
    let location = store.display(&dir);
    let Chosen {
        concepts,
        class_of,
        train: train_ids,
        test: test_ids,
    } = choose(ex, n, seed, shared, &location)?;
    let sizes = concepts.iter().map(|c| c.n_train + c.n_test);
    info!(
        dataset = %ds.name,
        n = concepts.len(),
        examples_min = sizes.clone().min().unwrap_or(0),
        examples_max = sizes.max().unwrap_or(0),
        "concepts chosen (their rho are in concepts.parquet)"
    );
    let (anchors, positives, negatives) = draw(
        &train_ids,
        &class_of,
        concepts.len(),
        seed,
        k_max,
        passes,
        pool,
    );
    let prep = Prepared {
        rho: rho(&concepts),
        concepts,
        class_of,
        train_ids,
        test_ids,
        anchors,
        positives,
        negatives,
        k_max,
        passes,
    };
    save(store, &dir, key, &prep).await?;
    Ok(prep)
}

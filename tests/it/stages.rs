//! Stages on `memory://`, and the pool sampler against theory.

use arrow::array::{Array, Float64Array};
use negsweep::exec::{self, NoProgress, RunOptions};
use negsweep::negatives::{self, Pool};
use negsweep::plan::{self, Shared};
use negsweep::spec::{PipelineSpec, Strategy};
use negsweep::stages::pools::{self, Concept, Prepared};
use negsweep::stages::{ingest, tables};
use negsweep::storage::{Store, read_parquet};
use negsweep::theory;

use crate::tiny;

/// The pool uniform points draw.
fn uniform() -> &'static dyn Pool {
    negatives::strategy(Strategy::Uniform).pool()
}

/// The pool collision-free points draw.
fn collision_free() -> &'static dyn Pool {
    negatives::strategy(Strategy::CollisionFree).pool()
}

const OPTS: RunOptions = RunOptions {
    shard: None,
    jobs: 2,
    threads_per_job: 1,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_pipeline_on_memory_store() {
    let url = "memory://stages-e2e/out";
    let spec = PipelineSpec::parse("mem.toml", &tiny(url, "k = [1, 4]\nn = [4, 8]")).unwrap();
    let plan = plan::resolve(&spec, "mem.toml").unwrap();
    let report = exec::run(&plan, OPTS, &NoProgress).await.unwrap();
    assert_eq!((report.total, report.skipped, report.computed), (4, 0, 4));
    assert!(report.failed.is_empty());

    let store = Store::open_str(url, &Default::default()).unwrap();
    let listed: Vec<String> = store
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    let parts: Vec<&String> = listed
        .iter()
        .filter(|p| p.starts_with("results/dataset=tiny-text/n="))
        .collect();
    assert_eq!(parts.len(), 4, "{listed:?}");
    for part in &parts {
        let (schema, batches) = read_parquet(&store, part).await.unwrap();
        // Part files store the partition columns too.
        assert_eq!(schema.fields(), tables::results(true).fields());
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    }
    for name in ["summary.parquet", "best_k.parquet", "results.arrow"] {
        assert!(
            listed.contains(&name.to_owned()),
            "{name} missing from {listed:?}"
        );
    }
    assert_eq!(
        listed.iter().filter(|p| p.starts_with("models/")).count(),
        4
    );
    // Ingested examples read back equal to the generator's output.
    let ds = &plan.datasets[0];
    let examples = ingest::load(
        &store,
        &format!("datasets/{}-{}/examples.parquet", ds.name, ds.key),
    )
    .await
    .unwrap();
    assert_eq!(examples.len(), 8 * 12);
    // Each pool's concepts table holds N classes whose rho sums to 1.
    for n in [4u32, 8] {
        let pool_dir = listed
            .iter()
            .find(|p| {
                p.starts_with(&format!("pools/tiny-text/n={n}/")) && p.ends_with("concepts.parquet")
            })
            .unwrap();
        let (_, b) = read_parquet(&store, pool_dir).await.unwrap();
        let rho = b[0]
            .column_by_name("rho")
            .unwrap()
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert_eq!(rho.len(), n as usize);
        assert!((rho.values().iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    let again = exec::run(&plan, OPTS, &NoProgress).await.unwrap();
    assert_eq!((again.skipped, again.computed), (4, 0));
    let summary = again.summary.unwrap();
    assert_eq!(summary.by_k.height(), 4);
    assert_eq!(summary.best_k.height(), 2);
    let best = summary
        .best_k
        .column("best_k")
        .unwrap()
        .u32()
        .unwrap()
        .into_no_null_iter()
        .collect::<Vec<_>>();
    assert!(best.iter().all(|k| [1, 4].contains(k)), "{best:?}");
}

fn shared(k_max: u32, passes: u32) -> Shared {
    Shared {
        test_fraction: 0.25,
        min_examples: 4,
        hard: negsweep::plan::HardConfig {
            min_rank: 1,
            max_rank: 64,
            reference: None,
            refresh: 50,
            max_score: None,
            min_score: None,
        },
        tau_plus: 0.1,
        detector: negsweep::plan::DetectorConfig {
            detector: negsweep::spec::Detector::Oracle,
            threshold: None,
        },
        momentum: f64::NAN,
        negative_weight: 1.0,
        k_max,
        max_epochs: passes,
        knn: 5,
        checkpoints: false,
        max_examples: 0,
        prior_skew: 0.0,
        label_noise: 0.0,
        weight_decay: 0.0,
        dropout: 0.0,
        precision: negsweep::spec::Precision::F32,
        probe_epochs: 0,
        augment: negsweep::data::augment::Augment {
            crop: 1.0,
            flip: false,
            jitter: 0.0,
            noise: 0.0,
        },
    }
}

/// Skewed classes: class c has 10 (c + 1) training examples.
fn skewed(n: usize) -> (Vec<u32>, Vec<u32>, Vec<f64>) {
    let mut class_of = Vec::new();
    for c in 0..n {
        class_of.extend(std::iter::repeat_n(c as u32, 10 * (c + 1)));
    }
    let train: Vec<u32> = (0..class_of.len() as u32).collect();
    let total = class_of.len() as f64;
    let rho = (0..n).map(|c| 10.0 * (c + 1) as f64 / total).collect();
    (train, class_of, rho)
}

#[test]
fn measured_collisions_and_coverage_match_theory_on_100k_anchors() {
    let n = 10;
    let (train, class_of, rho) = skewed(n);
    let passes = 100_000usize.div_ceil(train.len());
    let (anchors, positives, negatives) =
        pools::draw(&train, &class_of, n, 7, 64, passes, uniform());
    let rows = anchors.len();
    assert!(rows >= 100_000);
    for (a, p) in anchors.iter().zip(&positives) {
        assert_ne!(a, p, "a positive is another example");
        assert_eq!(
            class_of[*a as usize], class_of[*p as usize],
            "a positive shares the concept"
        );
    }
    let concepts = (0..n)
        .map(|c| Concept {
            label: c as u32,
            name: format!("c{c}"),
            n_train: 10 * (c as u32 + 1),
            n_test: 0,
        })
        .collect();
    let prep = Prepared {
        concepts,
        rho: rho.clone(),
        class_of: class_of.clone(),
        train_ids: train.clone(),
        test_ids: vec![],
        anchors,
        positives,
        negatives,
        k_max: 64,
        passes,
    };
    for k in [1u32, 2, 4, 8, 16, 32, 64] {
        let s = prep.stats(k as usize, rows);
        let tau = theory::collision_probability(&rho, k);
        let sigma = (tau * (1.0 - tau) / rows as f64).sqrt();
        assert!(
            (s.collision_rate - tau).abs() <= 4.0 * sigma + 1e-9,
            "k={k}: measured {} vs tau_k {tau}",
            s.collision_rate
        );
        let expected = theory::expected_collisions(&rho, k);
        assert!(
            (s.collisions_mean - expected).abs() < 0.02 * expected.max(0.05),
            "k={k}: {} vs {expected}",
            s.collisions_mean
        );
        assert!(
            (0.0..=1.0).contains(&s.coverage_rate) && (0.0..=1.0).contains(&s.covered_fraction)
        );
    }
    // With k = 1 at most one other concept is covered: full coverage of 9 others is impossible.
    assert_eq!(prep.stats(1, rows).coverage_rate, 0.0);
    // Coverage of every other concept against the occupancy theory for the measured counts
    // (the anchor's concept drawn with frequency rho, as pool anchors are).
    let counts = prep.train_counts();
    for k in [9u32, 16, 32, 48, 64] {
        let s = prep.stats(k as usize, rows);
        let p = theory::coverage_probability_counts(&counts, k);
        let sigma = (p * (1.0 - p) / rows as f64).sqrt();
        assert!(
            (s.coverage_rate - p).abs() <= 4.0 * sigma + 1e-9,
            "k={k}: measured coverage {} vs theory {p}",
            s.coverage_rate
        );
        let hist_total: u32 = s.collisions_hist.iter().sum();
        assert_eq!(hist_total as usize, rows);
        assert!(
            (s.collision_rate - (1.0 - f64::from(s.collisions_hist[0]) / rows as f64)).abs()
                < 1e-12
        );
    }
}

#[test]
fn collision_free_pools_hold_no_collision_and_draw_every_other_concept_uniformly() {
    let n = 6;
    let (train, class_of, _) = skewed(n);
    let (anchors, _, negatives) = pools::draw(&train, &class_of, n, 11, 32, 20, collision_free());
    let mut hits = vec![vec![0usize; n]; n];
    for (r, &a) in anchors.iter().enumerate() {
        let c = class_of[a as usize] as usize;
        for &x in &negatives[r * 32..(r + 1) * 32] {
            let xc = class_of[x as usize] as usize;
            assert_ne!(xc, c, "row {r}: negative {x} collides with anchor {a}");
            hits[c][xc] += 1;
        }
    }
    // Within the other concepts, draws follow their sizes (10 (j + 1) examples each).
    for (c, row) in hits.iter().enumerate() {
        let total: usize = row.iter().sum();
        let others: usize = (0..n).filter(|&j| j != c).map(|j| 10 * (j + 1)).sum();
        for (j, &h) in row.iter().enumerate().filter(|(j, _)| *j != c) {
            let p = (10 * (j + 1)) as f64 / others as f64;
            let sigma = (p * (1.0 - p) / total as f64).sqrt();
            let got = h as f64 / total as f64;
            assert!(
                (got - p).abs() < 4.0 * sigma,
                "anchor concept {c}, concept {j}: {got} vs {p}"
            );
        }
    }
}

#[test]
fn pool_prefixes_do_not_depend_on_k_max_or_passes() {
    let (train, class_of, _) = skewed(5);
    let (a1, p1, n1) = pools::draw(&train, &class_of, 5, 3, 8, 1, uniform());
    let (a2, p2, n2) = pools::draw(&train, &class_of, 5, 3, 16, 2, uniform());
    assert_eq!(a1[..], a2[..a1.len()]);
    assert_eq!(p1[..], p2[..p1.len()]);
    for r in 0..a1.len() {
        assert_eq!(n1[r * 8..r * 8 + 8], n2[r * 16..r * 16 + 8]);
    }
    let (_, _, n3) = pools::draw(&train, &class_of, 5, 4, 8, 1, uniform());
    assert_ne!(n1, n3, "another seed draws other negatives");
}

#[test]
fn concepts_are_a_stratified_seeded_subsample() {
    let ex = negsweep::data::synthetic::text(20, 12, 50, 5, 0.5, 0);
    let pools::Chosen {
        concepts: c1,
        class_of,
        train,
        test,
    } = pools::choose(&ex, 6, 1, &shared(4, 1), "here").unwrap();
    let c2 = pools::choose(&ex, 6, 2, &shared(4, 1), "here")
        .unwrap()
        .concepts;
    assert_eq!(c1.len(), 6);
    assert_ne!(c1, c2, "seeds choose different concepts");
    for (class, c) in c1.iter().enumerate() {
        let tr = train
            .iter()
            .filter(|&&i| class_of[i as usize] == class as u32)
            .count();
        let te = test
            .iter()
            .filter(|&&i| class_of[i as usize] == class as u32)
            .count();
        assert_eq!((tr, te), (9, 3), "concept {}", c.name);
        assert!(
            train
                .iter()
                .chain(&test)
                .all(|&i| ex.labels[i as usize] == c1[class_of[i as usize] as usize].label)
        );
    }
    let err = pools::choose(&ex, 21, 1, &shared(4, 1), "ds-location")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ds-location") && err.contains("N = 21"),
        "{err}"
    );
}

#[test]
fn a_prior_skew_keeps_a_zipf_share_of_each_concept() {
    // 8 concepts of 40 examples; s = 1: the i-th chosen keeps ceil(40 / i), at least 3.
    let ex = negsweep::data::synthetic::text(8, 40, 50, 5, 0.5, 0);
    let skewed = Shared {
        prior_skew: 1.0,
        ..shared(4, 1)
    };
    let chosen = pools::choose(&ex, 8, 3, &skewed, "here").unwrap();
    let kept: Vec<u32> = chosen
        .concepts
        .iter()
        .map(|c| c.n_train + c.n_test)
        .collect();
    assert_eq!(kept, [40, 20, 14, 10, 8, 7, 6, 5]);
    // The classes keep their split (a quarter held out, rounded) and their own examples.
    assert_eq!(
        chosen.concepts.iter().map(|c| c.n_test).collect::<Vec<_>>(),
        [10, 5, 4, 3, 2, 2, 2, 1]
    );
    let plain = pools::choose(&ex, 8, 3, &shared(4, 1), "here").unwrap();
    assert_eq!(
        chosen.concepts.iter().map(|c| c.label).collect::<Vec<_>>(),
        plain.concepts.iter().map(|c| c.label).collect::<Vec<_>>(),
        "the skew resamples the same concepts in the same order"
    );
    // A steep skew still leaves three examples: one to test, two to train.
    let steep = Shared {
        prior_skew: 8.0,
        ..shared(4, 1)
    };
    let chosen = pools::choose(&ex, 8, 3, &steep, "here").unwrap();
    assert!(
        chosen.concepts[1..]
            .iter()
            .all(|c| (c.n_train, c.n_test) == (2, 1))
    );
}

#[test]
fn label_noise_relabels_that_share_of_training_examples_and_no_test_example() {
    // 4 concepts of 400: 300 training examples each, 1,200 in all.
    let ex = negsweep::data::synthetic::text(4, 400, 50, 5, 0.5, 0);
    let noisy = Shared {
        label_noise: 0.5,
        ..shared(4, 1)
    };
    let chosen = pools::choose(&ex, 4, 7, &noisy, "here").unwrap();
    let truth = |id: u32| {
        let label = ex.labels[id as usize];
        chosen
            .concepts
            .iter()
            .position(|c| c.label == label)
            .unwrap() as u32
    };
    let moved = chosen
        .train
        .iter()
        .filter(|&&id| chosen.class_of[id as usize] != truth(id))
        .count();
    // A relabelled example keeps its own concept one time in N: 0.5 * 3/4 = 0.375 expected,
    // standard deviation sqrt(0.375 * 0.625 / 1200) = 0.014; six of them either side.
    let share = moved as f64 / chosen.train.len() as f64;
    assert!((share - 0.375).abs() < 0.084, "{share}");
    assert!(
        chosen
            .test
            .iter()
            .all(|&id| chosen.class_of[id as usize] == truth(id))
    );
    for (class, c) in chosen.concepts.iter().enumerate() {
        let count = chosen
            .train
            .iter()
            .filter(|&&id| chosen.class_of[id as usize] == class as u32)
            .count();
        assert_eq!(c.n_train as usize, count, "{}", c.name);
    }
    // Seeded: the same noise again, other noise for another seed's stream.
    let again = pools::choose(&ex, 4, 7, &noisy, "here").unwrap();
    assert_eq!(again.class_of, chosen.class_of);
    // Tiny concepts are never emptied: every concept keeps two training examples to draw a
    // positive from, and some examples still move.
    let small = negsweep::data::synthetic::text(4, 4, 50, 5, 0.5, 0);
    let heavy = Shared {
        label_noise: 0.99,
        ..shared(4, 1)
    };
    let mut moved = 0;
    for seed in 0..20 {
        let c = pools::choose(&small, 4, seed, &heavy, "here").unwrap();
        for (class, concept) in c.concepts.iter().enumerate() {
            let count = c
                .train
                .iter()
                .filter(|&&id| c.class_of[id as usize] == class as u32)
                .count();
            assert_eq!(concept.n_train as usize, count);
            assert!(count >= 2, "seed {seed}: {} keeps {count}", concept.name);
        }
        moved += c
            .train
            .iter()
            .filter(|&&id| {
                let label = small.labels[id as usize];
                c.concepts[c.class_of[id as usize] as usize].label != label
            })
            .count();
    }
    assert!(moved > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_pipelines_with_mlp_and_cnn_encoders_run() {
    for encoder in ["mlp", "cnn"] {
        let url = format!("memory://stages-images/{encoder}");
        let text = format!(
            r#"
[pipeline]
name = "img"
output = "{url}"

[[datasets]]
kind = "synthetic-image"
name = "img"
concepts = 6
examples-per-concept = 12
size = 8
difficulty = 0.3

[train]
encoder = "{encoder}"
channels = [4, 8]
dim = 8
hidden = 16
batch-size = 16
epochs = 3
lr = 0.01

[sweep]
k = [2, 8]
"#
        );
        let spec = PipelineSpec::parse("img.toml", &text).unwrap();
        let plan = plan::resolve(&spec, "img.toml").unwrap();
        let report = exec::run(&plan, OPTS, &NoProgress).await.unwrap();
        assert_eq!(report.computed, 2, "{encoder}");
        let summary = report.summary.unwrap();
        let acc = summary
            .by_k
            .column("mean_acc")
            .unwrap()
            .f64()
            .unwrap()
            .into_no_null_iter()
            .collect::<Vec<_>>();
        assert!(
            acc.iter().all(|a| (0.0..=1.0).contains(a)),
            "{encoder}: {acc:?}"
        );
        let store = Store::open_str(&url, &Default::default()).unwrap();
        let models: Vec<String> = store
            .list("models")
            .await
            .unwrap()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(models.len(), 2);
        let bytes = store.get(&models[0]).await.unwrap().unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let names = st.names();
        let want = if encoder == "cnn" {
            "conv1.weight"
        } else {
            "fc1.weight"
        };
        assert!(names.contains(&want), "{encoder}: {names:?}");
    }
}

#[test]
fn cnn_settings_are_checked() {
    let text = tiny("memory:///x", "k = [1]").replace("[train]", "[train]\nencoder = \"cnn\"");
    let err = plan::resolve(&PipelineSpec::parse("p.toml", &text).unwrap(), "p.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`cnn` does not apply to Text dataset"),
        "{err}"
    );
    let image = r#"
[pipeline]
name = "i"
output = "memory:///i"
[[datasets]]
kind = "synthetic-image"
name = "i"
size = 12
[train]
encoder = "cnn"
channels = [4, 4, 4]
"#;
    let err = plan::resolve(&PipelineSpec::parse("i.toml", image).unwrap(), "i.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`train.channels`") && err.contains("divisible by 8"),
        "{err}"
    );
}

/// The rows of `results.arrow` in a store.
async fn results_of(store: &Store) -> arrow::array::RecordBatch {
    let bytes = store.get("results.arrow").await.unwrap().unwrap();
    let reader =
        arrow::ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes.to_vec()), None)
            .unwrap();
    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_strategy_and_the_debiased_loss_run_and_are_accounted() {
    use arrow::array::AsArray;
    let url = "memory://strategies/out";
    let sweep = "k = [2, 4]\nn = [8]\nstrategy = [\"uniform\", \"collision-free\", \"in-batch\", \"hard\"]\n\n[negatives.hard]\nmax-rank = 16\nrefresh = 3";
    let spec = PipelineSpec::parse("s.toml", &tiny(url, sweep)).unwrap();
    let plan = plan::resolve(&spec, "s.toml").unwrap();
    let report = exec::run(&plan, OPTS, &NoProgress).await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.computed, 8);
    let store = Store::open_str(url, &Default::default()).unwrap();
    let rows = results_of(&store).await;
    let strategy = rows.column_by_name("strategy").unwrap().as_string::<i32>();
    let k = rows
        .column_by_name("k")
        .unwrap()
        .as_primitive::<arrow::datatypes::UInt32Type>();
    let f = |name: &str| {
        rows.column_by_name(name)
            .unwrap()
            .as_primitive::<arrow::datatypes::Float64Type>()
            .clone()
    };
    let (collisions, acc, cov_theory) = (f("collision_rate"), f("mean_acc"), f("coverage_theory"));
    for i in 0..rows.num_rows() {
        let s = strategy.value(i);
        assert!(
            acc.value(i).is_finite() && (0.0..=1.0).contains(&acc.value(i)),
            "{s}"
        );
        assert!((0.0..=1.0).contains(&cov_theory.value(i)));
        match s {
            "collision-free" => assert_eq!(collisions.value(i), 0.0),
            "uniform" if k.value(i) == 4 => assert!(collisions.value(i) > 0.1),
            "uniform" | "in-batch" | "hard" => {}
            other => panic!("unexpected strategy {other}"),
        }
    }
    // Two pools per (N, seed): the uniform one (shared by in-batch and hard) and the
    // collision-free one, each with its statistics table.
    let listed: Vec<String> = store
        .list("pools")
        .await
        .unwrap()
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    let stats: Vec<&String> = listed
        .iter()
        .filter(|p| p.ends_with("stats.parquet"))
        .collect();
    assert_eq!(stats.len(), 2, "{listed:?}");
    let mut free_tables = 0;
    for rel in stats {
        let (_, b) = read_parquet(&store, rel).await.unwrap();
        let b = &b[0];
        let ks: Vec<u32> = b
            .column_by_name("k")
            .unwrap()
            .as_primitive::<arrow::datatypes::UInt32Type>()
            .values()
            .to_vec();
        assert_eq!(ks, vec![1, 2, 4]);
        let rate = b
            .column_by_name("collision_rate")
            .unwrap()
            .as_primitive::<arrow::datatypes::Float64Type>();
        if rate.values().iter().all(|&r| r == 0.0) {
            free_tables += 1;
            let hist = b
                .column_by_name("collisions_hist")
                .unwrap()
                .as_list::<i32>();
            let anchors = b
                .column_by_name("anchors")
                .unwrap()
                .as_primitive::<arrow::datatypes::UInt32Type>();
            for i in 0..b.num_rows() {
                let h = hist.value(i);
                let h = h.as_primitive::<arrow::datatypes::UInt32Type>();
                assert_eq!(h.values().to_vec(), vec![anchors.value(i)]);
            }
        }
    }
    assert_eq!(
        free_tables, 1,
        "exactly the collision-free pool has no collision"
    );

    // Hard negatives under a fixed reference: the checkpoint of the uniform k = 4 point.
    let uniform4 = plan
        .points
        .iter()
        .find(|p| p.k == 4 && p.strategy == Strategy::Uniform)
        .unwrap();
    let model = listed_models(&store, &uniform4.id).await;
    let hard = format!(
        "k = [4]\nn = [8]\nstrategy = [\"hard\"]\n\n[negatives.hard]\nmin-rank = 3\nmax-rank = 20\nreference = \"{model}\""
    );
    let spec = PipelineSpec::parse("h.toml", &tiny(url, &hard)).unwrap();
    let plan = plan::resolve(&spec, "h.toml").unwrap();
    let report = exec::run(&plan, OPTS, &NoProgress).await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.computed, 1);
    // A missing reference fails the point with a message naming it.
    let missing = hard.replace(&model, "models/nothing.safetensors");
    let spec = PipelineSpec::parse("m.toml", &tiny(url, &missing)).unwrap();
    let plan = plan::resolve(&spec, "m.toml").unwrap();
    let report = exec::run(&plan, OPTS, &NoProgress).await.unwrap();
    assert_eq!(report.failed.len(), 1);
    assert!(
        report.failed[0].1.contains("nothing.safetensors"),
        "{:?}",
        report.failed
    );

    // The debiased loss trains and evaluates.
    let url = "memory://strategies/debiased";
    let spec = PipelineSpec::parse(
        "d.toml",
        &tiny(url, "k = [4]\nn = [8]\nloss = [\"debiased\", \"infonce\"]"),
    )
    .unwrap();
    let plan = plan::resolve(&spec, "d.toml").unwrap();
    let report = exec::run(&plan, OPTS, &NoProgress).await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let rows = results_of(&Store::open_str(url, &Default::default()).unwrap()).await;
    let tau_plus = rows
        .column_by_name("tau_plus")
        .unwrap()
        .as_primitive::<arrow::datatypes::Float64Type>();
    let loss = rows.column_by_name("loss").unwrap().as_string::<i32>();
    for i in 0..rows.num_rows() {
        let want = if loss.value(i) == "debiased" {
            0.1
        } else {
            0.0
        };
        assert_eq!(tau_plus.value(i), want);
    }
}

/// The checkpoint file of point `id`.
async fn listed_models(store: &Store, id: &str) -> String {
    store
        .list("models")
        .await
        .unwrap()
        .into_iter()
        .map(|(p, _)| p)
        .find(|p| p.contains(id))
        .unwrap()
}

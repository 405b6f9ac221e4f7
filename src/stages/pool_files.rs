//! A pool on disk: `concepts.parquet`, `split.parquet`, `pool.parquet` (with per-row
//! collision and coverage counts), `stats.parquet` and the manifest; written after drawing,
//! read back and checked when reused.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, Float64Array, ListArray, ListBuilder, RecordBatch, StringArray, UInt32Array,
    UInt32Builder,
};
use arrow::datatypes::{DataType, Field, Schema};

use super::pools::{Concept, PoolStats, Prepared, rho};
use super::{Manifest, tables};
use crate::storage::{Store, encode_parquet, read_parquet, write_parquet};
use crate::{Error, Result};

pub(super) async fn save(store: &Store, dir: &str, key: &str, p: &Prepared) -> Result<()> {
    let c = &p.concepts;
    let concepts = RecordBatch::try_new(
        tables::concepts(),
        vec![
            Arc::new(UInt32Array::from_iter_values(0..c.len() as u32)),
            Arc::new(UInt32Array::from_iter_values(c.iter().map(|c| c.label))),
            Arc::new(StringArray::from_iter_values(
                c.iter().map(|c| c.name.as_str()),
            )),
            Arc::new(UInt32Array::from_iter_values(c.iter().map(|c| c.n_train))),
            Arc::new(UInt32Array::from_iter_values(c.iter().map(|c| c.n_test))),
            Arc::new(Float64Array::from(p.rho.clone())),
        ],
    )?;
    write_parquet(
        store,
        &format!("{dir}/concepts.parquet"),
        tables::concepts(),
        &[concepts],
    )
    .await?;
    let ids: Vec<u32> = p.train_ids.iter().chain(&p.test_ids).copied().collect();
    let split = RecordBatch::try_new(
        tables::split(),
        vec![
            Arc::new(UInt32Array::from(ids.clone())),
            Arc::new(UInt32Array::from_iter_values(
                ids.iter().map(|&i| p.class_of[i as usize]),
            )),
            Arc::new(StringArray::from_iter_values(
                std::iter::repeat_n("train", p.train_ids.len())
                    .chain(std::iter::repeat_n("test", p.test_ids.len())),
            )),
        ],
    )?;
    write_parquet(
        store,
        &format!("{dir}/split.parquet"),
        tables::split(),
        &[split],
    )
    .await?;

    let rows = p.anchors.len();
    let n = p.concepts.len();
    let mut negs = ListBuilder::with_capacity(UInt32Builder::with_capacity(rows * p.k_max), rows)
        .with_field(Arc::new(Field::new("item", DataType::UInt32, false)));
    let (mut coll, mut cov) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
    let mut seen = vec![usize::MAX; n];
    for r in 0..rows {
        let row = &p.negatives[r * p.k_max..(r + 1) * p.k_max];
        negs.values().append_slice(row);
        negs.append(true);
        let c = p.class_of[p.anchors[r] as usize];
        let (mut k, mut d) = (0u32, 0u32);
        for &x in row {
            let xc = p.class_of[x as usize];
            if xc == c {
                k += 1;
            } else if seen[xc as usize] != r {
                seen[xc as usize] = r;
                d += 1;
            }
        }
        coll.push(k);
        cov.push(d);
    }
    let n_train = p.train_ids.len().max(1) as u32;
    let meta = HashMap::from([
        ("negsweep.k_max".to_owned(), p.k_max.to_string()),
        ("negsweep.passes".to_owned(), p.passes.to_string()),
    ]);
    let schema = Arc::new(Schema::new_with_metadata(
        tables::pool().fields().clone(),
        meta,
    ));
    let pool = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(UInt32Array::from_iter_values(0..rows as u32)),
            Arc::new(UInt32Array::from_iter_values(
                (0..rows as u32).map(|r| r / n_train),
            )),
            Arc::new(UInt32Array::from(p.anchors.clone())),
            Arc::new(UInt32Array::from(p.positives.clone())),
            Arc::new(negs.finish()),
            Arc::new(UInt32Array::from(coll)),
            Arc::new(UInt32Array::from(cov)),
        ],
    )?;
    let bytes = encode_parquet(schema, &[pool])?;
    let hash = super::data_hash(&bytes);
    store
        .put(&format!("{dir}/pool.parquet"), bytes.into())
        .await?;
    write_parquet(
        store,
        &format!("{dir}/stats.parquet"),
        tables::pool_stats(),
        &[stats_table(p)?],
    )
    .await?;
    Manifest {
        stage: "negatives".into(),
        key: key.into(),
        data_hash: hash,
        k_max: p.k_max as u32,
        passes: p.passes as u32,
        version: crate::VERSION.into(),
    }
    .write(store, dir)
    .await
}

/// The pool's collision and coverage accounting at k = 1, 2, 4, ... and k_max.
pub(super) fn stats_table(p: &Prepared) -> Result<RecordBatch> {
    let mut ks: Vec<usize> = std::iter::successors(Some(1usize), |k| Some(k * 2))
        .take_while(|&k| k < p.k_max)
        .collect();
    ks.push(p.k_max);
    let counts = p.train_counts();
    let rows = p.anchors.len();
    let stats: Vec<PoolStats> = ks.iter().map(|&k| p.stats(k, rows)).collect();
    let f = |g: &dyn Fn(&PoolStats) -> f64| {
        Arc::new(Float64Array::from_iter_values(stats.iter().map(g)))
    };
    let theory = |g: &dyn Fn(u32) -> f64| {
        Arc::new(Float64Array::from_iter_values(
            ks.iter().map(|&k| g(k as u32)),
        ))
    };
    let mut hist = ListBuilder::new(UInt32Builder::new()).with_field(Arc::new(Field::new(
        "item",
        DataType::UInt32,
        false,
    )));
    for s in &stats {
        hist.values().append_slice(&s.collisions_hist);
        hist.append(true);
    }
    Ok(RecordBatch::try_new(
        tables::pool_stats(),
        vec![
            Arc::new(UInt32Array::from_iter_values(ks.iter().map(|&k| k as u32))),
            Arc::new(UInt32Array::from_iter_values(
                stats.iter().map(|s| s.anchors as u32),
            )),
            f(&|s| s.collision_rate),
            f(&|s| s.collisions_mean),
            Arc::new(hist.finish()),
            f(&|s| s.covered_mean),
            f(&|s| s.covered_fraction),
            f(&|s| s.coverage_rate),
            theory(&|k| crate::theory::collision_probability(&p.rho, k)),
            theory(&|k| crate::theory::expected_collisions(&p.rho, k)),
            theory(&|k| crate::theory::coverage_probability_counts(&counts, k)),
        ],
    )?)
}

fn col<'a, T: 'static>(b: &'a RecordBatch, name: &str, location: &str) -> Result<&'a T> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| {
            Error::data(
                location,
                format!("column `{name}` is missing or has the wrong type"),
            )
        })
}

pub(super) async fn load(
    store: &Store,
    dir: &str,
    n_examples: usize,
    k_max: usize,
    passes: usize,
) -> Result<Prepared> {
    let rel = format!("{dir}/concepts.parquet");
    let loc = store.display(&rel);
    let (_, batches) = read_parquet(store, &rel).await?;
    let mut concepts = Vec::new();
    for b in &batches {
        let (l, nm) = (
            col::<UInt32Array>(b, "label", &loc)?,
            col::<StringArray>(b, "concept", &loc)?,
        );
        let (tr, te) = (
            col::<UInt32Array>(b, "n_train", &loc)?,
            col::<UInt32Array>(b, "n_test", &loc)?,
        );
        for i in 0..b.num_rows() {
            concepts.push(Concept {
                label: l.value(i),
                name: nm.value(i).to_owned(),
                n_train: tr.value(i),
                n_test: te.value(i),
            });
        }
    }
    let rel = format!("{dir}/split.parquet");
    let loc = store.display(&rel);
    let (_, batches) = read_parquet(store, &rel).await?;
    let mut class_of = vec![u32::MAX; n_examples];
    let (mut train_ids, mut test_ids) = (Vec::new(), Vec::new());
    for b in &batches {
        let (id, cl, sp) = (
            col::<UInt32Array>(b, "id", &loc)?,
            col::<UInt32Array>(b, "class", &loc)?,
            col::<StringArray>(b, "split", &loc)?,
        );
        for i in 0..b.num_rows() {
            let e = id.value(i) as usize;
            if e >= n_examples || cl.value(i) as usize >= concepts.len() {
                return Err(Error::data(
                    &loc,
                    format!("row {i} refers to an example or class that does not exist"),
                ));
            }
            class_of[e] = cl.value(i);
            if sp.value(i) == "train" {
                train_ids.push(id.value(i))
            } else {
                test_ids.push(id.value(i))
            }
        }
    }
    let rel = format!("{dir}/pool.parquet");
    let loc = store.display(&rel);
    let (_, batches) = read_parquet(store, &rel).await?;
    let (mut anchors, mut positives, mut negatives) = (Vec::new(), Vec::new(), Vec::new());
    for b in &batches {
        anchors.extend_from_slice(col::<UInt32Array>(b, "anchor", &loc)?.values());
        positives.extend_from_slice(col::<UInt32Array>(b, "positive", &loc)?.values());
        let l = col::<ListArray>(b, "negatives", &loc)?;
        let v = l
            .values()
            .as_any()
            .downcast_ref::<UInt32Array>()
            .ok_or_else(|| Error::data(&loc, "column `negatives` is not a list of u32"))?;
        let offsets = l.value_offsets();
        let (start, end) = (offsets[0] as usize, offsets[l.len()] as usize);
        negatives.extend_from_slice(&v.values()[start..end]);
    }
    if negatives.len() != anchors.len() * k_max || anchors.len() != passes * train_ids.len() {
        return Err(Error::data(
            &loc,
            format!(
                "pool holds {} rows and {} negatives; its manifest promises {passes} passes x {} anchors x {k_max}",
                anchors.len(),
                negatives.len(),
                train_ids.len()
            ),
        ));
    }
    if anchors
        .iter()
        .chain(&positives)
        .chain(&negatives)
        .any(|&i| i as usize >= n_examples)
    {
        return Err(Error::data(
            &loc,
            "pool refers to examples that do not exist",
        ));
    }
    Ok(Prepared {
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
    })
}

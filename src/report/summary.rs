//! The Polars summary: mean and spread over seeds, and the best k per N.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Cursor;

use polars::prelude::*;

use crate::Result;
use crate::plan::axes::{Role, axis};
use crate::stages::columns::MEANS;

/// Summary tables of a run.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Mean and std over seeds per dataset x N x k (x other swept keys).
    pub by_k: DataFrame,
    /// Best k per dataset x N (x other swept keys).
    pub best_k: DataFrame,
    /// Group columns other than dataset, n and k.
    pub extra_keys: Vec<String>,
}

/// Result column of a swept key that tells groups apart (not N, k or the seed).
fn column_of(key: &str) -> Option<&'static str> {
    axis(key)
        .filter(|a| a.role == Role::Setting)
        .map(|a| a.column)
}

/// Summarises all result rows (Arrow IPC file bytes) with Polars.
pub fn summarise(ipc: Vec<u8>, swept: &[&str]) -> Result<Summary> {
    let df = IpcReader::new(Cursor::new(ipc)).finish()?;
    let extra: Vec<String> = swept
        .iter()
        .filter_map(|k| column_of(k))
        .map(str::to_owned)
        .collect();
    let mut keys: Vec<Expr> = vec![col("dataset"), col("n")];
    keys.extend(extra.iter().map(|c| col(c.as_str())));
    let mut with_k = keys.clone();
    with_k.push(col("k"));
    let sort_names: Vec<PlSmallStr> = ["dataset", "n"]
        .iter()
        .map(|s| PlSmallStr::from(*s))
        .chain(extra.iter().map(|s| PlSmallStr::from(s.as_str())))
        .collect();
    let mut sort_with_k = sort_names.clone();
    sort_with_k.push("k".into());
    let mut aggs = vec![len().cast(DataType::UInt32).alias("seeds")];
    for m in MEANS {
        aggs.push(col(m.column).mean().alias(m.column));
        if m.std {
            aggs.push(col(m.column).std(1).alias(format!("{}_std", m.column)));
        }
    }
    let by_k = df
        .lazy()
        .group_by(with_k)
        .agg(aggs)
        .sort(sort_with_k, SortMultipleOptions::default())
        .collect()?;
    let desc = SortMultipleOptions::default().with_order_descending(true);
    let best_k = by_k
        .clone()
        .lazy()
        .group_by(keys)
        .agg([
            col("k")
                .sort_by([col("mean_acc")], desc.clone())
                .first()
                .alias("best_k"),
            col("mean_acc")
                .sort_by([col("mean_acc")], desc.clone())
                .first()
                .alias("mean_acc"),
            col("mean_acc_std")
                .sort_by([col("mean_acc")], desc)
                .first()
                .alias("mean_acc_std"),
        ])
        .sort(sort_names, SortMultipleOptions::default())
        .collect()?;
    let best_k = with_predicted_k(&by_k, best_k, &extra)?;
    Ok(Summary {
        by_k,
        best_k,
        extra_keys: extra,
    })
}

/// Group key of row `i`: dataset, N and the other swept keys, as text.
fn key_of(df: &DataFrame, i: usize, extra: &[String]) -> Result<Vec<String>> {
    let mut key = vec![cell(df, "dataset", i)?, cell(df, "n", i)?];
    for c in extra {
        key.push(cell(df, c, i)?);
    }
    Ok(key)
}

/// Adds `k_theory`: the swept k minimising Ash et al.'s bound coefficient for that N, with
/// tau_k from the measured class frequencies.
fn with_predicted_k(by_k: &DataFrame, best_k: DataFrame, extra: &[String]) -> Result<DataFrame> {
    let mut taus: BTreeMap<Vec<String>, Vec<(u32, f64)>> = BTreeMap::new();
    let (k, tau) = (by_k.column("k")?.u32()?, by_k.column("tau_k")?.f64()?);
    for i in 0..by_k.height() {
        if let (Some(k), Some(t)) = (k.get(i), tau.get(i)) {
            taus.entry(key_of(by_k, i, extra)?)
                .or_default()
                .push((k, t));
        }
    }
    let n = best_k.column("n")?.u32()?.clone();
    let predicted: Vec<Option<u32>> = (0..best_k.height())
        .map(|i| {
            let key = key_of(&best_k, i, extra)?;
            Ok(n.get(i).and_then(|n| {
                crate::theory::predicted_best_k(n, taus.get(&key).cloned().unwrap_or_default())
            }))
        })
        .collect::<Result<_>>()?;
    let mut best_k = best_k;
    best_k.with_column(Column::new("k_theory".into(), predicted))?;
    Ok(best_k)
}

/// Encodes a frame as Parquet bytes.
pub fn to_parquet(df: &DataFrame) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf).finish(&mut df.clone())?;
    Ok(buf)
}

fn cell(df: &DataFrame, name: &str, row: usize) -> Result<String> {
    Ok(match df.column(name)?.get(row)? {
        AnyValue::Float64(v) => format!("{v:.3}"),
        AnyValue::Null => "-".into(),
        AnyValue::String(s) => s.to_owned(),
        AnyValue::StringOwned(s) => s.to_string(),
        v => v.to_string(),
    })
}

impl Summary {
    /// A compact text table: one line per dataset x N, one column per k with
    /// `mean±std` of the mean-classifier accuracy, then the best k.
    pub fn render(&self) -> Result<String> {
        let df = &self.by_k;
        let mut ks: Vec<u32> = Vec::new();
        let mut lines: BTreeMap<Vec<String>, BTreeMap<u32, String>> = BTreeMap::new();
        let mut order: Vec<Vec<String>> = Vec::new();
        for i in 0..df.height() {
            let mut key = vec![cell(df, "dataset", i)?, cell(df, "n", i)?];
            for c in &self.extra_keys {
                key.push(cell(df, c, i)?);
            }
            let k: u32 = cell(df, "k", i)?.parse().unwrap_or(0);
            if !ks.contains(&k) {
                ks.push(k);
            }
            let v = format!(
                "{}±{}",
                cell(df, "mean_acc", i)?,
                cell(df, "mean_acc_std", i)?
            );
            if !lines.contains_key(&key) {
                order.push(key.clone());
            }
            lines.entry(key).or_default().insert(k, v);
        }
        ks.sort_unstable();
        let mut best = BTreeMap::new();
        for i in 0..self.best_k.height() {
            let mut key = vec![
                cell(&self.best_k, "dataset", i)?,
                cell(&self.best_k, "n", i)?,
            ];
            for c in &self.extra_keys {
                key.push(cell(&self.best_k, c, i)?);
            }
            best.insert(
                key,
                (
                    cell(&self.best_k, "best_k", i)?,
                    cell(&self.best_k, "k_theory", i)?,
                ),
            );
        }
        let mut header: Vec<String> = vec!["dataset".into(), "N".into()];
        header.extend(self.extra_keys.iter().cloned());
        header.extend(ks.iter().map(|k| format!("k={k}")));
        header.push("best k".into());
        header.push("k* (theory)".into());
        let mut rows = vec![header];
        for key in &order {
            let mut r = key.clone();
            for k in &ks {
                r.push(lines[key].get(k).cloned().unwrap_or_else(|| "-".into()));
            }
            let (b, t) = best
                .get(key)
                .cloned()
                .unwrap_or_else(|| ("-".into(), "-".into()));
            r.extend([b, t]);
            rows.push(r);
        }
        let widths: Vec<usize> = (0..rows[0].len())
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::from("mean-classifier top-1 accuracy (mean±std over seeds)\n");
        for r in &rows {
            let line: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(v, w)| format!("{v:>w$}"))
                .collect();
            let _ = writeln!(out, "{}", line.join("  ").trim_end());
        }
        Ok(out)
    }
}

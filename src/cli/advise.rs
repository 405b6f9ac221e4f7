//! `negsweep theory` and `negsweep advise`: the theory's table for given or measured class counts.

#![expect(clippy::print_stdout, reason = "the CLI is where negsweep prints")]

use super::PipelineArgs;
use super::commands::load_keyed;
use super::exit;
use crate::exec;
use crate::storage::Store;
use crate::{Error, Result};

/// The theory table for `n` uniform concepts or for the counts in `rho`.
pub(super) fn theory(
    n: Option<u32>,
    rho: Option<&std::path::Path>,
    ks: Option<Vec<u32>>,
) -> Result<u8> {
    let counts = match (n, rho) {
        (Some(n), _) => vec![1; n as usize],
        (None, Some(path)) => {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::data(&shown, format!("cannot read: {e}")))?;
            crate::advise::parse_counts(&text, &shown)?
        }
        (None, None) => unreachable!("clap requires --concepts or --rho"),
    };
    print_advice(&counts, ks)
}

/// `negsweep advise`: the theory for the class counts of an ingested dataset.
pub(super) async fn advise(dataset: &str, ks: Option<Vec<u32>>) -> Result<u8> {
    let counts = crate::advise::label_counts(dataset).await?;
    print_advice(&counts, ks)
}

/// `negsweep advise PIPELINE`: per dataset and N of the pipeline, the theory for the training
/// counts of the concepts a run chooses (the first swept seed's subsample), at the swept k
/// unless `--k` is given.
pub(super) async fn advise_pipeline(args: &PipelineArgs, ks: Option<Vec<u32>>) -> Result<u8> {
    let plan = load_keyed(args).await?;
    let store = Store::open(&plan.output, &plan.storage)?;
    for (d, ds) in plan.datasets.iter().enumerate() {
        let points: Vec<_> = plan.points.iter().filter(|p| p.dataset == d).collect();
        let Some(seed) = points.first().map(|p| p.seed) else {
            continue;
        };
        let mut ns: Vec<u32> = points.iter().map(|p| p.n).collect();
        ns.sort_unstable();
        ns.dedup();
        let mut swept: Vec<u32> = points.iter().map(|p| p.k).collect();
        swept.sort_unstable();
        swept.dedup();
        let ing = crate::stages::ingest::run(&store, ds, &plan.storage)
            .await
            .map_err(|e| e.in_stage("ingest", None))?;
        // The same refusal as a run's, with the possible N.
        let all: Vec<usize> = (0..plan.points.len()).collect();
        let problems = exec::check_n(&plan, d, &ing.examples, &all);
        if !problems.is_empty() {
            return Err(plan.invalid(problems));
        }
        for n in ns {
            let chosen = crate::stages::pools::choose(
                &ing.examples,
                n,
                seed,
                &plan.shared,
                &ds.source.location(),
            )?;
            let counts: Vec<u64> = chosen
                .concepts
                .iter()
                .map(|c| u64::from(c.n_train))
                .collect();
            println!(
                "dataset `{}`, N = {} (training split, seed {seed}):",
                ds.name,
                counts.len()
            );
            print_advice(&counts, Some(ks.clone().unwrap_or_else(|| swept.clone())))?;
            println!();
        }
    }
    Ok(exit::OK)
}

fn print_advice(counts: &[u64], ks: Option<Vec<u32>>) -> Result<u8> {
    let n = counts.iter().filter(|&&c| c > 0).count() as u32;
    let ks = ks.unwrap_or_else(|| crate::advise::default_ks(n));
    print!("{}", crate::advise::advise(counts, &ks)?.render());
    Ok(exit::OK)
}

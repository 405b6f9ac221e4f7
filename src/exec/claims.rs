//! Claims: before a point trains, the process computing it takes a build lock on
//! `claims/<id>`, so runs started anywhere against one output compute each point once and
//! take over the points of a worker that died.

use std::sync::Arc;

use super::{DatasetInputs, reference_checkpoint, write_point};
use crate::plan::Plan;
use crate::stages::pools::Prepared;
use crate::stages::{layout, point};
use crate::storage::Store;
use crate::{Error, Result};

/// How often a run looks again at points other processes claimed.
pub(super) const CLAIM_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// What became of a point this run set out to compute.
pub(super) enum Computed {
    /// Computed here: its time in optimiser steps.
    Here(f64),
    /// Another process holds its claim: look again later.
    Elsewhere,
    /// Another process finished it since this run listed the results.
    DoneElsewhere,
}

/// Claims point `i` (one process computes it, whichever starts it), computes it and writes it.
/// A claim is a build lock on `claims/<id>`: kept fresh while the point trains, broken when its
/// holder dies, so another process takes the point over.
pub(super) async fn claim_and_compute(
    store: &Store,
    plan: &Arc<Plan>,
    i: usize,
    x: &Arc<DatasetInputs>,
    prep: &Arc<Prepared>,
    threads: usize,
) -> Result<Computed> {
    let p = &plan.points[i];
    let Some(claim) =
        crate::stages::lock::BuildLock::try_acquire(store, &layout::claim(&p.id)).await?
    else {
        return Ok(Computed::Elsewhere);
    };
    let result = async {
        // Finished by another process between this run's listing and its claim.
        let n = prep.concepts.len() as u32;
        if store
            .exists(&layout::result_file(&plan.datasets[p.dataset], p, n))
            .await?
        {
            return Ok(Computed::DoneElsewhere);
        }
        let reference = match p.hard.as_ref().and_then(|h| h.reference.as_deref()) {
            Some(r) => Some(reference_checkpoint(store, r, &plan.storage).await?),
            None => None,
        };
        let computed = {
            let (plan, x, prep) = (Arc::clone(plan), Arc::clone(x), Arc::clone(prep));
            tokio::task::spawn_blocking(move || {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .map_err(|e| Error::Internal(format!("thread pool: {e}")))?;
                pool.install(|| {
                    point::compute(point::PointInputs {
                        plan: &plan,
                        point: &plan.points[i],
                        inputs: &x.x,
                        channels: x.channels,
                        prepared: &prep,
                        data_hash: &x.data_hash,
                        reference: reference.as_deref(),
                    })
                })
            })
            .await
            .unwrap_or_else(|e| Err(Error::Internal(format!("point task panicked: {e}"))))
        }?;
        write_point(store, plan, i, computed)
            .await
            .map(Computed::Here)
    }
    .await;
    claim.release().await?;
    result
}

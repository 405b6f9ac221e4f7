//! negsweep: sweeps the number of negatives in contrastive learning.
//!
//! A pipeline file ([`spec`]) is resolved into a [`plan::Plan`] of sweep points. The executor
//! ([`exec`]) ingests datasets, chooses N concepts and draws negative pools once
//! ([`stages`]), trains one candle encoder per point ([`train`], [`model`]), evaluates it
//! ([`eval`]) and writes one hive-partitioned Parquet row per point plus a Polars summary
//! ([`report`]). All data goes through object_store URLs ([`storage`]).

pub mod adaptive;
pub mod advise;
pub mod analyze;
pub mod bench;
pub mod cli;
pub mod data;
mod error;
pub mod eval;
pub mod exec;
pub mod model;
pub mod negatives;
pub mod objective;
pub mod plan;
pub mod point;
pub mod report;
pub mod spec;
pub mod stages;
pub mod storage;
#[cfg(test)]
mod testing;
pub mod theory;
pub mod train;

#[cfg(test)]
#[test]
fn counts_of_one_are_singular() {
    assert_eq!(count(1, "point"), "1 point");
    assert_eq!(count(0, "point"), "0 points");
    assert_eq!(count(2, "distinct word"), "2 distinct words");
}

/// `n` and `noun`, the noun plural unless `n` is 1: "1 point", "3 points".
pub(crate) fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

pub use error::{Diagnostic, Error, Origin, Result, StorageKind};

/// negsweep's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// negsweep's git revision at build time, when it was built from a checkout.
pub const GIT_REVISION: Option<&str> = option_env!("NEGSWEEP_GIT_REVISION");

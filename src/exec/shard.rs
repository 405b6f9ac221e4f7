//! Which points a process computes when a sweep is split over an array job.
//!
//! Point i of the plan (in plan order, `k` varying fastest) belongs to shard `i mod count`: the
//! assignment is deterministic, every shard gets the same number of points to within one, and
//! neighbouring k values (whose costs differ most) land on different shards.

use std::fmt;

use crate::{Error, Result};

/// One shard of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based index.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Builds a shard, checking `index < count`; `what` names the source in errors.
    pub fn new(index: usize, count: usize, what: &str) -> Result<Self> {
        if count == 0 || index >= count {
            return Err(Error::Usage(format!(
                "{what}: shard {index} of {count} does not exist (need 0 <= index < count)"
            )));
        }
        Ok(Self { index, count })
    }

    /// Parses `I/N` (as given to `--shard`).
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || Error::Usage(format!("--shard {text}: expected INDEX/COUNT, such as 0/4"));
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (i, n) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        Self::new(i, n, "--shard")
    }

    /// The shard an array job's environment names: Slurm (`SLURM_ARRAY_TASK_ID`, counted from
    /// `SLURM_ARRAY_TASK_MIN`, of `SLURM_ARRAY_TASK_COUNT`), a Kubernetes Indexed Job
    /// (`JOB_COMPLETION_INDEX`) or an AWS Batch array job (`AWS_BATCH_JOB_ARRAY_INDEX`), the
    /// latter two with their size in `NEGSWEEP_SHARDS`. `None` outside an array job.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let num = |name: &str| -> Result<Option<usize>> {
            var(name)
                .map(|v| {
                    v.trim().parse().map_err(|_| {
                        Error::Usage(format!("{name}={v} is not a non-negative integer"))
                    })
                })
                .transpose()
        };
        if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            let count = num("SLURM_ARRAY_TASK_COUNT")?.ok_or_else(|| {
                Error::Usage("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not".into())
            })?;
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            return Self::new(id.saturating_sub(min), count, "SLURM_ARRAY_TASK_ID").map(Some);
        }
        for index_var in ["JOB_COMPLETION_INDEX", "AWS_BATCH_JOB_ARRAY_INDEX"] {
            if let Some(index) = num(index_var)? {
                let count = num("NEGSWEEP_SHARDS")?.ok_or_else(|| {
                    Error::Usage(format!(
                        "{index_var} is set but NEGSWEEP_SHARDS (the number of array tasks) is not"
                    ))
                })?;
                return Self::new(index, count, index_var).map(Some);
            }
        }
        Ok(None)
    }

    /// Whether point `i` of the plan is this shard's.
    pub fn owns(&self, i: usize) -> bool {
        i % self.count == self.index
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn shards_partition_the_points_evenly() {
        for count in [1usize, 3, 4, 7] {
            let mut seen = vec![0usize; 50];
            let mut sizes = Vec::new();
            for index in 0..count {
                let s = Shard::new(index, count, "t").unwrap();
                let mine: Vec<usize> = (0..50).filter(|&i| s.owns(i)).collect();
                sizes.push(mine.len());
                for i in mine {
                    seen[i] += 1;
                }
            }
            assert!(seen.iter().all(|&c| c == 1), "every point exactly once");
            let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(hi - lo <= 1, "{sizes:?}");
        }
    }

    #[test]
    fn shards_come_from_the_array_job_environment() {
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_MIN", "4"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(
            Shard::from_env(slurm).unwrap(),
            Some(Shard { index: 1, count: 4 })
        );
        let k8s = env(&[("JOB_COMPLETION_INDEX", "2"), ("NEGSWEEP_SHARDS", "3")]);
        assert_eq!(
            Shard::from_env(k8s).unwrap(),
            Some(Shard { index: 2, count: 3 })
        );
        let batch = env(&[("AWS_BATCH_JOB_ARRAY_INDEX", "0"), ("NEGSWEEP_SHARDS", "8")]);
        assert_eq!(
            Shard::from_env(batch).unwrap(),
            Some(Shard { index: 0, count: 8 })
        );
        assert_eq!(Shard::from_env(env(&[])).unwrap(), None);
        let err = Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "2")])).unwrap_err();
        assert!(err.to_string().contains("NEGSWEEP_SHARDS"), "{err}");
        let err = Shard::from_env(env(&[
            ("JOB_COMPLETION_INDEX", "3"),
            ("NEGSWEEP_SHARDS", "3"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert_eq!(Shard::parse("1/4").unwrap(), Shard { index: 1, count: 4 });
        assert!(Shard::parse("4/4").is_err() && Shard::parse("x").is_err());
    }
}

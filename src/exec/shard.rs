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
            let max = num("SLURM_ARRAY_TASK_MAX")?;
            // `--array=0-8:2` numbers its tasks 0, 2, 4, 6, 8: the shard is the task's place
            // in that sequence. A `%` throttle changes nothing here.
            let step = num("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
            let regular = id >= min
                && (id - min) % step == 0
                && max.is_none_or(|max| max >= min && (max - min) / step + 1 == count);
            if !regular {
                return Err(Error::Usage(format!(
                    "Slurm array task {id} (min {min}, max {}, step {step}, {count} tasks) is \
                     not one of an evenly spaced range: write the array as a range \
                     (`--array=0-{}` or `--array=1-9:2`), or pass --shard INDEX/COUNT",
                    max.map_or_else(|| "unset".to_owned(), |m| m.to_string()),
                    count.saturating_sub(1)
                )));
            }
            return Self::new((id - min) / step, count, "SLURM_ARRAY_TASK_ID").map(Some);
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

    /// The variables Slurm sets for every task of `sbatch --array=SPEC`.
    fn slurm_array(ids: &[usize], step: usize) -> Vec<HashMap<String, String>> {
        let (min, max) = (ids[0], ids[ids.len() - 1]);
        ids.iter()
            .map(|id| {
                HashMap::from([
                    ("SLURM_ARRAY_TASK_ID".to_owned(), id.to_string()),
                    ("SLURM_ARRAY_TASK_MIN".to_owned(), min.to_string()),
                    ("SLURM_ARRAY_TASK_MAX".to_owned(), max.to_string()),
                    ("SLURM_ARRAY_TASK_STEP".to_owned(), step.to_string()),
                    ("SLURM_ARRAY_TASK_COUNT".to_owned(), ids.len().to_string()),
                ])
            })
            .collect()
    }

    #[test]
    fn every_regular_slurm_array_maps_onto_every_shard_once() {
        // `0-4:2`, `1-9:2%1` (a throttle changes no variable), `3-6`, `0-9%2`, `5` (one task).
        for (ids, step) in [
            (vec![0, 2, 4], 2),
            (vec![1, 3, 5, 7, 9], 2),
            (vec![3, 4, 5, 6], 1),
            ((0..10).collect(), 1),
            (vec![5], 1),
        ] {
            let shards: Vec<Shard> = slurm_array(&ids, step)
                .into_iter()
                .map(|vars| {
                    Shard::from_env(move |k| vars.get(k).cloned())
                        .unwrap()
                        .unwrap()
                })
                .collect();
            let mut indices: Vec<usize> = shards.iter().map(|s| s.index).collect();
            indices.sort_unstable();
            assert_eq!(
                indices,
                (0..ids.len()).collect::<Vec<_>>(),
                "{ids:?} step {step}"
            );
            assert!(shards.iter().all(|s| s.count == ids.len()));
        }
        // `--array=1,3,7`: Slurm reports min 1, max 7, step 1 and 3 tasks: no even range.
        let irregular = env(&[
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "7"),
            ("SLURM_ARRAY_TASK_STEP", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ]);
        let err = Shard::from_env(irregular).unwrap_err().to_string();
        assert!(
            err.contains("evenly spaced") && err.contains("--shard"),
            "{err}"
        );
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
            Shard::from_env(env(&[
                ("AWS_BATCH_JOB_ARRAY_INDEX", "7"),
                ("NEGSWEEP_SHARDS", "8")
            ]))
            .unwrap(),
            Some(Shard { index: 7, count: 8 })
        );
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

//! The deployment files: parsed as data, with the fields that decide how a sweep runs checked.

use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

fn deploy(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(rel)
}

fn yaml(rel: &str) -> Value {
    let text = std::fs::read_to_string(deploy(rel)).unwrap();
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.')
        .fold(v, |v, key| match key.parse::<usize>() {
            Ok(i) => &v[i],
            Err(_) => &v[key],
        })
}

fn text<'a>(v: &'a Value, path: &str) -> &'a str {
    at(v, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path} is not a string: {:?}", at(v, path)))
}

/// What matters of a pod's container.
struct Container {
    image: String,
    /// `command` then `args`.
    command: Vec<String>,
    /// `env` entries: name and value.
    env: Vec<(String, String)>,
    /// Secrets loaded with `envFrom`.
    secrets: Vec<String>,
}

/// The pod spec's first container.
fn container(pod: &Value) -> Container {
    let c = at(pod, "containers.0");
    let words = |k: &str| -> Vec<String> {
        c[k].as_sequence()
            .map(|s| s.iter().map(|w| w.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    let mut command = words("command");
    command.extend(words("args"));
    let env = c["env"]
        .as_sequence()
        .map(|s| {
            s.iter()
                .map(|e| {
                    (
                        e["name"].as_str().unwrap().to_owned(),
                        e["value"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let secrets = c["envFrom"]
        .as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|e| e["secretRef"]["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Container {
        image: text(c, "image").to_owned(),
        command,
        env,
        secrets,
    }
}

fn shard_count(env: &[(String, String)]) -> u64 {
    env.iter()
        .find(|(k, _)| k == "NEGSWEEP_SHARDS")
        .map(|(_, v)| v.parse().unwrap())
        .expect("NEGSWEEP_SHARDS is set")
}

#[test]
fn indexed_job_shards_match_completions_and_read_s3_from_a_secret() {
    let job = yaml("k8s/job.yaml");
    assert_eq!(text(&job, "kind"), "Job");
    assert_eq!(text(&job, "spec.completionMode"), "Indexed");
    let completions = at(&job, "spec.completions").as_u64().unwrap();
    let parallelism = at(&job, "spec.parallelism").as_u64().unwrap();
    assert!(parallelism >= 1 && parallelism <= completions);
    let Container {
        image,
        command,
        env,
        secrets,
    } = container(at(&job, "spec.template.spec"));
    assert!(image.contains("negsweep"), "{image}");
    assert_eq!(command[..1], ["run".to_owned()], "{command:?}");
    assert_eq!(
        shard_count(&env),
        completions,
        "NEGSWEEP_SHARDS must equal completions"
    );
    assert_eq!(secrets, ["negsweep-s3"]);
    assert_eq!(text(&job, "spec.template.spec.restartPolicy"), "Never");
    // The pipeline comes from a ConfigMap mounted where the command reads it.
    let mount = text(
        &job,
        "spec.template.spec.containers.0.volumeMounts.0.mountPath",
    );
    assert!(command.iter().any(|w| w.starts_with(mount)), "{command:?}");
    let secret = yaml("k8s/secret.example.yaml");
    assert_eq!(text(&secret, "metadata.name"), "negsweep-s3");
    assert!(at(&secret, "stringData.AWS_SECRET_ACCESS_KEY").is_string());
}

#[test]
fn cronjob_forbids_overlap_and_runs_an_indexed_sweep_then_collects() {
    let cron = yaml("k8s/cronjob.yaml");
    assert_eq!(text(&cron, "kind"), "CronJob");
    assert_eq!(text(&cron, "spec.concurrencyPolicy"), "Forbid");
    assert_eq!(text(&cron, "spec.schedule").split_whitespace().count(), 5);
    let job = at(&cron, "spec.jobTemplate.spec");
    assert_eq!(text(job, "completionMode"), "Indexed");
    let Container {
        image,
        command,
        env,
        secrets,
    } = container(at(job, "template.spec"));
    assert!(image.contains("negsweep"));
    assert_eq!(shard_count(&env), at(job, "completions").as_u64().unwrap());
    assert_eq!(secrets, ["negsweep-s3"]);
    let script = command.join(" ");
    assert!(
        script.contains("negsweep run") && script.contains("negsweep collect"),
        "{script}"
    );
    let collect = yaml("k8s/collect-job.yaml");
    let Container {
        command, secrets, ..
    } = container(at(&collect, "spec.template.spec"));
    assert_eq!(command[0], "collect");
    assert_eq!(secrets, ["negsweep-s3"]);
}

#[test]
fn slurm_scripts_run_an_array_and_collect() {
    let sweep = std::fs::read_to_string(deploy("slurm/sweep.sbatch")).unwrap();
    assert!(sweep.starts_with("#!/bin/bash"));
    assert!(sweep.lines().any(|l| l.starts_with("#SBATCH --array=")));
    let run = sweep.lines().find(|l| l.starts_with("exec ")).unwrap();
    assert!(
        run.contains(" run ") && !run.contains("--shard"),
        "the array env picks the shard: {run}"
    );
    let collect = std::fs::read_to_string(deploy("slurm/collect.sbatch")).unwrap();
    assert!(
        collect
            .lines()
            .any(|l| l.starts_with("exec ") && l.contains(" collect "))
    );
}

#[test]
fn dockerfile_is_multi_stage_with_a_slim_runtime() {
    let docker = std::fs::read_to_string(deploy("Dockerfile")).unwrap();
    let stages: Vec<&str> = docker.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert!(stages[0].contains(" AS build") && stages[1].contains("slim"));
    assert!(docker.contains("cargo build --release --locked"));
    assert!(docker.contains("COPY --from=build"));
    assert!(
        docker
            .lines()
            .any(|l| l.starts_with("ENTRYPOINT") && l.contains("negsweep"))
    );
    assert!(
        docker.lines().any(|l| l.starts_with("USER ")),
        "runs unprivileged"
    );
}

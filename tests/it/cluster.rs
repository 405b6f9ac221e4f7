//! The cluster path for real: a sweep as a 4-task Slurm array whose shards write to SeaweedFS
//! (S3), a run that survives the S3 server being killed mid-run, and storage failures with
//! their exit codes. `.ci/services start` (run by the test command `.ci/test`) starts both
//! services on loopback and `.ci/services env` names them; without them these tests fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::shards::{metrics as file_metrics, metrics_of};
use crate::{negsweep, shown, tiny, write};

/// The kill test restarts the shared server: S3 tests take turns.
static S3_TURN: Mutex<()> = Mutex::new(());

/// The loopback S3 server.
struct S3 {
    endpoint: String,
    key: String,
    secret: String,
    bucket: String,
    services: PathBuf,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: the cluster tests need SeaweedFS and Slurm. Start them with \
             `.ci/services start` and `eval \"$(.ci/services env)\"`, or run the test command `.ci/test`"
        )
    })
}

impl S3 {
    fn from_env() -> Self {
        Self {
            endpoint: var("NEGSWEEP_TEST_S3_ENDPOINT"),
            key: var("NEGSWEEP_TEST_S3_KEY"),
            secret: var("NEGSWEEP_TEST_S3_SECRET"),
            bucket: var("NEGSWEEP_TEST_S3_BUCKET"),
            services: PathBuf::from(var("NEGSWEEP_TEST_SERVICES")),
        }
    }

    /// Credentials and endpoint as a user's environment would hold them.
    fn env(&self, cmd: &mut Command) {
        cmd.env("AWS_ACCESS_KEY_ID", &self.key)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_ENDPOINT", &self.endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_REGION", "us-east-1");
    }

    fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}/", self.bucket)
    }

    fn store(&self) -> Arc<dyn ObjectStore> {
        Arc::new(
            AmazonS3Builder::new()
                .with_bucket_name(&self.bucket)
                .with_endpoint(&self.endpoint)
                .with_allow_http(true)
                .with_region("us-east-1")
                .with_access_key_id(&self.key)
                .with_secret_access_key(&self.secret)
                .build()
                .unwrap(),
        )
    }

    fn service(&self, what: &str) {
        let out = Command::new(&self.services).arg(what).output().unwrap();
        assert!(out.status.success(), "{what}: {}", shown(&out));
    }
}

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}-{}-{nanos}", std::process::id())
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// Object names under `prefix` that satisfy `keep`.
fn listed(store: &Arc<dyn ObjectStore>, prefix: &str, keep: &dyn Fn(&str) -> bool) -> Vec<String> {
    let prefix = ObjectPath::from(prefix);
    rt().block_on(async {
        store
            .list(Some(&prefix))
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.location.to_string())
            .filter(|p| keep(p))
            .collect()
    })
}

/// Metrics of the `results.arrow` under `prefix`, by point id.
fn s3_metrics(store: &Arc<dyn ObjectStore>, prefix: &str) -> BTreeMap<String, Vec<u64>> {
    let bytes = rt().block_on(async {
        store
            .get(&ObjectPath::from(format!("{prefix}/results.arrow")))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
    });
    let reader =
        arrow::ipc::reader::FileReader::try_new(std::io::Cursor::new(bytes.to_vec()), None)
            .unwrap();
    let schema = reader.schema();
    let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
    metrics_of(&arrow::compute::concat_batches(&schema, &batches).unwrap())
}

/// The same pipeline run in one process into a local folder.
fn single_run(dir: &Path, pipeline: &str) -> BTreeMap<String, Vec<u64>> {
    let out = dir.join("single");
    let text = pipeline.replace("__OUTPUT__", out.to_str().unwrap());
    let file = write(dir, "single.toml", &text);
    let run = negsweep()
        .args(["run", "-q", "--jobs", "1"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", shown(&run));
    file_metrics(&out)
}

fn run_with(s3: &S3, args: &[&str], file: &Path) -> Output {
    let mut cmd = negsweep();
    cmd.args(args).arg(file);
    s3.env(&mut cmd);
    cmd.output().unwrap()
}

#[test]
fn slurm_array_shards_on_s3_collect_to_the_single_process_rows() {
    let _turn = S3_TURN.lock().unwrap_or_else(|e| e.into_inner());
    let s3 = S3::from_env();
    let sinfo = Command::new("sinfo").args(["-h", "-o", "%t"]).output();
    assert!(
        sinfo.as_ref().is_ok_and(|o| o.status.success()),
        "Slurm is not running: start it with `.ci/services start` ({sinfo:?})"
    );
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("slurm");
    let pipeline = tiny("__OUTPUT__", "k = [1, 2, 4]\nn = [4, 8]\nseed = [0, 1]");
    let file = write(
        dir.path(),
        "p.toml",
        &pipeline.replace("__OUTPUT__", &s3.url(&prefix)),
    );
    let task = write(
        dir.path(),
        "task.sh",
        &format!(
            "#!/bin/bash\nexec {} run {} --quiet --jobs 1\n",
            env!("CARGO_BIN_EXE_negsweep"),
            file.display()
        ),
    );
    let mut sbatch = Command::new("sbatch");
    sbatch
        .args([
            "--wait",
            // Stepped (tasks 0, 2, 4, 6): each task's shard is its place in the range.
            "--array=0-6:2",
            "--job-name=negsweep-test",
            "--chdir",
        ])
        .arg(dir.path())
        .arg("--output")
        .arg(dir.path().join("task-%a.log"))
        .arg(&task);
    s3.env(&mut sbatch);
    let started = Instant::now();
    let out = sbatch.output().unwrap();
    let logs: String = (0..8)
        .step_by(2)
        .map(|i| {
            std::fs::read_to_string(dir.path().join(format!("task-{i}.log"))).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("\n---\n");
    assert!(out.status.success(), "{}\ntask logs:\n{logs}", shown(&out));
    eprintln!(
        "4-task array finished in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let store = s3.store();
    let parts = listed(&store, &format!("{prefix}/results"), &|p| {
        p.ends_with(".parquet")
    });
    assert_eq!(parts.len(), 12, "{parts:?}");
    let status = run_with(&s3, &["status", "--shards", "4"], &file);
    assert!(status.status.success(), "{}", shown(&status));
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("12 of 12 points done"), "{text}");
    let collect = run_with(&s3, &["collect", "-q"], &file);
    assert!(collect.status.success(), "{}", shown(&collect));
    assert!(
        String::from_utf8_lossy(&collect.stdout).contains("best k per group"),
        "{}",
        shown(&collect)
    );
    let tables = listed(&store, &format!("{prefix}/analysis"), &|p| {
        p.ends_with(".parquet")
    });
    assert_eq!(tables.len(), 3, "{tables:?}");
    let analyze = run_with(&s3, &["analyze", "--metric", "knn_acc"], &file);
    assert!(analyze.status.success(), "{}", shown(&analyze));
    assert!(
        String::from_utf8_lossy(&analyze.stdout).contains("(knn_acc, "),
        "{}",
        shown(&analyze)
    );
    let sharded = s3_metrics(&store, &prefix);
    assert_eq!(sharded.len(), 12);
    assert_eq!(
        sharded,
        single_run(dir.path(), &pipeline),
        "Slurm + S3 rows equal one process's"
    );
    let locks = listed(&store, &prefix, &|p| p.ends_with("_building.json"));
    assert!(locks.is_empty(), "{locks:?}");
}

#[test]
fn a_run_survives_the_s3_server_being_killed_and_a_rerun_completes_it() {
    let _turn = S3_TURN.lock().unwrap_or_else(|e| e.into_inner());
    let s3 = S3::from_env();
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("kill");
    let pipeline = r#"
[pipeline]
name = "kill"
output = "__OUTPUT__"

[[datasets]]
kind = "synthetic-text"
name = "syn"
concepts = 16
examples-per-concept = 40
vocab = 256
length = 16
difficulty = 0.5

[train]
dim = 16
hidden = 32
batch-size = 32
epochs = 6
lr = 0.005

[storage]
retries = 2
retry-timeout = 4

[sweep]
k = [1, 2, 4, 8, 16, 32]
n = [8, 16]
seed = [0, 1]
"#;
    let file = write(
        dir.path(),
        "p.toml",
        &pipeline.replace("__OUTPUT__", &s3.url(&prefix)),
    );
    let store = s3.store();
    let mut cmd = negsweep();
    cmd.args(["run", "-q", "--jobs", "1"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    s3.env(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let results = format!("{prefix}/results");
    while listed(&store, &results, &|p| p.ends_with(".parquet")).len() < 3 {
        assert!(Instant::now() < deadline, "no results appeared");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before the kill"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    s3.service("s3-kill");
    let killed_while_running = child.try_wait().unwrap().is_none();
    std::thread::sleep(Duration::from_secs(2));
    s3.service("s3-start");
    let first = child.wait_with_output().unwrap();
    assert!(
        killed_while_running,
        "the server must die mid-run: {}",
        shown(&first)
    );
    // Points that met the dead server fail (exit 1) and are recorded; nothing panics.
    assert!(
        matches!(first.status.code(), Some(0 | 1 | 3 | 6)),
        "{}",
        shown(&first)
    );
    let rerun = run_with(&s3, &["run", "--jobs", "1"], &file);
    assert!(rerun.status.success(), "{}", shown(&rerun));
    let parts = listed(&store, &results, &|p| p.ends_with(".parquet"));
    assert_eq!(parts.len(), 24, "every point exactly once: {parts:?}");
    let rows = s3_metrics(&store, &prefix);
    assert_eq!(rows.len(), 24);
    assert_eq!(
        rows,
        single_run(dir.path(), pipeline),
        "nothing lost or corrupted"
    );
    eprintln!(
        "first run: exit {:?}; rerun: {}",
        first.status.code(),
        String::from_utf8_lossy(&rerun.stdout)
            .lines()
            .next()
            .unwrap_or("")
    );
}

#[test]
fn storage_failures_have_distinct_secret_free_exit_codes() {
    let _turn = S3_TURN.lock().unwrap_or_else(|e| e.into_inner());
    let s3 = S3::from_env();
    let dir = tempfile::tempdir().unwrap();
    let pipeline = |url: &str, extra: &str| tiny(url, &format!("k = [1]\nn = [4]\n{extra}"));
    let case = |name: &str, url: &str, extra: &str, secret: &str| {
        let file = write(dir.path(), &format!("{name}.toml"), &pipeline(url, extra));
        let mut cmd = negsweep();
        cmd.args(["run", "-q"]).arg(&file);
        s3.env(&mut cmd);
        cmd.env("AWS_SECRET_ACCESS_KEY", secret);
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!err.contains(secret), "{name}: the secret leaked: {err}");
        (out.status.code(), err)
    };
    let ok = s3.url(&unique("errors"));
    let (code, err) = case("credentials", &ok, "", "not-the-secret-9b1d");
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains("credentials were rejected"), "{err}");
    let (code, err) = case("bucket", "s3://no-such-bucket-negsweep/x/", "", &s3.secret);
    assert_eq!(code, Some(5), "{err}");
    assert!(
        err.contains("bucket or container does not exist")
            && err.contains("no-such-bucket-negsweep"),
        "{err}"
    );
    assert!(!err.contains(&s3.secret), "{err}");
    let (code, err) = case(
        "unreachable",
        &ok,
        "\n[storage]\nendpoint = \"http://127.0.0.1:9\"\nretries = 1\nretry-timeout = 1",
        &s3.secret,
    );
    assert_eq!(code, Some(6), "{err}");
    assert!(err.contains("could not be reached"), "{err}");
}

/// Three `negsweep run` processes at once on the output of `file`, with `env` setting up their
/// store: each of the 8 points trained exactly once, all three succeed.
fn three_runs_share_eight_points(file: &Path, env: &dyn Fn(&mut Command)) {
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let mut cmd = negsweep();
            cmd.args(["run", "--jobs", "1"]).arg(file);
            env(&mut cmd);
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = workers
        .into_iter()
        .map(|w| w.wait_with_output().unwrap())
        .collect();
    for o in &outputs {
        assert!(o.status.success(), "{}", shown(o));
    }
    let mut trained: Vec<String> = outputs
        .iter()
        .flat_map(|o| crate::trained_points(&String::from_utf8_lossy(&o.stderr)))
        .collect();
    trained.sort();
    let total = trained.len();
    trained.dedup();
    assert_eq!(
        total, 8,
        "each of the 8 points trained exactly once across 3 processes"
    );
    assert_eq!(trained.len(), 8);
}

/// A small pipeline of 8 points writing to `output`.
fn eight_points(output: &str) -> String {
    tiny("__OUTPUT__", "k = [1, 2, 4, 8]\nn = [4]\nseed = [0, 1]")
        .replace("epochs = 2", "epochs = 20")
        .replace("__OUTPUT__", output)
}

#[test]
fn concurrent_runs_on_s3_claim_each_point_once_and_leave_no_lock() {
    let _turn = S3_TURN.lock().unwrap_or_else(|e| e.into_inner());
    let s3 = S3::from_env();
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("claims");
    let file = write(dir.path(), "p.toml", &eight_points(&s3.url(&prefix)));
    three_runs_share_eight_points(&file, &|cmd| s3.env(cmd));
    let store = s3.store();
    let parts = listed(&store, &format!("{prefix}/results"), &|p| {
        p.ends_with(".parquet")
    });
    assert_eq!(parts.len(), 8, "{parts:?}");
    let locks = listed(&store, &prefix, &|p| p.ends_with("_building.json"));
    assert!(
        locks.is_empty(),
        "claims and build locks are all released: {locks:?}"
    );
}

/// Azure Blob Storage through Azurite, its emulator (started by `.ci/services`): runs, locks,
/// claims, collect and status on `az://`, where Parquet footers cannot be read by suffix range.
#[test]
fn azure_runs_share_points_read_results_back_and_leave_no_lock() {
    let container = var("NEGSWEEP_TEST_AZ_CONTAINER");
    let env = |cmd: &mut Command| {
        cmd.env("AZURE_STORAGE_USE_EMULATOR", "true");
    };
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique("azure");
    let file = write(
        dir.path(),
        "p.toml",
        &eight_points(&format!("az://{container}/{prefix}")),
    );
    three_runs_share_eight_points(&file, &env);
    let mut status = negsweep();
    status.arg("status").arg(&file);
    env(&mut status);
    let status = status.output().unwrap();
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("8 of 8 points done"),
        "{}",
        shown(&status)
    );
    let mut collect = negsweep();
    collect.args(["collect", "-q"]).arg(&file);
    env(&mut collect);
    let collect = collect.output().unwrap();
    assert!(collect.status.success(), "{}", shown(&collect));
    assert!(
        !String::from_utf8_lossy(&collect.stderr).contains("damaged"),
        "every result reads back: {}",
        shown(&collect)
    );
    let store: Arc<dyn ObjectStore> = Arc::new(
        object_store::azure::MicrosoftAzureBuilder::new()
            .with_use_emulator(true)
            .with_container_name(&container)
            .build()
            .unwrap(),
    );
    let parts = listed(&store, &format!("{prefix}/results"), &|p| {
        p.ends_with(".parquet")
    });
    assert_eq!(parts.len(), 8, "{parts:?}");
    let locks = listed(&store, &prefix, &|p| p.ends_with("_building.json"));
    assert!(locks.is_empty(), "{locks:?}");
    let summary = listed(&store, &prefix, &|p| p.ends_with("summary.parquet"));
    assert_eq!(summary.len(), 1);
}

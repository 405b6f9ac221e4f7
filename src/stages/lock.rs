//! One builder per shared output across processes and machines: a lock object written with
//! create-if-absent (`PutMode::Create`, which S3, GCS, Azure, local files and memory all
//! honour), kept fresh by a heartbeat, and broken when its holder is gone.
//!
//! The lock names its holder: host, boot, process id and the process's start time, and a token
//! of its own. A waiter on the same host breaks the lock of a process that no longer runs at
//! once; elsewhere a lock not refreshed for [`STALE`] is broken. Heartbeat and release touch the
//! lock only while it still holds the holder's token, so a holder whose lock was broken never
//! overwrites or deletes its successor's. Breaking a lock, or giving locks up on an interrupt,
//! also removes the temporary files a dead writer left in that folder (local outputs).

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::Result;
use crate::storage::Store;

/// A lock not refreshed for this long belongs to a process that died.
const STALE: Duration = Duration::from_secs(120);
/// How often a holder refreshes its lock.
const HEARTBEAT: Duration = Duration::from_secs(30);

/// Every lock held, by the scope (a command, see [`in_scope`]) that took it, so that a panic
/// or an interrupt caught at the top can still give them up (see [`release_all`]).
static HELD: std::sync::Mutex<Vec<(u64, Store, String, String)>> =
    std::sync::Mutex::new(Vec::new());

static NEXT_SCOPE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

tokio::task_local! {
    static SCOPE: u64;
}

fn held() -> std::sync::MutexGuard<'static, Vec<(u64, Store, String, String)>> {
    // A panic elsewhere while the list was locked leaves it consistent: pushes and removes
    // are single operations.
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `f` as a new scope of locks: the locks it takes can be released together with
/// [`release_all`] and the scope's id.
pub async fn in_scope<F: std::future::Future>(f: F) -> (u64, F::Output) {
    let id = NEXT_SCOPE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    (id, SCOPE.scope(id, f).await)
}

/// The lock scope of the current task (0 outside any); spawned tasks take it along with
/// [`within`].
pub fn current_scope() -> u64 {
    SCOPE.try_with(|s| *s).unwrap_or(0)
}

/// Runs `f` in the lock scope `id` (a task spawned by a scoped command).
pub async fn within<F: std::future::Future>(id: u64, f: F) -> F::Output {
    SCOPE.scope(id, f).await
}

/// Gives up every lock the scope `id` still holds, and removes the temporary files left in
/// their folders; for the top level after a panic or an interrupt, so the next run neither
/// waits for a lock whose holder is gone nor finds half-written objects.
pub async fn release_all(id: u64) {
    let locks: Vec<(Store, String, String)> = {
        let mut held = held();
        let (mine, others) = std::mem::take(&mut *held)
            .into_iter()
            .partition(|(scope, ..)| *scope == id);
        *held = others;
        mine.into_iter().map(|(_, s, r, t)| (s, r, t)).collect()
    };
    for (store, rel, token) in &locks {
        remove_temporaries(store, rel);
        if let Err(e) = release_if_mine(store, rel, token).await {
            warn!(lock = %store.display(rel), error = %e, "could not release a build lock");
        }
    }
    // A lock whose write was in flight when the command stopped lands a moment later: look once
    // more, and give it up too.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for (store, rel, token) in &locks {
        if let Err(e) = release_if_mine(store, rel, token).await {
            warn!(lock = %store.display(rel), error = %e, "could not release a build lock");
        }
    }
}

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Holder {
    host: String,
    /// The kernel's boot id: process ids of another boot mean nothing.
    #[serde(default)]
    boot: String,
    pid: u32,
    /// The process's start time (clock ticks since boot): a reused pid has another.
    #[serde(default)]
    started: u64,
    /// This acquisition's own token.
    #[serde(default)]
    token: String,
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// Start time of running process `pid`, in clock ticks since boot (field 22 of
/// `/proc/<pid>/stat`); `None` when there is no such process, or it has exited and waits to be
/// reaped (a zombie holds no lock).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last `)`.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    if matches!(fields.next(), Some("Z" | "X")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

impl Holder {
    fn me() -> Self {
        static TOKENS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let pid = std::process::id();
        let n = TOKENS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        Self {
            host: read_trimmed("/proc/sys/kernel/hostname"),
            boot: read_trimmed("/proc/sys/kernel/random/boot_id"),
            pid,
            started: process_start(pid).unwrap_or(0),
            token: format!("{pid}-{nanos}-{n}"),
        }
    }

    /// Whether the holder is known to be gone: a process of this host and boot that no longer
    /// runs (or whose pid now names another process). `false` when it cannot be known here.
    fn is_gone(&self) -> bool {
        let here = read_trimmed("/proc/sys/kernel/hostname");
        let boot = read_trimmed("/proc/sys/kernel/random/boot_id");
        !self.host.is_empty()
            && self.host == here
            && !self.boot.is_empty()
            && self.boot == boot
            && process_start(self.pid) != Some(self.started)
    }
}

/// The holder recorded in the lock at `rel`, if it is there and readable.
async fn holder(store: &Store, rel: &str) -> Result<Option<Holder>> {
    Ok(store
        .get(rel)
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok()))
}

/// Deletes the lock at `rel` if it still holds `token`.
async fn release_if_mine(store: &Store, rel: &str, token: &str) -> Result<()> {
    match holder(store, rel).await? {
        Some(h) if h.token == token => store.delete(rel).await,
        Some(_) => {
            warn!(lock = %store.display(rel), "the build lock was taken over after it was broken; leaving it to its new holder");
            Ok(())
        }
        None => Ok(()),
    }
}

/// Removes the temporary files (`name#123`) that object_store's local writer leaves when its
/// process dies mid-write, under the folder of the lock `rel`: only the lock's holder writes
/// there. Other stores keep no such files.
fn remove_temporaries(store: &Store, rel: &str) {
    let Some(dir) = store
        .local_path(rel)
        .and_then(|p| p.parent().map(std::path::Path::to_path_buf))
    else {
        return;
    };
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let temporary = name
                .rsplit_once('#')
                .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if temporary {
                match std::fs::remove_file(&path) {
                    Ok(()) => {
                        info!(file = %path.display(), "removed a temporary file a dead writer left")
                    }
                    Err(e) => {
                        warn!(file = %path.display(), error = %e, "could not remove a temporary file")
                    }
                }
            }
        }
    }
}

/// Deletes the lock at `rel` judged dead while it held `judged`, and the temporaries its
/// holder left, unless another process has replaced it since (it broke the lock first and took
/// it): that lock is alive and stays.
async fn break_lock(store: &Store, rel: &str, judged: Option<&Holder>) -> Result<()> {
    let now = holder(store, rel).await?;
    if now.as_ref().map(|h| &h.token) != judged.map(|h| &h.token) {
        return Ok(());
    }
    remove_temporaries(store, rel);
    store.delete(rel).await
}

/// A held build lock on a folder; release it when the output is written.
#[derive(Debug)]
pub struct BuildLock {
    store: Store,
    rel: String,
    token: String,
    heartbeat: JoinHandle<()>,
}

impl BuildLock {
    /// Waits until this process holds the build lock of `dir`.
    ///
    /// # Errors
    /// A store that ignores or refuses create-if-absent writes (the lock cannot work there),
    /// and storage failures.
    pub async fn acquire(store: &Store, dir: &str) -> Result<Self> {
        let rel = format!("{dir}/_building.json");
        let mut wait = Duration::from_millis(100);
        let mut told = false;
        loop {
            if let Some(lock) = Self::try_acquire(store, dir).await? {
                return Ok(lock);
            }
            if !told {
                info!(lock = %store.display(&rel), "another process is building this; waiting");
                told = true;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 3 / 2).min(Duration::from_secs(5));
        }
    }

    /// Takes the lock of `dir` if no live holder has it (breaking the lock of a gone or stale
    /// holder first); `None` when another process holds it.
    ///
    /// # Errors
    /// As [`BuildLock::acquire`].
    pub async fn try_acquire(store: &Store, dir: &str) -> Result<Option<Self>> {
        let rel = format!("{dir}/_building.json");
        let me = Holder::me();
        let json = serde_json::to_string(&me).expect("a holder serialises");
        // Registered before the write: an interrupt may drop this future while the write is
        // completing, and the lock must still be given up then (only if it holds our token).
        let scope = SCOPE.try_with(|s| *s).unwrap_or(0);
        held().push((scope, store.clone(), rel.clone(), me.token.clone()));
        let forget = || {
            held().retain(|(_, s, r, t)| !(r == &rel && s.url() == store.url() && t == &me.token))
        };
        // At most twice: once more after breaking a dead holder's lock.
        for _ in 0..2 {
            let created = match store.put_if_absent(&rel, json.clone().into()).await {
                Ok(created) => created,
                Err(e) => {
                    forget();
                    return Err(e);
                }
            };
            if created {
                // Read back: a lock replaced as it was taken (another process breaking a dead
                // holder's lock at the same moment, or a store that ignores If-None-Match) is
                // not held; only the token in the lock decides who holds it.
                match holder(store, &rel).await? {
                    Some(h) if h.token == me.token => {}
                    _ => {
                        warn!(
                            lock = %store.display(&rel),
                            "this lock was replaced as it was taken (a concurrent break, or a \
                             store that ignores If-None-Match writes); not holding it"
                        );
                        forget();
                        return Ok(None);
                    }
                }
                let (s, r, m) = (store.clone(), rel.clone(), me.clone());
                let heartbeat = tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(HEARTBEAT).await;
                        // Refresh only a lock that is still ours.
                        match holder(&s, &r).await {
                            Ok(Some(h)) if h.token == m.token => {}
                            Ok(_) => {
                                warn!(lock = %s.display(&r), "the build lock was broken and taken over; no longer refreshing it");
                                break;
                            }
                            Err(e) => {
                                warn!(error = %e, "could not read a build lock");
                                continue;
                            }
                        }
                        let json = serde_json::to_string(&m).expect("a holder serialises");
                        if let Err(e) = s.put(&r, json.into()).await {
                            warn!(error = %e, "could not refresh a build lock");
                        }
                    }
                });
                return Ok(Some(Self {
                    store: store.clone(),
                    rel,
                    token: me.token,
                    heartbeat,
                }));
            }
            let current = holder(store, &rel).await?;
            if let Some(h) = &current
                && h.is_gone()
            {
                warn!(lock = %store.display(&rel), pid = h.pid, "breaking the build lock of a process of this host that is gone");
                break_lock(store, &rel, current.as_ref()).await?;
                continue;
            }
            if let Some(modified) = store.modified(&rel).await? {
                let age = SystemTime::now()
                    .duration_since(modified)
                    .unwrap_or_default();
                if age > STALE {
                    warn!(lock = %store.display(&rel), age_s = age.as_secs(), "breaking a stale build lock");
                    break_lock(store, &rel, current.as_ref()).await?;
                    continue;
                }
            }
            forget();
            return Ok(None);
        }
        forget();
        Ok(None)
    }

    /// Gives the lock up (if it is still this holder's).
    pub async fn release(self) -> Result<()> {
        self.heartbeat.abort();
        held().retain(|(_, s, r, t)| {
            !(r == &self.rel && s.url() == self.store.url() && t == &self.token)
        });
        release_if_mine(&self.store, &self.rel, &self.token).await
    }
}

impl Drop for BuildLock {
    fn drop(&mut self) {
        // Unwinding past a held lock: no more heartbeats, so a dead holder's lock goes stale.
        self.heartbeat.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_holder_at_a_time() {
        let store = Store::open_str("memory://lock-test/out", &Default::default()).unwrap();
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let (store, inside, most) = (store.clone(), inside.clone(), most.clone());
            tasks.push(tokio::spawn(async move {
                let lock = BuildLock::acquire(&store, "pools/x").await.unwrap();
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
                lock.release().await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 1);
        assert!(!store.exists("pools/x/_building.json").await.unwrap());
    }

    #[tokio::test]
    async fn a_lock_of_a_gone_process_is_broken_at_once_with_its_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_str(dir.path().to_str().unwrap(), &Default::default()).unwrap();
        // A process of this host and boot that no longer runs: our pid with another start.
        let mut gone = Holder::me();
        gone.started += 1;
        store
            .put(
                "d/_building.json",
                serde_json::to_vec(&gone).unwrap().into(),
            )
            .await
            .unwrap();
        std::fs::write(dir.path().join("d/pool.parquet#1"), b"half").unwrap();
        std::fs::write(dir.path().join("d/keep#x"), b"not a temporary").unwrap();
        let lock = tokio::time::timeout(Duration::from_secs(2), BuildLock::acquire(&store, "d"))
            .await
            .expect("broken at once, not after two minutes")
            .unwrap();
        assert!(!dir.path().join("d/pool.parquet#1").exists());
        assert!(dir.path().join("d/keep#x").exists());
        lock.release().await.unwrap();
        assert!(!store.exists("d/_building.json").await.unwrap());
    }

    #[tokio::test]
    async fn a_holder_whose_lock_was_taken_over_leaves_it_alone() {
        let store = Store::open_str("memory://lock-test/taken", &Default::default()).unwrap();
        let lock = BuildLock::acquire(&store, "d").await.unwrap();
        let mut other = Holder::me();
        other.token = "the successor".into();
        let successor = serde_json::to_vec(&other).unwrap();
        store
            .put("d/_building.json", successor.clone().into())
            .await
            .unwrap();
        lock.release().await.unwrap();
        assert_eq!(
            store
                .get("d/_building.json")
                .await
                .unwrap()
                .unwrap()
                .as_ref(),
            successor.as_slice(),
            "the successor's lock stays"
        );
    }

    #[tokio::test]
    async fn a_fresh_foreign_lock_is_waited_for() {
        let store = Store::open_str("memory://lock-test/fresh", &Default::default()).unwrap();
        store.put("d/_building.json", "{}".into()).await.unwrap();
        let waited =
            tokio::time::timeout(Duration::from_millis(300), BuildLock::acquire(&store, "d")).await;
        assert!(
            waited.is_err(),
            "a fresh lock held elsewhere must be waited for"
        );
    }
}

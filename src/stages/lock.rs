//! One builder per shared output across processes and machines: a lock object written with
//! create-if-absent (`PutMode::Create`, which S3, GCS, Azure, local files and memory all
//! honour), kept fresh by a heartbeat, and broken when its holder stops refreshing it.

use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::Result;
use crate::storage::Store;

/// A lock not refreshed for this long belongs to a process that died.
const STALE: Duration = Duration::from_secs(120);
/// How often a holder refreshes its lock.
const HEARTBEAT: Duration = Duration::from_secs(30);

/// Every lock held, by the scope (a command, see [`in_scope`]) that took it, so that a panic
/// caught at the top can still give them up (see [`release_all`]).
static HELD: std::sync::Mutex<Vec<(u64, Store, String)>> = std::sync::Mutex::new(Vec::new());

static NEXT_SCOPE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

tokio::task_local! {
    static SCOPE: u64;
}

fn held() -> std::sync::MutexGuard<'static, Vec<(u64, Store, String)>> {
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

/// Deletes every lock the scope `id` still holds; for the top level after a panic, so the
/// next run does not wait for a lock whose holder is gone.
pub async fn release_all(id: u64) {
    let locks: Vec<(Store, String)> = {
        let mut held = held();
        let (mine, others) = std::mem::take(&mut *held)
            .into_iter()
            .partition(|(scope, ..)| *scope == id);
        *held = others;
        mine.into_iter().map(|(_, s, r)| (s, r)).collect()
    };
    for (store, rel) in locks {
        if let Err(e) = store.delete(&rel).await {
            warn!(lock = %store.display(&rel), error = %e, "could not release a build lock");
        }
    }
}

/// A held build lock on a folder; release it when the output is written.
#[derive(Debug)]
pub struct BuildLock {
    store: Store,
    rel: String,
    heartbeat: JoinHandle<()>,
}

fn owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    serde_json::json!({ "host": host, "pid": std::process::id() }).to_string()
}

impl BuildLock {
    /// Waits until this process holds the build lock of `dir`.
    pub async fn acquire(store: &Store, dir: &str) -> Result<Self> {
        let rel = format!("{dir}/_building.json");
        let me = owner();
        let mut wait = Duration::from_millis(100);
        let mut told = false;
        loop {
            if store.put_if_absent(&rel, me.clone().into()).await? {
                let (s, r, m) = (store.clone(), rel.clone(), me.clone());
                let heartbeat = tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(HEARTBEAT).await;
                        if let Err(e) = s.put(&r, m.clone().into()).await {
                            warn!(error = %e, "could not refresh a build lock");
                        }
                    }
                });
                let scope = SCOPE.try_with(|s| *s).unwrap_or(0);
                held().push((scope, store.clone(), rel.clone()));
                return Ok(Self {
                    store: store.clone(),
                    rel,
                    heartbeat,
                });
            }
            if let Some(modified) = store.modified(&rel).await? {
                let age = SystemTime::now()
                    .duration_since(modified)
                    .unwrap_or_default();
                if age > STALE {
                    warn!(lock = %store.display(&rel), age_s = age.as_secs(), "breaking a stale build lock");
                    store.delete(&rel).await?;
                    continue;
                }
            }
            if !told {
                info!(lock = %store.display(&rel), "another process is building this; waiting");
                told = true;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 3 / 2).min(Duration::from_secs(5));
        }
    }

    /// Gives the lock up.
    pub async fn release(self) -> Result<()> {
        self.heartbeat.abort();
        held().retain(|(_, s, r)| !(r == &self.rel && s.url() == self.store.url()));
        self.store.delete(&self.rel).await
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
        let store = Store::open_str("memory://lock-test/out").unwrap();
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
    async fn a_fresh_foreign_lock_is_waited_for() {
        let store = Store::open_str("memory://lock-test/fresh").unwrap();
        store.put("d/_building.json", "{}".into()).await.unwrap();
        let waited =
            tokio::time::timeout(Duration::from_millis(300), BuildLock::acquire(&store, "d")).await;
        assert!(
            waited.is_err(),
            "a fresh lock held elsewhere must be waited for"
        );
    }
}

//! [`Store`]: an object store rooted at a location, with atomic and multipart puts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::{Path, PathPart};
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::cloud::{StorageSettings, cloud_store, env_with_prefix};
use super::reader;
use super::url::{StoreUrl, percent_decode};
use crate::{Error, Result};

/// Objects larger than this are uploaded in parts.
pub const MULTIPART_ABOVE: usize = 32 << 20;
/// Part size of multipart uploads (S3 needs at least 5 MiB for all but the last).
const PART_SIZE: usize = 16 << 20;

/// In-process `memory://` stores, shared by name so that every open of one URL sees one store.
fn memory_store(name: &str) -> Arc<InMemory> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<InMemory>>>> = OnceLock::new();
    let mut map = STORES
        .get_or_init(Default::default)
        .lock()
        .expect("memory store registry lock is never poisoned: no code panics while holding it");
    map.entry(name.to_owned())
        .or_insert_with(|| Arc::new(InMemory::new()))
        .clone()
}

/// An object store rooted at a location; every path a stage uses is relative to the root.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    root: Path,
    url: StoreUrl,
}

impl Store {
    /// Opens the store behind `url`. Cloud credentials and endpoints come from the usual
    /// environment variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`); `settings` (a pipeline's
    /// `[storage]`, or the defaults) apply to cloud stores only.
    pub fn open(url: &StoreUrl, settings: &StorageSettings) -> Result<Self> {
        let u = url.url();
        let (inner, root): (Arc<dyn ObjectStore>, Path) = if u.scheme() == "memory" {
            let name = u.host_str().unwrap_or("").to_owned();
            // As for every other scheme: the URL's path, percent-decoded once.
            let root = Path::from_url_path(u.path()).map_err(|e| Error::storage(url, e.into()))?;
            (memory_store(&name), root)
        } else if let Some(store) = cloud_store(u, settings).map_err(|e| Error::storage(url, e))? {
            let (_, root) = object_store::ObjectStoreScheme::parse(u)
                .map_err(|e| Error::storage(url, e.into()))?;
            (store, root)
        } else {
            let (store, root) = object_store::parse_url_opts(u, env_with_prefix("OBJECT_STORE_"))
                .map_err(|e| Error::storage(url, e))?;
            (Arc::from(store), root)
        };
        Ok(Self {
            inner,
            root,
            url: url.clone(),
        })
    }

    /// Opens a location given as text (path or URL), as [`Store::open`] does.
    pub fn open_str(location: &str, settings: &StorageSettings) -> Result<Self> {
        let url = StoreUrl::parse(location).map_err(|m| Error::data(location, m))?;
        Self::open(&url, settings)
    }

    /// The root location, for messages.
    pub fn url(&self) -> &StoreUrl {
        &self.url
    }

    /// The underlying object store.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    /// Absolute object path of `rel` (a `/`-separated path under the root, names as they are
    /// on disk: `naïve/50% off.png`, never percent-encoded).
    ///
    /// object_store's `Path` holds names as they are (`Path::parse`, and what `list` returns);
    /// each store encodes them once on the way out (a file URL, an HTTP request). Joining a
    /// `&str` would percent-encode non-ASCII and `%#?*...` a second time, so that a listed
    /// `naïve/a.txt` would be read back as `na%C3%AFve/a.txt`. Only a segment object_store
    /// cannot hold as it is (`.`, `..`, control characters) is encoded.
    pub fn path(&self, rel: &str) -> Path {
        rel.split('/')
            .filter(|p| !p.is_empty())
            .fold(self.root.clone(), |p, part| match PathPart::parse(part) {
                Ok(plain) => p.join(plain),
                Err(_) => p.join(part),
            })
    }

    /// Location of `rel` for messages: the root URL joined with `rel`.
    pub fn display(&self, rel: &str) -> String {
        format!("{}{}", self.url, rel)
    }

    /// Checks that the root can be listed: a missing bucket, rejected credentials or an
    /// unreachable endpoint fail here, before any work, with their own exit codes.
    pub async fn check(&self) -> Result<()> {
        self.inner
            .list_with_delimiter(Some(&self.root))
            .await
            .map(|_| ())
            .map_err(|e| Error::storage(&self.url, e))
    }

    /// Writes `bytes` to `rel` atomically: readers see the whole object or none. Objects above
    /// `MULTIPART_ABOVE` go up as a multipart upload (parts sent concurrently; on S3 the object
    /// appears only when the upload completes).
    pub async fn put(&self, rel: &str, bytes: Bytes) -> Result<()> {
        let err = |e| Error::storage(self.display(rel), e);
        if bytes.len() <= MULTIPART_ABOVE {
            self.inner
                .put(&self.path(rel), PutPayload::from_bytes(bytes))
                .await
                .map_err(err)?;
            return Ok(());
        }
        let upload = self
            .inner
            .put_multipart(&self.path(rel))
            .await
            .map_err(err)?;
        let mut parts = object_store::WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        parts.put(bytes);
        parts.finish().await.map_err(err)?;
        Ok(())
    }

    /// Writes `bytes` to `rel` only if nothing is there yet; returns whether it wrote.
    pub async fn put_if_absent(&self, rel: &str, bytes: Bytes) -> Result<bool> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .inner
            .put_opts(&self.path(rel), PutPayload::from_bytes(bytes), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(
                object_store::Error::NotImplemented { .. }
                | object_store::Error::NotSupported { .. },
            ) => Err(Error::Usage(format!(
                "{}: the object store does not support create-if-absent writes (If-None-Match), \
                 which the build locks of shared stages need; run one process per output there, \
                 or use a store (or an S3 setting) with conditional writes",
                self.display(rel)
            ))),
            Err(e) => Err(Error::storage(self.display(rel), e)),
        }
    }

    /// Reads the whole object at `rel`; `None` if it does not exist.
    pub async fn get(&self, rel: &str) -> Result<Option<Bytes>> {
        match self.inner.get(&self.path(rel)).await {
            Ok(r) => Ok(Some(
                r.bytes()
                    .await
                    .map_err(|e| Error::storage(self.display(rel), e))?,
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::storage(self.display(rel), e)),
        }
    }

    /// A blocking reader of the whole object at `rel` (a missing object is a data error): a
    /// local file is read from disk directly, anything else streamed. Open it in the runtime,
    /// read it on a blocking thread.
    ///
    /// object_store's own stream of a local file reads it 8 KiB at a time, each read a hop to
    /// a blocking thread and back: a 200 MB input took 24,000 hops, most of a second.
    pub async fn reader(&self, rel: &str) -> Result<Box<dyn std::io::Read + Send>> {
        use futures::StreamExt;
        use std::io::Seek;
        let r = match self.inner.get(&self.path(rel)).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(Error::data(self.display(rel), "no such file"));
            }
            Err(e) => return Err(Error::storage(self.display(rel), e)),
        };
        let range = r.range.clone();
        match r.payload {
            object_store::GetResultPayload::File(mut file, _) => {
                if file.metadata().is_ok_and(|m| !m.is_file()) {
                    return Err(Error::data(
                        self.display(rel),
                        "not a regular file (a pipe, socket or device): an input is read more \
                         than once (fingerprinted, then ingested), so save it to a file first",
                    ));
                }
                // Freshly opened, so already at 0.
                if range.start > 0 {
                    file.seek(std::io::SeekFrom::Start(range.start))
                        .map_err(|e| Error::data(self.display(rel), format!("read failed: {e}")))?;
                }
                Ok(Box::new(Whole {
                    inner: file,
                    left: range.end - range.start,
                }))
            }
            object_store::GetResultPayload::Stream(s) => {
                let s = s.map(|r| r.map_err(std::io::Error::other)).boxed();
                Ok(Box::new(tokio_util::io::SyncIoBridge::new(
                    tokio_util::io::StreamReader::new(s),
                )))
            }
        }
    }

    /// A Parquet reader of the object at `rel` (ranged reads).
    pub(crate) fn parquet_reader(&self, rel: &str) -> reader::ObjectReader {
        reader::ObjectReader::new(Arc::clone(&self.inner), self.path(rel))
    }

    /// Opens the folder holding the file at `location` (a path or URL): the store and the
    /// file's name in it.
    pub fn open_file(location: &str, settings: &StorageSettings) -> Result<(Self, String)> {
        let url = StoreUrl::parse(location).map_err(|m| Error::data(location, m))?;
        let mut u = url.url().clone();
        let path = u.path().trim_end_matches('/').to_owned();
        let Some((parent, name)) = path.rsplit_once('/').filter(|(_, n)| !n.is_empty()) else {
            return Err(Error::data(location, "names no file"));
        };
        u.set_path(&format!("{parent}/"));
        let name = percent_decode(name);
        Ok((Self::open(&StoreUrl(u), settings)?, name))
    }

    /// The file behind `rel` when the store is a local folder (`file://`); `None` otherwise.
    pub fn local_path(&self, rel: &str) -> Option<std::path::PathBuf> {
        if self.url.url().scheme() != "file" {
            return None;
        }
        let root = self.url.url().to_file_path().ok()?;
        Some(
            rel.split('/')
                .filter(|p| !p.is_empty())
                .fold(root, |p, part| p.join(part)),
        )
    }

    /// Whether an object exists at `rel`.
    pub async fn exists(&self, rel: &str) -> Result<bool> {
        match self.inner.head(&self.path(rel)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(Error::storage(self.display(rel), e)),
        }
    }

    /// The metadata of the object at `rel` (size, modification time, ETag); `None` if it does
    /// not exist.
    pub async fn head(&self, rel: &str) -> Result<Option<ObjectMeta>> {
        match self.inner.head(&self.path(rel)).await {
            Ok(meta) => Ok(Some(meta)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::storage(self.display(rel), e)),
        }
    }

    /// The first `len` bytes (fewer for a shorter object) of the object at `rel`; a missing
    /// object is a data error.
    pub async fn head_bytes(&self, rel: &str, len: u64) -> Result<Bytes> {
        let opts = object_store::GetOptions {
            range: Some(object_store::GetRange::Bounded(0..len)),
            ..Default::default()
        };
        match self.inner.get_opts(&self.path(rel), opts).await {
            Ok(r) => r
                .bytes()
                .await
                .map_err(|e| Error::storage(self.display(rel), e)),
            Err(object_store::Error::NotFound { .. }) => {
                Err(Error::data(self.display(rel), "no such file"))
            }
            Err(e) => Err(Error::storage(self.display(rel), e)),
        }
    }

    /// When the object at `rel` was last written; `None` if it does not exist.
    pub async fn modified(&self, rel: &str) -> Result<Option<std::time::SystemTime>> {
        match self.inner.head(&self.path(rel)).await {
            Ok(meta) => Ok(Some(meta.last_modified.into())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::storage(self.display(rel), e)),
        }
    }

    /// Deletes `rel`; a missing object is not an error.
    pub async fn delete(&self, rel: &str) -> Result<()> {
        match self.inner.delete(&self.path(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::storage(self.display(rel), e)),
        }
    }

    /// Lists every object under `rel`, recursively, with paths relative to the root, names as
    /// they are (decoded: what [`Store::path`] takes back).
    pub async fn list(&self, rel: &str) -> Result<Vec<(String, ObjectMeta)>> {
        let prefix = self.path(rel);
        let metas: Vec<ObjectMeta> = self
            .inner
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| Error::storage(self.display(rel), e))?;
        let root = self.root.as_ref();
        Ok(metas
            .into_iter()
            .map(|m| {
                let full = m.location.as_ref();
                let rel = full
                    .strip_prefix(root)
                    .unwrap_or(full)
                    .trim_start_matches('/')
                    .to_owned();
                (rel, m)
            })
            .collect())
    }
}

/// A file read to the length it had when opened, and not past it: a file cut short while it
/// is read is an error, not fewer records.
struct Whole {
    inner: std::fs::File,
    left: u64,
}

impl std::io::Read for Whole {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let cap = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = std::io::Read::read(&mut self.inner, &mut buf[..cap])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "the file ended {} bytes short of the length it had when opened: it changed \
                     while being read",
                    self.left
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn large_objects_go_up_in_parts_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        for location in ["memory://multipart/x", dir.path().to_str().unwrap()] {
            let store = Store::open_str(location, &Default::default()).unwrap();
            let big: Vec<u8> = (0..MULTIPART_ABOVE + 5_000_123)
                .map(|i| (i * 31 % 251) as u8)
                .collect();
            store
                .put("big.bin", Bytes::from(big.clone()))
                .await
                .unwrap();
            let back = store.get("big.bin").await.unwrap().unwrap();
            assert_eq!(back.len(), big.len(), "{location}");
            assert!(back == big, "{location}: content differs");
        }
    }

    /// A local file and a streamed object read back whole; a local file cut short while it is
    /// read is an error, not a shorter read.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocking_readers_read_whole_objects_and_notice_a_file_cut_short() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        for location in ["memory://readers/x", dir.path().to_str().unwrap()] {
            let store = Store::open_str(location, &Default::default()).unwrap();
            store.put("f.bin", Bytes::from(data.clone())).await.unwrap();
            let mut reader = store.reader("f.bin").await.unwrap();
            let back = tokio::task::spawn_blocking(move || {
                let mut back = Vec::new();
                reader.read_to_end(&mut back).map(|_| back)
            })
            .await
            .unwrap()
            .unwrap();
            assert!(back == data, "{location}");
        }
        let store = Store::open_str(dir.path().to_str().unwrap(), &Default::default()).unwrap();
        let mut reader = store.reader("f.bin").await.unwrap();
        let mut first = vec![0u8; 1000];
        reader.read_exact(&mut first).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("f.bin"))
            .unwrap()
            .set_len(2_000_000)
            .unwrap();
        let mut rest = Vec::new();
        let err = reader.read_to_end(&mut rest).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("1000000 bytes short"), "{err}");
    }

    #[tokio::test]
    async fn memory_store_round_trip_and_create_mode() {
        let store = Store::open_str("memory://storage-test/root", &Default::default()).unwrap();
        store
            .put("a/b.bin", Bytes::from_static(b"hi"))
            .await
            .unwrap();
        let again = Store::open_str("memory://storage-test/root", &Default::default()).unwrap();
        assert_eq!(again.get("a/b.bin").await.unwrap().unwrap().as_ref(), b"hi");
        assert!(again.get("a/none").await.unwrap().is_none());
        assert!(!again.put_if_absent("a/b.bin", Bytes::new()).await.unwrap());
        assert!(again.put_if_absent("a/c.bin", Bytes::new()).await.unwrap());
        let listed: Vec<String> = again
            .list("a")
            .await
            .unwrap()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(listed.len(), 2);
        assert!(listed.contains(&"a/b.bin".to_owned()), "{listed:?}");
    }

    /// Names a file system allows but URLs and object_store's `Path` encode.
    const AWKWARD: &[&str] = &[
        "naïve/a.txt",
        "données/é.txt",
        "my data/acc 50% split.csv",
        "c#/x#1.txt",
        "c++/a+b.txt",
        "quotes/'single' \"double\".txt",
        "pct/%41%2F.txt",
        "amp/a&b=c;d?.txt",
        "star/*[x]{y}~^`|<>.txt",
        "日本語/猫.txt",
    ];

    #[tokio::test]
    async fn awkward_names_list_and_read_back_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        for (i, name) in AWKWARD.iter().enumerate() {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, i.to_string()).unwrap();
        }
        let local = Store::open_str(dir.path().to_str().unwrap(), &Default::default()).unwrap();
        let memory =
            Store::open_str("memory://awkward-names/r%C3%A9p 1/", &Default::default()).unwrap();
        for (i, name) in AWKWARD.iter().enumerate() {
            memory.put(name, Bytes::from(i.to_string())).await.unwrap();
        }
        for store in [&local, &memory] {
            let mut listed: Vec<String> = store
                .list("")
                .await
                .unwrap()
                .into_iter()
                .map(|(p, _)| p)
                .collect();
            listed.sort();
            let mut want: Vec<String> = AWKWARD.iter().map(|s| (*s).to_owned()).collect();
            want.sort();
            assert_eq!(listed, want, "{}", store.url());
            for (i, name) in AWKWARD.iter().enumerate() {
                let got = store.get(name).await.unwrap();
                assert_eq!(
                    got.as_deref(),
                    Some(i.to_string().as_bytes()),
                    "{} {name}",
                    store.url()
                );
                let folder = name.split_once('/').unwrap().0;
                assert_eq!(store.list(folder).await.unwrap().len(), 1, "{name}");
            }
        }
        // Written through the store, a name lands on disk as it is, not percent-encoded.
        local
            .put("naïve 2/50% off.txt", Bytes::from_static(b"x"))
            .await
            .unwrap();
        assert!(dir.path().join("naïve 2/50% off.txt").is_file());
        // A file URL is decoded exactly once.
        let (store, name) = Store::open_file(
            &format!(
                "file://{}/my%20data/acc%2050%25%20split.csv",
                dir.path().display()
            ),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(name, "acc 50% split.csv");
        assert_eq!(
            store.get(&name).await.unwrap().as_deref(),
            Some(b"2".as_slice())
        );
    }
}

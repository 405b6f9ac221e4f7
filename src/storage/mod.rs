//! All data I/O: object_store locations, atomic puts, Parquet and Arrow IPC through the store.

mod parquet_io;
mod reader;
mod row_groups;

pub(crate) use parquet_io::parquet_error;
pub use parquet_io::{
    encode_ipc, encode_parquet, read_parquet, read_parquet_columns, write_parquet,
};
pub use row_groups::RowGroupWriter;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::{Path, PathPart};
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use url::Url;

use crate::{Error, Result, StorageKind};

/// Objects larger than this are uploaded in parts.
pub const MULTIPART_ABOVE: usize = 32 << 20;
/// Part size of multipart uploads (S3 needs at least 5 MiB for all but the last).
const PART_SIZE: usize = 16 << 20;

/// Schemes negsweep accepts for data locations.
pub const SCHEMES: &[&str] = &[
    "file", "memory", "s3", "gs", "az", "abfs", "abfss", "http", "https",
];

/// A parsed output or input location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUrl(Url);

impl StoreUrl {
    /// Parses a URL, or a local path (relative to the working directory) as `file://`.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        if text.trim().is_empty() {
            return Err("location is empty".into());
        }
        match Url::parse(text) {
            Ok(url) if url.scheme().len() > 1 => {
                if !SCHEMES.contains(&url.scheme()) {
                    return Err(format!(
                        "unsupported scheme `{}://` in `{text}`; expected a local path or one of {}",
                        url.scheme(),
                        SCHEMES
                            .iter()
                            .map(|s| format!("{s}://"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                if matches!(url.scheme(), "s3" | "gs" | "az")
                    && url.host_str().unwrap_or("").is_empty()
                {
                    return Err(format!("`{text}` names no bucket or container"));
                }
                // A location is a folder: paths under it are joined after a `/`.
                let mut url = url;
                if !url.path().ends_with('/') {
                    let path = format!("{}/", url.path());
                    url.set_path(&path);
                }
                Ok(Self(url))
            }
            // No scheme (or a Windows drive letter): a local path.
            _ => {
                let path = std::path::Path::new(text);
                let abs = if path.is_absolute() {
                    path.to_path_buf()
                } else {
                    std::env::current_dir()
                        .map_err(|e| format!("cannot resolve `{text}`: {e}"))?
                        .join(path)
                };
                Url::from_directory_path(&abs)
                    .map(Self)
                    .map_err(|()| format!("`{text}` is not a valid path"))
            }
        }
    }

    /// The URL.
    pub fn url(&self) -> &Url {
        &self.0
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Query strings may carry credentials (SAS tokens): never print them.
        let mut shown = self.0.clone();
        shown.set_query(None);
        let _ = shown.set_password(None);
        write!(f, "{shown}")
    }
}

/// Undoes URL percent-encoding of one path segment (`my%20file.csv`), exactly once: `+`, `&`
/// and `=` are themselves, and bytes that are not UTF-8 are replaced.
fn percent_decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

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

/// Settings for cloud stores beyond what the environment gives (`[storage]` of a pipeline
/// file). Credentials are not among them: they come only from the environment.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct StorageSettings {
    /// S3-compatible endpoint, such as `http://127.0.0.1:8333` (overrides `AWS_ENDPOINT`).
    pub endpoint: Option<String>,
    /// Region (overrides `AWS_REGION`).
    pub region: Option<String>,
    /// Allow plain-HTTP endpoints.
    pub allow_http: Option<bool>,
    /// Virtual-hosted-style S3 requests (`bucket.host`) instead of path style.
    pub virtual_hosted_style: Option<bool>,
    /// Retries of a failed request (object_store's default: 10).
    pub retries: Option<usize>,
    /// Give up retrying a request after this many seconds (default: 180).
    pub retry_timeout_s: Option<f64>,
}

/// The settings every store of this process opens with, from the pipeline being run.
static SETTINGS: OnceLock<Mutex<StorageSettings>> = OnceLock::new();

/// Makes `settings` apply to every store opened from now on.
pub fn configure(settings: StorageSettings) {
    *SETTINGS
        .get_or_init(Default::default)
        .lock()
        .expect("the settings lock is never poisoned") = settings;
}

fn settings() -> StorageSettings {
    SETTINGS
        .get_or_init(Default::default)
        .lock()
        .expect("the settings lock is never poisoned")
        .clone()
}

/// Environment variables of one cloud, with their names lowercased as object_store's config
/// keys expect. Only the cloud's own prefix: an unrelated `TOKEN` or `REGION` is not read.
fn env_with_prefix(prefix: &str) -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

/// A cloud store for `u` with credentials from the environment (object_store's `from_env`:
/// `AWS_*`, `GOOGLE_*`, `AZURE_*`), `[storage]` settings and the
/// retry policy; `None` for schemes that are not cloud stores.
fn cloud_store(u: &Url) -> std::result::Result<Option<Arc<dyn ObjectStore>>, object_store::Error> {
    use object_store::aws::AmazonS3Builder;
    use object_store::azure::MicrosoftAzureBuilder;
    use object_store::gcp::GoogleCloudStorageBuilder;
    let s = settings();
    let mut retry = object_store::RetryConfig::default();
    if let Some(n) = s.retries {
        retry.max_retries = n;
    }
    if let Some(t) = s.retry_timeout_s {
        retry.retry_timeout = std::time::Duration::from_secs_f64(t.max(0.0));
    }
    let store: Arc<dyn ObjectStore> = match u.scheme() {
        "s3" => {
            let mut b = AmazonS3Builder::from_env().with_url(u.as_str());
            if let Some(e) = &s.endpoint {
                b = b.with_endpoint(e);
            }
            if let Some(r) = &s.region {
                b = b.with_region(r);
            }
            if let Some(h) = s.allow_http {
                b = b.with_allow_http(h);
            }
            if let Some(v) = s.virtual_hosted_style {
                b = b.with_virtual_hosted_style_request(v);
            }
            Arc::new(b.with_retry(retry).build()?)
        }
        "gs" => {
            let b = GoogleCloudStorageBuilder::from_env().with_url(u.as_str());
            Arc::new(b.with_retry(retry).build()?)
        }
        "az" | "abfs" | "abfss" => {
            let mut b = MicrosoftAzureBuilder::from_env().with_url(u.as_str());
            if let Some(h) = s.allow_http {
                b = b.with_allow_http(h);
            }
            Arc::new(b.with_retry(retry).build()?)
        }
        _ => return Ok(None),
    };
    Ok(Some(store))
}

/// A file on local disk in the temporary folder (`TMPDIR`), deleted when closed, however the
/// process ends (where the file system allows, it never has a name).
///
/// # Errors
/// A storage error naming the folder, when it is missing, read-only or full.
pub fn temp_file() -> Result<std::fs::File> {
    tempfile::tempfile().map_err(temp_file_error)
}

/// The error of a temporary file that could not be created, written or read.
pub fn temp_file_error(e: std::io::Error) -> Error {
    Error::Storage {
        location: std::env::temp_dir().display().to_string(),
        kind: StorageKind::Other,
        message: format!("a temporary file failed (set TMPDIR to a writable folder): {e}"),
    }
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
    /// environment variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`).
    pub fn open(url: &StoreUrl) -> Result<Self> {
        let u = url.url();
        let (inner, root): (Arc<dyn ObjectStore>, Path) = if u.scheme() == "memory" {
            let name = u.host_str().unwrap_or("").to_owned();
            // As for every other scheme: the URL's path, percent-decoded once.
            let root = Path::from_url_path(u.path()).map_err(|e| Error::storage(url, e.into()))?;
            (memory_store(&name), root)
        } else if let Some(store) = cloud_store(u).map_err(|e| Error::storage(url, e))? {
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

    /// Opens a location given as text (path or URL).
    pub fn open_str(location: &str) -> Result<Self> {
        let url = StoreUrl::parse(location).map_err(|m| Error::data(location, m))?;
        Self::open(&url)
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

    /// Streams the bytes of the object at `rel` (a missing object is a data error).
    pub async fn read_stream(
        &self,
        rel: &str,
    ) -> Result<futures::stream::BoxStream<'static, std::io::Result<Bytes>>> {
        use futures::StreamExt;
        match self.inner.get(&self.path(rel)).await {
            Ok(r) => Ok(r.into_stream().map_err(std::io::Error::other).boxed()),
            Err(object_store::Error::NotFound { .. }) => {
                Err(Error::data(self.display(rel), "no such file"))
            }
            Err(e) => Err(Error::storage(self.display(rel), e)),
        }
    }

    /// A Parquet reader of the object at `rel` (ranged reads).
    pub(crate) fn parquet_reader(&self, rel: &str) -> reader::ObjectReader {
        reader::ObjectReader::new(Arc::clone(&self.inner), self.path(rel))
    }

    /// Opens the folder holding the file at `location` (a path or URL): the store and the
    /// file's name in it.
    pub fn open_file(location: &str) -> Result<(Self, String)> {
        let url = StoreUrl::parse(location).map_err(|m| Error::data(location, m))?;
        let mut u = url.url().clone();
        let path = u.path().trim_end_matches('/').to_owned();
        let Some((parent, name)) = path.rsplit_once('/').filter(|(_, n)| !n.is_empty()) else {
            return Err(Error::data(location, "names no file"));
        };
        u.set_path(&format!("{parent}/"));
        let name = percent_decode(name);
        Ok((Self::open(&StoreUrl(u))?, name))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_urls() {
        assert_eq!(
            StoreUrl::parse("memory:///x").unwrap().url().scheme(),
            "memory"
        );
        assert_eq!(
            StoreUrl::parse("s3://bucket/runs/a").unwrap().to_string(),
            "s3://bucket/runs/a/"
        );
        let local = StoreUrl::parse("runs/a").unwrap();
        assert_eq!(local.url().scheme(), "file");
        assert!(local.url().path().ends_with("/runs/a/"));
        assert!(StoreUrl::parse("s3://bucket/p").is_ok());
    }

    #[tokio::test]
    async fn large_objects_go_up_in_parts_and_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        for location in ["memory://multipart/x", dir.path().to_str().unwrap()] {
            let store = Store::open_str(location).unwrap();
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

    #[test]
    fn rejects_bad_locations() {
        let err = StoreUrl::parse("ftp://host/x").unwrap_err();
        assert!(err.contains("unsupported scheme `ftp://`"), "{err}");
        assert!(err.contains("s3://"), "{err}");
        assert!(StoreUrl::parse("").is_err());
    }

    #[test]
    fn display_hides_secrets() {
        let url = StoreUrl::parse("https://user:secret@host/p?sig=abc").unwrap();
        let shown = url.to_string();
        assert!(
            !shown.contains("secret") && !shown.contains("abc"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn memory_store_round_trip_and_create_mode() {
        let store = Store::open_str("memory://storage-test/root").unwrap();
        store
            .put("a/b.bin", Bytes::from_static(b"hi"))
            .await
            .unwrap();
        let again = Store::open_str("memory://storage-test/root").unwrap();
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
        let local = Store::open_str(dir.path().to_str().unwrap()).unwrap();
        let memory = Store::open_str("memory://awkward-names/r%C3%A9p 1/").unwrap();
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
        let (store, name) = Store::open_file(&format!(
            "file://{}/my%20data/acc%2050%25%20split.csv",
            dir.path().display()
        ))
        .unwrap();
        assert_eq!(name, "acc 50% split.csv");
        assert_eq!(
            store.get(&name).await.unwrap().as_deref(),
            Some(b"2".as_slice())
        );
    }
}

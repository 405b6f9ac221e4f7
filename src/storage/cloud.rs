//! Cloud stores (S3, GCS, Azure): object_store's `from_env` builders with a pipeline's
//! [`StorageSettings`] on top.

use std::sync::Arc;

use object_store::ObjectStore;
use url::Url;

/// Settings for cloud stores beyond what the environment gives (`[storage]` of a pipeline
/// file). Credentials are not among them: they come only from the environment.
/// Built once per pipeline ([`crate::plan::Plan::storage`]), or the defaults for a command
/// without one, and passed to every [`Store::open`](super::Store::open).
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

/// Environment variables of one cloud, with their names lowercased as object_store's config
/// keys expect. Only the cloud's own prefix: an unrelated `TOKEN` or `REGION` is not read.
pub(super) fn env_with_prefix(prefix: &str) -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

/// A cloud store for `u` with credentials from the environment (object_store's `from_env`:
/// `AWS_*`, `GOOGLE_*`, `AZURE_*`), the `[storage]` settings `s` and the
/// retry policy; `None` for schemes that are not cloud stores.
pub(super) fn cloud_store(
    u: &Url,
    s: &StorageSettings,
) -> std::result::Result<Option<Arc<dyn ObjectStore>>, object_store::Error> {
    use object_store::aws::AmazonS3Builder;
    use object_store::azure::MicrosoftAzureBuilder;
    use object_store::gcp::GoogleCloudStorageBuilder;
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

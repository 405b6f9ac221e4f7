//! Locations: [`StoreUrl`] (a URL, or a local path as `file://`) and percent decoding.

use std::fmt;

use url::Url;

/// Schemes negsweep accepts for data locations.
pub const SCHEMES: &[&str] = &[
    "file", "memory", "s3", "gs", "az", "abfs", "abfss", "http", "https",
];

/// A parsed output or input location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUrl(pub(super) Url);

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
pub(super) fn percent_decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
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
}

//! Reading images from files into memory: whole objects (gzip undone), font folders and
//! ImageFolders, with a report of what was kept and skipped (`ingest.json`, in the same form
//! as a text ingest's). Each dataset kind (`plan::kinds`) puts these together.

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use tracing::info;

use crate::data::folders::{self, Classes, Skipped};
use crate::data::glyphs::{self, GlyphStats};
use crate::data::{Examples, Features, image_files, images};
use crate::storage::{StorageSettings, Store};
use crate::{Error, Result};

/// What an image ingest read, kept and skipped: `ingest.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImageIngest {
    /// Examples written.
    pub examples: u64,
    /// Distinct concepts among them.
    pub concepts: u64,
    /// Image side in pixels.
    pub side: u32,
    /// Channels per pixel: 1 (grey) or 3 (RGB).
    pub channels: u32,
    /// What the reader skipped, and why (ImageFolders: hidden, stray and nested files,
    /// zero-byte files, formats not read; font folders: hidden files and other formats).
    pub skipped: Skipped,
    /// Glyphs only: faces rendered, unreadable fonts, fonts lacking a character.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub glyphs: Option<GlyphStats>,
}

impl ImageIngest {
    /// The counts of `ex` with nothing skipped.
    pub fn of(ex: &Examples) -> Self {
        let (side, channels) = match &ex.features {
            Features::Pixels { side, channels, .. } => (*side, *channels),
            Features::Tokens { .. } => (0, 1),
        };
        let concepts = ex
            .labels
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len() as u64;
        Self {
            examples: ex.len() as u64,
            concepts,
            side,
            channels,
            ..Self::default()
        }
    }

    /// Logs the report, as a text ingest does.
    pub fn log(&self) {
        info!(
            examples = self.examples,
            concepts = self.concepts,
            side = self.side,
            channels = self.channels,
            skipped = %self.skipped,
            "images ingested"
        );
    }
}

/// Reads one whole object named by a URL, gzip undone; returns it with its location for
/// messages.
///
/// # Errors
/// A data error when the object is missing or its gzip stream is damaged.
pub async fn fetch(url: &str, settings: &StorageSettings) -> Result<(Vec<u8>, String)> {
    let (store, rel) = Store::open_file(url, settings)?;
    let location = store.display(&rel);
    let bytes = store
        .get(&rel)
        .await?
        .ok_or_else(|| Error::data(&location, "no such file"))?;
    Ok((images::gunzip(&bytes, &location)?, location))
}

/// Renders every `.ttf`/`.otf` face under `store` (at any depth; hidden files skipped).
pub async fn glyph_folder(
    store: &Store,
    charset: glyphs::Charset,
    side: u32,
) -> Result<(Examples, ImageIngest)> {
    let mut skipped = Skipped::default();
    let mut files = Vec::new();
    for (rel, _) in store.list("").await? {
        let name = rel.rsplit('/').next().unwrap_or_default();
        if matches!(folders::classify(&rel), folders::Entry::Hidden) {
            skipped.hidden_files += 1;
        } else if matches!(folders::extension(name).as_deref(), Some("ttf" | "otf")) {
            files.push(rel);
        } else {
            skipped.other_format(name);
        }
    }
    files.sort();
    let mut fonts = Vec::with_capacity(files.len());
    for rel in files {
        if let Some(bytes) = store.get(&rel).await? {
            fonts.push((rel, bytes.to_vec()));
        }
    }
    let chars = charset.chars();
    let (ex, stats) = tokio::task::spawn_blocking(move || glyphs::render(&fonts, &chars, side))
        .await
        .map_err(|e| Error::Internal(format!("glyph rendering panicked: {e}")))?;
    info!(
        faces = stats.faces,
        unreadable = stats.unreadable,
        incomplete = stats.incomplete,
        "glyphs rendered (fonts lacking a character of the set are skipped)"
    );
    if stats.faces == 0 {
        return Err(Error::data(
            store.url(),
            format!(
                "no font here covers every character of `{charset:?}` ({} unreadable, {} incomplete; skipped: {skipped})",
                stats.unreadable, stats.incomplete
            ),
        ));
    }
    let report = ImageIngest {
        skipped,
        glyphs: Some(stats),
        ..ImageIngest::of(&ex)
    };
    Ok((ex, report))
}

/// One image of a folder to read.
struct ImageFile {
    label: u32,
    rel: String,
    format: image::ImageFormat,
}

/// Reads `<class>/<file>` images under `store` in every format [`image_files::format_of`]
/// knows, 256 files at a time: fetched concurrently, decoded in parallel, appended in path
/// order. Hidden files (a name on the path starting with `.`), files outside a class folder
/// or nested deeper, zero-byte files and other formats are skipped and counted. Class names
/// are sorted by name, whatever order the paths sort in.
pub async fn image_folder(
    store: &Store,
    side: u32,
    color: image_files::Color,
) -> Result<(Examples, ImageIngest)> {
    let mut listed = store.list("").await?;
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut skipped = Skipped::default();
    let mut kept: Vec<(String, String, image::ImageFormat)> = Vec::new();
    for (rel, meta) in &listed {
        let Some((class, name)) = folders::example(rel, &mut skipped) else {
            continue;
        };
        match image_files::format_of(name) {
            None => skipped.other_format(name),
            Some(_) if meta.size == 0 => skipped.empty_files += 1,
            Some(format) => kept.push((class.to_owned(), rel.clone(), format)),
        }
    }
    if kept.is_empty() {
        return Err(Error::data(
            store.url(),
            format!(
                "no <class>/<file> images here (formats read: {}; skipped: {skipped})",
                image_files::extensions().join(", ")
            ),
        ));
    }
    let classes = Classes::new(kept.iter().map(|(c, _, _)| c.as_str()));
    let files: Vec<ImageFile> = kept
        .iter()
        .map(|(class, rel, format)| ImageFile {
            label: classes
                .label(class)
                .expect("every kept file's class is among the names built from them"),
            rel: rel.clone(),
            format: *format,
        })
        .collect();
    let mut ex = Examples {
        labels: Vec::with_capacity(files.len()),
        concept_names: classes.into_names(),
        features: Features::Pixels {
            side,
            channels: color.channels(),
            data: Vec::new(),
        },
    };
    for chunk in files.chunks(256) {
        // Owned paths: a future borrowing the chunk could not be boxed as `Send` by a caller
        // (a closure over references has no single lifetime for the compiler to pick).
        let owned: Vec<(String, image::ImageFormat)> =
            chunk.iter().map(|f| (f.rel.clone(), f.format)).collect();
        let fetched: Vec<(String, image::ImageFormat, bytes::Bytes)> = futures::stream::iter(owned)
            .map(|(rel, format)| async move {
                let bytes = store
                    .get(&rel)
                    .await?
                    .ok_or_else(|| Error::data(store.display(&rel), "vanished while reading"))?;
                Ok::<_, Error>((store.display(&rel), format, bytes))
            })
            .buffered(16)
            .try_collect()
            .await?;
        let decoded: Vec<Vec<u8>> = tokio::task::spawn_blocking(move || {
            use rayon::prelude::*;
            crate::data::ingest_pool()?.install(|| {
                fetched
                    .par_iter()
                    .map(|(at, format, b)| image_files::decode(b, Some(*format), side, color, at))
                    .collect::<Result<Vec<_>>>()
            })
        })
        .await
        .map_err(|e| Error::Internal(format!("image decoding panicked: {e}")))??;
        let Features::Pixels { data, .. } = &mut ex.features else {
            unreachable!("built as pixels")
        };
        for (f, px) in chunk.iter().zip(decoded) {
            ex.labels.push(f.label);
            data.extend_from_slice(&px);
        }
    }
    let report = ImageIngest {
        skipped,
        ..ImageIngest::of(&ex)
    };
    Ok((ex, report))
}

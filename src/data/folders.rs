//! Class folders, the ImageFolder layout shared by image and text folders: `<class>/<file>`
//! under a root. Owns which listed files are examples and why the others are skipped (hidden,
//! outside a class folder, nested deeper, a format the reader does not take), and the class
//! names, collected in name order whatever order the files come in.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

/// The `other_formats` key of names without an extension.
pub const NO_EXTENSION: &str = "(none)";

/// Counts of what an ingest skipped, and why; written to `ingest.json` by every ingest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// Rows whose text is missing, null or blank (text), or blank text files.
    pub empty_text: u64,
    /// Files at the top of a folder, outside any class folder.
    pub stray_files: u64,
    /// Files with a name starting with `.` on their path (`.DS_Store`,
    /// `.ipynb_checkpoints/...`, at any level).
    pub hidden_files: u64,
    /// Files below a subfolder of a class folder: only `<class>/<file>` is read.
    pub nested_files: u64,
    /// Zero-byte image files.
    pub empty_files: u64,
    /// Files in class folders in a format the reader does not take, by lowercased extension
    /// (`(none)` for a name without one).
    pub other_formats: BTreeMap<String, u64>,
}

impl Skipped {
    /// Counts one file of a format the reader does not take.
    pub fn other_format(&mut self, name: &str) {
        let ext = extension(name).unwrap_or_else(|| NO_EXTENSION.to_owned());
        *self.other_formats.entry(ext).or_default() += 1;
    }
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        let mut count = |n: u64, one: &str, many: &str| match n {
            0 => {}
            1 => parts.push(format!("1 {one}")),
            n => parts.push(format!("{n} {many}")),
        };
        count(self.empty_text, "blank text", "blank texts");
        count(
            self.stray_files,
            "file outside a class folder",
            "files outside a class folder",
        );
        count(self.hidden_files, "hidden file", "hidden files");
        count(
            self.nested_files,
            "file nested below a class folder",
            "files nested below a class folder",
        );
        count(self.empty_files, "zero-byte file", "zero-byte files");
        for (ext, &n) in &self.other_formats {
            if ext == NO_EXTENSION {
                count(
                    n,
                    "file without an extension (format not read)",
                    "files without an extension (format not read)",
                );
            } else {
                count(
                    n,
                    &format!(".{ext} file (format not read)"),
                    &format!(".{ext} files (format not read)"),
                );
            }
        }
        if parts.is_empty() {
            f.write_str("nothing")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// Where one listed file sits in a class-folder layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry<'a> {
    /// `<class>/<name>`: a candidate example.
    Example {
        /// The class folder's name.
        class: &'a str,
        /// The file's name.
        name: &'a str,
    },
    /// A name on the path starts with `.`.
    Hidden,
    /// At the top, outside any class folder.
    Stray,
    /// Below a subfolder of a class folder.
    Nested,
}

/// Places `rel` (a path relative to the folder's root, as [`crate::storage::Store::list`]
/// gives it) in the layout.
pub fn classify(rel: &str) -> Entry<'_> {
    let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| p.starts_with('.')) {
        return Entry::Hidden;
    }
    match parts.as_slice() {
        [class, name] => Entry::Example { class, name },
        [] | [_] => Entry::Stray,
        _ => Entry::Nested,
    }
}

/// Counts a file that is not an example in `skipped`; the class and name of one that is.
pub fn example<'a>(rel: &'a str, skipped: &mut Skipped) -> Option<(&'a str, &'a str)> {
    match classify(rel) {
        Entry::Example { class, name } => return Some((class, name)),
        Entry::Hidden => skipped.hidden_files += 1,
        Entry::Stray => skipped.stray_files += 1,
        Entry::Nested => skipped.nested_files += 1,
    }
    None
}

/// The lowercased extension of a file name, if it has one (`a.PNG` -> `png`).
pub fn extension(name: &str) -> Option<String> {
    name.rsplit_once('.')
        .filter(|(stem, ext)| !stem.is_empty() && !ext.is_empty())
        .map(|(_, ext)| ext.to_lowercase())
}

/// Class names in name order, each with its label: the same whatever order files come in
/// (sorting paths does not sort classes: `tomato cherry/` sorts before `tomato/`).
#[derive(Debug, Clone, Default)]
pub struct Classes {
    names: Vec<String>,
    labels: HashMap<String, u32>,
}

impl Classes {
    /// The distinct names among `classes`.
    pub fn new<'a>(classes: impl IntoIterator<Item = &'a str>) -> Self {
        let names: Vec<String> = classes
            .into_iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let labels = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
        Self { names, labels }
    }

    /// The label of `class`, if it is one of the names.
    pub fn label(&self, class: &str) -> Option<u32> {
        self.labels.get(class).copied()
    }

    /// The names, label order.
    pub fn into_names(self) -> Vec<String> {
        self.names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_class_slash_file_is_an_example() {
        let mut skipped = Skipped::default();
        let rels = [
            "cat/a.png",
            "cat/.DS_Store",
            ".ipynb_checkpoints/cat/a-checkpoint.png",
            "cat/.ipynb_checkpoints/a-checkpoint.png",
            ".hidden.png",
            "README.md",
            "cat/sub/b.png",
            "cat/sub/deeper/c.png",
            "naïve dog/b.png",
        ];
        let kept: Vec<(&str, &str)> = rels
            .iter()
            .filter_map(|r| example(r, &mut skipped))
            .collect();
        assert_eq!(kept, [("cat", "a.png"), ("naïve dog", "b.png")]);
        assert_eq!(
            (
                skipped.hidden_files,
                skipped.stray_files,
                skipped.nested_files
            ),
            (4, 1, 2)
        );
    }

    #[test]
    fn class_names_do_not_depend_on_path_order() {
        let mut paths = ["tomato/1.png", "tomato cherry/1.png", "tomato-maroon/1.png"];
        paths.sort();
        // Path order puts `tomato/` last: ' ' and '-' sort before '/'.
        assert_eq!(paths[2], "tomato/1.png");
        let classes = Classes::new(paths.iter().map(|p| p.split_once('/').unwrap().0));
        assert_eq!(
            (
                classes.label("tomato"),
                classes.label("tomato cherry"),
                classes.label("tomato-maroon")
            ),
            (Some(0), Some(1), Some(2))
        );
        assert_eq!(classes.label("potato"), None);
        assert_eq!(
            classes.into_names(),
            ["tomato", "tomato cherry", "tomato-maroon"]
        );
    }

    #[test]
    fn extensions_and_the_summary_line() {
        assert_eq!(extension("a.PNG").as_deref(), Some("png"));
        assert_eq!(extension("archive.tar.GZ").as_deref(), Some("gz"));
        assert_eq!(extension("README"), None);
        assert_eq!(extension(".bashrc"), None);
        let mut s = Skipped::default();
        assert_eq!(s.to_string(), "nothing");
        s.hidden_files = 2;
        s.other_format("x.HEIC");
        s.other_format("notes");
        assert_eq!(
            s.to_string(),
            "2 hidden files, 1 file without an extension (format not read), \
             1 .heic file (format not read)"
        );
        s.other_format("y.heic");
        s.empty_text = 1;
        assert_eq!(
            s.to_string(),
            "1 blank text, 2 hidden files, 1 file without an extension (format not read), \
             2 .heic files (format not read)"
        );
    }
}

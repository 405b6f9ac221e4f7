//! `negsweep schema`: the generated files under `schemas/`, written or checked.

#![expect(clippy::print_stdout, reason = "the CLI is where negsweep prints")]

use std::path::Path;

use super::exit;
use crate::spec::PipelineSpec;
use crate::stages::tables;
use crate::{Error, Result};

/// Every generated schema file: name and content.
pub fn schema_files() -> Vec<(String, String)> {
    let mut files = vec![(
        "pipeline.schema.json".to_owned(),
        PipelineSpec::json_schema(),
    )];
    files.extend(
        tables::all()
            .iter()
            .map(|t| (format!("{}.md", t.name), tables::markdown(t))),
    );
    files
}

/// Writes the generated schema files into `dir`.
pub fn render_schemas(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, content) in schema_files() {
        std::fs::write(dir.join(name), content)?;
    }
    Ok(())
}

pub(super) fn schema(dir: &Path, check: bool) -> Result<u8> {
    let shown = dir.display();
    if check {
        let stale: Vec<String> = schema_files()
            .into_iter()
            .filter(|(name, content)| {
                std::fs::read_to_string(dir.join(name)).ok().as_deref() != Some(content.as_str())
            })
            .map(|(name, _)| name)
            .collect();
        if stale.is_empty() {
            println!("{shown}: up to date");
            return Ok(exit::OK);
        }
        eprintln!(
            "{shown}: stale or missing: {}; run `negsweep schema` to regenerate",
            stale.join(", ")
        );
        return Ok(exit::POINTS_FAILED);
    }
    render_schemas(dir).map_err(|e| Error::data(dir.display(), e))?;
    println!("wrote {} files to {shown}", schema_files().len());
    Ok(exit::OK)
}

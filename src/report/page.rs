//! `negsweep report`: the figures and the page of a results table, written beside it.
//!
//! Writes `figures/<name>.svg` and `figures/<name>.png` for each figure that has something to
//! show, then `report.html` (last, so a page never names figures that are not there):
//! `accuracy` (the metric against k per N), `scaling` (best k against N), `p_best` (P(k is
//! best) per N and k), `rates` (collision and coverage against k with the theory) and `means`
//! (the metric per N and k).

use arrow::array::RecordBatch;

use super::data::Report;
use super::figures::{self, Figure};
use super::html::{self, Settings};
use super::provenance::{PipelineInfo, Provenance};
use super::{heatmaps, plot, rates};
use crate::storage::Store;
use crate::{Error, Result};

/// The page, under the report's folder.
pub const REPORT_HTML: &str = "report.html";

/// Scale of the PNG figures against their SVG size (2: sharp on high-density screens).
const PNG_SCALE: f32 = 2.0;

/// What a report is made from and how.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    /// The metric column analysed (`mean_acc`, `knn_acc`, `probe_top1`, `test_loss`).
    pub metric: String,
    /// Bootstrap resamples of the seeds.
    pub resamples: usize,
    /// Seed of the bootstrap.
    pub seed: u64,
    /// The pipeline, when the report is made from one.
    pub pipeline: Option<PipelineInfo>,
    /// Each group's k values without rows in the batches reported on (see
    /// [`crate::analyze::grid_of`]).
    pub grid: crate::analyze::Grid,
}

/// What a report wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// Location of `report.html`.
    pub html: String,
    /// Locations of the figure files (SVG and PNG of each).
    pub figures: Vec<String>,
    /// Figures not drawn, each with the reason (`scaling: every family has one N only`).
    pub missing: Vec<String>,
}

/// The rendered report: figure files and the page, not yet written.
struct Rendered {
    /// `figures/<name>.svg|png` and their bytes.
    files: Vec<(String, Vec<u8>)>,
    page: String,
    missing: Vec<String>,
    /// Names of the figures not drawn, whose earlier files are removed.
    missing_names: Vec<&'static str>,
}

/// Renders every figure and the page.
fn render(report: &Report, provenance: &Provenance, settings: &Settings) -> Result<Rendered> {
    type Draw = fn(&Report) -> Result<Option<Figure>>;
    let one_n = "every family of groups (dataset and settings) has a single N, so there is no \
                 slope of best k on N to fit";
    let no_metric = format!("no point has a finite value of `{}`", report.metric.name);
    let all: [(&str, Draw, String); 5] = [
        ("accuracy", figures::accuracy, no_metric.clone()),
        (
            "scaling",
            figures::scaling,
            if report.analysed.is_empty() {
                no_metric.clone()
            } else {
                one_n.to_owned()
            },
        ),
        (
            "p_best",
            heatmaps::p_best,
            if report.analysed.is_empty() {
                no_metric.clone()
            } else {
                "no bootstrap resamples (--resamples 0)".to_owned()
            },
        ),
        (
            "rates",
            rates::rates,
            "the results table has no rows".to_owned(),
        ),
        ("means", heatmaps::means, no_metric),
    ];
    let mut drawn = Vec::new();
    let mut missing = Vec::new();
    for (name, draw, why) in all {
        match draw(report)? {
            Some(f) => drawn.push(f),
            None => missing.push((name, why)),
        }
    }
    let mut files = Vec::new();
    for f in &drawn {
        files.push((
            format!("figures/{}.svg", f.name),
            f.svg.clone().into_bytes(),
        ));
        files.push((
            format!("figures/{}.png", f.name),
            plot::png(&f.svg, PNG_SCALE)?,
        ));
    }
    let page = html::page(report, &drawn, &missing, provenance, settings);
    Ok(Rendered {
        files,
        page,
        missing_names: missing.iter().map(|(n, _)| *n).collect(),
        missing: missing
            .into_iter()
            .map(|(name, why)| format!("{name}: {why}"))
            .collect(),
    })
}

/// Makes the report of the result rows `batches`, read at `results` in the output `source`
/// (whose `datasets/` and `inputs/` records give the provenance), and writes it into `out`:
/// `figures/<name>.svg`, `figures/<name>.png` and, last, [`REPORT_HTML`] (an earlier page is
/// removed before the figures are written).
///
/// # Errors
/// An unknown metric, a table without the columns of a results table, no font to draw text
/// with, or a failed read or write.
pub async fn write_report(
    source: &Store,
    results: &str,
    batches: &[RecordBatch],
    out: &Store,
    options: &ReportOptions,
) -> Result<Written> {
    let report = Report::of(
        batches,
        &options.metric,
        options.resamples,
        options.seed,
        &options.grid,
    )?;
    let provenance = Provenance::gather(
        source,
        source.display(results),
        batches,
        options.pipeline.clone(),
    )
    .await?;
    let settings = Settings {
        resamples: options.resamples,
        seed: options.seed,
    };
    // Drawing and rasterising are CPU work: off the async threads.
    let rendered = tokio::task::spawn_blocking(move || render(&report, &provenance, &settings))
        .await
        .map_err(|e| Error::Internal(format!("rendering the report: {e}")))??;
    // An earlier page goes first: a write that fails halfway leaves no page that describes
    // older results. So do earlier figures this report does not draw.
    out.delete(REPORT_HTML).await?;
    for name in &rendered.missing_names {
        for ext in ["svg", "png"] {
            out.delete(&format!("figures/{name}.{ext}")).await?;
        }
    }
    let mut figures = Vec::new();
    for (rel, bytes) in rendered.files {
        out.put(&rel, bytes.into()).await?;
        figures.push(out.display(&rel));
    }
    out.put(REPORT_HTML, rendered.page.into_bytes().into())
        .await?;
    Ok(Written {
        html: out.display(REPORT_HTML),
        figures,
        missing: rendered.missing,
    })
}

//! The report's N x k heatmaps: the probability that each k is the best, and the mean of the
//! metric. One panel per family of groups, each with its colour bar.

use plotters::prelude::*;

use super::data::{Panel, Report};
use super::figures::{Area, Figure, canvas, capitalised, decimals, short_label};
use super::plot::{Glyph, Scale, Slots, drawing, text_on};
use crate::Result;

/// One heatmap: rows are N (ascending, bottom to top), columns k.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Grid {
    /// Column values, ascending.
    pub(crate) ks: Vec<u32>,
    /// One row per N, ascending.
    pub(crate) rows: Vec<Row>,
}

/// One N of a heatmap.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    /// Concepts.
    pub(crate) n: u32,
    /// The value per column (NaN where that k was not run or has no value).
    pub(crate) values: Vec<f64>,
    /// The measured best k.
    pub(crate) best: u32,
    /// The theory's k*.
    pub(crate) theory: Option<u32>,
}

impl Grid {
    /// The grid of `panel`: `value(stats)` of each analysed k.
    pub(crate) fn of(
        report: &Report,
        panel: &Panel,
        value: impl Fn(&crate::analyze::KStats) -> f64,
    ) -> Self {
        let groups: Vec<_> = panel
            .groups
            .iter()
            .map(|&i| &report.groups[i])
            .filter_map(|g| Some((g, g.analysis.as_ref()?)))
            .collect();
        let mut ks: Vec<u32> = groups
            .iter()
            .flat_map(|(_, a)| a.rows.iter().map(|r| r.k))
            .collect();
        ks.sort_unstable();
        ks.dedup();
        let rows = groups
            .iter()
            .map(|(g, a)| {
                let values = ks
                    .iter()
                    .map(|k| a.rows.iter().find(|r| r.k == *k).map_or(f64::NAN, &value))
                    .collect();
                Row {
                    n: g.key.n,
                    values,
                    best: a.best_k,
                    theory: g.theory_k,
                }
            })
            .collect();
        Self { ks, rows }
    }

    /// Every value of the grid.
    fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.rows.iter().flat_map(|r| r.values.iter().copied())
    }
}

/// The families with an analysed group.
fn analysed_panels(report: &Report) -> Vec<&Panel> {
    report
        .panels
        .iter()
        .filter(|p| {
            p.groups
                .iter()
                .any(|&i| report.groups[i].analysis.is_some())
        })
        .collect()
}

/// The legend of both heatmaps.
fn legend(value: &str) -> Vec<(Glyph, String)> {
    vec![
        (Glyph::Heading, "Cells".to_owned()),
        (
            Glyph::Gradient,
            format!("colour: {value}, scale beside each panel"),
        ),
        (
            Glyph::Outline(BLACK),
            "measured best k of the row's N".to_owned(),
        ),
        (
            Glyph::Triangle(RGBColor(90, 90, 90)),
            "theory's k* (minimum of Ash et al.'s bound coefficient)".to_owned(),
        ),
        (
            Glyph::Swatch(Scale { lo: 0.0, hi: 1.0 }.colour(f64::NAN)),
            "k not run at this N, or no value".to_owned(),
        ),
    ]
}

/// Figure 3: P(k is best) per N and k. `None` without analysed groups or bootstrap resamples.
pub(crate) fn p_best(report: &Report) -> Result<Option<Figure>> {
    let panels = analysed_panels(report);
    if panels.is_empty() || report.analysed.iter().all(|(_, g)| g.resamples == 0) {
        return Ok(None);
    }
    let title = "Probability that k is the best".to_owned();
    let value = "P(k is best), share of bootstrap resamples of the seeds";
    let svg = canvas(&title, panels.len(), 2, &legend(value), |i, area| {
        let grid = Grid::of(report, panels[i], |r| r.p_best);
        heatmap(
            area,
            &panels[i].title,
            &grid,
            Scale { lo: 0.0, hi: 1.0 },
            "P(k is best)",
            2,
        )
    })?;
    Ok(Some(Figure {
        name: "p_best",
        title,
        svg,
        caption: format!(
            "For each N (row) and k (column): the share of bootstrap resamples of the seeds in \
             which k has the best mean {} (ties share the credit). A row spread over many k \
             means the seeds do not settle the best k.",
            short_label(&report.metric.label)
        ),
    }))
}

/// Figure 5: the mean of the metric per N and k. `None` without analysed groups.
pub(crate) fn means(report: &Report) -> Result<Option<Figure>> {
    let panels = analysed_panels(report);
    if panels.is_empty() {
        return Ok(None);
    }
    let label = short_label(&report.metric.label);
    let title = format!("{} per N and k (mean over seeds)", capitalised(label));
    let svg = canvas(&title, panels.len(), 2, &legend(label), |i, area| {
        let grid = Grid::of(report, panels[i], |r| r.mean);
        let scale = Scale::over(grid.values());
        let digits = decimals(scale.hi - scale.lo).max(2);
        heatmap(
            area,
            &panels[i].title,
            &grid,
            scale,
            &capitalised(&report.metric.label),
            digits,
        )
    })?;
    Ok(Some(Figure {
        name: "means",
        title,
        svg,
        caption: format!(
            "The {} for each N (row) and k (column), mean over seeds{}. The outlined cell is \
             the measured best k of its row, the triangle the theory's k*.",
            label,
            if report.metric.higher {
                ""
            } else {
                "; lower is better, so the best cell is the darkest"
            }
        ),
    }))
}

/// Width of a panel's colour bar, pixels.
const BAR: u32 = 96;

/// Draws `grid` coloured by `scale` into `area`, with a colour bar labelled `label` on the right;
/// values printed with `digits` decimals where the cells are wide enough.
fn heatmap(
    area: &Area<'_>,
    title: &str,
    grid: &Grid,
    scale: Scale,
    label: &str,
    digits: usize,
) -> Result<()> {
    let (w, _) = area.dim_in_pixel();
    let (left, right) = area.split_horizontally(w.saturating_sub(BAR));
    let ks = grid.ks.clone();
    let ns: Vec<u32> = grid.rows.iter().map(|r| r.n).collect();
    let mut chart = ChartBuilder::on(&left)
        .caption(title, ("sans-serif", 19))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(Slots(ks.len()), Slots(ns.len()))
        .map_err(drawing)?;
    let name = |values: &[u32], v: f64| {
        values
            .get(v.round().max(0.0) as usize)
            .map_or_else(String::new, u32::to_string)
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("k, negatives per anchor")
        .y_desc("N, concepts")
        .x_label_formatter(&|v| name(&ks, *v))
        .y_label_formatter(&|v| name(&ns, *v))
        .x_labels(ks.len())
        .y_labels(ns.len())
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(drawing)?;
    let plot_w = chart.plotting_area().dim_in_pixel().0;
    let cell_w = plot_w / ks.len().max(1) as u32;
    let font = match cell_w {
        60.. => 16,
        44..60 => 13,
        _ => 11,
    };
    let show = cell_w >= 30;
    // Corners of the cell of column i and row j.
    let lo = |i: usize| i as f64 - 0.5;
    let hi = |i: usize| i as f64 + 0.5;
    for (j, row) in grid.rows.iter().enumerate() {
        for (i, v) in row.values.iter().enumerate() {
            let bg = scale.colour(*v);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(lo(i), lo(j)), (hi(i), hi(j))],
                    bg.filled(),
                )))
                .map_err(drawing)?;
            if show && v.is_finite() {
                let style = ("sans-serif", font).into_font().color(&text_on(bg)).pos(
                    plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Center,
                    ),
                );
                chart
                    .draw_series(std::iter::once(Text::new(
                        format!("{v:.digits$}"),
                        (i as f64, j as f64),
                        style,
                    )))
                    .map_err(drawing)?;
            }
            if row.theory == Some(ks[i]) {
                // At the bottom of the cell, under its value.
                chart
                    .draw_series(std::iter::once(
                        EmptyElement::at((i as f64, lo(j)))
                            + TriangleMarker::new((0, -12), 6, text_on(bg).filled()),
                    ))
                    .map_err(drawing)?;
            }
        }
    }
    // The best cells last, so no neighbour covers their outline: black, white inside (a closed
    // path: the SVG backend draws rectangles one pixel wide whatever the style says).
    for (j, row) in grid.rows.iter().enumerate() {
        if let Some(i) = ks.iter().position(|k| *k == row.best) {
            let ring = vec![
                (lo(i), lo(j)),
                (hi(i), lo(j)),
                (hi(i), hi(j)),
                (lo(i), hi(j)),
                (lo(i), lo(j)),
            ];
            chart
                .draw_series([
                    PathElement::new(ring.clone(), BLACK.stroke_width(4)),
                    PathElement::new(ring, WHITE.stroke_width(1)),
                ])
                .map_err(drawing)?;
        }
    }
    colour_bar(&right, scale, label, digits)
}

/// A vertical colour bar for `scale`, labelled `label`.
fn colour_bar(area: &Area<'_>, scale: Scale, label: &str, digits: usize) -> Result<()> {
    let (lo, hi) = if scale.hi > scale.lo {
        (scale.lo, scale.hi)
    } else {
        (scale.lo - 0.5, scale.lo + 0.5)
    };
    let mut chart = ChartBuilder::on(area)
        .margin_top(40)
        .margin_bottom(60)
        .margin_right(8)
        .y_label_area_size(0)
        .right_y_label_area_size(56)
        .build_cartesian_2d(0.0..1.0, lo..hi)
        .map_err(drawing)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_desc(label)
        .y_labels(6)
        .y_label_formatter(&|v| format!("{v:.digits$}"))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(drawing)?;
    const STEPS: usize = 48;
    let height = (hi - lo) / STEPS as f64;
    chart
        .draw_series((0..STEPS).map(|s| {
            let y0 = lo + height * s as f64;
            Rectangle::new(
                [(0.0, y0), (1.0, y0 + height)],
                scale.colour(y0 + height / 2.0).filled(),
            )
        }))
        .map_err(drawing)?;
    Ok(())
}

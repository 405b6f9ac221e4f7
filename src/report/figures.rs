//! The report's line figures: the metric against k and best k against N, and the canvas every
//! figure is drawn on: a title, one panel per family of groups (dataset and settings) and a
//! legend column.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::data::{Group, Panel, Report};
use super::plot::{self, Glyph, Log2, drawing, power_label, series_colour};
use crate::Result;
use crate::analyze::GroupAnalysis;

/// One figure of the report.
#[derive(Debug, Clone)]
pub(crate) struct Figure {
    /// File name without extension (`accuracy`).
    pub(crate) name: &'static str,
    /// Title, as drawn on top of the figure.
    pub(crate) title: String,
    /// The SVG document.
    pub(crate) svg: String,
    /// What the figure shows, for the page.
    pub(crate) caption: String,
}

/// Width and height of one panel, pixels.
pub(crate) const PANEL: (u32, u32) = (540, 400);
/// Width of the legend column, pixels.
const LEGEND: u32 = 260;
/// Height of the title band, pixels.
const TITLE: u32 = 44;

pub(crate) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Draws a figure: `title`, `count` panels in a grid of `cols` columns and `legend` in a column
/// on the right; `draw(i, area)` draws panel `i`.
pub(crate) fn canvas(
    title: &str,
    count: usize,
    cols: usize,
    legend: &[(Glyph, String)],
    mut draw: impl FnMut(usize, &Area<'_>) -> Result<()>,
) -> Result<String> {
    plot::ready()?;
    let cols = cols.clamp(1, count.max(1));
    let rows = count.div_ceil(cols).max(1);
    // A long legend (many groups) makes the figure taller, never overflows it.
    let legend_h = {
        let mut scratch = String::new();
        let area = SVGBackend::with_string(&mut scratch, (LEGEND, 10)).into_drawing_area();
        plot::legend_height(&area.margin(12, 0, 4, 4), legend) + 16
    };
    let panels_h = PANEL.1 * rows as u32;
    let (w, h) = (
        PANEL.0 * cols as u32 + LEGEND,
        TITLE + panels_h.max(legend_h),
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let body = root
            .titled(title, ("sans-serif", 26).into_font().style(FontStyle::Bold))
            .map_err(drawing)?;
        let (panels, side) = body.split_horizontally(PANEL.0 * cols as u32);
        let (panels, _) = panels.split_vertically(panels_h);
        for (i, area) in panels
            .split_evenly((rows, cols))
            .iter()
            .enumerate()
            .take(count)
        {
            draw(i, area)?;
        }
        plot::legend(&side.margin(12, 0, 4, 4), legend)?;
        root.present().map_err(drawing)?;
    }
    Ok(svg)
}

/// Number format with enough decimals to tell ticks `span / 5` apart.
pub(crate) fn decimals(span: f64) -> usize {
    if !(span.is_finite() && span > 0.0) {
        return 2;
    }
    ((-(span / 5.0).log10()).ceil().max(0.0) as usize).clamp(1, 4)
}

/// The legend entries naming the N of `ns`.
pub(crate) fn n_entries(
    report: &Report,
    ns: impl IntoIterator<Item = u32>,
) -> Vec<(Glyph, String)> {
    let mut out = vec![(Glyph::Heading, "N, concepts".to_owned())];
    out.extend(ns.into_iter().map(|n| {
        (
            Glyph::Line(series_colour(report.n_index(n))),
            format!("N = {n}"),
        )
    }));
    out
}

/// The analysed groups of a panel.
fn analysed<'a>(report: &'a Report, panel: &Panel) -> Vec<(&'a Group, &'a GroupAnalysis)> {
    panel
        .groups
        .iter()
        .map(|&i| &report.groups[i])
        .filter_map(|g| Some((g, g.analysis.as_ref()?)))
        .collect()
}

/// Figure 1: the metric against k per N, with its 95% t-interval, the best set, the measured
/// best k and the theory's k*. `None` when no group has a value of the metric.
pub(crate) fn accuracy(report: &Report) -> Result<Option<Figure>> {
    let panels: Vec<&Panel> = report
        .panels
        .iter()
        .filter(|p| !analysed(report, p).is_empty())
        .collect();
    if panels.is_empty() {
        return Ok(None);
    }
    let one_seed = report
        .analysed
        .iter()
        .any(|(_, g)| g.rows.first().is_some_and(|r| r.seeds < 2));
    let grey = RGBColor(90, 90, 90);
    let mut legend = n_entries(
        report,
        panels
            .iter()
            .flat_map(|p| analysed(report, p).into_iter().map(|(g, _)| g.key.n))
            .collect::<std::collections::BTreeSet<_>>(),
    );
    legend.extend([
        (Glyph::Heading, "Marks".to_owned()),
        (
            Glyph::Band(grey),
            "95% t-interval of the mean over seeds".to_owned(),
        ),
        (
            Glyph::Dot(grey, true),
            "in the best set: not told apart from the best k (paired t, Holm, 5%)".to_owned(),
        ),
        (Glyph::Dot(grey, false), "outside the best set".to_owned()),
        (Glyph::Ring(grey), "measured best k".to_owned()),
        (
            Glyph::Triangle(grey),
            "theory's k* (minimum of Ash et al.'s bound coefficient)".to_owned(),
        ),
    ]);
    if one_seed {
        legend.push((Glyph::Heading, "one seed: no interval".to_owned()));
    }
    let title = format!(
        "{} against k",
        capitalised(short_label(&report.metric.label))
    );
    let svg = canvas(&title, panels.len(), 2, &legend, |i, area| {
        accuracy_panel(report, panels[i], area)
    })?;
    Ok(Some(Figure {
        name: "accuracy",
        title,
        svg,
        caption: format!(
            "{}, mean over seeds, against the number of negatives k, one line per N. The band is \
             the 95% t-interval of the mean (an accuracy's drawn within 0 and 1); filled points are the best set (the k not told \
             apart from the best by a paired t-test with Holm's correction); the ring marks the \
             measured best k and the triangle at the bottom the theory's k* for that N.",
            capitalised(&report.metric.label)
        ),
    }))
}

fn accuracy_panel(report: &Report, panel: &Panel, area: &Area<'_>) -> Result<()> {
    let groups = analysed(report, panel);
    let x = Log2::covering(
        groups
            .iter()
            .flat_map(|(_, a)| a.rows.iter().map(|r| f64::from(r.k))),
    );
    // Accuracies are fractions: a t-interval past 0 or 1 is drawn up to the bound.
    let clip = |v: f64| {
        if report.metric.higher {
            v.clamp(0.0, 1.0)
        } else {
            v
        }
    };
    let y = plot::padded(groups.iter().flat_map(|(_, a)| {
        a.rows
            .iter()
            .flat_map(|r| [r.mean, clip(r.t_ci.0), clip(r.t_ci.1)])
    }));
    // Room under the lowest value for one row of theory marks per N.
    let span = y.end - y.start;
    let step = span * 0.045;
    let y = (y.start - step * (groups.len() as f64 + 0.5))..y.end;
    let digits = decimals(span);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 19))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(x, y.clone())
        .map_err(drawing)?;
    plot::k_mesh(
        &mut chart,
        &report.metric.label,
        &|v| format!("{v:.digits$}"),
        8,
    )?;
    // Every band first, so that no band covers another N's line.
    for (g, a) in &groups {
        let c = series_colour(report.n_index(g.key.n));
        let band = a
            .rows
            .iter()
            .all(|r| r.t_ci.0.is_finite() && r.t_ci.1.is_finite());
        if band && a.rows.len() > 1 {
            let mut outline: Vec<(f64, f64)> = a
                .rows
                .iter()
                .map(|r| (f64::from(r.k), clip(r.t_ci.0)))
                .collect();
            outline.extend(
                a.rows
                    .iter()
                    .rev()
                    .map(|r| (f64::from(r.k), clip(r.t_ci.1))),
            );
            chart
                .draw_series(std::iter::once(Polygon::new(outline, c.mix(0.15).filled())))
                .map_err(drawing)?;
        } else if band && a.rows[0].t_ci.0 < a.rows[0].t_ci.1 {
            let r = &a.rows[0];
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![
                        (f64::from(r.k), clip(r.t_ci.0)),
                        (f64::from(r.k), clip(r.t_ci.1)),
                    ],
                    c.mix(0.4).stroke_width(6),
                )))
                .map_err(drawing)?;
        }
    }
    for (j, (g, a)) in groups.iter().enumerate() {
        let c = series_colour(report.n_index(g.key.n));
        let at = |r: &crate::analyze::KStats| (f64::from(r.k), r.mean);
        // One k: the point alone (a path of one point has nothing to stroke).
        if a.rows.len() > 1 {
            chart
                .draw_series(LineSeries::new(a.rows.iter().map(at), c.stroke_width(2)))
                .map_err(drawing)?;
        }
        chart
            .draw_series(a.rows.iter().flat_map(|r| {
                let fill = if r.in_best_set {
                    c.filled()
                } else {
                    WHITE.filled()
                };
                [
                    Circle::new(at(r), 4, fill),
                    Circle::new(at(r), 4, c.stroke_width(2)),
                ]
            }))
            .map_err(drawing)?;
        if let Some(best) = a.rows.iter().find(|r| r.k == a.best_k) {
            chart
                .draw_series(std::iter::once(Circle::new(at(best), 9, c.stroke_width(2))))
                .map_err(drawing)?;
        }
        if let Some(k) = g.theory_k {
            let mark = (f64::from(k), y.start + step * (j as f64 + 0.6));
            chart
                .draw_series(std::iter::once(TriangleMarker::new(mark, 6, c.filled())))
                .map_err(drawing)?;
        }
    }
    Ok(())
}

/// Figure 2: best k against N (log-log) per family, with the best set's range, the fitted
/// slope and the theory's k*. `None` when no family spans two N.
pub(crate) fn scaling(report: &Report) -> Result<Option<Figure>> {
    let panels: Vec<&Panel> = report
        .panels
        .iter()
        .filter(|p| p.scaling.is_some())
        .collect();
    if panels.is_empty() {
        return Ok(None);
    }
    let mut legend = Vec::new();
    for (i, p) in panels.iter().enumerate() {
        let c = series_colour(i);
        let s = p
            .scaling
            .as_ref()
            .expect("filtered to panels with a scaling");
        legend.push((Glyph::Heading, p.title.clone()));
        legend.push((Glyph::Bar(c), "best k; bar: the best set".to_owned()));
        legend.push((
            Glyph::Line(c),
            format!(
                "fit: slope {:.2}, 95% CI [{:.2}, {:.2}]",
                s.slope, s.ci.0, s.ci.1
            ),
        ));
        legend.push((Glyph::Dashed(c), "theory's k*".to_owned()));
    }
    let members = |p: &Panel| -> Vec<(u32, &GroupAnalysis, Option<u32>)> {
        p.groups
            .iter()
            .map(|&i| &report.groups[i])
            .filter_map(|g| Some((g.key.n, g.analysis.as_ref()?, g.theory_k)))
            .collect()
    };
    // Each family's fitted line, from its smallest to its largest N.
    let fits: Vec<[(f64, f64); 2]> = panels
        .iter()
        .filter_map(|p| fitted(p.scaling.as_ref()?))
        .collect();
    let xs = Log2::covering(
        panels
            .iter()
            .flat_map(|p| members(p))
            .map(|(n, ..)| f64::from(n)),
    );
    let ys = Log2::covering(
        panels
            .iter()
            .flat_map(|p| members(p))
            .flat_map(|(_, a, t)| {
                a.rows
                    .iter()
                    .filter(|r| r.in_best_set)
                    .map(|r| f64::from(r.k))
                    .chain(t.map(f64::from))
            })
            .chain(fits.iter().flatten().map(|(_, y)| *y)),
    );
    let title = "Best k against N".to_owned();
    let svg = canvas(&title, 1, 1, &legend, |_, area| {
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!(
                    "{} (best = {} mean)",
                    short_label(&report.metric.label),
                    if report.metric.higher {
                        "highest"
                    } else {
                        "lowest"
                    }
                ),
                ("sans-serif", 17),
            )
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(xs.clone(), ys.clone())
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .x_desc("N, concepts (log2 scale)")
            .y_desc("best k, negatives per anchor (log2 scale)")
            .x_label_formatter(&|v| power_label(*v))
            .y_label_formatter(&|v| power_label(*v))
            .x_labels(12)
            .y_labels(12)
            .bold_line_style(RGBColor(225, 225, 225))
            .light_line_style(TRANSPARENT)
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 16))
            .draw()
            .map_err(drawing)?;
        let m = panels.len() as f64;
        for (i, p) in panels.iter().enumerate() {
            let c = series_colour(i);
            // Families side by side at each N, a tenth of a doubling apart.
            let shift = 2f64.powf(0.1 * (i as f64 - (m - 1.0) / 2.0));
            let cap = 2f64.powf(0.04);
            // The theory under the measurements, wide and light, so a fit on top of it leaves
            // it visible.
            let theory: Vec<(f64, f64)> = members(p)
                .iter()
                .filter_map(|(n, _, t)| Some((f64::from(*n) * shift, f64::from((*t)?))))
                .collect();
            if theory.len() > 1 {
                chart
                    .draw_series(std::iter::once(DashedPathElement::new(
                        theory.clone(),
                        8,
                        5,
                        c.mix(0.5).stroke_width(4),
                    )))
                    .map_err(drawing)?;
            }
            chart
                .draw_series(
                    theory
                        .iter()
                        .map(|&p| TriangleMarker::new(p, 6, c.mix(0.6).filled())),
                )
                .map_err(drawing)?;
            for (n, a, _) in members(p) {
                let set: Vec<f64> = a
                    .rows
                    .iter()
                    .filter(|r| r.in_best_set)
                    .map(|r| f64::from(r.k))
                    .collect();
                let (lo, hi) = (
                    set.iter().copied().fold(f64::INFINITY, f64::min),
                    set.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                );
                let x = f64::from(n) * shift;
                // One bar per run of consecutive k of the grid in the set, so a k left out in
                // the middle (one an adaptive round dropped too, which has no row) shows as a
                // gap; a best set of one k is a cap alone (a path of no length has nothing to
                // stroke), a lone k inside the range a short tick.
                let mut runs: Vec<(f64, f64)> = Vec::new();
                let mut open = false;
                for &gk in &a.grid {
                    let k = f64::from(gk);
                    let in_set = a.rows.iter().any(|r| r.k == gk && r.in_best_set);
                    match (in_set, open, runs.last_mut()) {
                        (true, true, Some(run)) => run.1 = k,
                        (true, _, _) => {
                            runs.push((k, k));
                            open = true;
                        }
                        (false, ..) => open = false,
                    }
                }
                for &(from, to) in &runs {
                    let segment = if from < to {
                        vec![(x, from), (x, to)]
                    } else if from > lo && from < hi {
                        vec![(x / cap, from), (x * cap, from)]
                    } else {
                        continue;
                    };
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            segment,
                            c.stroke_width(2),
                        )))
                        .map_err(drawing)?;
                }
                if lo.is_finite() {
                    chart
                        .draw_series([
                            PathElement::new(vec![(x / cap, lo), (x * cap, lo)], c.stroke_width(2)),
                            PathElement::new(vec![(x / cap, hi), (x * cap, hi)], c.stroke_width(2)),
                        ])
                        .map_err(drawing)?;
                }
                chart
                    .draw_series(std::iter::once(Circle::new(
                        (x, f64::from(a.best_k)),
                        5,
                        c.filled(),
                    )))
                    .map_err(drawing)?;
            }
            if let Some(line) = p.scaling.as_ref().and_then(fitted) {
                let line = line.map(|(n, k)| (n * shift, k));
                chart
                    .draw_series(LineSeries::new(line, c.stroke_width(2)))
                    .map_err(drawing)?;
            }
        }
        Ok(())
    })?;
    Ok(Some(Figure {
        name: "scaling",
        title,
        svg,
        caption: "The measured best k at each N (points; the bar spans the best set, the k not \
                  told apart from the best, with a gap where a k between is outside it), the least-squares line of log2 best k on log2 N \
                  (its slope and 95% bootstrap interval over the seeds in the legend) and the \
                  theory's k* per N (wide dashed line, triangles). Families are drawn a little \
                  apart at each N so that they do not hide each other. Both axes are log2."
            .to_owned(),
    }))
}

/// The least-squares line of log2 best k on log2 N at the smallest and the largest N; `None`
/// where it is not finite.
fn fitted(s: &crate::analyze::Scaling) -> Option<[(f64, f64); 2]> {
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    let lx: Vec<f64> = s.ns.iter().map(|&n| f64::from(n).log2()).collect();
    let ly: Vec<f64> = s.best_k.iter().map(|&k| f64::from(k).log2()).collect();
    let intercept = mean(&ly) - s.slope * mean(&lx);
    let at = |n: u32| {
        let n = f64::from(n);
        (n, 2f64.powf(intercept + s.slope * n.log2()))
    };
    let line = [at(*s.ns.first()?), at(*s.ns.last()?)];
    line.iter().all(|(_, y)| y.is_finite()).then_some(line)
}

/// The axis label without its parenthesis (`mean-classifier accuracy`), for captions.
pub(crate) fn short_label(label: &str) -> &str {
    label.split(" (").next().unwrap_or(label)
}

/// `text` with its first letter in upper case.
pub(crate) fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_legend_longer_than_the_panels_makes_the_figure_taller_and_stays_inside_it() {
        let attr = |svg: &str, tag: &str, name: &str| -> Vec<f64> {
            svg.split(&format!("<{tag} "))
                .skip(1)
                .filter_map(|t| {
                    let v = t.split(&format!(" {name}=\"")).nth(1)?;
                    v.split('"').next()?.parse().ok()
                })
                .collect()
        };
        let short = vec![(Glyph::Line(series_colour(0)), "one".to_owned())];
        let long: Vec<(Glyph, String)> = (0..40)
            .map(|i| (Glyph::Line(series_colour(i)), format!("entry {i}")))
            .collect();
        let draw = |legend: &[(Glyph, String)]| canvas("t", 1, 1, legend, |_, _| Ok(())).unwrap();
        let (a, b) = (draw(&short), draw(&long));
        let height = |svg: &str| attr(svg, "svg", "height")[0];
        assert_eq!(height(&a), f64::from(TITLE + PANEL.1));
        assert!(height(&b) > height(&a), "{} vs {}", height(&b), height(&a));
        // Every legend line is drawn inside the figure.
        let last = attr(&b, "text", "y").into_iter().fold(0.0, f64::max);
        assert!(
            last < height(&b),
            "text at {last} in a figure {} high",
            height(&b)
        );
    }

    #[test]
    fn tick_labels_have_enough_decimals_for_their_span() {
        assert_eq!(decimals(1.0), 1);
        assert_eq!(decimals(0.1), 2);
        assert_eq!(decimals(0.004), 4);
        assert_eq!(decimals(1e-9), 4);
        assert_eq!(decimals(f64::NAN), 2);
        assert_eq!(decimals(50.0), 1);
    }

    #[test]
    fn the_fitted_line_passes_through_the_means_of_the_logs() {
        let s = crate::analyze::Scaling {
            ns: vec![4, 16, 64],
            best_k: vec![2, 8, 32],
            slope: 1.0,
            ci: (1.0, 1.0),
            settings: Vec::new(),
            theory_k: vec![Some(4), Some(16), Some(64)],
            theory_slope: Some(1.0),
        };
        assert_eq!(fitted(&s), Some([(4.0, 2.0), (64.0, 32.0)]));
        let flat = crate::analyze::Scaling {
            slope: f64::NAN,
            ..s.clone()
        };
        assert_eq!(fitted(&flat), None);
    }

    #[test]
    fn labels_shorten_and_capitalise() {
        assert_eq!(
            short_label("kNN accuracy (fraction correct)"),
            "kNN accuracy"
        );
        assert_eq!(
            capitalised("mean-classifier accuracy"),
            "Mean-classifier accuracy"
        );
        assert_eq!(capitalised(""), "");
    }
}

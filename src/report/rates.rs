//! The report's collision and coverage figure: the measured rates against k with the theory's
//! curves over them, one pair of panels per family of groups.

use plotters::prelude::*;

use super::data::{Group, Panel, Report};
use super::figures::{Area, Figure, canvas, n_entries};
use super::plot::{Glyph, Log2, drawing, series_colour};
use crate::Result;

/// Figure 4: the measured collision and coverage rates against k with the theory's curves, per
/// family. `None` when the table has no groups.
pub(crate) fn rates(report: &Report) -> Result<Option<Figure>> {
    if report.panels.is_empty() {
        return Ok(None);
    }
    let mut legend = n_entries(report, report.ns.iter().copied());
    let grey = RGBColor(90, 90, 90);
    legend.extend([
        (Glyph::Heading, "Marks".to_owned()),
        (
            Glyph::Dot(grey, true),
            "measured: fraction of training anchors, mean over seeds".to_owned(),
        ),
        (
            Glyph::Line(grey),
            "theory: tau_k (collision) and the coverage probability, for the measured class \
             frequencies"
                .to_owned(),
        ),
    ]);
    let title = "Collisions and coverage against k".to_owned();
    let count = report.panels.len() * 2;
    let svg = canvas(&title, count, 2, &legend, |i, area| {
        rates_panel(report, &report.panels[i / 2], i % 2 == 0, area)
    })?;
    Ok(Some(Figure {
        name: "rates",
        title,
        svg,
        caption: "Left: the fraction of training anchors with at least one negative of their own \
                  concept (a collision) against k, measured (points) and the theory's tau_k \
                  (line). Right: the fraction whose k negatives cover every other concept, \
                  measured and predicted. Both use the pools the points trained with; the \
                  theory describes uniform sampling, so other strategies may depart from it."
            .to_owned(),
    }))
}

fn rates_panel(report: &Report, panel: &Panel, collision: bool, area: &Area<'_>) -> Result<()> {
    let groups: Vec<&Group> = panel.groups.iter().map(|&i| &report.groups[i]).collect();
    let x = Log2::covering(
        groups
            .iter()
            .flat_map(|g| g.rates.iter().map(|r| f64::from(r.k))),
    );
    let what = if collision { "collision" } else { "coverage" };
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{}: {what}", panel.title), ("sans-serif", 19))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(x, -0.03..1.03)
        .map_err(drawing)?;
    super::plot::k_mesh(
        &mut chart,
        if collision {
            "anchors with a collision (fraction)"
        } else {
            "anchors with every concept covered (fraction)"
        },
        &|v| format!("{v:.1}"),
        6,
    )?;
    for g in groups {
        let c = series_colour(report.n_index(g.key.n));
        let pick = |r: &super::data::Rates| {
            if collision {
                (r.collision, r.tau)
            } else {
                (r.coverage, r.coverage_theory)
            }
        };
        let theory: Vec<(f64, f64)> = g
            .rates
            .iter()
            .filter_map(|r| {
                let t = pick(r).1;
                t.is_finite().then_some((f64::from(r.k), t))
            })
            .collect();
        if theory.len() > 1 {
            chart
                .draw_series(LineSeries::new(theory, c.stroke_width(2)))
                .map_err(drawing)?;
        } else {
            // One k: the theory's value as a short level line through it.
            chart
                .draw_series(theory.into_iter().map(|p| {
                    EmptyElement::at(p)
                        + PathElement::new(vec![(-14, 0), (14, 0)], c.stroke_width(2))
                }))
                .map_err(drawing)?;
        }
        chart
            .draw_series(g.rates.iter().filter_map(|r| {
                let m = pick(r).0;
                m.is_finite()
                    .then(|| Circle::new((f64::from(r.k), m), 4, c.filled()))
            }))
            .map_err(drawing)?;
    }
    Ok(())
}

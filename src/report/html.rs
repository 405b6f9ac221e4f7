//! The report page: one self-contained HTML file with every figure inline as SVG, the verdicts,
//! the analysis table and the provenance. No script, no style sheet or font from elsewhere.

use std::fmt::Write as _;

use super::data::Report;
use super::figures::{Figure, short_label};
use super::provenance::{Provenance, utc};

/// `text` with `&`, `<`, `>` and `"` escaped for HTML.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body { font-family: 'DejaVu Sans', 'Liberation Sans', Arial, sans-serif; margin: 2em auto;
       max-width: 1400px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; }
figure { margin: 1em 0; } figure svg { width: 100%; max-width: 1300px; height: auto; display: block; }
figcaption { max-width: 60em; color: #444; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th { background: #f2f2f2; } td.l, th.l { text-align: left; }
tr.best td { font-weight: bold; } tr.set td { background: #eef5ee; }
.verdicts li { margin: 0.2em 0; } .note { color: #7a4b00; }
code { background: #f4f4f4; padding: 0 0.2em; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1.5em; }
dt { font-weight: bold; } dd { margin: 0; }
";

/// A number with `d` decimals; `n/a` for NaN.
fn num(v: f64, d: usize) -> String {
    if v.is_finite() {
        format!("{v:.d$}")
    } else {
        "n/a".to_owned()
    }
}

/// An interval with `d` decimals.
fn interval((lo, hi): (f64, f64), d: usize) -> String {
    if lo.is_finite() && hi.is_finite() {
        format!("[{lo:.d$}, {hi:.d$}]")
    } else {
        "n/a".to_owned()
    }
}

/// What the report settings were: metric, resamples, seed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Settings {
    /// Bootstrap resamples.
    pub(crate) resamples: usize,
    /// Bootstrap seed.
    pub(crate) seed: u64,
}

/// The page for `report`: `figures` inline, `missing` (figure, why it is not drawn) as notes.
pub(crate) fn page(
    report: &Report,
    figures: &[Figure],
    missing: &[(&str, String)],
    provenance: &Provenance,
    settings: &Settings,
) -> String {
    let mut out = String::new();
    let name = provenance.pipeline.as_ref().map_or_else(
        || provenance.results.clone(),
        |p| format!("pipeline {}", p.name),
    );
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>negsweep report: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>negsweep report: {}</h1>\n",
        escape(&name),
        escape(&name)
    );
    let ks: std::collections::BTreeSet<u32> = report
        .groups
        .iter()
        .flat_map(|g| g.rates.iter().map(|r| r.k))
        .collect();
    let _ = writeln!(
        out,
        "<p>{} in {} (dataset x N x settings), N in {{{}}}, k in {{{}}}; metric \
         <code>{}</code>: {}. Seeds are the unit of replication; every comparison is paired \
         seed by seed.</p>",
        crate::count(provenance.points, "point"),
        crate::count(report.groups.len(), "group"),
        join(report.ns.iter()),
        join(ks.iter()),
        escape(&report.metric.name),
        escape(&report.metric.label)
    );
    out.push_str("<h2>The answer</h2>\n");
    if report.analysed.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"note\">No point has a finite value of <code>{}</code>: nothing to \
             compare (is it turned off in the pipeline, as the probe is with \
             <code>eval.probe-epochs = 0</code>?).</p>",
            escape(&report.metric.name)
        );
    }
    out.push_str("<ul class=\"verdicts\">\n");
    for line in crate::analyze::verdicts(&report.analysed).lines() {
        let _ = writeln!(out, "<li>{}</li>", escape(line));
    }
    let scaling: Vec<(String, crate::analyze::Scaling)> = report
        .panels
        .iter()
        .filter_map(|p| Some((p.family.dataset.clone(), p.scaling.clone()?)))
        .collect();
    for line in crate::analyze::render_scaling(&scaling).lines() {
        let _ = writeln!(out, "<li>{}</li>", escape(line));
    }
    out.push_str("</ul>\n");
    for (i, f) in figures.iter().enumerate() {
        let _ = write!(
            out,
            "<h2>Figure {}. {}</h2>\n<figure id=\"{}\">\n{}\n<figcaption>{} Files: \
             <a href=\"figures/{}.svg\">SVG</a>, <a href=\"figures/{}.png\">PNG</a>.\
             </figcaption>\n</figure>\n",
            i + 1,
            escape(&f.title),
            f.name,
            f.svg.replacen(
                "<svg ",
                &format!("<svg role=\"img\" aria-label=\"{}\" ", escape(&f.title)),
                1
            ),
            escape(&f.caption),
            f.name,
            f.name
        );
    }
    for (name, why) in missing {
        let _ = writeln!(
            out,
            "<p class=\"note\">No {} figure: {}</p>",
            escape(name),
            escape(why)
        );
    }
    table(&mut out, report);
    if !provenance.adaptive.is_empty() {
        out.push_str(
            "<h2>Adaptive rounds</h2>\n<p>This sweep ran in rounds (<code>[sweep.adaptive]</code>): \
             the k values a round dropped got no more seeds and are left out of the analysis \
             above. Every decision, from <code>adaptive.parquet</code>:</p>\n<ul>\n",
        );
        for line in &provenance.adaptive {
            let _ = writeln!(out, "<li>{}</li>", escape(line));
        }
        out.push_str("</ul>\n");
    }
    provenance_section(&mut out, report, provenance, settings);
    out.push_str("</body>\n</html>\n");
    out
}

fn join<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items.map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
}

/// The analysis table: what `negsweep analyze` prints, one table per group.
fn table(out: &mut String, report: &Report) {
    out.push_str("<h2>Analysis</h2>\n");
    let _ = writeln!(
        out,
        "<p>Per group, each k's mean {} over the seeds with its 95% t-interval and percentile \
         bootstrap interval, the paired difference from the best k with its t-interval and \
         Holm-adjusted p-value, and P(k is best). Rows in the best set are shaded; the best k is \
         in bold.</p>",
        escape(short_label(&report.metric.label))
    );
    for (key, g) in &report.analysed {
        let seeds = g.rows.first().map_or(0, |r| r.seeds);
        let _ = writeln!(
            out,
            "<h3>{}</h3>\n<p>{}<br>{}, {} bootstrap resamples: {}</p>",
            escape(&report.label(key)),
            escape(&key.settings.join(" ")),
            crate::count(seeds, "seed"),
            g.resamples,
            escape(&g.verdict())
        );
        out.push_str(
            "<table>\n<tr><th>k</th><th>mean</th><th>sd</th><th>95% CI (t)</th>\
             <th>95% CI (bootstrap)</th><th>vs best</th><th>95% CI of the difference</th>\
             <th>p (Holm)</th><th>P(best)</th><th class=\"l\">best set</th></tr>\n",
        );
        for r in &g.rows {
            let class = if r.k == g.best_k {
                " class=\"best set\""
            } else if r.in_best_set {
                " class=\"set\""
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
                r.k,
                num(r.mean, 4),
                num(r.sd, 4),
                interval(r.t_ci, 4),
                interval(r.boot_ci, 4),
                if r.diff.is_finite() {
                    format!("{:+.4}", r.diff)
                } else {
                    "n/a".to_owned()
                },
                interval(r.diff_ci, 4),
                num(r.p_holm, 3),
                num(r.p_best, 3),
                if r.in_best_set { "yes" } else { "" }
            );
        }
        out.push_str("</table>\n");
    }
}

fn provenance_section(out: &mut String, report: &Report, p: &Provenance, s: &Settings) {
    out.push_str("<h2>Provenance</h2>\n<dl>\n");
    let mut item = |term: &str, value: String| {
        let _ = writeln!(out, "<dt>{term}</dt><dd>{value}</dd>");
    };
    if let Some(pipe) = &p.pipeline {
        item(
            "pipeline",
            format!(
                "{} (<code>{}</code>)",
                escape(&pipe.name),
                escape(&pipe.file)
            ),
        );
    }
    item("results", format!("<code>{}</code>", escape(&p.results)));
    item(
        "points",
        format!(
            "{} ({} resolved pipeline configuration{})",
            p.points,
            p.configs,
            if p.configs == 1 { "" } else { "s" }
        ),
    );
    if let Some((first, last)) = p.finished {
        item("computed", format!("{} to {}", utc(first), utc(last)));
    }
    item(
        "computed by",
        if p.computed_by.is_empty() {
            "not recorded".to_owned()
        } else {
            escape(&p.computed_by.join(", "))
        },
    );
    item(
        "report by",
        format!(
            "negsweep {}{}",
            crate::VERSION,
            crate::GIT_REVISION.map_or_else(String::new, |g| format!(" ({})", escape(g)))
        ),
    );
    item(
        "analysis",
        format!(
            "metric <code>{}</code>, {} bootstrap resamples, seed {}; paired t-tests against \
             the best k, Holm-adjusted, alpha 0.05",
            escape(&report.metric.name),
            s.resamples,
            s.seed
        ),
    );
    item("date", utc(p.made));
    item(
        "data in the results",
        if p.row_data.is_empty() {
            "not recorded".to_owned()
        } else {
            p.row_data
                .iter()
                .map(|(d, h)| format!("{}: <code>{}</code>", escape(d), escape(h)))
                .collect::<Vec<_>>()
                .join("<br>")
        },
    );
    out.push_str("</dl>\n");
    if !p.datasets.is_empty() {
        out.push_str(
            "<h3>Datasets ingested into the output</h3>\n<table>\n<tr><th class=\"l\">folder\
             </th><th class=\"l\">content hash (blake3 of the examples)</th><th>examples</th>\
             <th>concepts</th><th class=\"l\">in these results</th></tr>\n",
        );
        for d in &p.datasets {
            let count = |c: Option<u64>| c.map_or_else(|| "n/a".to_owned(), |c| c.to_string());
            let _ = writeln!(
                out,
                "<tr><td class=\"l\"><code>datasets/{}</code></td><td class=\"l\"><code>{}</code>\
                 </td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
                escape(&d.folder),
                escape(&d.data_hash),
                count(d.examples),
                count(d.concepts),
                if d.in_results { "yes" } else { "no" }
            );
        }
        out.push_str("</table>\n");
    }
    if !p.inputs.is_empty() {
        out.push_str(
            "<h3>Inputs read</h3>\n<table>\n<tr><th class=\"l\">location</th><th>bytes</th>\
             <th class=\"l\">fingerprint</th></tr>\n",
        );
        for i in &p.inputs {
            let _ = writeln!(
                out,
                "<tr><td class=\"l\"><code>{}</code></td><td>{}</td><td class=\"l\"><code>{}\
                 </code></td></tr>",
                escape(&i.url),
                i.size,
                escape(&i.fingerprint)
            );
        }
        out.push_str("</table>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_missing_numbers_say_so() {
        assert_eq!(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
        assert_eq!(num(f64::NAN, 3), "n/a");
        assert_eq!(num(0.12345, 3), "0.123");
        assert_eq!(interval((0.1, f64::NAN), 2), "n/a");
        assert_eq!(interval((0.1, 0.25), 2), "[0.10, 0.25]");
    }
}

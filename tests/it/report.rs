//! `negsweep report`: the page and its figures for real sweeps, parsed as XML and looked at by
//! a headless browser.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{negsweep, shown, tiny, write};

/// Every figure a sweep over several k, N and seeds draws.
const FIGURES: [&str; 5] = ["accuracy", "scaling", "p_best", "rates", "means"];

/// Runs the tiny pipeline with `sweep` (and `extra` sections) into `dir/out`; returns the
/// output folder and the run's stdout.
fn swept(dir: &Path, sweep: &str, extra: &str) -> (PathBuf, String) {
    let out = dir.join("out");
    let text = format!("{}\n{extra}", tiny(out.to_str().unwrap(), sweep));
    let file = write(dir, "p.toml", &text);
    let run = negsweep().arg("run").arg(&file).output().unwrap();
    assert!(run.status.success(), "{}", shown(&run));
    (out, String::from_utf8_lossy(&run.stdout).into_owned())
}

/// `negsweep report ARGS...`, which must succeed without a warning (a font not found, a path
/// the rasteriser cannot stroke); its stdout.
fn report(args: &[&str]) -> String {
    let out = negsweep().arg("report").args(args).output().unwrap();
    assert!(out.status.success(), "{}", shown(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("WARN"),
        "{}",
        shown(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The SVG of figure `name` under `dir`, parsed; panics on a coordinate that is not a number.
fn svg(dir: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(dir.join("figures").join(format!("{name}.svg"))).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    for node in doc.descendants().filter(|n| n.is_element()) {
        for a in node.attributes() {
            let v = a.value().to_ascii_lowercase();
            assert!(
                !v.contains("nan") && !v.contains("inf"),
                "{name}: {}=\"{}\" on <{}>",
                a.name(),
                a.value(),
                node.tag_name().name()
            );
        }
    }
    text
}

/// The texts of an SVG, trimmed.
fn texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_owned())
        .collect()
}

/// Per polyline of an SVG drawn 2 pixels wide (the series; axes and grid are 1 wide): its
/// number of points.
fn series_lengths(svg: &str) -> Vec<usize> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke-width") == Some("2"))
        .map(|n| {
            n.attribute("points")
                .unwrap_or("")
                .split_whitespace()
                .count()
        })
        .collect()
}

/// The PNG of figure `name`: its size, and whether it is more than a blank page.
fn png(dir: &Path, name: &str) -> (u32, u32) {
    let path = dir.join("figures").join(format!("{name}.png"));
    let img = image::open(&path).unwrap().to_rgb8();
    assert_drawn(&img, &path);
    img.dimensions()
}

/// At least 3% of the pixels are not white, and there are more than 20 colours.
fn assert_drawn(img: &image::RgbImage, what: &Path) {
    let total = img.pixels().count();
    let inked = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    let colours: std::collections::HashSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    assert!(
        inked * 100 >= total * 3,
        "{}: {inked} of {total} pixels are not white",
        what.display()
    );
    assert!(
        colours.len() > 20,
        "{}: only {} colours",
        what.display(),
        colours.len()
    );
}

#[test]
fn a_sweep_reports_every_figure_inline_with_labelled_axes_and_no_nan() {
    let dir = tempfile::tempdir().unwrap();
    let (out, stdout) = swept(
        dir.path(),
        "k = [1, 2, 4]\nn = [4, 8]\nseed = [0, 1, 2]",
        "",
    );
    // The run itself ends with the report.
    assert!(
        stdout.contains("report: ") && stdout.contains("report.html"),
        "{stdout}"
    );
    assert!(out.join("report.html").exists());
    // Again into another folder, from the output folder.
    let elsewhere = dir.path().join("elsewhere");
    let printed = report(&[out.to_str().unwrap(), "--out", elsewhere.to_str().unwrap()]);
    assert!(printed.contains("report.html"), "{printed}");
    assert!(!printed.contains("not drawn"), "{printed}");
    for name in FIGURES {
        let text = svg(&elsewhere, name);
        let (w, h) = png(&elsewhere, name);
        let doc = roxmltree::Document::parse(&text).unwrap();
        let root = doc.root_element();
        let size = |a: &str| root.attribute(a).unwrap().parse::<u32>().unwrap();
        assert_eq!((w, h), (2 * size("width"), 2 * size("height")), "{name}");
    }
    // The metric against k: one line of 3 points (one per k) per N, in one panel.
    let accuracy = svg(&elsewhere, "accuracy");
    let lines = series_lengths(&accuracy);
    assert_eq!(lines.iter().filter(|&&n| n == 3).count(), 2, "{lines:?}");
    let t = texts(&accuracy);
    for label in [
        "Mean-classifier accuracy against k",
        "k, negatives per anchor (log2 scale)",
        "mean-classifier accuracy (fraction correct)",
        "N = 4",
        "N = 8",
        "measured best k",
        "tiny-text",
    ] {
        assert!(t.iter().any(|x| x == label), "{label} in {t:?}");
    }
    for tick in ["1", "2", "4"] {
        assert!(t.iter().any(|x| x == tick), "tick {tick} in {t:?}");
    }
    // Best k against N: the fit and the theory in the legend, log axes labelled.
    let t = texts(&svg(&elsewhere, "scaling"));
    assert!(t.iter().any(|x| x.starts_with("fit: slope ")), "{t:?}");
    for label in [
        "N, concepts (log2 scale)",
        "best k, negatives per anchor (log2 scale)",
        "theory's k*",
    ] {
        assert!(t.iter().any(|x| x == label), "{label} in {t:?}");
    }
    // Collision and coverage: measured points and one theory line of 3 k per N and panel.
    let rates = svg(&elsewhere, "rates");
    let lines = series_lengths(&rates);
    assert_eq!(lines.iter().filter(|&&n| n == 3).count(), 4, "{lines:?}");
    let t = texts(&rates);
    for label in [
        "anchors with a collision (fraction)",
        "anchors with every concept covered (fraction)",
    ] {
        assert!(t.iter().any(|x| x == label), "{label} in {t:?}");
    }
    // Heatmaps: the axes, the colour bar and one printed value per cell (2 N x 3 k).
    for (name, bar) in [
        ("p_best", "P(k is best)"),
        ("means", "Mean-classifier accuracy (fraction correct)"),
    ] {
        let t = texts(&svg(&elsewhere, name));
        for label in ["k, negatives per anchor", "N, concepts", bar] {
            assert!(t.iter().any(|x| x == label), "{name}: {label} in {t:?}");
        }
        let cells = t
            .iter()
            .filter(|x| x.starts_with("0.") || x.starts_with("1.0"))
            .count();
        assert!(cells >= 6, "{name}: {t:?}");
    }
    // The page: every figure inline, the verdicts, the table and the provenance; nothing
    // fetched from elsewhere.
    let html = std::fs::read_to_string(elsewhere.join("report.html")).unwrap();
    assert_eq!(html.matches("<svg ").count(), FIGURES.len(), "inline SVG");
    for name in FIGURES {
        assert!(html.contains(&format!("figures/{name}.png")), "{name}");
    }
    assert!(html.contains("tiny-text N=4: k* = "), "the verdict");
    assert!(html.contains("one-standard-error k = "));
    assert!(html.contains("slope of log2 best-k on log2 N"));
    assert!(html.contains("<th>p (Holm)</th>"));
    assert!(html.contains(&format!("negsweep {}", env!("CARGO_PKG_VERSION"))));
    assert!(html.contains("datasets/tiny-text-"), "the ingested dataset");
    assert!(!html.contains("<script"));
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
    // The run's own page names its pipeline.
    let own = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        own.contains("negsweep report: pipeline tiny"),
        "the pipeline name"
    );
    // A loss: lower is better, and said so.
    let loss = dir.path().join("loss");
    report(&[
        out.join("results.arrow").to_str().unwrap(),
        "--metric",
        "test_loss",
        "--resamples",
        "200",
        "--out",
        loss.to_str().unwrap(),
    ]);
    let t = texts(&svg(&loss, "accuracy"));
    assert!(
        t.iter()
            .any(|x| x == "test contrastive loss (nats; lower is better)"),
        "{t:?}"
    );
    let html = std::fs::read_to_string(loss.join("report.html")).unwrap();
    assert!(html.contains("lower is better"));
}

#[test]
fn one_seed_one_k_one_n_and_a_metric_without_values_still_report() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = swept(
        dir.path(),
        "k = [2]\nn = [4]\nseed = [0]",
        "[eval]\nprobe-epochs = 0\n",
    );
    let printed = report(&[out.to_str().unwrap()]);
    assert!(printed.contains("not drawn: scaling"), "{printed}");
    for name in ["accuracy", "p_best", "rates", "means"] {
        svg(&out, name);
        png(&out, name);
    }
    assert!(!out.join("figures/scaling.svg").exists());
    // One k, one seed: the point alone (no line, no interval), ringed as the best k.
    let accuracy = svg(&out, "accuracy");
    assert!(
        series_lengths(&accuracy).iter().all(|&n| n == 2),
        "only the legend's samples"
    );
    let doc = roxmltree::Document::parse(&accuracy).unwrap();
    let rings = doc
        .descendants()
        .filter(|n| n.has_tag_name("circle") && n.attribute("r") == Some("9"))
        .count();
    assert_eq!(rings, 1);
    assert!(
        texts(&accuracy)
            .iter()
            .any(|x| x == "one seed: no interval")
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("No scaling figure"), "said so");
    // The probe is off: its metric has no value anywhere, and the page says so instead of
    // drawing empty panels.
    let probe = dir.path().join("probe");
    let printed = report(&[
        out.to_str().unwrap(),
        "--metric",
        "probe_top1",
        "--out",
        probe.to_str().unwrap(),
    ]);
    assert!(printed.contains("not drawn: accuracy"), "{printed}");
    svg(&probe, "rates");
    assert!(!probe.join("figures/accuracy.svg").exists());
    let html = std::fs::read_to_string(probe.join("report.html")).unwrap();
    assert!(html.contains("No point has a finite value of <code>probe_top1</code>"));
    // `collect` writes the report too; one that cannot be written (its folder is a file) is a
    // warning, and the results stand.
    let file = dir.path().join("p.toml");
    let collect = negsweep().arg("collect").arg(&file).output().unwrap();
    assert!(collect.status.success(), "{}", shown(&collect));
    assert!(
        String::from_utf8_lossy(&collect.stdout).contains("report: "),
        "{}",
        shown(&collect)
    );
    std::fs::remove_dir_all(out.join("figures")).unwrap();
    std::fs::write(out.join("figures"), "in the way").unwrap();
    let again = negsweep().arg("run").arg(&file).output().unwrap();
    assert!(again.status.success(), "{}", shown(&again));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("warning: the report was not written"),
        "{}",
        shown(&again)
    );
    assert!(out.join("results.arrow").exists());
    assert!(
        !out.join("report.html").exists(),
        "no page describes older results"
    );
    // A target with no results.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let none = negsweep().arg("report").arg(&empty).output().unwrap();
    assert_eq!(none.status.code(), Some(3), "{}", shown(&none));
}

/// The browser the screenshot test drives.
fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Some(dir) = std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .find(|d| d.join(name).is_file())
        {
            return dir.join(name);
        }
    }
    panic!(
        "no headless browser: the report test renders report.html in Chromium. Install it \
         (Debian: `apt-get install -y chromium`, as `.ci/test` does) and run the test again"
    );
}

#[test]
fn the_page_renders_in_a_headless_browser() {
    let browser = chromium();
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = swept(dir.path(), "k = [1, 4]\nn = [4, 8]\nseed = [0, 1]", "");
    let shot = dir.path().join("shot.png");
    let mut child = std::process::Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,2000",
            &format!("file://{}", out.join("report.html").display()),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "{} took over 2 minutes",
            browser.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let done = child.wait_with_output().unwrap();
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&done.stderr)
    );
    let img = image::open(&shot).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (1200, 2000));
    assert_drawn(&img, &shot);
}

//! What every figure draws with: the fonts text is measured and rasterised with, a log2
//! axis, padded linear ranges, colours, a legend column and SVG -> PNG.
//!
//! Figures are drawn with plotters into SVG strings. plotters measures text (axis label areas,
//! legends) with ab_glyph and the face registered under `sans-serif`; resvg draws the same face
//! when it rasterises the SVG, so what was measured is what is drawn. Both come from the system's
//! fonts, found once per process by fontdb (DejaVu Sans first).

use std::ops::Range;
use std::sync::{Arc, OnceLock};

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use resvg::usvg::fontdb;

use crate::{Error, Result};

/// Families tried in order for `sans-serif`; the first one installed is used.
const SANS: &[&str] = &[
    "DejaVu Sans",
    "Liberation Sans",
    "Noto Sans",
    "FreeSans",
    "Arial",
    "Helvetica",
];

/// The system fonts, and the family that stands for `sans-serif`.
struct Fonts {
    db: Arc<fontdb::Database>,
    family: String,
}

/// Found once per process: plotters keeps registered faces in a table of its own, and scanning
/// the system's fonts takes tens of milliseconds.
static FONTS: OnceLock<std::result::Result<Fonts, String>> = OnceLock::new();

fn fonts() -> Result<&'static Fonts> {
    FONTS
        .get_or_init(load_fonts)
        .as_ref()
        .map_err(|m| Error::data("fonts", m.clone()))
}

/// Loads the system's fonts, picks the `sans-serif` family and registers its regular and bold
/// faces with plotters.
fn load_fonts() -> std::result::Result<Fonts, String> {
    let mut db = fontdb::Database::new();
    db.load_system_fonts();
    let has = |name: &str| {
        db.faces()
            .any(|f| f.index == 0 && f.families.iter().any(|(n, _)| n == name))
    };
    let family = SANS
        .iter()
        .find(|f| has(f))
        .map(|f| (*f).to_owned())
        .or_else(|| {
            let mut names: Vec<&str> = db
                .faces()
                .filter(|f| f.index == 0)
                .filter_map(|f| f.families.first().map(|(n, _)| n.as_str()))
                .collect();
            names.sort_unstable();
            names.first().map(|n| (*n).to_owned())
        })
        .ok_or_else(|| {
            "no font installed: the figures need one to measure and draw their text (on Debian: \
             apt-get install fonts-dejavu-core)"
                .to_owned()
        })?;
    for (style, weight) in [
        (FontStyle::Normal, fontdb::Weight::NORMAL),
        (FontStyle::Bold, fontdb::Weight::BOLD),
    ] {
        let query = fontdb::Query {
            families: &[fontdb::Family::Name(&family)],
            weight,
            ..fontdb::Query::default()
        };
        let Some(id) = db.query(&query) else {
            continue;
        };
        let Some(Some(bytes)) =
            db.with_face_data(id, |data, index| (index == 0).then(|| data.to_vec()))
        else {
            continue;
        };
        // plotters keeps faces for the life of the process; this runs once per process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", style, bytes)
            .map_err(|_| format!("font `{family}` cannot be read"))?;
    }
    db.set_sans_serif_family(family.clone());
    Ok(Fonts {
        db: Arc::new(db),
        family,
    })
}

/// Makes sure text can be measured; call before drawing.
///
/// # Errors
/// No usable font is installed.
pub(crate) fn ready() -> Result<()> {
    fonts().map(|_| ())
}

/// Rasterises `svg` at `scale` times its size onto white.
///
/// # Errors
/// The SVG does not parse (a bug), or no font is installed.
pub(crate) fn png(svg: &str, scale: f32) -> Result<Vec<u8>> {
    use resvg::{tiny_skia, usvg};
    let fonts = fonts()?;
    let options = usvg::Options {
        font_family: fonts.family.clone(),
        fontdb: Arc::clone(&fonts.db),
        ..usvg::Options::default()
    };
    let bug = |what: String| Error::Internal(format!("rasterising a figure: {what}"));
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| bug(e.to_string()))?;
    let size = tree
        .size()
        .to_int_size()
        .scale_by(scale)
        .ok_or_else(|| bug("empty figure".into()))?;
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| bug("empty figure".into()))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().map_err(|e| bug(e.to_string()))
}

/// A base-2 logarithmic axis over positive values (k, N): positions are proportional to log2 of
/// the value and ticks fall on powers of two.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Log2 {
    lo: f64,
    hi: f64,
}

impl Log2 {
    /// An axis over the positive, finite `values` with a third of a doubling of room on each
    /// side; [1/2, 2] times a single value, [1, 2] with none.
    pub(crate) fn covering(values: impl IntoIterator<Item = f64>) -> Self {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.into_iter().filter(|v| v.is_finite() && *v > 0.0) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !lo.is_finite() {
            return Self { lo: 1.0, hi: 2.0 };
        }
        let room = if lo == hi { 1.0 } else { 1.0 / 3.0 };
        Self {
            lo: lo / 2f64.powf(room),
            hi: hi * 2f64.powf(room),
        }
    }

    /// Powers of two inside the axis, every second (fourth, ...) one when there would be more
    /// than `max`; at least one.
    pub(crate) fn ticks(&self, max: usize) -> Vec<f64> {
        let (first, last) = (self.lo.log2().ceil() as i32, self.hi.log2().floor() as i32);
        if last < first {
            return vec![2f64.powf((self.lo.log2() + self.hi.log2()) / 2.0)];
        }
        let count = (last - first + 1) as usize;
        let mut step = 1;
        while count.div_ceil(step) > max.max(1) {
            step *= 2;
        }
        (first..=last).step_by(step).map(|e| 2f64.powi(e)).collect()
    }
}

impl Ranged for Log2 {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let (a, b) = (self.lo.log2(), self.hi.log2());
        let t = ((value.max(f64::MIN_POSITIVE).log2() - a) / (b - a)).clamp(-1.0, 2.0);
        limit.0 + (f64::from(limit.1 - limit.0) * t).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        self.ticks(hint.max_num_points())
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

/// An axis of `n` equal slots (the columns or rows of a heatmap): slot `i` spans
/// `i - 0.5 .. i + 0.5` and is ticked at `i`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Slots(pub(crate) usize);

impl Ranged for Slots {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let t = ((value + 0.5) / self.0.max(1) as f64).clamp(-1.0, 2.0);
        limit.0 + (f64::from(limit.1 - limit.0) * t).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        let step = self.0.div_ceil(hint.max_num_points().max(1)).max(1);
        (0..self.0).step_by(step).map(|i| i as f64).collect()
    }

    fn range(&self) -> Range<f64> {
        -0.5..self.0 as f64 - 0.5
    }
}

/// A value of a log2 axis as a label: `4`, `1024`, `1.4`.
pub(crate) fn power_label(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round())
    } else {
        format!("{v:.2}")
    }
}

/// A linear range over the finite `values` with 6% of their span on each side; a span of 0.1
/// (or 10% of the value) around a single value; [0, 1] with none.
pub(crate) fn padded(values: impl IntoIterator<Item = f64>) -> Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.into_iter().filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    if lo == hi {
        let half = (lo.abs() * 0.1).max(0.05);
        return lo - half..hi + half;
    }
    let pad = (hi - lo) * 0.06;
    lo - pad..hi + pad
}

/// Colours of series, one per N (Tableau 10), cycling.
pub(crate) fn series_colour(i: usize) -> RGBColor {
    const PALETTE: [(u8, u8, u8); 10] = [
        (0x4e, 0x79, 0xa7),
        (0xf2, 0x8e, 0x2b),
        (0xe1, 0x57, 0x59),
        (0x59, 0xa1, 0x4f),
        (0xb0, 0x7a, 0xa1),
        (0x76, 0xb7, 0xb2),
        (0x9c, 0x75, 0x5f),
        (0xed, 0xc9, 0x48),
        (0xff, 0x9d, 0xa7),
        (0xba, 0xb0, 0xac),
    ];
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

/// A sequential colour scale (viridis) over `lo..hi`; NaN is light grey.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scale {
    /// Value drawn darkest.
    pub(crate) lo: f64,
    /// Value drawn brightest.
    pub(crate) hi: f64,
}

impl Scale {
    /// The scale over the finite `values`; [0, 1] with none.
    pub(crate) fn over(values: impl IntoIterator<Item = f64>) -> Self {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.into_iter().filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if lo.is_finite() {
            Self { lo, hi }
        } else {
            Self { lo: 0.0, hi: 1.0 }
        }
    }

    /// Where `v` falls, from 0 (at `lo`) to 1 (at `hi`), clamped; 0.5 when `lo == hi`.
    pub(crate) fn position(&self, v: f64) -> f64 {
        if self.hi <= self.lo {
            0.5
        } else {
            ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0)
        }
    }

    /// The colour of `v`.
    pub(crate) fn colour(&self, v: f64) -> RGBColor {
        if !v.is_finite() {
            return RGBColor(0xdd, 0xdd, 0xdd);
        }
        ViridisRGB::get_color(self.position(v))
    }
}

/// Black or white, whichever reads better on `bg` (relative luminance above or below 0.4).
pub(crate) fn text_on(bg: RGBColor) -> RGBColor {
    let lin = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let l = 0.2126 * lin(bg.0) + 0.7152 * lin(bg.1) + 0.0722 * lin(bg.2);
    if l > 0.4 { BLACK } else { WHITE }
}

/// How one legend entry is drawn.
#[derive(Debug, Clone)]
pub(crate) enum Glyph {
    /// A line segment.
    Line(RGBColor),
    /// A wide, light, dashed line segment.
    Dashed(RGBColor),
    /// A translucent band.
    Band(RGBColor),
    /// A marker: filled or hollow circle.
    Dot(RGBColor, bool),
    /// A ring around a point.
    Ring(RGBColor),
    /// A triangle pointing up.
    Triangle(RGBColor),
    /// A vertical bar with caps.
    Bar(RGBColor),
    /// An outlined square, black outside and white inside.
    Outline(RGBColor),
    /// A filled square.
    Swatch(RGBColor),
    /// The colour scale, low to high.
    Gradient,
    /// No glyph: a heading.
    Heading,
}

/// Draws `entries` top to bottom into `area` (a legend column), wrapping long texts.
pub(crate) fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    entries: &[(Glyph, String)],
) -> Result<()> {
    let text = ("sans-serif", 16).into_font().color(&BLACK);
    let bold = ("sans-serif", 16)
        .into_font()
        .style(FontStyle::Bold)
        .color(&BLACK);
    let layout = legend_lines(area, entries);
    let mut y = 16;
    for ((glyph, _), lines) in entries.iter().zip(&layout) {
        let (x0, x1, cy) = (6, 34, y);
        let drawn = match glyph {
            Glyph::Line(c) => area.draw(&PathElement::new(
                vec![(x0, cy), (x1, cy)],
                c.stroke_width(2),
            )),
            Glyph::Dashed(c) => area.draw(&DashedPathElement::new(
                vec![(x0, cy), (x1, cy)],
                8,
                5,
                c.mix(0.5).stroke_width(4),
            )),
            Glyph::Band(c) => area.draw(&Rectangle::new(
                [(x0, cy - 6), (x1, cy + 6)],
                c.mix(0.2).filled(),
            )),
            Glyph::Dot(c, filled) => {
                let style = if *filled {
                    c.filled()
                } else {
                    c.stroke_width(2)
                };
                area.draw(&Circle::new((20, cy), 4, style))
            }
            Glyph::Ring(c) => area.draw(&Circle::new((20, cy), 8, c.stroke_width(2))),
            Glyph::Triangle(c) => area.draw(&TriangleMarker::new((20, cy), 6, c.filled())),
            Glyph::Bar(c) => area
                .draw(&PathElement::new(
                    vec![(20, cy - 8), (20, cy + 8)],
                    c.stroke_width(2),
                ))
                .and_then(|()| {
                    area.draw(&PathElement::new(
                        vec![(15, cy - 8), (25, cy - 8)],
                        c.stroke_width(2),
                    ))
                })
                .and_then(|()| {
                    area.draw(&PathElement::new(
                        vec![(15, cy + 8), (25, cy + 8)],
                        c.stroke_width(2),
                    ))
                }),
            Glyph::Outline(c) => {
                let square = vec![
                    (x0 + 6, cy - 8),
                    (x1 - 6, cy - 8),
                    (x1 - 6, cy + 8),
                    (x0 + 6, cy + 8),
                    (x0 + 6, cy - 8),
                ];
                area.draw(&PathElement::new(square.clone(), c.stroke_width(4)))
                    .and_then(|()| area.draw(&PathElement::new(square, WHITE.stroke_width(1))))
            }
            Glyph::Swatch(c) => area.draw(&Rectangle::new(
                [(x0 + 6, cy - 8), (x1 - 6, cy + 8)],
                c.filled(),
            )),
            Glyph::Gradient => (x0..x1).try_for_each(|x| {
                let t = f64::from(x - x0) / f64::from(x1 - x0 - 1);
                area.draw(&Rectangle::new(
                    [(x, cy - 6), (x + 1, cy + 6)],
                    ViridisRGB::get_color(t).filled(),
                ))
            }),
            Glyph::Heading => Ok(()),
        };
        drawn.map_err(drawing)?;
        let (x, style) = match glyph {
            Glyph::Heading => (6, &bold),
            _ => (42, &text),
        };
        for (i, line) in lines.iter().enumerate() {
            let at = (x, cy - 9 + 19 * i as i32);
            area.draw(&Text::new(line.clone(), at, style.clone()))
                .map_err(drawing)?;
        }
        y += 19 * lines.len() as i32 + 8;
    }
    Ok(())
}

/// Each legend entry's label wrapped to the width of `area`, as [`legend`] draws it.
fn legend_lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    entries: &[(Glyph, String)],
) -> Vec<Vec<String>> {
    let text = ("sans-serif", 16).into_font().color(&BLACK);
    let (w, _) = area.dim_in_pixel();
    let room = w.saturating_sub(44);
    let fits = |line: &str| {
        area.estimate_text_size(line, &text)
            .map_or(true, |(width, _)| width <= room)
    };
    entries
        .iter()
        .map(|(_, label)| wrapped(label, fits))
        .collect()
}

/// The height, pixels, that [`legend`] fills with `entries` in `area`'s width.
pub(crate) fn legend_height<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    entries: &[(Glyph, String)],
) -> u32 {
    let lines: usize = legend_lines(area, entries)
        .iter()
        .map(|l| 19 * l.len() + 8)
        .sum();
    16 + lines as u32
}

/// `text` broken at spaces into lines that `fits` (a longer word stays whole on its line).
pub(crate) fn wrapped(text: &str, fits: impl Fn(&str) -> bool) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(line) if fits(&format!("{line} {word}")) => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    lines
}

/// A plotters failure: drawing into a string fails only on a bug or a missing font.
pub(crate) fn drawing<E: std::error::Error + Send + Sync>(
    e: plotters::drawing::DrawingAreaErrorKind<E>,
) -> Error {
    Error::Internal(format!("drawing a figure: {e}"))
}

/// The mesh every per-k panel shares: k on a log2 axis labelled in powers of two, a light grid.
///
/// # Errors
/// A failed drawing.
pub(crate) fn k_mesh(
    chart: &mut ChartContext<
        '_,
        SVGBackend<'_>,
        Cartesian2d<Log2, plotters::coord::types::RangedCoordf64>,
    >,
    y_desc: &str,
    y_label: &dyn Fn(&f64) -> String,
    y_labels: usize,
) -> Result<()> {
    chart
        .configure_mesh()
        .x_desc("k, negatives per anchor (log2 scale)")
        .y_desc(y_desc)
        .x_label_formatter(&|v| power_label(*v))
        .y_label_formatter(y_label)
        .x_labels(12)
        .y_labels(y_labels)
        .bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(TRANSPARENT)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(drawing)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_axes_cover_their_values_with_room_and_tick_on_powers_of_two() {
        let a = Log2::covering([1.0, 2.0, 4.0, 256.0]);
        assert!(
            a.lo < 1.0 && a.lo > 0.5 && a.hi > 256.0 && a.hi < 512.0,
            "{a:?}"
        );
        assert_eq!(
            a.ticks(20),
            [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]
        );
        assert_eq!(a.ticks(5), [1.0, 4.0, 16.0, 64.0, 256.0]);
        assert_eq!(a.ticks(3), [1.0, 16.0, 256.0]);
        // One value: a doubling on each side; none: [1, 2]; zero and NaN are ignored.
        let one = Log2::covering([8.0, 0.0, f64::NAN]);
        assert_eq!((one.lo, one.hi), (4.0, 16.0));
        assert_eq!(one.ticks(10), [4.0, 8.0, 16.0]);
        let none = Log2::covering([]);
        assert_eq!((none.lo, none.hi), (1.0, 2.0));
        // A range without a power of two inside still gets a tick.
        let narrow = Log2 { lo: 5.0, hi: 7.0 };
        assert_eq!(narrow.ticks(4).len(), 1);
        // Positions: equal ratios, equal distances; never out of reach.
        let m = |v: f64| a.map(&v, (0, 1000));
        assert!(
            ((m(2.0) - m(1.0)) - (m(4.0) - m(2.0))).abs() <= 1,
            "rounded to pixels"
        );
        assert!(m(1.0) > 0 && m(256.0) < 1000);
        assert!((-1000..=2000).contains(&a.map(&0.0, (0, 1000))));
        assert_eq!(power_label(64.0), "64");
        assert_eq!(power_label(1.5), "1.50");
    }

    #[test]
    fn slots_are_equal_and_ticked_at_their_middles() {
        let s = Slots(4);
        assert_eq!(s.map(&-0.5, (0, 400)), 0);
        assert_eq!(s.map(&0.0, (0, 400)), 50);
        assert_eq!(s.map(&3.5, (0, 400)), 400);
        assert_eq!(s.key_points(10), [0.0, 1.0, 2.0, 3.0]);
        assert_eq!(s.key_points(2), [0.0, 2.0]);
        // One slot fills the axis; none is not degenerate either.
        assert_eq!(Slots(1).map(&0.5, (0, 100)), 100);
        assert_eq!(Slots(0).key_points(5), Vec::<f64>::new());
    }

    #[test]
    fn padded_ranges_are_finite_and_never_empty() {
        let r = padded([0.5, 0.9, f64::NAN, f64::INFINITY]);
        assert!(
            (r.start - 0.476).abs() < 1e-12 && (r.end - 0.924).abs() < 1e-12,
            "{r:?}"
        );
        let one = padded([0.8]);
        assert!((one.start - 0.72).abs() < 1e-12 && (one.end - 0.88).abs() < 1e-12);
        let zero = padded([0.0, 0.0]);
        assert_eq!(zero, -0.05..0.05);
        assert_eq!(padded([f64::NAN]), 0.0..1.0);
    }

    #[test]
    fn colour_scales_clamp_and_grey_out_missing_values() {
        let s = Scale::over([0.2, 0.6, f64::NAN]);
        assert_eq!((s.lo, s.hi), (0.2, 0.6));
        assert!((s.position(0.4) - 0.5).abs() < 1e-12);
        assert_eq!(s.position(-1.0), 0.0);
        assert_eq!(s.position(9.0), 1.0);
        assert_eq!(s.colour(0.2), ViridisRGB::get_color(0.0));
        assert_eq!(s.colour(f64::NAN), RGBColor(0xdd, 0xdd, 0xdd));
        assert_eq!(Scale::over([0.7]).position(0.7), 0.5);
        assert_eq!(Scale::over([]), Scale { lo: 0.0, hi: 1.0 });
        // Viridis runs from dark purple (white text) to yellow (black text).
        assert_eq!(text_on(s.colour(0.2)), WHITE);
        assert_eq!(text_on(s.colour(0.6)), BLACK);
        assert_eq!(series_colour(0), series_colour(10));
    }

    #[test]
    fn legend_texts_wrap_at_spaces() {
        let six = |s: &str| s.chars().count() <= 6;
        assert_eq!(wrapped("a bb ccc dddd", six), ["a bb", "ccc", "dddd"]);
        assert_eq!(wrapped("unbreakable", six), ["unbreakable"]);
    }
}

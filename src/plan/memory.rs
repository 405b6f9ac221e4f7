//! Peak-memory estimates of sweep points, from their settings alone, so that settings which
//! cannot fit the machine are refused before anything is allocated.
//!
//! Every size is computed in `f64`: a product of settings of 10^9 each is a large number, never
//! an overflow. The estimate counts what dominates (bytes):
//!
//! - **data**: the examples in memory, twice for text (the ingested table and the encoder's
//!   token batch), and for images as u8 pixels plus their f32 input matrix;
//! - **pool**: `anchors x passes x (k-max + 2)` u32 ids, anchors being the N concepts' training
//!   examples;
//! - **model**: the parameters, four times (weights, gradients, Adam's two moments), five for
//!   queue points (the momentum encoder), with the queue's keys;
//! - **activations**: one step's `batch x (k + 2)` rows through the encoder, three times
//!   (forward values, their gradients, scratch), plus the similarity logits;
//! - **evaluation**: the representations of every example and one 1024-row kNN block.
//!
//! File datasets whose example count is known only once they are read count that part as 0 here
//! (their vocabulary and token length are bounded by the tokenizer settings and are counted).

use super::{DataSource, Plan, SweepPoint};
use crate::data::tokenize::{TokenizeConfig, VocabMode};
use crate::spec::{EncoderKind, Strategy};

/// A point's estimated peak memory, bytes, by part.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Estimate {
    /// Examples in memory.
    pub data: f64,
    /// The negative pool.
    pub pool: f64,
    /// Parameters, gradients and optimiser state.
    pub model: f64,
    /// One training step's activations.
    pub activations: f64,
    /// Evaluation's representations and kNN block.
    pub eval: f64,
}

impl Estimate {
    /// The sum of the parts, bytes.
    pub fn total(&self) -> f64 {
        self.data + self.pool + self.model + self.activations + self.eval
    }

    /// The parts, for a message: `data 1.2 GB, pool 3 MB, ...`.
    pub fn parts(&self) -> String {
        [
            ("data", self.data),
            ("pool", self.pool),
            ("model", self.model),
            ("activations", self.activations),
            ("evaluation", self.eval),
        ]
        .iter()
        .map(|(what, b)| format!("{what} {}", bytes(*b)))
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// `b` bytes for people: `512 B`, `3.1 MB`, `2.0e15 GB`.
pub fn bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if v >= 1e4 {
        format!("{v:.1e} {}", UNITS[unit])
    } else if unit == 0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// What a dataset's settings say of its size.
pub(crate) struct Shape {
    /// Examples, when known before reading.
    pub(crate) examples: Option<f64>,
    /// Encoder input width: the vocabulary, or the pixel values of an image.
    pub(crate) width: f64,
    /// Tokens per example (text; 0 for images).
    pub(crate) tokens: f64,
    /// Pixel values per image (`side x side x channels`; `None` for text).
    pub(crate) pixels: Option<f64>,
    /// Image side (0 for text).
    pub(crate) side: f64,
    /// Image channels (1 for text).
    pub(crate) channels: f64,
    /// Concepts, when known before reading.
    pub(crate) concepts: Option<f64>,
}

impl Shape {
    /// Text read from files: as many examples as the files hold, each at most `max-tokens`
    /// long over the tokenizer's vocabulary.
    pub(crate) fn text(tokenize: &TokenizeConfig, concepts: Option<u32>) -> Self {
        let width = match tokenize.mode {
            VocabMode::Counted { max_vocab, .. } => f64::from(max_vocab),
            VocabMode::Hashed { buckets } => f64::from(buckets),
        };
        Self {
            examples: None,
            width,
            tokens: f64::from(tokenize.max_tokens),
            pixels: None,
            side: 0.0,
            channels: 1.0,
            concepts: concepts.map(f64::from),
        }
    }

    /// Images read from files: as many examples as the files hold, each `side x side x
    /// channels` values.
    pub(crate) fn image(side: u32, channels: u32, concepts: Option<u32>) -> Self {
        let (side, channels) = (f64::from(side), f64::from(channels));
        Self {
            examples: None,
            width: side * side * channels,
            tokens: 0.0,
            pixels: Some(side * side * channels),
            side,
            channels,
            concepts: concepts.map(f64::from),
        }
    }
}

/// The size of `source`'s data, from its settings.
pub(super) fn shape(source: &DataSource) -> Shape {
    source.shape()
}

/// The estimated peak memory of point `p` of `plan`.
pub fn estimate(plan: &Plan, p: &SweepPoint) -> Estimate {
    const F32: f64 = 4.0;
    let ds = &plan.datasets[p.dataset];
    let s = shape(&ds.source);
    let (k, batch, dim, hidden) = (
        f64::from(p.k),
        f64::from(p.batch_size),
        f64::from(p.dim),
        f64::from(p.hidden),
    );
    let examples = s.examples.unwrap_or(0.0);
    let data = match s.pixels {
        Some(px) => examples * px * (1.0 + F32),
        None => examples * s.tokens * 4.0 * 2.0,
    };
    // The N chosen concepts' share of the examples, their training split, every pass.
    let share = match (p.n, s.concepts) {
        (0, _) | (_, None) => 1.0,
        (n, Some(c)) => (f64::from(n) / c).min(1.0),
    };
    let anchors = examples * share * (1.0 - plan.shared.test_fraction);
    let passes = f64::from(plan.shared.max_epochs);
    let pool = anchors * passes * (f64::from(plan.shared.k_max) + 2.0) * 4.0;
    let params = match p.encoder {
        EncoderKind::EmbeddingBag => s.width * hidden + hidden * dim,
        EncoderKind::Gru => s.width * hidden + 6.0 * hidden * hidden + hidden * dim,
        EncoderKind::Mlp => s.width * hidden + hidden * dim,
        EncoderKind::Cnn => {
            let mut c_in = s.channels;
            let mut total = 0.0;
            for &c in &p.channels {
                total += 9.0 * c_in * f64::from(c);
                c_in = f64::from(c);
            }
            let side = s.width.sqrt() / 2f64.powi(p.channels.len() as i32);
            total + side * side * c_in * dim
        }
    };
    // Queue points hold a momentum copy of the weights too, and the queue's k keys.
    let copies = if p.strategy == Strategy::Queue {
        5.0
    } else {
        4.0
    };
    let model = params * F32 * copies
        + if p.strategy == Strategy::Queue {
            k * dim * F32
        } else {
            0.0
        };
    let rows = batch * (k + 2.0);
    let per_row = match p.encoder {
        EncoderKind::EmbeddingBag => hidden + dim + s.tokens,
        EncoderKind::Gru => s.tokens * 4.0 * hidden + dim,
        EncoderKind::Mlp => s.width + hidden + dim,
        EncoderKind::Cnn => {
            s.width * p.channels.first().map_or(1.0, |&c| f64::from(c)) + hidden + dim
        }
    };
    // The encoder runs once per distinct example of a step; the loss sees every row's
    // representation.
    let distinct = match s.examples {
        Some(e) if e > 0.0 => rows.min(e),
        _ => rows,
    };
    let activations = (distinct * per_row + rows * dim) * F32 * 3.0 + batch * (k + 1.0) * F32;
    let eval = examples * dim * F32 + 1024.0 * anchors.max(1.0) * F32;
    Estimate {
        data,
        pool,
        model,
        activations,
        eval,
    }
}

/// Memory available to negsweep, bytes: the machine's (`MemTotal`), or its cgroup's limit where
/// that is lower; `None` where neither can be read.
pub fn machine_memory() -> Option<f64> {
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| kb * 1024.0)
    });
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok());
    match (total, cgroup) {
        (Some(t), Some(c)) => Some(t.min(c)),
        (t, c) => t.or(c),
    }
}

/// Parses a memory size: `512M`, `8G`, `1.5T`, `2GiB` or plain bytes.
///
/// # Errors
/// The text and the accepted forms.
pub fn parse_size(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim().to_ascii_uppercase();
    // Decimal units as `plan` prints them (8G = 8.0 GB); binary ones when written `GiB`.
    let base: f64 = if unit.ends_with("IB") { 1024.0 } else { 1000.0 };
    let bad =
        || format!("`{text}` is not a size from 1 byte to 1 EB: write bytes, or 512M, 8G, 1.5T");
    let scale = match unit.trim_end_matches("IB").trim_end_matches('B') {
        "" => 1.0,
        "K" => base,
        "M" => base.powi(2),
        "G" => base.powi(3),
        "T" => base.powi(4),
        _ => return Err(bad()),
    };
    number
        .parse::<f64>()
        .ok()
        .map(|v| v * scale)
        .filter(|v| v.is_finite() && *v >= 1.0 && *v <= 1e18)
        .ok_or_else(bad)
}

/// Refuses the points of `plan` whose estimate exceeds `limit` bytes, one problem per distinct
/// estimate, each with the estimate and its parts.
///
/// # Errors
/// [`crate::Error::InvalidPipeline`] listing them.
pub fn check(plan: &Plan, limit: f64) -> crate::Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    let mut diagnostics = Vec::new();
    for p in &plan.points {
        let e = estimate(plan, p);
        if e.total() > limit && seen.insert(bytes(e.total())) {
            diagnostics.push(crate::Diagnostic {
                key: "memory".into(),
                origin: crate::Origin::File,
                message: format!(
                    "point {} (dataset `{}`, N = {}, k = {}, batch-size = {}, dim = {}, \
                     hidden = {}) needs about {} ({}), more than the {} available \
                     (--max-memory to set it)",
                    p.id,
                    plan.datasets[p.dataset].name,
                    p.n_label(),
                    p.k,
                    p.batch_size,
                    p.dim,
                    p.hidden,
                    bytes(e.total()),
                    e.parts(),
                    bytes(limit)
                ),
            });
        }
    }
    if diagnostics.is_empty() {
        Ok(())
    } else {
        Err(plan.invalid(diagnostics))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_print() {
        assert_eq!(parse_size("8G").unwrap(), 8e9);
        assert_eq!(bytes(parse_size("8G").unwrap()), "8.0 GB");
        assert!(parse_size("99999999999999999999T").is_err());
        assert_eq!(parse_size("512MiB").unwrap(), 512.0 * 1024.0 * 1024.0);
        assert_eq!(parse_size("1000").unwrap(), 1000.0);
        assert!(parse_size("lots").is_err() && parse_size("-1G").is_err());
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(3.1e6), "3.1 MB");
        assert_eq!(bytes(2e27), "2.0e15 TB");
    }

    const TINY: &str = r#"
[pipeline]
name = "t"
[[datasets]]
kind = "synthetic-text"
name = "s"
concepts = 8
examples-per-concept = 12
vocab = 64
length = 8
[train]
dim = 8
hidden = 16
batch-size = 16
epochs = 2
[sweep]
k = [1, 4]
n = [4]
seed = [0]
"#;

    fn plan(text: &str) -> Plan {
        crate::plan::resolve(&crate::spec::PipelineSpec::parse("t", text).unwrap(), "t").unwrap()
    }

    #[test]
    fn a_small_point_is_estimated_part_by_part() {
        let plan = plan(TINY);
        let e = estimate(&plan, &plan.points[0]);
        // 96 examples x 8 tokens x 4 bytes, twice.
        assert_eq!(e.data, 6144.0);
        // N = 4 of 8 concepts: 48 examples, 36 in training, 2 passes, k-max 4 + 2 ids.
        assert_eq!(e.pool, 36.0 * 2.0 * 6.0 * 4.0);
        // (64 x 16 + 16 x 8) parameters x 4 bytes x 4 copies.
        assert_eq!(e.model, 1152.0 * 16.0);
        // 16 x 3 rows (all distinct: 96 examples) x (16 + 8 + 8) floats through the encoder
        // and 48 x 8 gathered, x 4 bytes x 3, plus 16 x 2 logits.
        assert_eq!(
            e.activations,
            (48.0 * 32.0 + 48.0 * 8.0) * 12.0 + 16.0 * 2.0 * 4.0
        );
        assert_eq!(e.eval, 96.0 * 8.0 * 4.0 + 1024.0 * 36.0 * 4.0);
        assert!(check(&plan, 1e6).is_ok());
        assert!(check(&plan, 1e4).is_err());
    }

    #[test]
    fn absurd_sizes_are_refused_with_the_estimate() {
        for (key, line) in [
            ("k", "k = [1000000000]"),
            ("dim", "dim = [1000000000]"),
            ("hidden", "hidden = [1000000000]"),
            ("epochs", "epochs = [1000000000]"),
            ("batch", "batch-size = [1000000000]"),
        ] {
            let text = if key == "k" {
                TINY.replace("k = [1, 4]", line)
            } else {
                TINY.replace("k = [1, 4]", &format!("k = [1]\n{line}"))
            };
            let e = check(&plan(&text), 16e9).unwrap_err().to_string();
            assert!(
                e.contains("needs about") && e.contains("more than the 16.0 GB"),
                "{key}: {e}"
            );
        }
        for (key, from, to) in [
            (
                "examples-per-concept",
                "examples-per-concept = 12",
                "examples-per-concept = 1000000000",
            ),
            ("vocab", "vocab = 64", "vocab = 1000000000"),
            ("length", "length = 8", "length = 1000000000"),
            ("concepts", "concepts = 8", "concepts = 1000000000"),
        ] {
            let e = check(&plan(&TINY.replace(from, to)), 16e9)
                .unwrap_err()
                .to_string();
            assert!(e.contains("needs about"), "{key}: {e}");
        }
    }
}

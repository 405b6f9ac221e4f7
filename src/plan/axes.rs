//! The sweep axes, each declared once in [`AXES`]: its key in `[sweep]` and in its own section,
//! its result column, its type, and how it is read from the spec, the grid and a
//! [`SweepPoint`]. The grid, its checks, the expansion, `plan`'s columns and the summary's groups
//! all read this one table.
//!
//! A new axis is a field of the same name in `spec::SweepSpec`, in its section's spec, in
//! `Grid`, in [`SweepPoint`] and in the result row, plus one entry here; a test fails until
//! `stages::tables::GROUP_SETTINGS` lists its column when it tells groups apart.

use super::sweep::Grid;
use crate::point::SweepPoint;
use crate::spec::{
    ConceptsSpec, FalseNegatives, Loss, NegativesSpec, PipelineSection, PipelineSpec, PositiveMode,
    Strategy, TrainSpec,
};

/// The section of a pipeline file that holds an axis's single value when it is not swept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `[pipeline]`.
    Pipeline,
    /// `[concepts]`.
    Concepts,
    /// `[negatives]`.
    Negatives,
    /// `[train]`.
    Train,
}

impl Section {
    /// The section's name in pipeline files.
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Pipeline => "pipeline",
            Section::Concepts => "concepts",
            Section::Negatives => "negatives",
            Section::Train => "train",
        }
    }
}

/// What an axis is to the analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// N: with the dataset, the partition every table is split by.
    N,
    /// k: the variable the sweep studies.
    K,
    /// The seed: points differing only by it are replicates.
    Seed,
    /// Any other setting: points differing by it belong to different groups.
    Setting,
}

/// The type of an axis's values, as its result column stores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `UInt32`.
    U32,
    /// `UInt64`.
    U64,
    /// `Float64`.
    F64,
    /// `Utf8`: a name as written in pipeline files.
    Text,
}

/// One value of an axis, as its result column stores it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AxisValue {
    /// A `UInt32` value.
    U32(u32),
    /// A `UInt64` value.
    U64(u64),
    /// A `Float64` value.
    F64(f64),
    /// A name.
    Text(&'static str),
}

impl AxisValue {
    /// The value's type.
    pub fn kind(&self) -> Kind {
        match self {
            AxisValue::U32(_) => Kind::U32,
            AxisValue::U64(_) => Kind::U64,
            AxisValue::F64(_) => Kind::F64,
            AxisValue::Text(_) => Kind::Text,
        }
    }
}

impl std::fmt::Display for AxisValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AxisValue::U32(v) => v.fmt(f),
            AxisValue::U64(v) => v.fmt(f),
            AxisValue::F64(v) => v.fmt(f),
            AxisValue::Text(v) => v.fmt(f),
        }
    }
}

/// A type an axis takes values of.
trait Value {
    const KIND: Kind;
    fn value(&self) -> AxisValue;
}

impl Value for u32 {
    const KIND: Kind = Kind::U32;
    fn value(&self) -> AxisValue {
        AxisValue::U32(*self)
    }
}

impl Value for u64 {
    const KIND: Kind = Kind::U64;
    fn value(&self) -> AxisValue {
        AxisValue::U64(*self)
    }
}

impl Value for f64 {
    const KIND: Kind = Kind::F64;
    fn value(&self) -> AxisValue {
        AxisValue::F64(*self)
    }
}

impl Value for Loss {
    const KIND: Kind = Kind::Text;
    fn value(&self) -> AxisValue {
        AxisValue::Text(self.as_str())
    }
}

impl Value for FalseNegatives {
    const KIND: Kind = Kind::Text;
    fn value(&self) -> AxisValue {
        AxisValue::Text(self.as_str())
    }
}

impl Value for PositiveMode {
    const KIND: Kind = Kind::Text;
    fn value(&self) -> AxisValue {
        AxisValue::Text(self.as_str())
    }
}

impl Value for Strategy {
    const KIND: Kind = Kind::Text;
    fn value(&self) -> AxisValue {
        AxisValue::Text(self.as_str())
    }
}

/// One sweep axis.
#[derive(Debug, Clone, Copy)]
pub struct Axis {
    /// Key in `[sweep]` and in [`Axis::section`] (`batch-size`).
    pub key: &'static str,
    /// Section holding the single value used when the axis is not swept.
    pub section: Section,
    /// Result column, and the field of [`SweepPoint`] (`batch_size`).
    pub column: &'static str,
    /// Type of the values.
    pub kind: Kind,
    /// What the axis is to the analysis.
    pub role: Role,
    /// Whether `plan` always shows it among its leading columns; the others get a column of
    /// their own when swept.
    pub lead: bool,
    /// Depth in the expansion, outermost first. Point ids do not depend on it, but the order
    /// points are listed and run in does, so it never changes.
    pub nest: usize,
    /// The point's value.
    pub get: fn(&SweepPoint) -> AxisValue,
    /// Sets the grid's values from `[sweep]` (returning true) or from the axis's section.
    pub(crate) read: fn(&PipelineSpec, &mut Grid) -> bool,
    /// Number of values in the grid.
    pub(crate) len: fn(&Grid) -> usize,
    /// Value `i` of the grid as diagnostics show it.
    pub(crate) shown: fn(&Grid, usize) -> String,
    /// Writes value `i` of the grid into a point.
    pub(crate) set: fn(&mut SweepPoint, &Grid, usize),
}

/// An [`Axis`] whose grid field, point field and result column are all named `$field`, and
/// whose single value is `$single` when `[sweep]` does not list it.
macro_rules! axis {
    ($key:literal, $field:ident, $section:ident, $role:ident, lead: $lead:literal, nest: $nest:literal,
     single: $single:expr $(,)?) => {
        Axis {
            key: $key,
            section: Section::$section,
            column: stringify!($field),
            kind: kind_of(|p: &SweepPoint| &p.$field),
            role: Role::$role,
            lead: $lead,
            nest: $nest,
            get: |p| p.$field.value(),
            read: |spec, g| {
                let single: fn(&PipelineSpec) -> _ = $single;
                match &spec.sweep.$field {
                    Some(values) => {
                        g.$field = values.clone();
                        true
                    }
                    None => {
                        g.$field = vec![single(spec)];
                        false
                    }
                }
            },
            len: |g| g.$field.len(),
            shown: |g, i| format!("{:?}", g.$field[i]),
            set: |p, g, i| p.$field = g.$field[i],
        }
    };
}

/// The kind of the field `field` selects, fixed by its type.
const fn kind_of<T: Value>(_field: fn(&SweepPoint) -> &T) -> Kind {
    T::KIND
}

/// Every sweep axis. Their order is the order of diagnostics, of [`super::Plan::swept`] and so
/// of the summary's group columns and `plan`'s extra columns; [`Axis::nest`] orders the
/// expansion.
pub static AXES: &[Axis] = &[
    axis!("k", k, Negatives, K, lead: true, nest: 16,
        single: |s| s.negatives.k.unwrap_or(NegativesSpec::K)),
    // N defaults to every concept of the dataset; 0 stands for that until expansion.
    axis!("n", n, Concepts, N, lead: true, nest: 0,
        single: |s| s.concepts.n.unwrap_or(0)),
    axis!("seed", seed, Pipeline, Seed, lead: true, nest: 1,
        single: |s| s.pipeline.seed.unwrap_or(PipelineSection::SEED)),
    axis!("prior-skew", prior_skew, Concepts, Setting, lead: false, nest: 2,
        single: |s| s.concepts.prior_skew.unwrap_or(ConceptsSpec::PRIOR_SKEW)),
    axis!("label-noise", label_noise, Concepts, Setting, lead: false, nest: 3,
        single: |s| s.concepts.label_noise.unwrap_or(ConceptsSpec::LABEL_NOISE)),
    axis!("loss", loss, Train, Setting, lead: true, nest: 4,
        single: |s| s.train.loss.unwrap_or(TrainSpec::LOSS)),
    axis!("temperature", temperature, Train, Setting, lead: true, nest: 5,
        single: |s| s.train.temperature.unwrap_or(TrainSpec::TEMPERATURE)),
    // Only the debiased and hcl losses read it: other losses take one point, not one per value.
    axis!("tau-plus", tau_plus, Train, Setting, lead: false, nest: 6,
        single: |s| s.train.tau_plus.unwrap_or(TrainSpec::TAU_PLUS)),
    // Only the hcl loss reads it.
    axis!("beta", beta, Train, Setting, lead: false, nest: 7,
        single: |s| s.train.beta.unwrap_or(TrainSpec::BETA)),
    axis!("lr", lr, Train, Setting, lead: true, nest: 8,
        single: |s| s.train.lr.unwrap_or(TrainSpec::LR)),
    axis!("dim", dim, Train, Setting, lead: false, nest: 9,
        single: |s| s.train.dim.unwrap_or(TrainSpec::DIM)),
    axis!("hidden", hidden, Train, Setting, lead: false, nest: 10,
        single: |s| s.train.hidden.unwrap_or(TrainSpec::HIDDEN)),
    axis!("batch-size", batch_size, Train, Setting, lead: false, nest: 11,
        single: |s| s.train.batch_size.unwrap_or(TrainSpec::BATCH_SIZE)),
    axis!("epochs", epochs, Train, Setting, lead: false, nest: 12,
        single: |s| s.train.epochs.unwrap_or(TrainSpec::EPOCHS)),
    axis!("positive", positive, Train, Setting, lead: false, nest: 14,
        single: |s| s.train.positive.unwrap_or(TrainSpec::POSITIVE)),
    axis!("strategy", strategy, Negatives, Setting, lead: false, nest: 13,
        single: |s| s.negatives.strategy.unwrap_or(NegativesSpec::STRATEGY)),
    axis!("false-negatives", false_negatives, Negatives, Setting, lead: false, nest: 15,
        single: |s| s.negatives.false_negatives.unwrap_or(NegativesSpec::FALSE_NEGATIVES)),
];

/// The axis with key `key`.
pub fn axis(key: &str) -> Option<&'static Axis> {
    AXES.iter().find(|a| a.key == key)
}

/// The axes in expansion order, outermost first.
pub(crate) fn nested() -> Vec<&'static Axis> {
    let mut axes: Vec<&Axis> = AXES.iter().collect();
    axes.sort_by_key(|a| a.nest);
    axes
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::spec::PipelineSpec;

    /// Two values on every axis, on an image dataset (augmentation positives need images).
    const EVERY_AXIS_TWICE: &str = r#"
[pipeline]
name = "axes"
output = "memory:///axes"

[[datasets]]
kind = "synthetic-image"
name = "img"
concepts = 16

[sweep]
k = [1, 2]
n = [4, 8]
seed = [3, 5]
prior-skew = [0.0, 0.5]
label-noise = [0.0, 0.1]
loss = ["debiased", "hcl"]
temperature = [0.1, 0.2]
tau-plus = [0.1, 0.2]
beta = [0.5, 1.0]
lr = [0.001, 0.002]
dim = [8, 16]
hidden = [24, 32]
batch-size = [8, 16]
epochs = [1, 2]
positive = ["same-concept", "augmentation"]
strategy = ["uniform", "collision-free"]
false-negatives = ["keep", "eliminate"]
"#;

    #[test]
    fn every_axis_is_in_the_sweep_spec_its_section_and_the_expansion() {
        let spec = PipelineSpec::parse("axes.toml", EVERY_AXIS_TWICE).unwrap();
        let plan = crate::plan::resolve(&spec, "axes.toml").unwrap();
        // Every axis was read from `[sweep]`: a table entry without a spec field would not be.
        assert_eq!(plan.swept, AXES.iter().map(|a| a.key).collect::<Vec<_>>());
        // beta multiplies only the hcl half.
        assert_eq!(plan.points.len(), (1 << AXES.len()) / 4 * 3);
        for a in AXES {
            let seen: HashSet<String> = plan
                .points
                .iter()
                .filter(|p| a.key != "beta" || p.loss == Loss::Hcl)
                .map(|p| (a.get)(p).to_string())
                .collect();
            assert_eq!(seen.len(), 2, "axis `{}` takes both its values", a.key);
            for p in &plan.points {
                assert_eq!((a.get)(p).kind(), a.kind, "axis `{}`", a.key);
            }
        }
        let ids: HashSet<&str> = plan.points.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids.len(), plan.points.len());
        // The innermost axis varies fastest, the outermost slowest.
        let by_nest = nested();
        let (inner, outer) = (by_nest[by_nest.len() - 1], by_nest[0]);
        let values = |a: &Axis, range: std::ops::Range<usize>| -> Vec<String> {
            plan.points[range]
                .iter()
                .map(|p| (a.get)(p).to_string())
                .collect()
        };
        assert_ne!(values(inner, 0..2)[0], values(inner, 0..2)[1]);
        let half = plan.points.len() / 2;
        assert!(
            values(outer, 0..half)
                .iter()
                .all(|v| *v == values(outer, 0..1)[0])
        );

        let schema: serde_json::Value = serde_json::from_str(&PipelineSpec::json_schema()).unwrap();
        let properties = |def: &str| schema["$defs"][def]["properties"].clone();
        for a in AXES {
            assert!(
                properties("SweepSpec").get(a.key).is_some(),
                "`sweep.{}`",
                a.key
            );
            let section = match a.section {
                Section::Pipeline => "PipelineSection",
                Section::Concepts => "ConceptsSpec",
                Section::Negatives => "NegativesSpec",
                Section::Train => "TrainSpec",
            };
            assert!(
                properties(section).get(a.key).is_some(),
                "`{}.{}`",
                a.section.as_str(),
                a.key
            );
        }
    }

    #[test]
    fn a_temperature_only_multiplies_the_losses_that_use_it() {
        // tau-plus and beta listed twice without the losses that read them are errors: one
        // value each here.
        let text = EVERY_AXIS_TWICE
            .replace(r#"["debiased", "hcl"]"#, r#"["nce", "infonce"]"#)
            .replace("tau-plus = [0.1, 0.2]", "tau-plus = [0.1]")
            .replace("beta = [0.5, 1.0]", "beta = [0.5]");
        let spec = PipelineSpec::parse("axes.toml", &text).unwrap();
        let plan = crate::plan::resolve(&spec, "axes.toml").unwrap();
        // The temperature takes two values for InfoNCE, one for NCE; tau-plus and beta one.
        assert_eq!(plan.points.len(), (1 << AXES.len()) / 16 * 3);
        assert!(
            plan.points
                .iter()
                .filter(|p| p.loss == Loss::Nce)
                .all(|p| p.temperature == 1.0)
        );
        assert!(
            plan.points
                .iter()
                .all(|p| p.tau_plus == 0.0 && p.beta == 0.0)
        );
    }

    #[test]
    fn nesting_is_an_order_of_every_axis_with_the_loss_outside_the_temperature() {
        let mut nests: Vec<usize> = AXES.iter().map(|a| a.nest).collect();
        nests.sort_unstable();
        assert_eq!(nests, (0..AXES.len()).collect::<Vec<_>>());
        let depth = |key| axis(key).unwrap().nest;
        assert!(depth("loss") < depth("temperature"));
        assert_eq!(depth("k"), AXES.len() - 1, "k varies fastest");
    }

    #[test]
    fn group_settings_are_the_setting_axes_and_the_settings_derived_per_point() {
        // Not an axis: `encoder` follows the dataset.
        let derived = ["encoder"];
        let listed: Vec<&str> = crate::stages::tables::GROUP_SETTINGS
            .iter()
            .copied()
            .filter(|c| !derived.contains(c))
            .collect();
        let settings: Vec<&str> = AXES
            .iter()
            .filter(|a| a.role == Role::Setting)
            .map(|a| a.column)
            .collect();
        assert_eq!(listed, settings);
    }

    #[test]
    fn every_axis_column_is_a_result_column_of_its_type() {
        let schema = crate::stages::tables::results(true);
        for a in AXES {
            let field = schema.field_with_name(a.column).unwrap();
            let expected = match a.kind {
                Kind::U32 => arrow::datatypes::DataType::UInt32,
                Kind::U64 => arrow::datatypes::DataType::UInt64,
                Kind::F64 => arrow::datatypes::DataType::Float64,
                Kind::Text => arrow::datatypes::DataType::Utf8,
            };
            assert_eq!(field.data_type(), &expected, "column `{}`", a.column);
        }
    }
}

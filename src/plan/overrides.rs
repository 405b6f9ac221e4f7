//! A pipeline file with its `--set KEY=VALUE` overrides: read, resolved and checked, with every
//! problem an override causes naming it. Overrides are applied to the text before parsing, so
//! the parser and the checks alone would report an override's value against the file.

use std::path::Path;

use super::{Plan, resolve};
use crate::spec::{PipelineSpec, Problem, apply_overrides, override_origin, problem_list};
use crate::{Diagnostic, Error, Origin, Result};

impl Plan {
    /// The error for `diagnostics` found in this plan: each names the override that set its key
    /// (see [`override_origin`]), so that problems found after resolution (once the data is
    /// read, say) name it too.
    pub fn invalid(&self, mut diagnostics: Vec<Diagnostic>) -> Error {
        for d in &mut diagnostics {
            if d.origin == Origin::File
                && let Some(origin) = override_origin(&self.overrides, &d.key)
            {
                d.origin = origin;
            }
        }
        Error::InvalidPipeline {
            path: self.source.clone(),
            diagnostics,
        }
    }
}

/// What the pipeline text with some of the overrides gives.
enum Attempt {
    /// It does not parse.
    Unparsed(Vec<Problem>),
    /// It parses; resolution and the check gave this (boxed: a plan is large).
    Resolved(Box<Result<Plan>>),
}

impl Attempt {
    /// Its errors (`warnings` false: none when it resolved) or the warnings of its plan;
    /// `None` where they are unknown (it does not parse, or, for warnings, does not resolve).
    fn findings(&self, warnings: bool) -> Option<&[Diagnostic]> {
        let Attempt::Resolved(result) = self else {
            return None;
        };
        match (result.as_ref(), warnings) {
            (Ok(plan), true) => Some(&plan.warnings),
            (Ok(_), false) => Some(&[]),
            (Err(Error::InvalidPipeline { diagnostics, .. }), false) => Some(diagnostics),
            _ => None,
        }
    }
}

/// Reads the pipeline file at `path`, applies `overrides` (`KEY=VALUE`, as given), resolves it
/// and runs `check` (the memory check, say) on the plan. Every problem, error or warning, that
/// the overrides cause names them (see [`Origin`]): the override that set its key; else, when
/// the file alone does not have it, the overrides without any one of which it goes away (the
/// text is resolved again with each left out, which costs a resolution per override, paid
/// only when there is a problem to explain).
///
/// # Errors
/// The file cannot be read or an override is malformed; the pipeline does not parse, does not
/// resolve, or fails `check`.
pub fn load(
    path: &Path,
    overrides: &[String],
    check: &dyn Fn(&Plan) -> Result<()>,
) -> Result<Plan> {
    let shown = path.display().to_string();
    let text = PipelineSpec::read(path)?;
    let attempt = |these: &[String]| -> Result<Attempt> {
        let text = apply_overrides(&shown, &text, these)?;
        let spec = match PipelineSpec::parse_each(&text) {
            Ok(spec) => spec,
            Err(problems) => return Ok(Attempt::Unparsed(problems)),
        };
        let plan = resolve(&spec, &shown).and_then(|mut plan| {
            plan.overrides = these.to_vec();
            check(&plan).map(|()| plan)
        });
        Ok(Attempt::Resolved(Box::new(plan)))
    };
    let full = attempt(overrides)?;
    if overrides.is_empty() {
        return match full {
            Attempt::Unparsed(problems) => Err(spec_error(&shown, problem_list(&problems))),
            Attempt::Resolved(plan) => *plan,
        };
    }
    let baseline = attempt(&[])?;
    // Each override left out in turn, tried only when a problem needs it.
    let mut without: Vec<Option<Attempt>> = (0..overrides.len()).map(|_| None).collect();
    let mut explain = |found: &mut [Diagnostic], warnings: bool| {
        attribute(
            found,
            warnings,
            overrides,
            &baseline,
            &mut without,
            &attempt,
        )
    };
    match full {
        Attempt::Unparsed(problems) => {
            let own = match &baseline {
                Attempt::Unparsed(own) => own.as_slice(),
                Attempt::Resolved(_) => &[],
            };
            let shown_problems: Vec<String> = problems
                .iter()
                .map(|p| parse_problem(p, own, overrides))
                .collect();
            Err(spec_error(&shown, problem_list(&shown_problems)))
        }
        Attempt::Resolved(result) => match *result {
            Ok(mut plan) => {
                let mut warnings = std::mem::take(&mut plan.warnings);
                explain(&mut warnings, true)?;
                plan.warnings = warnings;
                Ok(plan)
            }
            Err(Error::InvalidPipeline {
                path,
                mut diagnostics,
            }) => {
                explain(&mut diagnostics, false)?;
                Err(Error::InvalidPipeline { path, diagnostics })
            }
            Err(e) => Err(e),
        },
    }
}

fn spec_error(path: &str, message: String) -> Error {
    Error::Spec {
        path: path.to_owned(),
        message,
    }
}

/// A parse problem of the text with every override: the override's when one set its key (its
/// line is in no file), the file's own with the file's line when the file alone has it, else
/// the overrides'.
fn parse_problem(p: &Problem, own: &[Problem], overrides: &[String]) -> String {
    let with = |origin| {
        let key = p.key.clone().unwrap_or_default();
        Diagnostic {
            key,
            message: p.message.clone(),
            origin,
        }
        .to_string()
    };
    if let Some(origin) = p.key.as_deref().and_then(|k| override_origin(overrides, k)) {
        return with(origin);
    }
    if let Some(q) = own
        .iter()
        .find(|q| q.key == p.key && q.message == p.message)
    {
        return q.to_string();
    }
    match &p.key {
        Some(_) => with(Origin::With(overrides.to_vec())),
        None => format!(
            "with {}: {}",
            overrides
                .iter()
                .map(|a| format!("--set {a}"))
                .collect::<Vec<_>>()
                .join(", "),
            p.message
        ),
    }
}

/// Names the overrides behind each of `found` (errors, or with `warnings` the plan's
/// warnings) that the file alone does not have: see [`load`].
fn attribute(
    found: &mut [Diagnostic],
    warnings: bool,
    overrides: &[String],
    baseline: &Attempt,
    without: &mut [Option<Attempt>],
    attempt: &dyn Fn(&[String]) -> Result<Attempt>,
) -> Result<()> {
    let has = |findings: Option<&[Diagnostic]>, d: &Diagnostic| {
        findings.map(|f| f.iter().any(|x| same(x, d)))
    };
    // The overrides other than `skip` without any one of which `d` goes away.
    let mut causes = |d: &Diagnostic, skip: Option<&String>| -> Result<Vec<String>> {
        let mut causes = Vec::new();
        for (i, arg) in overrides.iter().enumerate() {
            if Some(arg) == skip {
                continue;
            }
            if without[i].is_none() {
                let mut rest = overrides.to_vec();
                rest.remove(i);
                without[i] = Some(attempt(&rest)?);
            }
            let rest = without[i].as_ref().expect("filled above");
            if has(rest.findings(warnings), d) == Some(false) {
                causes.push(arg.clone());
            }
        }
        Ok(causes)
    };
    for d in found.iter_mut().filter(|d| d.origin == Origin::File) {
        match override_origin(overrides, &d.key) {
            // The override that set the key may not be the only cause: an image size set by
            // another makes a set channel list impossible.
            Some(Origin::Set(arg)) => {
                let others = causes(d, Some(&arg))?;
                d.origin = if others.is_empty() {
                    Origin::Set(arg)
                } else {
                    Origin::SetWith(arg, others)
                };
                continue;
            }
            Some(origin) => {
                d.origin = origin;
                continue;
            }
            None => {}
        }
        let own = has(baseline.findings(warnings), d);
        if own == Some(true) {
            continue;
        }
        let causes = causes(d, None)?;
        if !causes.is_empty() {
            d.origin = Origin::With(causes);
        } else if own == Some(false) {
            // Several overrides cause it, each enough alone.
            d.origin = Origin::With(overrides.to_vec());
        }
    }
    Ok(())
}

/// The same problem, whatever the point ids in its message: ids hash every setting, so an
/// override of any setting changes them (the memory check names points by id).
fn same(a: &Diagnostic, b: &Diagnostic) -> bool {
    a.key == b.key && without_ids(&a.message) == without_ids(&b.message)
}

/// `text` with every point id (16 lowercase hex digits standing alone) replaced by `#`.
fn without_ids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let id = word.len() == 16
            && word
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
        out.push_str(if id { "#" } else { word });
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_ids_do_not_tell_problems_apart() {
        assert_eq!(
            without_ids("point 5dd53706d045a298 (k = 1) needs 0123456789abcdef0"),
            "point # (k = 1) needs 0123456789abcdef0"
        );
        let a = Diagnostic::new("memory", "point 5dd53706d045a298 needs 1 GB");
        let b = Diagnostic::new("memory", "point 021db861ba4d5d4c needs 1 GB");
        assert!(same(&a, &b));
        assert!(!same(
            &a,
            &Diagnostic::new("memory", "point 021db861ba4d5d4c needs 2 GB")
        ));
        assert!(!same(&a, &Diagnostic::new("sweep.k", &a.message)));
    }
}

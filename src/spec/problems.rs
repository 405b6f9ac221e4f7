//! Every problem of a pipeline file that does not parse, each with its line and dotted key
//! (`toml` stops at the first).

use std::fmt;

use super::PipelineSpec;

/// Problems reported at most for one pipeline file.
const MAX_PROBLEMS: usize = 20;

/// One problem of a pipeline file that does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, where the parser placed it.
    pub line: Option<usize>,
    /// Dotted key (`datasets[1].text-column`, `train.dim`), where the line holds one.
    pub key: Option<String>,
    /// The parser's message (the whole error, with its own position, where `line` is `None`).
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, &self.key) {
            (Some(line), Some(key)) => write!(f, "line {line}, `{key}`: {}", self.message),
            (Some(line), None) => write!(f, "line {line}: {}", self.message),
            (None, Some(key)) => write!(f, "`{key}`: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

/// `problems` as one message: the problem alone, or a count and one line each.
pub fn problem_list(problems: &[impl fmt::Display]) -> String {
    if let [one] = problems {
        one.to_string()
    } else {
        format!(
            "{} problems:\n{}",
            problems.len(),
            problems
                .iter()
                .map(|p| format!("  - {p}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    }
}

/// Every problem of a pipeline file that does not parse, not just the first, each with its line
/// and dotted key. The parser stops at the first; its key is found (from the error's position,
/// or, for an error it can only place at a `[[datasets]]` header, by leaving out one key of that
/// table at a time), the line is set aside and the text parsed again.
pub(super) fn every_problem(text: &str, first: toml::de::Error) -> Vec<Problem> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut problems = Vec::new();
    let mut error = first;
    let whole = |e: &toml::de::Error| Problem {
        line: None,
        key: None,
        message: e.to_string().trim_end().to_owned(),
    };
    while problems.len() < MAX_PROBLEMS {
        // Spans index the text as last parsed, with the lines set aside so far commented out.
        let current = lines.join("\n");
        let Some(line) = error
            .span()
            .map(|s| bytecount_lines(&current.as_bytes()[..s.start.min(current.len())]))
        else {
            problems.push(whole(&error));
            break;
        };
        let at = line - 1;
        let culprit = if lines.get(at).is_some_and(|l| l.trim() == "[[datasets]]") {
            dataset_culprit(&lines, at, &error)
        } else {
            Some(at)
        };
        let Some(culprit) = culprit else {
            problems.push(whole(&error));
            break;
        };
        problems.push(Problem {
            line: Some(culprit + 1),
            key: key_path(&lines, culprit),
            message: error.message().trim_end().to_owned(),
        });
        if lines[culprit].trim_start().starts_with('[') {
            break;
        }
        lines[culprit] = format!("# {}", lines[culprit]);
        match toml::from_str::<PipelineSpec>(&lines.join("\n")) {
            Ok(_) => break,
            Err(next) if next.message() == error.message() && next.span() == error.span() => break,
            Err(next) => error = next,
        }
    }
    problems
}

/// The 1-based line at the end of `before`.
fn bytecount_lines(before: &[u8]) -> usize {
    before.iter().filter(|&&b| b == b'\n').count() + 1
}

/// The line, within the `[[datasets]]` table whose header is line `header`, of the key whose
/// absence makes `error` go away (or change): the parser reports a dataset's problems at its
/// header only.
fn dataset_culprit(lines: &[String], header: usize, error: &toml::de::Error) -> Option<usize> {
    let end = (header + 1..lines.len())
        .find(|&i| lines[i].trim_start().starts_with('['))
        .unwrap_or(lines.len());
    let mut changed = None;
    for i in header + 1..end {
        let Some((key, _)) = lines[i].split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key == "kind" || key.starts_with('#') {
            continue;
        }
        let mut without = lines.to_vec();
        without[i] = format!("# {}", without[i]);
        match toml::from_str::<PipelineSpec>(&without.join("\n")) {
            Ok(_) => return Some(i),
            Err(e) if e.span() != error.span() => return Some(i),
            Err(e) if e.message() != error.message() && changed.is_none() => changed = Some(i),
            Err(_) => {}
        }
    }
    changed
}

/// The dotted key of line `at` (`datasets[1].text-column`, `train.dim`), if it holds one.
fn key_path(lines: &[String], at: usize) -> Option<String> {
    let key = lines[at]
        .split_once('=')?
        .0
        .trim()
        .trim_matches('"')
        .to_owned();
    let mut datasets = 0usize;
    let mut table = None;
    for l in &lines[..at] {
        let l = l.trim();
        if l == "[[datasets]]" {
            table = Some(format!("datasets[{datasets}]"));
            datasets += 1;
        } else if let Some(name) = l.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = Some(name.trim().to_owned());
        }
    }
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key,
    })
}

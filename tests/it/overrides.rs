//! `--set KEY=VALUE` through the binary: every validation error and warning its value causes
//! names the override, while the file's own problems keep the file's lines.

use crate::{negsweep, tiny, write};

/// Runs `negsweep <command> FILE --set ...` on `text`; (exit code, stdout, stderr).
fn with_set(command: &str, text: &str, set: &[&str], extra: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "p.toml", text);
    let mut cmd = negsweep();
    cmd.arg(command).arg(&file).args(["--quiet"]).args(extra);
    for s in set {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn refused(text: &str, set: &[&str], extra: &[&str]) -> String {
    let (code, _, err) = with_set("validate", text, set, extra);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("p.toml"), "the file is named: {err}");
    err
}

#[test]
fn an_out_of_range_value_names_its_override() {
    let text = tiny(
        "memory:///x",
        "k = [1, 4]\nseed = [0, 1, 2]\n\n[sweep.adaptive]",
    );
    let err = refused(&text, &["sweep.adaptive.settle-power=2"], &[]);
    assert!(
        err.contains(
            "`sweep.adaptive.settle-power` (from --set sweep.adaptive.settle-power=2): \
             must be in (0, 1), got 2"
        ),
        "{err}"
    );
    // Not only the adaptive keys: any key, a whole table, an element of [[datasets]].
    let err = refused(&text, &["train.lr=-1.0"], &[]);
    assert!(err.contains("(from --set train.lr=-1.0)"), "{err}");
    let err = refused(&text, &["sweep.adaptive={ drop-level = 0.5 }"], &[]);
    assert!(
        err.contains(
            "`sweep.adaptive.drop-level` (from --set sweep.adaptive={ drop-level = 0.5 })"
        ),
        "{err}"
    );
    let err = refused(&text, &["datasets.0.concepts=1"], &[]);
    assert!(err.contains("(from --set datasets.0.concepts=1)"), "{err}");
}

#[test]
fn a_value_that_does_not_parse_names_its_override_and_no_line() {
    let text = tiny("memory:///x", "k = [1, 4]");
    let err = refused(&text, &["sweep.k=4", "train.bogus=1"], &[]);
    assert!(
        err.contains("`sweep.k` (from --set sweep.k=4): invalid type: integer `4`"),
        "{err}"
    );
    assert!(
        err.contains("`train.bogus` (from --set train.bogus=1): unknown field `bogus`"),
        "{err}"
    );
    assert!(
        !err.contains("line "),
        "no line of the file holds them: {err}"
    );
}

#[test]
fn the_files_own_problems_keep_their_lines_and_name_no_override() {
    // `k = 4` is line 23 of the file; the override adds a key to [train] above it, which
    // moves it down one line in the text the parser reads.
    let text = tiny("memory:///x", "k = 4");
    let err = refused(&text, &["train.weight-decay=0.1"], &[]);
    assert!(err.contains("line 23, `sweep.k`: invalid type"), "{err}");
    assert!(!err.contains("--set"), "{err}");
    let text = tiny("memory:///x", "k = [1, 4]\nlr = [-1.0]");
    let err = refused(&text, &["train.dim=4"], &[]);
    assert!(err.contains("`sweep.lr`: "), "{err}");
    assert!(!err.contains("--set"), "{err}");
}

#[test]
fn an_error_at_another_key_names_the_override_behind_it() {
    let text = tiny(
        "memory:///x",
        "k = [1, 4]\nseed = [0, 1, 2]\n\n[sweep.adaptive]\ninitial-seeds = 3",
    );
    let err = refused(&text, &["sweep.seed=[0,1]", "train.lr=0.1"], &[]);
    assert!(
        err.contains("`sweep.adaptive.initial-seeds` (with --set sweep.seed=[0,1]): is 3, but"),
        "{err}"
    );
    let err = refused(
        &tiny("memory:///x", "k = [1, 4]"),
        &["negatives.k-max=2"],
        &[],
    );
    assert!(
        err.contains("`sweep.k` (with --set negatives.k-max=2): k = 4 exceeds negatives.k-max = 2"),
        "{err}"
    );
    // The memory check: an override that makes points too large is named; one that only
    // changes the points' ids (all of them: ids hash every setting) is not.
    let limit = ["--max-memory", "100M"];
    let err = refused(
        &tiny("memory:///x", "k = [1, 4]"),
        &["train.dim=100000"],
        &limit,
    );
    assert!(
        err.contains("`memory` (with --set train.dim=100000): point "),
        "{err}"
    );
    let big = tiny("memory:///x", "k = [1, 4]").replace("dim = 8", "dim = 100000");
    let err = refused(&big, &["train.lr=0.1"], &limit);
    assert!(err.contains("`memory`: point "), "{err}");
    assert!(!err.contains("--set"), "{err}");
}

#[test]
fn an_override_of_the_key_is_named_with_the_others_the_problem_needs() {
    // k = 300 is fine alone (k-max follows the largest k) and k-max = 8 is fine alone: both are
    // named, and the unrelated override is not.
    let err = refused(
        &tiny("memory:///x", "k = [1, 4]"),
        &["sweep.k=[1, 300]", "train.lr=0.1", "negatives.k-max=8"],
        &[],
    );
    assert!(
        err.contains(
            "`sweep.k` (from --set sweep.k=[1, 300], with --set negatives.k-max=8): k = 300 \
             exceeds negatives.k-max = 8"
        ),
        "{err}"
    );
    assert!(!err.contains("train.lr"), "{err}");
    // Alone, the override that set the key is the only one named.
    let err = refused(
        &tiny("memory:///x", "k = [1, 4]"),
        &["sweep.k=[1, 300]", "negatives.k-max=8"],
        &[],
    );
    assert!(
        err.contains("(from --set sweep.k=[1, 300], with --set negatives.k-max=8)"),
        "{err}"
    );
    let err = refused(
        &tiny("memory:///x", "k = [1, 4]\n\n[negatives]\nk-max = 8"),
        &["sweep.k=[1, 300]"],
        &[],
    );
    assert!(
        err.contains("`sweep.k` (from --set sweep.k=[1, 300]): k = 300"),
        "{err}"
    );
}

#[test]
fn a_warning_names_its_override() {
    let text = tiny(
        "memory:///x",
        "k = [1, 4]\nseed = [0, 1, 2]\n\n[sweep.adaptive]",
    );
    let (code, _, err) = with_set("validate", &text, &["sweep.adaptive.stable-rounds=2"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.starts_with("warning: "), "{err}");
    assert!(
        err.contains(
            "p.toml: `sweep.adaptive.stable-rounds` (from --set \
             sweep.adaptive.stable-rounds=2): applies only with settle = \"stable\""
        ),
        "{err}"
    );
    let (code, _, err) = with_set("validate", &text, &["sweep.seed=[0,1]"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("`sweep.adaptive` (with --set sweep.seed=[0,1]): round 1 trains every k"),
        "{err}"
    );
}

#[test]
fn a_problem_found_once_the_data_is_read_names_its_override() {
    let dir = tempfile::tempdir().unwrap();
    let mut corpus = String::new();
    for c in 0..3 {
        for i in 0..8 {
            corpus.push_str(&format!(
                "{{\"text\": \"topic{c} word{i} more words\", \"label\": \"c{c}\"}}\n"
            ));
        }
    }
    let data = write(dir.path(), "corpus.jsonl", &corpus);
    let text = format!(
        "[pipeline]\nname = \"o\"\noutput = \"{}\"\n\n[[datasets]]\nkind = \"jsonl\"\n\
         name = \"corpus\"\nurl = \"{}\"\ntokenize = {{ min-count = 1 }}\n\n[train]\ndim = 4\n\
         hidden = 8\nbatch-size = 8\nepochs = 1\n\n[sweep]\nk = [1]\nn = [2]\n",
        dir.path().join("out").display(),
        data.display()
    );
    let (code, out, err) = with_set("run", &text, &["sweep.n=[2,5]"], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("`sweep.n` (from --set sweep.n=[2,5]): N = 5 asks for more concepts"),
        "--- stdout\n{out}\n--- stderr\n{err}"
    );
}

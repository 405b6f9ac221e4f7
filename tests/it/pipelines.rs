//! Every shipped pipeline resolves, and the generated schemas are current.

use std::path::Path;

use negsweep::plan;
use negsweep::spec::PipelineSpec;

#[test]
fn every_pipeline_file_resolves() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let spec = PipelineSpec::load(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
        let plan =
            plan::resolve(&spec, &path.display().to_string()).unwrap_or_else(|e| panic!("{e}"));
        assert!(!plan.points.is_empty(), "{}", path.display());
        assert!(
            plan.warnings.is_empty(),
            "{}: {:?}",
            path.display(),
            plan.warnings
        );
        seen += 1;
    }
    assert!(
        seen >= 2,
        "expected the shipped pipelines in {}",
        dir.display()
    );
}

#[test]
fn quickstart_sweeps_what_it_promises() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/quickstart.toml");
    let spec = PipelineSpec::load(&path, &[]).unwrap();
    let plan = plan::resolve(&spec, "quickstart").unwrap();
    let ks: std::collections::BTreeSet<u32> = plan.points.iter().map(|p| p.k).collect();
    let ns: std::collections::BTreeSet<u32> = plan.points.iter().map(|p| p.n).collect();
    assert_eq!(
        ks.into_iter().collect::<Vec<_>>(),
        vec![1, 2, 4, 8, 16, 32, 64, 128, 256]
    );
    assert_eq!(ns.into_iter().collect::<Vec<_>>(), vec![4, 16, 64]);
    assert_eq!(plan.points.len(), 9 * 3 * 3);
    let ids: std::collections::HashSet<_> = plan.points.iter().map(|p| &p.id).collect();
    assert_eq!(ids.len(), plan.points.len(), "point ids are unique");
}

#[test]
fn generated_schemas_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    for (name, content) in negsweep::cli::schema_files() {
        let on_disk = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
        assert!(
            on_disk == content,
            "schemas/{name} is stale: run `negsweep schema`"
        );
    }
}

//! What a new user reads first, `--help`, `list` and the README, stands on its own: it points
//! to the project's own docs and to no file outside the repository.

mod common;
use common::bypass;

// The sibling folder's name is spelled in two pieces so that this file does not itself name a
// path outside the repository.
const OUTSIDE: [&str; 3] = ["PROTOCOL.md", "BUS.md", concat!("..", "/shared")];

#[test]
fn help_and_list_point_to_the_projects_docs() {
    let mut seen = String::new();
    for args in [
        &["--help"][..],
        &["list"],
        &["help", "replay"],
        &["help", "run"],
        &["help", "ci"],
        &["help", "compare"],
        &["help", "report"],
    ] {
        let out = bypass(args);
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        for path in OUTSIDE {
            assert!(
                !text.contains(path),
                "`bypass {args:?}` names {path}:\n{text}"
            );
        }
        seen.push_str(&text);
    }
    assert!(seen.contains("docs/registry.md"), "{seen}");
    assert!(seen.contains("Registry"), "{seen}");
}

#[test]
fn the_readme_and_docs_stay_inside_the_repository() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    for file in ["README.md", "docs/registry.md", "benches/README.md"] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        for path in OUTSIDE {
            assert!(!text.contains(path), "{file} names {path}");
        }
    }
    assert!(
        std::path::Path::new(root)
            .join("docs/registry.md")
            .is_file()
    );
}

/// The README's CI job runs the ci suite with a JUnit report, and keeps it.
#[test]
fn the_readme_shows_a_ci_job() {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("```yaml\n")
        .expect("a YAML CI job in the README");
    let job = &readme[start..];
    let job = &job[..job[8..].find("```").unwrap() + 8];
    assert!(job.contains("bypass ci") || job.contains("-- ci"), "{job}");
    assert!(job.contains("--budget"), "{job}");
    assert!(job.contains("--junit"), "{job}");
    assert!(job.contains("upload-artifact"), "{job}");
}

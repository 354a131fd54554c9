//! The README and `docs/` stand alone: the Rust examples in the README are `tests/testkit_readme.rs` and
//! `tests/scenario_as_test.rs` (which `cargo test` compiles and runs), and every relative link of the Markdown
//! documents points to a file inside the repository.
#![allow(clippy::unwrap_used)]

use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// The body of every fenced block of `lang` in `text`.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match &mut current {
            None if line.trim() == format!("```{lang}") => current = Some(String::new()),
            Some(_) if line.trim() == "```" => out.extend(current.take()),
            Some(body) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    out
}

#[test]
fn the_readme_rust_examples_are_the_tests_that_run() {
    let readme = blocks(&read("README.md"), "rust");
    let files = ["tests/testkit_readme.rs", "tests/scenario_as_test.rs"];
    assert_eq!(readme.len(), files.len(), "{readme:?}");
    for (block, path) in readme.iter().zip(files) {
        let file = read(path);
        let (_, example) = file.split_once("// README example:\n").unwrap();
        assert_eq!(block, example, "{path}");
    }
}

/// The targets of `[text](target)` links in `text` that are not URLs or anchors.
fn relative_links(text: &str) -> Vec<String> {
    text.match_indices("](")
        .filter_map(|(i, _)| {
            let rest = &text[i + 2..];
            let target = &rest[..rest.find(')')?];
            let target = target.split('#').next().unwrap_or_default();
            (!target.is_empty() && !target.contains("://")).then(|| target.to_owned())
        })
        .collect()
}

#[test]
fn every_relative_link_stays_in_the_repository_and_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for doc in [
        "README.md",
        "docs/json.md",
        "docs/federation.md",
        "scenarios/README.md",
        "benches/README.md",
        "deploy/README.md",
    ] {
        let text = read(doc);
        let dir = root.join(doc).parent().unwrap().to_owned();
        for target in relative_links(&text) {
            let path = dir.join(&target).canonicalize().unwrap_or_else(|e| {
                panic!("{doc}: link {target}: {e}");
            });
            assert!(
                path.starts_with(root.canonicalize().unwrap()),
                "{doc}: link {target} leaves the repository"
            );
        }
        assert!(!text.contains("../shared"), "{doc} refers to ../shared");
    }
    assert_eq!(
        relative_links("[a](docs/json.md#x) [b](https://x.org) [c](#json-output) [d](../x.md)"),
        ["docs/json.md", "../x.md"]
    );
}

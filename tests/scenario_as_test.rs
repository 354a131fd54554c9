//! The README's "Scenario files as tests" example, verbatim below the marker line (`tests/readme.rs` checks that
//! the two agree), so the example always compiles and passes.

// README example:
use std::path::Path;

use edgesim::lab::scenario::{report::render_table, run_file};

#[tokio::test(flavor = "multi_thread")]
async fn the_lab_behaves_like_a_real_edge() {
    let lab = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/seed-lab.toml");
    let report = run_file(&lab)
        .await
        .expect("the scenario loads and its lab starts");
    assert!(report.passed(), "{}", render_table(&report));
}

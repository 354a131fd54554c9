//! Human and JSON renderings of scenario reports.

use std::fmt::Write as _;

use serde::Serialize;

use super::runner::ScenarioReport;

fn width(s: &str) -> usize {
    s.chars().count()
}

fn pad(s: &str, w: usize) -> String {
    let mut out = s.to_owned();
    out.extend(std::iter::repeat_n(' ', w.saturating_sub(width(s))));
    out
}

/// Wraps `text` at spaces to lines of at most `cols` characters, each prefixed with `indent`.
fn wrap(text: &str, indent: &str, cols: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && width(&line) + 1 + width(word) > cols {
            let _ = writeln!(out, "{indent}{line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{indent}{line}");
    }
    out
}

/// The table of one report: case, direction, expected, got, PASS/FAIL; then, per failure or rejection, the
/// differences and the Edge's explanation.
pub fn render_table(report: &ScenarioReport) -> String {
    let mut out = String::new();
    let title = report
        .title
        .as_deref()
        .map(|t| format!(" — {t}"))
        .unwrap_or_default();
    let _ = writeln!(out, "{}{title}", report.path);
    let head = ["CASE", "DIR", "EXPECTED", "GOT", "RESULT"];
    let rows: Vec<[String; 5]> = report
        .cases
        .iter()
        .map(|c| {
            [
                c.name.clone(),
                match c.direction {
                    super::Direction::Inbound => "in".to_owned(),
                    super::Direction::Outbound => "out".to_owned(),
                },
                c.expected.clone(),
                c.got.clone(),
                if c.pass { "PASS" } else { "FAIL" }.to_owned(),
            ]
        })
        .collect();
    let mut widths = head.map(width);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let line = |cells: [&str; 5]| {
        let mut l = String::from("  ");
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i == 4 {
                l.push_str(cell);
            } else {
                l.push_str(&pad(cell, w));
                l.push_str("  ");
            }
        }
        l
    };
    let _ = writeln!(out, "{}", line(head));
    for row in &rows {
        let _ = writeln!(
            out,
            "{}",
            line([&row[0], &row[1], &row[2], &row[3], &row[4]])
        );
    }
    let passed = report.cases.len() - report.failures();
    let _ = writeln!(
        out,
        "  {passed} of {} passed{} in {:.1} s",
        report.cases.len(),
        if report.failures() > 0 {
            format!(" ({} FAILED)", report.failures())
        } else {
            String::new()
        },
        report.elapsed_ms as f64 / 1000.0
    );
    for c in &report.cases {
        if c.pass && c.explanation.is_none() {
            continue;
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "  {} {}", if c.pass { "PASS" } else { "FAIL" }, c.name);
        for d in &c.detail {
            let _ = writeln!(out, "    {d}");
        }
        if let Some(ms) = &c.observed.ms_diagnostics {
            let _ = writeln!(out, "    ms-diagnostics: {ms}");
        }
        if let (Some(rc), Some(data)) = (&c.observed.result_code, &c.observed.log_data) {
            let _ = writeln!(out, "    Edge log: {rc} Data: {data}");
        }
        if let Some(x) = &c.explanation {
            out.push_str(&wrap(&format!("Edge: {x}"), "    ", 100));
        }
    }
    out
}

/// The JSON document for CI: every report plus totals.
#[derive(Debug, Serialize)]
pub struct JsonSummary<'a> {
    /// True when every case of every file passed.
    pub passed: bool,
    /// Cases run.
    pub cases: usize,
    /// Cases failed.
    pub failures: usize,
    /// The reports.
    pub files: &'a [ScenarioReport],
}

/// Renders reports as one pretty JSON document.
pub fn render_json(reports: &[ScenarioReport]) -> Result<String, serde_json::Error> {
    let summary = JsonSummary {
        passed: reports.iter().all(ScenarioReport::passed),
        cases: reports.iter().map(|r| r.cases.len()).sum(),
        failures: reports.iter().map(ScenarioReport::failures).sum(),
        files: reports,
    };
    serde_json::to_string_pretty(&summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{CaseResult, Direction, Observed};

    fn result(name: &str, pass: bool) -> CaseResult {
        CaseResult {
            name: name.into(),
            direction: Direction::Inbound,
            description: None,
            expected: "504 · 1009".into(),
            got: if pass { "504 · 1009" } else { "200" }.into(),
            pass,
            detail: if pass {
                vec![]
            } else {
                vec!["status: expected 504, got 200".into()]
            },
            explanation: None,
            observed: Observed::default(),
            elapsed_ms: 3,
        }
    }

    #[test]
    fn table_aligns_and_lists_failures() {
        let report = ScenarioReport {
            path: "lab.toml".into(),
            title: Some("a lab".into()),
            cases: vec![result("rule 1", true), result("long case name", false)],
            elapsed_ms: 1234,
        };
        let text = render_table(&report);
        assert_eq!(
            text,
            "lab.toml — a lab\n\
             \x20 CASE            DIR  EXPECTED    GOT         RESULT\n\
             \x20 rule 1          in   504 · 1009  504 · 1009  PASS\n\
             \x20 long case name  in   504 · 1009  200         FAIL\n\
             \x20 1 of 2 passed (1 FAILED) in 1.2 s\n\
             \n\
             \x20 FAIL long case name\n\
             \x20   status: expected 504, got 200\n"
        );
        let json = render_json(&[report]).unwrap();
        assert!(json.contains("\"failures\": 1"), "{json}");
    }
}

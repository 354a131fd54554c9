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

/// Wraps `text` at spaces to lines of at most `cols` characters, each prefixed with `indent` (counted in
/// `cols`); a word longer than a line stays whole.
fn wrap(text: &str, indent: &str, cols: usize) -> String {
    let room = cols.saturating_sub(width(indent)).max(1);
    wrap_lines(text, room)
        .iter()
        .map(|l| format!("{indent}{l}\n"))
        .collect()
}

/// `text` in lines of at most `room` characters, broken at spaces; a longer word is split.
fn wrap_lines(text: &str, room: usize) -> Vec<String> {
    let room = room.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && width(&line) + 1 + width(word) > room {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
        while width(&line) > room {
            let cut: String = line.chars().take(room).collect();
            let rest: String = line.chars().skip(room).collect();
            lines.push(cut);
            line = rest;
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// The widest the table gets: it fits 100 columns; a narrower terminal gets a narrower table.
pub const TABLE_COLUMNS: usize = 100;

/// The narrowest the CASE column is squeezed to before the table is allowed to overflow.
const MIN_CASE_WIDTH: usize = 20;

/// [`render_table_width`] for a 100-column output (not a terminal).
pub fn render_table(report: &ScenarioReport) -> String {
    render_table_width(report, TABLE_COLUMNS)
}

/// The table of one report: case, direction, expected, got, PASS/FAIL; then, per failure or rejection, the
/// differences and the Edge's explanation. The table fits `min(cols, 100)` columns (long case names wrap in
/// their column); explanations wrap to `cols`. The ms-diagnostics and Edge log lines stay whole, as the Edge
/// writes them, so that they can be searched for and copied.
pub fn render_table_width(report: &ScenarioReport, cols: usize) -> String {
    let table_cols = cols.min(TABLE_COLUMNS);
    let mut out = String::new();
    let title = report
        .title
        .as_deref()
        .map(|t| format!(" — {t}"))
        .unwrap_or_default();
    for (i, l) in wrap_lines(
        &format!("{}{title}", report.path),
        table_cols.saturating_sub(2),
    )
    .iter()
    .enumerate()
    {
        let _ = writeln!(out, "{}{l}", if i == 0 { "" } else { "  " });
    }
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
    // Indent, the four gaps and every column but CASE; CASE gets what is left.
    let others: usize = 2 + 4 * 2 + widths[1..].iter().sum::<usize>();
    widths[0] = widths[0].min(table_cols.saturating_sub(others).max(MIN_CASE_WIDTH));
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
        l.trim_end().to_owned()
    };
    let _ = writeln!(out, "{}", line(head));
    for row in &rows {
        let names = wrap_lines(&row[0], widths[0]);
        let _ = writeln!(
            out,
            "{}",
            line([&names[0], &row[1], &row[2], &row[3], &row[4]])
        );
        for more in &names[1..] {
            let _ = writeln!(out, "{}", line([more, "", "", "", ""]));
        }
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
            out.push_str(&wrap(&format!("Edge: {x}"), "    ", cols));
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

    fn long_report() -> ScenarioReport {
        let mut c = result(
            "in: SRV of acano.steven.lab → parent-domain host, with a name long enough to need two lines",
            false,
        );
        c.expected = "504 · 0xc3e93d6f".into();
        c.got = "504 · 1009 · 0xc3e93d6f".into();
        c.explanation = Some(
            "The SRV record of acano.steven.lab points to vcse.steven.lab, which is not in acano.steven.lab: \
             publish _sipfederationtls._tcp.acano.steven.lab with a target inside the domain, e.g. \
             vcse.acano.steven.lab, and put that name in the certificate's SAN."
                .into(),
        );
        ScenarioReport {
            path: "scenarios/seed-lab.toml (embedded)".into(),
            title: Some(
                "seed lab: skype.lab Edge ↔ steven.lab Expressway-E, four failures and the fix"
                    .into(),
            ),
            cases: vec![c, result("rule 1", true)],
            elapsed_ms: 10,
        }
    }

    #[test]
    fn the_table_fits_100_columns_and_long_names_wrap_in_their_column() {
        let text = render_table(&long_report());
        let table: Vec<&str> = text
            .lines()
            .take_while(|l| !l.contains(" passed"))
            .collect();
        for l in &table {
            assert!(width(l) <= 100, "{} columns: {l}", width(l));
        }
        assert_eq!(
            table[2],
            "  CASE                                        DIR  EXPECTED          GOT                      RESULT"
        );
        assert_eq!(
            table[3],
            "  in: SRV of acano.steven.lab →               in   504 · 0xc3e93d6f  504 · 1009 · 0xc3e93d6f  FAIL"
        );
        assert_eq!(table[4], "  parent-domain host, with a name long");
        assert_eq!(table[5], "  enough to need two lines");
    }

    #[test]
    fn explanations_wrap_to_the_width_given() {
        for cols in [60, 100, 140] {
            let text = render_table_width(&long_report(), cols);
            let edge: Vec<&str> = text
                .lines()
                .skip_while(|l| !l.starts_with("    Edge: "))
                .take_while(|l| l.starts_with("    "))
                .collect();
            assert!(edge.len() > 1 || cols == 140, "{text}");
            for l in &edge {
                assert!(width(l) <= cols, "{cols}: {l}");
            }
            let joined = edge.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
            assert!(
                joined.ends_with("put that name in the certificate's SAN."),
                "{joined}"
            );
        }
    }
}

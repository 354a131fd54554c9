//! Human and JSON renderings of scenario reports.

use std::fmt::Write as _;

use serde::Serialize;

use super::ScenarioError;
use super::runner::ScenarioReport;
use crate::report::{Envelope, ErrorInfo, Line, Status, split_fix};

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

/// The `command` of the `scenario run --json` document.
pub const COMMAND: &str = "scenario run";

/// One case as a line of the shared `--json` vocabulary ([`crate::report`]), with the case's own fields.
///
/// `rule` is the case name; `status` PASS or FAIL; `detail` the differences (FAIL) or the outcome (PASS);
/// `fix` the Edge's own advice for the lab the case builds (the `Fix:` of its explanation), also on a PASS:
/// a case that models a broken lab passes when the Edge refuses it as a real Edge does.
#[derive(Debug, Serialize)]
pub struct CaseLine<'a> {
    /// `status`, `rule`, `detail`, `fix`.
    #[serde(flatten)]
    pub line: Line,
    /// The scenario file of the case.
    pub file: &'a str,
    /// `inbound` or `outbound`.
    pub direction: super::Direction,
    /// The case's description.
    pub description: Option<&'a str>,
    /// The expectation, summarised (`504 · 1009 · 0xc3e93d6f`).
    pub expected: &'a str,
    /// The observation, summarised the same way.
    pub got: &'a str,
    /// Each expectation that did not hold (empty on PASS).
    pub differences: &'a [String],
    /// The Edge's explanation without its fix.
    pub explanation: Option<String>,
    /// Everything observed.
    pub observed: &'a super::Observed,
    /// Wall time of the case, ms.
    pub elapsed_ms: u64,
}

impl AsRef<Line> for CaseLine<'_> {
    fn as_ref(&self) -> &Line {
        &self.line
    }
}

/// One file of the run, without its cases (they are the document's lines).
#[derive(Debug, Serialize)]
pub struct FileSummary<'a> {
    /// The file.
    pub path: &'a str,
    /// Its title.
    pub title: Option<&'a str>,
    /// Cases run.
    pub cases: usize,
    /// Cases failed.
    pub failures: usize,
    /// Wall time of the file, ms.
    pub elapsed_ms: u64,
}

/// The fields of `scenario run --json` between the envelope's `status` and its `lines`.
#[derive(Debug, Serialize)]
pub struct JsonSummary<'a> {
    /// Cases run.
    pub cases: usize,
    /// Cases failed.
    pub failures: usize,
    /// The files run.
    pub files: Vec<FileSummary<'a>>,
}

fn case_line<'a>(file: &'a str, c: &'a super::CaseResult) -> CaseLine<'a> {
    let (explanation, fix) = match &c.explanation {
        Some(x) => {
            let (what, fix) = split_fix(x);
            (Some(what), fix)
        }
        None => (None, None),
    };
    let detail = if c.pass {
        format!("{}, as expected", c.got)
    } else if c.detail.is_empty() {
        format!("expected {}, got {}", c.expected, c.got)
    } else {
        // One line: the table's multi-line differences with their layout folded into single spaces.
        let differences = c.detail.join("; ");
        format!(
            "expected {}, got {}: {}",
            c.expected,
            c.got,
            differences.split_whitespace().collect::<Vec<_>>().join(" ")
        )
    };
    CaseLine {
        line: Line::new(Status::pass_if(c.pass), &c.name, detail, fix),
        file,
        direction: c.direction,
        description: c.description.as_deref(),
        expected: &c.expected,
        got: &c.got,
        differences: &c.detail,
        explanation,
        observed: &c.observed,
        elapsed_ms: c.elapsed_ms,
    }
}

/// The `scenario run --json` document: the envelope, totals and files, every case of every file a line.
pub fn json_document(reports: &[ScenarioReport]) -> Envelope<JsonSummary<'_>, CaseLine<'_>> {
    let body = JsonSummary {
        cases: reports.iter().map(|r| r.cases.len()).sum(),
        failures: reports.iter().map(ScenarioReport::failures).sum(),
        files: reports
            .iter()
            .map(|r| FileSummary {
                path: &r.path,
                title: r.title.as_deref(),
                cases: r.cases.len(),
                failures: r.failures(),
                elapsed_ms: r.elapsed_ms,
            })
            .collect(),
    };
    let lines = reports
        .iter()
        .flat_map(|r| r.cases.iter().map(|c| case_line(&r.path, c)))
        .collect();
    Envelope::new(COMMAND, body, lines)
}

/// Renders reports as one pretty JSON document ([`json_document`]).
pub fn render_json(reports: &[ScenarioReport]) -> Result<String, serde_json::Error> {
    json_document(reports).to_json()
}

/// The `error` object of the `ERROR` document for a scenario that does not load or a lab that cannot be
/// built: the file, line, column, key and hint as the error knows them.
pub fn error_info(e: &ScenarioError) -> ErrorInfo {
    let file = |p: &std::path::Path| Some(p.display().to_string());
    match e {
        ScenarioError::Io { path, cause } => ErrorInfo {
            file: file(path),
            ..ErrorInfo::message(format!("cannot read the scenario: {cause}"))
        },
        ScenarioError::Parse {
            path,
            line,
            column,
            field,
            message,
            hint,
        } => ErrorInfo {
            message: format!("{field}{message}"),
            file: file(path),
            line: Some(*line),
            column: Some(*column),
            field: backticked_field(field),
            hint: Some(hint.clone()),
        },
        ScenarioError::Invalid {
            path,
            line,
            column,
            field,
            message,
        } => ErrorInfo {
            message: format!("field `{field}`: {message}"),
            file: file(path),
            line: Some(*line),
            column: Some(*column),
            field: Some(field.clone()),
            hint: None,
        },
        ScenarioError::Cert { path, name, cause } => ErrorInfo {
            file: file(path),
            field: Some(format!("certs.{name}")),
            ..ErrorInfo::message(format!("certificate `{name}`: {cause}"))
        },
        ScenarioError::Lab { path, message } => ErrorInfo {
            file: file(path),
            ..ErrorInfo::message(message.clone())
        },
    }
}

/// `x.y` of "… field `x.y`: ".
fn backticked_field(text: &str) -> Option<String> {
    let rest = &text[text.find("field `")? + "field `".len()..];
    Some(rest[..rest.find('`')?].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::scenario::{CaseResult, Direction, Observed};

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
        let v: serde_json::Value = serde_json::from_str(&render_json(&[report]).unwrap()).unwrap();
        assert_eq!(v["schema"], 1);
        assert_eq!(v["command"], "scenario run");
        assert_eq!(v["status"], "FAIL");
        assert_eq!(v["failures"], 1);
        assert_eq!(v["files"][0]["path"], "lab.toml");
        let line = &v["lines"][1];
        assert_eq!(line["status"], "FAIL");
        assert_eq!(line["rule"], "long case name");
        assert_eq!(
            line["detail"],
            "expected 504 · 1009, got 200: status: expected 504, got 200"
        );
        assert_eq!(line["fix"], serde_json::Value::Null);
        assert_eq!(line["file"], "lab.toml");
        assert_eq!(v["lines"][0]["detail"], "504 · 1009, as expected");
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

//! The one vocabulary of every `--json` output: `check`, `certs inspect`, `call`, `scenario run` and `load`.
//!
//! Every document is one JSON object that starts with the same three keys and ends with the same list:
//!
//! ```json
//! {"schema": 1, "command": "check", "status": "FAIL", "domain": "…", "notes": [], "lines": [
//!   {"status": "FAIL", "rule": "rule1", "detail": "…", "fix": "…"}
//! ]}
//! ```
//!
//! - `schema`: the version of this layout, [`SCHEMA`]; it changes when a key is renamed, removed or re-typed,
//!   not when one is added (the same rule, and the same key name, as the decision events of
//!   [`crate::diagnostics::DecisionEvent`]).
//! - `command`: `check`, `certs inspect`, `call`, `scenario run` or `load`.
//! - `status`: the worst status of the lines (`PASS` when there are none), or `ERROR` when the command could
//!   not run at all (exit code 2; the document then holds an `error` object instead of the command's fields).
//!   `FAIL` exactly when the exit code says a failure; `WARN` still exits 0.
//! - the command's own fields (see `docs/json.md`);
//! - `lines`: what was checked, each a [`Line`]: `status` (`PASS`, `WARN`, `FAIL`), `rule` (what was checked),
//!   `detail` (what was found), `fix` (what to change; `null` when there is nothing to change). Every key is
//!   always present.
//!
//! The human output of each command is written from the same lines.

use serde::{Deserialize, Serialize};

/// The version of the `--json` layout, written as `"schema"` first in every document.
pub const SCHEMA: u32 = 1;

/// The verdict of one line: `PASS`, `WARN` or `FAIL` (ordered from best to worst).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// The rule holds.
    Pass,
    /// The rule holds for the Edge, but something deserves attention (the exit code is still 0).
    Warn,
    /// The rule does not hold.
    Fail,
}

impl Status {
    /// `PASS`, `WARN` or `FAIL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }

    /// `PASS` when `ok`, else `FAIL`.
    pub fn pass_if(ok: bool) -> Self {
        if ok { Status::Pass } else { Status::Fail }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status of a whole document: the worst line, or `ERROR` when the command could not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Overall {
    /// Every line passes (or there are none).
    Pass,
    /// The worst line is a WARN.
    Warn,
    /// At least one line fails.
    Fail,
    /// The command could not run: see the document's `error`.
    Error,
}

impl From<Status> for Overall {
    fn from(s: Status) -> Self {
        match s {
            Status::Pass => Overall::Pass,
            Status::Warn => Overall::Warn,
            Status::Fail => Overall::Fail,
        }
    }
}

/// One thing checked: its verdict, what was checked, what was found and what to change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// PASS, WARN or FAIL.
    pub status: Status,
    /// What was checked, a short stable name (`rule1`, `cert`, `eku`, `tls`, a scenario case's name …).
    pub rule: String,
    /// What was found, one sentence for people.
    pub detail: String,
    /// What to change; `None` (`null`) when nothing needs to change.
    pub fix: Option<String>,
}

impl Line {
    /// A line with every field given.
    pub fn new(
        status: Status,
        rule: impl Into<String>,
        detail: impl Into<String>,
        fix: Option<String>,
    ) -> Self {
        Line {
            status,
            rule: rule.into(),
            detail: detail.into(),
            fix,
        }
    }

    /// A PASS line without a fix.
    pub fn pass(rule: impl Into<String>, detail: impl Into<String>) -> Self {
        Line::new(Status::Pass, rule, detail, None)
    }
}

impl AsRef<Line> for Line {
    fn as_ref(&self) -> &Line {
        self
    }
}

/// The worst status of `lines`, `PASS` when there are none.
pub fn worst<'a>(lines: impl IntoIterator<Item = &'a Line>) -> Status {
    lines
        .into_iter()
        .map(|l| l.status)
        .max()
        .unwrap_or(Status::Pass)
}

/// A whole `--json` document: the envelope keys, the command's own fields (`body`, flattened in between), and
/// the lines. `L` is [`Line`] or a line with more fields of its own that flattens a [`Line`] (a scenario case).
#[derive(Debug, Clone, Serialize)]
pub struct Envelope<B, L = Line> {
    /// [`SCHEMA`].
    pub schema: u32,
    /// The command: `check`, `certs inspect`, `call`, `scenario run`, `load`.
    pub command: &'static str,
    /// The worst status of the lines.
    pub status: Overall,
    /// The command's own fields.
    #[serde(flatten)]
    pub body: B,
    /// What was checked.
    pub lines: Vec<L>,
}

impl<B: Serialize, L: Serialize + AsRef<Line>> Envelope<B, L> {
    /// The document of `command`; its status is the worst of `lines`.
    pub fn new(command: &'static str, body: B, lines: Vec<L>) -> Self {
        let status = worst(lines.iter().map(AsRef::as_ref)).into();
        Envelope {
            schema: SCHEMA,
            command,
            status,
            body,
            lines,
        }
    }

    /// The document as pretty-printed JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}

/// Why a command could not run, for the `error` object of an `ERROR` document. Unknown parts are `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// What is wrong, for people (the message the command prints on stderr, without the location).
    pub message: String,
    /// The file at fault, when one is.
    pub file: Option<String>,
    /// Its 1-based line.
    pub line: Option<usize>,
    /// Its 1-based column.
    pub column: Option<usize>,
    /// The key at fault, e.g. `case.direction`.
    pub field: Option<String>,
    /// What to change.
    pub hint: Option<String>,
}

impl ErrorInfo {
    /// An error known only by its message.
    pub fn message(message: impl Into<String>) -> Self {
        ErrorInfo {
            message: message.into(),
            ..ErrorInfo::default()
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a ErrorInfo,
}

/// The `ERROR` document of `command`: `{"schema":1,"command":…,"status":"ERROR","error":{…},"lines":[]}`.
pub fn error_json(command: &'static str, error: &ErrorInfo) -> Result<String, serde_json::Error> {
    let doc = Envelope::<_, Line> {
        schema: SCHEMA,
        command,
        status: Overall::Error,
        body: ErrorBody { error },
        lines: Vec::new(),
    };
    doc.to_json()
}

/// Splits an explanation worded "what happened. Fix: what to change." into its two parts; without a `Fix:`
/// the whole text is the detail and there is no fix.
pub fn split_fix(text: &str) -> (String, Option<String>) {
    const MARK: &str = "Fix: ";
    let at = text.match_indices(MARK).map(|(i, _)| i).find(|&i| {
        text[..i]
            .chars()
            .next_back()
            .is_none_or(char::is_whitespace)
    });
    match at {
        Some(i) => {
            let fix = text[i + MARK.len()..].trim();
            (
                text[..i].trim_end().to_owned(),
                (!fix.is_empty()).then(|| fix.to_owned()),
            )
        }
        None => (text.trim().to_owned(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_starts_with_schema_command_status_and_ends_with_lines() {
        #[derive(Serialize)]
        struct Body {
            domain: &'static str,
        }
        let doc = Envelope::new(
            "check",
            Body { domain: "x.lab" },
            vec![
                Line::pass("dns-srv", "found"),
                Line::new(Status::Warn, "tcp", "one dead", Some("fix it".into())),
            ],
        );
        assert_eq!(
            serde_json::to_string(&doc).unwrap(),
            r#"{"schema":1,"command":"check","status":"WARN","domain":"x.lab","lines":[{"status":"PASS","rule":"dns-srv","detail":"found","fix":null},{"status":"WARN","rule":"tcp","detail":"one dead","fix":"fix it"}]}"#
        );
        let empty = Envelope::new("load", Body { domain: "" }, Vec::<Line>::new());
        assert_eq!(empty.status, Overall::Pass);
    }

    #[test]
    fn the_worst_line_decides() {
        let lines = [
            Line::new(Status::Fail, "a", "b", None),
            Line::new(Status::Warn, "a", "b", None),
        ];
        assert_eq!(worst(&lines), Status::Fail);
        assert_eq!(worst(&lines[1..]), Status::Warn);
        assert_eq!(worst(&[]), Status::Pass);
        assert_eq!(Status::pass_if(false), Status::Fail);
    }

    #[test]
    fn an_error_document_has_the_envelope_and_no_lines() {
        let e = ErrorInfo {
            message: "unknown variant `sideways`".into(),
            file: Some("bad.toml".into()),
            line: Some(14),
            column: Some(13),
            field: Some("case.direction".into()),
            hint: None,
        };
        let v: serde_json::Value =
            serde_json::from_str(&error_json("scenario run", &e).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"schema": 1, "command": "scenario run", "status": "ERROR",
                "error": {"message": "unknown variant `sideways`", "file": "bad.toml", "line": 14,
                          "column": 13, "field": "case.direction", "hint": null},
                "lines": []})
        );
    }

    #[test]
    fn a_fix_is_split_from_its_explanation() {
        assert_eq!(
            split_fix("X points to Y, which is not in X. Fix: publish X → Z."),
            (
                "X points to Y, which is not in X.".to_owned(),
                Some("publish X → Z.".to_owned())
            )
        );
        assert_eq!(
            split_fix("Fix: all of it"),
            (String::new(), Some("all of it".to_owned()))
        );
        assert_eq!(split_fix("It works."), ("It works.".to_owned(), None));
        // Only a "Fix: " that starts a word counts.
        assert_eq!(split_fix("PostFix: x"), ("PostFix: x".to_owned(), None));
    }
}

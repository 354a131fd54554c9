//! The result of one load run or shard, as `edgesim load --out FILE` writes it and `edgesim load merge` reads
//! it back: its counts, its timing window and its latency histograms.
//!
//! # Format, version 1
//!
//! One JSON object on one line (so that several results can travel in one log: `--out -` writes it to stdout,
//! and `load merge` takes every line holding `{"format":"edgesim-load-result"` from a file such as the output
//! of `kubectl logs`; a file holding one pretty-printed object is read too). The keys, in this order:
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `format` | string | `edgesim-load-result` |
//! | `version` | number | `1`. Renaming, removing or re-typing a key increments it, adding one does not (the rule of the `--json` schema); `load merge` refuses another version |
//! | `shard` | object | `index` (from 0) and `count`, and the whole run the shard is a share of: `connections_total`, `requests_total` (null with `--duration`), `rate_total` (requests/s; null: as fast as possible), `duration_secs` (null with `--requests`). A run without `--shard` is shard 0 of 1 |
//! | `run_id` | string | the start of this shard's Call-IDs (`{run_id}-{connection}-{cseq}@edgesim-load`), tags and branches |
//! | `target`, `method`, `connections`, `window`, `mode`, `target_rate`, `client_certificate` | | this shard's run, as in `load --json` (its share of the connections and of the rate) |
//! | `timing` | object | `start`, `end` (RFC 3339, UTC, for people), `start_unix_us`, `end_unix_us` (microseconds since 1970-01-01 UTC; `end_unix_us − start_unix_us` is the run's monotonic duration), `elapsed_secs` |
//! | `attempted`, `sent`, `answered`, `provisional`, `responses`, `diagnostics`, `retry_after`, `errors`, `handshakes` | | the counts, as in `load --json` |
//! | `latency_us`, `handshake_us` | object | request→final-response latency and connect+handshake time, in microseconds: `encoding` (`hdrhistogram-v2-deflate-base64`), `count` (values recorded), `data` |
//!
//! `data` is the HdrHistogram V2 + DEFLATE encoding (cookie `0x1c849314`) in standard base64 with padding —
//! the text a histogram has in an HdrHistogram interval log (`HISTFAAA…`), which any HdrHistogram library
//! decodes. edgesim records 1 µs to 120 s with 3 significant digits; a reader takes any bounds and precision
//! up to 5 digits (plain V2, cookie `0x1c849313`, is read too).
//!
//! Reading is bounded: a file of at most 64 MiB, a histogram of at most 4 MiB of base64 inflating to at most
//! 16 MiB, its V2 header checked before it is decoded.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use super::LoadSpec;
use super::report::Stats;
use super::shard::{Shard, ShardError, ShardPlan};

/// The `format` of a result.
pub const FORMAT: &str = "edgesim-load-result";
/// The `version` this edgesim writes and reads.
pub const VERSION: u32 = 1;
/// The `encoding` of a histogram.
pub const HISTOGRAM_ENCODING: &str = "hdrhistogram-v2-deflate-base64";
/// What starts every result line (and what `load merge` looks for in a log).
pub const MARK: &str = "{\"format\":\"edgesim-load-result\"";

const MAX_FILE_BYTES: u64 = 64 << 20;
const MAX_HISTOGRAM_TEXT: usize = 4 << 20;
const MAX_V2_BYTES: u64 = 16 << 20;
const MAX_SIGFIG: u32 = 5;
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_DEFLATE_COOKIE: u32 = 0x1c84_9314;
/// Cookie, payload length, normalizing offset, digits, lowest, highest, integer-to-double ratio.
const V2_HEADER: usize = 40;

/// What one shard (or a whole run) did: its counts, timing window and histograms.
#[derive(Debug, Clone)]
pub struct ShardResult {
    /// The shard and the whole run.
    pub plan: ShardPlan,
    /// The start of this shard's Call-IDs, tags and branches.
    pub run_id: String,
    /// Server address.
    pub target: String,
    /// Request method.
    pub method: String,
    /// This shard's connections.
    pub connections: usize,
    /// Requests in flight per connection.
    pub window: usize,
    /// `persistent` or `connection-per-request`.
    pub mode: String,
    /// This shard's target rate; `None`: as fast as possible.
    pub target_rate: Option<f64>,
    /// Whether a client certificate was presented.
    pub client_certificate: bool,
    /// When the run started, µs since the Unix epoch (wall clock).
    pub start_unix_us: u64,
    /// How long it ran, µs (monotonic clock).
    pub elapsed_us: u64,
    /// Requests due, sent or not.
    pub attempted: u64,
    /// Requests written.
    pub sent: u64,
    /// Final responses.
    pub answered: u64,
    /// Provisional responses.
    pub provisional: u64,
    /// Final responses by status.
    pub responses: BTreeMap<String, u64>,
    /// Final responses by `status ms-diagnostics-code`.
    pub diagnostics: BTreeMap<String, u64>,
    /// 503s by Retry-After.
    pub retry_after: BTreeMap<String, u64>,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// Handshakes completed.
    pub handshakes: u64,
    /// Request→final-response latency, µs.
    pub latency_us: Histogram<u64>,
    /// Connect + handshake time, µs.
    pub handshake_us: Histogram<u64>,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    format: String,
    version: u32,
    shard: ShardPlan,
    run_id: String,
    target: String,
    method: String,
    connections: usize,
    window: usize,
    mode: String,
    target_rate: Option<f64>,
    client_certificate: bool,
    timing: Timing,
    attempted: u64,
    sent: u64,
    answered: u64,
    provisional: u64,
    responses: BTreeMap<String, u64>,
    diagnostics: BTreeMap<String, u64>,
    retry_after: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
    handshakes: u64,
    latency_us: Encoded,
    handshake_us: Encoded,
}

#[derive(Serialize, Deserialize)]
struct Timing {
    start: String,
    end: String,
    start_unix_us: u64,
    end_unix_us: u64,
    elapsed_secs: f64,
}

#[derive(Serialize, Deserialize)]
struct Encoded {
    encoding: String,
    count: u64,
    data: String,
}

/// The envelope read first, so that another format or version is named as such.
#[derive(Deserialize)]
struct Head {
    format: Option<serde_json::Value>,
    version: Option<serde_json::Value>,
}

fn rfc3339(unix_us: u64) -> String {
    let t = UNIX_EPOCH + Duration::from_micros(unix_us);
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl ShardResult {
    /// The result of a run of `spec` that counted `stats`, started at `started` and took `elapsed`.
    pub(crate) fn from_stats(
        spec: &LoadSpec,
        run_id: &str,
        stats: &Stats,
        started: SystemTime,
        elapsed: Duration,
    ) -> Self {
        let per_request = spec.new_connection_per_request;
        ShardResult {
            plan: spec.shard.unwrap_or_else(|| ShardPlan::whole(spec)),
            run_id: run_id.to_owned(),
            target: spec.target.to_string(),
            method: spec.request.method.clone(),
            connections: spec.connections.max(1),
            window: if per_request { 1 } else { spec.window.max(1) },
            mode: if per_request {
                "connection-per-request".into()
            } else {
                "persistent".into()
            },
            target_rate: spec.rate,
            client_certificate: spec.tls.client_auth_cert_resolver.has_certs(),
            start_unix_us: started.duration_since(UNIX_EPOCH).map_or(0, micros),
            elapsed_us: micros(elapsed),
            attempted: stats.sent + stats.not_sent,
            sent: stats.sent,
            answered: stats.answered,
            provisional: stats.provisional,
            responses: stats.responses.clone(),
            diagnostics: stats.diagnostics.clone(),
            retry_after: stats.retry_after.clone(),
            errors: stats.errors.clone(),
            handshakes: stats.handshakes,
            latency_us: stats.latency_us.clone(),
            handshake_us: stats.handshake_us.clone(),
        }
    }

    /// Which shard this is.
    pub fn shard(&self) -> Shard {
        self.plan.shard()
    }

    /// When the run ended, µs since the Unix epoch: its start plus its monotonic duration.
    pub fn end_unix_us(&self) -> u64 {
        self.start_unix_us.saturating_add(self.elapsed_us)
    }

    /// The result as one JSON line (no newline), starting with [`MARK`].
    pub fn to_json_line(&self) -> Result<String, ShardError> {
        let encode = |h: &Histogram<u64>, what: &str| -> Result<Encoded, ShardError> {
            Ok(Encoded {
                encoding: HISTOGRAM_ENCODING.into(),
                count: h.len(),
                data: encode_histogram(h).map_err(|problem| ShardError::Result {
                    origin: format!("the result of shard {}", self.shard()),
                    problem: format!("{what}: {problem}"),
                    hint: "this is a bug of edgesim load".into(),
                })?,
            })
        };
        let wire = Wire {
            format: FORMAT.into(),
            version: VERSION,
            shard: self.plan,
            run_id: self.run_id.clone(),
            target: self.target.clone(),
            method: self.method.clone(),
            connections: self.connections,
            window: self.window,
            mode: self.mode.clone(),
            target_rate: self.target_rate,
            client_certificate: self.client_certificate,
            timing: Timing {
                start: rfc3339(self.start_unix_us),
                end: rfc3339(self.end_unix_us()),
                start_unix_us: self.start_unix_us,
                end_unix_us: self.end_unix_us(),
                elapsed_secs: self.elapsed_us as f64 / 1e6,
            },
            attempted: self.attempted,
            sent: self.sent,
            answered: self.answered,
            provisional: self.provisional,
            responses: self.responses.clone(),
            diagnostics: self.diagnostics.clone(),
            retry_after: self.retry_after.clone(),
            errors: self.errors.clone(),
            handshakes: self.handshakes,
            latency_us: encode(&self.latency_us, "latency_us")?,
            handshake_us: encode(&self.handshake_us, "handshake_us")?,
        };
        serde_json::to_string(&wire).map_err(|e| ShardError::Result {
            origin: format!("the result of shard {}", self.shard()),
            problem: e.to_string(),
            hint: "this is a bug of edgesim load".into(),
        })
    }

    /// Writes the result line to `path`, whole or not at all (a `.partial` file renamed into place), so a
    /// merge never reads half a result.
    pub fn write(&self, path: &Path) -> Result<(), ShardError> {
        let line = self.to_json_line()? + "\n";
        let io = |cause| ShardError::Io {
            path: path.to_owned(),
            action: "cannot write the load result",
            cause,
        };
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        std::fs::write(&partial, line).map_err(io)?;
        std::fs::rename(&partial, path).map_err(io)
    }

    /// One result from its JSON text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ShardError> {
        let bad = |problem: String, hint: &str| ShardError::Result {
            origin: origin.to_owned(),
            problem,
            hint: hint.to_owned(),
        };
        let not_ours =
            "give the file written by `edgesim load --out`, or a log holding its lines (`--out -`)";
        let json = |e: serde_json::Error| {
            bad(
                format!(
                    "not a load result: line {}, column {}: {e}",
                    e.line(),
                    e.column()
                ),
                not_ours,
            )
        };
        let head: Head = serde_json::from_str(text).map_err(json)?;
        match head.format.as_ref().and_then(|f| f.as_str()) {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(bad(
                    format!("its format is `{other}`, not `{FORMAT}`"),
                    not_ours,
                ));
            }
            None => return Err(bad(format!("no \"format\": \"{FORMAT}\""), not_ours)),
        }
        if head.version.as_ref().and_then(|v| v.as_u64()) != Some(u64::from(VERSION)) {
            let v = head.version.map_or("none".to_owned(), |v| v.to_string());
            return Err(bad(
                format!("result format version {v}; this edgesim reads version {VERSION}"),
                "merge with the edgesim version that wrote the results",
            ));
        }
        let w: Wire = serde_json::from_str(text).map_err(json)?;
        let damaged = "the file is damaged: write it again with `edgesim load --out`";
        Shard::new(w.shard.index, w.shard.count)
            .map_err(|e| bad(format!("shard: {e}"), damaged))?;
        if w.timing.end_unix_us < w.timing.start_unix_us {
            return Err(bad(
                "timing: end_unix_us before start_unix_us".into(),
                damaged,
            ));
        }
        let decode = |e: &Encoded, what: &str| -> Result<Histogram<u64>, ShardError> {
            if e.encoding != HISTOGRAM_ENCODING {
                return Err(bad(
                    format!(
                        "{what}.encoding is `{}`, not `{HISTOGRAM_ENCODING}`",
                        e.encoding
                    ),
                    not_ours,
                ));
            }
            let h = decode_histogram(&e.data).map_err(|p| bad(format!("{what}: {p}"), damaged))?;
            if h.len() != e.count {
                return Err(bad(
                    format!(
                        "{what}: count {} but the histogram holds {}",
                        e.count,
                        h.len()
                    ),
                    damaged,
                ));
            }
            Ok(h)
        };
        Ok(ShardResult {
            latency_us: decode(&w.latency_us, "latency_us")?,
            handshake_us: decode(&w.handshake_us, "handshake_us")?,
            plan: w.shard,
            run_id: w.run_id,
            target: w.target,
            method: w.method,
            connections: w.connections,
            window: w.window,
            mode: w.mode,
            target_rate: w.target_rate,
            client_certificate: w.client_certificate,
            start_unix_us: w.timing.start_unix_us,
            elapsed_us: w.timing.end_unix_us - w.timing.start_unix_us,
            attempted: w.attempted,
            sent: w.sent,
            answered: w.answered,
            provisional: w.provisional,
            responses: w.responses,
            diagnostics: w.diagnostics,
            retry_after: w.retry_after,
            errors: w.errors,
            handshakes: w.handshakes,
        })
    }
}

/// The results in `text`, each with its origin: every line holding [`MARK`] (a result file, several
/// concatenated, a log), or else the whole text as one JSON object. `name` is the file's.
pub fn parse_results(text: &str, name: &str) -> Result<Vec<(String, ShardResult)>, ShardError> {
    let found: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter_map(|(i, l)| l.find(MARK).map(|at| (i + 1, &l[at..])))
        .collect();
    if found.is_empty() {
        return Ok(vec![(name.to_owned(), ShardResult::parse(text, name)?)]);
    }
    let alone = found.len() == 1 && text.trim() == found[0].1.trim();
    found
        .into_iter()
        .map(|(line, json)| {
            let origin = if alone {
                name.to_owned()
            } else {
                format!("{name} line {line}")
            };
            let r = ShardResult::parse(json, &origin)?;
            Ok((origin, r))
        })
        .collect()
}

/// The results in the file at `path` (see [`parse_results`]), read with a size bound.
pub fn read_results(path: &Path) -> Result<Vec<(String, ShardResult)>, ShardError> {
    let io = |cause| ShardError::Io {
        path: path.to_owned(),
        action: "cannot read the load result",
        cause,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(io)?;
    let name = path.display().to_string();
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(ShardError::Result {
            origin: name,
            problem: format!("larger than {} MiB", MAX_FILE_BYTES >> 20),
            hint: "give the result files themselves (or the lines holding them), not a larger log"
                .into(),
        });
    }
    parse_results(&text, &name)
}

/// `h` as HdrHistogram V2 + DEFLATE in standard base64.
pub fn encode_histogram(h: &Histogram<u64>) -> Result<String, String> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .map_err(|e| format!("cannot encode the histogram: {e}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(x)
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

/// A histogram from its base64 HdrHistogram V2 + DEFLATE (or plain V2) text, every size bounded and the V2
/// header checked before the decoder allocates anything.
pub fn decode_histogram(text: &str) -> Result<Histogram<u64>, String> {
    if text.len() > MAX_HISTOGRAM_TEXT {
        return Err(format!(
            "{} bytes of histogram, more than {} MiB",
            text.len(),
            MAX_HISTOGRAM_TEXT >> 20
        ));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("not base64 ({e})"))?;
    if bytes.len() < 8 {
        return Err("too short for an HdrHistogram".into());
    }
    let v2 = match be_u32(&bytes, 0) {
        V2_DEFLATE_COOKIE => {
            let len = be_u32(&bytes, 4) as usize;
            let deflated = bytes
                .get(8..8 + len)
                .ok_or("the compressed length is longer than the data")?;
            let mut v2 = Vec::new();
            flate2::read::ZlibDecoder::new(deflated)
                .take(MAX_V2_BYTES + 1)
                .read_to_end(&mut v2)
                .map_err(|e| format!("DEFLATE data that does not inflate ({e})"))?;
            if v2.len() as u64 > MAX_V2_BYTES {
                return Err(format!("inflates to more than {} MiB", MAX_V2_BYTES >> 20));
            }
            v2
        }
        V2_COOKIE => bytes,
        other => {
            return Err(format!(
                "cookie {other:#010x} is not HdrHistogram V2 + DEFLATE ({V2_DEFLATE_COOKIE:#010x})"
            ));
        }
    };
    if v2.len() < V2_HEADER || be_u32(&v2, 0) != V2_COOKIE {
        return Err("no HdrHistogram V2 header inside".into());
    }
    let payload = be_u32(&v2, 4) as usize;
    let digits = be_u32(&v2, 12);
    let (low, high) = (be_u64(&v2, 16), be_u64(&v2, 24));
    if payload != v2.len() - V2_HEADER {
        return Err(format!(
            "the V2 header announces {payload} bytes of counts, {} follow",
            v2.len() - V2_HEADER
        ));
    }
    if digits > MAX_SIGFIG || low == 0 || high < low.saturating_mul(2) {
        return Err(format!(
            "unusable bounds: {digits} significant digits (at most {MAX_SIGFIG}), lowest {low}, highest {high}"
        ));
    }
    Deserializer::new()
        .deserialize(&mut v2.as_slice())
        .map_err(|e| format!("not a valid HdrHistogram V2 ({e})"))
}

#[cfg(test)]
mod tests {
    use super::super::{RequestTemplate, Stop};
    use super::*;
    use rustls_pki_types::ServerName;

    fn spec() -> LoadSpec {
        let mut s = LoadSpec::new(
            "127.0.0.1:5061".parse().unwrap(),
            ServerName::try_from("sip.skype.lab").unwrap(),
            crate::pki::client_config(None).unwrap(),
            RequestTemplate::new("INVITE", "sip:a@b", "sip:c@d"),
        );
        s.connections = 5;
        s.window = 8;
        s.rate = Some(600.0);
        s.stop = Stop::Requests(301);
        s.into_shard(Shard::new(1, 3).unwrap()).unwrap()
    }

    fn result() -> ShardResult {
        let mut stats = Stats::new();
        stats.sent = 100;
        stats.not_sent = 1;
        for us in [150u64, 900, 1_250, 1_251, 40_000, 3_000_000] {
            stats.answer("504", Some("1009"), Duration::from_micros(us));
        }
        stats.answer("503", None, Duration::from_millis(2));
        stats.retry_after(Some("1"));
        stats.error("timeout: no answer");
        stats.handshake(Duration::from_micros(2_345));
        let started = UNIX_EPOCH + Duration::from_micros(1_764_000_000_123_456);
        ShardResult::from_stats(
            &spec(),
            "s1x8a3f9c2d",
            &stats,
            started,
            Duration::from_micros(512_345),
        )
    }

    #[test]
    fn a_result_round_trips_through_its_line() {
        let r = result();
        let line = r.to_json_line().unwrap();
        assert!(
            line.starts_with(
                r#"{"format":"edgesim-load-result","version":1,"shard":{"index":1,"count":3,"connections_total":5,"requests_total":301,"rate_total":600.0,"duration_secs":null},"run_id":"s1x8a3f9c2d","#
            ),
            "{line}"
        );
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v["timing"],
            serde_json::json!({"start": "2025-11-24T16:00:00.123456Z", "end": "2025-11-24T16:00:00.635801Z",
                "start_unix_us": 1_764_000_000_123_456u64, "end_unix_us": 1_764_000_000_635_801u64,
                "elapsed_secs": 0.512345})
        );
        assert_eq!(v["latency_us"]["count"], 7);
        assert_eq!(v["latency_us"]["encoding"], HISTOGRAM_ENCODING);
        // The text of a histogram in an HdrHistogram interval log: V2 + DEFLATE, base64.
        assert!(
            v["latency_us"]["data"]
                .as_str()
                .unwrap()
                .starts_with("HISTFAAA")
        );
        assert_eq!(
            (v["connections"].clone(), v["target_rate"].clone()),
            (2.into(), 200.0.into())
        );

        let back = ShardResult::parse(&line, "f.json").unwrap();
        assert_eq!(back.latency_us, r.latency_us);
        assert_eq!(back.handshake_us, r.handshake_us);
        assert_eq!(back.latency_us.value_at_quantile(0.5), 1_251);
        assert_eq!(back.latency_us.max(), r.latency_us.max());
        assert_eq!(back.plan, r.plan);
        assert_eq!(
            (back.start_unix_us, back.elapsed_us, back.end_unix_us()),
            (r.start_unix_us, 512_345, r.end_unix_us())
        );
        assert_eq!(
            (back.attempted, back.sent, back.answered, back.handshakes),
            (101, 100, 7, 1)
        );
        assert_eq!(back.responses, r.responses);
        assert_eq!(back.diagnostics.get("504 1009"), Some(&6));
        assert_eq!(back.retry_after, r.retry_after);
        assert_eq!(back.errors, r.errors);
        assert_eq!(
            (
                back.run_id.as_str(),
                back.method.as_str(),
                back.mode.as_str()
            ),
            ("s1x8a3f9c2d", "INVITE", "persistent")
        );
        // Written again, it is the same line.
        assert_eq!(back.to_json_line().unwrap(), line);
    }

    #[test]
    fn a_file_is_written_whole_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shard-1-of-3.json");
        result().write(&path).unwrap();
        assert!(!dir.path().join("shard-1-of-3.json.partial").exists());
        let got = read_results(&path).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, path.display().to_string());
        assert_eq!(got[0].1.latency_us, result().latency_us);
        let e = read_results(&dir.path().join("none.json")).unwrap_err();
        assert!(
            e.to_string().ends_with(
                "none.json: cannot read the load result: No such file or directory (os error 2)"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_log_holding_several_results_gives_each_with_its_line() {
        let line = result().to_json_line().unwrap();
        let log = format!(
            "edgesim load: shard 1/3\n{line}\n  requests    attempted 101\n[pod/load-2] {line}\n"
        );
        let got = parse_results(&log, "pods.log").unwrap();
        let origins: Vec<&str> = got.iter().map(|(o, _)| o.as_str()).collect();
        assert_eq!(origins, ["pods.log line 2", "pods.log line 4"]);
        // A result pretty-printed by another tool is one document.
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let pretty = serde_json::to_string_pretty(&v).unwrap();
        let got = parse_results(&pretty, "pretty.json").unwrap();
        assert_eq!(got[0].0, "pretty.json");
        assert_eq!(got[0].1.latency_us, result().latency_us);
    }

    fn problem(text: &str) -> String {
        ShardResult::parse(text, "f.json").unwrap_err().to_string()
    }

    #[test]
    fn another_format_or_version_or_a_damaged_result_is_named() {
        let line = result().to_json_line().unwrap();
        assert_eq!(
            problem(&line.replace("\"version\":1", "\"version\":2")),
            "f.json: result format version 2; this edgesim reads version 1\n  hint: merge with the edgesim \
             version that wrote the results"
        );
        assert!(problem(r#"{"schema":1,"command":"load"}"#).starts_with(
            "f.json: no \"format\": \"edgesim-load-result\"\n  hint: give the file written by"
        ),);
        assert!(problem(r#"{"format":"x"}"#).starts_with("f.json: its format is `x`"));
        assert!(
            problem("{\n\"format\": ").starts_with("f.json: not a load result: line 2, column")
        );
        assert!(
            problem(&line.replace("\"count\":7", "\"count\":8")).starts_with(
                "f.json: latency_us: count 8 but the histogram holds 7\n  hint: the file is damaged"
            ),
        );
        assert!(
            problem(&line.replace("\"index\":1", "\"index\":3"))
                .starts_with("f.json: shard: --shard 3/3: the shard index must be in 0..2"),
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let data = v["handshake_us"]["data"].as_str().unwrap();
        assert!(
            problem(&line.replace(data, "HISTFAAA!!"))
                .starts_with("f.json: handshake_us: not base64"),
        );
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// A V2 header with these fields and `counts` after it.
    fn v2(payload_len: u32, digits: u32, low: u64, high: u64, counts: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(V2_COOKIE.to_be_bytes());
        b.extend(payload_len.to_be_bytes());
        b.extend(0u32.to_be_bytes());
        b.extend(digits.to_be_bytes());
        b.extend(low.to_be_bytes());
        b.extend(high.to_be_bytes());
        b.extend(1.0f64.to_be_bytes());
        b.extend(counts);
        b
    }

    fn deflated(inner: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(inner).unwrap();
        let z = z.finish().unwrap();
        let mut b = Vec::new();
        b.extend(V2_DEFLATE_COOKIE.to_be_bytes());
        b.extend((z.len() as u32).to_be_bytes());
        b.extend(z);
        b
    }

    #[test]
    fn hostile_histograms_are_refused_before_they_are_decoded() {
        // A counts length of 4 GiB, which the decoder would allocate.
        let e = decode_histogram(&b64(&deflated(&v2(u32::MAX, 3, 1, 1000, &[2])))).unwrap_err();
        assert_eq!(
            e,
            "the V2 header announces 4294967295 bytes of counts, 1 follow"
        );
        let e = decode_histogram(&b64(&deflated(&v2(0, 9, 1, 1000, &[])))).unwrap_err();
        assert!(
            e.starts_with("unusable bounds: 9 significant digits"),
            "{e}"
        );
        let e = decode_histogram(&b64(&deflated(&v2(0, 3, 0, 1000, &[])))).unwrap_err();
        assert!(e.starts_with("unusable bounds"), "{e}");
        // A zip bomb: 17 MiB of zeros.
        let e = decode_histogram(&b64(&deflated(&vec![0; 17 << 20]))).unwrap_err();
        assert_eq!(e, "inflates to more than 16 MiB");
        let e = decode_histogram(&b64(&[0x1c, 0x84, 0x93, 0x14, 0, 0, 1, 0, 1])).unwrap_err();
        assert_eq!(e, "the compressed length is longer than the data");
        let e = decode_histogram(&b64(b"\x1c\x84\x93\x14\0\0\0\x02ab")).unwrap_err();
        assert!(e.starts_with("DEFLATE data that does not inflate"), "{e}");
        let e = decode_histogram(&b64(b"\x1c\x84\x93\x12\0\0\0\0")).unwrap_err();
        assert_eq!(
            e,
            "cookie 0x1c849312 is not HdrHistogram V2 + DEFLATE (0x1c849314)"
        );
        assert!(
            decode_histogram(&"A".repeat(5 << 20))
                .unwrap_err()
                .starts_with("5242880 bytes of histogram, more than 4 MiB")
        );
        // A well-formed plain V2 of other bounds is read: one zero count (zig-zag -1), then one count of 1.
        let h = decode_histogram(&b64(&v2(2, 2, 1, 1000, &[1, 2]))).unwrap();
        assert_eq!((h.len(), h.max(), h.sigfig()), (1, 1, 2));
    }
}

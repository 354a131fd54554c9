//! `edgesim load --shard I/N --out` as separate processes of the real binary against one Edge on loopback
//! (`edge::serve` with the embedded DNS server and an events file), then `edgesim load merge`.
//!
//! What proves "exact": each shard also writes its raw latency samples (the hidden `--raw-latencies`). The
//! test decodes every shard's histogram itself (base64, then the hdrhistogram crate's own decoder — not
//! edgesim's) and finds it equal, bucket for bucket, to a histogram built from that shard's samples; then it
//! pools the three shards' samples and finds the merged p50/p90/p99/max equal to the pooled histogram's,
//! and each the histogram value of the true order statistic of the pooled samples (the sample of rank
//! ⌈q·n⌉). Counts are checked against the Edge's own decision events: one event per request sent, Call-IDs
//! unique and each in exactly one shard's space, statuses and ms-diagnostics codes as the Edge decided.
#![allow(clippy::unwrap_used)]

#[path = "common/edge_lab.rs"]
mod edge_lab;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use base64::Engine;
use hdrhistogram::Histogram;
use serde_json::Value;

/// The binary with a clean environment (no Indexed Job variables unless a test sets them).
fn edgesim() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgesim"));
    c.env_remove("RUST_LOG")
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("JOB_COMPLETIONS");
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(o: &Output) -> String {
    format!("stdout:\n{}\nstderr:\n{}", text(&o.stdout), text(&o.stderr))
}

/// The arguments of a load run against `lab` sending `method` from `from`.
fn load_args(lab: &edge_lab::Lab, ca_dir: &Path, method: &str, from: &str) -> Vec<String> {
    [
        "load",
        "--target",
        &lab.addr.to_string(),
        "--server-name",
        "sip.skype.lab",
        "--method",
        method,
        "--from",
        from,
        "--lab-cert-cn",
        "vcse.steven.lab",
        "--ca-dir",
        &ca_dir.display().to_string(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn spawn(mut c: Command) -> Child {
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn wait_all(children: Vec<Child>) -> Vec<Output> {
    tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect()
    })
    .await
    .unwrap()
}

async fn run(mut c: Command) -> Output {
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

/// A histogram of the result file, decoded here: standard base64, then hdrhistogram's V2 + DEFLATE decoder.
fn decode(h: &Value) -> Histogram<u64> {
    assert_eq!(h["encoding"], "hdrhistogram-v2-deflate-base64");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(h["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(&bytes[..4], [0x1c, 0x84, 0x93, 0x14], "V2 + DEFLATE cookie");
    let decoded: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .unwrap();
    assert_eq!(decoded.len(), h["count"].as_u64().unwrap());
    decoded
}

fn histogram_like(model: &Histogram<u64>, samples: &[u64]) -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(model.low(), model.high(), model.sigfig()).unwrap();
    for s in samples {
        h.record(*s).unwrap();
    }
    h
}

/// A latency of the merged JSON (ms, 3 decimals of µs) back in µs.
fn us(v: &Value) -> u64 {
    (v.as_f64().unwrap() * 1000.0).round() as u64
}

fn counts(v: &Value) -> BTreeMap<String, u64> {
    serde_json::from_value(v.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_merge_into_the_edges_decisions_and_the_pooled_percentiles() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let events_file = events.clone();
    // 20 requests a second per connection: the shards' connections get 504s (the seed's SRV mismatch, 1009)
    // and the Edge's 503s, in proportions that depend on timing; the checks hold whatever they are.
    let lab = edge_lab::short_limits_lab(move |c| {
        c.limits.max_requests_per_sec = 20;
        c.events_file = Some(events_file);
    })
    .await;
    let ca_dir = dir.path().join("ca");
    std::fs::create_dir_all(&ca_dir).unwrap();
    lab.ca.save(&ca_dir).unwrap();
    let results = dir.path().join("results");
    let raw = |i: usize| dir.path().join(format!("raw-{i}.txt"));

    let mut children = Vec::new();
    for i in 0..3 {
        let mut c = edgesim();
        c.args(load_args(
            &lab,
            &ca_dir,
            "INVITE",
            "sip:2000@acano.steven.lab",
        ));
        c.args(["--connections", "5", "--requests", "301", "--rate", "600"]);
        c.args(["--window", "4", "--out", &format!("{}/", results.display())]);
        c.arg("--raw-latencies").arg(raw(i));
        if i == 2 {
            // The last shard learns who it is as a pod of a Kubernetes Indexed Job does.
            c.env("JOB_COMPLETION_INDEX", "2")
                .env("JOB_COMPLETIONS", "3");
        } else {
            c.args(["--shard", &format!("{i}/3")]);
        }
        children.push(spawn(c));
    }
    let outputs = wait_all(children).await;
    lab.stop().await;
    for (i, o) in outputs.iter().enumerate() {
        assert_eq!(o.status.code(), Some(0), "shard {i}: {}", show(o));
        let stderr = text(&o.stderr);
        assert!(
            stderr.contains(&format!(
                "edgesim load: shard {i}/3 (of shards 0..2): {} of 5 connections, {} of 301 requests, 200/s of \
                 600/s",
                [2, 2, 1][i],
                [101, 100, 100][i]
            )),
            "{stderr}"
        );
    }

    // Each shard's result: its share, and a histogram that is exactly that of its samples.
    let mut shard = Vec::new();
    let mut pooled_samples = Vec::new();
    for i in 0..3 {
        let path = results.join(format!("shard-{i}-of-3.json"));
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            (v["format"].clone(), v["version"].clone()),
            ("edgesim-load-result".into(), 1.into())
        );
        assert_eq!(v["shard"]["index"], i);
        assert_eq!(v["shard"]["count"], 3);
        assert_eq!(v["connections"], [2, 2, 1][i]);
        assert_eq!(v["attempted"], [101, 100, 100][i]);
        assert_eq!(v["target_rate"], 200.0);
        let samples: Vec<u64> = std::fs::read_to_string(raw(i))
            .unwrap()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        assert_eq!(samples.len() as u64, v["answered"].as_u64().unwrap());
        let decoded = decode(&v["latency_us"]);
        assert_eq!(decoded, histogram_like(&decoded, &samples), "shard {i}");
        pooled_samples.extend(samples);
        shard.push(v);
    }
    let run_ids: Vec<String> = shard
        .iter()
        .map(|v| v["run_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        run_ids.iter().collect::<BTreeSet<_>>().len(),
        3,
        "{run_ids:?}"
    );

    // The merge, as JSON.
    let files: Vec<String> = (0..3)
        .map(|i| {
            results
                .join(format!("shard-{i}-of-3.json"))
                .display()
                .to_string()
        })
        .collect();
    let mut c = edgesim();
    c.args(["load", "merge", "--json"]).args(&files);
    let o = run(c).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let m: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (m["schema"].clone(), m["command"].clone()),
        (1.into(), "load merge".into())
    );
    // The Edge's 503s are explained as in a single run: a WARN `rate-limit` line.
    let limited = m["responses"].get("503").is_some();
    assert_eq!(m["status"], if limited { "WARN" } else { "PASS" }, "{m}");
    assert_eq!(
        (
            m["attempted"].clone(),
            m["sent"].clone(),
            m["answered"].clone()
        ),
        (301.into(), 301.into(), 301.into())
    );
    assert_eq!(m["connections"], 5);
    assert_eq!(m["target_rate"], 600.0);
    assert_eq!(m["handshakes"], 5);
    assert_eq!(m["errors"], serde_json::json!({}));
    assert_eq!(m["shards"]["merged"], serde_json::json!([0, 1, 2]));
    assert_eq!(m["shards"]["missing"], serde_json::json!([]));
    assert_eq!(m["lines"][0]["rule"], "shards");
    assert_eq!(m["lines"][1]["rule"], "requests");
    // docs/json.md shows this document with these keys.
    let doc = json_blocks()
        .into_iter()
        .find(|b| b.contains("\"command\": \"load merge\""))
        .unwrap();
    let doc: Value = serde_json::from_str(&doc).unwrap();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&doc), keys(&m));
    assert_eq!(keys(&doc["shards"]), keys(&m["shards"]));

    // The counts are the Edge's decisions.
    let events: Vec<Value> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len() as u64, m["sent"].as_u64().unwrap());
    assert!(events.iter().all(|e| e["method"] == "INVITE"));
    let call_ids: BTreeSet<&str> = events
        .iter()
        .map(|e| e["call_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        call_ids.len(),
        events.len(),
        "every request has a Call-ID of its own"
    );
    for (i, id) in run_ids.iter().enumerate() {
        let prefix = format!("{id}-");
        let mine = call_ids.iter().filter(|c| c.starts_with(&prefix)).count() as u64;
        assert_eq!(mine, shard[i]["sent"].as_u64().unwrap(), "shard {i} ({id})");
    }
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_diag: BTreeMap<String, u64> = BTreeMap::new();
    for e in &events {
        let status = e["status"].as_u64().unwrap().to_string();
        if let Some(code) = e["ms_diagnostics_code"].as_u64() {
            *by_diag.entry(format!("{status} {code}")).or_default() += 1;
        }
        *by_status.entry(status).or_default() += 1;
    }
    assert_eq!(counts(&m["responses"]), by_status);
    assert_eq!(counts(&m["diagnostics"]), by_diag);
    assert!(
        by_diag.get("504 1009").is_some_and(|n| *n > 0),
        "{by_diag:?}"
    );

    // The merged percentiles are the pooled samples'.
    let pooled = histogram_like(&decode(&shard[0]["latency_us"]), &pooled_samples);
    pooled_samples.sort_unstable();
    let n = pooled_samples.len();
    assert_eq!(n, 301);
    let l = &m["latency_ms"];
    for (key, q) in [("p50", 0.5), ("p90", 0.9), ("p99", 0.99)] {
        assert_eq!(us(&l[key]), pooled.value_at_quantile(q), "{key}");
        let rank = ((q * n as f64).ceil() as usize).max(1);
        assert_eq!(
            us(&l[key]),
            pooled.highest_equivalent(pooled_samples[rank - 1]),
            "{key}: the sample of rank {rank} of {n}"
        );
    }
    assert_eq!(
        us(&l["max"]),
        pooled.highest_equivalent(pooled_samples[n - 1])
    );
    assert!((l["mean"].as_f64().unwrap() - pooled.mean() / 1000.0).abs() < 1e-9);

    // The same merge for people, in the layout of one run.
    let mut c = edgesim();
    c.args(["load", "merge"]).args(&files);
    let o = run(c).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with(&format!(
            "edgesim load → {} (INVITE, 5 connection(s), window 4, persistent, 600/s)",
            m["target"].as_str().unwrap()
        )),
        "{out}"
    );
    assert!(
        lines[1].starts_with("  shards      3 of 3 shards merged (0–2), started within "),
        "{out}"
    );
    assert_eq!(
        lines[2],
        "  requests    attempted 301, sent 301, answered 301, provisional 0, unanswered 0"
    );
    assert!(
        out.contains(&format!(
            "  latency     p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms\n",
            l["p50"].as_f64().unwrap(),
            l["p90"].as_f64().unwrap(),
            l["p99"].as_f64().unwrap(),
            l["max"].as_f64().unwrap()
        )),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_on_stdout_merge_from_a_log_and_a_missing_shard_fails_the_merge() {
    let lab = edge_lab::short_limits_lab(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    std::fs::create_dir_all(&ca_dir).unwrap();
    lab.ca.save(&ca_dir).unwrap();
    let mut children = Vec::new();
    for i in 0..2 {
        let mut c = edgesim();
        c.args(load_args(&lab, &ca_dir, "OPTIONS", "sip:vcse@steven.lab"));
        c.args(["--connections", "2", "--requests", "21", "--window", "1"]);
        c.args(["--shard", &format!("{i}/2"), "--out", "-"]);
        children.push(spawn(c));
    }
    let outputs = wait_all(children).await;
    lab.stop().await;
    // What `kubectl logs` gives: each pod's stderr (its summary) and stdout (its result line) together.
    let mut log = String::new();
    for (i, o) in outputs.iter().enumerate() {
        assert_eq!(o.status.code(), Some(0), "shard {i}: {}", show(o));
        let stdout = text(&o.stdout);
        assert_eq!(
            stdout.lines().count(),
            1,
            "only the result on stdout: {stdout}"
        );
        assert!(
            stdout.starts_with("{\"format\":\"edgesim-load-result\",\"version\":1,"),
            "{stdout}"
        );
        let stderr = text(&o.stderr);
        assert!(
            stderr.contains("  requests    attempted "),
            "the summary on stderr: {stderr}"
        );
        log.push_str(&stderr);
        log.push_str(&stdout);
    }
    let log_file = dir.path().join("pods.log");
    std::fs::write(&log_file, &log).unwrap();
    let mut c = edgesim();
    c.args(["load", "merge", "--json"]).arg(&log_file);
    let o = run(c).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let m: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (m["attempted"].clone(), m["answered"].clone()),
        (21.into(), 21.into())
    );
    assert_eq!(
        counts(&m["responses"]),
        BTreeMap::from([("200".to_owned(), 21)])
    );

    // Only shard 1's result: the merge says which shard is missing and exits 1.
    let only = dir.path().join("shard-1.json");
    std::fs::write(&only, text(&outputs[1].stdout)).unwrap();
    let mut c = edgesim();
    c.args(["load", "merge"]).arg(&only);
    let o = run(c).await;
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        text(&o.stdout).contains(
            "  shards      1 of 2 shards merged (1), missing 0, started within 0.000 s\n"
        ),
        "{}",
        show(&o)
    );

    // The same result twice is not a run.
    let mut c = edgesim();
    c.args(["load", "merge", "--json"]).arg(&only).arg(&only);
    let o = run(c).await;
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let e: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(e["status"], "ERROR");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("shard 1/2 again (also in "),
        "{e}"
    );
}

#[test]
fn a_shard_out_of_range_and_a_half_set_indexed_job_are_usage_errors() {
    let o = edgesim()
        .args(["load", "--target", "127.0.0.1:9", "--shard", "3/3"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("--shard 3/3: the shard index must be in 0..2"),
        "{}",
        show(&o)
    );
    let o = edgesim()
        .args(["load", "--target", "127.0.0.1:9", "--connections", "3"])
        .env("JOB_COMPLETION_INDEX", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains(
            "JOB_COMPLETION_INDEX=1 (a Kubernetes Indexed Job) but JOB_COMPLETIONS is not set"
        ),
        "{}",
        show(&o)
    );
    let o = edgesim()
        .args([
            "load",
            "--target",
            "127.0.0.1:9",
            "--shard",
            "0/4",
            "--connections",
            "3",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("--connections 3 cannot be split over 4 shards"),
        "{}",
        show(&o)
    );
    let help = edgesim()
        .args(["load", "merge", "--help"])
        .output()
        .unwrap();
    assert!(text(&help.stdout).contains("Exit codes: 0 every request of every shard answered"));
}

/// The ```json blocks of docs/json.md.
fn json_blocks() -> Vec<String> {
    let md = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json.md"))
        .unwrap();
    md.split("```json\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().to_owned())
        .collect()
}

#[test]
fn the_documented_result_file_is_one_load_merge_reads() {
    let example = json_blocks()
        .into_iter()
        .find(|b| b.starts_with("{\"format\":\"edgesim-load-result\""))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shard-1-of-3.json");
    std::fs::write(&file, example).unwrap();
    let o = edgesim()
        .args(["load", "merge", "--json"])
        .arg(&file)
        .output()
        .unwrap();
    // One shard of three: merged, and the run is partial.
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let m: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["shards"]["missing"], serde_json::json!([0, 2]));
    assert_eq!(
        (m["answered"].clone(), m["connections"].clone()),
        (1000.into(), 2.into())
    );
    assert_eq!(m["latency_ms"]["p50"], 1.918);
    assert_eq!(m["lines"][0]["status"], "FAIL");
}

/// What `deploy/k8s/load-job.yaml` says: the container's `args`, `completions`, `parallelism` and the
/// `JOB_COMPLETIONS` value (read line by line: the file keeps one item a line).
struct Job {
    args: Vec<String>,
    completions: u32,
    parallelism: u32,
    job_completions: u32,
}

fn job() -> Job {
    let yaml = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/k8s/load-job.yaml"),
    )
    .unwrap();
    let value = |line: &str| -> String {
        let v = line.split_once(':').unwrap().1;
        v.split(" #")
            .next()
            .unwrap()
            .trim()
            .trim_matches('"')
            .to_owned()
    };
    let lines: Vec<&str> = yaml.lines().map(str::trim).collect();
    let find = |key: &str| -> String {
        value(
            lines
                .iter()
                .find(|l| l.starts_with(&format!("{key}:")))
                .unwrap_or_else(|| panic!("no {key}")),
        )
    };
    assert_eq!(find("kind"), "Job");
    assert_eq!(find("completionMode"), "Indexed");
    assert_eq!(find("restartPolicy"), "Never");
    assert_eq!(find("command"), "[\"/usr/bin/edgesim\"]");
    let at = lines.iter().position(|l| *l == "args:").unwrap();
    let args = lines[at + 1..]
        .iter()
        .map_while(|l| l.strip_prefix("- "))
        .map(|a| a.split(" #").next().unwrap().trim().to_owned())
        .collect();
    let env = lines
        .iter()
        .position(|l| *l == "- name: JOB_COMPLETIONS")
        .unwrap();
    Job {
        args,
        completions: find("completions").parse().unwrap(),
        parallelism: find("parallelism").parse().unwrap(),
        job_completions: value(lines[env + 1]).parse().unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_indexed_job_runs_as_written_and_its_pods_logs_merge() {
    let job = job();
    assert_eq!(job.completions, job.parallelism);
    assert_eq!(job.completions, job.job_completions);
    assert_eq!(job.args[0], "load");
    assert!(job.args.contains(&"--out=-".to_owned()), "{:?}", job.args);
    let lab = edge_lab::short_limits_lab(|_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    std::fs::create_dir_all(&ca_dir).unwrap();
    lab.ca.save(&ca_dir).unwrap();
    // The placeholders filled in for loopback, and a run shortened to half a second at a tenth of the rate.
    let args: Vec<String> = job
        .args
        .iter()
        .map(|a| match a.split_once('=').map(|(k, _)| k) {
            Some("--target") => format!("--target={}", lab.addr),
            Some("--ca-dir") => format!("--ca-dir={}", ca_dir.display()),
            Some("--rate") => "--rate=300".to_owned(),
            Some("--duration") => "--duration=0.5".to_owned(),
            _ => a.clone(),
        })
        .collect();
    let children = (0..job.completions)
        .map(|i| {
            let mut c = edgesim();
            c.args(&args)
                .env("JOB_COMPLETION_INDEX", i.to_string())
                .env("JOB_COMPLETIONS", job.job_completions.to_string());
            spawn(c)
        })
        .collect();
    let outputs = wait_all(children).await;
    lab.stop().await;
    let mut log = String::new();
    for (i, o) in outputs.iter().enumerate() {
        assert_eq!(o.status.code(), Some(0), "pod {i}: {}", show(o));
        log.push_str(&text(&o.stderr));
        log.push_str(&text(&o.stdout));
    }
    let log_file = dir.path().join("load.log");
    std::fs::write(&log_file, &log).unwrap();
    let mut c = edgesim();
    c.args(["load", "merge", "--json"]).arg(&log_file);
    let o = run(c).await;
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let m: Value = serde_json::from_slice(&o.stdout).unwrap();
    let all: Vec<u32> = (0..job.completions).collect();
    assert_eq!(m["shards"]["merged"], serde_json::json!(all));
    assert_eq!(m["connections"], 30);
    assert_eq!(m["target_rate"], 300.0);
    assert_eq!(m["errors"], serde_json::json!({}));
    let answered = m["answered"].as_u64().unwrap();
    assert!(answered > 0 && m["attempted"] == answered, "{m}");
    assert_eq!(m["diagnostics"]["504 1009"], answered);
}

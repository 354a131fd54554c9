//! `edgesim load merge`: the results of a sharded run ([`super::ShardResult`]) made into one summary, in the
//! layout of a single run.
//!
//! Counts are summed. Histograms are added bucket by bucket, so the merged percentiles are those of the pooled
//! samples (to the histograms' precision, 3 significant digits as recorded) — never an average of the shards'
//! percentiles, which is not a percentile of anything. The rates are over the union of the shards' timing
//! windows, from the first start to the last end (the wall clocks of the machines, NTP-synchronised in a
//! Kubernetes cluster).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::report::{LoadReport, Outcome, Percentiles, histogram};
use super::result_file::ShardResult;
use super::shard::{ShardError, ShardPlan};
use crate::report::{Line, Status};

/// Which shards a merge holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShardsSummary {
    /// Shards in the run.
    pub count: u32,
    /// The shards merged, by index.
    pub merged: Vec<u32>,
    /// The shards of the run whose result was not given.
    pub missing: Vec<u32>,
    /// Each merged shard's run id (the start of its Call-IDs), in the order of `merged`.
    pub run_ids: Vec<String>,
    /// Seconds between the first shard's start and the last one's.
    pub start_spread_secs: f64,
}

/// The merged summary: a [`LoadReport`] of all the shards together, and which shards it holds.
#[derive(Debug, Clone, Serialize)]
pub struct MergedRun {
    /// The summary, as of one run.
    #[serde(flatten)]
    pub report: LoadReport,
    /// The shards merged and missing.
    pub shards: ShardsSummary,
}

fn sum_into(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

/// The distinct values of `f` over `results`, in order, joined with `, `.
fn distinct(results: &[(String, ShardResult)], f: impl Fn(&ShardResult) -> &str) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for (_, r) in results {
        if !seen.contains(&f(r)) {
            seen.push(f(r));
        }
    }
    seen.join(", ")
}

fn describe(p: &ShardPlan) -> String {
    let mut s = format!("--connections {}", p.connections_total);
    match (p.requests_total, p.duration_secs) {
        (Some(n), _) => write!(s, " --requests {n}"),
        (None, Some(d)) => write!(s, " --duration {d}"),
        (None, None) => Ok(()),
    }
    .unwrap_or_default();
    match p.rate_total {
        Some(r) => write!(s, " --rate {r}"),
        None => write!(s, " as fast as possible"),
    }
    .unwrap_or_default();
    s
}

/// Histograms added into one: the lowest of their lowest values, the most significant digits of theirs, a
/// highest value that grows as needed. Histograms of the same lowest value and precision (every edgesim
/// histogram) share their bucket boundaries whatever their highest value, so adding them is exact: the sum
/// is the histogram of the pooled samples.
pub fn merge_histograms(hs: &[&Histogram<u64>]) -> Result<Histogram<u64>, String> {
    let Some(low) = hs.iter().map(|h| h.low()).min() else {
        return Ok(histogram());
    };
    let sigfig = hs.iter().map(|h| h.sigfig()).max().unwrap_or(3);
    let high = hs
        .iter()
        .map(|h| h.high())
        .max()
        .unwrap_or(2)
        .max(low.saturating_mul(2));
    let mut sum = Histogram::new_with_bounds(low, high, sigfig)
        .map_err(|e| format!("cannot build the merged histogram: {e:?}"))?;
    sum.auto(true);
    for h in hs {
        sum.add(*h)
            .map_err(|e| format!("cannot add a histogram: {e:?}"))?;
    }
    Ok(sum)
}

/// Merges the results (each with the origin that names it in errors) of one sharded run. Errors when they are
/// not of one run: another number of shards, another whole run, a shard given twice.
pub fn merge(mut results: Vec<(String, ShardResult)>) -> Result<MergedRun, ShardError> {
    let (first_origin, first) = results.first().ok_or(ShardError::Empty)?;
    let (first_origin, plan) = (first_origin.clone(), first.plan);
    let mut seen: BTreeMap<u32, &str> = BTreeMap::new();
    for (origin, r) in &results {
        let mismatch = |problem: String, hint: &str| ShardError::Mismatch {
            origin: origin.clone(),
            problem,
            hint: hint.to_owned(),
        };
        if r.plan.count != plan.count {
            return Err(mismatch(
                format!(
                    "shard {} here, of {} shards in {first_origin}",
                    r.shard(),
                    plan.count
                ),
                "merge the results of one run: every shard is given the same --shard I/N count",
            ));
        }
        let whole = |p: &ShardPlan| {
            (
                p.connections_total,
                p.requests_total,
                p.rate_total.map(f64::to_bits),
                p.duration_secs.map(f64::to_bits),
            )
        };
        if whole(&r.plan) != whole(&plan) {
            return Err(mismatch(
                format!(
                    "the whole run is {} here, {} in {first_origin}",
                    describe(&r.plan),
                    describe(&plan)
                ),
                "merge the results of one run: every shard is started with the same --connections, \
                 --requests or --duration, and --rate",
            ));
        }
        if let Some(prev) = seen.insert(r.plan.index, origin) {
            return Err(mismatch(
                format!("shard {} again (also in {prev})", r.shard()),
                "give each shard's result once (a shard run twice, e.g. a pod retried, leaves two: keep the \
                 one that ran with the others)",
            ));
        }
    }
    results.sort_by_key(|(_, r)| r.plan.index);
    let merged: Vec<u32> = results.iter().map(|(_, r)| r.plan.index).collect();
    let present: BTreeSet<u32> = merged.iter().copied().collect();
    let missing: Vec<u32> = (0..plan.count).filter(|i| !present.contains(i)).collect();

    let rs: Vec<&ShardResult> = results.iter().map(|(_, r)| r).collect();
    let start = rs.iter().map(|r| r.start_unix_us).min().unwrap_or(0);
    let last_start = rs.iter().map(|r| r.start_unix_us).max().unwrap_or(0);
    let end = rs.iter().map(|r| r.end_unix_us()).max().unwrap_or(0);
    let secs = ((end - start) as f64 / 1e6).max(1e-9);
    let hist = |f: fn(&ShardResult) -> &Histogram<u64>| {
        let hs: Vec<&Histogram<u64>> = rs.iter().map(|r| f(r)).collect();
        merge_histograms(&hs).map_err(|problem| ShardError::Result {
            origin: first_origin.clone(),
            problem,
            hint: "the histograms' bounds cannot be combined".into(),
        })
    };
    let latency = hist(|r| &r.latency_us)?;
    let handshake = hist(|r| &r.handshake_us)?;
    let sum = |f: fn(&ShardResult) -> u64| rs.iter().map(|r| f(r)).sum::<u64>();
    let mut maps: [BTreeMap<String, u64>; 4] = Default::default();
    for r in &rs {
        sum_into(&mut maps[0], &r.responses);
        sum_into(&mut maps[1], &r.diagnostics);
        sum_into(&mut maps[2], &r.retry_after);
        sum_into(&mut maps[3], &r.errors);
    }
    let [responses, diagnostics, retry_after, errors] = maps;
    let target_rate = if missing.is_empty() {
        plan.rate_total
    } else {
        rs.iter().map(|r| r.target_rate).sum::<Option<f64>>()
    };
    let (answered, handshakes) = (sum(|r| r.answered), sum(|r| r.handshakes));
    let report = LoadReport {
        target: distinct(&results, |r| &r.target),
        method: distinct(&results, |r| &r.method),
        connections: rs.iter().map(|r| r.connections).sum(),
        window: rs.iter().map(|r| r.window).max().unwrap_or(1),
        mode: distinct(&results, |r| &r.mode),
        target_rate,
        elapsed_secs: secs,
        client_certificate: rs.iter().all(|r| r.client_certificate),
        attempted: sum(|r| r.attempted),
        sent: sum(|r| r.sent),
        answered,
        provisional: sum(|r| r.provisional),
        rate: answered as f64 / secs,
        responses,
        diagnostics,
        retry_after,
        latency_ms: Percentiles::of(&latency),
        handshakes,
        handshake_rate: handshakes as f64 / secs,
        handshake_ms: Percentiles::of(&handshake),
        errors,
    };
    Ok(MergedRun {
        report,
        shards: ShardsSummary {
            count: plan.count,
            merged,
            missing,
            run_ids: rs.iter().map(|r| r.run_id.clone()).collect(),
            start_spread_secs: (last_start - start) as f64 / 1e6,
        },
    })
}

/// `0–2, 5, 7–8`.
fn ranges(indexes: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < indexes.len() {
        let mut j = i;
        while j + 1 < indexes.len() && indexes[j + 1] == indexes[j] + 1 {
            j += 1;
        }
        out.push(if j > i {
            format!("{}–{}", indexes[i], indexes[j])
        } else {
            indexes[i].to_string()
        });
        i = j + 1;
    }
    out.join(", ")
}

impl MergedRun {
    /// What the `shards` line says.
    fn shards_detail(&self) -> String {
        let s = &self.shards;
        let mut d = format!(
            "{} of {} shards merged ({})",
            s.merged.len(),
            s.count,
            ranges(&s.merged)
        );
        if !s.missing.is_empty() {
            let _ = write!(d, ", missing {}", ranges(&s.missing));
        }
        let _ = write!(d, ", started within {:.3} s", s.start_spread_secs);
        d
    }

    /// The lines of `load merge --json`: `shards` (PASS when every shard of the run was merged, FAIL naming
    /// the missing ones), then the lines of a single run ([`LoadReport::lines`]).
    pub fn lines(&self) -> Vec<Line> {
        let detail = self.shards_detail();
        let shards = if self.shards.missing.is_empty() {
            Line::pass("shards", detail)
        } else {
            Line::new(
                Status::Fail,
                "shards",
                detail,
                Some(format!(
                    "merge the result of every shard: add shard {}'s (its --out file, or its pod's log with \
                     --out -)",
                    ranges(&self.shards.missing)
                )),
            )
        };
        std::iter::once(shards).chain(self.report.lines()).collect()
    }

    /// How the merged run ended; a missing shard makes a complete run partial.
    pub fn outcome(&self) -> Outcome {
        match self.report.outcome() {
            Outcome::Complete if !self.shards.missing.is_empty() => Outcome::Partial,
            o => o,
        }
    }

    /// The summary of a single run ([`LoadReport::render`]) with a `shards` line after its first.
    pub fn render(&self) -> String {
        let text = self.report.render();
        let (head, rest) = text.split_once('\n').unwrap_or((&text, ""));
        format!("{head}\n  shards      {}\n{rest}", self.shards_detail())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use rustls_pki_types::ServerName;

    use super::super::report::Stats;
    use super::super::{LoadSpec, RequestTemplate, Shard, Stop};
    use super::*;

    fn whole() -> LoadSpec {
        let mut s = LoadSpec::new(
            "127.0.0.1:5061".parse().unwrap(),
            ServerName::try_from("sip.skype.lab").unwrap(),
            crate::pki::client_config(None).unwrap(),
            RequestTemplate::new("INVITE", "sip:a@b", "sip:c@d"),
        );
        s.connections = 5;
        s.rate = Some(600.0);
        s.stop = Stop::Requests(9);
        s
    }

    /// Shard `i` of 3, answering `latencies_us`, started `start_ms` after a fixed time, running `ms`.
    fn shard(i: u32, latencies_us: &[u64], start_ms: u64, ms: u64) -> (String, ShardResult) {
        let spec = whole().into_shard(Shard::new(i, 3).unwrap()).unwrap();
        let mut stats = Stats::new();
        for us in latencies_us {
            stats.sent += 1;
            stats.answer("504", Some("1009"), Duration::from_micros(*us));
        }
        stats.sent += 1;
        stats.answer("503", None, Duration::from_micros(100));
        stats.retry_after(Some("1"));
        stats.handshake(Duration::from_micros(1000 + u64::from(i)));
        let started = UNIX_EPOCH + Duration::from_millis(1_764_000_000_000 + start_ms);
        let r = ShardResult::from_stats(
            &spec,
            &format!("s{i}xab"),
            &stats,
            started,
            Duration::from_millis(ms),
        );
        (format!("shard-{i}.json"), r)
    }

    fn three() -> Vec<(String, ShardResult)> {
        vec![
            shard(2, &[5_000, 5_001, 90_000], 10, 1000),
            shard(0, &[1_000, 1_100, 1_200], 0, 1000),
            shard(1, &[2_000, 300_000], 5, 1200),
        ]
    }

    #[test]
    fn the_merge_sums_counts_over_the_union_of_the_windows() {
        let m = merge(three()).unwrap();
        let r = &m.report;
        assert_eq!((r.attempted, r.sent, r.answered), (11, 11, 11));
        assert_eq!(
            r.responses,
            BTreeMap::from([("503".into(), 3), ("504".into(), 8)])
        );
        assert_eq!(r.diagnostics, BTreeMap::from([("504 1009".into(), 8)]));
        assert_eq!(r.retry_after, BTreeMap::from([("1".into(), 3)]));
        assert_eq!((r.connections, r.handshakes), (5, 3));
        assert_eq!(r.target_rate, Some(600.0));
        // From the first start (0 ms) to the last end (5 + 1200 ms).
        assert_eq!(r.elapsed_secs, 1.205);
        assert_eq!(r.rate, 11.0 / 1.205);
        assert_eq!(
            m.shards,
            ShardsSummary {
                count: 3,
                merged: vec![0, 1, 2],
                missing: vec![],
                run_ids: vec!["s0xab".into(), "s1xab".into(), "s2xab".into()],
                start_spread_secs: 0.01,
            }
        );
        assert_eq!(
            m.lines()[0],
            Line::pass(
                "shards",
                "3 of 3 shards merged (0–2), started within 0.010 s"
            )
        );
        assert_eq!(m.outcome(), Outcome::Complete);
        let text = m.render();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("edgesim load → 127.0.0.1:5061 (INVITE, 5 connection(s)"),
            "{text}"
        );
        assert_eq!(
            lines[1],
            "  shards      3 of 3 shards merged (0–2), started within 0.010 s"
        );
        assert_eq!(
            lines[2],
            "  requests    attempted 11, sent 11, answered 11, provisional 0, unanswered 0"
        );
    }

    #[test]
    fn merged_percentiles_are_those_of_the_pooled_samples_not_averages() {
        let m = merge(three()).unwrap();
        let mut pooled = histogram();
        for us in [
            5_000, 5_001, 90_000, 1_000, 1_100, 1_200, 2_000, 300_000, 100, 100, 100,
        ] {
            pooled.record(us).unwrap();
        }
        assert_eq!(m.report.latency_ms, Percentiles::of(&pooled));
        // p50 of the 11 pooled samples is the 6th smallest, 1.2 ms; the shards' own medians are 5 (5.003 to the
        // histogram's precision), 1 and 2 ms, whose average (2.668 ms) is no rank of the pooled samples.
        assert_eq!(m.report.latency_ms.p50, 1.2);
        let medians: Vec<f64> = three()
            .iter()
            .map(|(_, r)| Percentiles::of(&r.latency_us).p50)
            .collect();
        assert_eq!(medians, [5.003, 1.0, 2.0]);
        assert_eq!(m.report.latency_ms.max, pooled.max() as f64 / 1000.0);
    }

    #[test]
    fn differently_sized_histograms_merge_into_the_pooled_histogram() {
        let samples: [&[u64]; 3] = [
            &[1, 2, 3, 1_000, 65_537, 119_000_000],
            &[7, 1_800_000_000, 3_600_000_000],
            &[5, 50, 500, 5_000, 50_000_000_000],
        ];
        let mut a = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).unwrap();
        let mut b = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        let mut c = Histogram::<u64>::new(3).unwrap();
        for (h, values) in [
            (&mut a, samples[0]),
            (&mut b, samples[1]),
            (&mut c, samples[2]),
        ] {
            for v in values {
                h.record(*v).unwrap();
            }
        }
        let sum = merge_histograms(&[&a, &b, &c]).unwrap();
        let mut pooled = Histogram::<u64>::new_with_bounds(1, 50_000_000_000, 3).unwrap();
        for v in samples.iter().flat_map(|s| s.iter()) {
            pooled.record(*v).unwrap();
        }
        assert_eq!(sum.len(), 14);
        for q in [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0] {
            assert_eq!(
                sum.value_at_quantile(q),
                pooled.value_at_quantile(q),
                "q {q}"
            );
        }
        assert_eq!((sum.min(), sum.max()), (pooled.min(), pooled.max()));
        assert_eq!(sum.mean(), pooled.mean());
        // Through the result file's encoding too.
        let back = |h: &Histogram<u64>| {
            super::super::result_file::decode_histogram(
                &super::super::result_file::encode_histogram(h).unwrap(),
            )
            .unwrap()
        };
        let (a2, b2, c2) = (back(&a), back(&b), back(&c));
        assert_eq!(merge_histograms(&[&c2, &a2, &b2]).unwrap(), sum);
        // A coarser histogram (2 digits) merges with its counts, within its own precision.
        let mut coarse = Histogram::<u64>::new_with_bounds(1, 120_000_000, 2).unwrap();
        coarse.record(12_345).unwrap();
        let mixed = merge_histograms(&[&a, &coarse]).unwrap();
        assert_eq!((mixed.len(), mixed.sigfig()), (7, 3));
        assert!(coarse.equivalent(mixed.value_at_quantile(5.0 / 7.0), 12_345));
        assert_eq!(merge_histograms(&[]).unwrap().len(), 0);
    }

    #[test]
    fn a_missing_shard_fails_the_merge_and_is_named() {
        let mut results = three();
        results.remove(2);
        let m = merge(results).unwrap();
        assert_eq!(
            (m.shards.merged.clone(), m.shards.missing.clone()),
            (vec![0, 2], vec![1])
        );
        assert_eq!(
            m.lines()[0],
            Line::new(
                Status::Fail,
                "shards",
                "2 of 3 shards merged (0, 2), missing 1, started within 0.010 s",
                Some(
                    "merge the result of every shard: add shard 1's (its --out file, or its pod's log with --out -)"
                        .into()
                ),
            )
        );
        assert_eq!(m.outcome(), Outcome::Partial);
        assert_eq!(m.report.connections, 3);
        assert_eq!(m.report.target_rate, Some(400.0));
        assert_eq!(ranges(&[0, 1, 2, 5, 7, 8]), "0–2, 5, 7–8");
    }

    #[test]
    fn results_that_are_not_one_runs_shards_are_refused() {
        let mut twice = three();
        twice.push(shard(1, &[1], 0, 10));
        twice[3].0 = "again.json".into();
        assert_eq!(
            merge(twice).unwrap_err().to_string(),
            "again.json: shard 1/3 again (also in shard-1.json): these are not the shards of one run\n  hint: \
             give each shard's result once (a shard run twice, e.g. a pod retried, leaves two: keep the one \
             that ran with the others)"
        );
        let mut other = three();
        other[1].1.plan.requests_total = Some(10);
        assert_eq!(
            merge(other).unwrap_err().to_string(),
            "shard-0.json: the whole run is --connections 5 --requests 10 --rate 600 here, --connections 5 \
             --requests 9 --rate 600 in shard-2.json: these are not the shards of one run\n  hint: merge the \
             results of one run: every shard is started with the same --connections, --requests or \
             --duration, and --rate"
        );
        let mut count = three();
        count[2].1.plan.count = 4;
        assert!(
            merge(count)
                .unwrap_err()
                .to_string()
                .starts_with("shard-1.json: shard 1/4 here, of 3 shards in shard-2.json"),
        );
        assert_eq!(
            merge(Vec::new()).unwrap_err().to_string(),
            "no load result to merge: give the files written by `edgesim load --out`"
        );
    }
}

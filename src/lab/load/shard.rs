//! One load run split over N generator processes: `edgesim load --shard I/N`, or, without `--shard`, the
//! `JOB_COMPLETION_INDEX` and `JOB_COMPLETIONS` of a Kubernetes Indexed Job (`deploy/k8s/load-job.yaml`).
//!
//! - Shards are numbered from 0, as Kubernetes numbers the pods of an Indexed Job: `--shard 0/3`, `1/3`, `2/3`;
//!   `--shard 3/3` is an error naming the range `0..2`.
//! - `--connections` and a `--requests` total are the whole run's and are split as integers: shard I gets
//!   ⌊T/N⌋, plus one when I < T mod N, so the N shares sum to T exactly and differ by at most one. Every shard
//!   needs a connection, so `--connections` must be N or more.
//! - `--rate` is split evenly (R/N each) and interleaved: shard I's k-th request is due (kN + I)/R after its
//!   start, so N shards started together send exactly the schedule of one process — not N bursts at once — and
//!   with `--requests` the union of the shards' slots is exactly slots 0..T-1 of that schedule.
//! - `--duration` is not split: every shard sends for the whole duration.
//! - Each shard's Call-IDs, tags and branches start with its run id, `s{I}x{random}`: two shards of a run never
//!   collide, whatever their random parts (the prefixes differ at the index).
//!
//! The errors of sharding (the shard, the result files, the merge) are one enum, [`ShardError`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{LoadSpec, Stop};

/// Why a run cannot be sharded, a result file cannot be read, or results cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// `--shard`, or the Indexed Job's variables, do not name a shard.
    #[error("{what}; {fix}")]
    Spec {
        /// What is wrong, naming the flag or variables.
        what: String,
        /// What to give instead.
        fix: String,
    },
    /// Fewer connections than shards.
    #[error(
        "--connections {connections} cannot be split over {count} shards: every shard needs at least one \
         connection; give --connections {count} or more (the total of all shards)"
    )]
    TooFewConnections {
        /// The whole run's connections.
        connections: usize,
        /// Shards.
        count: u32,
    },
    /// A result file could not be read or written.
    #[error("{}: {action}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// `cannot read the load result`, `cannot write the load result` …
        action: &'static str,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// A result is not one this edgesim reads (another format or version, malformed, damaged).
    #[error("{origin}: {problem}\n  hint: {hint}")]
    Result {
        /// The file, with the line when one file holds several results.
        origin: String,
        /// What is wrong.
        problem: String,
        /// What to do.
        hint: String,
    },
    /// The results do not belong to one sharded run.
    #[error("{origin}: {problem}: these are not the shards of one run\n  hint: {hint}")]
    Mismatch {
        /// The result that does not fit the first one.
        origin: String,
        /// How it differs (naming the other result).
        problem: String,
        /// What to do.
        hint: String,
    },
    /// Nothing to merge.
    #[error("no load result to merge: give the files written by `edgesim load --out`")]
    Empty,
}

/// Which of N generator processes this one is; `index` counts from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shard {
    /// From 0 to `count - 1`.
    pub index: u32,
    /// Shards in the run, 1 or more.
    pub count: u32,
}

impl Shard {
    /// The whole run in one process.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` (from 0) of `count`.
    pub fn new(index: u32, count: u32) -> Result<Self, ShardError> {
        Self::checked(index, count, &format!("--shard {index}/{count}"))
    }

    fn checked(index: u32, count: u32, what: &str) -> Result<Self, ShardError> {
        if count == 0 {
            return Err(ShardError::Spec {
                what: format!("{what}: the number of shards must be 1 or more"),
                fix: "give I/N with N ≥ 1, e.g. --shard 0/3".into(),
            });
        }
        if index >= count {
            return Err(ShardError::Spec {
                what: format!(
                    "{what}: the shard index must be in 0..{} (shards are numbered from 0, like a Kubernetes \
                     Indexed Job's JOB_COMPLETION_INDEX)",
                    count - 1
                ),
                fix: format!("give --shard 0/{count} … --shard {}/{count}", count - 1),
            });
        }
        Ok(Shard { index, count })
    }

    /// `I/N`, as given to `--shard`.
    pub fn parse(text: &str) -> Result<Self, ShardError> {
        let bad = || ShardError::Spec {
            what: format!(
                "--shard {text}: not I/N (the shard's index, from 0, and the number of shards)"
            ),
            fix: "give e.g. --shard 0/3, --shard 1/3 and --shard 2/3 to three processes".into(),
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let number = |s: &str| s.trim().parse::<u32>().map_err(|_| bad());
        Self::checked(number(i)?, number(n)?, &format!("--shard {text}"))
    }

    /// The shard of a Kubernetes Indexed Job: `JOB_COMPLETION_INDEX` (set by Kubernetes in every pod of an
    /// Indexed Job) and `JOB_COMPLETIONS` (which the pod template sets to the Job's `completions`); `None` when
    /// neither is set. One without the other is an error rather than a silent unsharded run.
    pub fn from_job_env(
        index: Option<&str>,
        completions: Option<&str>,
    ) -> Result<Option<Self>, ShardError> {
        let (index, completions) = match (index, completions) {
            (None, None) => return Ok(None),
            (Some(i), Some(n)) => (i, n),
            (Some(i), None) => {
                return Err(ShardError::Spec {
                    what: format!(
                        "JOB_COMPLETION_INDEX={i} (a Kubernetes Indexed Job) but JOB_COMPLETIONS is not set, so \
                         the number of shards is unknown"
                    ),
                    fix: "set JOB_COMPLETIONS to the Job's completions in the pod template's env (as \
                          deploy/k8s/load-job.yaml does), or pass --shard I/N"
                        .into(),
                });
            }
            (None, Some(n)) => {
                return Err(ShardError::Spec {
                    what: format!(
                        "JOB_COMPLETIONS={n} but JOB_COMPLETION_INDEX is not set (Kubernetes sets it only in \
                         a Job with completionMode: Indexed)"
                    ),
                    fix: "use completionMode: Indexed, or pass --shard I/N".into(),
                });
            }
        };
        let what = format!("JOB_COMPLETION_INDEX={index}, JOB_COMPLETIONS={completions}");
        let number = |s: &str| {
            s.trim().parse::<u32>().map_err(|_| ShardError::Spec {
                what: format!("{what}: not whole numbers"),
                fix: "set both to numbers (Kubernetes sets JOB_COMPLETION_INDEX), or pass --shard I/N"
                    .into(),
            })
        };
        Self::checked(number(index)?, number(completions)?, &what).map(Some)
    }

    /// This shard's share of a total split as integers: ⌊total/N⌋, plus one for the first `total mod N`
    /// shards. The N shares sum to `total`.
    pub fn share(self, total: u64) -> u64 {
        let n = u64::from(self.count);
        total / n + u64::from(u64::from(self.index) < total % n)
    }

    /// This shard's share of a rate: an even split, R/N.
    pub fn rate_share(self, rate: f64) -> f64 {
        rate / f64::from(self.count)
    }

    /// Where in the interval between two of its requests this shard's schedule starts (0 ≤ phase < 1), so
    /// that the N schedules interleave.
    pub(crate) fn phase(self) -> f64 {
        f64::from(self.index) / f64::from(self.count)
    }

    /// The run id of this shard's requests (the start of its Call-IDs, tags and branches) from a random
    /// part: unchanged for a whole run, `s{index}x{random}` for a shard.
    pub fn run_id(self, random: &str) -> String {
        if self.count == 1 {
            random.to_owned()
        } else {
            format!("s{}x{random}", self.index)
        }
    }

    /// The file name `--out DIR/` gives this shard's result: `shard-1-of-3.json`.
    pub fn file_name(self) -> String {
        format!("shard-{}-of-{}.json", self.index, self.count)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A shard and the whole run it is a share of (what was asked of all the shards together).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ShardPlan {
    /// From 0.
    pub index: u32,
    /// Shards in the run.
    pub count: u32,
    /// Connections of all shards.
    pub connections_total: u64,
    /// Requests of all shards; `None` with a duration.
    pub requests_total: Option<u64>,
    /// Requests per second of all shards; `None`: as fast as possible.
    pub rate_total: Option<f64>,
    /// How long every shard sends; `None` with a request count.
    pub duration_secs: Option<f64>,
}

impl ShardPlan {
    /// The shard this plan is for.
    pub fn shard(&self) -> Shard {
        Shard {
            index: self.index,
            count: self.count,
        }
    }

    /// The plan of `spec` run whole, in one process.
    pub(crate) fn whole(spec: &LoadSpec) -> Self {
        let (requests_total, duration_secs) = match spec.stop {
            Stop::Requests(n) => (Some(n), None),
            Stop::Duration(d) => (None, Some(d.as_secs_f64())),
        };
        ShardPlan {
            index: 0,
            count: 1,
            connections_total: spec.connections.max(1) as u64,
            requests_total,
            rate_total: spec.rate,
            duration_secs,
        }
    }
}

impl LoadSpec {
    /// This spec, describing the whole run, cut down to `shard`'s share: its connections, its requests (with
    /// [`Stop::Requests`]) and its rate, with an interleaved schedule and a Call-ID space of its own (see the
    /// module documentation).
    pub fn into_shard(mut self, shard: Shard) -> Result<LoadSpec, ShardError> {
        let connections = self.connections.max(1);
        if connections < shard.count as usize {
            return Err(ShardError::TooFewConnections {
                connections,
                count: shard.count,
            });
        }
        let whole = ShardPlan::whole(&self);
        self.connections = shard.share(connections as u64) as usize;
        if let Stop::Requests(n) = self.stop {
            self.stop = Stop::Requests(shard.share(n));
        }
        self.rate = self.rate.map(|r| shard.rate_share(r));
        self.shard = Some(ShardPlan {
            index: shard.index,
            count: shard.count,
            ..whole
        });
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rustls_pki_types::ServerName;
    use tokio_util::sync::CancellationToken;

    use super::super::{RequestTemplate, Schedule};
    use super::*;

    fn spec(connections: usize, rate: Option<f64>, stop: Stop) -> LoadSpec {
        let mut s = LoadSpec::new(
            "127.0.0.1:5061".parse().unwrap(),
            ServerName::try_from("sip.skype.lab").unwrap(),
            crate::pki::client_config(None).unwrap(),
            RequestTemplate::new("OPTIONS", "sip:a@b", "sip:c@d"),
        );
        s.connections = connections;
        s.rate = rate;
        s.stop = stop;
        s
    }

    fn shards(n: u32) -> Vec<Shard> {
        (0..n).map(|i| Shard::new(i, n).unwrap()).collect()
    }

    #[test]
    fn the_shares_of_a_total_sum_to_it_and_differ_by_at_most_one() {
        for n in 1..=12 {
            for total in (0..=40).chain([999, 1000, 1001, u64::from(u32::MAX) + 7]) {
                let shares: Vec<u64> = shards(n).iter().map(|s| s.share(total)).collect();
                assert_eq!(shares.iter().sum::<u64>(), total, "{total} over {n}");
                let (min, max) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
                assert!(max - min <= 1, "{total} over {n}: {shares:?}");
            }
        }
        // The remainder goes to the first shards.
        let three = shards(3);
        assert_eq!(
            three.iter().map(|s| s.share(10)).collect::<Vec<_>>(),
            [4, 3, 3]
        );
        assert_eq!(
            three.iter().map(|s| s.share(11)).collect::<Vec<_>>(),
            [4, 4, 3]
        );
    }

    #[test]
    fn a_spec_split_over_shards_sums_to_the_whole_run() {
        let whole = spec(10, Some(1000.0), Stop::Requests(1001));
        let parts: Vec<LoadSpec> = shards(3)
            .into_iter()
            .map(|s| whole.clone().into_shard(s).unwrap())
            .collect();
        assert_eq!(
            parts.iter().map(|p| p.connections).collect::<Vec<_>>(),
            [4, 3, 3]
        );
        let requests: Vec<u64> = parts
            .iter()
            .map(|p| match p.stop {
                Stop::Requests(n) => n,
                Stop::Duration(_) => unreachable!(),
            })
            .collect();
        assert_eq!(requests, [334, 334, 333]);
        let rate: f64 = parts.iter().map(|p| p.rate.unwrap()).sum();
        assert!((rate - 1000.0).abs() < 1e-9, "{rate}");
        for (i, p) in parts.iter().enumerate() {
            assert_eq!(
                p.shard,
                Some(ShardPlan {
                    index: i as u32,
                    count: 3,
                    connections_total: 10,
                    requests_total: Some(1001),
                    rate_total: Some(1000.0),
                    duration_secs: None,
                })
            );
        }
        // A duration is every shard's; as fast as possible stays so.
        let p = spec(3, None, Stop::Duration(Duration::from_secs(2)))
            .into_shard(Shard::new(2, 3).unwrap())
            .unwrap();
        assert_eq!(
            (p.connections, p.rate, p.stop),
            (1, None, Stop::Duration(Duration::from_secs(2)))
        );
    }

    #[test]
    fn the_shards_schedules_interleave_into_the_one_process_schedule() {
        let (rate, total) = (1000.0, 100);
        let mut offsets = Vec::new();
        for s in shards(3) {
            let part = spec(3, Some(rate), Stop::Requests(total))
                .into_shard(s)
                .unwrap();
            let sched = Schedule::new(&part, CancellationToken::new());
            while let Some(slot) = sched.take() {
                offsets.push(slot.at - sched.start);
            }
        }
        offsets.sort();
        assert_eq!(offsets.len(), total as usize);
        for (k, at) in offsets.iter().enumerate() {
            let want = Duration::from_secs_f64(k as f64 / rate);
            let off = at.abs_diff(want);
            assert!(
                off < Duration::from_micros(1),
                "slot {k}: {at:?}, want {want:?}"
            );
        }
    }

    #[test]
    fn too_few_connections_for_the_shards_is_an_error_naming_the_minimum() {
        let e = spec(2, None, Stop::Requests(10))
            .into_shard(Shard::new(0, 3).unwrap())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "--connections 2 cannot be split over 3 shards: every shard needs at least one connection; give \
             --connections 3 or more (the total of all shards)"
        );
    }

    #[test]
    fn a_shard_is_i_of_n_counted_from_zero() {
        assert_eq!(Shard::parse("0/3").unwrap(), Shard { index: 0, count: 3 });
        assert_eq!(Shard::parse("2/3").unwrap(), Shard { index: 2, count: 3 });
        assert_eq!(
            Shard::parse(" 1 / 2 ").unwrap(),
            Shard { index: 1, count: 2 }
        );
        assert_eq!(Shard::parse("0/1").unwrap(), Shard::WHOLE);
        assert_eq!(
            Shard::parse("3/3").unwrap_err().to_string(),
            "--shard 3/3: the shard index must be in 0..2 (shards are numbered from 0, like a Kubernetes Indexed \
             Job's JOB_COMPLETION_INDEX); give --shard 0/3 … --shard 2/3"
        );
        assert_eq!(
            Shard::parse("0/0").unwrap_err().to_string(),
            "--shard 0/0: the number of shards must be 1 or more; give I/N with N ≥ 1, e.g. --shard 0/3"
        );
        for bad in ["3", "a/3", "1/b", "-1/3", "1/3/4", ""] {
            assert!(
                Shard::parse(bad)
                    .unwrap_err()
                    .to_string()
                    .starts_with(&format!("--shard {bad}: not I/N")),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_indexed_job_names_the_shard_by_its_variables() {
        assert_eq!(Shard::from_job_env(None, None).unwrap(), None);
        assert_eq!(
            Shard::from_job_env(Some("4"), Some("5")).unwrap(),
            Some(Shard { index: 4, count: 5 })
        );
        assert_eq!(
            Shard::from_job_env(Some("5"), Some("5"))
                .unwrap_err()
                .to_string(),
            "JOB_COMPLETION_INDEX=5, JOB_COMPLETIONS=5: the shard index must be in 0..4 (shards are numbered \
             from 0, like a Kubernetes Indexed Job's JOB_COMPLETION_INDEX); give --shard 0/5 … --shard 4/5"
        );
        let e = Shard::from_job_env(Some("1"), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "JOB_COMPLETION_INDEX=1 (a Kubernetes Indexed Job) but JOB_COMPLETIONS is not set"
            ) && e.contains("deploy/k8s/load-job.yaml"),
            "{e}"
        );
        let e = Shard::from_job_env(None, Some("3"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("completionMode: Indexed"), "{e}");
        let e = Shard::from_job_env(Some("x"), Some("3"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not whole numbers"), "{e}");
    }

    #[test]
    fn the_shards_call_id_spaces_are_disjoint() {
        assert_eq!(Shard::WHOLE.run_id("8a3f9c2d"), "8a3f9c2d");
        let ids: Vec<String> = shards(12).iter().map(|s| s.run_id("1")).collect();
        assert_eq!(ids[1], "s1x1");
        // Even with the same random part, no run id is a prefix of another: the Call-IDs
        // `{run}-{conn}-{cseq}@…` of two shards differ.
        for (i, a) in ids.iter().enumerate() {
            for (j, b) in ids.iter().enumerate() {
                assert!(i == j || !b.starts_with(a.as_str()), "{a} {b}");
            }
        }
        assert_eq!(Shard::new(1, 3).unwrap().file_name(), "shard-1-of-3.json");
    }
}

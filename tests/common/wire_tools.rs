//! The real tools the `wire_*` tests hand their output to (tshark, tcpdump, sngrep). `.ci/run` installs them;
//! a missing tool fails the test with the install command rather than skipping it.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The tool's path on `PATH`; panics with the fix when it is not installed.
pub fn require(tool: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(tool);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "{tool} is not installed, and this test hands edgesim's output to it. Install it as .ci/run does: \
         DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tshark tcpdump sngrep"
    );
}

/// Runs tshark with `args` and returns its standard output; panics with its standard error if it fails.
pub fn tshark(args: &[&str]) -> String {
    let out = Command::new(require("tshark"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tshark {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A tcpdump writing a capture file, stopped (SIGTERM, so it finishes the file) on drop.
pub struct Capture {
    child: std::process::Child,
    pub file: PathBuf,
}

impl Capture {
    /// Starts `tcpdump -i lo -U -w FILE FILTER...` and waits until it is capturing.
    pub fn start(file: &Path, filter: &[&str]) -> Capture {
        let mut child = Command::new(require("tcpdump"))
            .args(["-i", "lo", "-U", "-n", "-w"])
            .arg(file)
            .args(filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // tcpdump says "listening on lo, ..." on stderr once the capture is open.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut lines = std::io::BufReader::new(stderr).lines();
            let mut said = Vec::new();
            for line in lines.by_ref() {
                let Ok(line) = line else { break };
                let ready = line.contains("listening on");
                said.push(line);
                if ready {
                    let _ = tx.send(Ok(()));
                    // Keep draining so tcpdump never blocks on a full pipe.
                    for _ in lines.by_ref() {}
                    return;
                }
            }
            let _ = tx.send(Err(said.join("\n")));
        });
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(said)) => panic!("tcpdump did not start capturing on lo: {said}"),
            Err(_) => panic!("tcpdump did not say it was capturing within 10 s"),
        }
        Capture {
            child,
            file: file.to_path_buf(),
        }
    }

    /// Stops tcpdump (SIGTERM, by its pid) and waits for it to close the file.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Polls `f` every 100 ms until it returns `Some`, for at most `within`; the last `None` fails with `what`.
pub fn eventually<T>(within: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An sngrep HEP listener (`sngrep -N -L udp:127.0.0.1:PORT -O FILE`): it decodes the HEP3 packets it
/// receives and writes the SIP in them to a pcap, and counts dialogs on its standard output.
pub struct Sngrep {
    child: std::process::Child,
    pub port: u16,
    pub pcap: PathBuf,
    said: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Sngrep {
    /// Starts sngrep on a free loopback UDP port, with `eep.listen.pass` set when `password` is given.
    pub fn start(dir: &Path, password: Option<&str>) -> Sngrep {
        let sngrep = require("sngrep");
        // sngrep takes its port on the command line: ask the kernel for a free one, then hand it over.
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pcap = dir.join(format!("sngrep-{port}.pcap"));
        let config = dir.join(format!("sngrep-{port}.conf"));
        let mut settings = String::new();
        if let Some(p) = password {
            settings.push_str(&format!("set eep.listen.pass {p}\n"));
        }
        std::fs::write(&config, settings).unwrap();
        let mut child = Command::new(sngrep)
            .arg("-f")
            .arg(&config)
            .args(["-N", "-L", &format!("udp:127.0.0.1:{port}"), "-O"])
            .arg(&pcap)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let said = said.clone();
            std::thread::spawn(move || {
                use std::io::Read;
                let mut pipe = pipe;
                let mut buf = [0u8; 1024];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    said.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let mut s = Sngrep {
            child,
            port,
            pcap,
            said,
        };
        // It prints "Dialog count: 0" once its listener is up.
        eventually(Duration::from_secs(10), "sngrep did not start", || {
            if let Ok(Some(status)) = s.child.try_wait() {
                panic!("sngrep exited ({status}): {}", s.output());
            }
            s.dialogs()
        });
        s
    }

    /// Everything sngrep printed.
    pub fn output(&self) -> String {
        self.said.lock().unwrap().clone()
    }

    /// The last dialog count sngrep printed.
    pub fn dialogs(&self) -> Option<usize> {
        let out = self.output();
        let at = out.rfind("Dialog count: ")?;
        let digits: String = out[at + "Dialog count: ".len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    }

    /// Waits until sngrep counts `n` dialogs, then stops it (SIGTERM, by pid) so that its pcap is complete.
    pub fn finish(mut self, n: usize) -> PathBuf {
        eventually(
            Duration::from_secs(15),
            &format!("sngrep never counted {n} dialogs: {}", self.output()),
            || (self.dialogs() == Some(n)).then_some(()),
        );
        self.terminate();
        self.pcap.clone()
    }

    fn terminate(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sngrep {
    fn drop(&mut self) {
        self.terminate();
    }
}

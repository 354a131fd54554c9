//! The Debian package as an administrator gets it. `deploy/build-deb` (cargo-deb, `[package.metadata.deb]`)
//! packages the binary of this test build; dpkg installs the package into a temporary root (its own admin
//! directory and log: nothing of the machine's `/` is touched); the installed `edgesim --version` runs; the
//! manual pages, the example configuration and the conffile are where the package says; the unit's `ExecStart`
//! line runs for real against the installed files, moved into the root, on loopback port 0, and answers a call
//! over mutual TLS; `systemd-analyze verify` (and `security --offline`) check the unit when systemd-analyze is
//! installed.
//!
//! cargo-deb is required (`.ci/run` installs it): without it the test fails and says how to install it.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use edgesim::lab::peer::client::{ExpresswayRequest, PeerClient};
use edgesim::pki::{LabCa, LeafSpec, TlsIdentity};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
const UNIT: &str = "usr/lib/systemd/system/edgesim.service";

/// Runs `cmd`; panics with its output unless it exits with status 0.
fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// `root` + an absolute path of the package.
fn inside(root: &Path, abs: &str) -> PathBuf {
    root.join(abs.trim_start_matches('/'))
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The `.deb` built by deploy/build-deb from the test binary, in a target directory of its own under `tmp`.
fn build_package(tmp: &Path) -> PathBuf {
    let deb_version = Command::new(cargo()).args(["deb", "--version"]).output();
    assert!(
        deb_version.as_ref().is_ok_and(|o| o.status.success()),
        "cargo-deb is missing: install it with `cargo install cargo-deb --locked` (.ci/run does): {deb_version:?}"
    );
    // cargo-deb reads built products from <target>/release/; the binary cargo built for this test stands in.
    let release = tmp.join("target/release");
    std::fs::create_dir_all(&release).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_edgesim"), release.join("edgesim")).unwrap();
    let deb = tmp.join("edgesim.deb");
    run(
        Command::new(Path::new(MANIFEST_DIR).join("deploy/build-deb"))
            .env("CARGO_TARGET_DIR", tmp.join("target"))
            .env("EDGESIM_DEB_NO_BUILD", "1")
            // A copy stripped of the test build's debug information, no dbgsym package, compressed fast:
            // seconds, not a minute.
            .args(["--no-dbgsym", "--strip", "--fast", "--quiet", "-o"])
            .arg(&deb),
    );
    deb
}

/// Installs `deb` with dpkg into `root`, with the admin directory and the log inside it.
fn install(deb: &Path, root: &Path) {
    let admin = root.join("var/lib/dpkg");
    for d in ["updates", "info", "triggers"] {
        std::fs::create_dir_all(admin.join(d)).unwrap();
    }
    std::fs::write(admin.join("status"), "").unwrap();
    std::fs::create_dir_all(root.join("var/log")).unwrap();
    run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .arg(format!("--admindir={}", admin.display()))
        .arg(format!("--log={}", root.join("var/log/dpkg.log").display()))
        // Not root on a developer's machine; libc6 is not in the empty root (the package depends on it).
        .args(["--force-not-root", "--force-depends", "--install"])
        .arg(deb));
    let status = run(Command::new("dpkg-query")
        .arg(format!("--admindir={}", admin.display()))
        .args(["--show", "--showformat=${Status} ${Version}", "edgesim"]));
    assert_eq!(
        stdout(&status),
        format!("install ok installed {}-1", env!("CARGO_PKG_VERSION"))
    );
    // Neither enabled nor started on install: the package has no maintainer scripts at all.
    for script in ["preinst", "postinst", "prerm", "postrm"] {
        assert!(
            !admin.join(format!("info/edgesim.{script}")).exists(),
            "{script}"
        );
    }
    let conffiles = std::fs::read_to_string(admin.join("info/edgesim.conffiles")).unwrap();
    assert_eq!(conffiles.trim(), "/etc/edgesim/edge.toml");
}

/// The manual pages in the package are exactly those the installed binary renders from its clap definitions.
fn check_man_pages(root: &Path, tmp: &Path) {
    let man1 = root.join("usr/share/man/man1");
    let mut installed: Vec<String> = std::fs::read_dir(&man1)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    installed.sort();
    let regen = tmp.join("regen-man");
    run(Command::new(root.join("usr/bin/edgesim"))
        .args(["man", "--out"])
        .arg(&regen));
    let mut rendered: Vec<String> = std::fs::read_dir(&regen)
        .unwrap()
        .map(|e| format!("{}.gz", e.unwrap().file_name().into_string().unwrap()))
        .collect();
    rendered.sort();
    assert_eq!(installed, rendered);
    assert!(
        installed.contains(&"edgesim-serve.1.gz".to_string()),
        "{installed:?}"
    );
    for page in &installed {
        let text = run(Command::new("gzip").arg("-dc").arg(man1.join(page)));
        let plain = page.trim_end_matches(".gz");
        assert_eq!(
            text.stdout,
            std::fs::read(regen.join(plain)).unwrap(),
            "{page}"
        );
    }
}

/// The unit file as `key=value` pairs, in order (comments and section headers left out).
fn unit_entries(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn entry<'a>(entries: &'a [(String, String)], key: &str) -> &'a str {
    entries
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("the unit has no {key}="))
}

/// The value after `flag` in `words`.
fn flag<'a>(words: &'a [String], flag: &str) -> &'a str {
    let i = words
        .iter()
        .position(|w| w == flag)
        .unwrap_or_else(|| panic!("ExecStart has no {flag}: {words:?}"));
    &words[i + 1]
}

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the unit's ExecStart with its paths moved into `root`, `--listen` on 127.0.0.1:0 and the embedded DNS
/// server as the resolver, and gets an answer to a call from it.
async fn run_exec_start(root: &Path, entries: &[(String, String)]) {
    let exec = entry(entries, "ExecStart");
    assert!(
        !exec.contains(['"', '\'', '\\', '%', '$']),
        "this test splits ExecStart on spaces only: {exec}"
    );
    let words: Vec<String> = exec.split_whitespace().map(String::from).collect();
    assert_eq!(words[..2], ["/usr/bin/edgesim", "serve"]);
    let state = format!("/var/lib/{}", entry(entries, "StateDirectory"));
    assert_eq!(flag(&words, "--data-dir"), state);
    assert_eq!(flag(&words, "--config"), "/etc/edgesim/edge.toml");
    // What systemd creates before the start.
    std::fs::create_dir_all(inside(root, &state)).unwrap();
    let logs = format!("/var/log/{}", entry(entries, "LogsDirectory"));
    std::fs::create_dir_all(inside(root, &logs)).unwrap();

    let mut args: Vec<String> = Vec::new();
    let mut it = words[1..].iter();
    while let Some(w) = it.next() {
        args.push(w.clone());
        if w == "--listen" {
            it.next().unwrap();
            args.push("127.0.0.1:0".into());
        } else if w.starts_with('/') {
            *args.last_mut().unwrap() = inside(root, w).display().to_string();
        }
    }
    // The Edge resolves through its own (empty) DNS server on loopback, never the system's resolver.
    args.extend(["--serve-dns".into(), "127.0.0.1:0".into()]);
    let stderr_path = root.join("serve.stderr");
    let mut child = Kill(
        Command::new(inside(root, &words[0]))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap(),
    );
    let mut seen = Vec::new();
    for line in BufReader::new(child.0.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let done = line.starts_with("resolving SRV records with");
        seen.push(line);
        if done {
            break;
        }
    }
    let text = seen.join("\n");
    let status = child.0.try_wait().unwrap();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(
        text.contains("resolving SRV records with 127.0.0.1:"),
        "ExecStart {args:?} ({status:?}) printed:\n{text}\nstderr:\n{stderr}"
    );
    let addr: std::net::SocketAddr = seen[0]
        .rsplit_once("listening on tls ")
        .unwrap()
        .1
        .parse()
        .unwrap();
    assert!(seen[0].starts_with("edgesim Edge sip.skype.lab listening on tls 127.0.0.1:"));
    let data = inside(root, &state);
    assert!(
        text.contains(&format!(
            "created a lab CA: {}",
            data.join("ca.pem").display()
        )),
        "{text}"
    );

    // A partner with a certificate from the lab CA the service created; its domain has no SRV record in the
    // (empty) DNS, so the Edge refuses it as a real one does.
    let ca = LabCa::load_dir(&data).unwrap();
    let id = TlsIdentity::from(&ca.issue(&LeafSpec::new("vcse.acano.steven.lab")).unwrap());
    let t = Duration::from_secs(10);
    let mut peer = PeerClient::connect(addr, "sip.skype.lab", Some(&id), t)
        .await
        .unwrap();
    let req = ExpresswayRequest::new(
        "INVITE",
        "sip:2000@acano.steven.lab",
        "sip:stejanss@skype.lab",
    );
    let r = peer.request(&req.build(), t).await.unwrap();
    let diag = r
        .header_named("ms-diagnostics")
        .map(|h| String::from_utf8_lossy(&h.value()).into_owned());
    assert_eq!(r.status_code(), Some(504), "{diag:?}");
    assert!(
        diag.as_deref().is_some_and(|d| d.starts_with(
            "1008;reason=\"Unable to resolve DNS SRV record\";domain=\"acano.steven.lab\""
        )),
        "{diag:?}"
    );
    peer.close().await;
    // The files of ExecStart's --log-file and --events, under the unit's LogsDirectory.
    for (f, want) in [
        ("--log-file", "SIPPROXY_E_EPROUTING_MSG_DOMAIN_NO_SRV"),
        ("--events", "\"verdict\""),
    ] {
        let path = inside(root, flag(&words, f));
        assert!(path.starts_with(inside(root, &logs)), "{}", path.display());
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut content = String::new();
        let done = |c: &str| c.contains(want) && c.contains(&req.call_id);
        while !done(&content) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            content = std::fs::read_to_string(&path).unwrap_or_default();
        }
        assert!(done(&content), "{f} {}: {content}", path.display());
    }
}

/// `systemd-analyze verify` of the unit, its paths pointed at the installed copy; a broken copy shows that its
/// complaints are seen; `security --offline` rates the hardening.
fn verify_unit(root: &Path, tmp: &Path, unit: &str) {
    let version = match Command::new("systemd-analyze").arg("--version").output() {
        Ok(v) => v,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("systemd-analyze is not installed here: the unit was not verified");
            return;
        }
        Err(e) => panic!("cannot run systemd-analyze: {e}"),
    };
    eprintln!(
        "verifying the unit with {}",
        stdout(&version).lines().next().unwrap_or_default()
    );
    let dir = tmp.join("units");
    std::fs::create_dir_all(&dir).unwrap();
    let rewritten = unit
        .replace(
            "/usr/bin/edgesim",
            &inside(root, "/usr/bin/edgesim").display().to_string(),
        )
        .replace(
            "/etc/edgesim/",
            &inside(root, "/etc/edgesim/").display().to_string(),
        );
    // Documentation=man:edgesim-serve(1) is looked up with man(1): in the root's manual pages.
    let manpath = root.join("usr/share/man");
    let analyze = |args: &[&str], file: &Path| {
        Command::new("systemd-analyze")
            .args(args)
            .arg(file)
            .env("MANPATH", &manpath)
            .output()
            .unwrap()
    };

    // A minimal unit first: if systemd-analyze cannot verify even that, it cannot run in this environment.
    let control = dir.join("edgesim-control.service");
    std::fs::write(
        &control,
        format!(
            "[Service]\nExecStart={} --version\n",
            inside(root, "/usr/bin/edgesim").display()
        ),
    )
    .unwrap();
    let c = analyze(&["verify"], &control);
    if !c.status.success() || !c.stderr.is_empty() {
        eprintln!(
            "systemd-analyze is installed but cannot verify even a minimal unit here ({}): {}; the unit was not verified",
            c.status,
            String::from_utf8_lossy(&c.stderr)
        );
        return;
    }

    let file = dir.join("edgesim.service");
    std::fs::write(&file, &rewritten).unwrap();
    let v = analyze(&["verify"], &file);
    let complaints = String::from_utf8_lossy(&v.stderr);
    assert!(
        v.status.success() && complaints.is_empty(),
        "systemd-analyze verify {}: {}\n{complaints}",
        file.display(),
        v.status
    );

    // The same check sees a mistake: it only warns (status 0), so the test reads what it prints.
    let broken_dir = tmp.join("broken");
    std::fs::create_dir_all(&broken_dir).unwrap();
    let broken = broken_dir.join("edgesim.service");
    std::fs::write(
        &broken,
        rewritten.replace("ProtectSystem=strict", "ProtectSystm=strict"),
    )
    .unwrap();
    let b = analyze(&["verify"], &broken);
    assert!(
        String::from_utf8_lossy(&b.stderr).contains("ProtectSystm"),
        "a misspelt ProtectSystem= went unnoticed: {b:?}"
    );

    let s = analyze(&["security", "--offline=yes", "--no-pager"], &file);
    let report = String::from_utf8_lossy(&s.stdout);
    let level = report
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for edgesim.service: "))
        .map(|(_, rest)| {
            rest.split_whitespace()
                .next()
                .unwrap()
                .parse::<f64>()
                .unwrap()
        })
        .unwrap_or_else(|| panic!("no exposure level: {s:?}"));
    eprintln!("systemd-analyze security: exposure level {level}");
    let weak: Vec<&str> = report.lines().filter(|l| l.starts_with('✗')).collect();
    assert!(
        level <= 2.0,
        "exposure {level} (at most 2.0 expected); not hardened:\n{}",
        weak.join("\n")
    );
}

#[tokio::test]
async fn the_package_installs_and_its_unit_runs_the_edge() {
    let tmp = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let deb = build_package(tmp.path());
    let built = start.elapsed();

    let fields = run(Command::new("dpkg-deb")
        .arg("--field")
        .arg(&deb)
        .args(["Package", "Version", "Section"]));
    assert_eq!(
        stdout(&fields),
        format!(
            "Package: edgesim\nVersion: {}-1\nSection: net\n",
            env!("CARGO_PKG_VERSION")
        )
    );

    let root = tmp.path().join("root");
    install(&deb, &root);
    let installed = start.elapsed();

    let version = run(Command::new(root.join("usr/bin/edgesim")).arg("--version"));
    assert_eq!(
        stdout(&version),
        format!("edgesim {}\n", env!("CARGO_PKG_VERSION"))
    );

    check_man_pages(&root, tmp.path());
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    assert_eq!(
        read("usr/share/doc/edgesim/examples/edge.example.toml"),
        include_str!("../edge.example.toml")
    );
    assert_eq!(
        read("etc/edgesim/edge.toml"),
        include_str!("../deploy/edge.toml")
    );

    let unit = read(UNIT);
    assert_eq!(unit, include_str!("../deploy/systemd/edgesim.service"));
    let entries = unit_entries(&unit);
    for (key, value) in [
        ("DynamicUser", "yes"),
        ("StateDirectory", "edgesim"),
        ("ProtectSystem", "strict"),
        ("AmbientCapabilities", "CAP_NET_BIND_SERVICE"),
        ("CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"),
        ("NoNewPrivileges", "yes"),
    ] {
        assert_eq!(entry(&entries, key), value, "{key}");
    }
    run_exec_start(&root, &entries).await;
    verify_unit(&root, tmp.path(), &unit);
    eprintln!(
        "package built in {:.1} s, installed at {:.1} s, whole test {:.1} s",
        built.as_secs_f64(),
        installed.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
}

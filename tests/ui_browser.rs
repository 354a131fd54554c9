//! The web view in a real browser: `edgesim serve --ui 127.0.0.1:0` runs as a process with its own DNS, a
//! headless Chromium (Debian's `chromium`, installed by `.ci/run`) opens the page, and once the page's event
//! stream is live a peer places a failing call (acano.steven.lab's SRV points outside its domain: 504 with
//! ms-diagnostics 1009) and a good one (steven.lab: accepted). The test reads the page's DOM through the
//! DevTools protocol (a minimal client over the `--remote-debugging-port` websocket) and finds both
//! decisions, their codes, the fix, the Edge record, the SRV questions and the ladder; a second page load
//! shows the same decisions from the history.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use edgesim::lab::peer::client::{ExpresswayRequest, PeerClient};
use edgesim::pki::{LabCa, LeafSpec, TlsIdentity};
use serde_json::{Value, json};

/// The longest the page may take to show what a step waits for (rendering takes milliseconds; Chromium's
/// first start on a cold 2-core machine takes seconds).
const WAIT: Duration = Duration::from_secs(30);
const T: Duration = Duration::from_secs(5);

const CONFIG: &str = r#"
[[users]]
user = "stejanss"
ring_ms = 10

[[dns.records]]
type = "SRV"
name = "_sipfederationtls._tcp.acano.steven.lab"
priority = 10
weight = 10
port = 5061
target = "vcse.steven.lab"

[[dns.records]]
type = "SRV"
name = "_sipfederationtls._tcp.steven.lab"
priority = 10
weight = 10
port = 5061
target = "vcse.steven.lab"
"#;

/// A child process killed when the test ends, however it ends.
struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `edgesim serve --ui` in `dir`: the process, the Edge's TLS address and the web view's URL.
fn start_edge(dir: &Path) -> (Kill, SocketAddr, String) {
    std::fs::write(dir.join("edge.toml"), CONFIG).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgesim"))
        .args([
            "serve",
            "--serve-dns",
            "127.0.0.1:0",
            "--listen",
            "127.0.0.1:0",
            "--ui",
            "127.0.0.1:0",
            "--config",
            "edge.toml",
            "--events",
            "events.jsonl",
            "--data-dir",
            "data",
        ])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("serve.stderr")).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let edge: SocketAddr = first.rsplit_once(' ').unwrap().1.parse().unwrap();
    let url = loop {
        let line = lines
            .next()
            .expect("serve ended before announcing the web view")
            .unwrap();
        if let Some(u) = line.strip_prefix("web view on ") {
            break u.to_owned();
        }
    };
    // Nothing more is read: keep the pipe open until the process ends.
    std::thread::spawn(move || for _ in lines {});
    (Kill(child), edge, url)
}

/// Headless Chromium driven over the DevTools protocol: one page target, attached with a flat session.
struct Browser {
    _process: Kill,
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    session: String,
    next_id: u64,
    log: PathBuf,
}

impl Browser {
    /// Starts Chromium with a fresh profile in `dir` (the flags this machine needs: no sandbox as root, no
    /// background network, no GPU) and opens a blank page.
    async fn launch(dir: &Path) -> Browser {
        let profile = dir.join("profile");
        std::fs::create_dir(&profile).unwrap();
        let log = dir.join("chromium.log");
        let process = Kill(
            Command::new("chromium")
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--remote-debugging-address=127.0.0.1",
                    "--remote-debugging-port=0",
                ])
                .arg(format!("--user-data-dir={}", profile.display()))
                .arg("about:blank")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("cannot start chromium: install Debian's chromium package (.ci/run does)"),
        );
        // With port 0 Chromium writes the port it bound and the browser target's path to this file.
        let active = profile.join("DevToolsActivePort");
        let started = Instant::now();
        let (port, path) = loop {
            if let Ok(text) = std::fs::read_to_string(&active)
                && let Some((port, path)) = text.split_once('\n')
                && path.trim().starts_with("/devtools/")
            {
                break (port.trim().to_owned(), path.trim().to_owned());
            }
            assert!(
                started.elapsed() < WAIT,
                "chromium did not open its DevTools port: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}{path}"))
            .await
            .unwrap();
        let mut b = Browser {
            _process: process,
            ws,
            session: String::new(),
            next_id: 1,
            log,
        };
        let target = b
            .call("Target.createTarget", json!({ "url": "about:blank" }))
            .await;
        let target_id = target["targetId"].as_str().unwrap().to_owned();
        let attached = b
            .call(
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .await;
        b.session = attached["sessionId"].as_str().unwrap().to_owned();
        b
    }

    /// Sends one command (to the page's session once attached) and returns its result; events are skipped.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            msg["sessionId"] = Value::String(self.session.clone());
        }
        self.ws
            .send(Message::Text(msg.to_string().into()))
            .await
            .unwrap();
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method}"))
                .expect("the DevTools connection closed")
                .unwrap();
            let Message::Text(text) = frame else { continue };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"].as_u64() == Some(id) {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    async fn navigate(&mut self, url: &str) {
        let r = self.call("Page.navigate", json!({ "url": url })).await;
        assert!(r.get("errorText").is_none(), "{url}: {r}");
    }

    /// Evaluates `expr` in the page and returns its value (JSON-serialisable results only).
    async fn eval(&mut self, expr: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expr, "returnByValue": true }),
            )
            .await;
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Evaluates `expr` until `done` accepts its value (the page renders events as they arrive); while the
    /// page is still loading, an exception counts as "not yet" (null).
    async fn wait_for(&mut self, what: &str, expr: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        let guarded =
            format!("(() => {{ try {{ return ({expr}); }} catch (e) {{ return null; }} }})()");
        loop {
            let v = self.eval(&guarded).await;
            if done(&v) {
                return v;
            }
            if started.elapsed() > WAIT {
                let body = self
                    .eval("document.body ? document.body.innerText : ''")
                    .await;
                panic!(
                    "the page never showed {what}; last value {v}\npage text:\n{}\nchromium log:\n{}",
                    body.as_str().unwrap_or_default(),
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn close(mut self) {
        use futures::SinkExt;
        self.session.clear();
        let id = self.next_id;
        let msg = json!({ "id": id, "method": "Browser.close", "params": {} });
        let _ = self
            .ws
            .send(tokio_tungstenite::tungstenite::Message::Text(
                msg.to_string().into(),
            ))
            .await;
    }
}

/// The decision cards on the page, as the DOM shows them.
const DECISIONS: &str = r#"JSON.stringify([...document.querySelectorAll('#decisions li.decision')].map(li => ({
  verdict: li.dataset.verdict, status: li.dataset.status || null, code: li.dataset.code || null,
  call_id: li.dataset.callId || null,
  fix: li.querySelector('.fix') ? li.querySelector('.fix').textContent : null,
  record: li.querySelector('.record') ? li.querySelector('.record').textContent : null,
  text: li.innerText })))"#;

fn decisions(v: &Value) -> Vec<Value> {
    serde_json::from_str(v.as_str().unwrap_or("[]")).unwrap_or_default()
}

fn card<'a>(cards: &'a [Value], call_id: &str) -> Option<&'a Value> {
    cards.iter().find(|c| c["call_id"] == call_id)
}

/// The events file's explanation of a Call-ID (what the Edge itself said). The running Edge's background writer
/// flushes at least every 100 ms: the line is waited for, up to 5 s.
fn explanation(dir: &Path, call_id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = std::fs::read_to_string(dir.join("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| e["call_id"] == call_id)
            .and_then(|e| e["explanation"].as_str().map(str::to_owned));
        match found {
            Some(x) => return x,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            None => panic!("no event for {call_id} in events.jsonl after 5 s"),
        }
    }
}

#[tokio::test]
async fn the_page_shows_a_failing_and_a_good_call_live_with_codes_fix_record_dns_and_ladder() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (_edge_process, edge, url) = start_edge(dir.path());
    let mut browser = Browser::launch(dir.path()).await;
    browser.navigate(&url).await;
    // Live first: the calls below reach the page through its open event stream, not the history.
    browser
        .wait_for(
            "the event stream open",
            "document.getElementById('status').dataset.state",
            |v| v == "live",
        )
        .await;
    browser
        .wait_for(
            "the Edge's name",
            "document.getElementById('edge').textContent",
            |v| v == "sip.skype.lab",
        )
        .await;

    let ca = LabCa::load_dir(&dir.path().join("data")).unwrap();
    let id = TlsIdentity::from(&ca.issue(&LeafSpec::new("vcse.steven.lab")).unwrap());
    let mut peer = PeerClient::connect(edge, "sip.skype.lab", Some(&id), T)
        .await
        .unwrap();
    let failing = ExpresswayRequest::new(
        "INVITE",
        "sip:2000@acano.steven.lab",
        "sip:stejanss@skype.lab",
    );
    let r = peer.request(&failing.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(504));
    let good = ExpresswayRequest::new("INVITE", "sip:1000@steven.lab", "sip:stejanss@skype.lab");
    let r = peer.request(&good.build(), T).await.unwrap();
    assert_eq!(r.status_code(), Some(200));

    let (bad_id, good_id) = (failing.call_id.clone(), good.call_id.clone());
    let v = browser
        .wait_for("both decisions", DECISIONS, |v| {
            let c = decisions(v);
            card(&c, &bad_id).is_some() && card(&c, &good_id).is_some()
        })
        .await;
    let cards = decisions(&v);
    let bad = card(&cards, &bad_id).unwrap();
    assert_eq!(bad["verdict"], "reject", "{bad}");
    assert_eq!(bad["status"], "504", "{bad}");
    assert_eq!(bad["code"], "1009", "{bad}");
    let said = explanation(dir.path(), &bad_id);
    let fix = said.split_once("Fix: ").unwrap().1;
    assert_eq!(bad["fix"], format!("Fix: {fix}"), "{bad}");
    assert!(
        fix.starts_with("publish _sipfederationtls._tcp.acano.steven.lab → "),
        "{fix}"
    );
    let text = bad["text"].as_str().unwrap();
    assert!(
        text.contains("ms-diagnostics: 1009;reason=\"No match for domain in DNS SRV results\""),
        "{text}"
    );
    assert!(
        text.contains("SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH"),
        "{text}"
    );
    let record = bad["record"].as_str().unwrap();
    assert!(
        record.contains(&format!("SIP-Call-ID: {bad_id} "))
            && record.contains(
                "Result-Code: 0xc3e93d6f SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH"
            ),
        "{record}"
    );

    let ok = card(&cards, &good_id).unwrap();
    assert_eq!(ok["verdict"], "accept", "{ok}");
    // An INVITE's decision carries the Edge's first answer: 180 Ringing, then 200 follows.
    assert_eq!(ok["status"], "180", "{ok}");
    assert_eq!(ok["code"], Value::Null, "{ok}");
    assert_eq!(ok["fix"], Value::Null, "{ok}");

    // The SRV questions the Edge asked, with their answers.
    let dns = browser
        .wait_for(
            "both SRV questions",
            "document.getElementById('dns').innerText",
            |v| {
                let t = v.as_str().unwrap_or("");
                t.contains("SRV _sipfederationtls._tcp.acano.steven.lab")
                    && t.contains("SRV _sipfederationtls._tcp.steven.lab")
            },
        )
        .await;
    assert!(
        dns.as_str().unwrap().contains("10 10 5061 vcse.steven.lab"),
        "{dns}"
    );

    // The failing call rule by rule: the rules before Rule 1 held, Rule 1 refused, none after it ran.
    let steps = browser
        .eval(&format!(
            "Array.from(document.querySelectorAll('#decisions li')).filter(li => li.textContent.includes('{bad_id}'))[0]\
             .querySelectorAll('li.step[data-outcome]').length"
        ))
        .await;
    assert_eq!(steps, 8, "one step per inbound rule and the users");
    assert!(
        text.contains("fail Rule 1: SRV target in the sender's domain — _sipfederationtls._tcp.acano.steven.lab points to vcse.steven.lab"),
        "{text}"
    );
    assert!(
        text.contains("pass sender domain — sender domain acano.steven.lab"),
        "{text}"
    );
    assert!(
        text.contains("skip Rule 2: the client certificate names the target — not reached"),
        "{text}"
    );

    // The TLS connection the calls came on, with the client certificate's facts.
    let conns = browser
        .wait_for(
            "the TLS connection",
            "document.getElementById('connections').innerText",
            |v| v.as_str().unwrap_or("").contains("chain trusted"),
        )
        .await;
    let conns = conns.as_str().unwrap();
    for needle in [
        "TLS",
        "suite",
        "subject",
        "SAN",
        "vcse.steven.lab",
        "issuer",
        "EKU",
        "expires",
    ] {
        assert!(conns.contains(needle), "no {needle:?} in {conns}");
    }

    // The failing call's ladder, drawn by the server from the SIP messages the Edge read and wrote.
    let click =
        format!("document.querySelector('#dialogs li[data-call-id=\"{bad_id}\"]').click(); true");
    browser.eval(&click).await;
    let ladder = browser
        .wait_for(
            "the failing call's ladder",
            "document.getElementById('ladder').textContent",
            |v| {
                v.as_str()
                    .unwrap_or("")
                    .contains("peer <-- Edge  SIP/2.0 504 Server time-out")
            },
        )
        .await;
    let ladder = ladder.as_str().unwrap();
    assert!(
        ladder.contains(&format!("Call-ID {bad_id} (from the SIP messages)")),
        "{ladder}"
    );
    assert!(
        ladder.contains("peer --> Edge  INVITE sip:stejanss@skype.lab SIP/2.0"),
        "{ladder}"
    );
    assert!(
        ladder.contains(
            "[Edge] reject: 0xc3e93d6f SIPPROXY_E_EPROUTING_MSG_ALLOWED_DOMAIN_NO_SRV_MATCH"
        ),
        "{ladder}"
    );
    let mmd = browser
        .eval("document.getElementById('export-mmd').getAttribute('href')")
        .await;
    assert_eq!(
        mmd,
        format!("/api/dialog.mmd?call_id={bad_id}"),
        "the Call-ID is a UUID: nothing to encode"
    );

    // EDGESIM_UI_SCREENSHOT=FILE.png keeps a picture of the page for people to look at.
    if let Ok(path) = std::env::var("EDGESIM_UI_SCREENSHOT") {
        use base64::Engine;
        browser
            .call(
                "Emulation.setDeviceMetricsOverride",
                json!({ "width": 1400, "height": 1100, "deviceScaleFactor": 1, "mobile": false }),
            )
            .await;
        let shot = browser
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }

    // A page opened later shows the same decisions from the history.
    browser.navigate(&url).await;
    browser
        .wait_for("both decisions after a reload", DECISIONS, |v| {
            let c = decisions(v);
            card(&c, &bad_id).is_some_and(|b| b["code"] == "1009")
                && card(&c, &good_id).is_some_and(|g| g["verdict"] == "accept")
        })
        .await;
    peer.close().await;
    browser.close().await;
    eprintln!("browser test took {:.1} s", started.elapsed().as_secs_f64());
}

//! `edgesim certs`: the lab CA, issuing certificates, and inspecting one against the Edge rules.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use edgesim::pki::{
    self, CertFacts, ChainProblem, ChainStatus, EkuChoice, KeyType, LabCa, LeafSpec, TrustAnchors,
    Usage,
};
use rustls_pki_types::UnixTime;

/// `edgesim certs --help`: the exit codes of every `certs` subcommand.
pub const EXIT_CODES: &str = "Exit codes: 0 done (inspect: every rule passes); 1 inspect: a rule fails (its line says \
the fix); 2 usage error, or a file or CA that cannot be read or written (the message names it).";

/// The exit codes of `certs ca`, `certs issue` and `certs lab`.
const WRITE_EXIT_CODES: &str = "Exit codes: 0 written; 2 usage error, or a file or CA that cannot be read or \
written (the message names it).";

/// The exit codes of `certs inspect`.
const INSPECT_EXIT_CODES: &str = "Exit codes: 0 every rule passes; 1 a rule fails (its line says the fix); 2 usage \
error or a file that cannot be read as a certificate.";

/// Subcommands of `edgesim certs`.
#[derive(clap::Subcommand)]
pub enum CertsCommand {
    /// Create a lab CA: DIR/ca.pem and DIR/ca.key (0600).
    #[command(after_help = WRITE_EXIT_CODES)]
    Ca(CaArgs),
    /// Issue a certificate from a lab CA: STEM.pem, STEM.chain.pem (leaf + CA), STEM.key (PKCS#8, 0600).
    #[command(after_help = WRITE_EXIT_CODES)]
    Issue(IssueArgs),
    /// Show a certificate's facts and check it against the Edge rules (exit 1 when a rule fails).
    #[command(after_help = INSPECT_EXIT_CODES)]
    Inspect(InspectArgs),
    /// (Re)generate the seed lab's CA and certificates (Edge sip.skype.lab, Expressway-E vcse.steven.lab).
    #[command(after_help = WRITE_EXIT_CODES)]
    Lab(LabArgs),
}

/// Key algorithm on the command line; the default is [`KeyType::default`], the same for every command.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum KeyArg {
    Ecdsa,
    Rsa,
}

impl Default for KeyArg {
    fn default() -> Self {
        match KeyType::default() {
            KeyType::EcdsaP256 => KeyArg::Ecdsa,
            KeyType::Rsa2048 => KeyArg::Rsa,
        }
    }
}

impl From<KeyArg> for KeyType {
    fn from(k: KeyArg) -> Self {
        match k {
            KeyArg::Ecdsa => KeyType::EcdsaP256,
            KeyArg::Rsa => KeyType::Rsa2048,
        }
    }
}

/// The `--key` help of every command that writes keys.
const KEY_HELP: &str = "Key algorithm. RSA-2048 (the default) is what Skype for Business Edges use and what \
every Expressway version imports; ECDSA P-256 needs Expressway X14.3 or later";

/// EKU choice on the command line.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum EkuArg {
    Server,
    Client,
    Both,
    None,
}

impl From<EkuArg> for EkuChoice {
    fn from(e: EkuArg) -> Self {
        match e {
            EkuArg::Server => EkuChoice::ServerAuth,
            EkuArg::Client => EkuChoice::ClientAuth,
            EkuArg::Both => EkuChoice::Both,
            EkuArg::None => EkuChoice::None,
        }
    }
}

#[derive(clap::Args)]
pub struct CaArgs {
    /// Directory to write ca.pem and ca.key into (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Subject CN of the CA [default: "edgesim lab CA <date> <key id>", unique to this CA, so that peers
    /// never mistake it for another lab's CA].
    #[arg(long)]
    cn: Option<String>,
    #[arg(long, value_enum, default_value_t, help = KEY_HELP)]
    key: KeyArg,
    /// Replace a CA already in --out: certificates it issued then no longer chain to the CA in that directory.
    #[arg(long)]
    force: bool,
}

#[derive(clap::Args)]
pub struct IssueArgs {
    /// Directory holding ca.pem and ca.key.
    #[arg(long)]
    ca: PathBuf,
    /// Directory to write the certificate into (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// File stem: STEM.pem, STEM.chain.pem, STEM.key.
    #[arg(long)]
    name: String,
    /// Subject CN (default: the first SAN). Without a SAN it is the certificate's name, so a DNS name.
    #[arg(long)]
    cn: Option<String>,
    /// SAN DNS names (or IP addresses), comma separated, spaces around them ignored (default: the CN).
    #[arg(long, value_delimiter = ',', conflicts_with = "no_san")]
    san: Vec<String>,
    /// No subjectAltName extension at all (the CN then names the server).
    #[arg(long)]
    no_san: bool,
    /// Extended Key Usage: a federation certificate needs both (none = no EKU extension).
    #[arg(long, value_enum, default_value = "both")]
    eku: EkuArg,
    #[arg(long, value_enum, default_value_t, help = KEY_HELP)]
    key: KeyArg,
    /// Validity in days from yesterday.
    #[arg(long, default_value_t = 365, conflicts_with = "expired")]
    days: i64,
    /// Issue a certificate that expired yesterday.
    #[arg(long)]
    expired: bool,
}

#[derive(clap::Args)]
pub struct InspectArgs {
    /// Certificate file, PEM or DER; a PEM chain is read leaf first.
    file: PathBuf,
    /// FQDN the Edge expects the certificate to name (repeatable).
    #[arg(long)]
    fqdn: Vec<String>,
    /// CA certificate file(s) the Edge trusts; checks the chain.
    #[arg(long, num_args = 1..)]
    ca: Vec<PathBuf>,
    /// Accept a wildcard name match (a real Edge does not).
    #[arg(long)]
    allow_wildcard: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct LabArgs {
    /// Directory for the lab files (created if missing).
    #[arg(long, default_value = "certs")]
    out: PathBuf,
    #[arg(long, value_enum, default_value_t, help = KEY_HELP)]
    key: KeyArg,
}

/// Runs `edgesim certs`.
pub fn run(command: CertsCommand) -> anyhow::Result<ExitCode> {
    match command {
        CertsCommand::Ca(a) => ca(a),
        CertsCommand::Issue(a) => issue(a),
        CertsCommand::Inspect(a) => inspect(a),
        CertsCommand::Lab(a) => lab(a),
    }
}

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))
}

/// Refuses to replace a CA in `dir` unless `force`: the certificates it issued would stop chaining to the CA
/// file next to them (and peers that imported it would distrust every certificate the new one issues).
fn refuse_existing_ca(dir: &Path, force: bool) -> anyhow::Result<()> {
    let (cert, key) = (dir.join("ca.pem"), dir.join("ca.key"));
    let found: Vec<&PathBuf> = [&cert, &key].into_iter().filter(|p| p.exists()).collect();
    if force || found.is_empty() {
        return Ok(());
    }
    let named = pki::load_pem_chain(&cert)
        .ok()
        .and_then(|chain| chain.first().and_then(|der| CertFacts::from_der(der).ok()))
        .map(|f| format!(" ({})", f.subject))
        .unwrap_or_default();
    let files = found
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" and ");
    bail!(
        "certs ca: {} already holds a CA{named} ({files}); a new CA would replace it, and the certificates \
         it issued would no longer chain to the CA in that directory, nor to the new CA that peers then import — \
         choose another --out, or pass --force to replace it",
        dir.display()
    )
}

fn ca(a: CaArgs) -> anyhow::Result<ExitCode> {
    refuse_existing_ca(&a.out, a.force)?;
    create_dir(&a.out)?;
    let key = a.key.into();
    let ca = match &a.cn {
        Some(cn) => LabCa::generate(cn, key)?,
        None => LabCa::generate_lab(key)?,
    };
    let (cert, key) = ca.save(&a.out)?;
    let subject = CertFacts::from_der(ca.cert_der())?.subject;
    println!("wrote {} and {} ({subject})", cert.display(), key.display());
    Ok(ExitCode::SUCCESS)
}

fn issue(a: IssueArgs) -> anyhow::Result<ExitCode> {
    // "a.lab, b.lab" is two names: the spaces are the shell's, not part of a name.
    let given_cn = a.cn.as_deref().map(str::trim).map(str::to_string);
    let san: Vec<String> = if a.no_san {
        Vec::new()
    } else if a.san.is_empty() {
        given_cn.iter().cloned().collect()
    } else {
        a.san.iter().map(|s| s.trim().to_string()).collect()
    };
    let cn = given_cn.or_else(|| san.first().cloned());
    if cn.is_none() && san.is_empty() {
        bail!("certs issue: the certificate would name nothing — give --cn NAME and/or --san a,b");
    }
    let mut spec = LeafSpec::new("")
        .common_name(cn.as_deref())
        .san(&san)
        .eku(a.eku.into())
        .key(a.key.into())
        .valid_days(a.days);
    if a.expired {
        spec = spec.expired();
    }
    // Before touching the CA: a bad name is the user's typo, and the CA may not even be there yet.
    spec.validate()?;
    let ca = LabCa::load_dir(&a.ca)?;
    create_dir(&a.out)?;
    let issued = ca.issue(&spec)?;
    for path in issued.write(&a.out, &a.name)? {
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// One rule's outcome; a failing detail says the fix.
#[derive(serde::Serialize)]
struct Check {
    rule: String,
    pass: bool,
    detail: String,
}

#[derive(serde::Serialize)]
struct Report {
    file: String,
    facts: CertFacts,
    wildcard: bool,
    days_left: i64,
    checks: Vec<Check>,
    pass: bool,
}

fn date(ts: i64) -> String {
    let fmt =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| ts.to_string())
}

/// The EKU rule: the same certificate is the Edge-facing TLS server and client certificate.
fn eku_check(f: &CertFacts) -> Check {
    let (pass, detail) = match (f.allows_server_auth(), f.allows_client_auth()) {
        (true, true) if f.eku.is_none() => (true, "no EKU extension: any usage is allowed".to_string()),
        (true, true) => (true, "serverAuth and clientAuth present".to_string()),
        (true, false) => (
            false,
            "serverAuth present but clientAuth missing: the certificate cannot be the TLS client certificate \
             in mutual TLS, so federation breaks in one direction (the Edge resets a peer that connects with it). \
             Public CAs are removing the Client Authentication EKU from server certificates in 2026–2027 \
             (Cisco field notice FN74362 for Expressway) — reissue it with both Server and Client \
             Authentication EKUs (e.g. from a private CA), or on Expressway X15.5+ configure a separate \
             client certificate"
                .to_string(),
        ),
        (false, true) => (
            false,
            "clientAuth present but serverAuth missing: the certificate cannot be a TLS server certificate — \
             reissue it with both Server and Client Authentication EKUs"
                .to_string(),
        ),
        (false, false) => (
            false,
            "neither serverAuth nor clientAuth: the certificate cannot be used for TLS — reissue it with \
             both Server and Client Authentication EKUs"
                .to_string(),
        ),
    };
    Check {
        rule: "eku".to_string(),
        pass,
        detail,
    }
}

fn validity_check(f: &CertFacts, now: i64) -> Check {
    let days = f.days_left(now);
    let (pass, detail) = if now < f.not_before {
        (
            false,
            format!(
                "not valid until {} — check the clock, or reissue with a start date in the past",
                date(f.not_before)
            ),
        )
    } else if now > f.not_after {
        (
            false,
            format!("expired on {} — renew the certificate", date(f.not_after)),
        )
    } else {
        (
            true,
            format!("valid until {} ({days} days left)", date(f.not_after)),
        )
    };
    Check {
        rule: "validity".to_string(),
        pass,
        detail,
    }
}

fn chain_check(status: &ChainStatus, cas: &[PathBuf], issuer: &str) -> Check {
    let cas = cas
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let (pass, detail) = match status {
        ChainStatus::Trusted => (true, format!("trusted: leads to {cas}")),
        ChainStatus::Missing => (false, "no certificate in the file".to_string()),
        ChainStatus::UntrustedRoot => (
            false,
            format!(
                "the chain does not lead to {cas} — give the issuing CA with --ca, import that CA into the \
                 Edge's trusted root store, or put the intermediates after the leaf in the file"
            ),
        ),
        ChainStatus::Expired => (
            false,
            "a certificate in the chain is expired — renew it".to_string(),
        ),
        ChainStatus::NotYetValid => (
            false,
            "a certificate in the chain is not valid yet — check the clock".to_string(),
        ),
        ChainStatus::WrongUsage => (
            false,
            "a CA in the chain does not allow TLS use (EKU) — use a CA without that restriction"
                .to_string(),
        ),
        ChainStatus::Invalid(ChainProblem::OtherCaSameName) => (
            false,
            format!(
                "issued by a CA that is not one in {cas}: its issuer {issuer} has the name of a CA given with \
                 --ca, but the signature does not verify with that CA's key, so another CA with the same name \
                 issued it — give the CA that issued it with --ca (and import that one into the Edge's trusted \
                 roots)"
            ),
        ),
        ChainStatus::Invalid(p) => (false, p.to_string()),
    };
    Check {
        rule: "chain".to_string(),
        pass,
        detail,
    }
}

fn inspect(a: InspectArgs) -> anyhow::Result<ExitCode> {
    let chain = pki::load_pem_chain(&a.file)?;
    let Some(leaf) = chain.first() else {
        bail!(
            "{}: no certificate found — give a PEM or DER certificate",
            a.file.display()
        );
    };
    let facts = CertFacts::from_der_named(leaf, &a.file.display().to_string())?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();

    let mut checks = vec![validity_check(&facts, now), eku_check(&facts)];
    if !a.ca.is_empty() {
        let anchors = TrustAnchors::from_files(&a.ca)?;
        // Usage::Any: the EKU rule above already reports the leaf's usages with a plainer message.
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(now).unwrap_or_default(),
        ));
        let status = pki::verify_chain(&chain, &anchors, Usage::Any, at);
        checks.push(chain_check(&status, &a.ca, &facts.issuer));
    }
    for fqdn in &a.fqdn {
        let m = edgesim::policy::names_match(&facts, fqdn, a.allow_wildcard);
        checks.push(Check {
            rule: format!("name {fqdn}"),
            pass: m.passes(),
            detail: m.explain(fqdn),
        });
    }
    let pass = checks.iter().all(|c| c.pass);
    let report = Report {
        file: a.file.display().to_string(),
        wildcard: facts.has_wildcard(),
        days_left: facts.days_left(now),
        facts,
        checks,
        pass,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report, chain.len(), a.ca.is_empty()));
    }
    Ok(if pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn render(r: &Report, in_file: usize, no_ca: bool) -> String {
    let f = &r.facts;
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<13}{v}\n"));
    let extra = if in_file > 1 {
        format!(" (leaf; {} more certificate(s) in the file)", in_file - 1)
    } else {
        String::new()
    };
    line("certificate", format!("{}{extra}", r.file));
    line("subject", f.subject.clone());
    line("issuer", f.issuer.clone());
    line("serial", f.serial.clone());
    line(
        "SAN dNSNames",
        match &f.san_dns {
            None => "none: no SAN extension, so the Edge reads the subject CN".to_string(),
            Some(s) if s.is_empty() => {
                "none (a SAN extension without dNSNames: the CN is ignored)".to_string()
            }
            Some(s) => format!(
                "{} (the CN is ignored when a SAN extension exists)",
                s.join(", ")
            ),
        },
    );
    line(
        "CN",
        if f.common_names.is_empty() {
            "none".to_string()
        } else {
            f.common_names.join(", ")
        },
    );
    line(
        "wildcard",
        if r.wildcard {
            "yes — the Edge does not accept wildcard certificates".to_string()
        } else {
            "no".to_string()
        },
    );
    line(
        "EKU",
        match f.eku {
            None => "no EKU extension (any usage)".to_string(),
            Some(e) => {
                let mut v = Vec::new();
                if e.server_auth {
                    v.push("serverAuth");
                }
                if e.client_auth {
                    v.push("clientAuth");
                }
                if e.any {
                    v.push("anyExtendedKeyUsage");
                }
                if v.is_empty() {
                    "neither serverAuth nor clientAuth".to_string()
                } else {
                    v.join(", ")
                }
            }
        },
    );
    line(
        "CA",
        if f.is_ca {
            "yes (a CA certificate, not a server certificate)"
        } else {
            "no"
        }
        .to_string(),
    );
    line(
        "valid",
        format!(
            "{} → {} ({})",
            date(f.not_before),
            date(f.not_after),
            if r.days_left < 0 {
                "expired".to_string()
            } else {
                format!("{} days left", r.days_left)
            }
        ),
    );
    out.push('\n');
    for c in &r.checks {
        out.push_str(&format!(
            "{} {}: {}\n",
            if c.pass { "PASS" } else { "FAIL" },
            c.rule,
            c.detail
        ));
    }
    if no_ca {
        out.push_str("---- chain: not checked — give --ca CAFILE to check trust\n");
    }
    out
}

const LAB_README: &str = "# Lab certificates (lab use only)

Generated by `edgesim certs lab --out certs/`; run it again to regenerate everything (new keys, new CA).
**The private keys here are published in the repository: use them in labs only, never in production.**

| files | what |
|---|---|
| `ca.pem`, `ca.key` | the lab CA (`CN=edgesim lab CA <date> <key id>`: each run makes a CA of its own name). Import `ca.pem` into the Expressway-E trusted CA list and into the Edge's trusted roots. |
| `edge.pem`, `edge.chain.pem`, `edge.key` | the Edge (edgesim): CN and SAN `sip.skype.lab`, EKU serverAuth + clientAuth. |
| `vcse-seed.pem`, `vcse-seed.chain.pem`, `vcse-seed.key` | the seed's mis-configured Expressway-E certificate: CN and SAN `vcse.steven.lab` only, so calls from `acano.steven.lab` / `cms.steven.lab` (SRV targets `vcse.acano.steven.lab`, `vcse.cms.steven.lab`) fail the Edge name rule. |
| `vcse-fixed.pem`, `vcse-fixed.chain.pem`, `vcse-fixed.key` | the corrected Expressway-E certificate: CN `vcse.steven.lab`, SAN `vcse.steven.lab`, `vcse.acano.steven.lab`, `vcse.cms.steven.lab`, EKU serverAuth + clientAuth. |

`X.pem` is the leaf alone, `X.chain.pem` the leaf followed by the CA, `X.key` the PKCS#8 private key, written with
mode 0600 (git does not keep that mode: after a checkout run `chmod 600 certs/*.key`).
Keys are RSA-2048 by default (`--key ecdsa` for P-256).

Check one against the Edge rules, e.g.:

    edgesim certs inspect certs/vcse-seed.pem --ca certs/ca.pem --fqdn vcse.acano.steven.lab
";

fn lab(a: LabArgs) -> anyhow::Result<ExitCode> {
    create_dir(&a.out)?;
    let key: KeyType = a.key.into();
    let ca = LabCa::generate_lab(key)?;
    let (cert, ca_key) = ca.save(&a.out)?;
    let subject = CertFacts::from_der(ca.cert_der())?.subject;
    println!(
        "wrote {} and {} ({subject})",
        cert.display(),
        ca_key.display()
    );
    let corrected = [
        "vcse.steven.lab",
        "vcse.acano.steven.lab",
        "vcse.cms.steven.lab",
    ];
    let leaves = [
        ("edge", LeafSpec::new("sip.skype.lab")),
        ("vcse-seed", LeafSpec::new("vcse.steven.lab")),
        (
            "vcse-fixed",
            LeafSpec::new("vcse.steven.lab").san(&corrected),
        ),
    ];
    for (stem, spec) in leaves {
        let issued = ca.issue(&spec.key(key).eku(EkuChoice::Both).valid_days(825))?;
        for path in issued.write(&a.out, stem)? {
            println!("wrote {}", path.display());
        }
    }
    let readme = a.out.join("README.md");
    std::fs::write(&readme, LAB_README)
        .with_context(|| format!("cannot write {}", readme.display()))?;
    println!("wrote {}", readme.display());
    Ok(ExitCode::SUCCESS)
}

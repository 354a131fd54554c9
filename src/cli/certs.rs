//! `edgesim certs`: the lab CA, issuing certificates, and inspecting one against the Edge rules.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use edgesim::pki::{self, CertFacts, EkuChoice, KeyType, LabCa, LeafSpec};

mod inspect;

pub use inspect::InspectArgs;

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
        CertsCommand::Inspect(a) => inspect::inspect(a),
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

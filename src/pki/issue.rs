//! The lab issuer (rcgen 0.14): a CA, optional intermediates, and leaf certificates shaped like Edge and
//! Expressway certificates (SAN or not, CN or not, any EKU combination, expired or not).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, RsaKeySize,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

use super::PkiError;
use super::facts::parse_certs;
use super::name::check_cert_name;

/// Key algorithm for a new certificate.
///
/// The default, used by every command that writes certificates (`serve`, `certs lab|ca|issue`), is RSA-2048:
/// what both ends of the lab import. A Skype for Business Edge's certificates are RSA (its certificate wizard
/// requests RSA-2048), and Expressway handled only RSA server and CA certificates until X14.3 ("Certificate
/// Manager ECDSA Support", Certificate Creation and Use guide, April 2023), so an ECDSA certificate is refused
/// by every older Expressway still in labs. ECDSA P-256 stays available (`--key ecdsa`) and is what
/// [`LeafSpec::new`] uses in memory: it is much faster to generate, which tests need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyType {
    /// Fast to generate; imported by Expressway X14.3 and later only.
    EcdsaP256,
    /// What real SfB Edge certificates use, and every Expressway version imports.
    #[default]
    Rsa2048,
}

impl KeyType {
    /// How the CLI help names it.
    pub fn describe(self) -> &'static str {
        match self {
            KeyType::EcdsaP256 => "ECDSA P-256",
            KeyType::Rsa2048 => "RSA-2048",
        }
    }
}

/// Which Extended Key Usage extension a leaf gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EkuChoice {
    ServerAuth,
    ClientAuth,
    /// serverAuth + clientAuth: what a federation certificate needs.
    #[default]
    Both,
    /// No EKU extension at all.
    None,
}

impl EkuChoice {
    fn purposes(self) -> Vec<ExtendedKeyUsagePurpose> {
        use ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
        match self {
            EkuChoice::ServerAuth => vec![ServerAuth],
            EkuChoice::ClientAuth => vec![ClientAuth],
            EkuChoice::Both => vec![ServerAuth, ClientAuth],
            EkuChoice::None => vec![],
        }
    }
}

fn generate_key(key: KeyType) -> Result<KeyPair, PkiError> {
    Ok(match key {
        KeyType::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?,
        KeyType::Rsa2048 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048)?,
    })
}

/// What to put in a leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafSpec {
    /// Subject CN; `None` = empty subject. With [`LeafSpec::leading_cn`] it is the last, most specific CN.
    pub common_name: Option<String>,
    /// A less specific CN written before `common_name` (a subject with two CNs; RFC 2818 §3.1 says the last
    /// counts). `None` for the usual single CN.
    pub leading_cn: Option<String>,
    /// SAN dNSNames (IP literals become iPAddress entries); empty = no SAN extension at all.
    pub san: Vec<String>,
    pub eku: EkuChoice,
    pub key: KeyType,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl LeafSpec {
    /// CN and SAN = `fqdn`, EKU both, ECDSA P-256 (fast, for tests and in-memory certificates; files written
    /// for people use [`KeyType::default`]), valid from yesterday for 365 days.
    pub fn new(fqdn: &str) -> Self {
        let now = OffsetDateTime::now_utc();
        LeafSpec {
            common_name: Some(fqdn.to_string()),
            leading_cn: None,
            san: vec![fqdn.to_string()],
            eku: EkuChoice::Both,
            key: KeyType::EcdsaP256,
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(365),
        }
    }

    /// Checks every name the Edge will read: each SAN entry is a DNS name (or an IP literal, which becomes an
    /// iPAddress entry), and so is the CN when there is no SAN (it then names the server). [`LabCa::issue`]
    /// calls it; callers that take names from people call it first to report the mistake early.
    pub fn validate(&self) -> Result<(), PkiError> {
        for name in &self.san {
            check_cert_name(name).map_err(|reason| PkiError::BadName {
                field: "SAN entry",
                name: name.clone(),
                reason,
            })?;
        }
        if self.san.is_empty()
            && let Some(cn) = &self.common_name
        {
            check_cert_name(cn).map_err(|reason| PkiError::BadName {
                field: "subject CN",
                name: cn.clone(),
                reason,
            })?;
        }
        Ok(())
    }

    /// Replaces the SAN list (empty = no SAN extension).
    pub fn san<S: AsRef<str>>(mut self, names: &[S]) -> Self {
        self.san = names.iter().map(|s| s.as_ref().to_string()).collect();
        self
    }

    /// Replaces the subject CN.
    pub fn common_name(mut self, cn: Option<&str>) -> Self {
        self.common_name = cn.map(str::to_string);
        self
    }

    /// Writes `cn` as a first, less specific CN before the subject CN.
    pub fn leading_cn(mut self, cn: Option<&str>) -> Self {
        self.leading_cn = cn.map(str::to_string);
        self
    }

    /// Sets the EKU extension.
    pub fn eku(mut self, eku: EkuChoice) -> Self {
        self.eku = eku;
        self
    }

    /// Sets the key algorithm.
    pub fn key(mut self, key: KeyType) -> Self {
        self.key = key;
        self
    }

    /// Valid from yesterday for `days` days.
    pub fn valid_days(mut self, days: i64) -> Self {
        let now = OffsetDateTime::now_utc();
        self.not_before = now - Duration::days(1);
        self.not_after = now + Duration::days(days);
        self
    }

    /// Expired yesterday (valid for the 30 days before).
    pub fn expired(mut self) -> Self {
        let now = OffsetDateTime::now_utc();
        self.not_before = now - Duration::days(31);
        self.not_after = now - Duration::days(1);
        self
    }

    /// Becomes valid tomorrow.
    pub fn not_yet_valid(mut self) -> Self {
        let now = OffsetDateTime::now_utc();
        self.not_before = now + Duration::days(1);
        self.not_after = now + Duration::days(366);
        self
    }
}

/// An issued leaf with its key, ready to write or to use as a TLS identity.
#[derive(Debug)]
pub struct IssuedCert {
    /// Leaf first, then the issuing CA chain (root included).
    pub chain: Vec<CertificateDer<'static>>,
    pub cert_der: CertificateDer<'static>,
    pub cert_pem: String,
    /// Leaf then CA chain, PEM.
    pub chain_pem: String,
    /// PKCS#8.
    pub key_der: PrivateKeyDer<'static>,
    /// PKCS#8 PEM.
    pub key_pem: String,
}

impl IssuedCert {
    /// Writes `stem.pem` (leaf), `stem.chain.pem` (leaf + CA) and `stem.key` (0600) into `dir`.
    pub fn write(&self, dir: &Path, stem: &str) -> Result<[PathBuf; 3], PkiError> {
        let leaf = dir.join(format!("{stem}.pem"));
        let chain = dir.join(format!("{stem}.chain.pem"));
        let key = dir.join(format!("{stem}.key"));
        write_public(&leaf, &self.cert_pem)?;
        write_public(&chain, &self.chain_pem)?;
        write_secret(&key, &self.key_pem)?;
        Ok([leaf, chain, key])
    }
}

/// A lab certificate authority (root or intermediate) that can issue leaves.
pub struct LabCa {
    /// This CA's certificate first, then its parents up to the root.
    chain: Vec<CertificateDer<'static>>,
    chain_pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for LabCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabCa")
            .field("issuer", &self.issuer)
            .finish()
    }
}

fn ca_params(cn: &str) -> Result<CertificateParams, PkiError> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    // rcgen's default subject is CN="rcgen self signed cert": replace it.
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(3650);
    Ok(p)
}

/// The name every lab CA made by edgesim starts with; [`LabCa::generate_lab`] makes it unique.
pub const LAB_CA_NAME: &str = "edgesim lab CA";

impl LabCa {
    /// A new self-signed root CA named `cn`.
    pub fn generate(cn: &str, key: KeyType) -> Result<Self, PkiError> {
        Self::self_signed(|_| cn.to_string(), key)
    }

    /// A new lab root CA with a name of its own: `edgesim lab CA <date> <id>`, where `id` is the first six hex
    /// digits of its key identifier (the start of the Subject Key Identifier that `openssl x509 -text` shows).
    /// Two lab CAs never share a name, so a certificate from another lab's CA reads as issued by that CA,
    /// not as a broken certificate from this one; the date says which is newer in an Expressway's CA list.
    pub fn generate_lab(key: KeyType) -> Result<Self, PkiError> {
        Self::self_signed(
            |key_id| {
                let date = OffsetDateTime::now_utc().date();
                let id: String = key_id.iter().take(3).map(|b| format!("{b:02x}")).collect();
                format!("{LAB_CA_NAME} {date} {id}")
            },
            key,
        )
    }

    fn self_signed(name: impl FnOnce(&[u8]) -> String, key: KeyType) -> Result<Self, PkiError> {
        let key = generate_key(key)?;
        let mut params = ca_params("")?;
        let cn = name(&params.key_identifier(&key));
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params.self_signed(&key)?;
        Ok(LabCa {
            chain: vec![cert.der().clone()],
            chain_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// A new intermediate CA signed by this CA (no path length limit, so intermediates can be stacked).
    pub fn intermediate(&self, cn: &str, key: KeyType) -> Result<Self, PkiError> {
        let mut params = ca_params(cn)?;
        params.use_authority_key_identifier_extension = true;
        let key = generate_key(key)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let mut chain = vec![cert.der().clone()];
        chain.extend(self.chain.iter().cloned());
        Ok(LabCa {
            chain,
            chain_pem: format!("{}{}", cert.pem(), self.chain_pem),
            key_pem: key.serialize_pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA from its certificate file (PEM, the CA first, then its parents) and PEM key file.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, PkiError> {
        let cert_pem = std::fs::read_to_string(cert_path).map_err(|cause| PkiError::ReadCert {
            path: cert_path.to_path_buf(),
            cause,
        })?;
        let key_pem = std::fs::read_to_string(key_path).map_err(|cause| PkiError::ReadKey {
            path: key_path.to_path_buf(),
            cause,
        })?;
        let origin = cert_path.display().to_string();
        let chain = parse_certs(cert_pem.as_bytes(), &origin)?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| PkiError::BadKey {
            origin: key_path.display().to_string(),
            reason: e.to_string(),
        })?;
        let first = chain.first().ok_or(PkiError::NoCertificate {
            origin: origin.clone(),
        })?;
        let issuer =
            Issuer::from_ca_cert_der(first, key).map_err(|e| PkiError::BadCertificate {
                origin,
                reason: format!("not usable as an issuing CA: {e}"),
            })?;
        Ok(LabCa {
            chain,
            chain_pem: cert_pem,
            key_pem,
            issuer,
        })
    }

    /// Loads `dir/ca.pem` and `dir/ca.key`.
    pub fn load_dir(dir: &Path) -> Result<Self, PkiError> {
        Self::load(&dir.join("ca.pem"), &dir.join("ca.key"))
    }

    /// Writes `dir/ca.pem` and `dir/ca.key` (0600); returns their paths.
    pub fn save(&self, dir: &Path) -> Result<(PathBuf, PathBuf), PkiError> {
        let cert = dir.join("ca.pem");
        let key = dir.join("ca.key");
        write_public(&cert, &self.chain_pem)?;
        write_secret(&key, &self.key_pem)?;
        Ok((cert, key))
    }

    /// This CA's certificate.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        // `chain` is never empty: every constructor puts this CA's certificate first.
        &self.chain[0]
    }

    /// This CA's certificate then its parents.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// This CA's chain, PEM.
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// Issues a leaf certificate; refuses names that are not DNS names ([`LeafSpec::validate`]).
    pub fn issue(&self, spec: &LeafSpec) -> Result<IssuedCert, PkiError> {
        spec.validate()?;
        let mut p = CertificateParams::new(spec.san.clone())?;
        p.distinguished_name = DistinguishedName::new();
        if let Some(first) = &spec.leading_cn {
            // rcgen keeps one value per attribute type; the CN's OID as a custom type is a second CN.
            p.distinguished_name
                .push(DnType::CustomDnType(vec![2, 5, 4, 3]), first.as_str());
        }
        if let Some(cn) = &spec.common_name {
            p.distinguished_name.push(DnType::CommonName, cn.as_str());
        }
        p.extended_key_usages = spec.eku.purposes();
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.use_authority_key_identifier_extension = true;
        p.not_before = spec.not_before;
        p.not_after = spec.not_after;
        let key = generate_key(spec.key)?;
        let cert = p.signed_by(&key, &self.issuer)?;
        let cert_pem = cert.pem();
        let mut chain = vec![cert.der().clone()];
        chain.extend(self.chain.iter().cloned());
        Ok(IssuedCert {
            chain,
            cert_der: cert.der().clone(),
            chain_pem: format!("{cert_pem}{}", self.chain_pem),
            cert_pem,
            key_der: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            key_pem: key.serialize_pem(),
        })
    }
}

fn write_public(path: &Path, contents: &str) -> Result<(), PkiError> {
    std::fs::write(path, contents).map_err(|cause| PkiError::Write {
        path: path.to_path_buf(),
        cause,
    })
}

/// Writes a private key readable by its owner only (0600), also when the file already existed.
fn write_secret(path: &Path, contents: &str) -> Result<(), PkiError> {
    use std::io::Write;
    let err = |cause| PkiError::Write {
        path: path.to_path_buf(),
        cause,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path).map_err(err)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(err)?;
        let mut file = file;
        file.write_all(contents.as_bytes()).map_err(err)?;
    }
    #[cfg(not(unix))]
    {
        let mut file = options.open(path).map_err(err)?;
        file.write_all(contents.as_bytes()).map_err(err)?;
    }
    Ok(())
}

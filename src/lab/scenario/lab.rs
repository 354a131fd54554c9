//! Materialising a scenario's lab: its certificates (one lab CA per file, issued once and shared by every case)
//! and each case's DNS (base records merged with the case's, served by an embedded server on loopback).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::dns::{HickoryLookup, ZoneSet};
use crate::lab::builder::LabDns;
use crate::pki::{
    CertFacts, EkuChoice, KeyType, LabCa, LeafSpec, TlsIdentity, TrustAnchors, load_pem_chain,
};

use super::ScenarioError;
use super::ScenarioFile;
use super::format::{CertSpec, EkuName, IssuerName, KeyName};

/// A certificate ready to present, with the facts reports quote.
#[derive(Debug, Clone)]
pub struct LabCert {
    /// Chain and key.
    pub identity: TlsIdentity,
    /// Parsed leaf.
    pub facts: CertFacts,
}

/// The scenario's PKI: the lab CA the Edge trusts, the Edge's certificate and every `[certs.NAME]`.
#[derive(Debug, Clone)]
pub struct LabPki {
    /// What the Edge trusts: the lab CA only.
    pub anchors: TrustAnchors,
    /// The Edge's certificate.
    pub edge: LabCert,
    /// The named certificates.
    pub certs: BTreeMap<String, LabCert>,
}

fn leaf_spec(spec: &CertSpec) -> LeafSpec {
    let san = spec.san.clone().unwrap_or_default();
    let mut leaf = LeafSpec::new(
        spec.cn
            .as_deref()
            .or(san.first().map(String::as_str))
            .unwrap_or(""),
    )
    .common_name(spec.cn.as_deref())
    .san(&san)
    .eku(match spec.eku {
        EkuName::Both => EkuChoice::Both,
        EkuName::Server => EkuChoice::ServerAuth,
        EkuName::Client => EkuChoice::ClientAuth,
        EkuName::None => EkuChoice::None,
    })
    .key(match spec.key_type {
        KeyName::Ecdsa => KeyType::EcdsaP256,
        KeyName::Rsa => KeyType::Rsa2048,
    });
    if spec.expired {
        leaf = leaf.expired();
    }
    if spec.not_yet_valid {
        leaf = leaf.not_yet_valid();
    }
    leaf
}

fn lab_cert(identity: TlsIdentity, origin: &str) -> Result<LabCert, crate::pki::PkiError> {
    let leaf = identity
        .chain
        .first()
        .ok_or_else(|| crate::pki::PkiError::NoCertificate {
            origin: origin.to_owned(),
        })?;
    let facts = CertFacts::from_der_named(leaf, origin)?;
    Ok(LabCert { identity, facts })
}

impl LabPki {
    /// Issues (or loads) every certificate of the scenario; the costly part of a run, done once per file.
    pub fn build(file: &ScenarioFile) -> Result<Self, ScenarioError> {
        let s = &file.scenario;
        let err = |name: &str| {
            let path = file.path.clone();
            let name = name.to_owned();
            move |cause| ScenarioError::Cert {
                path: path.clone(),
                name: name.clone(),
                cause: Box::new(cause),
            }
        };
        let ca = LabCa::generate("edgesim scenario lab CA", KeyType::EcdsaP256)
            .map_err(err("lab CA"))?;
        let needs_untrusted = s.certs.values().any(|c| c.issuer == IssuerName::Untrusted);
        let untrusted = if needs_untrusted {
            Some(
                LabCa::generate("edgesim untrusted CA", KeyType::EcdsaP256)
                    .map_err(err("untrusted CA"))?,
            )
        } else {
            None
        };
        let base = file.base_dir.as_deref().unwrap_or(Path::new("."));
        let mut certs = BTreeMap::new();
        for (name, spec) in &s.certs {
            let identity = match (&spec.file, &spec.key) {
                (Some(cert), Some(key)) => {
                    TlsIdentity::from_pem_files(&base.join(cert), &base.join(key))
                        .map_err(err(name))?
                }
                _ => {
                    let issuer = match (spec.issuer, &untrusted) {
                        (IssuerName::Untrusted, Some(u)) => u,
                        _ => &ca,
                    };
                    let issued = issuer.issue(&leaf_spec(spec)).map_err(err(name))?;
                    TlsIdentity::from(&issued)
                }
            };
            certs.insert(name.clone(), lab_cert(identity, name).map_err(err(name))?);
        }
        let edge = match &s.edge_cert {
            Some(r) => certs
                .get(r.get_ref())
                .cloned()
                .ok_or_else(|| ScenarioError::Lab {
                    path: file.path.clone(),
                    message: format!("edge_cert `{}` is not defined", r.get_ref()),
                })?,
            None => {
                let issued = ca
                    .issue(&LeafSpec::new(&s.edge.fqdn))
                    .map_err(err("edge"))?;
                lab_cert(TlsIdentity::from(&issued), "edge").map_err(err("edge"))?
            }
        };
        let mut anchors =
            TrustAnchors::from_certs(ca.chain(), "scenario lab CA").map_err(err("lab CA"))?;
        for path in &s.trust {
            let path = base.join(path);
            let origin = path.display().to_string();
            for der in load_pem_chain(&path).map_err(err(&origin))? {
                anchors.add(&der, &origin).map_err(err(&origin))?;
            }
        }
        Ok(LabPki {
            anchors,
            edge,
            certs,
        })
    }

    /// A named certificate.
    pub fn cert(&self, name: &str) -> Option<&LabCert> {
        self.certs.get(name)
    }
}

/// A case's DNS: the lab builder's DNS server on 127.0.0.1:0 and a cache-less resolver that asks only it.
pub struct CaseDns {
    /// The running server.
    pub dns: LabDns,
    /// The Edge's resolver.
    pub lookup: Arc<HickoryLookup>,
}

impl CaseDns {
    /// Starts the server for `zones`; call within a tokio runtime.
    pub async fn start(zones: ZoneSet, timeout_ms: u64) -> Result<Self, String> {
        let dns = LabDns::start(zones).await.map_err(|e| e.to_string())?;
        let lookup = dns
            .lookup(timeout_ms.max(1), 0)
            .map_err(|e| format!("cannot build the Edge's resolver: {e}"))?;
        Ok(CaseDns {
            dns,
            lookup: Arc::new(lookup),
        })
    }

    /// Stops the server.
    pub async fn stop(self) {
        self.dns.stop().await;
    }
}

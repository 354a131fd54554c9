//! `edgesim check DOMAIN --as-test-csfederatedpartner`: the synthetic transaction of `Test-CsFederatedPartner
//! -TargetFqdn <Edge> -Domain DOMAIN`, run from the Edge: `OPTIONS sip:Options_User@DOMAIN` routed as the
//! Edge routes the domain (its ProxyFqdn when the loaded configuration lists one, else DNS SRV), with
//! `Route: <sip:PROXY;transport=tls;lr>;ms-edge-route` when a ProxyFqdn is configured, as the cmdlet sends it
//! (notes `edge-realism.md`, Microsoft support article "Test-CsFederatedPartner fails"). The result is worded
//! by the rulebook ([`Finding::test_cs_federated_partner`]) in the cmdlet's `Format-List` layout.

use std::time::Instant;

use serde::Serialize;

use super::CheckLine;
use crate::outbound::{self, CallMethod, CallRequest, OutboundContext};
use crate::rules::{DomainName, Route};

/// What `Test-CsFederatedPartner` would print, and what edgesim sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CmdletReport {
    /// `TargetFqdn`: the Edge that ran the transaction.
    pub target_fqdn: String,
    /// The federated domain (`-Domain`).
    pub domain: String,
    /// The configured ProxyFqdn of the domain (`-ProxyFqdn`), if any.
    pub proxy_fqdn: Option<String>,
    /// The OPTIONS Request-URI.
    pub request_uri: String,
    /// The Route header sent, if any.
    pub route: Option<String>,
    /// The domain is on the allowed list (the cmdlet requires it).
    pub allowed: bool,
    /// `Success` or `Failure`.
    pub result: &'static str,
    /// `Latency`, as a .NET TimeSpan (`00:00:00.0123456`).
    pub latency: String,
    /// `Error`.
    pub error: Option<String>,
    /// `Diagnosis`.
    pub diagnosis: Option<String>,
    /// The same as a `check` line (`test-csfederatedpartner`).
    #[serde(skip)]
    pub line: CheckLine,
}

/// A duration as a .NET TimeSpan prints it: `hh:mm:ss.fffffff`.
pub fn timespan(d: std::time::Duration) -> String {
    let s = d.as_secs();
    format!(
        "{:02}:{:02}:{:02}.{:07}",
        s / 3600,
        (s / 60) % 60,
        s % 60,
        d.subsec_nanos() / 100
    )
}

impl CmdletReport {
    /// The cmdlet's command line and its output, as the Management Shell shows them.
    pub fn render(&self) -> String {
        let mut out = format!(
            "PS> Test-CsFederatedPartner -TargetFqdn {} -Domain {}",
            self.target_fqdn, self.domain
        );
        if let Some(p) = &self.proxy_fqdn {
            out.push_str(&format!(" -ProxyFqdn {p}"));
        }
        out.push_str(&format!("\n    (edgesim sent OPTIONS {}", self.request_uri));
        if let Some(r) = &self.route {
            out.push_str(&format!(" with Route: {r}"));
        }
        out.push_str(")\n");
        if !self.allowed {
            out.push_str(&format!(
                "    (note: {} is not on the allowed domain list, which the real cmdlet requires)\n",
                self.domain
            ));
        }
        out.push_str(&format!(
            "\nTargetFqdn : {}\nResult     : {}\nLatency    : {}\nError      : {}\nDiagnosis  : {}\n",
            self.target_fqdn,
            self.result,
            self.latency,
            self.error.as_deref().unwrap_or(""),
            self.diagnosis.as_deref().unwrap_or("")
        ));
        out
    }
}

/// Runs the transaction for `domain`.
pub async fn test_cs_federated_partner(ctx: &OutboundContext, domain: &str) -> CmdletReport {
    let d = DomainName::new(domain.trim());
    let proxy = match ctx.policy.route(&d) {
        Route::FixedFqdn(f) => Some(f.to_string()),
        _ => None,
    };
    let route = proxy
        .as_ref()
        .map(|p| format!("<sip:{p};transport=tls;lr>;ms-edge-route"));
    let req = CallRequest {
        target: format!("sip:Options_User@{d}"),
        from: format!("sip:edgesim@{}", ctx.policy.edge_domain),
        method: CallMethod::Options,
        hold_ms: 0,
        route: route.clone(),
        im_text: None,
    };
    let start = Instant::now();
    let out = outbound::call(ctx, &req).await;
    let latency = timespan(start.elapsed());
    let result = out.finding.test_cs_federated_partner(&ctx.edge_fqdn);
    CmdletReport {
        target_fqdn: ctx.edge_fqdn.clone(),
        domain: d.to_string(),
        proxy_fqdn: proxy,
        allowed: ctx.policy.allowed.iter().any(|(a, _)| *a == d),
        line: out.finding.cmdlet_line(&ctx.edge_fqdn, &req.target),
        request_uri: req.target,
        route,
        result: result.result,
        latency,
        error: result.error,
        diagnosis: result.diagnosis,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn latency_prints_as_a_timespan() {
        assert_eq!(
            timespan(Duration::from_nanos(6_863_055_500)),
            "00:00:06.8630555"
        );
        assert_eq!(timespan(Duration::from_secs(3723)), "01:02:03.0000000");
    }
}

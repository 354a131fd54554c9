//! `edgesim check <domain>`: federation readiness of a domain with a Skype for Business Edge, both directions.
//! Exit code 0 when no line is FAIL, 1 when any is, 2 for usage or configuration errors.

use std::process::ExitCode;
use std::time::Duration;

use edgesim::outbound::check;

use super::call::{EdgeArgs, build_context, print_notes};

/// Arguments of `edgesim check`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Each line is PASS, WARN or FAIL with the fix. Exit codes: 0 no FAIL; 1 at least one FAIL; 2 usage or configuration error."
)]
pub struct CheckArgs {
    /// The SIP domain to check, e.g. acano.steven.lab.
    pub domain: String,
    #[command(flatten)]
    pub edge: EdgeArgs,
}

/// Runs `edgesim check`.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let domain = args.domain.trim().trim_end_matches('.');
    if domain.is_empty() || domain.contains(['@', ':', '/', ' ']) {
        anyhow::bail!(
            "{}: give a bare SIP domain such as acano.steven.lab",
            args.domain
        );
    }
    let (ctx, notes) = build_context(&args.edge, Duration::from_secs(5))?;
    if !args.edge.json {
        print_notes(&notes);
    }
    let rt = super::runtime()?;
    let report = rt.block_on(check::check(&ctx, domain));
    if args.edge.json {
        let value =
            serde_json::json!({ "report": report, "notes": notes, "ok": !report.has_fail() });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        print!("{}", report.render());
    }
    Ok(ExitCode::from(u8::from(report.has_fail())))
}

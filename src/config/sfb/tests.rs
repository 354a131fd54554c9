//! The Format-List reader: the fixtures pasted from a (lab-written) Edge, alignment, wrapping, braces, empty
//! values, encodings, line ends, unknown properties and malformed lines, with the exact messages.

use std::path::{Path, PathBuf};

use super::props::{ALLOWED, Ty};
use super::*;
use crate::config::federation::{FederatedDomain, Source, VerificationLevel};

fn fixture(name: &str) -> (PathBuf, Vec<u8>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sfb")
        .join(name);
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

fn read(text: &str) -> Result<Pasted, ConfigError> {
    parse(text, Path::new("edge.txt"))
}

fn err(text: &str) -> String {
    read(text).unwrap_err().to_string()
}

fn source(line: usize) -> Source {
    Source::Pasted(PathBuf::from("edge.txt"), line)
}

#[test]
fn the_access_edge_fixture_reads_every_setting_and_joins_the_wrapped_url() {
    let (path, bytes) = fixture("access-edge.txt");
    let p = parse(&decode(&bytes, &path).unwrap(), &path).unwrap();
    assert_eq!(p.notes, Vec::<String>::new());
    let (a, at) = p.access_edge.unwrap();
    assert_eq!(at, Source::Pasted(path, 4));
    assert_eq!(
        a,
        AccessEdgeConfig {
            allow_anonymous_users: true,
            allow_federated_users: true,
            enable_partner_discovery: false,
            enable_user_replicator: true,
            skype_search_url: Some("https://skypegraph.skype.com/search/v1.0".into()),
            ..AccessEdgeConfig::default()
        }
    );
    assert!(p.allowed.is_empty() && p.blocked.is_empty());
}

#[test]
fn the_allowed_fixture_is_utf16_with_two_objects_a_wrapped_comment_and_empty_values() {
    let (path, bytes) = fixture("allowed.txt");
    assert_eq!(&bytes[..2], &[0xFF, 0xFE], "Out-File's UTF-16 LE BOM");
    let p = parse(&decode(&bytes, &path).unwrap(), &path).unwrap();
    assert_eq!(p.notes, Vec::<String>::new());
    assert_eq!(
        p.allowed,
        vec![
            FederatedDomain {
                domain: "fabrikam.lab".into(),
                proxy_fqdn: Some("sip.fabrikam.lab".into()),
                verification_level: VerificationLevel::UseSourceVerification,
                mark_for_monitoring: false,
                comment: Some(
                    "Direct federation (Allowed Partner Server) agreed with Fabrikam IT, contact Ken Myer \
                     <kenmyer@fabrikam.lab>, change CHG0012345"
                        .into()
                ),
                source: Source::Pasted(path.clone(), 3),
            },
            FederatedDomain {
                domain: "contoso.lab".into(),
                proxy_fqdn: None,
                verification_level: VerificationLevel::AlwaysUnverifiable,
                mark_for_monitoring: true,
                comment: None,
                source: Source::Pasted(path, 12),
            },
        ]
    );
    assert!(p.access_edge.is_none() && p.blocked.is_empty());
}

#[test]
fn the_blocked_fixture_is_told_by_its_properties_without_a_command_line() {
    let (path, bytes) = fixture("blocked.txt");
    assert_eq!(&bytes[..3], &[0xEF, 0xBB, 0xBF], "UTF-8 BOM");
    let p = parse(&decode(&bytes, &path).unwrap(), &path).unwrap();
    assert_eq!(p.blocked.len(), 1);
    assert_eq!(p.blocked[0].domain, "spam.lab");
    assert_eq!(
        p.blocked[0].comment.as_deref(),
        Some("Blocked per security review SR-2211")
    );
    assert_eq!(p.blocked[0].source, Source::Pasted(path, 3));
}

#[test]
fn alignment_indentation_and_line_ends_do_not_matter() {
    let crlf =
        "Identity : Global\r\nAllowFederatedUsers : True\r\nEnablePartnerDiscovery : True\r\n";
    let aligned = "\n\nIdentity               : Global\nAllowFederatedUsers    : True\nEnablePartnerDiscovery : True\n\n\n";
    // Pasted from a web page: every line indented.
    let indented = "    Identity               : Global\n    AllowFederatedUsers    : True\n    EnablePartnerDiscovery : TRUE\n";
    let want = AccessEdgeConfig {
        allow_federated_users: true,
        enable_partner_discovery: true,
        ..AccessEdgeConfig::default()
    };
    for text in [crlf, aligned, indented] {
        let (a, _) = read(text).unwrap().access_edge.unwrap();
        assert_eq!(a, want, "{text:?}");
    }
}

#[test]
fn a_value_wrapped_at_any_width_is_joined_and_a_lost_indent_is_tolerated() {
    let text = "Identity          : fabrikam.lab\nProxyFqdn         : sip.fab\n                    rikam.lab\nComment           : one two\n                     three\n  four\n";
    let p = read(text).unwrap();
    assert_eq!(p.allowed[0].proxy_fqdn.as_deref(), Some("sip.fabrikam.lab"));
    // The piece keeps a space that was at the cut; a line indented less than the value column is trimmed.
    assert_eq!(p.allowed[0].comment.as_deref(), Some("one two threefour"));
}

#[test]
fn empty_values_keep_microsofts_defaults() {
    let text = "Identity : Global\nAllowFederatedUsers :\nDiscoveredPartnerStandardRate : \nSkypeSearchUrl :\n";
    let (a, _) = read(text).unwrap().access_edge.unwrap();
    assert_eq!(a, AccessEdgeConfig::default());
}

#[test]
fn braces_hold_collections() {
    let text = "Identity  : fabrikam.lab\nProxyFqdn : {sip.fabrikam.lab}\nComment   : {}\nAliases   : {a.lab, b.lab,\n            c.lab...}\n";
    let p = read(text).unwrap();
    assert_eq!(p.allowed[0].proxy_fqdn.as_deref(), Some("sip.fabrikam.lab"));
    assert_eq!(p.allowed[0].comment, None);
    assert_eq!(
        p.notes,
        vec![
            "edge.txt:4: warning: unknown property `Aliases` in Get-CsAllowedDomain output, ignored (a newer Skype for Business version? edgesim does not know it)"
        ]
    );
    assert_eq!(
        err("Identity  : fabrikam.lab\nProxyFqdn : {sip.fabrikam.lab, sip2.fabrikam.lab}\n"),
        "edge.txt:2: `ProxyFqdn`: expected one value, found the list {sip.fabrikam.lab, sip2.fabrikam.lab}"
    );
    assert_eq!(
        err("Identity  : fabrikam.lab\nProxyFqdn : {sip.fabrikam.lab, sip2.fab\n"),
        "edge.txt:2: `ProxyFqdn`: the list opened with { does not close with }; paste the whole value"
    );
}

#[test]
fn utf16_big_endian_and_bad_encodings() {
    let text = "Identity : spam.lab\r\nDomain   : spam.lab\r\nComment  :\r\n";
    let mut be = vec![0xFE, 0xFF];
    be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
    let path = Path::new("blocked.txt");
    assert_eq!(decode(&be, path).unwrap(), text);
    let mut le = vec![0xFF, 0xFE];
    le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    assert_eq!(decode(&le, path).unwrap(), text);
    assert_eq!(
        decode(&le[..5], path).unwrap_err().to_string(),
        "blocked.txt: UTF-16 text with an odd number of bytes: the file is cut off; save the output again"
    );
    assert_eq!(
        decode(b"Identity : caf\xe9.lab\n", path)
            .unwrap_err()
            .to_string(),
        "blocked.txt: not UTF-8 or UTF-16 text (invalid byte at offset 14): save the output with `Out-File` (UTF-16) or `Out-File -Encoding utf8`"
    );
    assert_eq!(
        decode(&vec![b' '; MAX_FILE_BYTES + 1], path)
            .unwrap_err()
            .to_string(),
        "blocked.txt: 1048577 bytes is more than a pasted configuration holds (1048576 at most): is this the Format-List output?"
    );
}

#[test]
fn unknown_properties_are_warnings_and_remoting_properties_are_silent() {
    let text = "Identity : Global\nAllowFederatedUsers : True\nEnableFutureThing : True\nPSComputerName : edge01.contoso.com\nRunspaceId : 5e3c…\nEnablePartnerMonitoringIfxLog : False\n";
    let p = read(text).unwrap();
    assert_eq!(
        p.notes,
        vec![
            "edge.txt:3: warning: unknown property `EnableFutureThing` in Get-CsAccessEdgeConfiguration output, ignored (a newer Skype for Business version? edgesim does not know it)"
        ]
    );
    assert!(p.access_edge.unwrap().0.allow_federated_users);
}

#[test]
fn malformed_lines_name_the_line_and_what_was_expected() {
    assert_eq!(
        err("Identity : Global\nAllowFederatedUsers True\n"),
        "edge.txt:2: expected `Name : Value` as Format-List prints it (a property name, spaces, a colon, the value), found \"AllowFederatedUsers True\""
    );
    assert_eq!(
        err("Identity : Global\nAllow Federated Users : True\n"),
        "edge.txt:2: expected `Name : Value` as Format-List prints it (a property name, spaces, a colon, the value), found \"Allow Federated Users : True\""
    );
    assert_eq!(
        err("Identity : Global\nAllowFederatedUsers : yes\n"),
        "edge.txt:2: `AllowFederatedUsers`: expected True or False, found \"yes\""
    );
    assert_eq!(
        err("Identity : Global\nDiscoveredPartnerStandardRate : -1\n"),
        "edge.txt:2: `DiscoveredPartnerStandardRate`: expected a whole number from 0 to 4294967295 (UInt32), found \"-1\""
    );
    assert_eq!(
        err("Identity : Global\nDiscoveredPartnerVerificationLevel : Trusted\n"),
        "edge.txt:2: `DiscoveredPartnerVerificationLevel`: expected AlwaysVerifiable, AlwaysUnverifiable or UseSourceVerification, found \"Trusted\""
    );
    assert_eq!(
        err("Identity : Global\nRoutingMethod : Smart\n"),
        "edge.txt:2: `RoutingMethod`: expected UseDnsSrvRouting or UseDefaultRouting, found \"Smart\""
    );
}

#[test]
fn values_out_of_range_name_their_line_and_the_range() {
    assert_eq!(
        err("Identity : Global\nAllowFederatedUsers : True\nDiscoveredPartnerStandardRate : 0\n"),
        "edge.txt:3: `DiscoveredPartnerStandardRate`: 0 is out of range (0 does not mean \"off\"): give messages per second from one discovered partner from 1 to 100000"
    );
    assert_eq!(
        err("Identity : Global\nOutgoingTlsCountForFederatedPartners : 8\n"),
        "edge.txt:2: `OutgoingTlsCountForFederatedPartners`: 8 is out of range: give a number of TLS connections per federated partner (Microsoft's range) from 1 to 4"
    );
    assert_eq!(
        err(
            "Identity : Global\nAllowFederatedUsers : True\nRoutingMethod : UseDefaultRouting\nDefaultRouteFqdn : sip.clearinghouse.lab\n"
        ),
        "edge.txt:3: `RoutingMethod`: UseDefaultRouting (every federation request through one DefaultRouteFqdn) is not emulated: edgesim routes by DNS SRV, and by ProxyFqdn for an allowed domain. Use UseDnsSrvRouting; for a fixed next hop per partner give its allowed domain a ProxyFqdn"
    );
    assert_eq!(
        err("Identity  : sip:fabrikam.lab\nProxyFqdn :\n"),
        "edge.txt:1: `Identity`: \"sip:fabrikam.lab\" is not a domain name: give the SIP domain alone, e.g. fabrikam.com"
    );
    assert_eq!(
        err("Identity  : fabrikam.lab\nProxyFqdn : https://sip.fabrikam.lab\n"),
        "edge.txt:2: `ProxyFqdn`: \"https://sip.fabrikam.lab\" is not a domain name: give the partner Edge's FQDN, e.g. sip.fabrikam.com (empty: DNS SRV)"
    );
    assert_eq!(
        err("Identity : fabrikam.lab\nDomain   : contoso.lab\nProxyFqdn :\n"),
        "edge.txt:2: `Domain`: \"contoso.lab\" differs from Identity \"fabrikam.lab\": both name the same domain; give one of them"
    );
}

#[test]
fn a_property_twice_means_a_missing_blank_line() {
    assert_eq!(
        err(
            "Identity : spam.lab\nDomain : spam.lab\nComment :\nIdentity : junk.lab\nDomain : junk.lab\n"
        ),
        "edge.txt:4: `Identity` again (first at line 1): one block is one object; separate objects with a blank line"
    );
}

#[test]
fn a_block_no_rule_recognises_asks_for_its_command_line() {
    assert_eq!(
        err("\nName : Fabrikam\nEnabled : True\n"),
        "edge.txt:2: cannot tell which cmdlet printed this block (properties Name, Enabled): put its command line above it, as the console shows it, e.g. `PS C:\\> Get-CsBlockedDomain | Format-List`"
    );
}

const SESSION: &str = r"[edge01.contoso.com]: PS C:\Users\labadmin\Documents> Get-CsAllowedDomain | fl Identity,Comment


Identity : fabrikam.lab
Comment  : Enhanced federation



[edge01.contoso.com]: PS C:\Users\labadmin\Documents> Get-CsHostingProvider


Identity                  : SkypeforBusinessOnline
Name                      : SkypeforBusinessOnline
ProxyFqdn                 : sipfed.online.lync.com
VerificationLevel         : UseSourceVerification
Enabled                   : True
EnabledSharedAddressSpace : False
HostsOCSUsers             : True
IsLocal                   : False
AutodiscoverUrl           :



[edge01.contoso.com]: PS C:\Users\labadmin\Documents> Get-CsBlockedDomain
[edge01.contoso.com]: PS C:\Users\labadmin\Documents> get-csblockeddomain | format-list


Identity : spam.lab
Domain   : spam.lab
Comment  :



[edge01.contoso.com]: PS C:\Users\labadmin\Documents>
";

#[test]
fn a_console_session_reads_each_block_under_its_command_and_skips_other_commands() {
    let p = read(SESSION).unwrap();
    // Under `Get-CsAllowedDomain`, Identity and Comment alone are an allowed domain, not a blocked one.
    assert_eq!(p.allowed.len(), 1);
    assert_eq!(p.allowed[0].domain, "fabrikam.lab");
    assert_eq!(p.allowed[0].source, source(4));
    assert_eq!(p.blocked.len(), 1);
    assert_eq!(p.blocked[0].source, source(28));
    assert_eq!(
        p.notes,
        vec![
            "edge.txt:9: note: the output of `Get-CsHostingProvider` (lines 9-20) is skipped: --sfb-config reads Get-CsAccessEdgeConfiguration, Get-CsAllowedDomain and Get-CsBlockedDomain"
        ]
    );
}

#[test]
fn a_block_that_contradicts_its_command_line_is_refused() {
    assert_eq!(
        err(
            "PS C:\\> Get-CsBlockedDomain\n\nIdentity  : fabrikam.lab\nProxyFqdn : sip.fabrikam.lab\n"
        ),
        "edge.txt:3: this block has `ProxyFqdn`, which Get-CsAllowedDomain prints, but it follows `Get-CsBlockedDomain` (line 1); paste each command's output under its own command line"
    );
    assert_eq!(
        err("PS C:\\> Get-CsAllowedDomain\n\nIdentity : Global\n"),
        "edge.txt:3: this block has `Identity : Global`, which Get-CsAccessEdgeConfiguration prints, but it follows `Get-CsAllowedDomain` (line 1); paste each command's output under its own command line"
    );
}

#[test]
fn a_hosting_provider_block_without_a_command_line_is_skipped_with_a_warning() {
    let text = "Identity : SkypeforBusinessOnline\nProxyFqdn : sipfed.online.lync.com\nHostsOCSUsers : True\n\nIdentity : spam.lab\nDomain : spam.lab\nComment :\n";
    let p = read(text).unwrap();
    assert!(p.allowed.is_empty());
    assert_eq!(p.blocked.len(), 1);
    assert_eq!(
        p.notes,
        vec![
            "edge.txt:1: warning: this block is Get-CsHostingProvider output (HostsOCSUsers): hosting providers are not emulated, so it is skipped"
        ]
    );
}

#[test]
fn a_powershell_error_line_is_not_a_command_line() {
    assert_eq!(
        err("Get-CsAllowedDomain : The term 'Get-CsAllowedDomain' is not recognized\n"),
        "edge.txt:1: expected `Name : Value` as Format-List prints it (a property name, spaces, a colon, the value), found \"Get-CsAllowedDomain : The term 'Get-CsAllowedDomain' is not \""
    );
}

#[test]
fn two_access_edge_configurations_are_refused() {
    assert_eq!(
        err(
            "Identity : Global\nAllowFederatedUsers : True\n\nIdentity : Global\nAllowFederatedUsers : False\n"
        ),
        "edge.txt:4: a second Get-CsAccessEdgeConfiguration (the first is at edge.txt:1): an Edge has one global Access Edge configuration; give one"
    );
}

#[test]
fn an_empty_file_is_a_warning_not_an_error() {
    let p = read("\r\n\r\n").unwrap();
    assert_eq!(
        p.notes,
        vec![
            "edge.txt: warning: no Get-CsAccessEdgeConfiguration, Get-CsAllowedDomain or Get-CsBlockedDomain object in the file (an empty list prints nothing: fine if the customer has none)"
        ]
    );
}

#[test]
fn every_property_the_reader_knows_is_a_key_of_the_configuration_model() {
    // The reader's tables and the serde aliases must agree: a table of every property deserialises.
    for (cmdlet, props) in [
        (Cmdlet::AccessEdge, ACCESS_EDGE),
        (Cmdlet::Allowed, ALLOWED),
        (Cmdlet::Blocked, BLOCKED),
    ] {
        let mut t = toml::Table::new();
        for (name, ty) in props {
            let v = match ty {
                Ty::Bool => toml::Value::Boolean(true),
                Ty::U32 => toml::Value::Integer(2),
                Ty::Text if *name == "Identity" && cmdlet == Cmdlet::AccessEdge => "Global".into(),
                Ty::Text => "x.lab".into(),
                Ty::Level => "AlwaysVerifiable".into(),
                Ty::Routing => "UseDnsSrvRouting".into(),
            };
            t.insert((*name).to_owned(), v);
        }
        let ok = match cmdlet {
            Cmdlet::AccessEdge => toml::Value::Table(t).try_into::<AccessEdgeConfig>().is_ok(),
            Cmdlet::Allowed => toml::Value::Table(t)
                .try_into::<AllowedDomainEntry>()
                .is_ok(),
            Cmdlet::Blocked => toml::Value::Table(t)
                .try_into::<BlockedDomainEntry>()
                .is_ok(),
        };
        assert!(ok, "{}", cmdlet.name());
    }
    // And every field of the model has its property: the snake_case keys of the defaults, in Format-List order.
    let keys: Vec<String> = toml::Table::try_from(AccessEdgeConfig {
        skype_search_url: Some(String::new()),
        ..AccessEdgeConfig::default()
    })
    .unwrap()
    .keys()
    .cloned()
    .collect();
    let mut ours: Vec<String> = ACCESS_EDGE
        .iter()
        .map(|(n, _)| validate::snake_case(n))
        .collect();
    ours.sort();
    let mut keys = keys;
    keys.sort();
    assert_eq!(keys, ours);
}

//! Unit tests of the configuration: parsing, defaults, paths, messages.

use super::*;

fn parse(text: &str) -> Result<EdgeConfig, ConfigError> {
    EdgeConfig::from_toml(text, Path::new("edge.toml"))
}

#[test]
fn empty_file_is_a_lab_edge() {
    let c = parse("").unwrap();
    assert_eq!(c, EdgeConfig::default());
    assert_eq!(c.edge.fqdn, "sip.skype.lab");
    assert_eq!(c.edge.domain, "skype.lab");
    assert_eq!(c.edge.server(), "RTC/6.0");
    assert_eq!(c.edge.log_host, "sfvedge");
    assert!(c.policy.partner_discovery);
    assert!(c.policy.accept_apex_target);
    assert!(!c.policy.allow_wildcard);
    assert!(c.policy.require_client_auth_eku);
    assert_eq!(c.tls.client_cert, ClientCertMode::Required);
    assert_eq!(c.tls.versions, None);
    assert_eq!(c.tls_versions(), [TlsVersion::Tls12]);
    assert_eq!(c.tls_versions_source(), TlsVersionsSource::Profile);
    assert!(!c.faithful);
    assert_eq!(c.limits.max_requests_per_sec, 20);
}

#[test]
fn full_example() {
    let c = parse(
        r#"
faithful = true
log_file = "edge.log"
events_file = "events.jsonl"

[edge]
fqdn = "sip.contoso.lab"
domain = "contoso.lab"
server_header = "RTC/7.0"
log_host = "edge01"

[tls]
cert = "certs/edge.pem"
key = "certs/edge.key"
ca = ["certs/lab-ca.pem"]
use_system_roots = true
client_cert = "optional"
versions = ["1.2", "1.3"]

[policy]
blocked_domains = ["spam.lab"]
allowed_domains = [
  { domain = "steven.lab", proxy_fqdn = "vcse.steven.lab" },
  { domain = "acano.steven.lab" },
]
partner_discovery = false
accept_apex_target = false
allow_wildcard = true
require_client_auth_eku = false

[[users]]
uri = "sip:stejanss@skype.lab"
action = "ring-forever"

[[users]]
user = "bob"
action = "busy"
ring_ms = 0
hangup_after_ms = 5000

[dns]
serve = "127.0.0.1:5353"
resolver = { server = "127.0.0.1:5353", timeout_ms = 500 }
records = [{ name = "_sipfederationtls._tcp.acano.steven.lab", type = "SRV", priority = 0, weight = 0, port = 5061, target = "vcse.acano.steven.lab" }]

[limits]
max_connections = 10
max_message_bytes = 4096
header_timeout_ms = 1
idle_timeout_ms = 2
handshake_timeout_ms = 3
max_requests_per_sec = 4
"#,
    )
    .unwrap();
    assert!(c.faithful);
    assert_eq!(c.edge.log_host, "edge01");
    assert_eq!(c.tls.client_cert, ClientCertMode::Optional);
    assert_eq!(c.tls_versions(), [TlsVersion::Tls12, TlsVersion::Tls13]);
    assert_eq!(c.tls_versions_source(), TlsVersionsSource::Config);
    assert_eq!(
        c.policy.allowed_domains[0].proxy_fqdn.as_deref(),
        Some("vcse.steven.lab")
    );
    assert!(!c.policy.partner_discovery);
    assert_eq!(c.users[0].user, "sip:stejanss@skype.lab");
    assert_eq!(c.users[0].action, UserAction::RingForever);
    assert_eq!(c.users[0].ring_ms, 1000);
    assert_eq!(c.users[1].hangup_after_ms, Some(5000));
    assert_eq!(c.dns.records.len(), 1);
    assert_eq!(c.limits.max_requests_per_sec, 4);
}

#[test]
fn unknown_key_names_file_line_and_field() {
    let err = parse("[policy]\nblocked_domains = []\npartner_discovry = true\n").unwrap_err();
    let text = err.to_string();
    assert_eq!(
        text,
        "edge.toml:3:1: field `policy.partner_discovry`: unknown field `partner_discovry`, expected one of \
         `blocked_domains`, `allowed_domains`, `partner_discovery`, `accept_apex_target`, `allow_wildcard`, \
         `require_client_auth_eku`\n  hint: remove the key or correct its spelling; the valid keys are listed above"
    );
    assert!(
        text.starts_with(
            "edge.toml:3:1: field `policy.partner_discovry`: unknown field `partner_discovry`"
        ),
        "{text}"
    );
    assert!(text.contains("`partner_discovery`"), "{text}");
    assert!(
        text.contains("hint: remove the key or correct its spelling"),
        "{text}"
    );
}

#[test]
fn wrong_type_names_the_field() {
    let err = parse("[limits]\nmax_connections = \"many\"\n").unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("edge.toml:2:"), "{text}");
    assert!(text.contains("field `limits.max_connections`"), "{text}");
    assert!(
        text.contains("hint: give the value the type shown"),
        "{text}"
    );
}

#[test]
fn bad_variant_lists_choices() {
    let err = parse("[tls]\nclient_cert = \"sometimes\"\n").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("field `tls.client_cert`"), "{text}");
    assert!(text.contains("required"), "{text}");
}

#[test]
fn blocked_and_allowed_is_refused() {
    let err = parse(
        "[policy]\nblocked_domains = [\"Steven.lab.\"]\nallowed_domains = [{ domain = \"steven.lab\" }]\n",
    )
    .unwrap_err();
    assert!(
        matches!(err, ConfigError::Invalid { ref field, .. } if field == "policy.blocked_domains")
    );
}

#[test]
fn missing_file_names_it_and_prints_the_os_error_once() {
    let err = EdgeConfig::load(Path::new("/nonexistent/edge.toml")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/nonexistent/edge.toml: cannot read the configuration: No such file or directory (os error 2); \
         check the path given to --config"
    );
    // No `source`: anyhow's `{:#}` would print the OS error a second time.
    assert!(std::error::Error::source(&err).is_none());
    assert_eq!(
        format!("{:#}", anyhow::Error::from(err))
            .matches("os error 2")
            .count(),
        1
    );
}

#[test]
fn load_resolves_every_relative_path_against_the_files_directory() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("lab");
    std::fs::create_dir(&sub).unwrap();
    let file = sub.join("edge.toml");
    std::fs::write(
        &file,
        "log_file = \"edge.log\"\nevents_file = \"/var/tmp/events.jsonl\"\n\
         [tls]\ncert = \"certs/edge.pem\"\nkey = \"certs/edge.key\"\nca = [\"ca.pem\", \"../other/ca.pem\"]\n\
         [dns]\nzone_files = [\"steven.lab.zone\"]\n",
    )
    .unwrap();
    let c = EdgeConfig::load(&file).unwrap();
    assert_eq!(c.log_file, Some(sub.join("edge.log")));
    assert_eq!(c.events_file, Some(PathBuf::from("/var/tmp/events.jsonl")));
    assert_eq!(c.tls.cert, Some(sub.join("certs/edge.pem")));
    assert_eq!(c.tls.key, Some(sub.join("certs/edge.key")));
    assert_eq!(
        c.tls.ca,
        vec![sub.join("ca.pem"), sub.join("../other/ca.pem")]
    );
    assert_eq!(c.dns.zone_files, vec![sub.join("steven.lab.zone")]);
    // Parsing text alone leaves them as written.
    let text = std::fs::read_to_string(&file).unwrap();
    let raw = EdgeConfig::from_toml(&text, &file).unwrap();
    assert_eq!(raw.tls.cert, Some(PathBuf::from("certs/edge.pem")));
}

#[test]
fn a_file_in_the_working_directory_resolves_to_it() {
    assert_eq!(
        config_dir(Path::new("edge.toml")),
        std::env::current_dir().unwrap()
    );
    assert!(config_dir(Path::new("lab/edge.toml")).ends_with("lab"));
}

#[test]
fn srv_records_default_priority_and_weight_to_zero() {
    let c = parse(
        "[[dns.records]]\nname = \"_sipfederationtls._tcp.a.lab\"\ntype = \"SRV\"\nport = 5061\ntarget = \"sip.a.lab\"\n",
    )
    .unwrap();
    assert!(matches!(
        c.dns.records[0],
        RecordSpec::Srv {
            priority: 0,
            weight: 0,
            port: 5061,
            ..
        }
    ));
}

#[test]
fn an_unexplained_error_points_to_the_example_file() {
    let err = parse("[[users]]\nuser = \"bob\"\nring_ms = -1\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "edge.toml:3:11: field `users.ring_ms`: invalid value: integer `-1`, expected u64\n  \
         hint: edge.example.toml lists every key with its default and its range"
    );
}

#[test]
fn a_limit_out_of_range_names_the_field_and_the_range() {
    let err = parse("[limits]\nmax_connections = 3000000000000000000\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "edge.toml: `limits.max_connections`: 3000000000000000000 is out of range: give a number of \
         concurrent connections from 1 to 1000000"
    );
    let err = parse("[limits]\nheader_timeout_ms = 0\n").unwrap_err();
    assert!(
        matches!(err, ConfigError::Invalid { ref field, .. } if field == "limits.header_timeout_ms"),
        "{err}"
    );
}

#[test]
fn presence_and_im_default_so_older_files_load() {
    let c = parse("[[users]]\nuser = \"bob\"\n").unwrap();
    assert_eq!(c.users[0].presence, UserPresenceConfig::default());
    assert_eq!(c.users[0].im, crate::im::Behaviour::Echo);
    assert_eq!(c.presence, PresenceConfig::default());
    assert_eq!(c.presence.max_subscriptions_per_connection, 1000);
    assert_eq!(c.presence.max_subscriptions_per_user, 500);
    assert_eq!(
        (
            c.presence.default_expires_s,
            c.presence.min_expires_s,
            c.presence.max_expires_s
        ),
        (28800, 1200, 43200)
    );
    assert!(c.im.page_mode);
    assert_eq!(c.im.max_text_bytes, 65536);
}

#[test]
fn users_publish_presence_and_chat() {
    let c = parse(
        r#"
[presence]
max_subscriptions_per_connection = 10
max_subscriptions_per_user = 3
default_expires_s = 3600
min_expires_s = 60
max_expires_s = 7200

[im]
page_mode = false
max_text_bytes = 4096

[[users]]
user = "stejanss"
presence = { availability = "busy", activity = "in-a-meeting", note = "Back at 3 <&>", display_name = "Steven Janssens", schedule = [{ after_s = 30, availability = "Do Not Disturb" }, { after_s = 90, availability = 15500, note = "gone" }] }
im = { reply = "In a meeting" }

[[users]]
user = "quiet"
presence = { availability = 9000 }
im = "silent"

[[users]]
user = "echo"
im = "echo"
"#,
    )
    .unwrap();
    let p = &c.users[0].presence;
    assert_eq!(p.availability, Some(6500));
    assert_eq!(p.activity.as_deref(), Some("in-a-meeting"));
    assert_eq!(p.note.as_deref(), Some("Back at 3 <&>"));
    assert_eq!(p.display_name.as_deref(), Some("Steven Janssens"));
    assert_eq!(
        p.schedule,
        vec![
            PresenceStepConfig {
                after_s: 30,
                availability: 9500,
                activity: None,
                note: None
            },
            PresenceStepConfig {
                after_s: 90,
                availability: 15500,
                activity: None,
                note: Some("gone".into())
            },
        ]
    );
    assert_eq!(
        c.users[0].im,
        crate::im::Behaviour::Reply("In a meeting".into())
    );
    assert_eq!(c.users[1].presence.availability, Some(9000));
    assert_eq!(c.users[1].im, crate::im::Behaviour::Silent);
    assert_eq!(c.users[2].im, crate::im::Behaviour::Echo);
    assert_eq!(c.presence.max_subscriptions_per_user, 3);
    assert_eq!(c.presence.min_expires_s, 60);
    assert!(!c.im.page_mode);
    assert_eq!(c.im.max_text_bytes, 4096);
}

#[test]
fn a_configured_user_round_trips_to_the_document_a_subscriber_reads() {
    use crate::presence::{DocumentFormat, profile, read::read_as, render};
    let c = parse(
        "[[users]]\nuser = \"stejanss\"\npresence = { availability = \"dnd\", activity = \"urgent-interruptions-only\", \
         note = \"Presenting <until 3> & \\\"after\\\"\", display_name = \"Steven O'Janssens\" }\n",
    )
    .unwrap();
    let state = profile::schedule(&c.users[0].presence)
        .unwrap()
        .initial()
        .clone();
    assert_eq!(state.availability, 9500);
    for f in [DocumentFormat::Categories, DocumentFormat::MsrtcPidf] {
        let doc = render(f, "stejanss@skype.lab", &state);
        assert_eq!(read_as(f, doc.as_bytes()).unwrap(), state, "{f:?}");
    }
    let pidf = read_as(
        DocumentFormat::Pidf,
        render(DocumentFormat::Pidf, "stejanss@skype.lab", &state).as_bytes(),
    )
    .unwrap();
    assert_eq!(pidf.availability, 9500);
    assert_eq!(pidf.note, state.note);
    assert_eq!(pidf.display_name, state.display_name);
    assert_eq!(pidf.activity, None, "PIDF has no token for it");
}

#[test]
fn a_wrong_availability_name_says_what_to_give_where() {
    let err =
        parse("[[users]]\nuser = \"bob\"\npresence = { availability = \"bussy\" }\n").unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("edge.toml:3:"), "{text}");
    assert!(
        text.contains(
            "`bussy` is not an availability: give a number (0 to 4294967295, e.g. 6500) or one of available, \
             available-idle, busy, busy-idle, do-not-disturb (dnd), be-right-back (brb), away, offline"
        ),
        "{text}"
    );
    let err = parse("[[users]]\nuser = \"bob\"\npresence = { availability = -5 }\n").unwrap_err();
    assert!(
        err.to_string().contains(
            "invalid value: integer `-5`, expected an availability number from 0 to 4294967295 or a name such as \"busy\""
        ),
        "{err}"
    );
    let err = parse("[[users]]\nuser = \"bob\"\npresence = { availability = true }\n").unwrap_err();
    assert!(
        err.to_string().contains("invalid type: boolean `true`"),
        "{err}"
    );
}

#[test]
fn a_wrong_im_behaviour_lists_the_choices() {
    let err = parse("[[users]]\nuser = \"bob\"\nim = \"ecco\"\n").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("unknown variant `ecco`, expected `echo` or `silent`"),
        "{text}"
    );
    assert!(
        text.contains("hint: use one of the values listed above"),
        "{text}"
    );
    let err = parse("[presence]\nmax_subscriptions = 5\n").unwrap_err();
    assert!(
        err.to_string().contains(
            "field `presence.max_subscriptions`: unknown field `max_subscriptions`, expected one of \
             `max_subscriptions_per_connection`, `max_subscriptions_per_user`, `default_expires_s`, \
             `min_expires_s`, `max_expires_s`"
        ),
        "{err}"
    );
}

fn invalid(text: &str) -> (String, String) {
    match parse(text).unwrap_err() {
        ConfigError::Invalid { field, message, .. } => (field, message),
        other => panic!("not a validation error: {other}"),
    }
}

#[test]
fn presence_checks_name_the_user_and_the_step() {
    let (field, message) = invalid(
        "[[users]]\nuser = \"a\"\n[[users]]\nuser = \"bob\"\npresence = { schedule = [{ after_s = 60, availability = \"busy\" }, { after_s = 30, availability = \"away\" }] }\n",
    );
    assert_eq!(field, "users[1].presence.schedule[1].after_s");
    assert_eq!(
        message,
        "step 1 at 30 s is not after the step before it (60 s): list steps in time order"
    );
    let (field, message) = invalid(
        "[[users]]\nuser = \"bob\"\npresence = { schedule = [{ after_s = 0, availability = \"busy\" }] }\n",
    );
    assert_eq!(field, "users[0].presence.schedule[0].after_s");
    assert_eq!(
        message,
        "0 is out of range (0 does not mean \"off\"): give seconds after the Edge started from 1 to 31536000"
    );
    let (field, _) =
        invalid("[[users]]\nuser = \"bob\"\npresence = { activity = \"in a meeting\" }\n");
    assert_eq!(field, "users[0].presence.activity");
    let (field, message) = invalid(&format!(
        "[[users]]\nuser = \"bob\"\npresence = {{ display_name = \"{}\" }}\n",
        "x".repeat(1025)
    ));
    assert_eq!(field, "users[0].presence.display_name");
    assert_eq!(message, "1025 characters is too long: give at most 1024");
}

#[test]
fn im_checks() {
    let (field, message) = invalid("[[users]]\nuser = \"bob\"\nim = { reply = \"\" }\n");
    assert_eq!(field, "users[0].im");
    assert_eq!(
        message,
        "the reply is empty: give a text, or im = \"silent\" for no reply"
    );
    let (field, message) = invalid(
        "[im]\nmax_text_bytes = 4\n[[users]]\nuser = \"bob\"\nim = { reply = \"hello\" }\n",
    );
    assert_eq!(field, "users[0].im");
    assert_eq!(
        message,
        "the reply is 5 bytes, over im.max_text_bytes = 4: shorten it or raise the limit"
    );
    let (field, _) = invalid("[im]\nmax_text_bytes = 0\n");
    assert_eq!(field, "im.max_text_bytes");
}

#[test]
fn presence_limits_and_expiry_bounds_are_checked() {
    let (field, message) = invalid("[presence]\nmax_subscriptions_per_user = 0\n");
    assert_eq!(field, "presence.max_subscriptions_per_user");
    assert_eq!(
        message,
        "0 is out of range (0 does not mean \"off\"): give a number of subscriptions from 1 to 1000000"
    );
    let (field, _) = invalid("[presence]\nmax_subscriptions_per_connection = 1000001\n");
    assert_eq!(field, "presence.max_subscriptions_per_connection");
    let (field, message) = invalid("[presence]\nmin_expires_s = 50000\n");
    assert_eq!(field, "presence.min_expires_s");
    assert_eq!(
        message,
        "50000 is above presence.max_expires_s = 43200: the shortest expiry granted must not exceed the longest"
    );
    let (field, message) = invalid("[presence]\ndefault_expires_s = 600\n");
    assert_eq!(field, "presence.default_expires_s");
    assert_eq!(
        message,
        "600 is outside presence.min_expires_s..=max_expires_s (1200..=43200): give a default between them"
    );
    let (field, _) = invalid("[presence]\nmax_expires_s = 604801\n");
    assert_eq!(field, "presence.max_expires_s");
    assert!(
        parse("[presence]\ndefault_expires_s = 1200\nmin_expires_s = 1200\nmax_expires_s = 1200\n")
            .is_ok()
    );
}

#[test]
fn the_example_file_documents_presence_and_im() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("edge.example.toml");
    let c = EdgeConfig::load(&path).unwrap();
    assert_eq!(c.presence, PresenceConfig::default());
    assert_eq!(c.im, ImConfig::default());
    let p = &c.users[0].presence;
    assert_eq!(p.availability, Some(3500));
    assert_eq!(p.display_name.as_deref(), Some("Steven Janssens"));
    assert_eq!(p.schedule.len(), 2);
    assert_eq!(p.schedule[0].availability, 6500);
    assert_eq!(p.schedule[1].availability, 15500);
    assert_eq!(c.users[0].im, crate::im::Behaviour::Echo);
    assert_eq!(
        c.users[1].im,
        crate::im::Behaviour::Reply("Sorry, I am on another call".into())
    );
}

// ---- Federation settings as Skype for Business names them (issue 15) ----

use federation::{DiscoveredPartnerLimits, FederatedDomain, Source};

#[test]
fn an_old_policy_file_gives_the_same_policy_and_lab_federation_settings() {
    let text = "[policy]\nblocked_domains = [\"spam.lab\", \"spam.lab\"]\nallowed_domains = [{ domain = \"partner.lab\", proxy_fqdn = \"edge.partner.lab\" }, { domain = \"x.lab\", proxy_fqdn = \"\" }]\npartner_discovery = false\naccept_apex_target = false\n";
    let c = parse(text).unwrap();
    let written: PolicyConfig = toml::from_str::<EdgeConfig>(text).unwrap().policy;
    assert_eq!(
        c.policy, written,
        "the policy Policy::new reads is unchanged"
    );
    assert_eq!(c.federation, FederationSettings::from_policy(&written));
    assert_eq!(c.federation.origin, Source::LabDefaults);
    assert!(c.federation.federation_enabled());
    assert!(!c.federation.partner_discovery());
    assert_eq!(
        c.federation.allowed[0].source,
        Source::Policy("allowed_domains", 0)
    );
    // Without [policy] at all: the lab defaults, as EdgeConfig::default().
    assert_eq!(parse("").unwrap().federation, FederationSettings::default());
    assert!(FederationSettings::default().partner_discovery());
}

#[test]
fn an_access_edge_table_takes_microsofts_defaults_for_what_it_leaves_out() {
    let c = parse("[access_edge]\n\n[[allowed_domains]]\nidentity = \"fabrikam.lab\"\n").unwrap();
    assert_eq!(c.access_edge, Some(AccessEdgeConfig::default()));
    assert_eq!(c.federation.access_edge, AccessEdgeConfig::default());
    assert_eq!(c.federation.origin, Source::Table("access_edge", 0));
    let a = &c.federation.access_edge;
    assert!(!a.allow_federated_users && !a.enable_partner_discovery);
    assert_eq!(a.discovered_partner_standard_rate, 20);
    assert_eq!(a.max_contacts_per_discovered_partner, 1000);
    assert_eq!(a.discovered_partner_report_period_minutes, 60);
    assert!(a.enable_discovered_partner_contacts_limit);
    assert!(a.mark_source_verifiable_on_outgoing_messages);
    assert_eq!(a.outgoing_tls_count_for_federated_partners, 4);
    assert!(a.keep_crls_up_to_date_for_peers);
    assert_eq!(
        a.discovered_partner_verification_level,
        VerificationLevel::UseSourceVerification
    );
    assert_eq!(a.routing_method, RoutingMethod::UseDnsSrvRouting);
    // Federation off: Policy sees no allowed domain and no discovery, so every domain is refused.
    assert!(c.policy.allowed_domains.is_empty());
    assert!(!c.policy.partner_discovery);
    assert_eq!(
        c.federation.allowed.len(),
        1,
        "kept for the report and the rulebook"
    );
}

#[test]
fn access_edge_keys_in_snake_case_or_as_the_cmdlet_spells_them() {
    let snake = parse(
        "[access_edge]\nallow_federated_users = true\nenable_partner_discovery = true\ndiscovered_partner_verification_level = \"AlwaysUnverifiable\"\ndiscovered_partner_standard_rate = 25\n",
    )
    .unwrap();
    let pascal = parse(
        "[access_edge]\nAllowFederatedUsers = true\nEnablePartnerDiscovery = true\nDiscoveredPartnerVerificationLevel = \"AlwaysUnverifiable\"\nDiscoveredPartnerStandardRate = 25\n",
    )
    .unwrap();
    assert_eq!(snake.federation, pascal.federation);
    assert!(snake.policy.partner_discovery);
    assert_eq!(
        snake.federation.discovered_partner_limits(),
        DiscoveredPartnerLimits {
            rate_per_sec: 25,
            max_contacts: Some(1000),
            report_period_secs: 3600,
            verification_level: VerificationLevel::AlwaysUnverifiable,
        }
    );
    let err = parse("[access_edge]\nallow_federated_users = true\nAllowFederatedUsers = false\n")
        .unwrap_err()
        .to_string();
    // toml points at the table holding both spellings.
    assert_eq!(
        err,
        "edge.toml:1:1: duplicate field `allow_federated_users`\n  hint: keep only one definition of the key"
    );
}

#[test]
fn an_alias_and_its_sfb_key_both_set_is_refused_naming_both() {
    assert_eq!(
        invalid("[policy]\nblocked_domains = [\"a.lab\"]\n\n[[blocked_domains]]\nidentity = \"b.lab\"\n"),
        (
            "policy.blocked_domains".to_owned(),
            "set twice: `policy.blocked_domains` (edgesim's older name) and `[[blocked_domains]] (New-CsBlockedDomain)` say the same thing; keep one: move each domain into a [[blocked_domains]] table (identity = \"spam.lab\") and delete policy.blocked_domains".to_owned()
        )
    );
    assert_eq!(
        invalid("[policy]\nallowed_domains = []\n\n[[allowed_domains]]\nidentity = \"b.lab\"\n").0,
        "policy.allowed_domains"
    );
    let (field, message) = invalid(
        "[policy]\npartner_discovery = true\n\n[access_edge]\nEnablePartnerDiscovery = true\n",
    );
    assert_eq!(field, "policy.partner_discovery");
    assert_eq!(
        message,
        "set twice: `policy.partner_discovery` (edgesim's older name) and `access_edge.enable_partner_discovery (EnablePartnerDiscovery)` say the same thing; keep one: delete policy.partner_discovery"
    );
}

#[test]
fn policy_partner_discovery_still_works_beside_an_access_edge_table() {
    let c = parse(
        "[policy]\npartner_discovery = true\n\n[access_edge]\nallow_federated_users = true\n",
    )
    .unwrap();
    assert!(c.federation.access_edge.enable_partner_discovery);
    assert!(c.policy.partner_discovery);
}

#[test]
fn sfb_domain_tables_resolve_and_reach_the_policy() {
    let c = parse(
        "[access_edge]\nAllowFederatedUsers = true\n\n[[allowed_domains]]\nIdentity = \"fabrikam.lab\"\nDomain = \"Fabrikam.lab.\"\nProxyFqdn = \"sip.fabrikam.lab\"\nVerificationLevel = \"AlwaysVerifiable\"\nMarkForMonitoring = true\nComment = \"direct\"\n\n[[allowed_domains]]\ndomain = \"contoso.lab\"\nproxy_fqdn = \"\"\n\n[[blocked_domains]]\nidentity = \"spam.lab\"\ncomment = \"no\"\n",
    )
    .unwrap();
    assert_eq!(
        c.federation.allowed[0],
        FederatedDomain {
            domain: "fabrikam.lab".into(),
            proxy_fqdn: Some("sip.fabrikam.lab".into()),
            verification_level: VerificationLevel::AlwaysVerifiable,
            mark_for_monitoring: true,
            comment: Some("direct".into()),
            source: Source::Table("allowed_domains", 0),
        }
    );
    assert_eq!(c.federation.allowed[1].proxy_fqdn, None, "empty: DNS SRV");
    assert_eq!(
        c.policy.allowed_domains,
        vec![
            AllowedDomain {
                domain: "fabrikam.lab".into(),
                proxy_fqdn: Some("sip.fabrikam.lab".into())
            },
            AllowedDomain {
                domain: "contoso.lab".into(),
                proxy_fqdn: None
            },
        ]
    );
    assert_eq!(c.policy.blocked_domains, vec!["spam.lab".to_owned()]);
    assert!(
        !c.policy.partner_discovery,
        "EnablePartnerDiscovery: Microsoft's False"
    );
    assert_eq!(
        c.federation.verification_level("FABRIKAM.lab"),
        VerificationLevel::AlwaysVerifiable
    );
    assert_eq!(
        c.federation.verification_level("unknown.lab"),
        VerificationLevel::UseSourceVerification
    );
}

#[test]
fn bad_sfb_values_name_the_field_and_the_range() {
    assert_eq!(
        parse("[access_edge]\nDiscoveredPartnerStandardRate = 0\n")
            .unwrap_err()
            .to_string(),
        "edge.toml: `access_edge.discovered_partner_standard_rate`: 0 is out of range (0 does not mean \"off\"): give messages per second from one discovered partner from 1 to 100000"
    );
    for (text, field, range) in [
        (
            "outgoing_tls_count_for_federated_partners = 5",
            "access_edge.outgoing_tls_count_for_federated_partners",
            "from 1 to 4",
        ),
        (
            "max_contacts_per_discovered_partner = 0",
            "access_edge.max_contacts_per_discovered_partner",
            "from 1 to 1000000",
        ),
        (
            "discovered_partner_report_period_minutes = 10081",
            "access_edge.discovered_partner_report_period_minutes",
            "from 1 to 10080",
        ),
        (
            "certificates_deleted_percentage = 101",
            "access_edge.certificates_deleted_percentage",
            "from 1 to 100",
        ),
        (
            "max_accepted_certificates_stored = 0",
            "access_edge.max_accepted_certificates_stored",
            "from 1 to 1000000",
        ),
        (
            "max_rejected_certificates_stored = 0",
            "access_edge.max_rejected_certificates_stored",
            "from 1 to 1000000",
        ),
        (
            "dns_srv_cache_record_count = 0",
            "access_edge.dns_srv_cache_record_count",
            "from 1 to 10000000",
        ),
        (
            "identity = \"site:Redmond\"",
            "access_edge.identity",
            "Identity Global",
        ),
        (
            "routing_method = \"UseDefaultRouting\"",
            "access_edge.routing_method",
            "Use UseDnsSrvRouting",
        ),
    ] {
        let (f, m) = invalid(&format!("[access_edge]\n{text}\n"));
        assert_eq!(f, field, "{text}");
        assert!(m.contains(range), "{text}: {m}");
    }
    // The ends of each range are accepted.
    parse("[access_edge]\noutgoing_tls_count_for_federated_partners = 1\ndiscovered_partner_standard_rate = 100000\nmax_contacts_per_discovered_partner = 1000000\ndiscovered_partner_report_period_minutes = 10080\ncertificates_deleted_percentage = 100\nidentity = \"global\"\n").unwrap();
    assert_eq!(
        invalid("[[allowed_domains]]\ncomment = \"who?\"\n"),
        (
            "allowed_domains[0].identity".to_owned(),
            "missing: give the SIP domain (Identity, or Domain), e.g. fabrikam.com".to_owned()
        )
    );
    assert_eq!(
        invalid(
            "[[blocked_domains]]\nidentity = \"a.lab\"\n[[blocked_domains]]\ndomain = \"*.spam.lab\"\n"
        ),
        (
            "blocked_domains[1].domain".to_owned(),
            "\"*.spam.lab\" is not a domain name: give the SIP domain alone, e.g. fabrikam.com"
                .to_owned()
        )
    );
    assert_eq!(
        invalid("[[allowed_domains]]\nidentity = \"a.lab\"\nproxy_fqdn = \"sip.a.lab:5061\"\n").0,
        "allowed_domains[0].proxy_fqdn"
    );
    let err =
        parse("[[allowed_domains]]\nidentity = \"a.lab\"\nverification_level = \"Trusted\"\n")
            .unwrap_err()
            .to_string();
    assert!(err.contains("unknown variant `Trusted`, expected one of `AlwaysVerifiable`, `AlwaysUnverifiable`, `UseSourceVerification`"), "{err}");
}

#[test]
fn a_domain_on_both_lists_or_twice_on_one_is_refused() {
    assert_eq!(
        invalid("[[allowed_domains]]\nidentity = \"Spam.lab\"\n[[blocked_domains]]\nidentity = \"spam.lab.\"\n"),
        (
            "blocked_domains[0]".to_owned(),
            "spam.lab. is both blocked (blocked_domains[0]) and allowed (allowed_domains[0]); a domain can be on only one list (as on a real Edge). Remove it from one of them.".to_owned()
        )
    );
    // Federation off still refuses the contradiction (Policy would not see the allowed list).
    assert_eq!(
        invalid("[access_edge]\n[policy]\nblocked_domains = [\"a.lab\"]\nallowed_domains = [{ domain = \"a.lab\" }]\n").0,
        "policy.blocked_domains"
    );
    assert_eq!(
        invalid("[[allowed_domains]]\nidentity = \"a.lab\"\n[[allowed_domains]]\ndomain = \"A.lab\"\n"),
        (
            "allowed_domains[1]".to_owned(),
            "A.lab is listed twice as an allowed domain (allowed_domains[0] and allowed_domains[1]); a real Edge refuses the second New-CsAllowedDomain. Remove one.".to_owned()
        )
    );
}

#[test]
fn snake_case_is_the_toml_spelling_of_every_cmdlet_name() {
    assert_eq!(
        validate::snake_case("KeepCrlsUpToDateForPeers"),
        "keep_crls_up_to_date_for_peers"
    );
    assert_eq!(
        validate::snake_case("OutgoingTlsCountForFederatedPartners"),
        "outgoing_tls_count_for_federated_partners"
    );
    assert_eq!(validate::snake_case("ProxyFqdn"), "proxy_fqdn");
}

#[test]
fn the_report_of_the_lab_defaults() {
    assert_eq!(
        FederationSettings::default().report(None),
        vec![
            "federation settings: edgesim's lab defaults (no [access_edge]: AllowFederatedUsers True, where a real Edge ships with False)",
            "federation: on (AllowFederatedUsers True)",
            "partner discovery: on (EnablePartnerDiscovery True, RoutingMethod UseDnsSrvRouting): a domain neither allowed nor blocked federates once its _sipfederationtls._tcp SRV record checks out",
            "discovered partners: DiscoveredPartnerVerificationLevel UseSourceVerification, DiscoveredPartnerStandardRate 20 messages/s, MaxContactsPerDiscoveredPartner 1000 per 60 minutes (EnableDiscoveredPartnerContactsLimit True) — counted for the watch list, not enforced (edgesim's lab defaults: an [access_edge] or a pasted Get-CsAccessEdgeConfiguration enforces them)",
            "allowed domains: none",
            "blocked domains: none",
            "outbound: MarkSourceVerifiableOnOutgoingMessages True, OutgoingTlsCountForFederatedPartners 4 — recorded, not enforced yet; KeepCrlsUpToDateForPeers True: edgesim checks no CRLs",
        ]
    );
    let off = parse("[access_edge]\nenable_partner_discovery = true\n").unwrap();
    let lines = off.federation.report(Some(Path::new("lab/edge.toml")));
    assert_eq!(
        lines[..3],
        [
            "federation settings: [access_edge] of lab/edge.toml (what it leaves out: Microsoft's defaults)",
            "federation: off (AllowFederatedUsers False): every federated domain is refused with 403 and ms-diagnostics 1002, allowed domains included",
            "partner discovery: EnablePartnerDiscovery True has no effect while federation is off",
        ]
    );
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sfb")
        .join(name)
}

#[test]
fn pasted_files_replace_the_access_edge_and_join_the_lists() {
    let mut c = parse("[access_edge]\nallow_federated_users = true\nenable_partner_discovery = true\n\n[[blocked_domains]]\nidentity = \"junk.lab\"\n").unwrap();
    let files = [
        fixture("access-edge.txt"),
        fixture("allowed.txt"),
        fixture("blocked.txt"),
    ];
    let notes = c
        .apply_sfb_files(&files, Some(Path::new("edge.toml")))
        .unwrap();
    let edge = fixture("access-edge.txt");
    assert_eq!(
        notes,
        vec![format!(
            "note: the [access_edge] of edge.toml is replaced by the pasted Get-CsAccessEdgeConfiguration ({}:4)",
            edge.display()
        )]
    );
    assert_eq!(c.federation.origin, Source::Pasted(edge, 4));
    assert!(
        !c.policy.partner_discovery,
        "the customer's EnablePartnerDiscovery False"
    );
    assert_eq!(c.policy.blocked_domains, vec!["junk.lab", "spam.lab"]);
    assert_eq!(
        c.policy.allowed_domains,
        vec![
            AllowedDomain {
                domain: "fabrikam.lab".into(),
                proxy_fqdn: Some("sip.fabrikam.lab".into())
            },
            AllowedDomain {
                domain: "contoso.lab".into(),
                proxy_fqdn: None
            },
        ]
    );
    let allowed = fixture("allowed.txt");
    let report = c.federation.report(Some(Path::new("edge.toml")));
    // Discovery is off: no discovered-partner line.
    assert_eq!(
        report[3..6],
        [
            format!(
                "allowed domain fabrikam.lab: ProxyFqdn sip.fabrikam.lab (no SRV lookup; the peer certificate must name it), VerificationLevel UseSourceVerification ({}:3)",
                allowed.display()
            ),
            format!(
                "allowed domain contoso.lab: DNS SRV, VerificationLevel AlwaysUnverifiable ({}:12)",
                allowed.display()
            ),
            "blocked domain junk.lab (blocked_domains[0])".to_owned(),
        ]
    );
}

#[test]
fn pasted_domains_only_keep_the_files_access_edge_and_say_so() {
    let mut c = EdgeConfig::default();
    let notes = c.apply_sfb_files(&[fixture("blocked.txt")], None).unwrap();
    assert_eq!(
        notes,
        vec![
            "warning: no Get-CsAccessEdgeConfiguration among the --sfb-config files: the Access Edge settings stay edgesim's lab defaults (no [access_edge]: AllowFederatedUsers True, where a real Edge ships with False); paste `Get-CsAccessEdgeConfiguration | Format-List` too to reproduce the customer's Edge"
        ]
    );
    assert!(c.policy.partner_discovery);
    assert_eq!(c.policy.blocked_domains, vec!["spam.lab"]);
}

#[test]
fn a_pasted_domain_that_contradicts_the_configuration_names_both() {
    let mut c = parse("[policy]\nallowed_domains = [{ domain = \"spam.lab\" }]\n").unwrap();
    let blocked = fixture("blocked.txt");
    let err = c
        .apply_sfb_files(std::slice::from_ref(&blocked), None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:3: spam.lab is both blocked ({}:3) and allowed (policy.allowed_domains[0]); a domain can be on only one list (as on a real Edge). Remove it from one of them.",
            blocked.display(),
            blocked.display()
        )
    );
    let twice = c
        .apply_sfb_files(
            &[fixture("access-edge.txt"), fixture("access-edge.txt")],
            None,
        )
        .unwrap_err()
        .to_string();
    let edge = fixture("access-edge.txt");
    assert_eq!(
        twice,
        format!(
            "{}:4: a second Get-CsAccessEdgeConfiguration (the first is at {}:4): an Edge has one global Access Edge configuration; give one",
            edge.display(),
            edge.display()
        )
    );
    let missing = c
        .apply_sfb_files(&[PathBuf::from("/nonexistent/edge.txt")], None)
        .unwrap_err()
        .to_string();
    assert_eq!(
        missing,
        "/nonexistent/edge.txt: cannot read it: No such file or directory (os error 2); check the path given to --sfb-config"
    );
}

#[test]
fn an_unknown_edge_version_names_the_file_the_field_and_the_versions() {
    let e = EdgeConfig::from_toml("[edge]\nversion = \"sfb2016\"\n", Path::new("edge.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("edge.toml:2:11: field `edge.version`: "),
        "{e}"
    );
    assert!(
        e.contains("`lync2013`, `sfb2015`, `sfb2019`, `sfbse`"),
        "{e}"
    );
    assert!(e.contains("hint: "), "{e}");
    let e = EdgeConfig::from_toml(
        "[edge]\ndiagnostic_headers = \"all\"\n",
        Path::new("edge.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("field `edge.diagnostic_headers`"), "{e}");
    assert!(e.contains("`internal`, `public`, `none`"), "{e}");
}

#[test]
fn the_version_profile_sets_the_tls_versions_unless_tls_versions_does() {
    use TlsVersion::{Tls12, Tls13};
    let cases = [
        (
            "[edge]\nversion = \"lync2013\"\n",
            &[Tls12][..],
            TlsVersionsSource::Profile,
        ),
        (
            "[edge]\nversion = \"sfb2015\"\n",
            &[Tls12][..],
            TlsVersionsSource::Profile,
        ),
        (
            "[edge]\nversion = \"sfb2019\"\n",
            &[Tls12, Tls13][..],
            TlsVersionsSource::Profile,
        ),
        (
            "[edge]\nversion = \"sfbse\"\n",
            &[Tls12, Tls13][..],
            TlsVersionsSource::Profile,
        ),
        (
            "[edge]\nversion = \"lync2013\"\n[tls]\nversions = [\"1.3\"]\n",
            &[Tls13][..],
            TlsVersionsSource::Config,
        ),
        (
            "[edge]\nversion = \"sfb2019\"\n[tls]\nversions = [\"1.2\"]\n",
            &[Tls12][..],
            TlsVersionsSource::Config,
        ),
    ];
    for (text, versions, source) in cases {
        let c = parse(text).unwrap();
        assert_eq!(
            (c.tls_versions(), c.tls_versions_source()),
            (versions, source),
            "{text}"
        );
    }
}

#[test]
fn an_empty_tls_versions_names_the_file_the_field_and_the_profile_to_fall_back_on() {
    let e = parse("[edge]\nversion = \"sfb2019\"\n[tls]\nversions = []\n")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "edge.toml: `tls.versions`: no TLS version left to offer; write versions = [\"1.2\"] or [\"1.2\", \"1.3\"], or remove the key to offer the profile's ([edge] version = \"sfb2019\": TLS 1.2, 1.3)"
    );
}

#[test]
fn tls_1_0_or_1_1_in_tls_versions_says_rustls_has_neither() {
    let e = parse("[tls]\nversions = [\"1.2\", \"1.1\"]\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("edge.toml:2:20: field `tls.versions`: unknown variant `1.1`"),
        "{e}"
    );
    assert!(
        e.ends_with("\n  hint: rustls implements neither TLS 1.0 nor 1.1, so edgesim cannot offer them; write \"1.2\" and/or \"1.3\""),
        "{e}"
    );
}

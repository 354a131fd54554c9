//! The presence settings of the configuration: a user's `presence = { … }` and `[presence]`. They live here, not
//! in `config`, so that the presence core reads them ([`super::profile`]) without importing `config`, which
//! itself checks them through the core (`config::validate` → `presence::profile`): no import circle.
//! `config` re-exports them under their old names.

use serde::{Deserialize, Serialize};

/// A user's presence: `presence = { availability = "busy", activity = "in-a-meeting", note = "…",
/// display_name = "…", schedule = [{ after_s = 30, availability = "away" }] }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct UserPresenceConfig {
    /// A Lync availability number, or a name (`busy`, `dnd`, …) for its canonical number; none: available.
    #[serde(deserialize_with = "availability::optional")]
    pub availability: Option<u32>,
    /// The activity token (`in-a-meeting`).
    pub activity: Option<String>,
    /// The personal note.
    pub note: Option<String>,
    /// The display name.
    pub display_name: Option<String>,
    /// Changes after the start, in time order.
    pub schedule: Vec<PresenceStepConfig>,
}

/// One change of a user's presence: at `after_s` seconds after the Edge started, this availability and
/// activity (and this note, when given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceStepConfig {
    /// Seconds after the Edge started.
    pub after_s: u64,
    /// A number or a name, as for the first state.
    #[serde(deserialize_with = "availability::required")]
    pub availability: u32,
    /// The activity from then on; none: no activity.
    #[serde(default)]
    pub activity: Option<String>,
    /// The note from then on; none: the first state's note.
    #[serde(default)]
    pub note: Option<String>,
}

/// Availability values: a TOML integer (the Lync number) or a string (a number or a name).
mod availability {
    use serde::Deserializer;
    use serde::de::{self, Unexpected, Visitor};
    use std::fmt;

    struct V;

    impl Visitor<'_> for V {
        type Value = u32;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an availability number from 0 to 4294967295 or a name such as \"busy\"")
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u32, E> {
            u32::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u32, E> {
            u32::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<u32, E> {
            crate::presence::state::Availability::parse_number(v).map_err(E::custom)
        }
    }

    pub(super) fn required<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        d.deserialize_any(V)
    }

    pub(super) fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        d.deserialize_any(V).map(Some)
    }
}

/// `[presence]`: the subscriptions the Edge keeps for its users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PresenceConfig {
    /// Subscriptions one connection may hold; past it, 503 with ms-diagnostics.
    pub max_subscriptions_per_connection: usize,
    /// Subscriptions one user may have; past it, 503 with ms-diagnostics.
    pub max_subscriptions_per_user: usize,
    /// Expiry granted to a SUBSCRIBE without Expires, seconds.
    pub default_expires_s: u32,
    /// A shorter requested expiry is raised to this (never 423), seconds.
    pub min_expires_s: u32,
    /// A longer requested expiry is lowered to this, seconds.
    pub max_expires_s: u32,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            max_subscriptions_per_connection: 1000,
            max_subscriptions_per_user: 500,
            default_expires_s: 28800,
            min_expires_s: 1200,
            max_expires_s: 43200,
        }
    }
}

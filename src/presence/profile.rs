//! From the configuration to the presence core: a user's `presence = { … }` to its [`Schedule`], `[presence]`
//! to the table's [`Limits`]. The checks live here once; `config::validate` reports them with the file's key.

use std::time::Duration;

use super::action::Limits;
use super::negotiate::ExpiryBounds;
use super::schedule::{Schedule, Step};
use super::settings::{PresenceConfig, UserPresenceConfig};
use super::state::{MAX_TEXT_CHARS, PresenceState, is_activity_token};

/// What is wrong in a user's presence: the key below the user (`presence.schedule[1].activity`) and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileProblem {
    /// The key, relative to the user.
    pub field: String,
    /// What is wrong and the fix.
    pub message: String,
}

fn problem(field: String, message: String) -> ProfileProblem {
    ProfileProblem { field, message }
}

fn activity(field: &str, a: &Option<String>) -> Result<Option<String>, ProfileProblem> {
    match a {
        Some(t) if !is_activity_token(t) => Err(problem(
            field.to_owned(),
            format!(
                "`{t}` is not an activity token: give a word such as in-a-meeting, on-the-phone, in-a-conference, \
                 out-of-office, urgent-interruptions-only (letters, digits and -, at most 64); free text goes in note"
            ),
        )),
        Some(t) => Ok(Some(t.clone())),
        None => Ok(None),
    }
}

fn text(field: &str, t: &Option<String>) -> Result<Option<String>, ProfileProblem> {
    match t {
        Some(s) if s.chars().count() > MAX_TEXT_CHARS => Err(problem(
            field.to_owned(),
            format!(
                "{} characters is too long: give at most {MAX_TEXT_CHARS}",
                s.chars().count()
            ),
        )),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => Ok(Some(s.clone())),
        None => Ok(None),
    }
}

/// The schedule a user's presence configuration describes: the first state, then each step (its
/// availability and activity replace the state's; its note replaces the note when given; the display name
/// stays).
pub fn schedule(cfg: &UserPresenceConfig) -> Result<Schedule, ProfileProblem> {
    let initial = PresenceState {
        availability: cfg
            .availability
            .unwrap_or(PresenceState::default().availability),
        activity: activity("presence.activity", &cfg.activity)?,
        note: text("presence.note", &cfg.note)?,
        display_name: text("presence.display_name", &cfg.display_name)?,
    };
    let mut steps = Vec::new();
    for (i, s) in cfg.schedule.iter().enumerate() {
        let at = |key: &str| format!("presence.schedule[{i}].{key}");
        let note = text(&at("note"), &s.note)?;
        steps.push(Step {
            after: Duration::from_secs(s.after_s),
            state: PresenceState {
                availability: s.availability,
                activity: activity(&at("activity"), &s.activity)?,
                note: note.or_else(|| initial.note.clone()),
                display_name: initial.display_name.clone(),
            },
        });
    }
    Schedule::new(initial, steps).map_err(|e| {
        let index = match e {
            super::schedule::ScheduleError::AtZero { index }
            | super::schedule::ScheduleError::NotIncreasing { index, .. } => index,
        };
        problem(format!("presence.schedule[{index}].after_s"), e.to_string())
    })
}

impl From<&PresenceConfig> for Limits {
    fn from(c: &PresenceConfig) -> Self {
        Limits {
            max_per_connection: c.max_subscriptions_per_connection,
            max_per_user: c.max_subscriptions_per_user,
            expiry: ExpiryBounds {
                default_s: c.default_expires_s,
                min_s: c.min_expires_s,
                max_s: c.max_expires_s,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::Availability;
    use crate::presence::settings::PresenceStepConfig;

    fn step(after_s: u64, availability: u32) -> PresenceStepConfig {
        PresenceStepConfig {
            after_s,
            availability,
            activity: None,
            note: None,
        }
    }

    #[test]
    fn a_configured_schedule_keeps_name_and_note() {
        let cfg = UserPresenceConfig {
            availability: Some(3500),
            activity: None,
            note: Some("at my desk".into()),
            display_name: Some("Steven".into()),
            schedule: vec![
                PresenceStepConfig {
                    activity: Some("in-a-meeting".into()),
                    ..step(30, 6500)
                },
                PresenceStepConfig {
                    note: Some("gone".into()),
                    ..step(90, 15500)
                },
            ],
        };
        let s = schedule(&cfg).unwrap();
        let busy = s.state_at(Duration::from_secs(30));
        assert_eq!(busy.class(), Availability::Busy);
        assert_eq!(busy.activity.as_deref(), Some("in-a-meeting"));
        assert_eq!(busy.note.as_deref(), Some("at my desk"));
        assert_eq!(busy.display_name.as_deref(), Some("Steven"));
        let away = s.state_at(Duration::from_secs(90));
        assert_eq!(away.activity, None);
        assert_eq!(away.note.as_deref(), Some("gone"));
    }

    #[test]
    fn an_unconfigured_user_is_available_forever() {
        let s = schedule(&UserPresenceConfig::default()).unwrap();
        assert_eq!(s, Schedule::default());
    }

    #[test]
    fn problems_name_the_key_under_the_user() {
        let bad_token = UserPresenceConfig {
            activity: Some("in a meeting".into()),
            ..UserPresenceConfig::default()
        };
        assert_eq!(schedule(&bad_token).unwrap_err().field, "presence.activity");
        let long = UserPresenceConfig {
            note: Some("x".repeat(1025)),
            ..UserPresenceConfig::default()
        };
        assert_eq!(
            schedule(&long).unwrap_err().message,
            "1025 characters is too long: give at most 1024"
        );
        let order = UserPresenceConfig {
            schedule: vec![step(60, 6500), step(30, 15500)],
            ..UserPresenceConfig::default()
        };
        let p = schedule(&order).unwrap_err();
        assert_eq!(p.field, "presence.schedule[1].after_s");
        assert_eq!(
            p.message,
            "step 1 at 30 s is not after the step before it (60 s): list steps in time order"
        );
        let step_token = UserPresenceConfig {
            schedule: vec![PresenceStepConfig {
                activity: Some("<x>".into()),
                ..step(5, 6500)
            }],
            ..UserPresenceConfig::default()
        };
        assert_eq!(
            schedule(&step_token).unwrap_err().field,
            "presence.schedule[0].activity"
        );
    }

    #[test]
    fn limits_come_from_the_presence_section() {
        let l = Limits::from(&PresenceConfig::default());
        assert_eq!(l, Limits::default());
    }
}

//! A user's presence as the Edge publishes it: the availability number and its class, the activity token, the
//! note and the display name.
//!
//! The numbers and classes are Lync's ("state/availability element", Lync 2013 schema: 0–4499 Available,
//! 4500–5999 Available-Idle, 6000–7499 Busy, 7500–8999 Busy-Idle, 9000–11999 Do Not Disturb, 12000–14999 Be Right
//! Back, 15000–17999 Away, 18000 and higher Offline). The canonical numbers are the ones Lync clients publish for
//! a class (SIPE `sipe-ocs2007.h`: 3500, 6500, 9500, 12500, 15500, 18500; 5000 and 7500 for the idle classes).

use std::fmt;

/// The longest note or display name accepted (characters). MS-SIP §2.2.1 limits the persisted `userInfo` to
/// 1,024 characters; edgesim uses the same bound for every free text it publishes.
pub const MAX_TEXT_CHARS: usize = 1024;
/// The longest activity token accepted (bytes).
pub const MAX_TOKEN_LEN: usize = 64;

/// An availability class: a range of availability numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Availability {
    /// 0–4499.
    Available,
    /// 4500–5999.
    AvailableIdle,
    /// 6000–7499.
    Busy,
    /// 7500–8999.
    BusyIdle,
    /// 9000–11999.
    DoNotDisturb,
    /// 12000–14999.
    BeRightBack,
    /// 15000–17999.
    Away,
    /// 18000 and higher.
    Offline,
}

/// Every class, in availability order.
pub const ALL: [Availability; 8] = [
    Availability::Available,
    Availability::AvailableIdle,
    Availability::Busy,
    Availability::BusyIdle,
    Availability::DoNotDisturb,
    Availability::BeRightBack,
    Availability::Away,
    Availability::Offline,
];

/// Why a text is not an availability.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{given}` is not an availability: give a number (0 to 4294967295, e.g. 6500) or one of available, available-idle, busy, busy-idle, do-not-disturb (dnd), be-right-back (brb), away, offline"
)]
pub struct AvailabilityError {
    /// The text as given.
    pub given: String,
}

impl Availability {
    /// The class of an availability number.
    pub fn of(number: u32) -> Availability {
        match number {
            0..=4499 => Availability::Available,
            4500..=5999 => Availability::AvailableIdle,
            6000..=7499 => Availability::Busy,
            7500..=8999 => Availability::BusyIdle,
            9000..=11999 => Availability::DoNotDisturb,
            12000..=14999 => Availability::BeRightBack,
            15000..=17999 => Availability::Away,
            _ => Availability::Offline,
        }
    }

    /// The number a Lync client publishes for this class.
    pub fn canonical(self) -> u32 {
        match self {
            Availability::Available => 3500,
            Availability::AvailableIdle => 5000,
            Availability::Busy => 6500,
            Availability::BusyIdle => 7500,
            Availability::DoNotDisturb => 9500,
            Availability::BeRightBack => 12500,
            Availability::Away => 15500,
            Availability::Offline => 18500,
        }
    }

    /// The name a Skype client shows (`Do Not Disturb`).
    pub fn name(self) -> &'static str {
        match self {
            Availability::Available => "Available",
            Availability::AvailableIdle => "Available-Idle",
            Availability::Busy => "Busy",
            Availability::BusyIdle => "Busy-Idle",
            Availability::DoNotDisturb => "Do Not Disturb",
            Availability::BeRightBack => "Be Right Back",
            Availability::Away => "Away",
            Availability::Offline => "Offline",
        }
    }

    /// The configuration spelling (`do-not-disturb`).
    pub fn token(self) -> &'static str {
        match self {
            Availability::Available => "available",
            Availability::AvailableIdle => "available-idle",
            Availability::Busy => "busy",
            Availability::BusyIdle => "busy-idle",
            Availability::DoNotDisturb => "do-not-disturb",
            Availability::BeRightBack => "be-right-back",
            Availability::Away => "away",
            Availability::Offline => "offline",
        }
    }

    /// A class from its name, case-insensitively, with `-`, `_` and spaces alike: the configuration spellings,
    /// the names a client shows, and the short forms `dnd`, `brb`, `idle`, `online`.
    pub fn from_name(name: &str) -> Option<Availability> {
        let norm: String = name
            .trim()
            .chars()
            .map(|c| match c {
                '_' | ' ' => '-',
                c => c.to_ascii_lowercase(),
            })
            .collect();
        Some(match norm.as_str() {
            "available" | "online" => Availability::Available,
            "available-idle" | "idle" | "inactive" => Availability::AvailableIdle,
            "busy" => Availability::Busy,
            "busy-idle" => Availability::BusyIdle,
            "do-not-disturb" | "dnd" => Availability::DoNotDisturb,
            "be-right-back" | "brb" => Availability::BeRightBack,
            "away" => Availability::Away,
            "offline" => Availability::Offline,
            _ => return None,
        })
    }

    /// An availability number from a number (`6500`) or a name (`busy`: its canonical number).
    pub fn parse_number(text: &str) -> Result<u32, AvailabilityError> {
        let t = text.trim();
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            return t
                .parse()
                .map_err(|_| AvailabilityError { given: text.into() });
        }
        Availability::from_name(t)
            .map(Availability::canonical)
            .ok_or_else(|| AvailabilityError { given: text.into() })
    }

    /// Whether a subscriber sees the user as reachable (PIDF `open`): every class but Offline.
    pub fn is_open(self) -> bool {
        self != Availability::Offline
    }

    /// The two idle classes.
    pub fn is_idle(self) -> bool {
        matches!(self, Availability::AvailableIdle | Availability::BusyIdle)
    }
}

impl fmt::Display for Availability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The text a Lync client shows for a standard activity token (Lync 2013 schema, "state/activity element");
/// `None` for any other token.
pub fn activity_description(token: &str) -> Option<&'static str> {
    Some(match token {
        "on-the-phone" => "On the phone",
        "in-a-conference" => "In a conference",
        "in-a-meeting" => "In a meeting",
        "out-of-office" => "Out of office",
        "urgent-interruptions-only" => "Urgent interruptions only",
        "off-work" => "Off work",
        "in-presentation" => "Presenting",
        _ => return None,
    })
}

/// Whether `token` can be an activity token: 1 to [`MAX_TOKEN_LEN`] ASCII letters, digits, `-`, `_` or `.`.
pub fn is_activity_token(token: &str) -> bool {
    (1..=MAX_TOKEN_LEN).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// What a user publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceState {
    /// The availability number (its class: [`PresenceState::class`]).
    pub availability: u32,
    /// The activity token (`in-a-meeting`), if any.
    pub activity: Option<String>,
    /// The personal note, if any.
    pub note: Option<String>,
    /// The display name, if any.
    pub display_name: Option<String>,
}

impl Default for PresenceState {
    /// Available (3500), nothing else: a user without presence configuration.
    fn default() -> Self {
        PresenceState::of(Availability::Available)
    }
}

impl PresenceState {
    /// The canonical number of `class`, no activity, note or display name.
    pub fn of(class: Availability) -> Self {
        PresenceState {
            availability: class.canonical(),
            activity: None,
            note: None,
            display_name: None,
        }
    }

    /// The availability class.
    pub fn class(&self) -> Availability {
        Availability::of(self.availability)
    }

    /// What a Skype client shows: `Busy (In a meeting) "note"`, the activity by its standard text when it has
    /// one, else the token.
    pub fn describe(&self) -> String {
        let mut out = self.class().name().to_owned();
        if let Some(a) = &self.activity {
            out.push_str(" (");
            out.push_str(activity_description(a).unwrap_or(a));
            out.push(')');
        }
        if let Some(n) = &self.note {
            out.push_str(" \"");
            out.push_str(n);
            out.push('"');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_range_edge_has_its_class() {
        let edges = [
            (0, Availability::Available),
            (4499, Availability::Available),
            (4500, Availability::AvailableIdle),
            (5999, Availability::AvailableIdle),
            (6000, Availability::Busy),
            (7499, Availability::Busy),
            (7500, Availability::BusyIdle),
            (8999, Availability::BusyIdle),
            (9000, Availability::DoNotDisturb),
            (11999, Availability::DoNotDisturb),
            (12000, Availability::BeRightBack),
            (14999, Availability::BeRightBack),
            (15000, Availability::Away),
            (17999, Availability::Away),
            (18000, Availability::Offline),
            (u32::MAX, Availability::Offline),
        ];
        for (n, class) in edges {
            assert_eq!(Availability::of(n), class, "{n}");
        }
    }

    #[test]
    fn canonical_numbers_are_lyncs_and_fall_in_their_class() {
        let numbers: Vec<u32> = ALL.iter().map(|c| c.canonical()).collect();
        assert_eq!(numbers, [3500, 5000, 6500, 7500, 9500, 12500, 15500, 18500]);
        for c in ALL {
            assert_eq!(Availability::of(c.canonical()), c);
            assert_eq!(Availability::from_name(c.token()), Some(c));
            assert_eq!(Availability::from_name(c.name()), Some(c));
        }
    }

    #[test]
    fn names_parse_case_insensitively_with_short_forms() {
        for (text, n) in [
            ("busy", 6500),
            ("BUSY", 6500),
            (" Do-Not-Disturb ", 9500),
            ("dnd", 9500),
            ("Do Not Disturb", 9500),
            ("be_right_back", 12500),
            ("BRB", 12500),
            ("away", 15500),
            ("offline", 18500),
            ("available", 3500),
            ("Available-Idle", 5000),
            ("busy-idle", 7500),
            ("6500", 6500),
            ("0", 0),
            ("4294967295", u32::MAX),
        ] {
            assert_eq!(Availability::parse_number(text), Ok(n), "{text}");
        }
    }

    #[test]
    fn a_wrong_name_or_number_says_what_to_give() {
        let e = Availability::parse_number("bussy").unwrap_err();
        assert_eq!(
            e.to_string(),
            "`bussy` is not an availability: give a number (0 to 4294967295, e.g. 6500) or one of available, \
             available-idle, busy, busy-idle, do-not-disturb (dnd), be-right-back (brb), away, offline"
        );
        assert!(Availability::parse_number("4294967296").is_err());
        assert!(Availability::parse_number("-1").is_err());
        assert!(Availability::parse_number("").is_err());
    }

    #[test]
    fn description_uses_the_standard_activity_text() {
        let mut s = PresenceState::of(Availability::Busy);
        s.activity = Some("in-a-meeting".into());
        assert_eq!(s.describe(), "Busy (In a meeting)");
        s.activity = Some("lunch".into());
        s.note = Some("back at 2".into());
        assert_eq!(s.describe(), "Busy (lunch) \"back at 2\"");
        assert_eq!(PresenceState::default().describe(), "Available");
    }

    #[test]
    fn activity_tokens_are_short_ascii_words() {
        assert!(is_activity_token("in-a-meeting"));
        assert!(!is_activity_token(""));
        assert!(!is_activity_token("in a meeting"));
        assert!(!is_activity_token("<x>"));
        assert!(!is_activity_token(&"a".repeat(65)));
    }
}

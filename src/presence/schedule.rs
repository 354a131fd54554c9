//! A user's presence over time: a first state and steps at fixed offsets (`Available → Busy after 30 s →
//! Away after 90 s`). Pure: the caller passes the time elapsed since the schedule's start (for the Edge, since
//! it started serving).

use std::time::Duration;

use super::state::PresenceState;

/// One change of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// When, from the schedule's start (strictly after the previous step, and after zero).
    pub after: Duration,
    /// The state from then on.
    pub state: PresenceState,
}

/// Why steps do not make a schedule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// A step at zero: that is the first state, not a change.
    #[error(
        "step {index} is at 0 s: give the first state in the presence itself, and steps after it"
    )]
    AtZero {
        /// 0-based.
        index: usize,
    },
    /// A step not after the one before it.
    #[error(
        "step {index} at {at} s is not after the step before it ({before} s): list steps in time order"
    )]
    NotIncreasing {
        /// 0-based.
        index: usize,
        /// Its offset, seconds.
        at: u64,
        /// The previous offset, seconds.
        before: u64,
    },
}

/// A first state and its changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    initial: PresenceState,
    steps: Vec<Step>,
}

impl Default for Schedule {
    /// Available, forever.
    fn default() -> Self {
        Schedule::fixed(PresenceState::default())
    }
}

impl Schedule {
    /// One state, forever.
    pub fn fixed(state: PresenceState) -> Self {
        Schedule {
            initial: state,
            steps: Vec::new(),
        }
    }

    /// `initial`, then each step at its offset.
    pub fn new(initial: PresenceState, steps: Vec<Step>) -> Result<Self, ScheduleError> {
        let mut before = Duration::ZERO;
        for (index, s) in steps.iter().enumerate() {
            if s.after.is_zero() {
                return Err(ScheduleError::AtZero { index });
            }
            if s.after <= before {
                return Err(ScheduleError::NotIncreasing {
                    index,
                    at: s.after.as_secs(),
                    before: before.as_secs(),
                });
            }
            before = s.after;
        }
        Ok(Schedule { initial, steps })
    }

    /// The first state.
    pub fn initial(&self) -> &PresenceState {
        &self.initial
    }

    /// The steps, in time order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The state `elapsed` after the start: the last step at or before it, else the first state.
    pub fn state_at(&self, elapsed: Duration) -> &PresenceState {
        self.steps
            .iter()
            .rev()
            .find(|s| s.after <= elapsed)
            .map_or(&self.initial, |s| &s.state)
    }

    /// The offset of the next change strictly after `elapsed`, if any.
    pub fn next_change(&self, elapsed: Duration) -> Option<Duration> {
        self.steps
            .iter()
            .map(|s| s.after)
            .find(|&after| after > elapsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::state::Availability;

    fn s(c: Availability) -> PresenceState {
        PresenceState::of(c)
    }

    fn available_busy_away() -> Schedule {
        Schedule::new(
            s(Availability::Available),
            vec![
                Step {
                    after: Duration::from_secs(30),
                    state: s(Availability::Busy),
                },
                Step {
                    after: Duration::from_secs(90),
                    state: s(Availability::Away),
                },
            ],
        )
        .unwrap()
    }

    #[test]
    fn the_state_follows_the_steps() {
        let sch = available_busy_away();
        let at = |secs: u64| sch.state_at(Duration::from_secs(secs)).class();
        assert_eq!(at(0), Availability::Available);
        assert_eq!(at(29), Availability::Available);
        assert_eq!(at(30), Availability::Busy);
        assert_eq!(at(89), Availability::Busy);
        assert_eq!(at(90), Availability::Away);
        assert_eq!(at(100_000), Availability::Away);
        assert_eq!(
            sch.state_at(Duration::from_millis(29_999)).class(),
            Availability::Available
        );
    }

    #[test]
    fn the_next_change_is_strictly_later() {
        let sch = available_busy_away();
        let next = |secs: u64| sch.next_change(Duration::from_secs(secs));
        assert_eq!(next(0), Some(Duration::from_secs(30)));
        assert_eq!(next(30), Some(Duration::from_secs(90)));
        assert_eq!(next(89), Some(Duration::from_secs(90)));
        assert_eq!(next(90), None);
        assert_eq!(Schedule::default().next_change(Duration::ZERO), None);
        assert_eq!(
            Schedule::default().state_at(Duration::from_secs(5)),
            &PresenceState::default()
        );
    }

    #[test]
    fn steps_must_be_after_zero_and_increasing() {
        let step = |secs| Step {
            after: Duration::from_secs(secs),
            state: s(Availability::Busy),
        };
        let e = Schedule::new(s(Availability::Available), vec![step(0)]).unwrap_err();
        assert_eq!(e, ScheduleError::AtZero { index: 0 });
        let e = Schedule::new(s(Availability::Available), vec![step(30), step(30)]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "step 1 at 30 s is not after the step before it (30 s): list steps in time order"
        );
    }
}

//! Classroom rules, with no I/O (HOUSE_STYLE §1): which lesson is on, whether a check-in
//! is on time, how a thermometer reading pairs with a card tap. The [`crate::classroom`]
//! actor applies them to hardware events and the store.
//!
//! This is the foundation's first cut; issue 3 grows it into the full engine (lesson state
//! machine, term calendar with holidays and 调休, overrides, follow-up lists).

pub(crate) mod calendar;
pub(crate) mod finalise;
pub(crate) mod followup;
pub(crate) mod health;
pub(crate) mod timetable;

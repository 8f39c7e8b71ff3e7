//! Classroom rules, with no I/O (docs/development.md §1): which lesson is on, whether a check-in
//! is on time, how a thermometer reading pairs with a card tap. The [`crate::classroom`]
//! actor applies them to hardware events and the store.
//!
//! The rules themselves are listed in `docs/domain.md`.

pub(crate) mod calendar;
pub(crate) mod finalise;
pub(crate) mod followup;
pub(crate) mod health;
pub(crate) mod ir_trigger;
pub(crate) mod lesson;
pub(crate) mod screen;
pub(crate) mod timetable;
pub(crate) mod trend;
pub(crate) mod usage;

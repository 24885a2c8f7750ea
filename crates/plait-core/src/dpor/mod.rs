//! Partial-order reduction: the analysis behind the `dpor` strategy.
//!
//! Two schedules that only reorder independent steps (steps of different actors that touch
//! no common key, or only read it) are equivalent: they form the same Mazurkiewicz trace.
//! Optimal DPOR (Abdulla, Aronis, Jonsson & Sagonas, POPL'14 / JACM'17) explores exactly
//! one schedule per trace. This module finds the races of one finished execution
//! (`races`) and keeps the wakeup trees that plan their reversals (`wakeup`);
//! `scheduler::dpor` owns the exploration tree and sleep sets.

pub mod races;
pub mod wakeup;

pub use races::{Race, RaceAnalysis, StepView};
pub use wakeup::{Event, WakeupNode};

//! Partial-order reduction: the analysis behind the `dpor` strategy.
//!
//! Two schedules that only reorder independent steps (steps of different actors that touch
//! no common key, or only read it) are equivalent: they form the same Mazurkiewicz trace.
//! Source-DPOR (Abdulla, Aronis, Jonsson & Sagonas, POPL'14 / JACM'17) explores at least
//! one schedule per trace, and with sleep sets rarely more. This module finds the races of
//! one finished execution; `scheduler::dpor` owns the exploration tree and sleep sets.

pub mod races;

pub use races::{RaceAnalysis, StepView};

//! Figures about an exploration, and why it stopped.

use std::fmt;

/// Why an exploration stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Every schedule (within the bounds, if any) was run; a replay ran its one schedule.
    Exhausted,
    /// `max_executions` or `max_seconds` was reached.
    Budget,
    /// A failure was recorded and `stop_on_first` is set.
    Failure,
    /// The engine reported an error (nondeterminism, replay divergence).
    Error,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Exhausted => "exhausted",
            StopReason::Budget => "budget",
            StopReason::Failure => "failure",
            StopReason::Error => "error",
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Figures about an exploration so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Executions finished (`end_execution` called).
    pub executions: u64,
    pub failures: u64,
    /// The strategy ran out of schedules (within the bounds when `bounded`).
    pub exhausted: bool,
    /// A preemption or delay bound cut off part of the space.
    pub bounded: bool,
    /// Decisions made, over all executions.
    pub steps: u64,
    /// Most decisions made in one execution.
    pub max_decisions: u64,
    /// Executions that could only repeat an explored trace (dpor's sleep-set blocked
    /// executions; always 0 for other strategies).
    pub redundant: u64,
    pub elapsed_seconds: f64,
    pub strategy: &'static str,
    /// None while the exploration can go on.
    pub stopped_by: Option<StopReason>,
}

//! The `Scheduler` trait every strategy implements, and the shared vocabulary of a decision.
//!
//! An execution is a sequence of decisions, numbered from 0. An *actor decision* picks one
//! of the runnable actors; a *choice* picks an index in `0..n` (a timer, a random draw).
//! Every decision has a default: the current actor if it is still runnable, else the first
//! runnable one (the caller lists runnable actors in its own default order, e.g. asyncio's
//! FIFO ready queue); index 0 for a choice.
//!
//! Costs, used by the bounded strategies:
//! - a *preemption* is choosing another actor while the current one is runnable (CHESS);
//! - *delays* (Emmi et al., POPL'11) count deviations from the default order: picking the
//!   i-th actor of the default order (current first, then the runnable list without it)
//!   costs i delays, and choosing k in a choice costs k delays.

pub mod dfs;
pub mod dpor;
pub mod pct;
pub mod random;
pub mod replay;

use crate::error::ExploreError;
use crate::footprint::Access;

pub use dfs::DfsScheduler;
pub use dpor::DporScheduler;
pub use pct::PctScheduler;
pub use random::RandomScheduler;
pub use replay::ReplayScheduler;

/// A strategy: answers the decisions of one execution after another.
///
/// The explorer guarantees that decisions arrive with consecutive indices from 0, that
/// `runnable` is non-empty and `n` is non-zero, and that `new_execution` and
/// `end_execution` alternate.
pub trait Scheduler {
    /// Prepares the next execution, whose per-execution seed is `seed`; false when the
    /// strategy has nothing left to explore.
    fn new_execution(&mut self, seed: u64) -> bool;

    /// Picks the actor that runs the next step.
    fn next_actor(
        &mut self,
        decision: u64,
        runnable: &[u32],
        current: Option<u32>,
    ) -> Result<u32, ExploreError>;

    /// Picks a recorded choice in `0..n`.
    fn next_choice(&mut self, decision: u64, n: u32) -> Result<u32, ExploreError>;

    /// The footprint of the step `actor` just ran; `enabled` were the actors runnable at the
    /// scheduling point before it. Strategies without partial-order reduction ignore it.
    fn record_step(&mut self, _actor: u32, _enabled: &[u32], _accesses: &[Access]) {}

    /// The execution ended after `decisions` decisions.
    fn end_execution(&mut self, _decisions: u64) -> Result<(), ExploreError> {
        Ok(())
    }

    /// True when a bound (preemptions, delays) has cut off part of the space, so
    /// "exhausted" means "exhausted within the bound".
    fn bounded(&self) -> bool {
        false
    }

    /// Executions that could only repeat an already explored trace (DPOR's sleep-set
    /// blocked executions); they still ran to the end.
    fn redundant(&self) -> u64 {
        0
    }

    /// Heap bytes the strategy keeps between executions (for the bounded-memory tests).
    fn retained_bytes(&self) -> usize {
        0
    }
}

/// The default actor: `current` if it is runnable, else the first runnable actor.
pub fn default_actor(runnable: &[u32], current: Option<u32>) -> u32 {
    match current {
        Some(c) if runnable.contains(&c) => c,
        _ => runnable[0],
    }
}

/// Position of `current` in `runnable`, if it is runnable.
pub(crate) fn current_position(runnable: &[u32], current: Option<u32>) -> Option<usize> {
    current.and_then(|c| runnable.iter().position(|&a| a == c))
}

/// The actor at position `i` of the default order (current first, then the others in order).
pub(crate) fn actor_in_default_order(runnable: &[u32], cur_pos: Option<usize>, i: usize) -> u32 {
    match cur_pos {
        Some(p) if i == 0 => runnable[p],
        Some(p) if i <= p => runnable[i - 1],
        // Past the current actor's slot (or with no current actor) the orders agree.
        _ => runnable[i],
    }
}

/// Describes an actor decision's options for error messages.
pub(crate) fn describe_options(runnable: &[u32], current: Option<u32>) -> String {
    match current {
        Some(c) => format!("runnable actors {runnable:?} with actor {c} current"),
        None => format!("runnable actors {runnable:?} with no current actor"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_order() {
        let r = [3, 5, 7];
        assert_eq!(default_actor(&r, Some(5)), 5);
        assert_eq!(default_actor(&r, Some(9)), 3);
        assert_eq!(default_actor(&r, None), 3);
        let p = current_position(&r, Some(7));
        let order: Vec<u32> = (0..3).map(|i| actor_in_default_order(&r, p, i)).collect();
        assert_eq!(order, vec![7, 3, 5]);
        let p = current_position(&r, Some(5));
        let order: Vec<u32> = (0..3).map(|i| actor_in_default_order(&r, p, i)).collect();
        assert_eq!(order, vec![5, 3, 7]);
    }
}

//! Replay: follows a token's schedule for exactly one execution, and says where the program
//! stops following it.

use super::{default_actor, Scheduler};
use crate::error::ExploreError;
use crate::token::{Deviation, Token};

#[derive(Debug)]
pub struct ReplayScheduler {
    deviations: Vec<Deviation>,
    /// Index in `deviations` of the next deviation to apply.
    next: usize,
    decisions: u64,
    started: bool,
}

impl ReplayScheduler {
    pub fn new(token: &Token) -> Self {
        ReplayScheduler {
            deviations: token.deviations.clone(),
            next: 0,
            decisions: token.decisions,
            started: false,
        }
    }

    fn check_more(&self, decision: u64) -> Result<(), ExploreError> {
        if decision >= self.decisions {
            return Err(ExploreError::ReplayDivergence {
                decision,
                detail: format!(
                    "the program asked for more decisions than the {} the token recorded",
                    self.decisions
                ),
            });
        }
        Ok(())
    }

    /// The token's value for this decision, if the token deviates here.
    fn deviation_at(&mut self, decision: u64) -> Option<u32> {
        let d = self.deviations.get(self.next)?;
        if d.decision == decision {
            self.next += 1;
            Some(d.value)
        } else {
            None
        }
    }
}

impl Scheduler for ReplayScheduler {
    fn new_execution(&mut self, _seed: u64) -> bool {
        !std::mem::replace(&mut self.started, true)
    }

    fn next_actor(
        &mut self,
        decision: u64,
        runnable: &[u32],
        current: Option<u32>,
    ) -> Result<u32, ExploreError> {
        self.check_more(decision)?;
        match self.deviation_at(decision) {
            None => Ok(default_actor(runnable, current)),
            Some(actor) if runnable.contains(&actor) => Ok(actor),
            Some(actor) => Err(ExploreError::ReplayDivergence {
                decision,
                detail: format!(
                    "the token runs actor {actor} here, but it is not runnable (runnable: {runnable:?})"
                ),
            }),
        }
    }

    fn next_choice(&mut self, decision: u64, n: u32) -> Result<u32, ExploreError> {
        self.check_more(decision)?;
        match self.deviation_at(decision) {
            None => Ok(0),
            Some(k) if k < n => Ok(k),
            Some(k) => Err(ExploreError::ReplayDivergence {
                decision,
                detail: format!(
                    "the token chooses option {k} here, but there are only {n} options"
                ),
            }),
        }
    }

    fn retained_bytes(&self) -> usize {
        self.deviations.capacity() * std::mem::size_of::<Deviation>()
    }

    fn end_execution(&mut self, decisions: u64) -> Result<(), ExploreError> {
        if decisions < self.decisions {
            return Err(ExploreError::ReplayDivergence {
                decision: decisions,
                detail: format!(
                    "the execution ended after {decisions} decisions, the token recorded {}",
                    self.decisions
                ),
            });
        }
        Ok(())
    }
}

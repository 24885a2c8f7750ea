//! Random walk: at every decision, each option is equally likely.
//!
//! The walk of an execution is a function of that execution's seed alone, so any execution
//! can be reproduced from its seed (and from its token, which replays it without the RNG).

use super::Scheduler;
use crate::error::ExploreError;
use crate::rng::{mix, Rng};

/// Salt separating the schedule's stream from the stream Python seeds `random` with.
const SCHEDULE_SALT: u64 = 0x5ced_u64;

#[derive(Debug)]
pub struct RandomScheduler {
    rng: Rng,
}

impl RandomScheduler {
    pub fn new() -> Self {
        RandomScheduler { rng: Rng::new(0) }
    }
}

impl Default for RandomScheduler {
    fn default() -> Self {
        Self::new()
    }
}

impl Scheduler for RandomScheduler {
    fn new_execution(&mut self, seed: u64) -> bool {
        self.rng = Rng::new(mix(seed, SCHEDULE_SALT));
        true
    }

    fn next_actor(
        &mut self,
        _decision: u64,
        runnable: &[u32],
        _current: Option<u32>,
    ) -> Result<u32, ExploreError> {
        if runnable.len() == 1 {
            return Ok(runnable[0]);
        }
        Ok(runnable[self.rng.below(runnable.len() as u64) as usize])
    }

    fn next_choice(&mut self, _decision: u64, n: u32) -> Result<u32, ExploreError> {
        if n == 1 {
            return Ok(0);
        }
        Ok(self.rng.below(u64::from(n)) as u32)
    }
}

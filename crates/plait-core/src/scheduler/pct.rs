//! PCT, probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi & Nagarakatte,
//! ASPLOS'10), in the variant shuttle uses.
//!
//! Every actor gets a random priority; the highest-priority runnable actor runs. At d−1
//! random change points the actor about to run drops to a low priority (d−i at the i-th),
//! below every initial one. A bug of depth d is found with probability at least
//! 1/(n·k^(d−1)) per execution, n actors and k steps.
//!
//! As in shuttle: k is not known in advance, so the first execution runs without change
//! points and measures it (later ones use the largest k seen); only decisions with more than
//! one runnable actor count as steps; an actor seen for the first time takes a random
//! priority slot among the existing ones. Shuttle also deprioritises an actor that yields;
//! plait's decisions do not say whether the actor yielded, so that part is left out.
//! Recorded choices (`choose`) are uniform random.

use std::collections::HashMap;

use super::Scheduler;
use crate::error::ExploreError;
use crate::rng::{mix, Rng};

const SCHEDULE_SALT: u64 = 0x9c7_u64;

#[derive(Debug)]
pub struct PctScheduler {
    depth: u32,
    rng: Rng,
    /// Actor → priority. Initial priorities are random values above `depth`, so every
    /// change-point priority (d−i < d) is below all of them.
    priorities: HashMap<u32, u64>,
    /// (step, new priority) for this execution's change points.
    change_points: Vec<(u64, u64)>,
    /// Steps (decisions with more than one runnable actor) in this execution so far.
    steps: u64,
    /// Largest number of steps seen in one execution: the k of the change points.
    max_steps: u64,
}

impl PctScheduler {
    pub fn new(depth: u32) -> Self {
        PctScheduler {
            depth,
            rng: Rng::new(0),
            priorities: HashMap::new(),
            change_points: Vec::new(),
            steps: 0,
            max_steps: 0,
        }
    }

    fn priority(&mut self, actor: u32) -> u64 {
        let depth = u64::from(self.depth);
        let rng = &mut self.rng;
        // A random value above the change-point range is a random slot among existing
        // priorities (ties have probability ~2^-60 and are broken by runnable order).
        *self
            .priorities
            .entry(actor)
            .or_insert_with(|| depth + 1 + (rng.next_u64() >> 2))
    }

    fn highest(&mut self, runnable: &[u32]) -> (usize, u32) {
        let mut best = (0, runnable[0]);
        let mut best_priority = self.priority(runnable[0]);
        for (i, &a) in runnable.iter().enumerate().skip(1) {
            let p = self.priority(a);
            if p > best_priority {
                best = (i, a);
                best_priority = p;
            }
        }
        best
    }
}

impl Scheduler for PctScheduler {
    fn new_execution(&mut self, seed: u64) -> bool {
        self.rng = Rng::new(mix(seed, SCHEDULE_SALT));
        self.priorities.clear();
        self.change_points.clear();
        self.steps = 0;
        if self.max_steps > 0 {
            for i in 1..u64::from(self.depth) {
                let step = 1 + self.rng.below(self.max_steps);
                self.change_points.push((step, u64::from(self.depth) - i));
            }
        }
        true
    }

    fn next_actor(
        &mut self,
        _decision: u64,
        runnable: &[u32],
        _current: Option<u32>,
    ) -> Result<u32, ExploreError> {
        if runnable.len() == 1 {
            // Still give a newcomer its priority now, so it does not depend on when it
            // first meets competition.
            self.priority(runnable[0]);
            return Ok(runnable[0]);
        }
        self.steps += 1;
        for i in 0..self.change_points.len() {
            let (step, low) = self.change_points[i];
            if step == self.steps {
                let (_, top) = self.highest(runnable);
                self.priorities.insert(top, low);
            }
        }
        Ok(self.highest(runnable).1)
    }

    fn next_choice(&mut self, _decision: u64, n: u32) -> Result<u32, ExploreError> {
        if n == 1 {
            return Ok(0);
        }
        Ok(self.rng.below(u64::from(n)) as u32)
    }

    fn end_execution(&mut self, _decisions: u64) -> Result<(), ExploreError> {
        self.max_steps = self.max_steps.max(self.steps);
        Ok(())
    }

    fn retained_bytes(&self) -> usize {
        self.priorities.capacity() * 16 + self.change_points.capacity() * 16
    }
}

//! Exhaustive depth-first exploration of every schedule, optionally bounded by the number
//! of preemptions (Musuvathi & Qadeer, PLDI'07, as in CHESS) and/or delays (Emmi, Qadeer &
//! Rakamarić, POPL'11).
//!
//! The first execution takes every default; each later one replays the stack's prefix and
//! varies the deepest decision that still has an untried option. Decisions with one option
//! are on the stack (so indices line up and nondeterminism is checked) but never branch.

use super::{actor_in_default_order, current_position, describe_options, Scheduler};
use crate::error::ExploreError;

/// One decision on the current path.
#[derive(Debug, Clone, Copy)]
struct Node {
    /// Actor decision: its runnable list is `actors[opt_start..opt_start + opt_len]`.
    /// A choice has `opt_len == 0` and `n` options.
    opt_start: usize,
    opt_len: usize,
    current: Option<u32>,
    n: u32,
    /// Position of the chosen option in the default order (0 = the default).
    chosen: u32,
    /// Preemptions and delays spent by the decisions before this one on the path.
    preemptions_before: u32,
    delays_before: u32,
}

impl Node {
    fn is_choice(&self) -> bool {
        self.opt_len == 0
    }

    fn option_count(&self) -> u32 {
        if self.is_choice() {
            self.n
        } else {
            self.opt_len as u32
        }
    }
}

/// Exhaustive DFS over decisions. Memory is O(decisions in one execution): the stack holds
/// the current path only, and the runnable lists live in one arena that shrinks with it.
#[derive(Debug)]
pub struct DfsScheduler {
    preemption_bound: Option<u32>,
    delay_bound: Option<u32>,
    /// Invariant: during an execution, `stack[i]` is decision i of the path being followed;
    /// the entries past the decisions made so far are the prefix still to replay.
    stack: Vec<Node>,
    /// Runnable lists of the actor decisions on `stack`, in stack order.
    actors: Vec<u32>,
    started: bool,
    /// Set once a bound has cut off an option: exhaustion is then "within the bound".
    pruned: bool,
}

impl DfsScheduler {
    pub fn new(preemption_bound: Option<u32>, delay_bound: Option<u32>) -> Self {
        DfsScheduler {
            preemption_bound,
            delay_bound,
            stack: Vec::new(),
            actors: Vec::new(),
            started: false,
            pruned: false,
        }
    }

    fn runnable_of(&self, node: &Node) -> &[u32] {
        &self.actors[node.opt_start..node.opt_start + node.opt_len]
    }

    /// (preemptions, delays) of choosing option `i` (in default order) at `node`.
    fn cost(&self, node: &Node, i: u32) -> (u32, u32) {
        if node.is_choice() {
            return (0, i);
        }
        let has_current = current_position(self.runnable_of(node), node.current).is_some();
        (u32::from(has_current && i > 0), i)
    }

    fn within_bounds(&self, preemptions: u32, delays: u32) -> bool {
        self.preemption_bound.is_none_or(|b| preemptions <= b)
            && self.delay_bound.is_none_or(|b| delays <= b)
    }

    /// Moves to the next path: advances the deepest decision with an untried option within
    /// the bounds and drops everything below it. False when the tree is exhausted.
    fn advance(&mut self) -> bool {
        while let Some(mut node) = self.stack.pop() {
            node.chosen += 1;
            if node.chosen < node.option_count() {
                let (p, d) = self.cost(&node, node.chosen);
                if self.within_bounds(node.preemptions_before + p, node.delays_before + d) {
                    self.actors.truncate(node.opt_start + node.opt_len);
                    self.stack.push(node);
                    return true;
                }
                // Costs never decrease along the default order, so every later option of
                // this node is out of bounds too.
                self.pruned = true;
            }
            self.actors.truncate(node.opt_start);
        }
        false
    }

    /// Budget spent by the decisions before the one at `index`.
    fn spent_before(&self, index: usize) -> (u32, u32) {
        match index.checked_sub(1) {
            None => (0, 0),
            Some(i) => {
                let prev = self.stack[i];
                let (p, d) = self.cost(&prev, prev.chosen);
                (prev.preemptions_before + p, prev.delays_before + d)
            }
        }
    }

    fn new_node(&self, index: usize) -> Node {
        let (preemptions_before, delays_before) = self.spent_before(index);
        Node {
            opt_start: self.actors.len(),
            opt_len: 0,
            current: None,
            n: 0,
            chosen: 0,
            preemptions_before,
            delays_before,
        }
    }
}

impl Scheduler for DfsScheduler {
    fn new_execution(&mut self, _seed: u64) -> bool {
        if !self.started {
            self.started = true;
            return true;
        }
        self.advance()
    }

    fn next_actor(
        &mut self,
        decision: u64,
        runnable: &[u32],
        current: Option<u32>,
    ) -> Result<u32, ExploreError> {
        let index = decision as usize;
        if let Some(node) = self.stack.get(index).copied() {
            let recorded = self.runnable_of(&node);
            if node.is_choice() || recorded != runnable || node.current != current {
                let expected = if node.is_choice() {
                    format!("a choice among {} options", node.n)
                } else {
                    describe_options(recorded, node.current)
                };
                return Err(ExploreError::Nondeterminism {
                    decision,
                    expected,
                    got: describe_options(runnable, current),
                });
            }
            let pos = current_position(runnable, current);
            return Ok(actor_in_default_order(runnable, pos, node.chosen as usize));
        }
        debug_assert_eq!(index, self.stack.len());
        let mut node = self.new_node(index);
        node.opt_len = runnable.len();
        node.current = current;
        self.actors.extend_from_slice(runnable);
        self.stack.push(node);
        let pos = current_position(runnable, current);
        Ok(actor_in_default_order(runnable, pos, 0))
    }

    fn next_choice(&mut self, decision: u64, n: u32) -> Result<u32, ExploreError> {
        let index = decision as usize;
        if let Some(node) = self.stack.get(index).copied() {
            if !node.is_choice() || node.n != n {
                let expected = if node.is_choice() {
                    format!("a choice among {} options", node.n)
                } else {
                    describe_options(self.runnable_of(&node), node.current)
                };
                return Err(ExploreError::Nondeterminism {
                    decision,
                    expected,
                    got: format!("a choice among {n} options"),
                });
            }
            return Ok(node.chosen);
        }
        debug_assert_eq!(index, self.stack.len());
        let mut node = self.new_node(index);
        node.n = n;
        self.stack.push(node);
        Ok(0)
    }

    fn end_execution(&mut self, decisions: u64) -> Result<(), ExploreError> {
        let made = decisions as usize;
        if made < self.stack.len() {
            let node = self.stack[made];
            let expected = if node.is_choice() {
                format!("a choice among {} options", node.n)
            } else {
                describe_options(self.runnable_of(&node), node.current)
            };
            return Err(ExploreError::Nondeterminism {
                decision: decisions,
                expected,
                got: "the end of the execution".into(),
            });
        }
        Ok(())
    }

    fn bounded(&self) -> bool {
        self.pruned
    }

    fn retained_bytes(&self) -> usize {
        self.stack.capacity() * std::mem::size_of::<Node>() + self.actors.capacity() * 4
    }
}

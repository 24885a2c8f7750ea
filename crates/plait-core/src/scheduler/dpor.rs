//! Source-DPOR with sleep sets (Abdulla, Aronis, Jonsson & Sagonas, POPL'14): explores at
//! least one schedule per Mazurkiewicz trace, using the footprints Python reports with
//! `record_step`.
//!
//! The tree is a depth-first stack of decisions, like `dfs`. At an actor decision the node
//! keeps a *backtrack* set (actors still to try there: the first one taken, plus those race
//! analysis adds), the actors *done* there, and a *sleep* set: actors whose step from this
//! state was already explored in a sibling branch and is independent of everything run
//! since, so running them here would only repeat a trace. At the end of each execution the
//! races of its trace (`dpor::races`) add actors to the backtrack sets of the path.
//!
//! A step for which Python never called `record_step` has an unknown footprint and is
//! treated as dependent with everything (an empty `record_step` means "touched nothing"),
//! so a program that reports no footprints is explored exhaustively, not reduced to one
//! schedule.
//!
//! Recorded choices (`choose`) are explored exhaustively, like `dfs`. A step that made a
//! choice may touch different keys under different options, so it is treated as dependent
//! with everything, and the sleep set is emptied after any choice: less reduction, still
//! sound.
//!
//! If every runnable actor is asleep, the execution can only repeat a trace (it is
//! "sleep-set blocked"). The engine cannot stop the Python program midway, so it finishes
//! with defaults, is counted in `redundant`, and its remaining steps are not analysed.

use super::{actor_in_default_order, current_position, describe_options, Scheduler};
use crate::dpor::{RaceAnalysis, StepView};
use crate::error::ExploreError;
use crate::footprint::Access;

#[derive(Debug, Clone)]
struct Sleeper {
    actor: u32,
    wildcard: bool,
    accesses: Vec<Access>,
}

impl Sleeper {
    fn independent_of(&self, wildcard: bool, accesses: &[Access]) -> bool {
        !self.wildcard
            && !wildcard
            && !self
                .accesses
                .iter()
                .any(|a| accesses.iter().any(|b| a.conflicts_with(b)))
    }
}

#[derive(Debug, Clone)]
struct Node {
    /// Actor decision: runnable list at `actors[opt_start..opt_start + opt_len]`.
    /// Choice: `opt_len == 0`, `n` options.
    opt_start: usize,
    opt_len: usize,
    current: Option<u32>,
    n: u32,
    /// The actor (actor decision) or index (choice) taken on the current path.
    chosen: u32,
    backtrack: Vec<u32>,
    done: Vec<u32>,
    /// Sleep set: inherited from the parent, plus the actors done here.
    sleep: Vec<Sleeper>,
    /// Footprint of `chosen`'s step here, on the current path.
    step: Vec<Access>,
    /// The step's footprint is unknown (it made a choice, or was never recorded).
    wildcard: bool,
    /// `record_step` was called for the step.
    recorded: bool,
}

impl Node {
    fn is_choice(&self) -> bool {
        self.opt_len == 0
    }

    fn asleep(&self, actor: u32) -> bool {
        self.sleep.iter().any(|s| s.actor == actor)
    }
}

#[derive(Debug, Default)]
pub struct DporScheduler {
    /// Invariant: during an execution, `stack[i]` is decision i of the path being followed.
    stack: Vec<Node>,
    actors: Vec<u32>,
    started: bool,
    /// The latest actor decision of this execution (its step is the one being recorded).
    last_actor_node: Option<usize>,
    /// A choice was made since the latest actor decision: the next node sleeps nobody.
    choice_since_step: bool,
    /// Decision at which this execution became sleep-set blocked.
    blocked_at: Option<usize>,
    redundant: u64,
    analysis: RaceAnalysis,
}

impl DporScheduler {
    pub fn new() -> Self {
        Self::default()
    }

    fn runnable_of(&self, node: &Node) -> &[u32] {
        &self.actors[node.opt_start..node.opt_start + node.opt_len]
    }

    fn describe(&self, node: &Node) -> String {
        if node.is_choice() {
            format!("a choice among {} options", node.n)
        } else {
            describe_options(self.runnable_of(node), node.current)
        }
    }

    fn new_node(&self) -> Node {
        Node {
            opt_start: self.actors.len(),
            opt_len: 0,
            current: None,
            n: 0,
            chosen: 0,
            backtrack: Vec::new(),
            done: Vec::new(),
            sleep: Vec::new(),
            step: Vec::new(),
            wildcard: false,
            recorded: false,
        }
    }

    /// The sleep set a new actor node inherits from the previous actor decision.
    fn inherited_sleep(&self) -> Vec<Sleeper> {
        if self.choice_since_step {
            return Vec::new();
        }
        let Some(parent) = self.last_actor_node.map(|i| &self.stack[i]) else {
            return Vec::new();
        };
        parent
            .sleep
            .iter()
            .filter(|s| s.independent_of(parent.wildcard || !parent.recorded, &parent.step))
            .cloned()
            .collect()
    }

    /// Adds the races of the finished execution to the backtrack sets of its path.
    fn analyse(&mut self) {
        let mut node_of_step = Vec::new();
        let mut steps = Vec::new();
        let mut quiet_from = usize::MAX;
        for (i, node) in self.stack.iter().enumerate() {
            if self.blocked_at == Some(i) {
                quiet_from = steps.len();
            }
            if !node.is_choice() {
                node_of_step.push(i);
                steps.push(StepView {
                    actor: node.chosen,
                    enabled: &self.actors[node.opt_start..node.opt_start + node.opt_len],
                    accesses: &node.step,
                    wildcard: node.wildcard || !node.recorded,
                });
            }
        }
        let mut additions: Vec<(usize, u32)> = Vec::new();
        let stack = &self.stack;
        self.analysis.analyse(&steps, quiet_from, |i, initials| {
            let node = &stack[node_of_step[i]];
            let pending = additions
                .iter()
                .any(|&(n, a)| n == node_of_step[i] && initials.contains(&a));
            if pending || initials.iter().any(|a| node.backtrack.contains(a)) {
                return;
            }
            let pick = initials
                .iter()
                .copied()
                .find(|&a| !node.asleep(a))
                .unwrap_or(initials[0]);
            additions.push((node_of_step[i], pick));
        });
        for (n, a) in additions {
            if !self.stack[n].backtrack.contains(&a) {
                self.stack[n].backtrack.push(a);
            }
        }
    }

    /// Moves to the next path; false when every trace has been explored.
    fn advance(&mut self) -> bool {
        while let Some(node) = self.stack.last_mut() {
            if node.is_choice() {
                node.chosen += 1;
                if node.chosen < node.n {
                    return true;
                }
            } else {
                let chosen = node.chosen;
                node.done.push(chosen);
                let sleeper = Sleeper {
                    actor: chosen,
                    wildcard: node.wildcard || !node.recorded,
                    accesses: std::mem::take(&mut node.step),
                };
                node.sleep.push(sleeper);
                node.wildcard = false;
                node.recorded = false;
                let runnable = &self.actors[node.opt_start..node.opt_start + node.opt_len];
                let next =
                    node.backtrack.iter().copied().find(|&a| {
                        !node.done.contains(&a) && !node.asleep(a) && runnable.contains(&a)
                    });
                if let Some(a) = next {
                    node.chosen = a;
                    return true;
                }
            }
            let node = self.stack.pop().expect("non-empty");
            self.actors.truncate(node.opt_start);
        }
        false
    }
}

impl Scheduler for DporScheduler {
    fn new_execution(&mut self, _seed: u64) -> bool {
        self.last_actor_node = None;
        self.choice_since_step = false;
        self.blocked_at = None;
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
        if let Some(node) = self.stack.get(index) {
            if node.is_choice() || self.runnable_of(node) != runnable || node.current != current {
                return Err(ExploreError::Nondeterminism {
                    decision,
                    expected: self.describe(node),
                    got: describe_options(runnable, current),
                });
            }
            let node = &mut self.stack[index];
            node.step.clear();
            node.wildcard = false;
            node.recorded = false;
            self.last_actor_node = Some(index);
            self.choice_since_step = false;
            return Ok(node.chosen);
        }
        let mut node = self.new_node();
        node.opt_len = runnable.len();
        node.current = current;
        node.sleep = self.inherited_sleep();
        let pos = current_position(runnable, current);
        let awake = (0..runnable.len())
            .map(|i| actor_in_default_order(runnable, pos, i))
            .find(|&a| !node.asleep(a));
        node.chosen = match awake {
            Some(a) if self.blocked_at.is_none() => a,
            _ => {
                self.blocked_at.get_or_insert(index);
                actor_in_default_order(runnable, pos, 0)
            }
        };
        node.backtrack.push(node.chosen);
        self.actors.extend_from_slice(runnable);
        let chosen = node.chosen;
        self.stack.push(node);
        self.last_actor_node = Some(index);
        self.choice_since_step = false;
        Ok(chosen)
    }

    fn next_choice(&mut self, decision: u64, n: u32) -> Result<u32, ExploreError> {
        let index = decision as usize;
        if let Some(step) = self.last_actor_node {
            self.stack[step].wildcard = true;
        }
        self.choice_since_step = true;
        if let Some(node) = self.stack.get(index) {
            if !node.is_choice() || node.n != n {
                return Err(ExploreError::Nondeterminism {
                    decision,
                    expected: self.describe(node),
                    got: format!("a choice among {n} options"),
                });
            }
            return Ok(node.chosen);
        }
        let mut node = self.new_node();
        node.n = n;
        self.stack.push(node);
        Ok(0)
    }

    fn record_step(&mut self, _actor: u32, _enabled: &[u32], accesses: &[Access]) {
        if let Some(i) = self.last_actor_node {
            let node = &mut self.stack[i];
            node.step.extend_from_slice(accesses);
            node.recorded = true;
        }
    }

    fn end_execution(&mut self, decisions: u64) -> Result<(), ExploreError> {
        let made = decisions as usize;
        if made < self.stack.len() {
            return Err(ExploreError::Nondeterminism {
                decision: decisions,
                expected: self.describe(&self.stack[made]),
                got: "the end of the execution".into(),
            });
        }
        if self.blocked_at.is_some() {
            self.redundant += 1;
        }
        self.analyse();
        Ok(())
    }

    fn redundant(&self) -> u64 {
        self.redundant
    }

    fn retained_bytes(&self) -> usize {
        let nodes: usize = self
            .stack
            .iter()
            .map(|n| {
                std::mem::size_of::<Node>()
                    + (n.backtrack.capacity() + n.done.capacity()) * 4
                    + n.step.capacity() * std::mem::size_of::<Access>()
                    + n.sleep
                        .iter()
                        .map(|s| {
                            std::mem::size_of::<Sleeper>()
                                + s.accesses.capacity() * std::mem::size_of::<Access>()
                        })
                        .sum::<usize>()
            })
            .sum();
        nodes + self.actors.capacity() * 4
    }
}

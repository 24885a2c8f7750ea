//! Optimal DPOR with wakeup trees and sleep sets (Abdulla, Aronis, Jonsson & Sagonas,
//! POPL'14 / JACM'17): explores every Mazurkiewicz trace, and on programs whose steps are
//! plain reads and writes exactly one schedule per trace, using the footprints Python
//! reports with `record_step`.
//!
//! The tree is a depth-first stack of decisions, like `dfs`. At an actor decision the node
//! keeps a *wakeup tree* (sequences of steps still to explore from there, in order), the
//! actors *done* there, and a *sleep* set: steps already explored from this state in a
//! sibling branch and independent of everything run since, so running them here would
//! only repeat a trace. At the end of each execution every race of its trace
//! (`dpor::races`) is reversed by inserting its reversing sequence into the wakeup tree at
//! the race's scheduling point (`dpor::wakeup`), unless a sleeping step already covers it.
//! When a planned sequence runs out the exploration is free again: the first awake actor
//! in default order. Following the trees, no execution is sleep-set blocked.
//!
//! Races that involve blocking (an actor disabled by a lock, say) or a step with an unknown
//! footprint are also handled the source-DPOR way: one of the race's initials is added to
//! the node's *backtrack* set unless one is already there or planned. That keeps such
//! programs complete; they may then see some sleep-set blocked executions.
//!
//! A step for which Python never called `record_step` has an unknown footprint and is
//! treated as dependent with everything (an empty `record_step` means "touched nothing"),
//! so a program that reports no footprints is explored exhaustively, not reduced to one
//! schedule.
//!
//! Recorded choices (`choose`) are explored exhaustively, like `dfs`. A step that made a
//! choice may touch different keys under different options, so it is treated as dependent
//! with everything, and the sleep set is emptied (and any plan dropped) after any choice:
//! less reduction, still sound.
//!
//! If every runnable actor is asleep, the execution can only repeat a trace (it is
//! "sleep-set blocked"). The engine cannot stop the Python program midway, so it finishes
//! with defaults, is counted in `redundant`, and its remaining steps are not analysed.

use super::{actor_in_default_order, current_position, describe_options, Scheduler};
use crate::dpor::wakeup::{insert, weak_initial};
use crate::dpor::{Event, RaceAnalysis, StepView, WakeupNode};
use crate::error::ExploreError;
use crate::footprint::Access;

/// A sleeping step: its actor and footprint.
type Sleeper = Event;

fn independent_of(s: &Sleeper, wildcard: bool, accesses: &[Access]) -> bool {
    !s.wildcard
        && !wildcard
        && !s
            .accesses
            .iter()
            .any(|a| accesses.iter().any(|b| a.conflicts_with(b)))
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
    /// Wakeup tree: the sequences still to explore from here, in order (not including the
    /// branch being explored).
    wut: Vec<WakeupNode>,
    /// What the wakeup tree planned after `chosen`'s step (the next node's wakeup tree).
    plan: Vec<WakeupNode>,
    /// Actors taken or to take here (source-DPOR's backtrack set, for races that involve
    /// blocking or unknown footprints).
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

/// Takes the first planned step of `node`'s wakeup tree whose actor can run here (skipping
/// any that cannot: only possible if the program is not deterministic), making the rest of
/// its branch the plan after it.
fn take_planned(node: &mut Node, runnable: &[u32]) -> Option<u32> {
    while !node.wut.is_empty() {
        let first = node.wut.remove(0);
        let actor = first.event.actor;
        if runnable.contains(&actor) && !node.asleep(actor) {
            node.plan = first.children;
            if !node.backtrack.contains(&actor) {
                node.backtrack.push(actor);
            }
            return Some(actor);
        }
    }
    None
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
            wut: Vec::new(),
            plan: Vec::new(),
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
            .filter(|s| independent_of(s, parent.wildcard || !parent.recorded, &parent.step))
            .cloned()
            .collect()
    }

    /// The wakeup tree a new actor node inherits: what the previous actor decision's tree
    /// planned after its step, unless a choice came between or that step's footprint is
    /// unknown.
    fn inherited_plan(&mut self) -> Vec<WakeupNode> {
        let Some(parent) = self.last_actor_node.map(|i| &mut self.stack[i]) else {
            return Vec::new();
        };
        let plan = std::mem::take(&mut parent.plan);
        if self.choice_since_step || parent.wildcard || !parent.recorded {
            return Vec::new();
        }
        plan
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
        let mut reversals: Vec<(usize, Vec<Event>)> = Vec::new();
        let stack = &self.stack;
        self.analysis.analyse(&steps, quiet_from, |race| {
            let i = race.i;
            let v = race
                .v
                .iter()
                .map(|&k| Event {
                    actor: steps[k].actor,
                    wildcard: steps[k].wildcard,
                    accesses: steps[k].accesses.to_vec(),
                })
                .collect();
            reversals.push((node_of_step[i], v));
            if race.plain {
                return;
            }
            let initials = race.initials;
            let node = &stack[node_of_step[i]];
            let pending = additions
                .iter()
                .any(|&(n, a)| n == node_of_step[i] && initials.contains(&a));
            let planned = |a: &u32| {
                node.backtrack.contains(a) || node.wut.iter().any(|w| w.event.actor == *a)
            };
            if pending || initials.iter().any(planned) {
                return;
            }
            let pick = initials
                .iter()
                .copied()
                .find(|&a| !node.asleep(a))
                .unwrap_or(initials[0]);
            additions.push((node_of_step[i], pick));
        });
        for (n, v) in reversals {
            let node = &mut self.stack[n];
            if !node.sleep.iter().any(|s| weak_initial(s, &v).is_some()) {
                insert(&mut node.wut, v);
            }
        }
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
                node.plan.clear();
                let runnable = &self.actors[node.opt_start..node.opt_start + node.opt_len];
                if let Some(a) = take_planned(node, runnable) {
                    node.chosen = a;
                    return true;
                }
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
        node.wut = self.inherited_plan();
        let planned = if self.blocked_at.is_none() {
            take_planned(&mut node, runnable)
        } else {
            None
        };
        let pos = current_position(runnable, current);
        let awake = (0..runnable.len())
            .map(|i| actor_in_default_order(runnable, pos, i))
            .find(|&a| !node.asleep(a));
        node.chosen = match (planned, awake) {
            (Some(a), _) => a,
            (None, Some(a)) if self.blocked_at.is_none() => a,
            _ => {
                self.blocked_at.get_or_insert(index);
                actor_in_default_order(runnable, pos, 0)
            }
        };
        if !node.backtrack.contains(&node.chosen) {
            node.backtrack.push(node.chosen);
        }
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
                    + (n.wut.capacity() + n.plan.capacity()) * std::mem::size_of::<WakeupNode>()
                    + n.wut
                        .iter()
                        .chain(&n.plan)
                        .map(WakeupNode::retained_bytes)
                        .sum::<usize>()
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

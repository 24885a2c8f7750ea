//! Race detection over one execution with vector clocks, as in source-DPOR.
//!
//! For each step j (actor p), the candidates are the steps of other actors it conflicts
//! with and that are not already ordered before p's previous step: the last write of each
//! key it accesses, and, if it writes, the reads since that write. (Keeping all the reads
//! since the last write, not just the last access, matters: loom's last-access rule
//! misses traces.) A candidate i races with j when no other candidate orders i before j.
//! For a race, v = notdep(i).j: the steps after i (to the end of the execution) that do not
//! happen after i, then j. Optimal DPOR inserts v into the wakeup tree at i's scheduling
//! point. The actors whose first step in v (up to j) has no predecessor in v (the
//! *initials*) are the ones that, run at i's scheduling point instead, reverse the race;
//! for races that involve blocking the scheduler also adds one of them there, as
//! source-DPOR does.
//!
//! Blocking: an actor can be disabled (waiting on a lock, say) by another actor's step.
//! Then the race that matters (acquire against acquire) is hidden behind the release that
//! re-enabled p, which is the only *direct* conflict. So when p was disabled at some point
//! since its previous step, every conflicting step of another actor that is not already
//! ordered before p's previous step counts as a race with p's step, direct or not. A step
//! that disabled p counts as a race too; a step that enabled p (spawn, release, set) only
//! orders p's next step after it.
//!
//! A step marked `wildcard` (its footprint is unknown, e.g. it made a recorded choice whose
//! options may touch different keys) conflicts with every step of every other actor.

use std::collections::HashMap;

use crate::footprint::{Access, AccessKind};

/// One step of the execution being analysed.
#[derive(Debug, Clone, Copy)]
pub struct StepView<'a> {
    pub actor: u32,
    /// Actors runnable at the scheduling point before this step.
    pub enabled: &'a [u32],
    pub accesses: &'a [Access],
    pub wildcard: bool,
}

/// A race of step `i` with a later step j, reported by [`RaceAnalysis::analyse`].
#[derive(Debug, Clone, Copy)]
pub struct Race<'a> {
    /// Index of the earlier step.
    pub i: usize,
    /// The actors enabled before step i whose scheduling there reverses the race (never
    /// empty).
    pub initials: &'a [u32],
    /// The reversing sequence notdep(i).j: indices of the steps after i (up to the end of
    /// the execution) that do not happen after it, in execution order, then j.
    pub v: &'a [usize],
    /// A plain data race: direct, between two steps with known footprints, and the actor
    /// of j was never blocked since its previous step. Only plain races may be handled by
    /// wakeup trees alone; the others (blocking, unknown footprints) also need a
    /// source-set entry.
    pub plain: bool,
}

/// Reusable buffers for the analysis (cleared, not freed, between executions).
#[derive(Debug, Default)]
pub struct RaceAnalysis {
    /// Actor id of each dense slot.
    slots: Vec<u32>,
    slot_of: HashMap<u32, usize>,
    /// Vector clock of each step, `width` entries per step.
    vc: Vec<u32>,
    /// Clock of each actor's latest step, `width` entries per actor.
    actor_clock: Vec<u32>,
    last_step: Vec<Option<usize>>,
    last_wildcard: Vec<Option<usize>>,
    last_write: HashMap<u64, usize>,
    /// Reads since the last write, at most one (the latest) per actor.
    reads: HashMap<u64, Vec<usize>>,
    /// Every step that accessed the key, in order (for steps of actors that were blocked).
    history: HashMap<u64, Vec<usize>>,
    /// Conflicting steps to treat as races whether or not they are direct.
    forced: Vec<usize>,
    step_slot: Vec<usize>,
    cands: Vec<usize>,
    ordering: Vec<usize>,
    disablers: Vec<usize>,
    clock: Vec<u32>,
    v: Vec<usize>,
    initials: Vec<u32>,
    /// Races found: (earlier step, later step, plain).
    found: Vec<(usize, usize, bool)>,
}

impl RaceAnalysis {
    fn slot(&mut self, actor: u32) -> usize {
        if let Some(&s) = self.slot_of.get(&actor) {
            return s;
        }
        let s = self.slots.len();
        self.slots.push(actor);
        self.slot_of.insert(actor, s);
        s
    }

    /// Finds the races of `steps` and calls `on_race` for each (see [`Race`]).
    ///
    /// Steps from `quiet_from` on only report races that involve blocking: a sleep-set
    /// blocked execution repeats explored traces from there, except that the blocking may
    /// reveal an acquire-acquire race its earlier twin hid behind a release.
    pub fn analyse(
        &mut self,
        steps: &[StepView<'_>],
        quiet_from: usize,
        mut on_race: impl FnMut(Race<'_>),
    ) {
        self.slots.clear();
        self.slot_of.clear();
        self.step_slot.clear();
        for s in steps {
            let slot = self.slot(s.actor);
            self.step_slot.push(slot);
        }
        let w = self.slots.len();
        let m = steps.len();
        self.vc.clear();
        self.vc.resize(m * w, 0);
        self.actor_clock.clear();
        self.actor_clock.resize(w * w, 0);
        self.last_step.clear();
        self.last_step.resize(w, None);
        self.last_wildcard.clear();
        self.last_wildcard.resize(w, None);
        self.last_write.clear();
        self.found.clear();
        self.reads.clear();
        self.history.clear();

        for j in 0..m {
            let p = self.step_slot[j];
            let step = steps[j];
            self.collect_candidates(steps, j, p);
            let was_blocked = self.collect_forced(steps, j, p);
            // Clock of p before this step, then joined with everything j depends on.
            self.clock.clear();
            self.clock
                .extend_from_slice(&self.actor_clock[p * w..(p + 1) * w]);
            let before = self.clock.clone();
            for k in self
                .cands
                .iter()
                .chain(&self.ordering)
                .chain(&self.disablers)
                .chain(&self.forced)
            {
                for (c, x) in self.clock.iter_mut().zip(&self.vc[k * w..(k + 1) * w]) {
                    *c = (*c).max(*x);
                }
            }
            self.clock[p] = before[p] + 1;
            self.vc[j * w..(j + 1) * w].copy_from_slice(&self.clock);
            self.actor_clock[p * w..(p + 1) * w].copy_from_slice(&self.clock);
            self.last_step[p] = Some(j);

            // Races: direct conflicts, and every disabler not already ordered before.
            let mut races: Vec<(usize, bool)> = Vec::new();
            let direct = if j < quiet_from { &self.cands[..] } else { &[] };
            for (n, &i) in direct.iter().enumerate() {
                let ai = self.step_slot[i];
                let ci = self.vc[i * w + ai];
                if ci <= before[ai] {
                    continue;
                }
                let through_other = self
                    .cands
                    .iter()
                    .enumerate()
                    .any(|(n2, &i2)| n2 != n && ci <= self.vc[i2 * w + ai]);
                if !through_other {
                    races.push((i, true));
                }
            }
            let forced = if was_blocked { &self.forced[..] } else { &[] };
            for &k in self.disablers.iter().chain(forced) {
                let ak = self.step_slot[k];
                if self.vc[k * w + ak] > before[ak] && !races.iter().any(|&(r, _)| r == k) {
                    races.push((k, false));
                }
            }
            for (i, direct) in races {
                let plain = direct && !was_blocked && !steps[i].wildcard && !step.wildcard;
                self.found.push((i, j, plain));
            }
            self.update_keys(step, j, p);
        }
        // v needs the clocks of the whole execution: report the races at the end.
        for n in 0..self.found.len() {
            let (i, j, plain) = self.found[n];
            self.initials_of(steps, i, j);
            if self.initials.is_empty() {
                continue;
            }
            self.reversal_of(i, j);
            on_race(Race {
                i,
                initials: &self.initials,
                v: &self.v,
                plain,
            });
        }
    }

    /// `v` = notdep(i).j: every step after i (to the end of the execution, not just up to
    /// j) that does not happen after i, in order, then j.
    fn reversal_of(&mut self, i: usize, j: usize) {
        let w = self.slots.len();
        let ai = self.step_slot[i];
        let ci = self.vc[i * w + ai];
        let m = self.step_slot.len();
        self.v.clear();
        self.v
            .extend((i + 1..m).filter(|&k| k != j && self.vc[k * w + ai] < ci));
        self.v.push(j);
    }

    /// Fills `cands` (conflicting steps), `ordering` (steps that enabled p) and
    /// `disablers` (steps that disabled p) for step j of slot p.
    fn collect_candidates(&mut self, steps: &[StepView<'_>], j: usize, p: usize) {
        self.cands.clear();
        self.ordering.clear();
        self.disablers.clear();
        let step = steps[j];
        let other = |i: usize, slots: &[usize]| slots[i] != p;
        for a in step.accesses {
            if let Some(&i) = self.last_write.get(&a.key) {
                if other(i, &self.step_slot) {
                    self.cands.push(i);
                }
            }
            if a.kind == AccessKind::Write {
                if let Some(rs) = self.reads.get(&a.key) {
                    for &i in rs {
                        if other(i, &self.step_slot) {
                            self.cands.push(i);
                        }
                    }
                }
            }
        }
        for q in 0..self.slots.len() {
            if q == p {
                continue;
            }
            if step.wildcard {
                if let Some(i) = self.last_step[q] {
                    self.cands.push(i);
                }
            } else if let Some(i) = self.last_wildcard[q] {
                self.cands.push(i);
            }
        }
        self.cands.sort_unstable();
        self.cands.dedup();
        let actor = step.actor;
        let start = self.last_step[p].map_or(0, |x| x + 1);
        for k in start..j {
            let was = steps[k].enabled.contains(&actor);
            let is = steps[k + 1].enabled.contains(&actor);
            if was && !is {
                self.disablers.push(k);
            } else if !was && is {
                self.ordering.push(k);
            }
        }
    }

    /// If the actor of step j was blocked since its previous step, fills `forced` with the
    /// earlier steps of other actors that conflict with step j, and returns true.
    fn collect_forced(&mut self, steps: &[StepView<'_>], j: usize, p: usize) -> bool {
        self.forced.clear();
        let actor = steps[j].actor;
        let prev = self.last_step[p];
        let mut seen_enabled = prev.is_some();
        let mut blocked = false;
        for step in &steps[prev.map_or(0, |x| x + 1)..j] {
            if step.enabled.contains(&actor) {
                seen_enabled = true;
            } else if seen_enabled {
                blocked = true;
                break;
            }
        }
        if !blocked {
            return false;
        }
        for a in steps[j].accesses {
            let Some(history) = self.history.get(&a.key) else {
                continue;
            };
            for &i in history {
                if self.step_slot[i] == p {
                    continue;
                }
                let conflicts = steps[i].accesses.iter().any(|b| b.conflicts_with(a));
                if conflicts && !self.forced.contains(&i) {
                    self.forced.push(i);
                }
            }
        }
        true
    }

    /// `initials` = actors enabled before step i whose first step in
    /// v = (steps after i not happening after i) ++ [j] has no predecessor in v.
    fn initials_of(&mut self, steps: &[StepView<'_>], i: usize, j: usize) {
        let w = self.slots.len();
        let ai = self.step_slot[i];
        let ci = self.vc[i * w + ai];
        self.v.clear();
        for k in i + 1..j {
            if self.vc[k * w + ai] < ci {
                self.v.push(k);
            }
        }
        self.v.push(j);
        self.initials.clear();
        let mut seen: Vec<usize> = Vec::new();
        for (n, &e) in self.v.iter().enumerate() {
            let q = self.step_slot[e];
            if seen.contains(&q) {
                continue;
            }
            seen.push(q);
            let has_pred = self.v[..n].iter().any(|&e2| {
                let a2 = self.step_slot[e2];
                self.vc[e2 * w + a2] <= self.vc[e * w + a2]
            });
            let actor = self.slots[q];
            if !has_pred && steps[i].enabled.contains(&actor) {
                self.initials.push(actor);
            }
        }
    }

    fn update_keys(&mut self, step: StepView<'_>, j: usize, p: usize) {
        for a in step.accesses {
            if a.kind == AccessKind::Write {
                self.last_write.insert(a.key, j);
                self.reads.entry(a.key).or_default().clear();
            }
        }
        for a in step.accesses {
            if a.kind == AccessKind::Read
                && !step
                    .accesses
                    .iter()
                    .any(|b| b.key == a.key && b.kind == AccessKind::Write)
            {
                let slots = &self.step_slot;
                let rs = self.reads.entry(a.key).or_default();
                rs.retain(|&r| slots[r] != p);
                rs.push(j);
            }
        }
        for a in step.accesses {
            let h = self.history.entry(a.key).or_default();
            if h.last() != Some(&j) {
                h.push(j);
            }
        }
        if step.wildcard {
            self.last_wildcard[p] = Some(j);
        }
    }
}

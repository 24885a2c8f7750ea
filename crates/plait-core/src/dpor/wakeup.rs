//! Wakeup trees (Abdulla, Aronis, Jonsson & Sagonas, POPL'14 / JACM'17): what optimal DPOR
//! keeps at each scheduling point instead of a backtrack set.
//!
//! A wakeup tree is an ordered forest of steps: each root-to-leaf path is a sequence of
//! steps still to be explored from that point, in order, before the exploration is free
//! again. A race found in an execution is reversed by inserting its reversing sequence v at
//! the race's scheduling point, unless a step already explored there (the sleep set) or a
//! sequence already planned there starts an execution equivalent to some extension of v.
//! Following the trees exactly, no execution is ever sleep-set blocked, so every execution
//! is a new Mazurkiewicz trace.

use crate::footprint::Access;

/// One step: the actor that runs it and what it touches (`wildcard`: unknown, dependent
/// with every step of another actor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub actor: u32,
    pub wildcard: bool,
    pub accesses: Vec<Access>,
}

impl Event {
    /// Dependent steps: the same actor, or conflicting (or unknown) footprints.
    pub fn depends_on(&self, other: &Event) -> bool {
        self.actor == other.actor
            || self.wildcard
            || other.wildcard
            || self
                .accesses
                .iter()
                .any(|a| other.accesses.iter().any(|b| a.conflicts_with(b)))
    }
}

/// Whether `e` (the next step of its actor at the point where `v` starts) is a *weak
/// initial* of `v`: some execution that starts with `e` is equivalent to an extension of
/// `v`. Either the actor's first step in `v` has no dependent step before it in `v`
/// (`Some(Some(position))`), or the actor does not appear in `v` and `e` is independent of
/// all of it (`Some(None)`).
pub fn weak_initial(e: &Event, v: &[Event]) -> Option<Option<usize>> {
    match v.iter().position(|x| x.actor == e.actor) {
        Some(k) => {
            let first = &v[k];
            (!v[..k].iter().any(|x| x.depends_on(first))).then_some(Some(k))
        }
        None => (!v.iter().any(|x| x.depends_on(e))).then_some(None),
    }
}

/// A node of a wakeup tree: a step, then the sequences planned after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WakeupNode {
    pub event: Event,
    pub children: Vec<WakeupNode>,
}

impl WakeupNode {
    /// Heap bytes held by this subtree.
    pub fn retained_bytes(&self) -> usize {
        self.event.accesses.capacity() * std::mem::size_of::<Access>()
            + self.children.capacity() * std::mem::size_of::<WakeupNode>()
            + self
                .children
                .iter()
                .map(WakeupNode::retained_bytes)
                .sum::<usize>()
    }
}

/// Inserts the sequence `v` into the forest `tree` (the children of one scheduling point).
///
/// Walks down from the roots: at each level, the first child that is a weak initial of
/// what is left of `v` is followed (its step removed from `v` if it is there). If that
/// child is a leaf, or `v` is used up, some planned sequence already covers `v` and nothing
/// changes; if no child fits, the rest of `v` becomes a new last branch there. Returns
/// whether the tree changed.
pub fn insert(tree: &mut Vec<WakeupNode>, mut v: Vec<Event>) -> bool {
    let mut level = tree;
    loop {
        let found = level
            .iter()
            .enumerate()
            .find_map(|(n, c)| weak_initial(&c.event, &v).map(|pos| (n, pos)));
        let Some((n, pos)) = found else {
            level.push(chain(v));
            return true;
        };
        if let Some(k) = pos {
            v.remove(k);
        }
        if level[n].children.is_empty() || v.is_empty() {
            return false;
        }
        level = &mut level[n].children;
    }
}

/// The sequence `v` as a single branch.
fn chain(v: Vec<Event>) -> WakeupNode {
    let mut events = v.into_iter().rev();
    let mut node = WakeupNode {
        event: events.next().expect("a non-empty sequence"),
        children: Vec::new(),
    };
    for event in events {
        node = WakeupNode {
            event,
            children: vec![node],
        };
    }
    node
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(actor: u32, write: bool, key: u64) -> Event {
        Event {
            actor,
            wildcard: false,
            accesses: vec![if write {
                Access::write(key)
            } else {
                Access::read(key)
            }],
        }
    }

    #[test]
    fn weak_initials() {
        let v = vec![ev(1, true, 0), ev(2, false, 0), ev(3, false, 5)];
        assert_eq!(weak_initial(&ev(1, true, 0), &v), Some(Some(0)));
        assert_eq!(weak_initial(&ev(2, false, 0), &v), None);
        assert_eq!(weak_initial(&ev(3, false, 5), &v), Some(Some(2)));
        // Not in v: weak initial only when independent of all of v.
        assert_eq!(weak_initial(&ev(4, false, 5), &v), Some(None));
        assert_eq!(weak_initial(&ev(4, false, 0), &v), None);
    }

    #[test]
    fn insertion_reuses_and_extends_branches() {
        let mut tree = Vec::new();
        assert!(insert(&mut tree, vec![ev(1, true, 0), ev(2, true, 0)]));
        // Covered: 1 then 2 is already planned.
        assert!(!insert(&mut tree, vec![ev(1, true, 0), ev(2, true, 0)]));
        // Actor 3 commutes with actor 1's step: follows the branch, adds a sibling of 2.
        assert!(insert(
            &mut tree,
            vec![ev(3, true, 7), ev(1, true, 0), ev(2, false, 7)]
        ));
        assert_eq!(tree.len(), 1);
        assert_eq!(tree[0].children.len(), 2);
        // A new first step makes a new root.
        assert!(insert(&mut tree, vec![ev(2, true, 0)]));
        assert_eq!(tree.len(), 2);
    }
}

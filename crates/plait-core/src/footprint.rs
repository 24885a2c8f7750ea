//! What a step touched: the interface partial-order reduction (DPOR) needs.
//!
//! Python reports, after each step, the keys the step read or wrote. Two steps of different
//! actors are dependent when they touch the same key and at least one writes; lock
//! operations are reported as writes to the lock's key. Over-reporting keeps DPOR sound,
//! under-reporting does not.

/// Whether an access only observes a location or may change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessKind {
    Read,
    Write,
}

/// One access of a step to a tracked location, identified by an opaque key chosen by Python.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Access {
    pub key: u64,
    pub kind: AccessKind,
}

impl Access {
    pub fn read(key: u64) -> Self {
        Access {
            key,
            kind: AccessKind::Read,
        }
    }

    pub fn write(key: u64) -> Self {
        Access {
            key,
            kind: AccessKind::Write,
        }
    }

    /// Two accesses conflict when they hit the same key and at least one writes.
    pub fn conflicts_with(&self, other: &Access) -> bool {
        self.key == other.key && (self.kind == AccessKind::Write || other.kind == AccessKind::Write)
    }
}

/// The steps of the current execution, in order, with what DPOR needs from each:
/// the actor that ran, the actors enabled at the scheduling point before it, and its accesses.
///
/// Stored flat (three vectors plus offsets) and cleared, not freed, between executions, so
/// recording a step does not allocate once the buffers have grown to the execution's size.
#[derive(Debug, Default)]
pub struct Trace {
    steps: Vec<StepRecord>,
    enabled: Vec<u32>,
    accesses: Vec<Access>,
}

#[derive(Debug, Clone, Copy)]
struct StepRecord {
    actor: u32,
    enabled_end: usize,
    accesses_end: usize,
}

/// A borrowed view of one recorded step.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    pub actor: u32,
    pub enabled: &'a [u32],
    pub accesses: &'a [Access],
}

impl Trace {
    pub fn clear(&mut self) {
        self.steps.clear();
        self.enabled.clear();
        self.accesses.clear();
    }

    pub fn push(&mut self, actor: u32, enabled: &[u32], accesses: &[Access]) {
        self.enabled.extend_from_slice(enabled);
        self.accesses.extend_from_slice(accesses);
        self.steps.push(StepRecord {
            actor,
            enabled_end: self.enabled.len(),
            accesses_end: self.accesses.len(),
        });
    }

    /// Heap bytes held by the buffers.
    pub fn retained_bytes(&self) -> usize {
        self.steps.capacity() * std::mem::size_of::<StepRecord>()
            + self.enabled.capacity() * 4
            + self.accesses.capacity() * std::mem::size_of::<Access>()
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<Step<'_>> {
        let rec = self.steps.get(i)?;
        let (e0, a0) = if i == 0 {
            (0, 0)
        } else {
            let prev = self.steps[i - 1];
            (prev.enabled_end, prev.accesses_end)
        };
        Some(Step {
            actor: rec.actor,
            enabled: &self.enabled[e0..rec.enabled_end],
            accesses: &self.accesses[a0..rec.accesses_end],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts() {
        assert!(Access::write(1).conflicts_with(&Access::read(1)));
        assert!(Access::read(1).conflicts_with(&Access::write(1)));
        assert!(!Access::read(1).conflicts_with(&Access::read(1)));
        assert!(!Access::write(1).conflicts_with(&Access::write(2)));
    }

    #[test]
    fn trace_views() {
        let mut t = Trace::default();
        t.push(0, &[0, 1], &[Access::read(5)]);
        t.push(1, &[1], &[]);
        let s = t.get(1).unwrap();
        assert_eq!(s.actor, 1);
        assert_eq!(s.enabled, &[1]);
        assert!(s.accesses.is_empty());
        assert_eq!(t.get(0).unwrap().accesses, &[Access::read(5)]);
        assert!(t.get(2).is_none());
        t.clear();
        assert!(t.is_empty());
    }
}

//! The event queue: integer time, ties broken by a sequence number, so that the same inputs give
//! the same order every time. Events are cancelled without scanning: each carries its job's
//! generation, and a stale generation is skipped when it comes out of the queue.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use ea2p_core::units::Nanos;

/// What happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The next job of the workload arrives.
    Arrival,
    /// A job finishes its work (valid if `gen` matches the job's).
    Completion {
        /// Job index.
        job: u32,
        /// Job generation when scheduled.
        gen: u32,
    },
    /// A job reaches its next checkpoint.
    Checkpoint {
        /// Job index.
        job: u32,
        /// Job generation when scheduled.
        gen: u32,
    },
    /// A job's restart or checkpoint is done; it computes again.
    PhaseDone {
        /// Job index.
        job: u32,
        /// Job generation when scheduled.
        gen: u32,
    },
    /// A scheduling round (triggered by an arrival or a completion).
    Round,
    /// The periodic scheduling round.
    Tick,
    /// The power cap changes (index into the scenario's changes).
    PowerCap(u32),
}

/// An event in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// When.
    pub time: Nanos,
    /// Insertion order: ties at equal time go first-in, first-out.
    pub seq: u64,
    /// What.
    pub kind: EventKind,
}

impl Ord for Event {
    fn cmp(&self, other: &Self) -> Ordering {
        // BinaryHeap is a max-heap: reverse, so the earliest (time, seq) comes out first.
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The queue.
#[derive(Debug, Default)]
pub struct EventQueue {
    heap: BinaryHeap<Event>,
    seq: u64,
}

impl EventQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Schedules `kind` at `time`.
    pub fn push(&mut self, time: Nanos, kind: EventKind) {
        self.heap.push(Event {
            time,
            seq: self.seq,
            kind,
        });
        self.seq += 1;
    }

    /// Takes the earliest event if it is before `limit`.
    pub fn pop_before(&mut self, limit: Nanos) -> Option<Event> {
        if self.heap.peek().is_some_and(|e| e.time < limit) {
            self.heap.pop()
        } else {
            None
        }
    }

    /// Events scheduled so far.
    pub fn scheduled(&self) -> u64 {
        self.seq
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// No event waiting.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_come_out_in_insertion_order() {
        let mut q = EventQueue::new();
        q.push(5, EventKind::Tick);
        q.push(3, EventKind::Round);
        q.push(5, EventKind::Arrival);
        q.push(3, EventKind::PowerCap(1));
        let order: Vec<_> = std::iter::from_fn(|| q.pop_before(u64::MAX))
            .map(|e| (e.time, e.kind))
            .collect();
        assert_eq!(
            order,
            vec![
                (3, EventKind::Round),
                (3, EventKind::PowerCap(1)),
                (5, EventKind::Tick),
                (5, EventKind::Arrival)
            ]
        );
        q.push(10, EventKind::Tick);
        assert!(q.pop_before(10).is_none());
        assert_eq!(q.len(), 1);
    }
}

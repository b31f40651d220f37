//! Group commit: concurrent [`Outbox::publish`](crate::Outbox::publish) calls share
//! commits.
//!
//! Every call queues its prepared event. When no commit is in flight, the caller becomes
//! the *leader*: it takes what is queued (up to a bound), stores it with one
//! [`DeliveryStore::enqueue_all`], hands each caller in the batch its result and names the
//! next leader among the callers still queued. Whatever arrives while a commit is in flight
//! goes into the next one. No task is spawned and no timer is used: the commits are driven
//! by the publishing calls themselves, on whatever runtime they run.
//!
//! Cancellation: a caller dropped while queued leaves its event queued (the next commit
//! stores it); a leader dropped mid-commit puts its batch back at the front of the queue
//! for the next leader, which stores it again — enqueueing the same delivery ids twice
//! changes nothing, so nothing is stored twice and nothing queued is lost.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

use crate::store::{DeliveryStore, NewEvent, StoreError};

/// The most events one commit takes.
pub(crate) const MAX_EVENTS: usize = 1024;
/// The most deliveries one commit takes (a commit always takes at least one event).
pub(crate) const MAX_DELIVERIES: usize = 65_536;

/// The queue of events waiting for a commit, shared by the clones of an outbox.
#[derive(Default)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<(NewEvent, Arc<Slot>)>,
    /// A leader is named or committing.
    leading: bool,
    /// Commits made (for tests and `Debug`).
    commits: u64,
}

/// Where one caller waits for its result.
#[derive(Default)]
struct Slot(Mutex<SlotState>);

#[derive(Default)]
enum SlotState {
    /// Waiting in the queue (with the waker of its caller, once polled).
    #[default]
    Queued,
    Waiting(Waker),
    /// Named leader: commit the front of the queue.
    Lead,
    /// Its caller is gone.
    Abandoned,
    Done(Result<(), StoreError>),
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the state and wakes the caller waiting on it; the state it replaced.
    fn set(&self, to: SlotState) -> SlotState {
        let old = std::mem::replace(&mut *self.lock(), to);
        match old {
            SlotState::Waiting(waker) => {
                waker.wake();
                SlotState::Queued
            }
            old => old,
        }
    }
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("GroupCommit")
            .field("queued", &state.queue.len())
            .field("leading", &state.leading)
            .field("commits", &state.commits)
            .finish()
    }
}

impl GroupCommit {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many commits were made.
    pub(crate) fn commits(&self) -> u64 {
        self.lock().commits
    }

    /// Stores `event` in a commit shared with the calls that arrive meanwhile; returns once
    /// that commit is over, with its result.
    pub(crate) async fn submit<S: DeliveryStore + ?Sized>(
        &self,
        store: &S,
        event: NewEvent,
    ) -> Result<(), StoreError> {
        let slot = Arc::new(Slot::default());
        {
            let mut state = self.lock();
            state.queue.push_back((event, Arc::clone(&slot)));
            if !state.leading {
                state.leading = true;
                *slot.lock() = SlotState::Lead;
            }
        }
        let _caller = Caller {
            commits: self,
            slot: &slot,
        };
        loop {
            // Wait for the result, or to be named leader.
            let lead = poll_fn(|cx| {
                let mut state = slot.lock();
                match &*state {
                    SlotState::Done(result) => Poll::Ready(Err(result.clone())),
                    SlotState::Lead => Poll::Ready(Ok(())),
                    _ => {
                        *state = SlotState::Waiting(cx.waker().clone());
                        Poll::Pending
                    }
                }
            })
            .await;
            if let Err(result) = lead {
                return result;
            }
            self.commit(store).await;
            if matches!(*slot.lock(), SlotState::Done(_)) {
                self.hand_on();
            }
            // Else its own event was past the batch's bound: it leads the next commit too.
        }
    }

    /// Takes a batch from the front of the queue and stores it in one commit; every caller
    /// in it gets the result.
    async fn commit<S: DeliveryStore + ?Sized>(&self, store: &S) {
        let mut pending = Batch {
            commits: self,
            events: Vec::new(),
            slots: Vec::new(),
        };
        {
            let mut state = self.lock();
            let mut deliveries = 0usize;
            while let Some((event, _)) = state.queue.front() {
                let n = event.deliveries().len();
                let full = pending.events.len() == MAX_EVENTS
                    || deliveries.saturating_add(n) > MAX_DELIVERIES;
                if !pending.events.is_empty() && full {
                    break;
                }
                deliveries = deliveries.saturating_add(n);
                if let Some((event, slot)) = state.queue.pop_front() {
                    pending.events.push(event);
                    pending.slots.push(slot);
                }
            }
        }
        let result = store.enqueue_all(&pending.events).await.map(|_| ());
        self.lock().commits += 1;
        pending.events.clear();
        for slot in std::mem::take(&mut pending.slots) {
            slot.set(SlotState::Done(result.clone()));
        }
    }

    /// Names the next leader: the first caller still queued and waiting. With none, the
    /// next call leads (and takes whatever its gone predecessors left queued).
    fn hand_on(&self) {
        let mut state = self.lock();
        for (_, slot) in &state.queue {
            let mut s = slot.lock();
            if matches!(*s, SlotState::Queued | SlotState::Waiting(_)) {
                if let SlotState::Waiting(waker) = std::mem::replace(&mut *s, SlotState::Lead) {
                    waker.wake();
                }
                return;
            }
        }
        state.leading = false;
    }
}

/// A caller in [`GroupCommit::submit`]; when dropped before its result, marks its slot
/// abandoned and, if it had been named leader, names another.
struct Caller<'a> {
    commits: &'a GroupCommit,
    slot: &'a Arc<Slot>,
}

impl Drop for Caller<'_> {
    fn drop(&mut self) {
        let was = {
            let mut s = self.slot.lock();
            if matches!(*s, SlotState::Done(_)) {
                return;
            }
            std::mem::replace(&mut *s, SlotState::Abandoned)
        };
        if matches!(was, SlotState::Lead) {
            self.commits.hand_on();
        }
    }
}

/// A batch being committed; when dropped mid-commit (its leader was cancelled), it goes
/// back to the front of the queue (the leader's [`Caller`], dropped next, names another
/// leader).
struct Batch<'a> {
    commits: &'a GroupCommit,
    events: Vec<NewEvent>,
    slots: Vec<Arc<Slot>>,
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if self.slots.is_empty() {
            return;
        }
        let mut state = self.commits.lock();
        let back = self.events.drain(..).zip(self.slots.drain(..)).rev();
        for entry in back {
            state.queue.push_front(entry);
        }
    }
}

//! A fair async counting semaphore: no runtime, no task, a mutex around a queue.
//!
//! Waiters are served first come, first served; a permit that is released while someone
//! waits goes straight to the first waiter (so a newcomer cannot overtake the queue). Every
//! operation is O(1) (amortized): a waiter that gives up (its future is dropped) leaves a
//! stale entry in the queue, skipped by the next release.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// At most `permits` holders at a time.
pub(crate) struct Semaphore {
    state: Mutex<State>,
}

struct State {
    /// Free permits. Invariant: while any are free, nobody waits.
    permits: usize,
    /// Waiter slots, reused through `free`.
    waiters: Vec<Waiter>,
    free: Vec<usize>,
    /// Slots in the order they asked, with the generation they had then.
    queue: VecDeque<(usize, u64)>,
    next_generation: u64,
}

struct Waiter {
    generation: u64,
    waker: Option<Waker>,
    granted: bool,
    live: bool,
}

impl Semaphore {
    pub(crate) fn new(permits: usize) -> Semaphore {
        Semaphore {
            state: Mutex::new(State {
                permits,
                waiters: Vec::new(),
                free: Vec::new(),
                queue: VecDeque::new(),
                next_generation: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is consistent between statements; a panic elsewhere cannot break it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many permits are free now (then nobody waits).
    pub(crate) fn available(&self) -> usize {
        self.lock().permits
    }

    /// A permit now, if one is free (then nobody waits, so this overtakes no one).
    pub(crate) fn try_acquire(&self) -> Option<Permit<'_>> {
        let mut state = self.lock();
        if state.permits == 0 {
            return None;
        }
        state.permits -= 1;
        Some(Permit { semaphore: self })
    }

    /// Waits for a permit; the permit goes back when the [`Permit`] is dropped.
    pub(crate) fn acquire(&self) -> Acquire<'_> {
        Acquire {
            semaphore: self,
            slot: None,
        }
    }

    /// Hands a permit to the first live waiter, or frees it.
    fn release(&self) {
        let mut state = self.lock();
        while let Some((key, generation)) = state.queue.pop_front() {
            let Some(waiter) = state.waiters.get_mut(key) else {
                continue;
            };
            if waiter.live && waiter.generation == generation && !waiter.granted {
                waiter.granted = true;
                let waker = waiter.waker.take();
                drop(state);
                if let Some(waker) = waker {
                    waker.wake();
                }
                return;
            }
        }
        state.permits = state.permits.saturating_add(1);
    }
}

/// The future of [`Semaphore::acquire`].
pub(crate) struct Acquire<'a> {
    semaphore: &'a Semaphore,
    /// The waiter slot and its generation, once queued.
    slot: Option<(usize, u64)>,
}

impl<'a> Future for Acquire<'a> {
    type Output = Permit<'a>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Permit<'a>> {
        let semaphore = self.semaphore;
        let mut state = semaphore.lock();
        match self.slot {
            None => {
                if state.permits > 0 {
                    state.permits -= 1;
                    return Poll::Ready(Permit { semaphore });
                }
                let generation = state.next_generation;
                state.next_generation = generation.wrapping_add(1);
                let waiter = Waiter {
                    generation,
                    waker: Some(cx.waker().clone()),
                    granted: false,
                    live: true,
                };
                let key = match state.free.pop() {
                    Some(key) => {
                        state.waiters[key] = waiter;
                        key
                    }
                    None => {
                        state.waiters.push(waiter);
                        state.waiters.len() - 1
                    }
                };
                state.queue.push_back((key, generation));
                drop(state);
                self.slot = Some((key, generation));
                Poll::Pending
            }
            Some((key, _)) => {
                let waiter = &mut state.waiters[key];
                if waiter.granted {
                    waiter.live = false;
                    waiter.waker = None;
                    state.free.push(key);
                    drop(state);
                    self.slot = None;
                    Poll::Ready(Permit { semaphore })
                } else {
                    match &mut waiter.waker {
                        Some(waker) if waker.will_wake(cx.waker()) => {}
                        other => *other = Some(cx.waker().clone()),
                    }
                    Poll::Pending
                }
            }
        }
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        let Some((key, _)) = self.slot.take() else {
            return;
        };
        let mut state = self.semaphore.lock();
        let waiter = &mut state.waiters[key];
        let granted = waiter.granted;
        waiter.live = false;
        waiter.waker = None;
        state.free.push(key);
        drop(state);
        if granted {
            // Handed a permit it will never use: pass it on.
            self.semaphore.release();
        }
    }
}

/// One permit of a [`Semaphore`], given back on drop.
pub(crate) struct Permit<'a> {
    semaphore: &'a Semaphore,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.semaphore.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
        Pin::new(f).poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn permits_go_to_waiters_in_order_and_dropped_waiters_pass_them_on() {
        let s = Semaphore::new(1);
        let mut a = s.acquire();
        let Poll::Ready(held) = poll(&mut a) else {
            panic!("a free permit")
        };
        let (mut b, mut c, mut d) = (s.acquire(), s.acquire(), s.acquire());
        assert!(poll(&mut b).is_pending());
        assert!(poll(&mut c).is_pending());
        assert!(poll(&mut d).is_pending());
        drop(held);
        // b was first: it is granted; dropping it unused passes the permit to c.
        drop(b);
        assert!(poll(&mut d).is_pending());
        let Poll::Ready(c_permit) = poll(&mut c) else {
            panic!("c is next")
        };
        // A newcomer does not overtake d.
        let mut e = s.acquire();
        drop(c_permit);
        assert!(poll(&mut e).is_pending());
        assert!(poll(&mut d).is_ready());
        // d's permit is gone with its output; e still waits until released.
        assert!(poll(&mut e).is_ready());
    }

    #[test]
    fn a_cancelled_waiter_is_skipped() {
        let s = Semaphore::new(1);
        let mut first = s.acquire();
        let Poll::Ready(held) = poll(&mut first) else {
            panic!()
        };
        let mut gone = s.acquire();
        assert!(poll(&mut gone).is_pending());
        drop(gone);
        let mut next = s.acquire();
        assert!(poll(&mut next).is_pending());
        drop(held);
        assert!(poll(&mut next).is_ready());
    }
}

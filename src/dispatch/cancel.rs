//! Cancels in process: which webhooks were switched off or deleted while their deliveries
//! were running in a [`Dispatcher`](crate::Dispatcher).
//!
//! Every cancel bumps an epoch. A plan notes the epoch when it starts; before each attempt
//! of its deliveries (and while one waits out a backoff) it asks whether the delivery's
//! webhook was cancelled after that. Until the first cancel the question is one atomic load;
//! a webhook switched on again gets new plans (a later epoch) that the old cancel does not
//! touch.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::{CancelReason, WebhookId};

/// The cancels of one dispatcher.
#[derive(Default)]
pub(crate) struct Cancels {
    /// How many cancels so far.
    epoch: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Each webhook's latest cancel: its epoch and reason.
    latest: HashMap<WebhookId, (u64, CancelReason)>,
    /// Deliveries waiting out a backoff, by their wait's key: woken by the next cancel, and
    /// taken out when their wait ends.
    waiting: HashMap<u64, Waker>,
    /// The next wait's key.
    next_key: u64,
}

impl Cancels {
    /// The epoch now: what a plan starting now notes.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Cancels `webhook`'s deliveries running now.
    pub(crate) fn cancel(&self, webhook: WebhookId, reason: CancelReason) {
        let waiting: Vec<Waker> = {
            let mut inner = self.lock();
            let epoch = self.epoch.load(Ordering::Acquire).wrapping_add(1);
            inner.latest.insert(webhook, (epoch, reason));
            self.epoch.store(epoch, Ordering::Release);
            inner.waiting.values().cloned().collect()
        };
        waiting.into_iter().for_each(Waker::wake);
    }

    /// Whether a delivery to `webhook` of a plan that started at epoch `since` is
    /// cancelled, and why.
    pub(crate) fn check(&self, webhook: Option<WebhookId>, since: u64) -> Option<CancelReason> {
        let webhook = webhook?;
        if self.epoch() == since {
            return None;
        }
        Self::cancelled(&self.lock(), webhook, since)
    }

    fn cancelled(inner: &Inner, webhook: WebhookId, since: u64) -> Option<CancelReason> {
        inner
            .latest
            .get(&webhook)
            .filter(|(epoch, _)| *epoch > since)
            .map(|(_, reason)| *reason)
    }

    /// Ready with the reason once the delivery is cancelled (never, for a delivery without
    /// a webhook). Its waker is held only while the future is: dropping it (the backoff
    /// ended first) lets go of it.
    pub(crate) fn wait(&self, webhook: Option<WebhookId>, since: u64) -> CancelWait<'_> {
        CancelWait {
            cancels: self,
            webhook,
            since,
            key: None,
        }
    }
}

/// See [`Cancels::wait`].
pub(crate) struct CancelWait<'a> {
    cancels: &'a Cancels,
    webhook: Option<WebhookId>,
    since: u64,
    key: Option<u64>,
}

impl Future for CancelWait<'_> {
    type Output = CancelReason;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<CancelReason> {
        let Some(webhook) = self.webhook else {
            return Poll::Pending;
        };
        let cancels = self.cancels;
        let mut inner = cancels.lock();
        // Asked under the lock: a cancel either came before (seen here) or wakes us.
        if let Some(reason) = Cancels::cancelled(&inner, webhook, self.since) {
            if let Some(key) = self.key.take() {
                inner.waiting.remove(&key);
            }
            return Poll::Ready(reason);
        }
        let key = match self.key {
            Some(key) => key,
            None => {
                let key = inner.next_key;
                inner.next_key = inner.next_key.wrapping_add(1);
                key
            }
        };
        inner.waiting.insert(key, cx.waker().clone());
        drop(inner);
        self.key = Some(key);
        Poll::Pending
    }
}

impl Drop for CancelWait<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.cancels.lock().waiting.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Wake;

    struct Noop;
    impl Wake for Noop {
        fn wake(self: std::sync::Arc<Self>) {}
    }

    #[test]
    fn a_wait_lets_go_of_its_waker_when_dropped() {
        let cancels = Cancels::default();
        let waker = Waker::from(std::sync::Arc::new(Noop));
        let mut cx = Context::from_waker(&waker);
        for _ in 0..100 {
            let mut wait = Box::pin(cancels.wait(Some(WebhookId::new(1)), 0));
            assert!(wait.as_mut().poll(&mut cx).is_pending());
            assert!(wait.as_mut().poll(&mut cx).is_pending());
        }
        assert!(cancels.lock().waiting.is_empty(), "no waker left behind");
        let mut wait = Box::pin(cancels.wait(Some(WebhookId::new(1)), 0));
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        cancels.cancel(
            WebhookId::new(1),
            CancelReason::SwitchedOff(crate::Deactivation::Manual),
        );
        assert!(wait.as_mut().poll(&mut cx).is_ready());
        assert!(cancels.lock().waiting.is_empty());
        drop(wait);
        assert!(cancels.check(Some(WebhookId::new(1)), 0).is_some());
        assert!(
            cancels
                .check(Some(WebhookId::new(1)), cancels.epoch())
                .is_none()
        );
    }
}

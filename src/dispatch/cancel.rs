//! Cancels in process: which webhooks were switched off or deleted while their deliveries
//! were running in a [`Dispatcher`](crate::Dispatcher).
//!
//! Every cancel bumps an epoch. A delivery notes the epoch when it starts; before each
//! attempt (and while it waits out a backoff) it asks whether its webhook was cancelled
//! after that. Until the first cancel the question is one atomic load; a webhook switched on
//! again gets new deliveries (a later epoch) that the old cancel does not touch.

use std::collections::HashMap;
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
    /// Deliveries waiting out a backoff, woken by the next cancel.
    waiting: Vec<Waker>,
}

impl Cancels {
    /// The epoch now: what a delivery starting now notes.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Cancels `webhook`'s deliveries running now.
    pub(crate) fn cancel(&self, webhook: WebhookId, reason: CancelReason) {
        let waiting = {
            let mut inner = self.lock();
            let epoch = self.epoch.load(Ordering::Acquire).wrapping_add(1);
            inner.latest.insert(webhook, (epoch, reason));
            self.epoch.store(epoch, Ordering::Release);
            std::mem::take(&mut inner.waiting)
        };
        waiting.into_iter().for_each(Waker::wake);
    }

    /// Whether a delivery to `webhook` that started at epoch `since` is cancelled, and why.
    pub(crate) fn check(&self, webhook: Option<WebhookId>, since: u64) -> Option<CancelReason> {
        let webhook = webhook?;
        if self.epoch() == since {
            return None;
        }
        self.lock()
            .latest
            .get(&webhook)
            .filter(|(epoch, _)| *epoch > since)
            .map(|(_, reason)| *reason)
    }

    /// Ready with the reason once the delivery is cancelled; until then the task is woken
    /// by every cancel (and asks again).
    pub(crate) fn poll_cancelled(
        &self,
        webhook: Option<WebhookId>,
        since: u64,
        cx: &mut Context<'_>,
    ) -> Poll<CancelReason> {
        if webhook.is_none() {
            return Poll::Pending;
        }
        let mut inner = self.lock();
        // Asked under the lock: a cancel either came before (seen here) or wakes us.
        if let Some(reason) = webhook
            .and_then(|w| inner.latest.get(&w))
            .filter(|(epoch, _)| *epoch > since)
            .map(|(_, reason)| *reason)
        {
            return Poll::Ready(reason);
        }
        if !inner.waiting.iter().any(|w| w.will_wake(cx.waker())) {
            inner.waiting.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

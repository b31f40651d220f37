//! Deliveries between attempts and the delivery log: a small outbox of this example's own,
//! with the shape of posthook's durable one (publish, claim due deliveries, finish an
//! attempt, read a webhook's recent deliveries newest first). It is saved to
//! `deliveries.json` in the data directory after every change, so a restart loses no
//! delivery: one that was in flight is attempted again (at least once; the delivery id lets
//! a receiver drop the repeat).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use posthook::{
    AttemptOutcome, Delivery, DeliveryId, DeliveryReport, Event, EventKind, FinalOutcome, Registry,
    RetryPolicy, WebhookId, WebhookUrl,
};
use serde::{Deserialize, Serialize};

/// How many finished deliveries the log keeps (pending ones are always kept).
const KEEP_FINISHED: usize = 1000;

/// Where a delivery came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// "Send sample data".
    Sample,
    /// An event published through the outbox.
    Event,
}

/// One attempt, as the log shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoggedAttempt {
    pub at: SystemTime,
    pub outcome: AttemptOutcome,
    pub duration: Duration,
}

/// One delivery with its attempts: a row of the delivery log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEntry {
    pub id: DeliveryId,
    pub webhook: WebhookId,
    pub kind: EventKind,
    pub origin: Origin,
    pub created: SystemTime,
    pub attempts: Vec<LoggedAttempt>,
    /// `None` while it is pending.
    pub outcome: Option<FinalOutcome>,
    /// When the next attempt is due, while it is pending.
    pub due: Option<SystemTime>,
}

/// A delivery claimed by the worker: what it needs for one attempt.
pub struct Claimed {
    pub delivery: Delivery,
    pub url: WebhookUrl,
    pub body: Bytes,
    pub created: SystemTime,
}

#[derive(Serialize, Deserialize)]
struct Pending {
    delivery: Delivery,
    url: WebhookUrl,
    /// The form body (always ASCII: the encoder percent-encodes everything else).
    body: String,
}

#[derive(Default, Serialize, Deserialize)]
struct State {
    pending: HashMap<DeliveryId, Pending>,
    /// Oldest first.
    log: Vec<LogEntry>,
    #[serde(skip)]
    next_id: u64,
}

pub struct Outbox {
    state: Mutex<State>,
    path: PathBuf,
    policy: RetryPolicy,
    seed: u64,
    pub wakeup: tokio::sync::Notify,
}

impl Outbox {
    /// The outbox saved in `dir`, or an empty one.
    pub fn open(dir: &Path, policy: RetryPolicy) -> io::Result<Outbox> {
        let path = dir.join("deliveries.json");
        let mut state: State = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(e),
        };
        // Attempts in flight when the app stopped: due again now.
        let now = SystemTime::now();
        for entry in &mut state.log {
            if entry.outcome.is_none() && entry.due.is_none() {
                entry.due = Some(now);
            }
        }
        let seed = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Ok(Outbox {
            state: Mutex::new(state),
            path,
            policy,
            seed,
            wakeup: tokio::sync::Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `state` through a temporary file (called with the lock held, so writes never
    /// interleave), after dropping the oldest finished deliveries past `KEEP_FINISHED`.
    fn save(&self, state: &mut State) {
        let finished = state.log.iter().filter(|e| e.outcome.is_some()).count();
        let mut excess = finished.saturating_sub(KEEP_FINISHED);
        state.log.retain(|e| {
            let old = excess > 0 && e.outcome.is_some();
            excess -= usize::from(old);
            !old
        });
        let written = serde_json::to_vec(&*state)
            .map_err(io::Error::other)
            .and_then(|json| {
                let tmp = self.path.with_extension("json.tmp");
                std::fs::write(&tmp, json)?;
                std::fs::rename(tmp, &self.path)
            });
        if let Err(error) = written {
            eprintln!("could not save {}: {error}", self.path.display());
        }
    }

    fn new_id(&self, state: &mut State) -> DeliveryId {
        state.next_id += 1;
        DeliveryId::new((u128::from(self.seed) << 64) | u128::from(state.next_id))
    }

    /// Stores one delivery of `event` per matching webhook, due now; returns how many.
    pub fn publish(&self, registry: &Registry, event: &Event) -> usize {
        let body = event.encode();
        let now = SystemTime::now();
        let mut state = self.lock();
        let mut count = 0;
        for hook in registry.matches(event) {
            let Some(webhook) = hook.id() else { continue };
            let id = self.new_id(&mut state);
            let delivery = Delivery::new(id, Some(webhook), self.policy.clone());
            let url = hook.url().clone();
            let body = String::from_utf8_lossy(&body).into_owned();
            let pending = Pending {
                delivery,
                url,
                body,
            };
            state.pending.insert(id, pending);
            state.log.push(LogEntry {
                id,
                webhook,
                kind: event.kind(),
                origin: Origin::Event,
                created: now,
                attempts: Vec::new(),
                outcome: None,
                due: Some(now),
            });
            count += 1;
        }
        self.save(&mut state);
        drop(state);
        self.wakeup.notify_one();
        count
    }

    /// Claims every delivery that is due: it is not due again until `finish` says when.
    pub fn claim_due(&self) -> Vec<Claimed> {
        let now = SystemTime::now();
        let mut state = self.lock();
        let State { pending, log, .. } = &mut *state;
        let mut claimed = Vec::new();
        for entry in log
            .iter_mut()
            .filter(|e| e.due.is_some_and(|due| due <= now))
        {
            entry.due = None;
            if let Some(p) = pending.get(&entry.id) {
                claimed.push(Claimed {
                    delivery: p.delivery.clone(),
                    url: p.url.clone(),
                    body: Bytes::from(p.body.clone()),
                    created: entry.created,
                });
            }
        }
        if !claimed.is_empty() {
            self.save(&mut state);
        }
        claimed
    }

    /// When the next pending delivery is due, if any.
    pub fn next_due(&self) -> Option<SystemTime> {
        self.lock().log.iter().filter_map(|e| e.due).min()
    }

    /// Records the attempt the worker made of a claimed delivery: its next due time, or
    /// its final outcome.
    pub fn finish(
        &self,
        delivery: Delivery,
        attempt: Option<LoggedAttempt>,
        retry_after: Option<Duration>,
    ) {
        let mut state = self.lock();
        let id = delivery.id();
        let Some(entry) = state.log.iter_mut().find(|e| e.id == id) else {
            return;
        };
        entry.attempts.extend(attempt);
        entry.outcome = delivery.outcome().cloned();
        entry.due = match retry_after {
            Some(after) if entry.outcome.is_none() => Some(SystemTime::now() + after),
            _ => None,
        };
        if entry.due.is_some() {
            if let Some(pending) = state.pending.get_mut(&id) {
                pending.delivery = delivery;
            }
        } else {
            state.pending.remove(&id);
        }
        self.save(&mut state);
    }

    /// Logs a delivery the app made itself ("Send sample data").
    pub fn log_report(
        &self,
        webhook: WebhookId,
        kind: EventKind,
        report: &DeliveryReport,
        at: SystemTime,
        duration: Duration,
    ) {
        let attempts = report
            .attempts
            .iter()
            .map(|a| LoggedAttempt {
                at: at + a.at,
                outcome: a.outcome.clone(),
                duration,
            })
            .collect();
        let mut state = self.lock();
        state.log.push(LogEntry {
            id: report.id,
            webhook,
            kind,
            origin: Origin::Sample,
            created: at,
            attempts,
            outcome: Some(report.outcome.clone()),
            due: None,
        });
        self.save(&mut state);
    }

    /// The most recent deliveries of `webhook`, newest first.
    pub fn recent(&self, webhook: WebhookId, limit: usize) -> Vec<LogEntry> {
        let state = self.lock();
        let rows = state.log.iter().rev().filter(|e| e.webhook == webhook);
        rows.take(limit).cloned().collect()
    }
}

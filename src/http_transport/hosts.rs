//! The per-host limit of [`HttpTransport`](super::HttpTransport): at most `limit` exchanges
//! in flight per (scheme, host, port), the others waiting their turn (first come, first
//! served) for one of the host's connections instead of opening one of their own.
//!
//! A host has an entry only while an exchange to it is in flight or waiting: the last one
//! to finish removes it, so a transport that has spoken to 100,000 hosts holds entries for
//! the few it is speaking to now, not for all it ever spoke to.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Semaphore;

/// The hosts with exchanges in flight, each with its semaphore.
pub(super) struct HostLimits {
    limit: usize,
    hosts: Mutex<HashMap<Box<str>, Arc<Host>>>,
}

/// One host: its key (for the removal) and the permits left.
struct Host {
    key: Box<str>,
    permits: Semaphore,
}

/// A place in a host's line, with the permit once it is held. Dropping it gives the permit
/// back (to the next in line) and removes the host's entry when nobody else holds or waits.
pub(super) struct Hold<'a> {
    limits: &'a Arc<HostLimits>,
    /// Taken by the drop.
    host: Option<Arc<Host>>,
    held: bool,
}

impl HostLimits {
    /// At most `limit` exchanges in flight per host (clamped to what a semaphore holds).
    pub(super) fn new(limit: usize) -> HostLimits {
        HostLimits {
            limit: limit.clamp(1, Semaphore::MAX_PERMITS),
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// The limit per host.
    pub(super) fn limit(&self) -> usize {
        self.limit
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Box<str>, Arc<Host>>> {
        // Nothing panics under the lock; a poisoned map is still consistent.
        self.hosts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place in `key`'s line: `Ok` with the permit held when one is free now, `Err` with
    /// a place to [`wait`](Hold::wait) from when the host is at its limit.
    pub(super) fn try_hold<'a>(self: &'a Arc<Self>, key: &str) -> Result<Hold<'a>, Hold<'a>> {
        let mut hosts = self.lock();
        let host = match hosts.get(key) {
            Some(host) => Arc::clone(host),
            None => {
                let host = Arc::new(Host {
                    key: key.into(),
                    permits: Semaphore::new(self.limit),
                });
                hosts.insert(key.into(), Arc::clone(&host));
                host
            }
        };
        // Taken under the lock, so that a release never sees a host as unused while a
        // permit is being taken from it.
        let held = match host.permits.try_acquire() {
            Ok(permit) => {
                permit.forget();
                true
            }
            Err(_) => false,
        };
        drop(hosts);
        let hold = Hold {
            limits: self,
            host: Some(host),
            held,
        };
        if held { Ok(hold) } else { Err(hold) }
    }

    /// Gives back `host`'s permit when `held`, and removes its entry when this was the last
    /// reference but the map's.
    fn release(&self, host: Arc<Host>, held: bool) {
        let mut hosts = self.lock();
        if held {
            host.permits.add_permits(1);
        }
        // Every clone of a host's `Arc` is made under the lock: two (the map's and this
        // one) means nobody else holds a permit or waits for one.
        if Arc::strong_count(&host) == 2 {
            hosts.remove(&host.key);
            // A burst to many hosts grows the map; give the room back once it is mostly
            // empty.
            if hosts.capacity() > 64 && hosts.len() * 4 < hosts.capacity() {
                let room = hosts.len() * 2;
                hosts.shrink_to(room);
            }
        }
    }

    /// How many hosts have an entry (exchanges in flight or waiting).
    #[cfg(test)]
    pub(super) fn tracked(&self) -> usize {
        self.lock().len()
    }
}

impl Hold<'_> {
    /// Waits for the host's permit (first come, first served). Cancel-safe: a wait that is
    /// dropped gives back a permit it was handed and leaves the line.
    pub(super) async fn wait(&mut self) {
        if self.held {
            return;
        }
        // The semaphore is never closed.
        let Some(host) = &self.host else { return };
        if let Ok(permit) = host.permits.acquire().await {
            permit.forget();
            self.held = true;
        }
    }

    /// How many exchanges to this host are in flight now.
    pub(super) fn in_flight(&self) -> usize {
        self.host.as_ref().map_or(0, |host| {
            self.limits.limit - host.permits.available_permits()
        })
    }
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        let Some(host) = self.host.take() else { return };
        // A turn handed to the next in line on a multi-threaded runtime: hyper may not have
        // put this exchange's connection back into its pool yet (when the connection was
        // not ready at once, it does so on a task of its own), and the next exchange,
        // finding no idle connection, would open one. Handing the turn over from a task
        // that first lets the tasks already queued run puts the connection back first.
        // Uncontended, or on a current-thread runtime (where that task has run by the time
        // this exchange is polled again), the turn is given back at once.
        if self.held && Arc::strong_count(&host) > 2 && handing_over_needs_a_task() {
            let limits = Arc::clone(self.limits);
            tokio::spawn(async move {
                tokio::task::yield_now().await;
                limits.release(host, true);
            });
            return;
        }
        self.limits.release(host, self.held);
    }
}

/// Whether this runs on a multi-threaded tokio runtime.
fn handing_over_needs_a_task() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|runtime| runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

/// The key of a URL's host: `scheme://host[:port]` (the port only when not the scheme's
/// default, as the URL writes it), borrowed from the URL unless it carries user info.
pub(super) fn host_key(url: &url::Url) -> Cow<'_, str> {
    use url::Position;
    if url.username().is_empty() && url.password().is_none() {
        Cow::Borrowed(&url[..Position::AfterPort])
    } else {
        let (scheme, host) = (
            &url[..Position::AfterScheme],
            &url[Position::BeforeHost..Position::AfterPort],
        );
        let mut key = String::with_capacity(scheme.len() + 3 + host.len());
        key.push_str(scheme);
        key.push_str("://");
        key.push_str(host);
        Cow::Owned(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> url::Url {
        url::Url::parse(text).unwrap()
    }

    #[test]
    fn the_key_is_scheme_host_and_port() {
        assert_eq!(host_key(&url("https://a.example/x?y")), "https://a.example");
        assert_eq!(
            host_key(&url("https://A.example:443/")),
            "https://a.example"
        );
        assert_eq!(
            host_key(&url("https://a.example:8443/")),
            "https://a.example:8443"
        );
        assert_eq!(host_key(&url("http://a.example/")), "http://a.example");
        assert_eq!(
            host_key(&url("http://user:pw@a.example:81/")),
            "http://a.example:81"
        );
        assert_eq!(host_key(&url("http://[::1]:8080/")), "http://[::1]:8080");
    }

    #[test]
    fn a_host_at_its_limit_makes_the_next_one_wait_and_hands_the_permit_on() {
        let limits = Arc::new(HostLimits::new(2));
        let a = limits.try_hold("http://h").ok().unwrap();
        let b = limits.try_hold("http://h").ok().unwrap();
        assert_eq!(a.in_flight(), 2);
        let mut c = limits.try_hold("http://h").err().unwrap();
        // Another host is not held back.
        let other = limits.try_hold("http://other").ok().unwrap();
        drop(other);

        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        drop(a);
        runtime.block_on(c.wait());
        assert_eq!(c.in_flight(), 2);
        drop((b, c));
        assert_eq!(limits.tracked(), 0, "no entry outlives its last exchange");
    }

    #[test]
    fn a_wait_given_up_leaves_the_line_and_the_map() {
        let limits = Arc::new(HostLimits::new(1));
        let a = limits.try_hold("http://h").ok().unwrap();
        let waiting = limits.try_hold("http://h").err().unwrap();
        drop(waiting);
        assert_eq!(a.in_flight(), 1);
        drop(a);
        assert_eq!(limits.tracked(), 0);
        assert!(limits.try_hold("http://h").is_ok());
    }

    #[test]
    fn a_hundred_thousand_hosts_leave_no_entries() {
        let limits = Arc::new(HostLimits::new(32));
        let mut held = Vec::new();
        for n in 0..100_000 {
            held.push(
                limits
                    .try_hold(&format!("https://h{n}.example"))
                    .ok()
                    .unwrap(),
            );
            if held.len() == 1_000 {
                held.clear();
            }
        }
        held.clear();
        assert_eq!(limits.tracked(), 0);
        assert!(limits.lock().capacity() <= 64 * 2, "the room is given back");
    }
}

//! Browser sessions: one per browser, named by a random id in an `HttpOnly; SameSite=Strict`
//! cookie. Each session has its own form token (random, kept here, never in the cookie), which
//! every form of the page carries and every POST must give back, and its own notices, so that
//! what one browser did is never shown to another.
//!
//! Sessions live in memory: a restart forgets them (a form left open then is refused once
//! and works after a reload). At most [`MAX_SESSIONS`] are kept; beyond, the one used least
//! recently goes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::pages::Notice;

/// The session cookie's name.
pub const COOKIE: &str = "posthook_session";

/// How many sessions are kept at most.
pub const MAX_SESSIONS: usize = 1000;

/// A session as a handler sees it: its id and its form token.
#[derive(Debug, Clone)]
pub struct SessionRef {
    pub id: Arc<str>,
    pub token: Arc<str>,
}

struct Session {
    token: Arc<str>,
    /// The notice waiting for each page (by path), shown once.
    notices: HashMap<String, Notice>,
    last_seen: Instant,
}

#[derive(Default)]
pub struct Sessions {
    inner: Mutex<HashMap<Arc<str>, Session>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Session>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session named by `id`, if there is one (and it is now used).
    pub fn find(&self, id: &str) -> Option<SessionRef> {
        let mut sessions = self.lock();
        let id = Arc::clone(sessions.get_key_value(id)?.0);
        let session = sessions.get_mut(&id)?;
        session.last_seen = Instant::now();
        let token = Arc::clone(&session.token);
        Some(SessionRef { id, token })
    }

    /// A new session, with a new id and token.
    pub fn create(&self) -> Result<SessionRef, getrandom::Error> {
        let (id, token): (Arc<str>, Arc<str>) = (random_hex()?.into(), random_hex()?.into());
        let mut sessions = self.lock();
        if sessions.len() >= MAX_SESSIONS {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(id, _)| Arc::clone(id));
            if let Some(oldest) = oldest {
                sessions.remove(&oldest);
            }
        }
        let session = Session {
            token: Arc::clone(&token),
            notices: HashMap::new(),
            last_seen: Instant::now(),
        };
        sessions.insert(Arc::clone(&id), session);
        Ok(SessionRef { id, token })
    }

    /// Keeps `notice` for the next view of `page` in session `session`.
    pub fn set_notice(&self, session: &SessionRef, page: &str, notice: Notice) {
        if let Some(s) = self.lock().get_mut(&*session.id) {
            s.notices.insert(page.to_owned(), notice);
        }
    }

    /// The notice waiting for `page` in session `session`, taken.
    pub fn take_notice(&self, session: &SessionRef, page: &str) -> Option<Notice> {
        self.lock().get_mut(&*session.id)?.notices.remove(page)
    }
}

/// 128 random bits as 32 hex digits.
fn random_hex() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether `a` and `b` are equal, in a time that depends on their lengths only: a wrong
/// token tells nothing about how much of it was right.
pub fn same_token(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

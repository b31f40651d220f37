//! The webhooks, in a `Registry` kept in memory and saved to `webhooks.json` in the data
//! directory after every change (the API v3 JSON shape, as posthook serializes a `Webhook`).

use std::io;
use std::path::{Path, PathBuf};

use posthook::{Deactivation, ListId, Registry, Webhook, WebhookId};

/// The lists of this demo application (a real one has them in its database).
pub const LISTS: [(u64, &str); 3] = [(1, "Newsletter"), (2, "Customers"), (3, "Webinar")];

/// The name of a list, for the list drop-down and the table.
pub fn list_name(id: ListId) -> String {
    LISTS
        .iter()
        .find(|(n, _)| *n == id.get())
        .map_or_else(|| format!("#{id}"), |(_, name)| (*name).to_owned())
}

pub struct Hooks {
    registry: Registry,
    path: PathBuf,
}

impl Hooks {
    /// The webhooks saved in `dir`, or none.
    pub fn open(dir: &Path) -> io::Result<Hooks> {
        let path = dir.join("webhooks.json");
        let registry = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Vec<Webhook>>(&bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
                .into_iter()
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Registry::new(),
            Err(e) => return Err(e),
        };
        Ok(Hooks { registry, path })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn get(&self, id: WebhookId) -> Option<&Webhook> {
        self.registry.get(id)
    }

    /// Adds `hook`, or replaces the one with its id; saves.
    pub fn put(&mut self, hook: Webhook) -> io::Result<WebhookId> {
        let id = self.registry.insert(hook);
        self.save()?;
        Ok(id)
    }

    pub fn deactivate(&mut self, id: WebhookId, reason: Deactivation) -> io::Result<bool> {
        let found = self.registry.deactivate(id, reason);
        self.save()?;
        Ok(found)
    }

    pub fn set_active(&mut self, id: WebhookId, active: bool) -> io::Result<bool> {
        let found = self.registry.set_active(id, active);
        self.save()?;
        Ok(found)
    }

    /// Writes every webhook, through a temporary file so a crash never leaves half a file.
    fn save(&self) -> io::Result<()> {
        let hooks: Vec<&Webhook> = self.registry.iter().collect();
        let json = serde_json::to_vec_pretty(&hooks).map_err(io::Error::other)?;
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, json)?;
        std::fs::rename(tmp, &self.path)
    }
}

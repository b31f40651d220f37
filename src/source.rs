//! Who or what triggered an event: the payload's `initiated_from`.
//!
//! ```
//! use posthook::{Source, SourceSet};
//!
//! assert_eq!(Source::Contact.as_str(), "public");
//! assert_eq!("system".parse::<Source>().unwrap(), Source::System);
//! let set = SourceSet::all();
//! assert_eq!(set.len(), 4);
//! ```

use crate::error::UnknownSource;

/// The four sources of an event. The wire id (`initiated_from`) is in brackets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(clippy::exhaustive_enums)] // ActiveCampaign has exactly these four.
#[repr(u8)]
pub enum Source {
    /// `public`: a contact triggered it (subscribed, opened a campaign, ...).
    Contact,
    /// `admin`: an admin user triggered it (added a contact in the admin area, ...).
    Admin,
    /// `api`: an API call triggered it.
    Api,
    /// `system`: automated system processes (bounces, automation emails, ...).
    System,
}

impl Source {
    /// Every source, in ActiveCampaign's order.
    pub const ALL: [Source; 4] = [Source::Contact, Source::Admin, Source::Api, Source::System];

    /// The wire id: `"public"`, `"admin"`, `"api"` or `"system"`.
    #[inline]
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Contact => "public",
            Source::Admin => "admin",
            Source::Api => "api",
            Source::System => "system",
        }
    }

    /// The English label, as ActiveCampaign's webhook form shows it.
    #[inline]
    pub const fn label(self) -> &'static str {
        match self {
            Source::Contact => "By a contact",
            Source::Admin => "By an admin user",
            Source::Api => "By the API",
            Source::System => "By system processes",
        }
    }

    /// The Italian label of the product document.
    #[inline]
    pub const fn label_it(self) -> &'static str {
        match self {
            Source::Contact => "Da un contatto",
            Source::Admin => "Da un utente amministratore",
            Source::Api => "Dall'API",
            Source::System => "Da processi di sistema",
        }
    }

    /// The source's position in [`Source::ALL`].
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Looks a source up by its wire id without allocating an error.
    #[inline]
    pub fn from_id(id: &str) -> Option<Source> {
        match id {
            "public" => Some(Source::Contact),
            "admin" => Some(Source::Admin),
            "api" => Some(Source::Api),
            "system" => Some(Source::System),
            _ => None,
        }
    }
}

crate::macros::wire_id!(Source, UnknownSource);

crate::macros::bit_set! {
    /// A `Copy` set of [`Source`]s: the sources a webhook listens to.
    ///
    /// Serde writes it as a list of ids and reads any list of ids.
    SourceSet, SourceSetIter, Source, u8
}

//! The 25 webhook event kinds and sets of them.
//!
//! [`EventKind`] names what happened (`"subscribe"`, `"deal_task_complete"`, ...), exactly as
//! ActiveCampaign's `GET /api/3/webhook/events` lists it. [`EventSet`] is a `Copy` bit set of
//! kinds: what a webhook subscribes to.
//!
//! ```
//! use posthook::{EventKind, EventSet};
//!
//! let kind: EventKind = "deal_task_complete".parse().unwrap();
//! assert_eq!(kind, EventKind::DealTaskComplete);
//! assert_eq!(kind.label(), "Deal task completed");
//! assert_eq!(kind.label_it(), "Attività dell'offerta completata");
//! assert!(!kind.is_list_aware());
//!
//! let set: EventSet = [EventKind::Open, EventKind::Click].into_iter().collect();
//! assert!(set.contains(EventKind::Click));
//! assert_eq!(set.len(), 2);
//! assert!("account_add".parse::<EventKind>().is_err());
//! ```

use crate::error::UnknownEventKind;

macro_rules! event_kinds {
    ($( $(#[$doc:meta])* $variant:ident = ($id:literal, $en:literal, $it:literal, $aware:literal), )*) => {
        /// One of the 25 events a webhook can subscribe to.
        ///
        /// The wire id (`as_str`, `Display`, `FromStr`, serde) is ActiveCampaign's. The enum is
        /// exhaustive, so a `match` over the 25 kinds needs no wildcard; ActiveCampaign's
        /// further kinds (`account_add`, ...) would come in a new minor version before 1.0.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[allow(clippy::exhaustive_enums)] // the product's 25 kinds, matched exhaustively by users
        #[repr(u8)]
        pub enum EventKind {
            $( $(#[$doc])* $variant, )*
        }

        impl EventKind {
            /// Every kind, in the order of ActiveCampaign's event table.
            pub const ALL: [EventKind; 25] = [ $( EventKind::$variant, )* ];

            /// The wire id, e.g. `"deal_task_complete"`.
            #[inline]
            pub const fn as_str(self) -> &'static str {
                match self { $( EventKind::$variant => $id, )* }
            }

            /// The English label ActiveCampaign shows, e.g. `"Deal task completed"`.
            #[inline]
            pub const fn label(self) -> &'static str {
                match self { $( EventKind::$variant => $en, )* }
            }

            /// The Italian label of the product document, e.g. `"Attività dell'offerta completata"`.
            #[inline]
            pub const fn label_it(self) -> &'static str {
                match self { $( EventKind::$variant => $it, )* }
            }

            /// Looks a kind up by its exact wire id, without allocating an error.
            #[inline]
            pub fn from_id(id: &str) -> Option<EventKind> {
                match id { $( $id => Some(EventKind::$variant), )* _ => None }
            }

            /// Whether a webhook's list scope filters this kind.
            ///
            /// ActiveCampaign documents that a webhook's list "has no effect" on notes, tags,
            /// deals, lists and SMS: a webhook bound to one list still receives those.
            #[inline]
            pub const fn is_list_aware(self) -> bool {
                match self { $( EventKind::$variant => $aware, )* }
            }
        }
    };
}

event_kinds! {
    /// `forward`: a campaign was forwarded through the forward link.
    Forward = ("forward", "Campaign forwarded", "Campagna inoltrata", true),
    /// `open`: a campaign was opened.
    Open = ("open", "Campaign opened", "Campagna aperta", true),
    /// `share`: a campaign was shared on a social network.
    Share = ("share", "Campaign shared", "Campagna condivisa", true),
    /// `sent`: a campaign started sending.
    Sent = ("sent", "Campaign starts sending", "Inizio invii campagna", true),
    /// `subscribe`: a contact was added.
    Subscribe = ("subscribe", "Contact added", "Contatto aggiunto", true),
    /// `subscriber_note`: a note was added to a contact.
    SubscriberNote = ("subscriber_note", "Contact note added", "Nota di contatto aggiunta", false),
    /// `contact_tag_added`: a tag was added to a contact.
    ContactTagAdded = ("contact_tag_added", "Contact tag added", "Tag di contatto aggiunto", false),
    /// `contact_tag_removed`: a tag was removed from a contact.
    ContactTagRemoved = ("contact_tag_removed", "Contact tag removed", "Tag di contatto rimosso", false),
    /// `unsubscribe`: a contact unsubscribed.
    Unsubscribe = ("unsubscribe", "Contact unsubscription", "Annullamento dell'iscrizione contatto", true),
    /// `update`: a contact was updated.
    Update = ("update", "Contact updated", "Contatto aggiornato", true),
    /// `deal_add`: a deal was added.
    DealAdd = ("deal_add", "Deal added", "Offerta aggiunta", false),
    /// `deal_note_add`: a note was added to a deal.
    DealNoteAdd = ("deal_note_add", "Deal note added", "Nota di offerta aggiunta", false),
    /// `deal_pipeline_add`: a deal pipeline was added.
    DealPipelineAdd = ("deal_pipeline_add", "Deal pipeline added", "Pipeline di offerta aggiunta", false),
    /// `deal_stage_add`: a deal stage was added.
    DealStageAdd = ("deal_stage_add", "Deal stage added", "Fase dell'offerta aggiunta", false),
    /// `deal_task_add`: a task was added to a deal.
    DealTaskAdd = ("deal_task_add", "Deal task added", "Attività dell'offerta aggiunta", false),
    /// `deal_task_complete`: a deal task was completed.
    DealTaskComplete = ("deal_task_complete", "Deal task completed", "Attività dell'offerta completata", false),
    /// `deal_tasktype_add`: a deal task type was added.
    DealTasktypeAdd = ("deal_tasktype_add", "Deal task type added", "Tipo di attività offerta aggiunto", false),
    /// `deal_update`: a deal was updated.
    DealUpdate = ("deal_update", "Deal updated", "Offerta aggiornata", false),
    /// `bounce`: an email bounced.
    Bounce = ("bounce", "Email bounces", "Mancati recapiti email", true),
    /// `reply`: a contact replied to an email.
    Reply = ("reply", "Email replies", "Risposte email", true),
    /// `click`: a link in a campaign was clicked.
    Click = ("click", "Link clicked", "Link cliccato", true),
    /// `list_add`: a list was added.
    ListAdd = ("list_add", "List added", "Lista aggiunta", false),
    /// `sms_reply`: a contact replied to an SMS.
    SmsReply = ("sms_reply", "SMS reply", "Risposta SMS", false),
    /// `sms_sent`: an SMS was sent.
    SmsSent = ("sms_sent", "SMS sent", "SMS inviato", false),
    /// `sms_unsub`: a contact unsubscribed from SMS.
    SmsUnsub = ("sms_unsub", "SMS unsubscribe", "Annulla iscrizione SMS", false),
}

impl EventKind {
    /// The kind's position in [`EventKind::ALL`] (0..25).
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }
}

crate::macros::wire_id!(EventKind, UnknownEventKind);

crate::macros::bit_set! {
    /// A `Copy` set of [`EventKind`]s: the events a webhook subscribes to.
    ///
    /// Serde writes it as a list of ids in [`EventKind::ALL`] order and reads any list of
    /// ids (duplicates are folded; an unknown id is an error naming it).
    EventSet, EventSetIter, EventKind, u32
}

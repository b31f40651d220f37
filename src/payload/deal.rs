//! Deal blocks: the deal, its note, task, pipeline, stage and task type.

use super::block::block;

block! {
    /// The deal: every `deal[...]` key ActiveCampaign writes. Values are kept as received
    /// (`deal[value]` `"100.00"`, `deal[value_raw]` `"100"`); [`Deal::status`] reads the status.
    ///
    /// ```
    /// use posthook::{Deal, DealStatus};
    ///
    /// let deal = Deal::new().with_title("Città del Sole").with_status(DealStatus::Won);
    /// assert_eq!(deal.status_code(), Some("1"));
    /// assert_eq!(deal.status(), Some(DealStatus::Won));
    /// ```
    pub struct Deal {
        /// The deal id.
        id, with_id, set_id => "deal[id]";
        /// The title.
        title, with_title, set_title => "deal[title]";
        /// The organisation id.
        orgid, with_orgid, set_orgid => "deal[orgid]";
        /// The organisation name.
        orgname, with_orgname, set_orgname => "deal[orgname]";
        /// The stage id.
        stageid, with_stageid, set_stageid => "deal[stageid]";
        /// The stage title.
        stage_title, with_stage_title, set_stage_title => "deal[stage_title]";
        /// The pipeline id.
        pipelineid, with_pipelineid, set_pipelineid => "deal[pipelineid]";
        /// The pipeline title.
        pipeline_title, with_pipeline_title, set_pipeline_title => "deal[pipeline_title]";
        /// The value with two decimals, e.g. `"100.00"`.
        value, with_value, set_value => "deal[value]";
        /// The value as entered, e.g. `"100"`.
        value_raw, with_value_raw, set_value_raw => "deal[value_raw]";
        /// The currency code, e.g. `"usd"`.
        currency, with_currency, set_currency => "deal[currency]";
        /// The currency symbol, e.g. `"$"`.
        currency_symbol, with_currency_symbol, set_currency_symbol => "deal[currency_symbol]";
        /// The status code: `"0"` open, `"1"` won, `"2"` lost (see [`Deal::status`]).
        status_code, with_status_code, set_status_code => "deal[status]";
        /// The owner's user id.
        owner, with_owner, set_owner => "deal[owner]";
        /// The owner's first name.
        owner_firstname, with_owner_firstname, set_owner_firstname => "deal[owner_firstname]";
        /// The owner's last name.
        owner_lastname, with_owner_lastname, set_owner_lastname => "deal[owner_lastname]";
        /// The primary contact's id.
        contactid, with_contactid, set_contactid => "deal[contactid]";
        /// The primary contact's email.
        contact_email, with_contact_email, set_contact_email => "deal[contact_email]";
        /// The primary contact's first name.
        contact_firstname, with_contact_firstname, set_contact_firstname => "deal[contact_firstname]";
        /// The primary contact's last name.
        contact_lastname, with_contact_lastname, set_contact_lastname => "deal[contact_lastname]";
        /// The creation date, `YYYY-MM-DD HH:MM:SS`.
        create_date, with_create_date, set_create_date => "deal[create_date]";
        /// The creation date in ISO 8601.
        create_date_iso, with_create_date_iso, set_create_date_iso => "deal[create_date_iso]";
    }
}

/// A deal's status, `deal[status]` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(clippy::exhaustive_enums)] // ActiveCampaign deals are open, won or lost: nothing else.
pub enum DealStatus {
    /// `0`: open.
    Open,
    /// `1`: won.
    Won,
    /// `2`: lost.
    Lost,
}

impl DealStatus {
    /// The wire code: `"0"`, `"1"` or `"2"`.
    #[inline]
    pub const fn code(self) -> &'static str {
        match self {
            DealStatus::Open => "0",
            DealStatus::Won => "1",
            DealStatus::Lost => "2",
        }
    }

    /// The status for a wire code; `None` for anything but `"0"`, `"1"`, `"2"`.
    #[inline]
    pub fn from_code(code: &str) -> Option<DealStatus> {
        match code {
            "0" => Some(DealStatus::Open),
            "1" => Some(DealStatus::Won),
            "2" => Some(DealStatus::Lost),
            _ => None,
        }
    }
}

impl Deal {
    /// The status, when `deal[status]` is a known code.
    pub fn status(&self) -> Option<DealStatus> {
        self.status_code().and_then(DealStatus::from_code)
    }

    /// This deal with `deal[status]` set to `status`'s code.
    #[must_use]
    pub fn with_status(self, status: DealStatus) -> Self {
        self.with_status_code(status.code())
    }
}

block! {
    /// The note added to a deal (`deal_note_add`): `note[id]`, `note[text]` (*unverified*).
    ///
    /// Not the contact note of `subscriber_note`, which is the scalar `note`
    /// ([`Event::note`](crate::Event::note)).
    pub struct DealNote {
        /// The note id.
        id, with_id, set_id => "note[id]";
        /// The note text.
        text, with_text, set_text => "note[text]";
    }
}

block! {
    /// A deal task (`deal_task_add`, `deal_task_complete`): `task[...]`.
    pub struct Task {
        /// The task id.
        id, with_id, set_id => "task[id]";
        /// The title.
        title, with_title, set_title => "task[title]";
        /// The note.
        note, with_note, set_note => "task[note]";
        /// The task type id.
        type_id, with_type_id, set_type_id => "task[type_id]";
        /// The task type title.
        type_title, with_type_title, set_type_title => "task[type_title]";
        /// The due date, `YYYY-MM-DD HH:MM:SS`.
        duedate, with_duedate, set_duedate => "task[duedate]";
        /// The due date in ISO 8601.
        duedate_iso, with_duedate_iso, set_duedate_iso => "task[duedate_iso]";
        /// The end date, `YYYY-MM-DD HH:MM:SS`.
        edate, with_edate, set_edate => "task[edate]";
        /// The end date in ISO 8601.
        edate_iso, with_edate_iso, set_edate_iso => "task[edate_iso]";
        /// When it was done, `YYYY-MM-DD HH:MM:SS` (`deal_task_complete`).
        donedate, with_donedate, set_donedate => "task[donedate]";
        /// When it was done, ISO 8601 (`deal_task_complete`).
        donedate_iso, with_donedate_iso, set_donedate_iso => "task[donedate_iso]";
    }
}

block! {
    /// A deal pipeline (`deal_pipeline_add`).
    pub struct Pipeline {
        /// The pipeline id.
        id, with_id, set_id => "pipeline[id]";
        /// The title.
        title, with_title, set_title => "pipeline[title]";
    }
}

block! {
    /// A deal stage (`deal_stage_add`).
    pub struct Stage {
        /// The stage id.
        id, with_id, set_id => "stage[id]";
        /// The title.
        title, with_title, set_title => "stage[title]";
        /// The colour, hex without `#`.
        color, with_color, set_color => "stage[color]";
    }
}

block! {
    /// A deal task type (`deal_tasktype_add`).
    pub struct TaskType {
        /// The task type id.
        id, with_id, set_id => "tasktype[id]";
        /// The title.
        title, with_title, set_title => "tasktype[title]";
    }
}

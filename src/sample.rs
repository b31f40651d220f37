//! Sample data: the payload "Send sample data" posts for each event kind.
//!
//! Realistic and deterministic: Italian and non-ASCII names, a `&` and a `+` in values,
//! several tags and custom fields, and for each kind the blocks ActiveCampaign sends with it.
//!
//! ```
//! use posthook::{Event, EventKind};
//!
//! let e = Event::sample(EventKind::DealUpdate);
//! assert_eq!(e.contact().unwrap().first_name(), Some("Giulia"));
//! assert_eq!(e.deal().unwrap().orgname(), Some("R&D Città S.r.l."));
//! assert_eq!(Event::decode(&e.encode()).unwrap(), e);
//! ```

use chrono::{DateTime, FixedOffset};

use crate::{
    AutomationPayload, Bounce, Campaign, Contact, Deal, DealNote, DealStatus, Event, EventKind,
    Forward, Link, ListId, ListInfo, Pipeline, Reply, Share, SignupForm, Sms, Source, Stage, Task,
    TaskType, Unsubscribe,
};

/// The sample time: 2026-03-14 09:26:53, Rome winter time.
fn sample_time() -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339("2026-03-14T09:26:53+01:00").expect("a valid constant")
}

fn contact() -> Contact {
    Contact::new()
        .with_id("42")
        .with_email("giulia.bianchi@example.it")
        .with_first_name("Giulia")
        .with_last_name("Bianchi")
        .with_phone("+39 02 1234 5678")
        .with_ip("203.0.113.42")
        .with_orgname("R&D Città S.r.l.")
        .with_customer_acct_name("R&D Città")
        .with_tags(["newsletter", "VIP", "Søren's webinar"])
        .with_field("1", "Milano")
        .with_field("2", "Caffè & cornetto")
        .with_field("7", "2026-03-01")
}

fn campaign() -> Campaign {
    Campaign::new()
        .with_id("17")
        .with_name("Primavera 2026 – Città")
        .with_status("5")
        .with_kind("single")
        .with_recipients("1250")
        .with_message_id("23")
        .with_message_subject("Novità di primavera: 20% + spedizione gratuita")
        .with_webcopy_url("https://example.it/index.php?action=social&c=17.23")
}

fn deal() -> Deal {
    Deal::new()
        .with_id("311")
        .with_title("Fornitura caffè – R&D Città")
        .with_orgid("9")
        .with_orgname("R&D Città S.r.l.")
        .with_stageid("4")
        .with_stage_title("Trattativa")
        .with_pipelineid("2")
        .with_pipeline_title("Vendite Italia")
        .with_value("1250.00")
        .with_value_raw("1250")
        .with_currency("eur")
        .with_currency_symbol("€")
        .with_status(DealStatus::Open)
        .with_owner("1")
        .with_owner_firstname("Søren")
        .with_owner_lastname("Kierkegård")
        .with_contactid("42")
        .with_contact_email("giulia.bianchi@example.it")
        .with_contact_firstname("Giulia")
        .with_contact_lastname("Bianchi")
        .with_create_date("2026-03-10 15:04:05")
        .with_create_date_iso("2026-03-10T15:04:05+01:00")
}

fn task(complete: bool) -> Task {
    let task = Task::new()
        .with_id("58")
        .with_title("Chiamare Giulia")
        .with_note("Confermare prezzo & consegna a Città di Castello")
        .with_type_id("1")
        .with_type_title("Chiamata")
        .with_duedate("2026-03-16 10:00:00")
        .with_duedate_iso("2026-03-16T10:00:00+01:00")
        .with_edate("2026-03-16 10:30:00")
        .with_edate_iso("2026-03-16T10:30:00+01:00");
    if complete {
        task.with_donedate("2026-03-14 09:26:53")
            .with_donedate_iso("2026-03-14T09:26:53+01:00")
    } else {
        task
    }
}

fn sms(kind: EventKind) -> Sms {
    let sms = Sms::new()
        .with_id("805")
        .with_recipient("+39 333 123 4567")
        .with_successful("1")
        .with_comment("");
    let sms = match kind {
        EventKind::SmsReply => sms.with_reply("Sì, confermo l'appuntamento di lunedì"),
        EventKind::SmsUnsub => sms.with_reply("STOP"),
        _ => sms,
    };
    sms.with_result("delivered").with_phone("+39 02 1234 5678")
}

impl Event {
    /// Realistic sample data for `kind`: what "Send sample data" posts. Deterministic: the
    /// same kind always gives the same event (and body).
    pub fn sample(kind: EventKind) -> Event {
        use EventKind as K;
        let source = match kind {
            K::Sent | K::Bounce | K::SmsSent => Source::System,
            K::Forward
            | K::Open
            | K::Share
            | K::Subscribe
            | K::Unsubscribe
            | K::Reply
            | K::Click
            | K::SmsReply
            | K::SmsUnsub => Source::Contact,
            _ => Source::Admin,
        };
        let list = if kind.is_list_aware() {
            ListId::new(3)
        } else {
            None
        };
        let mut e = Event::new(kind, source, sample_time()).with_list(list);
        if source == Source::Admin {
            e = e.with_initiated_by("admin");
        }
        let with_campaign = matches!(
            kind,
            K::Unsubscribe
                | K::Sent
                | K::Open
                | K::Click
                | K::Forward
                | K::Share
                | K::Reply
                | K::Bounce
        );
        let with_contact = !matches!(
            kind,
            K::Sent
                | K::DealNoteAdd
                | K::DealPipelineAdd
                | K::DealStageAdd
                | K::DealTasktypeAdd
                | K::ListAdd
        );
        let with_deal = matches!(
            kind,
            K::DealAdd | K::DealUpdate | K::DealNoteAdd | K::DealTaskAdd | K::DealTaskComplete
        );
        if with_contact {
            e = e.with_contact(contact());
        }
        if with_campaign {
            e = e.with_campaign(campaign());
        }
        if with_deal {
            e = e.with_deal(deal());
        }
        match kind {
            K::Subscribe => e.with_form(SignupForm::new().with_id("5")),
            K::Unsubscribe => e
                .with_unsubscribe(Unsubscribe::new().with_reason("Troppe email, grazie & arrivederci"))
                .with_form(SignupForm::new().with_id("5")),
            K::SubscriberNote => e.with_note("Ha chiesto un preventivo per 12 kg di caffè (+ macinino) — richiamare lunedì."),
            K::ContactTagAdded | K::ContactTagRemoved => e.with_tag("Søren's webinar"),
            K::Click => e.with_link(
                Link::new()
                    .with_id("88")
                    .with_url("https://example.it/offerte?utm_source=newsletter&utm_campaign=primavera+2026"),
            ),
            K::Forward => e.with_forward(Forward::new().with_count("3")),
            K::Share => e.with_share(
                Share::new()
                    .with_network("facebook")
                    .with_network_id("10158_2026")
                    .with_content("Guardate questa offerta: 20% + spedizione gratuita!"),
            ),
            K::Reply => e.with_reply(
                Reply::new()
                    .with_result("forwarded")
                    .with_message("Grazie! Potete richiamarmi al +39 02 1234 5678? — Giulia"),
            ),
            K::Bounce => e.with_bounce(
                Bounce::new()
                    .with_kind("hard")
                    .with_code("5.1.1")
                    .with_description("550 5.1.1 <giulia.bianchi@example.it>: utente sconosciuto"),
            ),
            K::DealUpdate => e.with_updated_fields(["value", "stage", "owner"]),
            K::DealNoteAdd => e.with_deal_note(
                DealNote::new()
                    .with_id("77")
                    .with_text("Søren: il cliente vuole consegna a Città di Castello & fattura elettronica."),
            ),
            K::DealPipelineAdd => {
                e.with_pipeline(Pipeline::new().with_id("2").with_title("Vendite Italia"))
            }
            K::DealStageAdd => e.with_stage(
                Stage::new()
                    .with_id("4")
                    .with_title("Trattativa")
                    .with_color("32B0FC"),
            ),
            K::DealTasktypeAdd => {
                e.with_task_type(TaskType::new().with_id("3").with_title("Visita in città"))
            }
            K::DealTaskAdd => e.with_task(task(false)),
            K::DealTaskComplete => e.with_task(task(true)),
            K::ListAdd => e.with_list_info(
                ListInfo::new()
                    .with_id("8")
                    .with_userid("1")
                    .with_name("Clienti Città & Dintorni")
                    .with_sender_addr1("Via Roma 12")
                    .with_sender_addr2("Scala B")
                    .with_sender_city("Città di Castello")
                    .with_sender_state("PG")
                    .with_sender_zip("06012")
                    .with_sender_country("Italia")
                    .with_sender_url("https://example.it")
                    .with_sender_reminder("Ricevi questa email perché sei cliente di R&D Città.")
                    .with_fulladdress("R&D Città S.r.l., Via Roma 12, Scala B, 06012 Città di Castello (PG), Italia"),
            ),
            K::SmsReply | K::SmsSent | K::SmsUnsub => e.with_sms(sms(kind)),
            _ => e,
        }
    }
}

impl AutomationPayload {
    /// A sample automation-step body: the sample contact with `contact[ip4]`, custom fields
    /// keyed by personalization tag, and `seriesid=12`.
    pub fn sample() -> AutomationPayload {
        let contact = Contact::new()
            .with_id("42")
            .with_email("giulia.bianchi@example.it")
            .with_first_name("Giulia")
            .with_last_name("Bianchi")
            .with_phone("+39 02 1234 5678")
            .with_orgname("R&D Città S.r.l.")
            .with_customer_acct_name("R&D Città")
            .with_tags(["newsletter", "VIP", "Søren's webinar"])
            .with_ip4("203.0.113.42")
            .with_field("utm_source", "newsletter")
            .with_field("utm_campaign", "primavera+2026")
            .with_field("citta", "Città di Castello");
        AutomationPayload::new("12").with_contact(contact)
    }
}

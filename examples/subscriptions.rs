//! Builds a few webhook subscriptions and prints them in the ActiveCampaign API v3 shape.
//!
//! The first is the product document's own example: send to Zapier whenever a contact of any
//! list unsubscribes, whatever started it.
//!
//! ```text
//! cargo run --example subscriptions
//! ```

use posthook::{EventKind, ListId, ListScope, Source, Webhook, WebhookEnvelope};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let unsubscribes = Webhook::builder(
        "Zapier: contact unsubscriptions",
        "https://hooks.zapier.com/hooks/catch/1234567/abcdefg/",
    )
    .events([EventKind::Unsubscribe])
    .sources(Source::ALL)
    .scope(ListScope::All)
    .build()?;

    let newsletter = ListId::new(3).ok_or("list ids are never 0")?;
    let campaign_activity = Webhook::builder(
        "Make: newsletter engagement",
        "https://hook.eu1.make.com/abc123def456?secret=s3cr%2Bt",
    )
    .events([
        EventKind::Open,
        EventKind::Click,
        EventKind::Forward,
        EventKind::Share,
    ])
    .sources([Source::Contact])
    .scope(ListScope::List(newsletter))
    .build()?;

    let deals = Webhook::builder("n8n: CRM deals", "https://n8n.example.com/webhook/deals")
        .events(
            EventKind::ALL
                .into_iter()
                .filter(|k| k.as_str().starts_with("deal_")),
        )
        .sources([Source::Admin, Source::Api])
        .build()?;

    for hook in [&unsubscribes, &campaign_activity, &deals] {
        let request = WebhookEnvelope::new(hook.clone());
        println!("POST /api/3/webhooks");
        println!("{}\n", serde_json::to_string_pretty(&request)?);
    }

    // A list-scoped webhook hears list-aware kinds only from its own list.
    println!("Does \"{}\" receive a click...", campaign_activity.name());
    for list in [3, 5] {
        let wanted = campaign_activity.wants(EventKind::Click, Source::Contact, ListId::new(list));
        println!("  on list {list}? {}", if wanted { "yes" } else { "no" });
    }
    println!(
        "Does \"{}\" receive a deal update on list 5? {}",
        deals.name(),
        deals.wants(EventKind::DealUpdate, Source::Api, ListId::new(5))
    );

    // A URL outside the allowed set is refused, with the character and its position.
    let bad = Webhook::builder("typo", "https://hooks.zapier.com/hooks/catch/1 2/")
        .events([EventKind::Subscribe])
        .sources([Source::Api])
        .build();
    match bad {
        Ok(_) => println!("unexpectedly accepted"),
        Err(err) => println!("\nRejected URL: {err}"),
    }
    Ok(())
}

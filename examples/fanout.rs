//! Fan-out: a registry of webhooks, one event, the webhooks it must reach, one shared body.
//!
//! ```text
//! cargo run --example fanout
//! ```

use posthook::{Deactivation, Event, EventKind, ListId, ListScope, Registry, Source, Webhook};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut registry = Registry::new();
    let newsletter = ListId::new(3);
    let hooks = [
        (
            "Zapier: every unsubscribe",
            EventKind::Unsubscribe,
            ListScope::All,
        ),
        (
            "Make: newsletter unsubscribes",
            EventKind::Unsubscribe,
            ListScope::from(newsletter),
        ),
        (
            "n8n: list 9 unsubscribes",
            EventKind::Unsubscribe,
            ListScope::from(ListId::new(9)),
        ),
        ("CRM: new contacts", EventKind::Subscribe, ListScope::All),
    ];
    for (i, (name, kind, scope)) in hooks.into_iter().enumerate() {
        let url = format!("https://hooks.example.com/{i}");
        registry.insert(
            Webhook::builder(name, &url)
                .events([kind])
                .sources(Source::ALL)
                .scope(scope)
                .build()?,
        );
    }
    let gone = registry.insert(
        Webhook::builder("Old endpoint", "https://old.example.com/hook")
            .events([EventKind::Unsubscribe])
            .sources(Source::ALL)
            .build()?,
    );
    // Its endpoint answered 410 Gone once: it receives nothing more.
    registry.deactivate(gone, Deactivation::Gone);

    let mut event = Event::sample(EventKind::Unsubscribe);
    event = event.with_list(newsletter);
    let body = event.encode(); // encoded once; every delivery shares these bytes
    println!(
        "{} on list 3 from {}: {} bytes",
        event.kind(),
        event.source(),
        body.len()
    );
    let mut targets: Vec<_> = registry.matches(&event).collect();
    targets.sort_by_key(|w| w.id());
    for hook in targets {
        println!("  -> {} ({})", hook.name(), hook.url());
    }
    Ok(())
}

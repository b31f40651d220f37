//! The "Send sample data" body of a few event kinds, and the receiving side decoding one.
//!
//! ```text
//! cargo run --example payloads
//! ```

use posthook::{Event, EventKind, Form};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for kind in [
        EventKind::Subscribe,
        EventKind::DealTaskComplete,
        EventKind::ListAdd,
    ] {
        let body = Event::sample(kind).encode();
        println!("{kind} ({}), {} bytes:", kind.label(), body.len());
        println!("{}\n", std::str::from_utf8(&body)?);
    }

    // A receiver reads what a PHP `$_POST` would: here, ActiveCampaign's legacy sample.
    let received = b"type=subscribe&date_time=2013-01-01+12%3A00%3A00&initiated_from=admin\
        &initiated_by=admin&list=1&contact%5Bid%5D=31&contact%5Bemail%5D=test%40test.com\
        &contact%5Bfirst_name%5D=Test&contact%5Blast_name%5D=Test&contact%5Btags%5D=tag1%2C+tag2\
        &contact%5Bfields%5D%5B1%5D=field+value";
    let event = Event::decode(received)?;
    let contact = event.contact().ok_or("the sample has a contact")?;
    println!(
        "decoded: {} from {} on list {:?} at {}",
        event.kind(),
        event.source(),
        event.list().map(|l| l.get()),
        event.occurred_at()
    );
    println!(
        "  contact {} <{}>, tags {:?}, field 1 = {:?}",
        contact.id().unwrap_or("?"),
        contact.email().unwrap_or("?"),
        contact.tags(),
        contact.field("1")
    );

    // Nothing is lost: the re-encoded body holds the same pairs.
    let again = Form::parse(&event.encode())?;
    assert_eq!(again, Form::parse(received)?);

    // A broken body is a typed error that says where, never a panic.
    match Event::decode(b"type=subscribe&date_time=2013-01-01+12%3A00%3A00&initiated_from=adm%1n") {
        Ok(_) => println!("unexpectedly decoded"),
        Err(err) => println!("\nrejected: {err}"),
    }
    Ok(())
}

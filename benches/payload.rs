//! Encoding an event: `Event::encode` against `serde_urlencoded` writing the same pairs.
//!
//! `cargo bench --bench payload -- encode_deal_event`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use posthook::{Event, EventKind, Form, FormWriter};

fn encode_deal_event(c: &mut Criterion) {
    let event = Event::sample(EventKind::DealUpdate);
    let encoded = event.encode();
    // The same pairs, collected outside the timed loop.
    let pairs: Vec<(String, String)> = Form::parse(&encoded)
        .expect("the sample decodes")
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(
        serde_urlencoded::to_string(&pairs)
            .expect("pairs encode")
            .as_bytes(),
        &encoded[..]
    );

    let mut group = c.benchmark_group("encode_deal_event");
    group.throughput(Throughput::Bytes(encoded.len() as u64));
    group.bench_function("posthook Event::encode", |b| {
        b.iter(|| black_box(&event).encode())
    });
    group.bench_function("posthook FormWriter, same pairs", |b| {
        b.iter(|| {
            let mut w = FormWriter::new();
            for (k, v) in black_box(&pairs) {
                w.pair(k, v);
            }
            w.finish()
        })
    });
    group.bench_function("serde_urlencoded::to_string", |b| {
        b.iter(|| serde_urlencoded::to_string(black_box(&pairs)))
    });
    group.finish();
}

criterion_group!(benches, encode_deal_event);
criterion_main!(benches);

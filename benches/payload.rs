//! Encoding an event: `Event::encode` against `serde_urlencoded` writing the same pairs;
//! decoding one: `Event::decode` against `serde_urlencoded` reading the body into pairs.
//!
//! `cargo bench --bench payload -- encode_deal_event`
//! `cargo bench --bench payload -- decode_deal_event`

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use posthook::{Event, EventKind, Form, FormWriter};

/// Times `ours` and `theirs` in alternation (A, B, A, B: 31 rounds of 2,000 calls each), so
/// that the machine's load falls on both sides alike, and prints the median time per call of
/// each and the median of the per-round ratios (theirs ÷ ours).
fn alternate(name: &str, mut ours: impl FnMut(), mut theirs: impl FnMut()) {
    const ROUNDS: usize = 31;
    const CALLS: u32 = 2_000;
    let time = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        for _ in 0..CALLS {
            f();
        }
        start.elapsed() / CALLS
    };
    let (mut a, mut b, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..=ROUNDS {
        let (x, y) = (time(&mut ours), time(&mut theirs));
        if round > 0 {
            // Round 0 warms up.
            ratio.push(y.as_secs_f64() / x.as_secs_f64());
            a.push(x);
            b.push(y);
        }
    }
    a.sort();
    b.sort();
    ratio.sort_by(f64::total_cmp);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{name}, alternating: posthook {:?}, baseline {:?} per call (medians of {ROUNDS} \
         rounds); ratio {:.2}× (median; rounds {:.2}–{:.2}×); load {}",
        a[ROUNDS / 2],
        b[ROUNDS / 2],
        ratio[ROUNDS / 2],
        ratio[0],
        ratio[ROUNDS - 1],
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    );
}

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

    alternate(
        "encode_deal_event",
        || drop(black_box(black_box(&event).encode())),
        || drop(black_box(serde_urlencoded::to_string(black_box(&pairs)))),
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

fn decode_deal_event(c: &mut Criterion) {
    let event = Event::sample(EventKind::DealUpdate);
    let body = event.encode();
    assert_eq!(Event::decode(&body).expect("the sample decodes"), event);
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).expect("pairs");
    assert_eq!(pairs.len(), Form::parse(&body).expect("form").len());

    let mut group = c.benchmark_group("decode_deal_event");
    group.throughput(Throughput::Bytes(body.len() as u64));
    alternate(
        "decode_deal_event",
        || drop(black_box(Event::decode(black_box(&body)))),
        || {
            drop(black_box(serde_urlencoded::from_bytes::<
                Vec<(String, String)>,
            >(black_box(&body))))
        },
    );
    group.bench_function("posthook Event::decode", |b| {
        b.iter(|| Event::decode(black_box(&body)))
    });
    group.bench_function("posthook Form::parse", |b| {
        b.iter(|| Form::parse(black_box(&body)).map(|f| f.len()))
    });
    group.bench_function("serde_urlencoded::from_bytes pairs", |b| {
        b.iter(|| serde_urlencoded::from_bytes::<Vec<(String, String)>>(black_box(&body)))
    });
    group.finish();
}

criterion_group!(benches, encode_deal_event, decode_deal_event);
criterion_main!(benches);

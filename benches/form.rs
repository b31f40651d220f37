//! The form codec against `serde_urlencoded`, on the same data in the same group.
//!
//! Run with `cargo bench --bench form -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use posthook::{Form, FormWriter};

/// The pairs of a full `deal_update` event, as ActiveCampaign sends them.
fn deal_pairs() -> Vec<(&'static str, &'static str)> {
    vec![
        ("type", "deal_update"),
        ("date_time", "2023-07-12T06:49:04-05:00"),
        ("initiated_from", "admin"),
        ("initiated_by", "admin"),
        ("list", "0"),
        ("contact[id]", "1042"),
        ("contact[email]", "giulia.bianchi+crm@studio-bianchi.it"),
        ("contact[first_name]", "Giulia"),
        ("contact[last_name]", "Bianchi D'Amico"),
        ("contact[phone]", "+39 02 8901 2345"),
        ("contact[ip]", "93.41.210.17"),
        (
            "contact[tags]",
            "cliente, rinnovo 2023, fattura elettronica",
        ),
        ("contact[orgname]", "Studio Bianchi & Associati S.r.l."),
        ("contact[fields][1]", "Milano"),
        ("contact[fields][3]", "Consulenza fiscale – PMI"),
        ("contact[fields][7]", "Sì"),
        ("deal[id]", "318"),
        ("deal[title]", "Rinnovo licenza & supporto"),
        ("deal[create_date]", "2023-06-01 09:15:22"),
        ("deal[create_date_iso]", "2023-06-01T09:15:22-05:00"),
        ("deal[orgid]", "57"),
        ("deal[orgname]", "Studio Bianchi & Associati S.r.l."),
        ("deal[stageid]", "4"),
        ("deal[stage_title]", "Proposta inviata"),
        ("deal[pipelineid]", "2"),
        ("deal[pipeline_title]", "Rinnovi 2023"),
        ("deal[value]", "1500.00"),
        ("deal[value_raw]", "150000"),
        ("deal[currency]", "eur"),
        ("deal[currency_symbol]", "€"),
        ("deal[owner]", "3"),
        ("deal[owner_firstname]", "Marco"),
        ("deal[owner_lastname]", "Rossi"),
        ("deal[contactid]", "1042"),
        (
            "deal[contact_email]",
            "giulia.bianchi+crm@studio-bianchi.it",
        ),
        ("deal[contact_firstname]", "Giulia"),
        ("deal[contact_lastname]", "Bianchi D'Amico"),
        ("deal[status]", "0"),
        ("deal[age]", "41"),
        ("deal[fields][0][id]", "2"),
        ("deal[fields][0][key]", "Data di scadenza"),
        ("deal[fields][0][value]", "2023-12-31"),
        ("deal[fields][1][id]", "5"),
        ("deal[fields][1][key]", "Note interne"),
        (
            "deal[fields][1][value]",
            "Chiede sconto 10% + IVA; richiamare dopo l'estate (ferie fino al 28/08).",
        ),
        ("updated_fields[0]", "stage"),
        ("updated_fields[1]", "value"),
    ]
}

/// About 8 MB of prose: words, spaces, punctuation, accented letters, newlines.
fn note(len: usize) -> String {
    const WORDS: &[&str] = &[
        "il",
        "cliente",
        "ha",
        "chiesto",
        "una",
        "proposta",
        "perché",
        "la",
        "licenza",
        "scade",
        "a",
        "fine",
        "mese",
        "città",
        "però",
        "è",
        "già",
        "stato",
        "contattato",
        "più",
        "volte",
        "and",
        "the",
        "renewal",
        "quote",
        "was",
        "sent",
        "on",
        "Monday",
        "naïve",
        "café",
        "supporto",
        "tecnico",
        "2023",
        "1500.00",
        "EUR",
        "Müller",
        "señor",
        "qualità",
    ];
    const PUNCT: &[&str] = &[
        " ", " ", " ", " ", " ", ", ", ". ", "; ", ": ", "? ", "! ", " – ",
    ];
    let mut out = String::with_capacity(len + 64);
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    while out.len() < len {
        let r = next();
        out.push_str(WORDS[(r % WORDS.len() as u64) as usize]);
        out.push_str(PUNCT[((r >> 20) % PUNCT.len() as u64) as usize]);
        if (r >> 40) % 23 == 0 {
            out.push('\n');
        }
    }
    out
}

/// Our side of an encode bench: every pair through `w`.
fn write_pairs(mut w: FormWriter, pairs: &[(&str, &str)]) -> bytes::Bytes {
    for &(k, v) in pairs {
        w.pair(k, v);
    }
    w.finish()
}

fn encode_deal(c: &mut Criterion) {
    let pairs = deal_pairs();
    let body = serde_urlencoded::to_string(&pairs).unwrap();
    let mut group = c.benchmark_group("encode_deal");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("posthook FormWriter", |b| {
        b.iter(|| write_pairs(FormWriter::new(), black_box(&pairs)))
    });
    group.bench_function("serde_urlencoded", |b| {
        b.iter(|| serde_urlencoded::to_string(black_box(&pairs)).unwrap())
    });
    // Variants of ours, for context: the body's size known in advance.
    group.bench_function("posthook FormWriter, with_capacity", |b| {
        b.iter(|| write_pairs(FormWriter::with_capacity(2048), black_box(&pairs)))
    });
    group.finish();
}

fn encode_note(c: &mut Criterion) {
    let note = note(8 * 1024 * 1024);
    let pairs = vec![("note", note.as_str())];
    let body = serde_urlencoded::to_string(&pairs).unwrap();
    let mut group = c.benchmark_group("encode_note_8mb");
    // One encode takes tens of milliseconds: flat sampling, ten samples.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("posthook FormWriter", |b| {
        b.iter(|| write_pairs(FormWriter::new(), black_box(&pairs)))
    });
    group.bench_function("serde_urlencoded", |b| {
        b.iter(|| serde_urlencoded::to_string(black_box(&pairs)).unwrap())
    });
    group.finish();
}

fn decode_deal(c: &mut Criterion) {
    let body = serde_urlencoded::to_string(deal_pairs()).unwrap();
    let body = body.as_bytes();
    let mut group = c.benchmark_group("decode_deal");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("posthook Form::parse", |b| {
        b.iter(|| Form::parse(black_box(body)).unwrap())
    });
    group.bench_function("serde_urlencoded", |b| {
        b.iter(|| serde_urlencoded::from_bytes::<Vec<(String, String)>>(black_box(body)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, encode_deal, encode_note, decode_deal);
criterion_main!(benches);

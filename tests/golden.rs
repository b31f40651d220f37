//! Golden wire files: the exact body of each sample, byte for byte.
//!
//! `tests/golden/<kind>.txt` holds the body of `Event::sample(kind)`, and
//! `tests/golden/automation.txt` that of `AutomationPayload::sample()`: the encoded bytes, no
//! trailing newline. `POSTHOOK_BLESS=1 cargo test --test golden` rewrites them; review the diff.

use std::path::PathBuf;

use posthook::{AutomationPayload, Event, EventKind, Form};

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.txt"))
}

/// Compares `body` with the golden file `name`, or rewrites it under `POSTHOOK_BLESS=1`.
fn check(name: &str, body: &[u8]) -> Result<(), String> {
    let path = golden_path(name);
    if std::env::var_os("POSTHOOK_BLESS").is_some() {
        std::fs::write(&path, body).map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(());
    }
    let want = std::fs::read(&path).map_err(|e| {
        format!(
            "{}: {e} (run with POSTHOOK_BLESS=1 to create)",
            path.display()
        )
    })?;
    if want == body {
        return Ok(());
    }
    Err(format!(
        "{name}: body differs from {}\n got: {}\nwant: {}",
        path.display(),
        String::from_utf8_lossy(body),
        String::from_utf8_lossy(&want)
    ))
}

#[test]
fn every_sample_matches_its_golden_file() {
    let failures: Vec<String> = EventKind::ALL
        .iter()
        .filter_map(|&kind| check(kind.as_str(), &Event::sample(kind).encode()).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn automation_sample_matches_its_golden_file() {
    check("automation", &AutomationPayload::sample().encode()).unwrap();
}

#[test]
fn golden_files_decode_to_the_samples() {
    for kind in EventKind::ALL {
        let body = std::fs::read(golden_path(kind.as_str())).unwrap();
        assert_eq!(Event::decode(&body).unwrap(), Event::sample(kind), "{kind}");
    }
    let body = std::fs::read(golden_path("automation")).unwrap();
    assert_eq!(
        AutomationPayload::decode(&body).unwrap(),
        AutomationPayload::sample()
    );
}

#[test]
fn golden_files_are_what_serde_urlencoded_writes() {
    for kind in EventKind::ALL {
        let body = std::fs::read(golden_path(kind.as_str())).unwrap();
        let pairs: Vec<(String, String)> = Form::parse(&body)
            .unwrap()
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let oracle = serde_urlencoded::to_string(&pairs).unwrap();
        assert_eq!(oracle.as_bytes(), &body[..], "{kind}");
    }
}

#[test]
fn every_sample_starts_with_the_common_keys_in_order() {
    for kind in EventKind::ALL {
        let form = Form::parse(&Event::sample(kind).encode()).unwrap();
        let keys: Vec<&str> = form.iter().map(|(k, _)| k).take(5).collect();
        let want: &[&str] = if keys.get(3) == Some(&"initiated_by") {
            &[
                "type",
                "date_time",
                "initiated_from",
                "initiated_by",
                "list",
            ]
        } else {
            &["type", "date_time", "initiated_from", "list"]
        };
        assert_eq!(&keys[..want.len()], want, "{kind}");
        assert_eq!(form.get("type"), Some(kind.as_str()));
    }
}

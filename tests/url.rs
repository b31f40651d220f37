//! The URL validator: a table of real-looking inputs, and properties over generated ones.

use posthook::{UrlErrorKind, UrlPolicy, WebhookUrl};
use proptest::prelude::*;

/// What a row expects.
enum Want {
    /// Valid, with this host.
    Ok(&'static str),
    /// Invalid, with this kind at this byte offset.
    Err(UrlErrorKind, usize),
}
use UrlErrorKind as K;
use Want::{Err, Ok};

fn bad(c: char, at: usize) -> Want {
    Err(K::InvalidCharacter(c), at)
}

fn table() -> Vec<(&'static str, Want)> {
    vec![
        // Automation platforms and request catchers.
        (
            "https://hooks.zapier.com/hooks/catch/1234567/abcdefg/",
            Ok("hooks.zapier.com"),
        ),
        (
            "https://hooks.zapier.com/hooks/catch/1234567/abcdefg",
            Ok("hooks.zapier.com"),
        ),
        (
            "https://hook.eu1.make.com/abc123def456ghi789",
            Ok("hook.eu1.make.com"),
        ),
        (
            "https://hook.us1.make.com/q9w8e7r6t5y4u3i2o1p0",
            Ok("hook.us1.make.com"),
        ),
        (
            "https://n8n.example.com/webhook/3f1c2a9e-7b7e-4c1e-9d0b-2f6a8e5c4d3b",
            Ok("n8n.example.com"),
        ),
        (
            "https://n8n.example.com/webhook-test/ac-contacts",
            Ok("n8n.example.com"),
        ),
        ("http://localhost:5678/webhook/ac", Ok("localhost")),
        (
            "https://acme.requestcatcher.com/test",
            Ok("acme.requestcatcher.com"),
        ),
        (
            "https://webhook.site/0e2e0d3c-8d2b-4b1a-9a55-3c2e1f0d9b8a",
            Ok("webhook.site"),
        ),
        (
            "https://eoxyz123.m.pipedream.net",
            Ok("eoxyz123.m.pipedream.net"),
        ),
        ("https://example.com", Ok("example.com")),
        ("https://example.com/", Ok("example.com")),
        ("HTTPS://EXAMPLE.COM/Hooks", Ok("EXAMPLE.COM")),
        ("Http://example.com/x", Ok("example.com")),
        // Query secrets and the extra characters.
        (
            "https://api.example.com/ac?token=s3cr3t&list=7",
            Ok("api.example.com"),
        ),
        (
            "https://api.example.com/ac?key=abc%2Bdef%3D%3D",
            Ok("api.example.com"),
        ),
        (
            "https://api.example.com/ac?key=abc%2bdef",
            Ok("api.example.com"),
        ),
        (
            "https://api.example.com/hook;jsessionid=ABC123?x=1",
            Ok("api.example.com"),
        ),
        ("https://example.com/$path/-_.+!*'(),", Ok("example.com")),
        ("https://example.com/a?b=c?d", Ok("example.com")),
        ("https://example.com/a?b=c&d=&e", Ok("example.com")),
        ("https://example.com/caf%C3%A9", Ok("example.com")),
        ("https://example.com/a%20b", Ok("example.com")),
        ("https://example.com/a+b", Ok("example.com")),
        ("https://example.com?x=1", Ok("example.com")),
        ("https://example.com/@user:name", Ok("example.com")),
        // Ports, userinfo, addresses.
        ("https://example.com:8443/hook", Ok("example.com")),
        ("http://example.com:80/", Ok("example.com")),
        ("http://example.com:65535/", Ok("example.com")),
        ("http://example.com:1", Ok("example.com")),
        ("https://user:p%40ss@example.com/hook", Ok("example.com")),
        ("https://token@example.com/", Ok("example.com")),
        ("http://127.0.0.1:8080/hook", Ok("127.0.0.1")),
        ("http://10.0.0.5/internal", Ok("10.0.0.5")),
        ("http://192.168.1.20:3000/ac", Ok("192.168.1.20")),
        ("http://my_host.internal/x", Ok("my_host.internal")),
        ("http://xn--citt-5qa.it/webhook", Ok("xn--citt-5qa.it")),
        // Disallowed characters, each with its offset.
        ("https://example.com/a b", bad(' ', 21)),
        ("https://example.com/hook?name=Mario Rossi", bad(' ', 35)),
        ("https://example.com/\"quoted\"", bad('"', 20)),
        ("https://example.com/<script>", bad('<', 20)),
        ("https://example.com/a>b", bad('>', 21)),
        ("https://example.com/{id}", bad('{', 20)),
        ("https://example.com/id}", bad('}', 22)),
        ("https://example.com/a|b", bad('|', 21)),
        ("https://example.com/a\\b", bad('\\', 21)),
        ("https://example.com/a^b", bad('^', 21)),
        ("https://example.com/~user", bad('~', 20)),
        ("https://example.com/a[0]", bad('[', 21)),
        ("https://example.com/a]", bad(']', 21)),
        ("https://example.com/hook#section", bad('#', 24)),
        ("https://example.com/`cmd`", bad('`', 20)),
        ("https://example.com/caffè", bad('è', 24)),
        ("https://città.it/webhook", bad('à', 12)),
        ("https://example.com/\u{7f}", bad('\u{7f}', 20)),
        ("https://example.com/a\tb", bad('\t', 21)),
        ("https://example.com/\nx", bad('\n', 20)),
        (" https://example.com", bad(' ', 0)),
        ("https://example.com/ ", bad(' ', 20)),
        ("http://[::1]:8080/", bad('[', 7)),
        // Broken escapes: the offset of the '%'.
        ("https://example.com/%", Err(K::InvalidEscape, 20)),
        ("https://example.com/%4", Err(K::InvalidEscape, 20)),
        ("https://example.com/%G1", Err(K::InvalidEscape, 20)),
        ("https://example.com/a%%41", Err(K::InvalidEscape, 21)),
        ("https://example.com/?q=100%", Err(K::InvalidEscape, 26)),
        ("https://example.com/%2x", Err(K::InvalidEscape, 20)),
        // Structure.
        ("", Err(K::Empty, 0)),
        ("example.com/hook", Err(K::MissingScheme, 0)),
        ("//example.com/hook", Err(K::MissingScheme, 0)),
        ("https:example.com", Err(K::MissingScheme, 0)),
        ("https:/example.com", Err(K::MissingScheme, 0)),
        (
            "ftp://example.com/",
            Err(K::UnsupportedScheme("ftp".into()), 0),
        ),
        (
            "javascript://example.com/",
            Err(K::UnsupportedScheme("javascript".into()), 0),
        ),
        (
            "wss://example.com/",
            Err(K::UnsupportedScheme("wss".into()), 0),
        ),
        ("https://", Err(K::MissingHost, 8)),
        ("https:///path", Err(K::MissingHost, 8)),
        ("https://?q=1", Err(K::MissingHost, 8)),
        ("https://user@/x", Err(K::MissingHost, 13)),
        ("https://:443/", Err(K::MissingHost, 8)),
        ("https://a@b@example.com/", Err(K::InvalidCharacter('@'), 9)),
        (
            "https://exa$mple.com/",
            Err(K::InvalidHostCharacter('$'), 11),
        ),
        (
            "https://example.com!/",
            Err(K::InvalidHostCharacter('!'), 19),
        ),
        (
            "https://exa%41mple.com/",
            Err(K::InvalidHostCharacter('%'), 11),
        ),
        ("https://example.com:/", Err(K::InvalidPort, 20)),
        ("https://example.com:0/", Err(K::InvalidPort, 20)),
        ("https://example.com:65536/", Err(K::InvalidPort, 20)),
        ("https://example.com:80a/", Err(K::InvalidPort, 20)),
        ("https://example.com:80:81/", Err(K::InvalidPort, 20)),
        ("https://example.com:-1/", Err(K::InvalidPort, 20)),
        ("http://256.1.1.1/", Err(K::InvalidHost, 7)),
    ]
}

#[test]
fn table_of_real_inputs() {
    let rows = table();
    assert!(rows.len() >= 60, "{} rows", rows.len());
    for (input, want) in rows {
        match (WebhookUrl::parse(input), want) {
            (Result::Ok(url), Ok(host)) => {
                assert_eq!(url.host(), host, "{input}");
                assert_eq!(url.as_str(), input);
            }
            (Result::Err(err), Err(kind, offset)) => {
                assert_eq!(
                    (err.kind(), err.offset()),
                    (&kind, offset),
                    "{input:?}: {err}"
                );
                if kind != K::Empty {
                    assert!(
                        err.to_string().contains(&format!("at byte {offset}")),
                        "{err}"
                    );
                }
            }
            (Result::Ok(url), Err(kind, offset)) => {
                panic!("{input:?} accepted as {url:?}, expected {kind:?} at {offset}")
            }
            (Result::Err(err), Ok(_)) => panic!("{input:?} rejected: {err}"),
        }
    }
}

#[test]
fn messages_name_the_character_and_the_offset() {
    let err = WebhookUrl::parse("https://example.com/a b").unwrap_err();
    assert_eq!(err.to_string(), "invalid character ' ' at byte 21");
    assert_eq!(err.character(), Some(' '));
    let err = WebhookUrl::parse("https://example.com/caffè").unwrap_err();
    assert_eq!(err.to_string(), "invalid character 'è' at byte 24");
    let err = WebhookUrl::parse("https://example.com/x%zz").unwrap_err();
    assert_eq!(err.character(), Some('%'));
    assert!(
        err.to_string()
            .starts_with("invalid percent-escape at byte 21"),
        "{err}"
    );
    let err = WebhookUrl::parse("https://example.com/\n").unwrap_err();
    assert_eq!(err.to_string(), "invalid character '\\n' at byte 20");
}

#[test]
fn url_parts() {
    let url = WebhookUrl::parse("HTTPS://user:pw@Example.com:8443/a?b=c").unwrap();
    assert!(url.is_https());
    assert_eq!(url.scheme(), "https");
    assert_eq!(url.host(), "Example.com");
    assert_eq!(url.port(), Some(8443));
    assert_eq!(url.port_or_default(), 8443);
    assert_eq!(url.ip(), None);
    let url = WebhookUrl::parse("http://example.com/").unwrap();
    assert_eq!((url.port(), url.port_or_default()), (None, 80));
}

#[test]
fn ip_hosts_are_read_as_http_clients_read_them() {
    let ip = |s: &str| WebhookUrl::parse(s).unwrap().ip().map(|ip| ip.to_string());
    assert_eq!(ip("http://127.0.0.1/").as_deref(), Some("127.0.0.1"));
    assert_eq!(ip("http://2130706433/").as_deref(), Some("127.0.0.1"));
    assert_eq!(ip("http://0x7f.1/").as_deref(), Some("127.0.0.1"));
    assert_eq!(ip("http://example.com/"), None);
}

#[test]
fn activecampaign_policy_allows_https_on_443_only() {
    let ac = UrlPolicy::activecampaign();
    assert!(WebhookUrl::parse_with("https://example.com/h", ac).is_ok());
    assert!(WebhookUrl::parse_with("https://example.com:443/h", ac).is_ok());
    let err = WebhookUrl::parse_with("http://example.com/h", ac).unwrap_err();
    assert_eq!(err.kind(), &K::InsecureScheme);
    let err = WebhookUrl::parse_with("https://example.com:8443/h", ac).unwrap_err();
    assert_eq!((err.kind(), err.offset()), (&K::PortNotAllowed(8443), 20));
    // Off by default.
    let url = WebhookUrl::parse("http://example.com:8080/h").unwrap();
    assert!(!url.satisfies(ac));
    assert!(url.satisfies(UrlPolicy::default()));
    assert!(
        WebhookUrl::parse("https://example.com/")
            .unwrap()
            .satisfies(ac)
    );
}

#[test]
fn serde_validates_on_the_way_in() {
    let url: WebhookUrl = serde_json::from_str(r#""https://example.com/h?x=1""#).unwrap();
    assert_eq!(
        serde_json::to_string(&url).unwrap(),
        r#""https://example.com/h?x=1""#
    );
    let err = serde_json::from_str::<WebhookUrl>(r#""https://example.com/a b""#).unwrap_err();
    assert!(
        err.to_string().contains("invalid character ' ' at byte 21"),
        "{err}"
    );
    assert_eq!(
        "https://x.io".parse::<WebhookUrl>().unwrap().to_string(),
        "https://x.io"
    );
}

/// Characters allowed in a path or query.
const PATH_CHARS: &str = "abcxyzABCXYZ0189$-_.+!*'(),;/?:@=&";
/// Characters that are never allowed (ASCII ones; non-ASCII is covered separately).
const BAD_ASCII: &[u8] = b" \"<>{}|\\^~[]#`\t\r\n\x00\x1f\x7f";

fn path_part() -> impl Strategy<Value = String> {
    let plain =
        proptest::sample::select(PATH_CHARS.chars().collect::<Vec<_>>()).prop_map(String::from);
    let escape = (0u8..=255, any::<bool>()).prop_map(|(b, lower)| {
        if lower {
            format!("%{b:02x}")
        } else {
            format!("%{b:02X}")
        }
    });
    proptest::collection::vec(prop_oneof![4 => plain, 1 => escape], 0..40).prop_map(|v| v.concat())
}

fn host() -> impl Strategy<Value = String> {
    proptest::collection::vec("[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", 1..4).prop_map(|labels| {
        let mut host = labels.join(".");
        host.push_str(".com");
        host
    })
}

fn valid_url() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        host(),
        proptest::option::of(1u16..),
        path_part(),
    )
        .prop_map(|(https, host, port, path)| {
            let scheme = if https { "https" } else { "http" };
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            format!("{scheme}://{host}{port}/{path}")
        })
}

proptest! {
    #[test]
    fn urls_built_from_allowed_parts_are_accepted(url in valid_url()) {
        let parsed = WebhookUrl::parse(&url);
        prop_assert!(parsed.is_ok(), "{url}: {:?}", parsed.err());
        let parsed = parsed.unwrap();
        prop_assert_eq!(parsed.as_str(), url.as_str());
    }

    #[test]
    fn a_disallowed_byte_is_reported_at_its_offset(
        url in valid_url(),
        bad in proptest::sample::select(BAD_ASCII.to_vec()),
        pick in any::<proptest::sample::Index>(),
    ) {
        // Insert after the "scheme://" so the scheme is still found; anywhere up to the end.
        let start = url.find("://").unwrap() + 3;
        let at = start + pick.index(url.len() - start + 1);
        // Never split a %HH escape: move to the escape's start.
        let at = match url[..at].rfind('%') { Some(p) if at - p <= 2 => p, _ => at };
        let mut input = url.clone();
        input.insert(at, bad as char);
        let err = WebhookUrl::parse(&input).unwrap_err();
        prop_assert_eq!(err.offset(), at, "{:?}: {}", input, err);
        prop_assert_eq!(err.kind(), &UrlErrorKind::InvalidCharacter(bad as char));
    }

    #[test]
    fn a_non_ascii_character_is_reported_at_its_offset(
        url in valid_url(),
        c in any::<char>().prop_filter("non-ASCII", |c| !c.is_ascii()),
        pick in any::<proptest::sample::Index>(),
    ) {
        let start = url.find("://").unwrap() + 3;
        let at = start + pick.index(url.len() - start + 1);
        let at = match url[..at].rfind('%') { Some(p) if at - p <= 2 => p, _ => at };
        let mut input = url.clone();
        input.insert(at, c);
        let err = WebhookUrl::parse(&input).unwrap_err();
        prop_assert_eq!(err.offset(), at);
        prop_assert_eq!(err.character(), Some(c));
    }

    #[test]
    fn a_broken_escape_is_reported_at_its_percent(url in valid_url(), tail in "[g-zG-Z]{0,2}") {
        let input = format!("{url}%{tail}");
        let err = WebhookUrl::parse(&input).unwrap_err();
        prop_assert_eq!(err.kind(), &UrlErrorKind::InvalidEscape);
        prop_assert_eq!(err.offset(), url.len());
    }

    #[test]
    fn never_panics_on_arbitrary_text(input in any::<String>()) {
        if let Result::Err(err) = WebhookUrl::parse(&input) {
            prop_assert!(err.offset() <= input.len());
            prop_assert!(input.is_char_boundary(err.offset()));
        }
    }

    #[test]
    fn never_panics_on_url_shaped_text(input in "(https?|ftp)?(:|://)?[a-z.@:%0-9/?#\\[\\] ]{0,30}") {
        let _ = WebhookUrl::parse(&input);
        let _ = WebhookUrl::parse_with(&input, UrlPolicy::activecampaign());
    }
}

#[test]
fn clones_share_the_kept_parse_and_equality_is_by_text() {
    use std::hash::BuildHasher;
    let url = WebhookUrl::parse("https://Hooks.Example.COM:8443/ac?token=a%2Fb").unwrap();
    let clone = url.clone();
    let again = WebhookUrl::parse(url.as_str()).unwrap();
    assert_eq!(url, clone);
    assert_eq!(url, again, "equal by text, parsed apart");
    let hasher = std::collections::hash_map::RandomState::new();
    assert_eq!(hasher.hash_one(&url), hasher.hash_one(&again));
    assert_ne!(
        url,
        WebhookUrl::parse("https://hooks.example.com:8443/ac?token=a%2Fb").unwrap()
    );

    // The WHATWG parse: normalized, made once and shared by the clones.
    let parsed = url.as_url().expect("a validated URL parses");
    assert_eq!(
        parsed.as_str(),
        "https://hooks.example.com:8443/ac?token=a%2Fb"
    );
    assert!(
        std::ptr::eq(parsed, clone.as_url().unwrap()),
        "one parse for both"
    );
    assert!(
        !std::ptr::eq(parsed, again.as_url().unwrap()),
        "a URL parsed apart keeps its own"
    );
    assert_eq!(
        WebhookUrl::parse("http://2130706433")
            .unwrap()
            .as_url()
            .unwrap()
            .as_str(),
        "http://127.0.0.1/"
    );
}

#[test]
fn is_uri_of_compares_scheme_authority_path_and_query() {
    let url = WebhookUrl::parse("HTTPS://h.example.com/a?b=1").unwrap();
    let uri = |s: &str| http::Uri::try_from(s).unwrap();
    assert!(url.is_uri_of(&uri("HTTPS://h.example.com/a?b=1")));
    assert!(
        url.is_uri_of(&uri("https://h.example.com/a?b=1")),
        "the scheme in any case"
    );
    for other in [
        "https://h.example.com/a?b=2",
        "https://h.example.com/a",
        "https://h.example.com:443/a?b=1",
        "http://h.example.com/a?b=1",
        "https://g.example.com/a?b=1",
        "/a?b=1",
    ] {
        assert!(!url.is_uri_of(&uri(other)), "{other}");
    }
    let bare = WebhookUrl::parse("http://h.example.com").unwrap();
    assert!(bare.is_uri_of(&uri("http://h.example.com")));
    assert!(
        bare.is_uri_of(&uri("http://h.example.com/")),
        "no path is the path /"
    );
    assert!(!bare.is_uri_of(&uri("http://h.example.com/x")));
    assert!(!bare.is_uri_of(&uri("http://h.example.co")));
}

proptest! {
    #[test]
    fn the_uri_made_from_a_url_is_its_uri(url in valid_url(), other in valid_url()) {
        let parsed = WebhookUrl::parse(&url).unwrap();
        if let Result::Ok(uri) = http::Uri::try_from(parsed.as_str()) {
            prop_assert!(parsed.is_uri_of(&uri), "{url}");
            // And the kept parse is the one reqwest would make of that URI's text.
            let fresh = url::Url::parse(&uri.to_string()).unwrap();
            prop_assert_eq!(parsed.as_url().unwrap(), &fresh);
        }
        if other != url {
            if let Result::Ok(uri) = http::Uri::try_from(other.as_str()) {
                prop_assert!(!parsed.is_uri_of(&uri), "{url} vs {other}");
            }
        }
    }
}

//! The settings_page example in a real browser: headless Chromium driven over WebDriver
//! (chromedriver on 127.0.0.1, fantoccini), as a person would use the page.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian: `apt-get install chromium
//! chromium-driver`; `POSTHOOK_CHROMIUM` / `POSTHOOK_CHROMEDRIVER` point elsewhere). Without
//! them the test prints one line saying so and passes, unless `POSTHOOK_REQUIRE_BROWSER=1`
//! (CI), where it fails. Screenshots go to `screenshots/` in cargo's target directory
//! (`CARGO_TARGET_DIR`, or `target/`).
//!
//! Every page state is checked with axe-core (installed from the npm registry into the target
//! directory on first use, `npm install axe-core@4`; `POSTHOOK_AXE` points at an `axe.min.js`
//! elsewhere): no critical or serious violation. The page is also attacked: forms posted and
//! `fetch`es sent from other origins (a page this test serves on another port, under
//! `localhost` and `127.0.0.1`), and requests with a foreign `Host`, `Origin` or
//! `Sec-Fetch-Site`, a missing or wrong form token; none changes anything.

#[cfg(not(all(feature = "http", feature = "signing", feature = "sqlite")))]
#[test]
fn settings_page_in_chromium() {
    use std::io::Write;
    let why = "the example needs --features http,signing,sqlite";
    assert!(
        std::env::var_os("POSTHOOK_REQUIRE_BROWSER").is_none(),
        "browser test required but {why}"
    );
    let _ = writeln!(
        std::io::stderr(),
        "settings_page browser test skipped: {why}"
    );
}

#[cfg(all(feature = "http", feature = "signing", feature = "sqlite"))]
mod browser {
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{Ipv4Addr, TcpListener, TcpStream};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use fantoccini::{Client, ClientBuilder, Locator};
    use hyper_util::client::legacy::connect::HttpConnector;
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    type Failure = Box<dyn std::error::Error>;

    /// A child process, killed when the test ends, however it ends.
    struct Killed(Child);

    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn tool(env: &str, default: &str) -> Option<PathBuf> {
        let path = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
        path.is_file().then_some(path)
    }

    /// The target directory this test runs from (`target/debug/deps/..` -> `target`).
    fn target_dir() -> Result<PathBuf, Failure> {
        let exe = std::env::current_exe()?;
        let profile = exe.parent().and_then(Path::parent).ok_or("no target dir")?;
        Ok(profile.to_path_buf())
    }

    /// The example's binary, built again (with this test's features) when a source of the
    /// example is newer than it: `cargo test --test settings_page` alone does not build it.
    fn example_binary() -> Result<PathBuf, Failure> {
        let path = target_dir()?.join("examples").join("settings_page");
        let built = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/settings_page");
        let stale = match built {
            None => true,
            Some(built) => newest(&sources)? > built,
        };
        if stale {
            let features: Vec<&str> = [
                ("http", cfg!(feature = "http")),
                ("signing", cfg!(feature = "signing")),
                ("tokio", cfg!(feature = "tokio")),
                ("sqlite", cfg!(feature = "sqlite")),
            ]
            .into_iter()
            .filter_map(|(name, on)| on.then_some(name))
            .collect();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = Command::new(cargo);
            build.args(["build", "--example", "settings_page", "--features"]);
            build.arg(features.join(","));
            if !cfg!(debug_assertions) {
                build.arg("--release");
            }
            let status = build.current_dir(env!("CARGO_MANIFEST_DIR")).status()?;
            if !status.success() || !path.is_file() {
                return Err(format!("could not build {}", path.display()).into());
            }
        }
        Ok(path)
    }

    /// The newest modification time of the files in `dir`, recursively.
    fn newest(dir: &Path) -> Result<std::time::SystemTime, Failure> {
        let mut latest = std::time::SystemTime::UNIX_EPOCH;
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let time = if entry.file_type()?.is_dir() {
                newest(&entry.path())?
            } else {
                entry.metadata()?.modified()?
            };
            latest = latest.max(time);
        }
        Ok(latest)
    }

    fn free_port() -> Result<u16, Failure> {
        Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port())
    }

    fn fresh_dir(name: &str) -> Result<PathBuf, Failure> {
        let dir = std::env::temp_dir().join(format!("posthook-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Starts the app on a free port with a fresh data directory; returns it and its address.
    fn start_app(data: &Path) -> Result<(Killed, String), Failure> {
        start_app_with(data, &[])
    }

    /// [`start_app`] with more arguments (`--seed-webhooks N`: it answers once they are in).
    fn start_app_with(data: &Path, more: &[&str]) -> Result<(Killed, String), Failure> {
        let mut child = Command::new(example_binary()?)
            .args(["--port", "0", "--failing-for", "0", "--data"])
            .arg(data)
            .args(more)
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let child = Killed(child);
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        // Keep reading what it prints: a closed pipe would fail its next println!.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("the app printed {line:?}"))?
            .trim_end_matches('/')
            .to_owned();
        Ok((child, base))
    }

    fn start_chromedriver(driver: &Path) -> Result<(Killed, String), Failure> {
        let port = free_port()?;
        let child = Killed(
            Command::new(driver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if Instant::now() > deadline {
                return Err("chromedriver did not start".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok((child, format!("http://127.0.0.1:{port}")))
    }

    async fn open_browser(
        driver: &str,
        chromium: &Path,
        profile: &Path,
    ) -> Result<Client, Failure> {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1400,1000",
        ]
        .map(String::from)
        .into_iter()
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect::<Vec<_>>();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": chromium, "args": args }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(driver)
            .await?;
        Ok(client)
    }

    /// The element `css` (waiting a little for it), or an error naming it.
    async fn find(client: &Client, css: &str) -> Result<fantoccini::elements::Element, Failure> {
        let wait = client.wait().at_most(Duration::from_secs(5));
        let found = wait.for_element(Locator::Css(css)).await;
        Ok(found.map_err(|e| format!("{css}: {e}"))?)
    }

    async fn text(client: &Client, css: &str) -> Result<String, Failure> {
        Ok(find(client, css).await?.text().await?)
    }

    async fn fill(client: &Client, css: &str, value: &str) -> Result<(), Failure> {
        let field = find(client, css).await?;
        field.clear().await?;
        field.send_keys(value).await?;
        Ok(())
    }

    async fn check(client: &Client, name: &str, value: &str) -> Result<(), Failure> {
        let css = format!("input[name={name}][value={value}]");
        let checkbox = find(client, &css).await?;
        if !checkbox.is_selected().await? {
            checkbox.click().await?;
        }
        Ok(())
    }

    /// Clicks `css` and waits for the page it leads to (a form post, a link).
    async fn click(client: &Client, css: &str) -> Result<(), Failure> {
        let element = find(client, css).await?;
        client.execute("window.__old_page = true", vec![]).await?;
        element.click().await?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let loaded = "return window.__old_page === undefined && document.readyState === 'complete'";
        while client.execute(loaded, vec![]).await? != serde_json::Value::Bool(true) {
            if Instant::now() > deadline {
                return Err(format!("clicking {css} led to no new page").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    async fn screenshot(client: &Client, name: &str) -> Result<PathBuf, Failure> {
        let dir = target_dir()?
            .parent()
            .ok_or("no target")?
            .join("screenshots");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(name);
        std::fs::write(&path, client.screenshot().await?)?;
        Ok(path)
    }

    /// Waits until `css`'s text contains `wanted`, reloading `url` (the page needs no JS).
    async fn wait_for_text(
        client: &Client,
        url: &str,
        css: &str,
        wanted: &str,
    ) -> Result<String, Failure> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            client.goto(url).await?;
            let found = text(client, css).await.unwrap_or_default();
            if found.contains(wanted) {
                return Ok(found);
            }
            if Instant::now() > deadline {
                return Err(format!("{css} never showed {wanted:?}; last: {found:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// The text of every element matching `css`, read in one script: the log's refresh
    /// script may replace its rows between a find and a read.
    async fn texts(client: &Client, css: &str) -> Result<Vec<String>, Failure> {
        let script =
            "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText.trim())";
        let found = client.execute(script, vec![serde_json::json!(css)]).await?;
        Ok(serde_json::from_value(found)?)
    }

    /// The ids of the deliveries in the log, newest first (read in one script).
    async fn log_ids(client: &Client) -> Result<Vec<String>, Failure> {
        let script =
            "return [...document.querySelectorAll('#log tr.delivery')].map(r => r.dataset.id)";
        Ok(serde_json::from_value(
            client.execute(script, vec![]).await?,
        )?)
    }

    /// Loads `url` until the newest delivery's outcome contains `wanted`; that outcome.
    async fn wait_for_newest(client: &Client, url: &str, wanted: &str) -> Result<String, Failure> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            client.goto(url).await?;
            let outcomes = texts(client, "#log tr.delivery .outcome").await?;
            let newest = outcomes.first().cloned().unwrap_or_default();
            if newest.contains(wanted) {
                return Ok(newest);
            }
            if Instant::now() > deadline {
                return Err(
                    format!("the newest delivery never showed {wanted:?}: {newest:?}").into(),
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// English words that have no place on the Italian page (whole words, any case; the
    /// example's `mod italian` checks each message kind against a longer list).
    const ENGLISH: &[&str] = &[
        "the",
        "and",
        "not",
        "is",
        "was",
        "this",
        "with",
        "from",
        "only",
        "within",
        "did",
        "failed",
        "retried",
        "delivered",
        "delivery",
        "deliveries",
        "attempt",
        "attempts",
        "refused",
        "error",
        "request",
        "answer",
        "answered",
        "connection",
        "gave",
        "pending",
        "cancelled",
        "bad",
        "internal",
        "unavailable",
        "forbidden",
        "gone",
        "found",
        "invalid",
        "character",
        "missing",
        "blocked",
        "unknown",
        "nothing",
        "redirect",
    ];

    /// The page's own words, as the browser shows them: its text without what is data
    /// (the webhook's name and URL, delivery ids, the bodies sent, the data directory, a
    /// receiver's answer quoted in «»), with "Request Catcher" (a product's name) left out.
    async fn page_words(client: &Client) -> Result<String, Failure> {
        let script = r##"
            const data = ["#sent", ".delivery-id", ".resent-from code", "#hook-name", "#hook-url",
              "#summary h2", "td.name", "td.url", "code", "pre"];
            const page = document.body.cloneNode(true);
            page.querySelectorAll(data.join(", ")).forEach(e => e.remove());
            return page.textContent;
        "##;
        let text = client.execute(script, vec![]).await?;
        let text = text.as_str().unwrap_or_default();
        let mut words = String::new();
        let mut quoted = false;
        for c in text.chars() {
            match c {
                '\u{ab}' => quoted = true,
                '\u{bb}' => quoted = false,
                c if !quoted => words.push(c),
                _ => {}
            }
        }
        Ok(words.replace("Request Catcher", ""))
    }

    /// The Italian page shows no English word of its own.
    async fn assert_italian(client: &Client, what: &str) -> Result<(), Failure> {
        let words = page_words(client).await?;
        let english: Vec<&str> = words
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| ENGLISH.iter().any(|e| e.eq_ignore_ascii_case(w)))
            .collect();
        if english.is_empty() {
            Ok(())
        } else {
            Err(format!("{what}: English {english:?} on the Italian page: {words}").into())
        }
    }

    /// axe-core's `axe.min.js`: `POSTHOOK_AXE`, or installed from the npm registry into
    /// the target directory (once; later runs find it there).
    fn axe_source() -> Result<String, Failure> {
        if let Some(path) = std::env::var_os("POSTHOOK_AXE") {
            return Ok(std::fs::read_to_string(path)?);
        }
        let prefix = target_dir()?.parent().ok_or("no target")?.join("axe");
        let path = prefix.join("node_modules/axe-core/axe.min.js");
        if !path.is_file() {
            std::fs::create_dir_all(&prefix)?;
            let status = Command::new("npm")
                .args([
                    "install",
                    "--no-save",
                    "--no-audit",
                    "--no-fund",
                    "--prefix",
                ])
                .arg(&prefix)
                .arg("axe-core@4")
                .stdout(Stdio::null())
                .status()
                .map_err(|e| format!("cannot run npm to install axe-core: {e}"))?;
            if !status.success() || !path.is_file() {
                return Err(format!("npm install axe-core@4 failed ({status})").into());
            }
        }
        Ok(std::fs::read_to_string(path)?)
    }

    /// axe-core, run on the page the browser shows.
    struct Axe {
        /// `None` where axe-core could not be had (and is not required): no checks.
        source: Option<String>,
        checked: AtomicUsize,
    }

    impl Axe {
        /// Runs axe on the current page: no critical or serious violation, or an error
        /// listing them (with the elements) for `what`.
        async fn check(&self, client: &Client, what: &str) -> Result<(), Failure> {
            let Some(source) = &self.source else {
                return Ok(());
            };
            let present = client
                .execute("return typeof window.axe === 'object'", vec![])
                .await?;
            if present != json!(true) {
                client.execute(source, vec![]).await?;
            }
            let run = r#"
                const done = arguments[arguments.length - 1];
                axe.run(document, { resultTypes: ["violations"] })
                  .then(r => done(r.violations
                    .filter(v => v.impact === "critical" || v.impact === "serious")
                    .map(v => ({ id: v.id, impact: v.impact, help: v.help,
                                 nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ")) }))))
                  .catch(e => done([{ id: "axe-error", impact: "critical", help: String(e), nodes: [] }]));
            "#;
            let found = client.execute_async(run, vec![]).await?;
            let violations = found.as_array().cloned().unwrap_or_default();
            self.checked.fetch_add(1, Ordering::Relaxed);
            if violations.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "axe on {what}: {}",
                    serde_json::to_string_pretty(&violations)?
                )
                .into())
            }
        }
    }

    /// Whether the page fits the window's width: nothing sticks out sideways.
    async fn fits_width(client: &Client) -> Result<(i64, i64), Failure> {
        let script = "return [document.documentElement.scrollWidth, window.innerWidth]";
        let sizes: (i64, i64) = serde_json::from_value(client.execute(script, vec![]).await?)?;
        Ok(sizes)
    }

    async fn assert_fits(client: &Client, what: &str) -> Result<(), Failure> {
        let (scroll, inner) = fits_width(client).await?;
        if scroll > inner {
            return Err(
                format!("{what}: the page is {scroll} px wide in a {inner} px window").into(),
            );
        }
        Ok(())
    }

    /// Sets a field's value by script (fast for 200,000 characters).
    async fn set_value(client: &Client, css: &str, value: &str) -> Result<(), Failure> {
        find(client, css).await?;
        let script = "document.querySelector(arguments[0]).value = arguments[1]";
        client
            .execute(script, vec![json!(css), json!(value)])
            .await?;
        Ok(())
    }

    /// One HTTP/1.1 request to `addr` ("127.0.0.1:PORT") as raw text; the status, the head
    /// (status line and headers, lower-case names as the app writes them) and the body.
    async fn raw_full(addr: &str, request: String) -> Result<(u16, String, String), Failure> {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("no status in {answer:?}"))?;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        Ok((status, head.to_owned(), body.to_owned()))
    }

    async fn raw(addr: &str, request: String) -> Result<(u16, String), Failure> {
        let (status, _, body) = raw_full(addr, request).await?;
        Ok((status, body))
    }

    /// A POST of `body` as a form, with `headers` (each `Name: value`).
    fn post(host: &str, path: &str, headers: &[&str], body: &str) -> String {
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        );
        for header in headers {
            request.push_str(header);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        request.push_str(body);
        request
    }

    fn get(host: &str, path: &str, headers: &[&str]) -> String {
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
        for header in headers {
            request.push_str(header);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        request
    }

    /// A session of our own, outside the browser: its cookie and form token, from a GET.
    async fn raw_session(addr: &str) -> Result<(String, String), Failure> {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(get(addr, "/webhooks/new", &[]).as_bytes())
            .await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        let answer = String::from_utf8_lossy(&answer);
        let cookie = answer
            .lines()
            .find_map(|l| l.strip_prefix("set-cookie: "))
            .and_then(|c| c.split(';').next())
            .ok_or("no session cookie")?
            .to_owned();
        let token = answer
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .ok_or("no form token")?
            .to_owned();
        Ok((cookie, token))
    }

    /// The names in the list of webhooks, read by a GET in the browser.
    async fn listed_names(client: &Client, base: &str) -> Result<Vec<String>, Failure> {
        client.goto(&format!("{base}/webhooks")).await?;
        texts(client, "#webhooks tbody td.name").await
    }

    /// Another website, on a port of its own: `/form` posts a form to the app as soon as it
    /// loads, `/fetch` sends a `fetch` POST, both with the token given in `?token=` (as if it
    /// had leaked) so that only the origin checks stand in the way.
    async fn start_attacker(app: String) -> Result<u16, Failure> {
        use axum::extract::{Path as UrlPath, Query};
        use axum::response::Html;
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let port = listener.local_addr()?.port();
        let page = move |UrlPath(page): UrlPath<String>,
                         Query(q): Query<HashMap<String, String>>| {
            let app = app.clone();
            async move {
                let token = q.get("token").cloned().unwrap_or_default();
                let name = format!("evil-{page}");
                let fields = format!(
                    "csrf={token}&name={name}&url=http%3A%2F%2Fevil.example%2Fsteal\
                     &events=subscribe&sources=public&list=0&do=save"
                );
                Html(match page.as_str() {
                    "form" => format!(
                        "<!doctype html><title>form</title><form id=f method=post action='{app}/webhooks/new'>\
                         <input name=csrf value='{token}'><input name=name value='{name}'>\
                         <input name=url value='http://evil.example/steal'><input name=events value=subscribe>\
                         <input name=sources value=public><input name=list value=0><input name=do value=save>\
                         </form><script>document.getElementById('f').submit()</script>"
                    ),
                    _ => format!(
                        "<!doctype html><title>fetching</title><script>\
                         fetch('{app}/webhooks/new', {{method: 'POST', mode: 'no-cors', credentials: 'include',\
                           headers: {{'Content-Type': 'application/x-www-form-urlencoded'}}, body: '{fields}'}})\
                           .then(() => document.title = 'sent', e => document.title = 'error ' + e);\
                         </script>"
                    ),
                })
            }
        };
        // A receiver whose error answer is long and looks like markup: "Test URL" must show
        // it as text, and short.
        let answer = async || {
            let body = format!(
                "<script>document.title='pwned'</script><b>bold</b>{}",
                "x".repeat(300)
            );
            (axum::http::StatusCode::BAD_REQUEST, body)
        };
        let router = axum::Router::new()
            .route("/{page}", axum::routing::get(page))
            .route("/answer", axum::routing::post(answer));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(port)
    }

    /// The walk-through of the product document, then the 410, then Italian.
    async fn walk_through(client: &Client, base: &str, axe: &Axe) -> Result<(), Failure> {
        // The list, empty; "Add".
        client.goto(&format!("{base}/webhooks")).await?;
        assert!(text(client, "header h1").await?.contains("Manage webhooks"));
        axe.check(client, "the empty list").await?;
        click(client, "#add").await?;
        axe.check(client, "the blank form").await?;

        // As the product document has it: the allowed characters by the URL field, the notes
        // beside events, each source explained; Events and Sources are fieldsets.
        let hint = text(client, "#url-hint").await?;
        assert!(hint.contains("$-_.+!*'(),"), "{hint}");
        let described = find(client, "#url").await?.attr("aria-describedby").await?;
        assert_eq!(described.as_deref(), Some("url-hint"));
        let events = text(client, "#events-group").await?;
        assert!(events.starts_with("Events"), "{events}");
        assert!(
            events.contains("Campaign shared (on Facebook or Twitter)"),
            "{events}"
        );
        assert!(
            events.contains("Campaign forwarded (through the ActiveCampaign forward link)"),
            "{events}"
        );
        assert_eq!(text(client, "#sources-group legend").await?, "Sources");
        let api = text(client, "#source-api-help").await?;
        assert!(api.contains("contact_add API call"), "{api}");

        // The form: "All lists" first, all 25 events and 4 sources.
        let lists = client.find_all(Locator::Css("#list option")).await?;
        assert_eq!(lists[0].text().await?, "All lists");
        assert_eq!(
            client
                .find_all(Locator::Css("input[name=events]"))
                .await?
                .len(),
            25
        );
        assert_eq!(
            client
                .find_all(Locator::Css("input[name=sources]"))
                .await?
                .len(),
            4
        );

        // A bad URL: refused, the error points at the space, what was typed is kept.
        let bad = format!("{base}/_receiver?name=Mario Rossi");
        let space = bad.find(' ').ok_or("no space")?;
        fill(client, "#name", "Zapier: unsubscribes").await?;
        fill(client, "#url", &bad).await?;
        check(client, "events", "unsubscribe").await?;
        check(client, "events", "subscribe").await?;
        check(client, "sources", "public").await?;
        check(client, "sources", "admin").await?;
        click(client, "#submit").await?;
        let error = text(client, "#url-error").await?;
        assert!(
            error.contains(&format!("invalid character ' ' at byte {space}")),
            "{error}"
        );
        // The error summary has the focus; the field says it is invalid, and where why is.
        let focused = client
            .execute("return document.activeElement.id", vec![])
            .await?;
        assert_eq!(focused, json!("error-summary"));
        let summary = text(client, "#error-summary").await?;
        assert!(summary.contains("invalid character"), "{summary}");
        let url = find(client, "#url").await?;
        assert_eq!(url.attr("aria-invalid").await?.as_deref(), Some("true"));
        let described = url.attr("aria-describedby").await?.unwrap_or_default();
        assert!(
            described.split(' ').any(|id| id == "url-error"),
            "{described}"
        );
        axe.check(client, "the form with a URL error").await?;
        assert_eq!(text(client, "#url-error mark").await?, "\u{2423}");
        let kept = find(client, "#url").await?.prop("value").await?;
        assert_eq!(kept.as_deref(), Some(bad.as_str()));
        let still = find(client, "input[value=unsubscribe]").await?;
        assert!(still.is_selected().await?, "the checked events are kept");
        screenshot(client, "form_error.png").await?;

        // Fixed; "Test URL" on the form says it answers, then it is added, and listed.
        fill(client, "#url", &format!("{base}/_receiver")).await?;
        click(client, "#try-url").await?;
        let tested = text(client, "#url-test").await?;
        assert!(tested.contains("OK: HTTP 204"), "{tested}");
        click(client, "#submit").await?;
        let row = text(client, "#webhooks tbody tr").await?;
        assert!(
            row.contains("Zapier: unsubscribes") && row.contains("All lists"),
            "{row}"
        );
        assert!(row.contains("active"), "{row}");

        // Another, on a list, to the receiver that says 410.
        click(client, "#add").await?;
        find(client, "#list").await?.select_by_value("1").await?;
        fill(client, "#name", "Old CRM").await?;
        fill(client, "#url", &format!("{base}/_receiver/gone")).await?;
        check(client, "events", "subscribe").await?;
        check(client, "sources", "public").await?;
        click(client, "#submit").await?;

        // A third, to the receiver that answers 503 twice per delivery, then 204.
        click(client, "#add").await?;
        fill(client, "#name", "Flaky endpoint").await?;
        fill(client, "#url", &format!("{base}/_receiver/flaky")).await?;
        check(client, "events", "subscribe").await?;
        check(client, "sources", "public").await?;
        click(client, "#submit").await?;

        // "Send sample data" to the built-in receiver: a 2xx in the log.
        click(client, "#webhooks tbody tr:nth-child(1) a").await?;
        click(client, "#send-sample").await?;
        let notice = text(client, "#notice").await?;
        assert!(notice.contains("2/2 delivered"), "{notice}");
        let role = find(client, "#notice").await?.attr("role").await?;
        assert_eq!(role.as_deref(), Some("status"), "notices are a live region");
        // What was sent: each body's pairs, decoded, beside the raw body.
        let bodies = texts(client, "#sent details.sent-body").await?;
        assert_eq!(bodies.len(), 2, "{bodies:?}");
        let script = "return [...document.querySelectorAll('#sent .pairs tbody tr')]\
                      .map(r => [r.cells[0].textContent, r.cells[1].textContent])";
        let pairs: Vec<(String, String)> =
            serde_json::from_value(client.execute(script, vec![]).await?)?;
        assert!(
            pairs.contains(&("type".into(), "subscribe".into())),
            "{pairs:?}"
        );
        assert!(
            pairs.contains(&("type".into(), "unsubscribe".into())),
            "{pairs:?}"
        );
        assert!(
            pairs.iter().any(|(k, _)| k == "contact[email]"),
            "{pairs:?}"
        );
        let raws = client
            .execute(
                "return [...document.querySelectorAll('#sent pre.raw')].map(p => p.textContent)",
                vec![],
            )
            .await?;
        let raws: Vec<String> = serde_json::from_value(raws)?;
        assert!(raws.iter().all(|r| r.starts_with("type=")), "{raws:?}");
        assert!(
            raws.iter().any(|r| r.contains("contact%5Bemail%5D=")),
            "{raws:?}"
        );
        axe.check(client, "the detail page after Send sample data")
            .await?;
        let log = text(client, "#log").await?;
        assert!(
            log.contains("HTTP 204 No Content") && log.contains("delivered"),
            "{log}"
        );
        click(client, "#test-url").await?;
        let diagnosis = text(client, "#notice").await?;
        assert!(diagnosis.contains("OK: HTTP 204"), "{diagnosis}");
        let advice = text(client, "#advice").await?;
        assert!(advice.contains("takes POST requests"), "{advice}");

        // "Simulate activity": a subscribe on list 1 from a contact goes through the outbox
        // to both webhooks; the worker's 410 deactivates the second one.
        client.goto(&format!("{base}/webhooks")).await?;
        find(client, "#sim-kind")
            .await?
            .select_by_value("subscribe")
            .await?;
        find(client, "#sim-source")
            .await?
            .select_by_value("public")
            .await?;
        find(client, "#sim-list")
            .await?
            .select_by_value("1")
            .await?;
        click(client, "#publish").await?;
        assert!(
            text(client, "#notice")
                .await?
                .contains("3 webhooks to deliver")
        );
        let list_url = format!("{base}/webhooks");

        // The flaky one's log, left open: the page's little script refreshes it while the
        // worker retries (two 503s, then 204), with no reload.
        click(client, "#webhooks tbody tr:nth-child(3) a").await?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let attempts = loop {
            let attempts = text(client, "#log").await?;
            if attempts.contains("delivered") {
                break attempts;
            }
            if Instant::now() > deadline {
                return Err(format!("the open log never showed the delivery: {attempts}").into());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert_eq!(attempts.matches("HTTP 503").count(), 2, "{attempts}");
        assert!(attempts.contains("HTTP 204"), "{attempts}");
        screenshot(client, "log_retries.png").await?;

        // "Deactivate" by hand, and back.
        click(client, "#toggle").await?;
        assert_eq!(text(client, "#state").await?, "deactivated by hand");
        click(client, "#toggle").await?;
        assert_eq!(text(client, "#state").await?, "active");

        // The list: the 410 deactivated the second, the others were delivered.
        let gone_row = "#webhooks tbody tr:nth-child(2) .state";
        let state = wait_for_text(client, &list_url, gone_row, "410 Gone").await?;
        assert_eq!(state, "deactivated: 410 Gone");
        let first = "#webhooks tbody tr:nth-child(1) .last";
        wait_for_text(client, &list_url, first, "delivered").await?;
        let flaky = "#webhooks tbody tr:nth-child(3) .last";
        wait_for_text(client, &list_url, flaky, "delivered").await?;
        screenshot(client, "list.png").await?;
        axe.check(client, "the list with webhooks").await?;

        // The log of the first: the simulated event and the samples, newest first.
        click(client, "#webhooks tbody tr:nth-child(1) a").await?;
        let kinds = client.find_all(Locator::Css("#log tr.delivery")).await?;
        assert_eq!(kinds.len(), 3, "one event and two samples");
        assert_eq!(
            kinds[0].attr("data-kind").await?.as_deref(),
            Some("subscribe")
        );
        screenshot(client, "log.png").await?;
        axe.check(client, "a delivery log").await?;

        // The gone one, by "Send sample data" too: stays deactivated, says why.
        client.goto(&list_url).await?;
        click(client, "#webhooks tbody tr:nth-child(2) a").await?;
        click(client, "#send-sample").await?;
        let notice = text(client, "#notice").await?;
        assert!(notice.contains("410 Gone"), "{notice}");
        assert_eq!(text(client, "#state").await?, "deactivated: 410 Gone");

        // A fourth, to a receiver that answers 400: three failed deliveries in a row switch
        // it off as failing (the app runs with --failing-for 0).
        client.goto(&list_url).await?;
        click(client, "#add").await?;
        fill(client, "#name", "Broken endpoint").await?;
        fill(client, "#url", &format!("{base}/_receiver/reject")).await?;
        check(client, "events", "open").await?;
        check(client, "sources", "api").await?;
        click(client, "#submit").await?;
        for _ in 0..3 {
            find(client, "#sim-kind")
                .await?
                .select_by_value("open")
                .await?;
            find(client, "#sim-source")
                .await?
                .select_by_value("api")
                .await?;
            click(client, "#publish").await?;
            assert!(
                text(client, "#notice")
                    .await?
                    .contains("1 webhook to deliver")
            );
        }
        let broken = "#webhooks tbody tr:nth-child(4) .state";
        let state = wait_for_text(client, &list_url, broken, "failing since").await?;
        assert!(state.ends_with("(3 failed deliveries in a row)"), "{state}");
        click(client, "#webhooks tbody tr:nth-child(2) a").await?;

        // "Edit": the form comes filled in; a new name and one more source are saved, and the
        // 410 stays on record.
        click(client, "#edit").await?;
        let name = find(client, "#name").await?.prop("value").await?;
        assert_eq!(name.as_deref(), Some("Old CRM"));
        let list = find(client, "#list option[selected]").await?.text().await?;
        assert_eq!(list, "Newsletter");
        fill(client, "#name", "Old CRM (retired)").await?;
        check(client, "sources", "api").await?;
        click(client, "#submit").await?;
        let row = text(client, "#webhooks tbody tr:nth-child(2)").await?;
        assert!(
            row.contains("Old CRM (retired)") && row.contains("By the API"),
            "{row}"
        );
        assert!(row.contains("deactivated: 410 Gone"), "{row}");

        // In Italian: the labels posthook carries and the page's own words.
        client.goto(&format!("{base}/webhooks?lang=it")).await?;
        assert_eq!(text(client, "header h1").await?, "Gestisci webhook");
        assert_eq!(text(client, "#add").await?, "Aggiungi");
        let row = text(client, "#webhooks tbody tr").await?;
        assert!(row.contains("Tutte le liste"), "{row}");
        screenshot(client, "list_it.png").await?;
        assert_italian(
            client,
            "the Italian list (one webhook deactivated by a 410)",
        )
        .await?;
        assert!(
            text(client, "#webhooks tbody tr:nth-child(2) .state")
                .await?
                .contains("disattivato")
        );
        click(client, "#add").await?;
        let lists = client.find_all(Locator::Css("#list option")).await?;
        assert_eq!(lists[0].text().await?, "Tutte le liste");
        let events = text(client, "#events").await?;
        assert!(
            events.contains("Annullamento dell'iscrizione contatto"),
            "{events}"
        );
        assert!(events.contains("Campagna aperta"), "{events}");
        fill(client, "#name", "x").await?;
        fill(client, "#url", "https://example.com/a b").await?;
        click(client, "#submit").await?;
        let error = text(client, "#url-error").await?;
        assert!(
            error.contains("carattere non valido ' ' al byte 21"),
            "{error}"
        );
        axe.check(client, "the Italian form with errors").await?;
        client.goto(&format!("{base}/webhooks/1?lang=it")).await?;
        assert_eq!(text(client, "#send-sample").await?, "Invia dati di esempio");
        screenshot(client, "log_it.png").await?;
        axe.check(client, "an Italian delivery log").await?;

        // The footer says loopback is allowed.
        assert!(text(client, "#dev-mode").await?.contains("loopback"));
        Ok(())
    }

    /// The operator's controls (issue 15) on a webhook whose endpoint always answers 500:
    /// a failed delivery, "Resend", "Deactivate" cancelling a pending retry, "Recover",
    /// "Delete" after a confirmation; in English, with the Italian words checked on the way.
    async fn operator_controls(client: &Client, base: &str, axe: &Axe) -> Result<(), Failure> {
        let list_url = format!("{base}/webhooks");
        client.goto(&list_url).await?;
        click(client, "#add").await?;
        fill(client, "#name", "Failing endpoint").await?;
        fill(client, "#url", &format!("{base}/_receiver/down")).await?;
        check(client, "events", "forward").await?;
        check(client, "sources", "system").await?;
        click(client, "#submit").await?;
        let row = "#webhooks tbody tr:nth-child(5)";
        assert!(text(client, row).await?.contains("Failing endpoint"));
        let id = find(client, row).await?.attr("data-id").await?;
        let id = id.ok_or("the row has no data-id")?;
        let page = format!("{base}/webhooks/{id}");

        // A failed delivery: the sample gets a 500 (samples have one attempt).
        client.goto(&page).await?;
        click(client, "#send-sample").await?;
        let notice = text(client, "#notice").await?;
        assert!(notice.contains("0/1 delivered"), "{notice}");
        let sample = log_ids(client).await?;
        assert_eq!(sample.len(), 1, "{sample:?}");
        let sample = sample[0].clone();
        let outcome = texts(client, "#log tr.delivery .outcome").await?;
        assert!(outcome[0].starts_with("failed: HTTP 500"), "{outcome:?}");

        // "Resend": a new row, newest, marked as a resend of the sample; it fails too.
        click(
            client,
            &format!("#log tr[data-id='{sample}'] button.resend"),
        )
        .await?;
        let notice = text(client, "#notice").await?;
        assert!(notice.starts_with("Sent again as delivery "), "{notice}");
        let ids = log_ids(client).await?;
        assert_eq!(ids.len(), 2, "{ids:?}");
        let resend = ids[0].clone();
        assert_eq!(ids[1], sample);
        assert!(notice.contains(&resend), "{notice}");
        let marks = texts(client, "#log tr.delivery .resent-from").await?;
        assert_eq!(marks, [format!("resend of {sample}")]);
        wait_for_newest(client, &page, "failed: HTTP 500").await?;

        // An event whose delivery retries the 500s; "Deactivate" while it waits for its next
        // attempt: the retry is cancelled, with the reason, and counted.
        client.goto(&list_url).await?;
        let kind = find(client, "#sim-kind").await?;
        kind.select_by_value("forward").await?;
        let source = find(client, "#sim-source").await?;
        source.select_by_value("system").await?;
        click(client, "#publish").await?;
        let notice = text(client, "#notice").await?;
        assert!(notice.contains("1 webhook to deliver"), "{notice}");
        wait_for_newest(client, &page, "next attempt at").await?;
        click(client, "#toggle").await?;
        assert_eq!(text(client, "#state").await?, "deactivated by hand");
        let notice = text(client, "#notice").await?;
        assert!(
            notice.contains("Webhook deactivated")
                && notice.contains("1 pending delivery cancelled"),
            "{notice}"
        );
        let ids = log_ids(client).await?;
        assert_eq!(ids.len(), 3, "{ids:?}");
        let cancelled = ids[0].clone();
        let outcomes = texts(client, "#log tr.delivery .outcome").await?;
        assert_eq!(
            outcomes[0],
            "cancelled: the webhook was deactivated by hand"
        );
        let attempts = texts(client, "#log tr.delivery:first-child .attempts").await?;
        assert!(
            attempts[0].contains("HTTP 500"),
            "attempted before: {attempts:?}"
        );
        let counted = texts(client, "#counts [data-state=cancelled] strong").await?;
        assert_eq!(counted, ["1"]);
        assert_eq!(
            texts(client, "#counts [data-state=failed] strong").await?,
            ["2"]
        );
        screenshot(client, "log_cancelled.png").await?;
        axe.check(client, "a log with a cancelled delivery").await?;
        // Nothing is attempted after the switch-off: the cancelled row keeps its attempts.
        tokio::time::sleep(Duration::from_secs(3)).await;
        client.goto(&page).await?;
        assert_eq!(
            texts(client, "#log tr.delivery:first-child .attempts").await?,
            attempts
        );
        client.goto(&format!("{page}?lang=it")).await?;
        let outcomes = texts(client, "#log tr.delivery .outcome").await?;
        assert_eq!(
            outcomes[0],
            "annullato: il webhook è stato disattivato manualmente"
        );
        assert_eq!(text(client, "#recover").await?, "Recupera");
        let buttons = texts(client, "#log button.resend").await?;
        assert!(buttons.iter().all(|b| b == "Invia di nuovo"), "{buttons:?}");
        // Failure reasons in Italian, from the typed outcome: the sample's one attempt got
        // a 500, which is not retried under its one-attempt policy.
        let sample_outcome = "non riuscito: HTTP 500 errore interno del server: non ritentato \
                              (la politica consente un solo tentativo)";
        assert_eq!(
            outcomes.last().map(String::as_str),
            Some(sample_outcome),
            "{outcomes:?}"
        );
        assert_italian(client, "the Italian log of a receiver that answers 500").await?;
        screenshot(client, "log_cancelled_it.png").await?;

        // "Recover" on a deactivated webhook is refused; reactivated, it sends again what
        // failed or was cancelled in the last hour, each once: the resend and the cancelled
        // event (the sample was sent again already).
        client.goto(&page).await?;
        click(client, "#recover").await?;
        let notice = text(client, "#notice").await?;
        assert!(notice.contains("reactivate it first"), "{notice}");
        assert_eq!(log_ids(client).await?.len(), 3, "nothing was sent again");
        click(client, "#toggle").await?;
        assert_eq!(text(client, "#state").await?, "active");
        find(client, "#recover-since")
            .await?
            .select_by_value("1h")
            .await?;
        click(client, "#recover").await?;
        let notice = text(client, "#notice").await?;
        assert_eq!(notice, "Recover: 2 deliveries sent again");
        let ids = log_ids(client).await?;
        assert_eq!(ids.len(), 5, "{ids:?}");
        let mut marks = texts(client, "#log tr.delivery .resent-from").await?;
        marks.sort();
        let mut wanted = vec![
            format!("resend of {sample}"),
            format!("resend of {resend}"),
            format!("resend of {cancelled}"),
        ];
        wanted.sort();
        assert_eq!(marks, wanted);
        screenshot(client, "log_recovered.png").await?;

        // "Delete": a page that asks first (in Italian too); going back changes nothing.
        click(client, "#delete").await?;
        let question = text(client, "#question").await?;
        assert_eq!(
            question,
            "Delete webhook Failing endpoint? Its pending deliveries are cancelled; its delivery log stays."
        );
        client.goto(&format!("{page}/delete?lang=it")).await?;
        let question = text(client, "#question").await?;
        assert_eq!(
            question,
            "Eliminare il webhook Failing endpoint? I suoi invii in corso vengono annullati; il registro degli invii resta."
        );
        assert_eq!(text(client, "#confirm-delete").await?, "Elimina");
        click(client, "#keep").await?;
        assert_eq!(text(client, "#summary h2").await?, "Failing endpoint");
        click(client, "#delete").await?;
        screenshot(client, "delete_confirm_it.png").await?;
        axe.check(client, "the Italian delete confirmation").await?;
        click(client, "#confirm-delete").await?;
        let notice = text(client, "#notice").await?;
        assert!(
            notice.starts_with("Webhook eliminato: Failing endpoint"),
            "{notice}"
        );
        assert!(notice.contains("annullat"), "{notice}");
        client.goto(&list_url).await?;
        let rows = texts(client, "#webhooks tbody tr").await?;
        assert_eq!(rows.len(), 4, "{rows:?}");
        assert!(
            rows.iter().all(|r| !r.contains("Failing endpoint")),
            "{rows:?}"
        );
        client.goto(&page).await?;
        assert_eq!(text(client, "#error").await?, "This webhook was deleted.");
        axe.check(client, "the page of a deleted webhook").await?;
        Ok(())
    }

    /// The CLI: one running app per data directory, errors in plain words.
    fn cli(data: &Path) -> Result<(), Failure> {
        let run = |args: &[&str]| -> Result<(Option<i32>, String), Failure> {
            let out = Command::new(example_binary()?)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()?;
            Ok((
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ))
        };
        let dir = data.to_str().ok_or("data dir is not UTF-8")?;
        let (code, stderr) = run(&["--port", "0", "--data", dir])?;
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.starts_with(&format!(
                "settings_page: another settings_page is using {dir}"
            )),
            "{stderr}"
        );
        let (code, stderr) = run(&["--port", "nope"])?;
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.starts_with("settings_page: not a port: \"nope\""),
            "{stderr}"
        );
        assert!(stderr.contains("usage: settings_page"), "{stderr}");
        let (code, stderr) = run(&["--host", "a b"])?;
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.starts_with("settings_page: not a host name"),
            "{stderr}"
        );
        for debug in ["Error:", "Custom {", "kind:", "Os {"] {
            assert!(!stderr.contains(debug), "Debug output: {stderr}");
        }
        Ok(())
    }

    /// What the product document has the page do, and every message in Italian: plurals,
    /// failure reasons, "Test URL" and its troubleshooting, URL errors, the automation
    /// "webhook" action.
    async fn complete_and_italian(
        client: &Client,
        base: &str,
        attacker: u16,
        axe: &Axe,
    ) -> Result<(), Failure> {
        // Plurals: the first webhook has two events.
        client.goto(&format!("{base}/webhooks/1?lang=it")).await?;
        click(client, "#send-sample").await?;
        let notice = text(client, "#notice p").await?;
        assert_eq!(notice, "Invia dati di esempio: 2/2 consegnati");
        // The notice is a live region, and it has the focus: a screen reader reads it.
        let focused = client
            .execute("return document.activeElement.id", vec![])
            .await?;
        assert_eq!(focused, json!("notice"));
        let sent = client
            .execute("return document.getElementById('sent').textContent", vec![])
            .await?;
        let sent = sent.as_str().unwrap_or_default();
        assert!(
            sent.contains("Dati inviati") && sent.contains("Corpo grezzo"),
            "{sent}"
        );
        assert!(sent.contains("Campi, decodificati"), "{sent}");
        find(client, "#sample-kind")
            .await?
            .select_by_value("subscribe")
            .await?;
        click(client, "#send-sample").await?;
        assert_eq!(
            text(client, "#notice p").await?,
            "Invia dati di esempio: 1/1 consegnato"
        );
        // One body: shown open, its pairs readable.
        let pairs = text(client, "#sent .pairs").await?;
        assert!(pairs.contains("initiated_from"), "{pairs}");
        screenshot(client, "sample_sent_it.png").await?;
        axe.check(client, "the Italian view of what was sent")
            .await?;

        // The endpoint that answers 400: its failures, and "Test URL", in Italian.
        let broken = format!("{base}/webhooks/4?lang=it");
        client.goto(&broken).await?;
        assert!(
            text(client, "#summary h2")
                .await?
                .contains("Broken endpoint")
        );
        let outcomes = texts(client, "#log tr.delivery .outcome").await?;
        assert!(
            outcomes
                .iter()
                .all(|o| o == "non riuscito: HTTP 400 richiesta non valida: non ritentato"),
            "{outcomes:?}"
        );
        let state = text(client, "#state").await?;
        assert!(state.ends_with("(3 invii falliti di fila)"), "{state}");
        assert_italian(client, "the Italian log of a receiver that answers 400").await?;
        screenshot(client, "failing_log_it.png").await?;
        click(client, "#test-url").await?;
        let notice = text(client, "#notice").await?;
        assert!(
            notice.contains("HTTP 400 in ")
                && notice.contains("il ricevitore non ha accettato la richiesta"),
            "{notice}"
        );
        let advice = text(client, "#advice").await?;
        assert!(advice.starts_with("Risoluzione dei problemi"), "{advice}");
        assert!(
            advice.contains("Il ricevitore ha rifiutato la richiesta"),
            "{advice}"
        );
        assert!(advice.contains("Request Catcher"), "{advice}");
        for english in ["not retried", "failed", "the receiver", "refused"] {
            assert!(!notice.contains(english), "{english:?} in {notice}");
        }
        screenshot(client, "test_url_it.png").await?;
        assert_italian(client, "an Italian Test URL result").await?;
        axe.check(client, "an Italian Test URL result").await?;

        // "Test URL" on the form, in Italian: nothing listening; a broken escape.
        client.goto(&format!("{base}/webhooks/new?lang=it")).await?;
        fill(client, "#url", "http://127.0.0.1:1/hook").await?;
        click(client, "#try-url").await?;
        let tested = text(client, "#url-test").await?;
        assert!(tested.contains("connessione rifiutata"), "{tested}");
        assert!(
            tested.contains("Il ricevitore è avviato, su quella porta?"),
            "{tested}"
        );
        assert_italian(client, "Test URL on the form, nothing listening").await?;
        screenshot(client, "test_url_refused_it.png").await?;
        fill(client, "#url", "https://example.com/a%zz").await?;
        click(client, "#try-url").await?;
        let tested = text(client, "#url-test").await?;
        assert!(
            tested.contains("URL non valido: escape non valido al byte 21"),
            "{tested}"
        );
        fill(client, "#name", "x").await?;
        click(client, "#submit").await?;
        let error = text(client, "#url-error").await?;
        assert!(error.contains("escape non valido al byte 21"), "{error}");
        let summary = text(client, "#error-summary").await?;
        assert!(summary.contains("Seleziona almeno un evento."), "{summary}");
        assert!(summary.contains("3 problemi"), "{summary}");
        assert_italian(client, "the Italian form with a bad URL").await?;
        screenshot(client, "form_errors_it.png").await?;

        // A receiver whose error body is long and looks like markup: shown as text, cut.
        fill(
            client,
            "#url",
            &format!("http://127.0.0.1:{attacker}/answer"),
        )
        .await?;
        click(client, "#try-url").await?;
        let tested = text(client, "#url-test li").await?;
        assert!(
            tested.contains("«<script>document.title='pwned'</script><b>bold</b>xxx"),
            "{tested}"
        );
        let shown = tested.split('«').nth(1).unwrap_or_default();
        assert!(
            shown.chars().count() <= 101,
            "{} characters: {shown}",
            shown.chars().count()
        );
        assert!(shown.ends_with("…»"), "{shown}");
        let injected = client
            .execute(
                "return document.querySelectorAll('#url-test script, #url-test b').length",
                vec![],
            )
            .await?;
        assert_eq!(injected, json!(0));
        assert_ne!(client.title().await?, "pwned");

        // The automation "webhook" action: the contact and seriesid, posted to a URL.
        client.goto(&format!("{base}/automation")).await?;
        axe.check(client, "the automation page").await?;
        fill(client, "#auto-series", "27").await?;
        fill(client, "#auto-email", "mario.rossi@example.it").await?;
        click(client, "#send-automation").await?;
        let notice = text(client, "#notice p").await?;
        assert_eq!(notice, "Automation step: delivered (HTTP 204)");
        let script = "return [...document.querySelectorAll('#sent .pairs tbody tr')]\
                      .map(r => [r.cells[0].textContent, r.cells[1].textContent])";
        let pairs: Vec<(String, String)> =
            serde_json::from_value(client.execute(script, vec![]).await?)?;
        assert!(
            pairs.contains(&("seriesid".into(), "27".into())),
            "{pairs:?}"
        );
        assert!(
            pairs.contains(&("contact[email]".into(), "mario.rossi@example.it".into())),
            "{pairs:?}"
        );
        assert!(
            pairs.iter().all(|(k, _)| k != "type"),
            "no common keys: {pairs:?}"
        );
        let raw_body = text(client, "#sent pre.raw").await?;
        assert!(raw_body.ends_with("seriesid=27"), "{raw_body}");
        screenshot(client, "automation.png").await?;
        axe.check(client, "the automation result").await?;
        client.goto(&format!("{base}/automation?lang=it")).await?;
        fill(client, "#auto-url", &format!("{base}/_receiver/down")).await?;
        click(client, "#send-automation").await?;
        assert_eq!(
            text(client, "#notice p").await?,
            "Passaggio di automazione: non riuscito: HTTP 500 errore interno del server: non ritentato \
             (la politica consente un solo tentativo)"
        );
        assert_italian(client, "a failed Italian automation step").await?;
        fill(client, "#auto-url", "https://example.com/a b").await?;
        click(client, "#send-automation").await?;
        let focused = client
            .execute("return document.activeElement.id", vec![])
            .await?;
        assert_eq!(focused, json!("error-summary"));
        let error = text(client, "#auto-url-error").await?;
        assert!(
            error.contains("carattere non valido ' ' al byte 21"),
            "{error}"
        );
        assert_italian(client, "the Italian automation page with an error").await?;
        screenshot(client, "automation_it.png").await?;
        axe.check(client, "the Italian automation page with an error")
            .await?;
        Ok(())
    }

    /// Two people at once (parts): a tampered list id is refused; the language switch keeps
    /// what was typed; notices belong to the browser that caused them.
    async fn two_users(client: &Client, base: &str) -> Result<(), Failure> {
        let before = listed_names(client, base).await?;
        client.goto(&format!("{base}/webhooks/new")).await?;
        fill(client, "#name", "Tampered list").await?;
        fill(client, "#url", &format!("{base}/_receiver")).await?;
        check(client, "events", "open").await?;
        check(client, "sources", "api").await?;
        let tamper = "const o = document.createElement('option'); o.value = '99'; \
                      o.textContent = 'List 99'; const s = document.getElementById('list'); \
                      s.append(o); s.value = '99';";
        client.execute(tamper, vec![]).await?;
        click(client, "#submit").await?;
        assert_eq!(
            text(client, "#list-error").await?,
            "Choose a list from the menu."
        );
        let list = find(client, "#list").await?;
        assert_eq!(list.attr("aria-invalid").await?.as_deref(), Some("true"));
        assert_eq!(
            list.attr("aria-describedby").await?.as_deref(),
            Some("list-error")
        );
        assert_eq!(listed_names(client, base).await?, before, "nothing saved");

        // The language switch on "Add": the form again in Italian, with what was typed.
        client.goto(&format!("{base}/webhooks/new")).await?;
        find(client, "#list").await?.select_by_value("2").await?;
        fill(client, "#name", "Half typed").await?;
        fill(client, "#url", "https://example.com/hook?a=1").await?;
        check(client, "events", "open").await?;
        check(client, "sources", "admin").await?;
        click(client, "#lang-switch").await?;
        assert_eq!(text(client, "section h2").await?, "Aggiungi un webhook");
        let name = find(client, "#name").await?.prop("value").await?;
        assert_eq!(name.as_deref(), Some("Half typed"));
        let url = find(client, "#url").await?.prop("value").await?;
        assert_eq!(url.as_deref(), Some("https://example.com/hook?a=1"));
        assert!(find(client, "#event-open").await?.is_selected().await?);
        assert!(find(client, "#source-admin").await?.is_selected().await?);
        let list = find(client, "#list option[selected]").await?.text().await?;
        assert_eq!(list, "Customers");
        assert!(
            client.find(Locator::Css("#error-summary")).await.is_err(),
            "switching language is not a failed submit"
        );
        click(client, "#lang-switch").await?;
        assert_eq!(text(client, "section h2").await?, "Add a webhook");
        let name = find(client, "#name").await?.prop("value").await?;
        assert_eq!(name.as_deref(), Some("Half typed"));
        assert_eq!(listed_names(client, base).await?, before, "nothing saved");

        // Another browser (a session of its own) publishes: its notice is its own.
        let addr = base.strip_prefix("http://").ok_or("base")?;
        let (cookie, token) = raw_session(addr).await?;
        let cookie_header = format!("Cookie: {cookie}");
        let own_origin = format!("Origin: {base}");
        let body = format!("csrf={token}&kind=open&source=api&list=0");
        let headers = [
            cookie_header.as_str(),
            own_origin.as_str(),
            "Sec-Fetch-Site: same-origin",
        ];
        let (status, _) = raw(addr, post(addr, "/simulate", &headers, &body)).await?;
        assert_eq!(status, 303);
        client.goto(&format!("{base}/webhooks")).await?;
        assert!(
            client.find(Locator::Css("#notice")).await.is_err(),
            "another browser's notice is not shown here"
        );
        let (status, page) = raw(addr, get(addr, "/webhooks", &[&cookie_header])).await?;
        assert_eq!(status, 200);
        assert!(page.contains("id=\"notice\""), "its own browser sees it");
        assert!(page.contains("Published: Campaign opened"), "{page}");
        Ok(())
    }

    /// Long inputs and a narrow window: names and URLs cut in the list, whole on the detail
    /// page, the URL error echo cut around the bad character, nothing wider than 400 px.
    async fn long_and_narrow(client: &Client, base: &str, axe: &Axe) -> Result<(), Failure> {
        let name = "N".repeat(200_000);
        let long_url = format!("{base}/_receiver?x={}", "a".repeat(5_000));
        client.goto(&format!("{base}/webhooks/new")).await?;
        set_value(client, "#name", &name).await?;
        set_value(client, "#url", &long_url).await?;
        check(client, "events", "open").await?;
        check(client, "sources", "api").await?;
        click(client, "#submit").await?;
        let rows = texts(client, "#webhooks tbody tr").await?;
        let id: String = serde_json::from_value(
            client
                .execute(
                    "return [...document.querySelectorAll('#webhooks tbody tr')]\
                     .find(r => r.textContent.includes('NNNN')).dataset.id",
                    vec![],
                )
                .await?,
        )?;
        let row = format!("#webhooks tr[data-id='{id}']");
        let shown = text(client, &format!("{row} td.name")).await?;
        assert_eq!(shown.chars().count(), 60, "{rows:?}");
        assert!(shown.ends_with('…'), "{shown}");
        let url = text(client, &format!("{row} td.url")).await?;
        assert_eq!(url.chars().count(), 60, "{url}");
        assert!(url.ends_with('…'), "{url}");
        assert_fits(client, "the list with a 200,000-character name").await?;
        screenshot(client, "list_long.png").await?;

        let detail = format!("{base}/webhooks/{id}");
        client.goto(&detail).await?;
        let full: usize = serde_json::from_value(
            client
                .execute(
                    "return document.getElementById('hook-name').textContent.length",
                    vec![],
                )
                .await?,
        )?;
        assert_eq!(full, 200_000, "the whole name on the detail page");
        let full_url = client
            .execute(
                "return document.getElementById('hook-url').textContent",
                vec![],
            )
            .await?;
        assert_eq!(full_url, json!(long_url));
        assert_eq!(
            text(client, "#summary h2").await?.chars().count(),
            80,
            "a short heading"
        );
        assert_fits(client, "the detail page of a 200,000-character name").await?;
        screenshot(client, "detail_long.png").await?;
        axe.check(client, "the detail page of a 200,000-character name")
            .await?;

        // A 10,001-character URL with a space in the middle: the echo shows ~40 characters.
        client.goto(&format!("{base}/webhooks/new")).await?;
        let bad = format!(
            "https://example.com/{} {}",
            "a".repeat(5_000),
            "b".repeat(5_000)
        );
        set_value(client, "#url", &bad).await?;
        click(client, "#submit").await?;
        let echo = text(client, "#url-error code.echo").await?;
        assert_eq!(echo, format!("…{}␣{}…", "a".repeat(20), "b".repeat(20)));
        assert_eq!(text(client, "#url-error mark").await?, "␣");
        let error = text(client, "#url-error p").await?;
        assert_eq!(error, "invalid character ' ' at byte 5020");
        assert_fits(client, "the form with a 10,000-character URL").await?;
        screenshot(client, "form_long_url.png").await?;

        // 400 px wide: every page fits, nothing scrolls sideways.
        client.set_window_size(400, 900).await?;
        let (_, inner) = fits_width(client).await?;
        assert!(inner <= 400, "the window is {inner} px wide");
        let pages = [
            ("/webhooks", "list_400.png"),
            ("/webhooks/new", "form_400.png"),
            ("/webhooks/1", "log_400.png"),
            ("/webhooks/1/delete", "delete_400.png"),
            ("/automation", "automation_400.png"),
            ("/webhooks?lang=it", "list_it_400.png"),
        ];
        for (path, shot) in pages {
            client.goto(&format!("{base}{path}")).await?;
            if path == "/webhooks/1" {
                let show = "document.getElementById('log').scrollIntoView()";
                client.execute(show, vec![]).await?;
            }
            assert_fits(client, &format!("{path} at 400 px")).await?;
            screenshot(client, shot).await?;
        }
        axe.check(client, "the Italian list at 400 px").await?;
        client.goto(&detail).await?;
        assert_fits(client, "the long name at 400 px").await?;
        screenshot(client, "detail_long_400.png").await?;
        client.goto(&format!("{base}/webhooks/new")).await?;
        set_value(client, "#url", &bad).await?;
        click(client, "#submit").await?;
        assert_fits(client, "the URL error at 400 px").await?;
        screenshot(client, "form_error_400.png").await?;
        axe.check(client, "the form with errors at 400 px").await?;
        client.goto(&format!("{base}/webhooks/1")).await?;
        click(client, "#send-sample").await?;
        let show = "document.querySelector('#sent details').open = true; \
                    document.querySelector('#sent details').scrollIntoView()";
        client.execute(show, vec![]).await?;
        assert_fits(client, "what was sent, at 400 px").await?;
        screenshot(client, "sample_sent_400.png").await?;
        client.set_window_size(1400, 1000).await?;
        Ok(())
    }

    /// Other websites change nothing: a form they post, a `fetch` they send (from another
    /// site, `localhost`, and from another origin of the same site, 127.0.0.1 on another
    /// port), a foreign `Host`, `Origin` or `Sec-Fetch-Site`, a missing or wrong token; the
    /// same requests from the page itself work. Every response carries the policy headers.
    async fn other_origins(client: &Client, base: &str, attacker: u16) -> Result<(), Failure> {
        let addr = base.strip_prefix("http://").ok_or("base")?.to_owned();
        let before = listed_names(client, base).await?;

        // The session cookie: HttpOnly, SameSite=Strict. The token: in every form.
        let cookie = client.get_named_cookie("posthook_session").await?;
        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");
        let session = format!("Cookie: posthook_session={}", cookie.value());
        client.goto(&format!("{base}/webhooks/new")).await?;
        let token = find(client, "input[name=csrf]")
            .await?
            .prop("value")
            .await?
            .ok_or("no token")?;
        let tokens = texts(client, "form").await?.len();
        let with_token = client
            .execute(
                "return document.querySelectorAll('form input[name=csrf]').length",
                vec![],
            )
            .await?;
        assert_eq!(with_token, json!(tokens));

        // In the browser: the other website's form and fetch, with the leaked token.
        for site in [
            format!("localhost:{attacker}"),
            format!("127.0.0.1:{attacker}"),
        ] {
            client
                .goto(&format!("http://{site}/form?token={token}"))
                .await?;
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let url = client.current_url().await?;
                if url.as_str().starts_with(base) {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("the form from {site} was not posted: {url}").into());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let answer = text(client, "body").await?;
            assert!(answer.starts_with("403 Forbidden"), "{site}: {answer}");
            client
                .goto(&format!("http://{site}/fetch?token={token}"))
                .await?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while client.title().await? != "sent" {
                if Instant::now() > deadline {
                    return Err(format!("the fetch from {site}: {}", client.title().await?).into());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        assert_eq!(
            listed_names(client, base).await?,
            before,
            "nothing was added"
        );

        // Raw requests: each check alone refuses.
        let fields = |name: &str, token: &str| {
            format!(
                "csrf={token}&name={name}&url=http%3A%2F%2Fevil.example%2F&events=open\
                 &sources=api&list=0&do=save"
            )
        };
        let own = format!("Origin: {base}");
        let sibling = format!("Origin: http://127.0.0.1:{attacker}");
        let refused: [(&str, Vec<&str>, String); 6] = [
            (
                "cross-site",
                vec![&session, "Sec-Fetch-Site: cross-site"],
                fields("raw1", &token),
            ),
            (
                "same-site",
                vec![&session, "Sec-Fetch-Site: same-site", &own],
                fields("raw2", &token),
            ),
            (
                "foreign Origin",
                vec![&session, "Origin: http://attacker.example"],
                fields("raw3", &token),
            ),
            (
                "sibling Origin",
                vec![&session, &sibling],
                fields("raw4", &token),
            ),
            (
                "wrong token",
                vec![&session, &own],
                fields("raw5", &"0".repeat(token.len())),
            ),
            ("no session", vec![&own], fields("raw6", &token)),
        ];
        for (why, headers, body) in refused {
            let (status, answer) =
                raw(&addr, post(&addr, "/webhooks/new", &headers, &body)).await?;
            assert_eq!(status, 403, "{why}: {answer}");
        }
        let (status, _) = raw(
            &addr,
            post(
                &addr,
                "/webhooks/new",
                &[&session, &own],
                &fields("raw7", ""),
            ),
        )
        .await?;
        assert_eq!(status, 403, "a blank token");
        let (status, _) = raw(
            &addr,
            post(&addr, "/webhooks/1/active", &[&session], "active=0"),
        )
        .await?;
        assert_eq!(status, 403, "every POST, not only the form");
        assert_eq!(
            listed_names(client, base).await?,
            before,
            "nothing was added"
        );

        // A foreign Host (DNS rebinding): 421, in plain text, for pages and the receiver.
        for path in ["/webhooks", "/webhooks/1", "/static/app.css"] {
            let (status, head, body) = raw_full(&addr, get("attacker.example", path, &[])).await?;
            assert_eq!(status, 421, "{path}");
            assert!(head.contains("content-type: text/plain"), "{head}");
            assert!(body.starts_with("421 Misdirected Request"), "{body}");
            assert!(!body.contains("<"), "{body}");
        }
        let port = addr.rsplit(':').next().ok_or("port")?;
        let rebound = format!("attacker.example:{port}");
        let (status, _) = raw(&addr, get(&rebound, "/webhooks", &[])).await?;
        assert_eq!(status, 421);
        let (status, _) = raw(&addr, post(&rebound, "/_receiver/down", &[], "")).await?;
        assert_eq!(status, 421);
        let (status, _) = raw(&addr, get(&format!("localhost:{port}"), "/webhooks", &[])).await?;
        assert_eq!(status, 200, "localhost on its port is this app");

        // The headers, on every response.
        for request in [
            get(&addr, "/webhooks", &[]),
            get(&addr, "/static/app.js", &[]),
            get("attacker.example", "/webhooks", &[]),
            post(&addr, "/webhooks/new", &[], ""),
        ] {
            let (_, head, _) = raw_full(&addr, request).await?;
            let csp = head
                .lines()
                .find_map(|l| l.strip_prefix("content-security-policy: "))
                .ok_or_else(|| format!("no CSP: {head}"))?;
            for part in [
                "default-src 'self'",
                "script-src 'self'",
                "style-src 'self'",
                "frame-ancestors 'none'",
            ] {
                assert!(csp.contains(part), "{csp}");
            }
            assert!(!csp.contains("unsafe-inline"), "{csp}");
            assert!(head.contains("x-content-type-options: nosniff"), "{head}");
            assert!(head.contains("referrer-policy: same-origin"), "{head}");
        }

        // From the page itself, they work: a fetch in the page, and the same raw request
        // with this page's Origin.
        client.goto(&format!("{base}/webhooks")).await?;
        let same_origin = r#"
            const done = arguments[arguments.length - 1];
            const body = new URLSearchParams({
              csrf: document.querySelector("input[name=csrf]").value, name: "same-origin fetch",
              url: arguments[0] + "/_receiver", events: "open", sources: "api", list: "0", do: "save" });
            fetch("/webhooks/new", { method: "POST", body }).then(r => done(r.status), e => done(String(e)));
        "#;
        let status = client.execute_async(same_origin, vec![json!(base)]).await?;
        assert_eq!(status, json!(200));
        let body = fields("raw same-origin", &token);
        let headers = [
            session.as_str(),
            own.as_str(),
            "Sec-Fetch-Site: same-origin",
        ];
        let (status, _) = raw(&addr, post(&addr, "/webhooks/new", &headers, &body)).await?;
        assert_eq!(status, 303);
        let after = listed_names(client, base).await?;
        assert_eq!(after.len(), before.len() + 2, "{after:?}");
        assert!(after.iter().any(|n| n == "same-origin fetch"), "{after:?}");
        assert!(after.iter().any(|n| n == "raw same-origin"), "{after:?}");
        assert!(
            after
                .iter()
                .all(|n| n == "raw same-origin" || !(n.starts_with("evil") || n.starts_with("raw"))),
            "{after:?}"
        );
        Ok(())
    }

    /// Seeded webhook `i` (examples/settings_page/seed.rs): its name, its events besides
    /// `subscribe`, whether it is active.
    fn seeded(i: usize) -> (String, posthook::EventKind, bool) {
        const NAMES: [&str; 8] = [
            "Zapier",
            "HubSpot",
            "Salesforce",
            "Slack",
            "Mailchimp",
            "Pipedrive",
            "Segment",
            "Intercom",
        ];
        let kinds = posthook::EventKind::ALL;
        (
            format!("{} #{i}", NAMES[i % 8]),
            kinds[i % kinds.len()],
            i % 4 != 3,
        )
    }

    /// How many of `n` seeded webhooks pass `keep`.
    fn seeded_count(n: usize, keep: impl Fn(usize) -> bool) -> usize {
        (0..n).filter(|&i| keep(i)).count()
    }

    /// The app's own time for `path` (its `Server-Timing`), in ms, and the status.
    async fn server_time(addr: &str, path: &str) -> Result<(u16, f64), Failure> {
        let (status, head, _) = raw_full(addr, get(addr, path, &[])).await?;
        let ms = head
            .lines()
            .find_map(|l| l.strip_prefix("server-timing: app;dur="))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("no Server-Timing for {path}: {head}"))?;
        Ok((status, ms))
    }

    /// Times each of `paths` `runs` times (after one warm-up) and prints the app's own time
    /// (median, slowest) and the whole request's, as the client sees it.
    async fn print_times(
        addr: &str,
        label: &str,
        paths: &[&str],
        runs: usize,
    ) -> Result<(), Failure> {
        let mut out = std::io::stderr();
        let _ = writeln!(
            out,
            "settings_page server time, {label} ({runs} runs each):"
        );
        for path in paths {
            server_time(addr, path).await?;
            let (mut app, mut wall) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
            let mut status = 0;
            for _ in 0..runs {
                let started = Instant::now();
                let (code, ms) = server_time(addr, path).await?;
                wall.push(started.elapsed().as_secs_f64() * 1000.0);
                app.push(ms);
                status = code;
            }
            app.sort_by(f64::total_cmp);
            wall.sort_by(f64::total_cmp);
            let _ = writeln!(
                out,
                "  {status} {path:<58} app median {:6.2} ms, max {:6.2} ms; request median {:6.2} ms",
                app[runs / 2],
                app[runs - 1],
                wall[runs / 2]
            );
        }
        if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
            let _ = writeln!(out, "  load average: {}", load.trim());
        }
        Ok(())
    }

    /// The list at 120 webhooks (seeded into a second app's fresh data directory): paged
    /// 50 a page with the total, searched by name and by URL, filtered by event and state,
    /// each state a link; in both languages.
    async fn paged_and_searched(client: &Client, axe: &Axe) -> Result<(), Failure> {
        const N: usize = 120;
        let data = fresh_dir("settings-seeded")?;
        let (_app, base) = start_app_with(&data, &["--seed-webhooks", &N.to_string()])?;
        let addr = base.strip_prefix("http://").ok_or("base")?.to_owned();
        let list = format!("{base}/webhooks");

        // Page 1 of 3: 50 rows, the total; the last delivery of each, read in one query.
        client.goto(&list).await?;
        assert_eq!(text(client, "#total-count").await?, "120 webhooks");
        assert_eq!(text(client, "#showing").await?, "· Showing 1–50");
        assert_eq!(text(client, "#page-of").await?, "Page 1 of 3");
        let names = texts(client, "#webhooks tbody td.name").await?;
        assert_eq!(names.len(), 50);
        assert_eq!(names[0], seeded(0).0);
        assert!(client.find(Locator::Css("#previous")).await.is_err());
        let lasts = texts(client, "#webhooks tbody td.last").await?;
        assert!(lasts[0].starts_with("failed"), "{lasts:?}");
        assert!(lasts[1].starts_with("delivered"), "{lasts:?}");
        let states = texts(client, "#webhooks tbody td.state").await?;
        assert_eq!(states[3], "deactivated by hand");
        axe.check(client, "the paged list").await?;
        screenshot(client, "list_paged.png").await?;
        click(client, "#next").await?;
        assert_eq!(text(client, "#page-of").await?, "Page 2 of 3");
        assert_eq!(text(client, "#showing").await?, "· Showing 51–100");
        let names = texts(client, "#webhooks tbody td.name").await?;
        assert_eq!(names.first(), Some(&seeded(50).0));
        click(client, "#next").await?;
        assert_eq!(text(client, "#page-of").await?, "Page 3 of 3");
        let names = texts(client, "#webhooks tbody td.name").await?;
        assert_eq!(names.len(), 20);
        assert!(client.find(Locator::Css("#next")).await.is_err());
        click(client, "#previous").await?;
        assert_eq!(text(client, "#page-of").await?, "Page 2 of 3");
        client.goto(&format!("{list}?page=99")).await?;
        assert_eq!(
            text(client, "#page-of").await?,
            "Page 3 of 3",
            "past the end"
        );

        // Search by name (any case), from the box: the query string keeps it.
        client.goto(&list).await?;
        fill(client, "#search", "slack").await?;
        click(client, "#filter").await?;
        let url = client.current_url().await?;
        assert!(
            url.as_str().ends_with("/webhooks?q=slack&event=&state="),
            "{url}"
        );
        let slack = seeded_count(N, |i| i % 8 == 3);
        assert_eq!(
            text(client, "#total-count").await?,
            format!("{slack} webhooks")
        );
        let names = texts(client, "#webhooks tbody td.name").await?;
        assert_eq!(names.len(), slack);
        assert!(names.iter().all(|n| n.starts_with("Slack #")), "{names:?}");
        assert!(
            client.find(Locator::Css("#pager")).await.is_err(),
            "one page"
        );
        let kept = find(client, "#search").await?.prop("value").await?;
        assert_eq!(kept.as_deref(), Some("slack"));
        screenshot(client, "list_search.png").await?;
        axe.check(client, "a search").await?;

        // By URL: one webhook.
        fill(client, "#search", "CRM-00042.example").await?;
        click(client, "#filter").await?;
        assert_eq!(text(client, "#total-count").await?, "1 webhook");
        let names = texts(client, "#webhooks tbody td.name").await?;
        assert_eq!(names, [seeded(41).0]);

        // The event filter, then with the state filter; a link gives the same page.
        let kind = posthook::EventKind::ALL[7];
        assert_ne!(kind, posthook::EventKind::Subscribe);
        client.goto(&list).await?;
        find(client, "#filter-event")
            .await?
            .select_by_value(kind.as_str())
            .await?;
        click(client, "#filter").await?;
        let with_kind = seeded_count(N, |i| seeded(i).1 == kind);
        assert_eq!(
            text(client, "#total-count").await?,
            format!("{with_kind} webhooks")
        );
        let events = texts(client, "#webhooks tbody td.events").await?;
        assert_eq!(events.len(), with_kind);
        assert!(
            events.iter().all(|e| e.contains(kind.label())),
            "{events:?}"
        );
        find(client, "#filter-state")
            .await?
            .select_by_value("off")
            .await?;
        click(client, "#filter").await?;
        let off_kind = seeded_count(N, |i| seeded(i).1 == kind && !seeded(i).2);
        assert_eq!(
            text(client, "#total-count").await?,
            format!("{off_kind} webhooks")
        );
        let states = texts(client, "#webhooks tbody td.state").await?;
        assert!(
            states.iter().all(|s| s == "deactivated by hand"),
            "{states:?}"
        );
        screenshot(client, "list_filtered.png").await?;
        axe.check(client, "the event and state filters").await?;
        client.goto(&format!("{list}?state=active&page=2")).await?;
        let active = seeded_count(N, |i| seeded(i).2);
        assert_eq!(
            text(client, "#total-count").await?,
            format!("{active} webhooks")
        );
        assert_eq!(text(client, "#page-of").await?, "Page 2 of 2");
        let selected = find(client, "#filter-state option[selected]")
            .await?
            .text()
            .await?;
        assert_eq!(selected, "Active");
        client.goto(&format!("{list}?state=off")).await?;
        let off = seeded_count(N, |i| !seeded(i).2);
        assert_eq!(
            text(client, "#total-count").await?,
            format!("{off} webhooks")
        );

        // Nothing matches: said so, with a way back.
        client.goto(&format!("{list}?q=no+such+webhook")).await?;
        assert_eq!(text(client, "#total-count").await?, "0 webhooks");
        assert_eq!(
            text(client, "#no-match").await?,
            "No webhook matches these filters."
        );
        axe.check(client, "a search that finds nothing").await?;
        click(client, "#clear-filters").await?;
        assert_eq!(text(client, "#total-count").await?, "120 webhooks");

        // In Italian; the language switch keeps the filters and the page.
        client
            .goto(&format!("{list}?q=Slack&state=off&lang=it"))
            .await?;
        assert_eq!(
            text(client, "#total-count").await?,
            format!("{slack} webhook")
        );
        assert_eq!(text(client, "#filter").await?, "Filtra");
        let label = text(client, "label[for=search]").await?;
        assert_eq!(label, "Il nome o l'URL contiene");
        screenshot(client, "list_search_it.png").await?;
        axe.check(client, "an Italian search").await?;
        client.goto(&format!("{list}?page=2&lang=it")).await?;
        assert_eq!(text(client, "#page-of").await?, "Pagina 2 di 3");
        assert_eq!(text(client, "#showing").await?, "· Visualizzati 51–100");
        assert_eq!(text(client, "#next").await?, "Successiva →");
        click(client, "#lang-switch").await?;
        let url = client.current_url().await?;
        assert!(url.as_str().ends_with("/webhooks?page=2"), "{url}");
        assert_eq!(text(client, "#page-of").await?, "Page 2 of 3");

        // 400 px: the filters and the pager fit.
        client.set_window_size(400, 900).await?;
        client.goto(&format!("{list}?q=slack&page=1")).await?;
        assert_fits(client, "the search at 400 px").await?;
        client.goto(&format!("{list}?page=2")).await?;
        let show = "document.getElementById('pager').scrollIntoView()";
        client.execute(show, vec![]).await?;
        assert_fits(client, "the pager at 400 px").await?;
        screenshot(client, "list_paged_400.png").await?;
        client.set_window_size(1400, 1000).await?;

        lost_update(client, &base, axe).await?;

        print_times(
            &addr,
            "120 webhooks, in the browser test",
            &[
                "/webhooks",
                "/webhooks?page=3",
                "/webhooks?q=slack",
                "/webhooks?event=sms_reply&state=off",
                "/webhooks/60",
            ],
            5,
        )
        .await?;
        drop(_app);
        let _ = std::fs::remove_dir_all(&data);
        Ok(())
    }

    /// The list at 10,000 webhooks with three deliveries each (a third app, its own data
    /// directory): paged to its last page, searched by name (paged too) and by URL, filtered
    /// by event and state, in both languages; axe-core on it. The app's own times are
    /// logged, not asserted.
    async fn paged_at_10000(client: &Client, axe: &Axe) -> Result<(), Failure> {
        const N: usize = 10_000;
        let data = fresh_dir("settings-10000-browser")?;
        let (app, base) = start_app_with(&data, &["--seed-webhooks", &N.to_string()])?;
        let addr = base.strip_prefix("http://").ok_or("base")?.to_owned();
        let list = format!("{base}/webhooks");

        client.goto(&list).await?;
        assert_eq!(text(client, "#total-count").await?, "10000 webhooks");
        assert_eq!(text(client, "#page-of").await?, "Page 1 of 200");
        let names = texts(client, "#webhooks tbody td.name").await?;
        assert_eq!(names.len(), 50);
        assert_eq!(names[0], seeded(0).0);
        axe.check(client, "the list at 10,000 webhooks").await?;
        screenshot(client, "list_10000.png").await?;
        click(client, "#next").await?;
        assert_eq!(text(client, "#showing").await?, "· Showing 51–100");
        client.goto(&format!("{list}?page=200")).await?;
        assert_eq!(text(client, "#page-of").await?, "Page 200 of 200");
        assert_eq!(text(client, "#showing").await?, "· Showing 9951–10000");
        let names = texts(client, "#webhooks tbody td.name").await?;
        assert_eq!(names.last(), Some(&seeded(N - 1).0));
        assert!(client.find(Locator::Css("#next")).await.is_err());
        client.goto(&format!("{list}?page=100000")).await?;
        assert_eq!(text(client, "#page-of").await?, "Page 200 of 200");

        // By name, from the box: 1,250 of them, 25 pages; the last page is the last ones.
        client.goto(&list).await?;
        fill(client, "#search", "ZAPIER").await?;
        click(client, "#filter").await?;
        let zapier = seeded_count(N, |i| i % 8 == 0);
        assert_eq!(
            text(client, "#total-count").await?,
            format!("{zapier} webhooks")
        );
        assert_eq!(text(client, "#page-of").await?, "Page 1 of 25");
        click(client, "#next").await?;
        let url = client.current_url().await?;
        assert!(url.as_str().ends_with("/webhooks?q=ZAPIER&page=2"), "{url}");
        let names = texts(client, "#webhooks tbody td.name").await?;
        assert_eq!(names.first(), Some(&seeded(400).0));
        client.goto(&format!("{list}?q=zapier&page=25")).await?;
        let names = texts(client, "#webhooks tbody td.name").await?;
        assert_eq!(names.len(), 50);
        assert_eq!(names.last(), Some(&seeded(9992).0));
        assert!(names.iter().all(|n| n.starts_with("Zapier #")), "{names:?}");
        screenshot(client, "list_10000_search.png").await?;
        axe.check(client, "a paged search at 10,000 webhooks")
            .await?;

        // By URL: one.
        fill(client, "#search", "crm-04242.example").await?;
        click(client, "#filter").await?;
        assert_eq!(text(client, "#total-count").await?, "1 webhook");
        assert_eq!(
            texts(client, "#webhooks tbody td.name").await?,
            [seeded(4241).0]
        );

        // Event and state, then the three at once in Italian.
        let kind = posthook::EventKind::ALL[7];
        let path = format!("{list}?event={}&state=off", kind.as_str());
        client.goto(&path).await?;
        let off_kind = seeded_count(N, |i| seeded(i).1 == kind && !seeded(i).2);
        assert_eq!(
            text(client, "#total-count").await?,
            format!("{off_kind} webhooks")
        );
        let states = texts(client, "#webhooks tbody td.state").await?;
        assert!(
            states.iter().all(|s| s == "deactivated by hand"),
            "{states:?}"
        );
        let events = texts(client, "#webhooks tbody td.events").await?;
        assert!(
            events.iter().all(|e| e.contains(kind.label())),
            "{events:?}"
        );
        let path = format!("{list}?q=slack&event={}&state=off&lang=it", kind.as_str());
        client.goto(&path).await?;
        let slack_kind = seeded_count(N, |i| i % 8 == 3 && seeded(i).1 == kind);
        assert_eq!(
            text(client, "#total-count").await?,
            format!("{slack_kind} webhook")
        );
        let states = texts(client, "#webhooks tbody td.state").await?;
        assert!(
            states.iter().all(|s| s == "disattivato manualmente"),
            "{states:?}"
        );
        assert_italian(client, "an Italian search at 10,000 webhooks").await?;
        axe.check(client, "an Italian search at 10,000 webhooks")
            .await?;
        client.goto(&format!("{list}?page=200&lang=it")).await?;
        assert_eq!(text(client, "#page-of").await?, "Pagina 200 di 200");
        assert_italian(client, "the Italian list at 10,000 webhooks").await?;

        print_times(
            &addr,
            "10,000 webhooks, 30,000 deliveries, in the browser test",
            &[
                "/webhooks",
                "/webhooks?page=200",
                "/webhooks?q=zapier",
                "/webhooks?q=zapier&page=25",
                "/webhooks?q=crm-04242.example",
                "/webhooks?event=sms_reply&state=off",
                "/webhooks?q=slack&event=subscribe&state=active&page=3&lang=it",
                "/webhooks/5000",
            ],
            5,
        )
        .await?;
        drop(app);
        let _ = std::fs::remove_dir_all(&data);
        Ok(())
    }

    /// Two people edit one webhook: the browser opens "Edit", another session saves a
    /// rename first; the browser's save is refused, both versions shown side by side, and
    /// it may save its own over the stored one knowingly or edit the stored one again.
    async fn lost_update(client: &Client, base: &str, axe: &Axe) -> Result<(), Failure> {
        let addr = base.strip_prefix("http://").ok_or("base")?;
        // Seeded webhook 1 is id 2: subscribe and ALL[1], every source, list 2.
        let (_, kind, _) = seeded(1);
        let edit = format!("{base}/webhooks/2/edit");
        let (cookie, token) = raw_session(addr).await?;
        let cookie = format!("Cookie: {cookie}");
        let own = format!("Origin: {base}");
        // The other session saves from the version it read.
        let other_saves = |new_name: &'static str| {
            let (cookie, token, own) = (cookie.clone(), token.clone(), own.clone());
            async move {
                let (status, page) = raw(addr, get(addr, "/webhooks/2/edit", &[&cookie])).await?;
                assert_eq!(status, 200);
                let version = page
                    .split("name=\"version\" id=\"version\" value=\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .ok_or("no version field")?
                    .to_owned();
                let mut fields = vec![
                    ("csrf", token.clone()),
                    ("version", version.clone()),
                    ("list", "2".to_owned()),
                    ("name", new_name.to_owned()),
                    ("url", "https://crm-00002.example/hooks".to_owned()),
                    ("events", "subscribe".to_owned()),
                    ("events", kind.as_str().to_owned()),
                    ("do", "save".to_owned()),
                ];
                for source in ["public", "admin", "api", "system"] {
                    fields.push(("sources", source.to_owned()));
                }
                let body = serde_urlencoded::to_string(&fields)?;
                let headers = [cookie.as_str(), own.as_str()];
                let (status, _) =
                    raw(addr, post(addr, "/webhooks/2/edit", &headers, &body)).await?;
                assert_eq!(status, 303, "the other session's save");
                Ok::<String, Failure>(version)
            }
        };

        client.goto(&edit).await?;
        let version = find(client, "#version").await?.prop("value").await?;
        assert_eq!(version.as_deref(), Some("1"));
        assert_eq!(other_saves("Renamed by the other session").await?, "1");
        fill(client, "#name", "Renamed in the browser").await?;
        click(client, "#submit").await?;
        let refused = text(client, "#conflict-title").await?;
        assert_eq!(
            refused,
            "Not saved: someone else saved this webhook while you were editing it."
        );
        let focused = client
            .execute("return document.activeElement.id", vec![])
            .await?;
        assert_eq!(focused, json!("conflict"));
        assert_eq!(
            text(client, "#yours-head").await?,
            "Yours, as typed (version 1)"
        );
        assert!(
            text(client, "#stored-head")
                .await?
                .starts_with("Stored now (version 2, saved "),
        );
        let row = "#compare tr[data-field=name]";
        assert_eq!(
            text(client, &format!("{row} td.yours")).await?,
            "Renamed in the browser"
        );
        assert_eq!(
            text(client, &format!("{row} td.stored")).await?,
            "Renamed by the other session"
        );
        assert_eq!(
            find(client, row).await?.attr("class").await?.as_deref(),
            Some("differs")
        );
        for same in ["url", "list", "events", "sources"] {
            let class = find(client, &format!("#compare tr[data-field={same}]"))
                .await?
                .attr("class")
                .await?;
            assert_eq!(class, None, "{same} is the same in both");
        }
        let kept = find(client, "#name").await?.prop("value").await?;
        assert_eq!(
            kept.as_deref(),
            Some("Renamed in the browser"),
            "what was typed"
        );
        let version = find(client, "#version").await?.prop("value").await?;
        assert_eq!(
            version.as_deref(),
            Some("2"),
            "the form now names the stored version"
        );
        assert_eq!(text(client, "#submit").await?, "Save mine over it");
        screenshot(client, "conflict.png").await?;
        axe.check(client, "a refused save over a newer version")
            .await?;
        client.set_window_size(400, 900).await?;
        assert_fits(client, "the two versions at 400 px").await?;
        screenshot(client, "conflict_400.png").await?;
        client.set_window_size(1400, 1000).await?;
        let detail = format!("{base}/webhooks/2");
        client.goto(&detail).await?;
        assert_eq!(
            text(client, "#summary h2").await?,
            "Renamed by the other session",
            "nothing of the refused save was kept"
        );
        client.back().await?;
        find(client, "#conflict").await?;

        // Saved knowingly over the stored version: it is the browser's now.
        click(client, "#submit").await?;
        client.goto(&detail).await?;
        assert_eq!(text(client, "#summary h2").await?, "Renamed in the browser");

        // Again, in Italian; this time "edit the stored version".
        client.goto(&format!("{edit}?lang=it")).await?;
        assert_eq!(other_saves("Rinominato dall'altra sessione").await?, "3");
        fill(client, "#name", "Rinominato nel browser").await?;
        click(client, "#submit").await?;
        assert_eq!(
            text(client, "#conflict-title").await?,
            "Non salvato: qualcun altro ha salvato questo webhook mentre lo modificavi."
        );
        assert_eq!(
            text(client, "#yours-head").await?,
            "La tua, come l'hai scritta (versione 3)"
        );
        assert!(
            text(client, "#stored-head")
                .await?
                .starts_with("Salvata ora (versione 4, salvata il "),
        );
        assert_eq!(text(client, "#submit").await?, "Salva la mia al suo posto");
        screenshot(client, "conflict_it.png").await?;
        axe.check(client, "an Italian refused save").await?;
        click(client, "#reedit").await?;
        assert_eq!(text(client, "section h2").await?, "Modifica webhook");
        let name_now = find(client, "#name").await?.prop("value").await?;
        assert_eq!(name_now.as_deref(), Some("Rinominato dall'altra sessione"));
        let version = find(client, "#version").await?.prop("value").await?;
        assert_eq!(version.as_deref(), Some("4"));
        assert!(client.find(Locator::Css("#conflict")).await.is_err());
        Ok(())
    }

    /// The webhooks of an older settings_page (a table of its own in the same file, with
    /// the ids of deleted ones) are moved into the webhook store on start, with their ids;
    /// a deleted one stays deleted, and no id is given twice.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn settings_page_moves_older_webhooks() -> Result<(), Failure> {
        use posthook::{EventKind, Source, Webhook, WebhookId};
        let data = fresh_dir("settings-older")?;
        {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(data.join("deliveries.db"))
                .create_if_missing(true);
            let pool = sqlx::SqlitePool::connect_with(options).await?;
            sqlx::query(
                "CREATE TABLE settings_webhooks (id INTEGER PRIMARY KEY, webhook TEXT NOT NULL)",
            )
            .execute(&pool)
            .await?;
            sqlx::query("CREATE TABLE settings_deleted_webhooks (id INTEGER PRIMARY KEY)")
                .execute(&pool)
                .await?;
            for (id, name) in [(1, "Kept one"), (3, "Kept three")] {
                let mut hook = Webhook::builder(name, "https://example.com/hook")
                    .events([EventKind::Subscribe])
                    .sources([Source::Contact])
                    .build()?;
                hook.set_id(WebhookId::new(id));
                sqlx::query("INSERT INTO settings_webhooks (id, webhook) VALUES (?1, ?2)")
                    .bind(i64::try_from(id)?)
                    .bind(serde_json::to_string(&hook)?)
                    .execute(&pool)
                    .await?;
            }
            for id in [2_i64, 5] {
                sqlx::query("INSERT INTO settings_deleted_webhooks (id) VALUES (?1)")
                    .bind(id)
                    .execute(&pool)
                    .await?;
            }
            pool.close().await;
        }
        for start in 0..2 {
            let (app, base) = start_app(&data)?;
            let addr = base.strip_prefix("http://").ok_or("base")?;
            for (id, name) in [(1, "Kept one"), (3, "Kept three")] {
                let (status, page) = raw(addr, get(addr, &format!("/webhooks/{id}"), &[])).await?;
                assert_eq!(status, 200, "start {start}: webhook {id}");
                assert!(page.contains(name), "start {start}: {page}");
            }
            for id in [2, 4, 5] {
                let (status, page) = raw(addr, get(addr, &format!("/webhooks/{id}"), &[])).await?;
                assert_eq!(status, 404, "start {start}: webhook {id}");
                assert!(
                    page.contains("This webhook was deleted."),
                    "webhook {id}: {page}"
                );
            }
            if start == 0 {
                // A new webhook: an id above every older one.
                let (cookie, token) = raw_session(addr).await?;
                let cookie = format!("Cookie: {cookie}");
                let own = format!("Origin: {base}");
                let body = format!(
                    "csrf={token}&list=0&name=New&url=https%3A%2F%2Fexample.com%2Fnew\
                     &events=open&sources=api&do=save"
                );
                let headers = [cookie.as_str(), own.as_str()];
                let (status, _) = raw(addr, post(addr, "/webhooks/new", &headers, &body)).await?;
                assert_eq!(status, 303);
            }
            let (_, list) = raw(addr, get(addr, "/webhooks", &[])).await?;
            assert!(list.contains("data-id=\"6\""), "the new one is 6: {list}");
            assert!(list.contains("3 webhooks"), "{list}");
            drop(app);
        }
        let _ = std::fs::remove_dir_all(&data);
        Ok(())
    }

    /// `--host NAME` (a name in front of the app, a proxy or /etc/hosts): started with
    /// `--host example.test`, the app answers `Host: example.test:PORT` (and `example.test`)
    /// and takes a POST whose `Origin` is that name; it refuses `Host: other.test:PORT` with
    /// 421, a request with no `Host` with 400, each in both languages (the one `?lang=` asks
    /// for first), and a POST from `http://other.test:PORT` with 403. Raw HTTP, no browser.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn settings_page_host_names() -> Result<(), Failure> {
        let data = fresh_dir("settings-host")?;
        let (app, base) = start_app_with(&data, &["--host", "example.test"])?;
        let addr = base.strip_prefix("http://").ok_or("base")?.to_owned();
        let port = addr.rsplit(':').next().ok_or("port")?;
        let named = format!("example.test:{port}");
        for host in [named.as_str(), "example.test", "EXAMPLE.test", &addr] {
            let (status, page) = raw(&addr, get(host, "/webhooks", &[])).await?;
            assert_eq!(status, 200, "Host: {host}");
            assert!(page.contains("Manage webhooks"), "Host: {host}: {page}");
        }
        for host in [
            format!("other.test:{port}"),
            "other.test".to_owned(),
            format!("example.test.other.test:{port}"),
            format!("example.test:{}", u32::from(port.parse::<u16>()?) + 1),
        ] {
            for path in ["/webhooks", "/webhooks/new", "/static/app.css"] {
                let (status, head, body) = raw_full(&addr, get(&host, path, &[])).await?;
                assert_eq!(status, 421, "Host: {host} {path}: {body}");
                assert!(head.contains("content-type: text/plain"), "{head}");
                assert!(
                    body.starts_with("421 Misdirected Request: this settings_page answers for"),
                    "{body}"
                );
                assert!(body.contains("421 Richiesta mal indirizzata"), "{body}");
                assert!(!body.contains('<'), "{body}");
            }
            let (status, body) = raw(&addr, post(&host, "/_receiver", &[], "")).await?;
            assert_eq!(status, 421, "the receiver too: {body}");
        }
        // Italian first when the page asks for it.
        let other = format!("other.test:{port}");
        let (status, body) = raw(&addr, get(&other, "/webhooks?lang=it", &[])).await?;
        assert_eq!(status, 421);
        assert!(
            body.starts_with(
                "421 Richiesta mal indirizzata: questa settings_page risponde solo per"
            ),
            "{body}"
        );
        assert!(body.contains("421 Misdirected Request"), "{body}");
        // No Host at all (HTTP/1.0 may leave it out): 400, in both languages.
        let (status, body) = raw(
            &addr,
            "GET /webhooks?lang=it HTTP/1.0\r\nConnection: close\r\n\r\n".to_owned(),
        )
        .await?;
        assert_eq!(status, 400, "{body}");
        assert!(body.starts_with("400 Richiesta non valida"), "{body}");
        assert!(body.contains("400 Bad Request"), "{body}");

        // A POST through the name: its own Origin is this page; another name's is not.
        let (cookie, token) = raw_session(&addr).await?;
        let cookie = format!("Cookie: {cookie}");
        let form = |name: &str| {
            format!(
                "csrf={token}&list=0&name={name}&url=https%3A%2F%2Fexample.com%2Fhook\
                 &events=open&sources=api&do=save"
            )
        };
        let own = format!("Origin: http://{named}");
        let foreign = format!("Origin: http://other.test:{port}");
        let headers = [cookie.as_str(), foreign.as_str()];
        let (status, body) = raw(
            &addr,
            post(&named, "/webhooks/new", &headers, &form("Foreign")),
        )
        .await?;
        assert_eq!(status, 403, "{body}");
        assert!(body.starts_with("403 Forbidden"), "{body}");
        assert!(body.contains("403 Accesso negato"), "{body}");
        let headers = [cookie.as_str(), own.as_str(), "Sec-Fetch-Site: same-origin"];
        let (status, body) = raw(
            &addr,
            post(&named, "/webhooks/new", &headers, &form("Named")),
        )
        .await?;
        assert_eq!(status, 303, "{body}");
        let (_, list) = raw(&addr, get(&named, "/webhooks", &[])).await?;
        assert!(list.contains(">Named<"), "{list}");
        assert!(!list.contains("Foreign"), "{list}");
        drop(app);
        let _ = std::fs::remove_dir_all(&data);
        Ok(())
    }

    /// The list, a search, a filtered page and a detail page at 10,000 webhooks with three
    /// deliveries each: prints the app's own time for each (BENCHMARKS.md). No assertion
    /// on time. Ignored by default (seeding takes a while):
    /// `cargo test --all-features --test settings_page -- --ignored --nocapture`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a measurement: seeds 10,000 webhooks"]
    async fn settings_page_at_10000_webhooks() -> Result<(), Failure> {
        let data = fresh_dir("settings-10000")?;
        let (app, base) = start_app_with(&data, &["--seed-webhooks", "10000"])?;
        let addr = base.strip_prefix("http://").ok_or("base")?;
        print_times(
            addr,
            "10,000 webhooks, 30,000 deliveries",
            &[
                "/webhooks",
                "/webhooks?page=200",
                "/webhooks?q=zapier",
                "/webhooks?q=zapier&page=25",
                "/webhooks?q=crm-04242.example",
                "/webhooks?event=sms_reply",
                "/webhooks?event=sms_reply&state=off",
                "/webhooks?q=slack&event=subscribe&state=active&page=3&lang=it",
                "/webhooks/5000",
                "/webhooks/5000/edit",
                "/webhooks/5000/delete",
                "/webhooks/99999",
            ],
            20,
        )
        .await?;
        drop(app);
        let _ = std::fs::remove_dir_all(&data);
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn settings_page_in_chromium() -> Result<(), Failure> {
        let required = std::env::var_os("POSTHOOK_REQUIRE_BROWSER").is_some_and(|v| v == "1");
        let chromium = tool("POSTHOOK_CHROMIUM", "/usr/bin/chromium");
        let driver = tool("POSTHOOK_CHROMEDRIVER", "/usr/bin/chromedriver");
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            let why = "no /usr/bin/chromium or /usr/bin/chromedriver (apt-get install chromium chromium-driver)";
            assert!(!required, "POSTHOOK_REQUIRE_BROWSER=1 but {why}");
            // Straight to stderr: the test harness captures println!, not this.
            let _ = writeln!(
                std::io::stderr(),
                "settings_page browser test skipped: {why}"
            );
            return Ok(());
        };
        let axe = Axe {
            source: match axe_source() {
                Ok(source) => Some(source),
                Err(error) => {
                    assert!(
                        !required,
                        "POSTHOOK_REQUIRE_BROWSER=1 but no axe-core: {error}"
                    );
                    let _ = writeln!(
                        std::io::stderr(),
                        "settings_page browser test: no axe-core ({error}), no accessibility checks"
                    );
                    None
                }
            },
            checked: AtomicUsize::new(0),
        };
        let data = fresh_dir("settings-data")?;
        let profile = fresh_dir("settings-chromium")?;
        let (_app, base) = start_app(&data)?;
        cli(&data)?;
        let attacker = start_attacker(base.clone()).await?;
        let (_driver, driver_url) = start_chromedriver(&driver)?;
        let client = open_browser(&driver_url, &chromium, &profile).await?;
        let mut result = walk_through(&client, &base, &axe).await;
        if result.is_ok() {
            result = operator_controls(&client, &base, &axe).await;
        }
        if result.is_ok() {
            result = complete_and_italian(&client, &base, attacker, &axe).await;
        }
        if result.is_ok() {
            result = two_users(&client, &base).await;
        }
        if result.is_ok() {
            result = long_and_narrow(&client, &base, &axe).await;
        }
        if result.is_ok() {
            result = other_origins(&client, &base, attacker).await;
        }
        if result.is_ok() {
            result = paged_and_searched(&client, &axe).await;
        }
        if result.is_ok() {
            result = paged_at_10000(&client, &axe).await;
        }
        if result.is_ok() && axe.source.is_some() {
            let checked = axe.checked.load(Ordering::Relaxed);
            let _ = writeln!(
                std::io::stderr(),
                "axe-core: {checked} page states, no critical or serious violation"
            );
        }
        if result.is_err() {
            let _ = screenshot(&client, "failure.png").await;
        }
        client.close().await?;
        let _ = std::fs::remove_dir_all(&profile);
        let _ = std::fs::remove_dir_all(&data);
        result
    }
}

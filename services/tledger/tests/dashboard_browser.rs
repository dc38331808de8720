//! The dashboard in a real browser: headless Chromium driven through
//! chromedriver's W3C WebDriver HTTP API, against `tledger demo` (the real
//! binary, its own database and stream prefix). It signs in with the form,
//! switches to Vietnamese, picks Đại Lộc in the unit tree, reads 62,22% and
//! 9.384, opens a person's timeline, downloads a CSV, and keeps screenshots
//! under `<target>/browser-artifacts/`. It also checks that the first page
//! stays under 200 KB.
//!
//! Chromium and chromedriver come from the Debian packages `chromium` and
//! `chromium-driver` (`ops/test` installs them when missing). Without them
//! this test fails: a skipped browser test would look like a passed one.

use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};
use tledger_tests::{free_port, unique_prefix, TestDatabase};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// The budget for the first page on a slow connection.
const FIRST_PAGE_LIMIT: usize = 200 * 1024;

/// A child process killed when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// chromedriver in a process group of its own, with the Chromium it starts
/// (which stays in that group): the whole group is killed when the test
/// ends, also when it panics before the session is closed (killing
/// chromedriver alone would leave Chromium running).
struct DriverGroup(Child);

impl Drop for DriverGroup {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    let dir = target.join("browser-artifacts");
    std::fs::create_dir_all(&dir).expect("the artifacts directory");
    dir
}

/// `tledger demo` serving on a free port once the demo is seeded.
fn start_demo(db: &TestDatabase, admin: &str) -> (Running, String) {
    let port = free_port();
    let prefix = unique_prefix();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tledger"))
        .args(["demo", "--format", "json"])
        .env("TLEDGER_DATABASE_URL", db.url())
        .env("TLEDGER_PREFIX", &prefix)
        .env("TLEDGER_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("TLEDGER_ADMIN_TOKEN", admin)
        .env(
            "TLEDGER_SIGNING_KEY",
            std::env::temp_dir().join(format!("{prefix}-signing.key")),
        )
        .env("TLEDGER_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the tledger binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let running = Running(child);
    // The demo prints its reports as pretty JSON once seeded and settled,
    // then serves: the JSON's closing brace says the figures are in.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        match rx.recv_timeout(Duration::from_secs(1200)) {
            Ok(line) if line == "}" => break,
            Ok(_) => {}
            Err(e) => panic!("tledger demo printed no reports: {e}"),
        }
    }
    (running, format!("http://127.0.0.1:{port}"))
}

/// A WebDriver session on a fresh Chromium profile.
struct Browser {
    http: reqwest::Client,
    session: String,
    _driver: DriverGroup,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start(downloads: &Path) -> Self {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: apt-get install -y chromium chromium-driver (ops/test does)"
            );
        }
        let port = free_port();
        let driver = DriverGroup(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("chromedriver starts"),
        );
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let mut ready = false;
        for _ in 0..200 {
            if let Ok(answer) = http.get(format!("{base}/status")).send().await {
                if let Ok(status) = answer.json::<Value>().await {
                    if status["value"]["ready"] == true {
                        ready = true;
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(ready, "chromedriver did not become ready on {base}");
        let profile = tempfile::tempdir().expect("a profile directory");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,1800",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": {
                    "download.default_directory": downloads.display().to_string(),
                    "download.prompt_for_download": false,
                },
            },
        }}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session JSON");
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        let browser = Self {
            http,
            session: format!("{base}/session/{session}"),
            _driver: driver,
            _profile: profile,
        };
        // Headless Chromium saves downloads only where it is told to.
        browser
            .post(
                "/chromium/send_command",
                json!({"cmd": "Page.setDownloadBehavior",
                       "params": {"behavior": "allow", "downloadPath": downloads.display().to_string()}}),
            )
            .await;
        browser
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let answer: Value = self
            .http
            .post(format!("{}{path}", self.session))
            .json(&body)
            .send()
            .await
            .expect("WebDriver")
            .json()
            .await
            .expect("WebDriver JSON");
        assert!(
            answer["value"]["error"].is_null(),
            "WebDriver {path}: {answer}"
        );
        answer["value"].clone()
    }

    async fn get(&self, path: &str) -> Value {
        let answer: Value = self
            .http
            .get(format!("{}{path}", self.session))
            .send()
            .await
            .expect("WebDriver")
            .json()
            .await
            .expect("WebDriver JSON");
        assert!(
            answer["value"]["error"].is_null(),
            "WebDriver {path}: {answer}"
        );
        answer["value"].clone()
    }

    async fn open(&self, url: &str) {
        self.post("/url", json!({"url": url})).await;
    }

    async fn url(&self) -> String {
        self.get("/url")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn source(&self) -> String {
        self.get("/source")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn find(&self, css: &str) -> String {
        let found = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_owned()
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.post(&format!("/element/{element}/click"), json!({}))
            .await;
    }

    /// Clicks something that leads to another page and waits until the
    /// browser is there: a form's submission may still be under way when
    /// the click's own answer comes back, so reading the address at once
    /// can give the page the click left.
    async fn click_to_another_page(&self, css: &str) -> String {
        let before = self.url().await;
        self.click(css).await;
        for _ in 0..200 {
            let now = self.url().await;
            let ready = self
                .post(
                    "/execute/sync",
                    json!({"script": "return document.readyState", "args": []}),
                )
                .await;
            if now != before && ready == "complete" {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("clicking {css} left the browser at {before}");
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.post(&format!("/element/{element}/value"), json!({"text": text}))
            .await;
    }

    async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.get(&format!("/element/{element}/text"))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn attribute(&self, css: &str, name: &str) -> String {
        let element = self.find(css).await;
        self.get(&format!("/element/{element}/attribute/{name}"))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn screenshot(&self, name: &str) {
        let png = self.get("/screenshot").await;
        let bytes = base64_decode(png.as_str().expect("base64 PNG"));
        assert_eq!(&bytes[1..4], b"PNG");
        std::fs::write(artifacts().join(name), bytes).expect("screenshot saved");
    }

    async fn close(self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

/// Standard base64 (screenshots come as base64 PNG).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0);
    for c in text.bytes().filter_map(value) {
        buffer = (buffer << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inspector_reads_the_demo_district_in_vietnamese_in_a_real_browser() {
    let db = TestDatabase::create().await;
    let admin = format!("tl_{}", unique_prefix().replace('-', "_"));
    let (_service, base) = start_demo(&db, &admin);
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{base}/v1/commands/register_unit"))
        .send()
        .await
        .expect("service up");
    assert_eq!(created.status().as_u16(), 401, "the service answers");

    // The first page a colleague opens from a link: under the budget.
    let first = http
        .get(format!("{base}/?unit=dai-loc&as_of=2011-12-31&lang=vi"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("first page");
    assert_eq!(first.status().as_u16(), 200);
    let size = first.bytes().await.expect("body").len();
    println!("first page: {size} bytes");
    assert!(size < FIRST_PAGE_LIMIT, "the first page is {size} bytes");

    let downloads = tempfile::tempdir().expect("a download directory");
    let browser = Browser::start(downloads.path()).await;

    browser.open(&format!("{base}/?as_of=2011-12-31")).await;
    assert!(browser.url().await.contains("/sign-in?"), "sent to sign in");
    browser.screenshot("1-sign-in.png").await;
    browser.type_into("#token", &admin).await;
    let signed_in = browser.click_to_another_page("#sign-in").await;
    assert_eq!(signed_in, format!("{base}/?as_of=2011-12-31"));

    browser.click_to_another_page("#switch-language").await;
    assert!(browser.source().await.contains("<html lang=\"vi\">"));
    browser
        .click_to_another_page("a[data-unit='quang-nam']")
        .await;
    let dai_loc = browser
        .click_to_another_page("a[data-unit='dai-loc']")
        .await;
    assert!(dai_loc.contains("unit=dai-loc"), "{dai_loc}");
    assert!(dai_loc.contains("lang=vi"), "{dai_loc}");
    assert_eq!(browser.text("#meets-all-rate").await, "62,22%");
    assert_eq!(browser.text("#volume-total").await, "9.384");
    let page = browser.source().await;
    assert!(page.contains("247 / 397"));
    assert!(page.contains("Đạt chuẩn tính đến 31/12/2011"));
    browser.screenshot("2-dai-loc-vi.png").await;

    // The standards table as CSV: the browser saves it, and the same link
    // with the token gives the same figures.
    browser.click("#standards-csv").await;
    let saved = downloads.path().join("standards-dai-loc-2011-12-31.csv");
    let mut csv = None;
    for _ in 0..300 {
        if let Ok(text) = std::fs::read_to_string(&saved) {
            if !text.is_empty() {
                csv = Some(text);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let csv = csv.unwrap_or_else(|| panic!("Chromium saved no {}", saved.display()));
    assert!(
        csv.contains("\nmeets_all_standards,247,397,0.6222\n"),
        "{csv}"
    );
    let href = browser.attribute("#standards-csv", "href").await;
    let fetched = http
        .get(format!("{base}{href}"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("CSV")
        .text()
        .await
        .expect("CSV text");
    assert_eq!(fetched, csv);
    std::fs::write(artifacts().join("standards-dai-loc-2011-12-31.csv"), &csv).expect("saved");

    let person = browser.click_to_another_page("a.person").await;
    assert!(person.contains("/people/"), "{person}");
    let timeline = browser.source().await;
    assert!(timeline.contains("Quá trình của"));
    assert!(
        timeline.contains("bởi demo qua /commands/demo"),
        "who recorded each fact"
    );
    browser.screenshot("3-person-timeline.png").await;
    browser.close().await;

    // The first view started a full verification in the background; the
    // page reports its result once it is in.
    let mut verification = String::new();
    for _ in 0..600 {
        verification = http
            .get(format!("{base}/?unit=dai-loc&as_of=2011-12-31"))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("HTML");
        if !verification.contains("id=\"verification\" class=\"muted\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        verification.contains("<p id=\"verification\" class=\"ok\">Verification passed at "),
        "{verification}"
    );
}

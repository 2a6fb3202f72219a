//! Headless Chromium for the dashboard's browser tests: chromedriver started on a free
//! port (killed on drop) and a small W3C WebDriver client over awc — sessions,
//! navigation, finding and clicking elements, typing, running a script, waiting, and
//! screenshots saved as test artifacts.
//!
//! (fantoccini 0.21 without its TLS features offers no way to build a client without
//! naming hyper-util's `HttpConnector`, which is not a dependency of this package; the
//! WebDriver protocol over plain HTTP is small enough to speak directly.)
//!
//! The tests FAIL, never skip, when Chromium or chromedriver is missing: `scripts/test`
//! installs them (`apt-get install chromium chromium-driver`).
//!
//! Screenshots go to `$ARO_TEST_ARTIFACTS` when set, else to
//! `<repo>/test-artifacts/screenshots/`, named `<test>-<step>.png`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The W3C name of an element reference in answers.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where screenshots are kept.
pub fn artifacts_dir() -> PathBuf {
    match std::env::var_os("ARO_TEST_ARTIFACTS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("test-artifacts/screenshots"),
    }
}

/// A running chromedriver; killed when dropped.
pub struct Chromedriver {
    child: Child,
    pub url: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Chromedriver {
    /// Starts chromedriver on a free port and waits until it is ready. Panics (the test
    /// fails) when Chromium or chromedriver is not installed.
    pub async fn start() -> Chromedriver {
        for (binary, package) in [(CHROMEDRIVER, "chromium-driver"), (CHROMIUM, "chromium")] {
            assert!(
                Path::new(binary).exists(),
                "{binary} is required by the dashboard's browser tests and is missing: \
                 install it with `apt-get install {package}` (scripts/test does)"
            );
        }
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--log-level=WARNING")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
        let driver = Chromedriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = client()
                .get(format!("{}/status", driver.url))
                .send()
                .await
                .ok();
            if let Some(mut response) = ready {
                if let Ok(status) = response.json::<Value>().await {
                    if status["value"]["ready"] == json!(true) {
                        return driver;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready on port {port}"
            );
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish()
}

/// An element on the page.
#[derive(Debug, Clone)]
pub struct Element(String);

/// One browser session.
pub struct Browser {
    session: String,
    base: String,
    test: String,
}

impl Browser {
    /// Opens headless Chromium (1280×900) for the test named `test`.
    pub async fn open(driver: &Chromedriver, test: &str) -> Browser {
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900"]
            }
        }}});
        let mut response = client()
            .post(format!("{}/session", driver.url))
            .send_json(&capabilities)
            .await
            .expect("new session request");
        let answer: Value = response
            .json()
            .limit(1 << 20)
            .await
            .expect("session answer");
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver refused a session: {answer}"))
            .to_string();
        Browser {
            base: format!("{}/session/{session}", driver.url),
            session,
            test: test.to_string(),
        }
    }

    /// Sends one WebDriver command; its `value`, or the WebDriver error.
    async fn try_cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Value> {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => client().get(url),
            "DELETE" => client().delete(url),
            _ => client().post(url),
        };
        let mut response = match body {
            Some(body) => request.send_json(&body).await,
            None if method == "POST" => request.send_json(&json!({})).await,
            None => request.send().await,
        }
        .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let ok = response.status().is_success();
        let answer: Value = response
            .json()
            .limit(64 << 20)
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: unreadable answer: {e}"));
        if ok {
            Ok(answer["value"].clone())
        } else {
            Err(answer["value"].clone())
        }
    }

    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        match self.try_cmd(method, path, body).await {
            Ok(value) => value,
            Err(error) => panic!("WebDriver {method} {path} failed: {error}"),
        }
    }

    pub async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({"url": url}))).await;
    }

    pub async fn current_url(&self) -> String {
        self.cmd("GET", "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    fn element(value: &Value) -> Element {
        Element(
            value[ELEMENT_KEY]
                .as_str()
                .unwrap_or_else(|| panic!("not an element: {value}"))
                .to_string(),
        )
    }

    /// The first element matching `css`, if there is one now.
    pub async fn try_find(&self, css: &str) -> Option<Element> {
        let body = json!({"using": "css selector", "value": css});
        match self.try_cmd("POST", "/element", Some(body)).await {
            Ok(value) => Some(Self::element(&value)),
            Err(error) if error["error"] == json!("no such element") => None,
            Err(error) => panic!("finding {css}: {error}"),
        }
    }

    pub async fn find(&self, css: &str) -> Element {
        match self.try_find(css).await {
            Some(element) => element,
            None => panic!("no element matches {css} on {}", self.current_url().await),
        }
    }

    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let body = json!({"using": "css selector", "value": css});
        self.cmd("POST", "/elements", Some(body))
            .await
            .as_array()
            .map(|items| items.iter().map(Self::element).collect())
            .unwrap_or_default()
    }

    /// Waits up to `timeout` for an element matching `css`.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Element {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(element) = self.try_find(css).await {
                return element;
            }
            assert!(
                Instant::now() < deadline,
                "no element matched {css} within {timeout:?} on {}",
                self.current_url().await
            );
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits up to `timeout` until `script` (a function body) returns true.
    pub async fn wait_until(&self, what: &str, script: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.execute(script, json!([])).await == json!(true) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn click(&self, element: &Element) {
        self.cmd("POST", &format!("/element/{}/click", element.0), None)
            .await;
    }

    pub async fn type_into(&self, element: &Element, text: &str) {
        self.cmd("POST", &format!("/element/{}/clear", element.0), None)
            .await;
        self.cmd(
            "POST",
            &format!("/element/{}/value", element.0),
            Some(json!({"text": text})),
        )
        .await;
    }

    pub async fn text(&self, element: &Element) -> String {
        self.cmd("GET", &format!("/element/{}/text", element.0), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Picks the `<option>` with `value` in the `<select>` matching `css`.
    pub async fn select(&self, css: &str, value: &str) {
        let option = self.find(&format!("{css} option[value=\"{value}\"]")).await;
        self.click(&option).await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`): its return value.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    pub async fn source(&self) -> String {
        self.cmd("GET", "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Saves a PNG of the page as `<artifacts>/<test>-<step>.png`; its path.
    pub async fn screenshot(&self, step: &str) -> PathBuf {
        let encoded = self.cmd("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .expect("screenshot is base64");
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
        let dir = artifacts_dir();
        std::fs::create_dir_all(&dir).expect("artifacts directory");
        let path = dir.join(format!("{}-{step}.png", self.test));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Ends the session (the browser closes).
    pub async fn close(self) {
        let _ = self.try_cmd("DELETE", "", None).await;
        let _ = self.session;
    }
}

//! The dashboard in a real browser: headless Chromium through chromedriver, on the real
//! daemon (SQLite) on a random port. A staff member signs in through the form, resolves
//! an escalation, applies an override on an appointment's page and replays a dead
//! letter; the today list and the escalation inbox update live, without a reload, when
//! a signed booking arrives or an escalation is raised; the layout holds on a phone.
//! Every step leaves a screenshot (see `browser::webdriver::artifacts_dir`).
//!
//! These tests fail — they never skip — when Chromium or chromedriver is missing.

mod browser;
mod common;

use std::time::Duration;

use aro::auth::Role;
use browser::fixtures::Dash;
use browser::webdriver::{Browser, Chromedriver};
use common::Kind;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(15);
/// The business day the tests look at (New York), and a start on it.
const DAY: &str = "2031-03-20";

async fn sign_in(browser: &Browser, dash: &Dash, username: &str) {
    browser.goto(&dash.url("/dashboard/today")).await;
    // No session: the dashboard sends the browser to its login page.
    browser.wait_for("form input[name=username]", WAIT).await;
    assert!(
        browser.current_url().await.contains("/dashboard/login"),
        "redirected to the login page"
    );
    browser.screenshot("01-login").await;
    let user = browser.find("#username").await;
    browser.type_into(&user, username).await;
    let password = browser.find("#password").await;
    browser
        .type_into(&password, browser::fixtures::PASSWORD)
        .await;
    let submit = browser.find("form button[type=submit]").await;
    browser.click(&submit).await;
    browser.wait_for("#live-region", WAIT).await;
    assert!(browser.current_url().await.contains("/dashboard/today"));
}

#[actix_rt::test]
async fn staff_resolves_overrides_and_replays_from_the_dashboard() {
    let driver = Chromedriver::start().await;
    let dash = Dash::start(Kind::Sqlite).await;
    dash.user("ann", Role::Staff).await;
    let first = dash
        .book(
            "ext-b1",
            "2031-03-20T15:00:00Z",
            "Jane Smith",
            "+15559876543",
        )
        .await;
    let second = dash
        .book(
            "ext-b2",
            "2031-03-20T16:00:00Z",
            "Omar Diaz",
            "+15559870001",
        )
        .await;
    dash.escalation("esc-b1", &first, "unclear_reply", "maybe? not sure");
    dash.dead_letter("dl-b1", &first, "messaging");

    let browser = Browser::open(&driver, "staff").await;
    sign_in(&browser, &dash, "ann").await;
    browser
        .goto(&dash.url(&format!("/dashboard/today?date={DAY}")))
        .await;
    browser
        .wait_for(&format!("tr[data-appointment-id=\"{first}\"]"), WAIT)
        .await;
    browser.screenshot("02-today").await;

    // Resolve the escalation: the appointment is confirmed through the engine.
    browser.goto(&dash.url("/dashboard/escalations")).await;
    let card = "li[data-escalation-id=\"esc-b1\"]";
    browser.wait_for(card, WAIT).await;
    let text = browser.text(&browser.find(card).await).await;
    assert!(text.contains("maybe? not sure"), "{text}");
    browser.screenshot("03-escalations").await;
    let note = browser.find(&format!("{card} input[name=note]")).await;
    browser.type_into(&note, "called her, she is coming").await;
    let confirm = browser
        .find(&format!("{card} button[value=marked_confirmed]"))
        .await;
    browser.click(&confirm).await;
    let notice = browser.wait_for(".flash.notice", WAIT).await;
    let notice = browser.text(&notice).await;
    assert!(notice.contains("Escalation resolved"), "{notice}");
    assert!(notice.contains("confirmed"), "{notice}");
    assert!(browser.try_find(card).await.is_none(), "no longer open");
    browser.screenshot("04-escalation-resolved").await;
    assert_eq!(
        dash.escalation_state("esc-b1"),
        ("resolved".to_string(), Some("marked_confirmed".to_string()))
    );
    assert_eq!(dash.status_of(&first).as_deref(), Some("confirmed"));

    // Override on the appointment's page: cancel the second appointment.
    browser
        .goto(&dash.url(&format!("/dashboard/appointments/{second}")))
        .await;
    browser.wait_for("#override form", WAIT).await;
    browser.screenshot("05-appointment").await;
    browser.select("#action", "cancel").await;
    let reason = browser.find("#reason").await;
    browser.type_into(&reason, "cancelled by phone").await;
    let apply = browser.find("#override button[type=submit]").await;
    browser.click(&apply).await;
    let notice = browser.wait_for(".flash.notice", WAIT).await;
    let notice = browser.text(&notice).await;
    assert!(notice.contains("booked → cancelled"), "{notice}");
    let status = browser.text(&browser.find("#status").await).await;
    assert_eq!(status, "cancelled");
    browser.screenshot("06-override-applied").await;
    assert_eq!(dash.status_of(&second).as_deref(), Some("cancelled"));

    // Replay the dead letter: its outbox row is queued again.
    browser.goto(&dash.url("/dashboard/dead-letters")).await;
    let row = "tr[data-dead-letter-id=\"dl-b1\"]";
    browser.wait_for(row, WAIT).await;
    let shown = browser.text(&browser.find(row).await).await;
    assert!(
        !shown.contains("+15559876543"),
        "payload numbers are masked: {shown}"
    );
    browser.screenshot("07-dead-letters").await;
    let replay = browser
        .find(&format!("{row} form[action$=\"/replay\"] button"))
        .await;
    browser.click(&replay).await;
    let notice = browser.wait_for(".flash.notice", WAIT).await;
    assert!(browser.text(&notice).await.contains("replayed"));
    assert!(browser.try_find(row).await.is_none(), "no longer open");
    browser.screenshot("08-dead-letter-replayed").await;
    // The message went back to the queue and the sandbox sent it this time.
    let mut state = dash.dead_letter_state("dl-b1");
    for _ in 0..100 {
        if state.1 == "done" {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        state = dash.dead_letter_state("dl-b1");
    }
    assert_eq!(state, ("replayed".to_string(), "done".to_string()));
    browser
        .goto(&dash.url("/dashboard/messages?sandbox=1"))
        .await;
    let log = browser
        .text(&browser.wait_for("#message-log", WAIT).await)
        .await;
    assert!(log.contains("We would love to see you again"), "{log}");
    assert!(
        !log.contains("+15559876543"),
        "the list masks numbers: {log}"
    );
    browser.screenshot("09-sandbox-outbox").await;

    // Every action is in the audit log as the Admin API writes it.
    let actions: Vec<String> = dash.audit().into_iter().map(|(a, _)| a).collect();
    for action in [
        "auth.login.succeeded",
        "escalation.resolved",
        "appointment.viewed",
        "appointment.override",
        "dead_letter.replayed",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} in {actions:?}"
        );
    }

    // Sign out: back to the login page, and the pages are closed again.
    let sign_out = browser
        .find("form[action=\"/dashboard/logout\"] button")
        .await;
    browser.click(&sign_out).await;
    browser.wait_for("form input[name=username]", WAIT).await;
    browser.goto(&dash.url("/dashboard/escalations")).await;
    browser.wait_for("form input[name=username]", WAIT).await;
    browser.close().await;
}

#[actix_rt::test]
async fn lists_update_live_without_a_reload() {
    let driver = Chromedriver::start().await;
    let dash = Dash::start(Kind::Sqlite).await;
    dash.user("ann", Role::Staff).await;
    let first = dash
        .book(
            "ext-l1",
            "2031-03-20T14:00:00Z",
            "Jane Smith",
            "+15559876543",
        )
        .await;

    let browser = Browser::open(&driver, "live").await;
    sign_in(&browser, &dash, "ann").await;
    browser
        .goto(&dash.url(&format!("/dashboard/today?date={DAY}")))
        .await;
    browser
        .wait_for(&format!("tr[data-appointment-id=\"{first}\"]"), WAIT)
        .await;
    browser
        .wait_until(
            "the live stream is connected",
            "return document.documentElement.getAttribute('data-live') === 'connected';",
            WAIT,
        )
        .await;
    // A marker only this page load has: a reload would lose it.
    browser
        .execute("window.aroMarker = 'kept'; return true;", json!([]))
        .await;
    browser.screenshot("01-today-before").await;

    // A booking arrives through the signed webhook while the page is open.
    let status = dash
        .post_booking(
            "ext-l2",
            "2031-03-20T19:30:00Z",
            "Live Arrival",
            "+15559870002",
        )
        .await;
    assert_eq!(status, 200);
    let second = actors::engine::appointment_id_for("default", "booking", "ext-l2");
    let row = browser
        .wait_for(&format!("tr[data-appointment-id=\"{second}\"]"), WAIT)
        .await;
    assert!(browser.text(&row).await.contains("Live Arrival"));
    assert_eq!(
        browser
            .execute("return window.aroMarker || null;", json!([]))
            .await,
        json!("kept"),
        "the page was not reloaded"
    );
    let updates = browser
        .execute(
            "return document.getElementById('live-region').getAttribute('data-live-updates');",
            json!([]),
        )
        .await;
    assert!(
        updates
            .as_str()
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
            >= 1,
        "the region was refreshed in place: {updates}"
    );
    browser.screenshot("02-today-after-booking").await;

    // The escalation inbox: a new escalation appears without a reload.
    browser.goto(&dash.url("/dashboard/escalations")).await;
    browser.wait_for("#live-region", WAIT).await;
    browser
        .wait_until(
            "the live stream is connected",
            "return document.documentElement.getAttribute('data-live') === 'connected';",
            WAIT,
        )
        .await;
    browser
        .execute("window.aroMarker = 'inbox'; return true;", json!([]))
        .await;
    dash.escalation("esc-l1", &first, "possible_cancellation", "I can't come");
    browser
        .wait_for("li[data-escalation-id=\"esc-l1\"]", WAIT)
        .await;
    assert_eq!(
        browser
            .execute("return window.aroMarker || null;", json!([]))
            .await,
        json!("inbox"),
        "the page was not reloaded"
    );
    browser.screenshot("03-escalation-arrived").await;
    browser.close().await;
}

#[actix_rt::test]
async fn the_layout_is_one_column_on_a_phone() {
    let driver = Chromedriver::start().await;
    let dash = Dash::start(Kind::Sqlite).await;
    dash.user("ann", Role::Staff).await;
    let id = dash
        .book(
            "ext-p1",
            "2031-03-20T15:00:00Z",
            "Jane Smith",
            "+15559876543",
        )
        .await;
    let browser = Browser::open(&driver, "phone").await;
    browser.set_window_size(390, 844).await;
    sign_in(&browser, &dash, "ann").await;
    browser
        .goto(&dash.url(&format!("/dashboard/today?date={DAY}")))
        .await;
    browser
        .wait_for(&format!("tr[data-appointment-id=\"{id}\"]"), WAIT)
        .await;
    let layout = browser
        .execute(
            "const head = document.querySelector('table.list thead');
             const row = document.querySelector('table.list tbody tr');
             return {
               viewport: document.querySelector('meta[name=viewport]').content,
               width: window.innerWidth,
               scrolls: document.documentElement.scrollWidth > window.innerWidth + 1,
               head: getComputedStyle(head).display,
               row: getComputedStyle(row).display,
             };",
            json!([]),
        )
        .await;
    assert!(
        layout["viewport"]
            .as_str()
            .is_some_and(|v| v.contains("width=device-width")),
        "{layout}"
    );
    assert_eq!(layout["head"], json!("none"), "{layout}");
    assert_eq!(layout["row"], json!("block"), "rows are cards: {layout}");
    assert_eq!(
        layout["scrolls"],
        json!(false),
        "no sideways scrolling: {layout}"
    );
    browser.screenshot("01-today-phone").await;
    browser
        .goto(&dash.url(&format!("/dashboard/appointments/{id}")))
        .await;
    browser.wait_for("#override form", WAIT).await;
    browser.screenshot("02-appointment-phone").await;
    browser.close().await;
}

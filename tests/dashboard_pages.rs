//! The dashboard over HTTP on the real daemon, both backends: every page redirects to
//! the login page without a session and answers HTML with the security headers and
//! `no-store` with one; names are escaped (a `<script>` name is text); lists mask phone
//! numbers and only staff see them in full on detail pages; views of one customer's
//! data are audited; a viewer sees no forms and is refused (403) when posting anyway; a
//! form post without the session's CSRF token is refused (403) and changes nothing; the
//! login form refuses a wrong password and signs in and out; and the form actions
//! (resolve, override, replay, archive, a simulated reply) do what the Admin API does.

mod browser;
mod common;

use aro::auth::Role;
use browser::fixtures::Dash;
use common::Kind;

const EVIL: &str = "<script>alert(\"x\")</script> Smith";
const PHONE: &str = "+15559876543";
const DAY: &str = "2031-03-20";

/// A world with one appointment for a customer with a dangerous name, an escalation, a
/// dead letter, and an owner, a staff member and a viewer.
async fn world(kind: Kind) -> (Dash, String) {
    let dash = Dash::start(kind).await;
    for (name, role) in [
        ("olga", Role::Owner),
        ("ann", Role::Staff),
        ("vic", Role::Viewer),
    ] {
        dash.user(name, role).await;
    }
    let id = dash
        .book("ext-h1", "2031-03-20T15:00:00Z", EVIL, PHONE)
        .await;
    dash.escalation(
        "esc-h1",
        &id,
        "possible_cancellation",
        "<b>cancel</b> please",
    );
    dash.dead_letter("dl-h1", &id, "payment");
    dash.dead_letter("dl-h2", &id, "payment");
    (dash, id)
}

fn pages(appointment: &str, customer: &str) -> Vec<String> {
    vec![
        format!("/dashboard/today?date={DAY}"),
        format!("/dashboard/today/list?date={DAY}"),
        "/dashboard/escalations".to_string(),
        "/dashboard/escalations/list?status=open".to_string(),
        format!("/dashboard/appointments/{appointment}"),
        "/dashboard/customers".to_string(),
        "/dashboard/customers?q=smith&risk=low".to_string(),
        format!("/dashboard/customers/{customer}"),
        "/dashboard/messages".to_string(),
        "/dashboard/messages?sandbox=1".to_string(),
        "/dashboard/dead-letters".to_string(),
        "/dashboard/supervisors".to_string(),
        "/dashboard/metrics".to_string(),
        format!("/dashboard/metrics?period=week&from=2031-03-01&to={DAY}"),
        "/dashboard/settings".to_string(),
    ]
}

async fn pages_need_a_session_and_escape_everything(kind: Kind) {
    let (dash, appointment) = world(kind).await;
    let customer = dash.customer_of(&appointment);

    for root in ["/", "/dashboard"] {
        let page = dash.get(root, None).await;
        assert_eq!(page.status, 303);
        assert_eq!(page.location.as_deref(), Some("/dashboard/today"));
    }
    for path in pages(&appointment, &customer)
        .iter()
        .map(String::as_str)
        .chain(["/dashboard/live"])
    {
        let page = dash.get(path, None).await;
        assert_eq!(page.status, 303, "{path} without a session: {}", page.body);
        let to = page.location.clone().unwrap_or_default();
        assert!(to.starts_with("/dashboard/login"), "{path} → {to}");
        assert!(!page.body.contains("Smith"), "{path} shows nothing");
    }
    // The page asked for is where the sign-in comes back to.
    let page = dash
        .get("/dashboard/escalations?status=resolved", None)
        .await;
    assert_eq!(
        page.location.as_deref(),
        Some("/dashboard/login?next=%2Fdashboard%2Fescalations%3Fstatus%3Dresolved")
    );
    // A forged or expired cookie is no session either.
    let page = dash
        .get("/dashboard/escalations", Some("forged-cookie"))
        .await;
    assert_eq!(page.status, 303);

    let staff = dash.login("ann").await;
    for path in pages(&appointment, &customer) {
        let page = dash.get(&path, Some(&staff)).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert!(
            page.content_type
                .as_deref()
                .is_some_and(|c| c.starts_with("text/html")),
            "{path}: {:?}",
            page.content_type
        );
        assert_eq!(page.cache_control.as_deref(), Some("no-store"), "{path}");
        assert!(
            page.csp
                .as_deref()
                .is_some_and(|c| c.contains("default-src 'self'")),
            "{path}"
        );
        assert!(
            !page.body.contains("<script>alert"),
            "{path} runs no injected script"
        );
        assert!(
            !page.body.contains("<b>cancel</b>"),
            "{path} escapes escalation text"
        );
        assert!(!page.body.contains(" style="), "{path} has no inline style");
        // The only script is the dashboard's own file.
        for (at, _) in page.body.match_indices("<script") {
            let tag = &page.body[at..page.body[at..]
                .find('>')
                .map_or(page.body.len(), |e| at + e)];
            assert!(
                tag.contains("src=\"/dashboard/assets/dashboard.js\""),
                "{path}: {tag}"
            );
        }
    }
    let today = dash
        .get(&format!("/dashboard/today?date={DAY}"), Some(&staff))
        .await;
    assert!(
        today
            .body
            .contains("&lt;script&gt;alert(\"x\")&lt;/script&gt; Smith")
            || today
                .body
                .contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; Smith"),
        "the name is shown as text: {}",
        today.body
    );
    assert!(today.body.contains("name=\"viewport\""));
    let escalations = dash.get("/dashboard/escalations", Some(&staff)).await;
    assert!(escalations
        .body
        .contains("&lt;b&gt;cancel&lt;/b&gt; please"));

    // Lists mask the phone number; the customer's page shows it to staff only.
    for path in [
        format!("/dashboard/today?date={DAY}"),
        "/dashboard/customers".to_string(),
        "/dashboard/messages".to_string(),
        "/dashboard/dead-letters".to_string(),
    ] {
        let page = dash.get(&path, Some(&staff)).await;
        assert!(!page.body.contains(PHONE), "{path} shows a full number");
    }
    let list = dash.get("/dashboard/customers", Some(&staff)).await;
    assert!(list.body.contains("*******6543"));
    let detail = dash
        .get(&format!("/dashboard/customers/{customer}"), Some(&staff))
        .await;
    assert!(detail.body.contains(PHONE), "staff see the full number");
    let viewer = dash.login("vic").await;
    let detail = dash
        .get(&format!("/dashboard/customers/{customer}"), Some(&viewer))
        .await;
    assert_eq!(detail.status, 200);
    assert!(!detail.body.contains(PHONE), "a viewer sees it masked");
    let detail = dash
        .get(
            &format!("/dashboard/appointments/{appointment}"),
            Some(&viewer),
        )
        .await;
    assert!(!detail.body.contains(PHONE), "a viewer sees it masked");

    // Views of one customer's data are audited, as the Admin API audits them.
    let audit = dash.audit();
    assert!(audit.contains(&("appointment.viewed".to_string(), Some(appointment.clone()))));
    assert!(audit.contains(&("customer.viewed".to_string(), Some(customer.clone()))));

    // The live streams take the session cookie: the dashboard's and the Event API's.
    for path in ["/dashboard/live?after=0&esc=", "/v1/events/stream"] {
        let response = browser::fixtures::http()
            .get(dash.url(path))
            .insert_header(("Cookie", format!("aro_session={staff}")))
            .send()
            .await
            .expect("stream opens");
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let kind = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(kind.starts_with("text/event-stream"), "{path}: {kind}");
    }

    // Unknown things are 404 (the error envelope).
    let missing = dash
        .get("/dashboard/appointments/no-such-appointment", Some(&staff))
        .await;
    assert_eq!(missing.status, 404);
    // The assets are served as files, cacheable, without a session.
    for (path, kind) in [
        ("/dashboard/assets/dashboard.css", "text/css"),
        ("/dashboard/assets/dashboard.js", "text/javascript"),
    ] {
        let asset = dash.get(path, None).await;
        assert_eq!(asset.status, 200, "{path}");
        assert!(asset
            .content_type
            .as_deref()
            .is_some_and(|c| c.starts_with(kind)));
        assert_ne!(asset.cache_control.as_deref(), Some("no-store"));
    }
}

async fn a_viewer_sees_no_forms_and_cannot_act(kind: Kind) {
    let (dash, appointment) = world(kind).await;
    let viewer = dash.login("vic").await;
    let inbox = dash.get("/dashboard/escalations", Some(&viewer)).await;
    assert!(inbox.body.contains("data-escalation-id=\"esc-h1\""));
    assert!(
        !inbox.body.contains("/resolve"),
        "no resolve form for a viewer"
    );
    let detail = dash
        .get(
            &format!("/dashboard/appointments/{appointment}"),
            Some(&viewer),
        )
        .await;
    assert!(
        !detail.body.contains("/override"),
        "no override form for a viewer"
    );
    let letters = dash.get("/dashboard/dead-letters", Some(&viewer)).await;
    assert!(
        !letters.body.contains("/replay"),
        "no replay form for a viewer"
    );
    let messages = dash.get("/dashboard/messages", Some(&viewer)).await;
    assert!(!messages.body.contains("/dashboard/messages/reply"));
    // Posting anyway, with the viewer's own valid CSRF token: 403, nothing changes.
    let csrf = inbox.csrf().expect("the sign-out form carries the token");
    let posts: [(String, Vec<(&str, &str)>); 5] = [
        (
            "/dashboard/escalations/esc-h1/resolve".to_string(),
            vec![("resolution", "confirmed_cancellation")],
        ),
        (
            format!("/dashboard/appointments/{appointment}/override"),
            vec![("action", "cancel"), ("reason", "asked by phone")],
        ),
        ("/dashboard/dead-letters/dl-h1/replay".to_string(), vec![]),
        ("/dashboard/dead-letters/dl-h1/archive".to_string(), vec![]),
        (
            "/dashboard/messages/reply".to_string(),
            vec![("from", PHONE), ("body", "yes")],
        ),
    ];
    for (path, fields) in &posts {
        let mut fields = fields.clone();
        fields.push(("csrf_token", &csrf));
        let answer = dash.post_form(path, Some(&viewer), &fields).await;
        assert_eq!(answer.status, 403, "{path}: {}", answer.body);
        assert!(
            answer.body.contains("\"reason\":\"role\""),
            "{}",
            answer.body
        );
    }
    assert_eq!(dash.status_of(&appointment).as_deref(), Some("booked"));
    assert_eq!(dash.escalation_state("esc-h1").0, "open");
    assert_eq!(dash.dead_letter_state("dl-h1").0, "open");
}

async fn forms_need_the_sessions_csrf_token(kind: Kind) {
    let (dash, appointment) = world(kind).await;
    let staff = dash.login("ann").await;
    let inbox = dash.get("/dashboard/escalations", Some(&staff)).await;
    let csrf = inbox.csrf().expect("csrf field");
    assert!(inbox
        .body
        .contains("action=\"/dashboard/escalations/esc-h1/resolve\""));
    let resolve = "/dashboard/escalations/esc-h1/resolve";
    for fields in [
        vec![("resolution", "dismissed")],
        vec![("resolution", "dismissed"), ("csrf_token", "forged")],
        vec![("resolution", "dismissed"), ("csrf_token", "")],
    ] {
        let answer = dash.post_form(resolve, Some(&staff), &fields).await;
        assert_eq!(answer.status, 403, "{fields:?}: {}", answer.body);
        assert!(
            answer.body.contains("\"reason\":\"csrf\""),
            "{}",
            answer.body
        );
    }
    // Another session's token is not this session's.
    let other = dash.login("olga").await;
    let other_csrf = dash
        .get("/dashboard/escalations", Some(&other))
        .await
        .csrf()
        .expect("csrf");
    assert_ne!(other_csrf, csrf);
    let answer = dash
        .post_form(
            resolve,
            Some(&staff),
            &[("resolution", "dismissed"), ("csrf_token", &other_csrf)],
        )
        .await;
    assert_eq!(answer.status, 403);
    let override_path = format!("/dashboard/appointments/{appointment}/override");
    let answer = dash
        .post_form(
            &override_path,
            Some(&staff),
            &[("action", "cancel"), ("reason", "no token")],
        )
        .await;
    assert_eq!(answer.status, 403);
    for path in ["/dashboard/dead-letters/dl-h1/replay", "/dashboard/logout"] {
        let answer = dash.post_form(path, Some(&staff), &[]).await;
        assert_eq!(answer.status, 403, "{path}");
    }
    assert_eq!(dash.escalation_state("esc-h1").0, "open");
    assert_eq!(dash.status_of(&appointment).as_deref(), Some("booked"));
    assert_eq!(dash.dead_letter_state("dl-h1").0, "open");
    // Without any session a post goes to the login page and changes nothing.
    let answer = dash
        .post_form(
            resolve,
            None,
            &[("resolution", "dismissed"), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(answer.status, 303);
    assert_eq!(dash.escalation_state("esc-h1").0, "open");

    // With the token the same forms work, and come back with what happened.
    let back = "/dashboard/escalations?status=open";
    let answer = dash
        .post_form(
            resolve,
            Some(&staff),
            &[
                ("resolution", "confirmed_cancellation"),
                ("note", "she called"),
                ("back", back),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let to = answer.location.clone().unwrap_or_default();
    assert!(to.starts_with(back) && to.contains("notice="), "{to}");
    assert_eq!(
        dash.escalation_state("esc-h1"),
        (
            "resolved".to_string(),
            Some("confirmed_cancellation".to_string())
        )
    );
    assert_eq!(dash.status_of(&appointment).as_deref(), Some("cancelled"));
    // Resolving it again: back with the reason, nothing changes.
    let again = dash
        .post_form(
            resolve,
            Some(&staff),
            &[("resolution", "dismissed"), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(again.status, 303);
    assert!(again.location.unwrap_or_default().contains("error="));
    // An override the lifecycle refuses: back with the reason.
    let refused = dash
        .post_form(
            &override_path,
            Some(&staff),
            &[
                ("action", "confirm"),
                ("reason", "too late"),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(refused.status, 303);
    let to = refused.location.unwrap_or_default();
    assert!(
        to.starts_with(&format!("/dashboard/appointments/{appointment}?error=")),
        "{to}"
    );
    let shown = dash.get(&to, Some(&staff)).await;
    assert!(shown.body.contains("flash error"), "the reason is shown");
    // A back link elsewhere is not followed.
    let archived = dash
        .post_form(
            "/dashboard/dead-letters/dl-h2/archive",
            Some(&staff),
            &[("back", "https://evil.example/"), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(archived.status, 303);
    assert!(archived
        .location
        .unwrap_or_default()
        .starts_with("/dashboard/dead-letters?notice="));
    assert_eq!(dash.dead_letter_state("dl-h2").0, "archived");
    let replayed = dash
        .post_form(
            "/dashboard/dead-letters/dl-h1/replay",
            Some(&staff),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(replayed.status, 303);
    assert_eq!(dash.dead_letter_state("dl-h1").0, "replayed");
    let actions: Vec<String> = dash.audit().into_iter().map(|(a, _)| a).collect();
    for action in [
        "escalation.resolved",
        "dead_letter.archived",
        "dead_letter.replayed",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action}");
    }
}

async fn the_login_form_signs_in_and_out(kind: Kind) {
    let (dash, _) = world(kind).await;
    let form = dash.get("/dashboard/login", None).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("name=\"password\""));
    assert!(form.body.contains("name=\"viewport\""));
    let wrong = dash
        .post_form(
            "/dashboard/login",
            None,
            &[("username", "ann"), ("password", "Not-The-Password-1!")],
        )
        .await;
    assert_eq!(wrong.status, 200);
    assert!(wrong.body.contains("Wrong username or password."));
    assert!(wrong.set_cookie.is_none());
    let unknown = dash
        .post_form(
            "/dashboard/login",
            None,
            &[
                ("username", "<nobody>"),
                ("password", "Not-The-Password-1!"),
            ],
        )
        .await;
    assert!(unknown.body.contains("Wrong username or password."));
    assert!(
        unknown.body.contains("value=\"&lt;nobody&gt;\""),
        "the name is kept, escaped"
    );
    // The page asked for is where a sign-in goes; elsewhere is refused.
    let signed = dash
        .post_form(
            "/dashboard/login",
            None,
            &[
                ("username", "ann"),
                ("password", browser::fixtures::PASSWORD),
                ("next", "/dashboard/escalations?status=resolved"),
            ],
        )
        .await;
    assert_eq!(signed.status, 303);
    assert_eq!(
        signed.location.as_deref(),
        Some("/dashboard/escalations?status=resolved")
    );
    let cookie = signed.set_cookie.clone().unwrap_or_default();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let offsite = dash
        .post_form(
            "/dashboard/login",
            None,
            &[
                ("username", "ann"),
                ("password", browser::fixtures::PASSWORD),
                ("next", "https://evil.example/"),
            ],
        )
        .await;
    assert_eq!(offsite.location.as_deref(), Some("/dashboard/today"));
    // Signed in, the login page goes straight on.
    let session = dash.login("ann").await;
    let again = dash.get("/dashboard/login", Some(&session)).await;
    assert_eq!(again.status, 303);
    // Signing out ends the session.
    let page = dash.get("/dashboard/settings", Some(&session)).await;
    let csrf = page.csrf().expect("csrf");
    let out = dash
        .post_form(
            "/dashboard/logout",
            Some(&session),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location.as_deref(), Some("/dashboard/login"));
    assert!(out.set_cookie.unwrap_or_default().contains("Max-Age=0"));
    let after = dash.get("/dashboard/settings", Some(&session)).await;
    assert_eq!(after.status, 303);
    let audit: Vec<String> = dash.audit().into_iter().map(|(a, _)| a).collect();
    for action in ["auth.login.failed", "auth.login.succeeded", "auth.logout"] {
        assert!(audit.iter().any(|a| a == action), "{action}");
    }
}

async fn pages_show_what_the_daemon_knows(kind: Kind) {
    let (dash, appointment) = world(kind).await;
    let staff = dash.login("ann").await;
    let today = dash
        .get(&format!("/dashboard/today?date={DAY}"), Some(&staff))
        .await;
    assert!(today
        .body
        .contains(&format!("data-appointment-id=\"{appointment}\"")));
    assert!(
        today.body.contains("reminder_48h"),
        "the next action is shown"
    );
    assert!(today
        .body
        .contains("data-live-src=\"/dashboard/today/list?date=2031-03-20\""));
    let other_day = dash
        .get("/dashboard/today?date=2031-03-21", Some(&staff))
        .await;
    assert!(!other_day.body.contains(&appointment));
    let bad = dash
        .get("/dashboard/today?date=tomorrow", Some(&staff))
        .await;
    assert_eq!(bad.status, 400);
    let detail = dash
        .get(
            &format!("/dashboard/appointments/{appointment}"),
            Some(&staff),
        )
        .await;
    for part in [
        "appointment.booked",
        "reminder_24h",
        "booking_confirmation",
        "possible_cancellation",
    ] {
        assert!(detail.body.contains(part), "the timeline shows {part}");
    }
    assert!(
        detail.body.contains("id=\"simulate-reply\""),
        "sandbox: a reply can be typed"
    );
    // A typed reply through the dashboard confirms the appointment, as a real one would.
    let csrf = detail.csrf().expect("csrf");
    let customer = dash.customer_of(&appointment);
    let replied = dash
        .post_form(
            "/dashboard/messages/reply",
            Some(&staff),
            &[
                ("customer_id", &customer),
                ("body", "YES"),
                ("back", &format!("/dashboard/appointments/{appointment}")),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(replied.status, 303);
    assert!(replied.location.unwrap_or_default().contains("notice="));
    let mut status = None;
    for _ in 0..200 {
        status = dash.status_of(&appointment);
        if status.as_deref() == Some("confirmed") {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(status.as_deref(), Some("confirmed"));
    let messages = dash
        .get("/dashboard/messages?direction=inbound", Some(&staff))
        .await;
    assert!(messages.body.contains(">YES<"), "{}", messages.body);
    let search = dash.get("/dashboard/customers?q=6543", Some(&staff)).await;
    assert!(search
        .body
        .contains(&format!("data-customer-id=\"{customer}\"")));
    let none = dash
        .get("/dashboard/customers?q=nobody-here", Some(&staff))
        .await;
    assert!(!none.body.contains(&customer));
    let supervisors = dash.get("/dashboard/supervisors", Some(&staff)).await;
    assert!(supervisors.body.contains("id=\"breaker\""));
    let metrics = dash.get("/dashboard/metrics", Some(&staff)).await;
    assert_eq!(metrics.body.matches("<svg").count(), 4);
    let settings = dash.get("/dashboard/settings", Some(&staff)).await;
    assert!(!settings.body.contains("dashboard-booking-secret"));
    assert!(settings.body.contains("********"), "secrets show masked");
    assert!(settings.body.contains("id=\"pack-name\">healthcare<"));
}

on_both_backends!(
    pages_need_a_session_and_escape_everything,
    a_viewer_sees_no_forms_and_cannot_act,
    forms_need_the_sessions_csrf_token,
    the_login_form_signs_in_and_out,
    pages_show_what_the_daemon_knows,
);

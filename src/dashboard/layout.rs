//! The frame every dashboard page shares: the document head (viewport for phones, the
//! stylesheet and script served by `assets` — no inline script or style, the CSP is
//! `default-src 'self'`), the navigation, the signed-in user with the sign-out form,
//! the flash message of the last action, and small pieces pages reuse (the CSRF field,
//! badges, the pager, HTML and redirect responses).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;

use super::error::DashboardError;
use super::session::can_act;
use crate::auth::{Principal, PrincipalKind};
use crate::http::ApiError;

/// The CSRF form field the security middleware reads (`auth::principal::CSRF_FIELD`).
const CSRF_FIELD: &str = crate::auth::principal::CSRF_FIELD;

/// The sections of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Today,
    Escalations,
    Customers,
    Messages,
    DeadLetters,
    Supervisors,
    Metrics,
    Settings,
}

impl Nav {
    const ALL: [Nav; 8] = [
        Nav::Today,
        Nav::Escalations,
        Nav::Customers,
        Nav::Messages,
        Nav::DeadLetters,
        Nav::Supervisors,
        Nav::Metrics,
        Nav::Settings,
    ];

    fn label(self) -> &'static str {
        match self {
            Nav::Today => "Today",
            Nav::Escalations => "Escalations",
            Nav::Customers => "Customers",
            Nav::Messages => "Messages",
            Nav::DeadLetters => "Dead letters",
            Nav::Supervisors => "Supervisors",
            Nav::Metrics => "Metrics",
            Nav::Settings => "Settings",
        }
    }

    fn href(self) -> &'static str {
        match self {
            Nav::Today => "/dashboard/today",
            Nav::Escalations => "/dashboard/escalations",
            Nav::Customers => "/dashboard/customers",
            Nav::Messages => "/dashboard/messages",
            Nav::DeadLetters => "/dashboard/dead-letters",
            Nav::Supervisors => "/dashboard/supervisors",
            Nav::Metrics => "/dashboard/metrics",
            Nav::Settings => "/dashboard/settings",
        }
    }
}

/// The outcome of the last action, carried in the redirect's query (`notice`, `error`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Flash {
    pub notice: Option<String>,
    pub error: Option<String>,
}

impl Flash {
    /// The flash of this request's query string.
    pub fn of(req: &HttpRequest) -> Self {
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default()
    }
}

/// This request's path and query without the flash parameters: where an action on
/// the page comes back to.
pub fn here(req: &HttpRequest) -> String {
    let kept: Vec<(String, String)> =
        serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
            .unwrap_or_default()
            .into_iter()
            .filter(|(name, _)| name != "notice" && name != "error")
            .collect();
    match serde_urlencoded::to_string(&kept) {
        Ok(query) if !query.is_empty() => format!("{}?{query}", req.path()),
        _ => req.path().to_string(),
    }
}

/// `back` when it is a dashboard page (never another site), else `fallback`.
pub fn safe_back(back: Option<&str>, fallback: &str) -> String {
    match back.map(str::trim) {
        Some(back)
            if (back == "/dashboard" || back.starts_with("/dashboard/"))
                && !back.contains("//")
                && !back.contains('\\') =>
        {
            back.to_string()
        }
        _ => fallback.to_string(),
    }
}

/// `url` with a flash parameter appended (`kind` is `notice` or `error`).
pub fn with_flash(url: &str, kind: &str, message: &str) -> String {
    let pair = serde_urlencoded::to_string([(kind, message)]).unwrap_or_default();
    let joiner = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joiner}{pair}")
}

/// `303 See Other` to `location`.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_string()))
        .finish()
}

/// The answer to a form post: back to `back` with a notice, or with the reason when
/// the request was refused for something a person can put right (a 4xx: invalid input,
/// a move the lifecycle forbids, already resolved…); a server-side failure is the
/// error envelope.
pub fn after_action<E: Into<ApiError>>(
    back: &str,
    result: Result<String, E>,
) -> Result<HttpResponse, DashboardError> {
    match result {
        Ok(notice) => Ok(see_other(&with_flash(back, "notice", &notice))),
        Err(err) => {
            let err: ApiError = err.into();
            if err.status_code().is_client_error() {
                Ok(see_other(&with_flash(back, "error", &err.to_string())))
            } else {
                Err(DashboardError::Api(err))
            }
        }
    }
}

/// A rendered page or fragment as the response.
pub fn html_response(markup: Markup) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(markup.into_string())
}

/// The hidden field carrying the session's CSRF token in every state-changing form.
pub fn csrf_field(principal: &Principal) -> Markup {
    html! {
        input type="hidden" name=(CSRF_FIELD) value=(principal.csrf_token().unwrap_or(""));
    }
}

/// Who is signed in, as shown in the header.
fn who(principal: &Principal) -> String {
    match &principal.kind {
        PrincipalKind::Session { username, .. } => username.clone(),
        PrincipalKind::Token { name, .. } => format!("token {name}"),
    }
}

/// What a page puts in the frame.
pub struct Frame<'a> {
    pub principal: &'a Principal,
    pub active: Nav,
    pub title: &'a str,
    pub flash: Flash,
}

/// The document head shared by every page (also the login page).
fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        meta name="referrer" content="no-referrer";
        title { (title) " · ARO" }
        link rel="stylesheet" href=(super::assets::CSS_PATH);
        script src=(super::assets::JS_PATH) defer {}
    }
}

/// A whole page: head, navigation, flash, title and `body`.
pub fn page(frame: Frame<'_>, body: Markup) -> Markup {
    let principal = frame.principal;
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(frame.title)) }
            body {
                header.topbar {
                    a.brand href=(super::HOME) { "ARO" }
                    nav.nav aria-label="Sections" {
                        @for item in Nav::ALL {
                            a.active[item == frame.active] href=(item.href())
                                aria-current=[(item == frame.active).then_some("page")] {
                                (item.label())
                            }
                        }
                    }
                    div.who {
                        span.user { (who(principal)) }
                        " "
                        span.role { (principal.role.as_str()) }
                        @if !can_act(principal) {
                            " "
                            span.badge.muted title="read-only" { "read-only" }
                        }
                        form.inline method="post" action="/dashboard/logout" {
                            (csrf_field(principal))
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main #main {
                    @if let Some(notice) = &frame.flash.notice {
                        p.flash.notice role="status" { (notice) }
                    }
                    @if let Some(error) = &frame.flash.error {
                        p.flash.error role="alert" { (error) }
                    }
                    h1 { (frame.title) }
                    (body)
                }
            }
        }
    }
}

/// A page outside the signed-in frame (the login page).
pub fn bare_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body.bare {
                main #main { (body) }
            }
        }
    }
}

/// A status word as a coloured badge (`booked`, `confirmed`, `open`, `high`…).
pub fn badge(word: &str) -> Markup {
    let class = match word {
        "confirmed" | "completed" | "delivered" | "sent" | "resolved" | "replayed" | "closed"
        | "paid" | "low" | "recorded" | "granted" => "ok",
        "booked" | "rescheduled" | "in_progress" | "scheduled" | "queued" | "pending"
        | "medium" | "half_open" | "requested" => "info",
        "cancelled" | "no_show" | "failed" | "undelivered" | "high" | "open" | "dead"
        | "revoked" | "missed" => "warn",
        _ => "muted",
    };
    html! { span class={ "badge " (class) } { (word) } }
}

/// The "next page" link of a keyset-paginated list.
pub fn pager(next: Option<String>) -> Markup {
    html! {
        @if let Some(next) = next {
            nav.pager aria-label="Pages" { a href=(next) { "Next page →" } }
        }
    }
}

/// `base` with `params` (empty values left out) as its query string.
pub fn link(base: &str, params: &[(&str, Option<&str>)]) -> String {
    let kept: Vec<(&str, &str)> = params
        .iter()
        .filter_map(|(name, value)| value.filter(|v| !v.trim().is_empty()).map(|v| (*name, v)))
        .collect();
    match serde_urlencoded::to_string(&kept) {
        Ok(query) if !query.is_empty() => format!("{base}?{query}"),
        _ => base.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn flash_and_back_links() {
        let req = TestRequest::get()
            .uri("/dashboard/escalations?status=open&notice=done&error=x")
            .to_http_request();
        assert_eq!(Flash::of(&req).notice.as_deref(), Some("done"));
        assert_eq!(here(&req), "/dashboard/escalations?status=open");
        assert_eq!(
            with_flash("/dashboard/today", "notice", "a & b"),
            "/dashboard/today?notice=a+%26+b"
        );
        assert_eq!(
            with_flash("/dashboard/today?date=2031-03-20", "error", "no"),
            "/dashboard/today?date=2031-03-20&error=no"
        );
    }

    #[test]
    fn back_links_stay_on_the_dashboard() {
        for bad in [
            "https://evil.example/",
            "//evil.example/dashboard",
            "/dashboardx",
            "/dashboard//evil",
            "/v1/admin",
        ] {
            assert_eq!(safe_back(Some(bad), "/dashboard/today"), "/dashboard/today");
        }
        assert_eq!(
            safe_back(Some("/dashboard/escalations?status=open"), "/x"),
            "/dashboard/escalations?status=open"
        );
        assert_eq!(safe_back(None, "/dashboard/today"), "/dashboard/today");
    }

    #[test]
    fn links_leave_out_empty_parameters() {
        assert_eq!(
            link(
                "/dashboard/customers",
                &[("q", Some("ann")), ("risk", Some(""))]
            ),
            "/dashboard/customers?q=ann"
        );
        assert_eq!(
            link("/dashboard/customers", &[("q", None)]),
            "/dashboard/customers"
        );
    }

    #[test]
    fn text_is_escaped() {
        let out = badge("<script>").into_string();
        assert!(out.contains("&lt;script&gt;"), "{out}");
    }
}

//! Signing in and out of the dashboard through the auth service (`auth::service`): the
//! same argon2id users, session cookie (`HttpOnly; SameSite=Strict`), lockout and audit
//! entries as `POST /v1/auth/login`. A refused sign-in shows the form again with the
//! reason; a successful one sets the cookie and goes on to the page asked for.
//!
//! | route | who |
//! | --- | --- |
//! | `GET /dashboard/login?next=` | anyone (signed in: straight to `next`) |
//! | `POST /dashboard/login` `username, password, next` | anyone (lockout, rate limit) |
//! | `POST /dashboard/logout` | any session (CSRF) |

use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;

use super::error::DashboardError;
use super::layout::{bare_page, html_response, safe_back, see_other};
use super::session::Viewer;
use crate::auth::routes::{login_request, secure_cookies};
use crate::auth::service;
use crate::auth::{password, sessions, AuthError, Principal};
use crate::http::security::check_sign_in_origin;
use crate::http::AppState;
use crate::store::tenant_queries::DEFAULT_TENANT;

const LOGIN_PATH: &str = "/dashboard/login";

/// The login page's URL, coming back to `next` afterwards.
pub fn login_url(next: &str) -> String {
    let next = safe_back(Some(next), super::HOME);
    if next == super::HOME {
        LOGIN_PATH.to_string()
    } else {
        super::layout::link(LOGIN_PATH, &[("next", Some(&next))])
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

fn form(next: &str, username: &str, problem: Option<&str>) -> Markup {
    bare_page(
        "Sign in",
        html! {
            section.card.login {
                h1 { "ARO" }
                p.muted { "Sign in to the supervisor dashboard." }
                @if let Some(problem) = problem {
                    p.flash.error role="alert" { (problem) }
                }
                form method="post" action=(LOGIN_PATH) {
                    input type="hidden" name="next" value=(next);
                    label for="username" { "Username" }
                    input #username type="text" name="username" value=(username)
                        autocomplete="username" autocapitalize="none" required autofocus;
                    label for="password" { "Password" }
                    input #password type="password" name="password"
                        autocomplete="current-password" required;
                    button.primary type="submit" { "Sign in" }
                }
            }
        },
    )
}

/// `GET /dashboard/login`: the form, or straight on when already signed in.
pub async fn page(
    req: HttpRequest,
    query: web::Query<LoginQuery>,
) -> Result<HttpResponse, DashboardError> {
    let next = safe_back(query.next.as_deref(), super::HOME);
    if sessions::cookie_value(req.headers()).is_some() && Principal::extract(&req).await.is_ok() {
        return Ok(see_other(&next));
    }
    Ok(html_response(form(&next, "", None)))
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

/// What to tell a person whose sign-in was refused.
fn refusal(err: &AuthError) -> Option<String> {
    match err {
        AuthError::InvalidCredentials | AuthError::Invalid { .. } => {
            Some("Wrong username or password.".to_string())
        }
        AuthError::LockedOut { retry_after_secs } => Some(format!(
            "Too many failed sign-ins: try again in {} minutes.",
            retry_after_secs.div_ceil(60).max(1)
        )),
        _ => None,
    }
}

/// `POST /dashboard/login`.
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form_body: web::Form<LoginForm>,
) -> Result<HttpResponse, DashboardError> {
    check_sign_in_origin(&req, &state.config.public_url)?;
    let LoginForm {
        username,
        password: typed,
        next,
    } = form_body.into_inner();
    let next = safe_back(next.as_deref(), super::HOME);
    if username.trim().is_empty() || typed.is_empty() {
        return Ok(html_response(form(
            &next,
            &username,
            Some("Enter your username and password."),
        )));
    }
    if typed.chars().count() > password::MAX_LENGTH {
        return Ok(html_response(form(
            &next,
            &username,
            Some("Wrong username or password."),
        )));
    }
    let request = login_request(&req, DEFAULT_TENANT.to_string(), username.clone(), typed);
    match service::login(&state.db, request).await {
        Ok(outcome) => {
            let secure = secure_cookies(&state);
            Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, next))
                .insert_header((
                    header::SET_COOKIE,
                    sessions::set_cookie(outcome.session.cookie_value.expose(), secure),
                ))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish())
        }
        Err(err) => match refusal(&err) {
            Some(problem) => Ok(html_response(form(&next, &username, Some(&problem)))),
            None => Err(err.into()),
        },
    }
}

/// `POST /dashboard/logout`: ends the session and clears the cookie.
pub async fn logout(
    viewer: Viewer,
    state: web::Data<AppState>,
) -> Result<HttpResponse, DashboardError> {
    service::logout(&state.db, &viewer).await?;
    let secure = secure_cookies(&state);
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, LOGIN_PATH))
        .insert_header((header::SET_COOKIE, sessions::clear_cookie(secure)))
        .finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_urls_come_back_only_to_the_dashboard() {
        assert_eq!(login_url("/dashboard/today"), LOGIN_PATH);
        assert_eq!(
            login_url("/dashboard/escalations?status=open"),
            "/dashboard/login?next=%2Fdashboard%2Fescalations%3Fstatus%3Dopen"
        );
        assert_eq!(login_url("https://evil.example/"), LOGIN_PATH);
    }

    #[test]
    fn refusals_say_what_to_do_and_no_more() {
        assert_eq!(
            refusal(&AuthError::InvalidCredentials).as_deref(),
            Some("Wrong username or password.")
        );
        assert!(refusal(&AuthError::LockedOut {
            retry_after_secs: 900
        })
        .is_some_and(|t| t.contains("15 minutes")));
        assert!(refusal(&AuthError::Hash("x".into())).is_none());
    }
}

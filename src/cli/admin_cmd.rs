//! `aro admin create-user | list-users | create-token | list-tokens | revoke-token`:
//! managing admin users and API tokens from the host (the first owner is created here).
//!
//! Passwords are read from stdin (one line) with `--password-stdin` or when stdin is
//! not a terminal, else prompted for twice without echo; the policy of SPEC §8 applies.
//! A new token is printed once, alone on stdout, and never again.

use std::io::{BufRead, IsTerminal, Write};
use std::process::{Command as Process, Stdio};

use anyhow::{bail, Context};
use chrono::{Duration, NaiveDateTime, Utc};
use clap::{Args, Subcommand};

use crate::audit::Actor;
use crate::auth::{password, tokens, users, Role};
use crate::config::{Config, Secret};
use crate::store::tenant_queries::DEFAULT_TENANT;
use crate::store::Conn;

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub action: AdminAction,
    /// The tenant whose users and tokens to manage.
    #[arg(long, global = true, default_value = DEFAULT_TENANT, value_name = "ID")]
    pub tenant: String,
}

#[derive(Debug, Subcommand)]
pub enum AdminAction {
    /// Create an admin user (password: at least 12 characters with upper and lower case,
    /// a digit and a symbol; common passwords are refused).
    CreateUser {
        #[arg(long)]
        username: String,
        /// owner, staff or viewer.
        #[arg(long)]
        role: Role,
        /// Read the password from the first line of stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the admin users.
    ListUsers,
    /// Create an API token and print it once (store it now: only its hash is kept).
    CreateToken {
        /// What the token is for (shown in listings and the audit log).
        #[arg(long)]
        name: String,
        /// owner, staff or viewer.
        #[arg(long)]
        role: Role,
        /// Expire the token after this many days (default: never).
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_in_days: Option<u32>,
    },
    /// List the API tokens (never their values).
    ListTokens,
    /// Revoke an API token by id; it stops working at once.
    RevokeToken {
        /// The token's id (from list-tokens or create-token).
        id: String,
    },
}

/// Opens the database as `aro serve` would (migrating when configured to, with the
/// business's tenant) and checks out one connection.
pub(super) fn open_database(config: &Config) -> anyhow::Result<Conn> {
    let db = actix_web::rt::System::new()
        .block_on(crate::app::prepare_database(config))
        .context("cannot open the database")?;
    db.get().context("cannot connect to the database")
}

pub fn run(config: Config, args: AdminArgs) -> anyhow::Result<()> {
    crate::telemetry::init(&config);
    let tenant = args.tenant;
    match args.action {
        AdminAction::CreateUser {
            username,
            role,
            password_stdin,
        } => create_user(&config, &tenant, &username, role, password_stdin),
        AdminAction::ListUsers => list_users(&config, &tenant),
        AdminAction::CreateToken {
            name,
            role,
            expires_in_days,
        } => create_token(&config, &tenant, &name, role, expires_in_days),
        AdminAction::ListTokens => list_tokens(&config, &tenant),
        AdminAction::RevokeToken { id } => {
            let mut conn = open_database(&config)?;
            let row = tokens::revoke(&mut conn, &tenant, &id, &Actor::cli(), Utc::now())?;
            println!("revoked token {} ({})", row.id, row.name);
            Ok(())
        }
    }
}

fn create_user(
    config: &Config,
    tenant: &str,
    username: &str,
    role: Role,
    from_stdin: bool,
) -> anyhow::Result<()> {
    let username = users::normalize_username(username)?;
    let typed = read_password(from_stdin)?;
    password::check_policy(typed.expose(), Some(&username))?;
    let password_hash = password::hash(typed.expose())?;
    let mut conn = open_database(config)?;
    let new = users::NewUser {
        tenant_id: tenant.to_string(),
        username,
        password_hash,
        role,
    };
    let row = users::create(&mut conn, &new, &Actor::cli(), Utc::now())?;
    println!(
        "created user {} ({}) with id {}",
        row.username, row.role, row.id
    );
    Ok(())
}

/// One line from stdin, or a hidden prompt (twice) on a terminal.
fn read_password(from_stdin: bool) -> anyhow::Result<Secret<String>> {
    let stdin = std::io::stdin();
    if from_stdin || !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        let password = line.trim_end_matches(['\r', '\n']).to_string();
        if password.is_empty() {
            bail!("no password on stdin");
        }
        return Ok(Secret::new(password));
    }
    let first = prompt_hidden("Password: ")?;
    let second = prompt_hidden("Repeat password: ")?;
    if first.expose() != second.expose() {
        bail!("the passwords differ");
    }
    Ok(first)
}

/// Reads a line from the terminal with echo turned off (through `stty`).
pub(super) fn prompt_hidden(prompt: &str) -> anyhow::Result<Secret<String>> {
    let stty = |arg: &str| {
        Process::new("stty")
            .arg(arg)
            .stdin(Stdio::inherit())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    // Echo goes off before the prompt shows, so nothing typed at once is echoed.
    let echo_off = stty("-echo");
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if echo_off {
        stty("echo");
    }
    eprintln!();
    read.context("cannot read from the terminal")?;
    Ok(Secret::new(line.trim_end_matches(['\r', '\n']).to_string()))
}

fn when(at: Option<NaiveDateTime>) -> String {
    at.map_or_else(
        || "-".to_string(),
        |at| at.and_utc().format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

fn list_users(config: &Config, tenant: &str) -> anyhow::Result<()> {
    let mut conn = open_database(config)?;
    let rows = users::list(&mut conn, tenant)?;
    if rows.is_empty() {
        println!("no users; create the first owner with `aro admin create-user --role owner`");
        return Ok(());
    }
    println!(
        "{:<36}  {:<24}  {:<6}  {:<8}  {:<20}  LAST LOGIN",
        "ID", "USERNAME", "ROLE", "STATUS", "CREATED"
    );
    for row in rows {
        println!(
            "{:<36}  {:<24}  {:<6}  {:<8}  {:<20}  {}",
            row.id,
            row.username,
            row.role,
            if row.disabled { "disabled" } else { "active" },
            when(Some(row.created_at)),
            when(row.last_login_at)
        );
    }
    Ok(())
}

fn create_token(
    config: &Config,
    tenant: &str,
    name: &str,
    role: Role,
    expires_in_days: Option<u32>,
) -> anyhow::Result<()> {
    let mut conn = open_database(config)?;
    let now = Utc::now();
    let expires_at = expires_in_days.map(|days| now + Duration::days(i64::from(days)));
    let issued = tokens::create(
        &mut conn,
        tenant,
        name,
        role,
        expires_at,
        &Actor::cli(),
        now,
    )?;
    eprintln!(
        "created token {} ({}, role {}{}); it is shown only this once:",
        issued.row.id,
        issued.row.name,
        issued.row.role,
        issued
            .row
            .expires_at
            .map(|at| format!(", expires {}", when(Some(at))))
            .unwrap_or_default()
    );
    println!("{}", issued.token.expose());
    Ok(())
}

fn list_tokens(config: &Config, tenant: &str) -> anyhow::Result<()> {
    let mut conn = open_database(config)?;
    let rows = tokens::list(&mut conn, tenant)?;
    if rows.is_empty() {
        println!("no API tokens");
        return Ok(());
    }
    println!(
        "{:<36}  {:<24}  {:<6}  {:<8}  {:<20}  {:<20}  EXPIRES",
        "ID", "NAME", "ROLE", "STATUS", "CREATED", "LAST USED"
    );
    let now = Utc::now().naive_utc();
    for row in rows {
        let status = if row.revoked_at.is_some() {
            "revoked"
        } else if row.expires_at.is_some_and(|at| at <= now) {
            "expired"
        } else {
            "active"
        };
        println!(
            "{:<36}  {:<24}  {:<6}  {:<8}  {:<20}  {:<20}  {}",
            row.id,
            row.name,
            row.role,
            status,
            when(Some(row.created_at)),
            when(row.last_used_at),
            when(row.expires_at)
        );
    }
    Ok(())
}

//! `aro install`: the guided installer (SPEC §9). Interactive on a terminal (prompts
//! with `dialoguer`), or `--non-interactive` with a flag (or the daemon's own `ARO_*`
//! variable) for every answer; the admin password only ever comes from a prompt or
//! from the environment variable named by `--admin-password-env`.
//!
//! Order: read an existing configuration (its answers become the defaults), gather and
//! check every answer (nothing is written until all are valid), system check, write the
//! configuration (0600), data directory, master key, migrations, the first admin user,
//! the service unit; with `--start`, start the daemon, wait for `/ready`, run a sandbox
//! test booking and print the dashboard URL. Re-running is safe: it keeps the answers,
//! the master key and existing admin users. The work itself is in `ops::install`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use dialoguer::{Input, Password, Select};

use crate::audit::Actor;
use crate::config::{values, Config, ConfigSources, DatabaseUrl, Secret, PROFILES};
use crate::credentials::{self, Reach};
use crate::crypto::KeySource;
use crate::ops::backup::Progress;
use crate::ops::install::account::{self, AccountOutcome, ServiceAccount};
use crate::ops::install::answers::generate_secret;
use crate::ops::install::connections::{test_connections, ConnectionResult};
use crate::ops::install::launch;
use crate::ops::install::service::{self, UnitPaths};
use crate::ops::install::setup::{self, AdminAnswer, AdminOutcome, Written};
use crate::ops::install::{Answers, InstallError, Layout, ServiceKind};

#[derive(Debug, Clone, Args)]
pub struct InstallArgs {
    /// Take every answer from flags and the environment; fail listing the missing ones.
    #[arg(long)]
    pub non_interactive: bool,
    /// The service manager to install a unit for.
    #[arg(long, value_enum, default_value_t = ServiceKind::None)]
    pub service: ServiceKind,
    /// Install under this root (for packaging and tests); `/` is a real installation.
    #[arg(long, default_value = "/", value_name = "DIR")]
    pub prefix: PathBuf,
    /// Where to write aro.toml (default: <prefix>/etc/aro, or the service's usual place).
    #[arg(long, value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// The aro binary the service runs (default: this executable).
    #[arg(long, value_name = "FILE")]
    pub bin: Option<PathBuf>,
    /// Start the daemon, wait for /ready and run a sandbox test booking. With prefix /
    /// and a service, through systemctl/launchctl; otherwise as a detached process.
    #[arg(long)]
    pub start: bool,

    #[arg(long, env = "ARO_BUSINESS_NAME", value_name = "NAME")]
    pub business_name: Option<String>,
    /// E.164, e.g. +15551234567.
    #[arg(long, env = "ARO_BUSINESS_PHONE", value_name = "NUMBER")]
    pub business_phone: Option<String>,
    /// IANA time zone, e.g. America/New_York.
    #[arg(long, env = "ARO_TIMEZONE", value_name = "ZONE")]
    pub timezone: Option<String>,
    /// healthcare, salon, legal or coaching.
    #[arg(long, env = "ARO_PROFILE", value_name = "PACK")]
    pub profile: Option<String>,
    /// Address to serve on (default 127.0.0.1:8080).
    #[arg(long, env = "ARO_LISTEN", value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// Data directory (default: <prefix>/var/lib/aro, or the service's usual place).
    #[arg(long, env = "ARO_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// postgres://… (default: SQLite in the data directory).
    #[arg(
        long,
        env = "ARO_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,
    /// HH:MM-HH:MM, off, or empty for the profile pack's.
    #[arg(long, env = "ARO_QUIET_HOURS", value_name = "WINDOW")]
    pub quiet_hours: Option<String>,
    #[arg(
        long,
        env = "ARO_CALENDLY_SIGNING_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub calendly_signing_key: Option<String>,
    #[arg(
        long,
        env = "ARO_CALENDLY_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub calendly_token: Option<String>,
    #[arg(long, env = "ARO_TWILIO_ACCOUNT_SID", value_name = "SID")]
    pub twilio_account_sid: Option<String>,
    /// Prefer the environment variable: a flag shows in the process list.
    #[arg(
        long,
        env = "ARO_TWILIO_AUTH_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub twilio_auth_token: Option<String>,
    #[arg(long, env = "ARO_TWILIO_FROM", value_name = "SENDER")]
    pub twilio_from: Option<String>,
    #[arg(
        long,
        env = "ARO_STRIPE_SECRET_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub stripe_secret_key: Option<String>,
    #[arg(
        long,
        env = "ARO_STRIPE_WEBHOOK_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub stripe_webhook_secret: Option<String>,
    /// Calendly's API (for a proxy or a test server; default https://api.calendly.com).
    #[arg(long, env = "ARO_CALENDLY_API_BASE", value_name = "URL")]
    pub calendly_api_base: Option<String>,
    /// Twilio's API (for a proxy or a test server; default https://api.twilio.com).
    #[arg(long, env = "ARO_TWILIO_API_BASE", value_name = "URL")]
    pub twilio_api_base: Option<String>,
    /// Stripe's API (for a proxy or a test server; default https://api.stripe.com).
    #[arg(long, env = "ARO_STRIPE_API_BASE", value_name = "URL")]
    pub stripe_api_base: Option<String>,
    /// Do not call the providers to test the credentials given (offline installs).
    #[arg(long)]
    pub skip_connection_test: bool,
    /// The system user the systemd system service runs as; created when missing (as
    /// root, on a real install — or under a prefix when this flag is given).
    #[arg(long, value_name = "NAME")]
    pub service_user: Option<String>,
    /// The first admin user (an owner). Left alone when it exists.
    #[arg(long, value_name = "NAME")]
    pub admin_user: Option<String>,
    /// The environment variable holding the admin password (never on the command line).
    #[arg(long, value_name = "VAR")]
    pub admin_password_env: Option<String>,
}

/// The flag that answers each key, for error messages.
fn flag_for(key: &str) -> String {
    format!("--{}", key.replace(['.', '_'], "-"))
}

pub fn run(args: InstallArgs) -> anyhow::Result<()> {
    let interactive = !args.non_interactive;
    if interactive && !std::io::stdin().is_terminal() {
        bail!(
            "stdin is not a terminal: run `aro install --non-interactive` with flags \
             (see `aro install --help`)"
        );
    }
    let layout = Layout::new(&args.prefix, args.service, args.config_dir.as_deref());
    let existing = Answers::read_file(&layout.config_file)?;
    let rerun = existing.is_some();
    let (mut answers, base) = existing.unwrap_or_default();
    if rerun {
        println!(
            "Found {}: its answers are kept unless you change them.",
            layout.config_file.display()
        );
        for (key, value) in existing_credentials(&layout.config_file) {
            answers.set(&key, value);
        }
    }
    apply_flags(&mut answers, &args);
    if answers.non_empty("data_dir").is_none() {
        answers.set("data_dir", layout.default_data_dir.display().to_string());
    }
    if answers.non_empty("listen").is_none() {
        answers.set("listen", "127.0.0.1:8080");
    }
    let admins = if rerun {
        existing_admins(&layout.config_file)
    } else {
        Vec::new()
    };

    let admin = if interactive {
        print_checks(&layout, &answers, false);
        wizard(&mut answers, &admins, args.skip_connection_test)?
    } else {
        non_interactive_admin(&answers, &args, &admins)?
    };
    if answers.non_empty("booking.webhook_secret").is_none() {
        answers.set("booking.webhook_secret", generate_secret());
    }
    // Every answer is checked before anything is written.
    let loaded = answers.validate()?;
    if let Some(admin) = &admin {
        setup::check_admin(admin)?;
    }
    let listen = loaded.config.listen;
    if args.start && !setup::port_free(listen) {
        bail!("{listen} is in use: stop the running daemon (or choose another --listen) before --start");
    }
    if !interactive && !print_checks(&layout, &answers, true) {
        bail!("the system check failed (nothing was written)");
    }
    if !interactive && !args.skip_connection_test {
        println!("Connection test:");
        let results = test_connections(&loaded.config);
        for result in &results {
            println!("  {}", result.line());
        }
        let failed: Vec<&str> = results
            .iter()
            .filter(|r| r.failed())
            .map(|r| r.provider)
            .collect();
        if !failed.is_empty() {
            bail!(
                "the connection test failed for {} (nothing was written): correct the \
                 credentials, leave them out to run that provider in sandbox, or pass \
                 --skip-connection-test to install anyway",
                failed.join(" and ")
            );
        }
    }
    install(&layout, &args, &answers, &base, admin.as_ref(), &admins)
}

fn apply_flags(answers: &mut Answers, args: &InstallArgs) {
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    for (key, value) in [
        ("business.name", args.business_name.clone()),
        ("business.phone", args.business_phone.clone()),
        ("timezone", args.timezone.clone()),
        ("profile", args.profile.clone()),
        ("listen", args.listen.clone()),
        ("data_dir", path(&args.data_dir)),
        ("database.url", args.database_url.clone()),
        ("quiet_hours", args.quiet_hours.clone()),
        ("calendly.signing_key", args.calendly_signing_key.clone()),
        ("calendly.token", args.calendly_token.clone()),
        ("twilio.account_sid", args.twilio_account_sid.clone()),
        ("twilio.auth_token", args.twilio_auth_token.clone()),
        ("twilio.from", args.twilio_from.clone()),
        ("stripe.secret_key", args.stripe_secret_key.clone()),
        ("stripe.webhook_secret", args.stripe_webhook_secret.clone()),
        ("calendly.api_base", args.calendly_api_base.clone()),
        ("twilio.api_base", args.twilio_api_base.clone()),
        ("stripe.api_base", args.stripe_api_base.clone()),
    ] {
        answers.set_opt(key, value);
    }
}

/// The admin users of an existing installation (none when its database is not there).
fn existing_admins(config_file: &Path) -> Vec<String> {
    let Ok(loaded) = Config::load(&ConfigSources {
        file: Some(config_file.to_path_buf()),
        env: Vec::new(),
    }) else {
        return Vec::new();
    };
    if let DatabaseUrl::Sqlite(path) = &loaded.config.database.url {
        if !path.exists() {
            return Vec::new();
        }
    }
    setup::existing_admins(&loaded.config).unwrap_or_default()
}

/// The credentials an existing installation keeps sealed (none when its database or
/// master key cannot be read: the answers then come from the flags or the prompts).
fn existing_credentials(config_file: &Path) -> Vec<(String, String)> {
    let Ok(loaded) = Config::load(&ConfigSources {
        file: Some(config_file.to_path_buf()),
        env: Vec::new(),
    }) else {
        return Vec::new();
    };
    match credentials::read_sealed(&loaded.config) {
        Ok(sealed) => sealed,
        Err(err) => {
            println!("! the sealed credentials cannot be read ({err}); answer them again");
            Vec::new()
        }
    }
}

/// Non-interactive: the admin from the flags, and every missing answer at once.
fn non_interactive_admin(
    answers: &Answers,
    args: &InstallArgs,
    admins: &[String],
) -> Result<Option<AdminAnswer>, InstallError> {
    let mut missing: Vec<String> = answers
        .missing()
        .iter()
        .map(|key| format!("{key} ({})", flag_for(key)))
        .collect();
    let mut admin = None;
    match (&args.admin_user, &args.admin_password_env) {
        (None, _) if !admins.is_empty() => {}
        (None, _) => missing.push("the first admin user (--admin-user)".to_string()),
        (Some(_), None) => missing.push(
            "the admin password (--admin-password-env VAR, with the password in $VAR)".to_string(),
        ),
        (Some(user), Some(var)) => match std::env::var(var) {
            Ok(password) if !password.is_empty() => {
                admin = Some(AdminAnswer {
                    username: user.clone(),
                    password: Secret::new(password),
                });
            }
            _ => missing.push(format!(
                "the admin password (the variable {var} is empty or unset)"
            )),
        },
    }
    if missing.is_empty() {
        Ok(admin)
    } else {
        Err(InstallError::Missing(missing))
    }
}

/// Prints the system check; `false` when a check that blocks installing failed.
fn print_checks(layout: &Layout, answers: &Answers, with_port: bool) -> bool {
    let data_dir = answers
        .non_empty("data_dir")
        .map(PathBuf::from)
        .unwrap_or_else(|| layout.default_data_dir.clone());
    let listen = if with_port {
        answers.non_empty("listen").and_then(|l| l.parse().ok())
    } else {
        None
    };
    let mut dirs = vec![layout.config_dir.as_path(), data_dir.as_path()];
    if let Some(unit) = layout.unit_file.as_deref().and_then(Path::parent) {
        dirs.push(unit);
    }
    println!("System check:");
    let mut ok = true;
    for line in setup::system_check(&dirs, listen) {
        println!("  {} {}", if line.ok { "✓" } else { "!" }, line.text);
        if !line.ok && line.text.starts_with("cannot write") {
            ok = false;
        }
    }
    ok
}

// ---------------------------------------------------------------------------------
// The wizard

fn ask(
    prompt: &str,
    default: Option<&str>,
    check: impl Fn(&str) -> Result<(), String>,
) -> anyhow::Result<String> {
    let mut input = Input::<String>::new().with_prompt(prompt);
    if let Some(default) = default.filter(|d| !d.is_empty()) {
        input = input.default(default.to_string());
    }
    let answer = input
        .validate_with(|value: &String| check(value.trim()))
        .interact_text()
        .context("cannot read the answer")?;
    Ok(answer.trim().to_string())
}

fn ask_optional(
    prompt: &str,
    default: Option<&str>,
    check: impl Fn(&str) -> Result<(), String>,
) -> anyhow::Result<String> {
    let mut input = Input::<String>::new().with_prompt(prompt).allow_empty(true);
    if let Some(default) = default.filter(|d| !d.is_empty()) {
        input = input.default(default.to_string());
    }
    let answer = input
        .validate_with(|value: &String| check(value.trim()))
        .interact_text()
        .context("cannot read the answer")?;
    Ok(answer.trim().to_string())
}

/// A secret: typed without echo; Enter keeps the current one when there is one.
fn ask_secret(answers: &mut Answers, key: &str, prompt: &str) -> anyhow::Result<()> {
    let has = answers.non_empty(key).is_some();
    let prompt = if has {
        format!("{prompt} (Enter keeps the current one)")
    } else {
        prompt.to_string()
    };
    let typed = Password::new()
        .with_prompt(prompt)
        .allow_empty_password(has)
        .interact()
        .context("cannot read the answer")?;
    if !typed.is_empty() {
        answers.set(key, typed);
    }
    Ok(())
}

fn value_check<T>(
    parse: fn(&toml::Value) -> Result<T, String>,
) -> impl Fn(&str) -> Result<(), String> {
    move |s: &str| parse(&toml::Value::String(s.to_string())).map(|_| ())
}

fn one_of(choices: &'static [&'static str]) -> impl Fn(&str) -> Result<(), String> {
    move |s: &str| {
        if choices.contains(&s) {
            Ok(())
        } else {
            Err(format!("answer one of: {}", choices.join(", ")))
        }
    }
}

/// The whole wizard: the business, the integrations (tested live until they work or
/// the operator decides otherwise), quiet hours and the first admin.
fn wizard(
    answers: &mut Answers,
    admins: &[String],
    skip_connection_test: bool,
) -> anyhow::Result<Option<AdminAnswer>> {
    println!();
    ask_business(answers)?;
    ask_integrations(answers)?;
    if !skip_connection_test {
        while let Some(failed) = connection_failures(answers)? {
            let names: Vec<&str> = failed.iter().map(|r| r.provider).collect();
            let choice = Select::new()
                .with_prompt("The connection test failed")
                .items(&[
                    "Enter the integration answers again".to_string(),
                    format!("Run {} in sandbox for now", names.join(" and ")),
                    "Keep them as they are (`aro diagnose` will keep reporting it)".to_string(),
                ])
                .default(0)
                .interact()
                .context("cannot read the answer")?;
            match choice {
                0 => ask_integrations(answers)?,
                1 => {
                    for result in &failed {
                        for key in result.keys {
                            answers.set(key, "");
                        }
                    }
                    println!("{} will run in sandbox.", names.join(" and "));
                    break;
                }
                _ => break,
            }
        }
    }
    ask_quiet_hours(answers)?;
    ask_admin(admins)
}

/// Runs the live connection test on the answers so far and prints each provider's
/// verdict; the failed ones, if any.
fn connection_failures(answers: &Answers) -> anyhow::Result<Option<Vec<ConnectionResult>>> {
    let loaded = answers.validate()?;
    println!("Connection test:");
    let results = test_connections(&loaded.config);
    for result in &results {
        println!("  {}", result.line());
    }
    let failed: Vec<ConnectionResult> = results.into_iter().filter(|r| r.failed()).collect();
    Ok((!failed.is_empty()).then_some(failed))
}

/// The answer so far to `key`, offered as the default.
fn current(answers: &Answers, key: &str) -> Option<String> {
    answers.get(key).map(str::to_string)
}

fn ask_business(answers: &mut Answers) -> anyhow::Result<()> {
    let name = ask(
        "Business name",
        current(answers, "business.name").as_deref(),
        |s| {
            if s.is_empty() {
                Err("the business needs a name".to_string())
            } else {
                Ok(())
            }
        },
    )?;
    answers.set("business.name", name);
    let phone_check = value_check(values::optional_e164);
    let phone = ask(
        "Business phone (E.164, e.g. +15551234567)",
        current(answers, "business.phone").as_deref(),
        |s| {
            if s.is_empty() {
                Err("the phone customers can call, e.g. +15551234567".to_string())
            } else {
                phone_check(s)
            }
        },
    )?;
    answers.set("business.phone", phone);
    let zone = ask(
        "Time zone (IANA, e.g. America/New_York)",
        current(answers, "timezone").as_deref().or(Some("UTC")),
        value_check(values::time_zone),
    )?;
    answers.set("timezone", zone);
    let profile = ask(
        &format!("Profile pack ({})", PROFILES.join("/")),
        current(answers, "profile")
            .as_deref()
            .or(Some("healthcare")),
        one_of(&PROFILES),
    )?;
    answers.set("profile", profile);
    let listen = ask(
        "Listen address",
        current(answers, "listen").as_deref(),
        value_check(values::socket_addr),
    )?;
    answers.set("listen", listen);
    Ok(())
}

/// Booking, messaging and payments: each a provider with its credentials, or sandbox.
fn ask_integrations(answers: &mut Answers) -> anyhow::Result<()> {
    // Booking: the signed booking webhook always gets a secret (the test booking uses
    // it); Calendly is added when chosen.
    let booking_default = if answers.non_empty("calendly.signing_key").is_some() {
        "calendly"
    } else {
        "webhook"
    };
    let booking = ask(
        "Booking system (webhook/calendly)",
        Some(booking_default),
        one_of(&["webhook", "calendly"]),
    )?;
    if booking == "calendly" {
        ask_secret(
            answers,
            "calendly.signing_key",
            "Calendly webhook signing key",
        )?;
        ask_secret(answers, "calendly.token", "Calendly personal access token")?;
    } else {
        answers.set("calendly.signing_key", "");
        answers.set("calendly.token", "");
    }

    let messaging_default = if answers.non_empty("twilio.account_sid").is_some() {
        "twilio"
    } else {
        "sandbox"
    };
    let messaging = ask(
        "Messaging (sandbox/twilio)",
        Some(messaging_default),
        one_of(&["sandbox", "twilio"]),
    )?;
    if messaging == "twilio" {
        let sid = ask(
            "Twilio account SID",
            current(answers, "twilio.account_sid").as_deref(),
            |s| {
                if s.starts_with("AC") {
                    Ok(())
                } else {
                    Err("an account SID starts with AC".to_string())
                }
            },
        )?;
        answers.set("twilio.account_sid", sid);
        ask_secret(answers, "twilio.auth_token", "Twilio auth token")?;
        let from = ask(
            "Twilio sender (E.164, whatsapp:+…, or a messaging service SID)",
            current(answers, "twilio.from").as_deref(),
            value_check(values::twilio_sender),
        )?;
        answers.set("twilio.from", from);
    } else {
        for key in ["twilio.account_sid", "twilio.auth_token", "twilio.from"] {
            answers.set(key, "");
        }
    }

    let payments_default = if answers.non_empty("stripe.secret_key").is_some() {
        "stripe"
    } else {
        "none"
    };
    let payments = ask(
        "Payments (none/stripe)",
        Some(payments_default),
        one_of(&["none", "stripe"]),
    )?;
    if payments == "stripe" {
        ask_secret(answers, "stripe.secret_key", "Stripe secret key")?;
        ask_secret(
            answers,
            "stripe.webhook_secret",
            "Stripe webhook signing secret",
        )?;
    } else {
        answers.set("stripe.secret_key", "");
        answers.set("stripe.webhook_secret", "");
    }
    Ok(())
}

fn ask_quiet_hours(answers: &mut Answers) -> anyhow::Result<()> {
    let quiet = ask_optional(
        "Quiet hours (HH:MM-HH:MM, off, or Enter for the pack's)",
        current(answers, "quiet_hours").as_deref(),
        value_check(values::quiet_hours),
    )?;
    answers.set("quiet_hours", quiet);
    Ok(())
}

/// The first admin user, unless one exists.
fn ask_admin(admins: &[String]) -> anyhow::Result<Option<AdminAnswer>> {
    if !admins.is_empty() {
        println!(
            "Admin user {} exists; it is left as it is.",
            admins.join(", ")
        );
        return Ok(None);
    }
    let username = ask("Admin username", Some("admin"), |s| {
        crate::auth::users::normalize_username(s)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })?;
    let name_for_policy = crate::auth::users::normalize_username(&username)?;
    let password = Password::new()
        .with_prompt("Admin password (12+ characters: upper and lower case, a digit, a symbol)")
        .with_confirmation("Repeat the password", "The passwords differ; again.")
        .validate_with(move |p: &String| {
            crate::auth::password::check_policy(p, Some(&name_for_policy))
                .map_err(|e| e.to_string())
        })
        .interact()
        .context("cannot read the password")?;
    Ok(Some(AdminAnswer {
        username,
        password: Secret::new(password),
    }))
}

// ---------------------------------------------------------------------------------
// Writing

fn install(
    layout: &Layout,
    args: &InstallArgs,
    answers: &Answers,
    base: &toml::Table,
    admin: Option<&AdminAnswer>,
    admins: &[String],
) -> anyhow::Result<()> {
    println!();
    setup::create_dir(&layout.config_dir, 0o750)?;
    let text = Answers::render(&answers.merge_into(base))?;
    let written = setup::write_file(&layout.config_file, &text, 0o600)?;
    println!(
        "✓ configuration {} ({}; mode 0600; credentials are sealed in the store)",
        layout.config_file.display(),
        match written {
            Written::Created => "created",
            Written::Updated => "updated",
            Written::Unchanged => "unchanged",
        }
    );
    let config = Config::load(&ConfigSources {
        file: Some(layout.config_file.clone()),
        env: Vec::new(),
    })
    .map_err(InstallError::from)?
    .config;
    setup::create_dir(&config.data_dir, 0o700)?;
    println!("✓ data directory {}", config.data_dir.display());
    match setup::master_key(&config)? {
        KeySource::Created(path) => println!(
            "✓ master key created: {} (0600; back it up)",
            path.display()
        ),
        KeySource::File(path) => println!("✓ master key exists, kept: {}", path.display()),
        KeySource::Configured | KeySource::Provided => {
            println!("✓ master key from the configuration")
        }
    }
    let report = setup::prepare_database(&config, Progress::stderr())?;
    println!(
        "✓ database ready ({} migration(s) applied)",
        report.applied.len()
    );
    match admin {
        Some(admin) => match setup::create_admin(&config, admin)? {
            AdminOutcome::Created(name) => println!("✓ admin user {name} created (owner)"),
            AdminOutcome::Exists(name) => println!("✓ admin user {name} exists; left unchanged"),
        },
        None if !admins.is_empty() => {
            println!("✓ admin user {} exists; left unchanged", admins.join(", "))
        }
        None => println!("! no admin user: create one with `aro admin create-user`"),
    }
    let config = seal_credentials(layout, &config, answers)?;

    let bin = match &args.bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe().context("cannot find this executable")?,
    };
    let account = service_account(layout, args, &config)?;
    let service_user = args
        .service_user
        .as_deref()
        .unwrap_or(account::DEFAULT_USER);
    let (user, group) = match &account {
        Some(account) => (account.user.as_str(), account.group.as_str()),
        None => (service_user, service_user),
    };
    if let Some(unit_file) = &layout.unit_file {
        let paths = UnitPaths {
            bin: &bin,
            config_file: &layout.config_file,
            data_dir: &config.data_dir,
            user,
            group,
        };
        if let Some(unit) = service::render(layout.service, paths)? {
            if let Some(dir) = unit_file.parent() {
                setup::create_dir(dir, 0o755)?;
            }
            setup::write_file(unit_file, &unit, 0o644)?;
            println!("✓ {} unit {}", layout.service.as_str(), unit_file.display());
        }
    }

    if args.start {
        start_and_test(layout, &bin, &config)?;
    }
    next_steps(layout, &config, args.start);
    Ok(())
}

/// Seals the answered credentials in the store (AES-256-GCM under the master key; an
/// empty answer removes one) and answers the configuration the daemon will see: the
/// file with the sealed credentials layered in.
fn seal_credentials(layout: &Layout, config: &Config, answers: &Answers) -> anyhow::Result<Config> {
    let master = crate::crypto::MasterKey::load(config).map_err(InstallError::from)?;
    let db = crate::store::Database::open(&config.database).map_err(InstallError::from)?;
    let mut conn = db.get().map_err(InstallError::from)?;
    let stored = credentials::store(&mut conn, &master, &answers.sealed(), &Actor::cli())?;
    if !stored.sealed.is_empty() {
        println!(
            "✓ credentials sealed in the store (AES-256-GCM under the master key): {}",
            stored.sealed.join(", ")
        );
    }
    if !stored.removed.is_empty() {
        println!("✓ credentials removed: {}", stored.removed.join(", "));
    }
    let sources = ConfigSources {
        file: Some(layout.config_file.clone()),
        env: Vec::new(),
    };
    Ok(credentials::load(&sources, Reach::Required)?.config)
}

/// For a systemd system service: the dedicated user, created when missing, made owner
/// of the data directory and the configuration file. Done on a real install (prefix
/// `/`) run as root, or under a prefix when `--service-user` names the account.
fn service_account(
    layout: &Layout,
    args: &InstallArgs,
    config: &Config,
) -> anyhow::Result<Option<ServiceAccount>> {
    if layout.service != ServiceKind::SystemdSystem {
        return Ok(None);
    }
    let name = args
        .service_user
        .as_deref()
        .unwrap_or(account::DEFAULT_USER);
    account::check_name(name)?;
    if !layout.is_root_prefix() && args.service_user.is_none() {
        println!(
            "- service user {name}: not created under the prefix {} (a real install \
             creates it; or name one with --service-user)",
            layout.prefix.display()
        );
        return Ok(None);
    }
    if !account::running_as_root() {
        println!(
            "! service user {name}: not created — run the installer as root to create it \
             and give it the data directory, or see docs/operations.md"
        );
        return Ok(None);
    }
    let outcome = account::ensure(name, &config.data_dir)?;
    let account = outcome.account().clone();
    account::hand_over(
        &account,
        &config.data_dir,
        &layout.config_file,
        &layout.config_dir,
    )?;
    println!(
        "✓ service user {} {} (group {}); it owns {} and {}",
        account.user,
        match outcome {
            AccountOutcome::Created(_) => "created",
            AccountOutcome::Existed(_) => "exists",
        },
        account.group,
        config.data_dir.display(),
        layout.config_file.display()
    );
    Ok(Some(account))
}

fn start_and_test(layout: &Layout, bin: &Path, config: &Config) -> anyhow::Result<()> {
    let addr = launch::reachable(config.listen);
    match (&layout.unit_file, layout.is_root_prefix()) {
        (Some(unit_file), true) => {
            service::enable_and_start(layout.service, unit_file)?;
            println!("✓ started through {}", layout.service.as_str());
        }
        _ => {
            let pid = launch::spawn_detached(bin, &layout.config_file, &config.data_dir)?;
            println!(
                "✓ started aro serve (pid {pid}; log {}, pid file {})",
                config.data_dir.join(launch::LOG_FILE).display(),
                config.data_dir.join(launch::PID_FILE).display()
            );
        }
    }
    let spinner = Progress::stderr().spinner("waiting for /ready");
    let ready = launch::wait_ready(addr, launch::READY_TIMEOUT);
    spinner.finish_and_clear();
    if let Err(err) = ready {
        bail!(
            "{err}\nlast log lines:\n{}",
            launch::log_tail(&config.data_dir)
        );
    }
    println!("✓ http://{addr}/ready answers 200");
    if config.twilio.auth_token.is_some() {
        println!(
            "- test booking skipped: messaging uses Twilio, and a test would text a real \
             number; try `aro test messaging --to <your phone>`"
        );
        return Ok(());
    }
    let spinner = Progress::stderr().spinner("sandbox test booking");
    let booked = launch::sandbox_test_booking(config, addr);
    spinner.finish_and_clear();
    let booked = booked?;
    println!(
        "✓ sandbox test booking: appointment {} booked, its confirmation recorded ({}) and the \
         booking cancelled again",
        booked.appointment_id, booked.message_status
    );
    Ok(())
}

fn next_steps(layout: &Layout, config: &Config, started: bool) {
    let url = config.public_url.as_str().trim_end_matches('/');
    let shown = launch::reachable(config.listen);
    println!();
    println!("Dashboard: http://{shown}/");
    println!("Next steps:");
    if !started {
        println!(
            "  - start it: {}",
            match layout.service {
                ServiceKind::SystemdSystem =>
                    "sudo systemctl daemon-reload && sudo systemctl enable --now aro".to_string(),
                ServiceKind::SystemdUser =>
                    "systemctl --user daemon-reload && systemctl --user enable --now aro"
                        .to_string(),
                ServiceKind::Launchd =>
                    "sudo launchctl bootstrap system /Library/LaunchDaemons/com.aro.daemon.plist"
                        .to_string(),
                ServiceKind::None => format!("aro serve --config {}", layout.config_file.display()),
            }
        );
    }
    if layout.service == ServiceKind::SystemdSystem && layout.is_root_prefix() {
        println!(
            "  - the unit runs as the user aro: sudo useradd --system --user-group aro; \
             sudo chown -R aro:aro {} {}",
            config.data_dir.display(),
            layout.config_file.display()
        );
    }
    println!(
        "  - point your booking system at {url}/webhooks/booking (signed with booking.webhook_secret in {})",
        layout.config_file.display()
    );
    println!(
        "  - check everything: aro diagnose --config {}",
        layout.config_file.display()
    );
    println!(
        "  - back up the master key in {} somewhere safe",
        config.data_dir.display()
    );
}

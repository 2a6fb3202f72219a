//! ARO's configuration: built-in defaults, an optional TOML file, `ARO_*` environment
//! variables (SPEC §11). Loading validates every key and reports all problems at once;
//! nothing is written anywhere while loading.

mod error;
mod layers;
mod reader;
mod secret;
pub mod values;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actors::profile::{PackError, ProfilePack};
use chrono_tz::Tz;

pub use error::{ConfigError, ConfigProblem};
pub use layers::{env_name, Source, CONFIG_FILE_ENV, DEFAULTS_TOML};
pub use secret::{Secret, MASK};
pub use values::{DatabaseUrl, LogFormat, QuietHours, PROFILES};

use layers::Layers;
use reader::{boolean, integer, number, Reader};

/// The validated configuration of one daemon.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// The URL providers call; defaults to `http://` + `listen`.
    pub public_url: url::Url,
    pub profile: String,
    /// Where packs are read from; `None`: the packs built into the binary.
    pub profiles_dir: Option<PathBuf>,
    /// The loaded, validated profile pack named by `profile`.
    pub pack: Arc<ProfilePack>,
    pub timezone: Tz,
    pub quiet_hours: QuietHours,
    /// `None` means the key file in the data directory.
    pub master_key: Option<Secret<[u8; 32]>>,
    pub business: BusinessConfig,
    pub database: DatabaseConfig,
    pub http: HttpConfig,
    pub log: LogConfig,
    pub calendly: CalendlyConfig,
    pub twilio: TwilioConfig,
    pub stripe: StripeConfig,
    pub booking: BookingConfig,
    pub llm: LlmConfig,
    pub backup: BackupConfig,
}

#[derive(Debug, Clone)]
pub struct BusinessConfig {
    pub name: String,
    pub phone: Option<String>,
    pub review_url: Option<url::Url>,
    pub booking_url: Option<url::Url>,
    pub country: String,
    pub currency: String,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: DatabaseUrl,
    pub pool_size: u32,
    pub connect_timeout: Duration,
    pub migrate_on_start: bool,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub max_body_bytes: usize,
    pub shutdown_timeout: Duration,
    /// 0 means one worker per CPU core.
    pub workers: usize,
    /// Webhook requests allowed per source address and minute; 0 means no limit.
    pub webhook_rate_limit_per_minute: u32,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone)]
pub struct CalendlyConfig {
    pub signing_key: Option<Secret<String>>,
    pub token: Option<Secret<String>>,
    pub api_base: url::Url,
}

#[derive(Debug, Clone)]
pub struct TwilioConfig {
    pub account_sid: Option<String>,
    pub auth_token: Option<Secret<String>>,
    pub from: Option<String>,
    pub api_base: url::Url,
    /// Messages per second the sender allows.
    pub rate: f64,
}

#[derive(Debug, Clone)]
pub struct StripeConfig {
    pub secret_key: Option<Secret<String>>,
    pub webhook_secret: Option<Secret<String>>,
    pub api_base: url::Url,
}

#[derive(Debug, Clone)]
pub struct BookingConfig {
    pub webhook_secret: Option<Secret<String>>,
}

/// The daemon's own backups (SPEC §9).
#[derive(Debug, Clone)]
pub struct BackupConfig {
    /// Take an encrypted backup every day at 02:00 in the business's zone and keep
    /// the newest 30.
    pub daily: bool,
}

#[derive(Debug, Clone)]
pub struct LlmConfig {
    pub api_base: Option<url::Url>,
    pub api_key: Option<Secret<String>>,
    pub model: Option<String>,
    /// Classification requests allowed per calendar month (UTC); 0 never calls.
    pub monthly_budget: u64,
}

/// Where to load configuration from.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    /// The TOML file (`--config` / `ARO_CONFIG`), if any.
    pub file: Option<PathBuf>,
    /// The environment, as name/value pairs.
    pub env: Vec<(String, String)>,
}

impl ConfigSources {
    /// The process environment and an optional file.
    pub fn from_process(file: Option<PathBuf>) -> Self {
        Self {
            file,
            env: std::env::vars().collect(),
        }
    }
}

/// A loaded configuration together with the layered view it came from.
#[derive(Debug)]
pub struct LoadedConfig {
    pub config: Config,
    layers: Layers,
    secret_keys: std::collections::BTreeSet<String>,
}

impl LoadedConfig {
    /// The effective configuration as TOML (dotted keys), each line commented with its
    /// source. Secrets are masked; a PostgreSQL URL shows without its password.
    pub fn render_masked(&self) -> String {
        let mut out = String::new();
        for (key, setting) in &self.layers.settings {
            let shown = if self.secret_keys.contains(key) {
                let set = setting.value.as_str().is_some_and(|s| !s.trim().is_empty());
                toml::Value::String(if set { MASK.to_string() } else { String::new() })
            } else if key == "database.url" {
                toml::Value::String(mask_url_password(setting.value.as_str().unwrap_or("")))
            } else {
                setting.value.clone()
            };
            out.push_str(&format!("{key} = {shown}  # {}\n", setting.source));
        }
        out
    }
}

/// The pack `name`: `<dir>/<name>.toml` when a directory is configured, else the one
/// built into the binary. Problems name the file, the key and the reason (SPEC §2).
pub fn load_pack(name: &str, dir: Option<&std::path::Path>) -> Result<ProfilePack, PackError> {
    match dir {
        None => ProfilePack::shipped(name),
        Some(dir) => {
            let path = dir.join(format!("{name}.toml"));
            let file = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| PackError {
                file: file.clone(),
                key: String::new(),
                reason: format!("cannot read: {e}"),
            })?;
            actors::profile::parse_pack(&file, &text)
        }
    }
}

fn mask_url_password(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some(MASK));
            url.to_string()
        }
        _ => raw.to_string(),
    }
}

impl Config {
    /// Loads and validates the configuration; every problem is reported at once.
    pub fn load(sources: &ConfigSources) -> Result<LoadedConfig, ConfigError> {
        Self::load_with_sealed(sources, &[])
    }

    /// [`Config::load`] with credentials from the sealed store (key, value) layered
    /// between the file and the environment.
    pub fn load_with_sealed(
        sources: &ConfigSources,
        sealed: &[(String, String)],
    ) -> Result<LoadedConfig, ConfigError> {
        let layers = Layers::build(sources.file.as_deref(), sealed, &sources.env);
        let mut r = Reader::new(&layers);
        let built = Self::read(&mut r);
        let Reader {
            problems,
            secret_keys,
            ..
        } = r;
        match built {
            Some(config) if problems.is_empty() => Ok(LoadedConfig {
                config,
                layers,
                secret_keys,
            }),
            _ => Err(ConfigError { problems }),
        }
    }

    fn read(r: &mut Reader<'_>) -> Option<Config> {
        let listen = r.read("listen", "a socket address host:port", values::socket_addr);
        let data_dir = r.read("data_dir", "a directory path", values::non_empty_path);
        let public_url = r.read(
            "public_url",
            "an http(s) URL or empty",
            values::optional_http_url,
        );
        let profile = r.read("profile", "a profile pack name", values::profile);
        let profiles_dir = r.read(
            "profiles_dir",
            "a directory path or empty",
            values::optional_path,
        );
        let pack = match (&profile, &profiles_dir) {
            (Some(name), Some(dir)) => match load_pack(name, dir.as_deref()) {
                Ok(pack) => Some(Arc::new(pack)),
                Err(error) => {
                    r.problem("profile", "a valid profile pack", &error.to_string());
                    None
                }
            },
            _ => None,
        };
        let timezone = r.read("timezone", "an IANA time zone", values::time_zone);
        let quiet_hours = r.read(
            "quiet_hours",
            "HH:MM-HH:MM, off, or empty",
            values::quiet_hours,
        );
        let master_key = r.read_secret(
            "master_key",
            "a 32-byte key as hex or base64, or empty",
            values::master_key,
        );
        let business = Self::read_business(r);
        let database = Self::read_database(r);
        let http = Self::read_http(r);
        let log = Self::read_log(r);
        let calendly = Self::read_calendly(r);
        let twilio = Self::read_twilio(r);
        let stripe = Self::read_stripe(r);
        let booking = r.read_secret(
            "booking.webhook_secret",
            "a secret",
            values::optional_secret,
        );
        let llm = Self::read_llm(r);
        let backup_daily = r.read("backup.daily", "a boolean", boolean);

        let listen = listen?;
        let data_dir = data_dir?;
        let public_url = match public_url? {
            Some(url) => url,
            None => url::Url::parse(&format!("http://{listen}")).ok()?,
        };
        let mut database = database?;
        if let DatabaseUrl::Sqlite(path) = &database.url {
            if path.as_os_str().is_empty() {
                database.url = DatabaseUrl::Sqlite(data_dir.join("aro.db"));
            }
        }
        Some(Config {
            listen,
            data_dir,
            public_url,
            profile: profile?,
            profiles_dir: profiles_dir?,
            pack: pack?,
            timezone: timezone?,
            quiet_hours: quiet_hours?,
            master_key: master_key?,
            business: business?,
            database,
            http: http?,
            log: log?,
            calendly: calendly?,
            twilio: twilio?,
            stripe: stripe?,
            booking: BookingConfig {
                webhook_secret: booking?,
            },
            llm: llm?,
            backup: BackupConfig {
                daily: backup_daily?,
            },
        })
    }

    fn read_log(r: &mut Reader<'_>) -> Option<LogConfig> {
        let level = r.read("log.level", "a log level or filter", values::log_filter);
        let format = r.read("log.format", "json or pretty", values::log_format);
        Some(LogConfig {
            level: level?,
            format: format?,
        })
    }

    fn read_calendly(r: &mut Reader<'_>) -> Option<CalendlyConfig> {
        let signing_key =
            r.read_secret("calendly.signing_key", "a secret", values::optional_secret);
        let token = r.read_secret("calendly.token", "a secret", values::optional_secret);
        let api_base = r.read("calendly.api_base", "an http(s) URL", values::http_url);
        Some(CalendlyConfig {
            signing_key: signing_key?,
            token: token?,
            api_base: api_base?,
        })
    }

    fn read_stripe(r: &mut Reader<'_>) -> Option<StripeConfig> {
        let secret_key = r.read_secret("stripe.secret_key", "a secret", values::optional_secret);
        let webhook_secret =
            r.read_secret("stripe.webhook_secret", "a secret", values::optional_secret);
        let api_base = r.read("stripe.api_base", "an http(s) URL", values::http_url);
        Some(StripeConfig {
            secret_key: secret_key?,
            webhook_secret: webhook_secret?,
            api_base: api_base?,
        })
    }

    fn read_business(r: &mut Reader<'_>) -> Option<BusinessConfig> {
        let name = r.read("business.name", "the business name", reader::text);
        if name.as_deref() == Some("") {
            r.problem("business.name", "the business name", "must not be empty");
        }
        let phone = r.read(
            "business.phone",
            "an E.164 phone number or empty",
            values::optional_e164,
        );
        let review_url = r.read(
            "business.review_url",
            "an http(s) URL or empty",
            values::optional_http_url,
        );
        let booking_url = r.read(
            "business.booking_url",
            "an http(s) URL or empty",
            values::optional_http_url,
        );
        let country = r.read("business.country", "a country code", values::country_code);
        let currency = r.read(
            "business.currency",
            "a currency code",
            values::currency_code,
        );
        Some(BusinessConfig {
            name: name.filter(|n| !n.is_empty())?,
            phone: phone?,
            review_url: review_url?,
            booking_url: booking_url?,
            country: country?,
            currency: currency?,
        })
    }

    fn read_database(r: &mut Reader<'_>) -> Option<DatabaseConfig> {
        let url = r.read(
            "database.url",
            "sqlite://path, postgres://… or empty",
            values::database_url,
        );
        let pool_size = r.read("database.pool_size", "an integer 1–128", integer);
        let timeout = r.read("database.connect_timeout_secs", "seconds 1–300", integer);
        let migrate = r.read("database.migrate_on_start", "a boolean", boolean);
        let pool_size = in_range(
            r,
            "database.pool_size",
            "an integer 1–128",
            pool_size?,
            1,
            128,
        );
        let timeout = in_range(
            r,
            "database.connect_timeout_secs",
            "seconds 1–300",
            timeout?,
            1,
            300,
        );
        Some(DatabaseConfig {
            // Empty means "SQLite in the data directory", filled in once data_dir is known.
            url: url?.unwrap_or_else(|| DatabaseUrl::Sqlite(PathBuf::new())),
            pool_size: u32::try_from(pool_size?).ok()?,
            connect_timeout: Duration::from_secs(u64::try_from(timeout?).ok()?),
            migrate_on_start: migrate?,
        })
    }

    fn read_http(r: &mut Reader<'_>) -> Option<HttpConfig> {
        let body = r.read("http.max_body_bytes", "bytes 1024–67108864", integer);
        let shutdown = r.read("http.shutdown_timeout_secs", "seconds 0–600", integer);
        let workers = r.read("http.workers", "an integer 0–256", integer);
        let body = in_range(
            r,
            "http.max_body_bytes",
            "bytes 1024–67108864",
            body?,
            1024,
            64 << 20,
        );
        let shutdown = in_range(
            r,
            "http.shutdown_timeout_secs",
            "seconds 0–600",
            shutdown?,
            0,
            600,
        );
        let workers = in_range(r, "http.workers", "an integer 0–256", workers?, 0, 256);
        let webhook_limit = r.read(
            "http.webhook_rate_limit_per_minute",
            "requests per minute 0–1000000",
            integer,
        );
        let webhook_limit = in_range(
            r,
            "http.webhook_rate_limit_per_minute",
            "requests per minute 0–1000000",
            webhook_limit?,
            0,
            1_000_000,
        );
        Some(HttpConfig {
            max_body_bytes: usize::try_from(body?).ok()?,
            shutdown_timeout: Duration::from_secs(u64::try_from(shutdown?).ok()?),
            workers: usize::try_from(workers?).ok()?,
            webhook_rate_limit_per_minute: u32::try_from(webhook_limit?).ok()?,
        })
    }

    fn read_twilio(r: &mut Reader<'_>) -> Option<TwilioConfig> {
        let account_sid = r.read(
            "twilio.account_sid",
            "an account SID AC…",
            values::optional_text,
        );
        let auth_token = r.read_secret("twilio.auth_token", "a secret", values::optional_secret);
        let from = r.read(
            "twilio.from",
            "a sender number or whatsapp:+… address",
            values::twilio_sender,
        );
        let api_base = r.read("twilio.api_base", "an http(s) URL", values::http_url);
        let rate = r.read(
            "twilio.rate",
            "messages per second, 0 < rate ≤ 1000",
            number,
        );
        if let Some(rate) = rate {
            if !(rate > 0.0 && rate <= 1000.0) {
                r.problem(
                    "twilio.rate",
                    "messages per second, 0 < rate ≤ 1000",
                    &format!("got {rate}: out of range"),
                );
            }
        }
        if let (Some(sid), Some(token), Some(from)) = (&account_sid, &auth_token, &from) {
            if token.is_some() {
                if sid.is_none() {
                    r.problem(
                        "twilio.account_sid",
                        "an account SID AC…",
                        "required when twilio.auth_token is set",
                    );
                }
                if from.is_none() {
                    r.problem(
                        "twilio.from",
                        "a sender",
                        "required when twilio.auth_token is set",
                    );
                }
            }
        }
        Some(TwilioConfig {
            account_sid: account_sid?,
            auth_token: auth_token?,
            from: from?,
            api_base: api_base?,
            rate: rate.filter(|r| *r > 0.0 && *r <= 1000.0)?,
        })
    }

    fn read_llm(r: &mut Reader<'_>) -> Option<LlmConfig> {
        let api_base = r.read(
            "llm.api_base",
            "an http(s) URL or empty",
            values::optional_http_url,
        );
        let api_key = r.read_secret("llm.api_key", "a secret", values::optional_secret);
        let model = r.read("llm.model", "a model name", values::optional_text);
        let budget = r.read("llm.monthly_budget", "an integer 0–10000000", integer);
        let budget = budget.and_then(|b| {
            in_range(
                r,
                "llm.monthly_budget",
                "an integer 0–10000000",
                b,
                0,
                10_000_000,
            )
        });
        if let (Some(base), Some(model)) = (&api_base, &model) {
            if base.is_some() != model.is_some() {
                let key = if base.is_some() {
                    "llm.model"
                } else {
                    "llm.api_base"
                };
                r.problem(
                    key,
                    "set together",
                    "llm.api_base and llm.model are set together or not at all",
                );
            }
        }
        Some(LlmConfig {
            api_base: api_base?,
            api_key: api_key?,
            model: model?,
            monthly_budget: u64::try_from(budget?).ok()?,
        })
    }

    /// The SQLite file, when the embedded backend is selected.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.database.url {
            DatabaseUrl::Sqlite(path) => Some(path),
            DatabaseUrl::Postgres(_) => None,
        }
    }

    /// Every secret value in this configuration, for log redaction.
    pub fn secret_values(&self) -> Vec<String> {
        let mut out: Vec<String> = [
            &self.calendly.signing_key,
            &self.calendly.token,
            &self.twilio.auth_token,
            &self.stripe.secret_key,
            &self.stripe.webhook_secret,
            &self.booking.webhook_secret,
            &self.llm.api_key,
        ]
        .into_iter()
        .flatten()
        .map(|s| s.expose().clone())
        .collect();
        if let DatabaseUrl::Postgres(url) = &self.database.url {
            if let Some(password) = url::Url::parse(url.expose())
                .ok()
                .and_then(|u| u.password().map(str::to_string))
            {
                out.push(password);
            }
        }
        if let Some(key) = &self.master_key {
            out.push(hex::encode(key.expose()));
        }
        out
    }
}

fn in_range(
    r: &mut Reader<'_>,
    key: &str,
    expected: &str,
    value: i64,
    min: i64,
    max: i64,
) -> Option<i64> {
    if (min..=max).contains(&value) {
        Some(value)
    } else {
        r.problem(key, expected, &format!("got {value}: out of range"));
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> ConfigSources {
        ConfigSources {
            file: None,
            env: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn defaults_load_with_zero_configuration() {
        let loaded = Config::load(&env(&[])).expect("defaults are valid");
        let config = loaded.config;
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.sqlite_path(), Some(Path::new("./data/aro.db")));
        assert_eq!(config.public_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(config.profile, "healthcare");
        assert_eq!(config.timezone, Tz::UTC);
        assert!(config.twilio.auth_token.is_none());
    }

    #[test]
    fn every_bad_key_is_reported_at_once() {
        let err = Config::load(&env(&[
            ("ARO_TIMEZONE", "Mars/Olympus"),
            ("ARO_LISTEN", "127.0.0.1:70000"),
            ("ARO_PUBLIC_URL", "not a url"),
            ("ARO_DATABASE_POOL_SIZE", "0"),
            ("ARO_NOPE", "1"),
        ]))
        .expect_err("invalid");
        let mut keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        keys.sort();
        assert_eq!(
            keys,
            vec![
                "ARO_NOPE",
                "database.pool_size",
                "listen",
                "public_url",
                "timezone"
            ]
        );
        let text = err.to_string();
        assert!(
            text.contains("timezone (from environment ARO_TIMEZONE): expected an IANA time zone")
        );
    }

    #[test]
    fn secret_values_never_appear_in_errors_or_show() {
        let err =
            Config::load(&env(&[("ARO_MASTER_KEY", "supersecretvalue")])).expect_err("bad key");
        assert!(!err.to_string().contains("supersecretvalue"));

        let loaded = Config::load(&env(&[
            ("ARO_TWILIO_AUTH_TOKEN", "tw-secret-123456"),
            ("ARO_TWILIO_ACCOUNT_SID", "AC123"),
            ("ARO_TWILIO_FROM", "+15550001111"),
            ("ARO_DATABASE_URL", "postgres://aro:pa55word@db.example/aro"),
        ]))
        .expect("valid");
        let shown = loaded.render_masked();
        assert!(!shown.contains("tw-secret-123456"), "{shown}");
        assert!(!shown.contains("pa55word"), "{shown}");
        assert!(
            shown.contains("twilio.auth_token = \"********\"  # environment ARO_TWILIO_AUTH_TOKEN")
        );
        assert!(shown.contains("twilio.account_sid = \"AC123\""));
        assert!(loaded
            .config
            .secret_values()
            .contains(&"pa55word".to_string()));
    }

    #[test]
    fn credentials_that_need_partners_are_checked_together() {
        let err = Config::load(&env(&[("ARO_TWILIO_AUTH_TOKEN", "tok")])).expect_err("incomplete");
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, vec!["twilio.account_sid", "twilio.from"]);
        let err = Config::load(&env(&[("ARO_LLM_API_BASE", "http://127.0.0.1:1234/v1")]))
            .expect_err("no model");
        assert_eq!(err.problems[0].key, "llm.model");
    }

    #[test]
    fn the_llm_budget_defaults_to_1000_and_is_range_checked() {
        let config = Config::load(&env(&[])).expect("defaults").config;
        assert_eq!(config.llm.monthly_budget, 1000);
        let config = Config::load(&env(&[("ARO_LLM_MONTHLY_BUDGET", "0")]))
            .expect("zero is valid")
            .config;
        assert_eq!(config.llm.monthly_budget, 0);
        for bad in ["-1", "many", "10000001"] {
            let err = Config::load(&env(&[("ARO_LLM_MONTHLY_BUDGET", bad)])).expect_err(bad);
            assert_eq!(err.problems[0].key, "llm.monthly_budget", "{bad}");
        }
    }
}

#[cfg(test)]
mod pack_tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> ConfigSources {
        ConfigSources {
            file: None,
            env: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn the_configured_pack_is_loaded() {
        let loaded = Config::load(&env(&[("ARO_PROFILE", "salon")])).expect("valid");
        assert_eq!(loaded.config.pack.name, "salon");
        assert_eq!(loaded.config.pack.terminology.customer, "client");
    }

    #[test]
    fn an_unknown_pack_stops_start_up_naming_it() {
        let err = Config::load(&env(&[("ARO_PROFILE", "dentist")])).expect_err("no such pack");
        assert_eq!(err.problems[0].key, "profile");
        assert!(err.to_string().contains("dentist.toml"), "{err}");
    }

    #[test]
    fn a_broken_pack_names_its_file_key_and_reason() {
        let dir = tempfile::tempdir().expect("dir");
        let text = actors::profile::SHIPPED_PACKS[1]
            .1
            .replace("{first_name}, we missed you", "{frist_name}, we missed you");
        std::fs::write(dir.path().join("mine.toml"), text).expect("write");
        let dir_text = dir.path().display().to_string();
        let err = Config::load(&env(&[
            ("ARO_PROFILE", "mine"),
            ("ARO_PROFILES_DIR", &dir_text),
        ]))
        .expect_err("invalid pack");
        let shown = err.to_string();
        assert!(shown.contains("mine.toml"), "{shown}");
        assert!(shown.contains("templates.rebook_offer.sms"), "{shown}");
        assert!(shown.contains("unknown variable {frist_name}"), "{shown}");
    }
}

#[cfg(test)]
mod docs_tests {
    /// docs/configuration.md documents every key with its environment variable.
    #[test]
    fn every_key_is_documented() {
        let docs = include_str!("../../docs/configuration.md");
        let layers = super::layers::Layers::build(None, &[], &[]);
        for key in layers.settings.keys() {
            let row = format!("| `{key}` | `{}` |", super::env_name(key));
            assert!(
                docs.contains(&row),
                "docs/configuration.md lacks the row for {key}"
            );
        }
    }
}

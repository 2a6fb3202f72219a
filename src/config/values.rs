//! Parsers for ARO's classes of configuration value: addresses, URLs, zones, quiet
//! hours, keys, phone numbers, codes. Each returns the typed value or the reason the
//! text was refused.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use base64::Engine;
use chrono::NaiveTime;
use chrono_tz::Tz;

use super::reader::text;
use super::secret::Secret;

/// The profile packs ARO ships.
pub const PROFILES: [&str; 4] = ["healthcare", "salon", "legal", "coaching"];

/// Which database to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// The embedded default: a SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (may carry a password, hence secret).
    Postgres(Secret<String>),
}

/// The quiet-hours setting: the window in which nothing automated is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuietHours {
    /// Use the profile pack's window.
    PackDefault,
    /// No quiet hours.
    Off,
    /// Quiet from `start` until `end` (wall clock, may wrap past midnight).
    Window { start: NaiveTime, end: NaiveTime },
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

pub fn socket_addr(value: &toml::Value) -> Result<SocketAddr, String> {
    let raw = text(value)?;
    let (host, port) = raw
        .rsplit_once(':')
        .ok_or_else(|| "missing :port (use host:port, e.g. 127.0.0.1:8080)".to_string())?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("port {port:?} is not a number from 0 to 65535"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        IpAddr::from_str(host).map_err(|_| format!("{host:?} is not an IP address"))?
    };
    Ok(SocketAddr::new(ip, port))
}

pub fn non_empty_path(value: &toml::Value) -> Result<PathBuf, String> {
    let raw = text(value)?;
    if raw.is_empty() {
        return Err("must not be empty".to_string());
    }
    Ok(PathBuf::from(raw))
}

/// `sqlite://path`, `sqlite:path`, `postgres://…`, `postgresql://…`, or empty (None).
pub fn database_url(value: &toml::Value) -> Result<Option<DatabaseUrl>, String> {
    let raw = text(value).map_err(|_| "not a string".to_string())?;
    if raw.is_empty() {
        return Ok(None);
    }
    if let Some(path) = raw
        .strip_prefix("sqlite://")
        .or_else(|| raw.strip_prefix("sqlite:"))
    {
        if path.is_empty() {
            return Err("sqlite:// needs a file path, e.g. sqlite://./data/aro.db".to_string());
        }
        return Ok(Some(DatabaseUrl::Sqlite(PathBuf::from(path))));
    }
    if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
        let url = url::Url::parse(&raw).map_err(|e| format!("not a valid URL ({e})"))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err("the PostgreSQL URL has no host".to_string());
        }
        return Ok(Some(DatabaseUrl::Postgres(Secret::new(raw))));
    }
    Err("must start with sqlite:// or postgres://".to_string())
}

/// An absolute http(s) URL with a host.
pub fn http_url(value: &toml::Value) -> Result<url::Url, String> {
    let raw = text(value)?;
    let url = url::Url::parse(&raw).map_err(|e| format!("not a valid URL ({e})"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!("scheme {:?} is not http or https", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".to_string());
    }
    Ok(url)
}

/// An http(s) URL, or empty for none.
pub fn optional_http_url(value: &toml::Value) -> Result<Option<url::Url>, String> {
    if text(value)?.is_empty() {
        return Ok(None);
    }
    http_url(value).map(Some)
}

/// A pack name: a shipped one, or a file name (letters, digits, `_`, `-`) looked up in
/// `profiles_dir`. Whether the pack exists and is valid is checked when it is loaded.
pub fn profile(value: &toml::Value) -> Result<String, String> {
    let raw = text(value)?;
    let plain = !raw.is_empty()
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if plain {
        Ok(raw)
    } else {
        Err(format!(
            "not a pack name (lowercase letters, digits, _ or -); shipped: {}",
            PROFILES.join(", ")
        ))
    }
}

/// A directory path, or empty for none.
pub fn optional_path(value: &toml::Value) -> Result<Option<PathBuf>, String> {
    let raw = text(value)?;
    Ok((!raw.is_empty()).then(|| PathBuf::from(raw)))
}

pub fn time_zone(value: &toml::Value) -> Result<Tz, String> {
    let raw = text(value)?;
    Tz::from_str(&raw).map_err(|_| "not an IANA zone name such as America/New_York".to_string())
}

pub fn quiet_hours(value: &toml::Value) -> Result<QuietHours, String> {
    let raw = text(value)?;
    if raw.is_empty() {
        return Ok(QuietHours::PackDefault);
    }
    if raw.eq_ignore_ascii_case("off") {
        return Ok(QuietHours::Off);
    }
    let (start, end) = raw
        .split_once('-')
        .ok_or_else(|| "use HH:MM-HH:MM, e.g. 21:00-08:00, or off".to_string())?;
    let parse = |t: &str| {
        NaiveTime::parse_from_str(t.trim(), "%H:%M")
            .map_err(|_| format!("{:?} is not a time of day as HH:MM", t.trim()))
    };
    let (start, end) = (parse(start)?, parse(end)?);
    if start == end {
        return Err("start and end are the same; use off for no quiet hours".to_string());
    }
    Ok(QuietHours::Window { start, end })
}

/// 32 bytes as 64 hex digits or base64; empty means "use the key file".
pub fn master_key(value: &toml::Value) -> Result<Option<Secret<[u8; 32]>>, String> {
    let raw = text(value).map_err(|_| "not a string".to_string())?;
    if raw.is_empty() {
        return Ok(None);
    }
    let bytes = if raw.len() == 64 && raw.chars().all(|c| c.is_ascii_hexdigit()) {
        hex::decode(&raw).map_err(|_| "invalid hex".to_string())?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(&raw)
            .map_err(|_| "neither 64 hex digits nor base64".to_string())?
    };
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("decodes to {} bytes; the key must be 32", b.len()))?;
    Ok(Some(Secret::new(key)))
}

/// A secret string; empty means not set.
pub fn optional_secret(value: &toml::Value) -> Result<Option<Secret<String>>, String> {
    let raw = text(value).map_err(|_| "not a string".to_string())?;
    Ok((!raw.is_empty()).then(|| Secret::new(raw)))
}

/// Free text; empty means not set.
pub fn optional_text(value: &toml::Value) -> Result<Option<String>, String> {
    let raw = text(value)?;
    Ok((!raw.is_empty()).then_some(raw))
}

pub fn is_e164(raw: &str) -> bool {
    let digits = raw.strip_prefix('+').unwrap_or("");
    (8..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0')
}

/// An E.164 phone number, or empty.
pub fn optional_e164(value: &toml::Value) -> Result<Option<String>, String> {
    let raw = text(value)?;
    if raw.is_empty() {
        return Ok(None);
    }
    if is_e164(&raw) {
        Ok(Some(raw))
    } else {
        Err("not an E.164 number such as +15551234567".to_string())
    }
}

/// A Twilio sender: E.164, `whatsapp:` + E.164, or a messaging-service SID; or empty.
pub fn twilio_sender(value: &toml::Value) -> Result<Option<String>, String> {
    let raw = text(value)?;
    if raw.is_empty() {
        return Ok(None);
    }
    let number = raw.strip_prefix("whatsapp:").unwrap_or(&raw);
    let is_service_sid = raw.starts_with("MG") && raw.len() == 34;
    if is_e164(number) || is_service_sid {
        Ok(Some(raw))
    } else {
        Err("not an E.164 number, whatsapp:+… address or MG… messaging service SID".to_string())
    }
}

pub fn country_code(value: &toml::Value) -> Result<String, String> {
    let raw = text(value)?.to_ascii_uppercase();
    if raw.len() == 2 && raw.chars().all(|c| c.is_ascii_alphabetic()) {
        Ok(raw)
    } else {
        Err("not a two-letter ISO 3166-1 country code such as US".to_string())
    }
}

pub fn currency_code(value: &toml::Value) -> Result<String, String> {
    let raw = text(value)?.to_ascii_uppercase();
    if raw.len() == 3 && raw.chars().all(|c| c.is_ascii_alphabetic()) {
        Ok(raw)
    } else {
        Err("not a three-letter ISO 4217 currency code such as USD".to_string())
    }
}

pub fn log_filter(value: &toml::Value) -> Result<String, String> {
    let raw = text(value)?;
    tracing_subscriber::EnvFilter::try_new(&raw)
        .map(|_| raw)
        .map_err(|e| format!("not a log level or filter directive ({e})"))
}

pub fn log_format(value: &toml::Value) -> Result<LogFormat, String> {
    match text(value)?.to_ascii_lowercase().as_str() {
        "json" => Ok(LogFormat::Json),
        "pretty" => Ok(LogFormat::Pretty),
        _ => Err("not json or pretty".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> toml::Value {
        toml::Value::String(text.to_string())
    }

    #[test]
    fn socket_addresses() {
        assert_eq!(
            socket_addr(&s("127.0.0.1:8080")).unwrap().to_string(),
            "127.0.0.1:8080"
        );
        assert_eq!(
            socket_addr(&s("localhost:0")).unwrap().to_string(),
            "127.0.0.1:0"
        );
        assert_eq!(
            socket_addr(&s("[::1]:9000")).unwrap().to_string(),
            "[::1]:9000"
        );
        assert!(socket_addr(&s("127.0.0.1:99999"))
            .unwrap_err()
            .contains("port"));
        assert!(socket_addr(&s("127.0.0.1")).unwrap_err().contains(":port"));
        assert!(socket_addr(&s("example.com:80")).is_err());
    }

    #[test]
    fn database_urls() {
        assert_eq!(database_url(&s("")).unwrap(), None);
        assert_eq!(
            database_url(&s("sqlite://./data/x.db")).unwrap(),
            Some(DatabaseUrl::Sqlite(PathBuf::from("./data/x.db")))
        );
        assert!(matches!(
            database_url(&s("postgres://postgres@127.0.0.1/aro")).unwrap(),
            Some(DatabaseUrl::Postgres(_))
        ));
        assert!(database_url(&s("mysql://x")).is_err());
        assert!(database_url(&s("postgres://")).is_err());
        assert!(database_url(&s("sqlite://")).is_err());
    }

    #[test]
    fn urls_zones_and_profiles() {
        assert!(http_url(&s("https://api.twilio.com")).is_ok());
        assert!(http_url(&s("ftp://x")).is_err());
        assert!(http_url(&s("not a url")).is_err());
        assert_eq!(
            time_zone(&s("America/New_York")).unwrap(),
            Tz::America__New_York
        );
        assert!(time_zone(&s("Mars/Olympus")).is_err());
        assert!(profile(&s("salon")).is_ok());
        assert!(profile(&s("my-clinic_2")).is_ok(), "a pack of one's own");
        assert!(profile(&s("Dentist Pack")).is_err());
        assert!(profile(&s("../etc/passwd")).is_err());
    }

    #[test]
    fn quiet_hour_windows() {
        assert_eq!(quiet_hours(&s("")).unwrap(), QuietHours::PackDefault);
        assert_eq!(quiet_hours(&s("OFF")).unwrap(), QuietHours::Off);
        let window = quiet_hours(&s("21:00-08:00")).unwrap();
        assert_eq!(
            window,
            QuietHours::Window {
                start: NaiveTime::from_hms_opt(21, 0, 0).unwrap(),
                end: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            }
        );
        assert!(quiet_hours(&s("25:00-08:00")).is_err());
        assert!(quiet_hours(&s("08:00-08:00")).is_err());
        assert!(quiet_hours(&s("evening")).is_err());
    }

    #[test]
    fn master_keys() {
        let hex_key = "00".repeat(32);
        assert!(master_key(&s(&hex_key)).unwrap().is_some());
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert_eq!(master_key(&s(&b64)).unwrap().unwrap().expose(), &[7u8; 32]);
        assert!(master_key(&s("abcd")).unwrap_err().contains("32"));
        assert_eq!(master_key(&s("")).unwrap(), None);
    }

    #[test]
    fn phones_and_codes() {
        assert!(optional_e164(&s("+15551234567")).unwrap().is_some());
        assert!(optional_e164(&s("5551234567")).is_err());
        assert!(twilio_sender(&s("whatsapp:+15551234567")).is_ok());
        assert!(twilio_sender(&s(&format!("MG{}", "a".repeat(32)))).is_ok());
        assert!(twilio_sender(&s("hello")).is_err());
        assert_eq!(country_code(&s("de")).unwrap(), "DE");
        assert!(country_code(&s("DEU")).is_err());
        assert!(currency_code(&s("eur")).is_ok());
        assert!(log_filter(&s("info,aro=debug")).is_ok());
        assert!(log_filter(&s("info,=[")).is_err());
    }
}

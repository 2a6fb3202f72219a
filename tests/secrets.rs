//! Integration secrets on both backends, through the real `aro secrets` commands:
//! `set` and `list` never print a value, the ciphertext at rest does not contain the
//! plaintext, and `rotate-key` re-seals everything under a new master key that the old
//! key no longer opens — with a key file (replaced, old key retired beside it) and with
//! `ARO_MASTER_KEY` (new key written to a file for the operator).

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use aro::auth::models::SecretRow;
use aro::auth::secrets::{self, SecretsError};
use aro::crypto::Key;
use aro::store::schema::{audit_log, integration_secrets};
use aro::store::{Conn, Database};
use common::{aro_command, migrated_database, Kind, TestDb};
use diesel::prelude::*;

const TWILIO: &str = "tw_auth_7c1f0d9e4b2a8c6f";
const STRIPE: &str = "sk_live_51HxQpLmN0pQrStUvWx";

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn aro(db: &TestDb, env: &[(&str, &str)], args: &[&str], stdin: &str) -> Run {
    let mut child = aro_command(db.data_dir())
        .args(args)
        .env("ARO_DATABASE_URL", &db.url)
        .env("ARO_DATA_DIR", db.data_dir())
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run aro");
    let mut pipe = child.stdin.take().expect("stdin");
    pipe.write_all(stdin.as_bytes()).expect("write stdin");
    drop(pipe);
    let out = child.wait_with_output().expect("wait");
    let run = Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    for value in [TWILIO, STRIPE] {
        assert!(!run.stdout.contains(value), "{args:?} printed a value");
        assert!(!run.stderr.contains(value), "{args:?} logged a value");
    }
    run
}

fn read_key(path: &Path) -> Key {
    let text = std::fs::read_to_string(path).expect("key file");
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut bytes).expect("64 hex digits");
    Key::from_bytes(bytes)
}

fn rows(conn: &mut Conn) -> Vec<SecretRow> {
    integration_secrets::table
        .order(integration_secrets::name.asc())
        .select(SecretRow::as_select())
        .load(&mut **conn)
        .expect("rows")
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn value(conn: &mut Conn, key: &Key, name: &str) -> Result<Option<String>, SecretsError> {
    secrets::get_secret(conn, key, "default", name).map(|v| v.map(|s| s.expose().clone()))
}

async fn setup(kind: Kind) -> (TestDb, Database) {
    let db = TestDb::new(kind);
    let database = migrated_database(&db).await;
    (db, database)
}

async fn set_and_list_never_show_values(kind: Kind) {
    let (db, database) = setup(kind).await;
    let set = aro(
        &db,
        &[],
        &["secrets", "set", "twilio.auth_token"],
        &format!("{TWILIO}\n"),
    );
    assert!(set.ok, "{}{}", set.stdout, set.stderr);
    assert!(
        set.stdout.contains("stored secret twilio.auth_token"),
        "{}",
        set.stdout
    );
    let set = aro(&db, &[], &["secrets", "set", "stripe.secret_key"], STRIPE);
    assert!(set.ok, "{}", set.stderr);
    let again = aro(&db, &[], &["secrets", "set", "stripe.secret_key"], STRIPE);
    assert!(again.stdout.contains("replaced"), "{}", again.stdout);
    let bad = aro(&db, &[], &["secrets", "set", "bad name"], STRIPE);
    assert!(!bad.ok);
    let empty = aro(&db, &[], &["secrets", "set", "empty"], "");
    assert!(!empty.ok, "empty values are refused");

    let list = aro(&db, &[], &["secrets", "list"], "");
    assert!(list.ok, "{}", list.stderr);
    assert!(list.stdout.contains("twilio.auth_token"), "{}", list.stdout);
    assert!(list.stdout.contains("stripe.secret_key"), "{}", list.stdout);

    // The key file was created 0600 on first use; the values open with it only.
    let key_path = db.data_dir().join("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path)
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let key = read_key(&key_path);
    let mut conn = database.get().expect("conn");
    for row in rows(&mut conn) {
        assert_eq!(row.nonce.len(), 12);
        assert_eq!(row.key_id, secrets::key_id(&key));
        for plain in [TWILIO, STRIPE] {
            assert!(!contains(&row.ciphertext, plain), "plaintext at rest");
            assert!(!contains(&row.nonce, plain));
        }
    }
    assert_eq!(
        value(&mut conn, &key, "twilio.auth_token")
            .expect("open")
            .as_deref(),
        Some(TWILIO)
    );
    assert_eq!(
        value(&mut conn, &key, "stripe.secret_key")
            .expect("open")
            .as_deref(),
        Some(STRIPE)
    );
    assert_eq!(value(&mut conn, &key, "missing").expect("none"), None);
    assert!(matches!(
        value(&mut conn, &Key::from_bytes([1; 32]), "twilio.auth_token"),
        Err(SecretsError::WrongKey { .. })
    ));
    // Audited, by name only.
    let details: Vec<String> = audit_log::table
        .filter(audit_log::action.eq("secrets.set"))
        .select(audit_log::details)
        .load(&mut *conn)
        .expect("audit");
    assert_eq!(details.len(), 3);
    assert!(details
        .iter()
        .all(|d| !d.contains(TWILIO) && !d.contains(STRIPE)));
}

async fn rotate_key_reseals_under_a_new_key_file(kind: Kind) {
    let (db, database) = setup(kind).await;
    assert!(aro(&db, &[], &["secrets", "set", "twilio.auth_token"], TWILIO).ok);
    assert!(aro(&db, &[], &["secrets", "set", "stripe.secret_key"], STRIPE).ok);
    let key_path = db.data_dir().join("master.key");
    let old = read_key(&key_path);
    let mut conn = database.get().expect("conn");
    let before = rows(&mut conn);

    let rotate = aro(&db, &[], &["secrets", "rotate-key"], "");
    assert!(rotate.ok, "{}{}", rotate.stdout, rotate.stderr);
    assert!(
        rotate.stdout.contains("re-sealed 2 secret(s)"),
        "{}",
        rotate.stdout
    );

    let new = read_key(&key_path);
    assert_ne!(
        secrets::key_id(&new),
        secrets::key_id(&old),
        "master.key replaced"
    );
    assert!(!db.data_dir().join("master.key.new").exists());
    let retired: Vec<_> = std::fs::read_dir(db.data_dir())
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("master.key.retired-")
        })
        .collect();
    assert_eq!(retired.len(), 1, "old key kept for old backups");
    assert_eq!(
        secrets::key_id(&read_key(&retired[0].path())),
        secrets::key_id(&old)
    );

    let after = rows(&mut conn);
    for (was, now) in before.iter().zip(&after) {
        assert_eq!(now.key_id, secrets::key_id(&new));
        assert_ne!(now.ciphertext, was.ciphertext);
        assert_ne!(now.nonce, was.nonce);
        assert_eq!(now.updated_at, was.updated_at, "the value did not change");
    }
    assert_eq!(
        value(&mut conn, &new, "twilio.auth_token")
            .expect("open")
            .as_deref(),
        Some(TWILIO)
    );
    assert_eq!(
        value(&mut conn, &new, "stripe.secret_key")
            .expect("open")
            .as_deref(),
        Some(STRIPE)
    );
    assert!(matches!(
        value(&mut conn, &old, "twilio.auth_token"),
        Err(SecretsError::WrongKey { .. })
    ));
    // Not just the label: the old key cannot open the new ciphertext.
    diesel::update(integration_secrets::table)
        .set(integration_secrets::key_id.eq(secrets::key_id(&old)))
        .execute(&mut *conn)
        .expect("relabel");
    assert!(matches!(
        value(&mut conn, &old, "twilio.auth_token"),
        Err(SecretsError::Crypto { .. })
    ));
    diesel::update(integration_secrets::table)
        .set(integration_secrets::key_id.eq(secrets::key_id(&new)))
        .execute(&mut *conn)
        .expect("label back");

    // The listing shows the new key id; the audit chain holds.
    let list = aro(&db, &[], &["secrets", "list"], "");
    assert!(
        list.stdout.contains(&secrets::key_id(&new)),
        "{}",
        list.stdout
    );
    let verify = aro(&db, &[], &["audit", "verify"], "");
    assert!(verify.ok, "{}", verify.stdout);
    let rotations: i64 = audit_log::table
        .filter(audit_log::action.eq("secrets.key_rotated"))
        .count()
        .get_result(&mut *conn)
        .expect("count");
    assert_eq!(rotations, 1);

    // A second rotation works from the new key.
    let rotate = aro(&db, &[], &["secrets", "rotate-key"], "");
    assert!(rotate.ok, "{}", rotate.stderr);
    let newest = read_key(&key_path);
    assert_eq!(
        value(&mut conn, &newest, "twilio.auth_token")
            .expect("open")
            .as_deref(),
        Some(TWILIO)
    );
}

async fn rotate_key_with_aro_master_key_writes_the_new_key_to_a_file(kind: Kind) {
    let (db, database) = setup(kind).await;
    let configured = "ab".repeat(32);
    let env = [("ARO_MASTER_KEY", configured.as_str())];
    assert!(aro(&db, &env, &["secrets", "set", "twilio.auth_token"], TWILIO).ok);
    assert!(
        !db.data_dir().join("master.key").exists(),
        "no key file with ARO_MASTER_KEY"
    );
    let new_path = db.data_dir().join("rotated.key");
    let new_arg = new_path.display().to_string();
    let rotate = aro(
        &db,
        &env,
        &["secrets", "rotate-key", "--new-key-file", &new_arg],
        "",
    );
    assert!(rotate.ok, "{}{}", rotate.stdout, rotate.stderr);
    assert!(
        rotate.stdout.contains("ARO_MASTER_KEY"),
        "{}",
        rotate.stdout
    );
    assert!(!rotate.stdout.contains(&configured));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&new_path)
            .expect("new key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let new = read_key(&new_path);
    let old = Key::from_bytes([0xab; 32]);
    let mut conn = database.get().expect("conn");
    assert_eq!(
        value(&mut conn, &new, "twilio.auth_token")
            .expect("open")
            .as_deref(),
        Some(TWILIO)
    );
    assert!(value(&mut conn, &old, "twilio.auth_token").is_err());

    // Rotating from the old key to yet another key now fails and changes nothing.
    let new_hex = std::fs::read_to_string(&new_path)
        .expect("read")
        .trim()
        .to_string();
    // Running it again (as after an interruption) finds everything done.
    let again = aro(
        &db,
        &env,
        &["secrets", "rotate-key", "--new-key-file", &new_arg],
        "",
    );
    assert!(again.ok, "{}", again.stderr);
    assert!(
        again.stdout.contains("1 were already under it"),
        "{}",
        again.stdout
    );
    let other = db.data_dir().join("other.key");
    let other_arg = other.display().to_string();
    let wrong = aro(
        &db,
        &env,
        &["secrets", "rotate-key", "--new-key-file", &other_arg],
        "",
    );
    assert!(!wrong.ok, "{}", wrong.stdout);
    assert!(
        wrong.stderr.contains("nothing was changed"),
        "{}",
        wrong.stderr
    );
    assert!(
        !other.exists(),
        "the generated key of a failed rotation is removed"
    );
    assert_eq!(
        value(&mut conn, &new, "twilio.auth_token")
            .expect("open")
            .as_deref(),
        Some(TWILIO)
    );
    let list = aro(
        &db,
        &[("ARO_MASTER_KEY", new_hex.as_str())],
        &["secrets", "list"],
        "",
    );
    assert!(
        list.ok && list.stdout.contains(&secrets::key_id(&new)),
        "{}",
        list.stdout
    );
}

/// A secret named after a credential's configuration key is that credential for the
/// commands that use the configuration: over the file, under the environment; deleting
/// it puts the provider back in the sandbox; a master key that cannot open it stops the
/// command instead of silently running without it.
async fn sealed_credentials_are_part_of_the_configuration(kind: Kind) {
    let (db, _database) = setup(kind).await;
    let file = db.data_dir().join("aro.toml");
    std::fs::write(&file, "[stripe]\nsecret_key = \"sk_from_the_file\"\n").expect("write");
    let config = file.display().to_string();
    let show = |env: &[(&str, &str)]| {
        let run = aro(&db, env, &["--config", &config, "config", "show"], "");
        assert!(run.ok, "{}{}", run.stdout, run.stderr);
        run.stdout
    };
    assert!(show(&[]).contains("stripe.secret_key = \"********\"  # file"));

    let set = aro(&db, &[], &["secrets", "set", "stripe.secret_key"], STRIPE);
    assert!(set.ok, "{}", set.stderr);
    assert!(set.stdout.contains("from its next start"), "{}", set.stdout);
    let shown = show(&[]);
    assert!(
        shown.contains("stripe.secret_key = \"********\"  # sealed store"),
        "{shown}"
    );
    let shown = show(&[("ARO_STRIPE_SECRET_KEY", "sk_from_env")]);
    assert!(
        shown.contains("# environment ARO_STRIPE_SECRET_KEY"),
        "{shown}"
    );

    let wrong_key = "cd".repeat(32);
    let refused = aro(
        &db,
        &[("ARO_MASTER_KEY", wrong_key.as_str())],
        &["--config", &config, "config", "check"],
        "",
    );
    assert!(
        !refused.ok,
        "a key that cannot open the credentials is an error"
    );
    assert!(
        refused.stderr.contains("stripe.secret_key"),
        "{}",
        refused.stderr
    );

    let deleted = aro(&db, &[], &["secrets", "delete", "stripe.secret_key"], "");
    assert!(
        deleted.ok && deleted.stdout.contains("deleted"),
        "{}",
        deleted.stdout
    );
    assert!(show(&[]).contains("# file"), "the file's value again");
    let again = aro(&db, &[], &["secrets", "delete", "stripe.secret_key"], "");
    assert!(again.stdout.contains("no secret"), "{}", again.stdout);
}

on_both_backends!(
    sealed_credentials_are_part_of_the_configuration,
    set_and_list_never_show_values,
    rotate_key_reseals_under_a_new_key_file,
    rotate_key_with_aro_master_key_writes_the_new_key_to_a_file,
);

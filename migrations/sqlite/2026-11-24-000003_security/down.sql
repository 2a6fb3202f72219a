DROP TABLE api_tokens;
DROP TABLE login_attempts;
DROP TABLE sessions;
DROP TABLE admin_users;
DROP TABLE audit_log;
DROP TABLE integration_secrets;

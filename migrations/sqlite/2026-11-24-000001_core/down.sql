DROP TABLE message_status_history;
DROP TABLE messages;
DROP TABLE appointments;
DROP TABLE consents;
DROP TABLE customers;
DROP TABLE business_config;
DROP TABLE tenants;

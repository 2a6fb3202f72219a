DROP TABLE appointment_aliases;

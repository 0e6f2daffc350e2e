-- Least privilege: the migrator may change the schema; the app may only read and write rows.
CREATE USER IF NOT EXISTS 'weft_migrate'@'%' IDENTIFIED BY 'weft-migrate-password';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, INDEX, REFERENCES
  ON weft.* TO 'weft_migrate'@'%';
CREATE USER IF NOT EXISTS 'weft_app'@'%' IDENTIFIED BY 'weft-app-password';
GRANT SELECT, INSERT, UPDATE, DELETE ON weft.* TO 'weft_app'@'%';
FLUSH PRIVILEGES;

-- Managed by foobar: the mysqld exporter's own account, least privilege. Run as root before the exporter starts.
-- Not written to the binlog: every database host keeps its own account, replication never carries it.
SET SESSION sql_log_bin = 0;
CREATE USER IF NOT EXISTS 'prometheus'@'localhost' IDENTIFIED VIA unix_socket WITH MAX_USER_CONNECTIONS 3;
ALTER USER 'prometheus'@'localhost' IDENTIFIED VIA unix_socket WITH MAX_USER_CONNECTIONS 3;
GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR ON *.* TO 'prometheus'@'localhost';
GRANT SELECT ON performance_schema.* TO 'prometheus'@'localhost';

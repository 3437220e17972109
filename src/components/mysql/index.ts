import type {Host, Inventory} from '../../inventory/index.js'
import {renderTemplate} from '../../render/templates.js'
import {TLS_PATHS} from '../tls/profile.js'
import {type Component, file} from '../types.js'

export function mysqlConfigPath(inv: Inventory): string {
  return inv.mysql?.engine === 'mysql' ? '/etc/mysql/mysql.conf.d/60-foobar.cnf' : '/etc/mysql/mariadb.conf.d/60-foobar.cnf'
}

export function mysqlService(inv: Inventory): string {
  return inv.mysql?.engine === 'mysql' ? 'mysql' : 'mariadb'
}

/** MariaDB/MySQL on database hosts: unique server_id, ROW binlog, GTID, read-only replicas, TLS. */
export const mysql: Component = {
  name: 'mysql',
  appliesTo: (host: Host) => host.db !== undefined,
  desired: ({inventory, host}) => {
    const engine = inventory.mysql?.engine ?? 'mariadb'
    const mariadb = engine === 'mariadb'
    return {
      packages: mariadb ? ['mariadb-server'] : ['mysql-server'],
      files: [
        file(
          mysqlConfigPath(inventory),
          renderTemplate('mysql/foobar.cnf', {
            host: host.name,
            engine,
            mariadb,
            section: mariadb ? 'mariadbd' : 'mysqld',
            dbRole: host.db!.role,
            replica: host.db!.role === 'replica',
            bindAddress: host.address,
            port: inventory.mysql?.port ?? 3306,
            serverId: host.db!.serverId,
            caFile: TLS_PATHS.dbCa,
            certFile: TLS_PATHS.dbCert,
            keyFile: TLS_PATHS.dbKey,
          }),
          // Option changes (bind address, server_id) need a restart; MariaDB has no config reload.
          {notify: [mysqlService(inventory)]},
        ),
      ],
      absent: [],
      services: [{name: mysqlService(inventory), onChange: 'restart', health: 'mysqladmin --connect-timeout=5 ping'}],
    }
  },
}

import {renderTemplate} from '../../render/templates.js'
import {type Component, file} from '../../engine/contract.js'

export const APT_PROXY_FILE = '/etc/apt/apt.conf.d/80foobar-proxy'

/** What every host gets: the apt proxy setting (air-gapped fleets and the lab use one). */
export const base: Component = {
  name: 'base',
  appliesTo: () => true,
  desired: ({host}) => ({
    packages: [],
    files: host.apt.proxy ? [file(APT_PROXY_FILE, renderTemplate('base/apt-proxy.conf', {proxy: host.apt.proxy}))] : [],
    absent: host.apt.proxy ? [] : [APT_PROXY_FILE],
    services: [],
  }),
}

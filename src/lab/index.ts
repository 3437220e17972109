/**
 * The lab: real Debian 12 hosts in systemd-nspawn containers on a private bridge (10.77.0.0/24), with an apt
 * proxy, an ACME CA (pebble) and its DNS (challtestsrv) on the bridge address. Used by `foobar lab` and the
 * lab test suite; independent of the inventory module (callers pass a LabSpec).
 */
export {up, down, leftovers, type UpOptions, type UpResult, type DownResult} from './lifecycle.js'
export {status, type LabStatus, type HostStatus, type ServiceStatus} from './status.js'
export {planHosts, dnsRecords, type LabHost, type LabSpec} from './spec.js'
export {labSupported, assertLabSupported, readState, type LabState} from './state.js'
export {sshArgs, sshRun, type SshOptions} from './ssh.js'
export {httpsGet} from './services.js'
export {labPaths, URLS, BRIDGE, BRIDGE_ADDRESS, IMAGE_DIR, MAX_HOSTS, type LabPaths} from './paths.js'

import type {Component} from '../../engine/contract.js'
import {prepareTlsMaterial} from './material.js'

export {PENDING, isPending, pendingMaterial, prepareTlsMaterial, stateDir, stateDirPath, type TlsMaterial} from './material.js'
export {checkTlsSource, hasPrivateKey} from './check.js'
export {createTlsMaterial, refuseNewCaOverExisting} from './init.js'

/**
 * Certificates: the provider of every run's key material (the internal CA, the leaves other components ask for
 * with `certificates`, and the site certificate from tls.source); `foobar cert` issues and renews the site
 * certificate over ACME (acme.ts, renew.ts). It has no state of its own on the hosts: the components that use a
 * certificate install it.
 */
export const tls: Component = {
  name: 'tls',
  appliesTo: () => false,
  material: prepareTlsMaterial,
}

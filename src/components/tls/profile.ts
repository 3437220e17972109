import type {TlsSettings} from '../../inventory/index.js'

/** Mozilla server-side TLS guidelines (see shared REFERENCE.md): intermediate = TLS 1.2 + 1.3, modern = 1.3 only. */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':')
export const TLS13_SUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256'
export const CURVES = 'X25519:prime256v1:secp384r1'

export function tlsView(tls: TlsSettings) {
  const modern = tls.profile === 'modern'
  return {
    modern,
    nginxProtocols: modern ? 'TLSv1.3' : 'TLSv1.2 TLSv1.3',
    ciphers: TLS12_CIPHERS,
    suites: TLS13_SUITES,
    curves: CURVES,
    haproxyOptions: modern ? 'ssl-min-ver TLSv1.3 no-tls-tickets' : 'ssl-min-ver TLSv1.2 no-tls-tickets',
    hsts: tls.hsts.enabled,
    hstsMaxAge: tls.hsts.maxAge,
    hstsSubdomains: tls.hsts.includeSubdomains,
    hstsPreload: tls.hsts.preload,
  }
}

/** Where foobar puts TLS material on hosts. */
export const TLS_PATHS = {
  dir: '/etc/foobar/tls',
  cert: '/etc/foobar/tls/site.crt',
  key: '/etc/foobar/tls/site.key',
  haproxyBundle: '/etc/foobar/tls/site.pem',
  backendCa: '/etc/foobar/tls/backend-ca.pem',
  dbCa: '/etc/foobar/tls/db-ca.pem',
  dbCert: '/etc/foobar/tls/db.crt',
  dbKey: '/etc/foobar/tls/db.key',
} as const

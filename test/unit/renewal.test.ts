/*
 * renewalDue (src/components/tls/acme.ts): when `foobar cert renew` (and its timer) orders a new site certificate.
 * By default when a third of the certificate's lifetime or less is left (certbot's and certmagic's rule); with
 * --days N when N days or fewer are left; always with --force or without a certificate.
 */
import {describe, expect, test} from 'vitest'
import {type CertInfo, renewalDue} from '../../src/components/tls/acme.js'

const DAY = 86_400_000
const ISSUED = Date.UTC(2025, 0, 1)
/** A certificate valid for `days` days from ISSUED. */
const cert = (days: number): CertInfo => ({
  serial: '01',
  notBefore: new Date(ISSUED),
  notAfter: new Date(ISSUED + days * DAY),
  names: ['www.foobar.test'],
  issuer: 'Test CA',
})
/** `days` days (may be fractional) before the certificate expires. */
const left = (c: CertInfo, days: number) => new Date(c.notAfter.getTime() - days * DAY)

describe('renewalDue', () => {
  const le = cert(90)

  test('a 90-day certificate: due at 30 days left, not a millisecond before', () => {
    expect(renewalDue(le, left(le, 30), {})).toEqual({due: true, reason: '30.0 days left, under a third of the lifetime'})
    expect(renewalDue(le, new Date(left(le, 30).getTime() + 1), {}).due).toBe(true)
    expect(renewalDue(le, new Date(left(le, 30).getTime() - 1), {})).toEqual({due: false, reason: '30.0 days left'})
    expect(renewalDue(le, new Date(ISSUED + DAY), {})).toEqual({due: false, reason: '89.0 days left'})
  })

  test('the third follows the lifetime: a 6-day certificate is due at 2 days left', () => {
    const short = cert(6)
    expect(renewalDue(short, left(short, 2.01), {}).due).toBe(false)
    expect(renewalDue(short, left(short, 2), {}).due).toBe(true)
  })

  test('an expired certificate is due', () => {
    expect(renewalDue(le, new Date(le.notAfter.getTime() + DAY), {})).toEqual({
      due: true,
      reason: '-1.0 days left, under a third of the lifetime',
    })
  })

  test('--days N: due at N days left or fewer, whatever the lifetime', () => {
    expect(renewalDue(le, left(le, 45), {days: 45})).toEqual({due: true, reason: '45.0 days left (--days 45)'})
    expect(renewalDue(le, new Date(left(le, 45).getTime() - 1), {days: 45})).toEqual({due: false, reason: '45.0 days left'})
    // Later than the default third...
    expect(renewalDue(le, left(le, 20), {days: 10})).toEqual({due: false, reason: '20.0 days left'})
    // ...or earlier.
    expect(renewalDue(le, left(le, 60), {days: 60}).due).toBe(true)
    // --days 0: only once it has expired.
    expect(renewalDue(le, left(le, 0.5), {days: 0}).due).toBe(false)
    expect(renewalDue(le, left(le, 0), {days: 0}).due).toBe(true)
  })

  test('--force: due however long is left', () => {
    expect(renewalDue(le, new Date(ISSUED), {force: true})).toEqual({due: true, reason: 'forced'})
    expect(renewalDue(le, new Date(ISSUED), {force: true, days: 1})).toEqual({due: true, reason: 'forced'})
  })

  test('no certificate yet: due, with or without flags', () => {
    expect(renewalDue(undefined, new Date(ISSUED), {})).toEqual({due: true, reason: 'no certificate yet'})
    expect(renewalDue(undefined, new Date(ISSUED), {days: 1})).toEqual({due: true, reason: 'no certificate yet'})
    expect(renewalDue(undefined, new Date(ISSUED), {force: true})).toEqual({due: true, reason: 'no certificate yet'})
  })
})

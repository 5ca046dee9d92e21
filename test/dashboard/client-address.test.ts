import assert from 'node:assert/strict';
import { it } from 'node:test';
import { clientAddress } from '../../src/dashboard/client-address.ts';

it('counts every address of one IPv6 /64 as one client, so a host cannot take a new address per guess', () => {
  const one = clientAddress('2001:db8:1:2::1');
  for (const a of [
    '2001:db8:1:2:ffff:ffff:ffff:ffff',
    '2001:0db8:0001:0002::abcd',
    '2001:DB8:1:2::1%eth0',
  ]) {
    assert.equal(clientAddress(a), one, a);
  }
  assert.equal(one, '2001:db8:1:2::/64');
  assert.notEqual(clientAddress('2001:db8:1:3::1'), one, 'the next /64 is another client');
});

it('counts an IPv4 client as itself, also when Node reports it mapped into IPv6', () => {
  assert.equal(clientAddress('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(clientAddress('192.0.2.7'), '192.0.2.7');
  assert.notEqual(clientAddress('192.0.2.8'), '192.0.2.7');
  assert.equal(clientAddress('::1'), '0:0:0:0::/64');
  assert.equal(clientAddress('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
});

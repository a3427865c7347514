import { describe, expect, it } from 'vitest';
import {
  cidrWithin,
  compileIpMatcher,
  compileModelMatcher,
  parseCidr,
  parseScopes,
  requirementOf,
} from './access.ts';

describe('model allowlists', () => {
  it('match exact names and globs, case-sensitively', () => {
    const matcher = compileModelMatcher(['gpt-4o*', 'llama3', 'qwen?.5', 'a.b']);
    expect(['gpt-4o', 'gpt-4o-mini', 'llama3', 'qwen2.5', 'a.b'].every((m) => matcher.allows(m))).toBe(true);
    expect(['GPT-4o', 'llama3.1', 'qwen25', 'axb', 'xgpt-4o'].some((m) => matcher.allows(m))).toBe(false);
  });
});

describe('IP allowlists', () => {
  it('match IPv4 and IPv6 CIDRs, and IPv4 addresses seen through IPv6 sockets', () => {
    const matcher = compileIpMatcher(['10.1.0.0/16', '2001:db8::/32', '192.0.2.7']);
    for (const ip of ['10.1.2.3', '::ffff:10.1.255.255', '2001:db8::1', '192.0.2.7']) {
      expect(matcher.allows(ip)).toBe(true);
    }
    for (const ip of ['10.2.0.1', '192.0.2.8', '2001:db9::1', 'not-an-ip'])
      expect(matcher.allows(ip)).toBe(false);
  });

  it('parses CIDRs strictly', () => {
    expect(parseCidr('10.0.0.0/8')).toEqual({ address: '10.0.0.0', prefix: 8, family: 'ipv4' });
    for (const bad of ['10.0.0.0/33', '::/129', '10.0.0.0/8/1', 'host', '10.0.0.0/x'])
      expect(parseCidr(bad)).toBeNull();
  });

  it('knows when one range lies within another', () => {
    const outer = compileIpMatcher(['10.0.0.0/8']);
    expect(cidrWithin('10.1.0.0/16', outer)).toBe(true);
    expect(cidrWithin('10.1.2.3', outer)).toBe(true);
    expect(cidrWithin('0.0.0.0/0', outer)).toBe(false);
    expect(cidrWithin('11.0.0.0/16', outer)).toBe(false);
  });
});

describe('scopes', () => {
  it('parse the stored form', () => {
    expect(parseScopes('all')).toBe('all');
    expect([...(parseScopes('inference,usage') as Set<string>)]).toEqual(['inference', 'usage']);
  });

  it('map every route class to what a key needs', () => {
    expect(requirementOf('/v1/chat/completions', true)).toBe('inference');
    expect(requirementOf('/api/chat', true)).toBe('inference');
    expect(requirementOf('/v1/usage', true)).toBe('usage');
    expect(requirementOf('/api/auth/usage/export', false)).toBe('usage');
    expect(requirementOf('/api/auth/api-keys/x/rotate', false)).toBe('keys');
    expect(requirementOf('/api/auth/admin/users', false)).toBe('admin');
    expect(requirementOf('/metrics', true)).toBe('admin');
    expect(requirementOf('/api/auth/password', false)).toBe('full');
    expect(requirementOf('/api/auth/me', false)).toBeNull();
    expect(requirementOf('/app/usage', false)).toBeNull();
  });
});

describe('IP matching agrees with node:net BlockList', () => {
  it('on IPv4, IPv6, compressed and embedded-IPv4 forms', async () => {
    const { BlockList } = await import('node:net');
    const patterns = [
      '10.1.0.0/16',
      '0.0.0.0/1',
      '2001:db8::/32',
      '::1',
      'fe80::/10',
      '64:ff9b::/96',
      '::/0',
    ];
    const clients = [
      '10.1.2.3',
      '10.2.0.1',
      '127.0.0.1',
      '200.1.1.1',
      '2001:db8::7',
      '2001:db9::1',
      '::1',
      '::2',
      'fe80::1:2',
      'febf:ffff::1',
      '64:ff9b::10.1.2.3',
      '1:2:3:4:5:6:7:8',
    ];
    for (const pattern of patterns) {
      const matcher = compileIpMatcher([pattern]);
      const cidr = parseCidr(pattern);
      const list = new BlockList();
      if (cidr) list.addSubnet(cidr.address, cidr.prefix, cidr.family);
      for (const client of clients) {
        const family = client.includes(':') ? 'ipv6' : 'ipv4';
        expect(matcher.allows(client), `${client} in ${pattern}`).toBe(list.check(client, family));
      }
    }
  });
});

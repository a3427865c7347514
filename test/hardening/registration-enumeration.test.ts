import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshIp, STRONG_PASSWORD } from '../auth/support.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';

describe.each(DIALECTS)(
  'registration does not reveal existing emails on %s (issue 11, item 12)',
  (dialect) => {
    let t: TestApp;

    beforeAll(async () => {
      t = await startTestApp({ dialect, settings: { registrationMode: 'approval' } });
    });
    afterAll(async () => {
      await t?.close();
    });

    const register = (email: string) =>
      t.app.inject({
        method: 'POST',
        url: '/api/auth/register',
        remoteAddress: freshIp(),
        payload: { email, password: STRONG_PASSWORD, name: 'Someone' },
      });

    it('an existing email answers exactly like a new pending one, status and body', async () => {
      expect((await register('first-admin@example.test')).statusCode).toBe(201);
      const pending = await register('pending@example.test');
      const fresh = await register('brand-new@example.test');
      const existingPending = await register('pending@example.test');
      const existingAdmin = await register('FIRST-admin@example.test');
      expect(fresh.statusCode).toBe(200);
      expect(fresh.json()).toEqual({
        message: 'registration successful, awaiting admin approval',
        pending: true,
      });
      for (const answer of [pending, existingPending, existingAdmin]) {
        expect(answer.statusCode).toBe(fresh.statusCode);
        expect(answer.body).toBe(fresh.body);
        expect(answer.headers['set-cookie']).toBeUndefined();
      }
    });
  },
);

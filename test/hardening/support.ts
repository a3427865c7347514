import { startTestApp, type TestApp, type TestAppOptions } from '../helpers/app.ts';
import { createApiKey, createUser } from '../helpers/factories.ts';
import { type FakeUpstream, startFakeUpstream } from '../helpers/fake-upstream.ts';

/**
 * A fake upstream, keytally in front of it (`settings.upstreamUrl` is the upstream's, the rest as
 * given), listening unless `listen: false`, and an API key of a fresh user. What was started is
 * closed again when a later step fails.
 */
export async function startAppWithUpstream(
  options: Omit<TestAppOptions, 'settings'> & { settings?: TestAppOptions['settings']; listen?: boolean },
): Promise<{ upstream: FakeUpstream; t: TestApp; key: string }> {
  const { listen = true, settings, ...rest } = options;
  const upstream = await startFakeUpstream();
  let t: TestApp | undefined;
  try {
    t = await startTestApp({ ...rest, settings: { upstreamUrl: upstream.baseUrl, ...settings } });
    if (listen) await t.listen();
    const user = await createUser(t.database.db);
    const key = (await createApiKey(t.database.db, { userId: user.id })).key;
    return { upstream, t, key };
  } catch (error) {
    await t?.close();
    await upstream.close();
    throw error;
  }
}

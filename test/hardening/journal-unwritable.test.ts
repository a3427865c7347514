import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JournalFiles } from '../../src/server/usage/journal.ts';
import type { TestApp } from '../helpers/app.ts';
import { DIALECTS } from '../helpers/db.ts';
import type { FakeUpstream } from '../helpers/fake-upstream.ts';
import { startAppWithUpstream } from './support.ts';

type DiskMode = 'ok' | 'full' | 'short';

/** The journal's file boundary over node:fs, with a full disk (ENOSPC) or short writes on demand. */
function injectedDisk() {
  const disk = { mode: 'ok' as DiskMode };
  const full = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  const files: JournalFiles = {
    open: (file) => fs.openSync(file, 'a', 0o600),
    write: (fd, text) => {
      if (disk.mode === 'full') throw full();
      // A disk that fills mid-write: write(2) takes part of the bytes.
      if (disk.mode === 'short') return fs.writeSync(fd, text.slice(0, Math.floor(text.length / 2)));
      return fs.writeSync(fd, text);
    },
    truncate: (fd, length) => fs.ftruncateSync(fd, length),
  };
  return { disk, files };
}

interface Answer {
  model: string;
  /** 2xx with the whole body received (a stream cut after its 200 is not a 2xx answer). */
  ok: boolean;
  status: number;
  retryAfter: string | null;
  body: string;
}

describe.each(DIALECTS)('usage journal not writable on %s (issue 11, item 4)', (dialect) => {
  let upstream: FakeUpstream;
  let t: TestApp;
  let key = '';
  const lines: string[] = [];
  const { disk, files } = injectedDisk();
  let sequence = 0;

  beforeAll(async () => {
    ({ upstream, t, key } = await startAppWithUpstream({
      dialect,
      journalFiles: files,
      settings: { logLevel: 'info', usageFlushMs: '3600000' },
      logDestination: { write: (line) => lines.push(line) },
    }));
  });
  afterAll(async () => {
    await t?.close();
    await upstream?.close();
  });

  async function send(stream: boolean): Promise<Answer> {
    sequence += 1;
    const model = `disk-${sequence}`;
    const response = await fetch(`${t.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'hi' }] }),
    });
    let body = '';
    let whole = true;
    try {
      body = await response.text();
    } catch {
      whole = false;
    }
    return {
      model,
      ok: response.status >= 200 && response.status < 300 && whole,
      status: response.status,
      retryAfter: response.headers.get('retry-after'),
      body,
    };
  }
  const batch = (n: number) => Promise.all(Array.from({ length: n }, (_, i) => send(i % 3 === 0)));
  const readyz = async () => {
    const response = await fetch(`${t.baseUrl}/readyz`);
    return { status: response.status, body: (await response.json()) as { reason?: string } };
  };

  it('rows equal 2xx answers exactly; readyz 503 and requests refused up front while it fails', async () => {
    const answers: Answer[] = [];
    for (const mode of ['ok', 'full', 'ok', 'short', 'ok', 'full', 'ok'] as DiskMode[]) {
      disk.mode = mode;
      // The recorder probes the journal on every flush; flushNow runs one now.
      await t.recorder.flushNow();
      answers.push(...(await batch(8)));
      if (mode === 'ok') {
        expect((await readyz()).status).toBe(200);
        continue;
      }
      const ready = await readyz();
      expect(ready.status).toBe(503);
      expect(ready.body.reason).toMatch(/usage journal is not writable \(ENOSPC/);
      const forwarded = upstream.requests.length;
      const refused = await batch(6);
      answers.push(...refused);
      expect(upstream.requests.length).toBe(forwarded);
      for (const answer of refused) {
        expect(answer.status).toBe(503);
        expect(answer.retryAfter).toBe('5');
        expect(JSON.parse(answer.body)).toEqual({
          error: {
            message: expect.stringMatching(/usage journal is not writable/),
            type: 'service_unavailable',
            code: 'usage_journal_unavailable',
          },
        });
      }
    }
    // Every answer that was not a whole 2xx is a 503 (the write failed, or refused up front).
    for (const answer of answers.filter((a) => !a.ok)) {
      expect([200, 503], answer.model).toContain(answer.status);
    }
    expect(answers.filter((a) => a.ok).length).toBeGreaterThan(20);
    expect(answers.filter((a) => !a.ok).length).toBeGreaterThan(20);

    await t.recorder.flushNow();
    const rows = await t.database.db.kysely
      .selectFrom('usage_records')
      .select('model')
      .where('model', 'like', 'disk-%')
      .execute();
    const served = answers.filter((a) => a.ok).map((a) => a.model);
    expect(rows.map((row) => row.model).sort()).toEqual(served.sort());

    // Logged once per failure and once at its recovery, not per request.
    const failures = lines.filter((line) => /cannot write the usage journal/.test(line));
    const recoveries = lines.filter((line) => /usage journal is writable again/.test(line));
    expect(failures).toHaveLength(3);
    expect(recoveries).toHaveLength(3);
  });

  it('ends with nothing pending and no journal problem once the disk is back', async () => {
    disk.mode = 'ok';
    await t.recorder.flushNow();
    expect(t.recorder.stats().queueDepth).toBe(0);
    expect(t.recorder.journalProblem?.()).toBeNull();
  });
});

// A real full disk under the usage journal (issue 11, item 4): the data directory on a 256 KiB tmpfs,
// filled up while requests run, then freed. Prints 2xx answers vs usage rows (they must be equal).
// Needs root (mount); cleans up after itself. Run: npx tsx bench/micro/journal-full-disk.ts
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startTestApp } from '../../test/helpers/app.ts';
import { createApiKey, createUser } from '../../test/helpers/factories.ts';
import { startFakeUpstream } from '../../test/helpers/fake-upstream.ts';

const mount = fs.mkdtempSync('/tmp/keytally-tiny-');
execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mount]);
const upstream = await startFakeUpstream({ quiet: true });
const t = await startTestApp({
  dialect: 'sqlite',
  settings: { upstreamUrl: upstream.baseUrl, dataDir: mount, usageFlushMs: '3600000' },
});
try {
  await t.listen();
  const user = await createUser(t.database.db);
  const { key } = await createApiKey(t.database.db, { userId: user.id });
  const filler = path.join(mount, 'filler');
  const statuses = new Map<number, number>();
  const served: string[] = [];
  let n = 0;
  const send = async () => {
    n += 1;
    const model = `tiny-${n}`;
    const response = await fetch(`${t.baseUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, stream: n % 3 === 0, messages: [{ role: 'user', content: 'hi' }] }),
    });
    let whole = true;
    await response.text().catch(() => {
      whole = false;
    });
    statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
    if (response.ok && whole) served.push(model);
  };
  for (let round = 0; round < 3; round += 1) {
    // Leave ~6 KiB free: a dozen rows fit, then the disk is full mid-write.
    const { bavail, bsize } = fs.statfsSync(mount);
    const free = bavail * bsize;
    fs.writeFileSync(filler, Buffer.alloc(Math.max(0, free - 6 * 1024)));
    for (let batch = 0; batch < 6; batch += 1) await Promise.all(Array.from({ length: 8 }, send));
    const ready = await fetch(`${t.baseUrl}/readyz`);
    console.log(`round ${round}: readyz ${ready.status} ${await ready.text()}`);
    fs.rmSync(filler);
    await t.recorder.flushNow();
  }
  await t.recorder.flushNow();
  const rows = await t.database.db.kysely.selectFrom('usage_records').select('model').execute();
  const rowSet = new Set(rows.map((row) => row.model));
  console.log(`answers by status: ${JSON.stringify(Object.fromEntries(statuses))}`);
  console.log(
    `whole 2xx answers: ${served.length}; usage rows: ${rows.length}; 2xx without a row: ${served.filter((m) => !rowSet.has(m)).length}; rows without a 2xx: ${rows.filter((r) => !served.includes(r.model)).length}`,
  );
} finally {
  await t.close();
  await upstream.close();
  execFileSync('umount', [mount]);
  fs.rmdirSync(mount);
}

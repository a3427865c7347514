import { Worker } from 'node:worker_threads';
import type { WriterReply, WriterRequest } from './sqlite-writer.ts';

/** The recorder's side of the SQLite writer thread (sqlite-writer.ts): start, send batches, stop. */

export interface SqliteWriter {
  /** Commits the rows of these sealed segment files; resolves with how many were inserted. */
  insert(files: string[]): Promise<{ inserted: number; skipped: number }>;
  close(): Promise<void>;
}

/** The URL and options of the writer thread: the bundle's sibling file, or the source through tsx. */
function writerEntry(): { entry: URL | string; eval: boolean } {
  if (!import.meta.url.endsWith('.ts')) {
    // Running the esbuild bundle dist/server/main.js; the writer is dist/server/usage/sqlite-writer.js.
    return { entry: new URL('./usage/sqlite-writer.js', import.meta.url), eval: false };
  }
  // Running the sources through tsx: a worker does not inherit the loader, so it registers it first.
  const tsx = import.meta.resolve('tsx/esm/api');
  const source = new URL('./sqlite-writer.ts', import.meta.url).href;
  return {
    entry: `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(source)}); });`,
    eval: true,
  };
}

/** A lazily started writer thread; a thread that dies fails its pending batches and is restarted. */
export function createSqliteWriter(file: string): SqliteWriter {
  let worker: Worker | null = null;
  let ready: Promise<Worker> | null = null;
  let nextId = 1;
  const pending = new Map<
    number,
    { resolve: (result: { inserted: number; skipped: number }) => void; reject: (error: Error) => void }
  >();

  const start = (): Promise<Worker> => {
    if (ready) return ready;
    ready = new Promise<Worker>((resolve, reject) => {
      const { entry, eval: isEval } = writerEntry();
      const thread = new Worker(entry, {
        eval: isEval,
        workerData: { file },
        // The thread holds one batch's bytes (≤ 5000 rows, ~2 MB) at a time and makes no object per
        // row but a Buffer view of its line (SQLite parses the lines): a small young generation is
        // enough. Without limits, when it parsed the rows itself, its heap grew to ~100 MB of RSS
        // under load. Out of memory, the thread dies, its batch fails and is retried from the
        // journal on a new thread.
        resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 32 },
      });
      const fail = (error: Error) => {
        worker = null;
        ready = null;
        reject(error);
        for (const [, waiter] of pending) waiter.reject(error);
        pending.clear();
      };
      thread.on('message', (message: WriterReply | 'ready') => {
        if (message === 'ready') {
          worker = thread;
          resolve(thread);
          return;
        }
        const waiter = pending.get(message.id);
        pending.delete(message.id);
        if (message.ok) waiter?.resolve({ inserted: message.inserted, skipped: message.skipped });
        else waiter?.reject(new Error(message.message));
      });
      thread.on('error', fail);
      thread.on('exit', (code) => fail(new Error(`the SQLite usage writer thread exited (${code})`)));
    });
    return ready;
  };

  // Started now rather than at the first commit: loading the thread's modules takes a while on a busy
  // machine. A failure here is retried by the first insert, which reports it.
  start().catch(() => {});
  return {
    async insert(files) {
      const thread = await start();
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        thread.postMessage({ id, files } satisfies WriterRequest);
      });
    },
    async close() {
      // A thread still starting is waited for, else it would keep the process alive.
      const thread = worker ?? (ready ? await ready.catch(() => null) : null);
      if (!thread) return;
      const exited = new Promise((resolve) => thread.once('exit', resolve));
      thread.postMessage('close');
      await exited;
    },
  };
}

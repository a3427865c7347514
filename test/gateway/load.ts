import { Agent, request } from 'undici';

export interface LoadResult {
  /** Models of the requests whose client received a complete 200 response. */
  completed: string[];
  /** Non-200 statuses and transport errors, by kind. */
  failures: Map<string, number>;
}

export interface LoadOptions {
  baseUrl: string;
  headers: Record<string, string>;
  concurrency: number;
  /** The model of the n-th request (unique names let a test find each request's row). */
  model: (n: number) => string;
  /** Streamed or not, per request. */
  stream: (n: number) => boolean;
  /** Pause between one client's requests (steady load instead of flat out). */
  pauseMs?: number;
  stop: AbortSignal;
}

/** Closed-loop load: `concurrency` clients each sending one chat request after another until `stop`. */
export function runLoad(options: LoadOptions): Promise<LoadResult> & { live: LoadResult } {
  const live: LoadResult = { completed: [], failures: new Map() };
  return Object.assign(runLoadInto(options, live), { live });
}

async function runLoadInto(options: LoadOptions, result: LoadResult): Promise<LoadResult> {
  const agent = new Agent({ connections: options.concurrency, keepAliveTimeout: 10_000 });
  const fail = (kind: string) => result.failures.set(kind, (result.failures.get(kind) ?? 0) + 1);
  let next = 0;
  const client = async () => {
    while (!options.stop.aborted) {
      const n = next++;
      const model = options.model(n);
      const stream = options.stream(n);
      try {
        const response = await request(`${options.baseUrl}/v1/chat/completions`, {
          method: 'POST',
          dispatcher: agent,
          headers: { 'content-type': 'application/json', ...options.headers },
          body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: `request ${n}` }] }),
        });
        const text = await response.body.text();
        if (response.statusCode !== 200) fail(`status ${response.statusCode}`);
        else if (stream ? text.includes('data: [DONE]') : text.includes('"usage"'))
          result.completed.push(model);
        else fail('incomplete');
      } catch (error) {
        fail((error as { code?: string }).code ?? 'error');
      }
      if (options.pauseMs) await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, client));
  await agent.destroy();
  return result;
}

/** Resident set size of a process in bytes (Linux). */
export async function rssOf(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) * 1024 : 0;
}

/** Waits (bounded) until `load` has completed at least `count` requests. */
export async function waitForCompleted(load: { live: LoadResult }, count: number, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (load.live.completed.length < count && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

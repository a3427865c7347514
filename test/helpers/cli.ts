import type { Command } from 'commander';
import { vi } from 'vitest';
import { createProgram } from '../../src/server/main.ts';

/** The keytally settings a test's CLI run must not inherit from the environment of the test process. */
const CLEARED = ['KEYTALLY_DATA_DIR', 'KEYTALLY_HMAC_SECRET', 'KEYTALLY_DATABASE_URL', 'KEYTALLY_LOG_LEVEL'];

function exitOverrideAll(command: Command): void {
  command.exitOverride();
  for (const sub of command.commands) exitOverrideAll(sub);
}

/**
 * Runs `keytally <args>` in this process (commander's exits turned into throws, so the worker
 * survives) with `env` on top of a cleared keytally environment and silent logs; returns the exit
 * code it would have had and what it printed (console and commander's own help and errors).
 */
export async function runCliInProcess(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; output: string }> {
  let output = '';
  const capture = (...parts: unknown[]) => {
    output += `${parts.map(String).join(' ')}\n`;
  };
  const log = vi.spyOn(console, 'log').mockImplementation(capture);
  const error = vi.spyOn(console, 'error').mockImplementation(capture);
  const saved: Record<string, string | undefined> = {};
  for (const name of CLEARED) {
    saved[name] = process.env[name];
    delete process.env[name];
  }
  Object.assign(process.env, { KEYTALLY_LOG_LEVEL: 'silent', ...env });
  process.exitCode = undefined;
  const program = createProgram();
  exitOverrideAll(program);
  program.configureOutput({ writeOut: (text) => capture(text), writeErr: (text) => capture(text) });
  for (const sub of program.commands) {
    sub.configureOutput({ writeOut: (text) => capture(text), writeErr: (text) => capture(text) });
    for (const leaf of sub.commands) {
      leaf.configureOutput({ writeOut: (text) => capture(text), writeErr: (text) => capture(text) });
    }
  }
  let code = 0;
  try {
    await program.parseAsync(['node', 'keytally', ...args]);
    code = Number(process.exitCode ?? 0);
  } catch (thrown) {
    const exit = (thrown as { exitCode?: number }).exitCode;
    if (exit === undefined) throw thrown;
    code = exit;
  } finally {
    process.exitCode = undefined;
    log.mockRestore();
    error.mockRestore();
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
  return { code, output };
}

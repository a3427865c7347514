import type { Command } from 'commander';

/** `keytally seed-demo` (Dashboard issue). */
export function registerDemoCommands(_program: Command): void {}

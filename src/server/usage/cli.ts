import type { Command } from 'commander';

/** `keytally usage export` and `keytally seed-demo` (Usage API and Dashboard issues). */
export function registerUsageCommands(_program: Command): void {}

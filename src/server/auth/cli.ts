import type { Command } from 'commander';

/** `keytally user …` and `keytally key …` (Identity issue). */
export function registerAuthCommands(_program: Command): void {}

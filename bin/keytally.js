#!/usr/bin/env node
// Runs the TypeScript sources through tsx's loader: one source of truth, no separate compile step.
import { register } from 'tsx/esm/api';

register();
await import('../src/server/main.ts');

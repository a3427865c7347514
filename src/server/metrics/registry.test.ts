import { describe, expect, it } from 'vitest';
import type { UsageRecorder } from '../usage/recorder.ts';
import { createGatewayMetrics, MODEL_LABELS_MAX } from './registry.ts';

const idleRecorder: UsageRecorder = {
  record: async () => {},
  noteKeyUsed: () => {},
  flushNow: async () => {},
  close: async () => {},
  stats: () => ({
    queueDepth: 0,
    rowsInMemory: 0,
    journalBytes: 0,
    rowsWritten: 0,
    flushFailures: 0,
    rowsRefused: 0,
  }),
  onFlush: () => () => {},
};

describe('gateway metrics', () => {
  it('caps distinct model labels, counting later models under "other"', async () => {
    const metrics = createGatewayMetrics(idleRecorder);
    for (let i = 0; i < MODEL_LABELS_MAX + 50; i += 1) metrics.countTokens('apikey', `model-${i}`, 1, 2);
    metrics.countTokens('apikey', 'model-0', 10, 20);
    const { values } = await metrics.tokens.get();
    const models = new Set(values.map((value) => value.labels.model));
    expect(models.size).toBe(MODEL_LABELS_MAX + 1);
    expect(models.has('other')).toBe(true);
    const otherPrompt = values.find((v) => v.labels.model === 'other' && v.labels.kind === 'prompt');
    expect(otherPrompt?.value).toBe(50);
    const firstPrompt = values.find((v) => v.labels.model === 'model-0' && v.labels.kind === 'prompt');
    expect(firstPrompt?.value).toBe(11);
  });
});

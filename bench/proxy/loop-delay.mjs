// Preloaded into a benched process (`node --import bench/proxy/loop-delay.mjs`) by `--loop-delay`:
// an event-loop delay histogram (perf_hooks, 1-ms resolution as sampled, reported in µs) and the
// garbage collector's pauses by kind (count, total and longest, µs). Each SIGUSR2 appends what was
// seen since the previous SIGUSR2 as one JSON line to KEYTALLY_BENCH_LOOP_DELAY_FILE and starts
// afresh, so the bench brackets each measurement with two signals.
import fs from 'node:fs';
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

const file = process.env.KEYTALLY_BENCH_LOOP_DELAY_FILE;
if (file) {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const KINDS = {
    [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
    [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
    [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
  };
  let gc = {};
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = KINDS[entry.detail?.kind] ?? 'other';
      const us = Math.round(entry.duration * 1000);
      if (!gc[kind]) gc[kind] = { count: 0, totalUs: 0, maxUs: 0 };
      const seen = gc[kind];
      seen.count += 1;
      seen.totalUs += us;
      if (us > seen.maxUs) seen.maxUs = us;
    }
  }).observe({ entryTypes: ['gc'] });
  process.on('SIGUSR2', () => {
    const us = (ns) => Math.round(ns / 1000);
    const line = {
      p50Us: us(histogram.percentile(50)),
      p99Us: us(histogram.percentile(99)),
      p999Us: us(histogram.percentile(99.9)),
      maxUs: us(histogram.max),
      count: histogram.count,
      gc,
    };
    fs.appendFileSync(file, `${JSON.stringify(line)}\n`);
    histogram.reset();
    gc = {};
  });
}

// Preloaded into a benched process (`node --import bench/proxy/loop-delay.mjs`) by `--loop-delay`:
// an event-loop delay histogram (perf_hooks, 1-ms resolution as sampled, reported in µs). Each SIGUSR2
// appends the histogram since the previous SIGUSR2 as one JSON line to KEYTALLY_BENCH_LOOP_DELAY_FILE
// and starts a new one, so the bench brackets each measurement with two signals.
import fs from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const file = process.env.KEYTALLY_BENCH_LOOP_DELAY_FILE;
if (file) {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  process.on('SIGUSR2', () => {
    const us = (ns) => Math.round(ns / 1000);
    const line = {
      p50Us: us(histogram.percentile(50)),
      p99Us: us(histogram.percentile(99)),
      p999Us: us(histogram.percentile(99.9)),
      maxUs: us(histogram.max),
      count: histogram.count,
    };
    fs.appendFileSync(file, `${JSON.stringify(line)}\n`);
    histogram.reset();
  });
}

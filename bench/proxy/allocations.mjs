// Preloaded into a benched process (`node --import bench/proxy/allocations.mjs`) by `--allocations`:
// V8's sampling heap profiler, keeping the samples of objects already collected (node's own
// `--heap-prof` keeps only what is still alive at exit, which says nothing about garbage). At exit
// the profile goes to KEYTALLY_BENCH_ALLOCATIONS_FILE; `allocation-summary.ts` reads it. With
// KEYTALLY_BENCH_ALLOCATIONS_SURVIVORS=1 (through KEYTALLY_BENCH_ENV) the objects a scavenge collects
// are left out: what remains is what survived the young generation, i.e. what fills the old one.
import fs from 'node:fs';
import inspector from 'node:inspector';

const file = process.env.KEYTALLY_BENCH_ALLOCATIONS_FILE;
if (file) {
  const session = new inspector.Session();
  session.connect();
  session.post('HeapProfiler.startSampling', {
    samplingInterval: 16_384,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: process.env.KEYTALLY_BENCH_ALLOCATIONS_SURVIVORS !== '1',
  });
  // An in-thread session answers synchronously, so this completes inside the exit handler.
  process.on('exit', () => {
    session.post('HeapProfiler.stopSampling', (error, result) => {
      if (!error) fs.writeFileSync(file, JSON.stringify(result.profile));
    });
  });
}

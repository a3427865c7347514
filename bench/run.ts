/**
 * `npm run bench [suite…]`: runs the named suites (default: all) one after another. Each suite
 * measures its own baseline in the same run and writes bench/results/<suite>-<timestamp>.json.
 * Never part of `npm test`.
 */
const SUITES: Record<string, () => Promise<{ run: (args: string[]) => Promise<void> }>> = {
  proxy: () => import('./proxy/run.ts'),
  usage: () => import('./usage/run.ts'),
};

const requested = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
const names = requested.length > 0 ? requested : Object.keys(SUITES);
for (const name of names) {
  const load = SUITES[name];
  if (!load) {
    console.error(`unknown bench suite "${name}"; choose from ${Object.keys(SUITES).join(', ')}`);
    process.exit(2);
  }
  console.log(`\n=== bench: ${name} ===`);
  const suite = await load();
  await suite.run(process.argv.slice(2).filter((arg) => arg.startsWith('-')));
}

export {};

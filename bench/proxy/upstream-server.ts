import { startFakeUpstream } from '../../test/helpers/fake-upstream.ts';

/** The bench's upstream in its own process: the fake OpenAI server, events written whole. Prints its URL. */
const upstream = await startFakeUpstream({ quiet: true, wholeEvents: true });
process.stdout.write(`${upstream.url}\n`);
process.on('SIGTERM', () => {
  void upstream.close().then(() => process.exit(0));
});

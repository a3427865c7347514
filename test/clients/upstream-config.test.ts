import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/server/config.ts';
import {
  isOllamaRoot,
  loadUpstreamsFile,
  upstreamConfigs,
} from '../../src/server/gateway/upstream-config.ts';
import { yamlFiles } from './support.ts';

describe('upstream API family and account settings', () => {
  const { dir, write } = yamlFiles();

  it('reads api, organization and project; api defaults to openai', () => {
    const file = write(
      [
        'upstreams:',
        '  - name: ollama',
        '    url: http://127.0.0.1:11434',
        '    api: ollama',
        '  - name: openai',
        '    url: https://api.openai.com/v1',
        '    api_key: sk-test',
        '    organization: org-1',
        '    project: proj-1',
      ].join('\n'),
    );
    expect(loadUpstreamsFile(file).upstreams).toMatchObject([
      { name: 'ollama', api: 'ollama' },
      { name: 'openai', api: 'openai', organization: 'org-1', project: 'proj-1' },
    ]);
  });

  it.each([
    ['upstreams:\n  - name: a\n    url: http://x\n    api: grpc\n', 'upstreams.0.api'],
    [
      'upstreams:\n  - name: a\n    url: http://x\n    organization: ""\n',
      'upstreams.0.organization: must not be empty',
    ],
  ])('rejects %j naming the field', (text, message) => {
    const file = write(text);
    expect(() => loadUpstreamsFile(file)).toThrow(ConfigError);
    expect(() => loadUpstreamsFile(file)).toThrow(message);
  });

  it.each([
    ['http://127.0.0.1:11434', true],
    ['http://127.0.0.1:11434/', true],
    ['http://127.0.0.1:11434/v1', false],
    ['https://gateway.example.com/openai/v1', false],
    ['http://127.0.0.1:8080/api', false],
  ])('KEYTALLY_UPSTREAM_URL=%s is an Ollama root: %s', (url, ollama) => {
    expect(isOllamaRoot(url)).toBe(ollama);
    const config = loadConfig({ dataDir: dir, upstreamUrl: url }, {});
    expect(upstreamConfigs(config)[0]?.api).toBe(ollama ? 'ollama' : 'openai');
  });
});

/**
 * Where each client family points with a new key: OpenAI-compatible clients at `/v1`, the
 * Anthropic SDK and Ollama clients (Open WebUI's and Continue's Ollama modes) at the origin itself.
 */
export function ClientSetupHint({ origin }: { origin: string }) {
  return (
    <div className="hint" data-testid="client-setup">
      <p>Use it with:</p>
      <ul>
        <li>
          OpenAI-compatible clients: base URL <code>{origin}/v1</code>, header{' '}
          <code>Authorization: Bearer kt-…</code>
        </li>
        <li>
          the Anthropic SDK: base URL <code>{origin}</code>, the key as its API key (<code>x-api-key</code>)
        </li>
        <li>
          Ollama clients (Open WebUI, Continue, <code>ollama</code>): host <code>{origin}</code>, the key as a
          Bearer token
        </li>
      </ul>
    </div>
  );
}

/**
 * Reading the few fields the stream tap needs out of one event's JSON text without `JSON.parse`:
 * most events of a chat stream are `{"id":…,"model":…,"choices":[{"delta":{"content":"…"}}]}`, and
 * parsing each into objects only to read one string was the tap's main cost (profile of a streamed
 * c=16 load: `inspect` + `sseData` ~6% of keytally's busy samples, plus the garbage of every event's
 * objects). A key is searched with its quotes (`"usage"`): inside a JSON string a quote is escaped
 * (`\"`), so a string's text never matches a key.
 */

/** Whether the text has `"key"` followed by `:` and a value other than `null`. */
export function hasNonNullKey(text: string, key: string): boolean {
  const needle = `"${key}"`;
  for (let at = text.indexOf(needle); at !== -1; at = text.indexOf(needle, at + needle.length)) {
    const value = valueStart(text, at + needle.length);
    if (value === -1) continue;
    if (!text.startsWith('null', value)) return true;
  }
  return false;
}

/**
 * The string values of every `"key": "…"` in the text, in order, appended to `out` (values that are
 * not strings are skipped). False when a string is not closed (the caller then parses the event).
 */
export function collectStringValues(text: string, key: string, out: string[]): boolean {
  const needle = `"${key}"`;
  let from = 0;
  for (let at = text.indexOf(needle); at !== -1; at = text.indexOf(needle, from)) {
    from = at + needle.length;
    const value = valueStart(text, from);
    if (value === -1 || text.charCodeAt(value) !== QUOTE) continue;
    const end = stringEnd(text, value + 1);
    if (end === -1) return false;
    out.push(decodeString(text, value, end));
    from = end + 1;
  }
  return true;
}

/** The first string value of `"key"`, or undefined. */
export function firstStringValue(text: string, key: string): string | undefined {
  const needle = `"${key}"`;
  const at = text.indexOf(needle);
  if (at === -1) return undefined;
  const value = valueStart(text, at + needle.length);
  if (value === -1 || text.charCodeAt(value) !== QUOTE) return undefined;
  const end = stringEnd(text, value + 1);
  return end === -1 ? undefined : decodeString(text, value, end);
}

/** The JSON string between the quotes at `open` and `close`. */
function decodeString(text: string, open: number, close: number): string {
  const raw = text.slice(open + 1, close);
  // Escapes (\n, \", \uXXXX) are rare in a delta of a few tokens: decode only those strings.
  return raw.includes('\\') ? (JSON.parse(text.slice(open, close + 1)) as string) : raw;
}

const QUOTE = 34;
const BACKSLASH = 92;
const COLON = 58;

function isSpace(code: number): boolean {
  return code === 32 || code === 9 || code === 10 || code === 13;
}

/** Where the value after a key starts (past `:` and blanks), or -1 when no `:` follows (not a key). */
function valueStart(text: string, from: number): number {
  let i = from;
  while (i < text.length && isSpace(text.charCodeAt(i))) i += 1;
  if (text.charCodeAt(i) !== COLON) return -1;
  i += 1;
  while (i < text.length && isSpace(text.charCodeAt(i))) i += 1;
  return i < text.length ? i : -1;
}

/** The index of the quote that closes a string whose text starts at `from`, or -1. */
function stringEnd(text: string, from: number): number {
  for (let quote = text.indexOf('"', from); quote !== -1; quote = text.indexOf('"', quote + 1)) {
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === BACKSLASH) backslashes += 1;
    if (backslashes % 2 === 0) return quote;
  }
  return -1;
}

const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;
const COMMA = 44;

/**
 * The text of the members `keys` of a JSON object at its top level (the last one of a repeated key,
 * as JSON.parse keeps), found by walking the text with a depth count and skipping strings whole: no
 * object is built. Null when the text is not one closed object, or a top-level key has escapes.
 * Brackets are only counted, not validated: the caller parses what it takes.
 */
export function topLevelMembers(text: string, keys: readonly string[]): Map<string, string> | null {
  const found = new Map<string, string>();
  let i = 0;
  while (i < text.length && isSpace(text.charCodeAt(i))) i += 1;
  if (text.charCodeAt(i) !== OPEN_BRACE) return null;
  let depth = 0;
  let expectingKey = false;
  let key: string | null = null;
  let valueFrom = -1;
  for (; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code === QUOTE) {
      const end = stringEnd(text, i + 1);
      if (end === -1) return null;
      if (depth === 1 && expectingKey) {
        key = text.slice(i + 1, end);
        if (key.includes('\\')) return null;
        expectingKey = false;
      }
      i = end;
    } else if (code === OPEN_BRACE || code === OPEN_BRACKET) {
      depth += 1;
      if (depth === 1) expectingKey = true;
    } else if (code === CLOSE_BRACE || code === CLOSE_BRACKET || (code === COMMA && depth === 1)) {
      if (depth === 1 && key !== null && valueFrom !== -1) {
        if (keys.includes(key)) found.set(key, text.slice(valueFrom, i).trim());
        key = null;
        valueFrom = -1;
      }
      if (code === COMMA) {
        expectingKey = true;
        continue;
      }
      depth -= 1;
      if (depth === 0) {
        for (let rest = i + 1; rest < text.length; rest += 1)
          if (!isSpace(text.charCodeAt(rest))) return null;
        return found;
      }
    } else if (code === COLON && depth === 1 && key !== null && valueFrom === -1) {
      valueFrom = i + 1;
    }
  }
  return null;
}

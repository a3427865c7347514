import { randomFillSync } from 'node:crypto';

const DIGITS = Buffer.from('0123456789abcdef', 'latin1');
// The id's characters are written into this buffer, then read out as one flat string: a template
// of 22 pieces made a rope of strings that JSON.stringify then had to flatten (an id and its
// stringify took ~700 ns that way, ~370 ns this way).
const text = Buffer.from('00000000-0000-7000-8000-000000000000', 'latin1');

/** Two hex digits of `byte` at `at`. */
function put(at: number, byte: number): void {
  text[at] = DIGITS[byte >>> 4] as number;
  text[at + 1] = DIGITS[byte & 0x0f] as number;
}

// Random bytes are drawn 4 KB at a time (one syscall per 512 ids instead of one per id).
const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let offset = POOL_BYTES;

/**
 * A usage row id: a UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits. Ids of
 * rows written together are close together, so the raw table's primary-key index grows at its end
 * like its time index does. With random (v4) ids every insert landed on a random page of that
 * index: once it outgrew SQLite's page cache, a 1000-row batch took 3x longer at 100,000 rows
 * than at 5,000 (bench/proxy, recorder).
 */
export function usageRowId(now: number = Date.now()): string {
  if (offset + 10 > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const r = offset;
  offset += 10;
  // 48-bit big-endian timestamp: the top 16 bits, then the low 32.
  const high = Math.floor(now / 0x1_0000_0000);
  const low = now >>> 0;
  put(0, (high >>> 8) & 0xff);
  put(2, high & 0xff);
  put(4, low >>> 24);
  put(6, (low >>> 16) & 0xff);
  put(9, (low >>> 8) & 0xff);
  put(11, low & 0xff);
  put(14, 0x70 | ((pool[r] as number) & 0x0f));
  put(16, pool[r + 1] as number);
  put(19, 0x80 | ((pool[r + 2] as number) & 0x3f));
  put(21, pool[r + 3] as number);
  for (let i = 4; i < 10; i += 1) put(24 + 2 * (i - 4), pool[r + i] as number);
  return text.toString('latin1', 0, 36);
}

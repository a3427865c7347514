import { randomFillSync } from 'node:crypto';

const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));
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
  const t0 = HEX[(high >>> 8) & 0xff];
  const t1 = HEX[high & 0xff];
  const t2 = HEX[low >>> 24];
  const t3 = HEX[(low >>> 16) & 0xff];
  const t4 = HEX[(low >>> 8) & 0xff];
  const t5 = HEX[low & 0xff];
  const version = HEX[0x70 | ((pool[r] as number) & 0x0f)];
  const variant = HEX[0x80 | ((pool[r + 2] as number) & 0x3f)];
  const b = (i: number) => HEX[pool[r + i] as number];
  return `${t0}${t1}${t2}${t3}-${t4}${t5}-${version}${b(1)}-${variant}${b(3)}-${b(4)}${b(5)}${b(6)}${b(7)}${b(8)}${b(9)}`;
}

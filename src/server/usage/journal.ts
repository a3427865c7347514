import fs from 'node:fs';
import path from 'node:path';
import type { UsageRow } from './sqlite-ingest.ts';

const SEGMENT = /^segment-(\d{12})\.jsonl$/;

/**
 * The journal's only contact with the disk for appends: tests inject failures here (a full disk, a
 * short write) without a tiny filesystem.
 */
export interface JournalFiles {
  /** Opens a segment for appending (0600). */
  open(file: string): number;
  /** One write(2); returns the bytes written, which a full disk can make fewer than asked. */
  write(fd: number, text: string): number;
  truncate(fd: number, length: number): void;
}

export const NODE_JOURNAL_FILES: JournalFiles = {
  open: (file) => fs.openSync(file, 'a', 0o600),
  write: (fd, text) => fs.writeSync(fd, text),
  truncate: (fd, length) => fs.ftruncateSync(fd, length),
};

/** An append that did not reach the journal; its rows were dropped (their requests must fail). */
export class JournalWriteError extends Error {
  constructor(
    message: string,
    readonly rows: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'JournalWriteError';
  }
}

export interface JournalSegment {
  seq: number;
  file: string;
  bytes: number;
  rows: number;
}

/**
 * The usage journal: append-only segment files of one JSON row per line in `<data dir>/usage-journal/`.
 * A segment is written by one process, sealed (fdatasync, closed) when it holds a batch, and deleted
 * once its batch is committed to the database.
 *
 * Durability policy: each row is written before its request completes, so it is in the kernel's
 * page cache and survives the process dying at any point (`kill -9`, OOM, crash). Rows appended in
 * the same turn of the event loop share one write(2) (`append` queues the line, `write` writes the
 * queue; the recorder calls it from setImmediate and completes those requests after it). A
 * segment is fdatasync'ed when it is sealed, i.e. every KEYTALLY_USAGE_FLUSH_MS (1 s) or 1000 rows,
 * so a power loss or kernel panic can cost at most that window. That fdatasync runs on libuv's
 * thread pool (a synchronous one stalled every in-flight request for the disk's latency, up to tens
 * of ms on a busy disk); only the final seal at shutdown is synchronous. An fsync per request would cost
 * 0.1-10 ms of disk latency on every response for protection only against machine crashes.
 */
export class UsageJournal {
  readonly dir: string;
  private fd: number | null = null;
  private active: JournalSegment | null = null;
  private nextSeq = 1;
  /** Bytes of every segment on disk (sealed and active). */
  bytes = 0;
  private readonly removals = new Set<Promise<void>>();
  /** Appended rows not yet written (JSON lines), and how many. */
  private queued = '';
  private queuedRows = 0;

  constructor(
    dataDir: string,
    private readonly files: JournalFiles = NODE_JOURNAL_FILES,
  ) {
    this.dir = path.join(dataDir, 'usage-journal');
  }

  /** Creates the directory; returns the segments left by an earlier process, oldest first. */
  open(): JournalSegment[] {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const found: JournalSegment[] = [];
    for (const name of fs.readdirSync(this.dir)) {
      const match = SEGMENT.exec(name);
      if (!match) continue;
      const file = path.join(this.dir, name);
      const bytes = fs.statSync(file).size;
      const seq = Number(match[1]);
      this.nextSeq = Math.max(this.nextSeq, seq + 1);
      if (bytes === 0) {
        fs.rmSync(file, { force: true });
        continue;
      }
      const text = fs.readFileSync(file, 'utf8');
      let rows = 0;
      for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) rows += 1;
      found.push({ seq, file, bytes, rows });
      this.bytes += bytes;
    }
    return found.sort((a, b) => a.seq - b.seq);
  }

  /** Queues one row for the next `write()`; returns the active segment's row count. */
  append(row: UsageRow): number {
    if (this.active === null) {
      const seq = this.nextSeq++;
      const file = path.join(this.dir, `segment-${String(seq).padStart(12, '0')}.jsonl`);
      this.active = { seq, file, bytes: 0, rows: 0 };
    }
    this.queued += `${JSON.stringify(row)}\n`;
    this.queuedRows += 1;
    this.active.rows += 1;
    return this.active.rows;
  }

  /**
   * Writes the queued rows to the active segment, all in one write(2) (a string: no Buffer copy).
   * All or nothing: when the write fails or is short (a full disk), the segment is cut back to its
   * last whole row and the queued rows are dropped, so no row of a request that then fails is ever
   * committed later (31 failed requests became 31 rows once space returned: double billing on
   * retry). Throws JournalWriteError.
   */
  write(): void {
    if (this.queued === '' || this.active === null) return;
    const text = this.queued;
    const rows = this.queuedRows;
    this.queued = '';
    this.queuedRows = 0;
    let failure: unknown;
    let written = 0;
    try {
      this.fd ??= this.files.open(this.active.file);
      written = this.files.write(this.fd, text);
      if (written === Buffer.byteLength(text)) {
        this.active.bytes += written;
        this.bytes += written;
        return;
      }
      failure = Object.assign(new Error('ENOSPC: short write to the usage journal'), { code: 'ENOSPC' });
    } catch (error) {
      failure = error;
    }
    this.active.rows -= rows;
    if (written > 0 && this.fd !== null) {
      try {
        this.files.truncate(this.fd, this.active.bytes);
      } catch (error) {
        // The torn tail stays; a torn last line is skipped when the segment is read, but a whole
        // row before it would be committed. Said loudly: this is the one case that can bill a
        // failed request.
        throw new JournalWriteError(
          `cannot cut a short write back from ${this.active.file}: ${(error as Error).message}`,
          rows,
          { cause: failure },
        );
      }
    }
    const reason = (failure as Error)?.message ?? String(failure);
    throw new JournalWriteError(`cannot write the usage journal: ${reason}`, rows, { cause: failure });
  }

  /**
   * Checks that the journal's directory takes a write again (after a failed append): 4 KiB through
   * the same file boundary as segments, then removed. Throws what the write throws.
   */
  probe(): void {
    const file = path.join(this.dir, 'write-probe');
    const fd = this.files.open(file);
    try {
      const text = 'x'.repeat(4096);
      if (this.files.write(fd, text) !== text.length) throw new Error('ENOSPC: short write');
    } finally {
      fs.closeSync(fd);
      fs.rmSync(file, { force: true });
    }
  }

  get activeRows(): number {
    return this.active?.rows ?? 0;
  }

  /**
   * Ends the active segment (the next append opens a new one) and syncs and closes it in the
   * background, or synchronously when `sync` (shutdown); null when nothing was appended since the last
   * seal. The rows are already in the page cache: readers and the committing batch need not wait.
   */
  seal(sync = false): JournalSegment | null {
    if (this.active === null) return null;
    this.write();
    const fd = this.fd;
    if (fd === null || this.active.rows === 0) {
      // Nothing reached the disk in this segment (every append failed): start afresh.
      if (fd !== null) fs.close(fd, () => {});
      if (this.active.bytes === 0) fs.rm(this.active.file, { force: true }, () => {});
      this.fd = null;
      this.active = null;
      return null;
    }
    if (sync) {
      fs.fdatasyncSync(fd);
      fs.closeSync(fd);
    } else {
      fs.fdatasync(fd, () => fs.close(fd, () => {}));
    }
    const sealed = this.active;
    this.fd = null;
    this.active = null;
    return sealed;
  }

  /** The rows of a sealed segment. A torn last line (the process died mid-write) is skipped. */
  read(segment: JournalSegment): UsageRow[] {
    return readSegmentFile(segment.file);
  }

  /**
   * Deletes a segment whose rows are committed, on libuv's thread pool (a synchronous unlink stalled
   * the event loop ~2 ms per batch). A segment whose deletion is lost to a crash is replayed once
   * more at the next start; its rows are idempotent by id.
   */
  remove(segment: JournalSegment): void {
    const removal = fs.promises
      .rm(segment.file, { force: true })
      .catch(() => {})
      .finally(() => this.removals.delete(removal));
    this.removals.add(removal);
    this.bytes = Math.max(0, this.bytes - segment.bytes);
  }

  /** Resolves once every deletion started so far is done. */
  async removed(): Promise<void> {
    await Promise.all([...this.removals]);
  }

  close(): void {
    this.seal(true);
  }
}

/** The rows of a journal segment file. A torn last line (the process died mid-write) is skipped. */
export function readSegmentFile(file: string): UsageRow[] {
  const text = fs.readFileSync(file, 'utf8');
  const rows: UsageRow[] = [];
  for (const line of text.split('\n')) {
    if (line.length === 0) continue;
    try {
      rows.push(JSON.parse(line) as UsageRow);
    } catch {
      // Only the last line can be torn: each write(2) appends whole lines.
    }
  }
  return rows;
}

const NEWLINE = 0x0a;

/**
 * Segments' bytes as one JSON array, `[row,row,…]`, for a database to parse: the newline that ends
 * each row becomes a comma (a newline inside a JSON string is always escaped, so every 0x0A byte ends
 * a row). Bytes from the file to the database, never JavaScript strings or objects. Null when a
 * segment does not end with a whole line (torn by a crash or a full disk): read those with
 * readSegmentFile, which skips what cannot be parsed.
 */
export function segmentsAsJsonArray(segments: readonly Buffer[]): Buffer | null {
  let length = 0;
  for (const segment of segments) {
    if (segment.length > 0 && segment[segment.length - 1] !== NEWLINE) return null;
    length += segment.length;
  }
  if (length === 0) return Buffer.from('[]');
  const array = Buffer.allocUnsafe(length + 1);
  array[0] = 0x5b; // [
  let offset = 1;
  for (const segment of segments) offset += segment.copy(array, offset);
  for (let i = array.indexOf(NEWLINE, 1); i !== -1; i = array.indexOf(NEWLINE, i + 1)) array[i] = 0x2c; // ,
  array[length] = 0x5d; // ] over the last row's comma
  return array;
}

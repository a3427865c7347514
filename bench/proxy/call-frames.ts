/** A V8 profile's call frame (CPU and sampling heap profiles alike). */
export interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

/** `function folder/file.js:line`, short enough for a table row. */
export function frameName({ functionName, url, lineNumber }: CallFrame): string {
  return `${functionName || '(anonymous)'} ${url.split('/').slice(-2).join('/')}:${lineNumber}`;
}

// Turns the raw declaration into characters with positions, refusing what bash would not read
// the way a text editor shows it: invalid UTF-8, NUL bytes, carriage returns, other controls.

import { DeclarationError, type SourceLocation } from '../errors.js';

export interface SourceText {
  /** The text split into code points, so that an index is also a column step. */
  chars: readonly string[];
  /** The position of `chars[index]`; `chars.length` is the position just after the last one. */
  locate(index: number): SourceLocation;
}

export interface UnreadableCharacter {
  index: number;
  found: string;
  fix: string;
}

const BYTE_ORDER_MARK = '\uFEFF';

/** Decodes the declaration and refuses every character bash would not read as plain text. */
export function decodeSource(source: Uint8Array | string, file: string): SourceText {
  if (typeof source !== 'string') {
    const invalidOffset = findInvalidUtf8(source);
    if (invalidOffset !== -1) {
      const before = Array.from(new TextDecoder().decode(source.subarray(0, invalidOffset)));
      const hex = source[invalidOffset]!.toString(16).padStart(2, '0');
      throw new DeclarationError(
        indexPositions(before, file)(before.length),
        `invalid UTF-8 byte 0x${hex} found`,
        'Save the file as UTF-8',
      );
    }
  }
  const text = typeof source === 'string' ? source : new TextDecoder('utf-8', { ignoreBOM: true }).decode(source);
  const chars = Array.from(text);
  const locate = indexPositions(chars, file);
  if (chars[0] === BYTE_ORDER_MARK) {
    const fix = 'Save the file as UTF-8 without a byte order mark';
    throw new DeclarationError(locate(0), 'byte order mark (U+FEFF) found', fix);
  }
  const unreadable = findUnreadableCharacter(chars);
  if (unreadable !== undefined) {
    throw new DeclarationError(locate(unreadable.index), unreadable.found, unreadable.fix);
  }
  return { chars, locate };
}

/**
 * The first character that has no business in a shell text file. Bash would keep most of them
 * literally, but a CR is nearly always a DOS line ending, which bash makes part of the value.
 */
export function findUnreadableCharacter(chars: readonly string[]): UnreadableCharacter | undefined {
  for (let index = 0; index < chars.length; index++) {
    const char = chars[index]!;
    const code = char.codePointAt(0)!;
    if (code === 0) {
      return { index, found: 'NUL byte found', fix: 'Remove it: a shell file cannot hold NUL bytes' };
    }
    if (char === '\r') {
      return chars[index + 1] === '\n'
        ? { index, found: 'DOS line endings (CR LF) found', fix: 'Convert the file with dos2unix' }
        : { index, found: 'carriage return (CR) found', fix: 'Remove it, or convert the file with dos2unix' };
    }
    if ((code < 0x20 && char !== '\t' && char !== '\n') || code === 0x7f) {
      return { index, found: `control character ${codePointName(code)} found`, fix: 'Remove it' };
    }
    if (code >= 0xd800 && code <= 0xdfff) {
      return { index, found: `unpaired surrogate ${codePointName(code)} found`, fix: 'Save the file as UTF-8' };
    }
  }
  return undefined;
}

function codePointName(code: number): string {
  return `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Byte offset of the first byte that does not belong to a well-formed UTF-8 sequence, or -1. */
function findInvalidUtf8(bytes: Uint8Array): number {
  let offset = 0;
  while (offset < bytes.length) {
    const lead = bytes[offset]!;
    if (lead < 0x80) {
      offset++;
      continue;
    }
    let length: number;
    let smallest: number;
    if (lead >= 0xc2 && lead <= 0xdf) {
      [length, smallest] = [2, 0x80];
    } else if (lead >= 0xe0 && lead <= 0xef) {
      [length, smallest] = [3, 0x800];
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      [length, smallest] = [4, 0x10000];
    } else {
      return offset;
    }
    let code = lead & (0xff >> (length + 1));
    for (let next = 1; next < length; next++) {
      const continuation = bytes[offset + next];
      if (continuation === undefined || (continuation & 0xc0) !== 0x80) return offset;
      code = (code << 6) | (continuation & 0x3f);
    }
    if (code < smallest || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return offset;
    offset += length;
  }
  return -1;
}

/** Precomputes every character's line and column so that locating is constant time. */
function indexPositions(chars: readonly string[], file: string): (index: number) => SourceLocation {
  const lines = new Uint32Array(chars.length + 1);
  const columns = new Uint32Array(chars.length + 1);
  let line = 1;
  let column = 1;
  for (let index = 0; index <= chars.length; index++) {
    lines[index] = line;
    columns[index] = column;
    if (chars[index] === '\n') {
      line++;
      column = 1;
    } else {
      column++;
    }
  }
  return (index) => ({ file, line: lines[index]!, column: columns[index]! });
}

// FastCGI record framing (FastCGI 1.0, Mark R. Brown, Open Market, 1996, §3.3 and §8): the
// protocol constants, the encoder of one record and of a stream, and the streaming record reader.
// Every record is an 8-byte header (version, type, request id, content length, padding length,
// reserved) followed by content and padding. Pure: no IO.
//
// What php-fpm 8.2 actually sends (see test/fixtures/fastcgi/, captured from a real pool):
// records padded to a multiple of 8 bytes, STDOUT split into records of at most 65528 bytes,
// STDERR records interleaved with STDOUT, NO empty STDOUT/STDERR record closing the streams
// before END_REQUEST, and uninitialised bytes in END_REQUEST's reserved field. The decoder
// accepts all of that and does not rely on any of it.

import { FpmMultiError } from '../errors.js';

// ---------------------------------------------------------------------------------------------
// Protocol constants (FastCGI 1.0, §8).

export const FCGI_VERSION_1 = 1;
export const FCGI_HEADER_BYTES = 8;
/** The content length field is 16 bits. */
export const FCGI_MAX_CONTENT_BYTES = 0xffff;
/** The specification recommends 8-byte aligned records; php-fpm and libfcgi both pad to it. */
export const FCGI_RECORD_ALIGNMENT_BYTES = 8;
/** Largest aligned content, so that a split stream needs no padding (php-fpm splits STDOUT at it). */
export const FCGI_MAX_ALIGNED_CONTENT_BYTES = FCGI_MAX_CONTENT_BYTES - (FCGI_MAX_CONTENT_BYTES % FCGI_RECORD_ALIGNMENT_BYTES);
/** A name-value length in the 4-byte form is 31 bits (the top bit marks the form). */
export const FCGI_MAX_NAME_VALUE_BYTES = 0x7fffffff;
/** BEGIN_REQUEST, END_REQUEST and UNKNOWN_TYPE bodies are fixed 8-byte structures. */
const FCGI_FIXED_BODY_BYTES = 8;

export const FcgiRecordType = {
  BEGIN_REQUEST: 1,
  ABORT_REQUEST: 2,
  END_REQUEST: 3,
  PARAMS: 4,
  STDIN: 5,
  STDOUT: 6,
  STDERR: 7,
  DATA: 8,
  GET_VALUES: 9,
  GET_VALUES_RESULT: 10,
  UNKNOWN_TYPE: 11,
} as const;
const FCGI_MAX_TYPE = FcgiRecordType.UNKNOWN_TYPE;
const RECORD_TYPE_NAMES = new Map<number, string>(Object.entries(FcgiRecordType).map(([name, type]) => [type, name]));

export const FcgiRole = { RESPONDER: 1, AUTHORIZER: 2, FILTER: 3 } as const;

export const FcgiProtocolStatus = {
  REQUEST_COMPLETE: 0,
  CANT_MPX_CONN: 1,
  OVERLOADED: 2,
  UNKNOWN_ROLE: 3,
} as const;
const PROTOCOL_STATUS_NAMES = new Map<number, string>(Object.entries(FcgiProtocolStatus).map(([name, status]) => [status, name]));

/** One request per connection, so any non-zero id does; 1 is what libfcgi and web servers use. */
export const FASTCGI_REQUEST_ID = 1;

/** How much of a stream's start a protocol error quotes, to show what the peer really speaks. */
export const QUOTED_PREFIX_BYTES = 32;

/**
 * The bytes received are not a valid FastCGI reply (pure layer: the IO edge wraps it in a
 * FastCgiError naming the address).
 */
export class FastCgiProtocolError extends FpmMultiError {
  /** Offset in the received stream of the record header at fault, or where the stream ended. */
  readonly offset: number;
  readonly problem: string;

  constructor(offset: number, problem: string) {
    super(`invalid FastCGI reply at byte ${offset}: ${problem}`);
    this.offset = offset;
    this.problem = problem;
  }
}

export function nameRecordType(type: number): string {
  const name = RECORD_TYPE_NAMES.get(type);
  return name === undefined ? `type ${type}` : `${name} (type ${type})`;
}

export function nameProtocolStatus(status: number): string {
  const name = PROTOCOL_STATUS_NAMES.get(status);
  return name === undefined ? `unknown protocol status ${status}` : `FCGI_${name} (${status})`;
}

/** Printable ASCII as text, anything else as hex: shows at a glance "HTTP/1.1 400" or binary junk. */
export function quoteBytes(bytes: Uint8Array): string {
  const printable = bytes.every((byte) => (byte >= 0x20 && byte < 0x7f) || byte === 0x0a || byte === 0x0d || byte === 0x09);
  if (printable) return JSON.stringify(Buffer.from(bytes).toString('latin1'));
  return `0x${Buffer.from(bytes).toString('hex')}`;
}

/** One record, padded to a multiple of 8 bytes with zeros. */
export function encodeRecord(type: number, requestId: number, content: Uint8Array = Buffer.alloc(0)): Buffer {
  if (content.length > FCGI_MAX_CONTENT_BYTES) {
    throw new RangeError(`a FastCGI record carries at most ${FCGI_MAX_CONTENT_BYTES} bytes, not ${content.length}: split the stream`);
  }
  const paddingLength = (FCGI_RECORD_ALIGNMENT_BYTES - (content.length % FCGI_RECORD_ALIGNMENT_BYTES)) % FCGI_RECORD_ALIGNMENT_BYTES;
  const record = Buffer.alloc(FCGI_HEADER_BYTES + content.length + paddingLength);
  record.writeUInt8(FCGI_VERSION_1, 0);
  record.writeUInt8(type, 1);
  record.writeUInt16BE(requestId, 2);
  record.writeUInt16BE(content.length, 4);
  record.writeUInt8(paddingLength, 6);
  record.set(content, FCGI_HEADER_BYTES);
  return record;
}

/** A whole stream (PARAMS, STDIN, …): records of at most 65528 bytes, then the empty record that ends it. */
export function encodeStream(type: number, requestId: number, data: Uint8Array): Buffer {
  const records: Buffer[] = [];
  for (let start = 0; start < data.length; start += FCGI_MAX_ALIGNED_CONTENT_BYTES) {
    records.push(encodeRecord(type, requestId, data.subarray(start, start + FCGI_MAX_ALIGNED_CONTENT_BYTES)));
  }
  records.push(encodeRecord(type, requestId));
  return Buffer.concat(records);
}

/**
 * BEGIN_REQUEST (§5.1). flags 0: without FCGI_KEEP_CONN the server closes the connection after
 * END_REQUEST, so a connection never outlives its one request.
 */
export function encodeBeginRequest(requestId: number, role: number = FcgiRole.RESPONDER, flags = 0): Buffer {
  const body = Buffer.alloc(FCGI_FIXED_BODY_BYTES);
  body.writeUInt16BE(role, 0);
  body.writeUInt8(flags, 2);
  return encodeRecord(FcgiRecordType.BEGIN_REQUEST, requestId, body);
}

// ---------------------------------------------------------------------------------------------
// Decoding records.

export interface FastCgiRecordHeader {
  type: number;
  requestId: number;
  contentLength: number;
  paddingLength: number;
  /** Offset of the header in the stream. */
  offset: number;
}

export interface FastCgiRecord {
  type: number;
  requestId: number;
  content: Buffer;
  paddingLength: number;
  offset: number;
}

/** Called with each header as soon as its 8 bytes are in, before any content arrives. */
export type FastCgiHeaderCheck = (header: FastCgiRecordHeader) => void;

/**
 * Splits a byte stream into records, whatever the chunk boundaries. It checks what the
 * specification fixes (version 1, a known record type, 8-byte bodies where the body is a
 * fixed structure) the moment a header is complete, so garbage is refused before its announced
 * length is waited for. Padding is skipped, its bytes ignored. Memory held: at most the record
 * being read (64 KiB + 255) besides the chunks pushed and not read yet.
 */
export class FastCgiRecordReader {
  readonly #checkHeader: FastCgiHeaderCheck | undefined;
  readonly #pending: Buffer[] = [];
  #pendingOffset = 0;
  readonly #headerBytes = Buffer.alloc(FCGI_HEADER_BYTES);
  #headerFilled = 0;
  #header: FastCgiRecordHeader | null = null;
  #contentParts: Buffer[] = [];
  #contentFilled = 0;
  #paddingLeft = 0;
  #consumed = 0;
  readonly #prefix: Buffer[] = [];
  #prefixLength = 0;

  constructor(checkHeader?: FastCgiHeaderCheck) {
    this.#checkHeader = checkHeader;
  }

  /** Bytes taken out of the pushed chunks so far (the position in the stream). */
  get bytesConsumed(): number {
    return this.#consumed;
  }

  /** Where reading stands, for messages about a stream that stopped: null between records. */
  describePartialRecord(): string | null {
    if (this.#header === null) {
      return this.#headerFilled === 0 ? null : `in a record header (${this.#headerFilled} of ${FCGI_HEADER_BYTES} bytes)`;
    }
    const header = this.#header;
    if (this.#contentFilled < header.contentLength) {
      return `in a ${nameRecordType(header.type)} record (${this.#contentFilled} of ${header.contentLength} content bytes)`;
    }
    return `in the padding of a ${nameRecordType(header.type)} record (${header.paddingLength - this.#paddingLeft} of ${header.paddingLength} bytes)`;
  }

  pushBytes(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    // Copied: the caller may reuse its buffer, and records keep slices of these bytes.
    const copy = Buffer.from(chunk);
    this.#pending.push(copy);
    if (this.#prefixLength < QUOTED_PREFIX_BYTES) {
      const part = copy.subarray(0, QUOTED_PREFIX_BYTES - this.#prefixLength);
      this.#prefix.push(part);
      this.#prefixLength += part.length;
    }
  }

  /** The next complete record, or null until more bytes are pushed. Throws FastCgiProtocolError. */
  readRecord(): FastCgiRecord | null {
    for (;;) {
      const header = this.#header;
      if (header !== null && this.#contentFilled === header.contentLength && this.#paddingLeft === 0) {
        const content = this.#contentParts.length === 1 ? (this.#contentParts[0] as Buffer) : Buffer.concat(this.#contentParts);
        this.#header = null;
        this.#contentParts = [];
        this.#contentFilled = 0;
        return { type: header.type, requestId: header.requestId, content, paddingLength: header.paddingLength, offset: header.offset };
      }
      const chunk = this.#pending[0];
      if (chunk === undefined) return null;
      const available = chunk.length - this.#pendingOffset;
      let wanted: number;
      if (header === null) wanted = FCGI_HEADER_BYTES - this.#headerFilled;
      else if (this.#contentFilled < header.contentLength) wanted = header.contentLength - this.#contentFilled;
      else wanted = this.#paddingLeft;
      const taken = Math.min(wanted, available);
      const bytes = chunk.subarray(this.#pendingOffset, this.#pendingOffset + taken);
      this.#pendingOffset += taken;
      this.#consumed += taken;
      if (this.#pendingOffset === chunk.length) {
        this.#pending.shift();
        this.#pendingOffset = 0;
      }
      if (header === null) {
        this.#headerBytes.set(bytes, this.#headerFilled);
        this.#headerFilled += taken;
        if (this.#headerFilled === FCGI_HEADER_BYTES) this.#startRecord();
      } else if (this.#contentFilled < header.contentLength) {
        this.#contentParts.push(bytes);
        this.#contentFilled += taken;
      } else {
        this.#paddingLeft -= taken;
      }
    }
  }

  #startRecord(): void {
    const bytes = this.#headerBytes;
    const offset = this.#consumed - FCGI_HEADER_BYTES;
    this.#headerFilled = 0;
    const version = bytes.readUInt8(0);
    if (version !== FCGI_VERSION_1) {
      const start = offset === 0 ? ` (the stream starts with ${quoteBytes(Buffer.concat(this.#prefix))})` : '';
      throw new FastCgiProtocolError(offset, `record header with version ${version}, expected ${FCGI_VERSION_1}${start}`);
    }
    const header: FastCgiRecordHeader = {
      type: bytes.readUInt8(1),
      requestId: bytes.readUInt16BE(2),
      contentLength: bytes.readUInt16BE(4),
      paddingLength: bytes.readUInt8(6),
      offset,
    };
    if (header.type === 0 || header.type > FCGI_MAX_TYPE) {
      throw new FastCgiProtocolError(offset, `unknown record type ${header.type} (FastCGI 1.0 defines 1 to ${FCGI_MAX_TYPE})`);
    }
    const fixedBody =
      header.type === FcgiRecordType.BEGIN_REQUEST || header.type === FcgiRecordType.END_REQUEST || header.type === FcgiRecordType.UNKNOWN_TYPE;
    if (fixedBody && header.contentLength !== FCGI_FIXED_BODY_BYTES) {
      throw new FastCgiProtocolError(
        offset,
        `a ${nameRecordType(header.type)} record has an ${FCGI_FIXED_BODY_BYTES}-byte body, this one announces ${header.contentLength} bytes`,
      );
    }
    this.#checkHeader?.(header);
    this.#header = header;
    this.#paddingLeft = header.paddingLength;
  }
}

/** Every record of a complete byte string; throws FastCgiProtocolError if it ends inside a record. */
export function decodeRecords(bytes: Uint8Array): FastCgiRecord[] {
  const reader = new FastCgiRecordReader();
  reader.pushBytes(bytes);
  const records: FastCgiRecord[] = [];
  for (let record = reader.readRecord(); record !== null; record = reader.readRecord()) records.push(record);
  const partial = reader.describePartialRecord();
  if (partial !== null) throw new FastCgiProtocolError(reader.bytesConsumed, `the bytes end ${partial}`);
  return records;
}

// A small FastCGI client: enough to ask a php-fpm pool for its ping page and its status page
// directly on the pool's listen address, without a web server in between.
//
// The protocol is FastCGI 1.0 (Mark R. Brown, Open Market, 1996), responder role only:
// - every record is an 8-byte header (version, type, request id, content length, padding length,
//   reserved) followed by content and padding (§3.3);
// - the client sends BEGIN_REQUEST, the PARAMS stream (name-value pairs, §3.4) ended by an empty
//   PARAMS record, and the STDIN stream ended by an empty STDIN record (§5, §6.2);
// - the server answers with STDOUT and STDERR records and ends with END_REQUEST (§5.5), which
//   carries the application's exit status and a protocol status.
// What php-fpm 8.2 actually sends (see test/fixtures/fastcgi/, captured from a real pool):
// records padded to a multiple of 8 bytes, STDOUT split into records of at most 65528 bytes,
// STDERR records interleaved with STDOUT, NO empty STDOUT/STDERR record closing the streams
// before END_REQUEST, and uninitialised bytes in END_REQUEST's reserved field. The decoder
// accepts all of that and does not rely on any of it.
//
// Layout: the encoders, the streaming decoders and the CGI response parser are pure; the IO edge
// is requestFastCgi (node:net), which owns the socket and the deadline.

import { createConnection } from 'node:net';
import { STATUS_CODES } from 'node:http';
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
/** Lengths up to this fit the 1-byte form. */
const FCGI_SHORT_LENGTH_MAX = 0x7f;
const FCGI_LONG_LENGTH_FLAG = 0x80000000;
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

// ---------------------------------------------------------------------------------------------
// Client limits.

/**
 * Whole exchange (connect, send, complete reply). A ping or a status page is answered in
 * milliseconds; a pool whose workers are all busy queues the request, and this bounds that wait.
 */
export const FASTCGI_TIMEOUT_MS = 5_000;
/** STDOUT plus STDERR accepted for one reply: a status page with ?full of a large pool fits easily. */
export const FASTCGI_MAX_RESPONSE_BYTES = 8 * 1024 * 1024;
/** setTimeout fires at once for longer delays (they overflow its 32-bit signed field). */
const MAX_TIMER_MS = 0x7fffffff;
/** How much of a stream's start a protocol error quotes, to show what the peer really speaks. */
const QUOTED_PREFIX_BYTES = 32;

// ---------------------------------------------------------------------------------------------
// Errors.

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

/** STDOUT is not a CGI response (header lines, blank line, body). */
export class CgiResponseError extends FpmMultiError {
  readonly problem: string;

  constructor(problem: string) {
    super(`invalid CGI response: ${problem}`);
    this.problem = problem;
  }
}

export type FastCgiAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

/**
 * - unreachable: could not connect (missing socket, refused, permission denied, …);
 * - closed-early: the server closed the connection before END_REQUEST;
 * - protocol: what came back is not FastCGI, or its STDOUT is not a CGI response, or it is too big;
 * - timeout: no complete reply within the deadline;
 * - rejected: END_REQUEST with a protocol status other than REQUEST_COMPLETE.
 */
export type FastCgiFailure = 'unreachable' | 'closed-early' | 'protocol' | 'timeout' | 'rejected';

/** A FastCGI exchange with a pool failed; the message names the address, what happened and what to check. */
export class FastCgiError extends FpmMultiError {
  readonly address: FastCgiAddress;
  readonly failure: FastCgiFailure;
  /** The system error code (ECONNREFUSED, ENOENT, …) when there was one. */
  readonly errno: string | null;

  constructor(address: FastCgiAddress, failure: FastCgiFailure, problem: string, fix: string, errno: string | null = null) {
    super(`FastCGI ${describeFastCgiAddress(address)}: ${problem}. ${fix}`);
    this.address = address;
    this.failure = failure;
    this.errno = errno;
  }
}

/** `unix:/run/php/web.sock`, `tcp:127.0.0.1:9000`, `tcp:[::1]:9000`. */
export function describeFastCgiAddress(address: FastCgiAddress): string {
  if (address.kind === 'unix') return `unix:${address.path}`;
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `tcp:${host}:${address.port}`;
}

function nameRecordType(type: number): string {
  const name = RECORD_TYPE_NAMES.get(type);
  return name === undefined ? `type ${type}` : `${name} (type ${type})`;
}

function nameProtocolStatus(status: number): string {
  const name = PROTOCOL_STATUS_NAMES.get(status);
  return name === undefined ? `unknown protocol status ${status}` : `FCGI_${name} (${status})`;
}

/** Printable ASCII as text, anything else as hex: shows at a glance "HTTP/1.1 400" or binary junk. */
function quoteBytes(bytes: Uint8Array): string {
  const printable = bytes.every((byte) => (byte >= 0x20 && byte < 0x7f) || byte === 0x0a || byte === 0x0d || byte === 0x09);
  if (printable) return JSON.stringify(Buffer.from(bytes).toString('latin1'));
  return `0x${Buffer.from(bytes).toString('hex')}`;
}

// ---------------------------------------------------------------------------------------------
// Encoding.

/** Params in the order they are sent. */
export type FastCgiParams = Readonly<Record<string, string>>;

function encodeLength(length: number, what: string): Buffer {
  if (length > FCGI_MAX_NAME_VALUE_BYTES) throw new RangeError(`FastCGI ${what} of ${length} bytes exceeds ${FCGI_MAX_NAME_VALUE_BYTES}`);
  if (length <= FCGI_SHORT_LENGTH_MAX) return Buffer.from([length]);
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE((length | FCGI_LONG_LENGTH_FLAG) >>> 0);
  return bytes;
}

/** One name-value pair (§3.4): each length in 1 byte below 128, else in 4 bytes with the top bit set. */
export function encodeNameValuePair(name: string, value: string): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  const valueBytes = Buffer.from(value, 'utf8');
  return Buffer.concat([encodeLength(nameBytes.length, `name ${JSON.stringify(name)}`), encodeLength(valueBytes.length, `value of ${name}`), nameBytes, valueBytes]);
}

/** The content of a PARAMS stream: every pair, in order. */
export function encodeNameValuePairs(params: FastCgiParams): Buffer {
  return Buffer.concat(Object.entries(params).map(([name, value]) => encodeNameValuePair(name, value)));
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

export interface FastCgiRequestBytes {
  params: FastCgiParams;
  /** Request body; empty for GET. */
  stdin?: Uint8Array;
  requestId?: number;
}

/** A complete responder request: BEGIN_REQUEST, PARAMS stream, STDIN stream. */
export function encodeFastCgiRequest(request: FastCgiRequestBytes): Buffer {
  const requestId = request.requestId ?? FASTCGI_REQUEST_ID;
  return Buffer.concat([
    encodeBeginRequest(requestId),
    encodeStream(FcgiRecordType.PARAMS, requestId, encodeNameValuePairs(request.params)),
    encodeStream(FcgiRecordType.STDIN, requestId, request.stdin ?? Buffer.alloc(0)),
  ]);
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

function readLength(bytes: Buffer, offset: number): { length: number; size: number } | null {
  const first = bytes[offset];
  if (first === undefined) return null;
  if ((first & 0x80) === 0) return { length: first, size: 1 };
  if (offset + 4 > bytes.length) return null;
  return { length: bytes.readUInt32BE(offset) & FCGI_MAX_NAME_VALUE_BYTES, size: 4 };
}

/** The pairs of a PARAMS stream's content (both length forms), in order; names and values as UTF-8. */
export function decodeNameValuePairs(bytes: Uint8Array): Array<[string, string]> {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const pairs: Array<[string, string]> = [];
  let offset = 0;
  while (offset < buffer.length) {
    const nameLength = readLength(buffer, offset);
    const valueLength = nameLength === null ? null : readLength(buffer, offset + nameLength.size);
    if (nameLength === null || valueLength === null) throw new FastCgiProtocolError(offset, 'name-value pair lengths cut short');
    const nameStart = offset + nameLength.size + valueLength.size;
    const valueStart = nameStart + nameLength.length;
    const end = valueStart + valueLength.length;
    if (end > buffer.length) {
      throw new FastCgiProtocolError(offset, `name-value pair announces ${end - nameStart} bytes, only ${buffer.length - nameStart} remain`);
    }
    pairs.push([buffer.toString('utf8', nameStart, valueStart), buffer.toString('utf8', valueStart, end)]);
    offset = end;
  }
  return pairs;
}

// ---------------------------------------------------------------------------------------------
// Decoding a reply.

export interface DecodedFastCgiResponse {
  stdout: Buffer;
  stderr: Buffer;
  /** END_REQUEST appStatus, unsigned 32 bits (php-fpm always sends 0). */
  appStatus: number;
  /** END_REQUEST protocolStatus: FcgiProtocolStatus.REQUEST_COMPLETE unless the server refused. */
  protocolStatus: number;
  /** Non-empty STDOUT and STDERR records received (diagnostics). */
  stdoutRecords: number;
  stderrRecords: number;
}

export interface FastCgiResponseDecoderOptions {
  /** The request id of our request; records for any other are refused. Default FASTCGI_REQUEST_ID. */
  requestId?: number;
  /** STDOUT plus STDERR bytes accepted. Default FASTCGI_MAX_RESPONSE_BYTES. */
  maxResponseBytes?: number;
}

/**
 * Collects a responder's reply from chunks of any size: STDOUT and STDERR, each possibly in many
 * records, in any interleaving, until END_REQUEST. The empty records that close the STDOUT and
 * STDERR streams are accepted and not required (php-fpm does not send them). Bytes after
 * END_REQUEST are not read: without FCGI_KEEP_CONN the server closes the connection there.
 */
export class FastCgiResponseDecoder {
  readonly #requestId: number;
  readonly #maxResponseBytes: number;
  readonly #reader: FastCgiRecordReader;
  readonly #stdout: Buffer[] = [];
  readonly #stderr: Buffer[] = [];
  #stdoutBytes = 0;
  #stderrBytes = 0;
  #result: DecodedFastCgiResponse | null = null;

  constructor(options: FastCgiResponseDecoderOptions = {}) {
    this.#requestId = options.requestId ?? FASTCGI_REQUEST_ID;
    this.#maxResponseBytes = options.maxResponseBytes ?? FASTCGI_MAX_RESPONSE_BYTES;
    this.#reader = new FastCgiRecordReader((header) => this.#checkHeader(header));
  }

  get finished(): boolean {
    return this.#result !== null;
  }

  /** Bytes of the stream read so far. */
  get bytesReceived(): number {
    return this.#reader.bytesConsumed;
  }

  /** What has arrived, for messages about a reply that stopped or never completed. */
  describeProgress(): string {
    const partial = this.#reader.describePartialRecord();
    const streams =
      `${this.#stdoutBytes} bytes of STDOUT in ${this.#stdout.length} records and ${this.#stderrBytes} bytes of STDERR in ${this.#stderr.length} records`;
    return `${this.bytesReceived} bytes received (${streams})${partial === null ? '' : `, stopped ${partial}`}`;
  }

  /** Feeds a chunk; returns the reply once END_REQUEST is complete, else null. Throws FastCgiProtocolError. */
  pushBytes(chunk: Uint8Array): DecodedFastCgiResponse | null {
    if (this.#result !== null) return this.#result;
    this.#reader.pushBytes(chunk);
    for (let record = this.#reader.readRecord(); record !== null; record = this.#reader.readRecord()) {
      if (record.type === FcgiRecordType.END_REQUEST) {
        this.#result = {
          stdout: Buffer.concat(this.#stdout),
          stderr: Buffer.concat(this.#stderr),
          appStatus: record.content.readUInt32BE(0),
          protocolStatus: record.content.readUInt8(4),
          stdoutRecords: this.#stdout.length,
          stderrRecords: this.#stderr.length,
        };
        return this.#result;
      }
      if (record.content.length === 0) continue; // end of a stream: nothing to keep
      if (record.type === FcgiRecordType.STDOUT) this.#stdout.push(record.content);
      else this.#stderr.push(record.content);
    }
    return null;
  }

  #checkHeader(header: FastCgiRecordHeader): void {
    const { type, offset } = header;
    if (type === FcgiRecordType.UNKNOWN_TYPE) {
      throw new FastCgiProtocolError(offset, 'the server answered FCGI_UNKNOWN_TYPE: it did not understand a record of the request');
    }
    if (type !== FcgiRecordType.STDOUT && type !== FcgiRecordType.STDERR && type !== FcgiRecordType.END_REQUEST) {
      throw new FastCgiProtocolError(offset, `unexpected ${nameRecordType(type)} record: a responder only sends STDOUT, STDERR and END_REQUEST`);
    }
    if (header.requestId !== this.#requestId) {
      throw new FastCgiProtocolError(offset, `${nameRecordType(type)} record for request ${header.requestId}, but this connection carries request ${this.#requestId} only`);
    }
    // Checked on the announced length, so an endless or bogus stream is refused before it is read.
    const total = this.#stdoutBytes + this.#stderrBytes + header.contentLength;
    if (total > this.#maxResponseBytes) {
      throw new FastCgiProtocolError(offset, `the reply grows past ${this.#maxResponseBytes} bytes of STDOUT and STDERR (${total} announced so far)`);
    }
    if (type === FcgiRecordType.STDOUT) this.#stdoutBytes += header.contentLength;
    if (type === FcgiRecordType.STDERR) this.#stderrBytes += header.contentLength;
  }
}

/** Decodes a complete reply; throws FastCgiProtocolError if it is invalid or ends before END_REQUEST. */
export function decodeFastCgiResponse(bytes: Uint8Array, options: FastCgiResponseDecoderOptions = {}): DecodedFastCgiResponse {
  const decoder = new FastCgiResponseDecoder(options);
  const result = decoder.pushBytes(bytes);
  if (result === null) throw new FastCgiProtocolError(decoder.bytesReceived, `the reply ends before END_REQUEST: ${decoder.describeProgress()}`);
  return result;
}

// ---------------------------------------------------------------------------------------------
// CGI response (RFC 3875 §6): header lines, a blank line, the body.

export interface CgiResponse {
  /** From the Status header; 200 when there is none. */
  status: number;
  statusText: string;
  /** Lower-case names; a repeated header's values joined with ", ". */
  headers: ReadonlyMap<string, string>;
  body: Buffer;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const STATUS_VALUE = /^([1-5]\d\d)(?:[ \t]+(.*))?$/;
const DEFAULT_STATUS = 200;

/** Splits STDOUT into headers and body; lines may end with CRLF (php-fpm) or LF (RFC 3875). */
export function parseCgiResponse(stdout: Uint8Array): CgiResponse {
  const bytes = Buffer.from(stdout.buffer, stdout.byteOffset, stdout.length);
  const headers = new Map<string, string>();
  let status = DEFAULT_STATUS;
  let statusText: string | null = null;
  let lineStart = 0;
  for (;;) {
    const newline = bytes.indexOf(0x0a, lineStart);
    if (newline === -1) {
      throw new CgiResponseError(
        bytes.length === 0 ? 'STDOUT is empty (a CGI response has at least one header)' : `no blank line ends the headers (STDOUT starts with ${quoteBytes(bytes.subarray(0, QUOTED_PREFIX_BYTES))})`,
      );
    }
    const lineEnd = newline > lineStart && bytes[newline - 1] === 0x0d ? newline - 1 : newline;
    const line = bytes.toString('latin1', lineStart, lineEnd);
    lineStart = newline + 1;
    if (line === '') break;
    const colon = line.indexOf(':');
    const name = colon === -1 ? '' : line.slice(0, colon);
    if (!HEADER_NAME.test(name)) throw new CgiResponseError(`malformed header line ${JSON.stringify(line)}`);
    const key = name.toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (key === 'status') {
      const match = STATUS_VALUE.exec(value);
      if (match === null) throw new CgiResponseError(`malformed Status header ${JSON.stringify(value)} (expected a 3-digit code and a reason)`);
      status = Number(match[1]);
      statusText = match[2]?.trim() || null;
    }
    const previous = headers.get(key);
    headers.set(key, previous === undefined ? value : `${previous}, ${value}`);
  }
  return { status, statusText: statusText ?? STATUS_CODES[status] ?? '', headers, body: bytes.subarray(lineStart) };
}

// ---------------------------------------------------------------------------------------------
// Params for a GET.

export interface GetParamsOptions {
  /**
   * Directory SCRIPT_FILENAME is resolved in. Default "/": SCRIPT_FILENAME is then the path
   * itself, which is all php-fpm's ping and status pages need (see buildGetParams).
   */
  documentRoot?: string;
}

/**
 * The CGI params of `GET <uri>` as a web server would send them.
 *
 * What php-fpm 8.2 requires (sapi/fpm/fpm/fpm_main.c init_request_info and its request loop,
 * fpm_status.c, checked against a real pool with cgi-fcgi):
 * - SCRIPT_NAME is what ping.path and pm.status_path are compared with, by exact string
 *   equality: it is SG(request_info).request_uri. REQUEST_URI is NOT looked at, and SCRIPT_NAME
 *   must not carry the query string ("/status?json" never matches).
 * - SCRIPT_FILENAME (or PATH_TRANSLATED) must be present: without it request_uri stays unset and
 *   the status code answers nothing (404 "File not found."). The file need not exist: the
 *   ping/status check runs before the primary script is looked up or security.limit_extensions
 *   applied.
 * - REQUEST_METHOD must be present, or php-fpm ends the request with empty headers; HEAD gives the
 *   headers without the body.
 * - QUERY_STRING feeds $_GET, where the status page looks for json, xml, html, openmetrics, full.
 * The rest is what scripts and the status page's "full" view read.
 */
export function buildGetParams(uri: string, options: GetParamsOptions = {}): FastCgiParams {
  if (!uri.startsWith('/')) throw new RangeError(`a FastCGI request path starts with "/", not ${JSON.stringify(uri)}`);
  const question = uri.indexOf('?');
  const path = question === -1 ? uri : uri.slice(0, question);
  const query = question === -1 ? '' : uri.slice(question + 1);
  const root = (options.documentRoot ?? '/').replace(/\/+$/, '');
  return {
    SCRIPT_FILENAME: `${root}${path}`,
    SCRIPT_NAME: path,
    REQUEST_URI: uri,
    DOCUMENT_URI: path,
    DOCUMENT_ROOT: root === '' ? '/' : root,
    QUERY_STRING: query,
    REQUEST_METHOD: 'GET',
    SERVER_PROTOCOL: 'HTTP/1.1',
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_SOFTWARE: 'php-fpm-multi',
    SERVER_NAME: 'localhost',
    REMOTE_ADDR: '127.0.0.1',
  };
}

// ---------------------------------------------------------------------------------------------
// IO edge.

export interface FastCgiRequestOptions {
  params: FastCgiParams;
  stdin?: Uint8Array;
  /** Deadline for the whole exchange, connect included. Default FASTCGI_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Default FASTCGI_MAX_RESPONSE_BYTES. */
  maxResponseBytes?: number;
}

export interface FastCgiResponse extends CgiResponse {
  /** Raw STDOUT (headers and body). */
  stdout: Buffer;
  /** What the application logged on FCGI_STDERR (php-fpm: PHP messages when no error_log is set). */
  stderr: string;
  appStatus: number;
}

function readErrno(error: unknown): string | null {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : null;
}

function describeConnectError(address: FastCgiAddress, error: unknown): FastCgiError {
  const errno = readErrno(error);
  const detail = error instanceof Error ? error.message : String(error);
  const running = 'Check that the pool is running and that its listen directive is this address';
  if (address.kind === 'unix') {
    switch (errno) {
      case 'ENOENT':
        return new FastCgiError(address, 'unreachable', `the socket ${address.path} does not exist (ENOENT)`, `${running}.`, errno);
      case 'ECONNREFUSED':
        return new FastCgiError(
          address,
          'unreachable',
          'connection refused (ECONNREFUSED): nothing accepts connections on this path (a socket left by a stopped php-fpm, or not a socket)',
          `${running}.`,
          errno,
        );
      case 'EACCES':
      case 'EPERM':
        return new FastCgiError(
          address,
          'unreachable',
          `permission denied (${errno})`,
          "Check the socket's owner, group and mode (the pool's listen.owner, listen.group, listen.mode) and that this user may enter every directory of the path.",
          errno,
        );
      case 'EAGAIN':
        return new FastCgiError(address, 'unreachable', 'the listen queue of the socket is full (EAGAIN)', "The pool is overloaded: check its status page's listen queue and pm.max_children.", errno);
      default:
        return new FastCgiError(address, 'unreachable', `cannot connect: ${detail}`, `${running}.`, errno);
    }
  }
  switch (errno) {
    case 'ECONNREFUSED':
      return new FastCgiError(address, 'unreachable', `connection refused (ECONNREFUSED): nothing listens on port ${address.port}`, `${running}.`, errno);
    case 'EACCES':
    case 'EPERM':
      return new FastCgiError(address, 'unreachable', `connection not permitted (${errno})`, 'Check the firewall rules for this address.', errno);
    default:
      return new FastCgiError(address, 'unreachable', `cannot connect: ${detail}`, `${running}.`, errno);
  }
}

function wrapDecodeError(address: FastCgiAddress, error: unknown): unknown {
  if (error instanceof FastCgiProtocolError) {
    return new FastCgiError(
      address,
      'protocol',
      `the reply is not valid FastCGI at byte ${error.offset}: ${error.problem}`,
      'Check that this address is a php-fpm pool and not another service (an HTTP server, another daemon).',
    );
  }
  return error;
}

/**
 * Connects, sends the request, collects the reply until END_REQUEST. Settles exactly once; the
 * socket is destroyed on every outcome, and the deadline covers connecting as well as waiting.
 */
function exchangeRecords(address: FastCgiAddress, request: Buffer, decoder: FastCgiResponseDecoder, timeoutMs: number): Promise<DecodedFastCgiResponse> {
  return new Promise((resolve, reject) => {
    let connected = false;
    let settled = false;
    const socket = address.kind === 'unix' ? createConnection({ path: address.path }) : createConnection({ host: address.host, port: address.port });
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      return true;
    };
    const fail = (error: unknown): void => {
      if (settle()) reject(error);
    };
    const failClosed = (error?: unknown): void => {
      if (settled) return;
      const errno = error === undefined ? null : readErrno(error);
      const how = errno === null ? 'closed the connection' : `broke the connection (${errno})`;
      fail(
        new FastCgiError(
          address,
          'closed-early',
          `the server ${how} before the end of the reply (END_REQUEST): ${decoder.describeProgress()}`,
          "Check the pool's error log: a worker that crashed or was killed (request_terminate_timeout, a signal) closes the connection early; so does a service that is not FastCGI.",
          errno,
        ),
      );
    };
    const timer = setTimeout(() => {
      const progress = connected ? `connected, request sent, ${decoder.describeProgress()}` : 'not even connected';
      fail(
        new FastCgiError(
          address,
          'timeout',
          `no complete reply within ${timeoutMs} ms (${progress})`,
          connected
            ? "The pool may be saturated (every pm.max_children worker busy: see the status page's listen queue) or the request ran a slow script."
            : 'The address may be firewalled (TCP) or the pool may be stopped with its listen backlog full.',
        ),
      );
    }, timeoutMs);

    socket.on('connect', () => {
      connected = true;
      socket.write(request);
    });
    socket.on('data', (chunk: Buffer) => {
      if (settled) return;
      let result: DecodedFastCgiResponse | null;
      try {
        result = decoder.pushBytes(chunk);
      } catch (error) {
        fail(wrapDecodeError(address, error));
        return;
      }
      if (result !== null && settle()) resolve(result);
    });
    socket.on('error', (error) => (connected ? failClosed(error) : fail(describeConnectError(address, error))));
    socket.on('end', () => failClosed());
    socket.on('close', () => failClosed());
  });
}

/**
 * Sends one FastCGI responder request to a pool's listen address and returns its reply, parsed
 * as a CGI response. Throws FastCgiError (exit code 1) when the pool cannot be reached, closes
 * early, answers something that is not FastCGI or not CGI, refuses the request, or does not
 * answer within the deadline.
 */
export async function requestFastCgi(address: FastCgiAddress, options: FastCgiRequestOptions): Promise<FastCgiResponse> {
  const timeoutMs = options.timeoutMs ?? FASTCGI_TIMEOUT_MS;
  if (!(timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS)) throw new RangeError(`timeoutMs must be 1 to ${MAX_TIMER_MS} milliseconds, not ${timeoutMs}`);
  if (address.kind === 'tcp' && (!Number.isInteger(address.port) || address.port < 1 || address.port > 0xffff)) {
    throw new RangeError(`TCP port must be 1 to 65535, not ${address.port}`);
  }
  const request = encodeFastCgiRequest({ params: options.params, stdin: options.stdin ?? Buffer.alloc(0) });
  const decoder = new FastCgiResponseDecoder({ maxResponseBytes: options.maxResponseBytes ?? FASTCGI_MAX_RESPONSE_BYTES });
  const reply = await exchangeRecords(address, request, decoder, timeoutMs);
  if (reply.protocolStatus !== FcgiProtocolStatus.REQUEST_COMPLETE) {
    throw new FastCgiError(
      address,
      'rejected',
      `the server refused the request with ${nameProtocolStatus(reply.protocolStatus)}`,
      reply.protocolStatus === FcgiProtocolStatus.OVERLOADED ? 'The pool is overloaded: retry later or raise pm.max_children.' : 'Check that this address is a FastCGI responder (php-fpm).',
    );
  }
  let cgi: CgiResponse;
  try {
    cgi = parseCgiResponse(reply.stdout);
  } catch (error) {
    if (!(error instanceof CgiResponseError)) throw error;
    throw new FastCgiError(address, 'protocol', `the reply's STDOUT is not a CGI response: ${error.problem}`, 'Check that this address is a php-fpm pool.');
  }
  return { ...cgi, stdout: reply.stdout, stderr: reply.stderr.toString('utf8'), appStatus: reply.appStatus };
}

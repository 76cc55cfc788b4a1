// A FastCGI responder's reply: the streaming decoder that collects STDOUT and STDERR up to
// END_REQUEST (§5.5: the application's exit status and a protocol status), and the CGI response
// (RFC 3875 §6) in STDOUT: header lines, a blank line, the body. Pure: no IO.

import { STATUS_CODES } from 'node:http';
import { FpmMultiError } from '../errors.js';
import {
  FASTCGI_REQUEST_ID, FastCgiProtocolError, FastCgiRecordReader, FcgiRecordType, nameRecordType, quoteBytes, QUOTED_PREFIX_BYTES, type FastCgiRecordHeader,
} from './records.js';

/** STDOUT plus STDERR accepted for one reply: a status page with ?full of a large pool fits easily. */
export const FASTCGI_MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

/** STDOUT is not a CGI response (header lines, blank line, body). */
export class CgiResponseError extends FpmMultiError {
  readonly problem: string;

  constructor(problem: string) {
    super(`invalid CGI response: ${problem}`);
    this.problem = problem;
  }
}

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

// FastCGI name-value pairs (§3.4) and the request a client sends: BEGIN_REQUEST, the PARAMS
// stream, the STDIN stream (§5, §6.2), with the CGI params of a GET as a web server would send
// them. Pure: no IO.

import { encodeBeginRequest, encodeStream, FASTCGI_REQUEST_ID, FastCgiProtocolError, FCGI_MAX_NAME_VALUE_BYTES, FcgiRecordType } from './records.js';

/** Lengths up to this fit the 1-byte form. */
const FCGI_SHORT_LENGTH_MAX = 0x7f;
const FCGI_LONG_LENGTH_FLAG = 0x80000000;

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

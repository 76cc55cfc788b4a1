// A small FastCGI client: enough to ask a php-fpm pool for its ping page and its status page
// directly on the pool's listen address, without a web server in between. Responder role only,
// one request per connection. The connection comes from System.connect (src/process/system.ts),
// so a test can answer with a fake stream; the client owns the deadline, which covers connecting
// as well as waiting for the reply.

import { errnoCode, FpmMultiError } from '../errors.js';
import { connectSocket, type Connection, type SocketAddress } from '../process/system.js';
import { encodeFastCgiRequest, type FastCgiParams } from './params.js';
import { FcgiProtocolStatus, FastCgiProtocolError, nameProtocolStatus } from './records.js';
import { CgiResponseError, FASTCGI_MAX_RESPONSE_BYTES, FastCgiResponseDecoder, parseCgiResponse, type CgiResponse, type DecodedFastCgiResponse } from './response.js';

/**
 * Whole exchange (connect, send, complete reply). A ping or a status page is answered in
 * milliseconds; a pool whose workers are all busy queues the request, and this bounds that wait.
 */
export const FASTCGI_TIMEOUT_MS = 5_000;
/** setTimeout fires at once for longer delays (they overflow its 32-bit signed field). */
const MAX_TIMER_MS = 0x7fffffff;
/** How much of a stream's start a protocol error quotes, to show what the peer really speaks. */
/** A pool's listen address, as System.connect takes it. */
export type FastCgiAddress = SocketAddress;

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

export interface FastCgiRequestOptions {
  params: FastCgiParams;
  stdin?: Uint8Array;
  /** Deadline for the whole exchange, connect included. Default FASTCGI_TIMEOUT_MS. */
  timeoutMs?: number;
  /** Default FASTCGI_MAX_RESPONSE_BYTES. */
  maxResponseBytes?: number;
  /** Where the connection comes from: System.connect; default a real socket (connectSocket). */
  connect?: (address: FastCgiAddress) => Connection;
}

export interface FastCgiResponse extends CgiResponse {
  /** Raw STDOUT (headers and body). */
  stdout: Buffer;
  /** What the application logged on FCGI_STDERR (php-fpm: PHP messages when no error_log is set). */
  stderr: string;
  appStatus: number;
}

function describeConnectError(address: FastCgiAddress, error: unknown): FastCgiError {
  const errno = errnoCode(error) ?? null;
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
function exchangeRecords(
  connect: (address: FastCgiAddress) => Connection, address: FastCgiAddress, request: Buffer, decoder: FastCgiResponseDecoder, timeoutMs: number,
): Promise<DecodedFastCgiResponse> {
  return new Promise((resolve, reject) => {
    let connected = false;
    let settled = false;
    const socket = connect(address);
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
      const errno = error === undefined ? null : errnoCode(error) ?? null;
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
    socket.on('error', (error: Error) => (connected ? failClosed(error) : fail(describeConnectError(address, error))));
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
  const reply = await exchangeRecords(options.connect ?? connectSocket, address, request, decoder, timeoutMs);
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

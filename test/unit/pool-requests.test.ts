// Unit tests of the pool requests (src/php-fpm/pools.ts pingPool and readPoolStatus, through the
// FastCGI client of src/fastcgi/client.ts) over the fake System's connections: what is sent, how
// the answer is decoded, and each way an exchange fails (refused, closed early, silent, another
// pool's answer). No socket is opened.
import { describe, expect, test } from 'vitest';
import { FastCgiError } from '../../src/fastcgi/client.js';
import { decodeNameValuePairs } from '../../src/fastcgi/params.js';
import { encodeRecord, FastCgiRecordReader, FcgiRecordType } from '../../src/fastcgi/records.js';
import type { FpmPool } from '../../src/php-fpm/config/types.js';
import { pingPool, PoolAnswerError, readPoolStatus } from '../../src/php-fpm/pools.js';
import { FakeSystem, fakeConnection, refusedConnection, type FakePeer } from '../fixtures/fake-system.js';

/** A short deadline: the fake answers at once or never, so only the silent cases wait for it. */
const DEADLINE_MS = 50;

function makePool(overrides: Partial<FpmPool> = {}): FpmPool {
  return {
    name: 'web', file: '/etc/php/fpm/pool.conf', line: 3, listen: '/run/php/web.sock', listenAt: { file: '/etc/php/fpm/pool.conf', line: 4 },
    statusListen: null, statusListenAt: null, pingPath: '/ping', pingResponse: 'pong', statusPath: '/status', pm: 'static',
    user: null, group: null, prefix: null, ...overrides,
  };
}

/** The CGI params of the request in `received` once its STDIN stream has ended, else null. */
function readRequest(reader: FastCgiRecordReader, received: Buffer, params: Buffer[]): Record<string, string> | null {
  reader.pushBytes(received);
  for (let record = reader.readRecord(); record !== null; record = reader.readRecord()) {
    if (record.type === FcgiRecordType.PARAMS) params.push(record.content);
    if (record.type === FcgiRecordType.STDIN && record.content.length === 0) return Object.fromEntries(decodeNameValuePairs(Buffer.concat(params)));
  }
  return null;
}

/** A responder: answers each request with `reply(params, peer)`; records what it was asked. */
function serving(reply: (params: Record<string, string>, peer: FakePeer) => void): { system: FakeSystem; requests: Array<Record<string, string>> } {
  const system = new FakeSystem();
  const requests: Array<Record<string, string>> = [];
  system.connectHandler = () => {
    const reader = new FastCgiRecordReader();
    const params: Buffer[] = [];
    return fakeConnection((received, peer) => {
      const request = readRequest(reader, received, params);
      if (request === null) return;
      requests.push(request);
      reply(request, peer);
    });
  };
  return { system, requests };
}

/** A complete CGI reply: STDOUT with the status line and body, then END_REQUEST (complete). */
function answer(peer: FakePeer, status: number, body: string): void {
  peer.write(encodeRecord(FcgiRecordType.STDOUT, 1, Buffer.from(`Status: ${status} Fake\r\nContent-Type: text/plain\r\n\r\n${body}`)));
  peer.write(encodeRecord(FcgiRecordType.END_REQUEST, 1, Buffer.alloc(8)));
  peer.end();
}

async function failure(pending: Promise<unknown>): Promise<FastCgiError> {
  const error: unknown = await pending.then(() => null, (reason: unknown) => reason);
  if (!(error instanceof FastCgiError)) throw new Error(`expected a FastCgiError, got ${String(error)}`);
  return error;
}

describe('pingPool over a fake connection', () => {
  test('sends GET of ping.path to the pool\'s listen address and accepts its ping.response', async () => {
    const { system, requests } = serving((_params, peer) => answer(peer, 200, 'pong'));
    await pingPool(system, makePool(), DEADLINE_MS * 100);
    expect(system.connections).toEqual([{ kind: 'unix', path: '/run/php/web.sock' }]);
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({ SCRIPT_NAME: '/ping', SCRIPT_FILENAME: '/ping', REQUEST_METHOD: 'GET', QUERY_STRING: '' });
  });

  test('another answer is not the pool: PoolAnswerError naming the path and what came back', async () => {
    const { system } = serving((_params, peer) => answer(peer, 404, 'File not found.'));
    const error: unknown = await pingPool(system, makePool(), DEADLINE_MS * 100).then(() => null, (reason: unknown) => reason);
    expect(error).toBeInstanceOf(PoolAnswerError);
    expect((error as Error).message).toContain('/ping answered 404');
    expect((error as Error).message).toContain('has no ping.path /ping');
  });

  test('nothing listens: unreachable, with the errno of the connect', async () => {
    const system = new FakeSystem();
    system.connectHandler = (address) => refusedConnection(address, 'ENOENT');
    const error = await failure(pingPool(system, makePool(), DEADLINE_MS * 100));
    expect(error.failure).toBe('unreachable');
    expect(error.errno).toBe('ENOENT');
    expect(error.message).toContain('the socket /run/php/web.sock does not exist (ENOENT)');
  });

  test('the server closes before END_REQUEST: closed-early, saying how far the reply got', async () => {
    const { system } = serving((_params, peer) => {
      peer.write(encodeRecord(FcgiRecordType.STDOUT, 1, Buffer.from('Status: 200 OK\r\n\r\npo')));
      peer.end();
    });
    const error = await failure(pingPool(system, makePool(), DEADLINE_MS * 100));
    expect(error.failure).toBe('closed-early');
    expect(error.message).toContain('closed the connection before the end of the reply (END_REQUEST)');
  });

  test('a server that never answers: timeout once connected, after the request was sent', async () => {
    const { system, requests } = serving(() => undefined);
    const error = await failure(pingPool(system, makePool(), DEADLINE_MS));
    expect(error.failure).toBe('timeout');
    expect(error.message).toContain(`no complete reply within ${DEADLINE_MS} ms (connected, request sent`);
    expect(requests).toHaveLength(1);
  });

  test('a connection that never connects (a firewall dropping the SYN): timeout, not even connected', async () => {
    const system = new FakeSystem();
    system.connectHandler = () => fakeConnection(() => undefined, { connects: false });
    const error = await failure(pingPool(system, makePool(), DEADLINE_MS));
    expect(error.failure).toBe('timeout');
    expect(error.message).toContain('not even connected');
  });
});

describe('readPoolStatus over a fake connection', () => {
  const STATUS = {
    pool: 'web', 'process manager': 'static', 'start time': 1_795_255_873, 'start since': 12, 'accepted conn': 42, 'listen queue': 1,
    'max listen queue': 3, 'listen queue len': 4096, 'idle processes': 1, 'active processes': 2, 'total processes': 3,
    'max active processes': 3, 'max children reached': 4, 'slow requests': 5,
  };

  test('asks pm.status_path?json and decodes the figures', async () => {
    const { system, requests } = serving((_params, peer) => answer(peer, 200, JSON.stringify(STATUS)));
    const figures = await readPoolStatus(system, makePool(), DEADLINE_MS * 100);
    expect(requests[0]).toMatchObject({ SCRIPT_NAME: '/status', QUERY_STRING: 'json', REQUEST_URI: '/status?json' });
    expect(figures).toMatchObject({ pool: 'web', acceptedConnections: 42, listenQueue: 1, activeProcesses: 2, slowRequests: 5 });
  });

  test("another pool's status page is refused", async () => {
    const { system } = serving((_params, peer) => answer(peer, 200, JSON.stringify({ ...STATUS, pool: 'api' })));
    await expect(readPoolStatus(system, makePool(), DEADLINE_MS * 100)).rejects.toBeInstanceOf(PoolAnswerError);
  });
});

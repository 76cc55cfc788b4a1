// Unit tests of the pure parts of src/php-fpm/pools.ts (addresses, the status page, health's verdict)
// and of src/php-fpm/prometheus.ts (the text exposition format and the pool metrics).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { decodeFastCgiResponse, parseCgiResponse } from '../../src/fastcgi/response.js';
import type { FpmPool } from '../../src/php-fpm/config/types.js';
import {
  describeHealthFailures, describeStatusHint, findStatusListen, isSamePoolName, parsePoolStatus, PoolAddressError,
  PoolStatusFormatError, resolvePoolAddress, type InstanceSurvey, type PoolFigures, type PoolProbe,
} from '../../src/php-fpm/pools.js';
import {
  buildPoolMetrics, escapeHelp, escapeLabelValue, formatExposition, formatSampleValue, type MetricFamily,
} from '../../src/php-fpm/prometheus.js';
import type { UsableInstance } from '../../src/model/invocation.js';
import type { Target } from '../../src/process/target.js';

function makePool(name: string, overrides: Partial<FpmPool> = {}): FpmPool {
  return {
    name, file: '/etc/php/fpm/pool.conf', line: 3, listen: `/run/php/${name}.sock`, listenAt: { file: '/etc/php/fpm/pool.conf', line: 4 },
    statusListen: null, statusListenAt: null, pingPath: null, pingResponse: null, statusPath: null, pm: 'static',
    user: null, group: null, prefix: null, ...overrides,
  };
}

function makeTarget(name: string, overrides: { unusable?: string } = {}): Target {
  if (overrides.unusable !== undefined) return { kind: 'unusable', name, pidfile: `/run/${name}.pid`, reason: overrides.unusable, record: null, pidfileProves: true };
  return {
    kind: 'declared', name, instance: { name, pidfile: `/run/${name}.pid` } as UsableInstance, record: null, intent: null, recordProblem: null, pidfileProves: true, errorLog: null, pools: [],
  };
}

const FIGURES: PoolFigures = {
  pool: 'web', processManager: 'static', startTimeS: 1_795_255_873, uptimeS: 12, acceptedConnections: 42, listenQueue: 1,
  maxListenQueue: 3, listenQueueLength: 4096, idleProcesses: 1, activeProcesses: 2, totalProcesses: 3, maxActiveProcesses: 3,
  maxChildrenReached: 4, slowRequests: 5,
};

describe('resolvePoolAddress: where to connect for a listen value', () => {
  test.each([
    ['/run/php/web.sock', { kind: 'unix', path: '/run/php/web.sock' }],
    ['/run/php//web.sock', { kind: 'unix', path: '/run/php/web.sock' }],
    ['127.0.0.1:9000', { kind: 'tcp', host: '127.0.0.1', port: 9000 }],
    ['192.0.2.7:9001', { kind: 'tcp', host: '192.0.2.7', port: 9001 }],
    ['localhost:9002', { kind: 'tcp', host: '127.0.0.1', port: 9002 }],
    ['[::1]:9003', { kind: 'tcp', host: '::1', port: 9003 }],
    ['fpm.example:9004', { kind: 'tcp', host: 'fpm.example', port: 9004 }],
    // Wildcards are reached on loopback: a bare port binds every address (IPv4 included)...
    ['9005', { kind: 'tcp', host: '127.0.0.1', port: 9005 }],
    ['0.0.0.0:9006', { kind: 'tcp', host: '127.0.0.1', port: 9006 }],
    // ...and [::] certainly covers ::1, whatever IPV6_V6ONLY says about IPv4.
    ['[::]:9007', { kind: 'tcp', host: '::1', port: 9007 }],
  ])('%s', (listen, address) => {
    expect(resolvePoolAddress(listen)).toEqual(address);
  });

  test.each([
    ['70000', "'70000' is not a port between 1 and 65535"],
    [':9000', 'the address before the port is empty'],
  ])('%s cannot be connected to, and says why', (listen, reason) => {
    expect(() => resolvePoolAddress(listen)).toThrow(PoolAddressError);
    expect(() => resolvePoolAddress(listen)).toThrow(`listen = ${listen} cannot be connected to: ${reason}. Fix the pool's listen directive`);
  });

  test('the status page is asked on pm.status_listen when set, else on listen', () => {
    expect(findStatusListen(makePool('web'))).toBe('/run/php/web.sock');
    expect(findStatusListen(makePool('web', { statusListen: '127.0.0.1:9100' }))).toBe('127.0.0.1:9100');
  });
});

describe('parsePoolStatus: the JSON status page', () => {
  test('the page captured from php-fpm 8.2 gives every figure', () => {
    const reply = decodeFastCgiResponse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'fastcgi', 'status-json.response.bin')));
    const body = parseCgiResponse(reply.stdout).body.toString('utf8');
    expect(parsePoolStatus(body)).toEqual({
      pool: 'capture', processManager: 'static', startTimeS: 1_795_255_873, uptimeS: 0, acceptedConnections: 2, listenQueue: 0,
      maxListenQueue: 0, listenQueueLength: 0, idleProcesses: 0, activeProcesses: 1, totalProcesses: 1, maxActiveProcesses: 1,
      maxChildrenReached: 0, slowRequests: 0,
    });
  });

  const page = (fields: Record<string, unknown>): string => JSON.stringify({
    pool: 'web', 'process manager': 'dynamic', 'start time': 1, 'start since': 2, 'accepted conn': 3, 'listen queue': 4,
    'max listen queue': 5, 'listen queue len': 6, 'idle processes': 7, 'active processes': 8, 'total processes': 15,
    'max active processes': 9, 'max children reached': 10, 'slow requests': 11, ...fields,
  });

  test('fields a later php-fpm adds (8.3: "memory peak") are ignored', () => {
    expect(parsePoolStatus(page({ 'memory peak': 2_097_152 }))).toMatchObject({ pool: 'web', acceptedConnections: 3, totalProcesses: 15, slowRequests: 11 });
  });

  test.each([
    ['{"pool":', /^invalid php-fpm status page: not JSON \(.*\): "\{\\"pool\\":"$/],
    ['[1,2]', /^invalid php-fpm status page: not a JSON object: "\[1,2\]"$/],
    [page({ 'accepted conn': undefined }), /^invalid php-fpm status page: "accepted conn" is missing$/],
    [page({ 'listen queue': -1 }), /^invalid php-fpm status page: "listen queue" is not a count: -1$/],
    [page({ 'slow requests': '3' }), /^invalid php-fpm status page: "slow requests" is not a count: "3"$/],
    [page({ pool: 7 }), /^invalid php-fpm status page: "pool" is not a string: 7$/],
  ])('%s is refused, naming what is wrong', (body, message) => {
    expect(() => parsePoolStatus(body)).toThrow(PoolStatusFormatError);
    expect(() => parsePoolStatus(body)).toThrow(message);
  });

  test('the pool name matches, also cut to 31 bytes as php-fpm 8.2 shows a long one', () => {
    expect(isSamePoolName('web', 'web')).toBe(true);
    expect(isSamePoolName('api', 'web')).toBe(false);
    // Seen on php-fpm 8.2: [a_very_long_pool_name_that_exceeds_32_bytes_for_sure] reports this.
    expect(isSamePoolName('a_very_long_pool_name_that_exce', 'a_very_long_pool_name_that_exceeds_32_bytes_for_sure')).toBe(true);
    expect(isSamePoolName('a_very_long_pool_name_that_exce', 'a_very_long_pool_name_that_exce')).toBe(true);
    expect(isSamePoolName('a_very_long_pool_name_that_exc', 'a_very_long_pool_name_that_exceeds')).toBe(false);
  });

  test('a pool without a status page gets the line to add and where', () => {
    expect(describeStatusHint('a', makePool('web'))).toBe(
      'no status page: add "pm.status_path = /status" to [web] in /etc/php/fpm/pool.conf, then run php-fpm-multi reload a',
    );
  });
});

describe("describeHealthFailures: health's verdict on one instance", () => {
  const answered = <T>(value: T) => ({ kind: 'answered', value }) as const;
  const failed = (message: string) => ({ kind: 'failed', message }) as const;
  const probe = (pool: FpmPool, ping: PoolProbe['ping'], status: PoolProbe['status']): PoolProbe => ({ pool, ping, status });
  const withPing = { pingPath: '/ping', pingResponse: 'pong' };
  const survey = (overrides: Partial<InstanceSurvey>): InstanceSurvey => ({ target: makeTarget('a'), state: 'running', detail: '', pools: [], ...overrides });

  test('a pool is judged by its ping; without a ping.path by its status page; with neither, not at all', () => {
    const pools = [
      probe(makePool('pinged', withPing), failed('ping /ping failed: FastCGI unix:/run/php/pinged.sock: gone'), answered(FIGURES)),
      probe(makePool('fine', withPing), answered(null), failed('status page /status failed: slow')),
      probe(makePool('status-only', { statusPath: '/status' }), { kind: 'not-configured' }, failed('status page /status failed: refused')),
      probe(makePool('unprobed'), { kind: 'not-configured' }, { kind: 'not-configured' }),
    ];
    expect(describeHealthFailures(survey({ pools }))).toEqual([
      'a/pinged: ping /ping failed: FastCGI unix:/run/php/pinged.sock: gone',
      'a/status-only: status page /status failed: refused',
    ]);
  });

  test('an instance that does not run is one line, with the command that starts it', () => {
    const pools = [probe(makePool('web', withPing), { kind: 'not-checked' }, { kind: 'not-checked' })];
    expect(describeHealthFailures(survey({ state: 'stopped', pools }))).toEqual(['a: not running (stopped); start it: php-fpm-multi start a']);
    expect(describeHealthFailures(survey({ state: 'crashed', detail: 'its master (pid 7) is gone' }))).toEqual([
      'a: not running (crashed: its master (pid 7) is gone); start it: php-fpm-multi start a',
    ]);
    expect(describeHealthFailures(survey({ state: 'unknown', detail: 'pidfile corrupt' }))).toEqual(['a: not running (unknown: pidfile corrupt)']);
  });

  test('an instance that cannot be checked says why', () => {
    expect(describeHealthFailures(survey({ target: makeTarget('a', { unusable: 'config missing' }), state: 'unknown' }))).toEqual(['a: cannot be checked: config missing']);
  });

  test('a running instance whose pools all answer has nothing to report', () => {
    expect(describeHealthFailures(survey({ pools: [probe(makePool('web', withPing), answered(null), { kind: 'not-configured' })] }))).toEqual([]);
  });
});

describe('the Prometheus text exposition format', () => {
  test('label values escape backslash, double quote and line feed, nothing else', () => {
    expect(escapeLabelValue('plain /run/php/a.sock')).toBe('plain /run/php/a.sock');
    expect(escapeLabelValue('a\\b"c\nd\te')).toBe('a\\\\b\\"c\\nd\te');
  });

  test('HELP text escapes backslash and line feed, not double quotes', () => {
    expect(escapeHelp('a\\b"c\nd')).toBe('a\\\\b"c\\nd');
  });

  test('values are Go floats', () => {
    expect([0, 42, 1.5, -3, NaN, Infinity, -Infinity].map(formatSampleValue)).toEqual(['0', '42', '1.5', '-3', 'NaN', '+Inf', '-Inf']);
  });

  test('each family once, HELP then TYPE then its samples; empty families left out; a final line feed', () => {
    const families: MetricFamily[] = [
      { name: 'x_up', type: 'gauge', help: 'Up.\nReally', samples: [{ labels: { instance: 'a' }, value: 1 }, { labels: { instance: 'b"' }, value: 0 }] },
      { name: 'x_none', type: 'gauge', help: 'Nothing.', samples: [] },
      { name: 'x_requests_total', type: 'counter', help: 'Requests.', samples: [{ labels: {}, value: 7 }] },
    ];
    expect(formatExposition(families)).toBe(
      '# HELP x_up Up.\\nReally\n# TYPE x_up gauge\nx_up{instance="a"} 1\nx_up{instance="b\\""} 0\n' +
        '# HELP x_requests_total Requests.\n# TYPE x_requests_total counter\nx_requests_total 7\n',
    );
    expect(formatExposition([])).toBe('');
  });

  test.each([
    [[{ name: 'bad-name', type: 'gauge', help: '', samples: [] }], 'invalid Prometheus metric name "bad-name"'],
    [[{ name: 'x', type: 'gauge', help: '', samples: [{ labels: { __reserved: 'a' }, value: 1 }] }], 'invalid Prometheus label name "__reserved"'],
    [[{ name: 'x', type: 'gauge', help: '', samples: [] }, { name: 'x', type: 'gauge', help: '', samples: [] }], 'metric family x given twice'],
  ] as Array<[MetricFamily[], string]>)('refuses what would not parse: %#', (families, message) => {
    expect(() => formatExposition(families)).toThrow(message);
  });

  test('the pool metrics: instance and pool labels, up from ping (else status), figures where the status page answered', () => {
    const tricky = makePool('web', { listen: '/run/a "quoted"\\dir/web.sock', pingPath: '/ping', pingResponse: 'pong', statusPath: '/status' });
    const surveys: InstanceSurvey[] = [
      {
        target: makeTarget('a'), state: 'running', detail: '',
        pools: [
          { pool: tricky, ping: { kind: 'answered', value: null }, status: { kind: 'answered', value: FIGURES } },
          { pool: makePool('api', { statusPath: '/status', pm: 'ondemand' }), ping: { kind: 'not-configured' }, status: { kind: 'failed', message: 'slow' } },
          { pool: makePool('bare', { pm: null }), ping: { kind: 'not-configured' }, status: { kind: 'not-configured' } },
        ],
      },
      {
        target: makeTarget('b'), state: 'stopped', detail: '',
        pools: [{ pool: makePool('b', { pingPath: '/ping', pingResponse: 'pong' }), ping: { kind: 'not-checked' }, status: { kind: 'not-checked' } }],
      },
    ];
    const text = formatExposition(buildPoolMetrics(surveys));
    const samples = text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
    expect(samples).toEqual([
      'phpfpm_multi_instance_up{instance="a"} 1',
      'phpfpm_multi_instance_up{instance="b"} 0',
      'phpfpm_multi_pool_info{instance="a",pool="web",listen="/run/a \\"quoted\\"\\\\dir/web.sock",process_manager="static"} 1',
      'phpfpm_multi_pool_info{instance="a",pool="api",listen="/run/php/api.sock",process_manager="ondemand"} 1',
      'phpfpm_multi_pool_info{instance="a",pool="bare",listen="/run/php/bare.sock",process_manager=""} 1',
      'phpfpm_multi_pool_info{instance="b",pool="b",listen="/run/php/b.sock",process_manager="static"} 1',
      'phpfpm_multi_pool_up{instance="a",pool="web"} 1',
      'phpfpm_multi_pool_up{instance="a",pool="api"} 0',
      'phpfpm_multi_pool_up{instance="b",pool="b"} 0',
      'phpfpm_multi_pool_start_time_seconds{instance="a",pool="web"} 1795255873',
      'phpfpm_multi_pool_accepted_connections_total{instance="a",pool="web"} 42',
      'phpfpm_multi_pool_listen_queue{instance="a",pool="web"} 1',
      'phpfpm_multi_pool_max_listen_queue{instance="a",pool="web"} 3',
      'phpfpm_multi_pool_listen_queue_length{instance="a",pool="web"} 4096',
      'phpfpm_multi_pool_idle_processes{instance="a",pool="web"} 1',
      'phpfpm_multi_pool_active_processes{instance="a",pool="web"} 2',
      'phpfpm_multi_pool_total_processes{instance="a",pool="web"} 3',
      'phpfpm_multi_pool_max_active_processes{instance="a",pool="web"} 3',
      'phpfpm_multi_pool_max_children_reached_total{instance="a",pool="web"} 4',
      'phpfpm_multi_pool_slow_requests_total{instance="a",pool="web"} 5',
    ]);
    expect(text).toContain('# HELP phpfpm_multi_pool_accepted_connections_total Requests the pool accepted since it started.\n# TYPE phpfpm_multi_pool_accepted_connections_total counter\n');
    // Counters, and only counters, end in _total (promtool's lint).
    for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) expect(name!.endsWith('_total')).toBe(type === 'counter');
  });
});
